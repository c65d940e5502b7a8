"""Layer-by-layer comparison of what two runs learned (no torch, no Brian2).

Each results file holds its representations as groups ``representations/<layer>`` (see
:mod:`bridge.reps`). :func:`compare_runs` reads them, checks that both runs were probed with the same
samples, and computes one measure for every pair (layer of run A, layer of run B): a Dataset whose first
data variable has dimensions ``(layer_a, layer_b)``. The same code compares two deep nets on images
(``stimulus`` samples), or a spiking network with its rate twin (``time`` samples).
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import xarray as xr

from bridge import measures
from bridge.errors import ConfigError, ResultsFileError, unknown_choice
from bridge.io import list_groups, open_group, open_run, provenance
from bridge.reps import GROUP_PREFIX

MEASURES: dict[str, str] = {
    "cka": "linear CKA (Kornblith et al. 2019)",
    "cka-debiased": "debiased linear CKA (unbiased HSIC, Song et al. 2012)",
    "rsa": "Spearman correlation of correlation-distance RDMs (Kriegeskorte et al. 2008)",
    "decoding": "held-out R^2 of a ridge readout of layer_b from layer_a (linear predictivity)",
}
Measure = Literal["cka", "cka-debiased", "rsa", "decoding"]


def load_representations(path: str | os.PathLike) -> dict[str, xr.Dataset]:
    """All representation groups of a ratespike results file, ``{layer: Dataset}`` in file order.

    Raises
    ------
    ResultsFileError
        If the file is missing, not a ratespike results file, or holds no representations.
    """
    open_run(path)  # checks that it is a ratespike file
    names = [g for g in list_groups(path) if g.startswith(GROUP_PREFIX + "/") and g.count("/") == 1]
    if not names:
        raise ResultsFileError(f"{str(path)!r} holds no representations (no '{GROUP_PREFIX}/<layer>' groups)")
    out: dict[str, xr.Dataset] = {}
    for g in names:
        ds = open_group(path, g)
        if "response" not in ds:
            raise ResultsFileError(f"{str(path)!r} group {g!r} has no 'response' variable")
        out[g.split("/", 1)[1]] = ds
    return out


def select_layers(reps: Mapping[str, xr.Dataset], layers: Sequence[str] | None, path: str) -> dict[str, xr.Dataset]:
    """The chosen layers of a run (all when ``layers`` is None); a ConfigError for a layer it lacks."""
    if not layers:
        return dict(reps)
    out = {}
    for name in layers:
        if name not in reps:
            raise ConfigError(f"{Path(path).name}: {unknown_choice('layer', name, reps)}")
        out[name] = reps[name]
    return out


def _sample_dim(ds: xr.Dataset) -> str:
    return ds["response"].dims[0]


def check_same_probes(reps_a: Mapping[str, xr.Dataset], reps_b: Mapping[str, xr.Dataset],
                      name_a: str = "A", name_b: str = "B") -> str:
    """Check that every layer of both runs was probed with the same samples; return the sample dimension.

    Compares the sample dimension (``stimulus`` or ``time``), the number of samples, the probe dataset and
    split, the stimulus labels and the time coordinates, and rejects NaN or inf responses.

    Raises
    ------
    ResultsFileError
        Naming what differs (or which layer holds NaNs).
    """
    first_a = next(iter(reps_a.values()))
    for who, reps in ((name_a, reps_a), (name_b, reps_b)):
        for layer, ds in reps.items():
            v = ds["response"].values
            if not np.all(np.isfinite(v)):
                bad = int(np.sum(~np.isfinite(v)))
                raise ResultsFileError(f"{who} layer {layer!r} has {bad} NaN or inf responses; cannot compare")
            if ds["response"].ndim != 2:
                raise ResultsFileError(f"{who} layer {layer!r} response has dims {ds['response'].dims}, "
                                       "expected (stimulus|time, unit)")
    ref_dim = _sample_dim(first_a)
    ref_n = first_a.sizes[ref_dim]
    for who, reps in ((name_a, reps_a), (name_b, reps_b)):
        for layer, ds in reps.items():
            d = _sample_dim(ds)
            if d != ref_dim:
                raise ResultsFileError(f"probe sets differ: {name_a} has {ref_dim!r} samples but {who} layer "
                                       f"{layer!r} has {d!r} samples")
            if ds.sizes[d] != ref_n:
                raise ResultsFileError(f"probe sets differ in length: {name_a} has {ref_n} {ref_dim} samples, "
                                       f"{who} layer {layer!r} has {ds.sizes[d]}")
            for key in ("probe_dataset", "probe_split", "probe_count"):
                va, vb = first_a.attrs.get(key), ds.attrs.get(key)
                if va is not None and vb is not None and str(va) != str(vb):
                    raise ResultsFileError(f"probe sets differ: {key} is {va!r} in {name_a} but {vb!r} in {who}")
            if "label" in first_a.coords and "label" in ds.coords and not np.array_equal(
                    first_a["label"].values, ds["label"].values):
                k = int(np.sum(first_a["label"].values != ds["label"].values))
                raise ResultsFileError(f"probe sets differ: {k} of {ref_n} stimulus labels differ between "
                                       f"{name_a} and {who} layer {layer!r}")
            if ref_dim == "time" and "time" in first_a.coords and "time" in ds.coords and not np.allclose(
                    first_a["time"].values, ds["time"].values, rtol=0, atol=1e-9):
                raise ResultsFileError(f"probe sets differ: the time bins of {name_a} and {who} layer {layer!r} "
                                       "differ (start or bin width)")
    return ref_dim


def _subsample(n: int, max_samples: int | None) -> np.ndarray:
    """Evenly spaced sample indices, at most ``max_samples`` of them (all when None)."""
    if max_samples is None or n <= max_samples:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, max_samples).round().astype(int))


def pair_measure(measure: str, x: np.ndarray, y: np.ndarray, seed: int = 0) -> float:
    """One measure between two ``(sample, unit)`` responses."""
    if measure == "cka":
        return measures.linear_cka(x, y)
    if measure == "cka-debiased":
        return measures.linear_cka(x, y, debiased=True)
    if measure == "rsa":
        return measures.rsa(x, y)
    if measure == "decoding":
        return measures.linear_predictivity(x, y, seed=seed)
    raise unknown_choice("measure", measure, MEASURES)


def compare_representations(reps_a: Mapping[str, xr.Dataset], reps_b: Mapping[str, xr.Dataset],
                            measure: str = "cka", *, name_a: str = "A", name_b: str = "B",
                            max_samples: int | None = None, seed: int = 0) -> xr.Dataset:
    """The ``(layer_a, layer_b)`` matrix of one measure between two runs' representations.

    Parameters
    ----------
    reps_a, reps_b : mapping of layer name to representation Dataset
    measure : {"cka", "cka-debiased", "rsa", "decoding"}
    max_samples : int, optional
        Use at most this many evenly spaced samples (RSA's cost grows with the square of the samples).

    Returns
    -------
    xarray.Dataset
        Variable named after the measure (dims ``layer_a``, ``layer_b``) first, then the participation
        ratio of each layer of each run (``participation_ratio_a``/``_b``), and, when the probe stimuli
        carry labels, the held-out label decoding accuracy of each layer (``label_accuracy_a``/``_b``).
    """
    if measure not in MEASURES:
        raise unknown_choice("measure", measure, MEASURES)
    sample_dim = check_same_probes(reps_a, reps_b, name_a, name_b)
    n = next(iter(reps_a.values())).sizes[sample_dim]
    idx = _subsample(n, max_samples)
    xa = {k: ds["response"].values[idx].astype(np.float64) for k, ds in reps_a.items()}
    xb = {k: ds["response"].values[idx].astype(np.float64) for k, ds in reps_b.items()}
    mat = np.array([[pair_measure(measure, xa[i], xb[j], seed) for j in xb] for i in xa])  # (layer_a, layer_b)
    var = measure.replace("-", "_")
    out = xr.Dataset(coords={"layer_a": list(xa), "layer_b": list(xb)})
    out[var] = (("layer_a", "layer_b"), mat)
    out[var].attrs.update(long_name=f"{MEASURES[measure]}, {name_a} layer vs {name_b} layer", units="1",
                          label_a=f"{name_a} layer", label_b=f"{name_b} layer")
    out["participation_ratio_a"] = ("layer_a", [measures.participation_ratio(v) for v in xa.values()])
    out["participation_ratio_b"] = ("layer_b", [measures.participation_ratio(v) for v in xb.values()])
    for s in ("a", "b"):
        out[f"participation_ratio_{s}"].attrs.update(long_name=f"participation ratio of each layer of "
                                                     f"{name_a if s == 'a' else name_b}", units="1")
    first_a, first_b = next(iter(reps_a.values())), next(iter(reps_b.values()))
    for s, reps, first, x in (("a", reps_a, first_a, xa), ("b", reps_b, first_b, xb)):
        if "label" in first.coords and len(np.unique(first["label"].values)) > 1:
            labels = first["label"].values[idx]
            acc = [measures.linear_decoding(v, labels, kind="classification", contiguous=False, seed=seed)
                   for v in x.values()]
            out[f"label_accuracy_{s}"] = (f"layer_{s}", acc)
            out[f"label_accuracy_{s}"].attrs.update(
                long_name="held-out accuracy of a ridge readout of the stimulus label (80/20 split)", units="1")
    out.attrs.update(measure=measure, sample_dim=sample_dim, n_samples=int(len(idx)))
    return out


def compare_runs(path_a: str | os.PathLike, path_b: str | os.PathLike, measure: str = "cka", *,
                 layers_a: Sequence[str] | None = None, layers_b: Sequence[str] | None = None,
                 max_samples: int | None = None, seed: int = 0) -> xr.Dataset:
    """Compare the representations stored in two results files, layer by layer (see
    :func:`compare_representations`); the result carries provenance naming both files."""
    import json

    if measure not in MEASURES:
        raise unknown_choice("measure", measure, MEASURES)
    if max_samples is not None and max_samples < 4:
        raise ConfigError(f"--max-samples must be >= 4, got {max_samples}")
    name_a, name_b = Path(path_a).name, Path(path_b).name
    if name_a == name_b and str(path_a) != str(path_b):
        name_a, name_b = str(path_a), str(path_b)
    run_a, run_b = open_run(path_a), open_run(path_b)
    reps_a = select_layers(load_representations(path_a), layers_a, str(path_a))
    reps_b = select_layers(load_representations(path_b), layers_b, str(path_b))
    out = compare_representations(reps_a, reps_b, measure, name_a=name_a, name_b=name_b,
                                  max_samples=max_samples, seed=seed)
    cfg = {"__class__": "CompareConfig", "measure": measure, "file_a": str(path_a), "file_b": str(path_b),
           "layers_a": list(reps_a), "layers_b": list(reps_b), "max_samples": max_samples, "seed": seed}
    attrs = provenance(kind="compare", config_json=json.dumps(cfg), seed=seed,
                       extra={"file_a": str(path_a), "file_b": str(path_b),
                              "model_a": _model_name(run_a), "model_b": _model_name(run_b)})
    out.attrs = {**attrs, **out.attrs}
    return out


def _model_name(ds: xr.Dataset) -> str:
    """A short name of the model a results file came from (rule, experiment or kind)."""
    for key in ("rule", "experiment", "model"):
        if key in ds.attrs:
            return str(ds.attrs[key])
    return str(ds.attrs.get("ratespike_kind", "run"))


def format_table(ds: xr.Dataset, var: str | None = None) -> str:
    """The ``(layer_a, layer_b)`` matrix as a small text table (rows: layer_a)."""
    var = var or next(iter(ds.data_vars))
    da = ds[var]
    cols = [str(c) for c in da["layer_b"].values]
    rows = [str(r) for r in da["layer_a"].values]
    w0 = max([len(r) for r in rows] + [len(var)])
    wc = [max(len(c), 6) for c in cols]
    lines = [f"{var:<{w0}}  " + "  ".join(f"{c:>{w}}" for c, w in zip(cols, wc))]
    for r, vals in zip(rows, da.values):
        lines.append(f"{r:<{w0}}  " + "  ".join(f"{v:>{w}.3f}" for v, w in zip(vals, wc)))
    return "\n".join(lines)
