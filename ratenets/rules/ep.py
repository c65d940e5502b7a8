"""Equilibrium propagation (EP): contrastive Hebbian learning between a free and a weakly nudged
equilibrium of a layered Hopfield-like energy. Scellier & Bengio (2017), Front. Comput. Neurosci.;
random-sign nudging of Laborieux et al. (2021); the EP baseline of Bozkurt, Pehlevan & Erdogan (2023).

Energy (``s_0 = x`` clamped, hard-sigmoid states ``s_k`` in [0, 1], one-hot ``y``)::

    Phi(s) = 1/2 sum_k |s_k|^2 - sum_k s_{k+1}^T (W_k s_k + b_k) + beta |s_P - y|^2

Dynamics: ``t_free`` steps ``s <- clip(s - neural_lr dPhi/ds, 0, 1)`` from zero states with beta = 0,
then ``t_nudged`` steps with beta = +-1 (random sign), every layer updated from the same old state
(Jacobi). Learning is SGD on ``(Phi_beta - Phi_0) / beta`` (batch mean)::

    dW_k = (lr_k / beta) (<s_{k+1} s_k^T>_beta - <s_{k+1} s_k^T>_0),   db_k = (lr_k / beta)(<s_{k+1}>_beta - <s_{k+1}>_0)

which uses the *same* ``W_k`` in both directions (symmetric weights). The gradient dPhi/ds is written
out instead of taken by autograd as the authors' code (class ``EP`` of BariscanBozkurt/Supervised-
CorInfoMax, adapted from Laborieux et al.) does; the math is the same. Their training always used the
neural step 0.5 (the swept value only reached evaluation: ``model(x, y, neurons, T1, ...)`` is called
without ``neural_lr``, ``evaluateEP(..., neural_lr, ...)`` with it); so does this default, and
``eval_neural_lr`` is the step of the evaluation free phase (0.3 in the F-MNIST and CIFAR-10 runs behind
the paper's table).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from bridge.config import check_positive
from bridge.errors import ConfigError
from ratenets.presets import for_datasets
from ratenets.rules.local import LocalConfig, LocalRule, hard_sigmoid, layer_names, xavier_uniform


@dataclass(frozen=True, kw_only=True)
class EPConfig(LocalConfig):
    """Constants of EP; defaults = the MNIST script of Bozkurt et al. (2023) (``EP_MNIST_Simulation.py``)."""

    hidden: tuple[int, ...] = (500,)           # Bozkurt et al. (2023), Table 1: 784-500-10
    lr: tuple[float, ...] = (0.1, 0.05)        # EP MNIST script: alphas_W, plain SGD
    t_free: int = 20                           # EP MNIST script: T1
    t_nudged: int = 4                          # EP MNIST script: T2
    neural_lr: float = 0.5                     # Laborieux et al. (2021) / EP class default (training)
    eval_neural_lr: float | None = None        # step of the evaluation free phase (None: neural_lr); the
                                               # scripts' neural_lr_list reached evaluateEP only
    beta: float = 1.0                          # nudge strength (random sign, Laborieux et al. 2021)
    random_sign: bool = True                   # EP MNIST script: random_sign = True
    lr_step_epochs: int = 0                    # StepLR period in epochs (0 = none; CIFAR script: 15)
    lr_step_gamma: float = 0.75                # StepLR factor (CIFAR script: 0.75)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.check_per_layer("lr")
        check_positive(self, "t_free", "t_nudged", "neural_lr")
        if any(v < 0 for v in self.lr):
            raise ConfigError(f"lr must be >= 0 for every layer, got {self.lr!r}")
        if not self.beta > 0:
            raise ConfigError(f"beta must be > 0 for a contrastive rule (beta = 0 makes the nudged and free "
                              f"phases identical; the sign is random when random_sign is on), got {self.beta!r}")
        bound = 2.0 / (1.0 + 2.0 * self.beta)
        if self.neural_lr >= bound:
            raise ConfigError(f"neural_lr must be < {bound:.4g} = 2 / (1 + 2 beta), the stability bound of the "
                              f"nudged output units, got {self.neural_lr!r}")
        if self.eval_neural_lr is not None and not 0 < self.eval_neural_lr < 2.0:
            raise ConfigError(f"eval_neural_lr must be in (0, 2) (the free-phase stability bound: a unit "
                              f"decays at rate 1), got {self.eval_neural_lr!r}")
        if self.lr_step_epochs < 0 or not 0 < self.lr_step_gamma <= 1:
            raise ConfigError(f"lr_step_epochs must be >= 0 and lr_step_gamma in (0, 1], got "
                              f"{self.lr_step_epochs!r} and {self.lr_step_gamma!r}")


#: the runs behind the paper's table: the best-by-final-train-accuracy setting of each script, as the
#: authors' notebooks (Simulations/Classification/AnalyzeSimulations/) pick it
EP_PRESETS: dict[str, dict[str, Any]] = {
    # EP_MNIST_Simulation.py, its only setting (Plot_CorInfoMax_MNIST_Results.ipynb: 97.62 +- 0.08)
    "mnist": {},
    # EP_FashionMNIST_Simulation_V2.py setting 2: alphas_W (0.05, 0.025), evaluated at neural_lr 0.3
    # (Plot_CorInfoMax_FashionMNIST_Results.ipynb cells 19-20: 88.06 +- 0.70)
    "fashion-mnist": {"lr": (0.05, 0.025), "eval_neural_lr": 0.3},
    # EP_CIFAR10_Simulation_V2.py setting 4: 3072-500-10, alphas_W (0.07, 0.03), StepLR(15, 0.75), evaluated
    # at neural_lr 0.3 (Plot_CorInfoMax_CIFAR10_Results.ipynb cells 17-18: 49.28 +- 0.50)
    "cifar10": {"lr": (0.07, 0.03), "lr_step_epochs": 15, "eval_neural_lr": 0.3, "input_norm": "cifar3std"},
    "digits": {},
    "synthetic": {},
}


class EP(LocalRule):
    """Equilibrium propagation with random-sign nudging and batched seeds."""

    name: ClassVar[str] = "ep"
    Config: ClassVar[type] = EPConfig
    PRESETS = for_datasets(EP_PRESETS)

    def init_params(self) -> None:
        self.P = len(self.sizes) - 1
        for k, (a, b) in enumerate(zip(self.sizes[:-1], self.sizes[1:])):
            # W_k stored (seed, n_k, n_{k+1}): s_k @ W_k = (W_k s_k)^T
            self.params[f"W{k}"] = xavier_uniform(self.gens, a, b, (b, a), self.device).transpose(1, 2).contiguous()
            self.params[f"b{k}"] = torch.zeros(len(self.seeds), 1, b, device=self.device)
        self.init_lateral()

    def init_lateral(self) -> None:
        """Extra parameters of subclasses (CSM's lateral weights)."""
        return None

    def lateral_drive(self, k: int, s: torch.Tensor) -> torch.Tensor | None:
        """Extra term of dPhi/ds_k of hidden layer ``k`` (0-based among the states); none for EP."""
        return None

    def relax(self, x: torch.Tensor, s: list[torch.Tensor], y: torch.Tensor, beta: torch.Tensor | None,
              steps: int, neural_lr: float | None = None) -> list[torch.Tensor]:
        """``steps`` Jacobi steps ``s <- clip(s - neural_lr dPhi/ds)``; states ``(seed, batch, n_k)``."""
        p, P = self.params, self.P
        dt = self.config.neural_lr if neural_lr is None else neural_lr
        s = list(s)
        for _ in range(steps):
            layers = [x, *s]
            new = []
            for k in range(1, P + 1):
                grad = s[k - 1] - torch.baddbmm(p[f"b{k - 1}"], layers[k - 1], p[f"W{k - 1}"])
                if k < P:
                    grad = grad - torch.bmm(s[k], p[f"W{k}"].transpose(1, 2))
                    lat = self.lateral_drive(k - 1, s[k - 1])
                    if lat is not None:
                        grad = grad + lat
                elif beta is not None:
                    grad = grad + 2 * beta * (s[k - 1] - y)
                new.append(hard_sigmoid(s[k - 1] - dt * grad))
            s = new
        return s

    def free_phase(self, x: torch.Tensor, neural_lr: float | None = None) -> list[torch.Tensor]:
        S, B = x.shape[:2]
        zeros = [torch.zeros(S, B, n, device=x.device, dtype=x.dtype) for n in self.sizes[1:]]
        return self.relax(x, zeros, zeros[-1], None, self.config.t_free, neural_lr)

    def lr_factor(self, epoch: int) -> float:
        c = self.config
        return c.lr_step_gamma ** ((epoch - 1) // c.lr_step_epochs) if c.lr_step_epochs else 1.0

    def step(self, x: torch.Tensor, y: torch.Tensor, epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.config
        y1 = self.one_hot(y)
        s0 = self.free_phase(x)
        scores = s0[-1]
        loss = ((scores - y1) ** 2).mean(dim=(1, 2))
        beta = c.beta * (self.random_signs() if c.random_sign else torch.ones(len(self.seeds), 1, 1,
                                                                                 device=self.device))
        sb = self.relax(x, s0, y1, beta, c.t_nudged)
        self.apply_updates(x, s0, sb, beta, self.lr_factor(epoch))
        return loss, scores

    @torch.no_grad()
    def apply_updates(self, x: torch.Tensor, s0: list[torch.Tensor], sb: list[torch.Tensor], beta: torch.Tensor,
                      decay: float) -> None:
        p, n = self.params, x.shape[1]
        L0, Lb = [x, *s0], [x, *sb]
        for k in range(self.P):
            scale = (self.config.lr[k] * decay) / beta  # (seed, 1, 1)
            pre = torch.cat([Lb[k], L0[k]], dim=1)  # (seed, 2 batch, n_k)
            post = torch.cat([Lb[k + 1], -L0[k + 1]], dim=1)
            p[f"W{k}"].add_(scale / n * torch.bmm(pre.transpose(1, 2), post))
            p[f"b{k}"].add_(scale * (Lb[k + 1].mean(1, keepdim=True) - L0[k + 1].mean(1, keepdim=True)))
        self.update_lateral(s0, sb, beta, decay)

    def update_lateral(self, s0: list[torch.Tensor], sb: list[torch.Tensor], beta: torch.Tensor,
                       decay: float) -> None:
        return None

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Evaluation: the free phase at ``eval_neural_lr`` (the authors' ``evaluateEP``)."""
        return self.free_phase(x, self.config.eval_neural_lr)[-1]

    @torch.no_grad()
    def representations(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        with self.first_seed_only():
            s = self.free_phase(x.unsqueeze(0))
        return {name: si[0] for name, si in zip(layer_names(self.P), s)}

