"""Checkpoints: read with weights_only (crafted files run no code), checked against rule, config, dataset,
seeds and versions; a finished run can be extended; resumed runs equal uninterrupted ones bit for bit."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from bridge.cli import main
from bridge.io import open_run

FAST = ["--no-progress", "--set", "hidden=16"]


def _err(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


def _train(out, *extra, dataset="digits", rule="bp"):
    return main(["train", rule, "--dataset", dataset, *FAST, "--out", str(out), *extra])


def test_finished_run_is_extended_and_equals_a_longer_run(tmp_path):
    ref, run = tmp_path / "ref.nc", tmp_path / "run.nc"
    assert _train(ref, "--epochs", "2", "--seed", "1") == 0
    assert _train(run, "--epochs", "1", "--seed", "1") == 0
    assert not (tmp_path / "run.nc.ckpt").exists()
    assert _train(run, "--epochs", "2", "--seed", "1", "--resume") == 0
    a, b = open_run(ref), open_run(run)
    assert b.sizes["epoch"] == 2 and int(b.attrs["complete"]) == 1
    for v in a.data_vars:
        np.testing.assert_array_equal(a[v].values, b[v].values, err_msg=v)


@pytest.mark.parametrize("change, fragment", [
    (["--seed", "2"], "seed 1, not 2"),
    (["--seeds", "0-2"], "seed 1, not [0, 1, 2]"),
    (["--set", "lr=0.01"], "another config (lr"),
    (["--epochs", "1", "--set", "hidden=16"], None),  # fewer epochs than done is the only epochs refusal
])
def test_resume_refuses_another_run(tmp_path, capsys, change, fragment):
    out = tmp_path / "r.nc"
    assert _train(out, "--epochs", "2", "--seed", "1") == 0
    before = out.read_bytes()
    argv = ["--epochs", "3", "--seed", "1", "--resume"]
    for flag, val in zip(change[::2], change[1::2]):
        if flag in argv:
            argv[argv.index(flag) + 1] = val
        elif flag == "--seeds":
            i = argv.index("--seed")
            argv[i:i + 2] = [flag, val]
        else:
            argv += [flag, val]
    assert _train(out, *argv) == 2
    err = _err(capsys)
    assert (fragment or "more than the 1 asked for") in err, err
    assert out.read_bytes() == before


def test_resume_refuses_another_dataset_and_rule(tmp_path, capsys, data_root):
    out = tmp_path / "r.nc"
    assert _train(out, "--epochs", "1", "--keep-checkpoint") == 0
    assert main(["train", "bp", "--dataset", "mnist", "--data-root", str(data_root), *FAST, "--epochs", "2",
                 "--out", str(out), "--resume"]) == 2
    assert "trained on 'digits', not 'mnist'" in _err(capsys)
    assert main(["train", "fa", "--dataset", "digits", *FAST, "--epochs", "2", "--out", str(out), "--resume"]) == 2
    assert "of rule 'bp', not 'fa'" in _err(capsys)


def test_resume_refuses_other_code_versions(tmp_path, capsys, monkeypatch):
    import ratenets.train as T

    out = tmp_path / "r.nc"
    assert _train(out, "--epochs", "1", "--keep-checkpoint") == 0
    real = T.code_versions
    monkeypatch.setattr(T, "code_versions", lambda: {**real(), "torch": "0.0.1"})
    assert _train(out, "--epochs", "2", "--resume") == 2
    assert "other code versions (torch" in _err(capsys)


def test_crafted_checkpoint_runs_no_code(tmp_path, capsys):
    marker = tmp_path / "PWNED"

    class Boom:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    ckpt = tmp_path / "evil.nc.ckpt"
    ckpt.write_bytes(pickle.dumps({"rule": "bp", "x": Boom()}))
    assert _train(tmp_path / "evil.nc", "--epochs", "2", "--resume") == 2
    assert "cannot read checkpoint" in _err(capsys)
    assert not marker.exists()
    # the same through torch.save's zip format
    torch.save({"format": "ratespike-checkpoint-2", "x": Boom()}, ckpt)
    marker.unlink(missing_ok=True)
    assert _train(tmp_path / "evil.nc", "--epochs", "2", "--resume") == 2
    assert "cannot read checkpoint" in _err(capsys) and not marker.exists()


@pytest.mark.parametrize("payload, fragment", [
    (b"", "cannot read checkpoint"),
    (b"PK\x03\x04 truncated zip", "cannot read checkpoint"),
    (None, "not a ratespike checkpoint"),      # a valid torch file of another program
    ("damaged", "is damaged"),                 # our format with a field missing
])
def test_corrupt_checkpoints_are_one_line(tmp_path, capsys, payload, fragment):
    ckpt = tmp_path / "c.nc.ckpt"
    if payload is None:
        torch.save({"weights": torch.ones(3)}, ckpt)
    elif payload == "damaged":
        torch.save({"format": "ratespike-checkpoint-2", "rule": "bp"}, ckpt)
    else:
        ckpt.write_bytes(payload)
    assert _train(tmp_path / "c.nc", "--epochs", "2", "--resume") == 2
    assert fragment in _err(capsys)


def test_checkpoint_holds_only_plain_values(tmp_path):
    out = tmp_path / "r.nc"
    assert _train(out, "--epochs", "1", "--keep-checkpoint", "--seeds", "0-1") == 0
    state = torch.load(tmp_path / "r.nc.ckpt", weights_only=True)
    assert state["rule"] == "bp" and state["dataset"] == "digits" and state["seeds"] == [0, 1]
    assert set(state["versions"]) >= {"ratespike", "torch", "numpy"} and state["epoch"] == 1


def test_plain_round_trip_is_exact():
    import xarray as xr

    from ratenets.train import from_plain, to_plain

    da = xr.DataArray(np.random.default_rng(0).random((2, 3)), dims=("seed", "layer"),
                      coords={"seed": [0, 1], "layer": ["a", "b", "c"]}, attrs={"units": "1"})
    rs = np.random.RandomState(3).get_state()
    back = from_plain(to_plain({"da": da, "rs": rs, "big": 2**100, "g": np.float32(1.5)}))
    xr.testing.assert_identical(back["da"], da)
    np.testing.assert_array_equal(back["rs"][1], rs[1])
    assert back["big"] == 2**100 and back["g"] == 1.5


def test_epochs_flag_and_set_epochs_conflict(tmp_path, capsys):
    assert _train(tmp_path / "x.nc", "--epochs", "3", "--set", "epochs=1") == 2
    assert "disagree" in _err(capsys)
    assert not (tmp_path / "x.nc").exists()
