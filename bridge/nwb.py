"""Export a spiking run to NWB (Neurodata Without Borders, through pynwb), the field's exchange format.

A ratespike spiking file (``ratespike spike ...``) maps onto NWB as follows:

- **units table** (``nwbfile.units``): one row per neuron of every population that has spikes recorded
  (``spike_time_<pop>`` / ``spike_neuron_<pop>``, :func:`spiking.experiments.common.spike_variables`), with
  the columns ``population`` (``E``, ``I``, ``input``, ...) and ``neuron_index`` (the neuron's index in its
  population). Spike times are the file's float64 seconds, unchanged. When the run recorded spikes only in a
  window (``record_last_s`` in its config), each unit's ``obs_intervals`` is that window.
- **stimulus**: the input population rates ``input_rate`` (time, population) as a :class:`~pynwb.TimeSeries`.
- **processing module "weights"**: every weight pathway ``w_<key>_final`` with its ``w_<key>_pre`` and
  ``w_<key>_post`` indices as a table (one row per synapse), and the weight snapshots ``w_<key>`` over time
  as a TimeSeries.
- **processing module "recorded"**: every other variable on a time axis (population rates, per-cell rates,
  rate and variance traces), and **"representations"**: the ``representations/<name>`` groups (binned counts).
  A variable with fewer samples in time than elements (e.g. 5000 synapses at two snapshot times) is a table
  instead, one row per element with a ``values`` column (element, time) and its sample times in
  ``<name>_time``: NWB expects time on the first, longest axis of a TimeSeries.
- **one value per element, no time axis** (song-stdp's initial and final weight of every synapse, the window
  rate of every neuron): one table ``per_<dimension>`` per dimension (in "weights" when every variable is a
  weight ``w_*``, else in "recorded"), and the run's single-valued results (song-stdp's post rate) in the
  table ``scalars`` of "recorded".
- **subject**: the simulated network (``subject_id`` names experiment and seed; no species; ``sex`` "O",
  other; ``date_of_birth`` the start of the simulation, which is the session start).
- **processing module "ratespike"**: the full run config, one row per field (value as JSON), and the file's
  provenance attributes (versions, seed, timing); the config JSON is also the NWB file's ``notes``.

Rate-network results (``ratespike train``) stay NetCDF: NWB has no place for per-epoch learning curves.
So do stdp-protocol runs (:data:`NO_SPIKE_TRAINS`): they hold a weight-change curve over the spike timing of
an imposed pairing schedule, no recorded spike trains; export refuses them in one line saying so.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import uuid
from pathlib import Path

import numpy as np
import xarray as xr

from bridge.config import flat_fields, recorded_field
from bridge.errors import ConfigError, ResultsFileError

#: global attributes of a spiking file copied to the provenance table
_PROVENANCE_SKIP = ("config",)
#: spiking experiments whose files hold no recorded spike trains, and why (NWB export refuses them)
NO_SPIKE_TRAINS = {
    "stdp-protocol": "it holds the weight change dw against the pre/post spike timing delta_t of an imposed "
                     "pairing schedule, not recorded spike trains, so an NWB units table would be empty "
                     "(NWB export takes runs with spike trains: lpl-network, song-stdp)",
}


def spike_populations(ds: xr.Dataset) -> list[str]:
    """Populations with a spike ragged array (``spike_time_<pop>`` and ``spike_neuron_<pop>``)."""
    return [k[len("spike_time_"):] for k in ds.data_vars
            if k.startswith("spike_time_") and f"spike_neuron_{k[len('spike_time_'):]}" in ds]


def check_exportable(ds: xr.Dataset, name: str) -> None:
    """Raise a one-line ResultsFileError unless ``ds`` is a spiking run with spike arrays."""
    kind = ds.attrs.get("ratespike_kind")
    if kind != "spike":
        raise ResultsFileError(
            f"{name!r} is a {kind or 'non-spiking'} results file, not a spiking run; NWB export is for "
            "'ratespike spike' files (rate-network results stay NetCDF)")
    if ds.attrs.get("experiment") in NO_SPIKE_TRAINS:
        raise ResultsFileError(f"{name!r} is a {ds.attrs['experiment']} run: "
                               f"{NO_SPIKE_TRAINS[ds.attrs['experiment']]}; it stays NetCDF")
    if not spike_populations(ds):
        raise ResultsFileError(f"{name!r} holds no spike_time_<population> / spike_neuron_<population> variables "
                               "(recorded spike trains) to export")


def _start_time(ds: xr.Dataset) -> _dt.datetime:
    text = str(ds.attrs.get("date_created", ""))
    try:
        t = _dt.datetime.fromisoformat(text)
    except ValueError:
        t = _dt.datetime(1970, 1, 1)
    return t if t.tzinfo is not None else t.replace(tzinfo=_dt.timezone.utc)


def _time_axis(ds: xr.Dataset, dim: str) -> np.ndarray | None:
    """The values of a time coordinate in seconds, or None when ``dim`` is no time axis."""
    if dim not in ds.coords or ds[dim].attrs.get("units") != "s" or ds[dim].ndim != 1:
        return None
    return np.asarray(ds[dim].values, dtype=np.float64)


def _timeseries(name: str, da: xr.DataArray, t: np.ndarray, description: str):
    """A TimeSeries with ``rate`` when the samples are regular (NWB best practice), else timestamps."""
    from pynwb import TimeSeries

    data = np.asarray(da.values)
    unit = str(da.attrs.get("units", "")) or "n.a."
    kw: dict = {}
    d = np.diff(t)
    if t.size >= 2 and d[0] > 0 and np.allclose(d, d[0], rtol=1e-9, atol=0):
        kw.update(starting_time=float(t[0]), rate=float(1.0 / d[0]))
    elif t.size == 1:
        kw.update(starting_time=float(t[0]), rate=1.0)
    else:
        kw.update(timestamps=t)
    return TimeSeries(name=name, data=data, unit=unit, description=description, **kw)


def _time_resolved(name: str, da: xr.DataArray, t: np.ndarray, description: str) -> list:
    """NWB objects for a variable whose first axis is time: a TimeSeries, or (when time is the shorter axis
    of a 2-D variable) a table with one row per element and a table of the sample times."""
    from hdmf.common import DynamicTable, VectorData

    if da.ndim == 1 or da.shape[0] >= da.shape[1]:
        return [_timeseries(name, da, t, description)]
    unit = str(da.attrs.get("units", "")) or "n.a."
    values = np.ascontiguousarray(np.asarray(da.values).T)  # (element, time)
    return [DynamicTable(name=name, description=f"{description}; one row per {da.dims[1]}, values [{unit}] "
                         f"at the times in {name}_time", columns=[
                VectorData(name=da.dims[1], description=f"index along {da.dims[1]}",
                           data=np.arange(values.shape[0], dtype=np.int64)),
                VectorData(name="values", description=f"{da.attrs.get('long_name', name)} [{unit}], "
                           f"shape ({da.dims[1]}, {da.dims[0]})", data=values)]),
            DynamicTable(name=f"{name}_time", description=f"sample times of {name}", columns=[
                VectorData(name="time", description=f"{da.dims[0]} [s]", data=t)])]


def _describe(da: xr.DataArray, name: str) -> str:
    text = str(da.attrs.get("long_name", name))
    extra = [f"dims {', '.join(da.dims)}"]
    return f"{text} ({'; '.join(extra)})"


def build_nwbfile(ds: xr.Dataset, groups: dict[str, xr.Dataset] | None = None, source: str = ""):
    """The :class:`pynwb.NWBFile` of a spiking run (see the module docstring for the mapping)."""
    from hdmf.common import DynamicTable, VectorData
    from pynwb import NWBFile, ProcessingModule
    from pynwb.file import Subject
    from pynwb.misc import Units

    a = ds.attrs
    config = str(a.get("config", "{}"))
    try:
        cfg = json.loads(config)
    except json.JSONDecodeError:
        cfg = {}
    experiment = str(a.get("experiment", "spiking run"))
    condition = a.get("condition")
    sim_s = a.get("simulated_time_s")
    desc = (f"ratespike spiking simulation '{experiment}'" + (f", condition {condition}" if condition else "")
            + (f", {float(sim_s):g} s simulated" if sim_s is not None else "")
            + f" on the Brian2 device {a.get('device', 'unknown')}, seed {a.get('seed', '?')}")
    start = _start_time(ds)
    nwb = NWBFile(
        session_description=desc,
        identifier=str(uuid.uuid4()),
        session_start_time=start,
        experiment_description=desc + ". Simulated data, no animal: time 0 is the start of the simulation.",
        notes=config,
        source_script=f"ratespike {a.get('ratespike_version', '')}".strip(),
        source_script_file_name=Path(source).name if source else None,
        keywords=["simulation", "spiking network", "Brian2", experiment],
        subject=Subject(subject_id=f"{experiment}-seed{a.get('seed', 0)}".replace("/", "-"), sex="O",
                        date_of_birth=start, description="a simulated spiking network, not an animal: sex "
                        "'O' (other), born at the start of the simulation"),
    )

    # --- units: every neuron of every recorded population ---------------------------------------------------
    window = None
    duration, last = recorded_field(cfg, "duration_s"), recorded_field(cfg, "record_last_s")
    if duration is not None and last is not None:
        end = float(duration)
        window = [max(0.0, end - float(last)), end]
    dt_s = float(recorded_field(cfg, "dt_ms", 0.0)) * 1e-3
    rec = (f"; spikes recorded from {window[0]:g} s to {window[1]:g} s (obs_intervals)" if window else "")
    nwb.units = Units(name="units", description=f"simulated neurons, one row per neuron of each population{rec}",
                      resolution=dt_s if dt_s > 0 else None)  # spike times are multiples of the time step
    nwb.add_unit_column(name="population", description="population the neuron belongs to (E, I, input, ...)")
    nwb.add_unit_column(name="neuron_index", description="index of the neuron within its population")
    for pop in spike_populations(ds):
        t = np.asarray(ds[f"spike_time_{pop}"].values, dtype=np.float64)
        i = np.asarray(ds[f"spike_neuron_{pop}"].values, dtype=np.int64)
        n = int(ds[f"spike_neuron_{pop}"].attrs.get("n_neurons", ds.sizes.get(f"neuron_{pop}", 0)))
        n = max(n, int(i.max()) + 1 if i.size else 0)
        order = np.argsort(i, kind="stable")  # spikes grouped by neuron, time order kept within each
        bounds = np.searchsorted(i[order], np.arange(n + 1))
        for k in range(n):
            kw = {"obs_intervals": [window]} if window is not None else {}
            nwb.add_unit(spike_times=np.sort(t[order[bounds[k]:bounds[k + 1]]]), population=pop,
                         neuron_index=k, **kw)

    # --- stimulus, weights and other time-resolved variables --------------------------------------------------
    weights = ProcessingModule(name="weights", description="synaptic weights: final values per synapse "
                               "(with pre/post indices) and snapshots over time")
    recorded = ProcessingModule(name="recorded", description="time-resolved variables of the simulation "
                                "(population and per-cell rates, traces)")
    used: set[str] = set()
    pathways = [k[2:-len("_final")] for k in ds.data_vars if k.startswith("w_") and k.endswith("_final")]
    for key in pathways:
        pre, post = f"w_{key}_pre", f"w_{key}_post"
        if pre not in ds or post not in ds:
            continue
        fin = ds[f"w_{key}_final"]
        cols = [VectorData(name="pre", description=str(ds[pre].attrs.get("long_name", "presynaptic index")),
                           data=np.asarray(ds[pre].values, dtype=np.int64)),
                VectorData(name="post", description=str(ds[post].attrs.get("long_name", "postsynaptic index")),
                           data=np.asarray(ds[post].values, dtype=np.int64)),
                VectorData(name="weight", description=f"{fin.attrs.get('long_name', 'final weight')} "
                           f"[{fin.attrs.get('units', 'n.a.')}]", data=np.asarray(fin.values))]
        weights.add(DynamicTable(name=f"synapses_{key}", description=f"{key} pathway, one row per synapse",
                                 columns=cols))
        used |= {pre, post, f"w_{key}_final"}
    for name, da in ds.data_vars.items():
        if name in used or name.startswith("spike_") or da.ndim == 0 or da.ndim > 2 or da.dtype.kind not in "fiu":
            continue
        t = _time_axis(ds, da.dims[0])
        if t is None:
            continue
        if name == "input_rate":
            pops = [str(p) for p in ds[da.dims[1]].values] if da.ndim == 2 and da.dims[1] in ds.coords else []
            ts = _timeseries(name, da, t, _describe(da, name) + (f"; columns: {', '.join(pops)}" if pops else ""))
            nwb.add_stimulus(ts)
        else:
            for obj in _time_resolved(name, da, t, _describe(da, name)):
                (weights if name.startswith("w_") else recorded).add(obj)
    # per-element variables without a time axis (song-stdp's initial and final weight of every synapse, the
    # window rate of every neuron, ...): one table per dimension; scalars: one table of name, value, unit
    per_dim: dict[str, list[str]] = {}
    scalars: list[str] = []
    for name, da in ds.data_vars.items():
        if name in used or name.startswith("spike_") or da.dtype.kind not in "fiu":
            continue
        if da.ndim == 0:
            scalars.append(name)
        elif da.ndim == 1 and _time_axis(ds, da.dims[0]) is None:
            per_dim.setdefault(da.dims[0], []).append(name)
    for dim, names in per_dim.items():
        cols = [VectorData(name=dim, description=f"index along {dim}",
                           data=np.arange(ds.sizes[dim], dtype=np.int64))]
        cols += [VectorData(name=n, description=f"{ds[n].attrs.get('long_name', n)} "
                            f"[{ds[n].attrs.get('units', 'n.a.')}]", data=np.asarray(ds[n].values)) for n in names]
        mod = weights if all(n.startswith("w_") for n in names) else recorded
        mod.add(DynamicTable(name=f"per_{dim}", description=f"variables with one value per {dim}: "
                             + ", ".join(names), columns=cols))
    if scalars:
        recorded.add(DynamicTable(name="scalars", description="single-valued results of the run", columns=[
            VectorData(name="variable", description="variable name", data=scalars),
            VectorData(name="value", description="value", data=[float(ds[n].values) for n in scalars]),
            VectorData(name="unit", description="unit of the value",
                       data=[str(ds[n].attrs.get("units", "n.a.")) for n in scalars]),
            VectorData(name="long_name", description="what the value is",
                       data=[str(ds[n].attrs.get("long_name", n)) for n in scalars])]))
    for mod in (weights, recorded):
        if len(mod.data_interfaces):
            nwb.add_processing_module(mod)
    if groups:
        reps = ProcessingModule(name="representations", description="ratespike representation groups "
                                "(binned responses used to compare networks)")
        for gname, g in groups.items():
            for name, da in g.data_vars.items():
                t = _time_axis(g, da.dims[0]) if da.ndim in (1, 2) and da.dtype.kind in "fiu" else None
                if t is not None:
                    label = gname.replace("/", "_") + ("" if name == "response" else f"_{name}")
                    for obj in _time_resolved(label, da, t, f"group {gname}: " + _describe(da, name)):
                        reps.add(obj)
        if len(reps.data_interfaces):
            nwb.add_processing_module(reps)

    # --- the full config and the provenance ----------------------------------------------------------------
    meta = ProcessingModule(name="ratespike", description="how this run was made: the full typed config and "
                            "the provenance attributes of the ratespike results file")
    flat = flat_fields(cfg)
    fields = list(flat) or ["(none)"]
    meta.add(DynamicTable(name="config", description=f"run config {cfg.get('__class__', '')}, one row per "
                          "field (dotted paths into sub-configs), values as JSON".replace("  ", " "), columns=[
        VectorData(name="field", description="config field name", data=fields),
        VectorData(name="value", description="field value as JSON",
                   data=[json.dumps(flat.get(k)) for k in fields])]))
    prov = [k for k in a if k not in _PROVENANCE_SKIP]
    meta.add(DynamicTable(name="provenance", description="global attributes of the source results file",
                          columns=[
        VectorData(name="attribute", description="attribute name", data=prov),
        VectorData(name="value", description="attribute value as text",
                   data=[json.dumps(a[k].tolist()) if isinstance(a[k], np.ndarray) else str(a[k]) for k in prov])]))
    nwb.add_processing_module(meta)
    return nwb


def export_nwb(src: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Write the spiking run ``src`` (NetCDF) as the NWB file ``out``, atomically; returns ``out``.

    Raises
    ------
    ResultsFileError
        ``src`` is missing, unreadable, or not a spiking run.
    ConfigError
        ``out`` is ``src`` itself.
    """

    from bridge.io import atomic_write, check_writable, list_groups, open_group, open_run

    s, o = Path(src), Path(out)
    if o.resolve() == s.resolve() or (o.exists() and s.exists() and os.path.samefile(o, s)):
        raise ConfigError(f"--out {str(o)!r} is the input file; give another name, e.g. {s.with_suffix('.nwb').name}")
    ds = open_run(s)
    check_exportable(ds, str(s))
    check_writable(o)
    groups = {g: open_group(s, g) for g in list_groups(s) if g.startswith("representations/")}
    nwb = build_nwbfile(ds, groups, source=str(s))

    from pynwb import NWBHDF5IO

    def write(tmp: str) -> None:
        with NWBHDF5IO(tmp, "w") as io:
            io.write(nwb)

    # atomic, under a temporary name ending in .nwb (pynwb warns otherwise)
    atomic_write(o, write, what="NWB file", suffix=".nwb")
    return o
