"""bridge.compare and the compare/plot commands on small synthetic run files (no training)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

from bridge.cli import main
from bridge.compare import compare_runs, load_representations
from bridge.errors import ConfigError, ResultsFileError
from bridge.io import open_run, provenance, write_run
from bridge.reps import groups_of, representation


def _write(path, layers: dict[str, np.ndarray], *, labels=None, sample_dim="stimulus", rule="fake",
           probe_dataset="digits", time_step_s=None):
    attrs = {"probe_dataset": probe_dataset, "probe_split": "test", "probe_count": len(next(iter(layers.values())))}
    if sample_dim == "time":
        attrs = {}
    reps = {k: representation(v, layer=k, sample_dim=sample_dim, labels=labels, attrs=attrs,
                              time_step_s=time_step_s) for k, v in layers.items()}
    root = xr.Dataset({"test_accuracy": (("epoch",), [0.5, 0.6])}, coords={"epoch": [1, 2]})
    root.attrs.update(provenance(kind="train", config_json=json.dumps({"__class__": "X"}), seed=0,
                                 extra={"rule": rule, "dataset": probe_dataset}))
    write_run(root, path, groups=groups_of(reps))
    return path


@pytest.fixture
def two_runs(tmp_path):
    r = np.random.default_rng(0)
    labels = r.integers(0, 3, 60)
    h1 = np.maximum(r.normal(size=(60, 12)) + np.eye(3)[labels] @ r.normal(size=(3, 12)) * 2, 0)
    h2 = h1 @ r.normal(size=(12, 5))
    a = _write(tmp_path / "a.nc", {"fc1": h1, "fc2": h2}, labels=labels, rule="lpl")
    b = _write(tmp_path / "b.nc", {"l1": h1 @ np.linalg.qr(r.normal(size=(12, 12)))[0], "l2": r.normal(size=(60, 4)),
                                   "l3": h2 * 3}, labels=labels, rule="bp")
    return a, b, labels


def _err(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    return err


def test_self_cka_is_one_on_the_diagonal(two_runs):
    a, _, _ = two_runs
    ds = compare_runs(a, a, "cka")
    v = next(iter(ds.data_vars.values()))
    assert v.dims == ("layer_a", "layer_b") and list(ds["layer_a"].values) == ["fc1", "fc2"]
    np.testing.assert_allclose(np.diag(v.values), 1.0, atol=1e-10)
    np.testing.assert_allclose(v.values, v.values.T, atol=1e-12)
    assert ds.attrs["ratespike_kind"] == "compare" and ds.attrs["model_a"] == "lpl"
    assert {"participation_ratio_a", "label_accuracy_b"} <= set(ds.data_vars)


def test_cross_model_matrix_finds_the_rotated_and_scaled_copies(two_runs):
    a, b, _ = two_runs
    for measure in ("cka", "cka-debiased", "rsa"):
        ds = compare_runs(a, b, measure)
        m = ds[measure.replace("-", "_")]
        assert m.shape == (2, 3)
        # fc1 vs its rotation l1 and fc2 vs its scaled copy l3 are identical up to the measure's invariances
        # (RSA: correlation-distance RDMs are rotation-invariant only up to the pattern mean, so approx)
        tol = 0.05 if measure == "rsa" else 1e-8
        assert float(m.sel(layer_a="fc2", layer_b="l3")) == pytest.approx(1.0, abs=1e-8)
        if measure != "rsa":
            assert float(m.sel(layer_a="fc1", layer_b="l1")) == pytest.approx(1.0, abs=tol)
        assert float(m.sel(layer_a="fc1", layer_b="l2")) < 0.6
    dec = compare_runs(a, b, "decoding")["decoding"]
    assert float(dec.sel(layer_a="fc1", layer_b="l3")) == pytest.approx(1.0, abs=1e-3)  # l3 is linear in fc1
    assert float(dec.sel(layer_a="fc1", layer_b="l2")) < 0.3                            # noise is not


def test_compare_command_writes_netcdf_prints_a_table_and_plots(two_runs, tmp_path, capsys):
    a, b, _ = two_runs
    out, png = tmp_path / "c.nc", tmp_path / "c.png"
    assert main(["compare", str(a), str(b), "--measure", "rsa", "--out", str(out), "--plot", str(png)]) == 0
    text = capsys.readouterr().out
    assert "rsa" in text and "fc1" in text and "l3" in text
    ds = open_run(out)
    assert ds["rsa"].dims == ("layer_a", "layer_b")
    assert png.stat().st_size > 1000
    png2 = tmp_path / "again.png"
    assert main(["plot", str(out), "--out", str(png2)]) == 0 and png2.exists()
    assert main(["plot", str(a), "--out", str(tmp_path / "curves.png")]) == 0


@pytest.mark.parametrize("case, fragment", [
    ("length", "differ in length"),
    ("labels", "stimulus labels differ"),
    ("kind", "'time' samples"),
    ("dataset", "probe_dataset"),
    ("nan", "NaN"),
    ("layer", "unknown layer"),
    ("notratespike", "not a ratespike results file"),
    ("norep", "holds no representations"),
    ("missing", "no such results file"),
    ("measure", "unknown measure"),
])
def test_bad_input_one_line_exit_2_nothing_written(case, fragment, two_runs, tmp_path, capsys):
    a, _, labels = two_runs
    r = np.random.default_rng(1)
    other = tmp_path / "other.nc"
    extra: list[str] = []
    if case == "length":
        _write(other, {"fc1": r.normal(size=(50, 4))}, labels=labels[:50])
    elif case == "labels":
        _write(other, {"fc1": r.normal(size=(60, 4))}, labels=(labels + 1) % 3)
    elif case == "kind":
        _write(other, {"E": r.normal(size=(60, 4))}, sample_dim="time", time_step_s=0.025)
    elif case == "dataset":
        _write(other, {"fc1": r.normal(size=(60, 4))}, labels=labels, probe_dataset="mnist")
    elif case == "nan":
        v = r.normal(size=(60, 4))
        v[3, 2] = np.nan
        _write(other, {"fc1": v}, labels=labels)
    elif case == "layer":
        other = a
        extra = ["--layers-b", "fc7"]
    elif case == "notratespike":
        xr.Dataset({"x": ("t", [1.0, 2.0])}).to_netcdf(other)
    elif case == "norep":
        root = xr.Dataset({"x": ("t", [1.0, 2.0])})
        root.attrs.update(provenance(kind="train", config_json="{}", seed=0))
        write_run(root, other)
    elif case == "missing":
        other = tmp_path / "nope.nc"
    elif case == "measure":
        other = a
        extra = ["--measure", "cca"]
    out = tmp_path / "cmp.nc"
    assert main(["compare", str(a), str(other), "--out", str(out), *extra]) == 2
    err = _err(capsys)
    assert fragment in err and len(err.splitlines()) == 1, err
    assert not out.exists()
    assert not list(tmp_path.glob(".cmp.nc.*"))


def test_time_representations_compare_when_bins_match(tmp_path):
    r = np.random.default_rng(2)
    x = r.poisson(2.0, size=(80, 10)).astype(float)
    a = _write(tmp_path / "spk.nc", {"E": x}, sample_dim="time", time_step_s=0.025)
    b = _write(tmp_path / "twin.nc", {"E": x @ r.normal(size=(10, 6))}, sample_dim="time", time_step_s=0.025)
    ds = compare_runs(a, b, "cka-debiased")
    assert ds.attrs["sample_dim"] == "time" and ds["cka_debiased"].shape == (1, 1)
    c = _write(tmp_path / "shifted.nc", {"E": x}, sample_dim="time", time_step_s=0.05)
    with pytest.raises(ResultsFileError, match="time bins"):
        compare_runs(a, c, "cka")


def test_library_errors_are_ratespike_errors(two_runs):
    a, _, _ = two_runs
    with pytest.raises(ConfigError, match="a.nc: unknown layer 'fc'; did you mean"):
        compare_runs(a, a, layers_a=["fc"])
    assert list(load_representations(a)) == ["fc1", "fc2"]
