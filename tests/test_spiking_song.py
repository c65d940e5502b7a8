"""Song, Miller & Abbott (2000): additive STDP drives the input weights to a bimodal distribution.

Needs 100 s of simulated time with 1000 inputs, so it runs as one cpp_standalone build (opt-in, marker
``standalone``); the rule's pair update itself is checked on the runtime device with two given spikes.
"""
from __future__ import annotations

import os

import numpy as np
import pytest


@pytest.mark.standalone
@pytest.mark.skipif(os.environ.get("RATESPIKE_STANDALONE_TESTS") != "1",
                    reason="compiles a cpp_standalone project (~30-150 s); set RATESPIKE_STANDALONE_TESTS=1 to run")
def test_additive_stdp_makes_weights_bimodal(tmp_path):
    from spiking.experiments import song_stdp

    cfg = song_stdp.config(duration_s=100.0)
    # measured (seed 0): edge bins 140 and 127 vs an interior mean of 41; 37 % of weights in the middle
    # three fifths, down from 60 %
    ds, _ = song_stdp.simulate(cfg, seed=0, device="cpp_standalone", build_root=tmp_path)
    h0, h1 = ds["w_hist"].values[0], ds["w_hist"].values[-1]  # (w_bin,) at t = 0 and at the end
    # uniform start: edge bins like the others; after 100 s a U shape: both edge bins far above the interior
    assert max(h0[0], h0[-1]) < 1.5 * h0[1:-1].mean()
    assert h1[0] > 2.5 * h1[1:-1].mean() and h1[-1] > 2.5 * h1[1:-1].mean()
    before = song_stdp.bimodality(ds["w_initial"].values, cfg.rule.g_max)
    after = song_stdp.bimodality(ds["w_final"].values, cfg.rule.g_max)
    assert after["middle"] < before["middle"] - 0.15


@pytest.mark.parametrize("lag_ms,sign", [(10.0, 1), (-10.0, -1)])
def test_pair_update_sign_and_size(lag_ms, sign):
    """One pre and one post spike lag_ms apart (post - pre): dw = A+ exp(-|lag|/tau) or A- exp(-|lag|/tau)."""
    from brian2 import Network, NeuronGroup, SpikeGeneratorGroup, ms

    from spiking.devices import use_device
    from spiking.rules.stdp import STDPConfig, stdp_namespace, synapses

    cfg = STDPConfig()
    w0 = 0.5 * cfg.g_max
    t_pre, t_post = 20.0, 20.0 + lag_ms
    with use_device("runtime", seed=0, dt_ms=0.1, codegen="numpy") as dev:
        pre = SpikeGeneratorGroup(1, [0], [t_pre] * ms, name="pre")
        post_gen = SpikeGeneratorGroup(1, [0], [t_post] * ms, name="post_gen")
        post = NeuronGroup(1, "g_stdp : 1\nfire : 1", threshold="fire > 0", reset="fire = 0", namespace={},
                           name="post")
        from brian2 import Synapses

        kick = Synapses(post_gen, post, on_pre="fire_post = 1", name="kick")
        kick.connect(j="i", namespace={})
        (syn,) = synapses(pre, post, cfg, name="stdp")
        syn.w = w0
        dev.run(Network(pre, post_gen, post, kick, syn), 0.06)
        w = float(syn.w[0])
    ns = stdp_namespace(cfg)
    # the post relay fires one step after its generator
    lag = (t_post + 0.1 - t_pre) * 1e-3
    amp = ns["da_pre"] if sign > 0 else ns["da_post"]
    expected = w0 + amp * np.exp(-abs(lag) / float(ns["tau_pre"] if sign > 0 else ns["tau_post"]))
    assert np.sign(w - w0) == sign
    assert w == pytest.approx(expected, rel=2e-2)
