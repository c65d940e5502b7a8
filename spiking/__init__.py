"""Spiking networks in Brian2: neurons, plasticity rules, Poisson inputs, experiments.

Layout: :mod:`spiking.neurons` (conductance LIF of Auryn's ``IFGroup``), :mod:`spiking.inputs` (the five rate
populations of Halvagal & Zenke 2023, Fig. 5), :mod:`spiking.rules` (one synapse model per file: ``lpl``,
``istdp``, ``stdp``, ``bcm``), :mod:`spiking.devices` (runtime / cpp_standalone / cuda_standalone, one build
directory per run) and :mod:`spiking.experiments` (config -> Brian2 network -> :class:`xarray.Dataset`).
This package imports :mod:`bridge`, never :mod:`ratenets`.
"""
