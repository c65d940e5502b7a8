"""Analysis of the Fig. 5 network (``notebooks/5 - LPL spiking.ipynb`` of Halvagal & Zenke 2023).

From an ``lpl-network`` results Dataset: 25 ms binned E counts X (time, neuron) and input population counts
Y (time, population); Lasso(alpha = 0.1) decoding of each Y column from X, trained on the first 95 % of
bins and scored (R^2) on the last 5 %; per-neuron group weights (mean over the inputs of each population,
zeros included); selectivity (w_P - w_Pctl) / (w_P + w_Pctl) for P1 and P2; relative selectivity
(w_P2 - w_P1) / (w_P2 + w_P1); participation ratio of X; rates; the "IO correlation".

IO correlation: the notebook's (``analyze``: ``np.corrcoef(y_pred_lasso.ravel(), ds_test[1].ravel())``) is one
number, the correlation of the joint 5-output Lasso prediction of the test bins with the true counts, all
populations flattened together: ``io_correlation_joint`` (the spec's .23 early / .77 late). A multi-output
``sklearn`` Lasso fits every column on its own with the same alpha, so its prediction is the per-column one.
``io_correlation`` (per population) is an extra view, not the notebook's measure.

The bins, the decoding, the pooled weights and the selectivities are those of :mod:`bridge.fig5`, shared with
the rate twin and the spiking-vs-twin comparison.
"""
from __future__ import annotations

import numpy as np
import xarray as xr

from bridge.fig5 import (BIN_S, LASSO_ALPHA, N_POPULATIONS, POPULATIONS, binned_counts, lasso_decoding,
                         population_weights, selectivity_table)
from bridge.measures import participation_ratio


def _window(ds: xr.Dataset) -> tuple[float, float]:
    from spiking.experiments.lpl_network import config_from_json

    t1 = float(ds.attrs["simulated_time_s"])
    cfg_last = float(config_from_json(ds.attrs["config"]).protocol.record_last_s)
    return max(0.0, t1 - cfg_last), t1


def binned_activity(ds: xr.Dataset, bin_s: float = BIN_S) -> tuple[np.ndarray, np.ndarray]:
    """X: E counts (time, neuron) and Y: input population counts (time, population) in the recorded window.

    Y comes from the recorded input spikes when present, else from the input rates (expected counts).
    """
    t0, t1 = _window(ds)
    n_e = int(ds["rate_window_E"].sizes["neuron_E"])
    x = binned_counts(ds["spike_time_E"].values, ds["spike_neuron_E"].values, n_e, t0, t1, bin_s)
    if "spike_time_input" in ds:
        pop = ds["input_population"].values
        y = binned_counts(ds["spike_time_input"].values, pop[ds["spike_neuron_input"].values], N_POPULATIONS,
                          t0, t1, bin_s)
    else:
        r = ds["input_rate"].values  # (input_time, population), 10 ms steps
        step = float(ds["input_time"].values[1] - ds["input_time"].values[0])
        k = max(1, int(round(bin_s / step)))
        n = (len(r) // k) * k
        n_per = int(ds["input_population"].sizes["neuron_input"]) // N_POPULATIONS
        y = r[:n].reshape(-1, k, N_POPULATIONS).mean(1) * bin_s * n_per  # (time, population)
        y = y[: len(x)]
        x = x[: len(y)]
    return x, y


def group_weights(ds: xr.Dataset) -> np.ndarray:
    """Mean input weight of each population onto each E cell, zeros included; shape (neuron, population)."""
    return population_weights(ds["w_input_pre"].values, ds["w_input_post"].values, ds["w_input_final"].values,
                              ds["input_population"].values, int(ds["rate_window_E"].sizes["neuron_E"]))


def analyse(ds: xr.Dataset, bin_s: float = BIN_S, alpha: float = LASSO_ALPHA) -> xr.Dataset:
    """All measures of the Fig. 5 notebook as one Dataset."""
    x, y = binned_activity(ds, bin_s)
    r2, pred, true = lasso_decoding(x, y, alpha=alpha)
    io = np.array([np.corrcoef(pred[:, p], true[:, p])[0, 1] if pred[:, p].std() > 0 else np.nan
                   for p in range(N_POPULATIONS)])
    io_joint = (float(np.corrcoef(pred.ravel(), true.ravel())[0, 1])
                if pred.size and pred.std() > 0 and true.std() > 0 else np.nan)
    gw = group_weights(ds)
    sel = selectivity_table(gw)
    out = xr.Dataset(
        {"r2": ("population", r2, {"units": "1", "long_name": "Lasso decoding R^2 (last 5 % of the window)"}),
         "io_correlation": ("population", io, {"units": "1", "long_name": "corr(predicted, true) input counts "
                                                                          "per population (not the notebook's)"}),
         "io_correlation_joint": ((), io_joint, {"units": "1", "long_name": "corr of the joint 5-output Lasso "
                                                  "prediction with the true counts, flattened (the notebook's)"}),
         "group_weight": (("neuron_E", "population"), gw, {"units": "1",
                                                           "long_name": "mean input weight per population"}),
         "selectivity_P1": ("neuron_E", sel["selectivity_p1"], {"units": "1",
                                                                      "long_name": "(w_P1 - w_P1ctl)/(sum)"}),
         "selectivity_P2": ("neuron_E", sel["selectivity_p2"], {"units": "1",
                                                                      "long_name": "(w_P2 - w_P2ctl)/(sum)"}),
         "relative_selectivity": ("neuron_E", sel["relative_selectivity"], {
             "units": "1", "long_name": "(w_P2 - w_P1)/(w_P2 + w_P1)"}),
         "participation_ratio": ((), participation_ratio(x) if x.std() > 0 else np.nan,
                                 {"units": "1", "long_name": "participation ratio of the binned E activity"}),
         "rate_E": ((), float(ds["rate_window_E"].mean()), {"units": "Hz"}),
         "rate_I": ((), float(ds["rate_window_I"].mean()) if "rate_window_I" in ds else np.nan, {"units": "Hz"})},
        coords={"population": list(POPULATIONS)})
    out.attrs.update(bin_s=bin_s, lasso_alpha=alpha, n_bins=int(len(x)))
    return out
