"""STDP-protocol window signs, the five input populations, configs and the ``ratespike spike`` CLI errors.

Everything here runs on the Brian2 runtime device with the numpy target (no compiler); the protocol uses
dt = 0.1 ms (the clamp dynamics depend on the step) and 10 pairings so that it takes seconds, and checks only the
signs the paper reports (lpl.md section 4, "STDP protocol": LTP at +12 ms and LTD at -30 ms for sigma2 = 0.1,
a reversed window for sigma2 = 100).
"""
from __future__ import annotations

import os

import numpy as np
import pytest

from bridge.cli import main
from bridge.errors import ConfigError
from spiking.inputs import InputConfig, population_rates, rate_samples


@pytest.fixture(scope="module")
def windows():
    from spiking.devices import use_device
    from spiking.experiments import stdp_protocol as sp

    cfgs = [sp.config(sigma2=s, n_pairings=10, duration_s=1.3) for s in (0.1, 1.0, 100.0)]
    with use_device("runtime", seed=0, dt_ms=0.1, codegen="numpy") as dev:
        out = sp.simulate_conditions(cfgs, seed=0, dev=dev)
    return dict(zip((0.1, 1.0, 100.0), out))


def _at(ds, t):
    return float(ds["dw"].sel(delta_t=t, method="nearest"))


def test_sigma2_01_gives_hebbian_asymmetric_window(windows):
    ds = windows[0.1]
    assert _at(ds, 12) > 0.01
    assert _at(ds, -30) < -0.01
    assert int(ds["post_spike_count"]) >= 10  # at least the pairing spikes (extra ones: synaptic drive)


@pytest.mark.parametrize("sigma2", [0.1, 100.0])
def test_protocol_matches_an_independent_auryn_model(windows, sigma2):
    """Brian2's clamp protocol against a NumPy model of Auryn's step (tests/auryn_lpl_reference.py): the model
    integrates the post cell itself from the clamp value, with its synaptic input, and writes the clamp last
    (VoltageClamp), reads post_voltage.dat as FileCurrentInjector does; weights agree to 1e-9 and so do the
    post spike counts (one per pairing or more: not assumed, counted)."""
    import auryn_lpl_reference as ref
    from spiking.experiments import stdp_protocol as sp

    cfg = sp.config(sigma2=sigma2, n_pairings=10, duration_s=1.3)  # as the windows fixture
    nc, rule, prot = cfg.neuron, cfg.rule, cfg.protocol
    dt = nc.dt_ms * 1e-3
    n_steps = int(round(prot.duration_s / dt))
    post_steps, pre_i, pre_steps = sp.spike_schedule(cfg)
    pre = np.zeros((n_steps, prot.n_pre), dtype=bool)
    pre[pre_steps, pre_i] = True
    t_post = prot.first_pairing_s + np.arange(prot.n_pairings) / prot.pairing_rate_hz
    clamp = ref.clamp_series(t_post, n_steps, dt)
    out = ref.simulate(n_steps=n_steps, dt_s=dt, pre_spikes=pre, syn_i=np.arange(prot.n_pre),
                       syn_j=np.zeros(prot.n_pre, dtype=int), n_post=1, w0=prot.w0,
                       p=ref.params_from(ref.Both(nc, rule), dt),
                       u0=np.array([prot.clamp_mv * 1e-3]), clamp=clamp, m0=rule.prior_rate_hz * rule.tau_mean_s,
                       sigma2_0=rule.sigma2)
    d = sp.delta_t_ms(cfg)
    dw_ref = (out["w"] - prot.w0) / prot.w0
    ds = windows[sigma2]
    np.testing.assert_allclose(ds["dw"].values, dw_ref[np.argsort(d)], rtol=0, atol=1e-9)
    assert int(ds["post_spike_count"]) == int(out["s_post"].sum())
    assert np.abs(dw_ref).max() > 1e-3  # the weights moved, so the comparison means something


def test_sigma2_100_reverses_the_window(windows):
    ds = windows[100.0]
    assert _at(ds, -10) > 0 > _at(ds, 20)
    assert _at(ds, -10) > _at(ds, 20)


def test_sigma2_1_is_symmetric_bump_with_ltd_flanks(windows):
    ds = windows[1.0]
    assert _at(ds, 0) > 0
    assert _at(ds, 0) > _at(ds, -30) and _at(ds, 0) > _at(ds, 40)


def test_delta_t_axis_is_post_minus_pre(windows):
    dt = windows[0.1]["delta_t"].values
    assert np.all(np.diff(dt) > 0) and dt[0] == pytest.approx(-50) and dt[-1] == pytest.approx(50)


def test_population_rates_shape_and_statistics():
    cfg = InputConfig()
    r = population_rates(cfg, 60.0, 0.01)  # (time, population)
    assert r.shape == (6000, 5)
    assert np.all(r[:, 0] == cfg.base_rate_hz)
    assert np.all(r >= cfg.min_rate_hz - 1e-12)
    for p in (1, 3):
        assert abs(r[:, p].mean() - cfg.base_rate_hz) < 0.5
    # P1 is periodic with T = 3 s; its shuffled control is not, but has the same marginal
    lag = 300
    assert np.allclose(r[lag:, 1], r[:-lag, 1], atol=1e-9)
    c_ctl = np.corrcoef(r[lag:, 2], r[:-lag, 2])[0, 1]
    assert abs(c_ctl) < 0.2
    s = rate_samples(cfg)
    np.testing.assert_allclose(np.sort(s[1]), np.sort(s[2]))
    np.testing.assert_allclose(np.sort(s[3]), np.sort(s[4]))


def test_population_rates_seeded():
    cfg = InputConfig()
    a = population_rates(cfg, 5.0, 0.01)
    np.testing.assert_array_equal(a, population_rates(cfg, 5.0, 0.01))
    assert not np.allclose(a, population_rates(cfg, 5.0, 0.01, seed=1))


def test_configs_reject_bad_dt_and_durations():
    from spiking.experiments import lpl_network, stdp_protocol

    with pytest.raises(ConfigError, match="delay_ms"):
        lpl_network.config(dt_ms=0.3)
    with pytest.raises(ConfigError, match="duration_s"):
        lpl_network.config(duration_s=-5)
    with pytest.raises(ConfigError, match="duration_s"):
        stdp_protocol.config(duration_s=0)
    with pytest.raises(ConfigError, match="p_input"):
        lpl_network.config(p_input=1.5)


@pytest.mark.parametrize("argv,needle", [
    (["spike", "lpl-network", "--duration", "-5"], "--duration must be a finite number of seconds > 0"),
    (["spike", "lpl-network", "--duration", "5", "--device", "gpu"], "unknown device 'gpu'"),
    (["spike", "lpl-network", "--duration", "5", "--device", "cuda_standalone"], "cuda_standalone"),
    (["spike", "lpl-netwrk"], "did you mean 'lpl-network'"),
    (["spike", "stdp-protocol", "--set", "dt_ms=1.0"], "dt_ms"),
    (["spike", "stdp-protocol", "--set", "sigma=1"], "did you mean"),
])
def test_cli_bad_input_is_one_line_exit_2(argv, needle, capsys, tmp_path):
    rc = main(argv + ["--out", str(tmp_path / "x.nc")])
    err = capsys.readouterr().err
    assert rc == 2
    assert needle in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "x.nc").exists()


@pytest.mark.standalone
@pytest.mark.skipif(os.environ.get("RATESPIKE_STANDALONE_TESTS") != "1",
                    reason="generates a cpp_standalone project (~10-40 s); set RATESPIKE_STANDALONE_TESTS=1 to run")
def test_standalone_build_failure_is_one_line_with_log_path(tmp_path):
    """A compiler error becomes a BuildError naming build.log (no traceback text from make)."""
    from brian2 import Network, NeuronGroup, device

    from spiking.devices import BuildError, use_device

    with pytest.raises(BuildError) as info:
        with use_device("cpp_standalone", seed=0, dt_ms=0.1, build_root=tmp_path) as dev:
            device.insert_code("main", "this_is_not_cpp no_such_symbol;")
            g = NeuronGroup(1, "dv/dt = -v / (10*ms) : 1", namespace={}, name="g")
            dev.run(Network(g), 0.001)
            dev.finish()
    msg = str(info.value)
    assert "build.log" in msg and "\n" not in msg
    log = msg.split("see the log ")[1].strip()
    assert "no_such_symbol" in open(log).read()


def test_input_rates_are_the_files_of_mk_rates():
    """The default draw repeats mk_rates.py: legacy np.random.seed(42), rand(128, 2) per signal, the signal
    file, then the shuffled control; written here from the script's steps (the script itself needs matplotlib
    and writes files)."""
    cfg = InputConfig()
    rs = np.random.RandomState(42)
    expect = []
    for period in (3.0, 3.0 + 1 / 13):
        theta = rs.rand(128, 2)
        times = np.arange(0, period * 11, 10e-3)
        sig = sum(1.0 / 1.1 ** i * a * np.sin(2 * np.pi * i * (times + b) / period) for i, (a, b) in enumerate(theta))
        sig = (sig - sig.mean()) / (sig.std() + 1e-4)
        vals = np.clip(4.0 * sig + 5.0, 0.1, np.inf)
        first = vals.copy()
        rs.shuffle(vals)
        expect += [first, vals]
    got = rate_samples(cfg)
    for k, e in zip((1, 2, 3, 4), expect):
        np.testing.assert_allclose(got[k], e, rtol=1e-6)  # the files print 7 significant digits
    assert len(got[1]) == 3300 and len(got[3]) == 3385  # arange(0, 11 T, 10 ms)
    other = rate_samples(InputConfig(input_draw="default_rng"))
    assert not np.allclose(other[1][:100], got[1][:100])
