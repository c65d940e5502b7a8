"""Pair-based additive STDP of Song, Miller & Abbott (2000), Nat. Neurosci. 3:919, with hard bounds.

Traces (event-driven, all-to-all interaction): A_pre jumps by dA_pre at each pre spike and decays with
tau_pre; A_post jumps by dA_post = -dA_pre (tau_pre/tau_post) * depression_ratio at each post spike and
decays with tau_post. At a pre spike the conductance jumps by w and w <- clip(w + A_post, 0, g_max); at a
post spike w <- clip(w + A_pre, 0, g_max). depression_ratio = 1.05 makes LTD slightly dominate, which with
bounded additive updates drives the weights to a bimodal distribution at 0 and g_max (Song et al. 2000,
Fig. 2). Amplitudes are in units of g_max, as in the paper (A+ = 0.005 in its Fig. 1 simulations; the Brian2
example uses 0.01).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bridge.config import check_positive

STDP_EQS = """
w : 1
dapre/dt = -apre / tau_pre : 1 (event-driven)
dapost/dt = -apost / tau_post : 1 (event-driven)
"""
ON_PRE = """
g_stdp_post += w
apre += da_pre
w = clip(w + apost, 0, g_max)
"""
ON_POST = """
apost += da_post
w = clip(w + apre, 0, g_max)
"""


@dataclass(frozen=True, kw_only=True)
class STDPConfig:
    """Constants of additive pair STDP (Song, Miller & Abbott 2000)."""

    tau_pre_stdp_ms: float = 20.0    # tau_+, Song et al. 2000, Methods
    tau_post_stdp_ms: float = 20.0   # tau_-, Song et al. 2000, Methods
    g_max: float = 0.01              # maximal conductance (units of the leak conductance)
    a_plus: float = 0.01             # dA_pre in units of g_max
    depression_ratio: float = 1.05   # A_- tau_- / (A_+ tau_+) = 1.05, Song et al. 2000

    def __post_init__(self) -> None:
        validate_stdp(self)


def validate_stdp(cfg: Any) -> None:
    check_positive(cfg, "tau_pre_stdp_ms", "tau_post_stdp_ms", "g_max", "a_plus", "depression_ratio")


def stdp_namespace(cfg: Any) -> dict[str, Any]:
    from brian2 import ms

    da_pre = cfg.a_plus * cfg.g_max
    return {"tau_pre": cfg.tau_pre_stdp_ms * ms, "tau_post": cfg.tau_post_stdp_ms * ms, "g_max": cfg.g_max,
            "da_pre": da_pre,
            "da_post": -da_pre * cfg.tau_pre_stdp_ms / cfg.tau_post_stdp_ms * cfg.depression_ratio}


def stdp_synapses(pre, post, cfg: Any, *, i=None, j=None, name: str = "stdp"):
    """Plastic synapses ``pre -> post`` onto the post variable ``g_stdp`` (all-to-all when i, j are None)."""
    from brian2 import Synapses

    syn = Synapses(pre, post, STDP_EQS, on_pre=ON_PRE, on_post=ON_POST, namespace=stdp_namespace(cfg),
                   name=name)
    if i is None:
        syn.connect()
    else:
        syn.connect(i=i, j=j)
    return syn
