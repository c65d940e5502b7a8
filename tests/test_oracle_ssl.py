"""Oracle tests of the self-supervised rules against the authors' own Python code (opt-in).

Each test imports the original from a local checkout named by an environment variable and feeds it and our
code the same features, weights and random draws in float64:

* ``RATESPIKE_LPL_ORIG``: a checkout of ``fmi-basel/latent-predictive-learning`` (``models/module.py``;
  written against commit 0210f55). The Lightning and pl_bolts imports of ``module.py`` are replaced by stubs,
  since only the loss methods are exercised.
* ``RATESPIKE_CLAPP_ORIG``: a checkout of ``EPFL-LCN/pub-illing2021-neurips`` (``vision/CLAPPVision/vision/
  models/ContrastiveLoss.py``; written against commit 73671e1). ``IPython`` is stubbed (imported, unused).

Absent variable: the tests skip and say which variable to set. A checkout of the wrong repository, or at a
commit other than the one the test was written against, fails with one line saying so (set
``RATESPIKE_ORACLE_ANY_COMMIT=1`` to run against another commit anyway). Nothing of the original is copied here.
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

LPL_COMMIT = "0210f55d72f11bb7c74e8823b829c32b93ecf57a"
CLAPP_COMMIT = "73671e1a093b7155d905f4c4e6efa5648cfdaa51"


def _checkout(var: str, marker: str, commit: str, repo: str) -> Path:
    path = os.environ.get(var)
    if not path:
        pytest.skip(f"set {var} to a local checkout of {repo} to run this oracle test")
    root = Path(path)
    if not (root / marker).is_file():
        pytest.fail(f"{var}={path} is not a checkout of {repo}: {marker} is missing", pytrace=False)
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        head = "unknown"
    if head != commit and os.environ.get("RATESPIKE_ORACLE_ANY_COMMIT") != "1":
        pytest.fail(f"{var}={path} is at commit {head}, the oracle test was written against {commit[:7]} of {repo} "
                    "(RATESPIKE_ORACLE_ANY_COMMIT=1 runs it anyway)", pytrace=False)
    return root


def _load(name: str, file: Path, stubs: dict[str, types.ModuleType], monkeypatch, sys_path: Path):
    for k, m in stubs.items():
        monkeypatch.setitem(sys.modules, k, m)
    monkeypatch.syspath_prepend(str(sys_path))
    spec = importlib.util.spec_from_file_location(name, file)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# ----------------------------------------------------------------------------------------------------------------
# LPL

@pytest.fixture
def lpl_orig(monkeypatch):
    root = _checkout("RATESPIKE_LPL_ORIG", "models/module.py", LPL_COMMIT, "fmi-basel/latent-predictive-learning")
    pl = types.ModuleType("pytorch_lightning")
    pl.LightningModule = torch.nn.Module
    bolts, opt, sched = (types.ModuleType(n) for n in ("pl_bolts", "pl_bolts.optimizers",
                                                        "pl_bolts.optimizers.lr_scheduler"))
    sched.LinearWarmupCosineAnnealingLR = object
    nets = types.ModuleType("models.networks")
    nets.LPLNet = object
    losses = _load("lpl_orig_losses", root / "metrics/losses.py", {}, monkeypatch, root)
    stubs = {"pytorch_lightning": pl, "pl_bolts": bolts, "pl_bolts.optimizers": opt,
             "pl_bolts.optimizers.lr_scheduler": sched, "models": types.ModuleType("models"),
             "models.networks": nets, "metrics": types.ModuleType("metrics"), "metrics.losses": losses}
    return _load("lpl_orig_module", root / "models/module.py", stubs, monkeypatch, root)


def _orig_lpl_step(mod, zs1, zs2, *, shuffle=False, stale=False, state=None):
    """Run the original ``LPL.loss_step`` on given per-layer features through a stand-in ``self``."""
    me = types.SimpleNamespace() if state is None else state
    me.hparams = types.SimpleNamespace(no_pooling=False, shuffle_positives=shuffle, stale_estimates=stale)
    me.network = lambda key: (None, None, {"v1": zs1, "v2": zs2}[key])
    me.predictive_loss = F.mse_loss
    me.push_loss_fn = lambda a, stale_var=None, stale_mean=None: mod.LPL.hebbian_loss(me, a, stale_var, stale_mean)
    me.decorr_loss = lambda a: mod.LPL.decorr_loss(me, a)
    if stale and state is None:
        me.first_epoch_flag, me.mean_estimates, me.var_estimates = True, [], []
    return mod.LPL.loss_step(me, (("v1", "v2", None), None)), me


def _features(seed: int, layers=3, b=16, m=6):
    g = torch.Generator().manual_seed(seed)
    mk = lambda: [torch.randn(b, m, generator=g, dtype=torch.float64).abs().requires_grad_(True)  # noqa: E731
                  for _ in range(layers)]
    return mk(), mk()


@pytest.mark.parametrize("variant", ["plain", "shuffle", "stale"])
def test_lpl_loss_terms_and_gradients_match_the_official_module(lpl_orig, variant):
    """Per-layer pull/push/decorr values and the gradient of the total loss, over two consecutive batches."""
    from ratenets.rules.lpl import LPL, LPLConfig, lpl_loss
    from ratenets.data import make_synthetic

    cfg = LPLConfig(epochs=1, batch_size=32, warmup_epochs=0.5, encoder="conv", conv_channels=(4, 8), flip_p=0.0,
                    blur_p=0.0, probe_train_images=20, shuffle_positives=variant == "shuffle",
                    stale_estimates=variant == "stale")
    rule = LPL(cfg, make_synthetic(n_train=64, n_test=16, size=16, seed=0), seeds=(0,))
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # the original accumulates the layer losses in default-dtype zeros
    try:
        state, worst = None, 0.0
        for step in range(2):
            zs1, zs2 = _features(10 + step)
            torch.manual_seed(100 + step)  # the original's torch.randperm for shuffled positives
            (pull, push, dec), state = _orig_lpl_step(lpl_orig, zs1, zs2, shuffle=variant == "shuffle",
                                                      stale=variant == "stale", state=state)
            total_o = 1.0 * pull.sum() + 1.0 * push.sum() + 10.0 * dec.sum()
            go = torch.autograd.grad(total_o, zs1 + zs2)
            rule._perm = torch.randperm(16, generator=torch.Generator().manual_seed(100 + step))
            a1 = [z.detach().clone().requires_grad_(True) for z in zs1]
            a2 = [z.detach().clone().requires_grad_(True) for z in zs2]
            total = 0.0
            for i in range(3):
                t = rule._terms(i, torch.cat([a1[i], a2[i]]), None, 0)
                for ours, theirs in ((t["pred"], pull[i]), (t["hebb"], push[i]), (t["decorr"], dec[i])):
                    worst = max(worst, abs(float(ours.detach()) - float(theirs.detach())))
                total = total + lpl_loss(t, 1.0, 1.0, 10.0)
            gs = torch.autograd.grad(total, a1 + a2)
            worst = max(worst, max(float((x - y).abs().max()) for x, y in zip(gs, go)))
    finally:
        torch.set_default_dtype(old)
    print(f"LPL {variant}: max abs difference {worst:.2e}")
    assert worst < 1e-12


# ----------------------------------------------------------------------------------------------------------------
# CLAPP

@pytest.fixture
def clapp_orig(monkeypatch):
    root = _checkout("RATESPIKE_CLAPP_ORIG", "vision/CLAPPVision/vision/models/ContrastiveLoss.py", CLAPP_COMMIT,
                     "EPFL-LCN/pub-illing2021-neurips")
    ipy = types.ModuleType("IPython")
    ipy.embed = lambda *a, **k: None
    return _load("clapp_orig_loss", root / "vision/CLAPPVision/vision/models/ContrastiveLoss.py", {"IPython": ipy},
                 monkeypatch, root / "vision")


def _clapp_opt():
    return types.SimpleNamespace(negative_samples=1, contrast_mode="hinge", gating_av_over_preds=False,
                                 detach_c=False, current_rep_as_negative=False, sample_negs_locally=True,
                                 sample_negs_locally_same_everywhere=True, either_pos_or_neg_update=True,
                                 freeze_W_pred=False, unfreeze_last_W_pred=False, weight_init=False,
                                 device=torch.device("cpu"), no_pred=False, no_gamma=False)


def _replay_pairs(seed_np: int, seed_t: int, b: int, grid, K: int, skip: int):
    """Our Pairs from the draws the original makes in one ``ContrastiveLoss.forward`` (same seeds, same order):
    one numpy coin per image, then per step k one torch partner per image (self allowed)."""
    from ratenets.rules.clapp import Pairs

    gy, gx = grid
    np.random.seed(seed_np)
    which = np.random.choice(["pos", "neg", "both"], size=b, replace=True, p=[0.5, 0.5, 0.0])
    torch.manual_seed(seed_t)
    pos = torch.tensor(which == "pos")
    out = []
    for k in range(1, K + 1):
        off = k + skip
        partner = torch.randint(b, (b,))
        bb, y, x = (t.reshape(-1) for t in torch.meshgrid(torch.arange(b), torch.arange(gy - off), torch.arange(gx),
                                                          indexing="ij"))
        ctx = bb * gy * gx + y * gx + x
        is_pos = pos[bb]
        tgt = torch.where(is_pos, ctx + off * gx, partner[bb] * gy * gx + (y + off) * gx + x)
        n_loc = (gy - off) * gx
        n_pos = int(pos.sum())
        w = torch.where(is_pos, torch.tensor(1.0 / (K * max(n_pos, 1) * n_loc), dtype=torch.float64),
                        torch.tensor(1.0 / (K * max(b - n_pos, 1) * n_loc), dtype=torch.float64))
        out.append(Pairs(ctx, tgt, torch.where(is_pos, 1.0, -1.0).double(), w))
    return out, partner


@pytest.mark.parametrize("asymmetric", [False, True])
def test_clapp_hinge_loss_and_sampling_match_the_original(clapp_orig, asymmetric):
    """The same features, W_k and draws: loss value and gradients wrt features and W_k agree in float64."""
    from ratenets.rules.clapp import hinge_loss

    b, C, gy, gx, K, skip = 8, 5, 6, 4, 3, 1
    g = torch.Generator().manual_seed(0)
    z = (0.3 * torch.randn(b, C, gy, gx, generator=g, dtype=torch.float64)).requires_grad_(True)
    Wp = 0.5 * torch.randn(K, C, C, generator=g, dtype=torch.float64)
    Wr = 0.5 * torch.randn(K, C, C, generator=g, dtype=torch.float64)
    loss_o = clapp_orig.ContrastiveLoss(_clapp_opt(), C, C, K).double()
    mirror_o = clapp_orig.ContrastiveLoss(_clapp_opt(), C, C, K).double()
    with torch.no_grad():
        for k in range(K):
            loss_o.W_k[k].weight.copy_(Wp[k][:, :, None, None])
            mirror_o.W_k[k].weight.copy_(Wr[k][:, :, None, None])
    np.random.seed(1)
    torch.manual_seed(2)
    if asymmetric:  # VGG_like_Encoder.evaluate_loss: loss(z, SG c) + loss_mirror(SG z, c), each its own draws
        lo, _, _ = loss_o(z, z.detach())
        state_np, state_t = np.random.get_state(), torch.get_rng_state()
        lm, _, _ = mirror_o(z.detach(), z)
        lo = lo + lm
    else:
        lo, _, _ = loss_o(z, z)
    params_o = [z] + [m.weight for m in loss_o.W_k] + ([m.weight for m in mirror_o.W_k] if asymmetric else [])
    go = torch.autograd.grad(lo, params_o)

    p1, _ = _replay_pairs(1, 2, b, (gy, gx), K, skip)
    if asymmetric:
        np.random.set_state(state_np)
        which2 = np.random.choice(["pos", "neg", "both"], size=b, p=[0.5, 0.5, 0.0])
        torch.set_rng_state(state_t)
        # rebuild the second call's pairs from its own (continued) streams
        p2 = _continue_pairs(which2, b, (gy, gx), K, skip)
    zz = z.detach().clone().requires_grad_(True)
    wp = Wp.clone().requires_grad_(True)
    wr = Wr.clone().requires_grad_(True)
    h = zz.permute(0, 2, 3, 1).reshape(-1, C)  # flat positions b*gy*gx + y*gx + x
    ours = hinge_loss(h, wp, wr if asymmetric else None, p1, p2 if asymmetric else None)
    gs = torch.autograd.grad(ours, [zz, wp] + ([wr] if asymmetric else []))
    worst = abs(float(ours) - float(lo))
    worst = max(worst, float((gs[0] - go[0]).abs().max()))
    worst = max(worst, max(float((gs[1][k] - go[1 + k][:, :, 0, 0]).abs().max()) for k in range(K)))
    if asymmetric:
        worst = max(worst, max(float((gs[2][k] - go[1 + K + k][:, :, 0, 0]).abs().max()) for k in range(K)))
    print(f"CLAPP asymmetric={asymmetric}: loss {float(lo):.6f}, max abs difference {worst:.2e}")
    assert worst < 1e-12


def _continue_pairs(which, b, grid, K, skip):
    from ratenets.rules.clapp import Pairs

    gy, gx = grid
    pos = torch.tensor(which == "pos")
    out = []
    for k in range(1, K + 1):
        off = k + skip
        partner = torch.randint(b, (b,))
        bb, y, x = (t.reshape(-1) for t in torch.meshgrid(torch.arange(b), torch.arange(gy - off), torch.arange(gx),
                                                          indexing="ij"))
        ctx = bb * gy * gx + y * gx + x
        is_pos = pos[bb]
        tgt = torch.where(is_pos, ctx + off * gx, partner[bb] * gy * gx + (y + off) * gx + x)
        n_loc, n_pos = (gy - off) * gx, int(pos.sum())
        w = torch.where(is_pos, torch.tensor(1.0 / (K * max(n_pos, 1) * n_loc), dtype=torch.float64),
                        torch.tensor(1.0 / (K * max(b - n_pos, 1) * n_loc), dtype=torch.float64))
        out.append(Pairs(ctx, tgt, torch.where(is_pos, 1.0, -1.0).double(), w))
    return out


def test_clapp_original_draws_a_partner_per_step_and_ours_too(clapp_orig):
    """Sampling structure: the original's saccade partner differs between prediction steps; so does ours."""
    from ratenets.rules.clapp import PatchCPCConfig, sample_pairs

    torch.manual_seed(3)
    loss_o = clapp_orig.ContrastiveLoss(_clapp_opt(), 4, 4, 5)
    seen = []
    z = torch.randn(32, 4, 7, 7)
    for k in range(1, 6):
        _, idx = loss_o.create_negative_samples(k, 1, z, z.permute(2, 3, 0, 1)[k + 1:], torch.device("cpu"))
        seen.append(idx)
    assert not all(torch.equal(seen[0], s) for s in seen[1:])
    pairs = sample_pairs(PatchCPCConfig(either_pos_or_neg=False), 32, (7, 7), torch.Generator().manual_seed(0))
    firsts = [p.tgt[p.sign < 0][0] // 49 for p in pairs]  # image 0's partner at each step
    parts = [torch.stack([p.tgt[(p.sign < 0) & (p.ctx // 49 == i)][0] // 49 for i in range(32)]) for p in pairs]
    assert len(firsts) == 5 and not all(torch.equal(parts[0], q) for q in parts[1:])
