"""The Fig. 5 network on the runtime device (numpy target, tiny sizes), in segments; the CLI's bad-input refusals.

Checks the results contract of an lpl-network run (timing attributes, spikes as CF indexed ragged arrays,
weights with pre/post indices, input rates, the ``representations/E`` group) and that a segmented run hands
over the results of every completed segment (what the CLI writes, so an interrupted run keeps them).
"""
from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def tiny_run():
    from spiking.experiments import lpl_network as ln

    cfg = ln.config(duration_s=0.3, n_per_population=6, n_exc=5, n_inh=2, ei_width=2.0, plasticity_start_s=0.0,
                    w_input=0.8, segment_s=0.1, record_last_s=0.2, rate_bin_s=0.1, weight_snapshot_s=0.1,
                    trace_dt_s=0.1, eta=1.0, fast_rms=True, update_interval_s=0.1)
    parts = []
    # the numpy target keeps the test free of compilation (the CLI's runtime device uses Cython)
    ds, groups = ln.simulate(cfg, seed=3, device="runtime", codegen="numpy",
                             on_segment=lambda d, g: parts.append(d.attrs["simulated_until_s"]))
    return cfg, ds, groups, parts


def test_segments_hand_over_partial_results(tiny_run):
    cfg, ds, _, parts = tiny_run
    assert parts == pytest.approx([0.1, 0.2])  # the last segment is the final result, not a partial one
    assert ds.attrs["simulated_until_s"] == pytest.approx(cfg.protocol.duration_s)


def test_network_results_contract(tiny_run):
    cfg, ds, groups, _ = tiny_run
    n_in = 5 * cfg.input.n_per_population
    assert ds["spike_neuron_input"].attrs["instance_dimension"] == "neuron_input"
    t = ds["spike_time_input"].values
    assert np.all(np.diff(t) >= 0) and t.min() >= cfg.protocol.duration_s - cfg.protocol.record_last_s - 1e-9
    assert 0 < len(t) < n_in * 200 * 0.2  # Poisson at ~5 Hz
    assert ds["w_input_pre"].max() < n_in and ds["w_input_post"].max() < cfg.connectivity.n_exc
    assert ds["w_input"].sizes["snapshot_time_input"] == 3
    assert not np.allclose(ds["w_input_final"].values, cfg.connectivity.w_input)  # plastic from t = 0 with a large eta
    assert ds["input_rate"].sizes["population"] == 5
    rep = groups["representations/E"]
    assert rep["response"].dims == ("time", "unit") and rep.sizes["unit"] == cfg.connectivity.n_exc
    assert rep.sizes["time"] == 8  # 0.2 s in 25 ms bins
    assert float(rep["response"].sum()) == ds.sizes["spike_E"]


def test_cli_interrupted_segmented_run_keeps_last_segment(tmp_path, monkeypatch):
    """``ratespike spike lpl-network --set segment_s=...``: after an interrupt the results file holds the last
    completed segment, marked incomplete."""
    from bridge.cli import main
    from bridge.io import open_run
    from spiking.experiments import lpl_network as ln

    real = ln.simulate
    seen = []

    def interrupted(cfg, **kw):
        keep = kw["on_segment"]

        def segment(ds, groups):
            keep(ds, groups)
            seen.append(ds.attrs["simulated_until_s"])
            if len(seen) == 2:
                raise KeyboardInterrupt

        return real(cfg, **{**kw, "on_segment": segment, "codegen": "numpy"})

    monkeypatch.setattr(ln, "simulate", interrupted)
    out = tmp_path / "net.nc"
    sets = ["duration_s=0.4", "n_per_population=6", "n_exc=5", "n_inh=2", "ei_width=2.0", "plasticity_start_s=0",
            "segment_s=0.1", "record_last_s=0.3", "rate_bin_s=0.1", "weight_snapshot_s=0.1", "trace_dt_s=0.1",
            "update_interval_s=0.1"]
    argv = ["spike", "lpl-network", "--device", "runtime", "--seed", "0", "--out", str(out), "--no-progress"]
    for s in sets:
        argv += ["--set", s]
    assert main(argv) != 0
    ds = open_run(out)
    assert ds.attrs["complete"] == 0
    assert ds.attrs["simulated_until_s"] == pytest.approx(0.2)
    assert ds["spike_time_E"].size == 0 or float(ds["spike_time_E"].max()) <= 0.2


BAD = [
    (["--duration", "5", "--set", "segment_s=0.3"], "segment_s must be a positive whole number"),
    (["--duration", "5", "--set", "segment_s=-1"], "segment_s"),
    ([], "needs --duration SECONDS or --paper-protocol"),
    (["--duration", "inf"], "--duration must be a finite"),
    (["--duration", "nan"], "--duration must be a finite"),
    (["--duration", "5", "--seed", str(2 ** 32)], "seeds must be in [0, 2^32)"),
    (["--duration", "5", "--conditions", "lpl,no-such"], "no-such"),
    (["--duration", "5", "--conditions", "lpl", "--seeds", "3-1"], "--seeds must be a list"),
    (["--duration", "5", "--seeds", "0-1"], "give --out-dir"),
    (["--duration", "5", "--set", "segment_s=1", "--resume"], "no partial results file"),
]


@pytest.mark.parametrize("extra,needle", BAD)
def test_cli_bad_network_input_is_one_line_exit_2_before_any_build(extra, needle, tmp_path, capsys, monkeypatch):
    from bridge.cli import main
    from spiking import standalone

    def no_build(*a, **k):
        raise AssertionError("built before refusing bad input")

    monkeypatch.setattr(standalone, "build", no_build)
    out = tmp_path / "x.nc"
    argv = ["spike", "lpl-network", "--out", str(out), "--build-root", str(tmp_path / "b"), *extra]
    if "--seeds" in extra or "--conditions" in extra:
        argv.remove("--out")
        argv.remove(str(out))
        if "--seeds" in extra and "0-1" in extra:
            argv += ["--out", str(out)]
        else:
            argv += ["--out-dir", str(tmp_path / "d")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_resume_refuses_a_file_of_another_config(tmp_path, capsys):
    """A partial file written with other settings is not continued (and stays as it was)."""
    from bridge.cli import main
    from bridge.config import to_json
    from bridge.io import provenance, write_run
    from spiking.experiments import lpl_network as ln
    import xarray as xr

    out = tmp_path / "p.nc"
    other = ln.config(duration_s=4.0, segment_s=1.0)
    ds = xr.Dataset(attrs=provenance(kind="spike", config_json=to_json(other), seed=0, extra={
        "experiment": "lpl-network", "simulated_until_s": 1.0, "complete": 0}))
    write_run(ds, out, groups={"raw": xr.Dataset(), "state": xr.Dataset()})
    before = out.read_bytes()
    assert main(["spike", "lpl-network", "--duration", "5", "--set", "segment_s=1", "--resume", "--out", str(out),
                 "--build-root", str(tmp_path / "b")]) == 2
    assert "another config" in capsys.readouterr().err
    assert out.read_bytes() == before


def test_generated_clock_resets_are_sorted_so_the_code_hash_is_stable():
    """Brian2 writes the clock resets of main.cpp in a set's iteration order, which differs between processes;
    sorted, one model gives one main.cpp (spiking.standalone._code_hash then finds the compiled binary)."""
    from spiking.standalone import _sorted_clock_resets

    a = "x();\n  _array_b_clock_t[0] = 0.0;\n  _array_a_clock_timestep[0] = 0;\n  _array_a_clock_t[0] = 0.0;\ny();"
    b = "x();\n  _array_a_clock_t[0] = 0.0;\n  _array_b_clock_t[0] = 0.0;\n  _array_a_clock_timestep[0] = 0;\ny();"
    assert a != b and _sorted_clock_resets(a) == _sorted_clock_resets(b)
    assert _sorted_clock_resets(a).startswith("x();\n") and _sorted_clock_resets(a).endswith("\ny();")
    assert sorted(_sorted_clock_resets(a).split("\n")) == sorted(a.split("\n"))
