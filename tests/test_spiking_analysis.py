"""The Fig. 5 measures on small synthetic data with known answers (no simulation)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

from bridge.fig5 import lasso_decoding
from spiking.analysis import analyse, group_weights


def _fake_run(seed: int = 0) -> xr.Dataset:
    """A minimal lpl-network-like Dataset: E cell k fires with the input population k % 2 + 1 (P1 or P2)."""
    rng = np.random.default_rng(seed)
    n_e, n_per, t_end, window = 6, 10, 40.0, 40.0
    pops = np.repeat(np.arange(5), n_per)
    in_t, in_i, e_t, e_i = [], [], [], []
    bins = np.arange(0, t_end, 0.025)
    drive = rng.random((len(bins), 5)) * 4  # (time, population) expected counts per input neuron and bin
    for b, t in enumerate(bins):
        for j in range(5 * n_per):
            for _ in range(rng.poisson(drive[b, pops[j]])):
                in_t.append(t + 0.001)
                in_i.append(j)
        for k in range(n_e):
            for _ in range(rng.poisson(3 * drive[b, 1 + 2 * (k % 2)])):
                e_t.append(t + 0.002)
                e_i.append(k)
    # weights: cell k keeps only its preferred population (P1 for even k, P2 for odd k)
    pre, post, w = [], [], []
    for k in range(n_e):
        for j in range(5 * n_per):
            pre.append(j)
            post.append(k)
            w.append(1.0 if pops[j] == (1 if k % 2 == 0 else 3) else 0.0)
    ds = xr.Dataset({
        "spike_time_E": ("spike_E", np.array(e_t)), "spike_neuron_E": ("spike_E", np.array(e_i)),
        "spike_time_input": ("spike_input", np.array(in_t)), "spike_neuron_input": ("spike_input", np.array(in_i)),
        "input_population": ("neuron_input", pops), "rate_window_E": ("neuron_E", np.ones(n_e)),
        "w_input_pre": ("synapse_input", np.array(pre)), "w_input_post": ("synapse_input", np.array(post)),
        "w_input_final": ("synapse_input", np.array(w))})
    ds.attrs.update(simulated_time_s=t_end, config=json.dumps({"record_last_s": window}))
    return ds


def test_lasso_recovers_a_linear_readout():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2000, 10))
    y = np.stack([x[:, 0] * 3 + 0.1 * rng.normal(size=2000), rng.normal(size=2000)], axis=1)
    r2, _, _ = lasso_decoding(x, y, alpha=0.1)
    assert r2[0] > 0.9 and r2[1] < 0.05


def test_analyse_finds_decodable_populations_and_selectivity():
    an = analyse(_fake_run())
    r2 = dict(zip(an["population"].values, an["r2"].values))
    assert r2["P1"] > 0.5 and r2["P2"] > 0.5
    assert max(r2["P0"], r2["P1ctl"], r2["P2ctl"]) < 0.2
    rel = an["relative_selectivity"].values
    np.testing.assert_allclose(rel, [-1, 1, -1, 1, -1, 1])
    np.testing.assert_allclose(an["selectivity_P1"].values[::2], 1.0)
    assert 1.0 <= float(an["participation_ratio"]) <= 6.0


def test_group_weights_are_means_with_zeros():
    gw = group_weights(_fake_run())
    assert gw.shape == (6, 5)
    np.testing.assert_allclose(gw[0], [0, 1, 0, 0, 0])
    np.testing.assert_allclose(gw[1], [0, 0, 0, 1, 0])


def test_io_correlation_is_the_notebooks_joint_flattened_one():
    """notebook 5: np.corrcoef(y_pred_lasso.ravel(), ds_test[1].ravel()) of the 5-output Lasso fit."""
    from sklearn.linear_model import Lasso

    from spiking.analysis import binned_activity

    ds = _fake_run()
    an = analyse(ds)
    x, y = binned_activity(ds)
    n = int(round(0.95 * len(x)))
    yp = Lasso(alpha=0.1, max_iter=5000).fit(x[:n], y[:n]).predict(x[n:])  # one joint multi-output fit
    expect = np.corrcoef(yp.ravel(), y[n:].ravel())[0, 1]
    assert float(an["io_correlation_joint"]) == pytest.approx(expect, abs=1e-6)
    assert abs(float(an["io_correlation_joint"]) - float(np.nanmean(an["io_correlation"]))) > 1e-3
