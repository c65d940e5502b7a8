"""Shared machinery of the supervised local-learning rules of the CorInfoMax comparison.

Bozkurt, Pehlevan & Erdogan (NeurIPS 2023) compare CorInfoMax with EP, CSM, PC, PC-Nudge, FA and BP on
the same fully connected nets (784-500-10, 3072-1000-10, ...), batch 20, 50 epochs, 10 seeds. This module
holds what those rules share beyond :class:`~ratenets.rules.base.SupervisedRule`:

* :class:`LocalConfig`: the ``preset`` the config was made for (checked against ``--dataset``), the input
  normalisation, and how the per-epoch training accuracy is measured;
* :class:`LocalRule`: presets from a per-rule table, an epoch loop that records the accuracy of the
  predictions made *during* training (free phase / forward pass) so that no extra pass over the 60 000
  training images is needed, a divergence check on every batch, per-seed random-sign draws;
* small numeric helpers (hard sigmoid, Xavier init, staged learning-rate decay, weight angles).

Every tensor is batch-first with the seed leading: states ``(seed, batch, unit)``, weights
``(seed, fan_in, fan_out)`` so that a layer is ``torch.baddbmm(b, r, W)``.
"""
from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from abc import abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
import xarray as xr

from bridge.errors import ConfigError, DivergenceError
from ratenets.data import ImageDataset, load_dataset
from ratenets.distributed import all_sum, all_true, local_batch
from ratenets.presets import Preset
from ratenets.rules.base import SupervisedConfig, SupervisedRule
from ratenets.train import progress as _progress

#: CIFAR-10 channel mean and std as the authors' CIFAR-10 scripts give them to ``Normalize`` (e.g.
#: CorInfoMax_CIFAR10_Simulation_V1.py: mean (0.4914, 0.4822, 0.4465), std 3 x (0.2023, 0.1994, 0.2010));
#: the std is the widely copied per-image value, not the dataset's per-pixel (0.247, 0.243, 0.261)
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2023, 0.1994, 0.2010)


@dataclass(frozen=True, kw_only=True)
class LocalConfig(SupervisedConfig):
    """Fields shared by the rules of the CorInfoMax comparison."""

    preset: str = "mnist"                 # the dataset whose paper settings these are; must match --dataset
    input_norm: Literal["unit", "cifar3std"] = "unit"   # Bozkurt et al. scripts: [0,1]; CIFAR (x-mean)/(3 std)
    train_eval: Literal["running", "full"] = "running"  # running: accuracy of the training-time predictions
    eval_batch_size: int = 1000

    def n_layers(self) -> int:
        return len(self.hidden) + 1

    def check_per_layer(self, *names: str, example: str = "") -> None:
        """ConfigError unless each named tuple field has one value per weight layer."""
        n = self.n_layers()
        for name in names:
            v = getattr(self, name)
            if len(v) != n:
                raise ConfigError(f"{name} has {len(v)} values but hidden={self.hidden!r} gives {n} weight "
                                  f"layers; give one value per layer{example}")


def hard_sigmoid(u: torch.Tensor) -> torch.Tensor:
    """The box nonlinearity clip(u, 0, 1) of Bozkurt et al. (2023), Sec. 3 (``hard_sigmoid`` in their code)."""
    return u.clamp(0.0, 1.0)


def xavier_uniform(gens: list[torch.Generator], fan_in: int, fan_out: int, shape: tuple[int, ...],
                   device: torch.device) -> torch.Tensor:
    """``(seed, *shape)`` weights drawn U(-a, a), a = sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio 2010)."""
    a = math.sqrt(6.0 / (fan_in + fan_out))
    return torch.stack([(torch.rand(shape, generator=g) * 2 - 1) * a for g in gens]).to(device)


def kaiming_uniform(gens: list[torch.Generator], fan_in: int, shape: tuple[int, ...], device: torch.device,
                    bound: float | None = None) -> torch.Tensor:
    """``(seed, *shape)`` weights U(-b, b), b = sqrt(6 / fan_in) (torch's kaiming_uniform_ with a = 0)."""
    b = math.sqrt(6.0 / fan_in) if bound is None else bound
    return torch.stack([(torch.rand(shape, generator=g) * 2 - 1) * b for g in gens]).to(device)


def stage_decay(epoch: int, starts: tuple[int, ...], factors: tuple[float, ...]) -> float:
    """Learning-rate multiplier ``factors[i] ** e`` at 0-based epoch ``e``, ``i`` the last stage with start <= e.

    Bozkurt et al.'s CorInfoMax scripts use ``0.95 ** e`` for e < 15, then ``0.9 ** e`` (a jump, as coded).
    """
    i = max(j for j, s in enumerate(starts) if s <= epoch) if any(s <= epoch for s in starts) else 0
    return float(factors[i]) ** epoch


def check_stages(cfg: Any, starts: str, factors: str) -> None:
    s, f = getattr(cfg, starts), getattr(cfg, factors)
    if len(s) != len(f) or not s or s[0] != 0 or list(s) != sorted(s):
        raise ConfigError(f"{starts} must be increasing epochs starting at 0 with one {factors} value each, "
                          f"got {s!r} and {f!r}")
    if any(not 0 < x <= 1 for x in f):
        raise ConfigError(f"{factors} must lie in (0, 1], got {f!r}")


def angle_degrees(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Angle between two equally shaped ``(seed, m, n)`` matrices as vectors, in degrees, per seed."""
    num = (a * b).sum(dim=(1, 2))
    den = a.flatten(1).norm(dim=1) * b.flatten(1).norm(dim=1)
    return torch.rad2deg(torch.arccos((num / den).clamp(-1.0, 1.0)))


class LocalRule(SupervisedRule):
    """Base of the rules of the CorInfoMax comparison (see the module docstring).

    Subclasses set ``PRESETS`` (:func:`ratenets.presets.for_datasets` of the paper's best setting per dataset;
    the config's ``preset`` field records the dataset) and implement
    :meth:`step`, which trains on one batch and returns the per-seed loss and the class scores that the
    network produced for that batch *before* its weight update (its free-phase / forward prediction).
    """

    Config: ClassVar[type] = LocalConfig
    PRESETS = {}

    @classmethod
    def preset_values(cls, preset: Preset) -> dict[str, Any]:
        """The preset's values, with the dataset it was made for in the ``preset`` field."""
        return {"preset": preset.dataset, **preset.values}

    @classmethod
    def load_data(cls, config: Any, dataset: str, data_root: str | None) -> ImageDataset:
        if config.preset != dataset:
            raise ConfigError(f"config preset {config.preset!r} does not match dataset {dataset!r}; "
                              f"drop --set preset=... or use --dataset {config.preset}")
        return load_dataset(dataset, data_root)

    def __init__(self, config: Any, data: ImageDataset, *, seeds: tuple[int, ...], device: torch.device,
                 progress: bool = False) -> None:
        if data.name != config.preset and data.name in self.preset_datasets():
            raise ConfigError(f"config preset {config.preset!r} does not match dataset {data.name!r}")
        super().__init__(config, data, seeds=seeds, device=device, progress=progress)
        if config.input_norm == "cifar3std":
            c = data.image_shape[0]
            if c != 3:
                raise ConfigError(f"input_norm 'cifar3std' needs RGB images, dataset {data.name!r} has {c} "
                                  "channel(s); use input_norm=unit")
            mean = torch.tensor(CIFAR_MEAN, device=device).repeat_interleave(self.n_in // 3)
            std = 3 * torch.tensor(CIFAR_STD, device=device).repeat_interleave(self.n_in // 3)
            self.x_train = (self.x_train - mean) / std  # (N, C*H*W), channel-major as flattened
            self.x_test = (self.x_test - mean) / std

    # --- to implement -------------------------------------------------------------------------------
    @abstractmethod
    def step(self, x: torch.Tensor, y: torch.Tensor, epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Train on one batch: ``x`` ``(seed, batch, n_in)``, ``y`` ``(seed, batch)``, 1-based ``epoch``.

        Returns the loss ``(seed,)`` and the pre-update class scores ``(seed, batch, n_out)``.
        """
        ...

    def epoch_metrics(self) -> dict[str, xr.DataArray]:
        """Extra per-epoch diagnostics (the CorInfoMax weight angles); none by default."""
        return {}

    # --- shared -------------------------------------------------------------------------------------
    def train_batch(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.step(x, y, 1)[0]

    def random_signs(self) -> torch.Tensor:
        """One random sign per seed from each seed's generator, ``(seed, 1, 1)`` (random-sign EP)."""
        s = [float(torch.randint(0, 2, (1,), generator=g).item()) * 2 - 1 for g in self.gens]
        return torch.tensor(s, device=self.device).view(-1, 1, 1)

    def epoch_order(self) -> torch.Tensor:
        """This epoch's order of the training set for every seed, ``(seed, n)``, from each seed's generator."""
        n = len(self.y_train)
        return torch.stack([torch.randperm(n, generator=g) for g in self.gens])

    def train_epoch(self, epoch: int) -> dict[str, xr.DataArray]:
        n, bs, S = len(self.y_train), self.config.batch_size, len(self.seeds)
        perms = self.epoch_order().to(self.device)  # (seed, n)
        nb = math.ceil(n / bs)
        loss_sum = torch.zeros(S, device=self.device, dtype=torch.float64)
        correct = torch.zeros(S, device=self.device, dtype=torch.float64)
        for b in _progress(range(nb), desc=f"{self.name} epoch {epoch}", enabled=self.show_progress):
            idx = local_batch(perms[:, b * bs:(b + 1) * bs])  # (seed, batch); this rank's slice under torchrun
            x, y = self.x_train[idx], self.y_train[idx]
            loss, scores = self.step(x, y, epoch)
            # under torchrun every rank must take the same branch; a rank may have no share of a short batch
            finite = idx.shape[1] == 0 or bool(torch.isfinite(loss).all())
            if not all_true(finite):
                bad = 0 if finite else int((~torch.isfinite(loss)).nonzero()[0, 0])
                raise DivergenceError(f"training diverged in epoch {epoch} (batch {b + 1} of {nb}): non-finite "
                                      f"states or weights for seed {self.seeds[bad]}; results of the finished "
                                      "epochs are kept")
            if idx.shape[1]:
                loss_sum += loss.detach().double() * idx.shape[1]
                correct += (scores.argmax(-1) == y).double().sum(1)
        loss_sum, correct = all_sum(loss_sum), all_sum(correct)
        self.check_params(epoch)
        if self.config.train_eval == "full":
            train_acc = self._accuracy(self.x_train, self.y_train)
            how = "training-set accuracy after the epoch"
        else:
            train_acc = (correct / n).cpu().numpy()
            how = "accuracy of the training-time predictions (before each batch's update) over the epoch"
        return {
            "train_loss": xr.DataArray(loss_sum.cpu().numpy() / n, dims=("seed",),
                                       attrs={"long_name": "mean training loss over the epoch", "units": "1"}),
            "train_accuracy": xr.DataArray(train_acc, dims=("seed",), attrs={"long_name": how, "units": "1"}),
        }

    def check_params(self, epoch: int) -> None:
        for k, v in self.params.items():
            if not bool(torch.isfinite(v).all()):
                raise DivergenceError(f"training diverged in epoch {epoch}: weights {k!r} are not finite")

    def evaluate(self, epoch: int) -> dict[str, xr.DataArray]:
        out = super().evaluate(epoch)
        out.update(self.epoch_metrics())
        return out

    @contextlib.contextmanager
    def first_seed_only(self) -> Iterator[None]:
        """Narrow every parameter to the first seed while the block runs (representations are seed 0's)."""
        saved = self.params
        self.params = {k: v[:1] for k, v in saved.items()}
        try:
            yield
        finally:
            self.params = saved


def layer_names(n_layers: int) -> list[str]:
    return [f"fc{i + 1}" for i in range(n_layers)]
