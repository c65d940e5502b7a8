"""Spiking experiments, each one call from Python and one CLI command (``ratespike spike NAME``).

``EXPERIMENTS`` maps the CLI name to its module; each module has ``CONFIG``, its config class (typed, frozen,
paper defaults, composed of sub-configs such as ``neuron``, ``rule``, ``protocol``; a unique class name per
experiment: ``LPLNetworkConfig``, ``STDPProtocolConfig``, ``SongSTDPConfig``, ``BCMRateConfig``), ``config(**changes)`` (the
defaults with bare unique field names or dotted paths changed, :func:`bridge.config.replace_config`), a
``protocol.duration_s`` field, and ``simulate(cfg, *, seed, device="cpp_standalone", build_root=None,
threads=1, progress=False) -> (xarray.Dataset, dict of group Datasets)``.
"""
from __future__ import annotations

import importlib

EXPERIMENTS: dict[str, str] = {
    "lpl-network": "spiking.experiments.lpl_network",
    "stdp-protocol": "spiking.experiments.stdp_protocol",
    "song-stdp": "spiking.experiments.song_stdp",
    "bcm-rate": "spiking.experiments.bcm_rate",
}


def get_experiment(name: str):
    """The module of experiment ``name`` (with ``Config`` and ``simulate``); ConfigError if unknown."""
    from bridge.errors import unknown_choice

    if name not in EXPERIMENTS:
        raise unknown_choice("spiking experiment", name, EXPERIMENTS)
    return importlib.import_module(EXPERIMENTS[name])
