"""NWB export of a spiking run: pynwb reads back the exact spike times, nwbinspector finds nothing critical,
and bad input is one line with exit status 2 (a missing file, a rate-network file, --out equal to the input)."""
from __future__ import annotations

import json

import numpy as np
import pynwb
import pytest


@pytest.fixture(scope="module")
def spike_file(tmp_path_factory):
    """A tiny Fig. 5 network on the runtime device (numpy target: nothing is compiled), written as NetCDF."""
    from bridge.io import write_run
    from spiking.experiments import lpl_network as ln

    cfg = ln.config(duration_s=0.3, n_per_population=6, n_exc=5, n_inh=2, ei_width=2.0, plasticity_start_s=0.0,
                    w_input=0.8, record_last_s=0.2, rate_bin_s=0.1, weight_snapshot_s=0.1, trace_dt_s=0.1,
                    eta=1.0, fast_rms=True, update_interval_s=0.1)
    ds, groups = ln.simulate(cfg, seed=3, device="runtime", codegen="numpy")
    return write_run(ds, tmp_path_factory.mktemp("nwb") / "net.nc", groups=groups)


def test_round_trip_spike_times_exactly(spike_file, tmp_path):
    from bridge.cli import main
    from bridge.io import open_run

    out = tmp_path / "net.nwb"
    assert main(["export", str(spike_file), "--format", "nwb", "--out", str(out)]) == 0
    ds = open_run(spike_file)
    pops = [k[len("spike_time_"):] for k in ds.data_vars if k.startswith("spike_time_")]
    assert set(pops) >= {"E", "I", "input"}
    with pynwb.NWBHDF5IO(str(out), "r") as io:
        nwb = io.read()
        units = nwb.units.to_dataframe()
        for pop in pops:
            t, i = ds[f"spike_time_{pop}"].values, ds[f"spike_neuron_{pop}"].values
            rows = units[units["population"] == pop]
            assert len(rows) == ds[f"spike_neuron_{pop}"].attrs["n_neurons"]
            for _, row in rows.iterrows():
                want = np.sort(t[i == row["neuron_index"]])
                np.testing.assert_array_equal(np.asarray(row["spike_times"]), want)  # bit for bit
        # the recording window is each unit's observation interval
        np.testing.assert_allclose(units["obs_intervals"].iloc[0], [[0.1, 0.3]])
        # input population rates as a stimulus TimeSeries, on the file's own time axis
        rates = nwb.stimulus["input_rate"]
        np.testing.assert_array_equal(rates.data[:], ds["input_rate"].values)
        np.testing.assert_allclose(rates.timestamps[:] if rates.timestamps is not None else
                                   rates.starting_time + np.arange(rates.data.shape[0]) / rates.rate,
                                   ds["input_time"].values, rtol=0, atol=1e-12)
        assert rates.unit == ds["input_rate"].attrs["units"]
        # final weights per synapse with their indices, and the full config
        syn = nwb.processing["weights"]["synapses_input"].to_dataframe()
        np.testing.assert_array_equal(syn["pre"].values, ds["w_input_pre"].values)
        np.testing.assert_array_equal(syn["weight"].values, ds["w_input_final"].values)
        cfg = nwb.processing["ratespike"]["config"].to_dataframe()
        stored = dict(zip(cfg["field"], (json.loads(v) for v in cfg["value"])))
        assert stored["protocol.duration_s"] == 0.3 and stored["connectivity.n_exc"] == 5
        assert json.loads(nwb.notes)["protocol"]["record_last_s"] == 0.2
        assert "representations" in nwb.processing


def test_nwbinspector_finds_nothing_critical(spike_file, tmp_path):
    nwbinspector = pytest.importorskip("nwbinspector", reason="nwbinspector not installed (pip install '.[test]')")
    from bridge.nwb import export_nwb

    out = export_nwb(spike_file, tmp_path / "net.nwb")
    msgs = list(nwbinspector.inspect_nwbfile(nwbfile_path=str(out)))
    bad = [m for m in msgs if m.importance.name in ("CRITICAL", "PYNWB_VALIDATION", "ERROR")]
    assert not bad, [f"{m.importance.name}: {m.check_function_name}: {m.message}" for m in bad]


def test_bad_input_is_one_line_exit_2(spike_file, tmp_path, capsys):
    from bridge.cli import main
    from bridge.io import provenance, write_run

    import xarray as xr

    rate = write_run(xr.Dataset({"test_accuracy": ("epoch", [0.5])},
                                attrs=provenance(kind="train", config_json="{}", seed=0)), tmp_path / "bp.nc")
    before = spike_file.read_bytes()
    cases = [
        ["export", str(tmp_path / "missing.nc"), "--out", str(tmp_path / "x.nwb")],
        ["export", str(rate), "--out", str(tmp_path / "x.nwb")],
        ["export", str(spike_file), "--out", str(spike_file)],
        ["export", str(spike_file), "--format", "hdf5", "--out", str(tmp_path / "x.nwb")],
    ]
    for argv in cases:
        capsys.readouterr()
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("ratespike: error:"), err
    assert spike_file.read_bytes() == before  # the input is untouched
    assert not (tmp_path / "x.nwb").exists()


# ----------------------------------------------------------------------------------------------------------------
# the other spiking experiments: song-stdp exports, stdp-protocol is refused with its reason

@pytest.fixture(scope="module")
def song_file(tmp_path_factory):
    """A short Song-Miller-Abbott run on the runtime device (numpy target): 400 inputs at 40 Hz onto one neuron."""
    from bridge.io import write_run
    from spiking.experiments import song_stdp

    cfg = song_stdp.config(duration_s=0.2, dt_ms=0.5, n_inputs=400, input_rate_hz=40.0, snapshot_s=0.05)
    ds, groups = song_stdp.simulate(cfg, seed=1, device="runtime", codegen="numpy")
    assert ds["spike_time_post"].size > 0  # the neuron fired: the units table has spikes to carry
    return write_run(ds, tmp_path_factory.mktemp("song") / "song.nc", groups=groups)


def test_song_stdp_exports_its_spikes_weights_and_rate(song_file, tmp_path):
    from bridge.cli import main
    from bridge.io import open_run

    out = tmp_path / "song.nwb"
    assert main(["export", str(song_file), "--format", "nwb", "--out", str(out)]) == 0
    ds = open_run(song_file)
    with pynwb.NWBHDF5IO(str(out), "r") as io:
        nwb = io.read()
        units = nwb.units.to_dataframe()
        assert list(units["population"]) == ["post"]
        np.testing.assert_array_equal(np.asarray(units["spike_times"].iloc[0]), np.sort(ds["spike_time_post"].values))
        syn = nwb.processing["weights"]["per_synapse"].to_dataframe()
        np.testing.assert_array_equal(syn["w_final"].values, ds["w_final"].values)
        np.testing.assert_array_equal(syn["w_initial"].values, ds["w_initial"].values)
        assert "w_hist" in nwb.processing["weights"].data_interfaces
        sc = nwb.processing["recorded"]["scalars"].to_dataframe().set_index("variable")
        assert sc.loc["post_rate", "value"] == pytest.approx(float(ds["post_rate"]))
        assert sc.loc["post_rate", "unit"] == "Hz"
    nwbinspector = pytest.importorskip("nwbinspector", reason="nwbinspector not installed (pip install '.[test]')")
    msgs = list(nwbinspector.inspect_nwbfile(nwbfile_path=str(out)))
    bad = [m for m in msgs if m.importance.name in ("CRITICAL", "PYNWB_VALIDATION", "ERROR")]
    assert not bad, [f"{m.importance.name}: {m.check_function_name}: {m.message}" for m in bad]


def test_stdp_protocol_is_refused_in_one_line_with_the_reason(tmp_path, capsys):
    """An stdp-protocol file (dw over delta_t, as stdp_protocol.simulate_conditions writes it) has no spike
    trains: export says so and why, exit 2, writes nothing."""
    import xarray as xr

    from bridge.cli import main
    from bridge.io import provenance, write_run

    ds = xr.Dataset({"dw": ("delta_t", [0.1, -0.05]), "w": ("delta_t", [0.55, 0.475]),
                     "post_spike_count": ((), 100.0)},
                    coords={"delta_t": ("delta_t", [-10.0, 10.0], {"units": "ms"})},
                    attrs=provenance(kind="spike", config_json="{}", seed=0,
                                     extra={"experiment": "stdp-protocol", "simulated_time_s": 200.0}))
    src = write_run(ds, tmp_path / "stdp.nc")
    assert main(["export", str(src), "--format", "nwb", "--out", str(tmp_path / "stdp.nwb")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "stdp-protocol run" in err and "not recorded spike trains" in err, err
    assert not (tmp_path / "stdp.nwb").exists()
