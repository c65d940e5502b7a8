"""The five Poisson input populations of Halvagal & Zenke (2023), Fig. 5 (``mk_rates.py``).

The population names and their order are :data:`bridge.fig5.POPULATIONS`.

Every neuron of a population shares one rate trace, sampled every ``sample_ms`` (10 ms), linearly
interpolated and looped (lpl.md section 4, "Input"):

- P0: constant ``base_rate_hz`` (5 Hz);
- P1: max(min_rate, base + amp * s(t)) with s the standardised sum_{i<128} 1.1^-i a_i sin(2 pi i (t + b_i) / T),
  a_i, b_i ~ U(0, 1), T = 3 s, the file being ``n_periods`` = 11 periods long;
- P1ctl: the samples of P1 randomly permuted in time (same marginal, no slow structure);
- P2: the same with an independent draw and T = 3 + 1/13 s; P2ctl: P2 permuted likewise.

Draws (``input_draw``): ``"mk_rates"`` (default, the original) repeats ``mk_rates.py`` exactly: the legacy
``numpy.random.seed(42)`` stream (``RandomState``), in its call order (a, b of P1 from one ``rand(128, 2)``,
P1 written, shuffled in place for P1ctl, then P2 and P2ctl), times ``arange(0, 11 T, 10 ms)``, the
standardisation (s - mean) / (std + 1e-4), ``clip(., 0.1, inf)``, and the values rounded as the rate files
print them (``%e``); ``"default_rng"`` is the earlier port's draw from ``numpy.random.default_rng(seed)``
(same statistics, other traces). :func:`population_rates` is the pure function the rate twin of the spiking
network (issue 7) uses to get the very same input signals.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from bridge.config import check_positive
from bridge.errors import ConfigError


@dataclass(frozen=True, kw_only=True)
class InputConfig:
    """Constants of the input populations (mk_rates.py, sim_lpl_spiking.cpp)."""

    n_per_population: int = 100       # 5 x 100 = 500 inputs
    base_rate_hz: float = 5.0         # mk_rates.py: mean rate
    amp_rate_hz: float = 4.0          # mk_rates.py: 5 + 4 s(t)
    min_rate_hz: float = 0.1          # mk_rates.py: max(0.1, .)
    period1_s: float = 3.0            # T of P1
    period2_s: float = 3.0 + 1.0 / 13.0  # T of P2 (incommensurate with P1)
    n_periods: int = 11               # length of the rate files in periods
    n_harmonics: int = 128            # sum over i < 128
    harmonic_decay: float = 1.1       # 1.1^-i
    sample_ms: float = 10.0           # sampling of the rate files
    input_seed: int = 42              # mk_rates.py seeds numpy with 42 (fixed across network seeds)
    input_draw: str = "mk_rates"      # "mk_rates": RandomState and call order of mk_rates.py; "default_rng"

    def __post_init__(self) -> None:
        validate_inputs(self)


@dataclass(frozen=True, kw_only=True)
class PoissonInputConfig:
    """Homogeneous Poisson inputs (Song et al. 2000: 1000 excitatory inputs)."""

    n_inputs: int = 1000           # Song et al. 2000: 1000 excitatory inputs
    input_rate_hz: float = 15.0    # Brian2 example (Song et al. use 10-40 Hz)

    def __post_init__(self) -> None:
        check_positive(self, "n_inputs", "input_rate_hz")


def validate_inputs(cfg: Any) -> None:
    check_positive(cfg, "n_per_population", "base_rate_hz", "period1_s", "period2_s", "n_periods",
                   "n_harmonics", "harmonic_decay", "sample_ms")
    if getattr(cfg, "input_draw", "mk_rates") not in ("mk_rates", "default_rng"):
        raise ConfigError(f"input_draw must be 'mk_rates' or 'default_rng', got {cfg.input_draw!r}")
    if cfg.min_rate_hz < 0 or cfg.amp_rate_hz < 0:
        raise ConfigError(f"min_rate_hz and amp_rate_hz must be >= 0, got {cfg.min_rate_hz!r}, "
                          f"{cfg.amp_rate_hz!r}")


def _signal(rng: np.random.Generator, cfg: Any, period_s: float) -> np.ndarray:
    """One standardised slow signal sampled every sample_ms over n_periods periods; shape (n_samples,)."""
    dt = cfg.sample_ms * 1e-3
    t = np.arange(int(round(cfg.n_periods * period_s / dt))) * dt
    a = rng.uniform(size=cfg.n_harmonics)
    b = rng.uniform(size=cfg.n_harmonics)
    i = np.arange(cfg.n_harmonics)
    s = ((cfg.harmonic_decay ** -i * a)[None, :]
         * np.sin(2 * np.pi * i[None, :] * (t[:, None] + b[None, :]) / period_s)).sum(1)  # (time,)
    return (s - s.mean()) / s.std()


def _mk_rates(cfg: Any, seed: int) -> list[np.ndarray]:
    """The rate files of mk_rates.py: legacy RandomState(seed), its call order and its arithmetic."""
    rs = np.random.RandomState(seed)
    dt = cfg.sample_ms * 1e-3
    out = []
    for period in (cfg.period1_s, cfg.period2_s):
        theta = rs.rand(cfg.n_harmonics, 2)
        times = np.arange(0, period * cfg.n_periods, dt)
        signal = 0.0
        for i, (a, b) in enumerate(theta):
            signal += 1.0 / cfg.harmonic_decay ** i * a * np.sin(2 * np.pi * i * (times + b) / period)
        signal = (signal - np.mean(signal)) / (np.std(signal) + 1e-4)
        values = np.clip(cfg.amp_rate_hz * signal + cfg.base_rate_hz, cfg.min_rate_hz, np.inf)
        printed = np.array([float("%e" % v) for v in values])
        rs.shuffle(values)  # the control file, shuffled in place after the signal file was written
        out += [printed, np.array([float("%e" % v) for v in values])]
    r1, r1c, r2, r2c = out
    return [np.full(len(r1), float(cfg.base_rate_hz)), r1, r1c, r2, r2c]


def rate_samples(cfg: Any, seed: int | None = None) -> list[np.ndarray]:
    """The five looped rate files (Hz), each sampled every ``sample_ms``; lengths differ (P1 vs P2)."""
    if getattr(cfg, "input_draw", "mk_rates") == "mk_rates":
        return _mk_rates(cfg, cfg.input_seed if seed is None else seed)
    rng = np.random.default_rng(cfg.input_seed if seed is None else seed)
    r1 = np.maximum(cfg.min_rate_hz, cfg.base_rate_hz + cfg.amp_rate_hz * _signal(rng, cfg, cfg.period1_s))
    r2 = np.maximum(cfg.min_rate_hz, cfg.base_rate_hz + cfg.amp_rate_hz * _signal(rng, cfg, cfg.period2_s))
    r1c = rng.permutation(r1)
    r2c = rng.permutation(r2)
    r0 = np.full(len(r1), float(cfg.base_rate_hz))
    return [r0, r1, r1c, r2, r2c]


def _looped_interp(samples: np.ndarray, sample_s: float, t: np.ndarray) -> np.ndarray:
    """Linear interpolation of a looped trace (the last sample interpolates back to the first)."""
    n = len(samples)
    pos = (np.asarray(t) / sample_s) % n
    k = np.floor(pos).astype(np.int64)
    frac = pos - k
    return samples[k % n] * (1 - frac) + samples[(k + 1) % n] * frac


def population_rates(cfg: Any, duration_s: float, dt_s: float, seed: int | None = None) -> np.ndarray:
    """Rates of the five populations, shape (time, population), in Hz, at t = 0, dt, ... < duration.

    Parameters
    ----------
    cfg : InputConfig or an experiment config with its fields
    duration_s, dt_s : float
        Time span and step of the returned trace.
    seed : int, optional
        Seed of the signal draws (default ``cfg.input_seed``, like the original fixed rate files).
    """
    if duration_s < 0 or dt_s <= 0:
        raise ConfigError(f"population_rates needs duration_s >= 0 and dt_s > 0, got {duration_s!r}, {dt_s!r}")
    t = np.arange(int(np.floor(duration_s / dt_s + 1e-9))) * dt_s
    sample_s = cfg.sample_ms * 1e-3
    return np.stack([_looped_interp(r, sample_s, t) for r in rate_samples(cfg, seed)], axis=1)


def rate_table(cfg: Any, table_dt_s: float = 1e-3, seed: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Interpolated rate files on a fine grid for a Brian2 ``TimedArray``; padded to a common length.

    Returns
    -------
    table : array, shape (n_table, 5)
        Rates in Hz; column p holds one loop of population p (its tail padded with its first value).
    loop_s : array, shape (5,)
        Loop length of each population in seconds (a multiple of table_dt_s).
    """
    sample_s = cfg.sample_ms * 1e-3
    samples = rate_samples(cfg, seed)
    lengths = [int(round(len(r) * sample_s / table_dt_s)) for r in samples]
    n = max(lengths)
    table = np.empty((n, len(samples)))
    for p, (r, m) in enumerate(zip(samples, lengths)):
        table[:m, p] = _looped_interp(r, sample_s, np.arange(m) * table_dt_s)
        table[m:, p] = table[0, p]
    return table, np.array(lengths) * table_dt_s


INPUT_EQS = """
pop : integer (constant)
loop_len : second (constant)
t_off : second (shared)
rate = rates_table((t + t_off) % loop_len, pop) : Hz
"""


def input_group(cfg: Any, *, extra_eqs: str = "", name: str = "inputs", table_dt_ms: float = 1.0):
    """A ``NeuronGroup`` of 5 x n Poisson neurons firing with probability rate(t) dt each step.

    A ``NeuronGroup`` (not a ``PoissonGroup``) so that plasticity rules can keep presynaptic traces in it
    (``extra_eqs``). The rates come from one 2-D ``TimedArray`` indexed by (t mod loop, population).
    """
    from brian2 import Hz, NeuronGroup, TimedArray, ms, second

    table, loops = rate_table(cfg, table_dt_ms * 1e-3)
    ta = TimedArray(table * Hz, dt=table_dt_ms * ms, name=f"{name}_rates")
    n = cfg.n_per_population
    g = NeuronGroup(5 * n, INPUT_EQS + extra_eqs, threshold="rand() < rate * dt", namespace={"rates_table": ta},
                    name=name)
    pop = np.repeat(np.arange(5), n)
    g.pop = pop
    g.loop_len = loops[pop] * second
    g.t_off = 0 * second  # simulated time = t + t_off (segments of a standalone run)
    return g


def spike_train_group(n: int, indices, steps, dt_ms: float, *, extra_eqs: str = "", extra_reset: str = "",
                      name: str = "relay"):
    """A ``NeuronGroup`` of ``n`` neurons that fire exactly at the given steps (given spike trains).

    A ``SpikeGeneratorGroup`` cannot hold plasticity traces, so it drives a relay ``NeuronGroup`` (which can,
    through ``extra_eqs``): the generator fires one step early and each of its spikes adds one to the relay's
    pending count ``fire``; the relay fires while ``fire > 0`` and its reset decrements the count, so spikes
    in consecutive steps are all kept.

    Parameters
    ----------
    n : int
    indices, steps : arrays of int
        Neuron index and step index (>= 1) of every spike.
    dt_ms : float

    Returns
    -------
    list of Brian2 objects
        ``[relay, generator, drive]``; the relay is the group to connect from.
    """
    from brian2 import NeuronGroup, SpikeGeneratorGroup, Synapses, ms

    steps = np.asarray(steps, dtype=np.int64)
    if steps.size and steps.min() < 1:
        raise ConfigError(f"spike_train_group {name!r}: spikes must be at step >= 1, got step {steps.min()}")
    gen = SpikeGeneratorGroup(n, np.asarray(indices, dtype=np.int64), (steps - 1) * dt_ms * ms, name=f"{name}_gen")
    relay = NeuronGroup(n, extra_eqs + "\nfire : 1\n", threshold="fire > 0",
                        reset="fire -= 1" + ("\n" + extra_reset if extra_reset else ""), namespace={}, name=name)
    drive = Synapses(gen, relay, on_pre="fire_post += 1", name=f"{name}_drive")
    drive.connect(j="i", namespace={})
    return [relay, gen, drive]
