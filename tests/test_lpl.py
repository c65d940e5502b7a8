"""The LPL rule: layer-local gradients, variants, bad input, divergence, determinism, results contract."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import xarray as xr

from bridge.cli import main
from bridge.config import apply_overrides
from bridge.errors import ConfigError, DivergenceError
from ratenets.data import load_digits, make_synthetic
from ratenets.rules.lpl import LPL, LPLConfig, lpl_loss, lpl_terms
from ratenets.train import RunContext, fit


def _tiny(**kw) -> LPLConfig:
    base = dict(epochs=1, batch_size=32, warmup_epochs=0.5, encoder="conv", conv_channels=(4, 8), flip_p=0.0,
                blur_p=0.0, probe_train_images=200, probe_epochs=3, probe_lr=1e-2, eval_batch_size=128)
    base.update(kw)
    return LPLConfig(**base)


def _data(n_train=128, n_test=64):
    return make_synthetic(n_train=n_train, n_test=n_test, size=16, seed=0)


def _grads(rule):
    return {k: p.grad.detach().clone() for k, p in rule.encoder.named_parameters() if p.grad is not None}


def test_block_by_block_backward_equals_summed_detached_losses():
    torch.manual_seed(0)
    data = _data()
    rule = LPL(_tiny(), data, seeds=(0,))
    x = data.x_train[:16]
    v1, v2 = rule.views.pair(x, torch.Generator().manual_seed(1))
    params0 = {k: p.detach().clone() for k, p in rule.encoder.named_parameters()}
    rule.opt.step = lambda: None  # keep the weights, inspect the gradients
    rule.train_step(v1, v2, None)
    got = _grads(rule)
    # reference: one backward through all blocks with detached block inputs and summed layer losses
    ref_enc = type(rule.encoder)(
        [type(b)(b.conv.in_channels, b.conv.out_channels, b.pools) for b in rule.encoder.blocks],
        rule.encoder.layer_names, rule.encoder.widths)
    ref_enc.load_state_dict(params0)
    outs = ref_enc(torch.cat([v1, v2]), detach_between=True)
    total = 0
    for out in outs.values():
        z = out.mean(dim=(2, 3))
        total = total + lpl_loss(lpl_terms(z[:16], z[16:]), 1.0, 1.0, 10.0)
    total.backward()
    for k, p in ref_enc.named_parameters():
        assert torch.allclose(got[k], p.grad, rtol=1e-5, atol=1e-7), k


def test_layer_local_blocks_see_only_their_own_loss_and_end_to_end_reaches_all():
    data = _data()
    x = data.x_train[:16]

    def first_block_grad(**kw):
        torch.manual_seed(0)
        rule = LPL(_tiny(**kw), data, seeds=(0,))
        rule.opt.step = lambda: None
        v1, v2 = rule.views.pair(x, torch.Generator().manual_seed(1))
        rule.train_step(v1, v2, None)
        return rule.encoder.blocks[0].conv.weight.grad.clone()

    local = first_block_grad()
    e2e = first_block_grad(end_to_end=True)
    assert torch.count_nonzero(e2e) > 0
    assert not torch.allclose(local, e2e)
    # layer-local: changing the second block must leave the first block's gradient unchanged
    torch.manual_seed(0)
    rule = LPL(_tiny(), data, seeds=(0,))
    with torch.no_grad():
        rule.encoder.blocks[1].conv.weight.mul_(-3.0)
    rule.opt.step = lambda: None
    v1, v2 = rule.views.pair(x, torch.Generator().manual_seed(1))
    rule.train_step(v1, v2, None)
    assert torch.allclose(rule.encoder.blocks[0].conv.weight.grad, local)


VARIANTS = [dict(pred_coeff=0.0), dict(hebb_coeff=0.0), dict(decorr_coeff=0.0), dict(shuffle_positives=True),
            dict(stale_estimates=True), dict(no_pooling=True), dict(projector=True, projector_dims=(16, 8)),
            dict(objective="negsample"), dict(end_to_end=True), dict(objective="supervised"),
            dict(objective="supervised", end_to_end=True), dict(views="sequence", seq_length=3),
            dict(pred_form="stopgrad"), dict(encoder="mlp", mlp_hidden=(16, 16)), dict(baseline="pixels"),
            dict(baseline="random_init")]


@pytest.mark.parametrize("kw", VARIANTS, ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()))
def test_every_variant_trains_and_reports_per_layer(kw):
    ds, rule = fit(LPL, _tiny(**kw), _data(), RunContext(dataset="synthetic"))
    assert ds["test_accuracy"].dims == ("epoch", "layer")
    assert ds["participation_ratio"].dims == ("epoch", "layer")
    for v in ("mean_activity", "dead_fraction", "participation_ratio_all_units"):
        assert ds[v].dims == ("epoch", "layer")
    assert np.isfinite(ds["train_loss"].values).all()
    want = ["pixels"] if kw.get("baseline") == "pixels" else list(rule.encoder.layer_names)
    assert list(ds["layer"].values) == want
    assert ((ds["test_accuracy"] >= 0) & (ds["test_accuracy"] <= 1)).all()


def test_baselines_train_nothing():
    torch.manual_seed(0)
    data = _data()
    rule = LPL(_tiny(baseline="random_init"), data, seeds=(0,))
    before = {k: v.clone() for k, v in rule.encoder.state_dict().items()}
    rule.train_epoch(1)
    assert all(torch.equal(before[k], v) for k, v in rule.encoder.state_dict().items())


@pytest.mark.parametrize("changes,match", [
    (dict(pred_coeff=0.0, hebb_coeff=0.0, decorr_coeff=0.0), "all 0"),
    (dict(hebb_coeff=-1.0), "hebb_coeff must be"),
    (dict(batch_size=1), "batch_size"),
    (dict(no_pooling=True, projector=True), "no_pooling"),
    (dict(grey_p=2.0), "grey_p"),
])
def test_bad_configs(changes, match):
    with pytest.raises(ConfigError, match=match):
        dataclasses.replace(LPLConfig(), **changes)


def test_image_too_small_and_unknown_probe_layer():
    digits = load_digits()
    with pytest.raises(ConfigError, match="too small for encoder 'vgg11'"):
        LPL(_tiny(encoder="vgg11"), digits, seeds=(0,))
    with pytest.raises(ConfigError, match="'conv7'"):
        LPL(_tiny(probe_layers=("conv7",)), _data(), seeds=(0,))


@pytest.mark.parametrize("args,match", [
    (["--set", "pred_coeff=0", "--set", "hebb_coeff=0", "--set", "decorr_coeff=0"], "all 0"),
    (["--set", "decorr_coeff=-2"], "decorr_coeff must be"),
    (["--set", "encoder=vgg11"], "too small"),
    (["--set", "probe_layers=conv9"], "conv9"),
])
def test_cli_bad_input_is_one_line_exit_2(args, match, tmp_path, capsys):
    out = tmp_path / "r.nc"
    rc = main(["train", "lpl", "--dataset", "digits", "--epochs", "1", "--out", str(out), *args])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert err.startswith("ratespike: error:") and match in err and "Traceback" not in err
    assert len(err.splitlines()) == 1
    assert not out.exists()


def test_nan_loss_names_layer_and_epoch_and_keeps_last_checkpoint(tmp_path):
    out = tmp_path / "run.nc"
    ctx = RunContext(dataset="synthetic", out=out)
    data = _data()

    def poison(epoch, metrics):
        if epoch == 1:  # after epoch 1 is checkpointed, make the second block produce NaN
            with torch.no_grad():
                rule_holder[0].encoder.blocks[1].conv.bias.fill_(float("nan"))

    rule_holder = []
    orig_init = LPL.__init__

    def init(self, *a, **k):
        orig_init(self, *a, **k)
        rule_holder.append(self)

    LPL.__init__ = init
    try:
        with pytest.raises(DivergenceError, match=r"layer conv2 .* epoch 2"):
            fit(LPL, _tiny(epochs=3), data, ctx, on_epoch=poison)
    finally:
        LPL.__init__ = orig_init
    state = torch.load(ctx.checkpoint_path(), weights_only=True)
    assert state["epoch"] == 1
    assert torch.isfinite(state["runs"][0]["state"]["encoder"]["blocks.1.conv.bias"]).all()
    assert xr.open_dataset(out).sizes["epoch"] == 1


def test_same_seed_same_result_and_resume(tmp_path):
    cfg = _tiny(epochs=2)
    data = _data()
    a, _ = fit(LPL, cfg, data, RunContext(dataset="synthetic"))
    b, _ = fit(LPL, cfg, data, RunContext(dataset="synthetic"))
    xr.testing.assert_identical(a.drop_attrs(), b.drop_attrs())
    out = tmp_path / "r.nc"

    def stop(epoch, metrics):
        if epoch == 1:
            raise KeyboardInterrupt  # the run is killed after epoch 1 was checkpointed

    with pytest.raises(KeyboardInterrupt):
        fit(LPL, cfg, data, RunContext(dataset="synthetic", out=out), on_epoch=stop)
    c, _ = fit(LPL, cfg, data, RunContext(dataset="synthetic", out=out, resume=True))
    np.testing.assert_allclose(c["test_accuracy"].values, a["test_accuracy"].values, rtol=0, atol=1e-6)
    np.testing.assert_allclose(c["train_loss"].values, a["train_loss"].values, rtol=1e-6)


def test_cli_results_contract(tmp_path, capsys):
    out = tmp_path / "lpl.nc"
    rc = main(["train", "lpl", "--dataset", "digits", "--epochs", "1", "--out", str(out),
               "--set", "probe_epochs=5"])
    assert rc == 0
    ds = xr.open_dataset(out)
    assert ds.attrs["rule"] == "lpl" and ds.attrs["dataset"] == "digits"
    for v in ("test_accuracy", "participation_ratio", "mean_activity", "dead_fraction"):
        assert ds[v].dims == ("epoch", "layer")
    assert list(ds["layer"].values) == ["conv1", "conv2"]
    rep = xr.open_dataset(out, group="representations/conv2")
    assert rep["response"].dims == ("stimulus", "unit") and rep.sizes["unit"] == 32


def test_set_switches_terms():
    cfg = apply_overrides(LPL.preset("mnist"), ["hebb_coeff=0"])
    assert cfg.hebb_coeff == 0 and cfg.pred_coeff == 1 and cfg.decorr_coeff == 10
    paper = LPL.preset("cifar10")
    assert (paper.encoder, paper.batch_size, paper.lr, paper.weight_decay, paper.epochs) == (
        "vgg11", 1024, 1e-3, 1.5e-6, 800)


def test_eval_py_probe_holds_out_its_images_and_zscore_does_not():
    """eval.py probe: the probe's images are a held-out split never used in self-supervised training."""
    data = _data(n_train=100)
    off = LPL(_tiny(probe_train_images=50), data, seeds=(0,))
    assert off.n_probe == 20  # 0.2 x 100, below the cap
    assert len(off.x_ssl) == 80 and torch.equal(off.x_ssl, data.x_train[20:])
    z = LPL(_tiny(probe="zscore", probe_train_images=50), data, seeds=(0,))
    assert z.n_probe == 50 and torch.equal(z.x_ssl, data.x_train)


def test_shuffled_positives_use_a_random_permutation_and_roll_is_an_option():
    data = _data()
    x = data.x_train[:16]
    seen = {}
    for form in ("permutation", "roll"):
        rule = LPL(_tiny(shuffle_positives=True, shuffle_form=form, batch_size=16), data, seeds=(0,))
        v1, v2 = rule.views.pair(x, torch.Generator().manual_seed(1))
        rule.train_step(v1, v2, None)
        seen[form] = rule._perm
    perm = seen["permutation"]
    assert perm is not None and sorted(perm.tolist()) == list(range(16))
    steps = {(int(perm[i]) - i) % 16 for i in range(16)}
    assert len(steps) > 1  # a cyclic roll has a single shift
    assert seen["roll"] is None


def test_stale_estimates_average_the_views_and_leave_decorrelation_on_the_batch_mean():
    from ratenets.rules.lpl import decorrelation_loss, stale_update

    g = torch.Generator().manual_seed(3)
    z1, z2 = torch.randn(12, 4, generator=g, dtype=torch.float64), torch.randn(12, 4, generator=g, dtype=torch.float64) + 2
    m, v = stale_update(z1, z2)
    assert torch.allclose(m, 0.5 * (z1.mean(0) + z2.mean(0)))
    assert torch.allclose(v, 0.5 * (z1.var(0) + z2.var(0)))
    assert not torch.allclose(v, torch.cat([z1, z2]).var(0))  # pooling both views would differ
    t = lpl_terms(z1, z2, mean=m + 5, var=v)
    assert float(t["decorr"]) == pytest.approx(0.5 * float(decorrelation_loss(z1) + decorrelation_loss(z2)))
