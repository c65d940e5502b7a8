"""The Fig. 5 network builds and runs on the runtime device (numpy target, tiny sizes), in segments.

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

    cfg = ln.Config(duration_s=0.3, n_per_population=6, n_exc=5, n_inh=2, ei_width=2.0, plasticity_start_s=0.0,
                    w_input=0.8, segment_s=0.1, record_last_s=0.2, rate_bin_s=0.1, weight_snapshot_s=0.1,
                    trace_dt_s=0.1, eta=1.0, fast_rms=True, update_interval_s=0.1)
    parts = []
    from spiking.devices import use_device

    # the numpy target keeps the test free of compilation (the CLI's runtime device uses Cython)
    with use_device("runtime", seed=3, dt_ms=cfg.dt_ms, codegen="numpy") as dev:
        ds, groups = ln._simulate(ln.effective(cfg), seed=3, dev=dev, progress=False,
                                  on_segment=lambda d, g: parts.append(d.attrs["simulated_until_s"]))
    return cfg, ds, groups, parts


def test_segments_hand_over_partial_results(tiny_run):
    cfg, ds, _, parts = tiny_run
    assert parts == pytest.approx([0.1, 0.2])  # the last segment is the final result, not a partial one
    assert ds.attrs["simulated_until_s"] == pytest.approx(cfg.duration_s)


def test_network_results_contract(tiny_run):
    cfg, ds, groups, _ = tiny_run
    n_in = 5 * cfg.n_per_population
    assert ds["spike_neuron_input"].attrs["instance_dimension"] == "neuron_input"
    t = ds["spike_time_input"].values
    assert np.all(np.diff(t) >= 0) and t.min() >= cfg.duration_s - cfg.record_last_s - 1e-9
    assert 0 < len(t) < n_in * 200 * 0.2  # Poisson at ~5 Hz
    assert ds["w_input_pre"].max() < n_in and ds["w_input_post"].max() < cfg.n_exc
    assert ds["w_input"].sizes["snapshot_time_input"] == 3
    assert not np.allclose(ds["w_input_final"].values, cfg.w_input)  # plastic from t = 0 with a large eta
    assert ds["input_rate"].sizes["population"] == 5
    rep = groups["representations/E"]
    assert rep["response"].dims == ("time", "unit") and rep.sizes["unit"] == cfg.n_exc
    assert rep.sizes["time"] == 8  # 0.2 s in 25 ms bins
    assert float(rep["response"].sum()) == ds.sizes["spike_E"]


def test_cli_interrupted_segmented_run_keeps_last_segment(tmp_path, monkeypatch):
    """``ratespike spike lpl-network --set segment_s=...``: after an interrupt the results file holds the last
    completed segment, marked incomplete."""
    import functools

    import spiking.devices
    from bridge.cli import main
    from bridge.io import open_run
    from spiking.experiments import lpl_network as ln

    monkeypatch.setattr(spiking.devices, "use_device", functools.partial(spiking.devices.use_device, codegen="numpy"))
    real = ln.simulate
    seen = []

    def interrupted(cfg, **kw):
        keep = kw["on_segment"]

        def segment(ds, groups):
            keep(ds, groups)
            seen.append(ds.attrs["simulated_until_s"])
            if len(seen) == 2:
                raise KeyboardInterrupt

        return real(cfg, **{**kw, "on_segment": segment})

    monkeypatch.setattr(ln, "simulate", interrupted)
    out = tmp_path / "net.nc"
    sets = ["duration_s=0.4", "n_per_population=6", "n_exc=5", "n_inh=2", "ei_width=2.0", "plasticity_start_s=0",
            "segment_s=0.1", "record_last_s=0.3", "rate_bin_s=0.1", "weight_snapshot_s=0.1", "trace_dt_s=0.1"]
    argv = ["spike", "lpl-network", "--device", "runtime", "--seed", "0", "--out", str(out), "--no-progress"]
    for s in sets:
        argv += ["--set", s]
    assert main(argv) != 0
    ds = open_run(out)
    assert ds.attrs["complete"] == 0
    assert ds.attrs["simulated_until_s"] == pytest.approx(0.2)
    assert ds["spike_time_E"].size == 0 or float(ds["spike_time_E"].max()) <= 0.2


def test_cli_refuses_segments_on_a_standalone_device(tmp_path, capsys):
    from bridge.cli import main

    out = tmp_path / "x.nc"
    assert main(["spike", "lpl-network", "--out", str(out), "--set", "segment_s=10"]) == 2
    err = capsys.readouterr().err.strip()
    assert "segment_s needs --device runtime" in err and len(err.splitlines()) == 1
    assert not out.exists()
