"""CorInfoMax (Hopfield form): supervised learning without weight transport by correlative information
maximisation. Bozkurt, Pehlevan & Erdogan (NeurIPS 2023, arXiv 2306.04810), Sec. 3-4 and App. C.

Each layer k has a state ``u`` (membrane potential) and a rate ``r = clip(u, 0, 1)``. The network
maximises the sum over adjacent layers of the log-det "correlative mutual information" minus
``(beta/2)||y - r^(P)||^2``; the forward weights ``W_ff`` and the backward weights ``W_fb`` are two
independent linear regressions (forward and backward prediction of one layer from the other), so no
weight is ever the transpose of another, and the lateral weights ``B`` track each layer's inverse
correlation matrix with forgetting factor ``lambda``.

Neural dynamics (explicit Euler, layers updated bottom to top within a step; ``gamma = (1-lambda)/lambda``):

* hidden layer k:  du = -g u + (1/eps)(W_ff r^(k-1) - u) + (1/eps)(W_fb r^(k+1) + eps(2 gamma B r + g r) - u)
* output layer P:  du = -g u + (1/eps)(W_ff r^(P-1) - u) + (gamma B r + g r - beta (r - y) - u)

Phases per batch: from zero states a free phase of ``t_free`` steps (beta = 0), then a nudged phase of
``t_nudged`` steps continuing from the free rates (u re-seeded from r) with beta = +-1 (random sign).
Learning (batch means, ``0`` free and ``beta`` nudged states, ``e_f = r^(k) - W_ff r^(k-1)``,
``e_b = r^(k-1) - W_fb r^(k)``):

* dW_ff^(k) = (lr_ff^(k) / beta) [e_f r^(k-1)T]_beta - [e_f r^(k-1)T]_0, every layer;
* dW_fb^(k) = (lr_fb^(k) / beta) [e_b r^(k)T]_beta - [e_b r^(k)T]_0, k >= 2 (W_fb^(1) is never used);
* B <- (B - gamma <(B r)(B r)T>) / lambda with nudged rates (Sherman-Morrison, denominator dropped).

The equations, signs and constants follow the authors' code (``ContrastiveCorInfoMaxHopfield`` in
``src/ContrastiveModels.py`` of BariscanBozkurt/Supervised-CorInfoMax, commit e5fb839), which is what the
paper's numbers come from. Differences from that code, none of which changes the math: batch-first
layout with seeds as a batch dimension; the outer-product means are single matmuls; the constant input
drive ``W_ff^(1) x`` is computed once per phase; for the first layer the contrast
``x^T(e_f^beta - e_f^0)`` is written as ``x^T(r^beta - r^0)`` (x is clamped); the debug-only running
correlation matrices are not kept.

Random streams: seed ``s`` draws everything as seed ``s`` of the authors' scripts does (``np.random.seed(s);
torch.manual_seed(s)`` before the model is built): the initial weights in their constructor's order
(per layer ``randn`` then Xavier-uniform for W_ff, Xavier-uniform for every W_fb including the unused
first one, per layer ``randn`` then Xavier-uniform A for ``B = A A^T``); each epoch's data order as their
``DataLoader(shuffle=True)`` draws it, including the draws of the per-epoch evaluation passes; and the
nudge sign as their ``beta = (2 np.random.randint(2) - 1) beta``, a running product of random signs.
Each seed keeps its own streams, so a seed gives the same run alone or batched with others. With the
same seed, the weights after five MNIST batches equal those of the authors' class to 4e-8 (float32
rounding of a different summation order; the gap grows through the clip's thresholds to ~1e-3 after
300 batches), and one epoch at seed 0 gives 94.56 % test accuracy against their 94.58 % (spec).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import torch
import xarray as xr

from bridge.config import check_positive, check_range
from bridge.errors import ConfigError
from ratenets import distributed
from ratenets.presets import for_datasets
from ratenets.rules.local import (LocalConfig, LocalRule, angle_degrees, check_stages, hard_sigmoid, layer_names,
                                  stage_decay)


#: largest neural step admitted: explicit Euler is stable below ~0.145 in theory, but the authors'
#: ablation (CorInfoMax_MNIST_neural_lr_start_Simulation_V2.py, Plot_CorInfoMax_MoreAblation_Results.ipynb)
#: gives 97.43 % at 0.05, 97.37 % at 0.075, 83.4 +- 31.1 % at 0.1 (unstable: some seeds at chance) and chance
#: at 0.15 on MNIST (on CIFAR-10, g = 0.1, 0.1 still gave 51.96 %), so 0.1 and above are refused
NEURAL_LR_LIMIT = 0.1


@dataclass(frozen=True, kw_only=True)
class CorInfoMaxConfig(LocalConfig):
    """Constants of CorInfoMax; defaults = the paper's best MNIST setting (setting 3 of the MNIST script)."""

    hidden: tuple[int, ...] = (500,)                  # Bozkurt et al. (2023), Table 1: 784-500-10
    lr_ff: tuple[float, ...] = (1.0, 0.7)             # Table 1 / App. C: forward lr per layer (MNIST)
    lr_fb: tuple[float, ...] = (0.15, 0.15)           # App. C: backward lr per layer (first one unused)
    lr_decay_epochs: tuple[int, ...] = (0, 15)        # App. C scripts: lr0 * 0.95**e for e < 15 ...
    lr_decay_factors: tuple[float, ...] = (0.95, 0.9)  # ... then lr0 * 0.9**e (a jump, as coded)
    lam: float = 0.99999                              # Sec. 3, forgetting factor lambda (App. C: 0.99999)
    eps: float = 0.15                                 # Sec. 3, epsilon of the log-det bound (App. C)
    beta: float = 1.0                                 # Sec. 3, nudge strength (App. C: 1)
    random_sign: bool = True                          # App. C: beta = +-1 drawn each batch (random-sign EP)
    g: float = 0.5                                    # code "hopfield_g" leak: 0.5 MNIST, 0.3 F-MNIST, 0.1 CIFAR
    neural_lr: float = 0.05                           # App. C: neural step eta_0 (0.05; 0.07 F-MNIST)
    neural_lr_rule: Literal["constant", "divide_by_slow_loop_index"] = "constant"  # App. C scripts
    neural_lr_stop: float = 0.001                     # floor of the decaying neural step (code)
    neural_lr_decay: float = 0.01                     # eta_t = max(eta_0 / (1 + 0.01 t), stop) (code)
    t_free: int = 30                                  # App. C: free-phase steps
    t_nudged: int = 10                                # App. C: nudged-phase steps
    b_init: Literal["random_psd", "identity"] = "random_psd"  # code: B = A A^T, A Xavier (spec §7: ablate)
    weight_decay: bool = False                        # code option lr * eps * W, off in every script

    def __post_init__(self) -> None:
        super().__post_init__()
        self.check_per_layer("lr_ff", "lr_fb", example=" (3-layer MNIST in the paper: lr_ff=1.1,0.75,0.6 "
                             "lr_fb=0,0.17,0.07)")
        check_stages(self, "lr_decay_epochs", "lr_decay_factors")
        check_range("lam", self.lam, 0.0, 1.0, lo_open=True, hi_open=True)
        check_positive(self, "eps", "neural_lr", "t_free", "neural_lr_stop")
        check_range("g", self.g, 0.0)
        check_range("neural_lr_decay", self.neural_lr_decay, 0.0)
        if self.t_nudged < 1:
            raise ConfigError(f"t_nudged must be >= 1, got {self.t_nudged!r}")
        if any(v < 0 for v in self.lr_ff + self.lr_fb):
            raise ConfigError(f"lr_ff and lr_fb must be >= 0, got {self.lr_ff!r} and {self.lr_fb!r}")
        if not self.beta > 0:
            raise ConfigError(f"beta must be > 0 for a contrastive rule (the nudged phase needs a nudge; the "
                              f"sign is random when random_sign is on), got {self.beta!r}")
        bound = self.stability_bound()
        if self.neural_lr >= bound:
            raise ConfigError(f"neural_lr must be < {bound:.4g} = 2 / (g + 2/eps), the explicit-Euler stability "
                              f"bound of the hidden units for g={self.g}, eps={self.eps} (spec §1; the paper "
                              f"uses 0.05), got {self.neural_lr!r}")
        if self.neural_lr >= NEURAL_LR_LIMIT:
            raise ConfigError(f"neural_lr must be < {NEURAL_LR_LIMIT}: the authors' ablation found 0.1 unstable "
                              f"(MNIST 83.4 +- 31.1 %, some seeds at chance; 0.075 gave 97.37 %), got "
                              f"{self.neural_lr!r}")

    def stability_bound(self) -> float:
        """Largest stable explicit-Euler step: 2 / (fastest decay rate of a hidden or output unit).

        A hidden unit decays at ``2/eps`` in the linear region of the clip and at ``g + 2/eps`` where it is
        saturated; the output layer at ``1/eps + 1 + |beta|`` or ``g + 1/eps + 1``.
        """
        hidden = self.g + 2.0 / self.eps
        out = max(1.0 / self.eps + 1.0 + self.beta, self.g + 1.0 / self.eps + 1.0)
        rate = max(hidden, out) if self.hidden else out
        return 2.0 / rate


#: the paper's best setting per dataset (App. C; spec §2), as config field values
CORINFOMAX_PRESETS: dict[str, dict[str, Any]] = {
    "mnist": {},
    "fashion-mnist": {"lr_ff": (0.3, 0.22), "lr_fb": (0.07, 0.07), "g": 0.3, "neural_lr": 0.07,
                      "neural_lr_rule": "divide_by_slow_loop_index", "lr_decay_epochs": (0, 20, 25),
                      "lr_decay_factors": (0.95, 0.9, 0.8)},
    "cifar10": {"hidden": (1000,), "lr_ff": (0.08, 0.04), "lr_fb": (0.04, 0.04), "g": 0.1, "lam": 0.99995,
                "input_norm": "cifar3std"},
    # no paper setting: MNIST's, for fast tests on scikit-learn's 8x8 digits and the synthetic set
    "digits": {},
    "synthetic": {},
}

#: the paper's 3-layer settings (Table 2): presets ``mnist-3layer``, ``cifar10-3layer`` (``--preset``)
CORINFOMAX_3LAYER: dict[str, dict[str, Any]] = {
    "mnist": {"hidden": (500, 500), "lr_ff": (1.1, 0.75, 0.6), "lr_fb": (0.0, 0.17, 0.07)},
    "cifar10": {"hidden": (1000, 500), "lr_ff": (0.11, 0.06, 0.035), "lr_fb": (0.0, 0.045, 0.015)},
}


class CorInfoMax(LocalRule):
    """CorInfoMax in Hopfield form with batched seeds (see the module docstring for the equations)."""

    name: ClassVar[str] = "corinfomax"
    Config: ClassVar[type] = CorInfoMaxConfig
    PRESETS = (for_datasets(CORINFOMAX_PRESETS)
               | for_datasets(CORINFOMAX_3LAYER, suffix="-3layer", base=CORINFOMAX_PRESETS))
    #: torchrun: each rank relaxes its slice of the batch; the batch sums of the updates (and of the
    #: lateral correlation estimate) are all-reduced, so every rank applies the full batch's update
    data_parallel: ClassVar[bool] = True

    def init_params(self) -> None:
        c = self.config
        self.P = len(self.sizes) - 1
        self.gam = (1.0 - c.lam) / c.lam
        if any(s >= 2 ** 32 for s in self.seeds):
            raise ConfigError(f"corinfomax seeds must be < 2**32 (numpy's seed range; the nudge signs are drawn "
                              f"as the authors' np.random), got {max(self.seeds)}")
        draws = [authors_init(g, self.sizes, c.b_init) for g in self.gens]
        for name in draws[0]:
            self.params[name] = torch.stack([d[name] for d in draws]).to(self.device)
        self.sign_rngs = [np.random.RandomState(int(s)) for s in self.seeds]
        self.signs = np.ones(len(self.seeds))

    def epoch_order(self) -> torch.Tensor:
        """Each seed's data order as the authors' ``DataLoader(shuffle=True)`` draws it from the torch RNG.

        Iterating such a loader takes one int64 from the global generator (the workers' base seed), then
        one more that seeds the permutation; each of their epochs then evaluates on the shuffled training
        loader (two more draws) and on the unshuffled test loader (one draw).
        """
        n = len(self.y_train)
        out = []
        for g in self.gens:
            _int64(g)
            out.append(torch.randperm(n, generator=torch.Generator().manual_seed(_int64(g))))
            for _ in range(3):
                _int64(g)
        return torch.stack(out)

    def random_signs(self) -> torch.Tensor:
        """The authors' nudge sign: ``beta <- (2 randint(2) - 1) beta`` from each seed's numpy stream."""
        self.signs = self.signs * np.array([2.0 * r.randint(2) - 1.0 for r in self.sign_rngs])
        return torch.tensor(self.signs, device=self.device, dtype=torch.float32).view(-1, 1, 1)

    def extra_state(self) -> dict[str, Any]:
        return {"sign_rngs": [r.get_state() for r in self.sign_rngs], "signs": self.signs.tolist()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        if "sign_rngs" in state:
            for r, st in zip(self.sign_rngs, state["sign_rngs"]):
                r.set_state(st)
            self.signs = np.asarray(state["signs"], dtype=np.float64)

    # --- dynamics ---------------------------------------------------------------------------------------
    def neural_step(self, t: int) -> float:
        c = self.config
        if c.neural_lr_rule == "constant":
            return c.neural_lr
        return max(c.neural_lr / (1.0 + c.neural_lr_decay * t), c.neural_lr_stop)

    def relax(self, a0: torch.Tensor, r: list[torch.Tensor], y: torch.Tensor, beta: torch.Tensor | None,
              steps: int) -> list[torch.Tensor]:
        """Run ``steps`` Euler steps of the neural dynamics from rates ``r`` (u re-seeded as r).

        Parameters
        ----------
        a0 : (seed, batch, n1) tensor
            The clamped input's drive ``(W_ff^(1) x)^T``.
        r : list of (seed, batch, n_k) tensors
            Rates of layers 1..P; not modified.
        y : (seed, batch, classes) tensor
            One-hot targets.
        beta : (seed, 1, 1) tensor or None
            Nudge strength per seed; None for the free phase.
        """
        c, p = self.config, self.params
        inv, g, gam, P = 1.0 / c.eps, c.g, self.gam, self.P
        r = list(r)
        u = [x.clone() for x in r]
        Bt = [p[f"B{k}"].transpose(1, 2) for k in range(P)]  # r @ B^T = rows of (B r)^T
        for t in range(steps):
            eta = self.neural_step(t)
            for k in range(P):
                basal = a0 if k == 0 else torch.bmm(r[k - 1], p[f"Wf{k}"])
                # u + eta du, with du collected per term so that each term is one fused op:
                # hidden: du = -(g + 2/eps) u + (1/eps)(basal + apical) + 2 gamma B r + g r
                # output: du = -(g + 1/eps + 1) u + (1/eps) basal + gamma B r + g r - beta (r - y)
                if k < P - 1:
                    drive = basal + torch.bmm(r[k + 1], p[f"Wb{k + 1}"])
                    new = torch.baddbmm(drive, r[k], Bt[k], beta=eta * inv, alpha=2 * eta * gam)
                    decay = 1.0 - eta * (g + 2 * inv)
                else:
                    new = torch.baddbmm(basal, r[k], Bt[k], beta=eta * inv, alpha=eta * gam)
                    if beta is not None:
                        new.addcmul_(r[k] - y, beta, value=-eta)
                    decay = 1.0 - eta * (g + inv + 1)
                new.add_(r[k], alpha=eta * g).add_(u[k], alpha=decay)
                u[k] = new
                r[k] = hard_sigmoid(new)
        return r

    def free_phase(self, x: torch.Tensor, y: torch.Tensor | None = None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        a0 = torch.bmm(x, self.params["Wf0"])  # (seed, batch, n1)
        S, B = x.shape[:2]
        zeros = [torch.zeros(S, B, n, device=x.device, dtype=x.dtype) for n in self.sizes[1:]]
        yy = y if y is not None else torch.zeros_like(zeros[-1])
        return a0, self.relax(a0, zeros, yy, None, self.config.t_free)

    # --- learning ---------------------------------------------------------------------------------------
    def step(self, x: torch.Tensor, y: torch.Tensor, epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.config
        y1 = self.one_hot(y)
        a0, r0 = self.free_phase(x, y1)
        scores = r0[-1]
        loss = ((scores - y1) ** 2).mean(dim=(1, 2))
        beta = c.beta * (self.random_signs() if c.random_sign else torch.ones(len(self.seeds), 1, 1,
                                                                                 device=self.device))
        rb = self.relax(a0, r0, y1, beta, c.t_nudged)
        self.apply_updates(x, r0, rb, beta, epoch)
        return loss, scores

    @torch.no_grad()
    def apply_updates(self, x: torch.Tensor, r0: list[torch.Tensor], rb: list[torch.Tensor], beta: torch.Tensor,
                      epoch: int) -> None:
        """The contrastive W_ff / W_fb updates and the lateral B update of one batch (module docstring)."""
        c, p = self.config, self.params
        # the global batch (torchrun; on x's device, as NCCL needs)
        n = int(distributed.all_sum(torch.tensor(float(x.shape[1]), device=x.device)).item())
        decay = stage_decay(epoch - 1, c.lr_decay_epochs, c.lr_decay_factors)
        L0, Lb = [x, *r0], [x, *rb]
        updates: dict[str, torch.Tensor] = {}
        for k in range(self.P):
            scale = (c.lr_ff[k] * decay / n) / beta  # (seed, 1, 1)
            if k == 0:
                # x is clamped: e_f^beta - e_f^0 = r^beta - r^0
                updates[f"Wf{k}"] = scale * torch.bmm(x.transpose(1, 2), Lb[1] - L0[1])
            else:
                Wf = p[f"Wf{k}"]
                eb, e0 = Lb[k + 1] - torch.bmm(Lb[k], Wf), L0[k + 1] - torch.bmm(L0[k], Wf)
                pre = torch.cat([Lb[k], L0[k]], dim=1)  # (seed, 2 batch, n_{k-1})
                updates[f"Wf{k}"] = scale * torch.bmm(pre.transpose(1, 2), torch.cat([eb, -e0], dim=1))
                Wb = p[f"Wb{k}"]
                fb_scale = (c.lr_fb[k] * decay / n) / beta
                ebb, eb0 = Lb[k] - torch.bmm(Lb[k + 1], Wb), L0[k] - torch.bmm(L0[k + 1], Wb)
                post = torch.cat([Lb[k + 1], L0[k + 1]], dim=1)  # (seed, 2 batch, n_k)
                updates[f"Wb{k}"] = fb_scale * torch.bmm(post.transpose(1, 2), torch.cat([ebb, -eb0], dim=1))
        zz = [torch.bmm(z.transpose(1, 2), z) for z in  # rows of (B r)^T, (seed, batch, n_k), per layer
              (torch.bmm(rb[k], p[f"B{k}"].transpose(1, 2)) for k in range(self.P))]
        sums = distributed.all_sum_many([*updates.values(), *zz])  # batch sums over the ranks' slices
        updates, zz = dict(zip(updates, sums[:len(updates)])), sums[len(updates):]
        for name, d in updates.items():
            p[name].add_(d)
            if c.weight_decay:
                k = int(name[2:])
                lr = c.lr_ff[k] if name.startswith("Wf") else c.lr_fb[k]
                p[name].sub_(lr * decay * c.eps * p[name])
        for k in range(self.P):
            p[f"B{k}"].sub_(self.gam / n * zz[k]).div_(c.lam)

    # --- inference and diagnostics ----------------------------------------------------------------------
    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        return self.free_phase(x)[1][-1]

    def epoch_metrics(self) -> dict[str, xr.DataArray]:
        """Theta^(k) = arccos(tr(W_ff W_fb) / (|W_ff| |W_fb|)) in degrees for k >= 2 (spec §5)."""
        if self.P < 2:
            return {}
        ang = torch.stack([angle_degrees(self.params[f"Wf{k}"], self.params[f"Wb{k}"].transpose(1, 2))
                           for k in range(1, self.P)], dim=1)  # (seed, layer)
        return {"forward_backward_angle": xr.DataArray(
            ang.cpu().double().numpy(), dims=("seed", "layer"), coords={"layer": layer_names(self.P)[1:]},
            attrs={"long_name": "angle between forward weights W_ff and transposed backward weights W_fb",
                   "units": "degree"})}

    @torch.no_grad()
    def representations(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        with self.first_seed_only():
            r = self.free_phase(x.unsqueeze(0))[1]
        return {name: ri[0] for name, ri in zip(layer_names(self.P), r)}


def _int64(g: torch.Generator) -> int:
    """One draw of ``torch.empty((), dtype=int64).random_()``, as the DataLoader takes its seeds."""
    return int(torch.empty((), dtype=torch.int64).random_(generator=g).item())


def _xavier(g: torch.Generator, rows: int, cols: int) -> torch.Tensor:
    """A ``(rows, cols)`` matrix drawn exactly as ``torch.nn.init.xavier_uniform_`` draws it."""
    return torch.nn.init.xavier_uniform_(torch.empty(rows, cols), generator=g)


def authors_init(g: torch.Generator, sizes: tuple[int, ...], b_init: str) -> dict[str, torch.Tensor]:
    """Initial weights of one seed, drawn in the order of the authors' constructor, batch-first layout.

    Their constructor draws, for every layer, ``randn`` (then overwritten) and Xavier-uniform W_ff
    (out x in); then Xavier-uniform W_fb (in x out) for every layer, the never-used first one included;
    then, per layer, ``randn`` (overwritten) and Xavier-uniform A for ``B = A A^T``.
    """
    pairs = list(zip(sizes[:-1], sizes[1:]))
    out: dict[str, torch.Tensor] = {}
    for k, (a, b) in enumerate(pairs):
        torch.randn(b, a, generator=g)
        out[f"Wf{k}"] = _xavier(g, b, a).T.contiguous()  # stored as (W_ff)^T: r^(k-1) @ Wf
    for k, (a, b) in enumerate(pairs):
        wb = _xavier(g, a, b)
        if k >= 1:
            out[f"Wb{k}"] = wb.T.contiguous()  # stored as (W_fb)^T: r^(k) @ Wb
    for k, (_, b) in enumerate(pairs):
        if b_init == "identity":
            out[f"B{k}"] = torch.eye(b)
        else:
            torch.randn(b, b, generator=g)
            A = _xavier(g, b, b)
            out[f"B{k}"] = A @ A.T
    return out
