"""The explicit three-factor CLAPP rule (Illing et al. 2021, Eqs. 6-8) equals autograd of the layer loss.

The original ``compare_updates.py`` only printed the relative difference, for layers 1 and 3 and a
symmetric W. Here it is asserted (relative error < 1e-5, float64) for symmetric and asymmetric prediction
matrices, with and without max-pooling, for the first and a deeper layer, and for both samplers.
"""
from __future__ import annotations

import dataclasses

import pytest
import torch

from ratenets.encoders.patches import ConvBlock, extract_patches, pooled
from ratenets.rules.clapp import PatchCPCConfig, hinge_loss, sample_pairs, three_factor_grads

CLAPP = dict(asymmetric_w=True, either_pos_or_neg=True, negatives="saccade", negative_samples=1)
CLAPP_S = dict(asymmetric_w=False, either_pos_or_neg=False, negatives="anywhere", negative_samples=3)


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    """||a - b|| / (||a|| + ||b||), the measure of the original compare_updates.py."""
    return float((a - b).norm() / (a.norm() + b.norm()))


def _setup(deeper: bool, pool: bool, seed: int = 0):
    torch.manual_seed(seed)
    batch, img, patch, stride = 5, 12, 6, 2  # 4x4 grid of 6x6 patches
    x = torch.randn(batch, 1, img, img, dtype=torch.float64)
    patches, grid = extract_patches(x, patch, stride)  # (batch*16, 1, 6, 6)
    if deeper:
        below = ConvBlock(1, 4, pool=False).double()
        x_in = below(patches).detach()  # (n, 4, 6, 6): the detached output of layer 1
        block = ConvBlock(4, 6, pool=pool).double()
    else:
        x_in = patches
        block = ConvBlock(1, 6, pool=pool).double()
    return block, x_in, grid, batch


@pytest.mark.parametrize("variant", ["symmetric", "asymmetric", "asymmetric_per_layer_coin", "clapp_s"])
@pytest.mark.parametrize("pool", [False, True])
@pytest.mark.parametrize("deeper", [False, True])
def test_explicit_rule_equals_autograd(variant: str, pool: bool, deeper: bool) -> None:
    block, x_in, grid, batch = _setup(deeper, pool)
    kind = CLAPP_S if variant == "clapp_s" else CLAPP
    cfg = PatchCPCConfig(**{**kind, "asymmetric_w": variant.startswith("asym")}, prediction_steps=2,
                         patch_size=6, patch_stride=2, batch_size=batch)
    gen = torch.Generator().manual_seed(3)
    K, C = cfg.prediction_steps, block.conv.out_channels
    # scale W so that scores are O(1): some hinges active, some not
    w_pred = (torch.randn(K, C, C, dtype=torch.float64, generator=gen) * 2.0).requires_grad_()
    w_retro = None
    if cfg.asymmetric_w:
        w_retro = (torch.randn(K, C, C, dtype=torch.float64, generator=gen) * 2.0).requires_grad_()
    p1 = [p.to(torch.device("cpu"), torch.float64) for p in sample_pairs(cfg, batch, grid, gen)]
    p2 = ([p.to(torch.device("cpu"), torch.float64) for p in sample_pairs(cfg, batch, grid, gen)]
          if variant == "asymmetric_per_layer_coin" else p1)

    h = pooled(block(x_in), grid).reshape(-1, C)  # (batch*gy*gx, C)
    loss = hinge_loss(h, w_pred, w_retro, p1, p2)
    loss.backward()
    rule = three_factor_grads(block, x_in, grid, w_pred.detach(),
                              None if w_retro is None else w_retro.detach(), p1, p2)

    auto = {"conv.weight": block.conv.weight.grad, "conv.bias": block.conv.bias.grad, "W_pred": w_pred.grad}
    if w_retro is not None:
        auto["W_retro"] = w_retro.grad
    assert set(rule) == set(auto)
    for name, g in auto.items():
        assert g.norm() > 0, f"{name}: zero gradient, the case tests nothing"
        assert rel_err(rule[name], g) < 1e-5, f"{name}: relative error {rel_err(rule[name], g):.2e}"


def test_rule_differs_when_a_factor_is_dropped() -> None:
    """Control: dropping the retrodiction term (as --detach_c would) breaks the equality, so the test can fail."""
    block, x_in, grid, batch = _setup(deeper=False, pool=True)
    cfg = PatchCPCConfig(**CLAPP, prediction_steps=2, patch_size=6, patch_stride=2, batch_size=batch)
    gen = torch.Generator().manual_seed(3)
    C = block.conv.out_channels
    w = torch.randn(2, C, C, dtype=torch.float64, generator=gen) * 2.0
    w2 = torch.randn(2, C, C, dtype=torch.float64, generator=gen) * 2.0
    pairs = [p.to(torch.device("cpu"), torch.float64) for p in sample_pairs(cfg, batch, grid, gen)]
    full = three_factor_grads(block, x_in, grid, w, w2, pairs)
    no_retro = three_factor_grads(block, x_in, grid, w, torch.zeros_like(w2), pairs)
    assert rel_err(full["conv.weight"], no_retro["conv.weight"]) > 1e-3


def test_pairs_saccade_properties() -> None:
    """Saccade negatives: same row and column of another image; one coin and one partner per image."""
    cfg = dataclasses.replace(PatchCPCConfig(), prediction_steps=2, batch_size=8)
    gen = torch.Generator().manual_seed(0)
    gy, gx, batch = 7, 7, 8
    pairs = sample_pairs(cfg, batch, (gy, gx), gen)
    for off, p in zip(cfg.offsets, pairs):
        cb, cpos = p.ctx // (gy * gx), p.ctx % (gy * gx)
        tb, tpos = p.tgt // (gy * gx), p.tgt % (gy * gx)
        assert torch.equal(tpos, cpos + off * gx)  # same column, off rows below
        assert torch.equal(tb == cb, p.sign > 0)  # positive iff same image (self excluded from negatives)
        for b in range(batch):
            m = cb == b
            assert len(set(tb[m].tolist())) == 1 and len(set(p.sign[m].tolist())) == 1
        # weights: positive and negative hinges each average to 1/K over their pairs
        for s in (1.0, -1.0):
            w = p.weight[p.sign == s].sum()
            if (p.sign == s).any():
                assert abs(float(w) - 1 / cfg.prediction_steps) < 1e-6


def test_saccade_partner_drawn_per_step() -> None:
    """The original draws a new saccade partner for every prediction step k (rand_index inside the k loop)."""
    cfg = dataclasses.replace(PatchCPCConfig(), prediction_steps=5, batch_size=32, either_pos_or_neg=False)
    gy, gx = 7, 7
    pairs = sample_pairs(cfg, 32, (gy, gx), torch.Generator().manual_seed(0))
    partners = []
    for p in pairs:
        neg = p.sign < 0
        cb, tb = p.ctx[neg] // (gy * gx), p.tgt[neg] // (gy * gx)
        part = torch.full((32,), -1)
        part[cb] = tb
        partners.append(part)
    assert all((p >= 0).all() for p in partners)
    assert not all(torch.equal(partners[0], q) for q in partners[1:])  # one shared draw would fail here


def test_random_crop_offset_per_image() -> None:
    """Training crops: each image of a batch gets its own offset (the original's per-image RandomCrop)."""
    from ratenets.rules.clapp import CLAPP
    from ratenets.data import ImageDataset

    cfg = dataclasses.replace(CLAPP.preset("digits"), crop_size=6, patch_size=4, patch_stride=1,
                              prediction_steps=1)
    x = torch.arange(64, dtype=torch.uint8).view(1, 1, 8, 8).repeat(16, 1, 1, 1)  # identical images
    y = torch.zeros(16, dtype=torch.long)
    data = ImageDataset("toy", x, y, x, y, tuple("0123456789"))
    rule = CLAPP(cfg, data, seeds=(0,), device=torch.device("cpu"))
    out = rule.prepare(x, train=True)
    assert out.shape == (16, 1, 6, 6)
    corners = {float(v) for v in out[:, 0, 0, 0]}
    assert len(corners) > 1  # one offset per batch would give one corner value
    full = (x[0].float() / 255.0 - cfg.mean) / cfg.std  # (1, 8, 8)
    windows = [full[:, oy:oy + 6, ox:ox + 6] for oy in range(3) for ox in range(3)]
    for i in range(16):  # every crop is a contiguous 6x6 window of the image
        assert any(torch.allclose(out[i], w) for w in windows)
    test = rule.prepare(x, train=False)
    assert torch.equal(test, test[:1].expand_as(test))  # evaluation: the same centre crop for all


def test_pairs_anywhere_excludes_positive() -> None:
    cfg = PatchCPCConfig(**CLAPP_S, prediction_steps=1, batch_size=2)
    gen = torch.Generator().manual_seed(1)
    (p,) = sample_pairs(cfg, 2, (3, 2), gen)  # 2 images, one context row of 2 -> 4 futures, 3 negatives each
    neg = p.sign < 0
    own = p.ctx + 2 * 2
    assert not (p.tgt[neg] == own[neg]).any()
    assert torch.allclose(p.weight[neg].sum(), torch.tensor(1.0)) and torch.allclose(p.weight[~neg].sum(),
                                                                                     torch.tensor(1.0))
