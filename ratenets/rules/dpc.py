"""Dense Predictive Coding (DPC) on Gabor sequences: expected (D) versus unexpected (U) events.

DPC (Han, Xie & Zisserman 2019, arXiv:1909.04656, Sec. 3) encodes each block of ``seq_len`` frames with a
video encoder f into a feature map z_t (pre-ReLU, averaged over time; Eq. (1)), aggregates ReLU(z_1..z_{N-P})
with a 1x1 ConvGRU g into a context c (Eq. (2)), and predicts the next P feature maps recurrently with a
two-layer 1x1 conv predictor phi: zhat_{t+1} = phi(c_t), c_{t+1} = g(ReLU(zhat_{t+1}), c_t) (Eqs. (3)-(4)).
The loss is a dense InfoNCE (Eq. (5)): every prediction (b, p, s) (batch item, step, spatial cell) is scored
against every target (b', p', s') by a raw dot product, with (b, p, s) the only positive.

Here it is trained on the Gabor-sequence paradigm of Gillon et al. as in colleenjg/DPC: clips of A B C
(+ G) images, the predicted block D or, from ``unexpected_onset_epoch`` on, U with probability ``u_prob``.
After each epoch a fixed probe set measures the loss and accuracy per image type and orientation, and a
dry pass (eval mode, backward, no update) over a fixed set of training-distribution clips records every
unit's forward activations and backward errors at the original's hook sites (encoder, contextual,
predictive; :mod:`ratenets.analysis.dpc_hooks`), with the surprise index
USI = (mean_U - mean_D) / sqrt((sd_U^2 + sd_D^2) / 2) (colleenjg/DPC ``analysis/usi_diffs.py``; Gillon
et al. 2023). An epoch-0 evaluation before any update is stored as ``baseline_*`` variables.

Choices where the original differs (see ``docs/results/gabor.md``):

* negatives: the original computes the loss per GPU under DataParallel (negatives capped at the per-GPU
  batch, TengdaHan/DPC#17); here the targets of all processes are all-gathered when torch.distributed is
  initialised, so every prediction sees the whole batch;
* one Adam parameter group for every module (the original's name-matched learning-rate groups match no
  module and silently train everything at the full rate);
* the U onset is explicit config (the original flips the dataset's flag inside the training loop), and the
  layout is fixed by ``layout_seed`` (the original re-seeds it every epoch);
* the hook dry pass reads one fixed draw of ``hook_clips`` training-distribution clips with U on (the original
  reads that epoch's training loader, which has no U before the onset), so the USI is defined at every epoch.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import torch
import xarray as xr
from torch import nn

from bridge.config import check_positive, check_range
from bridge.errors import ConfigError
from bridge.reps import representation
from ratenets.gabor import IMAGE_TYPES, TYPE_CODE, GaborConfig, GaborSequences
# the loss is a pure function in ratenets.losses.dpc; its names stay importable from here
from ratenets.losses.dpc import block_scores, dense_infonce, gather_targets  # noqa: F401
from ratenets.presets import Preset
from ratenets.rules.base import SelfSupervisedRule

#: the stages whose probe responses are stored as representations (encoder z, ConvGRU state, phi of that state)
STAGES: tuple[str, ...] = ("encoder", "aggregator", "predictor")
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True, kw_only=True)
class DPCConfig:
    """DPC model, Gabor stimulus and protocol constants; defaults are the paper protocol (scratch init).

    ``DPC.preset("gabor")`` returns the small CPU preset (:func:`cpu_preset`); the preset ``gabor-paper``
    (:func:`paper_preset`) is the protocol of the colleenjg/DPC Gabor runs (``slurm/run_dpc_gabors.sh``) and
    ``gabor-roll`` its roll variant (:data:`DPC_PRESETS`).
    """

    epochs: int = 16                     # scratch runs: U from epoch 12, total = onset + 4 (spec Sec. 1)
    encoder: Literal["resnet18_2d3d", "small3d"] = "resnet18_2d3d"  # DPC 2D3D ResNet-18 (Sec. 3.2)
    feature_dim: int = 256               # ResNet-18 layer 4 width 256; ConvGRU hidden 256
    img_px: int = 128                    # img_dim 128 (R18 runs)
    canvas_px: int = 256                 # Gabor drawing canvas 256 x 256, nearest-resized to img_px
    seq_len: int = 5                     # seq_len 5 frames per block (= gab_img_len: one image per block)
    num_seq: int = 4                     # blocks per clip: num_seq_in 3 (A, B, C) + pred_step 1 (no roll)
    pred_step: int = 1                   # pred_step 1 for the Gabor runs (3 for UCF/K400)
    batch_size: int = 32                 # batch 32
    train_clips: int = 1024              # train_len 1024 (no roll); 4096 in the roll variant
    roll: bool = False                   # no-roll: A,B,C -> D/U; roll: 5 consecutive images of a rolled cycle
    unexpected_onset_epoch: int = 12     # U from epoch 12 (scratch) or 6 (pretrained)
    u_prob: float = 0.08                 # U_prob 0.08 per D
    baseline_epoch: bool = True          # epoch 0: evaluate before any update
    lr: float = 1e-3                     # Adam lr 1e-3 (Sec. 4.1; no scheduler)
    weight_decay: float = 1e-5           # wd 1e-5
    gru_dropout: float = 0.1             # dropout 0.1 on the ConvGRU hidden state
    gab_img_len: int = 5                 # frames per Gabor image (5 = 0.3 s at 50 Hz / 3)
    num_gabors: int = 30                 # 30 patches per image
    num_mean_oris: int = 8               # 8 mean orientations 0..315 deg
    ori_std_rad: float = 0.25            # von Mises kappa = 16
    u_adj_deg: float = 90.0              # U = mean + 90 deg
    diff_u_possizes: bool = True         # --diff_U_possizes: U has its own positions and sizes
    gray: bool = True                    # G closes the cycle (rendered mid-grey, not black as in the original)
    layout_seed: int = 0                 # seed of the positions and sizes (same_possizes=True)
    probe_clips_per_type: int = 32       # probe clips per predicted image type (this implementation)
    hook_clips: int = 1024               # clips of the hook dry pass: the original passes the training loader (train_len)
    contextual_steps: Literal["original", "aligned"] = "original"  # ConvGRU call read at the contextual site

    def __post_init__(self) -> None:
        check_positive(self, "epochs", "feature_dim", "img_px", "canvas_px", "seq_len", "pred_step", "batch_size",
                       "train_clips", "lr", "gab_img_len", "num_gabors", "num_mean_oris", "ori_std_rad",
                       "probe_clips_per_type", "hook_clips")
        if self.contextual_steps not in ("original", "aligned"):
            raise ConfigError(f"contextual_steps must be 'original' or 'aligned', got {self.contextual_steps!r}")
        if self.hook_clips < 2:
            raise ConfigError(f"hook_clips must be >= 2 so that other clips give negatives, got {self.hook_clips}")
        if self.num_seq <= self.pred_step:
            raise ConfigError(f"num_seq {self.num_seq} is too short for pred_step {self.pred_step}: a clip needs at "
                              f"least one context block before the predicted ones (num_seq >= pred_step + 1)")
        check_range("u_prob", self.u_prob, 0.0, 1.0)
        check_range("gru_dropout", self.gru_dropout, 0.0, 1.0, hi_open=True)
        if self.weight_decay < 0:
            raise ConfigError(f"weight_decay must be >= 0, got {self.weight_decay!r}")
        if self.unexpected_onset_epoch < 1:
            raise ConfigError(f"unexpected_onset_epoch must be >= 1 (epochs count from 1), "
                              f"got {self.unexpected_onset_epoch}")
        if self.probe_clips_per_type < self.num_mean_oris:
            raise ConfigError(f"probe_clips_per_type must be >= num_mean_oris ({self.num_mean_oris}) so that every "
                              f"orientation is probed, got {self.probe_clips_per_type}")
        if self.batch_size < 2:
            raise ConfigError(f"batch_size must be >= 2 so that other clips give negatives, got {self.batch_size}")
        from ratenets.encoders.video import check_resolution

        check_resolution(self.encoder, self.img_px)

    def check_schedule(self) -> None:
        """ConfigError when U would start after the last epoch (checked once every override is applied)."""
        if self.unexpected_onset_epoch > self.epochs:
            raise ConfigError(f"unexpected_onset_epoch {self.unexpected_onset_epoch} is beyond the last epoch "
                              f"{self.epochs} (allowed: 1..{self.epochs})")

    def gabor(self) -> GaborConfig:
        """The stimulus part of this config."""
        return GaborConfig(num_gabors=self.num_gabors, num_mean_oris=self.num_mean_oris,
                           ori_std_rad=self.ori_std_rad, u_adj_deg=self.u_adj_deg, u_prob=self.u_prob,
                           gab_img_len=self.gab_img_len, canvas_px=self.canvas_px, img_px=self.img_px,
                           gray=self.gray, roll=self.roll, diff_u_possizes=self.diff_u_possizes)

    @property
    def frames(self) -> int:
        return self.num_seq * self.seq_len


#: the roll variant: 5 consecutive images of a rolled cycle (4 context + 1 predicted), 4096 clips
ROLL = dict(roll=True, num_seq=5, train_clips=4096)
#: ``--preset NAME`` (``ratespike train dpc --preset gabor-paper``); ``gabor``: the default of ``--dataset gabor``
DPC_PRESETS: dict[str, Preset] = {
    "gabor": Preset("gabor", dict(epochs=6, encoder="small3d", feature_dim=64, img_px=64, canvas_px=64,
                                  train_clips=512, unexpected_onset_epoch=3, hook_clips=512),
                    "small CPU protocol: the small 3D encoder (64 features) at 64 px, 512 clips per epoch, U at "
                    "epoch 3, 512 hook clips"),
    "gabor-paper": Preset("gabor", {}, "the no-roll scratch protocol of the colleenjg/DPC Gabor runs (ResNet-18, "
                          "128 px, batch 32)"),
    "gabor-roll": Preset("gabor", ROLL, "the paper protocol's roll variant"),
}


def paper_preset() -> DPCConfig:
    """The no-roll scratch protocol of the colleenjg/DPC Gabor runs (ResNet-18, 128 px, batch 32)."""
    return DPC.preset("gabor", "gabor-paper")


def roll_preset(base: DPCConfig | None = None) -> DPCConfig:
    """The roll variant of ``base`` (default the paper protocol, preset ``gabor-roll``)."""
    import dataclasses

    return DPC.preset("gabor", "gabor-roll") if base is None else dataclasses.replace(base, **ROLL)


def cpu_preset() -> DPCConfig:
    """A small CPU protocol: the small 3D encoder (64 features) at 64 px, 512 clips per epoch, U at epoch 3."""
    return DPC.preset("gabor")


# ----------------------------------------------------------------------------------------------------------------
# model


class TemporalMean(nn.Module):
    """Average over time ``(B, D, L', h, w)`` -> ``(B, D, h, w)`` (DPC's ``avg_pool``; the encoder hook site)."""

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return f.mean(2)


class ConvGRU1x1(nn.Module):
    """One-layer ConvGRU with 1x1 kernels (DPC ``model/convrnn.py``), orthogonal weights, zero biases.

    ``step(x, h)``: ``x`` ``(B, D_in, h, w)``, ``h`` ``(B, D, h, w)`` or None -> new hidden ``(B, D, h, w)``.
    Dropout is applied to the hidden state after every step.
    """

    def __init__(self, d_in: int, d_hidden: int, dropout: float) -> None:
        super().__init__()
        self.d_hidden = d_hidden
        self.gates = nn.Conv2d(d_in + d_hidden, 2 * d_hidden, 1)
        self.cand = nn.Conv2d(d_in + d_hidden, d_hidden, 1)
        self.drop = nn.Dropout(dropout)
        for conv in (self.gates, self.cand):
            nn.init.orthogonal_(conv.weight)
            nn.init.zeros_(conv.bias)

    def step(self, x: torch.Tensor, h: torch.Tensor | None) -> torch.Tensor:
        if h is None:
            h = x.new_zeros(x.shape[0], self.d_hidden, *x.shape[2:])
        r, u = torch.sigmoid(self.gates(torch.cat([x, h], 1))).chunk(2, dim=1)
        c = torch.tanh(self.cand(torch.cat([x, r * h], 1)))
        return self.drop((1 - u) * h + u * c)


class DPCNet(nn.Module):
    """Encoder f, aggregator g (ConvGRU 1x1) and predictor phi (conv1x1-ReLU-conv1x1)."""

    def __init__(self, cfg: DPCConfig, in_channels: int = 1) -> None:
        super().__init__()
        from ratenets.encoders.video import video_encoder

        d = cfg.feature_dim
        self.encoder = video_encoder(cfg.encoder, in_channels, d)
        self.temporal_pool = TemporalMean()
        self.aggregator = ConvGRU1x1(d, d, cfg.gru_dropout)
        self.predictor = nn.Sequential(nn.Conv2d(d, d, 1), nn.ReLU(inplace=True), nn.Conv2d(d, d, 1))
        self.in_channels = in_channels

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Blocks ``(B, N, C, L, H, W)`` -> pre-ReLU features averaged over time ``(B, N, D, h, w)``."""
        b, n = x.shape[:2]
        f = self.encoder(x.flatten(0, 1))                    # (B*N, D, L', h, w)
        return self.temporal_pool(f).unflatten(0, (b, n))     # (B, N, D, h, w)

    def forward(self, x: torch.Tensor, pred_step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Predictions ``(B, P, D, h, w)`` of the last P blocks, and the targets z of those blocks (same shape)."""
        z = self.encode(x)
        n = z.shape[1]
        h = None
        for t in range(n - pred_step):
            h = self.aggregator.step(torch.relu(z[:, t]), h)
        preds = []
        for _ in range(pred_step):
            zhat = self.predictor(h)
            preds.append(zhat)
            h = self.aggregator.step(torch.relu(zhat), h)
        return torch.stack(preds, 1), z[:, n - pred_step:]

    @torch.no_grad()
    def stage_responses(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Each stage's response to the last block, ``{stage: (B, D, h, w)}``.

        encoder: z of the last block; aggregator: the ConvGRU state after it has taken in every block up to
        and including the last; predictor: phi of that state (the prediction issued after the last block).
        The prediction *of* the last block depends only on earlier blocks, so it cannot tell D from U.
        """
        z = self.encode(x)
        h = None
        for t in range(z.shape[1]):
            h = self.aggregator.step(torch.relu(z[:, t]), h)
        return {"encoder": z[:, -1], "aggregator": h, "predictor": self.predictor(h)}


# ----------------------------------------------------------------------------------------------------------------
# the rule


@dataclass
class ProbeSet:
    """Fixed probe clips: ``video`` ``(n, N, C, L, H, W)`` uint8, per-block labels ``(n, N)``."""

    video: torch.Tensor
    block_type: np.ndarray
    block_ori: np.ndarray
    order: np.ndarray  # fixed shuffle used to form evaluation batches


class DPC(SelfSupervisedRule):
    """Dense Predictive Coding on Gabor sequences (see the module docstring)."""

    name: ClassVar[str] = "dpc"
    Config: ClassVar[type] = DPCConfig
    PRESETS = DPC_PRESETS
    # torchrun (ratenets.distributed): refused, with this reason
    data_parallel_refusal: ClassVar[str] = (
        "its encoder's BatchNorm normalises with the statistics of the clips it is given and its ConvGRU dropout "
        "draws one mask over the batch, so a process's share of a batch would not give the one-process update")
    state_attrs: ClassVar[tuple[str, ...]] = ("net", "opt", "rng")

    @classmethod
    def load_data(cls, config: DPCConfig, dataset: str, data_root: str | None) -> GaborSequences:
        config.check_schedule()
        return GaborSequences(config.gabor(), config.layout_seed)

    def __init__(self, config: DPCConfig, data: GaborSequences, *, seeds: tuple[int, ...] = (0,),
                 device: torch.device = torch.device("cpu"), progress: bool = False) -> None:
        config.check_schedule()
        super().__init__(config, data, seeds=seeds, device=device, progress=progress)
        self.gen = data  # the stimulus generator (this rule draws its random numbers from self.rng)
        self.gen.device = device  # draw the clips where the model runs
        self.rng = np.random.default_rng([self.seed, 0xD9C])
        self.in_channels = 3 if config.encoder == "resnet18_2d3d" else 1
        self.net = DPCNet(config, self.in_channels).to(device)
        self.opt = self.adam(self.net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self.types = tuple(t for t in IMAGE_TYPES if t != "G" or config.gray)
        self.probe = self._make_probe()
        self.hook_video, self.hook_type = self._make_hook_set()
        self.baseline: dict[str, xr.DataArray] = {}
        if config.baseline_epoch:
            self.baseline = {f"baseline_{k}": v for k, v in self.evaluate(0).items()}

    # --- data ---------------------------------------------------------------------------------------------
    def to_input(self, video: torch.Tensor) -> torch.Tensor:
        """uint8 ``(n, T, H, W)`` -> normalised float ``(n, N, C, L, H, W)`` on the device."""
        c = self.config
        n, _, hh, ww = video.shape
        x = video.to(self.device).float().div_(255.0).view(n, c.num_seq, 1, c.seq_len, hh, ww)
        if self.in_channels == 3:
            mean = torch.tensor(_IMAGENET_MEAN, device=self.device).view(1, 1, 3, 1, 1, 1)
            std = torch.tensor(_IMAGENET_STD, device=self.device).view(1, 1, 3, 1, 1, 1)
            return (x.expand(-1, -1, 3, -1, -1, -1) - mean) / std
        return (x - sum(_IMAGENET_MEAN) / 3) / (sum(_IMAGENET_STD) / 3)

    def _block_labels(self, arr: np.ndarray) -> np.ndarray:
        """Per-frame labels ``(n, T)`` -> the label of each block's last frame ``(n, N)``."""
        c = self.config
        return arr.reshape(arr.shape[0], c.num_seq, c.seq_len)[:, :, -1]

    def _make_probe(self) -> ProbeSet:
        """``probe_clips_per_type`` clips whose last block is each image type; D and U clips are paired.

        Clip i of each type has mean orientation index i mod num_mean_oris, so every orientation is probed.

        The context of each clip is the cycle leading to its last image (for D and U: A, B, C as in the
        no-roll training clips); U clips repeat the D clips' draws with their D replaced by U.
        """
        c = self.config
        g = self.gen.cfg
        n = c.probe_clips_per_type
        cyc = list(g.cycle)
        last_img = math.ceil(c.frames / g.gab_img_len) - 1
        parts = []
        for t in self.types:
            pos = cyc.index("D" if t == "U" else t)
            shifts = np.full(n, (pos - last_img) % len(cyc))
            rng = np.random.default_rng([c.layout_seed, 0x9B0E, TYPE_CODE["D" if t == "U" else t]])
            parts.append(self.gen.clips(n, c.frames, rng, unexpected=False, shifts=shifts,
                                        force_u=np.full(n, t == "U"), mean_idx=np.arange(n) % c.num_mean_oris))
        video = torch.cat([p.video for p in parts])
        order = np.random.default_rng([c.layout_seed, 0x9B0F]).permutation(len(video))
        return ProbeSet(video=video, block_type=self._block_labels(np.concatenate([p.image_type for p in parts])),
                        block_ori=self._block_labels(np.concatenate([p.mean_ori for p in parts])), order=order)

    def _make_hook_set(self) -> tuple[torch.Tensor, np.ndarray]:
        """``hook_clips`` clips drawn as training clips with U on (seeded by ``layout_seed``), and the image
        type of each predicted block ``(n, P)``.

        The original's dry pass reads the training loader of the epoch (U on from the onset); here one fixed
        draw with U on serves every epoch, so the USI is also defined before the onset.
        """
        c = self.config
        clips = self.gen.clips(c.hook_clips, c.frames, np.random.default_rng([c.layout_seed, 0x400C]),
                               unexpected=True)
        labels = self._block_labels(clips.image_type)[:, -c.pred_step:]
        for t in ("D", "U"):
            if not (labels == TYPE_CODE[t]).any(0).all():
                raise ConfigError(f"the {c.hook_clips} hook clips have no predicted {t} block at some prediction "
                                  f"step (u_prob {c.u_prob}); raise hook_clips or u_prob")
        return clips.video, labels

    # --- training -----------------------------------------------------------------------------------------
    def train_epoch(self, epoch: int) -> dict[str, xr.DataArray]:
        c = self.config
        unexpected = epoch >= c.unexpected_onset_epoch
        self.net.train()
        nb = max(1, c.train_clips // c.batch_size)
        loss_sum = acc_sum = 0.0
        n_u = 0
        for _ in self.progress(range(nb), epoch):
            clips = self.gen.clips(c.batch_size, c.frames, self.rng, unexpected=unexpected)
            n_u += int(clips.is_unexpected[:, -1].sum())
            pred, target = self.net(self.to_input(clips.video), c.pred_step)
            loss, correct, _ = dense_infonce(pred, target)
            mean_loss = loss.mean()
            self.opt.zero_grad(set_to_none=True)
            mean_loss.backward()
            self.opt.step()
            loss_sum += float(mean_loss.detach())
            acc_sum += float(correct.float().mean())
        return {
            "train_loss": xr.DataArray(loss_sum / nb, attrs={"long_name": "mean dense InfoNCE loss over the "
                                                             "epoch's training batches", "units": "1"}),
            "train_accuracy": xr.DataArray(acc_sum / nb, attrs={"long_name": "top-1 accuracy of the positive among "
                                                                "all batch targets, training batches", "units": "1"}),
            "train_unexpected_clips": xr.DataArray(n_u, attrs={"long_name": "training clips whose last frame was U",
                                                               "units": "1"}),
        }

    # --- evaluation -----------------------------------------------------------------------------------------
    @torch.no_grad()
    def _probe_pass(self, responses: bool = False) -> dict[str, np.ndarray]:
        """Per-block loss, accuracies (and, with ``responses``, stage responses) on the probe set, in order."""
        c = self.config
        self.net.eval()
        n = len(self.probe.video)
        p = c.pred_step
        loss = np.zeros((n, p))
        acc = np.zeros((n, p))
        type_acc = np.zeros((n, p))
        resp: dict[str, np.ndarray] = {}
        btype = self.probe.block_type[:, -p:]
        for start in range(0, n, c.batch_size):
            idx = self.probe.order[start:start + c.batch_size]
            if len(idx) < 2:
                idx = self.probe.order[-2:]
            x = self.to_input(self.probe.video[torch.from_numpy(idx)])
            pred, target = self.net(x, p)
            l, ok, scores = dense_infonce(pred, target)
            b, s = len(idx), l.shape[-1]
            loss[idx] = l.mean(-1).cpu().numpy()
            acc[idx] = ok.float().mean(-1).cpu().numpy()
            best = block_scores(scores, b, p, s).argmax(1).cpu().numpy()   # (B*P,) best target block
            true_t = btype[idx].reshape(-1)
            type_acc[idx] = (true_t[best] == true_t).reshape(b, p)
            for k, v in (self.net.stage_responses(x).items() if responses else ()):
                arr = resp.setdefault(k, np.zeros((n, v[0].numel()), dtype=np.float32))
                arr[idx] = v.flatten(1).cpu().numpy()                     # (B, D*h*w), units = channel x cell
        return {"loss": loss, "acc": acc, "type_acc": type_acc, **{f"resp_{k}": v for k, v in resp.items()}}

    def evaluate(self, epoch: int) -> dict[str, xr.DataArray]:
        r = self._probe_pass()
        p = self.config.pred_step
        btype = self.probe.block_type[:, -p:]
        bori = self.probe.block_ori[:, -p:]
        types = list(self.types)

        def by_type(v: np.ndarray) -> np.ndarray:
            return np.array([v[btype == TYPE_CODE[t]].mean() for t in types])

        oris = self.gen.mean_oris
        has_ori = np.isfinite(bori)

        def by_ori(v: np.ndarray) -> np.ndarray:  # every orientation is in the probe set (see _make_probe)
            return np.array([v[has_ori & np.isclose(bori, o)].mean() for o in oris])

        coords_t = {"image_type": types}
        coords_o = {"orientation": oris}
        out = {
            "test_loss": xr.DataArray(float(r["loss"].mean()), attrs={"long_name": "dense InfoNCE loss on the "
                                                                     "probe clips", "units": "1"}),
            "test_accuracy": xr.DataArray(float(r["acc"].mean()), attrs={"long_name": "top-1 accuracy of the "
                                          "positive among all batch targets, probe clips", "units": "1"}),
            "loss_by_image_type": xr.DataArray(by_type(r["loss"]), dims=("image_type",), coords=coords_t,
                                               attrs={"long_name": "probe loss by type of the predicted block",
                                                      "units": "1"}),
            "accuracy_by_image_type": xr.DataArray(by_type(r["acc"]), dims=("image_type",), coords=coords_t,
                                                   attrs={"long_name": "top-1 dense accuracy by type of the "
                                                          "predicted block", "units": "1"}),
            "type_accuracy_by_image_type": xr.DataArray(
                by_type(r["type_acc"]), dims=("image_type",), coords=coords_t,
                attrs={"long_name": "fraction of predicted blocks whose best-scoring target block (scores "
                       "averaged over cells) has the true image type", "units": "1"}),
            "loss_by_orientation": xr.DataArray(by_ori(r["loss"]), dims=("orientation",), coords=coords_o,
                                                attrs={"long_name": "probe loss by mean orientation of the "
                                                       "predicted block (G excluded)", "units": "1"}),
            "accuracy_by_orientation": xr.DataArray(by_ori(r["acc"]), dims=("orientation",), coords=coords_o,
                                                    attrs={"long_name": "top-1 dense accuracy by mean "
                                                           "orientation of the predicted block", "units": "1"}),
        }
        out.update(self._hook_results())
        return out

    def _hook_results(self) -> dict[str, xr.DataArray]:
        """Unit statistics of the hook dry pass (:mod:`ratenets.analysis.dpc_hooks`) by predicted image type."""
        from ratenets.analysis.dpc_hooks import HOOK_SITES, HOOK_TYPES, hook_pass, surprise_index, unit_stats

        c = self.config
        n = len(self.hook_video)
        chunks = np.array_split(np.arange(n), max(1, n // c.batch_size))
        batches = (self.to_input(self.hook_video[torch.from_numpy(i)]) for i in chunks)
        vals = hook_pass(self.net, batches, c.pred_step, lambda p, t: dense_infonce(p, t)[0].mean(),
                         contextual=c.contextual_steps)
        # the image types that the predicted blocks of the hook set show at every step (no roll: D and U)
        types = [t for t in self.types if (self.hook_type == TYPE_CODE[t]).any(0).all()]
        codes = [TYPE_CODE[t] for t in types]
        mean = np.full((len(HOOK_SITES), len(HOOK_TYPES), len(types), vals[(HOOK_SITES[0], HOOK_TYPES[0])].shape[1]),
                       np.nan)
        sd = np.full_like(mean, np.nan)
        count = None
        for i, site in enumerate(HOOK_SITES):
            for j, kind in enumerate(HOOK_TYPES):
                mean[i, j], sd[i, j], count = unit_stats(vals[(site, kind)], self.hook_type, codes)
        iu, idd = types.index("U"), types.index("D")
        usi = surprise_index(mean[:, :, iu], sd[:, :, iu], mean[:, :, idd], sd[:, :, idd])   # (site, type, unit)
        usi = np.nan_to_num(usi, nan=0.0)              # undefined (both SDs 0): stored as 0, see the long name
        coords = {"site": list(HOOK_SITES), "hook_type": list(HOOK_TYPES), "hook_image_type": types}
        dims = ("site", "hook_type", "hook_image_type", "unit")
        what = (f"units (prediction step x channel x cell) at the colleenjg/DPC hook sites, dry pass over "
                f"{n} training-distribution clips with U on (eval mode, no update); activations = module output, "
                f"errors = gradient of the mean loss w.r.t. it; contextual steps: {c.contextual_steps}")
        return {
            "hook_mean": xr.DataArray(mean, dims=dims, coords=coords, attrs={
                "long_name": "mean of each unit over the clips whose predicted block has the image type; " + what,
                "units": "1"}),
            "hook_sd": xr.DataArray(sd, dims=dims, coords=coords, attrs={
                "long_name": "SD (ddof 0, as the original) of each unit over those clips", "units": "1"}),
            "hook_clips_by_image_type": xr.DataArray(count.sum(1), dims=("hook_image_type",),
                                                     coords={"hook_image_type": types}, attrs={
                "long_name": "hook-pass clips (x prediction steps) whose predicted block has the image type",
                "units": "1"}),
            "surprise_index": xr.DataArray(usi, dims=("site", "hook_type", "unit"),
                                           coords={"site": list(HOOK_SITES), "hook_type": list(HOOK_TYPES)},
                                           attrs={"long_name": "USI = (mean_U - mean_D) / sqrt((sd_U^2 + sd_D^2) "
                                                  "/ 2) per unit at each hook site (0 where both SDs "
                                                  "are 0: undefined)",
                                                  "units": "1"}),
        }

    def static_results(self) -> dict[str, xr.DataArray]:
        return dict(self.baseline)

    def extra_state(self) -> dict[str, Any]:
        return {"baseline": self.baseline}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.baseline = state.get("baseline", {})

    def probe_representations(self) -> dict[str, xr.Dataset]:
        """Each stage's channel responses (averaged over cells) to the probe clips, labelled by image type.

        The responses come from the same fixed evaluation batches as :meth:`evaluate` (BatchNorm uses batch
        statistics, so the batch composition matters).
        """
        r = self._probe_pass(responses=True)
        n = len(self.probe.video)
        d = self.config.feature_dim
        labels = self.probe.block_type[:, -1]
        meta = {"probe_dataset": "gabor", "probe_split": "probe", "probe_count": n, "seed": self.seed,
                "label_names": " ".join(IMAGE_TYPES)}
        return {s: representation(r[f"resp_{s}"].reshape(n, d, -1).mean(-1), layer=s, labels=labels, attrs=meta)
                for s in STAGES}  # (n, D*h*w) -> (n, D, h*w) -> mean over cells
