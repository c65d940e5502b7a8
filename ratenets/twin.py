"""The rate twin of the spiking LPL network of Halvagal & Zenke (2023), Fig. 5, trained with rate LPL in torch.

The spiking network (``spiking``, issue #6) has 500 Poisson inputs in five populations of 100 (P0 constant
5 Hz; P1, P2 slow signals with periods 3 s and 3 + 1/13 s; P1ctl, P2ctl their time-shuffled controls),
100 excitatory (E) and 25 inhibitory (I) conductance-based LIF neurons, plastic input->E synapses under the
spiking LPL rule and plastic I->E synapses under Vogels' iSTDP. The twin keeps **the same inputs and the
same connectivity statistics** and swaps the neurons and the rules for their rate counterparts:

* Inputs: every input neuron emits Poisson counts in time bins of ``bin_s`` (25 ms, the analysis bins of
  the paper) at its population's rate, drawn from the run's seed; rates are normalised by
  ``input_rate_unit_hz`` (5 Hz, so P0 is 1). The rate time courses come from the caller (the spiking
  package's input generator), so ratenets never imports spiking.
* Connectivity (Halvagal & Zenke 2023, Methods; ``sim_lpl_spiking.cpp``): input->E Bernoulli p = 0.1,
  w0 = 0.15, w in [0, 1]; E->I a fixed mask with P(e->k) = exp(-(e - c_k)^2 / 20^2), c_k = linspace(0, 100,
  25), weight 0.5; I->E p = 0.5, w0 = 0.5, w in [0, 1]; I->I p = 0.1, w = 0.4; no E->E. All masks are drawn
  from the seed (the original E->I mask script was unseeded).
* Neurons: threshold-linear rate units at the fixed point of the E-I loop within each bin (the LIF
  membrane, 20 ms, is fast next to the slow signals' 3 s periods), ``r_E = relu(g_in W_in x - g_ie W_ie r_I
  - theta_E)``, ``r_I = relu(g_ei W_ei r_E - g_ii W_ii r_I - theta_I)``, in units of ``rate_unit_hz``
  (10 Hz). The gains and thresholds are ours (no rate network in the paper), set so that E starts near a
  few Hz and I near the paper's 17 Hz.
* Learning: the input->E weights minimise the rate LPL objective (:func:`ratenets.losses.lpl.lpl_terms`,
  erratum form of the decorrelation term) on the E rates of consecutive time bins, z(t) against the
  stop-gradient z(t - bin) (the paper's Eq. 4 form; the spiking rule uses a 20 ms delay, the closest bin is
  25 ms), with mean and variance over a window of ``window_s`` of consecutive bins (the spiking rule
  estimates them with 600 s / 30 s traces, which a window of several signal periods stands in for). Adam,
  then clipping to [0, w_max] and to the connectivity mask after every step.
* Inhibitory plasticity: the rate form of Vogels et al. (2011) symmetric iSTDP with the spiking
  network's constants: dw/dt = zeta r_I (2 tau r_E - alpha) per spike pair gives the target E rate
  kappa = alpha / (2 tau) = 10 Hz (alpha = 2 kappa tau = 0.4, tau = 20 ms; erratum sign ``-2 kappa tau``).

The populations, the 25 ms bin, the pooled input weights and the selectivities are :mod:`bridge.fig5`'s, the
definitions the spiking network's analysis uses too.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
import xarray as xr

from bridge.config import check_positive, check_range, to_json
from bridge.errors import ConfigError, DataError, DivergenceError
from bridge.io import provenance
from bridge.fig5 import BIN_S, POPULATIONS, dense_population_weights, selectivity_table
from bridge.measures import participation_ratio
from bridge.reps import representation
from ratenets.train import progress as _progress

@dataclass(frozen=True, kw_only=True)
class RateTwinConfig:
    """All constants of the rate twin; connectivity values from Halvagal & Zenke (2023), Methods."""

    # network size and connectivity (sim_lpl_spiking.cpp, run_snn.sh)
    inputs_per_population: int = 100     # 5 populations x 100 Poisson inputs
    n_exc: int = 100                     # 100 E cells
    n_inh: int = 25                      # 25 I cells
    p_in: float = 0.1                    # input->E Bernoulli connection probability
    w_in0: float = 0.15                  # initial input->E weight
    w_max: float = 1.0                   # input->E and I->E weights clipped to [0, w_max]
    ei_width: float = 20.0               # E->I mask P(e->k) = exp(-(e - c_k)^2 / ei_width^2)
    w_ei: float = 0.5                    # E->I weight
    p_ie: float = 0.5                    # I->E connection probability
    w_ie0: float = 0.5                   # initial I->E weight
    p_ii: float = 0.1                    # I->I connection probability
    w_ii: float = 0.4                    # I->I weight
    # rate neurons (ours: the paper has no rate version of this network)
    bin_s: float = BIN_S                 # time bin, the paper's 25 ms analysis bins (bridge.fig5)
    input_rate_unit_hz: float = 5.0      # input rates are divided by this (P0 = 1)
    rate_unit_hz: float = 10.0           # a model rate of 1 is this many Hz
    g_in: float = 0.2                    # gain of the input drive
    g_ei: float = 0.2                    # gain of E->I
    g_ie: float = 0.05                   # gain of I->E
    g_ii: float = 0.05                   # gain of I->I
    theta_exc: float = 0.8               # E threshold
    theta_inh: float = 0.0               # I threshold
    fixed_point_steps: int = 30          # damped iterations of the E-I loop per bin
    damping: float = 0.5                 # step size of those iterations
    # rate LPL (Halvagal & Zenke 2023, Eqs. 4-6 with the erratum's decorrelation term)
    pred_coeff: float = 1.0              # predictive term
    hebb_coeff: float = 1.0              # Hebbian (log-variance) term
    decorr_coeff: float = 0.0            # the spiking rule (Eq. 18) has no decorrelation term: inhibition
                                         # decorrelates; 10 (the deep nets' value) favours private input noise
    var_eps: float = 1e-4                # epsilon in log(sigma^2 + eps)
    window_s: float = 12.0               # bins per LPL batch (mean/variance window), about 4 signal periods
    optimizer: Literal["adam", "sgd"] = "adam"  # ours; sgd keeps the gradient's relative sizes, as the local rule
    lr: float = 1e-2                     # learning rate of the input->E weights (ours)
    epochs: int = 10                     # passes over the training input (ours)
    # inhibitory plasticity (Vogels et al. 2011 in rate form; zeta = 1e-3, kappa = 10 Hz in the spiking net)
    inhibition: Literal["plastic", "fixed", "off"] = "plastic"
    istdp_lr: float = 1e-3               # zeta per window step
    target_rate_hz: float = 10.0         # kappa = alpha / (2 tau) with alpha = 0.4, tau = 20 ms

    def __post_init__(self) -> None:
        check_positive(self, "inputs_per_population", "n_exc", "bin_s", "input_rate_unit_hz", "rate_unit_hz",
                       "w_max", "ei_width", "fixed_point_steps", "window_s", "lr", "epochs", "var_eps")
        if self.n_inh < 0:
            raise ConfigError(f"n_inh must be >= 0, got {self.n_inh}")
        for name in ("p_in", "p_ie", "p_ii"):
            check_range(name, getattr(self, name), 0.0, 1.0)
        check_range("damping", self.damping, 0.0, 1.0, lo_open=True)
        for name in ("w_in0", "w_ei", "w_ie0", "w_ii", "g_in", "g_ei", "g_ie", "g_ii", "pred_coeff",
                     "hebb_coeff", "decorr_coeff", "istdp_lr", "target_rate_hz"):
            v = getattr(self, name)
            if not (v >= 0 and math.isfinite(v)):
                raise ConfigError(f"{name} must be a finite number >= 0, got {v!r}")
        if self.w_in0 > self.w_max or self.w_ie0 > self.w_max:
            raise ConfigError(f"w_in0 ({self.w_in0}) and w_ie0 ({self.w_ie0}) must be <= w_max ({self.w_max})")
        if self.pred_coeff == 0 and self.hebb_coeff == 0 and self.decorr_coeff == 0:
            raise ConfigError("pred_coeff, hebb_coeff and decorr_coeff are all 0, so there is nothing to learn")
        if self.window_s < 4 * self.bin_s:
            raise ConfigError(f"window_s must hold at least 4 bins of {self.bin_s} s, got {self.window_s}")

    @property
    def window_bins(self) -> int:
        return int(round(self.window_s / self.bin_s))


class RateTwin:
    """The rate network: masks and weights drawn from one seed; E rates as a differentiable function of inputs.

    Parameters
    ----------
    config : RateTwinConfig
    n_populations : int
        Number of input populations (5 in the Fig. 5 network).
    seed : int
    device : torch.device
    """

    def __init__(self, config: RateTwinConfig, n_populations: int = 5, *, seed: int = 0,
                 device: torch.device | str = "cpu") -> None:
        self.config = c = config
        self.device = torch.device(device)
        self.seed = int(seed)
        self.n_populations = int(n_populations)
        self.n_in = c.inputs_per_population * self.n_populations
        self.gen = torch.Generator().manual_seed(self.seed)
        g = self.gen
        # (exc, input) Bernoulli mask of input->E synapses
        self.mask_in = (torch.rand(c.n_exc, self.n_in, generator=g) < c.p_in).float()
        e = torch.arange(c.n_exc, dtype=torch.float32)
        centres = torch.linspace(0, c.n_exc, c.n_inh) if c.n_inh else torch.zeros(0)
        p_ei = torch.exp(-((e[None, :] - centres[:, None]) ** 2) / c.ei_width ** 2)  # (inh, exc)
        self.mask_ei = (torch.rand(c.n_inh, c.n_exc, generator=g) < p_ei).float()
        self.mask_ie = (torch.rand(c.n_exc, c.n_inh, generator=g) < c.p_ie).float()
        mask_ii = (torch.rand(c.n_inh, c.n_inh, generator=g) < c.p_ii).float()
        mask_ii.fill_diagonal_(0.0)
        self.w_in = (c.w_in0 * self.mask_in).to(self.device).requires_grad_()
        self.w_ie = (c.w_ie0 * self.mask_ie).to(self.device)
        self.w_ei = (c.w_ei * self.mask_ei).to(self.device)
        self.w_ii = (c.w_ii * mask_ii).to(self.device)
        self.mask_in = self.mask_in.to(self.device)
        self.mask_ie = self.mask_ie.to(self.device)
        opt_cls = torch.optim.Adam if c.optimizer == "adam" else torch.optim.SGD
        self.opt = opt_cls([self.w_in], lr=c.lr)

    # --- inputs and dynamics ------------------------------------------------------------------------------
    def input_population(self) -> np.ndarray:
        """The population index of every input neuron, shape (n_in,)."""
        return np.repeat(np.arange(self.n_populations), self.config.inputs_per_population)

    def poisson_inputs(self, rates_hz: np.ndarray, gen: torch.Generator) -> torch.Tensor:
        """Normalised Poisson input rates ``(time, input)`` from population rates ``(time, population)`` in Hz.

        Each input neuron's count in a bin is Poisson(rate * bin_s); the returned value is
        count / bin_s / input_rate_unit_hz.
        """
        c = self.config
        lam = torch.as_tensor(np.asarray(rates_hz, dtype=np.float32) * c.bin_s)  # (time, population)
        lam = lam.repeat_interleave(c.inputs_per_population, dim=1)                # (time, input)
        counts = torch.poisson(lam, generator=gen)
        return (counts / (c.bin_s * c.input_rate_unit_hz)).to(self.device)

    def rates(self, x: torch.Tensor, w_in: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """E and I rates ``(time, n_exc)``, ``(time, n_inh)`` (units of rate_unit_hz) for inputs ``(time, n_in)``.

        Every bin is independent: the rates sit at the fixed point of the E-I loop, found by damped
        iteration from zero.
        """
        c = self.config
        w = self.w_in if w_in is None else w_in
        drive = c.g_in * (x @ w.T)  # (time, exc)
        r_e = torch.relu(drive - c.theta_exc)
        if c.n_inh == 0 or c.inhibition == "off":
            return r_e, torch.zeros(x.shape[0], c.n_inh, device=x.device)
        r_i = torch.zeros(x.shape[0], c.n_inh, device=x.device)
        a = c.damping
        for _ in range(c.fixed_point_steps):
            new_i = torch.relu(c.g_ei * (r_e @ self.w_ei.T) - c.g_ii * (r_i @ self.w_ii.T) - c.theta_inh)
            r_i = (1 - a) * r_i + a * new_i
            new_e = torch.relu(drive - c.g_ie * (r_i @ self.w_ie.T) - c.theta_exc)
            r_e = (1 - a) * r_e + a * new_e
        return r_e, r_i

    # --- learning -----------------------------------------------------------------------------------------
    def lpl_loss(self, z: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """Rate LPL on a window of E rates ``(time, exc)``: z(t) vs SG z(t - bin), window mean and variance."""
        from ratenets.losses.lpl import lpl_loss, lpl_terms

        c = self.config
        terms = lpl_terms(z[1:], z[:-1], eps=c.var_eps, stop_gradient=True)
        loss = lpl_loss(terms, c.pred_coeff, c.hebb_coeff, c.decorr_coeff)
        return loss, {k: float(v.detach()) for k, v in terms.items()}

    def train_step(self, x: torch.Tensor) -> dict[str, float]:
        """One Adam step of the input->E weights on a window ``(time, input)``, then iSTDP and clipping."""
        c = self.config
        r_e, r_i = self.rates(x)
        loss, terms = self.lpl_loss(r_e)
        if not torch.isfinite(loss):
            raise DivergenceError(f"rate twin LPL loss is {float(loss)}; lower lr (now {c.lr})")
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        with torch.no_grad():
            self.w_in.mul_(self.mask_in).clamp_(0.0, c.w_max)
            if c.inhibition == "plastic" and c.n_inh:
                # rate-form Vogels iSTDP: dW_ie[e, k] ~ r_I[k] (r_E[e] - kappa), mean over the window's bins
                re, ri = r_e.detach(), r_i.detach()
                target = c.target_rate_hz / c.rate_unit_hz
                dw = (re - target).T @ ri / re.shape[0]  # (exc, inh)
                self.w_ie.add_(c.istdp_lr * dw).mul_(self.mask_ie).clamp_(0.0, c.w_max)
        return {"loss": float(loss.detach()), **terms, "rate_exc_hz": float(r_e.detach().mean()) * c.rate_unit_hz,
                "rate_inh_hz": float(r_i.detach().mean()) * c.rate_unit_hz if c.n_inh else 0.0}

    def fit(self, rates_hz: np.ndarray, *, progress: bool = False) -> list[dict[str, float]]:
        """Train on population rates ``(time, population)`` in Hz at ``bin_s`` resolution; one dict per epoch.

        Every epoch draws fresh Poisson inputs from the twin's generator and walks the time course in
        consecutive windows of ``window_s``.
        """
        c = self.config
        rates_hz = _check_rates(rates_hz, self.n_populations)
        nb = rates_hz.shape[0] // c.window_bins
        if nb < 1:
            raise ConfigError(f"the training input lasts {rates_hz.shape[0] * c.bin_s:.3g} s, shorter than one "
                              f"LPL window (window_s = {c.window_s} s)")
        history = []
        for epoch in range(1, c.epochs + 1):
            x_all = self.poisson_inputs(rates_hz[:nb * c.window_bins], self.gen)  # (time, input)
            sums: dict[str, float] = {}
            for b in _progress(range(nb), desc=f"rate twin epoch {epoch}", enabled=progress):
                out = self.train_step(x_all[b * c.window_bins:(b + 1) * c.window_bins])
                for k, v in out.items():
                    sums[k] = sums.get(k, 0.0) + v / nb
            history.append(sums)
        return history

    # --- readouts -----------------------------------------------------------------------------------------
    @torch.no_grad()
    def respond(self, rates_hz: np.ndarray, seed: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """E rates (Hz), I rates (Hz) and the input population counts per bin for a time course.

        Returns
        -------
        r_exc : array (time, n_exc), r_inh : array (time, n_inh), pop_counts : array (time, population)
            ``pop_counts`` is the summed Poisson count of each population's inputs in each bin.
        """
        c = self.config
        rates_hz = _check_rates(rates_hz, self.n_populations)
        gen = torch.Generator().manual_seed(self.seed + 1_000_003 if seed is None else int(seed))
        x = self.poisson_inputs(rates_hz, gen)
        r_e, r_i = self.rates(x)
        counts = (x * (c.bin_s * c.input_rate_unit_hz)).reshape(x.shape[0], self.n_populations, -1).sum(-1)
        return (r_e.cpu().numpy() * c.rate_unit_hz, r_i.cpu().numpy() * c.rate_unit_hz, counts.cpu().numpy())

    def population_weights(self) -> np.ndarray:
        """Mean input->E weight from each population, zeros (absent synapses) included: ``(exc, population)``."""
        return dense_population_weights(self.w_in.detach().cpu().numpy(), self.n_populations)

    def state_dict(self) -> dict[str, Any]:
        return {"w_in": self.w_in.detach().cpu(), "w_ie": self.w_ie.cpu(), "opt": self.opt.state_dict(),
                "gen": self.gen.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        with torch.no_grad():
            self.w_in.copy_(state["w_in"].to(self.device))
            self.w_ie.copy_(state["w_ie"].to(self.device))
        self.opt.load_state_dict(state["opt"])
        self.gen.set_state(state["gen"])


def _check_rates(rates_hz: np.ndarray, n_populations: int) -> np.ndarray:
    r = np.asarray(rates_hz, dtype=np.float64)
    if r.ndim != 2 or r.shape[1] != n_populations:
        raise DataError(f"input rates must be a (time, population) array with {n_populations} populations, "
                        f"got shape {r.shape}")
    if not np.all(np.isfinite(r)) or np.any(r < 0):
        raise DataError("input rates must be finite and >= 0 Hz")
    return r


def train_twin(config: RateTwinConfig, train_rates_hz: np.ndarray, probe_rates_hz: np.ndarray, *, seed: int = 0,
               device: str = "cpu", populations: tuple[str, ...] = POPULATIONS, progress: bool = False,
               probe_start_s: float = 0.0, extra_attrs: dict[str, Any] | None = None
               ) -> tuple[xr.Dataset, dict[str, xr.Dataset]]:
    """Train the rate twin and return its results file content: ``(root Dataset, {layer: representation})``.

    Parameters
    ----------
    config : RateTwinConfig
    train_rates_hz : array, shape (time, population)
        Population rates in Hz at ``config.bin_s`` resolution for training.
    probe_rates_hz : array, shape (time, population)
        The time course whose responses become the representation ``E`` (dims ``time``, ``unit``), e.g. the
        window the spiking network's representation covers.
    probe_start_s : float
        Time of the first probe bin, so that the representation's ``time`` coordinate matches the spiking
        network's (absolute simulation time).

    Returns
    -------
    root : xarray.Dataset
        ``train_loss`` and the LPL terms per epoch, ``population_weight`` (neuron, population), the
        selectivities per neuron, ``rate_exc``/``rate_inh`` and the ``participation_ratio`` of the probe
        responses, with provenance (``ratespike_kind = "twin"``).
    reps : dict
        ``{"E": representation}`` for :func:`bridge.reps.groups_of`.
    """
    from ratenets.train import resolve_device

    dev = resolve_device(device)
    torch.manual_seed(seed)
    twin = RateTwin(config, n_populations=len(populations), seed=seed, device=dev)
    history = twin.fit(train_rates_hz, progress=progress)
    r_e, r_i, counts = twin.respond(probe_rates_hz)
    if not np.all(np.isfinite(r_e)):
        raise DivergenceError("rate twin produced NaN or inf rates on the probe time course")
    epochs = np.arange(1, len(history) + 1)
    ds = xr.Dataset(coords={"epoch": epochs, "population": list(populations),
                            "neuron": np.arange(config.n_exc)})
    names = {"loss": ("train_loss", "LPL loss per window, mean over the epoch"),
             "pred": ("loss_pred", "predictive term"), "hebb": ("loss_hebb", "Hebbian (log-variance) term"),
             "decorr": ("loss_decorr", "decorrelation term"),
             "rate_exc_hz": ("train_rate_exc", "mean E rate during training"),
             "rate_inh_hz": ("train_rate_inh", "mean I rate during training")}
    for key, (var, long_name) in names.items():
        ds[var] = ("epoch", [h[key] for h in history])
        ds[var].attrs.update(long_name=long_name, units="Hz" if "rate" in key else "1")
    ds["population_weight"] = (("neuron", "population"), twin.population_weights())
    ds["population_weight"].attrs.update(long_name="mean input->E weight per population (absent synapses "
                                         "count 0)", units="1")
    if tuple(populations) == POPULATIONS:
        for k, v in selectivity_table(twin.population_weights()).items():
            ds[k] = ("neuron", v)
            ds[k].attrs.update(long_name=k.replace("_", " ") + " (Halvagal & Zenke 2023, Methods)", units="1")
    ds["rate_exc"] = ("neuron", r_e.mean(0))
    ds["rate_exc"].attrs.update(long_name="mean E rate over the probe time course", units="Hz")
    ds["participation_ratio"] = participation_ratio(r_e)
    ds["participation_ratio"].attrs.update(long_name="participation ratio of the E rates over the probe time "
                                           "course", units="1")
    ds["input_count"] = (("time", "population"), counts)
    ds["input_count"].attrs.update(long_name="Poisson input spikes per population and bin (probe)", units="1")
    t = probe_start_s + np.arange(counts.shape[0]) * config.bin_s  # (time,) bin starts, s
    ds = ds.assign_coords(time=t)
    ds["time"].attrs.update(units="s", long_name="start of the time bin")
    ds.attrs.update(provenance(kind="twin", config_json=to_json(config), seed=seed,
                               extra={"experiment": "rate-twin", "model": "rate twin of the Fig. 5 network",
                                      "device": str(dev), "bin_s": config.bin_s, **(extra_attrs or {})}))
    reps = {"E": representation(r_e, layer="E", sample_dim="time", units="Hz", time_step_s=config.bin_s,
                                attrs={"model": "rate-twin", "seed": seed, "bin_s": config.bin_s,
                                       "t_start_s": probe_start_s})}
    reps["E"] = reps["E"].assign_coords(time=t)
    reps["E"]["time"].attrs.update(units="s", long_name="start of the time bin")
    return ds, reps
