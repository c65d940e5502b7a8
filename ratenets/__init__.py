"""ratenets: deep rate networks trained with local learning rules in torch.

One registry per kind: rules one per file in :mod:`ratenets.rules` (``RULES``), each on a base class of its
family (:mod:`ratenets.rules.base`) with its presets (:mod:`ratenets.presets`); the loss terms of the
self-supervised rules as pure functions in :mod:`ratenets.losses`; encoders in :mod:`ratenets.encoders`
(``ENCODERS``); datasets in :mod:`ratenets.data` (``LOADERS``); the epoch loop, checkpoints and results in
:mod:`ratenets.train`.
"""
from ratenets.rules import RULES, get_rule

__all__ = ["RULES", "get_rule"]
