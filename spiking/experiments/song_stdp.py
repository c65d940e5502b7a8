"""The Song, Miller & Abbott (2000) STDP benchmark: 1000 Poisson inputs onto one LIF neuron.

Song, Miller & Abbott (2000), Nat. Neurosci. 3:919-926, Fig. 2: with additive, bounded STDP whose
depression slightly dominates (A_- tau_- = 1.05 A_+ tau_+), the input weights, initially uniform, split into
a bimodal distribution at 0 and g_max, and the post rate is regulated. The neuron is the conductance LIF of
the Brian2 example ``synapses.STDP`` (the standard benchmark of this model; tau_m = 10 ms, E_L = -74 mV,
threshold -54 mV, reset -60 mV, excitatory reversal 0 mV, tau_e = 5 ms), inputs at 15 Hz, 100 s.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from bridge.config import check_positive, replace_config
from bridge.errors import ConfigError
from spiking.inputs import PoissonInputConfig
from spiking.rules.stdp import STDPConfig

SONG_EQS = """
dv/dt = (e_l - v) / tau_m + g_stdp * (e_e - v) / tau_m : volt
dg_stdp/dt = -g_stdp / tau_e : 1
"""


@dataclass(frozen=True, kw_only=True)
class SongNeuronConfig:
    """The conductance LIF of the Brian2 example ``synapses.STDP`` (the benchmark's neuron)."""

    dt_ms: float = 0.1
    tau_m_ms: float = 10.0         # Brian2 example
    e_l_mv: float = -74.0
    v_thr_mv: float = -54.0
    v_reset_mv: float = -60.0
    e_e_mv: float = 0.0
    tau_e_ms: float = 5.0

    def __post_init__(self) -> None:
        check_positive(self, "dt_ms", "tau_m_ms", "tau_e_ms")
        if self.v_reset_mv >= self.v_thr_mv:
            raise ConfigError(f"v_reset_mv must be < v_thr_mv, got {self.v_reset_mv!r} >= {self.v_thr_mv!r}")


@dataclass(frozen=True, kw_only=True)
class SongProtocol:
    """Length and recording of the benchmark."""

    duration_s: float = 100.0      # Brian2 example; Song et al. show 100 s-scale convergence at these rates
    hist_bins: int = 20            # weight histogram bins over [0, g_max]
    snapshot_s: float = 10.0       # weight histogram sampling

    def __post_init__(self) -> None:
        if not self.duration_s > 0:
            raise ConfigError(f"duration_s must be > 0 seconds, got {self.duration_s!r}")
        check_positive(self, "hist_bins", "snapshot_s")


@dataclass(frozen=True, kw_only=True)
class SongSTDPConfig:
    """Song-Miller-Abbott benchmark (Song et al. 2000, Methods; Brian2 example synapses.STDP), composed."""

    neuron: SongNeuronConfig = field(default_factory=SongNeuronConfig)
    input: PoissonInputConfig = field(default_factory=PoissonInputConfig)
    rule: STDPConfig = field(default_factory=STDPConfig)
    protocol: SongProtocol = field(default_factory=SongProtocol)


#: the experiment's config class
CONFIG = SongSTDPConfig


def config(**changes) -> SongSTDPConfig:
    """The benchmark's config with ``changes`` (bare unique names or dotted paths), validated."""
    return replace_config(SongSTDPConfig(), changes)


def simulate(cfg: SongSTDPConfig, *, seed: int = 0, device: str = "cpp_standalone", build_root=None,
             threads: int = 1, progress: bool = False, codegen: str = "cython"
             ) -> tuple[xr.Dataset, dict[str, xr.Dataset]]:
    """Run the benchmark; the Dataset holds the weight histogram over time, final weights and post rate."""
    from brian2 import Hz, Network, NeuronGroup, PoissonGroup, SpikeMonitor, StateMonitor, mV, ms, second

    from spiking.devices import use_device
    from spiking.experiments.common import run_attrs, spike_variables
    from spiking.rules import stdp

    with use_device(device, seed=seed, dt_ms=cfg.neuron.dt_ms, build_root=build_root, threads=threads,
                    codegen=codegen) as dev:
        nc = cfg.neuron
        ns = {"e_l": nc.e_l_mv * mV, "tau_m": nc.tau_m_ms * ms, "e_e": nc.e_e_mv * mV, "tau_e": nc.tau_e_ms * ms,
              "v_thr": nc.v_thr_mv * mV, "v_reset": nc.v_reset_mv * mV}
        inputs = PoissonGroup(cfg.input.n_inputs, rates=cfg.input.input_rate_hz * Hz, name="inputs")
        post = NeuronGroup(1, SONG_EQS, threshold="v > v_thr", reset="v = v_reset", method="euler", namespace=ns,
                           name="post")
        post.v = cfg.neuron.e_l_mv * mV
        # explicit indices: standalone mode can then record every synapse (record=True needs the count)
        n_in = cfg.input.n_inputs
        (syn,) = stdp.synapses(inputs, post, cfg.rule, connect=(np.arange(n_in), np.zeros(n_in, dtype=int)),
                               name="stdp")
        w0 = np.random.default_rng([seed, 3]).uniform(0, cfg.rule.g_max, cfg.input.n_inputs)
        syn.w = w0
        sp = SpikeMonitor(post, name="post_spikes")
        wm = StateMonitor(syn, "w", record=True, dt=cfg.protocol.snapshot_s * second, name="w_mon")
        net = Network(inputs, post, syn, sp, wm)
        dev.run(net, cfg.protocol.duration_s, report="stderr" if progress else None)
        dev.finish()
        w = np.asarray(syn.w[:], dtype=np.float64)
        snaps = np.asarray(wm.w[:], dtype=np.float64).T  # (snapshot, synapse)
        snap_t = np.asarray(wm.t[:] / second)
        post_t = np.asarray(sp.t[:] / second)
        edges = np.linspace(0, cfg.rule.g_max, cfg.protocol.hist_bins + 1)
        hist = np.stack([np.histogram(s / 1.0, bins=edges)[0] for s in np.vstack([snaps, w[None, :]])])
        times = np.append(snap_t, cfg.protocol.duration_s)
        ds = xr.Dataset(
            {"w_final": ("synapse", w, {"units": "1", "long_name": "final weight of synapse k (input k onto the "
                                                            "post neuron; leak-conductance units)"}),
             "w_initial": ("synapse", w0, {"units": "1", "long_name": "initial weight"}),
             "w_hist": (("snapshot_time", "w_bin"), hist, {"units": "1", "long_name": "synapses per weight bin"}),
             "post_rate": ((), len(post_t) / cfg.protocol.duration_s,
                           {"units": "Hz", "long_name": "mean post rate"}),
             **spike_variables("post", post_t, np.zeros(len(post_t), dtype=np.int32), 1, "the post neuron"),
             "frac_near_bounds": ((), float(np.mean((w < 0.1 * cfg.rule.g_max) | (w > 0.9 * cfg.rule.g_max))),
                                  {"units": "1", "long_name": "fraction of weights within 10 % of 0 or g_max"})},
            coords={"snapshot_time": ("snapshot_time", times, {"units": "s"}),
                    "w_bin": ("w_bin", 0.5 * (edges[1:] + edges[:-1]), {"units": "1",
                                                                         "long_name": "bin centre"})})
        ds.attrs.update(run_attrs(cfg, experiment="song-stdp", seed=seed, dev=dev))
    return ds, {}


def bimodality(w: np.ndarray, g_max: float) -> dict[str, float]:
    """Fractions of weights in the lower and upper fifth of [0, g_max] and in the middle three fifths."""
    x = np.asarray(w) / g_max
    return {"low": float(np.mean(x < 0.2)), "high": float(np.mean(x > 0.8)),
            "middle": float(np.mean((x >= 0.2) & (x <= 0.8)))}


def summary(ds: xr.Dataset) -> list[str]:
    import json

    g_max = json.loads(ds.attrs["config"])["rule"]["g_max"]
    b = bimodality(ds["w_final"].values, g_max)
    return [f"post rate {float(ds['post_rate']):.1f} Hz; weights: {b['low']:.0%} near 0, {b['high']:.0%} near "
            f"g_max, {b['middle']:.0%} between"]
