"""Representations: a model's responses to a fixed probe set, as named-dimension xarray objects.

In a results file, each layer's representation is a child group ``representations/<layer>`` holding
one variable ``response`` with dimensions ``(stimulus, unit)`` (deep nets: responses to a fixed probe
set of images) or ``(time, unit)`` (spiking nets and their rate twins: binned activity over a window).
Stimulus labels, when known, are the coordinate ``label`` along ``stimulus``. Layers of one model may have
different unit counts, which is why each layer is its own group. See ``docs/results-format.md``.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr

GROUP_PREFIX = "representations"
#: images in the probe set of image datasets: the first PROBE_SIZE test images, identical in every run
PROBE_SIZE = 1000


def representation(values: np.ndarray, *, layer: str, sample_dim: str = "stimulus",
                   labels: np.ndarray | None = None, units: str = "1", attrs: Mapping[str, Any] | None = None,
                   time_step_s: float | None = None) -> xr.Dataset:
    """Wrap a ``(sample, unit)`` response matrix as a representation Dataset.

    Parameters
    ----------
    values : array, shape (n_samples, n_units)
    layer : str
        Layer name (``"fc1"``, ``"conv3"``, ``"E"`` ...).
    sample_dim : {"stimulus", "time"}
    labels : array of int, optional
        Class label of each stimulus.
    units : str
        UDUNITS of the responses (``"1"`` for rates of rate nets, ``"Hz"`` or ``"count"`` for spikes).
    time_step_s : float, optional
        Bin width when ``sample_dim == "time"``; sets a ``time`` coordinate in seconds.
    """
    v = np.asarray(values)
    if v.ndim != 2:
        raise ValueError(f"representation of layer {layer!r} must be 2-D (sample, unit), got shape {v.shape}")
    coords: dict[str, Any] = {sample_dim: np.arange(v.shape[0]), "unit": np.arange(v.shape[1])}
    if labels is not None:
        coords["label"] = (sample_dim, np.asarray(labels).astype(np.int64))
    if sample_dim == "time" and time_step_s is not None:
        coords["time"] = np.arange(v.shape[0]) * float(time_step_s)
    ds = xr.Dataset({"response": ((sample_dim, "unit"), v.astype(np.float32))}, coords=coords)
    ds["response"].attrs.update(long_name=f"responses of layer {layer}", units=units)
    if sample_dim == "time":
        ds["time"].attrs.update(units="s", long_name="start of the time bin")
    ds.attrs.update({"layer": layer, **(attrs or {})})
    return ds


def groups_of(reps: Mapping[str, xr.Dataset]) -> dict[str, xr.Dataset]:
    """``{layer: Dataset}`` -> ``{"representations/<layer>": Dataset}`` for :func:`bridge.io.write_run`."""
    return {f"{GROUP_PREFIX}/{name}": ds for name, ds in reps.items()}
