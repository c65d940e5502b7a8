"""Hinge-CPC: the CLAPP loss at the top layer only, trained end to end by backpropagation.

The baseline of Illing, Ventura, Bellec & Gerstner (NeurIPS 2021) that isolates the effect of layer-local
learning: the same encoder, negatives and hinge as :mod:`ratenets.rules.clapp` (50/50 coin, saccade
negatives, asymmetric W), but one loss on the top layer's pooled features and one Adam optimiser for all
weights (original ``--model_splits 1``, ``vision/scripts/vision_traineval_HingeLossCPC.sh``, 600 epochs).
"""
from __future__ import annotations

from typing import Any, ClassVar

from ratenets.rules.clapp import PatchCPCConfig, PatchCPCRule


class HingeCPC(PatchCPCRule):
    """Hinge-loss CPC: end-to-end backpropagation of the top-layer CLAPP loss."""

    name: ClassVar[str] = "hinge-cpc"
    Config: ClassVar[type] = PatchCPCConfig
    data_parallel: ClassVar[bool] = True  # torchrun: features gathered for the hinge loss (PatchCPCRule)
    variant: ClassVar[dict[str, Any]] = dict(asymmetric_w=True, either_pos_or_neg=True, negatives="saccade",
                                             negative_samples=1, end_to_end=True)
