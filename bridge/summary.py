"""Short human-readable summaries of results Datasets (for the CLI).

Values are labelled by their coordinates (``test_accuracy conv1 0.6797, conv2 0.844``) and printed with
enough significant digits that a value which is not an integer never prints as one (a loss of 1.9995 stays
``1.9995``, not ``2``).
"""
from __future__ import annotations

import os

import numpy as np
import xarray as xr

#: significant digits of a printed value, raised up to MAX_DIGITS until a non-integer prints as one
DIGITS = 4
MAX_DIGITS = 8


def fmt_number(x: float, digits: int = DIGITS) -> str:
    """``x`` with ``digits`` significant digits, more when fewer would show a non-integer as an integer."""
    x = float(x)
    if not np.isfinite(x):
        return str(x)
    for d in range(digits, MAX_DIGITS + 1):
        s = f"{x:.{d}g}"
        if x == round(x) or any(c in s for c in ".e"):
            return s
    return s


def _labels(da: xr.DataArray) -> list[str] | None:
    """Labels of a 1-D DataArray's entries (its coordinate's values), or None without a coordinate."""
    if da.ndim != 1:
        return None
    dim = da.dims[0]
    if dim not in da.coords:
        return None
    vals = da[dim].values
    if vals.dtype.kind in "iuf":  # numbers say little alone: "seed 0 0.96", not "0 0.96"
        return [f"{dim} {v}" for v in vals]
    return [str(v) for v in vals]


def _fmt(v: np.ndarray | xr.DataArray, spread: np.ndarray | xr.DataArray | None = None) -> str:
    """One value, a labelled or plain list of a few values, or a mean/min/max summary of many."""
    labels = _labels(v) if isinstance(v, xr.DataArray) else None
    a = np.asarray(v, dtype=float)
    s = None if spread is None else np.asarray(spread, dtype=float)

    def one(k) -> str:
        text = fmt_number(a.ravel()[k])
        return text if s is None else f"{text} +- {fmt_number(s.ravel()[k], 2)}"

    if a.size == 1:
        return one(0)
    if a.ndim == 1 and a.size <= 12:
        if labels is not None:
            return ", ".join(f"{lab} {one(k)}" for k, lab in enumerate(labels))
        return "[" + ", ".join(one(k) for k in range(a.size)) + "]"
    return (f"mean {fmt_number(np.nanmean(a))} (min {fmt_number(np.nanmin(a))}, max {fmt_number(np.nanmax(a))}, "
            f"{a.size} values)")


def final_metrics(ds: xr.Dataset, names: tuple[str, ...] = ("test_accuracy", "train_loss")) -> str:
    """``'test_accuracy 0.97, train_loss 0.01'`` at the last epoch (mean +- sd over seeds when there are several).

    Per-layer values are labelled: ``test_accuracy conv1 0.6797, conv2 0.844``.
    """
    parts = []
    for n in names:
        if n not in ds:
            continue
        da = ds[n]
        if "epoch" in da.dims:
            da = da.isel(epoch=-1)
        if "seed" in da.dims and da.sizes["seed"] > 1:
            m, s = da.mean("seed"), da.std("seed")
            parts.append(f"{n} {_fmt(m, s)} (mean +- sd over {da.sizes['seed']} seeds)")
        else:
            if "seed" in da.dims:
                da = da.isel(seed=0)
            parts.append(f"{n} {_fmt(da)}")
    return "; ".join(parts) if parts else "(no metrics)"


def representation_note(ds: xr.Dataset, path: str | os.PathLike) -> str | None:
    """A note when a multi-seed file keeps representations of some of its seeds only, else None."""
    seeds = np.atleast_1d(ds.attrs.get("seed", [])).astype(int).tolist()
    if len(seeds) < 2:
        return None
    from bridge.io import list_groups, open_group
    from bridge.reps import GROUP_PREFIX

    kept: set[int] = set()
    layers = [g for g in list_groups(path) if g.startswith(GROUP_PREFIX + "/")]
    if not layers:
        return None
    for g in layers:
        rep = open_group(path, g)
        if "seed" in rep.dims:
            kept |= {int(s) for s in rep["seed"].values}
        elif "seed" in rep.attrs:
            kept |= {int(s) for s in np.atleast_1d(rep.attrs["seed"])}
    if not kept or set(seeds) <= kept:
        return None
    which = ", ".join(str(s) for s in sorted(kept))
    return (f"note: the representations in this file are of seed{'s' if len(kept) > 1 else ''} {which} only, "
            f"of the {len(seeds)} seeds trained; comparisons use "
            f"{'those seeds' if len(kept) > 1 else 'that seed'}")


def describe(ds: xr.Dataset, groups: list[str] | None = None) -> str:
    """A multi-line description of a results file: provenance, dimensions, variables, groups."""
    lines = []
    a = ds.attrs
    head = [f"{k}: {a[k]}" for k in ("ratespike_kind", "rule", "experiment", "dataset", "seed", "device",
                                     "epochs_completed", "simulated_time_s", "wall_time_s", "build_time_s",
                                     "ratespike_version", "date_created") if k in a]
    lines += head
    lines.append("dimensions: " + (", ".join(f"{d}={n}" for d, n in ds.sizes.items()) or "(none)"))
    lines.append("variables:")
    for name, da in ds.data_vars.items():
        units = da.attrs.get("units", "")
        last = da
        if "epoch" in da.dims:
            last = da.isel(epoch=-1)
        show = f" = {_fmt(last)}" if last.size <= 64 and da.dtype.kind in "fiu" else ""
        tag = " at last epoch" if "epoch" in da.dims and show else ""
        lines.append(f"  {name}({', '.join(da.dims)}) [{units}]{tag}{show}")
    if groups:
        lines.append("groups: " + ", ".join(groups))
    if "config" in a:
        cfg = str(a["config"])
        lines.append("config: " + (cfg if len(cfg) < 400 else cfg[:400] + " ..."))
    return "\n".join(lines)
