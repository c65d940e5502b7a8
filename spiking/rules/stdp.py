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
from spiking.rules import Connect

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

    tau_pre_ms: float = 20.0         # tau_+, Song et al. 2000, Methods
    tau_post_ms: float = 20.0        # tau_-, Song et al. 2000, Methods
    g_max: float = 0.01              # maximal conductance (units of the leak conductance)
    a_plus: float = 0.01             # dA_pre in units of g_max
    depression_ratio: float = 1.05   # A_- tau_- / (A_+ tau_+) = 1.05, Song et al. 2000

    def __post_init__(self) -> None:
        validate_stdp(self)


CONFIG = STDPConfig
PRE_EQS = ""
POST_EQS = "g_stdp : 1\n"  # the conductance the rule's synapses drive
POST_RESET = ""


def validate_stdp(cfg: Any) -> None:
    check_positive(cfg, "tau_pre_ms", "tau_post_ms", "g_max", "a_plus", "depression_ratio")


def stdp_namespace(cfg: Any) -> dict[str, Any]:
    from brian2 import ms

    da_pre = cfg.a_plus * cfg.g_max
    return {"tau_pre": cfg.tau_pre_ms * ms, "tau_post": cfg.tau_post_ms * ms, "g_max": cfg.g_max,
            "da_pre": da_pre, "da_post": -da_pre * cfg.tau_pre_ms / cfg.tau_post_ms * cfg.depression_ratio}


def synapses(pre, post, cfg: STDPConfig, *, connect: Connect = None, w0: float | None = None,
             delay_ms: float = 0.0, dt_ms: float | None = None, name: str = "stdp") -> list:
    """Plastic synapses ``pre -> post`` onto the post variable ``g_stdp`` (the signature of every rule of
    :mod:`spiking.rules`; ``dt_ms`` is not needed, the traces are event-driven; ``w0`` None leaves w at 0)."""
    from brian2 import Synapses, ms

    from spiking.rules import connect_synapses

    kw = {"delay": delay_ms * ms} if delay_ms else {}
    syn = Synapses(pre, post, STDP_EQS, on_pre=ON_PRE, on_post=ON_POST, namespace=stdp_namespace(cfg),
                   name=name, **kw)
    connect_synapses(syn, connect)
    if w0 is not None:
        syn.w = w0
    return [syn]
