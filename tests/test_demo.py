"""``ratespike demo`` end to end on digits, with the Brian2 simulation replaced by a small stand-in file.

The stand-in writes what the spiking Fig. 5 run writes (input->E weights with pre/post indices, input spikes,
the E representation over the recorded window), so the demo's rate nets, rate twin, comparisons, files and
figures are all exercised in seconds; the full demo with the real Brian2 build is the opt-in
``standalone``/``slow`` test at the end.
"""
from __future__ import annotations

import numpy as np
import pytest

from bridge.cli import main
from bridge.config import to_json
from bridge.io import open_group, open_run, provenance, write_run
from bridge.reps import groups_of, representation


def _fake_run_spiking(cfg, out, *, seed, device="cpp_standalone", build_root=None, progress=False):
    import xarray as xr

    from bridge.commands.rate_vs_spiking import BIN_S, window_rates

    rng = np.random.default_rng(seed)
    n_in = 5 * cfg.n_per_population
    pop_of = np.repeat(np.arange(5), cfg.n_per_population)
    pre, post = np.nonzero(rng.random((n_in, cfg.n_exc)) < cfg.p_input)
    w = rng.uniform(0, 0.3, len(pre))
    t0 = cfg.duration_s - cfg.record_last_s
    n_bins = int(round(cfg.record_last_s / BIN_S))
    counts = rng.poisson(window_rates(cfg, t0, n_bins)[:, pop_of] * BIN_S)  # (time, input)
    b, j = np.nonzero(counts)
    wm = np.zeros((n_in, cfg.n_exc))
    wm[pre, post] = w
    exc = rng.poisson(np.maximum(counts @ wm - 0.5, 0) + 0.01).astype(float)  # (time, neuron)
    ds = xr.Dataset({
        "w_input_pre": ("synapse_input", pre), "w_input_post": ("synapse_input", post),
        "w_input_final": ("synapse_input", w), "input_population": ("neuron_input", pop_of),
        "spike_time_input": ("spike_input", t0 + (b + 0.5) * BIN_S), "spike_neuron_input": ("spike_input", j),
        "rate_E": ("neuron_E", exc.mean(0) / BIN_S)})
    ds.attrs.update(provenance(kind="spike", config_json=to_json(cfg), seed=seed,
                               extra={"experiment": "lpl-network", "simulated_time_s": cfg.duration_s}))
    rep = representation(exc, layer="E", sample_dim="time", units="count", time_step_s=BIN_S)
    rep = rep.assign_coords(time=t0 + np.arange(n_bins) * BIN_S)
    return write_run(ds, out, groups=groups_of({"E": rep}))


@pytest.fixture
def fake_spiking(monkeypatch):
    import bridge.commands.rate_vs_spiking as rvs

    monkeypatch.setattr(rvs, "run_spiking", _fake_run_spiking)


def test_demo_leaves_netcdf_and_png_files_and_compares_everything(fake_spiking, tmp_path, capsys):
    out = tmp_path / "demo"
    argv = ["demo", "--out", str(out), "--epochs", "1", "--spike-duration", "14", "--twin-train", "24",
            "--seed", "3"]
    assert main(argv) == 0
    cap = capsys.readouterr()
    assert "[6/6" in cap.err and "lpl epoch 1/1" in cap.err          # progress on stderr
    assert "demo finished" in cap.out and str(out) in cap.out
    names = {p.name for p in out.iterdir()}
    assert {"lpl.nc", "bp.nc", "spiking.nc", "twin.nc", "rate_vs_spiking.nc", "compare_lpl_bp_cka.nc",
            "compare_lpl_bp_rsa.nc"} <= names
    assert {"lpl_curves.png", "bp_curves.png", "compare_lpl_bp_cka.png", "rate_vs_spiking.png"} <= names
    assert not [n for n in names if n.endswith((".ckpt", ".tmp"))]
    cka = open_run(out / "compare_lpl_bp_cka.nc")["cka"]
    assert cka.dims == ("layer_a", "layer_b") and cka.shape == (2, 2)   # digits LPL: 2 conv blocks; bp: fc1, fc2
    assert np.all((cka.values >= 0) & (cka.values <= 1 + 1e-9))
    side = open_run(out / "rate_vs_spiking.nc")
    assert side["decoding_r2"].dims == ("network", "population") and side.sizes["population"] == 5
    assert np.isfinite(side["cka"].values)
    twin_rep, spk_rep = open_group(out / "twin.nc", "representations/E"), open_group(out / "spiking.nc",
                                                                                      "representations/E")
    np.testing.assert_allclose(twin_rep["time"].values, spk_rep["time"].values)   # the same 10 s window
    assert float(spk_rep["time"][0]) == pytest.approx(4.0)


@pytest.mark.parametrize("argv, fragment", [
    (["--seed", "-1"], "--seed must be >= 0"),
    (["--dataset", "nosuch"], "unknown dataset"),
    (["--spike-device", "gpu"], "device"),
    (["--device", "tpu"], "unknown device"),
    (["--spike-duration", "0"], "--spike-duration must be > 0"),
    (["--epochs", "0"], "--epochs must be >= 1"),
])
def test_demo_bad_input_is_one_line_exit_2(argv, fragment, tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path / "d"), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and fragment in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "d" / "bp.nc").exists()


def test_demo_out_must_be_a_folder(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    assert main(["demo", "--out", str(f)]) == 2
    assert "not a folder" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.standalone
def test_full_demo_with_brian2(tmp_path, capsys):
    """The real thing (a cpp_standalone build plus every model): minutes, opt-in."""
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--no-progress"]) == 0
    assert len(list(out.glob("*.nc"))) >= 3 and len(list(out.glob("*.png"))) >= 1
