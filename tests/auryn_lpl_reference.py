"""An independent NumPy model of Auryn's LPL step, written from the C++ sources, for the spiking tests.

Sources read (not copied): ``fzenke/auryn`` at 36b3c197 (``System::run``: evolve groups, propagate,
evolve connections, evolve traces, execute devices, clock++; ``IFGroup::evolve``; ``SpikeDelay`` with
MINDELAY = 8; ``AurynDelayVector``; ``EulerTrace``; ``FileCurrentInjector``/``VoltageClamp``) and
``fmi-basel/latent-predictive-learning/spiking_simulations`` (``LPLConnection.cpp``, ``mk_spikes.py``).

The model simulates the post neurons itself (membrane, conductances, threshold, clamp); it takes only the
presynaptic spike trains and the constants. Nothing here imports the Brian2 code under test.
"""
from __future__ import annotations

import math

import numpy as np


def clamp_series(post_steps_s: np.ndarray, n_steps: int, dt_s: float, *, u_dep=-51e-3, u_spk=-20e-3,
                 u_rest=-60e-3, dep_interval=10e-3, ref_interval=5e-3) -> np.ndarray:
    """The clamp value written at the end of each step: ``post_voltage.dat`` of mk_spikes.py (its points,
    printed with ``%e``) read as ``FileCurrentInjector::load_time_series_file`` does (linear interpolation in
    steps, (AurynTime)(t/dt + 0.5)), 0 V past the end of the file."""
    pts = [(0.0, u_dep)]
    for ts in post_steps_s:
        pts += [(ts - dep_interval - dt_s, u_dep), (ts - dep_interval, u_dep), (ts - 2 * dt_s, u_dep),
                (ts - dt_s, u_spk), (ts, u_spk), (ts + dt_s, u_dep), (ts + ref_interval, u_dep)]
    ts = post_steps_s[-1]
    pts += [(ts + 2 * ref_interval, u_rest), (ts + 200.0, u_rest)]
    series: list[float] = []
    cur, lt, lc, nt, nc = 0, 0, 0.0, 0, 0.0
    for t, c in pts:
        t, c = float("%e" % t), float("%e" % c)
        lt, lc = nt, nc
        nt, nc = int(t / dt_s + 0.5), c
        while cur < nt:
            series.append(lc + (cur - lt) / (nt - lt) * (nc - lc))
            cur += 1
    series.append(lc)
    out = np.zeros(n_steps)
    m = min(n_steps, len(series))
    out[:m] = series[:m]
    return out


def simulate(*, n_steps: int, dt_s: float, pre_spikes: np.ndarray, syn_i: np.ndarray, syn_j: np.ndarray,
             n_post: int, w0: float, p: dict, u0: np.ndarray, clamp: np.ndarray | None = None,
             m0: np.ndarray | float = 0.0, sigma2_0: np.ndarray | float = 0.0, active_from_step: int = 0):
    """Run the LPL input connection onto ``n_post`` IFGroup cells for ``n_steps``.

    Parameters
    ----------
    pre_spikes : bool array (n_steps, n_pre)
        Presynaptic spikes at the step they are emitted.
    p : dict
        Constants: tau_mem, tau_ampa, tau_nmda, tau_gaba, tau_thr, u_rest, u_reset, e_inh, thr_rest, dthr,
        f_nmda (s, V), lam, phi, xi, delta, tau_mean, tau_sigma2, tau_err_rise, tau_err_decay, tau_syn,
        tau_psp, tau_el_rise, tau_el_decay, beta, n_acc, eta, w_max, mindelay, post_delay (steps).
    clamp : array (n_steps,), optional
        Voltage written into every post cell at the end of each step (VoltageClamp, mode ALL).

    Returns
    -------
    dict with w (n_syn,), post spikes (n_steps, n_post), mem after each step before the clamp, m, sigma2.
    """
    n_pre = pre_spikes.shape[1]
    d, dp = int(p["mindelay"]), int(p["post_delay"])
    mem = np.array(u0, dtype=float)
    g_ampa = np.zeros(n_post)
    g_nmda = np.zeros(n_post)
    g_gaba = np.zeros(n_post)
    thr = np.zeros(n_post)
    s_post = np.zeros((n_steps, n_post), dtype=bool)
    mem_trace = np.zeros((n_steps, n_post))
    m = np.broadcast_to(np.asarray(m0, dtype=float), (n_post,)).copy()
    sigma2 = np.broadcast_to(np.asarray(sigma2_0, dtype=float), (n_post,)).copy()
    e1 = np.zeros(n_post)
    eflt = np.zeros(n_post)
    x = np.zeros(n_pre)
    eps = np.zeros(n_pre)
    fp_mem = np.zeros((d, n_post))   # AurynDelayVector partial_delay
    psp_mem = np.zeros((d, n_pre))   # AurynDelayVector pre_psp_delay
    w = np.full(len(syn_i), float(w0))
    el = np.zeros(len(syn_i))
    elf = np.zeros(len(syn_i))
    acc = np.zeros(len(syn_i))
    a_n = p["f_nmda"]
    a_a = 1.0 - a_n
    dt = dt_s
    for n in range(n_steps):
        # --- System::evolve: IFGroup::evolve (integrate_linear_nmda_synapses, integrate_membrane, thresholds)
        t_exc = -(a_a * g_ampa + a_n * g_nmda) * mem
        t_inh = (mem - p["e_inh"]) * g_gaba
        g_nmda = g_nmda + (1 - math.exp(-dt / p["tau_nmda"])) * g_ampa - (1 - math.exp(-dt / p["tau_nmda"])) * g_nmda
        g_ampa = g_ampa * math.exp(-dt / p["tau_ampa"])
        g_gaba = g_gaba * math.exp(-dt / p["tau_gaba"])
        thr = thr * math.exp(-dt / p["tau_thr"])
        t_leak = mem - p["u_rest"]
        k = dt / p["tau_mem"]
        mem = mem + k * t_exc - k * t_inh - k * t_leak
        mem = np.clip(mem, p["e_inh"], 0.0)
        spk = mem > p["thr_rest"] + thr
        mem[spk] = p["u_reset"]
        thr[spk] = p["dthr"]
        s_post[n] = spk
        mem_trace[n] = mem
        # --- System::propagate: pre spikes of step n - MINDELAY transmit w into g_ampa
        if n >= d:
            for s in np.flatnonzero(pre_spikes[n - d]):
                sel = syn_i == s
                np.add.at(g_ampa, syn_j[sel], w[sel])
        # --- LPLConnection::evolve
        sc = s_post[n - d].astype(float) if n >= d else np.zeros(n_post)
        sd = s_post[n - dp].astype(float) if n >= dp else np.zeros(n_post)
        err = (sc - m * dt / p["tau_mean"]) / (sigma2 + p["xi"]) * p["lam"] + p["delta"] - p["phi"] * sc + p["phi"] * sd
        volt = mem
        fp_now = np.where(volt < -80e-3, 0.0, p["beta"] / (1.0 + np.abs((volt + 50e-3) * p["beta"])) ** 2)
        slot = n % d
        fp_del = fp_mem[slot].copy()     # value set d steps ago (mem_get of the oldest buffer)
        psp_del = psp_mem[slot].copy()
        fp_mem[slot] = fp_now            # advance(): the current value enters the buffer
        psp_mem[slot] = eps
        el = el + psp_del[syn_i] * fp_del[syn_j]
        elf = elf + (el - elf) * dt / p["tau_el_decay"]
        el = el * math.exp(-dt / p["tau_el_rise"])
        acc = acc + elf * eflt[syn_j]
        if n % int(p["n_acc"]) == 0:
            grad = acc / p["n_acc"]
            acc = np.zeros_like(acc)
            if n >= active_from_step:
                w = np.clip(w + grad * p["eta"], 0.0, p["w_max"])
        eps = eps + (x - eps) * dt / p["tau_psp"]
        tmp = (sc - m * dt / p["tau_mean"]) ** 2 / p["tau_sigma2"]
        sigma2 = (sigma2 + tmp) * math.exp(-dt / p["tau_sigma2"])
        # --- SpikingGroup::evolve_traces: pre trace with the delayed spikes, post traces with the current ones
        if n >= d:
            x = x + pre_spikes[n - d]
        x = x * math.exp(-dt / p["tau_syn"])
        m = (m + spk) * math.exp(-dt / p["tau_mean"])
        e1 = e1 + (err - e1) * dt / p["tau_err_rise"]
        eflt = eflt + (e1 - eflt) * dt / p["tau_err_decay"]
        # --- System::execute_devices: the voltage clamp
        if clamp is not None:
            mem = np.full(n_post, clamp[n])
    return {"w": w, "s_post": s_post, "mem": mem_trace, "m": m, "sigma2": sigma2}


class Both:
    """Attribute lookup over several configs (a neuron config and an LPL config), first match wins."""

    def __init__(self, *cfgs):
        self._cfgs = cfgs

    def __getattr__(self, name):
        for c in self._cfgs:
            if hasattr(c, name):
                return getattr(c, name)
        raise AttributeError(name)


def params_from(cfg, dt_s: float) -> dict:
    """The constants of :func:`simulate` from a spiking config (NeuronConfig + LPLConfig fields)."""
    return {
        "tau_mem": cfg.tau_mem_ms * 1e-3, "tau_ampa": cfg.tau_ampa_ms * 1e-3, "tau_nmda": cfg.tau_nmda_ms * 1e-3,
        "tau_gaba": cfg.tau_gaba_ms * 1e-3, "tau_thr": cfg.tau_thr_ms * 1e-3, "u_rest": cfg.u_rest_mv * 1e-3,
        "u_reset": cfg.u_reset_mv * 1e-3, "e_inh": cfg.e_inh_mv * 1e-3, "thr_rest": cfg.u_thr_mv * 1e-3,
        "dthr": cfg.thr_jump_mv * 1e-3, "f_nmda": cfg.f_nmda, "lam": cfg.lam, "phi": cfg.phi, "xi": cfg.xi,
        "delta": cfg.delta, "tau_mean": cfg.tau_mean_s, "tau_sigma2": cfg.tau_sigma2_s,
        "tau_err_rise": cfg.tau_err_rise_ms * 1e-3, "tau_err_decay": cfg.tau_err_decay_ms * 1e-3,
        "tau_syn": cfg.tau_pre_ms * 1e-3, "tau_psp": cfg.tau_psp_ms * 1e-3,
        "tau_el_rise": cfg.tau_el_rise_ms * 1e-3, "tau_el_decay": cfg.tau_el_decay_ms * 1e-3,
        "beta": cfg.beta_per_mv * 1e3, "n_acc": round(cfg.update_interval_s / dt_s), "eta": cfg.eta,
        "w_max": cfg.w_max, "mindelay": round(cfg.delay_ms * 1e-3 / dt_s),
        "post_delay": round(cfg.pred_delay_ms * 1e-3 / dt_s),
    }
