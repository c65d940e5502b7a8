"""Spiking latent predictive learning (LPL): the discrete update of Auryn's ``LPLConnection``.

Halvagal & Zenke (2023), Nat. Neurosci. 26:1906-1915, Eq. (18) and Methods "Spiking network model"; the
algorithm below is the one of ``spiking_simulations/LPLConnection.cpp`` before the 2024 reparametrisation,
as written out in ``reference/lpl.md`` section 4, steps 1-5. For each step n (dt = 0.1 ms), with s_i[n] the
post spike indicator and s_j the presynaptic one:

1. rate trace  m_i <- (m_i + s_i) exp(-dt/tau_mean),   rbar_i dt = m_i dt / tau_mean
2. error       e_i = lam (s_i - rbar_i dt) / (sigma2_i + xi) + delta - phi s_i[n] + phi s_i[n - D]
               (D = 20 ms / dt), filtered E1 += (e - E1) dt/2 ms, E_i += (E1 - E_i) dt/10 ms
3. eligibility x_j += s_j, x_j *= exp(-dt/5 ms);  eps_j += (x_j - eps_j) dt/20 ms;
               f'(U_i) = beta / (1 + beta |U_i - vartheta|)^2 with a fixed vartheta = -50 mV (Issue #5);
               c_ij = eps_j f'(U_i), both taken 0.8 ms earlier;
               el_ij += c_ij; elf_ij += (el_ij - elf_ij) dt/10 ms; el_ij *= exp(-dt/2 ms)
               (the inner filter has no dt on its input: DC gain tau_rise/dt = 20, Issue #3; we follow the
               discrete update, not the erratum's ODE); acc_ij += elf_ij E_i
4. every 0.5 s w_ij <- clip(w_ij + eta acc_ij / 5000, 0, w_max), acc <- 0 (weights frozen before
   ``plasticity_start_s``; all traces run). Fast variant (``run_snn_augmented_grad.sh``): g2 <- max(grad^2,
   exp(-0.5 s/tau_rms) g2) and w += eta grad / sqrt(g2), an RMS-max-normalised step of at most eta.
5. variance    sigma2_i <- (sigma2_i + (s_i - rbar_i dt)^2 / tau_sigma) exp(-dt/tau_sigma)
               (the original misses a factor dt, erratum Issue #4: sigma2 ~ rate in Hz; kept as in the code)

Errata: delta is a bias added to the error at every step (Issue #2, as the original code), not at each pre spike.

Step order and delays as in ``LPLConnection::evolve`` (Auryn ``System::run``: groups evolve, connections
propagate, connections evolve, traces evolve, devices), with s_i[n] the post spike of step n and D = 8 steps
(MINDELAY, 0.8 ms):

- the error and the variance use the post spike delayed by MINDELAY, s_i[n - D] (``dst->get_spikes()``), and
  the predictive target the 20 ms ``post_delay`` line of the undelayed spike, s_i[n - 200]: the effective
  Delta t is 19.2 ms; the rate trace m counts the undelayed spike (a post trace, ``evolve_traces``);
- e[n] uses m and sigma2 of the previous step; the accumulator uses the filtered error of the previous step
  (``tr_err_flt`` follows in ``evolve_traces``, after the connection): acc += elf[n] E[n - 1];
- c_ij[n] = eps_j[n - D] f'(U_i[n - D]) (the two ``AurynDelayVector`` of 8 steps), f' read at U after the
  integration and threshold of its step; eps_j follows the pre trace x_j, which counts the *delayed* pre
  spike (``src->get_spikes()``), so the PSP factor lags the pre spike by 2 D plus the one-step follow;
- the weight step at every 5000th step (clock % 5000 == 0, t = 0 included) uses the accumulator including
  that step; during priming (``stdp_active = false``) it only clears the accumulator.

lambda, phi, eta, the plasticity start and a time offset ``t_off_syn`` (t + t_off_syn is the simulated time, so that a
standalone binary can continue a run segment after segment) are shared group variables (:data:`RUN_VALUES`),
not compiled-in constants: one cpp_standalone binary serves every condition and learning rate.

Implementation in Brian2 (works in runtime, cpp_standalone and cuda_standalone, no ``network_operation``):
post-side state in the post ``NeuronGroup`` (:data:`POST_EQS`), pre-side traces in the presynaptic group
(:data:`PRE_EQS`). Self-pathways deliver the delayed spikes: the post spike after D (``spk8``) and after
``pred_delay_ms`` (``spk_delayed``), the pre spike after 2 D into ``arr_lpl``; f'(U) goes through an 8-step
shift register. In the ``end`` slot: synapse update (step 3, order 1) -> weight step (4, order 2, every
0.5 s) -> post update (steps 1, 2, 5), pre trace and shift register (order 3), flags cleared.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bridge.config import check_positive
from bridge.errors import ConfigError
from spiking.rules import Connect

#: number of f'(U) delay stages (0.8 ms at dt = 0.1 ms); the experiments check dt against it
DELAY_STAGES_DEFAULT = 8


@dataclass(frozen=True, kw_only=True)
class LPLConfig:
    """Constants of the spiking LPL rule (``LPLConnection.cpp``, ``sim_lpl_spiking.cpp``, ``run_snn.sh``)."""

    eta: float = 1e-2                  # learning rate, run_snn.sh (--eta 1e-2); lpl.md step 4
    lam: float = 1.0                   # lambda, Hebbian coefficient (Hebb off: 0), run_snn.sh
    phi: float = 1.0                   # phi, predictive coefficient (Pred off: 0), run_snn.sh
    tau_mean_s: float = 600.0          # rate trace tau_mean, run_snn.sh; lpl.md step 1
    tau_sigma2_s: float = 30.0         # variance trace tau_sigma, run_snn.sh; lpl.md step 5
    xi: float = 1e-3                   # xi in the Hebbian denominator, lpl.md step 2
    delta: float = 1e-5                # transmitter-triggered bias added to the error, LPLConnection.cpp
    pred_delay_ms: float = 20.0        # Delta t of the predictive term (post_delay 20 ms)
    tau_err_rise_ms: float = 2.0       # error filter rise (tau_vrd_rise)
    tau_err_decay_ms: float = 10.0     # error filter decay (tau_vrd_decay)
    tau_pre_ms: float = 5.0            # pre trace x (tau_syn)
    tau_psp_ms: float = 20.0           # PSP filter eps (tau_mem)
    beta_per_mv: float = 1.0           # surrogate steepness beta = 1/mV (LPLConnection::beta = 1/1e-3 V)
    surrogate_theta_mv: float = -50.0  # fixed vartheta of the surrogate (Issue #5)
    tau_el_rise_ms: float = 2.0        # inner eligibility filter (tau_el_rise), no dt on its input
    tau_el_decay_ms: float = 10.0      # outer eligibility filter (tau_el_decay)
    update_interval_s: float = 0.5     # weight step every 5000 steps (timestep_rmsprop_updates)
    w_max: float = 1.0                 # weights clipped to [0, w_max], run_snn.sh
    fast_rms: bool = False             # RMS-max-normalised step, run_snn_augmented_grad.sh (not in paper)
    tau_rms_s: float = 100.0           # g2 decay of the fast variant, exp(-0.5 s/100 s), lpl.md section 4
    sigma2: float = 0.0                # initial variance trace (STDP protocol sets 0.1, 1 or 100)
    prior_rate_hz: float = 0.0         # initial rate estimate, m = prior * tau_mean (STDP protocol: 10 Hz)
    plasticity_start_s: float = 1800.0  # weights frozen before this time: 3 tau_mean priming, run_snn.sh

    def __post_init__(self) -> None:
        validate_lpl(self)


CONFIG = LPLConfig


def validate_lpl(cfg: Any) -> None:
    """Raise ConfigError for an impossible LPL config (also used by the experiment configs)."""
    check_positive(cfg, "tau_mean_s", "tau_sigma2_s", "xi", "pred_delay_ms", "tau_err_rise_ms",
                   "tau_err_decay_ms", "tau_pre_ms", "tau_psp_ms", "beta_per_mv", "tau_el_rise_ms",
                   "tau_el_decay_ms", "update_interval_s", "w_max", "tau_rms_s")
    for name in ("eta", "lam", "phi", "sigma2", "prior_rate_hz", "plasticity_start_s"):
        if getattr(cfg, name) < 0:
            raise ConfigError(f"{name} must be >= 0, got {getattr(cfg, name)!r}")


POST_EQS = """
lam : 1 (shared)
phi : 1 (shared)
spk : 1
spk8 : 1
spk_delayed : 1
e_lpl : 1
m : 1
rbar_dt : 1
sigma2 : 1
err_rise : 1
err : 1
fp1 : 1
fp2 : 1
fp3 : 1
fp4 : 1
fp5 : 1
fp6 : 1
fp7 : 1
fp8 : 1
"""
#: the post neuron flags its own spike for the error of this step (added to its reset)
POST_RESET = "spk = 1"
PRE_EQS = """
x_lpl : 1
eps_lpl : 1
arr_lpl : 1
"""
#: steps 1, 2 and 5 (per post neuron), after the synapses: e and sigma2 from m and sigma2 of the previous
#: step and the MINDELAY-delayed spike, then m with the undelayed spike, then the error filters
POST_UPDATE = """
rbar_dt = m * dt_over_tau_mean
e_lpl = lam * (spk8 - rbar_dt) / (sigma2 + xi) + delta - phi * spk8 + phi * spk_delayed
sigma2 = (sigma2 + (spk8 - rbar_dt)**2 / tau_sigma2) * k_sigma2
m = (m + spk) * k_mean
err_rise += (e_lpl - err_rise) * dt_over_err_rise
err += (err_rise - err) * dt_over_err_decay
"""
#: step 3 (per synapse); ``eps_lpl_pre`` (before its update this step) and ``fp8_post`` are eps_j[n - D] and
#: f'(U_i[n - D]); ``err_post`` is still the previous step's filtered error
SYN_UPDATE = """
el += eps_lpl_pre * fp8_post
elf += (el - elf) * dt_over_el_decay
el *= k_el_rise
acc += elf * err_post
"""
SYN_EQS = """
eta : 1 (shared)
t_plastic : second (shared)
t_off_syn : second (shared)
w : 1
el : 1
elf : 1
acc : 1
"""
SYN_EQS_FAST = SYN_EQS + "g2 : 1\n"
#: step 4 (every update_interval_s); gate = 0 while priming
WEIGHT_STEP = """
w = clip(w + int(t + t_off_syn >= t_plastic) * eta * acc / n_acc, 0, w_max)
acc = 0
"""
WEIGHT_STEP_FAST = """
g2 = clip(acc**2 / n_acc**2, k_rms * g2, 1e300)
w = clip(w + int(t + t_off_syn >= t_plastic) * eta * (acc / n_acc) / (sqrt(g2) + 1e-32), 0, w_max)
acc = 0
"""
#: after the synapses: shift register of f'(U) (SI units, 1/V), flags cleared
POST_SHIFT = """
fp8 = fp7
fp7 = fp6
fp6 = fp5
fp5 = fp4
fp4 = fp3
fp3 = fp2
fp2 = fp1
fp1 = int(v / volt >= -0.08) * beta_v / (1 + beta_v * abs(v / volt - theta_v))**2
spk = 0
spk8 = 0
spk_delayed = 0
"""
#: eps follows x of the previous step (tr_pre_psp->follow before the pre trace evolves), then x counts the
#: pre spike that arrived after 2 D
PRE_UPDATE = """
eps_lpl += (x_lpl - eps_lpl) * dt_over_psp
x_lpl = (x_lpl + arr_lpl) * k_pre
arr_lpl = 0
"""


def lpl_namespace(cfg: Any, dt_s: float) -> dict[str, Any]:
    """Dimensionless constants of the discrete update for a step of ``dt_s`` seconds."""
    import math

    from brian2 import second

    n_acc = int(round(cfg.update_interval_s / dt_s))
    return {
        "k_mean": math.exp(-dt_s / cfg.tau_mean_s), "dt_over_tau_mean": dt_s / cfg.tau_mean_s,
        "xi": float(cfg.xi), "delta": float(cfg.delta),
        "dt_over_err_rise": dt_s / (cfg.tau_err_rise_ms * 1e-3),
        "dt_over_err_decay": dt_s / (cfg.tau_err_decay_ms * 1e-3),
        "tau_sigma2": float(cfg.tau_sigma2_s), "k_sigma2": math.exp(-dt_s / cfg.tau_sigma2_s),
        "dt_over_el_decay": dt_s / (cfg.tau_el_decay_ms * 1e-3),
        "k_el_rise": math.exp(-dt_s / (cfg.tau_el_rise_ms * 1e-3)),
        "dt_over_psp": dt_s / (cfg.tau_psp_ms * 1e-3), "k_pre": math.exp(-dt_s / (cfg.tau_pre_ms * 1e-3)),
        "beta_v": cfg.beta_per_mv * 1e3, "theta_v": cfg.surrogate_theta_mv * 1e-3,
        "n_acc": float(n_acc), "w_max": float(cfg.w_max),
        "k_rms": math.exp(-cfg.update_interval_s / cfg.tau_rms_s),
    }


#: run-time values (shared group variables, so one standalone binary serves every value): name -> owner
RUN_VALUES = {"lam": "post", "phi": "post", "eta": "syn", "t_plastic": "syn", "t_off_syn": "syn"}


def set_run_values(syn, post, cfg: Any, t_off_s: float = 0.0) -> None:
    """Assign lambda, phi (post group), eta, the plasticity start and the time offset (synapses)."""
    from brian2 import second

    post.lam = float(cfg.lam)
    post.phi = float(cfg.phi)
    syn.eta = float(cfg.eta)
    syn.t_plastic = cfg.plasticity_start_s * second
    syn.t_off_syn = t_off_s * second


def synapses(pre, post, cfg: LPLConfig, *, connect: Connect, w0: float, delay_ms: float, dt_ms: float,
             name: str = "lpl", on_pre: str = "g_ampa_post += w") -> list:
    """Build the LPL synapses ``pre -> post`` and the per-step code on ``pre`` and ``post``.

    The signature every rule of :mod:`spiking.rules` has (``on_pre`` is this rule's own extra).

    Parameters
    ----------
    pre : NeuronGroup
        Presynaptic group whose equations include :data:`PRE_EQS`.
    post : NeuronGroup
        Postsynaptic group whose equations include :data:`POST_EQS` and whose reset includes
        :data:`POST_RESET`; it must have a membrane variable ``v`` (volt).
    cfg : LPLConfig
    connect : see :data:`spiking.rules.Connect`
        A connection probability expression (drawn by Brian2, inside a standalone binary) or (i, j) indices.
    w0 : float
        Initial weight.
    delay_ms : float
        Transmission delay; also the delay of the eligibility factors ("taken 0.8 ms earlier").
    dt_ms : float
        Simulation step; ``delay_ms`` must be 8 steps (the shift register of f').
    on_pre : str
        Transmission code ('' for a voltage-clamped post neuron).

    Returns
    -------
    list of Brian2 objects
        ``[synapses, pre_delay_pathway, post_delay_pathway, post_mindelay_pathway]``; add them (and ``pre``, ``post``) to the Network.
    """
    from brian2 import Synapses, ms, second

    from spiking.rules import connect_synapses

    dt_s = dt_ms * 1e-3
    ns = lpl_namespace(cfg, dt_s)
    if abs(delay_ms / (dt_s * 1e3) - DELAY_STAGES_DEFAULT) > 1e-6:
        raise ConfigError(f"the LPL eligibility delay uses {DELAY_STAGES_DEFAULT} steps of dt; delay_ms = "
                          f"{delay_ms!r} with dt = {dt_s * 1e3!r} ms is not supported")
    if cfg.pred_delay_ms / (dt_s * 1e3) < 1:
        raise ConfigError(f"pred_delay_ms = {cfg.pred_delay_ms!r} must be at least one step dt = {dt_s * 1e3} ms")
    eqs = SYN_EQS_FAST if cfg.fast_rms else SYN_EQS
    kw = {"on_pre": on_pre, "delay": delay_ms * ms} if on_pre else {}
    syn = Synapses(pre, post, eqs, namespace=ns, name=name, **kw)
    connect_synapses(syn, connect)
    syn.w = w0
    set_run_values(syn, post, cfg)
    syn.run_regularly(SYN_UPDATE, when="end", order=1, name=f"{name}_elig")
    syn.run_regularly(WEIGHT_STEP_FAST if cfg.fast_rms else WEIGHT_STEP, dt=cfg.update_interval_s * second,
                      when="end", order=2, name=f"{name}_wstep")
    # post side: rate, error, variance (order 0, before the synapses), then the shift register (order 3)
    if post.namespace is None or pre.namespace is None:
        raise ConfigError("the LPL synapses need pre and post groups created with a namespace dict (e.g. {})")
    post.namespace.update(ns)
    post.m = cfg.prior_rate_hz * cfg.tau_mean_s
    post.sigma2 = cfg.sigma2
    post.run_regularly(POST_UPDATE, when="end", order=3, name=f"{name}_postupdate")
    post.run_regularly(POST_SHIFT, when="end", order=4, name=f"{name}_shift")
    pre.namespace.update(ns)
    pre.run_regularly(PRE_UPDATE, when="end", order=3, name=f"{name}_preupdate")
    # s_j reaches the pre trace after twice the transmission delay (see the module docstring)
    pre_path = Synapses(pre, pre, on_pre="arr_lpl_post += 1", delay=2 * delay_ms * ms, name=f"{name}_pretrace")
    pre_path.connect(j="i", namespace={})
    # s_i[n - D] for the error and the variance
    post_d = Synapses(post, post, on_pre="spk8_post = 1", delay=delay_ms * ms, name=f"{name}_postd")
    post_d.connect(j="i", namespace={})
    post_path = Synapses(post, post, on_pre="spk_delayed_post = 1", delay=cfg.pred_delay_ms * ms,
                         name=f"{name}_postdelay")
    post_path.connect(j="i", namespace={})
    return [syn, pre_path, post_path, post_d]
