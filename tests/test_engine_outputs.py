"""Outputs never destroy data: inputs, FIFOs, devices, folders and foreign files are refused before any work;
a complete file is replaced only by a finished run; modes follow the umask; write errors (ENOSPC, read-only
places, also as root) are one line with exit status 2 and leave no temporary file."""
from __future__ import annotations

import errno
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import xarray as xr

from bridge.cli import main
from bridge.errors import ResultsFileError
from bridge.io import open_run, write_run

FAST = ["--dataset", "digits", "--no-progress", "--set", "hidden=16"]


def _err(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


@pytest.fixture(scope="module")
def run_file(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "r.nc"
    assert main(["train", "bp", *FAST, "--epochs", "1", "--out", str(out)]) == 0
    return out


def _copy(src, dst):
    dst.write_bytes(src.read_bytes())
    return dst


def test_compare_and_plot_refuse_an_input_as_output(run_file, tmp_path, capsys):
    r = _copy(run_file, tmp_path / "r.nc")
    before = r.read_bytes()
    assert main(["compare", str(r), str(r), "--measure", "cka", "--out", str(r)]) == 2
    assert "also an input" in _err(capsys)
    assert main(["plot", str(r), "--out", str(r)]) == 2
    assert "also an input" in _err(capsys)
    assert r.read_bytes() == before


@pytest.mark.parametrize("make, fragment", [
    (lambda p: os.mkfifo(p), "not a regular file"),
    (lambda p: p.mkdir(), "is a directory"),
    (lambda p: p.write_text("my notes"), "not a ratespike results file"),
])
def test_train_refuses_outputs_it_would_destroy(tmp_path, capsys, make, fragment):
    p = tmp_path / "target"
    make(p)
    kind = p.lstat().st_mode
    assert main(["train", "bp", *FAST, "--epochs", "1", "--out", str(p)]) == 2
    assert fragment in _err(capsys)
    assert p.lstat().st_mode == kind
    assert not p.is_file() or p.read_text() == "my notes"


def test_device_node_and_folder_names_are_refused(tmp_path, capsys):
    assert main(["train", "bp", *FAST, "--epochs", "1", "--out", "/dev/null"]) == 2
    assert "not a regular file" in _err(capsys)
    assert os.path.exists("/dev/null") and not os.path.isfile("/dev/null")
    assert main(["train", "bp", *FAST, "--epochs", "1", "--out", str(tmp_path / "newdir") + "/"]) == 2
    assert "names a folder" in _err(capsys)
    assert not (tmp_path / "newdir").exists()


def test_png_never_replaces_a_results_file(run_file, tmp_path, capsys):
    r = _copy(run_file, tmp_path / "r.nc")
    other = _copy(run_file, tmp_path / "other.nc")
    assert main(["plot", str(r), "--out", str(other)]) == 2
    assert "not a PNG image" in _err(capsys)
    assert other.read_bytes() == run_file.read_bytes()


def test_read_only_places_are_refused_before_work_even_as_root(tmp_path, capsys):
    # /proc accepts no new files, also for root (os.access says it is writable for root)
    assert main(["train", "bp", *FAST, "--epochs", "1", "--out", "/proc/ratespike-test.nc"]) == 2
    assert "not writable" in _err(capsys)
    (tmp_path / "afile").write_text("x")
    assert main(["train", "bp", *FAST, "--epochs", "1", "--out", str(tmp_path / "afile" / "r.nc")]) == 2
    assert "cannot create output directory" in _err(capsys)


def test_a_failing_os_call_naming_a_file_is_one_line(monkeypatch, capsys):
    import bridge.commands.info as info

    def ro(args):
        raise OSError(errno.EROFS, "Read-only file system", "/ro/build")

    monkeypatch.setattr(info, "run", ro)
    assert main(["info", "x.nc"]) == 2
    assert "'/ro/build': Read-only file system" in _err(capsys)


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664)])
def test_file_modes_follow_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        ds = xr.Dataset({"a": ("x", [1.0])}, attrs={"ratespike_version": "t"})
        p = write_run(ds, tmp_path / "m.nc")
    finally:
        os.umask(old)
    assert p.stat().st_mode & 0o777 == mode


def test_enospc_from_netcdf_is_one_line_and_keeps_the_old_file(run_file, tmp_path, capsys, monkeypatch):
    r = _copy(run_file, tmp_path / "r.nc")
    before = r.read_bytes()

    def full(self, *a, **k):
        raise RuntimeError("NetCDF: HDF error")  # how netCDF4 reports ENOSPC

    monkeypatch.setattr(xr.Dataset, "to_netcdf", full)
    assert main(["train", "bp", *FAST, "--epochs", "1", "--out", str(r)]) == 2
    assert "cannot write" in _err(capsys)
    assert r.read_bytes() == before
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]


def test_enospc_in_checkpoint_and_png_writes(run_file, tmp_path, capsys, monkeypatch):
    import torch
    from matplotlib.figure import Figure

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full)
    assert main(["train", "bp", *FAST, "--epochs", "1", "--out", str(tmp_path / "c.nc")]) == 2
    err = _err(capsys)
    assert "cannot write checkpoint" in err and "No space left on device" in err, err
    monkeypatch.setattr(Figure, "savefig", full)
    assert main(["plot", str(run_file), "--out", str(tmp_path / "p.png")]) == 2
    assert "No space left on device" in _err(capsys)
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]


def test_a_complete_file_survives_a_new_run_that_dies(run_file, tmp_path):
    from bridge.config import replace_config
    from ratenets.data import load_digits
    from ratenets.rules import get_rule
    from ratenets.train import RunContext, fit

    r = _copy(run_file, tmp_path / "r.nc")
    before = r.read_bytes()
    rule = get_rule("bp")
    cfg = replace_config(rule.preset("digits"), {"epochs": 3, "hidden": (8,)})

    def die(epoch, metrics):
        if epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(rule, cfg, load_digits(), RunContext(dataset="digits", out=r), on_epoch=die)
    assert r.read_bytes() == before  # the old, complete run is intact; the new one's progress is in r.nc.ckpt
    assert (tmp_path / "r.nc.ckpt").is_file()
    fit(rule, cfg, load_digits(), RunContext(dataset="digits", out=r, resume=True))
    assert open_run(r).sizes["epoch"] == 3 and int(open_run(r).attrs["complete"]) == 1


def test_partial_results_are_marked_incomplete(tmp_path):
    from bridge.config import replace_config
    from ratenets.data import load_digits
    from ratenets.rules import get_rule
    from ratenets.train import RunContext, fit

    rule = get_rule("bp")
    cfg = replace_config(rule.preset("digits"), {"epochs": 3, "hidden": (8,)})
    out = tmp_path / "p.nc"

    def die(epoch, metrics):
        if epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(rule, cfg, load_digits(), RunContext(dataset="digits", out=out), on_epoch=die)
    ds = open_run(out)
    assert int(ds.attrs["complete"]) == 0 and ds.sizes["epoch"] == 1


def test_stale_temp_of_a_killed_writer_is_removed_by_the_next_write(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".r.nc.{socket.gethostname()}.{dead.pid}.beef.tmp"
    stale.write_bytes(b"half")
    alive = tmp_path / f".r.nc.{socket.gethostname()}.{os.getpid()}.cafe.tmp"
    alive.write_bytes(b"mine")
    write_run(xr.Dataset({"a": ("x", np.arange(3.0))}, attrs={"ratespike_version": "t"}), tmp_path / "r.nc")
    assert not stale.exists() and alive.exists()


def test_write_errors_are_results_file_errors(tmp_path, monkeypatch):
    def full(self, *a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(xr.Dataset, "to_netcdf", full)
    with pytest.raises(ResultsFileError, match="No space left"):
        write_run(xr.Dataset({"a": ("x", [1.0])}), tmp_path / "w.nc")
    assert os.listdir(tmp_path) == []


def test_broken_pipe_is_silent(run_file):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    p = subprocess.run(f"{sys.executable} -m bridge.cli info {run_file} | head -1", shell=True, capture_output=True,
                       text=True, env=env)
    assert "Traceback" not in p.stderr and "BrokenPipe" not in p.stderr, p.stderr


def test_a_typo_is_refused_without_importing_torch():
    code = ("import sys\nfrom bridge.cli import main\nrc = main(['train', 'bp', '--dataseet', 'x'])\n"
            "assert rc == 2, rc\nassert 'torch' not in sys.modules, 'torch imported'\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr
    assert "unrecognized arguments: --dataseet" in p.stderr


@pytest.mark.parametrize("argv, fragment", [
    (["--set", "lr=inf"], "finite number"),
    (["--set", "lr=nan"], "finite number"),
    (["--set", "hidden=100000000"], "memory"),
    (["--set", "hidden=10000000"], "memory"),
    (["--seeds", "0-1000000"], "more than 10000 seeds"),
    (["--seed", str(2**63)], "--seed must be in 0.."),
    (["--seeds", f"0,{2**64}"], "seeds must be in 0.."),
    (["--epochs", "3", "--set", "epochs=1"], "disagree"),
])
def test_extreme_values_are_refused_early(tmp_path, capsys, argv, fragment):
    assert main(["train", "bp", *FAST[:-2], "--epochs", "1", *argv, "--out", str(tmp_path / "x.nc")]
                if "--epochs" not in argv else ["train", "bp", *FAST[:-2], *argv, "--out", str(tmp_path / "x.nc")]) == 2
    assert fragment in _err(capsys)
    assert not (tmp_path / "x.nc").exists()


def test_compare_refuses_huge_seed_and_too_few_samples(run_file, tmp_path, capsys):
    assert main(["compare", str(run_file), str(run_file), "--seed", str(10**20), "--out", str(tmp_path / "c.nc")]) == 2
    assert "--seed must be in" in _err(capsys)
    from bridge.io import provenance
    from bridge.reps import groups_of, representation

    ds = xr.Dataset(attrs=provenance(kind="train", config_json="{}", seed=0))
    tiny = tmp_path / "tiny.nc"
    write_run(ds, tiny, groups=groups_of({"l": representation(np.random.default_rng(0).random((3, 2)), layer="l")}))
    assert main(["compare", str(tiny), str(tiny), "--measure", "cka-debiased", "--out", str(tmp_path / "c.nc")]) == 2
    assert "at least 4 samples" in _err(capsys)
    empty = tmp_path / "empty.nc"
    write_run(ds, empty, groups=groups_of({"l": representation(np.zeros((5, 0)), layer="l")}))
    assert main(["compare", str(empty), str(empty), "--out", str(tmp_path / "c.nc")]) == 2
    assert "has no units" in _err(capsys)


def test_short_idx_header_is_a_data_error(tmp_path):
    from bridge.errors import DataError
    from ratenets.data import read_idx

    p = tmp_path / "x-idx3-ubyte"
    p.write_bytes((2051).to_bytes(4, "big") + b"\x00\x00\x00\x01")
    with pytest.raises(DataError, match="IDX header needs 16 bytes"):
        read_idx(p)


def test_missing_data_root_is_not_left_behind(tmp_path, capsys, monkeypatch):
    import ratenets.data as D

    monkeypatch.setattr(D, "_download", lambda target, folder, make: (D._first_missing(target / folder) and
                                                                     D._remove_empty_dirs(D._first_missing(target / folder), set())) or OSError("offline"))
    root = tmp_path / "nosuch" / "root"
    assert main(["train", "bp", "--dataset", "mnist", "--data-root", str(root), "--no-progress", "--epochs", "1",
                 "--out", str(tmp_path / "m.nc")]) == 2
    assert "not found" in _err(capsys)
    assert not (tmp_path / "nosuch").exists()
