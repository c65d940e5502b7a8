"""Seeded Gabor-sequence videos: the A B C D (U) G paradigm of Gillon et al., as used to train DPC.

Every *image* is 30 Gabor patches on a grey background; the image types ``A B C D`` (plus the grey
screen ``G``) follow each other in a cycle, each image held for ``gab_img_len`` video frames. Within a
cycle all patches share a mean orientation, drawn anew at every ``A`` from ``num_mean_oris`` equally
spaced values in [0, 360) deg; each patch adds von Mises jitter (kappa = 1 / ori_std_rad**2). Once the
unexpected events are switched on, each ``D`` is independently replaced by ``U`` (mean + 90 deg) with
probability ``u_prob``. Patch positions and sizes are fixed per image type (a *layout*, drawn from its
own seed), ``U`` having its own layout when ``diff_u_possizes``.

Follows the generator of the colleenjg/DPC repository (``dataset/gabor_sequences.py``,
``GaborSequenceGenerator``) for every constant, with two deliberate differences:

* ``G`` is rendered mid-grey (0.5). The original gives ``G`` patches of size 0 and NaN orientation, which
  most likely makes the whole image black (see the reference spec); the paradigm intends a grey screen.
* The patches are evaluated in torch on the canvas grid (no OpenCV): the same kernel as
  ``cv2.getGaborKernel`` (orientation offset by pi, phase 0.25 cycle, sigma = k/6, wavelength k /
  num_cycles_adj with k = int(3 size / 2.355)).
  The clipping range of an image is the min and max over its patches as drawn on the canvas; each patch is
  drawn within 4.5 sigma of its centre.

Nothing here depends on the learning rule: :func:`load_gabor` returns consecutive frames as an
:class:`~ratenets.data.ImageDataset`, usable by any rule (e.g. LPL on consecutive frames).

References
----------
Gillon, Pina, Lecoq, ... Richards (2023), J Neurosci, doi:10.1523/JNEUROSCI.1009-23.2023.
Han, Xie, Zisserman (2019), "Video representation learning by dense predictive coding", arXiv:1909.04656.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from bridge.config import check_positive, check_range
from bridge.errors import ConfigError

#: image types; the index of a type in this tuple is its integer code in every label array
IMAGE_TYPES: tuple[str, ...] = ("A", "B", "C", "D", "U", "G")
TYPE_CODE = {t: i for i, t in enumerate(IMAGE_TYPES)}
#: colleenjg/DPC, utils/gabor_utils.py: U_ADJ = 90 deg
U_ADJ_DEG = 90.0
#: half-width of the visible Gaussian in standard deviations (original ``num_sigmas_visible``)
NUM_SIGMAS_VISIBLE = 3
#: FWHM -> standard deviation: 2 sqrt(2 ln 2)
FWHM_FACTOR = 2.0 * math.sqrt(2.0 * math.log(2.0))


@dataclass(frozen=True, kw_only=True)
class GaborConfig:
    """Constants of the Gabor-sequence generator (defaults: colleenjg/DPC and its Gabor runs).

    Attributes are documented beside each field with their source.
    """

    num_gabors: int = 30                               # GaborSequenceGenerator NUM_GABORS = 30
    num_mean_oris: int = 8                             # gabor_utils.NUM_MEAN_ORIS: 0, 45, ..., 315 deg
    ori_std_rad: float = 0.25                          # ori_std_dev = 0.25 rad -> kappa = 16
    u_adj_deg: float = U_ADJ_DEG                       # U = mean + 90 deg (gabor_utils.U_ADJ)
    u_prob: float = 0.08                               # U_prob = 0.08 per D
    gab_img_len: int = 5                               # run default: 5 frames per image (0.3 s at 50/3 Hz)
    size_range_deg: tuple[float, float] = (10.0, 20.0)  # size_ran = [10, 20] visual deg (FWHM)
    deg_width: float = 120.0                           # deg_width = 120: deg_per_pix = 120 / canvas width
    num_cycles: float = 1.0                            # num_cycles = 1 visible cycle (0.5..3 supported)
    psi_cycles: float = 0.25                           # psi = 0.25 cycle phase
    gamma: float = 1.0                                 # spatial aspect ratio
    canvas_px: int = 256                               # width = height = 256 drawing canvas
    img_px: int = 128                                  # img_dim = 128 after nearest-neighbour resize
    gray: bool = True                                  # G (grey screen) closes each cycle
    roll: bool = False                                 # no-roll variant: every clip starts at A
    diff_u_possizes: bool = True                       # runs used --diff_U_possizes
    pos_margin: float = 0.05                           # positions squeezed into [0.05, 0.95]

    def __post_init__(self) -> None:
        check_positive(self, "num_gabors", "num_mean_oris", "ori_std_rad", "gab_img_len", "deg_width",
                       "gamma", "canvas_px", "img_px")
        check_range("u_prob", self.u_prob, 0.0, 1.0)
        check_range("num_cycles", self.num_cycles, 0.5, 3.0)
        check_range("pos_margin", self.pos_margin, 0.0, 0.5, hi_open=True)
        lo, hi = self.size_range_deg
        if not 0 < lo <= hi:
            raise ConfigError(f"size_range_deg must be (min, max) with 0 < min <= max, got {self.size_range_deg!r}")

    @property
    def kappa(self) -> float:
        """von Mises concentration 1 / ori_std_rad**2."""
        return 1.0 / self.ori_std_rad ** 2

    @property
    def cycle(self) -> tuple[str, ...]:
        """The base cycle of image types."""
        return ("A", "B", "C", "D", "G") if self.gray else ("A", "B", "C", "D")

    @property
    def num_cycles_adj(self) -> float:
        """Original ``set_num_cycles_adj``: num_cycles * 1.2 ** (num_cycles - 1)."""
        return self.num_cycles * 1.2 ** (self.num_cycles - 1)


@dataclass
class Layout:
    """Per-image-type patch positions and sizes.

    Attributes
    ----------
    centers : ndarray, shape (6, num_gabors, 2)
        Patch centres in canvas pixels (row, column), image types in :data:`IMAGE_TYPES` order.
    sizes : ndarray, shape (6, num_gabors)
        Patch sizes (FWHM) in canvas pixels; 0 for ``G``.
    """

    centers: np.ndarray
    sizes: np.ndarray


def make_layout(cfg: GaborConfig, seed: int) -> Layout:
    """Draw the positions and sizes of every image type from their own seeded stream.

    Positions are uniform fractions of the canvas squeezed into [margin, 1 - margin]; sizes are uniform in
    ``size_range_deg`` and converted with deg_per_pix = deg_width / canvas_px (original ``set_possizes``).
    Without ``diff_u_possizes`` U reuses D's layout.
    """
    rng = np.random.default_rng([int(seed), 0x6ab0])
    n = len(IMAGE_TYPES)
    frac = rng.random((n, cfg.num_gabors, 2))
    frac = cfg.pos_margin + frac * (1.0 - 2 * cfg.pos_margin)
    centers = np.floor(frac * cfg.canvas_px)
    lo, hi = cfg.size_range_deg
    sizes = (lo + rng.random((n, cfg.num_gabors)) * (hi - lo)) / (cfg.deg_width / cfg.canvas_px)
    if not cfg.diff_u_possizes:
        centers[TYPE_CODE["U"]] = centers[TYPE_CODE["D"]]
        sizes[TYPE_CODE["U"]] = sizes[TYPE_CODE["D"]]
    sizes[TYPE_CODE["G"]] = 0.0
    return Layout(centers=centers, sizes=sizes)


def render_images(cfg: GaborConfig, layout: Layout, types: np.ndarray, oris_deg: np.ndarray,
                  device: torch.device | str | None = None) -> torch.Tensor:
    """Draw Gabor images.

    Each patch is evaluated on a square window of half-width ceil(0.75 k) = 4.5 sigma around its centre
    (the Gaussian there is < 5e-5 of its peak, under 0.01 of a grey level) and added into the canvas.

    Parameters
    ----------
    types : ndarray of int, shape (n,)
        Image-type codes (:data:`TYPE_CODE`).
    oris_deg : ndarray, shape (n, num_gabors)
        Orientation of every patch in degrees (ignored for ``G``).
    device : torch device, optional
        Where to draw (default CPU); all random draws stay in NumPy, so only float rounding can differ.

    Returns
    -------
    torch.Tensor
        ``uint8`` images ``(n, img_px, img_px)``; the background (and every ``G``) is 127 (mid-grey).
    """
    n = len(types)
    px = cfg.canvas_px
    dev = torch.device(device) if device is not None else torch.device("cpu")
    out = torch.full((n, px * px), 0.5, dtype=torch.float32, device=dev)
    drawn = np.flatnonzero(types != TYPE_CODE["G"])
    k_all = np.maximum(np.floor(NUM_SIGMAS_VISIBLE * layout.sizes / FWHM_FACTOR), 1.0)  # (6, G)
    half = int(math.ceil(0.75 * k_all.max()))
    offs = torch.arange(-half, half + 1, dtype=torch.float32, device=dev)            # (w,)
    w = len(offs)
    chunk = max(1, 2 ** 22 // (cfg.num_gabors * w * w))
    psi = 2 * math.pi * cfg.psi_cycles
    for start in range(0, len(drawn), chunk):
        idx = drawn[start:start + chunk]
        m = len(idx)
        c = torch.from_numpy(layout.centers[types[idx]]).float().to(dev)         # (m, G, 2)
        k = torch.from_numpy(k_all[types[idx]]).float().to(dev)                  # (m, G)
        lam = (k / cfg.num_cycles_adj)[..., None, None]
        s2 = (2 * (k / (2 * NUM_SIGMAS_VISIBLE)) ** 2)[..., None, None]
        theta = torch.from_numpy(np.deg2rad(oris_deg[idx])).float().to(dev) + math.pi  # PsychoPy convention
        ct, st = torch.cos(theta)[..., None, None], torch.sin(theta)[..., None, None]
        # cv2 kernel coordinates run against the pixel index: x = -(col - cx), y = -(row - cy)
        y, x = -offs.view(1, 1, w, 1), -offs.view(1, 1, 1, w)
        xr = x * ct + y * st                                              # (m, G, w, w)
        yr = -x * st + y * ct
        patches = torch.exp(-(xr ** 2 + cfg.gamma ** 2 * yr ** 2) / s2) * torch.cos(2 * math.pi * xr / lam + psi)
        rr = c[..., 0, None, None] + offs.view(1, 1, w, 1)               # (m, G, w, 1) canvas rows
        cc = c[..., 1, None, None] + offs.view(1, 1, 1, w)               # (m, G, 1, w)
        inside = (rr >= 0) & (rr < px) & (cc >= 0) & (cc < px)            # (m, G, w, w)
        flat = torch.where(inside, rr * px + cc, float(px * px)).long().view(m, -1)
        # overlaps add up; out-of-canvas pixels go to the extra last slot, dropped
        img = torch.zeros(m, px * px + 1, device=dev).scatter_add_(1, flat, patches.reshape(m, -1))[:, :-1]
        vis = torch.where(inside, patches, 0.0)
        lo = vis.amin(dim=(1, 2, 3)).view(-1, 1)
        hi = vis.amax(dim=(1, 2, 3)).view(-1, 1)
        img = torch.minimum(torch.maximum(img, lo), hi)
        mx = 1.1 * torch.maximum(img.amin(1).abs(), img.amax(1).abs()).view(-1, 1)
        flat_img = mx == 0
        out[torch.from_numpy(idx).to(dev)] = torch.where(flat_img, torch.full_like(img, 0.5),
                                                 (img + mx) / (2 * torch.where(flat_img, 1.0, mx)))
    imgs = torch.floor(out * 255).clamp_(0, 255).to(torch.uint8).view(n, px, px)
    if cfg.img_px != px:
        imgs = torch.nn.functional.interpolate(imgs[:, None].float(), size=(cfg.img_px, cfg.img_px),
                                               mode="nearest")[:, 0].to(torch.uint8)
    return imgs


@dataclass
class GaborClips:
    """A batch of Gabor videos and their per-frame labels.

    Attributes
    ----------
    video : torch.Tensor
        ``uint8`` frames ``(n, T, H, W)`` (one grey channel; T = frames per clip).
    image_type : ndarray of int, shape (n, T)
        Type code of every frame (:data:`IMAGE_TYPES`).
    mean_ori : ndarray, shape (n, T)
        Mean orientation of every frame in degrees (U already rotated by u_adj_deg; NaN for G).
    is_unexpected : ndarray of bool, shape (n, T)
    """

    video: torch.Tensor
    image_type: np.ndarray
    mean_ori: np.ndarray
    is_unexpected: np.ndarray


class GaborSequences:
    """The seeded generator: a fixed layout plus fresh per-clip draws from a caller's RNG.

    Parameters
    ----------
    cfg : GaborConfig
    layout_seed : int
        Seed of the positions and sizes (fixed for the dataset, as ``same_possizes=True``).
    device : torch device, optional
        Where the images are drawn and the videos returned (default CPU).
    """

    def __init__(self, cfg: GaborConfig, layout_seed: int, device: torch.device | str | None = None) -> None:
        self.cfg = cfg
        self.device = device
        self.layout = make_layout(cfg, layout_seed)
        self.mean_oris = np.arange(cfg.num_mean_oris) * (360.0 / cfg.num_mean_oris)

    def clips(self, n: int, frames: int, rng: np.random.Generator, *, unexpected: bool,
              u_prob: float | None = None, shifts: np.ndarray | None = None,
              force_u: np.ndarray | None = None, mean_idx: np.ndarray | None = None) -> GaborClips:
        """Draw ``n`` clips of ``frames`` frames.

        Parameters
        ----------
        rng : numpy.random.Generator
            Source of every per-clip draw (cycle shift, D -> U, orientations).
        unexpected : bool
            Whether D may become U (the switch that the protocol turns on at the U-onset epoch).
        u_prob : float, optional
            Overrides ``cfg.u_prob``.
        shifts : ndarray of int, shape (n,), optional
            Position in the cycle of the first image (default: 0, or random when ``cfg.roll``).
        force_u : ndarray of bool, shape (n,), optional
            Replace every D of these clips by U (for probe sets), regardless of the draw.
        mean_idx : ndarray of int, shape (n,), optional
            Index into the mean orientations for every cycle of each clip (for probe sets that cover every
            orientation); drawn per cycle by default.
        """
        cfg = self.cfg
        cyc = np.array([TYPE_CODE[t] for t in cfg.cycle])
        n_img = math.ceil(frames / cfg.gab_img_len)
        if shifts is None:
            shifts = rng.integers(0, len(cyc), n) if cfg.roll else np.zeros(n, dtype=np.int64)
        pos = shifts[:, None] + np.arange(n_img)[None, :]              # (n, n_img) position in the cycle
        types = cyc[pos % len(cyc)]
        p = cfg.u_prob if u_prob is None else u_prob
        is_d = types == TYPE_CODE["D"]
        make_u = is_d & (rng.random(types.shape) < p) if unexpected else np.zeros_like(is_d)
        if force_u is not None:
            make_u |= is_d & np.asarray(force_u, dtype=bool)[:, None]
        types = np.where(make_u, TYPE_CODE["U"], types)
        # one mean orientation per cycle, redrawn at every A (cycle index = completed wraps + 1)
        cycle_id = pos // len(cyc)
        means = self.mean_oris[rng.integers(0, cfg.num_mean_oris, (n, int(cycle_id.max()) + 1))]
        if mean_idx is not None:
            means = np.broadcast_to(self.mean_oris[np.asarray(mean_idx)][:, None], means.shape)
        mean = np.take_along_axis(means, cycle_id, axis=1)
        mean = np.where(types == TYPE_CODE["U"], (mean + cfg.u_adj_deg) % 360.0, mean)
        mean = np.where(types == TYPE_CODE["G"], np.nan, mean)
        jitter = np.rad2deg(rng.vonmises(0.0, cfg.kappa, (n, n_img, cfg.num_gabors)))
        oris = np.nan_to_num(mean)[..., None] + jitter                 # (n, n_img, G)
        imgs = render_images(cfg, self.layout, types.reshape(-1), oris.reshape(-1, cfg.num_gabors), self.device)
        imgs = imgs.view(n, n_img, cfg.img_px, cfg.img_px)
        frame_img = np.arange(frames) // cfg.gab_img_len               # image index of every frame
        video = imgs[:, torch.from_numpy(frame_img).to(imgs.device)]                  # (n, T, H, W)
        return GaborClips(video=video.contiguous(), image_type=types[:, frame_img], mean_ori=mean[:, frame_img],
                          is_unexpected=(types == TYPE_CODE["U"])[:, frame_img])


def load_gabor(root: Any = None, download: bool = False, *, n_train_frames: int = 2000, n_test_frames: int = 500,
               img_px: int = 32, seed: int = 0) -> "ImageDataset":  # noqa: F821 - imported lazily
    """Consecutive Gabor-sequence frames as an image dataset (for rules that take images).

    Frames are in temporal order (one long rolled sequence per split, U with probability 0.08, G grey), at
    ``img_px`` pixels drawn on a canvas of the same size, one channel; labels are image-type codes
    (classes ``A B C D U G``). ``extra`` holds per-frame ``mean_ori`` and ``is_unexpected``.
    """
    from ratenets.data import ImageDataset

    cfg = GaborConfig(canvas_px=img_px, img_px=img_px)
    gen = GaborSequences(cfg, seed)
    rng = np.random.default_rng([int(seed), 0x6ab1])

    def split(frames: int) -> GaborClips:
        return gen.clips(1, frames, rng, unexpected=True)

    tr, te = split(n_train_frames), split(n_test_frames)
    return ImageDataset("gabor", tr.video[0][:, None], torch.from_numpy(tr.image_type[0]).long(),
                        te.video[0][:, None], torch.from_numpy(te.image_type[0]).long(), IMAGE_TYPES,
                        source=f"ratenets.gabor.load_gabor(seed={seed})",
                        citation="Gillon et al. (2023), J Neurosci; Gabor generator of colleenjg/DPC",
                        extra={"mean_ori_train": tr.mean_ori[0], "mean_ori_test": te.mean_ori[0],
                               "is_unexpected_train": tr.is_unexpected[0],
                               "is_unexpected_test": te.is_unexpected[0]})
