"""CLAPP: contrastive, layer-local predictive learning (Illing, Ventura, Bellec & Gerstner, NeurIPS 2021).

The rule module of the CLAPP family: the config, the sampling of scored pairs, the explicit three-factor rule
and the trainer :class:`PatchCPCRule` shared by CLAPP (here), CLAPP-s (:mod:`ratenets.rules.clapp_s`) and
Hinge-CPC (:mod:`ratenets.rules.hinge_cpc`); the hinge loss itself is :mod:`ratenets.losses.clapp`.

"Local plasticity rules can learn deep representations using self-supervised contrastive predictions",
arXiv 2010.08262. CLAPP: every layer of a VGG-6 patch encoder learns alone, on its own detached input, with
the hinge loss of Eq. (3). Each image sees either its true future (positive) or, after a "saccade", the same
position of another image (negative), with probability 1/2 each. Two separately learned matrices carry the
prediction (``W_k^T c`` to the future) and the retrodiction (``W'_k z`` to the context), so no weight is
transported (the paper's ``--asymmetric_W_pred``). The resulting update is the local three-factor rule of
Eqs. (6)-(8), implemented explicitly in :func:`three_factor_grads`.

Every layer ``l`` of a patch encoder (:mod:`ratenets.encoders.patches`) gives, after averaging over the pixels
of each patch, one vector ``h[b, y, x]`` per grid position. For prediction step ``k = 1..K`` the context
``c = h[b, y, x]`` is scored against a future ``z = h[b', y + k + skip, x]`` of the same column and layer by
``u = c^T W_k z`` and the hinge ``relu(1 - s u)``, ``s = +1`` for the true future (``b' = b``) and ``s = -1``
for a negative (Eq. 3).

Convention: ``W_k`` has shape ``(C, C)``, rows index the context neuron and columns the future neuron, so the
*prediction* seen by the future layer is ``W_k^T c`` and the *retrodiction* seen by the context is ``W_k z``
(as the original, which applies ``W_k`` as a 1x1 convolution to ``z``).

Sampling is expressed as explicit *pairs* (context position, target position, sign, weight) per step
``k``, so the autograd loss (:func:`ratenets.losses.clapp.hinge_loss`) and the explicit three-factor rule
(:func:`three_factor_grads`, Eqs. 6-8) consume exactly the same draw.

Choices where paper and original code differ (see ``docs/results/clapp.md``):

* ``coin="per_layer"`` (default, the original code): every call of the original's ``ContrastiveLoss.forward``
  (one per layer, and for the asymmetric loss one for the prediction term and one for the retrodiction term,
  ``VGG_like_Encoder.evaluate_loss``) draws its own positive/negative coin per image
  (``numpy.random.choice(['pos', 'neg', 'both'], p=[.5, .5, 0])``, shared by the K steps) and, for every
  prediction step k, its own saccade partner per image (``sample_negative_samples_locally`` with
  ``same_sampling_everywhere``, called inside the loop over k). ``coin="global"`` is the paper's reading of a
  single saccade signal for the whole network: coin and partners are drawn once per batch and shared by all
  layers and both terms (partners still one per step).
* ``exclude_self=True`` (default): a negative never comes from the same image (saccade) or the same position
  (CLAPP-s). The original includes self-pairs (about 1/32 of CLAPP's "negatives" are the image itself);
  ``exclude_self=False`` reproduces that.
* Random crops (``crop_size``) and flips are drawn per image, as torchvision's ``RandomCrop`` and
  ``RandomHorizontalFlip`` in the original's per-image dataset transform.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import torch
import xarray as xr
from torch import nn

from bridge.config import check_positive
from bridge.errors import ConfigError
from ratenets.data import ImageDataset
from ratenets.encoders.patches import PatchEncoder, PatchEncoderSpec, extract_patches, grid_size, pooled
from ratenets import distributed
from ratenets.encoders.spiking import (SpikingFields, check_data_parallel, epoch_firing_rates, eval_firing_rates,
                                       reset_firing_counts, sum_training_counts, with_neurons)
from ratenets.losses.clapp import Pairs, hinge_loss, pair_scores  # noqa: F401 - the loss, re-exported here
from ratenets.probes import linear_probe
from ratenets.presets import Preset, for_datasets
from ratenets.rules.base import SelfSupervisedRule


@dataclass(frozen=True, kw_only=True)
class PatchCPCConfig(SpikingFields):
    """Constants of the CLAPP family (paper values for STL-10 as defaults; presets resize for MNIST).

    Field comments cite Illing et al. (2021) and the original scripts ``vision/scripts/*.sh``. The neuron
    fields (:class:`ratenets.encoders.spiking.SpikingFields`) make the patch encoder spiking; the default
    ``neuron="rate"`` is the paper's ReLU network.
    """

    epochs: int = 600                          # scripts: 600 (CLAPP, Hinge-CPC), 300 (CLAPP-s)
    batch_size: int = 32                       # App. B: batch 32 per GPU (negatives drawn within it)
    lr: float = 2e-4                           # App. B: Adam, lr 2e-4, one optimiser per layer
    channels: tuple[int, ...] = (128, 256, 256, 512, 1024, 1024)   # App. B: VGG-6
    pool: tuple[bool, ...] = (False, True, False, True, True, True)  # App. B: max-pool after L2, L4, L5, L6
    crop_size: int = 64                        # App. B: random 64x64 crops of 96x96 STL-10
    flip: bool = True                          # App. B: random horizontal flips during training
    grayscale: bool = True                     # App. B: grey images (always on in the original)
    mean: float = 0.4120                       # original code: grey STL-10 mean
    std: float = 0.2570                        # original code: grey STL-10 std
    patch_size: int = 16                       # App. B: 16x16 patches
    patch_stride: int = 8                      # App. B: stride 8 (50 % overlap), 7x7 grid
    prediction_steps: int = 5                  # Sec. 4: K = 5 steps ahead
    skip_step: int = 1                         # original: offset k + 1, neighbouring rows overlap
    asymmetric_w: bool = True                  # Sec. 3: CLAPP learns W (prediction) and W' (retrodiction)
    either_pos_or_neg: bool = True             # Sec. 3: each image sees a positive or a negative, p = 1/2
    negatives: Literal["saccade", "anywhere"] = "saccade"  # CLAPP: same place, other image; CLAPP-s: anywhere
    negative_samples: int = 1                  # CLAPP: 1 (saccade); CLAPP-s: 16 (GIM default)
    coin: Literal["global", "per_layer"] = "per_layer"  # original: coin and partners per layer and term
    exclude_self: bool = True                  # original includes self-pairs as negatives (a quirk)
    end_to_end: bool = False                   # Hinge-CPC: one loss at the top, backprop through all layers
    train_size: int = 0                        # images per training epoch; 0 = the whole training split
    probe_train_size: int = 5000               # Sec. 4: linear probe on the 5k labelled STL-10 images
    probe_test_size: int = 0                   # 0 = the whole test split (STL-10: 8k)
    probe_epochs: int = 300                    # original downstream_classification default
    probe_lr: float = 1e-3                     # original: Adam 1e-3
    probe_batch_size: int = 128
    eval_batch_size: int = 256

    def __post_init__(self) -> None:
        super().__post_init__()  # the neuron fields
        check_positive(self, "epochs", "lr", "patch_size", "patch_stride", "std", "negative_samples",
                       "probe_train_size", "probe_epochs", "probe_lr", "probe_batch_size", "eval_batch_size")
        if self.batch_size < 2:
            raise ConfigError(f"batch_size must be >= 2 so that a negative from another image exists, "
                              f"got {self.batch_size}")
        if self.prediction_steps < 1:
            raise ConfigError(f"prediction_steps must be >= 1 (steps ahead to predict), got "
                              f"{self.prediction_steps}")
        if self.skip_step < 0:
            raise ConfigError(f"skip_step must be >= 0, got {self.skip_step}")
        if not self.channels or any(c <= 0 for c in self.channels):
            raise ConfigError(f"channels must list positive channel counts, got {self.channels!r}")
        if len(self.pool) != len(self.channels):
            raise ConfigError(f"pool must have one flag per layer ({len(self.channels)}), got {self.pool!r}")
        if self.negatives == "saccade" and self.negative_samples != 1:
            raise ConfigError(f"negative_samples must be 1 with negatives='saccade', got "
                              f"{self.negative_samples}")
        if self.negatives == "anywhere" and self.either_pos_or_neg:
            raise ConfigError("either_pos_or_neg must be false with negatives='anywhere' (CLAPP-s scores "
                              "positives and negatives together)")
        if self.crop_size < 0 or self.train_size < 0 or self.probe_test_size < 0:
            raise ConfigError("crop_size, train_size and probe_test_size must be >= 0 (0 = no crop / all)")

    @property
    def spec(self) -> PatchEncoderSpec:
        return PatchEncoderSpec(channels=tuple(self.channels), pool=tuple(self.pool))

    @property
    def offsets(self) -> list[int]:
        """Row offset of each prediction step: ``k + skip_step`` for ``k = 1..K``."""
        return [k + self.skip_step for k in range(1, self.prediction_steps + 1)]

    def check_geometry(self, height: int, width: int) -> tuple[int, int]:
        """The patch grid ``(gy, gx)`` of ``height x width`` inputs (after cropping), or a ConfigError."""
        side_h = min(height, self.crop_size) if self.crop_size else height
        side_w = min(width, self.crop_size) if self.crop_size else width
        gy, gx = grid_size(side_h, self.patch_size, self.patch_stride), grid_size(side_w, self.patch_size,
                                                                                   self.patch_stride)
        need = self.prediction_steps + self.skip_step + 1
        if gy < need:
            raise ConfigError(f"patch_stride {self.patch_stride} gives {gy} patch rows on {side_h}-pixel images, "
                              f"but prediction_steps {self.prediction_steps} with skip_step {self.skip_step} "
                              f"needs at least {need} rows")
        PatchEncoder(self.spec).check_patch(self.patch_size)
        return gy, gx


#: 28x28 inputs: 4x4 grid of 10x10 patches (stride 6), small encoder 32-64-256 (this project's sizing, not the
#: paper's), K = 2 (rows 2 and 3 ahead); lr 1e-3 instead of 2e-4 because the preset trains 1 epoch, not 600
MNIST_SIZE = dict(channels=(32, 64, 256), pool=(True, True, False), crop_size=0, flip=False, mean=0.1307,
                  std=0.3081, patch_size=10, patch_stride=6, prediction_steps=2, skip_step=1, epochs=1, lr=1e-3,
                  probe_train_size=10000, probe_epochs=30, probe_lr=1e-3, probe_batch_size=100)
FASHION_SIZE = dict(MNIST_SIZE, mean=0.2860, std=0.3530)
#: tests and smoke runs: 8x8 digits, 4x4 patches at stride 2 (3x3 grid), K = 1
DIGITS_SIZE = dict(channels=(8, 16), pool=(False, True), crop_size=0, flip=False, mean=0.3, std=0.4,
                   patch_size=4, patch_stride=2, prediction_steps=1, skip_step=1, epochs=5,
                   probe_train_size=1437, probe_epochs=50, probe_lr=1e-2, probe_batch_size=128)
SYNTHETIC_SIZE = dict(DIGITS_SIZE, patch_size=6, patch_stride=3, mean=0.5, std=0.3)
#: the family's presets: the paper's values for STL-10, the sizings above for the small datasets (each rule pins
#: its variant's fields over them: :attr:`PatchCPCRule.variant`)
CLAPP_PRESETS: dict[str, Preset] = for_datasets({"mnist": MNIST_SIZE, "fashion-mnist": FASHION_SIZE, "stl10": {},
                                                 "digits": DIGITS_SIZE, "synthetic": SYNTHETIC_SIZE})


# ----------------------------------------------------------------------------------------------------------------
# sampling

def _other_index(n: int, size: tuple[int, ...], self_idx: torch.Tensor, exclude_self: bool,
                 gen: torch.Generator) -> torch.Tensor:
    """Uniform draws from ``range(n)``; with ``exclude_self`` never equal to ``self_idx`` (broadcast)."""
    if not exclude_self:
        return torch.randint(n, size, generator=gen)
    r = torch.randint(n - 1, size, generator=gen)
    return r + (r >= self_idx).long()


def sample_pairs(cfg: PatchCPCConfig, batch: int, grid: tuple[int, int], gen: torch.Generator) -> list[Pairs]:
    """Draw the pairs of every prediction step for one batch (on the CPU, from ``gen``).

    CLAPP (``negatives="saccade"``): for every step k each image ``b`` gets one partner image ``p_b != b`` (a
    saccade, used at all positions of that step; a new draw per step, as the original) and, with
    ``either_pos_or_neg``, one coin shared by the K steps: its contexts are scored against its own future
    (positive) or the same position of ``p_b`` (negative). Positive and negative hinges are each
    averaged over their images and positions, summed, then averaged over the K steps.

    CLAPP-s (``negatives="anywhere"``): every context is scored against its own future and against
    ``negative_samples`` futures drawn uniformly over all (image, row, column) positions of that step's
    future rows; both terms averaged over their pairs, summed, averaged over K.
    """
    gy, gx = grid
    K = cfg.prediction_steps
    b_idx = torch.arange(batch)
    if cfg.either_pos_or_neg:
        pos_img = torch.rand(batch, generator=gen) < 0.5
    else:
        pos_img = torch.ones(batch, dtype=torch.bool)
    out = []
    for off in cfg.offsets:
        rows = gy - off
        b, y, x = torch.meshgrid(b_idx, torch.arange(rows), torch.arange(gx), indexing="ij")  # (batch, rows, gx)
        b, y, x = b.reshape(-1), y.reshape(-1), x.reshape(-1)
        ctx = b * gy * gx + y * gx + x
        own = ctx + off * gx
        n_loc = rows * gx
        if cfg.negatives == "saccade":
            # one partner per image and step k, as the original draws rand_index inside its loop over k
            partner = _other_index(batch, (batch,), b_idx, cfg.exclude_self, gen)
            is_pos = pos_img[b]
            tgt = torch.where(is_pos, own, partner[b] * gy * gx + (y + off) * gx + x)
            sign = torch.where(is_pos, 1.0, -1.0)
            n_pos = int(pos_img.sum())
            n_neg = batch - n_pos
            w_pos = 1.0 / (K * max(n_pos, 1) * n_loc)
            w_neg = 1.0 / (K * max(n_neg, 1) * n_loc)
            weight = torch.where(is_pos, w_pos, w_neg)
            if not cfg.either_pos_or_neg:
                neg = partner[b] * gy * gx + (y + off) * gx + x
                ctx, tgt = torch.cat([ctx, ctx]), torch.cat([own, neg])
                sign = torch.cat([torch.ones(len(own)), -torch.ones(len(own))])
                weight = torch.full((len(ctx),), 1.0 / (K * batch * n_loc))
            out.append(Pairs(ctx, tgt, sign, weight))
        else:
            S = cfg.negative_samples
            m = len(ctx)
            # future positions of this step, enumerated as (image, row - off, column) -> flat grid position
            self_f = b * rows * gx + y * gx + x  # (m,) index of the own future among the m future positions
            f = _other_index(batch * n_loc, (m, S), self_f[:, None], cfg.exclude_self, gen)  # (m, S)
            fb, fr = f // n_loc, f % n_loc
            neg = fb * gy * gx + (fr // gx + off) * gx + fr % gx
            ctx_all = torch.cat([ctx, ctx.repeat_interleave(S)])
            tgt_all = torch.cat([own, neg.reshape(-1)])
            sign = torch.cat([torch.ones(m), -torch.ones(m * S)])
            weight = torch.cat([torch.full((m,), 1.0 / (K * m)), torch.full((m * S,), 1.0 / (K * m * S))])
            out.append(Pairs(ctx_all, tgt_all, sign, weight))
    return out


# ----------------------------------------------------------------------------------------------------------------
# the explicit rule (the hinge loss it reproduces is ratenets.losses.clapp.hinge_loss)

@torch.no_grad()
def three_factor_grads(block: nn.Module, x_in: torch.Tensor, grid: tuple[int, int], W_pred: torch.Tensor,
                       W_retro: torch.Tensor | None, pairs_pred: list[Pairs],
                       pairs_retro: list[Pairs] | None = None, transfer=None) -> dict[str, torch.Tensor]:
    """The explicit CLAPP learning rule (Illing et al. 2021, Eqs. 6-8), in the sign of a gradient.

    For every scored pair, the third factor ``gamma = -dL/du`` is ``weight`` for a positive with ``u < 1``,
    ``-weight`` for a negative with ``u > -1``, else 0, and is broadcast to all neurons of the layer:

    * prediction weights: ``dW_k = gamma c z^T`` (Hebbian between context and future);
    * feedforward weights of the target patch: ``gamma (W_pred_k^T c)_j E_future[j, i, s]``
      (dendritic prediction x Hebbian eligibility), of the context patch ``gamma (W_retro_k z)_j
      E_context[j, i, s]`` (retrodiction x eligibility), where ``E_P[j, i, s] = sum_p m_j(p) x_i(p + s)``
      and ``m_j(p) = rho'(a_j(p)) 1[p won its max-pool window] / |pooled pixels|``.

    The returned tensors are ``-(update)``, so they compare to ``.grad`` of :func:`hinge_loss` of the block's
    pooled output (test: ``tests/test_clapp_rule.py``). Symmetric case (``W_retro is None``): the same W
    and pairs in both roles and ``dW`` counted once.

    Parameters
    ----------
    block : ConvBlock
        The layer (3x3 convolution, padding 1, ReLU, optional 2x2 max-pool).
    x_in : tensor, shape (patches, C_in, s, s)
        The layer's input per patch (the detached output of the layer below, or the pixels).
    grid : (gy, gx)
    transfer : callable, optional
        ``a -> (rho(a), rho'(a))``, the neuron's response and post factor; default the ReLU and ``1[a > 0]``.
        A spiking block at ``T = 1`` passes its :meth:`~ratenets.encoders.spiking.SpikingBlock.step_response`
        (spike ``H(a - U_thr)`` and the surrogate derivative).

    Returns
    -------
    dict with ``conv.weight`` ``(C, C_in, 3, 3)``, ``conv.bias`` ``(C,)``, ``W_pred`` ``(K, C, C)`` and, for the
    asymmetric variant, ``W_retro``.
    """
    conv = block.conv
    a = nn.functional.conv2d(x_in, conv.weight, conv.bias, padding=1)  # (n, C, s, s) pre-activations
    r, d_post = (torch.relu(a), (a > 0).to(a.dtype)) if transfer is None else transfer(a)
    r, d_post = r.to(a.dtype), d_post.to(a.dtype)
    if block.pool:
        y, idx = nn.functional.max_pool2d(r, 2, return_indices=True)  # (n, C, s/2, s/2)
        won = torch.zeros_like(r).flatten(2).scatter_(2, idx.flatten(2), 1.0).view_as(r)
    else:
        y, won = r, torch.ones_like(r)
    n_pix = y.shape[2] * y.shape[3]
    m = won * d_post / n_pix  # (n, C, s, s) postsynaptic eligibility factor
    h = y.mean(dim=(2, 3))  # (n, C) pooled per-patch features
    symmetric = W_retro is None
    W_r = W_pred if symmetric else W_retro
    pairs_retro = pairs_pred if (pairs_retro is None or symmetric) else pairs_retro
    factor = torch.zeros_like(h)  # (n, C): sum of gamma x prediction / retrodiction per patch
    g_pred = torch.zeros_like(W_pred)
    g_retro = torch.zeros_like(W_r)
    for k, (p1, p2) in enumerate(zip(pairs_pred, pairs_retro)):
        c1, z1 = h[p1.ctx], h[p1.tgt]  # (m, C)
        u1 = (c1 * (z1 @ W_pred[k].T)).sum(-1)
        gamma1 = p1.weight * p1.sign * ((1 - p1.sign * u1) > 0).to(h.dtype)  # (m,) third factor
        g_pred[k] = -(gamma1[:, None] * c1).T @ z1
        factor.index_add_(0, p1.tgt, gamma1[:, None] * (c1 @ W_pred[k]))  # prediction W^T c at the target
        c2, z2 = h[p2.ctx], h[p2.tgt]
        u2 = (c2 * (z2 @ W_r[k].T)).sum(-1)
        gamma2 = p2.weight * p2.sign * ((1 - p2.sign * u2) > 0).to(h.dtype)
        g_retro[k] = -(gamma2[:, None] * c2).T @ z2
        factor.index_add_(0, p2.ctx, gamma2[:, None] * (z2 @ W_r[k].T))  # retrodiction W z at the context
    x_cols = nn.functional.unfold(x_in, 3, padding=1)  # (n, C_in*9, s*s) presynaptic input per kernel offset
    elig = torch.einsum("njp,nip->nji", m.flatten(2), x_cols)  # (n, C, C_in*9) Hebbian eligibility per patch
    dw = -torch.einsum("nj,nji->ji", factor, elig).reshape(conv.weight.shape)
    db = -(factor * m.flatten(2).sum(-1)).sum(0)
    out = {"conv.weight": dw, "conv.bias": db, "W_pred": g_pred}
    if not symmetric:
        out["W_retro"] = g_retro
    return out


# ----------------------------------------------------------------------------------------------------------------
# the rule

class PatchCPCRule(SelfSupervisedRule):
    """Trainer of the CLAPP family on a patch encoder (satisfies :class:`ratenets.rules.base.Rule`).

    Layer-local variants (``end_to_end=False``) give every layer its own prediction matrices and Adam
    optimiser and train all layers simultaneously on detached inputs; Hinge-CPC (``end_to_end=True``) has
    prediction matrices only at the top layer and one optimiser. Every epoch ends with a linear probe on the
    grid-averaged features of every layer.
    """

    name: ClassVar[str] = ""
    Config: ClassVar[type] = PatchCPCConfig
    PRESETS = CLAPP_PRESETS
    state_attrs: ClassVar[tuple[str, ...]] = ("encoder", "w_pred", "w_retro", "opts", "gen")
    #: config fields of this variant (pinned over the dataset sizing)
    variant: ClassVar[dict[str, Any]] = {}

    @classmethod
    def preset_values(cls, preset: Preset) -> dict[str, Any]:
        """The preset's sizing with this variant's fields pinned over it."""
        return {**preset.values, **cls.variant}

    @classmethod
    def load_data(cls, config: PatchCPCConfig, dataset: str, data_root: str | None) -> ImageDataset:
        data = cls.load_images(dataset, data_root)
        config.check_geometry(*data.image_shape[1:])
        return data

    def __init__(self, config: PatchCPCConfig, data: ImageDataset, *, seeds: tuple[int, ...] = (0,),
                 device: torch.device = torch.device("cpu"), progress: bool = False) -> None:
        super().__init__(config, data, seeds=seeds, device=device, progress=progress)
        cfg = config
        self.grid = cfg.check_geometry(*data.image_shape[1:])
        self.gen = self.seeded_generator()
        in_ch = 1 if (cfg.grayscale or data.image_shape[0] == 1) else data.image_shape[0]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            self.encoder = with_neurons(PatchEncoder(cfg.spec, in_channels=in_ch), cfg)  # spiking if cfg.neuron set
            K = cfg.prediction_steps
            layers = [len(cfg.channels) - 1] if cfg.end_to_end else range(len(cfg.channels))
            self.w_pred = nn.ParameterDict()
            self.w_retro = nn.ParameterDict()
            for i in layers:
                C = cfg.channels[i]
                bound = 1 / math.sqrt(C)  # torch's default init of the original's bias-free 1x1 conv
                self.w_pred[str(i)] = nn.Parameter((torch.rand(K, C, C) * 2 - 1) * bound)
                if cfg.asymmetric_w:
                    self.w_retro[str(i)] = nn.Parameter((torch.rand(K, C, C) * 2 - 1) * bound)
        self.encoder.to(device)
        self.w_pred.to(device)
        self.w_retro.to(device)
        self.loss_layers = [int(i) for i in self.w_pred]
        if cfg.end_to_end:
            params = [*self.encoder.parameters(), *self.w_pred.parameters(), *self.w_retro.parameters()]
            self.opts = [self.adam(params, lr=cfg.lr)]
        else:
            self.opts = []
            for i, block in enumerate(self.encoder.blocks):
                ps = [*block.parameters(), self.w_pred[str(i)]] + ([self.w_retro[str(i)]] if cfg.asymmetric_w
                                                                   else [])
                self.opts.append(self.adam(ps, lr=cfg.lr))
        self.x_train = data.x_unlabeled if (data.x_unlabeled is not None) else data.x_train
        n_tr = len(self.x_train)
        self.n_train = min(cfg.train_size, n_tr) if cfg.train_size else n_tr
        check_data_parallel(cfg, self.name)  # torchrun: no Poisson input code
        if cfg.batch_size < distributed.world_size():
            raise ConfigError(f"a batch of {cfg.batch_size} images cannot be split over {distributed.world_size()} "
                              "processes; raise batch_size or use fewer processes")

    # --- data -----------------------------------------------------------------------------------------
    def prepare(self, x: torch.Tensor, train: bool) -> torch.Tensor:
        """uint8 ``(b, c, H, W)`` -> normalised float ``(b, c', S, S)``: grey, (random) crop, flip, per image."""
        cfg = self.config
        x = x.to(self.device).float() / 255.0
        if cfg.grayscale and x.shape[1] == 3:
            x = (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])  # ITU-R 601 luma, as PIL's "L"
        h, w = x.shape[2:]
        s = cfg.crop_size
        if s and s < min(h, w):
            if train:  # one offset per image (torchvision RandomCrop in the original's per-image transform)
                n = len(x)
                oy = torch.randint(h - s + 1, (n,), generator=self.gen).to(self.device)
                ox = torch.randint(w - s + 1, (n,), generator=self.gen).to(self.device)
                ar = torch.arange(s, device=self.device)
                rows, cols = oy[:, None] + ar, ox[:, None] + ar  # (n, s) each
                bi = torch.arange(n, device=self.device)[:, None, None]
                x = x.permute(0, 2, 3, 1)[bi, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
            else:
                oy, ox = (h - s) // 2, (w - s) // 2
                x = x[:, :, oy:oy + s, ox:ox + s]
        if train and cfg.flip:
            flip = (torch.rand(len(x), generator=self.gen) < 0.5).to(self.device)
            x = torch.where(flip[:, None, None, None], x.flip(3), x)
        return (x - cfg.mean) / cfg.std

    # --- training -------------------------------------------------------------------------------------
    def draw_pairs(self, batch: int) -> tuple[list[Pairs], list[Pairs]]:
        dt = next(self.encoder.parameters()).dtype
        p1 = [p.to(self.device, dt) for p in sample_pairs(self.config, batch, self.grid, self.gen)]
        if self.config.asymmetric_w and self.config.coin == "per_layer":
            return p1, [p.to(self.device, dt) for p in sample_pairs(self.config, batch, self.grid, self.gen)]
        return p1, p1

    def _layer_loss(self, i: int, out: torch.Tensor, grid: tuple[int, int],
                    shared: tuple[list[Pairs], list[Pairs]] | None) -> torch.Tensor:
        h = pooled(out, grid).reshape(-1, self.config.channels[i])  # (b*gy*gx, C)
        # torchrun: every rank's rows (own rows in the graph), so the pairs and negatives span the whole batch;
        # W_k, applied after the gather, gets the whole gradient on every rank, the encoder its rows' share
        h = distributed.gather_batch(h)
        p1, p2 = shared if shared is not None else self.draw_pairs(len(h) // (grid[0] * grid[1]))
        w_r = self.w_retro[str(i)] if self.config.asymmetric_w else None
        return hinge_loss(h, self.w_pred[str(i)], w_r, p1, p2)

    def train_step(self, x: torch.Tensor) -> dict[int, torch.Tensor]:
        """One update of all layers on a prepared batch ``x`` ``(b, c, S, S)``; the detached layer losses.

        Layer-local variants run forward, loss and backward layer by layer on the detached output of the
        layer below, so only one layer's graph is alive at a time; all optimisers step at the end, so every
        layer's input was computed with the weights before the update (as the original, which runs all
        forward passes first).
        """
        cfg = self.config
        patches, grid = extract_patches(x, cfg.patch_size, cfg.patch_stride)  # (b*gy*gx, c, p, p)
        # pairs of the whole batch (all ranks' images under torchrun)
        shared = self.draw_pairs(int(distributed.all_sum(torch.tensor(len(x), device=x.device)))) \
            if cfg.coin == "global" else None
        for opt in self.opts:
            opt.zero_grad(set_to_none=True)
        losses = {}
        if cfg.end_to_end:
            top = len(self.encoder.blocks) - 1
            loss = self._layer_loss(top, self.encoder(patches)[-1], grid, shared)
            loss.backward()
            losses[top] = loss.detach()
        else:
            h = self.encoder.encode(patches)  # (T, n, c, p, p) spike trains for spiking encoders
            for i, block in enumerate(self.encoder.blocks):
                z, h = self.encoder.local_forward(block, h)  # z: this block's readout, h: detached output
                loss = self._layer_loss(i, z, grid, shared)
                loss.backward()
                losses[i] = loss.detach()
        distributed.sum_gradients(self.encoder.parameters())  # torchrun: the ranks' rows; W_k's are whole already
        for opt in self.opts:
            opt.step()
        return losses

    def train_epoch(self, epoch: int) -> dict[str, xr.DataArray]:
        cfg = self.config
        self.encoder.train()
        order = torch.randperm(len(self.x_train), generator=self.gen)[:self.n_train]
        nb = self.n_train // cfg.batch_size  # drop the last incomplete batch: it may hold one image
        if nb == 0:
            raise ConfigError(f"batch_size {cfg.batch_size} exceeds the {self.n_train} training images")
        sums = {i: 0.0 for i in self.loss_layers}
        it = self.progress(range(nb), epoch)
        for bi in it:
            idx = order[bi * cfg.batch_size:(bi + 1) * cfg.batch_size]
            x = self.prepare(self.x_train[idx], train=True)  # crops and flips drawn for the whole batch
            lo, hi = distributed.bounds(len(x))  # torchrun: this rank's images (all of them in one process)
            losses = self.train_step(x[lo:hi])
            for i, v in losses.items():
                sums[i] += float(v.detach())
        half = 0.5 if cfg.asymmetric_w else 1.0  # the asymmetric loss counts the hinge twice
        vals = np.array([sums[i] * half / nb for i in self.loss_layers])
        attrs = {"long_name": "mean layer-local hinge loss over the epoch", "units": "1"}
        sum_training_counts(self.encoder, self.device)  # torchrun: the spikes of every rank's rows
        rates = epoch_firing_rates(self.encoder, epoch)  # spiking: raises if a layer was silent all epoch
        if cfg.end_to_end:
            return {"train_loss": xr.DataArray(vals[0], attrs=attrs), **rates}
        return {"train_loss": xr.DataArray(vals, dims=("layer",), coords={"layer": self.encoder.layer_names},
                                           attrs=attrs), **rates}

    # --- evaluation -----------------------------------------------------------------------------------
    @torch.no_grad()
    def features(self, x_all: torch.Tensor) -> list[torch.Tensor]:
        """Grid-averaged features of every layer, ``[(n, C_l)]``, for uint8 images (center crops)."""
        cfg = self.config
        self.encoder.eval()
        feats: list[list[torch.Tensor]] = [[] for _ in self.encoder.blocks]
        for i in range(0, len(x_all), cfg.eval_batch_size):
            x = self.prepare(x_all[i:i + cfg.eval_batch_size], train=False)
            patches, grid = extract_patches(x, cfg.patch_size, cfg.patch_stride)
            for l, h in enumerate(self.encoder(patches)):
                feats[l].append(pooled(h, grid).mean(dim=(1, 2)))  # (b, C): average over the grid
        return [torch.cat(f) for f in feats]

    def evaluate(self, epoch: int) -> dict[str, xr.DataArray]:
        cfg = self.config
        d = self.data
        n_tr = min(cfg.probe_train_size, len(d.x_train))
        n_te = min(cfg.probe_test_size, len(d.x_test)) if cfg.probe_test_size else len(d.x_test)
        f_tr = self.features(d.x_train[:n_tr])
        reset_firing_counts(self.encoder)  # spiking: firing rates of the test images only
        f_te = self.features(d.x_test[:n_te])
        y_tr, y_te = d.y_train[:n_tr].to(self.device), d.y_test[:n_te].to(self.device)
        acc_te = [linear_probe(a, y_tr, b, y_te, epochs=cfg.probe_epochs, lr=cfg.probe_lr,
                               batch_size=cfg.probe_batch_size, seed=self.seed * 1000 + epoch,
                               n_classes=d.num_classes, device=self.device) for a, b in zip(f_tr, f_te)]
        return {**eval_firing_rates(self.encoder), "test_accuracy": xr.DataArray(np.array(acc_te), dims=("layer",),
                                              coords={"layer": self.encoder.layer_names},
                                              attrs={"long_name": "linear-probe test accuracy on grid-averaged "
                                                     "layer features", "units": "1"})}

    def probe_features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Grid-averaged features of every layer (the bridge's probe set: the first test images)."""
        return dict(zip(self.encoder.layer_names, self.features(x)))


class CLAPP(PatchCPCRule):
    """CLAPP: 50/50 positive-or-negative per image, saccade negatives, two prediction matrices per step."""

    name: ClassVar[str] = "clapp"
    Config: ClassVar[type] = PatchCPCConfig
    data_parallel: ClassVar[bool] = True  # torchrun: features gathered for the hinge loss (PatchCPCRule)
    # vision/scripts/vision_traineval_CLAPP.sh: --asymmetric_W_pred --negative_samples 1 --sample_negs_locally
    # --sample_negs_locally_same_everywhere --either_pos_or_neg_update --model_splits 6, 600 epochs
    variant: ClassVar[dict[str, Any]] = dict(asymmetric_w=True, either_pos_or_neg=True, negatives="saccade",
                                             negative_samples=1, end_to_end=False)
