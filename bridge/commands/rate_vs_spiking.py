"""Run the spiking Fig. 5 network and its rate twin on the same inputs and seed (not a subcommand).

Shared by ``ratespike demo`` and ``analyses/rate_vs_spiking.py``. It lives beside the commands because it
is one of the few places allowed to import both :mod:`spiking` (Brian2) and :mod:`ratenets` (torch); it only
builds configs, calls the two simulators and writes their files. The comparison itself is
:func:`bridge.rate_vs_spiking.side_by_side`, the shared definitions
:mod:`bridge.fig5`.

Pipeline
--------
1. :func:`run_spiking`: the Fig. 5 network (``spiking.experiments.lpl_network``) for ``duration_s``; its
   file holds the E cells' 25 ms binned spike counts over the last ``record_last_s`` as the
   representation ``E`` (dims ``time``, ``unit``) and the input spikes of that window.
2. :func:`run_twin`: the rate twin (:mod:`ratenets.twin`) trained on the same five population rate time
   courses (``spiking.inputs.population_rates``, same input seed), then driven by the time course of the
   spiking network's recorded window; its representation ``E`` has the same time bins.
3. :func:`bridge.rate_vs_spiking.side_by_side`: decoding, selectivity, dimensionality and similarity.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from bridge import fig5
from bridge.io import open_group, open_run, write_run


def spiking_config(duration_s: float, record_last_s: float, overrides: dict[str, Any] | None = None,
                   set_items: list[str] | None = None):
    """The Fig. 5 network's config for a run of ``duration_s`` recording the last ``record_last_s``."""
    from bridge.config import apply_overrides
    from spiking.experiments.lpl_network import config

    cfg = config(duration_s=float(duration_s), record_last_s=float(record_last_s), **(overrides or {}))
    return apply_overrides(cfg, set_items or [])


def run_spiking(cfg, out: str | os.PathLike, *, seed: int, device: str = "cpp_standalone",
                build_root: str | None = None, progress: bool = False) -> Path:
    """Simulate the Fig. 5 network and write its results file; returns the path."""
    from spiking.experiments.lpl_network import simulate

    ds, groups = simulate(cfg, seed=seed, device=device, build_root=build_root, progress=progress)
    return write_run(ds, out, groups=groups)


def window_rates(spike_cfg, t_start_s: float, n_bins: int, bin_s: float = fig5.BIN_S) -> np.ndarray:
    """Mean rate of each input population in each bin of a window, ``(time, population)`` in Hz.

    The rate traces are sampled at a fifth of the bin and averaged (:func:`bridge.fig5.bin_mean_rates`).
    """
    from spiking.inputs import population_rates

    return fig5.bin_mean_rates(lambda duration_s, dt_s: population_rates(spike_cfg.input, duration_s, dt_s),
                               t_start_s, n_bins, bin_s)


def run_twin(spike_path: str | os.PathLike, out: str | os.PathLike, *, seed: int, train_s: float,
             twin_overrides: list[str] | None = None, device: str = "cpu", progress: bool = False) -> Path:
    """Train the rate twin on the spiking run's input signals and probe it with the recorded window."""
    from bridge.config import apply_overrides, replace_config
    from ratenets.twin import RateTwinConfig, train_twin
    from spiking.experiments.lpl_network import config_from_json

    sp = open_run(spike_path)
    spike_cfg = config_from_json(sp.attrs["config"])
    rep = open_group(spike_path, "representations/E")
    t0, n = float(rep["time"].values[0]), rep.sizes["time"]
    cfg = apply_overrides(replace_config(RateTwinConfig(), {"bin_s": fig5.BIN_S}), twin_overrides or [])
    train = window_rates(spike_cfg, 0.0, int(round(train_s / fig5.BIN_S)))
    probe = window_rates(spike_cfg, t0, n)
    ds, reps = train_twin(cfg, train, probe, seed=seed, device=device, progress=progress, probe_start_s=t0,
                          extra_attrs={"spiking_file": str(spike_path), "train_s": float(train_s)})
    from bridge.reps import groups_of

    return write_run(ds, out, groups=groups_of(reps))

