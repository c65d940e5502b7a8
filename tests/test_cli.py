"""The ratespike command line: train/info/demo, one-line errors with exit status 2, reproducibility, resume."""
from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from bridge.cli import main
from bridge.io import open_run

FAST = ["--dataset", "digits", "--no-progress", "--set", "hidden=32"]


def _err(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    return err


@pytest.mark.parametrize("argv, fragment", [
    (["nosuchcommand"], "unknown subcommand"),
    (["train", "nosuchrule", "--dataset", "digits"], "unknown rule"),
    (["train", "bp", "--dataset", "nosuchset"], "unknown dataset"),
    (["train", "bp", "--dataset", "digits", "--epochs", "0"], "epochs must be > 0"),
    (["train", "bp", "--dataset", "digits", "--epochs", "-1"], "epochs must be > 0"),
    (["train", "bp", "--dataset", "digits", "--set", "batch_size=0"], "batch_size must be > 0"),
    (["train", "bp", "--dataset", "digits", "--set", "lr=-0.1"], "lr must be > 0"),
    (["train", "bp", "--dataset", "digits", "--set", "lr=abc"], "expects a number"),
    (["train", "bp", "--dataset", "digits", "--set", "nosuch=1"], "unknown config field"),
    (["train", "bp", "--dataset", "digits", "--seeds", "3-1"], "runs backwards"),
    (["train", "bp", "--dataset", "digits", "--device", "tpu"], "unknown device"),
    (["train", "bp", "--dataset", "digits", "--epochs", "many"], "invalid int value"),
    (["info", "/nonexistent/file.nc"], "no such results file"),
])
def test_bad_input_is_one_line_and_exit_2(argv, fragment, capsys):
    assert main(argv) == 2
    err = _err(capsys)
    assert fragment in err and len(err.splitlines()) == 1, err


def test_unwritable_output_path_writes_nothing(tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    assert main(["train", "bp", *FAST, "--epochs", "1", "--out", str(tmp_path / "afile" / "r.nc")]) == 2
    assert "cannot create output directory" in _err(capsys)


def test_corrupt_netcdf_for_info(tmp_path, capsys):
    bad = tmp_path / "bad.nc"
    bad.write_text("not a netcdf file")
    assert main(["info", str(bad)]) == 2
    assert "not a readable NetCDF" in _err(capsys)


def test_train_writes_a_complete_run_file_and_info_reads_it(tmp_path, capsys):
    out = tmp_path / "bp.nc"
    assert main(["train", "bp", *FAST, "--epochs", "2", "--seed", "5", "--out", str(out)]) == 0
    ds = open_run(out)
    assert ds.attrs["rule"] == "bp" and ds.attrs["dataset"] == "digits" and ds.attrs["seed"] == 5
    assert '"hidden": [32]' in ds.attrs["config"] and "torch" in ds.attrs["package_versions"]
    assert ds["test_accuracy"].dims == ("epoch",) and ds.sizes["epoch"] == 2
    assert ds["train_loss"].dims == ("epoch",)
    assert float(ds["test_accuracy"][-1]) > 0.8  # digits, 64-32-10, 2 epochs
    assert not (tmp_path / "bp.nc.ckpt").exists()
    xr.open_dataset(out).close()
    capsys.readouterr()
    assert main(["info", str(out)]) == 0
    text = capsys.readouterr().out
    assert "test_accuracy(epoch)" in text and "representations/fc1" in text


def test_same_seed_same_file_and_other_seed_differs(tmp_path):
    paths = []
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        paths.append(tmp_path / f"{name}.nc")
        assert main(["train", "bp", *FAST, "--epochs", "1", "--seed", str(seed), "--out", str(paths[-1])]) == 0
    a, b, c = (open_run(p) for p in paths)
    for v in a.data_vars:
        np.testing.assert_array_equal(a[v].values, b[v].values)
    assert not np.array_equal(a["train_loss"].values, c["train_loss"].values)


def test_resume_refuses_a_checkpoint_of_another_config(tmp_path, capsys):
    full, part = tmp_path / "full.nc", tmp_path / "part.nc"
    assert main(["train", "bp", *FAST, "--epochs", "3", "--seed", "2", "--out", str(full)]) == 0
    assert main(["train", "bp", *FAST, "--epochs", "2", "--seed", "2", "--out", str(part),
                 "--keep-checkpoint"]) == 0
    # a resumed run must use the same config (only the epoch count may grow)
    assert main(["train", "bp", *FAST, "--epochs", "3", "--seed", "2", "--set", "lr=0.01", "--out", str(part),
                 "--resume"]) == 2
    assert "another config (lr" in _err(capsys)
    assert (tmp_path / "part.nc.ckpt").exists()


def test_resume_after_interruption_matches_an_uninterrupted_run(tmp_path):
    from ratenets.data import load_digits
    from ratenets.rules import get_rule
    from ratenets.train import RunContext, fit

    from bridge.config import replace_config

    rule = get_rule("bp")
    cfg = replace_config(rule.preset("digits"), {"epochs": 3, "hidden": (16,)})
    data = load_digits()
    ref, _ = fit(rule, cfg, data, RunContext(dataset="digits", seeds=(4,), out=tmp_path / "ref.nc"))

    calls = []

    def stop_after_two(epoch, metrics):
        calls.append(epoch)
        if epoch == 2:
            raise KeyboardInterrupt

    ctx = RunContext(dataset="digits", seeds=(4,), out=tmp_path / "run.nc")
    with pytest.raises(KeyboardInterrupt):
        fit(rule, cfg, data, ctx, on_epoch=stop_after_two)
    assert open_run(tmp_path / "run.nc").sizes["epoch"] == 2  # the finished epochs are on disk
    ctx.resume = True
    resumed, _ = fit(rule, cfg, data, ctx)
    np.testing.assert_allclose(resumed["test_accuracy"].values, ref["test_accuracy"].values)
    np.testing.assert_allclose(resumed["train_loss"].values, ref["train_loss"].values, rtol=1e-6)


def test_multi_seed_run_has_a_seed_dimension_and_matches_single_runs(tmp_path):
    multi, single = tmp_path / "m.nc", tmp_path / "s.nc"
    assert main(["train", "bp", *FAST, "--epochs", "1", "--seeds", "0-2", "--out", str(multi)]) == 0
    assert main(["train", "bp", *FAST, "--epochs", "1", "--seed", "1", "--out", str(single)]) == 0
    m, s = open_run(multi), open_run(single)
    assert m["test_accuracy"].dims == ("epoch", "seed") and m["seed"].values.tolist() == [0, 1, 2]
    assert list(m.attrs["seed"]) == [0, 1, 2]
    np.testing.assert_allclose(m["train_loss"].sel(seed=1).values, s["train_loss"].values, rtol=1e-4)
    assert len(np.unique(m["train_loss"].values)) == 3


def test_divergence_stops_naming_the_epoch_and_keeps_earlier_epochs(tmp_path, monkeypatch):
    import torch

    from bridge.config import replace_config
    from bridge.errors import DivergenceError
    from ratenets.data import load_digits
    from ratenets.rules import get_rule
    from ratenets.train import RunContext, fit

    rule = get_rule("bp")
    real = rule.train_batch

    def poisoned(self, x, y):
        loss = real(self, x, y)
        if self._epoch == 2:  # the weights blow up during epoch 2
            with torch.no_grad():
                self.params["W0"].fill_(float("nan"))
        return loss

    real_epoch = rule.train_epoch

    def tagged(self, epoch):
        self._epoch = epoch
        return real_epoch(self, epoch)

    monkeypatch.setattr(rule, "train_batch", poisoned)
    monkeypatch.setattr(rule, "train_epoch", tagged)
    cfg = replace_config(rule.preset("digits"), {"epochs": 3, "hidden": (16,)})
    out = tmp_path / "d.nc"
    with pytest.raises(DivergenceError, match="diverged in epoch 2"):
        fit(rule, cfg, load_digits(), RunContext(dataset="digits", out=out))
    assert open_run(out).sizes["epoch"] == 1


def test_corrupt_gz_in_the_data_root_is_exit_2(tmp_path, capsys):
    raw = tmp_path / "root" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):
        (raw / f"{name}.gz").write_bytes(b"\x1f\x8b\x08 this is not gzip data")
    out = tmp_path / "r.nc"
    assert main(["train", "bp", "--dataset", "mnist", "--data-root", str(tmp_path / "root"), "--epochs", "1",
                 "--no-progress", "--out", str(out)]) == 2
    assert "corrupt or truncated" in _err(capsys)
    assert not out.exists()
