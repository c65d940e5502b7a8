"""The Fig. 5 run driver's file tools (analyses/lpl_spiking.py): fork, snapshots, probe refusals. No build."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from bridge.config import replace_config, to_json
from spiking.experiments import lpl_network as ln

_spec = importlib.util.spec_from_file_location("lpl_spiking", Path(__file__).parents[1] / "analyses" / "lpl_spiking.py")
lpl_spiking = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(lpl_spiking)


def _partial(path: Path, *, until: float, condition: str = "lpl", complete: int = 0) -> Path:
    cfg = ln.config(duration_s=11800.0, plasticity_start_s=1800.0, segment_s=500.0, fast_rms=True,
                    condition=condition)
    ds = xr.Dataset({"x": ("n", np.arange(3.0))},
                    attrs={"config": to_json(cfg), "seed": 0, "experiment": "lpl-network", "condition": condition,
                           "simulated_until_s": until, "complete": complete})
    ds.to_netcdf(path)
    xr.Dataset({"exc__v": ("exc__v_n", np.full(4, -0.07))}).to_netcdf(path, mode="a", group="state")
    return path


def test_fork_relabels_a_priming_run_as_the_other_conditions(tmp_path):
    src = _partial(tmp_path / "lpl_s0.nc", until=1500.0)
    out = tmp_path / "out"
    assert lpl_spiking.main(["fork", str(src), "--out-dir", str(out)]) == 0
    for cond in ("pred-off", "hebb-off"):
        with xr.open_dataset(out / f"{cond}_s0.nc") as ds:
            cfg = ln.config_from_json(ds.attrs["config"])
            assert cfg.protocol.condition == cond and ds.attrs["condition"] == cond
            # everything but the condition is the source's config: `--resume` of the same command accepts it
            with xr.open_dataset(src) as s:
                source = ln.config_from_json(s.attrs["config"])
            assert cfg == replace_config(source, {"condition": cond})
            assert json.loads(ds.attrs["forked_from"])["simulated_until_s"] == 1500.0
        with xr.open_dataset(out / f"{cond}_s0.nc", group="state") as st:
            np.testing.assert_array_equal(st["exc__v"].values, -0.07)


@pytest.mark.parametrize("until, condition, conds, needle", [
    (1800.0, "lpl", "pred-off", "past its priming"),
    (1500.0, "inhib-fixed", "pred-off", "primes differently"),
    (1500.0, "lpl", "inhib-off", "conditions must be among"),
    (1500.0, "lpl", "lpl", "conditions must be among"),
])
def test_fork_refuses_what_does_not_share_the_priming(tmp_path, capsys, until, condition, conds, needle):
    src = _partial(tmp_path / "src.nc", until=until, condition=condition)
    assert lpl_spiking.main(["fork", str(src), "--conditions", conds, "--out-dir", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0]
    assert not (tmp_path / "o").exists() or not list((tmp_path / "o").iterdir())


def test_fork_never_replaces_a_file(tmp_path, capsys):
    src = _partial(tmp_path / "lpl_s0.nc", until=500.0)
    out = tmp_path / "out"
    out.mkdir()
    (out / "hebb-off_s0.nc").write_bytes(b"mine")
    assert lpl_spiking.main(["fork", str(src), "--out-dir", str(out)]) == 2
    assert (out / "hebb-off_s0.nc").read_bytes() == b"mine" and not (out / "pred-off_s0.nc").exists()


def test_snapshots_copy_each_advance_once(tmp_path):
    f = _partial(tmp_path / "lpl_s0.nc", until=500.0)
    assert [p.name for p in lpl_spiking.keep_snapshots(tmp_path)] == ["lpl_s0_t500.nc"]
    assert lpl_spiking.keep_snapshots(tmp_path) == []
    _partial(f, until=1000.0)
    assert [p.name for p in lpl_spiking.keep_snapshots(tmp_path)] == ["lpl_s0_t1000.nc"]
    with xr.open_dataset(tmp_path / "snapshots" / "lpl_s0_t500.nc") as ds:
        assert float(ds.attrs["simulated_until_s"]) == 500.0


def test_probe_refuses_a_duration_off_the_segment_grid(tmp_path, capsys):
    src = _partial(tmp_path / "lpl_s0.nc", until=500.0)
    assert lpl_spiking.main(["probe", str(src), "--duration", "300", "--out-dir", str(tmp_path / "p")]) == 2
    assert "--duration" in capsys.readouterr().err
