"""iSTDP (Vogels et al. 2011) on I -> E against a NumPy model of Auryn's ``SymmetricSTDPConnection``.

The reference follows ``SymmetricSTDPConnection::propagate`` and ``SpikingGroup::evolve_traces`` of Auryn
36b3c197 (read for facts, nothing imported): in step n the inhibitory spikes of step n - MINDELAY transmit the
old weight into g_gaba, then w += zeta (x_post - 2 kappa tau), clipped at 0 only; then every post spike of step
n adds zeta x_pre, clipped at w_max only; then the traces evolve: x_pre counts the *delayed* pre spikes, x_post
the current post spikes, both scaled by exp(-dt/tau) every step. The spike trains include a pre arrival and a
post spike in the same step (Auryn's post update does not see that step's pre spike).
Runs on the runtime device with the numpy target (no compiler).
"""
from __future__ import annotations

import math

import numpy as np
import pytest

DT_MS = 0.1
D = 8  # MINDELAY


def _reference(pre_steps, post_steps, n_steps, w0, zeta, alpha, tau_s, w_max, dt_s):
    s_pre = np.zeros(n_steps, dtype=bool)
    s_pre[pre_steps] = True
    s_post = np.zeros(n_steps, dtype=bool)
    s_post[post_steps] = True
    w, x_pre, x_post, g = w0, 0.0, 0.0, 0.0
    k = math.exp(-dt_s / tau_s)
    g_in = []
    for n in range(n_steps):
        if n >= D and s_pre[n - D]:  # propagate_forward: transmit, then dw_pre, clip at the minimum
            g += w
            w = max(w + zeta * (x_post - alpha), 0.0)
        if s_post[n]:                # propagate_backward: dw_post, clip at the maximum
            w = min(w + zeta * x_pre, w_max)
        if n >= D and s_pre[n - D]:  # evolve_traces: pre trace from the delayed spikes
            x_pre += 1
        x_pre *= k
        x_post = (x_post + s_post[n]) * k
        g_in.append(g)
    return w, np.array(g_in)


def _brian(pre_steps, post_steps, duration_s, w0, zeta):
    from brian2 import Network, StateMonitor

    from spiking.devices import use_device
    from spiking.inputs import spike_train_group
    from spiking.rules.istdp import ISTDPConfig, synapses

    cfg = ISTDPConfig(zeta=zeta)
    with use_device("runtime", seed=0, dt_ms=DT_MS, codegen="numpy") as dev:
        pre, *dp = spike_train_group(1, np.zeros(len(pre_steps), int), pre_steps, DT_MS, name="ipre")
        post, *dq = spike_train_group(1, np.zeros(len(post_steps), int), post_steps, DT_MS,
                                      extra_eqs="g_gaba : 1\n", name="epost")
        (syn,) = synapses(pre, post, cfg, connect=([0], [0]), w0=w0, delay_ms=D * DT_MS, dt_ms=DT_MS, name="ie")
        mon = StateMonitor(post, "g_gaba", record=[0], when="end", name="gmon")
        dev.run(Network(pre, *dp, post, *dq, syn, mon), duration_s)
        dev.finish()
        return float(syn.w[0]), np.asarray(mon.g_gaba[0]), cfg


@pytest.mark.parametrize("w0,zeta", [(0.5, 0.004), (0.999, 0.05)])
def test_istdp_matches_auryn_symmetric_stdp(w0, zeta):
    rng = np.random.default_rng(4)
    n_steps = 6000
    pre = np.sort(rng.choice(np.arange(1, n_steps - 20), 40, replace=False))
    post = np.sort(rng.choice(np.arange(1, n_steps - 20), 50, replace=False))
    post = np.union1d(post, pre[:5] + D)  # post spikes in the steps where a pre spike arrives
    w_b, g_b, cfg = _brian(pre, post, n_steps * DT_MS * 1e-3, w0, zeta)
    alpha = 2 * cfg.kappa_hz * cfg.tau_ms * 1e-3
    w_r, g_r = _reference(pre, post, n_steps, w0, zeta, alpha, cfg.tau_ms * 1e-3, cfg.w_max, DT_MS * 1e-3)
    assert abs(w_r - w0) > 1e-4  # the weight moved by far more than the tolerance below
    assert w_b == pytest.approx(w_r, abs=1e-9)
    # the relay's g_gaba does not decay: it sums the transmitted (pre-update) weights, step by step
    np.testing.assert_allclose(g_b, g_r, rtol=0, atol=1e-9)


def test_istdp_pair_sizes():
    """One pre arrival 10 ms before a post spike: dw = zeta exp(-10/20) at the post spike, and
    zeta (0 - alpha) at the arrival (no post spike before it)."""
    zeta = 0.01
    pre_step = 100
    post_step = pre_step + D + 100
    w_b, _, cfg = _brian(np.array([pre_step]), np.array([post_step]), 0.05, 0.5, zeta)
    alpha = 2 * cfg.kappa_hz * cfg.tau_ms * 1e-3
    expected = 0.5 - zeta * alpha + zeta * math.exp(-100 * DT_MS / cfg.tau_ms)
    assert w_b == pytest.approx(expected, abs=1e-12)
    assert abs(expected - 0.5) > 1e-3  # the change is many orders above the tolerance
