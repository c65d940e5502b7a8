"""CLAPP-s: the synchronous variant of CLAPP (Illing, Ventura, Bellec & Gerstner, NeurIPS 2021).

Layer-local like :mod:`ratenets.rules.clapp`, but every step adds the positive and the negative hinge of
Eq. (3) for every context; the ``negative_samples = 16`` negatives of a context are futures drawn uniformly
from all (image, row, column) positions of the batch; one prediction matrix ``W_k`` per step serves both
prediction and retrodiction (so its transpose is transported: not fully local). Original script
``vision/scripts/vision_traineval_CLAPP_s_sym_W_pred.sh``: ``--contrast_mode hinge``, 300 epochs.
"""
from __future__ import annotations

from typing import Any, ClassVar

from ratenets.rules._clapp_common import PatchCPCConfig, PatchCPCRule


class CLAPPs(PatchCPCRule):
    """CLAPP-s: synchronous positive and negative terms, 16 negatives from anywhere, one shared W."""

    name: ClassVar[str] = "clapp-s"
    Config: ClassVar[type] = PatchCPCConfig
    data_parallel: ClassVar[bool] = True  # torchrun: features gathered for the hinge loss (PatchCPCRule)
    variant: ClassVar[dict[str, Any]] = dict(asymmetric_w=False, either_pos_or_neg=False, negatives="anywhere",
                                             negative_samples=16, end_to_end=False)

    @classmethod
    def preset(cls, dataset: str) -> PatchCPCConfig:
        from bridge.config import replace_config

        cfg = super().preset(dataset)
        return replace_config(cfg, {"epochs": 300}) if dataset == "stl10" else cfg  # script: 300 epochs
