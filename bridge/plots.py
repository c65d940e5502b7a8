"""Figures from results Datasets (matplotlib, Agg backend), written atomically as PNG."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import xarray as xr

from bridge.io import atomic_write


def _figure(nrows: int = 1, ncols: int = 1, **kw):
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt.subplots(nrows, ncols, squeeze=False, **kw)


def save_figure(fig, path: str | os.PathLike) -> Path:
    """Save a matplotlib figure as PNG atomically and close it."""
    import matplotlib.pyplot as plt

    def _w(tmp: str) -> None:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")

    try:
        return atomic_write(path, _w)
    finally:
        plt.close(fig)


def plot_curves(ds: xr.Dataset, path: str | os.PathLike, title: str | None = None) -> Path:
    """One panel per variable with an ``epoch`` dimension; extra dims (seed, layer) become lines or bands."""
    names = [n for n, v in ds.data_vars.items() if "epoch" in v.dims and v.dtype.kind == "f"]
    if not names:
        raise ValueError("no per-epoch variables to plot")
    fig, axes = _figure(1, len(names), figsize=(4.2 * len(names), 3.4))
    for ax, name in zip(axes[0], names):
        da = ds[name]
        x = da["epoch"].values
        if "seed" in da.dims and da.sizes["seed"] > 1:
            m, s = da.mean("seed"), da.std("seed")
            others = [d for d in m.dims if d != "epoch"]
            if others:
                for lab in m[others[0]].values:
                    mm, ss = m.sel({others[0]: lab}), s.sel({others[0]: lab})
                    ax.plot(x, mm, marker="o", label=str(lab))
                    ax.fill_between(x, mm - ss, mm + ss, alpha=0.2)
            else:
                ax.plot(x, m, marker="o")
                ax.fill_between(x, m - s, m + s, alpha=0.2)
        else:
            if "seed" in da.dims:
                da = da.isel(seed=0)
            others = [d for d in da.dims if d != "epoch"]
            if others:
                for lab in da[others[0]].values:
                    ax.plot(x, da.sel({others[0]: lab}).values.reshape(len(x), -1).mean(1), marker="o",
                            label=str(lab))
                ax.legend(fontsize=7, title=others[0])
            else:
                ax.plot(x, da.values, marker="o")
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"{name} [{da.attrs.get('units', '')}]")
        ax.set_title(da.attrs.get("long_name", name), fontsize=9)
        ax.grid(alpha=0.3)
    ttl = title or " ".join(str(ds.attrs.get(k, "")) for k in ("rule", "dataset"))
    fig.suptitle(ttl.strip(), fontsize=10)
    return save_figure(fig, path)


def plot_matrix(da: xr.DataArray, path: str | os.PathLike, title: str = "", vmin: float | None = None,
                vmax: float | None = None) -> Path:
    """A heat map of a 2-D DataArray (e.g. CKA with dims ``layer_a``, ``layer_b``), values annotated."""
    fig, axes = _figure(figsize=(1.0 + 0.7 * da.shape[1], 0.8 + 0.6 * da.shape[0]))
    ax = axes[0][0]
    vals = np.asarray(da.values, dtype=float)
    im = ax.imshow(vals, cmap="viridis", vmin=vmin, vmax=vmax)
    d0, d1 = da.dims
    ax.set_yticks(range(da.shape[0]), [str(v) for v in da[d0].values] if d0 in da.coords else None)
    ax.set_xticks(range(da.shape[1]), [str(v) for v in da[d1].values] if d1 in da.coords else None,
                  rotation=45, ha="right")
    ax.set_ylabel(da.attrs.get("label_a", d0))
    ax.set_xlabel(da.attrs.get("label_b", d1))
    if vals.size <= 100:
        for i in range(vals.shape[0]):
            for j in range(vals.shape[1]):
                ax.text(j, i, f"{vals[i, j]:.2f}", ha="center", va="center", fontsize=7, color="w")
    fig.colorbar(im, ax=ax, shrink=0.8)
    ax.set_title(title or da.attrs.get("long_name", da.name or ""), fontsize=9)
    return save_figure(fig, path)


def plot_comparison(ds: xr.Dataset, path: str | os.PathLike, title: str | None = None) -> Path:
    """Heat map of a comparison file's ``(layer_a, layer_b)`` matrix (the first such variable)."""
    name = next(n for n, v in ds.data_vars.items() if {"layer_a", "layer_b"} <= set(v.dims))
    da = ds[name].transpose("layer_a", "layer_b")
    a, b = ds.attrs.get("model_a", "A"), ds.attrs.get("model_b", "B")
    lo = 0.0 if float(np.nanmin(da.values)) >= 0 else None
    ttl = title or f"{name}: {a} vs {b}"
    return plot_matrix(da, path, title=ttl, vmin=lo, vmax=1.0 if float(np.nanmax(da.values)) <= 1 else None)


def _plot_panels(ds: xr.Dataset, path: str | os.PathLike, reps: dict[str, xr.Dataset] | None = None) -> Path:
    """Generic summary of a file without epochs: spike rasters (``spike_time_X``/``spike_neuron_X`` ragged
    arrays), labelled time courses (e.g. ``(input_time, population)``), histograms of per-neuron values,
    line plots of other 1-D variables, and each representation as an image."""
    panels: list[tuple[str, object]] = []
    for name in ds.data_vars:
        if name.startswith("spike_time_") and name.replace("time", "neuron", 1) in ds and ds[name].size:
            if ds[name].size <= 200_000:
                panels.append(("raster", name))
    for name, v in ds.data_vars.items():
        if name.startswith(("spike_", "w_")) or v.dtype.kind not in "fiu" or v.size < 2:
            continue
        if v.ndim == 2 and any(d in ds.coords and ds[d].dtype.kind in "OUS" for d in v.dims):
            panels.append(("labelled", name))
        elif v.ndim == 1 and v.dims[0] in ds.coords:
            panels.append(("line", name))
        elif v.ndim == 1:
            panels.append(("hist", name))
    panels = panels[:7] + [("rep", item) for item in list((reps or {}).items())[:2]]
    if not panels:
        raise ValueError("nothing to plot")
    ncols = min(3, len(panels))
    nrows = -(-len(panels) // ncols)
    fig, axes = _figure(nrows, ncols, figsize=(4.6 * ncols, 3.4 * nrows))
    flat = [ax for row in axes for ax in row]
    for ax, (kind, what) in zip(flat, panels):
        if kind == "raster":
            t, n = ds[what].values, ds[what.replace("time", "neuron", 1)].values
            ax.plot(t, n, "|", ms=2, color="k")
            ax.set_xlabel(f"time [{ds[what].attrs.get('units', 's')}]")
            ax.set_ylabel("neuron")
            ax.set_title(f"spikes, {what[len('spike_time_'):]}", fontsize=9)
        elif kind == "labelled":
            da = ds[what]
            lab = next(d for d in da.dims if d in ds.coords and ds[d].dtype.kind in "OUS")
            other = next(d for d in da.dims if d != lab)
            x = ds[other].values if other in ds.coords else np.arange(da.sizes[other])
            for v in da[lab].values:
                ax.plot(x, da.sel({lab: v}).values, lw=0.8, label=str(v))
            ax.legend(fontsize=7)
            ax.set_xlabel(other)
            ax.set_ylabel(f"{what} [{da.attrs.get('units', '')}]")
        elif kind == "line":
            da = ds[what]
            ax.plot(ds[da.dims[0]].values, da.values, marker="o" if da.size < 30 else None, lw=0.8)
            ax.set_xlabel(da.dims[0])
            ax.set_ylabel(f"{what} [{da.attrs.get('units', '')}]")
        elif kind == "hist":
            vals = np.asarray(ds[what].values, dtype=float)
            ax.hist(vals[np.isfinite(vals)], bins=20)
            ax.set_xlabel(f"{what} [{ds[what].attrs.get('units', '')}]")
            ax.set_ylabel(f"count over {ds[what].dims[0]}")
        else:
            layer, rep = what
            da = rep["response"]
            im = ax.imshow(np.asarray(da.values, dtype=float).T, aspect="auto", interpolation="nearest",
                           cmap="magma")
            ax.set_xlabel(f"{da.dims[0]} (bin)")
            ax.set_ylabel("unit")
            ax.set_title(f"representation {layer} [{da.attrs.get('units', '')}]", fontsize=9)
            fig.colorbar(im, ax=ax, shrink=0.8)
        if kind in ("labelled", "line", "hist"):
            ax.set_title(str(ds[what].attrs.get("long_name", what))[:55], fontsize=8)
        ax.grid(alpha=0.3)
    for ax in flat[len(panels):]:
        ax.axis("off")
    fig.suptitle(" ".join(str(ds.attrs.get(k, "")) for k in ("title", "experiment", "condition")).strip(),
                 fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_sweep(ds: xr.Dataset, path: str | os.PathLike, max_panels: int = 4) -> Path:
    """A collected sweep (``ratespike sweep collect``): one panel per metric, one line per combination of
    the grid's other dimensions, mean +- s.d. across ``seed`` (a band; no band with one seed).

    Metrics with an ``epoch`` dimension are drawn over epochs; the others as points per grid combination.
    """
    import json

    dims = [d for d in json.loads(ds.attrs.get("sweep_dims", "[]")) if d in ds.dims]
    names = [n for n, v in ds.data_vars.items() if v.dtype.kind == "f" and set(dims) <= set(v.dims)
             and not n.startswith("point_") and set(v.dims) <= set(dims) | {"epoch"}]
    names = sorted(names, key=lambda n: (not n.startswith("test_"), n))[:max_panels]
    if not names:
        raise ValueError("no sweep metrics to plot")
    others = [d for d in dims if d != "seed"]
    fig, axes = _figure(1, len(names), figsize=(4.6 * len(names), 3.6))
    for ax, name in zip(axes[0], names):
        da = ds[name]
        mean = da.mean("seed") if "seed" in da.dims else da
        sd = da.std("seed") if "seed" in da.dims and da.sizes["seed"] > 1 else None
        combos = (mean.stack(_combo=others) if others else mean.expand_dims(_combo=[0]))
        sds = (sd.stack(_combo=others) if others else sd.expand_dims(_combo=[0])) if sd is not None else None
        for i in range(combos.sizes["_combo"]):
            m = combos.isel(_combo=i)
            lab = ", ".join(f"{d}={m[d].item()}" for d in others) if others else ""
            if "epoch" in m.dims:
                x = m["epoch"].values
                s_ = sds.isel(_combo=i).values if sds is not None else None
                ax.errorbar(x, m.values, yerr=s_, marker="o", capsize=3, label=lab or None)
                if s_ is not None and len(x) > 1:
                    ax.fill_between(x, m.values - s_, m.values + s_, alpha=0.2)
                ax.set_xlabel("epoch")
            else:
                err = float(sds.isel(_combo=i)) if sds is not None else None
                ax.errorbar([i], [float(m)], yerr=err, fmt="o", capsize=3, label=lab or None)
                ax.set_xticks([])
        ax.set_ylabel(f"{name} [{da.attrs.get('units', '')}]")
        ax.set_title(da.attrs.get("long_name", name) + (" (mean +- s.d. over seeds)" if sd is not None else ""),
                     fontsize=9)
        ax.grid(alpha=0.3)
        if others:
            ax.legend(fontsize=6)
    n = int(ds.attrs.get("points_complete", 0))
    fig.suptitle(f"sweep over {', '.join(dims)} ({n} points)", fontsize=10)
    return save_figure(fig, path)


def plot_file(ds: xr.Dataset, out: str | os.PathLike, path: str | os.PathLike | None = None) -> Path:
    """The figure that fits a results file: comparison -> heat map; training run -> curves; else a summary.

    Raises
    ------
    ResultsFileError
        When the file holds nothing that can be drawn.
    """
    from bridge.errors import ResultsFileError

    if ds.attrs.get("ratespike_kind") == "sweep":
        return plot_sweep(ds, out)
    if any({"layer_a", "layer_b"} <= set(v.dims) for v in ds.data_vars.values()):
        return plot_comparison(ds, out)
    if any("epoch" in v.dims and v.dtype.kind == "f" for v in ds.data_vars.values()):
        return plot_curves(ds, out)
    reps: dict[str, xr.Dataset] = {}
    if path is not None:
        from bridge.io import list_groups, open_group
        from bridge.reps import GROUP_PREFIX

        for g in list_groups(path):
            if g.startswith(GROUP_PREFIX + "/"):
                reps[g.split("/", 1)[1]] = open_group(path, g)
    try:
        return _plot_panels(ds, out, reps)
    except ValueError:
        raise ResultsFileError(f"{str(path or 'the file')!r} holds no variables that can be plotted") from None
