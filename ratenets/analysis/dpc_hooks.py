"""Forward activations and backward errors of DPC at the hook sites of the colleenjg/DPC Gabor analysis.

The original (colleenjg/DPC ``analysis/hooks.py``, ``init_layers_hook_dict``; ``analysis/hook_analysis.py``,
``collect_save_hook_data``) registers, on three modules, a forward hook (*activations*: the module output)
and a ``register_full_backward_hook`` (*errors*: the gradient of the batch-mean loss with respect to the
module output), and runs a dry pass over the training loader: eval mode, ``loss.backward()``, no optimiser
step. The sites, and the module of :class:`ratenets.rules.dpc.DPCNet` at each:

======================  ==========================================  ===========================================
site                    original module                              here
======================  ==========================================  ===========================================
``encoder``             ``model.avg_pool`` (temporal average pool   ``DPCNet.temporal_pool``; the predicted
                        after the backbone)                          blocks (the last P of N), as the original
``contextual``          ``model.agg.cell_list[0].out_gate`` (the    ``DPCNet.aggregator.cand`` (pre-tanh)
                        ConvGRU candidate conv, before its tanh)
``predictive``          ``model.network_pred[2]`` (second conv of   ``DPCNet.predictor[2]``: the prediction
                        the predictor = the prediction zhat)        zhat *of* the predicted block
======================  ==========================================  ===========================================

A unit is (prediction step, channel, spatial cell): P x D x h x w per site, 1 x 256 x 4 x 4 = 4096 at the
paper's scale.

Which ConvGRU call the ``contextual`` site reads (the original counts calls per batch):

* ``contextual="original"`` (default, the authors' behaviour): activations from the first P calls (for
  P = 1: the step that takes in the *first* context block, A in the no-roll protocol); errors from the first
  P backward fires, i.e. the last P calls whose output reaches the loss (for P = 1: the step that takes in
  the last context block), stacked in firing order. Activations and errors thus come from different steps;
  predictive errors are likewise stacked in firing order (reverse time; irrelevant for P = 1).
* ``contextual="aligned"``: activations and errors both from the P calls whose new state issues each
  prediction (calls N - P - 1 .. N - 2), in time order; predictive errors in time order.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Literal

import numpy as np
import torch
from torch import nn

#: the original's HOOK_MODULES and HOOK_TYPES (colleenjg/DPC ``analysis/hooks.py``)
HOOK_SITES: tuple[str, ...] = ("encoder", "contextual", "predictive")
HOOK_TYPES: tuple[str, ...] = ("activations", "errors")
CONTEXTUAL_STEPS: tuple[str, ...] = ("original", "aligned")


def site_modules(net: nn.Module) -> dict[str, nn.Module]:
    """The module of a :class:`~ratenets.rules.dpc.DPCNet` at each hook site."""
    return {"encoder": net.temporal_pool, "contextual": net.aggregator.cand, "predictive": net.predictor[2]}


class HookRecorder:
    """Records every forward output and every backward ``grad_output`` at the hook sites of one batch.

    Use as a context manager (the hooks are removed on exit); call :meth:`reset` before each batch and
    :meth:`collect` after its ``loss.backward()``.
    """

    def __init__(self, net: nn.Module) -> None:
        self.modules = site_modules(net)
        self.fwd: dict[str, list[torch.Tensor]] = {s: [] for s in HOOK_SITES}
        self.bwd: dict[str, list[torch.Tensor]] = {s: [] for s in HOOK_SITES}
        self._handles: list = []

    def __enter__(self) -> HookRecorder:
        for site, mod in self.modules.items():
            self._handles.append(mod.register_forward_hook(self._forward_hook(site)))
            self._handles.append(mod.register_full_backward_hook(self._backward_hook(site)))
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def _forward_hook(self, site: str):
        def hook(module, inp, out):
            self.fwd[site].append(out.detach())
        return hook

    def _backward_hook(self, site: str):
        def hook(module, grad_in, grad_out):
            self.bwd[site].append(grad_out[0].detach())
        return hook

    def reset(self) -> None:
        for d in (self.fwd, self.bwd):
            for v in d.values():
                v.clear()

    def collect(self, batch: int, n_blocks: int, pred_step: int,
                contextual: Literal["original", "aligned"] = "original") -> dict[tuple[str, str], torch.Tensor]:
        """Each site's activations and errors of the batch, ``{(site, type): (B, P, D, h, w)}``.

        RuntimeError when the hooks did not fire as the DPC forward pass implies (N encoder blocks in one call,
        N ConvGRU calls of which N - 1 reach the loss, P predictor calls).
        """
        if contextual not in CONTEXTUAL_STEPS:
            raise ValueError(f"contextual must be one of {CONTEXTUAL_STEPS}, got {contextual!r}")
        p, n = pred_step, n_blocks
        want = {("encoder", "f"): 1, ("encoder", "b"): 1, ("contextual", "f"): n, ("contextual", "b"): n - 1,
                ("predictive", "f"): p, ("predictive", "b"): p}
        for (site, kind), count in want.items():
            got = len((self.fwd if kind == "f" else self.bwd)[site])
            if got != count:
                raise RuntimeError(f"hook site {site!r} fired {got} {'forward' if kind == 'f' else 'backward'} "
                                   f"time(s) in one batch, expected {count}")
        out: dict[tuple[str, str], torch.Tensor] = {}
        for kind, lst in (("activations", self.fwd["encoder"][0]), ("errors", self.bwd["encoder"][0])):
            out[("encoder", kind)] = lst.reshape(batch, n, *lst.shape[1:])[:, n - p:]
        fwd_c, bwd_c = self.fwd["contextual"], self.bwd["contextual"]     # bwd_c[k] <-> call n - 2 - k
        bwd_p = self.bwd["predictive"]                                      # bwd_p[k] <-> call p - 1 - k
        if contextual == "original":
            out[("contextual", "activations")] = torch.stack(fwd_c[:p], 1)
            out[("contextual", "errors")] = torch.stack(bwd_c[:p], 1)
            out[("predictive", "errors")] = torch.stack(bwd_p, 1)
        else:
            out[("contextual", "activations")] = torch.stack(fwd_c[n - p - 1:n - 1], 1)
            out[("contextual", "errors")] = torch.stack(bwd_c[:p][::-1], 1)
            out[("predictive", "errors")] = torch.stack(bwd_p[::-1], 1)
        out[("predictive", "activations")] = torch.stack(self.fwd["predictive"], 1)
        return out


def hook_pass(net: nn.Module, batches: Iterable[torch.Tensor], pred_step: int,
              loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
              contextual: Literal["original", "aligned"] = "original") -> dict[tuple[str, str], np.ndarray]:
    """Dry pass (eval mode, backward, no update): every clip's units at every site, ``(n, P * D * h * w)``.

    ``batches`` yields inputs ``(B, N, C, L, H, W)``; ``loss_fn(pred, target)`` returns the scalar batch loss
    whose gradient the errors are. Parameter gradients are cleared afterwards and the training mode restored.
    """
    was_training = net.training
    net.eval()
    parts: dict[tuple[str, str], list[np.ndarray]] = {(s, t): [] for s in HOOK_SITES for t in HOOK_TYPES}
    try:
        with HookRecorder(net) as rec, torch.enable_grad():
            for x in batches:
                rec.reset()
                pred, target = net(x, pred_step)
                loss = loss_fn(pred, target)
                net.zero_grad(set_to_none=True)
                loss.backward()
                for key, v in rec.collect(x.shape[0], x.shape[1], pred_step, contextual).items():
                    parts[key].append(v.flatten(1).double().cpu().numpy())
    finally:
        net.zero_grad(set_to_none=True)
        net.train(was_training)
    return {k: np.concatenate(v) for k, v in parts.items()}


def unit_stats(values: np.ndarray, labels: np.ndarray, classes: Iterable[int]) -> tuple[np.ndarray, ...]:
    """Per-class mean and SD (ddof 0, as the original's ``np.std``) of every unit, and the clip counts.

    Parameters
    ----------
    values : ndarray, shape (n, P * U)
        Units of each clip, prediction step slowest (as :func:`hook_pass` flattens them).
    labels : ndarray of int, shape (n, P)
        Class (image type) of each clip's predicted block at each step; a unit of step p is averaged over
        the clips whose p-th predicted block has the class (colleenjg/DPC ``compile_data``).

    Returns
    -------
    mean, sd : (K, P * U), NaN for a class absent at a step
    count : (K, P) clips per class and step
    """
    n, p = labels.shape
    v = values.reshape(n, p, -1)
    classes = list(classes)
    mean = np.full((len(classes), p, v.shape[-1]), np.nan)
    sd = np.full_like(mean, np.nan)
    count = np.zeros((len(classes), p), dtype=np.int64)
    for i, c in enumerate(classes):
        for s in range(p):
            sel = labels[:, s] == c
            count[i, s] = int(sel.sum())
            if sel.any():
                mean[i, s] = v[sel, s].mean(0)
                sd[i, s] = v[sel, s].std(0)
    return mean.reshape(len(classes), -1), sd.reshape(len(classes), -1), count


def surprise_index(mean_u: np.ndarray, sd_u: np.ndarray, mean_d: np.ndarray, sd_d: np.ndarray) -> np.ndarray:
    """USI = (mean_U - mean_D) / sqrt((sd_U^2 + sd_D^2) / 2) per unit (colleenjg/DPC ``get_mean_sem_USI``).

    NaN where both SDs are 0 (the index is undefined; the original divides by 0) or a class is absent.
    """
    pooled = np.sqrt((np.asarray(sd_u) ** 2 + np.asarray(sd_d) ** 2) / 2)
    diff = np.asarray(mean_u) - np.asarray(mean_d)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(pooled > 0, diff / np.where(pooled > 0, pooled, 1.0), np.nan)
