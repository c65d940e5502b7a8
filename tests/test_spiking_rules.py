"""One shape for the spiking rules (spiking.rules): config, equations, synapses(pre, post, cfg, *, connect, ...)."""
from __future__ import annotations

import inspect

import numpy as np
import pytest

from bridge.errors import ConfigError
from spiking.rules import RULES, get_rule

COMMON = ("connect", "w0", "delay_ms", "dt_ms", "name")


@pytest.mark.parametrize("name", sorted(RULES))
def test_every_rule_has_the_same_shape(name):
    mod = get_rule(name)
    cfg = mod.CONFIG()
    assert type(cfg).__name__.endswith("Config") and type(cfg).__name__ != "Config"
    for attr in ("PRE_EQS", "POST_EQS", "POST_RESET"):
        assert isinstance(getattr(mod, attr), str)
    params = inspect.signature(mod.synapses).parameters
    assert list(params)[:3] == ["pre", "post", "cfg"]
    kw = [p for p, v in params.items() if v.kind is inspect.Parameter.KEYWORD_ONLY]
    assert tuple(kw[:len(COMMON)]) == COMMON


def test_unknown_rule_is_a_config_error():
    with pytest.raises(ConfigError, match="spiking rule"):
        get_rule("oja")


@pytest.mark.parametrize("name", ["stdp", "bcm"])
def test_rules_connect_by_indices_all_to_all_and_probability(name):
    """The three forms of ``connect``, built (not run) on the runtime device."""
    from brian2 import NeuronGroup

    from spiking.devices import use_device

    mod = get_rule(name)
    post_eqs = mod.POST_EQS + ("g_ampa : 1\n" if "g_ampa" not in mod.POST_EQS else "")
    with use_device("runtime", seed=0, dt_ms=0.1, codegen="numpy"):
        pre = NeuronGroup(3, mod.PRE_EQS + "v : 1", threshold="v > 1", namespace={}, name="pre")
        sizes = []
        for k, connect in enumerate([([0, 2], [1, 1]), None, "1.0"]):
            post = NeuronGroup(2, post_eqs + "v : 1", threshold="v > 1", reset=mod.POST_RESET or None,
                               namespace={}, name=f"post{k}")
            (syn,) = mod.synapses(pre, post, mod.CONFIG(), connect=connect, w0=0.25, delay_ms=0.8, dt_ms=0.1,
                                  name=f"syn{k}")
            sizes.append(len(syn))
            np.testing.assert_allclose(syn.w[:], 0.25)
    assert sizes == [2, 6, 6]


def test_bcm_runs_from_the_command_line(tmp_path, capsys, monkeypatch):
    """``ratespike spike bcm-rate``: BCM is runnable; with eta = 0 the weights stay, with eta > 0 they move."""
    import functools

    import xarray as xr

    from bridge.cli import main
    from spiking.experiments import bcm_rate

    # the numpy target of the runtime device compiles nothing (the CLI's runtime default is cython)
    monkeypatch.setattr(bcm_rate, "simulate", functools.partial(bcm_rate.simulate, codegen="numpy"))

    base = ["spike", "bcm-rate", "--device", "runtime", "--duration", "1", "--no-progress", "--set", "dt_ms=0.4",
            "--set", "n_post=2", "--set", "n_inputs=50", "--set", "input_rate_hz=20"]
    files = {}
    for eta in ("0", "3e-5"):  # 3e-5: ten times the default, so that 1 s moves the weights
        out = tmp_path / f"bcm_{eta}.nc"
        assert main([*base, "--set", f"eta={eta}", "--out", str(out)]) == 0
        with xr.open_dataset(out) as ds:
            files[eta] = ds.load()
    assert "target 10 Hz" in capsys.readouterr().out
    still, moved = files["0"], files["3e-5"]
    np.testing.assert_allclose(still["w_final"].values, still["w_initial"].values, rtol=1e-12)  # mean of equal w
    assert float(still["rate"].mean()) > 5.0               # the cells fire, so eta = 0 is a real control
    assert np.abs(moved["w_final"].values - moved["w_initial"].values).max() > 1e-3
