"""Inhibitory STDP of Vogels et al. (2011), Science 334:1569, symmetric window (Auryn ``SymmetricSTDPConnection``).

Pre (inhibitory) and post (excitatory) traces jump by 1 at each spike and decay with tau = 20 ms. At an
inhibitory spike arriving (after the 0.8 ms delay) w <- max(w + zeta (x_post - alpha), 0); at an excitatory
spike w <- min(w + zeta x_pre, w_max) (the clips of ``SymmetricSTDPConnection::propagate_forward`` and
``propagate_backward``), x_pre excluding an arrival in the same step, with alpha = 2 kappa tau (target rate kappa). Erratum of Halvagal &
Zenke (2023): their printed Eq. (24) has +2 kappa tau; the code (followed here) uses -2 kappa tau.
Traces are event-driven, so the cost is per spike. Plasticity is gated off before ``plasticity_start_s``
(the LPL priming phase) through ``t_plastic``. ``zeta``, ``t_plastic`` and the time offset ``t_off`` are
shared synapse variables (run-time values of a standalone binary); "inhib-fixed" is zeta = 0.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bridge.config import check_positive
from bridge.errors import ConfigError
from spiking.rules import Connect

ISTDP_EQS = """
zeta : 1 (shared)
t_plastic : second (shared)
t_off : second (shared)
w : 1
t_arr : second
dxpre/dt = -xpre / tau_istdp : 1 (event-driven)
dxpost/dt = -xpost / tau_istdp : 1 (event-driven)
"""
#: transmit the old weight, then the pre update, clipped at 0 only (propagate_forward); ``t_arr`` marks the
#: step of the arrival
ON_PRE = """
g_gaba_post += w
w = clip(w + int(t + t_off >= t_plastic) * zeta * (xpost - alpha), 0, 1e300)
xpre += 1
t_arr = t + t_off
"""
#: the post update, clipped at w_max only (propagate_backward); Auryn's pre trace counts this step's arrival
#: only after the connections (evolve_traces), so a pre spike arriving in the same step is taken out again
ON_POST = """
w = clip(w + int(t + t_off >= t_plastic) * zeta * (xpre - int(t_arr == t + t_off)), -1e300, w_max_ie)
xpost += 1
"""


@dataclass(frozen=True, kw_only=True)
class ISTDPConfig:
    """Constants of the iSTDP rule on I -> E (sim_lpl_spiking.cpp, lpl.md section 4 "Connectivity")."""

    zeta: float = 1e-3            # learning rate zeta (eta_inh), sim_lpl_spiking.cpp
    kappa_hz: float = 10.0        # target rate kappa; 2 kappa tau = 0.4
    tau_ms: float = 20.0          # pre and post trace time constant
    w_max: float = 1.0            # I -> E weights clipped to [0, 1]

    def __post_init__(self) -> None:
        validate_istdp(self)


CONFIG = ISTDPConfig
PRE_EQS = ""
POST_EQS = ""  # the post group needs g_gaba (the neuron model has it)
POST_RESET = ""


def validate_istdp(cfg: Any) -> None:
    check_positive(cfg, "tau_ms", "w_max")
    for name in ("zeta", "kappa_hz"):
        if getattr(cfg, name) < 0:
            raise ConfigError(f"{name} must be >= 0, got {getattr(cfg, name)!r}")


def synapses(pre, post, cfg: ISTDPConfig, *, connect: Connect, w0: float, delay_ms: float,
             dt_ms: float | None = None, name: str = "istdp") -> list:
    """Inhibitory synapses ``pre -> post`` (target ``g_gaba``), plastic with the Vogels rule (fixed: zeta = 0).

    The signature of every rule of :mod:`spiking.rules`; ``dt_ms`` is not needed (event-driven traces).
    Plasticity is on from t = 0 (``t_plastic``, a run-time value: the Fig. 5 network sets it).
    """
    from brian2 import Synapses, ms, second

    from spiking.rules import connect_synapses

    # the Brian2 names (tau_istdp, w_max_ie) stay as they were: they are part of the generated code
    ns = {"tau_istdp": cfg.tau_ms * ms, "alpha": 2 * cfg.kappa_hz * cfg.tau_ms * 1e-3, "w_max_ie": float(cfg.w_max)}
    syn = Synapses(pre, post, ISTDP_EQS, on_pre=ON_PRE, on_post=ON_POST, delay=delay_ms * ms,
                   namespace=ns, name=name)
    connect_synapses(syn, connect)
    syn.w = w0
    syn.t_arr = -1 * second
    syn.zeta = float(cfg.zeta)
    syn.t_plastic = 0 * second
    syn.t_off = 0 * second
    return [syn]
