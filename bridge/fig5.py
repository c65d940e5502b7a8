"""The Fig. 5 paradigm of Halvagal & Zenke (2023) in one place: populations, bins, pooled weights, decoding.

The spiking network (:mod:`spiking.experiments.lpl_network`, :mod:`spiking.analysis`), its rate twin
(:mod:`ratenets.twin`) and the comparison of the two (:mod:`bridge.rate_vs_spiking`) all read these
definitions from here. The module sits in :mod:`bridge` (NumPy and scikit-learn only, no torch, no Brian2)
because that is the one package both :mod:`spiking` and :mod:`ratenets` may import; the input signals
themselves stay in :mod:`spiking.inputs` and reach the twin as arrays (the layering test,
``tests/test_engine_layering.py``, enforces this).

Definitions (``notebooks/5 - LPL spiking.ipynb``; Halvagal & Zenke 2023, Methods):

- :data:`POPULATIONS`: P0 (constant), P1 and P2 (slow signals), P1ctl and P2ctl (their time-shuffled
  controls), in this order everywhere (input indices ``k * n_per_population ...`` belong to population k);
- :data:`BIN_S`: the 25 ms analysis bins of the decoding and of the representations;
- :func:`population_weights`: the mean input weight of each population onto each cell, absent synapses
  counted as 0;
- :func:`selectivity_table`: (w_P - w_Pctl) / (w_P + w_Pctl) for P1 and P2, and (w_P2 - w_P1) / (w_P2 + w_P1);
- :func:`lasso_decoding`: Lasso(alpha = 0.1) of each population's input count per bin from the cells' counts,
  trained on the first 95 % of the bins and scored (R^2) on the last 5 %.
"""
from __future__ import annotations

import numpy as np

from bridge.measures import lasso_predict, r2_score, selectivity_index, split_indices

#: the five input populations, in the order of the input indices
POPULATIONS: tuple[str, ...] = ("P0", "P1", "P1ctl", "P2", "P2ctl")
N_POPULATIONS = len(POPULATIONS)
#: the paper's 25 ms analysis bins (s)
BIN_S = 0.025
#: Lasso penalty of the decoding (notebook 5: ``Lasso(alpha=0.1)``)
LASSO_ALPHA = 0.1
#: the held-out fraction of the decoding: the last 5 % of the bins
TEST_FRACTION = 0.05


def binned_counts(times_s: np.ndarray, neurons: np.ndarray, n_neurons: int, t0: float, t1: float,
                  bin_s: float = BIN_S) -> np.ndarray:
    """Spike counts in bins of ``bin_s`` over [t0, t1); shape (n_bins, n_neurons).

    With ``neurons`` the population index of each input spike this gives the input count per population.
    """
    n_bins = max(0, int(np.floor((t1 - t0) / bin_s + 1e-9)))
    out = np.zeros((n_bins, n_neurons), dtype=np.float32)
    if n_bins == 0:
        return out
    b = np.floor((np.asarray(times_s) - t0) / bin_s + 1e-9).astype(np.int64)
    ok = (b >= 0) & (b < n_bins)
    np.add.at(out, (b[ok], np.asarray(neurons)[ok]), 1.0)
    return out


def population_of_inputs(n_per_population: int) -> np.ndarray:
    """The population index of every input neuron, shape (N_POPULATIONS * n_per_population,)."""
    return np.repeat(np.arange(N_POPULATIONS), int(n_per_population))


def population_weights(pre: np.ndarray, post: np.ndarray, w: np.ndarray, input_population: np.ndarray,
                       n_cells: int) -> np.ndarray:
    """Mean input weight from each population onto each cell, absent synapses counted as 0.

    Parameters
    ----------
    pre, post, w : arrays, shape (n_synapses,)
        Presynaptic input index, postsynaptic cell index and weight of every synapse.
    input_population : array, shape (n_inputs,)
        Population index of every input neuron.
    n_cells : int

    Returns
    -------
    array, shape (n_cells, N_POPULATIONS)
    """
    pop = np.asarray(input_population)
    out = np.zeros((int(n_cells), N_POPULATIONS))
    np.add.at(out, (np.asarray(post, dtype=np.int64), pop[np.asarray(pre, dtype=np.int64)]),
              np.asarray(w, dtype=np.float64))
    return out / np.bincount(pop, minlength=N_POPULATIONS)[None, :]


def dense_population_weights(w_in: np.ndarray, n_populations: int = N_POPULATIONS) -> np.ndarray:
    """:func:`population_weights` of a dense (cell, input) weight matrix (zeros where there is no synapse)."""
    w = np.asarray(w_in, dtype=np.float64)
    return w.reshape(w.shape[0], n_populations, -1).mean(-1)


def selectivity_table(pop_w: np.ndarray) -> dict[str, np.ndarray]:
    """Per-cell selectivities from mean weights ``(cell, population)`` in :data:`POPULATIONS` order.

    ``selectivity_p1 = (w_P1 - w_P1ctl) / (w_P1 + w_P1ctl)``, likewise ``selectivity_p2``, and
    ``relative_selectivity = (w_P2 - w_P1) / (w_P2 + w_P1)``; NaN where both weights are 0.
    """
    w = np.asarray(pop_w, dtype=np.float64)
    if w.ndim != 2 or w.shape[1] != N_POPULATIONS:
        raise ValueError(f"pop_w must be (cell, population) with {N_POPULATIONS} populations, got {w.shape}")
    idx = {p: i for i, p in enumerate(POPULATIONS)}
    return {
        "selectivity_p1": selectivity_index(w[:, idx["P1"]], w[:, idx["P1ctl"]]),
        "selectivity_p2": selectivity_index(w[:, idx["P2"]], w[:, idx["P2ctl"]]),
        "relative_selectivity": selectivity_index(w[:, idx["P2"]], w[:, idx["P1"]]),
    }


def lasso_decoding(x: np.ndarray, y: np.ndarray, alpha: float = LASSO_ALPHA, test_fraction: float = TEST_FRACTION
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Held-out R^2 of every column of ``y`` (time, target) decoded from ``x`` (time, cell) by Lasso.

    The first bins train, the last ``test_fraction`` test (contiguous, as the notebook). Returns the R^2 per
    column (NaN for a constant test target), the predictions and the true values of the test bins.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if y.ndim != 2 or len(y) != len(x):
        raise ValueError(f"x (time, cell) and y (time, target) need the same bins, got {x.shape} and {y.shape}")
    tr, te = split_indices(len(x), test_fraction, contiguous=True)
    pred = lasso_predict(x[tr], y[tr], x[te], alpha)
    return r2_score(y[te], pred), pred, y[te]


def bin_mean_rates(population_rates, t_start_s: float, n_bins: int, bin_s: float = BIN_S, sub: int = 5
                   ) -> np.ndarray:
    """Mean rate of each input population in each bin of a window, ``(time, population)`` in Hz.

    ``population_rates(duration_s, dt_s) -> (time, population)`` is the input generator (for the spiking
    network's inputs, :func:`spiking.inputs.population_rates` with its config); it is sampled at ``bin_s / sub``
    and averaged, so that each value is the bin's mean rate. This is how the rate twin is fed the spiking
    network's inputs without importing :mod:`spiking`.
    """
    t_end = t_start_s + n_bins * bin_s
    fine = np.asarray(population_rates(t_end + 1e-9, bin_s / sub))  # (fine time, population)
    first = int(round(t_start_s / (bin_s / sub)))
    fine = fine[first:first + n_bins * sub]
    return fine.reshape(n_bins, sub, fine.shape[1]).mean(1)  # (time, population)
