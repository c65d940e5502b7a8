"""ratenets: deep rate networks trained with local learning rules in torch.

Rules live one per file in :mod:`ratenets.rules` (registry ``RULES``); datasets in :mod:`ratenets.data`;
the epoch loop, checkpoints and results in :mod:`ratenets.train`.
"""
from ratenets.rules import RULES, get_rule

__all__ = ["RULES", "get_rule"]
