"""Conductance-based LIF neuron of Auryn's ``IFGroup`` as used by Halvagal & Zenke (2023), Figs. 5-6.

One step of Auryn's ``IFGroup::evolve`` (integrate_linear_nmda_synapses, integrate_membrane,
check_thresholds), written as an explicit update (:data:`STEP`) in the ``groups`` slot::

    U     <- U + dt/tau_m [(U_rest - U) + g_exc (E_exc - U) + g_gaba (E_inh - U)]   (old U and g)
    g_exc  = (1 - f_nmda) g_ampa + f_nmda g_nmda
    g_nmda <- g_nmda + (1 - exp(-dt/tau_nmda)) (g_ampa - g_nmda)
    g_ampa <- g_ampa exp(-dt/tau_ampa),  g_gaba <- g_gaba exp(-dt/tau_gaba),  theta <- theta exp(-dt/tau_thr)

The conductances and the threshold decay by Auryn's exact exponential factors (``exact_decay = True``, the
original); ``exact_decay = False`` gives the forward-Euler factors 1 - dt/tau of a Brian2 ``method="euler"``
ODE (the earlier port). Spikes arriving in a step (``g_ampa += w`` in the ``synapses`` slot) act on U from the
next step, as Auryn's ``propagate`` after ``evolve``.

with conductances in units of the leak conductance (so a weight is dimensionless), U clipped to
[U_min, U_max] every step, a spike when U > U_thr + theta, and on a spike U <- U_reset and theta **set** to
``thr_jump`` (erratum Issue #5: set, not incremented), theta decaying with tau_thr. Spikes reach their
targets after ``delay_ms`` (Auryn MINDELAY = 8 steps). Spec: ``reference/lpl.md`` section 4, "Neuron".
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bridge.config import check_positive
from bridge.errors import ConfigError

#: membrane, conductances and the moving threshold (Brian2 equation string; constants from the namespace)
NEURON_EQS = """
v : volt
g_ampa : 1
g_nmda : 1
g_gaba : 1
theta : volt
nspk : 1
"""
#: one IFGroup step (the membrane uses the conductances before their decay), then Auryn's clip of U
STEP = """
v = v + dt_over_tau_mem * ((u_rest - v) + ((1 - f_nmda) * g_ampa + f_nmda * g_nmda) * (e_exc - v) + g_gaba * (e_inh - v))
g_nmda = g_nmda + mul_nmda * (g_ampa - g_nmda)
g_ampa = g_ampa * scale_ampa
g_gaba = g_gaba * scale_gaba
theta = theta * scale_thr
v = clip(v, u_min, u_max)
"""
THRESHOLD = "v > u_thr + theta"
#: ``nspk`` counts spikes so that population rates can be sampled sparsely (see the experiments)
RESET = "v = u_reset\ntheta = thr_jump\nnspk += 1"


@dataclass(frozen=True, kw_only=True)
class NeuronConfig:
    """Constants of the conductance LIF (Auryn ``IFGroup``, commit 36b3c197; lpl.md section 4)."""

    dt_ms: float = 0.1             # integration step, sim_lpl_spiking.cpp (Auryn default 0.1 ms)
    tau_mem_ms: float = 20.0       # IFGroup tau_mem
    u_rest_mv: float = -70.0       # IFGroup e_rest
    u_reset_mv: float = -70.0      # IFGroup e_reset
    e_exc_mv: float = 0.0          # IFGroup e_exc
    e_inh_mv: float = -80.0        # IFGroup e_inh
    u_min_mv: float = -80.0        # clip of U each step (lower bound = e_inh)
    u_max_mv: float = 0.0          # clip of U each step
    tau_ampa_ms: float = 5.0       # IFGroup tau_ampa
    tau_nmda_ms: float = 100.0     # IFGroup tau_nmda (NMDA = low-pass copy of AMPA)
    f_nmda: float = 0.5            # AMPA:NMDA ratio 1 -> g_exc = 0.5 g_ampa + 0.5 g_nmda
    tau_gaba_ms: float = 10.0      # IFGroup tau_gaba
    u_thr_mv: float = -50.0        # IFGroup thr_rest
    thr_jump_mv: float = 100.0     # threshold set to +100 mV after a spike (erratum Issue #5)
    tau_thr_ms: float = 5.0        # IFGroup tau_thr
    delay_ms: float = 0.8          # synaptic delay, Auryn MINDELAY = 8 steps
    u_init_mean_mv: float = -60.0  # initial U of E cells, Gaussian (sim_lpl_spiking.cpp)
    u_init_sd_mv: float = 10.0
    exact_decay: bool = True       # Auryn's exp(-dt/tau) decay of g and theta (False: Euler 1 - dt/tau)

    def __post_init__(self) -> None:
        validate_neuron(self)


def validate_neuron(cfg: Any) -> None:
    """Raise ConfigError for an impossible neuron config (also used by the experiment configs)."""
    check_positive(cfg, "dt_ms", "tau_mem_ms", "tau_ampa_ms", "tau_nmda_ms", "tau_gaba_ms", "tau_thr_ms")
    if not 0.0 <= cfg.f_nmda <= 1.0:
        raise ConfigError(f"f_nmda must be in [0, 1], got {cfg.f_nmda!r}")
    if cfg.u_min_mv >= cfg.u_max_mv:
        raise ConfigError(f"u_min_mv must be < u_max_mv, got {cfg.u_min_mv!r} >= {cfg.u_max_mv!r}")
    if cfg.u_init_sd_mv < 0:
        raise ConfigError(f"u_init_sd_mv must be >= 0, got {cfg.u_init_sd_mv!r}")
    check_steps("delay_ms", cfg.delay_ms, cfg.dt_ms)


def check_steps(name: str, value_ms: float, dt_ms: float, minimum: int = 1) -> int:
    """Number of dt steps in ``value_ms``; ConfigError unless it is a whole number >= ``minimum``."""
    steps = value_ms / dt_ms
    n = int(round(steps))
    if n < minimum or abs(steps - n) > 1e-6:
        raise ConfigError(f"{name} = {value_ms!r} ms must be a whole multiple (>= {minimum}) of dt_ms = "
                          f"{dt_ms!r} ms; use a smaller dt_ms")
    return n


def neuron_namespace(cfg: Any) -> dict[str, Any]:
    """The Brian2 quantities named in :data:`NEURON_EQS`, :data:`THRESHOLD`, :data:`RESET`, :data:`CLIP`."""
    import math

    from brian2 import mV, ms

    dt = cfg.dt_ms

    def decay(tau_ms: float) -> float:
        return math.exp(-dt / tau_ms) if getattr(cfg, "exact_decay", True) else 1.0 - dt / tau_ms

    return {
        "dt_over_tau_mem": dt / cfg.tau_mem_ms, "scale_ampa": decay(cfg.tau_ampa_ms),
        "scale_gaba": decay(cfg.tau_gaba_ms), "scale_thr": decay(cfg.tau_thr_ms),
        "mul_nmda": 1.0 - decay(cfg.tau_nmda_ms),
        "u_rest": cfg.u_rest_mv * mV, "u_reset": cfg.u_reset_mv * mV, "e_exc": cfg.e_exc_mv * mV,
        "e_inh": cfg.e_inh_mv * mV, "u_min": cfg.u_min_mv * mV, "u_max": cfg.u_max_mv * mV,
        "tau_mem": cfg.tau_mem_ms * ms, "tau_ampa": cfg.tau_ampa_ms * ms, "tau_nmda": cfg.tau_nmda_ms * ms,
        "tau_gaba": cfg.tau_gaba_ms * ms, "f_nmda": float(cfg.f_nmda), "u_thr": cfg.u_thr_mv * mV,
        "thr_jump": cfg.thr_jump_mv * mV, "tau_thr": cfg.tau_thr_ms * ms,
    }


def lif_group(n: int, cfg: Any, *, name: str, extra_eqs: str = "", extra_reset: str = ""):
    """A Brian2 ``NeuronGroup`` of ``n`` conductance LIF cells stepped as Auryn's ``IFGroup``.

    Parameters
    ----------
    n : int
    cfg : NeuronConfig or an experiment config with the same fields
    name : str
        Brian2 object name (unique within a network).
    extra_eqs, extra_reset : str
        Equations and reset statements added by plasticity rules (e.g. the LPL post-synaptic traces).
    """
    from brian2 import NeuronGroup

    ns = neuron_namespace(cfg)
    reset = RESET + ("\n" + extra_reset if extra_reset else "")
    g = NeuronGroup(n, NEURON_EQS + extra_eqs, threshold=THRESHOLD, reset=reset, namespace=ns, name=name)
    g.v = ns["u_rest"]
    g.run_regularly(STEP, when="groups", name=f"{name}_step")
    return g
