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
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

import numpy as np
import xarray as xr

from bridge.config import check_positive, check_range
from bridge.errors import ConfigError
from spiking.inputs import POPULATIONS, InputConfig, validate_inputs
from spiking.neurons import NeuronConfig, check_steps, validate_neuron
from spiking.rules.istdp import ISTDPConfig, validate_istdp
from spiking.rules.lpl import LPLConfig, validate_lpl

Condition = Literal["lpl", "pred-off", "hebb-off", "inhib-off", "inhib-fixed"]


@dataclass(frozen=True, kw_only=True)
class Config(NeuronConfig, LPLConfig, ISTDPConfig, InputConfig):
    """Fig. 5 network: neuron, LPL, iSTDP and input constants plus connectivity and protocol."""

    condition: Condition = "lpl"     # run_snn.sh and its variants (lpl.md section 4, "Conditions")
    duration_s: float = 101800.0     # 1800 s priming + 100 000 s plasticity (run_snn.sh --simtime 100000)
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
    record_last_s: float = 100.0     # spikes recorded in the last 100 s (the notebook's analysis window)
    record_input_spikes: bool = True
    rate_bin_s: float = 10.0         # spike-count sampling of every E and I cell
    weight_snapshot_s: float = 100.0  # weight snapshots (plus the final weights)
    trace_dt_s: float = 10.0         # sampling of the E cells' rate and variance traces
    segment_s: float = 0.0           # runtime device: write the results file every segment_s (0 = at the end)

    def __post_init__(self) -> None:
        validate_neuron(self)
        validate_lpl(self)
        validate_istdp(self)
        validate_inputs(self)
        if not self.duration_s > 0:
            raise ConfigError(f"duration_s must be > 0 seconds, got {self.duration_s!r}")
        if self.segment_s < 0:
            raise ConfigError(f"segment_s must be >= 0 (0 = no segments), got {self.segment_s!r}")
        check_positive(self, "n_exc", "record_last_s", "rate_bin_s", "weight_snapshot_s", "trace_dt_s",
                       "ei_width")
        if self.n_inh < 0:
            raise ConfigError(f"n_inh must be >= 0, got {self.n_inh!r}")
        for name in ("p_input", "p_ie", "p_ii"):
            check_range(name, getattr(self, name), 0.0, 1.0)
        check_steps("pred_delay_ms", self.pred_delay_ms, self.dt_ms)
        if abs(self.delay_ms / self.dt_ms - 8) > 1e-6:
            raise ConfigError(f"delay_ms / dt_ms must be 8 steps (the LPL eligibility delay line), got "
                              f"delay_ms = {self.delay_ms!r}, dt_ms = {self.dt_ms!r}")


def effective(cfg: Config) -> Config:
    """The config with the condition applied (pred-off: phi = 0; hebb-off: lam = 0; inhib-off: n_inh = 0)."""
    ch: dict = {}
    if cfg.condition == "pred-off":
        ch["phi"] = 0.0
    elif cfg.condition == "hebb-off":
        ch["lam"] = 0.0
    elif cfg.condition == "inhib-off":
        ch["n_inh"] = 0
    return dataclasses.replace(cfg, **ch) if ch else cfg


def connectivity(cfg: Config, seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Pre and post indices of every pathway, drawn from ``seed`` (the same on every device)."""
    rng = np.random.default_rng([seed, 5])
    n_in = 5 * cfg.n_per_population

    def bern(n_pre: int, n_post: int, p: float, no_self: bool = False):
        m = rng.random((n_pre, n_post)) < p  # (pre, post)
        if no_self:
            np.fill_diagonal(m, False)
        i, j = np.nonzero(m)
        return i.astype(np.int32), j.astype(np.int32)

    conn = {"input": bern(n_in, cfg.n_exc, cfg.p_input)}
    if cfg.n_inh > 0:
        c = np.linspace(0, cfg.n_exc, cfg.n_inh)
        prob = np.exp(-((np.arange(cfg.n_exc)[:, None] - c[None, :]) ** 2) / cfg.ei_width ** 2)  # (E, I)
        i, j = np.nonzero(rng.random(prob.shape) < prob)
        conn["ei"] = (i.astype(np.int32), j.astype(np.int32))
        conn["ie"] = bern(cfg.n_inh, cfg.n_exc, cfg.p_ie)
        conn["ii"] = bern(cfg.n_inh, cfg.n_inh, cfg.p_ii, no_self=True)
    return conn


def simulate(cfg: Config, *, seed: int = 0, device: str = "cpp_standalone", build_root=None, threads: int = 1,
             progress: bool = False, on_segment=None) -> tuple[xr.Dataset, dict[str, xr.Dataset]]:
    """Simulate the Fig. 5 network; returns the run Dataset and its ``representations/E`` group.

    Parameters
    ----------
    on_segment : callable(ds, groups), optional
        Runtime device with ``segment_s > 0``: called with the results so far after every completed segment
        (the CLI rewrites the results file there, so an interrupted run keeps its last segment). A
        standalone binary runs all segments in one process and cannot hand results back before it ends.
    """
    from spiking.devices import use_device
    from spiking.experiments.common import run_attrs

    with use_device(device, seed=seed, dt_ms=cfg.dt_ms, build_root=build_root, threads=threads) as dev:
        def partial(ds, groups):
            ds.attrs.update(run_attrs(cfg, experiment="lpl-network", seed=seed, dev=dev))
            ds.attrs.update(condition=cfg.condition, complete=0)
            on_segment(ds, groups)

        ds, groups = _simulate(effective(cfg), seed=seed, dev=dev, progress=progress,
                               on_segment=partial if on_segment is not None else None)
        ds.attrs.update(run_attrs(cfg, experiment="lpl-network", seed=seed, dev=dev))
        ds.attrs.update(condition=cfg.condition, complete=1)
    return ds, groups


def _simulate(cfg: Config, *, seed: int, dev, progress: bool, on_segment=None):
    from brian2 import Network, SpikeMonitor, StateMonitor, Synapses, mV, ms, second

    from bridge.reps import representation
    from spiking.experiments.common import binned_counts, spike_variables
    from spiking.inputs import input_group, population_rates
    from spiking.neurons import lif_group
    from spiking.rules import lpl
    from spiking.rules.istdp import istdp_synapses

    dt_s = cfg.dt_ms * 1e-3
    rng = np.random.default_rng([seed, 7])
    conn = connectivity(cfg, seed)
    inputs = input_group(cfg, extra_eqs=lpl.PRE_EQS)
    exc = lif_group(cfg.n_exc, cfg, name="exc", extra_eqs=lpl.POST_EQS, extra_reset=lpl.POST_RESET)
    exc.v = (cfg.u_init_mean_mv + cfg.u_init_sd_mv * rng.standard_normal(cfg.n_exc)) * mV
    objs = [inputs, exc]
    lpl_objs = lpl.lpl_synapses(inputs, exc, cfg, dt_s=dt_s, i=conn["input"][0], j=conn["input"][1],
                                w0=cfg.w_input, delay_ms=cfg.delay_ms, name="lpl")
    objs += lpl_objs
    syn_in = lpl_objs[0]
    syn_ie = None
    inh = None
    if cfg.n_inh > 0:
        inh = lif_group(cfg.n_inh, cfg, name="inh")
        syn_ie = istdp_synapses(inh, exc, cfg, i=conn["ie"][0], j=conn["ie"][1], w0=cfg.w_ie,
                                delay_ms=cfg.delay_ms, plastic=cfg.condition != "inhib-fixed",
                                plasticity_start_s=cfg.plasticity_start_s, name="ie")
        objs += [inh, syn_ie]
        for key, src, tgt, target_var, w in (("ei", exc, inh, "g_ampa_post", cfg.w_ei),
                                             ("ii", inh, inh, "g_gaba_post", cfg.w_ii)):
            if len(conn[key][0]) == 0:  # a tiny net can draw no synapse of a kind (Brian2 cannot hold none)
                continue
            static = Synapses(src, tgt, "w : 1", on_pre=f"{target_var} += w", delay=cfg.delay_ms * ms, name=key)
            static.connect(i=conn[key][0], j=conn[key][1])
            static.w = w
            objs.append(static)
    # recording
    sp_e = SpikeMonitor(exc, name="spikes_e")
    spikes = {"E": sp_e}
    if inh is not None:
        spikes["I"] = SpikeMonitor(inh, name="spikes_i")
    if cfg.record_input_spikes:
        spikes["input"] = SpikeMonitor(inputs, name="spikes_input")
    counts = {"E": StateMonitor(exc, "nspk", record=True, dt=cfg.rate_bin_s * second, name="count_e")}
    if inh is not None:
        counts["I"] = StateMonitor(inh, "nspk", record=True, dt=cfg.rate_bin_s * second, name="count_i")
    w_mon = {"input": StateMonitor(syn_in, "w", record=True, dt=cfg.weight_snapshot_s * second, name="w_input")}
    if syn_ie is not None and cfg.condition != "inhib-fixed":
        w_mon["ie"] = StateMonitor(syn_ie, "w", record=True, dt=cfg.weight_snapshot_s * second, name="w_ie")
    tr_mon = StateMonitor(exc, ["m", "sigma2"], record=True, dt=cfg.trace_dt_s * second, name="traces_e")
    mons = [*spikes.values(), *counts.values(), *w_mon.values(), tr_mon]
    net = Network(*objs, *mons)

    def collect(t_now: float):
        """Everything recorded up to t_now as (Dataset, groups)."""
        data: dict[str, xr.DataArray] = {}
        n_in = 5 * cfg.n_per_population
        sizes = {"E": cfg.n_exc, "I": cfg.n_inh, "input": n_in}
        long = {"E": "excitatory cells", "I": "inhibitory cells", "input": "input neurons"}
        spk = {}
        for key, mon in spikes.items():
            t = np.asarray(mon.t[:] / second, dtype=np.float64)
            i = np.asarray(mon.i[:], dtype=np.int64)
            spk[key] = (t, i)
            data.update(spike_variables(key, t, i, sizes[key], long[key]))
        window = max(t_now - t_rec, 1e-12)
        for key, (t, i) in spk.items():
            r = np.bincount(i, minlength=sizes[key]) / window
            data[f"rate_window_{key}"] = xr.DataArray(r, dims=(f"neuron_{key}",), attrs={
                "units": "Hz", "long_name": f"rate of each of the {long[key]} in the recorded window"})
        for key, mon in counts.items():
            c = np.asarray(mon.nspk[:], dtype=np.float64).T  # (sample, neuron)
            tt = np.asarray(mon.t[:] / second)
            final = np.asarray((exc if key == "E" else inh).nspk[:], dtype=np.float64)
            c = np.vstack([c, final[None, :]])
            tt = np.append(tt, t_now)
            if len(tt) >= 2:
                rates = np.diff(c, axis=0) / np.diff(tt)[:, None]  # (bin, neuron)
                dim = f"rate_time_{key}"
                data[f"rate_{key}"] = xr.DataArray(rates, dims=(dim, f"neuron_{key}"), attrs={
                    "units": "Hz", "long_name": f"firing rate of each of the {long[key]} per bin"})
                data[f"population_rate_{key}"] = xr.DataArray(rates.mean(1), dims=(dim,), attrs={
                    "units": "Hz", "long_name": f"mean firing rate of the {long[key]} per bin"})
                data[dim] = xr.DataArray(tt[:-1], dims=(dim,), attrs={"units": "s", "long_name": "start of the bin"})
        for key, syn in (("input", syn_in), ("ie", syn_ie)):
            if syn is None:
                continue
            pre_i = np.asarray(syn.i[:], dtype=np.int32)
            post_j = np.asarray(syn.j[:], dtype=np.int32)
            sdim = f"synapse_{key}"
            data[f"w_{key}_pre"] = xr.DataArray(pre_i, dims=(sdim,), attrs={"long_name": "presynaptic index"})
            data[f"w_{key}_post"] = xr.DataArray(post_j, dims=(sdim,), attrs={"long_name": "postsynaptic index"})
            data[f"w_{key}_final"] = xr.DataArray(np.asarray(syn.w[:], dtype=np.float32), dims=(sdim,), attrs={
                "units": "1", "long_name": f"{key} weights at the end (conductance / leak conductance)"})
            if key in w_mon:
                mon = w_mon[key]
                snap = np.asarray(mon.w[:], dtype=np.float32).T  # (snapshot, synapse)
                tdim = f"snapshot_time_{key}"
                data[f"w_{key}"] = xr.DataArray(snap, dims=(tdim, sdim), attrs={
                    "units": "1", "long_name": f"{key} weights at the snapshot times"})
                data[tdim] = xr.DataArray(np.asarray(mon.t[:] / second), dims=(tdim,), attrs={"units": "s"})
        data["trace_time"] = xr.DataArray(np.asarray(tr_mon.t[:] / second), dims=("trace_time",),
                                          attrs={"units": "s"})
        data["rate_estimate_E"] = xr.DataArray(np.asarray(tr_mon.m[:]).T / cfg.tau_mean_s,
                                               dims=("trace_time", "neuron_E"), attrs={
                                                   "units": "Hz", "long_name": "LPL rate trace m / tau_mean"})
        data["sigma2_E"] = xr.DataArray(np.asarray(tr_mon.sigma2[:]).T, dims=("trace_time", "neuron_E"), attrs={
            "units": "Hz", "long_name": "LPL variance trace sigma2 (~ rate in Hz, erratum Issue #4)"})
        # inputs' rate time courses over the recorded window, 10 ms steps
        step = cfg.sample_ms * 1e-3
        rates_in = population_rates(cfg, t_now, step)[int(round(t_rec / step)):]  # (time, population)
        data["input_rate"] = xr.DataArray(rates_in, dims=("input_time", "population"), attrs={
            "units": "Hz", "long_name": "rate of each input population"})
        data["input_time"] = xr.DataArray(t_rec + np.arange(len(rates_in)) * step, dims=("input_time",),
                                          attrs={"units": "s"})
        data["input_population"] = xr.DataArray(np.repeat(np.arange(5), cfg.n_per_population),
                                                dims=("neuron_input",), attrs={"long_name": "population index"})
        ds = xr.Dataset(data, coords={"population": list(POPULATIONS)},
                        attrs={"simulated_until_s": float(t_now)})  # < duration_s in a partial (segment) file
        bin_s = 0.025
        x = binned_counts(*spk["E"], cfg.n_exc, t_rec, t_now, bin_s)  # (time, unit)
        rep = representation(x, layer="E", sample_dim="time", units="count", time_step_s=bin_s,
                             attrs={"t_start_s": t_rec, "bin_s": bin_s})
        rep = rep.assign_coords(time=t_rec + np.arange(x.shape[0]) * bin_s)
        rep["time"].attrs.update(units="s", long_name="start of the time bin")
        return ds, {"representations/E": rep}

    t_rec = max(0.0, cfg.duration_s - cfg.record_last_s)
    report = "stderr" if progress else None
    # two phases: without spike recording, then the analysis window with it; in runtime mode each phase is
    # cut into segments of segment_s and the results so far are handed to on_segment after each one
    seg = cfg.segment_s if (cfg.segment_s > 0 and not dev.standalone and on_segment is not None) else np.inf
    t_now = 0.0
    for length, record in ((t_rec, False), (cfg.duration_s - t_rec, True)):
        if length <= 0:
            continue
        for m in spikes.values():
            m.active = record
        left = length
        while left > 1e-9:
            chunk = min(seg, left)
            dev.run(net, chunk, report=report)
            t_now += chunk
            left -= chunk
            if np.isfinite(seg) and t_now < cfg.duration_s - 1e-9:
                on_segment(*collect(t_now))
    dev.finish()
    return collect(cfg.duration_s)


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
