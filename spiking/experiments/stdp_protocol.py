"""Fig. 6 of Halvagal & Zenke (2023): the STDP-pairing protocol of spiking LPL.

``sim_lpl_stdp_protocol.cpp`` / ``mk_spikes.py`` / ``notebooks/6 - STDP.ipynb`` (lpl.md section 4, "STDP
protocol"): one post neuron voltage-clamped at -51 mV and stepped to -20 mV for two steps at each pairing;
``n_pairings`` pairings at ``pairing_rate_hz`` from 0.1 s;
``n_pre`` presynaptic neurons, neuron j firing at t_post + d_j with d_j = linspace(-T, T, n_pre), so
delta_t = t_post - t_pre = -d_j; all-to-all LPL synapses, w0 = 0.5, eta = 5e-3, lambda = phi = 1, delta = 0,
tau_sigma2 = 300 s (the binary ignores ``--tau_sigma2``), m initialised to the prior rate and sigma2 to
``sigma2``; 200 s, no priming. Readout: dw = (w - w0) / w0.

Several conditions (sigma2, pairing rate, window, prior) can share one build: :func:`simulate_conditions`
gives each condition its own clamped neuron and presynaptic population in one network.

Clamp semantics (Auryn's ``VoltageClamp``, a device executed after the groups, the connections and their
traces in ``System::run``): the post cell is a full conductance neuron (:mod:`spiking.neurons`) that *receives*
its LPL synapses (``g_ampa += w``), and the clamp writes U as the last operation of every step. So every step
integrates leak and synaptic input from the clamp value, clips, tests the threshold (extra spikes appear when
the synaptic drive lifts U over -50 mV once theta has decayed), and f'(U) is read at that post-integration
voltage (about -50.5 mV during pairings, not exactly -51 mV). The clamp trace is ``post_voltage.dat`` of
``mk_spikes.py`` as Auryn's ``FileCurrentInjector`` reads it (linear interpolation between its points, one
value per step, value n written at the end of step n): -51 mV, -20 mV at the steps t_post - dt and t_post
(so the step t_post integrates from -20 mV and spikes), -51 mV again, after the last pairing a ramp from
-51 mV (t_last + 5 ms) to -60 mV (t_last + 10 ms), held until t_last + 200 s and 0 V beyond the file.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr

from bridge.config import check_positive, field_paths, get_path, replace_config
from bridge.errors import ConfigError
from spiking.neurons import NeuronConfig, check_steps
from spiking.rules.lpl import LPLConfig


#: the LPL constants of the protocol that differ from the Fig. 5 network's (run_stdp.sh, sim_lpl_stdp_protocol.cpp)
PROTOCOL_LPL = dict(
    eta=5e-3,                # run_stdp.sh
    delta=0.0,               # no transmitter-triggered term in the protocol
    tau_sigma2_s=300.0,      # constructor default: the binary ignores --tau_sigma2 20
    sigma2=0.1,              # initial variance trace: 0.1 Hebbian, 1 symmetric, 100 reversed window
    prior_rate_hz=10.0,      # m initialised to the prior rate (Fig. 6 STDP curves: 10 Hz)
    plasticity_start_s=0.0,  # no priming
)


@dataclass(frozen=True, kw_only=True)
class PairingProtocol:
    """Pairings, clamp and length of the STDP protocol (mk_spikes.py, run_stdp.sh, sweep_stdp.sh)."""

    duration_s: float = 200.0       # run_stdp.sh --simtime 200
    n_pre: int = 100                # mk_spikes.py
    window_ms: float = 50.0         # T: d_j = linspace(-T, T, n_pre) (rate sweep: 20 ms)
    pairing_rate_hz: float = 10.0   # rho (rate sweep: 0.1-50 Hz)
    n_pairings: int = 100           # mk_spikes.py
    first_pairing_s: float = 0.1    # mk_spikes.py
    clamp_mv: float = -51.0         # holding potential U_dep = U_hyp, mk_spikes.py
    step_mv: float = -20.0          # depolarising step U_spk that elicits the post spike, mk_spikes.py
    step_steps: int = 2             # U_spk at t_post - dt and t_post, mk_spikes.py
    end_mv: float = -60.0           # U_rest of post_voltage.dat after the last pairing, mk_spikes.py
    w0: float = 0.5                 # initial weight

    def __post_init__(self) -> None:
        check_positive(self, "n_pre", "window_ms", "pairing_rate_hz", "n_pairings", "w0", "step_steps")
        if self.duration_s <= 0:
            raise ConfigError(f"duration_s must be > 0, got {self.duration_s!r}")


@dataclass(frozen=True, kw_only=True)
class STDPProtocolConfig:
    """STDP-pairing protocol (sim_lpl_stdp_protocol.cpp); lpl.md section 4: neuron, LPL rule, protocol."""

    neuron: NeuronConfig = field(default_factory=NeuronConfig)
    rule: LPLConfig = field(default_factory=lambda: LPLConfig(**PROTOCOL_LPL))
    protocol: PairingProtocol = field(default_factory=PairingProtocol)

    def __post_init__(self) -> None:
        dt = self.neuron.dt_ms
        if self.protocol.first_pairing_s * 1e3 - self.protocol.window_ms < 2 * dt:
            raise ConfigError(f"first_pairing_s = {self.protocol.first_pairing_s!r} must exceed window_ms = "
                              f"{self.protocol.window_ms!r} ms by two steps (pre spikes before t = 0)")
        check_steps("pred_delay_ms", self.rule.pred_delay_ms, dt)


#: the experiment's config class
CONFIG = STDPProtocolConfig


def config(**changes) -> STDPProtocolConfig:
    """The protocol's config with ``changes`` (bare unique names or dotted paths), validated."""
    return replace_config(STDPProtocolConfig(), changes)


#: fields that may differ between conditions sharing one build
PER_CONDITION = ("rule.sigma2", "rule.prior_rate_hz", "protocol.window_ms", "protocol.pairing_rate_hz",
                 "protocol.n_pairings")

CLAMP_EQS = """
kick : 1
t_ramp : second (constant)
t_file_end : second (constant)
"""
#: the clamp, last operation of the step (slot ``end``, after the LPL updates that read f'(U))
CLAMP = """
v = int(kick > 0) * step_v + int(kick <= 0) * int(t < t_file_end) * (clamp_v + clip((t - t_ramp) / ramp_len, 0, 1) * (end_v - clamp_v))
kick = clip(kick - 1, 0, 1e9)
"""
#: run_regularly order of the clamp in the ``end`` slot (after the LPL code, orders 0-3)
CLAMP_ORDER = 10


def spike_schedule(cfg: STDPProtocolConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairing times and presynaptic spikes of one condition, on the dt grid.

    Returns
    -------
    post_steps : array of int, shape (n_pairings,)
        Step indices of the post spikes.
    pre_index, pre_steps : arrays of int
        Presynaptic neuron and step of every pre spike.
    """
    dt = cfg.neuron.dt_ms * 1e-3
    t_post = cfg.protocol.first_pairing_s + np.arange(cfg.protocol.n_pairings) / cfg.protocol.pairing_rate_hz
    post_steps = np.round(t_post / dt).astype(np.int64)
    d = np.linspace(-cfg.protocol.window_ms, cfg.protocol.window_ms, cfg.protocol.n_pre) * 1e-3
    d_steps = np.round(d / dt).astype(np.int64)
    pre_steps = (post_steps[:, None] + d_steps[None, :]).ravel()  # (pairing, pre) -> flat
    pre_index = np.tile(np.arange(cfg.protocol.n_pre), cfg.protocol.n_pairings)
    return post_steps, pre_index, pre_steps


def delta_t_ms(cfg: STDPProtocolConfig) -> np.ndarray:
    """delta_t = t_post - t_pre of each presynaptic neuron, in ms on the dt grid (= -d_j)."""
    d = np.linspace(-cfg.protocol.window_ms, cfg.protocol.window_ms, cfg.protocol.n_pre)
    return -np.round(d / cfg.neuron.dt_ms) * cfg.neuron.dt_ms


def simulate_conditions(cfgs: Sequence[STDPProtocolConfig], *, seed: int, dev) -> list[xr.Dataset]:
    """Run several protocol conditions in one network on the active device; one Dataset per condition.

    All configs must agree on every field except :data:`PER_CONDITION`.
    """
    from brian2 import Network, SpikeGeneratorGroup, Synapses, ms, mV, second

    from spiking.inputs import spike_train_group
    from spiking.neurons import lif_group
    from spiking.rules import lpl

    base = cfgs[0]
    for c in cfgs[1:]:
        for path in field_paths(base):
            if path not in PER_CONDITION and get_path(c, path) != get_path(base, path):
                raise ConfigError(f"conditions sharing one build must agree on {path!r}")
    dt_s = base.neuron.dt_ms * 1e-3
    n_pre = base.protocol.n_pre
    k = len(cfgs)
    # generators fire one step early: the relay neuron spikes one step after its input arrives
    pre_idx, pre_t, post_idx, post_t = [], [], [], []
    for c_i, c in enumerate(cfgs):
        ps, pi, pt = spike_schedule(c)
        pre_idx.append(pi + c_i * n_pre)
        pre_t.append(pt - 1)
        post_idx.append(np.full(len(ps), c_i))
        post_t.append(ps - 1)
    pre_idx, pre_t = np.concatenate(pre_idx), np.concatenate(pre_t)
    post_idx, post_t = np.concatenate(post_idx), np.concatenate(post_t)
    pre, *pre_drive = spike_train_group(k * n_pre, pre_idx, pre_t + 1, base.neuron.dt_ms, extra_eqs=lpl.PRE_EQS,
                                        name="pre")
    gen_post = SpikeGeneratorGroup(k, post_idx, post_t * dt_s * 1e3 * ms, name="gen_post")
    post = lif_group(k, base.neuron, name="post", extra_eqs=CLAMP_EQS + lpl.POST_EQS, extra_reset=lpl.POST_RESET)
    prot = base.protocol
    post.namespace.update(clamp_v=prot.clamp_mv * mV, step_v=prot.step_mv * mV, end_v=prot.end_mv * mV,
                          ramp_len=5 * ms)
    # per condition: the ramp to end_mv starts 5 ms after its last pairing; the file ends 200 s after it
    last = np.array([spike_schedule(c)[0][-1] for c in cfgs]) * dt_s
    post.t_ramp = (last + 5e-3) * second
    post.t_file_end = (last + 200.0) * second
    post.v = base.protocol.clamp_mv * mV
    drive_post = Synapses(gen_post, post, on_pre=f"kick_post = {int(base.protocol.step_steps)}", name="drive_post")
    drive_post.connect(j="i", namespace={})
    i = np.arange(k * n_pre)
    j = i // n_pre
    objs = lpl.synapses(pre, post, base.rule, connect=(i, j), w0=base.protocol.w0, delay_ms=base.neuron.delay_ms,
                        dt_ms=base.neuron.dt_ms, name="lpl")
    post.run_regularly(CLAMP, when="end", order=CLAMP_ORDER, name="clamp")
    # per-condition initial traces (lpl_synapses set the base values)
    post.sigma2 = np.array([c.rule.sigma2 for c in cfgs])
    post.m = np.array([c.rule.prior_rate_hz * c.rule.tau_mean_s for c in cfgs])
    net = Network(pre, *pre_drive, gen_post, post, drive_post, *objs)
    dev.run(net, base.protocol.duration_s)
    dev.finish()
    syn = objs[0]
    w = np.asarray(syn.w[:], dtype=np.float64)
    si, sj = np.asarray(syn.i[:]), np.asarray(syn.j[:])
    w_mat = np.zeros((k, n_pre))
    w_mat[sj, si - sj * n_pre] = w  # (condition, pre)
    sigma2_end = np.asarray(post.sigma2[:], dtype=np.float64)
    rate_end = np.asarray(post.m[:], dtype=np.float64) / base.rule.tau_mean_s
    nspk = np.asarray(post.nspk[:], dtype=np.float64)
    out = []
    for c_i, c in enumerate(cfgs):
        dt_ms_ = delta_t_ms(c)
        order = np.argsort(dt_ms_)
        dw = (w_mat[c_i] - c.protocol.w0) / c.protocol.w0
        ds = xr.Dataset(
            {"dw": ("delta_t", dw[order], {"units": "1", "long_name": "relative weight change (w - w0) / w0"}),
             "w": ("delta_t", w_mat[c_i][order], {"units": "1", "long_name": "final weight"}),
             "sigma2_end": ((), sigma2_end[c_i], {"units": "Hz", "long_name": "variance trace at the end"}),
             "rate_estimate_end": ((), rate_end[c_i], {"units": "Hz", "long_name": "rate trace m/tau_mean"}),
             "post_spike_count": ((), nspk[c_i], {"units": "1", "long_name": "post spikes (pairings plus extra spikes)"})},
            coords={"delta_t": ("delta_t", dt_ms_[order], {"units": "ms",
                                                          "long_name": "t_post - t_pre"})})
        out.append(ds)
    return out


def simulate(cfg: STDPProtocolConfig, *, seed: int = 0, device: str = "cpp_standalone", build_root=None,
             threads: int = 1, progress: bool = False) -> tuple[xr.Dataset, dict[str, xr.Dataset]]:
    """One STDP-protocol run: ``dw`` over ``delta_t`` with the run's provenance and timing attributes."""
    from spiking.devices import use_device
    from spiking.experiments.common import run_attrs

    with use_device(device, seed=seed, dt_ms=cfg.neuron.dt_ms, build_root=build_root, threads=threads) as dev:
        (ds,) = simulate_conditions([cfg], seed=seed, dev=dev)
        ds.attrs.update(run_attrs(cfg, experiment="stdp-protocol", seed=seed, dev=dev))
    return ds, {}


def sweep(cfgs: Sequence[STDPProtocolConfig], *, seed: int = 0, device: str = "cpp_standalone", build_root=None,
          labels: Sequence[Any] | None = None) -> tuple[list[xr.Dataset], dict[str, float]]:
    """Several conditions in one build (windows for several sigma2, pairing rates, priors)."""
    from spiking.devices import use_device

    with use_device(device, seed=seed, dt_ms=cfgs[0].neuron.dt_ms, build_root=build_root) as dev:
        out = simulate_conditions(list(cfgs), seed=seed, dev=dev)
        timing = {"build_time_s": dev.build_time_s, "wall_time_s": dev.wall_time_s,
                  "simulated_time_s": dev.simulated_time_s}
    return out, timing


def summary(ds: xr.Dataset) -> list[str]:
    """Lines for the CLI: dw at the window points the paper quotes."""
    pts = (-30.0, -10.0, 0.0, 12.0, 20.0)
    vals = ", ".join(f"dw({p:+g} ms)={float(ds['dw'].sel(delta_t=p, method='nearest')):+.3f}" for p in pts)
    return [vals]
