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

    from bridge.commands.rate_vs_spiking import window_rates
    from bridge.fig5 import BIN_S

    rng = np.random.default_rng(seed)
    n_in = 5 * cfg.input.n_per_population
    pop_of = np.repeat(np.arange(5), cfg.input.n_per_population)
    pre, post = np.nonzero(rng.random((n_in, cfg.connectivity.n_exc)) < cfg.connectivity.p_input)
    w = rng.uniform(0, 0.3, len(pre))
    t0 = cfg.protocol.duration_s - cfg.protocol.record_last_s
    n_bins = int(round(cfg.protocol.record_last_s / BIN_S))
    counts = rng.poisson(window_rates(cfg, t0, n_bins)[:, pop_of] * BIN_S)  # (time, input)
    b, j = np.nonzero(counts)
    wm = np.zeros((n_in, cfg.connectivity.n_exc))
    wm[pre, post] = w
    exc = rng.poisson(np.maximum(counts @ wm - 0.5, 0) + 0.01).astype(float)  # (time, neuron)
    ds = xr.Dataset({
        "w_input_pre": ("synapse_input", pre), "w_input_post": ("synapse_input", post),
        "w_input_final": ("synapse_input", w), "input_population": ("neuron_input", pop_of),
        "spike_time_input": ("spike_input", t0 + (b + 0.5) * BIN_S), "spike_neuron_input": ("spike_input", j),
        "rate_E": ("neuron_E", exc.mean(0) / BIN_S)})
    ds.attrs.update(provenance(kind="spike", config_json=to_json(cfg), seed=seed,
                               extra={"experiment": "lpl-network", "simulated_time_s": cfg.protocol.duration_s}))
    rep = representation(exc, layer="E", sample_dim="time", units="count", time_step_s=BIN_S)
    rep = rep.assign_coords(time=t0 + np.arange(n_bins) * BIN_S)
    return write_run(ds, out, groups=groups_of({"E": rep}))


@pytest.fixture
def fake_spiking(monkeypatch):
    import bridge.commands.rate_vs_spiking as rvs

    monkeypatch.setattr(rvs, "run_spiking", _fake_run_spiking)


def test_demo_leaves_netcdf_and_png_files_and_compares_everything(fake_spiking, tmp_path, capsys):
    out = tmp_path / "demo"
    argv = ["demo", "--out", str(out), "--epochs", "1", "--spike-duration", "14", "--seed", "3"]
    assert main(argv) == 0
    cap = capsys.readouterr()
    assert cap.out.startswith("ratespike demo: expected duration about ")   # said before any work
    assert "[7/7" in cap.err and "lpl epoch 1/1" in cap.err and "bp epoch 1/1" in cap.err  # progress on stderr
    assert "demo finished" in cap.out and str(out) in cap.out
    names = {p.name for p in out.iterdir()}
    assert {"lpl.nc", "bp.nc", "random_init.nc", "pixels.nc", "spiking.nc", "twin.nc", "rate_vs_spiking.nc",
            "compare_lpl_bp_cka.nc", "compare_lpl_bp_rsa.nc", "compare_random_init_bp_cka.nc",
            "compare_random_init_bp_rsa.nc", "summary.txt"} <= names
    assert {"lpl_curves.png", "bp_curves.png", "readout.png", "compare_lpl_bp_cka.png",
            "compare_random_init_bp_cka.png", "rate_vs_spiking.png"} <= names
    assert not [n for n in names if n.endswith((".ckpt", ".tmp"))]
    # like for like: the backprop twin has LPL's encoder, the baselines are probed on the same images
    runs = {n: open_run(out / f"{n}.nc") for n in ("lpl", "bp", "random_init", "pixels")}
    assert list(runs["lpl"]["layer"].values) == list(runs["bp"]["layer"].values) == \
        list(runs["random_init"]["layer"].values)
    import json

    cfgs = {n: json.loads(r.attrs["config"]) for n, r in runs.items()}
    for key in ("encoder", "mlp_hidden", "views", "probe", "probe_train_images", "probe_epochs"):
        assert cfgs["lpl"][key] == cfgs["bp"][key] == cfgs["random_init"][key] == cfgs["pixels"][key], key
    assert cfgs["bp"]["objective"] == "supervised" and cfgs["bp"]["end_to_end"]
    assert cfgs["lpl"]["probe"] == "eval_py"  # the official probe, where LPL's margin exceeds the seed spread
    reps = {n: open_group(out / f"{n}.nc", "representations/fc1") for n in ("lpl", "bp", "random_init")}
    np.testing.assert_array_equal(reps["lpl"]["label"].values, reps["bp"]["label"].values)
    cka = open_run(out / "compare_lpl_bp_cka.nc")["cka"]
    assert cka.dims == ("layer_a", "layer_b") and cka.shape == (2, 2)   # digits MLP: fc1, fc2 in both
    assert np.all((cka.values >= 0) & (cka.values <= 1 + 1e-9))
    side = open_run(out / "rate_vs_spiking.nc")
    assert side["decoding_r2"].dims == ("network", "population") and side.sizes["population"] == 5
    assert np.isfinite(side["cka"].values)
    # the rate twin trained on the same stimulus duration as the spiking network ran
    assert float(open_run(out / "twin.nc").attrs["train_s"]) == pytest.approx(14.0)
    twin_rep, spk_rep = open_group(out / "twin.nc", "representations/E"), open_group(out / "spiking.nc",
                                                                                      "representations/E")
    np.testing.assert_allclose(twin_rep["time"].values, spk_rep["time"].values)   # the same 10 s window
    assert float(spk_rep["time"][0]) == pytest.approx(4.0)
    # the saved summary says what was shown, with every baseline, and what the full protocol needs
    text = (out / "summary.txt").read_text()
    assert text.strip() in cap.out
    for fragment in ("untrained network (random init)", "pixels (linear readout", "backprop twin",
                     "What the full protocols would need", "101 800 s", "800 epochs", "14 s simulated"):
        assert fragment in text, fragment
    acc = runs["random_init"]["test_accuracy"].isel(epoch=-1)
    assert f"fc1 {float(acc.sel(layer='fc1')):.3g}" in text


def test_summary_says_when_the_twin_saw_another_duration_and_when_lpl_loses():
    """summary_text on hand-made results (no training): the duration note and an honest 'does NOT beat'."""
    import argparse

    import xarray as xr

    from bridge.commands import demo
    from bridge.fig5 import POPULATIONS
    from bridge.rate_vs_spiking import NETWORKS

    def run(vals, layers):
        return xr.Dataset({"test_accuracy": (("epoch", "layer"), [vals])}, coords={"epoch": [1], "layer": layers})

    two = ["fc1", "fc2"]
    results = {"lpl": run([0.9, 0.8], two), "bp": run([0.95, 0.97], two), "random_init": run([0.9, 0.85], two),
               "pixels": run([0.94], ["pixels"])}
    cmp = xr.Dataset({"cka": (("layer_a", "layer_b"), np.eye(2))}, coords={"layer_a": two, "layer_b": two})
    sims = {(a, m): cmp for a in ("lpl", "random_init") for m in ("cka", "rsa")}
    side = xr.Dataset({"decoding_r2": (("network", "population"), np.zeros((2, 5))),
                       "participation_ratio": ("network", [2.0, 3.0]), "rate_exc": ("network", [1.0, 2.0]),
                       "cka": 0.5, "cka_debiased": 0.1, "rsa": 0.2},
                      coords={"network": list(NETWORKS), "population": list(POPULATIONS)})
    args = argparse.Namespace(dataset="digits", seed=0, spike_duration=12.0)
    text = demo.summary_text(args, 1, 24.0, 10.0, results, sims, side)
    assert "not the same stimulus duration" in text
    assert "does NOT beat both baselines: 0.800 vs untrained 0.850 and pixels 0.940" in text
    same = demo.summary_text(args, 1, 12.0, 10.0, results, sims, side)
    assert "not the same stimulus duration" not in same


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
    assert not (tmp_path / "d" / "lpl.nc").exists()


def test_demo_out_must_be_a_folder(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    assert main(["demo", "--out", str(f)]) == 2
    assert "not a folder" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.standalone
@pytest.mark.skipif(__import__("os").environ.get("RATESPIKE_STANDALONE_TESTS") != "1",
                    reason="the full demo builds a cpp_standalone project and runs every model (minutes); "
                           "set RATESPIKE_STANDALONE_TESTS=1 to run")
def test_full_demo_with_brian2(tmp_path, capsys):
    """The real thing (a cpp_standalone build plus every model): minutes, opt-in."""
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--no-progress"]) == 0
    assert len(list(out.glob("*.nc"))) >= 3 and len(list(out.glob("*.png"))) >= 1
