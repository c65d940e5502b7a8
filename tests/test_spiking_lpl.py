"""Spiking LPL in Brian2 against an independent NumPy model of Auryn's step (tests/auryn_lpl_reference.py).

The Brian2 network is tiny (4 presynaptic relay neurons with given spike trains -> 2 conductance LIF cells
receiving them), runs on the runtime device with the numpy target (no compilation). The reference is written
from LPLConnection.cpp, IFGroup and System::run (step order, MINDELAY, the 8-step delay vectors, the 20 ms post
delay line) and simulates the post cells itself from the same pre spike trains: post spikes, voltages and the
weights after several 0.5 s updates must agree (weights to 1e-9).
"""
from __future__ import annotations

import dataclasses
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
        objs = lpl.synapses(pre, post, cfg, connect=(i.ravel(), j.ravel()), w0=w0, delay_ms=DELAY_MS,
                            dt_ms=DT * 1e3, name="lpl")
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


def _numpy_reference(cfg: LPLConfig, n_steps: int, pre_idx, pre_steps, syn_i, syn_j, w0: float):
    """The independent Auryn-semantics model (tests/auryn_lpl_reference.py): it simulates the post cells itself."""
    import auryn_lpl_reference as ref
    from spiking.neurons import NeuronConfig

    ncfg = NeuronConfig(dt_ms=DT * 1e3, delay_ms=DELAY_MS)
    pre = np.zeros((n_steps, N_PRE), dtype=bool)
    pre[pre_steps, pre_idx] = True
    p = ref.params_from(ref.Both(ncfg, cfg), DT)
    out = ref.simulate(n_steps=n_steps, dt_s=DT, pre_spikes=pre, syn_i=syn_i, syn_j=syn_j, n_post=N_POST, w0=w0, p=p,
                       u0=np.array([-55e-3, -62e-3]), m0=cfg.prior_rate_hz * cfg.tau_mean_s, sigma2_0=cfg.sigma2,
                       active_from_step=int(round(cfg.plasticity_start_s / DT)))
    return out


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
    ref = _numpy_reference(cfg, n_steps, pre_idx, pre_steps, out["i"], out["j"], w0=0.6)
    return cfg, out, ref


def test_brian2_lpl_matches_independent_auryn_model(lpl_case):
    """Post spikes, weights and traces of the Brian2 rule equal those of the NumPy model of LPLConnection.cpp
    and IFGroup (not fed Brian2's spikes or voltages)."""
    cfg, out, ref = lpl_case
    s_ref = ref["s_post"]
    ref_steps = [np.flatnonzero(s_ref[:, k]) for k in range(N_POST)]
    b_steps = [np.sort(out["post_steps"][out["post_idx"] == k]) for k in range(N_POST)]
    assert sum(len(r) for r in ref_steps) >= 4, "the post cells must spike for the test to mean something"
    for k in range(N_POST):
        np.testing.assert_array_equal(b_steps[k], ref_steps[k])
    np.testing.assert_allclose(out["v"], ref["mem"], rtol=0, atol=1e-12)
    assert np.abs(ref["w"] - 0.6).max() > 1e-3, "weights must actually move"
    assert np.all((ref["w"] > 0) & (ref["w"] < 1)), "no clipping, so the comparison sees the raw update"
    np.testing.assert_allclose(out["w"], ref["w"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(out["m"][-1], ref["m"], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(out["sigma2"][-1], ref["sigma2"], rtol=1e-10, atol=1e-12)


def test_hebb_and_pred_off_change_the_outcome(lpl_case):
    """The reference itself: with lam = phi = 0 only delta drives the update (sign = sign of the eligibility)."""
    cfg, out, ref = lpl_case
    n_steps = int(round(DURATION / DT))
    off = dataclasses.replace(cfg, lam=0.0, phi=0.0)
    pre_idx, pre_steps = _pre_spikes(DURATION, 60.0, seed=3)
    w_off = _numpy_reference(off, n_steps, pre_idx, pre_steps, out["i"], out["j"], w0=0.6)["w"]
    assert np.all(w_off >= 0.6 - 1e-12)  # delta > 0 and eligibility >= 0: only potentiation
    assert not np.allclose(w_off, ref["w"])


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
    cfg, out, ref = lpl_case
    pre_idx, pre_steps = _pre_spikes(DURATION, 60.0, seed=3)
    cpp = _brian_run(cfg, DURATION, pre_idx, pre_steps, w0=0.6, device="cpp_standalone")
    np.testing.assert_array_equal(cpp["post_steps"], out["post_steps"])
    np.testing.assert_allclose(cpp["w"], ref["w"], rtol=0, atol=1e-9)
