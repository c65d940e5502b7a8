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
