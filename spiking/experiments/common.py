"""Helpers shared by the spiking experiments: spike arrays, provenance and timing attributes.

Binning and the other Fig. 5 definitions live in :mod:`bridge.fig5`."""
from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from bridge.config import to_json
from bridge.io import provenance


def run_attrs(cfg: Any, *, experiment: str, seed: int, dev) -> dict[str, Any]:
    """Global attributes of a spiking run file: provenance, the config JSON and the timing contract.

    ``simulated_time_s`` and ``wall_time_s`` (the simulation itself) and ``build_time_s`` (code generation
    and compilation, 0 in runtime mode) are always present.
    """
    return provenance(kind="spike", config_json=to_json(cfg), seed=int(seed), extra={
        "experiment": experiment, "device": dev.name, "openmp_threads": int(dev.threads),
        "simulated_time_s": float(dev.simulated_time_s), "wall_time_s": float(dev.wall_time_s),
        "build_time_s": float(dev.build_time_s), "cpu_time_s": float(dev.cpu_time_s),
        "real_time_factor": float(dev.simulated_time_s / dev.wall_time_s) if dev.wall_time_s > 0 else 0.0,
    })


def spike_variables(name: str, times_s: np.ndarray, neurons: np.ndarray, n_neurons: int,
                    long_name: str) -> dict[str, xr.DataArray]:
    """Spikes of one population as a CF indexed ragged array.

    Two variables along the dimension ``spike_<name>``: ``spike_time_<name>`` (s) and
    ``spike_neuron_<name>`` (index of the emitting neuron; attribute ``instance_dimension`` names the
    dimension ``neuron_<name>`` of size ``n_neurons``), sorted by time then neuron.
    """
    t = np.asarray(times_s, dtype=np.float64)
    i = np.asarray(neurons, dtype=np.int32)
    order = np.lexsort((i, t))
    dim = f"spike_{name}"
    return {
        f"spike_time_{name}": xr.DataArray(t[order], dims=(dim,), attrs={
            "units": "s", "long_name": f"spike times of {long_name}"}),
        f"spike_neuron_{name}": xr.DataArray(i[order], dims=(dim,), attrs={
            "long_name": f"index of the neuron of {long_name} that emitted the spike",
            "instance_dimension": f"neuron_{name}", "n_neurons": int(n_neurons),
            "cf_role": "indexed ragged array (CF 9.3.4)"}),
    }

