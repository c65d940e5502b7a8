"""The dense InfoNCE loss of Dense Predictive Coding (Han, Xie & Zisserman 2019, arXiv:1909.04656, Eq. 5).

Pure functions of prediction and target feature maps ``(B, P, D, h, w)``. Under torchrun the targets of every
process are all-gathered (:func:`gather_targets`) so that each prediction is scored against the whole batch
(the original computes it per GPU: TengdaHan/DPC#17).
"""
from __future__ import annotations

import torch
from torch import nn


def gather_targets(t: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Targets of every process ``(world * M, D)`` (own rows keep their gradient) and this process's offset.

    Without an initialised torch.distributed group this returns ``(t, 0)``.
    """
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return t, 0
    world, rank = dist.get_world_size(), dist.get_rank()
    parts = [torch.empty_like(t) for _ in range(world)]
    dist.all_gather(parts, t.detach().contiguous())
    parts[rank] = t
    return torch.cat(parts, 0), rank * t.shape[0]


def dense_infonce(pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Dense InfoNCE of DPC (Han et al. 2019, Eq. (5)) with raw dot-product scores.

    Parameters
    ----------
    pred, target : torch.Tensor, shape (B, P, D, h, w)

    Returns
    -------
    loss : (B, P, S) cross-entropy of each prediction (S = h * w cells), positives at the same (b, p, s)
    correct : (B, P, S) bool, whether the positive had the highest score
    scores : (B*P*S, M) the local rows of the score matrix (M = all targets of all processes)
    """
    b, p, d, hh, ww = pred.shape
    q = pred.permute(0, 1, 3, 4, 2).reshape(-1, d)          # (B*P*S, D), rows ordered (b, p, s)
    k = target.permute(0, 1, 3, 4, 2).reshape(-1, d)        # (B*P*S, D)
    k_all, offset = gather_targets(k)
    scores = q @ k_all.t()                                  # (B*P*S, M)
    labels = torch.arange(q.shape[0], device=q.device) + offset
    loss = nn.functional.cross_entropy(scores, labels, reduction="none")
    correct = scores.argmax(1) == labels
    return loss.view(b, p, hh * ww), correct.view(b, p, hh * ww), scores


def block_scores(scores: torch.Tensor, b: int, p: int, s: int) -> torch.Tensor:
    """Score of every predicted block against every target block, averaged over matching cells ``(B*P, B*P)``.

    ``scores`` holds the local square part ``(B*P*S, B*P*S)`` (rows and columns ordered (b, p, s)).
    """
    sq = scores[:, :b * p * s].reshape(b * p, s, b * p, s)
    return sq.diagonal(dim1=1, dim2=3).mean(-1)            # (B*P, B*P): same cell s in both
