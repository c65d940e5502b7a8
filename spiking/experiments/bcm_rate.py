"""BCM rate homeostasis: Poisson inputs onto conductance LIF cells through spike-based BCM synapses.

Bienenstock, Cooper & Munro (1982), J. Neurosci. 2:32-48: dw/dt ~ x y (y - theta) with a threshold theta that
slides with y^2 / y0 (:mod:`spiking.rules.bcm`, in the spike-based form of Izhikevich & Desai 2003). A cell
firing above the target y0 raises its threshold until potentiation turns into depression, one firing below
lowers it, so every cell's rate is drawn towards y0 whatever its initial weights. The experiment makes that
visible: ``n_post`` cells of the Auryn conductance LIF (:mod:`spiking.neurons`) receive the same
``n_inputs`` Poisson inputs (all to all), cell k starting with weights ``w0_min + k (w0_max - w0_min) /
(n_post - 1)``, so that initial rates spread below and above y0. Readout: every cell's rate per
``rate_bin_s``, its threshold and rate traces, and its mean weight at the start and the end.

The constants of the neuron are those of the Fig. 5 network; the BCM constants, the inputs and the protocol are
ours (no paper fixes them for this demonstration), chosen so that the rates settle within seconds.

Measured (load average 12 on 2 cores, so the wall time is provisional)::

    python -c "from spiking.experiments import bcm_rate as b; ds, _ = b.simulate(b.config(dt_ms=0.4), seed=0,
               device='runtime', codegen='numpy'); print(b.distance_to_target(ds, 2.0))"

four cells starting at 18, 44, 58 and 68 Hz (first 1 s bin) fire at 11-14 Hz from about 8 s on (target 10 Hz);
the mean |rate - y0| is 33.0 Hz over the first 2 s and 2.25 Hz over the last 2 s; the weights go from
0.08-0.20 to 0.07 for every cell; 24 s of wall time for the 20 s simulated.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from bridge.config import check_positive, replace_config
from bridge.errors import ConfigError
from spiking.inputs import PoissonInputConfig
from spiking.neurons import NeuronConfig
from spiking.rules.bcm import BCMConfig


@dataclass(frozen=True, kw_only=True)
class BCMProtocol:
    """Cells, initial weights, length and recording of the BCM run (ours)."""

    duration_s: float = 20.0       # the rates settle within about 10 s (module docstring)
    n_post: int = 4                # cells, each with its own initial weight
    w0_min: float = 0.08           # initial weight of the first cell (leak-conductance units): about 18 Hz
    w0_max: float = 0.2            # initial weight of the last cell: about 68 Hz
    rate_bin_s: float = 1.0        # rate and threshold sampling

    def __post_init__(self) -> None:
        if not self.duration_s > 0:
            raise ConfigError(f"duration_s must be > 0 seconds, got {self.duration_s!r}")
        check_positive(self, "n_post", "rate_bin_s")
        if not 0 <= self.w0_min <= self.w0_max:
            raise ConfigError(f"need 0 <= w0_min <= w0_max, got {self.w0_min!r}, {self.w0_max!r}")


@dataclass(frozen=True, kw_only=True)
class BCMRateConfig:
    """BCM homeostasis run, composed: neuron, input, rule (BCM), protocol."""

    neuron: NeuronConfig = field(default_factory=NeuronConfig)
    input: PoissonInputConfig = field(default_factory=lambda: PoissonInputConfig(n_inputs=100,
                                                                                input_rate_hz=10.0))
    # eta small next to the threshold's speed: with eta = 3e-5 the threshold overshoots (y^2 / y0 of 45 Hz is
    # 200 Hz) and the cells fall silent within a second, and a silent cell never fires to potentiate again
    rule: BCMConfig = field(default_factory=lambda: BCMConfig(eta=3e-6, tau_theta_s=0.5, y0_hz=10.0))
    protocol: BCMProtocol = field(default_factory=BCMProtocol)

    def __post_init__(self) -> None:
        if self.protocol.w0_max > self.rule.w_max:
            raise ConfigError(f"w0_max ({self.protocol.w0_max!r}) must be <= rule.w_max ({self.rule.w_max!r})")


#: the experiment's config class
CONFIG = BCMRateConfig


def config(**changes) -> BCMRateConfig:
    """The default config with ``changes`` (bare unique names or dotted paths), validated."""
    return replace_config(BCMRateConfig(), changes)


def initial_weights(cfg: BCMRateConfig) -> np.ndarray:
    """The initial weight of each cell's synapses, shape (n_post,)."""
    p = cfg.protocol
    return np.linspace(p.w0_min, p.w0_max, p.n_post)


def simulate(cfg: BCMRateConfig, *, seed: int = 0, device: str = "cpp_standalone", build_root=None,
             threads: int = 1, progress: bool = False, codegen: str = "cython"
             ) -> tuple[xr.Dataset, dict[str, xr.Dataset]]:
    """Run the cells; the Dataset holds rates and thresholds per bin and the mean weights per cell."""
    from brian2 import Hz, Network, PoissonGroup, SpikeMonitor, StateMonitor, second

    from spiking.devices import use_device
    from spiking.experiments.common import run_attrs
    from spiking.neurons import lif_group
    from spiking.rules import bcm

    prot, n_in = cfg.protocol, cfg.input.n_inputs
    with use_device(device, seed=seed, dt_ms=cfg.neuron.dt_ms, build_root=build_root, threads=threads,
                    codegen=codegen) as dev:
        inputs = PoissonGroup(n_in, rates=cfg.input.input_rate_hz * Hz, name="inputs")
        post = lif_group(prot.n_post, cfg.neuron, name="post", extra_eqs=bcm.POST_EQS, extra_reset=bcm.POST_RESET)
        pre_i = np.tile(np.arange(n_in), prot.n_post)
        post_j = np.repeat(np.arange(prot.n_post), n_in)
        w0 = initial_weights(cfg)
        (syn,) = bcm.synapses(inputs, post, cfg.rule, connect=(pre_i, post_j), w0=w0[post_j],
                              delay_ms=cfg.neuron.delay_ms, dt_ms=cfg.neuron.dt_ms, name="bcm")
        spikes = SpikeMonitor(post, name="post_spikes")
        traces = StateMonitor(post, ["theta_bcm", "y_bcm"], record=True, dt=prot.rate_bin_s * second,
                              name="post_traces")
        dev.run(Network(inputs, post, syn, spikes, traces), prot.duration_s,
                report="stderr" if progress else None)
        dev.finish()
        t = np.asarray(spikes.t[:] / second)
        i = np.asarray(spikes.i[:])
        w = np.asarray(syn.w[:], dtype=np.float64)
        wj = np.asarray(syn.j[:])
        theta = np.asarray(traces.theta_bcm[:], dtype=np.float64).T  # (time, neuron)
        y = np.asarray(traces.y_bcm[:], dtype=np.float64).T
        tt = np.asarray(traces.t[:] / second)
        n_bins = int(np.floor(prot.duration_s / prot.rate_bin_s + 1e-9))
        counts = np.zeros((n_bins, prot.n_post))
        b = np.floor(t / prot.rate_bin_s + 1e-9).astype(np.int64)
        ok = b < n_bins
        np.add.at(counts, (b[ok], i[ok]), 1.0)
        w_final = np.bincount(wj, weights=w, minlength=prot.n_post) / np.bincount(wj, minlength=prot.n_post)
        ds = xr.Dataset(
            {"rate": (("rate_time", "neuron"), counts / prot.rate_bin_s,
                      {"units": "Hz", "long_name": "firing rate of each cell per bin"}),
             "theta": (("trace_time", "neuron"), theta, {"units": "Hz", "long_name": "sliding BCM threshold"}),
             "rate_trace": (("trace_time", "neuron"), y, {"units": "Hz", "long_name": "postsynaptic rate trace y"}),
             "w_initial": ("neuron", w0, {"units": "1", "long_name": "initial weight of the cell's synapses"}),
             "w_final": ("neuron", w_final, {"units": "1", "long_name": "mean final weight of the cell's synapses"}),
             "target_rate": ((), float(cfg.rule.y0_hz), {"units": "Hz", "long_name": "BCM target rate y0"})},
            coords={"rate_time": ("rate_time", np.arange(n_bins) * prot.rate_bin_s,
                                  {"units": "s", "long_name": "start of the bin"}),
                    "trace_time": ("trace_time", tt, {"units": "s"}),
                    "neuron": np.arange(prot.n_post)})
        ds.attrs.update(run_attrs(cfg, experiment="bcm-rate", seed=seed, dev=dev))
    return ds, {}


def distance_to_target(ds: xr.Dataset, last_s: float) -> tuple[float, float]:
    """Mean |rate - y0| over the cells in the first and in the last ``last_s`` seconds (Hz)."""
    r = ds["rate"]
    t = r["rate_time"].values
    y0 = float(ds["target_rate"])
    first = float(np.abs(r.sel(rate_time=t[t < last_s]).mean("rate_time") - y0).mean())
    last = float(np.abs(r.sel(rate_time=t[t >= t[-1] + (t[1] - t[0] if len(t) > 1 else 0) - last_s])
                        .mean("rate_time") - y0).mean())
    return first, last


def summary(ds: xr.Dataset) -> list[str]:
    """Lines for the CLI: the rates at the start and the end against the target."""
    r = ds["rate"].values
    k = max(1, len(r) // 10)
    return [f"target {float(ds['target_rate']):g} Hz; cell rates in the first tenth "
            + ", ".join(f"{v:.1f}" for v in r[:k].mean(0)) + " Hz; in the last tenth "
            + ", ".join(f"{v:.1f}" for v in r[-k:].mean(0)) + " Hz"]
