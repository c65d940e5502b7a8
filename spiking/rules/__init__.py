"""Plasticity rules as Brian2 synapse models, one file each: ``lpl``, ``istdp``, ``stdp``, ``bcm``.

Every rule module has the same shape, so an experiment can swap one for another:

- ``CONFIG``: its frozen config class (paper constants as defaults);
- ``PRE_EQS``, ``POST_EQS``, ``POST_RESET``: what the rule adds to the equations of the presynaptic group
  and to the equations and reset of the postsynaptic group (``""`` when nothing);
- ``synapses(pre, post, cfg, *, connect, w0, delay_ms, dt_ms, name) -> list``: the Brian2 objects of the
  rule, the ``Synapses`` first (then any helper pathways); add them all to the ``Network``. A rule may take
  extra keyword arguments after these (LPL: ``on_pre``, the transmission code).

``connect`` (:data:`Connect`) is a connection probability expression (a string, drawn by Brian2, so inside a
standalone binary with the run-time seed), ``(i, j)`` index arrays, or ``None`` for all-to-all. ``RULES`` is
the registry (name -> module path), :func:`get_rule` loads one.
"""
from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any, Union

#: how the synapses of a rule are connected: a probability expression, (i, j) indices, or None (all to all)
Connect = Union[str, tuple[Sequence[int], Sequence[int]], None]

RULES: dict[str, str] = {
    "lpl": "spiking.rules.lpl",
    "istdp": "spiking.rules.istdp",
    "stdp": "spiking.rules.stdp",
    "bcm": "spiking.rules.bcm",
}


def get_rule(name: str):
    """The module of spiking rule ``name`` (with ``CONFIG``, ``PRE_EQS``, ``POST_EQS``, ``POST_RESET``, ``synapses``)."""
    from bridge.errors import unknown_choice

    if name not in RULES:
        raise unknown_choice("spiking rule", name, RULES)
    return importlib.import_module(RULES[name])


def connect_synapses(syn: Any, connect: Connect) -> None:
    """Connect a Brian2 ``Synapses`` as :data:`Connect` says."""
    if isinstance(connect, str):
        syn.connect(p=connect, namespace={})
    elif connect is None:
        syn.connect()
    else:
        i, j = connect
        syn.connect(i=i, j=j)
