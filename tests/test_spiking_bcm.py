"""Spike-based BCM: potentiation above the sliding threshold, depression below it, threshold tracks y^2/y0."""
from __future__ import annotations

import numpy as np
import pytest


def test_bcm_sign_follows_threshold():
    """Two identical pre/post pairs (50 Hz, post 5 ms after pre); threshold starts at 0 in one, 1000 in the other."""
    from brian2 import Network

    from spiking.devices import use_device
    from spiking.inputs import spike_train_group
    from spiking.rules.bcm import POST_EQS, POST_RESET, BCMConfig, synapses

    cfg = BCMConfig(eta=1e-4)
    steps = np.arange(20, 1500, 200)  # 50 Hz regular trains over 0.15 s
    idx = np.concatenate([np.zeros(len(steps), int), np.ones(len(steps), int)])
    both = np.concatenate([steps, steps])
    with use_device("runtime", seed=0, dt_ms=0.1, codegen="numpy") as dev:
        pre, *pre_drive = spike_train_group(2, idx, both, 0.1, name="pre")
        post, *post_drive = spike_train_group(2, idx, both + 50, 0.1, extra_eqs=POST_EQS + "g_ampa : 1\n",
                                              extra_reset=POST_RESET, name="post")
        (syn,) = synapses(pre, post, cfg, connect=([0, 1], [0, 1]), delay_ms=0.0, name="bcm")
        syn.w = 0.5
        post.theta_bcm = [0.0, 1e3]
        dev.run(Network(pre, *pre_drive, post, *post_drive, syn), 0.15)
        w = np.asarray(syn.w[:])
        theta = np.asarray(post.theta_bcm[:])
        y = np.asarray(post.y_bcm[:])
    assert w[0] > 0.5 > w[1]
    assert theta[0] > 0.0  # the threshold slides up towards y^2 / y0
    assert theta[1] < 1e3
    assert np.all(y > 0)


def test_bcm_config_validation():
    from bridge.errors import ConfigError
    from spiking.rules.bcm import BCMConfig

    with pytest.raises(ConfigError, match="eta must be"):
        BCMConfig(eta=-1)
