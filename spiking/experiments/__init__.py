"""Spiking experiments, each one call from Python and one CLI command (``ratespike spike NAME``).

``EXPERIMENTS``, the one list of experiments (the ``spike`` command and sweeps read it), maps the CLI name to
the module; each module's ``simulate`` function has the signature
``simulate(cfg, *, seed, device="cpp_standalone", build_root=None, threads=1, progress=False)
-> (xarray.Dataset, dict of group Datasets)`` and each module a ``Config`` class (typed, frozen, paper
defaults) with a ``duration_s`` field.
"""
from __future__ import annotations

import importlib

EXPERIMENTS: dict[str, str] = {
    "lpl-network": "spiking.experiments.lpl_network",
    "stdp-protocol": "spiking.experiments.stdp_protocol",
    "song-stdp": "spiking.experiments.song_stdp",
}


def get_experiment(name: str):
    """The module of experiment ``name`` (with ``Config`` and ``simulate``); ConfigError if unknown."""
    from bridge.errors import unknown_choice

    if name not in EXPERIMENTS:
        raise unknown_choice("spiking experiment", name, EXPERIMENTS)
    return importlib.import_module(EXPERIMENTS[name])
