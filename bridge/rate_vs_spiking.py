"""The spiking Fig. 5 network and its rate twin compared on the same input time course (pure data).

:func:`side_by_side` reads the two results files (``ratespike spike lpl-network`` and the twin trained by
``ratespike demo`` / ``analyses/rate_vs_spiking.py``) and computes, with the definitions of
:mod:`bridge.fig5`: the decoding R^2 of every input population's spike count per 25 ms bin from the E counts
(Lasso, alpha 0.1, the last 5 % of the window held out, as the paper), the selectivity of every E cell from its
mean input weight per population (Halvagal & Zenke 2023, Methods), the participation ratio, and CKA (biased
and debiased) and RSA between the two networks' responses to the same input time course. It needs neither
Brian2 nor torch; running the two networks is :mod:`bridge.commands.rate_vs_spiking`'s job.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import xarray as xr

from bridge import fig5, measures
from bridge.compare import check_same_probes
from bridge.io import open_group, open_run, provenance, write_run

NETWORKS = ("spiking", "rate-twin")


def spiking_population_weights(ds: xr.Dataset) -> np.ndarray:
    """Mean input->E weight from each population of an lpl-network file, zeros included: ``(neuron, population)``."""
    post = ds["w_input_post"].values
    n_exc = ds.sizes.get("neuron_E", int(post.max()) + 1)
    return fig5.population_weights(ds["w_input_pre"].values, post, ds["w_input_final"].values,
                                   ds["input_population"].values, n_exc)


def spiking_input_counts(ds: xr.Dataset, t0: float, n_bins: int) -> np.ndarray:
    """Input spikes per population in each 25 ms bin of the recorded window, ``(time, population)``."""
    pop = ds["input_population"].values[ds["spike_neuron_input"].values]
    return fig5.binned_counts(ds["spike_time_input"].values, pop, fig5.N_POPULATIONS, t0,
                              t0 + n_bins * fig5.BIN_S)


def side_by_side(spike_path: str | os.PathLike, twin_path: str | os.PathLike, out: str | os.PathLike, *,
                 png: str | os.PathLike | None = None, test_fraction: float = 0.05,
                 rsa_max_samples: int = 1000) -> xr.Dataset:
    """Decoding, selectivity, dimensionality and similarity of the spiking network and its twin.

    Returns (and writes to ``out``) a Dataset with dims ``network`` (spiking, rate-twin), ``population``
    and ``neuron``: ``decoding_r2`` (network, population), ``selectivity_p1``/``_p2``,
    ``relative_selectivity`` (network, neuron), ``population_weight`` (network, neuron, population),
    ``participation_ratio`` and ``rate_exc`` (network), and the scalars ``cka``, ``cka_debiased``, ``rsa``.
    """
    sp, tw = open_run(spike_path), open_run(twin_path)
    rep_s, rep_t = open_group(spike_path, "representations/E"), open_group(twin_path, "representations/E")
    check_same_probes({"E": rep_s}, {"E": rep_t}, Path(spike_path).name, Path(twin_path).name)
    xs = rep_s["response"].values.astype(np.float64)  # (time, neuron) spike counts
    xt = rep_t["response"].values.astype(np.float64)  # (time, neuron) rates, Hz
    t0, n = float(rep_s["time"].values[0]), rep_s.sizes["time"]
    y_s = spiking_input_counts(sp, t0, n)
    y_t = tw["input_count"].values.astype(np.float64)

    def r2(x, y):
        # Halvagal & Zenke (2023), Methods: Lasso(alpha = 0.1) from E counts per bin, tested on the window's end
        return fig5.lasso_decoding(x, y, test_fraction=test_fraction)[0]

    w_s, w_t = spiking_population_weights(sp), tw["population_weight"].values
    sel_s, sel_t = fig5.selectivity_table(w_s), fig5.selectivity_table(w_t)
    n_neuron = max(len(w_s), len(w_t))

    def pad(v):
        return np.concatenate([v, np.full((n_neuron - len(v),) + v.shape[1:], np.nan)])

    ds = xr.Dataset(coords={"network": list(NETWORKS), "population": list(fig5.POPULATIONS),
                            "neuron": np.arange(n_neuron)})
    # the twin's rates become expected counts per bin, so that Lasso's penalty acts on the same scale
    ds["decoding_r2"] = (("network", "population"), np.stack([r2(xs, y_s), r2(xt * fig5.BIN_S, y_t)]))
    ds["decoding_r2"].attrs.update(long_name="held-out R^2 of each input population's spike count per 25 ms bin "
                                   "from the E counts (Lasso alpha 0.1, last bins held out)", units="1")
    for k in ("selectivity_p1", "selectivity_p2", "relative_selectivity"):
        ds[k] = (("network", "neuron"), np.stack([pad(sel_s[k]), pad(sel_t[k])]))
        ds[k].attrs.update(long_name=k.replace("_", " ") + " from mean input weights", units="1")
    ds["population_weight"] = (("network", "neuron", "population"), np.stack([pad(w_s), pad(w_t)]))
    ds["population_weight"].attrs.update(long_name="mean input->E weight per population", units="1")
    ds["participation_ratio"] = ("network", [measures.participation_ratio(xs), measures.participation_ratio(xt)])
    ds["participation_ratio"].attrs.update(long_name="participation ratio of the E activity", units="1")
    ds["rate_exc"] = ("network", [float(xs.mean() / fig5.BIN_S), float(xt.mean())])
    ds["rate_exc"].attrs.update(long_name="mean E rate in the compared window", units="Hz")
    active = xs.std(0) > 0
    if active.sum() >= 1 and xs.shape[0] >= 4:
        idx = np.unique(np.linspace(0, n - 1, min(n, rsa_max_samples)).round().astype(int))
        sims = {"cka": measures.linear_cka(xs, xt), "cka_debiased": measures.linear_cka(xs, xt, debiased=True),
                "rsa": measures.rsa(xs[idx], xt[idx])}
    else:
        sims = {"cka": np.nan, "cka_debiased": np.nan, "rsa": np.nan}  # a silent spiking network
    for k, v in sims.items():
        ds[k] = float(v)
        ds[k].attrs.update(long_name=f"{k.replace('_', ' ')} between the spiking E counts and the twin's E "
                           "rates over the same time bins", units="1")
    cfg = {"__class__": "RateVsSpiking", "spiking_file": str(spike_path), "twin_file": str(twin_path),
           "bin_s": fig5.BIN_S, "test_fraction": test_fraction, "rsa_max_samples": rsa_max_samples}
    ds.attrs.update(provenance(kind="analysis", config_json=json.dumps(cfg), seed=int(np.atleast_1d(sp.attrs["seed"])[0]),
                               extra={"experiment": "rate-vs-spiking", "n_bins": int(n), "window_start_s": t0,
                                      "spiking_duration_s": float(sp.attrs.get("simulated_time_s", np.nan))}))
    write_run(ds, out)
    if png is not None:
        plot_side_by_side(ds, png)
    return ds


def side_by_side_figure(ds: xr.Dataset):
    """Four panels: decoding R^2 per population, relative selectivity histograms, PR, CKA/RSA."""
    from bridge.plots import grid, outside_legend, plain_ticks, title

    fig, ax = grid(4, panel_w=4.2, panel_h=3.4)
    pops = list(ds["population"].values)
    xpos = np.arange(len(pops))
    for k, net in enumerate(ds["network"].values):
        ax[0].bar(xpos + (k - 0.5) * 0.38, ds["decoding_r2"].sel(network=net).values, 0.38, label=str(net))
        v = ds["relative_selectivity"].sel(network=net).values
        ax[1].hist(v[np.isfinite(v)], bins=np.linspace(-1, 1, 11), alpha=0.6, label=str(net))
    ax[0].set_xticks(xpos, pops)
    ax[0].set_xlabel("input population")
    ax[0].set_ylabel("decoding R^2, held out [1]")
    ax[0].axhline(0, color="k", lw=0.5)
    title(ax[0], "decoding each population's spike count per 25 ms bin from the E cells")
    ax[1].set_xlabel("relative selectivity (w_P2 - w_P1)/(w_P2 + w_P1) [1]")
    ax[1].set_ylabel("number of E cells")
    title(ax[1], "selectivity from the mean input weights")
    ax[2].bar(list(ds["network"].values), ds["participation_ratio"].values, color=["C0", "C1"])
    ax[2].set_xlabel("network")
    ax[2].set_ylabel("participation ratio [1]")
    title(ax[2], "dimensionality of the E activity")
    names = ["cka", "cka_debiased", "rsa"]
    ax[3].bar(names, [float(ds[k]) for k in names], color="C2")
    ax[3].set_ylim(min(0.0, *[float(np.nan_to_num(ds[k])) for k in names]), 1)
    ax[3].set_xlabel("measure")
    ax[3].set_ylabel("similarity, spiking vs twin [1]")
    title(ax[3], "the two networks' E responses to the same input")
    for a in ax:
        a.grid(alpha=0.3)
        plain_ticks(a)
    outside_legend(ax[0])
    outside_legend(ax[1])
    dur = ds.attrs.get("spiking_duration_s")
    fig.suptitle(f"spiking Fig. 5 network vs its rate twin ({ds.attrs.get('n_bins')} bins of 25 ms from "
                 f"t = {ds.attrs.get('window_start_s', 0):g} s" + (f" of a {float(dur):g} s run)" if dur else ")"),
                 fontsize=10)
    return fig


def plot_side_by_side(ds: xr.Dataset, png: str | os.PathLike) -> Path:
    """Draw :func:`side_by_side_figure` and save it as PNG."""
    from bridge.plots import save_figure

    return save_figure(side_by_side_figure(ds), png)
