"""CLAPP-s: the synchronous variant of CLAPP (Illing, Ventura, Bellec & Gerstner, NeurIPS 2021).

Layer-local like :mod:`ratenets.rules.clapp`, but every step adds the positive and the negative hinge of
Eq. (3) for every context; the ``negative_samples = 16`` negatives of a context are futures drawn uniformly
from all (image, row, column) positions of the batch; one prediction matrix ``W_k`` per step serves both
prediction and retrodiction (so its transpose is transported: not fully local). Original script
``vision/scripts/vision_traineval_CLAPP_s_sym_W_pred.sh``: ``--contrast_mode hinge``, 300 epochs.
"""
from __future__ import annotations

from typing import Any, ClassVar

from ratenets.presets import Preset
from ratenets.rules.clapp import CLAPP_PRESETS, PatchCPCConfig, PatchCPCRule


class CLAPPs(PatchCPCRule):
    """CLAPP-s: synchronous positive and negative terms, 16 negatives from anywhere, one shared W."""

    name: ClassVar[str] = "clapp-s"
    Config: ClassVar[type] = PatchCPCConfig
    data_parallel: ClassVar[bool] = True  # torchrun: features gathered for the hinge loss (PatchCPCRule)
    variant: ClassVar[dict[str, Any]] = dict(asymmetric_w=False, either_pos_or_neg=False, negatives="anywhere",
                                             negative_samples=16, end_to_end=False)
    PRESETS = {**CLAPP_PRESETS, "stl10": Preset("stl10", {"epochs": 300}, "the paper's; the script trains 300 epochs")}
