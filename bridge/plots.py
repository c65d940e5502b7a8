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
    """Generic summary: one panel per numeric 1-D variable (line or bars), plus each time representation."""
    one_d = [n for n, v in ds.data_vars.items() if v.ndim == 1 and v.dtype.kind in "fiu" and v.size > 1][:8]
    two_d = [n for n, v in ds.data_vars.items() if v.ndim == 2 and v.dtype.kind in "fiu"][:2]
    rep_items = list((reps or {}).items())[:2]
    n = len(one_d) + len(two_d) + len(rep_items)
    if n == 0:
        raise ValueError("nothing to plot")
    ncols = min(3, n)
    nrows = -(-n // ncols)
    fig, axes = _figure(nrows, ncols, figsize=(4.4 * ncols, 3.3 * nrows))
    flat = [ax for row in axes for ax in row]
    k = 0
    for name in one_d:
        ax, da = flat[k], ds[name]
        k += 1
        d = da.dims[0]
        x = da[d].values if d in da.coords else np.arange(da.size)
        if x.dtype.kind in "fiu" and da.size > 12:
            ax.plot(x, da.values, lw=0.8)
        else:
            ax.bar([str(v) for v in x], da.values)
            ax.tick_params(axis="x", rotation=45)
        ax.set_xlabel(d)
        ax.set_ylabel(f"{name} [{da.attrs.get('units', '')}]")
        ax.set_title(da.attrs.get("long_name", name)[:60], fontsize=8)
        ax.grid(alpha=0.3)
    for name in two_d:
        ax, da = flat[k], ds[name]
        k += 1
        im = ax.imshow(np.asarray(da.values, dtype=float).T, aspect="auto", interpolation="nearest")
        ax.set_xlabel(da.dims[0])
        ax.set_ylabel(da.dims[1])
        ax.set_title(da.attrs.get("long_name", name)[:60], fontsize=8)
        fig.colorbar(im, ax=ax, shrink=0.8)
    for layer, rep in rep_items:
        ax, da = flat[k], rep["response"]
        k += 1
        im = ax.imshow(np.asarray(da.values, dtype=float).T, aspect="auto", interpolation="nearest", cmap="magma")
        ax.set_xlabel(da.dims[0])
        ax.set_ylabel("unit")
        ax.set_title(f"representation {layer} [{da.attrs.get('units', '')}]", fontsize=8)
        fig.colorbar(im, ax=ax, shrink=0.8)
    for ax in flat[k:]:
        ax.axis("off")
    fig.suptitle(str(ds.attrs.get("title", "")), fontsize=10)
    return save_figure(fig, path)


def plot_file(ds: xr.Dataset, out: str | os.PathLike, path: str | os.PathLike | None = None) -> Path:
    """The figure that fits a results file: comparison -> heat map; training run -> curves; else a summary.

    Raises
    ------
    ResultsFileError
        When the file holds nothing that can be drawn.
    """
    from bridge.errors import ResultsFileError

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
