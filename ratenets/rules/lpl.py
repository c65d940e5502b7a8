"""Latent Predictive Learning (LPL) in deep rate networks, layer-local, with every ablation as one switch.

Halvagal & Zenke (2023), Nat. Neurosci. 26:1906-1915, Eqs. (4)-(7) and Methods, **as corrected by the
authors' erratum** (official repository ``fmi-basel/latent-predictive-learning``, ``erratum/erratum.md``,
PR #9): the decorrelation term is the mean squared off-diagonal covariance, not published Eq. (6).
Each block's loss, on its global-average-pooled output ``z`` (``(batch, units)``) for two views, is

    L = pred_coeff * L_pred + hebb_coeff * L_Hebb + decorr_coeff * L_dec

- ``L_pred = (1/(B M)) sum_b sum_i (z_i^b(1) - z_i^b(2))^2`` (predictive, Eq. 4 up to the factor 1/2);
- ``L_Hebb = -(1/M) sum_i log(sigma_i^2 + eps)``, ``sigma_i^2 = (1/(B-1)) sum_b (z_i^b - SG zbar_i)^2``
  (Hebbian, Eq. 5), averaged over the two views;
- ``L_dec = (1/(M^2 - M)) sum_{i != k} C_ik^2``, ``C_ik = (1/(B-1)) sum_b c_i^b c_k^b``,
  ``c = z - SG zbar`` (decorrelation, erratum form), averaged over the two views;

with the batch mean detached (stop-gradient, ``SG``) as in the official ``models/module.py``. Layer losses
are summed; every block's input is detached, so a block learns only from its own loss. The official
deep-net code has **no** stop-gradient in the predictive term (both views get a gradient:
``pred_form="symmetric"``, the default); the paper writes ``(1/2) sum (z(t) - SG z(t - dt))^2``
(``pred_form="stopgrad"``: only view 1 gets a gradient, with the same mean-reduced normalisation). Both
give the same fixed points; the symmetric form's gradient is twice as large in total.

The loss terms are pure functions of ``(batch, units)`` tensors in :mod:`ratenets.losses.lpl`
(:func:`~ratenets.losses.lpl.lpl_terms`, :func:`~ratenets.losses.lpl.lpl_loss`), so any network can use them.
Defaults are the official ``lpl_main.py`` values (which its README calls the paper's): coefficients 1, 1,
10; Adam lr 1e-3, weight decay 1.5e-6 (not on biases), 10 warm-up epochs from 0 then cosine to 1e-6, batch
1024, 800 epochs; the schedule is stepped per batch here (per epoch there). The MNIST/Fashion-MNIST and
small-dataset presets (:data:`LPL_PRESETS`) are ours (no such run in the paper), sized for a CPU.

Variants (each one config switch): ``pred_coeff=0``, ``hebb_coeff=0``, ``decorr_coeff=0``,
``shuffle_positives``, ``stale_estimates``, ``no_pooling``, ``projector``, ``objective="negsample"``,
``end_to_end``, ``objective="supervised"``; baselines ``baseline="pixels"`` (linear readout of the
pixels) and ``baseline="random_init"`` (the untrained network), one command each.

As the official ``models/module.py``: ``shuffle_positives`` pairs view 1 with view 2 of a random permutation of
the batch (one ``torch.randperm`` per batch for all layers; ``shuffle_form="roll"`` is our earlier cyclic
shift); ``stale_estimates`` feeds the previous batch's view-averaged mean and variance to the Hebbian term
only, the decorrelation term keeps the batch mean. The linear probe follows ``eval.py`` by default
(``probe="eval_py"``: held-out split, raw features); ``probe="zscore"`` is the earlier standardised probe.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
import xarray as xr
from torch import nn

from bridge.config import check_positive
from bridge.errors import ConfigError, DivergenceError
from bridge.measures import participation_ratio
from ratenets.data import ImageDataset
from ratenets.encoders.conv import BlockEncoder, build_encoder, global_pool
from ratenets import distributed
from ratenets.encoders.spiking import (SpikingFields, check_data_parallel, epoch_firing_rates, eval_firing_rates,
                                       reset_firing_counts, sum_training_counts, with_neurons)
# the loss terms are pure functions in ratenets.losses.lpl; their names stay importable from here
from ratenets.losses.lpl import (decorrelation_loss, hebbian_loss, lpl_loss, lpl_terms, lpl_terms_maps,  # noqa: F401
                                 negsample_terms, predictive_loss, stale_update)
from ratenets.probes import collect_features, probe_layers
from ratenets.presets import Preset
from ratenets.rules.base import SelfSupervisedRule
from ratenets.views import SequenceParams, SequenceViews, SimCLRViewParams, SimCLRViews


# ================================================================================================================
# config

@dataclass(frozen=True, kw_only=True)
class LPLConfig(SpikingFields):
    """All constants of an LPL run; defaults are the official code's (Halvagal & Zenke 2023).

    The neuron fields (``neuron``, ``timesteps``, ...; :class:`ratenets.encoders.spiking.SpikingFields`) make
    the encoder spiking; the default ``neuron="rate"`` is the paper's rate network.
    """

    # optimisation (official lpl_main.py defaults; Methods "Optimization")
    epochs: int = 800                     # max_epochs 800
    batch_size: int = 1024                # batch 1024
    lr: float = 1e-3                      # Adam lr 1e-3
    weight_decay: float = 1.5e-6          # Adam weight decay, not on biases
    warmup_epochs: float = 10.0           # LinearWarmupCosineAnnealing: 10 warm-up epochs from lr 0
    final_lr: float = 1e-6                # ... cosine down to 1e-6
    # the objective (Eqs. 4-6, erratum form of Eq. 6)
    pred_coeff: float = 1.0               # --pull_coeff 1.0 (predictive term)
    hebb_coeff: float = 1.0               # --push_coeff 1.0 (Hebbian term)
    decorr_coeff: float = 10.0            # --decorr_coeff 10.0 (decorrelation term)
    var_eps: float = 1e-4                 # epsilon in log(sigma^2 + eps), models/module.py
    pred_form: Literal["symmetric", "stopgrad"] = "symmetric"  # official code: symmetric; paper: stop-gradient
    objective: Literal["lpl", "negsample", "supervised"] = "lpl"  # negsample: NegSampleBaseline (cosine)
    end_to_end: bool = False              # --train_end_to_end: one loss on the last block, no detaching
    shuffle_positives: bool = False       # --shuffle_positives: pair z1 with z2 of another image
    shuffle_form: Literal["permutation", "roll"] = "permutation"  # official: torch.randperm per batch; roll: ours
    stale_estimates: bool = False         # --stale_estimates: previous batch's mean and variance
    no_pooling: bool = False              # --no_pooling: losses on unpooled maps
    projector: bool = False               # --use_projector_mlp: Linear(C, 2048)-ReLU-Linear(2048, 256)-ReLU
    projector_dims: tuple[int, ...] = (2048, 256)
    # encoder (models/encoders.py)
    encoder: Literal["vgg11", "conv", "mlp"] = "vgg11"
    conv_channels: tuple[int, ...] = (32, 64, 128)   # small conv net (ours, for CPU runs)
    mlp_hidden: tuple[int, ...] = (512, 512, 512)    # MLP (ours, for CPU runs)
    width_scale: float = 1.0              # VGG-11 channel multiplier (1 = the paper's)
    bias: bool = True                     # biases on unless --no_biases
    # views (datasets/simclr_transforms.py), or temporal sequences (datasets/sequence_generator.py)
    views: Literal["simclr", "sequence"] = "simclr"
    crop_scale: tuple[float, float] = (0.08, 1.0)
    flip_p: float = 0.5
    jitter_strength: float = 1.0          # ColorJitter(0.8s, 0.8s, 0.8s, 0.2s)
    jitter_p: float = 0.8
    grey_p: float = 0.2
    blur_p: float = 0.5
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    seq_length: int = 4                   # frames per temporal sequence (views="sequence")
    seq_max_shift: float = 0.15           # position step per frame, fraction of the image side
    seq_max_log_scale: float = 0.08       # |log scale| step per frame
    seq_max_rotation_deg: float = 12.0    # rotation step per frame
    # baselines: the pixels themselves, or the untrained network
    baseline: Literal["none", "pixels", "random_init"] = "none"
    train_images: int = 0                 # 0: the whole training set
    # evaluation (eval.py: Adam lr 1e-3, 20 epochs, batch 512 on a 10k split)
    probe: Literal["eval_py", "zscore"] = "eval_py"  # eval_py: held-out split, raw features, unshuffled batches,
    #                                                  nn.Linear init (official eval.py); zscore: our earlier probe
    #                                                  (standardised, shuffled, zero init, on training images)
    probe_holdout: float = 0.2            # eval_py: pl_bolts val_split 0.2 (CIFAR-10: 10k of 50k), capped below
    probe_train_images: int = 10000
    probe_epochs: int = 20
    probe_lr: float = 1e-3
    probe_batch_size: int = 512
    probe_layers: tuple[str, ...] = ()    # () = every layer
    eval_batch_size: int = 1000

    def __post_init__(self) -> None:
        super().__post_init__()  # the neuron fields
        if self.spiking and self.baseline == "pixels":
            raise ConfigError(f"baseline 'pixels' reads the pixels and has no neurons; neuron {self.neuron!r} "
                              "needs baseline 'none' or 'random_init'")
        check_positive(self, "epochs", "batch_size", "lr", "warmup_epochs", "var_eps", "width_scale",
                       "probe_train_images", "probe_epochs", "probe_lr", "probe_batch_size", "eval_batch_size")
        if self.batch_size < 2:
            raise ConfigError(f"batch_size must be >= 2 (the batch variance needs two samples), got {self.batch_size}")
        for name in ("pred_coeff", "hebb_coeff", "decorr_coeff", "weight_decay", "final_lr", "jitter_strength",
                     "train_images"):
            v = getattr(self, name)
            if not v >= 0 or not math.isfinite(v):
                raise ConfigError(f"{name} must be a finite number >= 0, got {v!r}")
        if (self.objective == "lpl" and self.baseline == "none"
                and self.pred_coeff == 0 and self.hebb_coeff == 0 and self.decorr_coeff == 0):
            raise ConfigError("pred_coeff, hebb_coeff and decorr_coeff are all 0, so there is nothing to learn; "
                              "set one > 0 (for the untrained network use --set baseline=random_init)")
        if self.objective == "negsample" and self.pred_coeff == 0 and self.hebb_coeff == 0:
            raise ConfigError("objective 'negsample' needs pred_coeff or hebb_coeff > 0 (pull and push weights)")
        if self.final_lr > self.lr:
            raise ConfigError(f"final_lr must be <= lr ({self.lr}), got {self.final_lr!r}")
        if any(c <= 0 for c in (*self.conv_channels, *self.mlp_hidden, *self.projector_dims)):
            raise ConfigError("conv_channels, mlp_hidden and projector_dims must list positive widths")
        if not self.conv_channels or not self.mlp_hidden or not self.projector_dims:
            raise ConfigError("conv_channels, mlp_hidden and projector_dims must not be empty")
        if self.no_pooling and (self.projector or self.objective != "lpl" or self.stale_estimates):
            raise ConfigError("no_pooling works only with objective 'lpl', without projector and stale_estimates")
        if self.stale_estimates and self.objective != "lpl":
            raise ConfigError(f"stale_estimates applies to objective 'lpl' only, got objective {self.objective!r}")
        if not 0 < self.probe_holdout < 1:
            raise ConfigError(f"probe_holdout must be a fraction in (0, 1), got {self.probe_holdout!r}")
        for name in ("flip_p", "jitter_p", "grey_p", "blur_p"):
            v = getattr(self, name)
            if not 0 <= v <= 1:
                raise ConfigError(f"{name} must be a probability in [0, 1], got {v!r}")
        self.view_params()  # validates the augmentation ranges
        self.sequence_params()

    def view_params(self) -> SimCLRViewParams:
        s = self.jitter_strength
        return SimCLRViewParams(crop_scale=self.crop_scale, flip_p=self.flip_p,
                                jitter=(0.8 * s, 0.8 * s, 0.8 * s, min(0.2 * s, 0.5)), jitter_p=self.jitter_p,
                                grey_p=self.grey_p, blur_p=self.blur_p, blur_sigma=self.blur_sigma)

    def sequence_params(self) -> SequenceParams:
        return SequenceParams(length=self.seq_length, max_shift=self.seq_max_shift,
                              max_log_scale=self.seq_max_log_scale, max_rotation_deg=self.seq_max_rotation_deg)


# ================================================================================================================
# presets: the paper's config for CIFAR-10/STL-10; small CPU-sized nets (ours) for the other datasets

#: ours: 1 epoch is a few CPU minutes. Temporal digit sequences (the Shapes3D-like setting) on an MLP; small
#: batches give enough Adam steps in one epoch; a faster probe (lr 1e-2) converges in its 20 epochs. The conv
#: net with SimCLR views is --set encoder=conv --set views=simclr.
_MNIST = dict(epochs=10, batch_size=64, warmup_epochs=0.1, encoder="mlp", mlp_hidden=(512, 512, 512), views="sequence",
              conv_channels=(32, 64, 128), crop_scale=(0.3, 1.0), flip_p=0.0, probe_lr=1e-2)
#: digits (8x8) and synthetic (16x16): seconds-long runs for tests. The probe is the standardised one: eval.py's
#: raw-feature probe does not converge in the few Adam steps ~1000 images give (digits, LPL conv2 readout 0.33
#: with it, 0.88 standardised: `ratespike train lpl --dataset digits --epochs 2`)
_SMALL = dict(epochs=5, batch_size=128, warmup_epochs=0.5, encoder="conv", conv_channels=(16, 32),
              crop_scale=(0.5, 1.0), flip_p=0.0, blur_p=0.0, probe_train_images=1000, probe_epochs=30,
              probe_lr=1e-2, probe="zscore")
LPL_PRESETS: dict[str, Preset] = {
    "mnist": Preset("mnist", _MNIST), "fashion-mnist": Preset("fashion-mnist", _MNIST),
    "cifar10": Preset("cifar10", {}, "the paper's (official lpl_main.py defaults)"),
    "stl10": Preset("stl10", {}, "the paper's (official lpl_main.py defaults)"),
    "digits": Preset("digits", _SMALL), "synthetic": Preset("synthetic", _SMALL),
}


# ================================================================================================================
# the rule

def lr_at(step: int, total: int, warmup: int, lr: float, final_lr: float) -> float:
    """Linear warm-up from 0 over ``warmup`` steps, then cosine from ``lr`` to ``final_lr`` at ``total``."""
    if step < warmup:
        return lr * (step + 1) / warmup
    span = max(total - warmup, 1)
    t = min(step - warmup, span) / span
    return final_lr + 0.5 * (lr - final_lr) * (1 + math.cos(math.pi * t))


def _projector(width: int, dims: tuple[int, ...]) -> nn.Sequential:
    layers: list[nn.Module] = []
    n = width
    for d in dims:
        layers += [nn.Linear(n, d), nn.ReLU()]  # the official projector ends with a ReLU too
        n = d
    return nn.Sequential(*layers)


def activity_stats(f: torch.Tensor, var_eps: float) -> tuple[float, float, float]:
    """Participation ratios and dead-unit fraction of responses ``f`` ``(sample, unit)``.

    A unit counts as *dead* when its variance over the samples is below ``var_eps``, the resolution of the
    Hebbian term (``log(sigma^2 + eps)`` cannot tell a smaller variance from none). The participation ratio
    (:func:`bridge.measures.participation_ratio`) is scale-free, so a collapsed layer whose units all keep a
    variance of 1e-6 can still show a large one; hence two numbers are returned.

    Returns
    -------
    pr_all : float
        PR of all units (0 when there is no variance at all).
    pr_active : float
        PR of the units that are not dead (0 when every unit is dead), the collapse-aware measure.
    dead_fraction : float
    """
    x = f.double().numpy()
    var = x.var(0, ddof=1) if len(x) > 1 else np.zeros(x.shape[1])
    alive = var >= var_eps
    p_all = participation_ratio(x)
    p_act = participation_ratio(x[:, alive]) if alive.any() else 0.0
    clean = lambda p: float(p) if np.isfinite(p) else 0.0  # noqa: E731 - NaN only for a constant representation
    return clean(p_all), clean(p_act), float(1.0 - alive.mean())


class LPL(SelfSupervisedRule):
    """Latent Predictive Learning on a layer-local encoder (see the module docstring).

    One seed per instance (the engine loops seeds). Tensors are batch-first; the two views of a batch run
    through each block together as one ``(2B, ...)`` batch.
    """

    name: ClassVar[str] = "lpl"
    Config: ClassVar[type] = LPLConfig
    PRESETS = LPL_PRESETS
    # torchrun: every rank draws the global batch's views and trains on its slice; each layer's features are
    # all-gathered (ratenets.distributed.gather_batch) before the loss, so the variance, decorrelation, stale
    # and shuffled-positive terms see the whole batch, and the parameter gradients are summed over the ranks
    data_parallel: ClassVar[bool] = True
    state_attrs: ClassVar[tuple[str, ...]] = ("encoder", "heads", "opt", "step_count", "gen")

    @classmethod
    def load_data(cls, config: LPLConfig, dataset: str, data_root: str | None) -> ImageDataset:
        data = cls.load_images(dataset, data_root)
        if config.train_images:
            data = data.subset(config.train_images, None)
        return data

    def __init__(self, config: LPLConfig, data: ImageDataset, *, seeds: tuple[int, ...] = (0,),
                 device: torch.device = torch.device("cpu"), progress: bool = False) -> None:
        super().__init__(config, data, seeds=seeds, device=device, progress=progress)
        cfg = config
        self.gen = self.seeded_generator()  # data order and augmentations
        torch.manual_seed(self.seed)  # parameter initialisation
        # the unlabelled STL-10 split, when loaded, is what LPL trains on (the labels are only for probes)
        use_unlabeled = data.x_unlabeled is not None and cfg.objective != "supervised"
        # eval.py probe: the first n_probe training images are held out of self-supervised training (pl_bolts'
        # val split); the zscore probe uses the first probe_train_images, which the encoder also trains on
        n_tr = len(data.x_train)
        if cfg.probe == "eval_py":
            self.n_probe = max(1, min(cfg.probe_train_images, int(round(cfg.probe_holdout * n_tr))))
        else:
            self.n_probe = min(cfg.probe_train_images, n_tr)
        hold = self.n_probe if (cfg.probe == "eval_py" and not use_unlabeled) else 0
        x_ssl = data.x_unlabeled if use_unlabeled else data.x_train[hold:]
        self.x_ssl = x_ssl[:cfg.train_images] if cfg.train_images else x_ssl
        self.y_ssl = None if use_unlabeled else data.y_train[hold:hold + len(self.x_ssl)]
        ref = data.x_train[:10000].float() / 255.0
        mean = ref.mean(dim=(0, 2, 3)).tolist()
        std = ref.std(dim=(0, 2, 3)).clamp(min=1e-3).tolist()
        if cfg.views == "simclr":
            self.views: SimCLRViews | SequenceViews = SimCLRViews(cfg.view_params(), mean, std)
        else:
            self.views = SequenceViews(cfg.sequence_params(), mean, std)
        self.encoder: BlockEncoder = build_encoder(cfg.encoder, data.image_shape, conv_channels=cfg.conv_channels,
                                                   mlp_hidden=cfg.mlp_hidden, bias=cfg.bias,
                                                   width_scale=cfg.width_scale).to(device)
        self.encoder = with_neurons(self.encoder, cfg)  # spiking blocks when cfg.neuron != "rate"
        self.layer_names = ("pixels",) if cfg.baseline == "pixels" else self.encoder.layer_names
        probe = cfg.probe_layers or self.layer_names
        missing = [p for p in probe if p not in self.layer_names]
        if missing:
            raise ConfigError(f"probe_layers names layer {missing[0]!r}, which does not exist "
                              f"(layers: {', '.join(self.layer_names)})")
        self.probe_names = tuple(probe)
        n_blocks = len(self.encoder.blocks)
        # which blocks carry a loss: all (layer-local) or the last (end-to-end)
        self.loss_layers = [n_blocks - 1] if cfg.end_to_end else list(range(n_blocks))
        self.heads = nn.ModuleDict()
        for i in self.loss_layers:
            width = self.encoder.widths[i]
            if cfg.objective == "supervised":
                self.heads[str(i)] = nn.Linear(width, data.num_classes)
            elif cfg.projector:
                self.heads[str(i)] = _projector(width, cfg.projector_dims)
        self.heads.to(device)
        params = list(self.encoder.parameters()) + list(self.heads.parameters())
        # no weight decay on biases; per-tensor steps (foreach=False): no whole-model temporaries at the peak
        self.opt = self.adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, exempt_biases=True, foreach=False)
        self.step_count = 0
        self.stale: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        self._perm: torch.Tensor | None = None  # this batch's shuffled-positive permutation
        pairs_per_image = (cfg.seq_length - 1) if cfg.views == "sequence" else 1
        self.images_per_batch = max(2, cfg.batch_size // pairs_per_image)
        self.steps_per_epoch = max(1, len(self.x_ssl) // self.images_per_batch)
        self.total_steps = cfg.epochs * self.steps_per_epoch
        self.warmup_steps = max(1, int(round(cfg.warmup_epochs * self.steps_per_epoch)))
        rows = self.images_per_batch * pairs_per_image  # view pairs per batch, split over the ranks
        check_data_parallel(cfg, "LPL")  # torchrun: no Poisson input code
        if rows < distributed.world_size():
            raise ConfigError(f"a batch of {rows} view pairs cannot be split over {distributed.world_size()} "
                              "processes; raise batch_size or use fewer processes")

    # ------------------------------------------------------------------------------------------------------
    @property
    def trains(self) -> bool:
        return self.config.baseline == "none"

    def _features(self, i: int, out: torch.Tensor) -> torch.Tensor:
        """The loss features of block ``i``: pooled (unless no_pooling), then the projector/head input."""
        if self.config.no_pooling:
            return out
        z = global_pool(out)
        if self.config.projector and self.config.objective != "supervised" and str(i) in self.heads:
            z = self.heads[str(i)](z)
        return z

    def _terms(self, i: int, z: torch.Tensor, y: torch.Tensor | None, shift: int) -> dict[str, torch.Tensor]:
        """Layer ``i``'s loss terms for the features ``z`` of both views (this rank's rows, ``(2b, ...)``).

        Under torchrun the rows of every rank are gathered first (own rows kept in the graph), so every
        rank computes the terms of the whole batch, as one process would.
        """
        cfg = self.config
        b = z.shape[0] // 2
        gather = distributed.gather_batch
        if cfg.objective == "supervised":
            if y is None:
                raise ConfigError("objective 'supervised' needs labelled training images")
            logits = self.heads[str(i)](z)  # the head runs on this rank's rows; its gradient is summed
            logits, y = torch.cat([gather(logits[:b]), gather(logits[b:])]), gather(y)
            return {"supervised": F.cross_entropy(logits, torch.cat([y, y]))}
        z1, z2 = gather(z[:b]), gather(z[b:])
        if cfg.shuffle_positives:  # positives from other images; per-view stats unchanged
            z2 = torch.roll(z2, shifts=shift, dims=0) if cfg.shuffle_form == "roll" else z2[self._perm]
        if cfg.objective == "negsample":
            return negsample_terms(z1, z2)
        stop = cfg.pred_form == "stopgrad"
        if cfg.no_pooling:
            return lpl_terms_maps(z1, z2, eps=cfg.var_eps, stop_gradient=stop)
        mean = var = None
        if cfg.stale_estimates and i in self.stale:
            mean, var = self.stale[i]
        terms = lpl_terms(z1, z2, eps=cfg.var_eps, stop_gradient=stop, mean=mean, var=var)
        if cfg.stale_estimates:
            self.stale[i] = stale_update(z1, z2)
        return terms

    def _total(self, terms: Mapping[str, torch.Tensor]) -> torch.Tensor:
        if "supervised" in terms:
            return terms["supervised"]
        c = self.config
        return lpl_loss(terms, c.pred_coeff, c.hebb_coeff, c.decorr_coeff)

    def _check(self, loss: torch.Tensor, i: int, epoch: int) -> None:
        if not torch.isfinite(loss):
            raise DivergenceError(f"LPL loss of layer {self.encoder.layer_names[i]} is not finite in epoch {epoch}; "
                                  "stopped before the update (the last good checkpoint is kept)")

    def train_step(self, v1: torch.Tensor, v2: torch.Tensor, y: torch.Tensor | None, epoch: int = 0
                   ) -> tuple[float, dict[int, dict[str, float]]]:
        """One optimiser step on a batch of view pairs ``(B, C, H, W)`` each.

        Layer-local: block by block, forward on the detached input, loss, backward, so at most one block's
        graph is alive. End-to-end: one forward through all blocks and one backward from the last loss.
        Returns the total loss and each layer's terms (floats).
        """
        cfg = self.config
        for g in self.opt.param_groups:
            g["lr"] = lr_at(self.step_count, self.total_steps, self.warmup_steps, cfg.lr, cfg.final_lr)
        self.opt.zero_grad(set_to_none=False)  # keep the gradient buffers: no reallocation at each step
        shift = 0
        if cfg.shuffle_positives:  # drawn for the whole batch (all ranks' rows: torchrun)
            n = int(distributed.all_sum(torch.tensor(v1.shape[0], device=v1.device)))
            if cfg.shuffle_form == "roll":
                shift = int(torch.randint(1, max(n, 2), (1,), generator=self.gen))
            else:  # official: one torch.randperm per batch, shared by all layers
                self._perm = torch.randperm(n, generator=self.gen).to(v1.device)
        h = torch.cat([v1, v2])  # (2B, C, H, W): both views through each block at once
        total, logged = 0.0, {}
        if cfg.end_to_end:
            outs = self.encoder(h)
            last = len(self.encoder.blocks) - 1
            for i, out in enumerate(outs.values()):
                if i == last:
                    terms = self._terms(i, self._features(i, out), y, shift)
                    loss = self._total(terms)
                    self._check(loss, i, epoch)
                    loss.backward()
                    total = float(loss.detach())
                elif cfg.objective != "supervised":
                    with torch.no_grad():  # monitoring only
                        terms = self._terms(i, global_pool(out.detach()) if not cfg.no_pooling else out.detach(),
                                            y, shift)
                else:
                    continue
                logged[i] = {k: float(v.detach()) for k, v in terms.items()}
        else:
            h = self.encoder.encode(h)  # (T, 2B, C, H, W) spike trains for spiking encoders
            for i, block in enumerate(self.encoder.blocks):
                z, h = self.encoder.local_forward(block, h)  # z: this block's readout, h: detached output
                terms = self._terms(i, self._features(i, z), y, shift)
                loss = self._total(terms)
                self._check(loss, i, epoch)
                loss.backward()  # frees this block's graph before the next block runs
                total += float(loss.detach())
                logged[i] = {k: float(v.detach()) for k, v in terms.items()}
        distributed.sum_gradients(p for g in self.opt.param_groups for p in g["params"])  # torchrun: over ranks
        self.opt.step()
        self.step_count += 1
        return total, logged

    def train_epoch(self, epoch: int) -> dict[str, xr.DataArray]:
        cfg = self.config
        names = list(self.encoder.layer_names)
        if not self.trains:
            return {"train_loss": xr.DataArray(0.0, attrs={"long_name": "training loss (baseline: no training)",
                                                           "units": "1"})}
        self.encoder.train()
        order = torch.randperm(len(self.x_ssl), generator=self.gen)
        bs = self.images_per_batch
        loss_sum, n_steps = 0.0, 0
        term_sums: dict[str, np.ndarray] = {}
        it = self.progress(range(self.steps_per_epoch), epoch)
        for s in it:
            idx = order[s * bs:(s + 1) * bs]
            x = self.x_ssl[idx].to(self.device)
            y = self.y_ssl[idx].to(self.device) if self.y_ssl is not None else None
            v1, v2 = self.views.pair(x, self.gen)
            if y is not None and cfg.views == "sequence":
                y = y.repeat_interleave(cfg.seq_length - 1)
            # torchrun: every rank drew the same views of the global batch (same generator); keep this rank's
            # rows (the whole batch in one process)
            lo, hi = distributed.bounds(len(v1))
            v1, v2, y = v1[lo:hi], v2[lo:hi], (y[lo:hi] if y is not None else None)
            loss, logged = self.train_step(v1, v2, y, epoch)
            loss_sum += loss
            n_steps += 1
            for i, terms in logged.items():
                for k, v in terms.items():
                    term_sums.setdefault(k, np.full(len(names), np.nan))
                    arr = term_sums[k]
                    arr[i] = (0.0 if np.isnan(arr[i]) else arr[i]) + v
        out = {"train_loss": xr.DataArray(loss_sum / max(n_steps, 1),
                                          attrs={"long_name": "mean training loss per batch, summed over the "
                                                 "trained layers", "units": "1"})}
        have = [i for i in range(len(names)) if any(not np.isnan(a[i]) for a in term_sums.values())]
        for k, arr in term_sums.items():
            out[f"loss_{k}"] = xr.DataArray(arr[have] / max(n_steps, 1), dims=("layer",),
                                            coords={"layer": [names[i] for i in have]},
                                            attrs={"long_name": f"mean {k} term of each layer's loss", "units": "1"})
        sum_training_counts(self.encoder, self.device)  # torchrun: the spikes of every rank's rows
        out.update(epoch_firing_rates(self.encoder, epoch))  # spiking: raises if a layer was silent all epoch
        return out

    # ------------------------------------------------------------------------------------------------------
    @torch.no_grad()
    def layer_features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Pooled responses ``{layer: (batch, units)}`` to normalised inputs (the pixels for that baseline)."""
        if self.config.baseline == "pixels":
            return {"pixels": x.flatten(1)}  # (B, C*H*W)
        self.encoder.eval()
        return {k: global_pool(v) for k, v in self.encoder(x).items()}

    def _collect(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return collect_features(self.layer_features, x, batch_size=self.config.eval_batch_size, device=self.device,
                                transform=self.views.normalise)

    def evaluate(self, epoch: int) -> dict[str, xr.DataArray]:
        """Linear probe per layer, participation ratio, mean activity and dead units over the whole test set.

        ``probe="eval_py"`` (default, the official ``eval.py``): logistic regression on the raw pooled features
        of the held-out split (the first ``probe_holdout`` of the training images, at most
        ``probe_train_images``, never seen in self-supervised training), unshuffled batches, ``nn.Linear``
        initialisation. ``probe="zscore"``: standardised features of the first ``probe_train_images`` training
        images (also trained on), shuffled batches, zero init.
        """
        cfg = self.config
        n_probe = self.n_probe
        train = self._collect(self.data.x_train[:n_probe])
        reset_firing_counts(self.encoder)  # spiking: firing rates of the test images only
        test = self._collect(self.data.x_test)
        official = cfg.probe == "eval_py"
        acc = probe_layers(train, self.data.y_train[:n_probe], test, self.data.y_test, layers=self.probe_names,
                           epochs=cfg.probe_epochs, lr=cfg.probe_lr, batch_size=cfg.probe_batch_size,
                           seed=self.seed, n_classes=self.data.num_classes, standardize=not official,
                           shuffle=not official, init="linear" if official else "zeros")
        names = list(self.layer_names)
        pr, pr_all, act, dead = [], [], [], []
        for name in names:
            f = test[name]
            p_all, p_active, frac_dead = activity_stats(f, cfg.var_eps)
            pr.append(p_active)
            pr_all.append(p_all)
            act.append(float(f.mean()))
            dead.append(frac_dead)
        layer = {"layer": names}
        return {
            **eval_firing_rates(self.encoder),
            "test_accuracy": xr.DataArray([acc[n] for n in self.probe_names], dims=("layer",),
                                          coords={"layer": list(self.probe_names)},
                                          attrs={"long_name": "linear-probe test accuracy of each layer's pooled "
                                                 "output", "units": "1"}),
            "participation_ratio": xr.DataArray(pr, dims=("layer",), coords=layer,
                                                attrs={"long_name": "participation ratio over the whole test set "
                                                       "of the units whose variance is >= var_eps (0: none)",
                                                       "units": "1"}),
            "participation_ratio_all_units": xr.DataArray(pr_all, dims=("layer",), coords=layer,
                                                          attrs={"long_name": "participation ratio over the whole "
                                                                 "test set of all units, however small their "
                                                                 "variance (0: no variance)", "units": "1"}),
            "mean_activity": xr.DataArray(act, dims=("layer",), coords=layer,
                                          attrs={"long_name": "mean pooled response over test images and units",
                                                 "units": "1"}),
            "dead_fraction": xr.DataArray(dead, dims=("layer",), coords=layer,
                                          attrs={"long_name": "fraction of units whose variance over the whole test set is "
                                                 "below var_eps (silent or constant)",
                                                 "units": "1"}),
        }

    def probe_features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Pooled responses of every layer (the bridge's probe set: the first 1000 test images)."""
        return self._collect(x)

    # ------------------------------------------------------------------------------------------------------
    def extra_state(self) -> dict[str, Any]:
        return {"stale": {i: (m.cpu(), v.cpu()) for i, (m, v) in self.stale.items()}}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.stale = {int(i): (m.to(self.device), v.to(self.device)) for i, (m, v) in state["stale"].items()}
