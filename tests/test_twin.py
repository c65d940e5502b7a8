"""The rate twin of the spiking Fig. 5 network: connectivity statistics, fixed point, LPL gradient, outcome."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from bridge.compare import compare_representations
from bridge.errors import ConfigError, DataError
from bridge.fig5 import POPULATIONS, selectivity_table
from ratenets.rules.lpl import lpl_loss, lpl_terms
from ratenets.twin import RateTwin, RateTwinConfig, train_twin

SMALL = RateTwinConfig(inputs_per_population=40, n_exc=30, n_inh=8, window_s=6.0, epochs=4, lr=2e-2)


def slow_and_shuffled_rates(duration_s: float, bin_s: float = 0.025, seed: int = 0) -> np.ndarray:
    """Five populations like the Fig. 5 inputs: constant, two slow sums of sines, their shuffled controls."""
    r = np.random.default_rng(seed)
    t = np.arange(int(duration_s / bin_s)) * bin_s

    def slow(period):
        s = sum(1.1 ** -i * r.uniform() * np.sin(2 * np.pi * i * (t / period + r.uniform())) for i in range(1, 12))
        s = (s - s.mean()) / s.std()
        return np.maximum(0.1, 5 + 4 * s)

    p1, p2 = slow(3.0), slow(3 + 1 / 13)
    return np.stack([np.full_like(t, 5.0), p1, r.permutation(p1), p2, r.permutation(p2)], 1)  # (time, population)


def test_connectivity_statistics_match_the_spiking_network():
    cfg = RateTwinConfig()
    tw = RateTwin(cfg, seed=3)
    assert tw.mask_in.shape == (100, 500) and tw.mask_in.mean().item() == pytest.approx(0.1, abs=0.01)
    assert tw.mask_ie.mean().item() == pytest.approx(0.5, abs=0.05)
    # E->I: connection probability exp(-(e - c_k)^2 / 20^2) around each I cell's centre
    centres = np.linspace(0, 100, 25)
    d = np.abs(np.arange(100)[None, :] - centres[:, None])  # (inh, exc)
    m = tw.mask_ei.numpy()
    assert m[d < 5].mean() > 0.9 and m[d > 50].mean() < 0.01
    assert tw.w_in.detach()[tw.mask_in == 1].unique().tolist() == pytest.approx([0.15])
    assert np.all(np.diag(tw.w_ii.numpy()) == 0)
    again = RateTwin(cfg, seed=3)
    assert torch.equal(again.mask_in, tw.mask_in) and torch.equal(again.mask_ei, tw.mask_ei)


def test_rates_sit_at_the_fixed_point_of_the_e_i_loop():
    cfg = dataclasses.replace(SMALL, fixed_point_steps=200)
    tw = RateTwin(cfg, seed=0)
    x = tw.poisson_inputs(slow_and_shuffled_rates(2.0), torch.Generator().manual_seed(0))
    r_e, r_i = tw.rates(x)
    with torch.no_grad():
        c = cfg
        e_fp = torch.relu(c.g_in * x @ tw.w_in.T - c.g_ie * r_i @ tw.w_ie.T - c.theta_exc)
        i_fp = torch.relu(c.g_ei * r_e @ tw.w_ei.T - c.g_ii * r_i @ tw.w_ii.T - c.theta_inh)
    torch.testing.assert_close(r_e.detach(), e_fp, atol=1e-5, rtol=0)
    torch.testing.assert_close(r_i.detach(), i_fp, atol=1e-5, rtol=0)
    assert r_e.mean() > 0 and r_i.mean() > 0


def test_poisson_inputs_have_the_population_rates():
    tw = RateTwin(SMALL, seed=0)
    rates = np.tile([[1.0, 2.0, 4.0, 8.0, 16.0]], (4000, 1))
    x = tw.poisson_inputs(rates, torch.Generator().manual_seed(1)).numpy()  # (time, input), units of 5 Hz
    per_pop = x.reshape(4000, 5, -1).mean((0, 2)) * SMALL.input_rate_unit_hz
    np.testing.assert_allclose(per_pop, rates[0], rtol=0.05)


def test_weight_update_is_the_lpl_gradient_masked_and_clipped():
    cfg = dataclasses.replace(SMALL, optimizer="sgd", lr=0.5, inhibition="fixed")
    tw = RateTwin(cfg, seed=1)
    x = tw.poisson_inputs(slow_and_shuffled_rates(6.0), torch.Generator().manual_seed(2))
    w0 = tw.w_in.detach().clone()
    # reference: autograd of the LPL terms on an independent copy of the weights
    w = w0.clone().requires_grad_()
    z, _ = tw.rates(x, w_in=w)
    loss = lpl_loss(lpl_terms(z[1:], z[:-1], stop_gradient=True), cfg.pred_coeff, cfg.hebb_coeff, cfg.decorr_coeff)
    (grad,) = torch.autograd.grad(loss, w)
    tw.train_step(x)
    expected = ((w0 - 0.5 * grad) * tw.mask_in).clamp(0, cfg.w_max)
    torch.testing.assert_close(tw.w_in.detach(), expected, atol=1e-6, rtol=1e-5)
    assert torch.all(tw.w_in.detach()[tw.mask_in == 0] == 0)


def test_twin_learns_the_slow_populations_and_ignores_their_shuffled_controls():
    """The qualitative Fig. 5 outcome in the rate twin: P1/P2 weights grow, P0 and the controls shrink."""
    tw = RateTwin(dataclasses.replace(SMALL, epochs=6), seed=0)
    tw.fit(slow_and_shuffled_rates(120.0, seed=1))
    w = tw.population_weights().mean(0)  # (population,)
    p = {k: w[i] for i, k in enumerate(POPULATIONS)}
    # measured: P0 .026, P1 .057, P1ctl .030, P2 .059, P2ctl .028 (initial mean .015 each)
    assert p["P1"] > 1.5 * p["P1ctl"] and p["P2"] > 1.5 * p["P2ctl"] and min(p["P1"], p["P2"]) > 1.5 * p["P0"]
    sel = selectivity_table(tw.population_weights())
    assert np.nanmean(sel["selectivity_p1"]) > 0 and np.nanmean(sel["selectivity_p2"]) > 0


def test_train_twin_results_are_comparable_time_representations():
    rates = slow_and_shuffled_rates(30.0)
    cfg = dataclasses.replace(SMALL, epochs=1)
    ds, reps = train_twin(cfg, rates[:800], rates[800:], seed=0, probe_start_s=20.0)
    assert ds["population_weight"].dims == ("neuron", "population")
    assert list(ds["population"].values) == list(POPULATIONS)
    assert ds.attrs["ratespike_kind"] == "twin" and "RateTwinConfig" in ds.attrs["config"]
    rep = reps["E"]
    assert rep["response"].dims == ("time", "unit") and rep.sizes["time"] == len(rates) - 800
    assert float(rep["time"][0]) == pytest.approx(20.0)
    same, _ = train_twin(cfg, rates[:800], rates[800:], seed=0, probe_start_s=20.0)
    np.testing.assert_array_equal(same["population_weight"].values, ds["population_weight"].values)
    cka = compare_representations(reps, reps, "cka")["cka"]
    assert float(cka[0, 0]) == pytest.approx(1.0)


@pytest.mark.parametrize("change, fragment", [
    ({"p_in": 1.5}, "p_in must be in"),
    ({"n_exc": 0}, "n_exc must be > 0"),
    ({"pred_coeff": 0.0, "hebb_coeff": 0.0, "decorr_coeff": 0.0}, "nothing to learn"),
    ({"w_in0": 2.0}, "must be <= w_max"),
    ({"window_s": 0.05}, "window_s must hold"),
])
def test_config_errors(change, fragment):
    with pytest.raises(ConfigError, match=fragment):
        RateTwinConfig(**change)


def test_bad_input_rates():
    tw = RateTwin(SMALL, seed=0)
    with pytest.raises(DataError, match="5 populations"):
        tw.fit(np.ones((100, 3)))
    with pytest.raises(ConfigError, match="shorter than one"):
        tw.fit(np.ones((10, 5)))
