"""Plasticity rules as Brian2 synapse models, one file each: ``lpl``, ``istdp``, ``stdp``, ``bcm``."""
