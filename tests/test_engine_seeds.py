"""One seed loop for every rule family: `--seeds` gives a seed dimension on every metric, representations of
every seed, one checkpoint per run, nothing left behind; each seed equals its run alone, bit for bit."""
from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest
import xarray as xr

from bridge.config import apply_overrides
from bridge.io import list_groups, open_group, open_run
from ratenets.data import load_digits, make_synthetic
from ratenets.rules import get_rule
from ratenets.train import RunContext, fit


def _family(name: str):
    """(rule class, tiny config, data) for one member of each rule family."""
    cls = get_rule(name)
    if name == "lpl":
        from ratenets.rules.lpl import LPLConfig

        cfg = LPLConfig(epochs=2, batch_size=32, warmup_epochs=0.5, encoder="conv", conv_channels=(4, 8),
                        flip_p=0.0, blur_p=0.0, probe_train_images=200, probe_epochs=2, probe_lr=1e-2,
                        eval_batch_size=128)
        return cls, cfg, make_synthetic(n_train=128, n_test=64, size=16, seed=0), "synthetic"
    if name == "dpc":
        from ratenets.rules.dpc import cpu_preset

        cfg = dataclasses.replace(cpu_preset(), epochs=2, unexpected_onset_epoch=2, img_px=32, canvas_px=32,
                                  feature_dim=8, batch_size=4, train_clips=8, probe_clips_per_type=8)
        return cls, cfg, cls.load_data(cfg, "gabor", None), "gabor"
    if name in ("clapp", "clapp-s", "hinge-cpc"):
        cfg = apply_overrides(cls.preset("digits"), ["epochs=2", "train_size=160", "probe_epochs=2"])
        return cls, cfg, cls.load_data(cfg, "digits", None), "digits"
    cfg = apply_overrides(cls.preset("digits"), ["epochs=2", "hidden=16"])
    return cls, cfg, load_digits(), "digits"


def _assert_seed_equals_single(multi: xr.Dataset, single: xr.Dataset, seed: int) -> None:
    for v in single.data_vars:
        np.testing.assert_array_equal(multi[v].sel(seed=seed).values, single[v].values, err_msg=v)


@pytest.mark.parametrize("name", ["bp", "lpl", "clapp", "hinge-cpc", "dpc"])
def test_seeds_for_every_family(name, tmp_path):
    cls, cfg, data, dataset = _family(name)
    out = tmp_path / "m.nc"
    multi, _ = fit(cls, cfg, data, RunContext(dataset=dataset, seeds=(3, 5), out=out))
    single, _ = fit(cls, cfg, data, RunContext(dataset=dataset, seeds=(5,), out=tmp_path / "s.nc"))
    on_disk = open_run(out)
    assert int(on_disk.attrs["complete"]) == 1 and on_disk.sizes["epoch"] == 2
    for v in on_disk.data_vars:
        if "epoch" in on_disk[v].dims:
            assert "seed" in on_disk[v].dims, f"{name}: {v} has no seed dimension"
    assert on_disk["seed"].values.tolist() == [3, 5]
    if name == "bp":  # batched seeds: one matmul per seed slice, equal to the single run within float rounding
        np.testing.assert_allclose(multi["train_loss"].sel(seed=5).values, single["train_loss"].values, rtol=1e-5)
    else:             # unbatched: the engine gives every seed its own random streams, so bit for bit
        _assert_seed_equals_single(multi, single, 5)
    groups = list_groups(out)
    layers = [g.split("/", 1)[1] for g in groups if g.startswith("representations/")]
    assert layers, f"{name}: no representation groups"
    for layer in layers:
        assert f"representations_seed5/{layer}" in groups
        a = open_group(out, f"representations_seed5/{layer}")
        b = open_group(tmp_path / "s.nc", f"representations/{layer}")
        assert int(a.attrs["seed"]) == 5
        if name == "bp":
            np.testing.assert_allclose(a["response"].values, b["response"].values, rtol=1e-5, atol=1e-6)
        else:
            np.testing.assert_array_equal(a["response"].values, b["response"].values)
        first = open_group(out, f"representations/{layer}")
        assert int(first.attrs["seed"]) == 3
    assert "checkpoint" in groups  # the final state, for --resume to extend the run
    assert sorted(os.listdir(tmp_path)) == ["m.nc", "m.nc.ckpt", "s.nc", "s.nc.ckpt"]  # one checkpoint per run


@pytest.mark.parametrize("name", ["corinfomax", "ep", "pc", "fa", "csm", "pc-nudge"])
def test_batched_rules_give_representations_of_every_seed(name, tmp_path):
    cls = get_rule(name)
    cfg = apply_overrides(cls.preset("digits"), ["epochs=1", "hidden=12"])
    data = load_digits()
    fit(cls, cfg, data, RunContext(dataset="digits", seeds=(0, 1), out=tmp_path / "m.nc"))
    fit(cls, cfg, data, RunContext(dataset="digits", seeds=(1,), out=tmp_path / "s.nc"))
    groups = list_groups(tmp_path / "m.nc")
    layers = [g.split("/", 1)[1] for g in groups if g.startswith("representations/")]
    for layer in layers:
        a = open_group(tmp_path / "m.nc", f"representations_seed1/{layer}")["response"].values
        b = open_group(tmp_path / "s.nc", f"representations/{layer}")["response"].values
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_cli_seeds_on_an_unbatched_rule_leaves_no_checkpoint(tmp_path):
    from bridge.cli import main

    out = tmp_path / "c.nc"
    assert main(["train", "clapp", "--dataset", "digits", "--epochs", "1", "--seeds", "0-1", "--no-progress",
                 "--set", "train_size=160", "--set", "probe_epochs=2", "--out", str(out)]) == 0
    assert sorted(os.listdir(tmp_path)) == ["c.nc"]
    assert open_run(out)["test_accuracy"].dims[:2] == ("epoch", "seed")
