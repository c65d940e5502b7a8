"""The registry of rate-network learning rules: registry key = module name = CLI name.

Entries are ``"module:Class"`` strings imported on first use, so listing the rules costs nothing.
"""
from __future__ import annotations

import importlib

from bridge.errors import unknown_choice

RULES: dict[str, str] = {
    "bp": "ratenets.rules.bp:BP",
    "dpc": "ratenets.rules.dpc:DPC",
    "lpl": "ratenets.rules.lpl:LPL",
    "corinfomax": "ratenets.rules.corinfomax:CorInfoMax",
    "corinfomax-sparse": "ratenets.rules.corinfomax_sparse:CorInfoMaxSparse",
    "ep": "ratenets.rules.ep:EP",
    "csm": "ratenets.rules.csm:CSM",
    "pc": "ratenets.rules.pc:PC",
    "pc-nudge": "ratenets.rules.pc_nudge:PCNudge",
    "fa": "ratenets.rules.fa:FA",
    "clapp": "ratenets.rules.clapp:CLAPP",
    "clapp-s": "ratenets.rules.clapp_s:CLAPPs",
    "hinge-cpc": "ratenets.rules.hinge_cpc:HingeCPC",
}


def rule_names() -> list[str]:
    return list(RULES)


def get_rule(name: str) -> type:
    """The rule class registered as ``name``; a ConfigError with suggestions for an unknown name."""
    if name not in RULES:
        raise unknown_choice("rule", name, RULES)
    module, cls = RULES[name].split(":")
    return getattr(importlib.import_module(module), cls)
