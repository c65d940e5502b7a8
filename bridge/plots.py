"""Figures from results Datasets (matplotlib, Agg backend), written atomically as PNG.

Every figure follows the same rules (checked by ``tests/test_plots.py``): at most :data:`MAX_COLS` panels a
row (more wrap onto further rows); constrained layout, so titles, labels and colour bars do not overlap;
every axis labelled with the quantity and the units stored in the file (``[ms]``, ``[s]``, ``[1]`` for
dimensionless); labelled colour bars; integer ticks on epoch axes; plain tick labels (no offset such as
"+1.999"); legends outside the axes, so they hide no data.

The ``*_figure`` functions return the matplotlib figure (for tests and callers that add to it); the
``plot_*`` functions draw and save it.
"""
from __future__ import annotations

import os
import textwrap
from pathlib import Path

import numpy as np
import xarray as xr

from bridge.io import atomic_write

#: the most panels in one row of a figure
MAX_COLS = 4
#: width of one panel in inches, and the characters of a panel title line at its font size
PANEL_W, PANEL_H, TITLE_CHARS = 4.0, 3.2, 42


def _figure(nrows: int = 1, ncols: int = 1, **kw):
    """``plt.subplots`` with ``squeeze=False`` and constrained layout (unless ``layout`` is given)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    kw.setdefault("layout", "constrained")
    return plt.subplots(nrows, ncols, squeeze=False, **kw)


def grid(n: int, max_cols: int = MAX_COLS, panel_w: float = PANEL_W, panel_h: float = PANEL_H, **kw):
    """A figure of ``n`` panels, at most ``max_cols`` a row; the unused panels of the last row are hidden.

    Returns ``(fig, axes)`` with ``axes`` the flat list of the ``n`` panels in use.
    """
    ncols = max(1, min(max_cols, n))
    nrows = -(-n // ncols)
    fig, axes = _figure(nrows, ncols, figsize=(panel_w * ncols, panel_h * nrows), **kw)
    flat = [ax for row in axes for ax in row]
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def save_figure(fig, path: str | os.PathLike) -> Path:
    """Save a matplotlib figure as PNG atomically and close it."""
    import matplotlib.pyplot as plt

    def _w(tmp: str) -> None:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")

    try:
        return atomic_write(path, _w)
    finally:
        plt.close(fig)


# --- labels, ticks, legends ---------------------------------------------------------------------------------

def units_of(da: xr.DataArray | None, default: str = "1") -> str:
    """The UDUNITS string of a variable or coordinate (``default`` when it has none)."""
    if da is None:
        return default
    u = str(da.attrs.get("units", "")).strip()
    return u or default


def label(name: str, units: str | None) -> str:
    """``'delta_t [ms]'``; no brackets when ``units`` is None (a count of things, e.g. 'E cells')."""
    return name if units is None else f"{name} [{units}]"


def coord_label(ds: xr.Dataset | xr.DataArray, dim: str) -> str:
    """Axis label of a dimension: its name and the units of its coordinate (``'index'`` without one)."""
    if dim in ds.coords:
        c = ds[dim]
        if c.dtype.kind in "fiu" and dim != "epoch":
            return label(dim, units_of(c))
        return dim
    return f"{dim} (index)"


def title(ax, text: str, fontsize: float = 9, chars: int = TITLE_CHARS) -> None:
    """A panel title wrapped to the panel width, so neighbouring titles never run into each other."""
    ax.set_title("\n".join(textwrap.wrap(str(text), chars)) or "", fontsize=fontsize)


def plain_ticks(ax, epoch_x: bool = False, epochs: np.ndarray | None = None) -> None:
    """No offset or scientific notation on linear axes; integer ticks on an epoch axis (every epoch when
    ``epochs`` holds at most 12, and the axis spans at least one epoch either side of a single one)."""
    from matplotlib.ticker import MaxNLocator, ScalarFormatter

    for axis in (ax.xaxis, ax.yaxis):
        if axis.get_scale() == "linear" and isinstance(axis.get_major_formatter(), ScalarFormatter):
            fmt = ScalarFormatter(useOffset=False)
            fmt.set_scientific(False)
            axis.set_major_formatter(fmt)
    if epoch_x:
        if epochs is not None and len(epochs) <= 12:
            ax.set_xticks(np.asarray(epochs))
            if len(epochs) == 1:
                ax.set_xlim(float(epochs[0]) - 1, float(epochs[0]) + 1)
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))


def outside_legend(ax, **kw) -> None:
    """A legend to the right of the axes, so it covers no data (constrained layout makes room for it)."""
    if ax.get_legend_handles_labels()[0]:
        kw.setdefault("fontsize", 7)
        ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, **kw)


def colorbar(fig, im, ax, text: str):
    """A colour bar beside ``ax`` labelled ``text``."""
    cb = fig.colorbar(im, ax=ax, shrink=0.8)
    cb.set_label(text, fontsize=8)
    return cb


# --- training curves ----------------------------------------------------------------------------------------

def curves_figure(ds: xr.Dataset, title_text: str | None = None):
    """One panel per variable with an ``epoch`` dimension; extra dims (seed, layer) become lines or bands."""
    names = [n for n, v in ds.data_vars.items() if "epoch" in v.dims and v.dtype.kind == "f"]
    if not names:
        raise ValueError("no per-epoch variables to plot")
    fig, axes = grid(len(names))
    for ax, name in zip(axes, names):
        da = ds[name]
        x = da["epoch"].values if "epoch" in da.coords else np.arange(1, da.sizes["epoch"] + 1)
        marker = "o" if len(x) <= 30 else None
        if "seed" in da.dims and da.sizes["seed"] > 1:
            m, s = da.mean("seed"), da.std("seed")
            others = [d for d in m.dims if d != "epoch"]
            if others:
                for lab in m[others[0]].values:
                    mm = m.sel({others[0]: lab}).values.reshape(len(x), -1).mean(1)
                    ss = s.sel({others[0]: lab}).values.reshape(len(x), -1).mean(1)
                    ax.plot(x, mm, marker=marker, label=str(lab))
                    ax.fill_between(x, mm - ss, mm + ss, alpha=0.2)
            else:
                ax.plot(x, m.values, marker=marker, label=f"mean of {da.sizes['seed']} seeds")
                ax.fill_between(x, m - s, m + s, alpha=0.2, label="+- 1 sd")
            legend_title = others[0] if others else None
        else:
            if "seed" in da.dims:
                da = da.isel(seed=0)
            others = [d for d in da.dims if d != "epoch"]
            if others:
                for lab in da[others[0]].values:
                    ax.plot(x, da.sel({others[0]: lab}).values.reshape(len(x), -1).mean(1), marker=marker,
                            label=str(lab))
            else:
                ax.plot(x, da.values, marker=marker)
            legend_title = others[0] if others else None
        ax.set_xlabel("epoch")
        ax.set_ylabel(label(name, units_of(ds[name])))
        title(ax, ds[name].attrs.get("long_name", name))
        ax.grid(alpha=0.3)
        plain_ticks(ax, epoch_x=True, epochs=x)
        outside_legend(ax, title=legend_title, title_fontsize=7)
    ttl = title_text or " ".join(str(ds.attrs.get(k, "")) for k in ("rule", "dataset")).strip()
    if ttl:
        fig.suptitle(ttl, fontsize=10)
    return fig


def plot_curves(ds: xr.Dataset, path: str | os.PathLike, title: str | None = None) -> Path:
    """Draw :func:`curves_figure` and save it as PNG."""
    return save_figure(curves_figure(ds, title), path)


# --- readout of several models on the same probe ---------------------------------------------------------

def readout_figure(models: dict[str, xr.DataArray], title_text: str = ""):
    """Readout accuracy per layer of several models on one probe: one line per model with more than one
    layer, a dashed horizontal line for a model with a single layer (the pixels)."""
    fig, axes = grid(1, panel_w=5.2, panel_h=3.4)
    ax = axes[0]
    depth = max(v.size for v in models.values())
    for k, (name, da) in enumerate(models.items()):
        vals = np.asarray(da.values, dtype=float).ravel()
        if vals.size == 1:
            ax.axhline(vals[0], ls="--", color=f"C{k}", label=f"{name}: {vals[0]:.3f}")
        else:
            ax.plot(np.arange(1, vals.size + 1), vals, marker="o", color=f"C{k}", label=name)
    longest = next(v for v in models.values() if v.size == depth)
    names = [str(x) for x in longest["layer"].values] if "layer" in longest.coords else None
    ax.set_xticks(np.arange(1, depth + 1), names)
    ax.set_xlim(0.6, depth + 0.4)
    ax.set_xlabel("layer")
    units = units_of(next(iter(models.values())))
    ax.set_ylabel(label("held-out readout accuracy", units))
    ax.grid(alpha=0.3)
    plain_ticks(ax)
    outside_legend(ax)
    if title_text:
        title(ax, title_text, chars=60)
    return fig


def plot_readout(models: dict[str, xr.DataArray], path: str | os.PathLike, title: str = "") -> Path:
    """Draw :func:`readout_figure` and save it as PNG."""
    return save_figure(readout_figure(models, title), path)


# --- heat maps ----------------------------------------------------------------------------------------------

def matrix_figure(da: xr.DataArray, title_text: str = "", vmin: float | None = None, vmax: float | None = None,
                  cbar_label: str | None = None):
    """A heat map of a 2-D DataArray (e.g. CKA with dims ``layer_a``, ``layer_b``), values annotated."""
    fig, axes = _figure(figsize=(2.4 + 0.75 * da.shape[1], 1.6 + 0.6 * da.shape[0]))
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
        lo, hi = np.nanmin(vals), np.nanmax(vals)
        mid = (lo + hi) / 2 if vmin is None or vmax is None else (vmin + vmax) / 2
        for i in range(vals.shape[0]):
            for j in range(vals.shape[1]):
                ax.text(j, i, f"{vals[i, j]:.2f}", ha="center", va="center", fontsize=7,
                        color="k" if vals[i, j] > mid else "w")
    colorbar(fig, im, ax, cbar_label or label(str(da.name or "value"), units_of(da)))
    title(ax, title_text or da.attrs.get("long_name", da.name or ""), chars=max(30, 9 * da.shape[1]))
    return fig


def plot_matrix(da: xr.DataArray, path: str | os.PathLike, title: str = "", vmin: float | None = None,
                vmax: float | None = None) -> Path:
    """Draw :func:`matrix_figure` and save it as PNG."""
    return save_figure(matrix_figure(da, title, vmin, vmax), path)


def comparison_figure(ds: xr.Dataset, title_text: str | None = None):
    """Heat map of a comparison file's ``(layer_a, layer_b)`` matrix (the first such variable)."""
    name = next(n for n, v in ds.data_vars.items() if {"layer_a", "layer_b"} <= set(v.dims))
    da = ds[name].transpose("layer_a", "layer_b")
    a, b = ds.attrs.get("model_a", "A"), ds.attrs.get("model_b", "B")
    lo = 0.0 if float(np.nanmin(da.values)) >= 0 else None
    ttl = title_text or f"{name}: {a} vs {b}"
    return matrix_figure(da, ttl, vmin=lo, vmax=1.0 if float(np.nanmax(da.values)) <= 1 else None,
                         cbar_label=label(name.replace("_", " "), units_of(da)))


def plot_comparison(ds: xr.Dataset, path: str | os.PathLike, title: str | None = None) -> Path:
    """Draw :func:`comparison_figure` and save it as PNG."""
    return save_figure(comparison_figure(ds, title), path)


# --- files without epochs (spiking runs, analyses) -----------------------------------------------------------

def panels_figure(ds: xr.Dataset, reps: dict[str, xr.Dataset] | None = None):
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
    panels = panels[:6] + [("rep", item) for item in list((reps or {}).items())[:2]]
    if not panels:
        raise ValueError("nothing to plot")
    fig, axes = grid(len(panels), panel_w=4.4, panel_h=3.3)
    for ax, (kind, what) in zip(axes, panels):
        if kind == "raster":
            t, n = ds[what].values, ds[what.replace("time", "neuron", 1)].values
            ax.plot(t, n, "|", ms=2, color="k")
            ax.set_xlabel(label("time", units_of(ds[what], "s")))
            ax.set_ylabel(f"neuron of {what[len('spike_time_'):]} (index)")
            title(ax, f"spikes, {what[len('spike_time_'):]}")
        elif kind == "labelled":
            da = ds[what]
            lab = next(d for d in da.dims if d in ds.coords and ds[d].dtype.kind in "OUS")
            other = next(d for d in da.dims if d != lab)
            x = ds[other].values if other in ds.coords else np.arange(da.sizes[other])
            for v in da[lab].values:
                ax.plot(x, da.sel({lab: v}).values, lw=0.8, label=str(v))
            outside_legend(ax, title=lab, title_fontsize=7)
            ax.set_xlabel(coord_label(ds, other))
            ax.set_ylabel(label(what, units_of(da)))
        elif kind == "line":
            da = ds[what]
            ax.plot(ds[da.dims[0]].values, da.values, marker="o" if da.size < 30 else None, lw=0.8)
            ax.set_xlabel(coord_label(ds, da.dims[0]))
            ax.set_ylabel(label(what, units_of(da)))
        elif kind == "hist":
            vals = np.asarray(ds[what].values, dtype=float)
            ax.hist(vals[np.isfinite(vals)], bins=20)
            ax.set_xlabel(label(what, units_of(ds[what])))
            ax.set_ylabel(f"number of {ds[what].dims[0]}")
            from matplotlib.ticker import MaxNLocator

            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        else:
            layer, rep = what
            da = rep["response"]
            im = ax.imshow(np.asarray(da.values, dtype=float).T, aspect="auto", interpolation="nearest",
                           cmap="magma")
            sample = da.dims[0]
            if sample == "time" and "time" in rep.coords and rep.sizes["time"] > 1:
                t = rep["time"].values
                im.set_extent((t[0], t[-1] + (t[1] - t[0]), da.shape[1] - 0.5, -0.5))
                ax.set_xlabel(label("time", units_of(rep["time"], "s")))
            else:
                ax.set_xlabel(f"{sample} (index)")
            ax.set_ylabel("unit (index)")
            title(ax, f"representation {layer}")
            colorbar(fig, im, ax, label(f"response of {layer}", units_of(da)))
        if kind in ("labelled", "line", "hist"):
            title(ax, str(ds[what].attrs.get("long_name", what)))
        ax.grid(alpha=0.3)
        if kind != "rep":
            plain_ticks(ax)
    ttl = " ".join(str(ds.attrs.get(k, "")) for k in ("title", "experiment", "condition")).strip()
    if ttl:
        fig.suptitle(ttl, fontsize=10)
    return fig


def _plot_panels(ds: xr.Dataset, path: str | os.PathLike, reps: dict[str, xr.Dataset] | None = None) -> Path:
    return save_figure(panels_figure(ds, reps), path)


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
