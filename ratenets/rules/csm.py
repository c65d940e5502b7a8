"""Contrastive similarity matching (CSM): EP with learned lateral (anti-Hebbian) weights on the hidden
layers. Qin, Mudur & Pehlevan (2021), Neural Computation 33(5), Eqs. (6)-(12); the CSM baseline of
Bozkurt, Pehlevan & Erdogan (2023).

The energy is EP's (see :mod:`ratenets.rules.ep`) plus ``+1/2 s_k^T M_k s_k`` for every hidden layer,
with symmetric lateral weights ``M_k`` (initialised ``A A^T``, ``A`` Xavier-uniform). Free and nudged
phases and the W update are EP's. The lateral update is the authors' (class ``CSM`` of
BariscanBozkurt/Supervised-CorInfoMax at e5fb839, ``src/ContrastiveModels.py``): their free phase runs
through ``M_copy``, a copy of ``M`` that holds the same values but is not among the optimiser's
parameters, so the gradient of ``(Phi_beta - Phi_0)/beta`` reaches ``M`` from the *nudged* phase only.
With the negative (anti-Hebbian) learning rate ``lr_lateral``::

    dM_k = -lr_lateral_k / (2 beta) <s_k s_k^T>_beta,   then  M_k <- M_k + lr_lateral_k M_k / (2|beta|)

The second, decay step follows the same method (``CSM.compute_syn_grads``, after line 306 of the Theano
``model_wlat_smep_mod.py`` of Qin et al.), where it uses the unscheduled rate; the StepLR schedule
scales the SGD steps of both W and M, as their optimiser's param groups do.

Where the sources disagree the authors' code wins: EP's derivation applied to every parameter of the
energy, and the first version of this project's spec (``corinfomax.md``), give the contrastive form
``-lr_lateral/(2 beta) (<s s^T>_beta - <s s^T>_0)``. The authors' behaviour is the default
(``lateral_rule="nudged"``); the contrastive form is the option ``lateral_rule="contrastive"``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch

from bridge.errors import ConfigError
from ratenets.presets import for_datasets
from ratenets.rules.ep import EP, EPConfig
from ratenets.rules.local import xavier_uniform


@dataclass(frozen=True, kw_only=True)
class CSMConfig(EPConfig):
    """Constants of CSM; defaults = the paper's best MNIST setting (``CSM_MNIST_Simulation_V3.py``)."""

    lr: tuple[float, ...] = (0.4, 0.275)          # Bozkurt et al. (2023) CSM MNIST script: alphas_W (best)
    lr_lateral: tuple[float, ...] = (-0.01,)      # CSM MNIST script: alphas_M (negative: anti-Hebbian)
    lr_step_epochs: int = 15                      # CSM scripts: StepLR(step_size=15, gamma=0.75)
    lr_step_gamma: float = 0.75
    # authors' code (CSM class, free phase through the unoptimised M_copy): nudged phase only; the
    # contrastive free-vs-nudged form of the paper/spec is the option
    lateral_rule: Literal["nudged", "contrastive"] = "nudged"

    def __post_init__(self) -> None:
        super().__post_init__()
        if len(self.lr_lateral) != len(self.hidden):
            raise ConfigError(f"lr_lateral needs one value per hidden layer ({len(self.hidden)}), "
                              f"got {self.lr_lateral!r}")
        if any(v > 0 for v in self.lr_lateral):
            raise ConfigError(f"lr_lateral must be <= 0 (anti-Hebbian lateral learning), got {self.lr_lateral!r}")
        if self.lateral_rule not in ("nudged", "contrastive"):
            raise ConfigError(f"lateral_rule must be 'nudged' (the authors' code) or 'contrastive', "
                              f"got {self.lateral_rule!r}")


#: the runs behind the paper's table (best by final train accuracy, as the authors' notebooks pick it)
CSM_PRESETS: dict[str, dict[str, Any]] = {
    # CSM_MNIST_Simulation_V3.py setting 2 (Plot_CorInfoMax_MNIST_Results.ipynb cells 12-13: 98.08 +- 0.06)
    "mnist": {},
    # CSM_FashionMNIST_Simulation.py, its only setting (Plot_CorInfoMax_FashionMNIST_Results.ipynb: 88.73 +- 0.19)
    "fashion-mnist": {"lr": (0.1, 0.06), "lr_lateral": (-0.002,)},
    # CSM_CIFAR10_Simulation_V1.py: trains at the class default 0.5, evaluates at neural_lr_list [0.05]
    "cifar10": {"hidden": (1000,), "lr": (0.059, 0.017), "lr_lateral": (-0.067,), "t_free": 30, "t_nudged": 5,
                "eval_neural_lr": 0.05, "input_norm": "cifar3std"},
    "digits": {},
    "synthetic": {},
}


class CSM(EP):
    """Contrastive similarity matching with batched seeds."""

    name: ClassVar[str] = "csm"
    Config: ClassVar[type] = CSMConfig
    PRESETS = for_datasets(CSM_PRESETS)

    def init_lateral(self) -> None:
        for k, n in enumerate(self.sizes[1:-1]):
            A = xavier_uniform(self.gens, n, n, (n, n), self.device)
            M = torch.bmm(A, A.transpose(1, 2))
            self.params[f"M{k}"] = 0.5 * (M + M.transpose(1, 2))  # exactly symmetric; updates keep it so

    def lateral_drive(self, k: int, s: torch.Tensor) -> torch.Tensor:
        return torch.bmm(s, self.params[f"M{k}"])  # d/ds of 1/2 s^T M s with M symmetric

    @torch.no_grad()
    def update_lateral(self, s0: list[torch.Tensor], sb: list[torch.Tensor], beta: torch.Tensor,
                       decay: float) -> None:
        n = s0[0].shape[1]
        for k in range(len(self.sizes) - 2):
            a = self.config.lr_lateral[k]
            M = self.params[f"M{k}"]
            corr = torch.bmm(sb[k].transpose(1, 2), sb[k]) / n
            if self.config.lateral_rule == "contrastive":
                corr = corr - torch.bmm(s0[k].transpose(1, 2), s0[k]) / n
            M.sub_((a * decay / 2.0) / beta * corr)
            M.add_(a * M / (2.0 * beta.abs()))
