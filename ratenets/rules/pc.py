"""Supervised predictive coding (PC) with the output clamped to the target. Whittington & Bogacz (2017),
Neural Computation 29(5), Eqs. (2.5)-(2.8) and (2.12)-(2.14); the PC baseline of Bozkurt, Pehlevan &
Erdogan (2023) (class ``SupervisedPredictiveCoding`` of their code).

Value nodes ``x_l``, predictions ``mu_l = W_{l-1} f(x_{l-1}) + b_{l-1}`` with ``f`` the logistic sigmoid,
errors ``eps_l = x_l - mu_l`` (unit variances). The input is fed as logit(pixel), so ``f(x_0)`` is the
pixel value itself; this implementation uses the pixel value directly (identical math, and no infinite
logits for pixels at exactly 0 or 1). Per batch:

1. a feed-forward sweep sets ``x_l = mu_l``, then the output is clamped to ``0.94 onehot + 0.03``;
2. ``t_inference`` steps of ``x_l <- x_l + neural_lr (-eps_l + f'(x_l) * W_l^T eps_{l+1})`` on the hidden
   layers, all computed from the same old state (Eq. 2.12 with Euler steps);
3. a weight step along ``<eps_{l+1} f(x_l)^T>`` and ``<eps_{l+1}>`` (Eq. 2.14, batch mean) with Adam
   (the authors' hand-written Adam: bias correction folded into the step size, moments per element).

Test predictions are a plain feed-forward pass, as in the authors' evaluation. The per-epoch decay of
the learning rate, ``lr * lr_decay ** e`` at 0-based epoch ``e``, was a grid {1, 0.99, 0.95, 0.9} in their
scripts; the presets are the settings the authors' notebooks pick (best final train accuracy) for the
paper's table: 0.95 on MNIST (784-600-600-10) and 0.9 on F-MNIST (784-600-600-10).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from bridge.config import check_positive, check_range
from bridge.errors import ConfigError
from ratenets.presets import for_datasets
from ratenets.rules.local import LocalConfig, LocalRule, kaiming_uniform, layer_names


@dataclass(frozen=True, kw_only=True)
class PCConfig(LocalConfig):
    """Constants of PC; defaults = Bozkurt et al. (2023) ``PC_MNIST_Simulation_V2.py``."""

    hidden: tuple[int, ...] = (600, 600)       # Bozkurt et al. (2023), Table 1 row PC: 784-600-600-10
    lr: float = 1e-3                           # PC MNIST script: lr_start ff (Adam)
    lr_decay: float = 0.95                     # PC MNIST V2 script grid {1, .99, .95, .9}: setting 3, the
                                               # table's run (Plot_CorInfoMax_MNIST_Results.ipynb cells
                                               # 31-32: 98.17 +- 0.22; decay 1 gave 97.21 +- 0.92)
    adam_betas: tuple[float, float] = (0.9, 0.999)  # authors' Adam defaults
    adam_eps: float = 1e-8
    neural_lr: float = 0.1                     # PC MNIST script: neural_lr_start, constant
    t_inference: int = 50                      # PC MNIST script: neural_dynamic_iterations
    target_on: float = 0.97                    # PC MNIST script: 0.94 onehot + 0.03
    target_off: float = 0.03

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive(self, "lr", "t_inference", "adam_eps")
        check_range("lr_decay", self.lr_decay, 0.0, 1.0, lo_open=True)
        if not 0 < self.neural_lr < 1:
            raise ConfigError(f"neural_lr must be in (0, 1) (the error term alone decays as 1 - neural_lr; "
                              f"Euler is unstable beyond), got {self.neural_lr!r}")
        if any(not 0 <= b < 1 for b in self.adam_betas):
            raise ConfigError(f"adam_betas must lie in [0, 1), got {self.adam_betas!r}")


PC_PRESETS: dict[str, dict[str, Any]] = {
    "mnist": {},
    # PC_FashionMNIST_Simulation.py (784-600-600-10) setting 4 = decay 0.9, the run the comparison cell of
    # Plot_CorInfoMax_FashionMNIST_Results.ipynb reads (cells 32-33: 89.31 +- 0.42)
    "fashion-mnist": {"lr_decay": 0.9},
    "digits": {},
    "synthetic": {},
}


class PC(LocalRule):
    """Whittington-Bogacz predictive coding with batched seeds."""

    name: ClassVar[str] = "pc"
    Config: ClassVar[type] = PCConfig
    PRESETS = for_datasets(PC_PRESETS)

    def init_params(self) -> None:
        self.P = len(self.sizes) - 1
        for k, (a, b) in enumerate(zip(self.sizes[:-1], self.sizes[1:])):
            self.params[f"W{k}"] = kaiming_uniform(self.gens, a, (b, a), self.device).transpose(1, 2).contiguous()
            self.params[f"b{k}"] = kaiming_uniform(self.gens, a, (1, b), self.device, bound=a ** -0.5)
        self.m = {k: torch.zeros_like(v) for k, v in self.params.items()}
        self.v = {k: torch.zeros_like(v) for k, v in self.params.items()}
        self.t = 0

    def feedforward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """``mu_l`` for l = 1..P from pixels ``x`` ``(seed, batch, n_in)`` (x = f(x_0))."""
        p, h, out = self.params, x, []
        for k in range(self.P):
            mu = torch.baddbmm(p[f"b{k}"], h, p[f"W{k}"])
            out.append(mu)
            h = torch.sigmoid(mu)
        return out

    def errors(self, x: torch.Tensor, xs: list[torch.Tensor], mu1: torch.Tensor) -> list[torch.Tensor]:
        p = self.params
        errs = [xs[0] - mu1]
        for k in range(1, self.P):
            errs.append(xs[k] - torch.baddbmm(p[f"b{k}"], torch.sigmoid(xs[k - 1]), p[f"W{k}"]))
        return errs

    def infer(self, x: torch.Tensor, target: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Relaxed value nodes and errors with the output clamped to ``target`` (steps 1-2 above)."""
        p, eta = self.params, self.config.neural_lr
        xs = self.feedforward(x)
        mu1 = xs[0]  # the first prediction depends on the clamped input only
        xs[-1] = target
        for _ in range(self.config.t_inference):
            errs = self.errors(x, xs, mu1)
            new = []
            for k in range(self.P - 1):
                f = torch.sigmoid(xs[k])
                back = torch.bmm(errs[k + 1], p[f"W{k + 1}"].transpose(1, 2))
                new.append(xs[k] + eta * (-errs[k] + f * (1 - f) * back))
            xs = new + [xs[-1]]
        return xs, self.errors(x, xs, mu1)

    def weight_grads(self, x: torch.Tensor, xs: list[torch.Tensor], errs: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        """Ascent directions ``<eps_{l+1} f(x_l)^T>`` and ``<eps_{l+1}>`` (batch means), stored like the weights."""
        n = x.shape[1]
        pres = [x] + [torch.sigmoid(h) for h in xs[:-1]]
        grads = {}
        for k in range(self.P):
            grads[f"W{k}"] = torch.bmm(pres[k].transpose(1, 2), errs[k]) / n
            grads[f"b{k}"] = errs[k].mean(1, keepdim=True)
        return grads

    @torch.no_grad()
    def step(self, x: torch.Tensor, y: torch.Tensor, epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.config
        scores = self.feedforward(x)[-1]
        target = self.one_hot(y) * (c.target_on - c.target_off) + c.target_off
        xs, errs = self.infer(x, target)
        loss = sum((e ** 2).sum(-1).mean(-1) for e in errs)  # PC energy per seed, (seed,)
        grads = self.weight_grads(x, xs, errs)
        self.t += 1
        b1, b2 = c.adam_betas
        lr = c.lr * c.lr_decay ** (epoch - 1) * (1 - b2 ** self.t) ** 0.5 / (1 - b1 ** self.t)
        for k, gk in grads.items():
            self.m[k].mul_(b1).add_((1 - b1) * gk)
            self.v[k].mul_(b2).add_((1 - b2) * gk * gk)
            self.params[k].add_(lr * self.m[k] / (self.v[k].sqrt() + c.adam_eps))
        return loss, scores

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        return self.feedforward(x)[-1]

    @torch.no_grad()
    def representations(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        with self.first_seed_only():
            mus = self.feedforward(x.unsqueeze(0))
        return {name: (torch.sigmoid(m) if i < self.P - 1 else m)[0]
                for i, (name, m) in enumerate(zip(layer_names(self.P), mus))}

    def extra_state(self) -> dict[str, Any]:
        return {"m": {k: v.cpu() for k, v in self.m.items()}, "v": {k: v.cpu() for k, v in self.v.items()},
                "t": self.t}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        if state:
            self.m = {k: v.to(self.device) for k, v in state["m"].items()}
            self.v = {k: v.to(self.device) for k, v in state["v"].items()}
            self.t = int(state["t"])
