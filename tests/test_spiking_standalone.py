"""One cached cpp_standalone binary of the Fig. 5 network serves conditions, seeds and segments.

All tests share one build (the session fixture ``network_build_root`` of a tiny network; opt-in with
RATESPIKE_STANDALONE_TESTS=1). They check that a run on the cached binary builds nothing, that conditions and
seeds are run-time values that change the result, that a set run by the CLI (several processes) gives the
same files as single runs, and that a segmented run interrupted after its first segment and resumed gives
data identical to an uninterrupted segmented run.
"""
from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from bridge.cli import main
from spiking.experiments import lpl_network as ln

pytestmark = pytest.mark.standalone


def _sets(tiny: dict, duration: float, **extra) -> list[str]:
    out = ["--duration", str(duration)]
    for k, v in {**tiny, **extra}.items():
        out += ["--set", f"{k}={str(v).lower() if isinstance(v, bool) else v}"]
    return out


def _same(a: xr.Dataset, b: xr.Dataset) -> list[str]:
    return [k for k in a.data_vars if k not in b or not np.array_equal(a[k].values, b[k].values, equal_nan=True)]


@pytest.fixture(scope="module")
def runs(network_build_root, tiny_network):
    out = {}
    for cond, seed in (("lpl", 0), ("hebb-off", 0), ("lpl", 1)):
        cfg = ln.config(duration_s=0.6, condition=cond, **tiny_network)
        out[cond, seed] = ln.simulate(cfg, seed=seed, device="cpp_standalone", build_root=network_build_root)[0]
    return out


def test_cached_binary_builds_nothing_and_is_deterministic(runs, network_build_root, tiny_network):
    for ds in runs.values():
        assert ds.attrs["build_time_s"] == 0.0
    again = ln.simulate(ln.config(duration_s=0.6, **tiny_network), seed=0, device="cpp_standalone",
                        build_root=network_build_root)[0]
    assert _same(runs["lpl", 0], again) == []


def test_condition_and_seed_are_run_time_values(runs):
    a, hebb_off, other_seed = runs["lpl", 0], runs["hebb-off", 0], runs["lpl", 1]
    # same seed: same connectivity and inputs; lambda = 0 changes the learned weights
    assert np.array_equal(a["w_input_pre"], hebb_off["w_input_pre"])
    assert np.abs(a["w_input_final"].values - hebb_off["w_input_final"].values).max() > 1e-3
    # another seed: another connectivity drawn inside the binary
    assert (a.sizes["synapse_input"] != other_seed.sizes["synapse_input"]
            or not np.array_equal(a["w_input_pre"], other_seed["w_input_pre"]))


def test_cli_set_gives_the_single_runs(runs, network_build_root, tiny_network, tmp_path):
    argv = ["spike", "lpl-network", "--conditions", "lpl,hebb-off", "--seeds", "0-1", "--out-dir", str(tmp_path),
            "--build-root", str(network_build_root), "--no-progress", *_sets(tiny_network, 0.6)]
    assert main(argv) == 0
    files = sorted(tmp_path.glob("*.nc"))
    assert len(files) == 4
    for (cond, seed), ds in runs.items():
        with xr.open_dataset(tmp_path / f"lpl-network_{cond}_s{seed}.nc") as f:
            assert f.attrs["build_time_s"] == 0.0
            assert _same(ds, f.load()) == []


def test_interrupted_segmented_run_resumes_to_the_uninterrupted_result(network_build_root, tiny_network, tmp_path,
                                                                      monkeypatch):
    common = ["spike", "lpl-network", "--seed", "2", "--build-root", str(network_build_root), "--no-progress",
              *_sets(tiny_network, 1.2, segment_s=0.4)]
    assert main([*common, "--out", str(tmp_path / "full.nc")]) == 0
    real = ln.simulate
    calls = []

    def killed_after_first_segment(cfg, **kw):
        keep = kw["on_segment"]

        def segment(ds, groups):
            keep(ds, groups)
            calls.append(ds.attrs["simulated_until_s"])
            raise KeyboardInterrupt

        return real(cfg, **{**kw, "on_segment": segment})

    monkeypatch.setattr(ln, "simulate", killed_after_first_segment)
    cut = tmp_path / "cut.nc"
    assert main([*common, "--out", str(cut)]) != 0
    with xr.open_dataset(cut) as part:
        assert int(part.attrs["complete"]) == 0 and float(part.attrs["simulated_until_s"]) == pytest.approx(0.4)
    monkeypatch.setattr(ln, "simulate", real)
    assert main([*common, "--out", str(cut), "--resume"]) == 0
    with xr.open_dataset(tmp_path / "full.nc") as a, xr.open_dataset(cut) as b:
        assert int(b.attrs["complete"]) == 1
        assert _same(a.load(), b.load()) == []
        assert a.sizes["spike_E"] > 0  # the tiny network spikes, so the comparison means something


def test_segmented_run_keeps_event_driven_traces_finite(network_build_root, tiny_network, tmp_path):
    """Every run of the binary restarts its clock at 0: a carried ``lastupdate`` of the last run's clock would
    decay the iSTDP traces by exp(+t/tau) at the first event (infinite traces, weights of 1e300 and NaN)."""
    argv = ["spike", "lpl-network", "--seed", "1", "--build-root", str(network_build_root), "--no-progress",
            "--out", str(tmp_path / "seg.nc"), *_sets(tiny_network, 1.2, segment_s=0.4, plasticity_start_s=0.0)]
    assert main(argv) == 0
    with xr.open_dataset(tmp_path / "seg.nc") as ds, \
            xr.open_dataset(tmp_path / "seg.nc", group="state") as st:
        for name in ("w_input_final", "w_ie_final"):
            w = ds[name].values
            assert np.isfinite(w).all() and w.min() >= 0 and w.max() < 10, name
        assert (st["ie__lastupdate"].values <= 0).all()  # times of the next run's clock: in its past


def test_one_binary_gives_what_a_fresh_build_gives(runs, tiny_network, tmp_path):
    """Conditions and seeds run on the shared binary equal the same runs on a binary built afresh for them."""
    fresh = tmp_path / "fresh-builds"
    for cond, seed in (("hebb-off", 0), ("lpl", 1)):
        cfg = ln.config(duration_s=0.6, condition=cond, **tiny_network)
        ds = ln.simulate(cfg, seed=seed, device="cpp_standalone", build_root=fresh)[0]
        if cond == "hebb-off":
            assert ds.attrs["build_time_s"] > 0  # the first of the two built its own binary
        assert _same(runs[cond, seed], ds) == []
