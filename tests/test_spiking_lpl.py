"""Spiking LPL in Brian2 against a plain NumPy transcription of the discrete algorithm (lpl.md section 4).

The Brian2 network is tiny (4 presynaptic relay neurons with given spike trains -> 2 conductance LIF cells),
runs on the runtime device with the numpy target (no compilation), and records the post spikes and the
membrane potential at the end of every step. The reference is a deliberately naive loop over steps that
takes those post spikes and voltages, the given pre spikes and the config, and applies steps 1-5 literally;
the weights after several 0.5 s updates must agree to 1e-9.
"""
from __future__ import annotations

import dataclasses
import math
import os

import numpy as np
import pytest

from bridge.errors import ConfigError
from spiking.rules.lpl import LPLConfig

# dt = 0.5 ms keeps the numpy-target run short; the delays keep their step counts (8 steps of delay line)
DT = 5e-4
DELAY_MS = 8 * DT * 1e3
N_PRE, N_POST = 4, 2


def _pre_spikes(duration_s: float, rate_hz: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    steps, idx = [], []
    n = int(round(duration_s / DT))
    for j in range(N_PRE):
        s = np.flatnonzero(rng.random(n) < rate_hz * DT)
        s = s[s >= 2]
        steps.append(s)
        idx.append(np.full(len(s), j))
    return np.concatenate(idx), np.concatenate(steps)


def _brian_run(cfg: LPLConfig, duration_s: float, pre_idx, pre_steps, w0: float, device: str = "runtime"):
    """Tiny network on runtime/numpy; returns final w, syn (i, j), post spike steps, v (step, post), traces."""
    from brian2 import Network, SpikeMonitor, StateMonitor, ms, mV

    from spiking.devices import use_device
    from spiking.inputs import spike_train_group
    from spiking.neurons import NeuronConfig, lif_group
    from spiking.rules import lpl

    ncfg = NeuronConfig(dt_ms=DT * 1e3, delay_ms=DELAY_MS)
    with use_device(device, seed=1, dt_ms=DT * 1e3, codegen="numpy") as dev:
        pre, *drive = spike_train_group(N_PRE, pre_idx, pre_steps, DT * 1e3, extra_eqs=lpl.PRE_EQS, name="pre")
        post = lif_group(N_POST, ncfg, name="post", extra_eqs=lpl.POST_EQS, extra_reset=lpl.POST_RESET)
        post.v = np.array([-55.0, -62.0]) * mV
        i, j = np.meshgrid(np.arange(N_PRE), np.arange(N_POST), indexing="ij")
        objs = lpl.lpl_synapses(pre, post, cfg, dt_s=DT, i=i.ravel(), j=j.ravel(), w0=w0, delay_ms=DELAY_MS,
                                name="lpl")
        sm = SpikeMonitor(post, name="sm")
        vm = StateMonitor(post, "v", record=True, when="end", order=10, name="vm")
        tm = StateMonitor(post, ["m", "sigma2", "err"], record=True, when="end", order=10, name="tm")
        net = Network(pre, *drive, post, sm, vm, tm, *objs)
        dev.run(net, duration_s)
        dev.finish()
        syn = objs[0]
        out = dict(w=np.asarray(syn.w[:]), i=np.asarray(syn.i[:]), j=np.asarray(syn.j[:]),
                   post_steps=np.round(np.asarray(sm.t[:] / ms) / (DT * 1e3)).astype(int), post_idx=np.asarray(sm.i[:]),
                   v=np.asarray(vm.v[:]).T, m=np.asarray(tm.m[:]).T, sigma2=np.asarray(tm.sigma2[:]).T,
                   err=np.asarray(tm.err[:]).T)
    return out


def _numpy_reference(cfg: LPLConfig, n_steps: int, pre_idx, pre_steps, post_idx, post_steps, v, syn_i, syn_j,
                     w0: float):
    """Steps 1-5 of the discrete LPL algorithm, one step at a time (naive loops over synapses)."""
    d_pred = int(round(cfg.pred_delay_ms * 1e-3 / DT))
    d_el = 8
    n_acc = int(round(cfg.update_interval_s / DT))
    s_pre = np.zeros((n_steps, N_PRE))
    s_pre[pre_steps, pre_idx] = 1
    s_post = np.zeros((n_steps, N_POST))
    s_post[post_steps, post_idx] = 1
    m = np.full(N_POST, cfg.prior_rate_hz * cfg.tau_mean_s)
    sigma2 = np.full(N_POST, cfg.sigma2)
    e1 = np.zeros(N_POST)
    err = np.zeros(N_POST)
    x = np.zeros(N_PRE)
    eps = np.zeros(N_PRE)
    fp_hist = np.zeros((n_steps, N_POST))  # f'(U) after step n
    n_syn = len(syn_i)
    w = np.full(n_syn, w0)
    el = np.zeros(n_syn)
    elf = np.zeros(n_syn)
    acc = np.zeros(n_syn)
    beta = cfg.beta_per_mv * 1e3
    theta = cfg.surrogate_theta_mv * 1e-3
    ms_trace, s2_trace = [], []
    for n in range(n_steps):
        s = s_post[n]
        s_old = s_post[n - d_pred] if n >= d_pred else np.zeros(N_POST)
        if n >= d_el:
            x += s_pre[n - d_el]  # pre spikes arrive after the 0.8 ms delay
        # 1. rate
        m = (m + s) * math.exp(-DT / cfg.tau_mean_s)
        rbar_dt = m * DT / cfg.tau_mean_s
        # 2. error and its double-exponential filter
        e = cfg.lam * (s - rbar_dt) / (sigma2 + cfg.xi) + cfg.delta - cfg.phi * s + cfg.phi * s_old
        e1 = e1 + (e - e1) * DT / (cfg.tau_err_rise_ms * 1e-3)
        err = err + (e1 - err) * DT / (cfg.tau_err_decay_ms * 1e-3)
        # 5. variance (uses the same rbar_dt; sigma2 of this step already entered the error)
        sigma2 = (sigma2 + (s - rbar_dt) ** 2 / cfg.tau_sigma2_s) * math.exp(-DT / cfg.tau_sigma2_s)
        # 3. eligibility, with f'(U) from 8 steps earlier and the delayed PSP
        for k in range(n_syn):
            a, b = syn_i[k], syn_j[k]
            fp = fp_hist[n - d_el, b] if n >= d_el else 0.0
            el[k] += eps[a] * fp
            elf[k] += (el[k] - elf[k]) * DT / (cfg.tau_el_decay_ms * 1e-3)
            el[k] *= math.exp(-DT / (cfg.tau_el_rise_ms * 1e-3))
            acc[k] += elf[k] * err[b]
        # 4. weight step every 0.5 s
        if n % n_acc == 0:
            gate = 1.0 if n * DT >= cfg.plasticity_start_s - 1e-12 else 0.0
            w = np.clip(w + gate * cfg.eta * acc / n_acc, 0, cfg.w_max)
            acc[:] = 0
        fp_hist[n] = beta / (1 + beta * np.abs(v[n] - theta)) ** 2
        eps = eps + (x - eps) * DT / (cfg.tau_psp_ms * 1e-3)
        x = x * math.exp(-DT / (cfg.tau_pre_ms * 1e-3))
        ms_trace.append(m.copy())
        s2_trace.append(sigma2.copy())
    return w, np.array(ms_trace), np.array(s2_trace)


ETA = 0.01
DURATION = 1.1  # weight steps at 0, 0.5 and 1.0 s


@pytest.fixture(scope="module")
def lpl_case():
    cfg = LPLConfig(eta=ETA, plasticity_start_s=0.0, sigma2=0.5, prior_rate_hz=5.0, tau_sigma2_s=2.0,
                    tau_mean_s=5.0, delta=1e-3)
    duration = DURATION
    pre_idx, pre_steps = _pre_spikes(duration, 60.0, seed=3)
    out = _brian_run(cfg, duration, pre_idx, pre_steps, w0=0.6)
    n_steps = int(round(duration / DT))
    ref = _numpy_reference(cfg, n_steps, pre_idx, pre_steps, out["post_idx"], out["post_steps"], out["v"],
                           out["i"], out["j"], w0=0.6)
    return cfg, out, ref


def test_brian2_lpl_matches_numpy_reference_step_for_step(lpl_case):
    cfg, out, (w_ref, m_ref, s2_ref) = lpl_case
    assert len(out["post_steps"]) >= 4, "the post cells must spike for the test to mean something"
    assert np.abs(w_ref - 0.6).max() > 1e-3, "weights must actually move"
    assert np.all((w_ref > 0) & (w_ref < 1)), "no clipping, so the comparison sees the raw update"
    np.testing.assert_allclose(out["w"], w_ref, rtol=0, atol=1e-9)
    np.testing.assert_allclose(out["m"], m_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(out["sigma2"], s2_ref, rtol=1e-10, atol=1e-12)


def test_hebb_and_pred_off_change_the_outcome(lpl_case):
    """The reference itself: with lam = phi = 0 only delta drives the update (sign = sign of the eligibility)."""
    cfg, out, (w_ref, _, _) = lpl_case
    n_steps = int(round(DURATION / DT))
    off = dataclasses.replace(cfg, lam=0.0, phi=0.0)
    pre_idx, pre_steps = _pre_spikes(DURATION, 60.0, seed=3)
    w_off, _, _ = _numpy_reference(off, n_steps, pre_idx, pre_steps, out["post_idx"], out["post_steps"], out["v"],
                                   out["i"], out["j"], w0=0.6)
    assert np.all(w_off >= 0.6 - 1e-12)  # delta > 0 and eligibility >= 0: only potentiation
    assert not np.allclose(w_off, w_ref)


@pytest.mark.parametrize("field,value", [("tau_mean_s", 0.0), ("xi", -1.0), ("eta", -0.1), ("sigma2", -1.0)])
def test_lpl_config_rejects_bad_values(field, value):
    with pytest.raises(ConfigError, match=field):
        LPLConfig(**{field: value})


STANDALONE = pytest.mark.skipif(os.environ.get("RATESPIKE_STANDALONE_TESTS") != "1",
                                reason="compiles a cpp_standalone project (~30-150 s); set "
                                       "RATESPIKE_STANDALONE_TESTS=1 to run")


@pytest.mark.standalone
@STANDALONE
def test_cpp_standalone_lpl_matches_numpy_reference(lpl_case):
    """The same tiny network compiled with cpp_standalone: same weights as the reference (one build)."""
    cfg, out, (w_ref, _, _) = lpl_case
    pre_idx, pre_steps = _pre_spikes(DURATION, 60.0, seed=3)
    cpp = _brian_run(cfg, DURATION, pre_idx, pre_steps, w0=0.6, device="cpp_standalone")
    np.testing.assert_array_equal(cpp["post_steps"], out["post_steps"])
    np.testing.assert_allclose(cpp["w"], w_ref, rtol=0, atol=1e-9)
