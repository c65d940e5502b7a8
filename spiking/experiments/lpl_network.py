"""Fig. 5 of Halvagal & Zenke (2023): a recurrent E/I network learning slow input features with spiking LPL.

``sim_lpl_spiking.cpp`` with ``run_snn*.sh`` (lpl.md section 4): 500 Poisson inputs in five populations
(:mod:`spiking.inputs`) -> 100 E cells through plastic LPL synapses (Bernoulli p = 0.1, w0 = 0.15, w in [0, 1]);
E -> 25 I cells through a fixed local mask P(e -> k) = exp(-(e - c_k)^2 / 20^2), c_k = linspace(0, 100, 25),
weight 0.5 (the original mask script is unseeded; here it is drawn from the run seed); I -> E p = 0.5, w0 = 0.5,
plastic with iSTDP unless "inhib-fixed"; I -> I p = 0.1, w = 0.4; no E -> E. All delays 0.8 ms.
Protocol: weights frozen for ``plasticity_start_s`` (paper: 3 tau_mean = 1800 s), then plasticity (paper:
100 000 s more); ``duration_s`` is the total simulated time.

Conditions (``condition``): "lpl"; "pred-off" (phi = 0); "hebb-off" (lam = 0); "inhib-off" (no I cells,
run_snn_feedforward.sh); "inhib-fixed" (I -> E not plastic, run_snn_fixed_inh.sh). The fast RMS variant is
``fast_rms = true`` (run_snn_augmented_grad.sh).

Recording (only what the analysis needs, so long runs stay small): spikes of E, I and (optionally) the
inputs during the last ``record_last_s`` seconds as CF indexed ragged arrays; spike counts of every E and I
cell every ``rate_bin_s`` (-> rates); the LPL and I -> E weights every ``weight_snapshot_s`` plus the final
ones, with pre/post indices; the rate and variance traces of the E cells every ``trace_dt_s``.

Config (:class:`LPLNetworkConfig`): composed of ``neuron`` (:class:`~spiking.neurons.NeuronConfig`), ``input``
(:class:`~spiking.inputs.InputConfig`), ``rule`` (:class:`~spiking.rules.lpl.LPLConfig`, input -> E),
``inhibition`` (:class:`~spiking.rules.istdp.ISTDPConfig`, I -> E), ``connectivity`` and ``protocol``. Results
files record it as nested JSON (results schema 2); :func:`config_from_json` also reads the flat config of
schema-1 files (``tau_istdp_ms`` and ``w_max_ie`` are now ``inhibition.tau_ms`` and ``inhibition.w_max``), so
they still resume. The Brian2 model, and so the generated C++ of a standalone build, is the same as before.
"""
from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import xarray as xr

from bridge.config import check_positive, check_range, field_paths, from_dict, get_path, replace_config
from bridge.errors import ConfigError
from bridge.fig5 import BIN_S, POPULATIONS
from spiking.inputs import InputConfig
from spiking.neurons import NeuronConfig, check_steps
from spiking.rules.istdp import ISTDPConfig
from spiking.rules.lpl import LPLConfig

Condition = Literal["lpl", "pred-off", "hebb-off", "inhib-off", "inhib-fixed"]
CONDITIONS = ("lpl", "pred-off", "hebb-off", "inhib-off", "inhib-fixed")


@dataclass(frozen=True, kw_only=True)
class Fig5Connectivity:
    """Sizes and connectivity of the Fig. 5 network (sim_lpl_spiking.cpp, mk_local_inh_connectivity.py)."""

    n_exc: int = 100                 # sim_lpl_spiking.cpp ne
    n_inh: int = 25                  # sim_lpl_spiking.cpp ni
    p_input: float = 0.1             # input -> E sparseness
    w_input: float = 0.15            # input -> E initial weight
    w_ei: float = 0.5                # E -> I weight (fixed local mask)
    ei_width: float = 20.0           # mask width in E-cell index units, mk_local_inh_connectivity.py
    p_ie: float = 0.5                # I -> E sparseness
    w_ie: float = 0.5                # I -> E initial weight
    p_ii: float = 0.1                # I -> I sparseness
    w_ii: float = 0.4                # I -> I weight

    def __post_init__(self) -> None:
        check_positive(self, "n_exc", "ei_width")
        if self.n_inh < 0:
            raise ConfigError(f"n_inh must be >= 0, got {self.n_inh!r}")
        for name in ("p_input", "p_ie", "p_ii"):
            check_range(name, getattr(self, name), 0.0, 1.0)


@dataclass(frozen=True, kw_only=True)
class Fig5Protocol:
    """Condition, length, segments and recording of a Fig. 5 run (run_snn.sh and its variants)."""

    condition: Condition = "lpl"     # run_snn.sh and its variants (lpl.md section 4, "Conditions")
    duration_s: float = 101800.0     # 1800 s priming + 100 000 s plasticity (run_snn.sh --simtime 100000)
    record_last_s: float = 100.0     # spikes recorded in the last 100 s (the notebook's analysis window)
    record_input_spikes: bool = True
    rate_bin_s: float = 10.0         # spike-count sampling of every E and I cell
    weight_snapshot_s: float = 100.0  # weight snapshots (plus the final weights)
    trace_dt_s: float = 10.0         # sampling of the E cells' rate and variance traces
    segment_s: float = 0.0           # write the results file every segment_s (0 = one segment); resumable
    istdp_during_priming: bool = True  # sim_lpl_spiking.cpp freezes only the LPL weights while priming

    def __post_init__(self) -> None:
        if self.condition not in CONDITIONS:
            raise ConfigError(f"condition must be one of {', '.join(CONDITIONS)}, got {self.condition!r}")
        if not self.duration_s > 0:
            raise ConfigError(f"duration_s must be > 0 seconds, got {self.duration_s!r}")
        if self.segment_s < 0:
            raise ConfigError(f"segment_s must be >= 0 (0 = no segments), got {self.segment_s!r}")
        check_positive(self, "record_last_s", "rate_bin_s", "weight_snapshot_s", "trace_dt_s")


@dataclass(frozen=True, kw_only=True)
class LPLNetworkConfig:
    """Fig. 5 network, composed: neuron, input, LPL rule (input -> E), iSTDP (I -> E), connectivity, protocol.

    Fields are set by dotted path (``neuron.tau_mem_ms``) or, where the name occurs once, bare
    (``tau_mem_ms``); ``w_max`` is in ``rule`` and ``inhibition`` and must be dotted.
    """

    neuron: NeuronConfig = field(default_factory=NeuronConfig)
    input: InputConfig = field(default_factory=InputConfig)
    rule: LPLConfig = field(default_factory=LPLConfig)
    inhibition: ISTDPConfig = field(default_factory=ISTDPConfig)
    connectivity: Fig5Connectivity = field(default_factory=Fig5Connectivity)
    protocol: Fig5Protocol = field(default_factory=Fig5Protocol)

    def __post_init__(self) -> None:
        for name, cls in (("neuron", NeuronConfig), ("input", InputConfig), ("rule", LPLConfig),
                          ("inhibition", ISTDPConfig), ("connectivity", Fig5Connectivity),
                          ("protocol", Fig5Protocol)):
            if not isinstance(getattr(self, name), cls):
                raise ConfigError(f"{name} must be a {cls.__name__}, got {type(getattr(self, name)).__name__}")
        dt = self.neuron.dt_ms
        check_steps("pred_delay_ms", self.rule.pred_delay_ms, dt)
        if abs(self.neuron.delay_ms / dt - 8) > 1e-6:
            raise ConfigError(f"delay_ms / dt_ms must be 8 steps (the LPL eligibility delay line), got "
                              f"delay_ms = {self.neuron.delay_ms!r}, dt_ms = {dt!r}")


#: the experiment's config class (``ratespike spike lpl-network`` builds it with the paper's defaults)
CONFIG = LPLNetworkConfig
#: names of the schema-1 (flat) config that moved: schema-1 name -> path in :class:`LPLNetworkConfig`
SCHEMA1_RENAMES = {"tau_istdp_ms": "inhibition.tau_ms", "w_max_ie": "inhibition.w_max", "w_max": "rule.w_max"}


def config(**changes) -> LPLNetworkConfig:
    """The paper's config with ``changes`` (bare unique names or dotted paths), validated."""
    return replace_config(LPLNetworkConfig(), changes)


def config_from_json(text: str) -> LPLNetworkConfig:
    """The config a results file records: schema 2 (nested) or schema 1 (the flat 74-field ``Config``)."""
    try:
        d = json.loads(text)
    except (TypeError, json.JSONDecodeError):
        raise ConfigError("the file's 'config' attribute is not valid JSON") from None
    if not isinstance(d, dict):
        raise ConfigError("the file's 'config' attribute is not a JSON object")
    if any(isinstance(v, dict) for v in d.values()):
        return from_dict(LPLNetworkConfig, d)
    flat = {SCHEMA1_RENAMES.get(k, k): v for k, v in d.items() if k != "__class__"}
    return replace_config(LPLNetworkConfig(), flat)


def effective(cfg: LPLNetworkConfig) -> LPLNetworkConfig:
    """The config with the condition applied (pred-off: phi = 0; hebb-off: lam = 0; inhib-off: n_inh = 0)."""
    cond = cfg.protocol.condition
    ch = {"pred-off": {"rule.phi": 0.0}, "hebb-off": {"rule.lam": 0.0},
          "inhib-off": {"connectivity.n_inh": 0}}.get(cond)
    return replace_config(cfg, ch) if ch else cfg


#: config paths that are run-time values of a standalone binary (not compiled in); see :func:`compiled_fields`
RUNTIME_FIELDS = ("protocol.condition", "protocol.duration_s", "protocol.segment_s", "rule.eta", "rule.lam",
                  "rule.phi", "inhibition.zeta", "rule.plasticity_start_s", "protocol.record_last_s",
                  "protocol.istdp_during_priming")


#: the run-time learning values a standalone build compiles at their defaults (:func:`canonical_runtime`)
LEARNING_PATHS = ("rule.eta", "rule.lam", "rule.phi", "inhibition.zeta", "rule.plasticity_start_s",
                  "protocol.istdp_during_priming")


def canonical_runtime(eff: LPLNetworkConfig) -> LPLNetworkConfig:
    """``eff`` with its run-time learning values at the defaults: what a standalone build compiles.

    The binary receives every one of them on its command line at every run (:func:`run_values`); building with
    fixed values keeps them out of the generated ``main.cpp``, so a build made for one condition or learning
    rate has the same generated code as one made for another (the code-hash reuse of
    :func:`spiking.standalone.build`).
    """
    default = LPLNetworkConfig()
    return replace_config(eff, {p: get_path(default, p) for p in LEARNING_PATHS})


def compiled_fields(cfg: LPLNetworkConfig) -> dict:
    """The fields of the effective config compiled into the binary (the cache key); n_inh is the condition's."""
    eff = effective(cfg)
    return {p: get_path(eff, p) for p in field_paths(eff) if p not in RUNTIME_FIELDS}


def _construct(cfg: LPLNetworkConfig, weight_monitors: bool = True):
    """The Fig. 5 network on the active device; connectivity and initial U drawn by Brian2 (run-time seed).

    ``weight_monitors`` False (standalone: the number of synapses is drawn inside the binary, so Brian2 cannot
    monitor them): weight snapshots are taken between the binary's runs instead.

    Returns ``(net, objs, monitors, phase_monitors, handles)``.
    """
    from brian2 import Network, SpikeMonitor, StateMonitor, Synapses, ms, mV, second

    from spiking.inputs import input_group
    from spiking.neurons import lif_group
    from spiking.rules import istdp, lpl

    neuron, conn, prot = cfg.neuron, cfg.connectivity, cfg.protocol
    inputs = input_group(cfg.input, extra_eqs=lpl.PRE_EQS)
    exc = lif_group(conn.n_exc, neuron, name="exc", extra_eqs=lpl.POST_EQS, extra_reset=lpl.POST_RESET)
    exc.namespace.update(u_init_mean=neuron.u_init_mean_mv * mV, u_init_sd=neuron.u_init_sd_mv * mV)
    exc.v = "u_init_mean + u_init_sd * randn()"
    objs = {"inputs": inputs, "exc": exc}
    lpl_objs = lpl.synapses(inputs, exc, cfg.rule, connect=f"{float(conn.p_input)!r}", w0=conn.w_input,
                            delay_ms=neuron.delay_ms, dt_ms=neuron.dt_ms, name="lpl")
    syn_in = lpl_objs[0]
    objs["lpl"] = syn_in
    net_objs = [inputs, exc, *lpl_objs]
    syn_ie = inh = None
    if conn.n_inh > 0:
        inh = lif_group(conn.n_inh, neuron, name="inh")
        (syn_ie,) = istdp.synapses(inh, exc, cfg.inhibition, connect=f"{float(conn.p_ie)!r}", w0=conn.w_ie,
                                   delay_ms=neuron.delay_ms, dt_ms=neuron.dt_ms, name="ie")
        objs.update(inh=inh, ie=syn_ie)
        net_objs += [inh, syn_ie]
        ei = Synapses(exc, inh, "w : 1", on_pre="g_ampa_post += w", delay=neuron.delay_ms * ms, name="ei")
        # the local mask of mk_local_inh_connectivity.py: P(e -> k) = exp(-(e - c_k)^2 / width^2)
        ei.connect(p="exp(-(i - j * n_exc_f / (n_inh_f - 1))**2 / width**2)" if conn.n_inh > 1
                   else "exp(-i**2 / width**2)",
                   namespace={"n_exc_f": float(conn.n_exc), "n_inh_f": float(conn.n_inh),
                              "width": float(conn.ei_width)})
        ei.w = conn.w_ei
        ii = Synapses(inh, inh, "w : 1", on_pre="g_gaba_post += w", delay=neuron.delay_ms * ms, name="ii")
        ii.connect(condition="i != j", p=conn.p_ii, namespace={})
        ii.w = conn.w_ii
        net_objs += [ei, ii]
        objs.update(ei=ei, ii=ii)
    spikes = {"E": SpikeMonitor(exc, name="spikes_e")}
    if inh is not None:
        spikes["I"] = SpikeMonitor(inh, name="spikes_i")
    if prot.record_input_spikes:
        spikes["input"] = SpikeMonitor(inputs, name="spikes_input")
    counts = {"E": StateMonitor(exc, "nspk", record=True, dt=prot.rate_bin_s * second, name="count_e")}
    if inh is not None:
        counts["I"] = StateMonitor(inh, "nspk", record=True, dt=prot.rate_bin_s * second, name="count_i")
    w_mon = {}
    if weight_monitors:
        w_mon["input"] = StateMonitor(syn_in, "w", record=True, dt=prot.weight_snapshot_s * second, name="w_input")
    if syn_ie is not None and weight_monitors:
        w_mon["ie"] = StateMonitor(syn_ie, "w", record=True, dt=prot.weight_snapshot_s * second, name="w_ie")
    tr_mon = StateMonitor(exc, ["m", "sigma2"], record=True, dt=prot.trace_dt_s * second, name="traces_e")
    monitors = {}
    for m in spikes.values():
        monitors[m.name] = (m, ["t", "i"])
    for m in counts.values():
        monitors[m.name] = (m, ["t", "nspk"])
    for m in w_mon.values():
        monitors[m.name] = (m, ["t", "w"])
    monitors[tr_mon.name] = (tr_mon, ["t", "m", "sigma2"])
    net = Network(*net_objs, *[m for m, _ in monitors.values()])
    handles = {"spikes": spikes, "counts": counts, "w_mon": w_mon, "tr_mon": tr_mon, "syn_in": syn_in,
               "syn_ie": syn_ie, "exc": exc, "inh": inh}
    return net, objs, monitors, list(spikes.values()), handles


def run_values(cfg: LPLNetworkConfig, t_off_s: float) -> dict[str, float]:
    """The run-time values of the (condition-applied) config, as ``owner.variable`` -> value (SI)."""
    eff = effective(cfg)
    rule = eff.rule
    vals = {"exc.lam": rule.lam, "exc.phi": rule.phi, "lpl.eta": rule.eta, "lpl.t_plastic": rule.plasticity_start_s,
            "lpl.t_off_syn": t_off_s, "inputs.t_off": t_off_s}
    if eff.connectivity.n_inh > 0:
        vals.update({"ie.zeta": 0.0 if eff.protocol.condition == "inhib-fixed" else eff.inhibition.zeta,
                     "ie.t_plastic": 0.0 if eff.protocol.istdp_during_priming else rule.plasticity_start_s,
                     "ie.t_off": t_off_s})
    return vals


def segments(cfg: LPLNetworkConfig) -> list[tuple[float, float]]:
    """(start, end) of every segment; one segment when ``segment_s`` is 0."""
    seg, dur = cfg.protocol.segment_s, cfg.protocol.duration_s
    if seg <= 0:
        return [(0.0, float(dur))]
    n = int(np.ceil(dur / seg - 1e-9))
    return [(k * seg, min((k + 1) * seg, dur)) for k in range(n)]


def chunks(cfg: LPLNetworkConfig, a: float, b: float) -> list[tuple[float, float]]:
    """Runs of the binary within one segment: cut at every weight snapshot time (a multiple of weight_snapshot_s)."""
    snap = cfg.protocol.weight_snapshot_s
    cuts = [a]
    k = np.floor(a / snap + 1e-9) + 1
    while k * snap < b - 1e-9:
        cuts.append(float(k * snap))
        k += 1
    cuts.append(b)
    return list(zip(cuts[:-1], cuts[1:]))


def check_segments(cfg: LPLNetworkConfig) -> None:
    """ConfigError unless segment_s is 0 or a positive whole number of weight steps."""
    seg, step = cfg.protocol.segment_s, cfg.rule.update_interval_s
    if seg == 0:
        return
    steps = seg / step
    if not seg > 0 or not np.isfinite(steps) or abs(steps - round(steps)) > 1e-9 or round(steps) < 1:
        raise ConfigError(f"segment_s must be a positive whole number of {step:g} s weight steps, got {seg!r}")


class Raw:
    """Everything recorded so far (concatenated over segments), in plain arrays."""

    KEYS = ("spike_t", "spike_i", "count_t", "count", "w_t", "w", "tr_t", "tr_m", "tr_s2")

    def __init__(self):
        self.a: dict[str, np.ndarray] = {}

    def add(self, name: str, arr: np.ndarray, axis: int = 0) -> None:
        arr = np.asarray(arr)
        self.a[name] = arr if name not in self.a else np.concatenate([self.a[name], arr], axis=axis)

    def set(self, name: str, arr) -> None:
        self.a[name] = np.asarray(arr)

    def get(self, name: str, default=None):
        return self.a.get(name, default)

    def to_dataset(self) -> xr.Dataset:
        return xr.Dataset({k: (tuple(f"{k}_d{d}" for d in range(v.ndim)), v) for k, v in self.a.items()})

    @classmethod
    def from_dataset(cls, ds: xr.Dataset) -> Raw:
        r = cls()
        for k in ds.data_vars:
            r.a[str(k)] = np.asarray(ds[k].values)
        return r


def _dataset(cfg: LPLNetworkConfig, raw: Raw, t_now: float, t_rec: float, pops: dict) -> tuple[xr.Dataset, dict]:
    """The results Dataset and the ``representations/E`` group from the raw records."""
    from bridge.fig5 import binned_counts, population_of_inputs
    from bridge.reps import representation
    from spiking.experiments.common import spike_variables
    from spiking.inputs import population_rates

    data: dict[str, xr.DataArray] = {}
    n_in = 5 * cfg.input.n_per_population
    sizes = {"E": cfg.connectivity.n_exc, "I": cfg.connectivity.n_inh, "input": n_in}
    long = {"E": "excitatory cells", "I": "inhibitory cells", "input": "input neurons"}
    window = max(t_now - t_rec, 1e-12)
    for key in pops["spikes"]:
        t = raw.get(f"spike_t_{key}", np.zeros(0))
        i = raw.get(f"spike_i_{key}", np.zeros(0, np.int32))
        data.update(spike_variables(key, t, i, sizes[key], long[key]))
        data[f"rate_window_{key}"] = xr.DataArray(np.bincount(i.astype(np.int64), minlength=sizes[key]) / window,
                                                  dims=(f"neuron_{key}",), attrs={
            "units": "Hz", "long_name": f"rate of each of the {long[key]} in the recorded window"})
    for key in pops["counts"]:
        c = np.vstack([raw.get(f"count_{key}"), raw.get(f"nspk_{key}")[None, :]])
        tt = np.append(raw.get(f"count_t_{key}"), t_now)
        if len(tt) >= 2:
            rates = np.diff(c, axis=0) / np.diff(tt)[:, None]
            dim = f"rate_time_{key}"
            data[f"rate_{key}"] = xr.DataArray(rates, dims=(dim, f"neuron_{key}"), attrs={
                "units": "Hz", "long_name": f"firing rate of each of the {long[key]} per bin"})
            data[f"population_rate_{key}"] = xr.DataArray(rates.mean(1), dims=(dim,), attrs={
                "units": "Hz", "long_name": f"mean firing rate of the {long[key]} per bin"})
            data[dim] = xr.DataArray(tt[:-1], dims=(dim,), attrs={"units": "s", "long_name": "start of the bin"})
    for key in pops["weights"]:
        sdim = f"synapse_{key}"
        data[f"w_{key}_pre"] = xr.DataArray(raw.get(f"pre_{key}").astype(np.int32), dims=(sdim,),
                                            attrs={"long_name": "presynaptic index"})
        data[f"w_{key}_post"] = xr.DataArray(raw.get(f"post_{key}").astype(np.int32), dims=(sdim,),
                                             attrs={"long_name": "postsynaptic index"})
        data[f"w_{key}_final"] = xr.DataArray(raw.get(f"wfinal_{key}").astype(np.float32), dims=(sdim,), attrs={
            "units": "1", "long_name": f"{key} weights at the end (conductance / leak conductance)"})
        tdim = f"snapshot_time_{key}"
        data[f"w_{key}"] = xr.DataArray(raw.get(f"w_{key}").astype(np.float32), dims=(tdim, sdim), attrs={
            "units": "1", "long_name": f"{key} weights at the snapshot times"})
        data[tdim] = xr.DataArray(raw.get(f"w_t_{key}"), dims=(tdim,), attrs={"units": "s"})
    data["trace_time"] = xr.DataArray(raw.get("tr_t"), dims=("trace_time",), attrs={"units": "s"})
    data["rate_estimate_E"] = xr.DataArray(raw.get("tr_m") / cfg.rule.tau_mean_s, dims=("trace_time", "neuron_E"),
                                           attrs={
        "units": "Hz", "long_name": "LPL rate trace m / tau_mean"})
    data["sigma2_E"] = xr.DataArray(raw.get("tr_s2"), dims=("trace_time", "neuron_E"), attrs={
        "units": "Hz", "long_name": "LPL variance trace sigma2 (~ rate in Hz, erratum Issue #4)"})
    step = cfg.input.sample_ms * 1e-3
    rates_in = population_rates(cfg.input, t_now, step)[int(round(t_rec / step)):]
    data["input_rate"] = xr.DataArray(rates_in, dims=("input_time", "population"), attrs={
        "units": "Hz", "long_name": "rate of each input population"})
    data["input_time"] = xr.DataArray(t_rec + np.arange(len(rates_in)) * step, dims=("input_time",),
                                      attrs={"units": "s"})
    data["input_population"] = xr.DataArray(population_of_inputs(cfg.input.n_per_population),
                                            dims=("neuron_input",), attrs={"long_name": "population index"})
    ds = xr.Dataset(data, coords={"population": list(POPULATIONS)}, attrs={"simulated_until_s": float(t_now)})
    bin_s = BIN_S
    x = binned_counts(raw.get("spike_t_E", np.zeros(0)), raw.get("spike_i_E", np.zeros(0, np.int32)),
                      cfg.connectivity.n_exc, t_rec, t_now, bin_s)
    rep = representation(x, layer="E", sample_dim="time", units="count", time_step_s=bin_s,
                         attrs={"t_start_s": t_rec, "bin_s": bin_s})
    rep = rep.assign_coords(time=t_rec + np.arange(x.shape[0]) * bin_s)
    rep["time"].attrs.update(units="s", long_name="start of the time bin")
    return ds, {"representations/E": rep}


def _pops(cfg: LPLNetworkConfig) -> dict:
    inh = cfg.connectivity.n_inh > 0
    return {"spikes": ["E"] + (["I"] if inh else []) + (["input"] if cfg.protocol.record_input_spikes else []),
            "counts": ["E"] + (["I"] if inh else []),
            "weights": ["input"] + (["ie"] if inh else [])}


_MON = {"spikes": {"E": "spikes_e", "I": "spikes_i", "input": "spikes_input"},
        "counts": {"E": "count_e", "I": "count_i"}, "weights": {"input": "w_input", "ie": "w_ie"}}
_SYN = {"input": "lpl", "ie": "ie"}
_GROUP = {"E": "exc", "I": "inh"}


def simulate(cfg: LPLNetworkConfig, *, seed: int = 0, device: str = "cpp_standalone", build_root=None,
             threads: int = 1, progress: bool = False, on_segment=None, resume_from=None,
             codegen: str = "cython", binary=None) -> tuple[xr.Dataset, dict[str, xr.Dataset]]:
    """Simulate the Fig. 5 network; returns the run Dataset and its groups (``representations/E``, ``state``).

    Parameters
    ----------
    device : str
        ``runtime`` (Brian2 in this process) or ``cpp_standalone`` (one cached binary, :mod:`spiking.standalone`,
        run once per segment with the run-time values and the carried-over state).
    on_segment : callable(ds, groups), optional
        Called with the results so far after every completed segment except the last (the CLI rewrites the
        results file there, atomically, so an interrupted run keeps its last segment).
    resume_from : (Dataset, groups), optional
        A partial results file of the same config and seed (cpp_standalone): continue after its last segment.
    codegen : {"cython", "numpy"}
        Code generation target of the runtime device.
    binary : spiking.standalone.Binary, optional
        cpp_standalone: run on this binary (a set's workers get the one their parent built) instead of
        looking the build up.
    """
    check_segments(cfg)
    if device == "runtime":
        if resume_from is not None:
            raise ConfigError("--resume needs --device cpp_standalone")
        return _simulate_runtime(cfg, seed=seed, progress=progress, on_segment=on_segment, codegen=codegen)
    if device != "cpp_standalone":
        raise ConfigError(f"lpl-network runs on runtime or cpp_standalone, not {device!r}")
    return _simulate_standalone(cfg, seed=seed, build_root=build_root, progress=progress, on_segment=on_segment,
                                resume_from=resume_from, binary=binary)


def _attrs(cfg: LPLNetworkConfig, seed: int, name: str, build_s: float, wall_s: float, sim_s: float,
           cpu_s: float) -> dict:
    from bridge.config import to_json
    from bridge.io import provenance

    return provenance(kind="spike", config_json=to_json(cfg), seed=int(seed), extra={
        "experiment": "lpl-network", "device": name, "openmp_threads": 1, "condition": cfg.protocol.condition,
        "simulated_time_s": float(sim_s), "wall_time_s": float(wall_s), "build_time_s": float(build_s),
        "cpu_time_s": float(cpu_s), "real_time_factor": float(sim_s / wall_s) if wall_s > 0 else 0.0})


def _simulate_standalone(cfg: LPLNetworkConfig, *, seed: int, build_root, progress: bool, on_segment, resume_from,
                         binary=None):
    import shutil
    import tempfile

    from spiking import standalone

    say = (lambda msg: print(msg, file=sys.stderr, flush=True)) if progress else None
    eff = effective(cfg)
    pops = _pops(eff)
    t_rec = max(0.0, cfg.protocol.duration_s - cfg.protocol.record_last_s)

    def construct():  # built with canonical run-time values: the generated code is the same for every value
        return _construct(canonical_runtime(eff), weight_monitors=False)[:4]

    if binary is None:
        binary = standalone.build("lpl-network", compiled_fields(cfg), construct, dt_ms=cfg.neuron.dt_ms,
                                  build_root=build_root, progress=say)
    segs = segments(cfg)
    snap_s = cfg.protocol.weight_snapshot_s
    dt_ms = cfg.neuron.dt_ms
    raw, state, start, wall, cpu = Raw(), None, 0, 0.0, 0.0
    if resume_from is not None:
        ds0, groups0 = resume_from
        raw = Raw.from_dataset(groups0["raw"])
        state = {k: np.asarray(groups0["state"][k.replace(".", "__")].values) for k in binary.state_keys()}
        done = float(ds0.attrs["simulated_until_s"])
        start = next(k for k, (a, _) in enumerate(segs) if abs(a - done) < 1e-9)
        wall = float(ds0.attrs.get("wall_time_s", 0.0))
        cpu = float(ds0.attrs.get("cpu_time_s", 0.0))
    seg_wall: dict[int, float] = {}
    work = Path(tempfile.mkdtemp(prefix="ratespike-run-"))
    try:
        for k in range(start, len(segs)):
            a_seg, b = segs[k]
            for a, c in chunks(cfg, a_seg, b):
                snap = abs(a / snap_s - round(a / snap_s)) < 1e-9
                if snap and state is not None:
                    for key in pops["weights"]:
                        raw.add(f"w_t_{key}", np.array([a]))
                        raw.add(f"w_{key}", state[f"{_SYN[key]}.w"][None, :].astype(np.float32))
                run0 = float(np.clip(t_rec - a, 0.0, c - a))
                env = {"RATESPIKE_SEED": int(seed),
                       "RATESPIKE_SEGMENT_SEED": standalone.segment_seed(
                           seed, int(round(a / cfg.rule.update_interval_s))),
                       "RATESPIKE_RUN0": repr(run0), "RATESPIKE_RUN1": repr((c - a) - run0)}
                args = []
                if state is not None:
                    sdir = work / "state"
                    shutil.rmtree(sdir, ignore_errors=True)
                    sdir.mkdir()
                    for key, arr in state.items():
                        f = sdir / key
                        np.ascontiguousarray(arr.astype(binary.manifest["arrays"][key]["dtype"])).tofile(f)
                        args.append(f"{key}={f}")
                args += [f"{key}={val!r}" for key, val in run_values(eff, a).items()]
                res = work / "results"
                r0 = os.times()
                w_chunk = binary.run(res, env=env, args=args, log=work / "run.log", show=bool(say))
                wall += w_chunk
                seg_wall[k] = seg_wall.get(k, 0.0) + w_chunk
                r1 = os.times()
                cpu += (r1.children_user - r0.children_user) + (r1.children_system - r0.children_system)
                first = state is None
                state = standalone.rebase_local_times({key: binary.read(res, key) for key in binary.state_keys()},
                                                      round((c - a) / (dt_ms * 1e-3)) * dt_ms * 1e-3)
                if first and snap:  # the initial weights at t = 0
                    for key in pops["weights"]:
                        w0 = eff.connectivity.w_input if key == "input" else eff.connectivity.w_ie
                        raw.add(f"w_t_{key}", np.array([a]))
                        raw.add(f"w_{key}", np.full((1, len(state[f"{_SYN[key]}.w"])), w0, np.float32))
                _accumulate(binary, res, raw, pops, a)
                shutil.rmtree(res, ignore_errors=True)
            if say:
                rtf = b / wall if wall > 0 else 0.0
                left = (cfg.protocol.duration_s - b) / rtf if rtf > 0 else float("nan")
                say(f"simulated {b:g} of {cfg.protocol.duration_s:g} s, real-time factor {rtf:.2f}, ETA {left:.0f} s")
            ds, groups = _dataset(eff, raw, b, t_rec, pops)
            ds.attrs.update(_attrs(cfg, seed, "cpp_standalone", binary.build_time_s, wall, b, cpu))
            ds.attrs.update(simulated_until_s=float(b), complete=int(k == len(segs) - 1),
                            build_directory=binary.directory.name,
                            last_segment_wall_time_s=float(seg_wall.get(k, 0.0)),
                            last_segment_simulated_s=float(b - a_seg))
            groups["raw"] = raw.to_dataset()
            groups["state"] = xr.Dataset({key.replace(".", "__"): (f"{key.replace('.', '__')}_n", v)
                                          for key, v in state.items()})
            if k < len(segs) - 1 and on_segment is not None:
                on_segment(ds, groups)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return ds, groups


def _accumulate(binary, res: Path, raw: Raw, pops: dict, t_off: float) -> None:
    """Add one segment's monitor records (local times shifted by t_off) to ``raw``."""
    for key in pops["spikes"]:
        m = _MON["spikes"][key]
        raw.add(f"spike_t_{key}", binary.read(res, f"{m}.t") + t_off)
        raw.add(f"spike_i_{key}", binary.read(res, f"{m}.i").astype(np.int32))
    for key in pops["counts"]:
        m = _MON["counts"][key]
        raw.add(f"count_t_{key}", binary.read(res, f"{m}.t") + t_off)
        raw.add(f"count_{key}", binary.read(res, f"{m}.nspk").astype(np.float64))
        raw.set(f"nspk_{key}", binary.read(res, f"{_GROUP[key]}.nspk").astype(np.float64))
    for key in pops["weights"]:
        raw.set(f"wfinal_{key}", binary.read(res, f"{_SYN[key]}.w"))
        raw.set(f"pre_{key}", binary.read(res, f"{_SYN[key]}._synaptic_pre"))
        raw.set(f"post_{key}", binary.read(res, f"{_SYN[key]}._synaptic_post"))
    raw.add("tr_t", binary.read(res, "traces_e.t") + t_off)
    raw.add("tr_m", binary.read(res, "traces_e.m"))
    raw.add("tr_s2", binary.read(res, "traces_e.sigma2"))


def _simulate_runtime(cfg: LPLNetworkConfig, *, seed: int, progress: bool, on_segment, codegen: str = "cython"):
    from brian2 import second

    from spiking.devices import use_device

    eff = effective(cfg)
    pops = _pops(eff)
    t_rec = max(0.0, cfg.protocol.duration_s - cfg.protocol.record_last_s)
    with use_device("runtime", seed=seed, dt_ms=cfg.neuron.dt_ms, codegen=codegen) as dev:
        net, objs, monitors, phase_mons, h = _construct(eff)
        for key, val in run_values(eff, 0.0).items():
            owner, var = key.split(".")
            setattr(objs[owner], var, val * second if var.startswith("t_") else val)
        report = "stderr" if progress else None
        seg = cfg.protocol.segment_s if (cfg.protocol.segment_s > 0 and on_segment is not None) else np.inf
        t_now = 0.0

        def collect(t: float):
            raw = Raw()
            for key in pops["spikes"]:
                mon = h["spikes"][key]
                raw.set(f"spike_t_{key}", np.asarray(mon.t[:] / second, dtype=np.float64))
                raw.set(f"spike_i_{key}", np.asarray(mon.i[:], dtype=np.int32))
            for key in pops["counts"]:
                mon = h["counts"][key]
                raw.set(f"count_t_{key}", np.asarray(mon.t[:] / second))
                raw.set(f"count_{key}", np.asarray(mon.nspk[:], dtype=np.float64).T)
                raw.set(f"nspk_{key}", np.asarray(objs[_GROUP[key]].nspk[:], dtype=np.float64))
            for key in pops["weights"]:
                mon, syn = h["w_mon"][key], objs[_SYN[key]]
                raw.set(f"w_t_{key}", np.asarray(mon.t[:] / second))
                raw.set(f"w_{key}", np.asarray(mon.w[:], dtype=np.float32).T)
                raw.set(f"wfinal_{key}", np.asarray(syn.w[:]))
                raw.set(f"pre_{key}", np.asarray(syn.i[:]))
                raw.set(f"post_{key}", np.asarray(syn.j[:]))
            raw.set("tr_t", np.asarray(h["tr_mon"].t[:] / second))
            raw.set("tr_m", np.asarray(h["tr_mon"].m[:]).T)
            raw.set("tr_s2", np.asarray(h["tr_mon"].sigma2[:]).T)
            ds, groups = _dataset(eff, raw, t, t_rec, pops)
            ds.attrs.update(_attrs(cfg, seed, "runtime", 0.0, dev.wall_time_s, t, dev.cpu_time_s))
            ds.attrs.update(simulated_until_s=float(t), complete=int(t >= cfg.protocol.duration_s - 1e-9))
            return ds, groups

        for length, record in ((t_rec, False), (cfg.protocol.duration_s - t_rec, True)):
            if length <= 0:
                continue
            for m in phase_mons:
                m.active = record
            left = length
            while left > 1e-9:
                chunk = min(seg, left)
                dev.run(net, chunk, report=report)
                t_now += chunk
                left -= chunk
                if np.isfinite(seg) and t_now < cfg.protocol.duration_s - 1e-9:
                    on_segment(*collect(t_now))
        return collect(cfg.protocol.duration_s)


def summary(ds: xr.Dataset) -> list[str]:
    """Lines for the CLI: rates in the recorded window and the mean input weight per population."""
    parts = [f"{k} {float(ds[f'rate_window_{k}'].mean()):.2f} Hz" for k in ("E", "I", "input")
             if f"rate_window_{k}" in ds]
    lines = ["rates in the recorded window: " + ", ".join(parts)]
    pre = ds["w_input_pre"].values // int(ds["input_population"].sizes["neuron_input"] / 5)
    w = ds["w_input_final"].values
    lines.append("mean final input weight per population: " + ", ".join(
        f"{p} {w[pre == k].mean():.3f}" for k, p in enumerate(POPULATIONS)))
    return lines
