"""The results file format: round trips, atomic writes, refusing files that are not ratespike results."""
from __future__ import annotations

import os

import numpy as np
import pytest
import xarray as xr

from bridge.errors import ResultsFileError
from bridge.io import list_groups, open_group, open_run, provenance, write_run
from bridge.reps import groups_of, representation


def _run() -> xr.Dataset:
    ds = xr.Dataset({"test_accuracy": (("epoch", "layer"), np.array([[0.5, 0.6], [0.7, 0.8]]))},
                    coords={"epoch": [1, 2], "layer": ["conv1", "conv2"]})
    ds["test_accuracy"].attrs.update(units="1", long_name="test accuracy")
    ds.attrs.update(provenance(kind="train", config_json='{"lr": 0.1}', seed=3,
                               extra={"rule": "toy", "dataset": "digits", "flag": True}))
    return ds


def test_round_trip_with_groups(tmp_path):
    ds = _run()
    reps = {"conv1": representation(np.random.default_rng(0).random((5, 3)), layer="conv1", labels=np.arange(5)),
            "conv2": representation(np.ones((5, 7)), layer="conv2")}
    p = write_run(ds, tmp_path / "run.nc", groups=groups_of(reps))
    back = open_run(p)
    xr.testing.assert_identical(back["test_accuracy"], ds["test_accuracy"])
    assert back.attrs["seed"] == 3 and back.attrs["flag"] == 1  # bools are stored as integers
    assert {"representations/conv1", "representations/conv2"} <= set(list_groups(p))
    g = open_group(p, "representations/conv2")
    assert g["response"].dims == ("stimulus", "unit") and g.sizes["unit"] == 7
    np.testing.assert_allclose(open_group(p, "representations/conv1")["response"].values,
                               reps["conv1"]["response"].values)


def test_failed_write_keeps_the_old_file(tmp_path):
    p = write_run(_run(), tmp_path / "run.nc")
    before = p.read_bytes()
    bad = _run()
    bad["oops"] = xr.DataArray(np.array([object()], dtype=object), dims="x")  # cannot be encoded
    with pytest.raises(Exception):
        write_run(bad, p)
    assert p.read_bytes() == before
    assert [f for f in os.listdir(tmp_path) if f != "run.nc"] == []  # no temp file left behind


def test_refuses_garbage_and_foreign_netcdf(tmp_path):
    junk = tmp_path / "junk.nc"
    junk.write_text("not a netcdf file")
    with pytest.raises(ResultsFileError, match="not a readable NetCDF"):
        open_run(junk)
    foreign = tmp_path / "foreign.nc"
    xr.Dataset({"a": ("x", [1.0])}).to_netcdf(foreign)
    with pytest.raises(ResultsFileError, match="not a ratespike results file"):
        open_run(foreign)
    with pytest.raises(ResultsFileError, match="no such results file"):
        open_run(tmp_path / "missing.nc")


def test_unwritable_directory(tmp_path, monkeypatch):
    """Tried by creating a file, so it holds as root too (CI runs as root): a refused create is refused."""
    real = os.open
    ro = tmp_path / "ro"
    ro.mkdir()

    def refuse(path, flags, *a, **k):
        if str(path).startswith(str(ro)) and flags & os.O_CREAT:
            raise PermissionError(13, "Permission denied", str(path))
        return real(path, flags, *a, **k)

    monkeypatch.setattr(os, "open", refuse)
    with pytest.raises(ResultsFileError, match="not writable"):
        write_run(_run(), ro / "x.nc")
    assert os.listdir(ro) == []


def test_proc_is_not_writable_even_for_root():
    with pytest.raises(ResultsFileError, match="not writable"):
        write_run(_run(), "/proc/ratespike-test.nc")


def test_output_path_that_is_a_directory(tmp_path):
    with pytest.raises(ResultsFileError, match="is a directory"):
        write_run(_run(), tmp_path)


def test_packages_are_ours():
    """`spiking` and `bridge` are generic names (PyPI has a `spiking`): make sure ours are the ones imported."""
    import bridge
    import ratenets

    assert callable(bridge.open_run) and "bp" in ratenets.RULES
    assert bridge.__doc__.startswith("bridge: the results data model of ratespike")


def test_output_under_a_file_cannot_be_created(tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(ResultsFileError, match="cannot create output directory"):
        write_run(_run(), tmp_path / "afile" / "run.nc")
