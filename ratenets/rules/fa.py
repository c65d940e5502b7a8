"""Feedback alignment (FA): backpropagation with the transposed forward weights replaced by fixed random
feedback matrices. Lillicrap, Cownden, Tweed & Akerman (2016), Nat. Commun. 7:13276, Eq. (1) and Fig. 1;
the FA baseline of Bozkurt, Pehlevan & Erdogan (2023) (``biotorch`` BioModule, mode "fa").

A ReLU MLP with a linear output ``a_P``, loss MSE to one-hot targets (mean over batch and classes, as
``torch.nn.MSELoss``) or cross-entropy. The output error ``delta_P = dL/da_P`` is sent down through fixed
matrices ``F_l`` of the forward weights' shape: ``delta_l = (delta_{l+1} F_{l+1}^T) * relu'(a_l)`` where
backprop would use ``W_{l+1}``. Weight gradients ``h_{l-1}^T delta_l`` then go to Adam with a StepLR
schedule. The forward weights are never read on the backward path: :meth:`FA.backward_deltas` only sees
the feedback matrices.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch

from bridge.config import check_positive, check_range
from ratenets.presets import for_datasets
from ratenets.rules.local import LocalConfig, LocalRule, layer_names
from ratenets.rules.base import uniform_init


@dataclass(frozen=True, kw_only=True)
class FAConfig(LocalConfig):
    """Constants of FA; defaults = Bozkurt et al. (2023) ``FAMLP_MNIST_2Layers_Simulation_v1.py`` (Adam)."""

    hidden: tuple[int, ...] = (500,)          # Bozkurt et al. (2023), Table 1: 784-500-10
    lr: float = 1e-3                          # FA MNIST script: Adam lr 1e-3
    loss: Literal["mse", "ce"] = "mse"        # Table 1 rows FA (MSE) and FA (CE)
    # FA MNIST script grid gamma {0.95, 0.9} x step {10, 25} x {Adam, SGD} x final activation {no, yes}:
    # setting 9 = gamma 0.9, step 10, Adam, linear output, the table's run (Plot_FeedbackAlignment_Results.ipynb
    # cells 5-6: 97.99 +- 0.10; the same setting 9 is picked on F-MNIST and CIFAR-10)
    lr_step_epochs: int = 10
    lr_step_gamma: float = 0.9

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive(self, "lr", "lr_step_epochs")
        check_range("lr_step_gamma", self.lr_step_gamma, 0.0, 1.0, lo_open=True)


FA_PRESETS: dict[str, dict[str, Any]] = {
    "mnist": {},
    "fashion-mnist": {},   # FAMLP_FashionMNIST_2Layers_Simulation_v1.py setting 9 (cells 28-29: 88.72 +- 0.46)
    # FAMLP_CIFAR10_2Layers_Simulation_v1.py setting 9: 3072-1000-10, Adam at lr/10 = 1e-4 (cells 39-40:
    # 50.75 +- 0.61)
    "cifar10": {"hidden": (1000,), "lr": 1e-4, "input_norm": "cifar3std"},
    "digits": {},
    "synthetic": {},
}


class FA(LocalRule):
    """Feedback alignment on the batched-seed MLP; feedback matrices ``F{l}`` are fixed buffers."""

    name: ClassVar[str] = "fa"
    Config: ClassVar[type] = FAConfig
    PRESETS = for_datasets(FA_PRESETS)

    def init_params(self) -> None:
        self.P = len(self.sizes) - 1
        for k, (a, b) in enumerate(zip(self.sizes[:-1], self.sizes[1:])):
            self.params[f"W{k}"] = uniform_init(self.gens, a, (a, b), self.device)
            self.params[f"b{k}"] = uniform_init(self.gens, a, (1, b), self.device)
        # fixed random feedback, same shape and scale as the forward weights, drawn after them
        self.feedback = {f"F{k}": uniform_init(self.gens, a, (a, b), self.device)
                         for k, (a, b) in enumerate(zip(self.sizes[:-1], self.sizes[1:]))}
        self.opt = torch.optim.Adam(list(self.params.values()), lr=self.config.lr)

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Pre-activations ``a_l`` and activities ``h_l`` (``h_0 = x``; the last layer is linear)."""
        p, h, pre, acts = self.params, x, [], [x]
        for k in range(self.P):
            a = torch.baddbmm(p[f"b{k}"], h, p[f"W{k}"])
            pre.append(a)
            h = torch.relu(a) if k < self.P - 1 else a
            acts.append(h)
        return pre, acts

    def output_delta(self, out: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-seed loss ``(seed,)`` and ``dL/d out`` for scores ``(seed, batch, classes)``."""
        n, C = out.shape[1], out.shape[2]
        if self.config.loss == "ce":
            logp = torch.log_softmax(out, -1)
            loss = -logp.gather(-1, y.unsqueeze(-1)).squeeze(-1).mean(1)
            return loss, (logp.exp() - self.one_hot(y)) / n
        diff = out - self.one_hot(y)
        return (diff ** 2).mean(dim=(1, 2)), 2 * diff / (n * C)

    def backward_deltas(self, delta_out: torch.Tensor, pre: list[torch.Tensor],
                        feedback: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        """Errors of every layer sent down through ``feedback`` (never through the forward weights)."""
        deltas = [delta_out]
        for k in range(self.P - 1, 0, -1):
            d = torch.bmm(deltas[0], feedback[f"F{k}"].transpose(1, 2)) * (pre[k - 1] > 0).to(delta_out.dtype)
            deltas.insert(0, d)
        return deltas

    def gradients(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor,
                                                                    dict[str, torch.Tensor]]:
        pre, acts = self.forward(x)
        loss, d_out = self.output_delta(acts[-1], y)
        deltas = self.backward_deltas(d_out, pre, self.feedback)
        grads = {}
        for k in range(self.P):
            grads[f"W{k}"] = torch.bmm(acts[k].transpose(1, 2), deltas[k])
            grads[f"b{k}"] = deltas[k].sum(1, keepdim=True)
        return loss, acts[-1], grads

    @torch.no_grad()
    def step(self, x: torch.Tensor, y: torch.Tensor, epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.config
        for group in self.opt.param_groups:  # StepLR(step_size=lr_step_epochs, gamma) stepped per epoch
            group["lr"] = c.lr * c.lr_step_gamma ** ((epoch - 1) // c.lr_step_epochs)
        loss, scores, grads = self.gradients(x, y)
        for k, g in grads.items():
            self.params[k].grad = g
        self.opt.step()
        return loss, scores

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward(x)[1][-1]

    @torch.no_grad()
    def representations(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        with self.first_seed_only():
            acts = self.forward(x.unsqueeze(0))[1][1:]
        return {name: a[0] for name, a in zip(layer_names(self.P), acts)}

    def extra_state(self) -> dict[str, Any]:
        return {"opt": self.opt.state_dict(), "feedback": {k: v.cpu() for k, v in self.feedback.items()}}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        if state:
            self.opt.load_state_dict(state["opt"])
            self.feedback = {k: v.to(self.device) for k, v in state["feedback"].items()}
