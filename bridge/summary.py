"""Short human-readable summaries of results Datasets (for the CLI)."""
from __future__ import annotations

import numpy as np
import xarray as xr


def _fmt(v: np.ndarray) -> str:
    v = np.asarray(v, dtype=float)
    if v.size == 1:
        return f"{float(v.ravel()[0]):.4g}"
    if v.ndim == 1 and v.size <= 12:
        return "[" + ", ".join(f"{x:.4g}" for x in v) + "]"
    return f"mean {np.nanmean(v):.4g} (min {np.nanmin(v):.4g}, max {np.nanmax(v):.4g}, {v.size} values)"


def final_metrics(ds: xr.Dataset, names: tuple[str, ...] = ("test_accuracy", "train_loss")) -> str:
    """``'test_accuracy 0.97, train_loss 0.01'`` at the last epoch (mean over seeds when there are several)."""
    parts = []
    for n in names:
        if n not in ds:
            continue
        da = ds[n]
        if "epoch" in da.dims:
            da = da.isel(epoch=-1)
        if "seed" in da.dims and da.sizes["seed"] > 1:
            m, s = da.mean("seed").values, da.std("seed").values
            parts.append(f"{n} {_fmt(m)} +- {_fmt(s)} over {da.sizes['seed']} seeds")
        else:
            parts.append(f"{n} {_fmt(da.values)}")
    return ", ".join(parts) if parts else "(no metrics)"


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
        show = f" = {_fmt(last.values)}" if last.size <= 64 and da.dtype.kind in "fiu" else ""
        tag = " at last epoch" if "epoch" in da.dims and show else ""
        lines.append(f"  {name}({', '.join(da.dims)}) [{units}]{tag}{show}")
    if groups:
        lines.append("groups: " + ", ".join(groups))
    if "config" in a:
        cfg = str(a["config"])
        lines.append("config: " + (cfg if len(cfg) < 400 else cfg[:400] + " ..."))
    return "\n".join(lines)
