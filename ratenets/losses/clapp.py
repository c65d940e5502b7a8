"""The CLAPP hinge loss (Illing, Ventura, Bellec & Gerstner, NeurIPS 2021, Eq. 3): pure functions of tensors.

A layer's pooled features ``h`` ``(positions, C)`` are scored in explicit pairs (context position, target
position, sign, weight; :class:`Pairs`) by ``u = c^T W_k z`` and penalised by ``relu(1 - s u)``. Drawing the
pairs (saccade or anywhere negatives, the coin) is the rule's business (:func:`ratenets.rules.clapp.sample_pairs`);
CLAPP, CLAPP-s and Hinge-CPC all score them here.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Pairs:
    """Scored (context, target) pairs of one prediction step, on flat grid positions ``b * gy * gx + y * gx + x``.

    Attributes
    ----------
    ctx, tgt : LongTensor, shape (m,)
        Flat positions of the context and of the scored future.
    sign : tensor, shape (m,)
        +1 for the true future, -1 for a negative.
    weight : tensor, shape (m,)
        Weight of the pair's hinge in the layer loss (the averaging of the paper, including 1/K).
    """

    ctx: torch.Tensor
    tgt: torch.Tensor
    sign: torch.Tensor
    weight: torch.Tensor

    def to(self, device: torch.device, dtype: torch.dtype) -> "Pairs":
        return Pairs(self.ctx.to(device), self.tgt.to(device), self.sign.to(device, dtype),
                     self.weight.to(device, dtype))


def pair_scores(h_ctx: torch.Tensor, h_tgt: torch.Tensor, W: torch.Tensor, pairs: Pairs) -> torch.Tensor:
    """Scores ``u = c^T W z`` of the pairs; ``h_*`` are flat features ``(positions, C)``, ``W`` ``(C, C)``."""
    wz = h_tgt @ W.T  # (positions, C): retrodiction W z at every position
    return (h_ctx[pairs.ctx] * wz[pairs.tgt]).sum(-1)


def hinge_loss(h: torch.Tensor, W_pred: torch.Tensor, W_retro: torch.Tensor | None,
               pairs_pred: list[Pairs], pairs_retro: list[Pairs] | None = None) -> torch.Tensor:
    """The layer-local CLAPP loss (Eq. 3) of flat pooled features ``h`` ``(positions, C)``.

    Parameters
    ----------
    W_pred : tensor, shape (K, C, C)
        Prediction matrices. Symmetric variant (``W_retro is None``): the one W, gradients reach c and z.
    W_retro : tensor, shape (K, C, C) or None
        Asymmetric variant: ``L = hinge(SG(c), z; W_pred) + hinge(c, SG(z); W_retro)``, SG = stop-gradient.
    pairs_pred, pairs_retro : list of Pairs
        One per step; ``pairs_retro`` defaults to ``pairs_pred`` (a shared coin).
    """
    total = h.new_zeros(())
    if W_retro is None:
        for k, p in enumerate(pairs_pred):
            u = pair_scores(h, h, W_pred[k], p)
            total = total + (p.weight * torch.relu(1 - p.sign * u)).sum()
        return total
    pairs_retro = pairs_pred if pairs_retro is None else pairs_retro
    hd = h.detach()
    for k, (p1, p2) in enumerate(zip(pairs_pred, pairs_retro)):
        u1 = pair_scores(hd, h, W_pred[k], p1)
        u2 = pair_scores(h, hd, W_retro[k], p2)
        total = total + (p1.weight * torch.relu(1 - p1.sign * u1)).sum() \
            + (p2.weight * torch.relu(1 - p2.sign * u2)).sum()
    return total
