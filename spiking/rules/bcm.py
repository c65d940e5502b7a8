"""Spike-based BCM rule: Hebbian plasticity with a sliding threshold (Bienenstock, Cooper & Munro 1982).

Rate form: dw/dt = eta x_j y_i (y_i - theta_i), tau_theta dtheta_i/dt = y_i^2 / y0 - theta_i. Spiking form
used here (in the spirit of Izhikevich & Desai 2003): the presynaptic rate x_j and the postsynaptic rate y_i
are exponential traces in Hz (each spike adds 1/tau), and at every post spike
w <- clip(w + eta x_j (y_i - theta_i) / y0, 0, w_max), so the expected drift is proportional to
x y (y - theta). theta_i follows y_i^2 / y0 with tau_theta: when the neuron fires above the target rate y0
the threshold rises and potentiation turns into depression, which makes the rule stable.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bridge.config import check_positive
from bridge.errors import ConfigError
from spiking.rules import Connect

#: added to the post neuron's equations; ``y_bcm`` in Hz (as a number), theta follows y^2/y0
POST_EQS = """
dy_bcm/dt = -y_bcm / tau_y : 1
dtheta_bcm/dt = (y_bcm**2 / y0 - theta_bcm) / tau_theta : 1
"""
POST_RESET = "y_bcm += 1 / (tau_y / second)"
BCM_EQS = """
w : 1
dx_bcm/dt = -x_bcm / tau_x : 1 (event-driven)
"""
ON_PRE = """
g_ampa_post += w
x_bcm += 1 / (tau_x / second)
"""
ON_POST = "w = clip(w + eta_bcm * x_bcm * (y_bcm_post - theta_bcm_post) / y0, 0, w_max_bcm)"
PRE_EQS = ""


@dataclass(frozen=True, kw_only=True)
class BCMConfig:
    """Constants of the spike-based BCM rule."""

    eta: float = 1e-4             # learning rate (per Hz^2 / Hz)
    tau_x_ms: float = 50.0        # presynaptic rate trace
    tau_y_ms: float = 50.0        # postsynaptic rate trace
    tau_theta_s: float = 5.0      # sliding threshold, slower than the rate traces (BCM stability)
    y0_hz: float = 10.0           # target rate: theta = y0 at y = y0
    w_max: float = 1.0            # weights clipped to [0, w_max]

    def __post_init__(self) -> None:
        check_positive(self, "tau_x_ms", "tau_y_ms", "tau_theta_s", "y0_hz", "w_max")
        if self.eta < 0:
            raise ConfigError(f"eta must be >= 0, got {self.eta!r}")


CONFIG = BCMConfig


def bcm_namespace(cfg: Any) -> dict[str, Any]:
    from brian2 import ms, second

    return {"eta_bcm": cfg.eta, "tau_x": cfg.tau_x_ms * ms, "tau_y": cfg.tau_y_ms * ms,
            "tau_theta": cfg.tau_theta_s * second, "y0": cfg.y0_hz, "w_max_bcm": cfg.w_max}


def synapses(pre, post, cfg: BCMConfig, *, connect: Connect = None, w0: float | None = None,
             delay_ms: float = 0.8, dt_ms: float | None = None, name: str = "bcm") -> list:
    """BCM synapses ``pre -> post`` onto ``g_ampa``; ``post`` must include :data:`POST_EQS` and :data:`POST_RESET`.

    The signature of every rule of :mod:`spiking.rules` (``dt_ms`` is not needed; ``w0`` None leaves w at 0).
    """
    from brian2 import Synapses, ms

    from spiking.rules import connect_synapses

    ns = bcm_namespace(cfg)
    if post.namespace is not None:
        post.namespace.update(ns)
    syn = Synapses(pre, post, BCM_EQS, on_pre=ON_PRE, on_post=ON_POST, delay=delay_ms * ms, namespace=ns,
                   name=name)
    connect_synapses(syn, connect)
    if w0 is not None:
        syn.w = w0
    return [syn]
