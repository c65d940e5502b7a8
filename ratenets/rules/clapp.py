"""CLAPP: contrastive, layer-local predictive learning (Illing, Ventura, Bellec & Gerstner, NeurIPS 2021).

Every layer of a VGG-6 patch encoder learns alone, on its own detached input, with the hinge loss of
Eq. (3): the pooled feature ``c`` of a patch predicts, through ``W_k``, the pooled feature ``z`` of the patch
``k + 1`` rows below in the same column. Each image sees either its true future (positive) or, after a
"saccade", the same position of another image (negative), with probability 1/2 each. Two separately learned
matrices carry the prediction (``W_k^T c`` to the future) and the retrodiction (``W'_k z`` to the context),
so no weight is transported (the paper's ``--asymmetric_W_pred``). The resulting update is the local
three-factor rule of Eqs. (6)-(8), implemented explicitly in
:func:`ratenets.rules._clapp_common.three_factor_grads`.

Sampling as the original code (default ``coin="per_layer"``): each layer and each of the two terms draws its
own positive/negative coin per image, and for every prediction step its own saccade partner per image;
``coin="global"`` shares coin and partners across layers and terms (the paper's brain-wide saccade signal).
Self-pairs are excluded from the negatives (``exclude_self=True``; the original
includes them).
"""
from __future__ import annotations

from typing import Any, ClassVar

from ratenets.rules._clapp_common import PatchCPCConfig, PatchCPCRule


class CLAPP(PatchCPCRule):
    """CLAPP: 50/50 positive-or-negative per image, saccade negatives, two prediction matrices per step."""

    name: ClassVar[str] = "clapp"
    Config: ClassVar[type] = PatchCPCConfig
    data_parallel: ClassVar[bool] = True  # torchrun: features gathered for the hinge loss (PatchCPCRule)
    # vision/scripts/vision_traineval_CLAPP.sh: --asymmetric_W_pred --negative_samples 1 --sample_negs_locally
    # --sample_negs_locally_same_everywhere --either_pos_or_neg_update --model_splits 6, 600 epochs
    variant: ClassVar[dict[str, Any]] = dict(asymmetric_w=True, either_pos_or_neg=True, negatives="saccade",
                                             negative_samples=1, end_to_end=False)
