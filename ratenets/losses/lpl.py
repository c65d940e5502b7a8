"""The loss terms of Latent Predictive Learning: pure functions of ``(batch, units)`` tensors.

Halvagal & Zenke (2023), Nat. Neurosci. 26:1906-1915, Eqs. (4)-(6), **as corrected by the authors' erratum**
(``fmi-basel/latent-predictive-learning``, ``erratum/erratum.md``, PR #9: the decorrelation term is the mean
squared off-diagonal covariance), with the batch mean detached as in the official ``models/module.py``.
No module state, no optimiser, no data: the trainer (:mod:`ratenets.rules.lpl`), the rate twin of the spiking
network (:mod:`ratenets.twin`) and any other network call these on their own features.
"""
from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F


def predictive_loss(z1: torch.Tensor, z2: torch.Tensor, stop_gradient: bool = False) -> torch.Tensor:
    """Predictive term ``(1/(B M)) sum_b sum_i (z1 - z2)^2`` (Halvagal & Zenke 2023, Eq. 4).

    Parameters
    ----------
    z1, z2 : tensor, shape (batch, units)
        The two views (consecutive "time steps").
    stop_gradient : bool
        Detach ``z2`` (the paper's ``SG z(t - dt)``); False: both views get a gradient (official code).
    """
    target = z2.detach() if stop_gradient else z2
    return ((z1 - target) ** 2).mean()


def hebbian_loss(z: torch.Tensor, eps: float = 1e-4, mean: torch.Tensor | None = None,
                 var: torch.Tensor | None = None) -> torch.Tensor:
    """Hebbian term ``-(1/M) sum_i log(sigma_i^2 + eps)`` with a detached batch mean (Eq. 5).

    Parameters
    ----------
    z : tensor, shape (batch, units)
    eps : float
        Added to the variance (official code: 1e-4).
    mean, var : tensor, shape (units,), optional
        Stale (previous batch's, detached) estimates. Given: the official ``--stale_estimates`` form
        ``-(1/M) sum_i sum_b (z_i^b - mean_i)^2 / ((var_i + eps)(B - 1))``.
    """
    b = z.shape[0]
    if var is not None:
        m = mean if mean is not None else z.mean(0).detach()
        return -(((z - m) ** 2).sum(0) / ((var + eps) * (b - 1))).mean()
    zbar = z.mean(0).detach()
    v = ((z - zbar) ** 2).sum(0) / (b - 1)  # (units,)
    return -torch.log(v + eps).mean()


def decorrelation_loss(z: torch.Tensor, mean: torch.Tensor | None = None) -> torch.Tensor:
    """Decorrelation term ``(1/(M^2 - M)) sum_{i != k} C_ik^2`` (erratum to Eq. 6, PR #9).

    ``C = c^T c / (B - 1)`` with ``c = z - SG zbar`` (or ``z - mean`` for stale estimates). Zero for one unit.

    Parameters
    ----------
    z : tensor, shape (batch, units)
    mean : tensor, shape (units,), optional
        Stale mean estimate (detached).
    """
    b, m = z.shape
    if m < 2:
        return z.sum() * 0.0
    c = z - (z.mean(0).detach() if mean is None else mean)
    cov = c.T @ c / (b - 1)  # (units, units)
    off = cov - torch.diag_embed(torch.diagonal(cov))
    return (off ** 2).sum() / (m * m - m)


def lpl_terms(z1: torch.Tensor, z2: torch.Tensor, *, eps: float = 1e-4, stop_gradient: bool = False,
              mean: torch.Tensor | None = None, var: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """The three LPL terms of one layer for a pair of views ``(batch, units)``.

    The Hebbian and decorrelation terms are computed per view and averaged, as the official code does.
    Stale estimates ``mean``/``var`` enter the Hebbian term only; the decorrelation term always centres on
    the (detached) batch mean, as the official ``decorr_loss``, which takes no stale estimate.

    Returns
    -------
    dict
        ``{"pred": L_pred, "hebb": L_Hebb, "decorr": L_dec}``, scalar tensors.
    """
    return {
        "pred": predictive_loss(z1, z2, stop_gradient),
        "hebb": 0.5 * (hebbian_loss(z1, eps, mean, var) + hebbian_loss(z2, eps, mean, var)),
        "decorr": 0.5 * (decorrelation_loss(z1) + decorrelation_loss(z2)),
    }


def stale_update(z1: torch.Tensor, z2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Next stale estimates: the two views' batch means and unbiased variances, each averaged over the views.

    Official ``loss_step``: ``mean = 0.5 (z1.mean(0) + z2.mean(0))``, ``var = 0.5 (z1.var(0) + z2.var(0))``
    (detached), not the statistics of the pooled ``2B`` samples (which would add the between-view spread).
    """
    z1, z2 = z1.detach(), z2.detach()
    return 0.5 * (z1.mean(0) + z2.mean(0)), 0.5 * (z1.var(0, unbiased=True) + z2.var(0, unbiased=True))


def lpl_terms_maps(h1: torch.Tensor, h2: torch.Tensor, *, eps: float = 1e-4, stop_gradient: bool = False
                   ) -> dict[str, torch.Tensor]:
    """The LPL terms on unpooled maps ``(batch, C, H, W)`` (official ``--no_pooling``).

    The predictive term is the MSE over the full maps; the Hebbian variance is taken per (C, H, W)
    position; the decorrelation stacks the ``B*H*W`` positions as samples of the ``C`` channels.
    """
    if h1.ndim == 2:
        return lpl_terms(h1, h2, eps=eps, stop_gradient=stop_gradient)
    c = h1.shape[1]
    flat1, flat2 = h1.flatten(1), h2.flatten(1)  # (B, C*H*W)
    pos1 = h1.permute(0, 2, 3, 1).reshape(-1, c)  # (B*H*W, C)
    pos2 = h2.permute(0, 2, 3, 1).reshape(-1, c)
    return {
        "pred": predictive_loss(flat1, flat2, stop_gradient),
        "hebb": 0.5 * (hebbian_loss(flat1, eps) + hebbian_loss(flat2, eps)),
        "decorr": 0.5 * (decorrelation_loss(pos1) + decorrelation_loss(pos2)),
    }


def negsample_terms(z1: torch.Tensor, z2: torch.Tensor) -> dict[str, torch.Tensor]:
    """Negative-sample (cosine) baseline (official ``NegSampleBaseline``).

    ``pred`` (pull) is ``-mean_b cos(z1^b, z2^b)``; ``hebb`` (push) is the mean squared cosine similarity
    between different images of the same view, averaged over the two views.
    """
    n1, n2 = F.normalize(z1, dim=1), F.normalize(z2, dim=1)
    pull = -(n1 * n2).sum(1).mean()
    b = z1.shape[0]

    def push(n: torch.Tensor) -> torch.Tensor:
        g = n @ n.T  # (B, B) cosine similarities
        off = g - torch.diag_embed(torch.diagonal(g))
        return (off ** 2).sum() / max(b * b - b, 1)

    return {"pred": pull, "hebb": 0.5 * (push(n1) + push(n2))}


def lpl_loss(terms: Mapping[str, torch.Tensor], pred_coeff: float = 1.0, hebb_coeff: float = 1.0,
             decorr_coeff: float = 10.0) -> torch.Tensor:
    """``pred_coeff * pred + hebb_coeff * hebb + decorr_coeff * decorr`` (missing terms count 0)."""
    total = 0.0
    for key, coeff in (("pred", pred_coeff), ("hebb", hebb_coeff), ("decorr", decorr_coeff)):
        if coeff != 0 and key in terms:
            total = total + coeff * terms[key]
    if isinstance(total, float):
        return next(iter(terms.values())) * 0.0
    return total
