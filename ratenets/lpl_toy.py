"""Halvagal & Zenke (2023), Fig. 2: one linear LPL neuron on a two-dimensional sequence (slow x, fast y).

The protocol of the official notebook ``notebooks/2 - Toy 2D.ipynb`` (``fmi-basel/latent-predictive-learning``):
inputs ``(x, y)`` with ``x = +-B + N(0, 0.1^2)`` (two clusters, half the batch in each) and ``y ~ N(0, sigma_y^2)``.
Consecutive samples keep their x-cluster (it flips with probability ``switch_p``) and redraw both noises, so x
is the slow (predictable) feature and y the fast one. One neuron ``z = w . (x, y)`` without bias, initialised
as ``nn.Linear(2, 1, bias=False)``, is trained by SGD with weight decay on

- ``lpl``:      ``L_Hebb(z(t)) + L_pred(z(t), SG z(t-1))``;
- ``pred_off``: ``L_Hebb(z(t))`` only (the Hebbian/variance term);
- ``hebb_off``: ``L_pred`` only;
- ``oja``:      Oja's rule ``dw = lr <z (u - z w)> - lr wd w`` (the notebook's comparison, no loss);

with the **same loss functions as the rate networks** (:func:`ratenets.rules.lpl.hebbian_loss`,
:func:`ratenets.rules.lpl.predictive_loss` with the stop-gradient, the notebook's form). The decorrelation
term is zero for one neuron (:func:`ratenets.rules.lpl.decorrelation_loss` returns 0 for one unit), so
"decorr off" is not a condition of this figure, as in the paper.

Measures, as the notebook: x-selectivity ``|mean z(cluster +) - mean z(cluster -)| / (max z - min z)`` on
``val_samples`` fresh samples, the alignment ``|w_x| / |w|``, and the mean activity ``<|z(t)|>`` during
training (the "collapse" panel).

All runs of one condition (every seed x sigma_y, or x switch probability) are trained together as independent
units of one ``(batch, runs)`` tensor: both losses are means over units, so the summed loss times the number of
runs gives every run exactly its own gradient; SGD with weight decay is per element, with one learning rate
per run. Each seed has its own random stream, so a seed's result does not depend on the other seeds.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import xarray as xr

from bridge.config import check_positive, to_json
from bridge.errors import ConfigError
from bridge.io import provenance
from ratenets.rules.lpl import hebbian_loss, predictive_loss

CONDITIONS: tuple[str, ...] = ("lpl", "pred_off", "hebb_off", "oja")
LONG_NAMES = {"lpl": "LPL", "pred_off": "Pred off (Hebbian term only)", "hebb_off": "Hebb off (predictive term only)",
              "oja": "Oja's rule"}


@dataclass(frozen=True, kw_only=True)
class ToyConfig:
    """Constants of the Fig. 2 toy; defaults from ``notebooks/2 - Toy 2D.ipynb`` unless marked ours."""

    cluster_center: float = 1.0           # B = 1 (clusters at x = +-B)
    x_noise: float = 0.1                  # 0.1 * randn added to x
    sigmas: tuple[float, ...] = tuple(float(v) for v in np.logspace(-2, 2, 9))  # notebook: logspace(-2, 2, 50)
    steps: int = 10000                    # num_steps = max(10000, int(100 * sigma)) = 10000 for sigma <= 100
    batch_size: int = 200                 # batch_size = 200
    weight_decay: float = 0.15            # weight_decay = 1.5e-1 (SGD's weight decay; Oja: - lr wd w)
    lr_scale: float = 1e-2                # lr = min(1e-2 / sigma, 1e-2)
    lr_max: float = 1e-2
    hebb_eps: float = 1e-8                # notebook's hebbian_loss: variance + 1e-8
    switch_p: float = 0.0                 # noise_p of the sigma sweep (0: consecutive samples keep the cluster)
    switch_probs: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.6, 0.8, 1.0)  # notebook: linspace(0, 1, 50)
    switch_sigma: float = 1.0             # sigma = 1 for the switch-probability sweep
    val_samples: int = 10000              # sample_data(10000, sigma)
    trace_every: int = 100                # activity trace every 100 steps (the notebook plots [::100])
    conditions: tuple[str, ...] = CONDITIONS

    def __post_init__(self) -> None:
        check_positive(self, "cluster_center", "steps", "weight_decay", "lr_scale", "lr_max", "hebb_eps",
                       "val_samples", "trace_every", "switch_sigma")
        if self.x_noise < 0 or not math.isfinite(self.x_noise):
            raise ConfigError(f"x_noise must be a finite number >= 0, got {self.x_noise!r}")
        if self.batch_size < 4 or self.batch_size % 2:
            raise ConfigError(f"batch_size must be an even number >= 4 (half per cluster), got {self.batch_size}")
        if not self.sigmas or any(not (s > 0 and math.isfinite(s)) for s in self.sigmas):
            raise ConfigError(f"sigmas must list finite numbers > 0, got {self.sigmas!r}")
        for name in ("switch_p",):
            v = getattr(self, name)
            if not 0 <= v <= 1:
                raise ConfigError(f"{name} must be a probability in [0, 1], got {v!r}")
        if any(not 0 <= p <= 1 for p in self.switch_probs):
            raise ConfigError(f"switch_probs must be probabilities in [0, 1], got {self.switch_probs!r}")
        if not self.conditions or any(c not in CONDITIONS for c in self.conditions):
            raise ConfigError(f"conditions must name some of {', '.join(CONDITIONS)}, got {self.conditions!r}")

    def lr(self, sigma: float) -> float:
        return min(self.lr_scale / sigma, self.lr_max)


def _generator(seed: int, stream: int) -> torch.Generator:
    state = np.random.SeedSequence([int(seed), int(stream)]).generate_state(2)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


class _Stream:
    """The inputs of ``len(sigmas)`` runs of one seed: ``(batch, runs, 2)`` with the cluster labels kept."""

    def __init__(self, cfg: ToyConfig, sigmas: np.ndarray, switch: np.ndarray, gen: torch.Generator) -> None:
        self.cfg, self.gen = cfg, gen
        self.sigma = torch.as_tensor(sigmas, dtype=torch.float32)
        self.switch = torch.as_tensor(switch, dtype=torch.float32)
        b = cfg.batch_size
        self.sign = torch.ones(b, len(sigmas))
        self.sign[b // 2:] = -1.0  # first half in cluster +B, second half in -B (sample_data)

    def draw(self) -> torch.Tensor:
        cfg, g = self.cfg, self.gen
        b, r = self.sign.shape
        if (self.switch > 0).any():
            flip = torch.rand(b, r, generator=g) < self.switch
            self.sign = torch.where(flip, -self.sign, self.sign)
        x = cfg.cluster_center * self.sign + cfg.x_noise * torch.randn(b, r, generator=g)
        y = self.sigma * torch.randn(b, r, generator=g)
        return torch.stack([x, y], dim=-1)  # (batch, runs, 2)


def _validation(cfg: ToyConfig, sigma: float, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    n = cfg.val_samples
    sign = torch.ones(n)
    sign[n // 2:] = -1.0
    u = torch.stack([cfg.cluster_center * sign + cfg.x_noise * torch.randn(n, generator=gen),
                     sigma * torch.randn(n, generator=gen)], dim=1)
    return u, sign > 0


def selectivity(w: np.ndarray, u: torch.Tensor, positive: torch.Tensor) -> float:
    """The notebook's x-selectivity ``|mean z(+) - mean z(-)| / (max z - min z)`` of weights ``w`` (2,)."""
    z = u.double() @ torch.as_tensor(w, dtype=torch.float64)
    span = float(z.max() - z.min())
    if not math.isfinite(span) or span == 0.0:
        return float("nan")
    return abs(float(z[positive].mean() - z[~positive].mean())) / span


def train_condition(cfg: ToyConfig, condition: str, seeds: tuple[int, ...], sigmas: np.ndarray,
                    switch: np.ndarray, stream: int) -> tuple[np.ndarray, np.ndarray]:
    """Train every (seed, run) of one condition together.

    Returns
    -------
    weights : array (seed, run, 2)
    trace : array (seed, run, step // trace_every)
        Mean activity ``<|z(t)|>`` over the batch, every ``trace_every`` steps.
    """
    if condition not in CONDITIONS:
        raise ConfigError(f"unknown condition {condition!r} (choices: {', '.join(CONDITIONS)})")
    n_s, n_r = len(seeds), len(sigmas)
    streams, w0 = [], []
    for s in seeds:
        g = _generator(s, stream)
        w0.append(torch.empty(n_r, 2).uniform_(-1 / math.sqrt(2), 1 / math.sqrt(2), generator=g))  # nn.Linear init
        streams.append(_Stream(cfg, sigmas, switch, g))
    w = torch.cat(w0).requires_grad_(condition != "oja")  # (seed*run, 2)
    lr = torch.as_tensor(np.tile([cfg.lr(s) for s in sigmas], n_s), dtype=torch.float32)[:, None]
    n_units = n_s * n_r
    u = torch.cat([st.draw() for st in streams], dim=1)  # (batch, seed*run, 2)
    n_trace = cfg.steps // cfg.trace_every
    trace = np.full((n_units, n_trace), np.nan)
    for t in range(cfg.steps):
        u_next = torch.cat([st.draw() for st in streams], dim=1)
        if condition == "oja":
            with torch.no_grad():
                z_next = (u_next * w).sum(-1)  # (batch, units)
                w += lr * (z_next[..., None] * (u_next - z_next[..., None] * w)).mean(0) - lr * cfg.weight_decay * w
        else:
            z = (u * w).sum(-1)
            z_next = (u_next * w).sum(-1)
            loss = 0.0
            if condition in ("lpl", "pred_off"):
                loss = loss + hebbian_loss(z_next, eps=cfg.hebb_eps)
            if condition in ("lpl", "hebb_off"):
                loss = loss + predictive_loss(z_next, z, stop_gradient=True)
            (grad,) = torch.autograd.grad(loss * n_units, w)  # every run its own (summed) gradient
            with torch.no_grad():
                w -= lr * (grad + cfg.weight_decay * w)  # torch.optim.SGD(lr, weight_decay), per run
        if (t + 1) % cfg.trace_every == 0:
            trace[:, (t + 1) // cfg.trace_every - 1] = z_next.detach().abs().mean(0).double().numpy()
        u = u_next
    return w.detach().double().numpy().reshape(n_s, n_r, 2), trace.reshape(n_s, n_r, n_trace)


def _measure(cfg: ToyConfig, weights: np.ndarray, seeds: tuple[int, ...], sigmas: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray]:
    sel = np.full(weights.shape[:2], np.nan)
    for i, s in enumerate(seeds):
        g = _generator(s, 10_000)
        for j, sig in enumerate(sigmas):
            u, pos = _validation(cfg, float(sig), g)
            sel[i, j] = selectivity(weights[i, j], u, pos)
    norm = np.linalg.norm(weights, axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        align = np.abs(weights[..., 0]) / norm
    return sel, align


def run(cfg: ToyConfig, seeds: tuple[int, ...] = (0,), progress=None) -> xr.Dataset:
    """The Fig. 2 experiment: every condition over ``sigmas``, LPL over ``switch_probs``; one Dataset."""
    seeds = tuple(int(s) for s in seeds)
    sigmas = np.asarray(cfg.sigmas, dtype=float)
    probs = np.asarray(cfg.switch_probs, dtype=float)
    conds = list(cfg.conditions)
    n_trace = cfg.steps // cfg.trace_every
    shape = (len(conds), len(seeds), len(sigmas))
    sel, align, act, wts = np.full(shape, np.nan), np.full(shape, np.nan), np.full(shape, np.nan), np.zeros(shape + (2,))
    trace = np.full(shape + (n_trace,), np.nan)
    for k, c in enumerate(conds):
        if progress:
            progress(f"lpl-fig2: {c} over {len(sigmas)} sigma_y x {len(seeds)} seeds, {cfg.steps} steps")
        w, tr = train_condition(cfg, c, seeds, sigmas, np.full(len(sigmas), cfg.switch_p), CONDITIONS.index(c))
        wts[k], trace[k] = w, tr
        sel[k], align[k] = _measure(cfg, w, seeds, sigmas)
        act[k] = tr[..., -max(1, n_trace // 10):].mean(-1)  # the last tenth of training
    if progress:
        progress(f"lpl-fig2: LPL over {len(probs)} switch probabilities at sigma_y = {cfg.switch_sigma:g}")
    sig_p = np.full(len(probs), cfg.switch_sigma)
    w_p, _ = train_condition(cfg, "lpl", seeds, sig_p, probs, 100)
    sel_p, align_p = _measure(cfg, w_p, seeds, sig_p)
    steps = (np.arange(n_trace) + 1) * cfg.trace_every
    unit = {"units": "1"}
    ds = xr.Dataset(
        {
            "x_selectivity": (("condition", "seed", "sigma_y"), sel,
                              {"long_name": "x-selectivity |<z|x=+B> - <z|x=-B>| / (max z - min z)", **unit}),
            "x_alignment": (("condition", "seed", "sigma_y"), align,
                            {"long_name": "alignment of the weights with the x axis |w_x| / |w|", **unit}),
            "activity": (("condition", "seed", "sigma_y"), act,
                         {"long_name": "mean activity <|z|> over the last tenth of training", **unit}),
            "weights": (("condition", "seed", "sigma_y", "input"), wts, {"long_name": "final weights", **unit}),
            "activity_trace": (("condition", "seed", "sigma_y", "step"), trace,
                               {"long_name": "mean activity <|z|> during training", **unit}),
            "switch_selectivity": (("seed", "switch_p"), sel_p,
                                   {"long_name": f"LPL x-selectivity at sigma_y = {cfg.switch_sigma:g} against the "
                                                 "cluster-switch probability", **unit}),
            "switch_alignment": (("seed", "switch_p"), align_p,
                                 {"long_name": "LPL alignment |w_x| / |w| against the switch probability", **unit}),
        },
        coords={"condition": conds, "seed": list(seeds),
                "sigma_y": ("sigma_y", sigmas, {"long_name": "s.d. of the fast input y", "units": "1"}),
                "input": ["x", "y"],
                "step": ("step", steps, {"long_name": "training step", "units": "1"}),
                "switch_p": ("switch_p", probs, {"long_name": "probability that x switches cluster between "
                                                              "consecutive samples", "units": "1"})},
    )
    ds["condition"].attrs["long_names"] = "; ".join(f"{c}: {LONG_NAMES[c]}" for c in conds)
    ds.attrs.update(provenance(kind="experiment", config_json=to_json(cfg), seed=list(seeds), extra={
        "experiment": "lpl-fig2",
        "reference": "Halvagal & Zenke (2023) Nat. Neurosci. 26:1906, Fig. 2; official notebook "
                     "'notebooks/2 - Toy 2D.ipynb' (fmi-basel/latent-predictive-learning)"}))
    return ds


def summary(ds: xr.Dataset) -> str:
    """One line per condition: x-selectivity (mean +- s.d. over seeds) at the smallest, middle and largest
    sigma_y, and the final activity at the sigma_y nearest 1."""
    sig = ds["sigma_y"].values
    cols = sorted({0, len(sig) // 2, len(sig) - 1})
    j = int(np.argmin(np.abs(np.log(sig))))
    lines = [f"lpl-fig2 ({ds.sizes['seed']} seeds): x-selectivity at sigma_y = "
             + ", ".join(f"{sig[c]:.3g}" for c in cols) + f"; activity <|z|> at sigma_y = {sig[j]:.3g}"]
    for c in ds["condition"].values:
        v = ds["x_selectivity"].sel(condition=c)
        a = ds["activity"].sel(condition=c).isel(sigma_y=j)
        lines.append(f"  {c:9s} " + "  ".join(f"{float(v.isel(sigma_y=k).mean()):.3f}+-{float(v.isel(sigma_y=k).std(ddof=1)):.3f}"
                                             for k in cols) + f"   activity {float(a.mean()):.3g}")
    p = ds["switch_selectivity"].mean("seed")
    lines.append("  LPL x-selectivity vs switch p: " + ", ".join(f"p={float(q):.2g}: {float(v):.3f}"
                                                                for q, v in zip(ds["switch_p"].values, p.values)))
    return "\n".join(lines)


COLOURS = {"lpl": "#EE7733", "pred_off": "0.45", "hebb_off": "0.6", "oja": "k"}
STYLES = {"lpl": "-", "pred_off": "-", "hebb_off": ":", "oja": "--"}


def figure(ds: xr.Dataset):
    """Fig. 2 panels: x-selectivity vs sigma_y, alignment vs sigma_y, activity during training at the sigma_y
    nearest 1, LPL selectivity vs switch probability (mean +- s.d. over seeds)."""
    from bridge.plots import grid, outside_legend, plain_ticks, title

    fig, ax = grid(4)
    sig = ds["sigma_y"].values
    for c in ds["condition"].values:
        for a, var in ((ax[0], "x_selectivity"), (ax[1], "x_alignment")):
            v = ds[var].sel(condition=c)
            m, s = v.mean("seed").values, v.std("seed", ddof=1).values
            a.plot(sig, m, STYLES.get(c, "-"), color=COLOURS.get(c), label=LONG_NAMES.get(c, c))
            a.fill_between(sig, m - s, m + s, color=COLOURS.get(c), alpha=0.2)
    for a, t, yl in ((ax[0], "x-selectivity after training", "x-selectivity [1]"),
                     (ax[1], "alignment with the slow input x", "|w_x| / |w| [1]")):
        a.set_xscale("log")
        a.set_xlabel("s.d. of the fast input sigma_y [1]")
        a.set_ylabel(yl)
        a.set_ylim(-0.05, 1.1)
        title(a, t)
    outside_legend(ax[1])
    j = int(np.argmin(np.abs(np.log(sig))))
    steps = ds["step"].values
    for c in ds["condition"].values:
        if c == "oja":
            continue
        v = ds["activity_trace"].sel(condition=c).isel(sigma_y=j)
        m, s = v.mean("seed").values, v.std("seed", ddof=1).values
        ax[2].plot(steps, m, STYLES.get(c, "-"), color=COLOURS.get(c), label=LONG_NAMES.get(c, c))
        ax[2].fill_between(steps, m - s, m + s, color=COLOURS.get(c), alpha=0.2)
    ax[2].set_yscale("log")
    ax[2].set_xlabel("training step [1]")
    ax[2].set_ylabel("mean activity <|z|> [1]")
    title(ax[2], f"activity during training, sigma_y = {sig[j]:.3g}")
    outside_legend(ax[2])
    p = ds["switch_p"].values
    v = ds["switch_selectivity"]
    m, s = v.mean("seed").values, v.std("seed", ddof=1).values
    ax[3].plot(p, m, "o-", color=COLOURS["lpl"], label="LPL")
    ax[3].fill_between(p, m - s, m + s, color=COLOURS["lpl"], alpha=0.2)
    ax[3].set_xlabel("cluster-switch probability p [1]")
    ax[3].set_ylabel("x-selectivity [1]")
    ax[3].set_ylim(-0.05, 1.1)
    title(ax[3], "LPL under random cluster switches, sigma_y = 1")
    for a in ax:
        plain_ticks(a)
    return fig


def plot(ds: xr.Dataset, path) -> None:
    from bridge.plots import save_figure

    save_figure(figure(ds), path)
