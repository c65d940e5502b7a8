"""bridge.fig5, the one home of the Fig. 5 paradigm: pooled weights, selectivity, decoding, bin means."""
from __future__ import annotations

import numpy as np
import pytest

from bridge import fig5


def test_sparse_and_dense_pooled_weights_agree_and_count_absent_synapses_as_zero():
    rng = np.random.default_rng(0)
    n_per, n_cells = 4, 3
    dense = np.where(rng.random((n_cells, 5 * n_per)) < 0.5, rng.random((n_cells, 5 * n_per)), 0.0)
    post, pre = np.nonzero(dense)
    sparse = fig5.population_weights(pre, post, dense[post, pre], fig5.population_of_inputs(n_per), n_cells)
    np.testing.assert_allclose(sparse, fig5.dense_population_weights(dense))
    one = fig5.population_weights([5], [0], [2.0], fig5.population_of_inputs(n_per), 1)
    np.testing.assert_allclose(one, [[0, 0.5, 0, 0, 0]])  # one synapse of 2.0 among 4 P1 inputs


def test_selectivity_table_follows_the_population_order():
    w = np.array([[0.0, 1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 3.0, 1.0], [0.0, 0.0, 0.0, 0.0, 0.0]])
    sel = fig5.selectivity_table(w)
    np.testing.assert_allclose(sel["selectivity_p1"][:2], [1.0, np.nan])
    np.testing.assert_allclose(sel["selectivity_p2"][:2], [np.nan, 0.5])
    np.testing.assert_allclose(sel["relative_selectivity"][:2], [-1.0, 1.0])
    assert np.isnan(sel["relative_selectivity"][2])
    with pytest.raises(ValueError, match="5 populations"):
        fig5.selectivity_table(w[:, :4])


def test_lasso_decoding_holds_out_the_last_bins():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 6))
    y = np.stack([2 * x[:, 0] + 0.05 * rng.normal(size=400), rng.normal(size=400)], axis=1)
    r2, pred, true = fig5.lasso_decoding(x, y)
    assert r2[0] > 0.9 and r2[1] < 0.05
    assert pred.shape == true.shape == (20, 2)                       # 5 % of 400 bins
    np.testing.assert_array_equal(true, y[-20:])


def test_bin_mean_rates_average_each_bin():
    def ramp(duration_s, dt_s):  # (time, population): rate = t in Hz for every population
        t = np.arange(int(np.floor(duration_s / dt_s + 1e-9))) * dt_s
        return np.repeat(t[:, None], 5, axis=1)

    r = fig5.bin_mean_rates(ramp, 1.0, 4)
    assert r.shape == (4, 5)
    np.testing.assert_allclose(r[:, 0], 1.0 + fig5.BIN_S * (np.arange(4) + 0.4))  # mean of 5 samples per bin
