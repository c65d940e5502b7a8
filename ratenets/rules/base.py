"""The shared rule interface, and the base classes of the supervised and the self-supervised rules.

Every rule is one class in one file of ``ratenets/rules/``, registered by name in
``ratenets/rules/__init__.py``. The engine (:func:`ratenets.train.fit`) drives it:

.. code-block:: python

    rule = Rule(config, data, seeds=(0,), device=torch.device("cpu"), progress=False)
    for epoch in range(1, config.epochs + 1):
        metrics = rule.train_epoch(epoch) | rule.evaluate(epoch)  # dict of xarray.DataArray

Two families share their bookkeeping through a base class: :class:`SupervisedRule` (fully connected nets
with batched seeds) and :class:`SelfSupervisedRule` (LPL, the CLAPP family, DPC: one seed per instance).

A metric's DataArray has named dimensions (``seed`` first for batched seeds, then e.g. ``layer``) but no
``epoch`` dimension: the engine adds it.
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import numpy as np
import torch
import xarray as xr

from bridge.config import check_positive
from bridge.errors import ConfigError
from bridge.reps import PROBE_SIZE, representation
from ratenets.distributed import all_sum, local_batch
from ratenets.presets import Presets, for_datasets
from ratenets.data import (ImageDataset, batches, check_dataset_name, load_dataset, load_stl10, resolve_root,
                           to_float)
from ratenets.train import progress as _progress


class Rule(Protocol):
    """What the training engine needs of a rule."""

    name: ClassVar[str]
    Config: ClassVar[type]
    batched_seeds: ClassVar[bool]

    @classmethod
    def preset(cls, dataset: str, name: str | None = None) -> Any: ...

    @classmethod
    def load_data(cls, config: Any, dataset: str, data_root: str | None) -> Any: ...

    def __init__(self, config: Any, data: Any, *, seeds: tuple[int, ...], device: torch.device,
                 progress: bool) -> None: ...

    def train_epoch(self, epoch: int) -> dict[str, xr.DataArray]: ...

    def evaluate(self, epoch: int) -> dict[str, xr.DataArray]: ...

    def static_results(self) -> dict[str, xr.DataArray]: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


def check_dataset(rule: str, dataset: str, supported: tuple[str, ...]) -> None:
    """ConfigError for an unknown dataset, or one this rule has no preset for."""
    check_dataset_name(dataset)
    if dataset not in supported:
        raise ConfigError(f"rule {rule!r} has no preset for dataset {dataset!r} (supported: {', '.join(supported)})")


def seed_generators(seeds: tuple[int, ...]) -> list[torch.Generator]:
    """One CPU generator per seed, so a seed gives the same run alone or batched with others."""
    return [torch.Generator().manual_seed(int(s)) for s in seeds]


def uniform_init(gens: list[torch.Generator], fan_in: int, shape: tuple[int, ...], device: torch.device,
                 scale: float = 1.0) -> torch.Tensor:
    """``(seed, *shape)`` weights drawn U(-scale/sqrt(fan_in), scale/sqrt(fan_in)) per seed (torch's default)."""
    bound = scale / math.sqrt(fan_in)
    w = torch.stack([(torch.rand(shape, generator=g) * 2 - 1) * bound for g in gens])
    return w.to(device)


@dataclass(frozen=True, kw_only=True)
class SupervisedConfig:
    """Fields every supervised MLP rule has (subclasses add their own and change defaults)."""

    epochs: int = 50                      # Bozkurt et al. (2023), Sec. 4: 50 epochs
    batch_size: int = 20                  # Bozkurt et al. (2023), Sec. 4: batch size 20
    hidden: tuple[int, ...] = (500,)      # 784-500-10 (MNIST, F-MNIST); 3072-1000-10 for CIFAR-10
    eval_batch_size: int = 1000

    def __post_init__(self) -> None:
        check_positive(self, "epochs", "batch_size", "eval_batch_size")
        if not self.hidden or any(h <= 0 for h in self.hidden):
            raise ConfigError(f"hidden must list positive layer widths, got {self.hidden!r}")


class SupervisedRule(Presets, ABC):
    """Base of the supervised rules on a fully connected net ``input-hidden...-classes`` with batched seeds.

    Subclasses set ``name`` and ``Config`` and implement :meth:`init_params`, :meth:`train_batch` and
    :meth:`predict`. Every tensor carries the seed as its first dimension: inputs are ``(seed, batch,
    features)``; each seed sees its own data order, drawn from its own generator.
    """

    name: ClassVar[str] = ""
    Config: ClassVar[type] = SupervisedConfig
    batched_seeds: ClassVar[bool] = True
    #: the config defaults for every image set (subclasses list the paper's settings per dataset)
    PRESETS = for_datasets({d: {} for d in ("mnist", "fashion-mnist", "cifar10", "digits", "synthetic")})

    @classmethod
    def preset(cls, dataset: str, name: str | None = None, depth: int = 2) -> Any:
        """The config of preset ``name`` (default: the paper's setting for ``dataset``).

        ``depth=3`` is a shorthand for the preset ``<dataset>-3layer`` (the 3-layer nets of Table 2).
        """
        if depth != 2:
            super().preset(dataset)  # an unknown or unsupported dataset is reported first
            deep = [p.dataset for n, p in cls.PRESETS.items() if n == f"{p.dataset}-3layer"]
            if depth != 3 or dataset not in deep:
                raise ConfigError(f"rule {cls.name!r} has no {depth}-layer preset for {dataset!r} "
                                  f"(3-layer presets: {', '.join(deep) or 'none'})")
            name = f"{dataset}-3layer"
        return super().preset(dataset, name)

    @classmethod
    def load_data(cls, config: Any, dataset: str, data_root: str | None) -> ImageDataset:
        return load_dataset(dataset, data_root)

    def __init__(self, config: Any, data: ImageDataset, *, seeds: tuple[int, ...], device: torch.device,
                 progress: bool = False) -> None:
        self.config = config
        self.data = data
        self.seeds = tuple(seeds)
        self.device = device
        self.show_progress = progress
        self.gens = seed_generators(self.seeds)
        self.n_in = int(np.prod(data.image_shape))
        self.n_out = data.num_classes
        self.sizes = (self.n_in, *config.hidden, self.n_out)
        self.x_train = to_float(data.x_train).reshape(len(data.x_train), -1).to(device)
        self.y_train = data.y_train.to(device)
        self.x_test = to_float(data.x_test).reshape(len(data.x_test), -1).to(device)
        self.y_test = data.y_test.to(device)
        self.params: dict[str, torch.Tensor] = {}
        self.init_params()

    # --- to implement -------------------------------------------------------------------------------
    @abstractmethod
    def init_params(self) -> None:
        """Create ``self.params`` (tensors shaped ``(seed, ...)``), drawing from ``self.gens``."""
        ...

    @abstractmethod
    def train_batch(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Update the parameters on one batch; ``x`` ``(seed, batch, n_in)``, ``y`` ``(seed, batch)`` labels.

        Returns the batch loss per seed, shape ``(seed,)``.
        """
        ...

    @abstractmethod
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Class scores ``(seed, batch, n_out)`` for inputs ``(seed, batch, n_in)``."""
        ...

    # --- shared ---------------------------------------------------------------------------------------
    def one_hot(self, y: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.one_hot(y, self.n_out).to(self.x_train.dtype)

    def train_epoch(self, epoch: int) -> dict[str, xr.DataArray]:
        n, bs = len(self.y_train), self.config.batch_size
        # (seed, n): each seed's own permutation of the training set
        perms = torch.stack([torch.randperm(n, generator=g) for g in self.gens]).to(self.device)
        nb = math.ceil(n / bs)
        loss_sum = torch.zeros(len(self.seeds), device=self.device, dtype=torch.float64)
        correct = torch.zeros(len(self.seeds), device=self.device, dtype=torch.float64)
        it = _progress(range(nb), desc=f"{self.name} epoch {epoch}", enabled=self.show_progress)
        for b in it:
            idx = local_batch(perms[:, b * bs:(b + 1) * bs])  # (seed, batch); this rank's slice under torchrun
            x, y = self.x_train[idx], self.y_train[idx]
            loss = self.train_batch(x, y)
            if idx.shape[1]:
                loss_sum += loss.detach().double() * idx.shape[1]
        loss_sum = all_sum(loss_sum)
        train_acc = self._accuracy(self.x_train, self.y_train)
        return {
            "train_loss": xr.DataArray(loss_sum.cpu().numpy() / n, dims=("seed",),
                                       attrs={"long_name": "mean training loss over the epoch", "units": "1"}),
            "train_accuracy": xr.DataArray(train_acc, dims=("seed",),
                                           attrs={"long_name": "training-set accuracy after the epoch",
                                                  "units": "1"}),
        }

    @torch.no_grad()
    def _accuracy(self, x_all: torch.Tensor, y_all: torch.Tensor) -> np.ndarray:
        correct = torch.zeros(len(self.seeds), device=self.device)
        S = len(self.seeds)
        for idx in batches(len(y_all), self.config.eval_batch_size):
            x = x_all[idx.to(self.device)].unsqueeze(0).expand(S, -1, -1)
            pred = self.predict(x).argmax(-1)  # (seed, batch)
            correct += (pred == y_all[idx.to(self.device)].unsqueeze(0)).float().sum(1)
        return (correct / len(y_all)).cpu().numpy().astype(np.float64)

    def evaluate(self, epoch: int) -> dict[str, xr.DataArray]:
        return {"test_accuracy": xr.DataArray(self._accuracy(self.x_test, self.y_test), dims=("seed",),
                                              attrs={"long_name": "test-set accuracy", "units": "1"})}

    def static_results(self) -> dict[str, xr.DataArray]:
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {"params": {k: v.detach().cpu() for k, v in self.params.items()},
                "gens": [g.get_state() for g in self.gens], "extra": self.extra_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for k, v in state["params"].items():
            self.params[k].data.copy_(v.to(self.device))
        for g, s in zip(self.gens, state["gens"]):
            g.set_state(s)
        self.load_extra_state(state.get("extra", {}))

    def extra_state(self) -> dict[str, Any]:
        """Optimiser moments and other state beyond ``params`` (override when there is any)."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        return None

    @abstractmethod
    def representations(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Each layer's response ``(batch, units)`` of the first seed to flat inputs ``(batch, n_in)``."""
        ...

    def probe_representations_per_seed(self) -> dict[int, dict[str, xr.Dataset]]:
        """:meth:`probe_representations` of every seed: each seed's slice of the parameters in turn."""
        out: dict[int, dict[str, xr.Dataset]] = {}
        saved = self.params
        try:
            for i, s in enumerate(self.seeds):
                self.params = {k: v[i:i + 1] for k, v in saved.items()}
                reps = self.probe_representations()
                for r in reps.values():
                    r.attrs["seed"] = s
                out[s] = reps
        finally:
            self.params = saved
        return out

    @classmethod
    def estimate_bytes(cls, config: Any, data: ImageDataset, n_seeds: int) -> float:
        """Memory a run needs, roughly: weights with gradients and two optimiser moments, the float copy of
        the data, and the activations of a training and an evaluation batch (checked before any allocation)."""
        n_in = int(np.prod(data.image_shape))
        sizes = (n_in, *config.hidden, data.num_classes)
        weights = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
        units = sum(sizes[1:])
        acts = units * (4 * config.batch_size + 2 * config.eval_batch_size)
        n_data = (len(data.x_train) + len(data.x_test)) * n_in
        return 4.0 * (n_seeds * (4 * weights + acts) + n_data)

    def probe_representations(self) -> dict[str, xr.Dataset]:
        """Every layer's responses to the fixed probe set (the first test images), for the bridge."""
        n = min(PROBE_SIZE, len(self.y_test))
        reps = self.representations(self.x_test[:n])
        meta = {"probe_dataset": self.data.name, "probe_split": "test", "probe_count": n, "seed": self.seeds[0]}
        return {k: representation(v.detach().cpu().numpy(), layer=k, labels=self.y_test[:n].cpu().numpy(),
                                  attrs=meta) for k, v in reps.items()}


class SelfSupervisedRule(Presets):
    """Base of the self-supervised rules (LPL, CLAPP, CLAPP-s, Hinge-CPC, DPC): one seed per instance.

    It owns what these rules share -- the seed and device bookkeeping, Adam optimisers, the progress bar, the
    image loading (STL-10 with its unlabelled split), the probe representations for the bridge and the
    checkpoint state -- so that a rule file adds only its config, model, loss terms and evaluation. The
    engine (:func:`ratenets.train.fit`) builds one instance per seed.

    Subclasses set ``name``, ``Config``, ``PRESETS`` and ``state_attrs`` (the attributes a checkpoint holds,
    by name: modules, optimisers or lists of them, torch or NumPy generators, integers), and implement
    ``train_epoch``, ``evaluate`` and :meth:`probe_features` (or override :meth:`probe_representations`).
    """

    name: ClassVar[str] = ""
    Config: ClassVar[type] = object
    batched_seeds: ClassVar[bool] = False
    #: attributes saved in and restored from a checkpoint, in this order
    state_attrs: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: Any, data: Any, *, seeds: tuple[int, ...] = (0,),
                 device: torch.device = torch.device("cpu"), progress: bool = False) -> None:
        if len(seeds) != 1:
            raise ConfigError(f"{self.name} trains one seed per instance; the engine loops over seeds")
        self.config = config
        self.data = data
        self.seed = int(seeds[0])
        self.seeds = (self.seed,)
        self.device = device
        self.show_progress = progress

    # --- shared construction ----------------------------------------------------------------------------
    def seeded_generator(self) -> torch.Generator:
        """A CPU generator seeded with this run's seed (data order, augmentations, negative sampling)."""
        return torch.Generator().manual_seed(self.seed)

    @staticmethod
    def adam(params: Any, *, lr: float, weight_decay: float = 0.0, exempt_biases: bool = False,
             foreach: bool | None = None) -> torch.optim.Adam:
        """Adam on ``params``; ``exempt_biases``: weight decay on matrices only (tensors of 2+ dims)."""
        if exempt_biases:
            params = list(params)
            groups = [{"params": [p for p in params if p.ndim > 1], "weight_decay": weight_decay},
                      {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0}]
            return torch.optim.Adam(groups, lr=lr, foreach=foreach)
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, foreach=foreach)

    @classmethod
    def load_images(cls, dataset: str, data_root: str | None) -> ImageDataset:
        """The image set ``dataset``; STL-10 with its unlabelled split (what these rules train on)."""
        if dataset == "stl10":
            return load_stl10(resolve_root(data_root), unlabeled=True)
        return load_dataset(dataset, data_root)

    def progress(self, iterable: Any, epoch: int) -> Any:
        """``iterable`` with a progress bar ``<name> epoch <epoch>`` when the run shows progress."""
        return _progress(iterable, desc=f"{self.name} epoch {epoch}", enabled=self.show_progress)

    # --- results --------------------------------------------------------------------------------------
    def static_results(self) -> dict[str, xr.DataArray]:
        return {}

    def probe_features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Each layer's features ``{layer: (batch, units)}`` of uint8 test images ``x`` (for the bridge)."""
        raise NotImplementedError(f"{type(self).__name__} implements neither probe_features nor "
                                  "probe_representations")

    def probe_representations(self) -> dict[str, xr.Dataset]:
        """Every layer's responses to the fixed probe set (the first test images), for the bridge."""
        n = min(PROBE_SIZE, len(self.data.y_test))
        feats = self.probe_features(self.data.x_test[:n])
        meta = {"probe_dataset": self.data.name, "probe_split": "test", "probe_count": n, "seed": self.seed}
        labels = self.data.y_test[:n].numpy()
        return {k: representation(v.cpu().numpy(), layer=k, labels=labels, attrs=meta) for k, v in feats.items()}

    # --- checkpoints ----------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The attributes named in ``state_attrs``, then :meth:`extra_state`."""
        return {a: _save(getattr(self, a)) for a in self.state_attrs} | self.extra_state()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for a in self.state_attrs:
            restored = _load(getattr(self, a), state[a])
            if restored is not None:
                setattr(self, a, restored)
        self.load_extra_state(state)

    def extra_state(self) -> dict[str, Any]:
        """State beyond ``state_attrs`` (override when there is any), merged into :meth:`state_dict`."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        return None


def _save(obj: Any) -> Any:
    if isinstance(obj, torch.nn.Module | torch.optim.Optimizer):
        return obj.state_dict()
    if isinstance(obj, torch.Generator):
        return obj.get_state()
    if isinstance(obj, np.random.Generator):
        return obj.bit_generator.state
    if isinstance(obj, list):
        return [_save(o) for o in obj]
    if isinstance(obj, int | float):
        return obj
    raise TypeError(f"a checkpoint cannot hold a {type(obj).__name__} attribute")


def _load(obj: Any, saved: Any) -> Any:
    """Restore ``obj`` from ``saved`` in place; returns a new value for immutable ones (numbers), else None."""
    if isinstance(obj, torch.nn.Module | torch.optim.Optimizer):
        obj.load_state_dict(saved)
    elif isinstance(obj, torch.Generator):
        obj.set_state(saved)
    elif isinstance(obj, np.random.Generator):
        obj.bit_generator.state = saved
    elif isinstance(obj, list):
        if len(saved) != len(obj):
            raise ValueError(f"the checkpoint holds {len(saved)} states where this run has {len(obj)}")
        for o, s in zip(obj, saved):
            _load(o, s)
    elif isinstance(obj, bool):
        return bool(saved)
    elif isinstance(obj, int):
        return int(saved)
    elif isinstance(obj, float):
        return float(saved)
    else:
        raise TypeError(f"a checkpoint cannot restore a {type(obj).__name__} attribute")
    return None
