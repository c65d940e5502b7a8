"""Pairs of views for self-supervised rate networks: SimCLR augmentations and temporal digit sequences.

:class:`SimCLRViews` draws the augmentations of the official LPL code (``datasets/simclr_transforms.py``;
Halvagal & Zenke 2023, Methods "Data augmentation") independently for every image of a batch, on batched
tensors (one ``grid_sample`` for crop + flip, per-image factors for the colour operations, one grouped
convolution for the blur), so augmentation costs a few ms per batch instead of a Python loop per image:

- RandomResizedCrop(size, scale=(0.08, 1), ratio=(3/4, 4/3)) and horizontal flip with p = 0.5;
- ColorJitter(brightness=0.8, contrast=0.8, saturation=0.8, hue=0.2) with p = 0.8, in a random order per
  batch (torchvision draws one order per image);
- RandomGrayscale p = 0.2;
- Gaussian blur with p = 0.5, kernel 10 % of the image side forced odd, sigma ~ U(0.1, 2.0);
- normalisation last.

The colour operations follow torchvision's definitions (``torchvision.transforms.v2.functional``
``adjust_brightness/contrast/saturation/hue``, ``rgb_to_grayscale``, ``gaussian_blur``); the tests compare
them image by image. The crop samples torchvision's ``RandomResizedCrop.get_params`` distribution (a
vectorised version of its rejection loop, with the same centre-crop fallback) and resamples bilinearly
without antialiasing.

:func:`digit_sequences` builds short "temporal" sequences from still images, as the Shapes3D experiment
of the paper builds trajectories (``datasets/sequence_generator.py``): in each sequence one factor
(position, scale or orientation) moves by a constant step per frame while the others stay fixed;
consecutive frames are the positive pairs (``frames[:, :-1]``, ``frames[:, 1:]``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from bridge.errors import ConfigError

SEQUENCE_FACTORS = ("position", "scale", "orientation")


# ----------------------------------------------------------------------------------------------------------------
# colour operations on batches, each with one factor per image (torchvision's formulas)

def _grey(x: torch.Tensor) -> torch.Tensor:
    """ITU-R 601-2 luma, as torchvision's rgb_to_grayscale: ``(B, 3, H, W)`` -> ``(B, 1, H, W)``."""
    if x.shape[1] == 1:
        return x
    return (0.2989 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])


def _blend(a: torch.Tensor, b: torch.Tensor, ratio: torch.Tensor) -> torch.Tensor:
    r = ratio.view(-1, 1, 1, 1)
    return (r * a + (1 - r) * b).clamp_(0, 1)


def adjust_brightness(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """Multiply image ``b`` by ``f[b]`` and clamp to [0, 1]; ``x`` ``(B, C, H, W)`` in [0, 1], ``f`` ``(B,)``."""
    return _blend(x, torch.zeros_like(x), f)


def adjust_contrast(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """Blend image ``b`` with the mean of its grey level by ``f[b]`` (torchvision's adjust_contrast)."""
    mean = _grey(x).mean(dim=(1, 2, 3), keepdim=True)
    return _blend(x, mean.expand_as(x), f)


def adjust_saturation(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """Blend image ``b`` with its grey version by ``f[b]``; a no-op on one-channel images."""
    if x.shape[1] == 1:
        return x
    return _blend(x, _grey(x).expand_as(x), f)


def _rgb_to_hsv(x: torch.Tensor) -> torch.Tensor:
    r, g, b = x.unbind(1)
    maxc, _ = x.max(1)
    minc, _ = x.min(1)
    eqc = maxc == minc
    cr = maxc - minc
    ones = torch.ones_like(maxc)
    s = cr / torch.where(eqc, ones, maxc)
    crd = torch.where(eqc, ones, cr)
    rc, gc, bc = (maxc - r) / crd, (maxc - g) / crd, (maxc - b) / crd
    hr = (maxc == r) * (bc - gc)
    hg = ((maxc == g) & (maxc != r)) * (2.0 + rc - bc)
    hb = ((maxc != g) & (maxc != r)) * (4.0 + gc - rc)
    h = torch.fmod((hr + hg + hb) / 6.0 + 1.0, 1.0)
    return torch.stack((h, s, maxc), 1)


def _hsv_to_rgb(x: torch.Tensor) -> torch.Tensor:
    h, s, v = x.unbind(1)
    i = torch.floor(h * 6.0)
    f = h * 6.0 - i
    i = i.to(torch.int64) % 6
    p = (v * (1.0 - s)).clamp(0, 1)
    q = (v * (1.0 - s * f)).clamp(0, 1)
    t = (v * (1.0 - s * (1.0 - f))).clamp(0, 1)
    # the six sectors of the hue circle: (r, g, b) = table[i]
    table = torch.stack([torch.stack(c, 1) for c in ((v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v),
                                                     (v, p, q))], 0)  # (6, B, 3, H, W)
    idx = i.unsqueeze(0).unsqueeze(2).expand(1, -1, 3, -1, -1)
    return table.gather(0, idx)[0]


def adjust_hue(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """Rotate the hue of image ``b`` by ``f[b]`` (a fraction of the circle, in [-0.5, 0.5]); no-op on grey."""
    if x.shape[1] == 1:
        return x
    hsv = _rgb_to_hsv(x)
    h = torch.remainder(hsv[:, 0] + f.view(-1, 1, 1), 1.0)
    return _hsv_to_rgb(torch.stack((h, hsv[:, 1], hsv[:, 2]), 1))


def gaussian_kernels(sigma: torch.Tensor, ksize: int) -> torch.Tensor:
    """Normalised 1-D Gaussian kernels ``(B, ksize)`` with standard deviations ``sigma`` ``(B,)`` (pixels)."""
    half = (ksize - 1) * 0.5
    xs = torch.linspace(-half, half, ksize, device=sigma.device, dtype=sigma.dtype)
    k = torch.exp(-0.5 * (xs.unsqueeze(0) / sigma.unsqueeze(1)) ** 2)
    return k / k.sum(1, keepdim=True)


def gaussian_blur(x: torch.Tensor, sigma: torch.Tensor, ksize: int) -> torch.Tensor:
    """Separable Gaussian blur with reflect padding (as torchvision's), one sigma per image."""
    if ksize <= 1:
        return x
    b, c, h, w = x.shape
    k = gaussian_kernels(sigma, ksize).to(x.dtype)  # (B, k)
    k = k.repeat_interleave(c, 0)  # (B*C, k): one kernel per image and channel
    pad = ksize // 2
    y = x.reshape(1, b * c, h, w)  # channels of all images side by side for one grouped conv
    y = F.pad(y, (pad, pad, pad, pad), mode="reflect")
    y = F.conv2d(y, k.view(b * c, 1, 1, ksize), groups=b * c)
    y = F.conv2d(y, k.view(b * c, 1, ksize, 1), groups=b * c)
    return y.reshape(b, c, h, w)


def blur_kernel_size(image_size: int, fraction: float = 0.1) -> int:
    """The official code's kernel: ``fraction`` of the image side, forced odd (3 px for 32 px images)."""
    k = int(fraction * image_size)
    return k + 1 if k % 2 == 0 else k


# ----------------------------------------------------------------------------------------------------------------
# geometry on batches

def _sample_crops(n: int, area_scale: tuple[float, float], ratio: tuple[float, float], h: int, w: int,
                  gen: torch.Generator, tries: int = 10) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor,
                                                               torch.Tensor]:
    """Crop boxes (top, left, height, width) in pixels, ``(n,)`` each, as RandomResizedCrop.get_params."""
    area = h * w
    log_r = (math.log(ratio[0]), math.log(ratio[1]))
    s = torch.empty(n, tries).uniform_(*area_scale, generator=gen) * area
    r = torch.exp(torch.empty(n, tries).uniform_(*log_r, generator=gen))
    cw = torch.round(torch.sqrt(s * r))
    ch = torch.round(torch.sqrt(s / r))
    ok = (cw > 0) & (ch > 0) & (cw <= w) & (ch <= h)
    first = torch.where(ok.any(1), ok.float().argmax(1), torch.full((n,), -1))
    # fallback (no try fitted): the largest centred crop with a ratio inside the range, as torchvision
    in_ratio = w / h
    if in_ratio < ratio[0]:
        fw, fh = w, int(round(w / ratio[0]))
    elif in_ratio > ratio[1]:
        fh, fw = h, int(round(h * ratio[1]))
    else:
        fw, fh = w, h
    pick = first.clamp(min=0).unsqueeze(1)
    cw = torch.where(first >= 0, cw.gather(1, pick)[:, 0], torch.full((n,), float(fw)))
    ch = torch.where(first >= 0, ch.gather(1, pick)[:, 0], torch.full((n,), float(fh)))
    top = torch.floor(torch.rand(n, generator=gen) * (h - ch + 1))
    left = torch.floor(torch.rand(n, generator=gen) * (w - cw + 1))
    return top, left, ch, cw


def _affine_resample(x: torch.Tensor, theta: torch.Tensor, padding_mode: str = "zeros") -> torch.Tensor:
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode=padding_mode, align_corners=False)


def resized_crop_flip(x: torch.Tensor, top: torch.Tensor, left: torch.Tensor, ch: torch.Tensor, cw: torch.Tensor,
                      flip: torch.Tensor) -> torch.Tensor:
    """Crop box ``b`` of image ``b``, resize it to the full image size and mirror it where ``flip[b]``.

    One affine ``grid_sample`` does all three for the whole batch: output pixel centres in normalised
    coordinates [-1, 1] map into the crop box.
    """
    b, _, h, w = x.shape
    sx = cw / w
    sy = ch / h
    tx = (2 * left + cw) / w - 1  # crop centre, normalised
    ty = (2 * top + ch) / h - 1
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0] = torch.where(flip, -sx, sx)
    theta[:, 0, 2] = tx
    theta[:, 1, 1] = sy
    theta[:, 1, 2] = ty
    return _affine_resample(x, theta.to(x.device), padding_mode="border")


# ----------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class SimCLRViewParams:
    """The augmentation constants (official ``simclr_transforms.py`` defaults)."""

    crop_scale: tuple[float, float] = (0.08, 1.0)      # RandomResizedCrop scale
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)   # RandomResizedCrop ratio
    flip_p: float = 0.5                                # RandomHorizontalFlip
    jitter: tuple[float, float, float, float] = (0.8, 0.8, 0.8, 0.2)  # ColorJitter(b, c, s, h), strength 1
    jitter_p: float = 0.8                              # RandomApply([ColorJitter], p=0.8)
    grey_p: float = 0.2                                # RandomGrayscale(p=0.2)
    blur_p: float = 0.5                                # GaussianBlur applied with p = 0.5
    blur_sigma: tuple[float, float] = (0.1, 2.0)       # sigma ~ U(0.1, 2.0)
    blur_fraction: float = 0.1                         # kernel = 10 % of the image side, odd

    def __post_init__(self) -> None:
        lo, hi = self.crop_scale
        if not 0 < lo <= hi <= 1:
            raise ConfigError(f"crop_scale must satisfy 0 < min <= max <= 1, got {self.crop_scale!r}")
        if not 0 < self.crop_ratio[0] <= self.crop_ratio[1]:
            raise ConfigError(f"crop_ratio must satisfy 0 < min <= max, got {self.crop_ratio!r}")
        for name in ("flip_p", "jitter_p", "grey_p", "blur_p"):
            v = getattr(self, name)
            if not 0 <= v <= 1:
                raise ConfigError(f"{name} must be a probability in [0, 1], got {v!r}")
        if any(j < 0 for j in self.jitter) or self.jitter[3] > 0.5:
            raise ConfigError(f"jitter must be >= 0 with hue <= 0.5, got {self.jitter!r}")
        if not 0 < self.blur_sigma[0] <= self.blur_sigma[1]:
            raise ConfigError(f"blur_sigma must satisfy 0 < min <= max, got {self.blur_sigma!r}")


class SimCLRViews:
    """Two independent SimCLR augmentations of every image of a batch.

    Parameters
    ----------
    params : SimCLRViewParams
    mean, std : sequence of float
        Per-channel normalisation applied last.

    Examples
    --------
    >>> views = SimCLRViews(SimCLRViewParams(), mean=(0.5,), std=(0.5,))
    >>> v1, v2 = views.pair(x_uint8, gen)   # each (B, C, H, W) float, normalised
    """

    def __init__(self, params: SimCLRViewParams, mean, std) -> None:
        self.p = params
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 or [0, 1] float images -> normalised float (the probes' "online" view)."""
        x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
        return (x - self.mean.to(x.device)) / self.std.to(x.device)

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """One augmented view of every image: ``(B, C, H, W)`` uint8 or [0, 1] -> normalised float."""
        p = self.p
        x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
        b, c, h, w = x.shape
        dev = x.device
        top, left, ch, cw = _sample_crops(b, p.crop_scale, p.crop_ratio, h, w, gen)
        flip = torch.rand(b, generator=gen) < p.flip_p
        x = resized_crop_flip(x, top, left, ch, cw, flip)
        # colour jitter: factors U(max(0, 1 - s), 1 + s) for b/c/s, U(-hue, hue); identity where not applied
        apply = torch.rand(b, generator=gen) < p.jitter_p
        bs, cs, ss, hs = p.jitter
        fb = torch.empty(b).uniform_(max(0.0, 1 - bs), 1 + bs, generator=gen)
        fc = torch.empty(b).uniform_(max(0.0, 1 - cs), 1 + cs, generator=gen)
        fs = torch.empty(b).uniform_(max(0.0, 1 - ss), 1 + ss, generator=gen)
        fh = torch.empty(b).uniform_(-hs, hs, generator=gen) if hs > 0 else torch.zeros(b)
        ones = torch.ones(b)
        fb, fc, fs = (torch.where(apply, f, ones).to(dev) for f in (fb, fc, fs))
        fh = torch.where(apply, fh, torch.zeros(b)).to(dev)
        order = torch.randperm(4, generator=gen).tolist()
        for op in order:
            if op == 0:
                x = adjust_brightness(x, fb)
            elif op == 1:
                x = adjust_contrast(x, fc)
            elif op == 2:
                x = adjust_saturation(x, fs)
            elif c == 3 and hs > 0:
                x = adjust_hue(x, fh)
        grey = (torch.rand(b, generator=gen) < p.grey_p).to(dev).view(-1, 1, 1, 1)
        x = torch.where(grey, _grey(x).expand_as(x), x)
        ksize = blur_kernel_size(min(h, w), p.blur_fraction)
        if ksize > 1 and p.blur_p > 0:
            sigma = torch.empty(b).uniform_(*p.blur_sigma, generator=gen)
            blur = torch.rand(b, generator=gen) < p.blur_p
            x = torch.where(blur.to(dev).view(-1, 1, 1, 1), gaussian_blur(x, sigma.to(dev), ksize), x)
        return (x - self.mean.to(dev)) / self.std.to(dev)

    def pair(self, x: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Two independent views of the same images."""
        return self(x, gen), self(x, gen)


# ----------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class SequenceParams:
    """Ranges of the temporal digit sequences (one factor moves per sequence, constant step per frame)."""

    length: int = 4                          # frames per sequence (pairs = length - 1)
    max_shift: float = 0.15                  # position step per frame, fraction of the image side (each axis)
    max_log_scale: float = 0.08              # |log scale| step per frame
    max_rotation_deg: float = 12.0           # rotation step per frame, degrees

    def __post_init__(self) -> None:
        if self.length < 2:
            raise ConfigError(f"sequence length must be >= 2 frames, got {self.length}")
        for name in ("max_shift", "max_log_scale", "max_rotation_deg"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)!r}")


def digit_sequences(x: torch.Tensor, params: SequenceParams, gen: torch.Generator,
                    factor: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Short sequences in which one factor of each image changes at a time.

    Frame ``t`` of sequence ``b`` is image ``b`` transformed by ``t`` steps of its factor: a shift by
    ``t * d`` (``d`` drawn per sequence, both axes), a scaling by ``exp(t * s)``, or a rotation by
    ``t * a``; frame 0 is the image itself. Pixels outside the image are 0 (the digits' background).

    Parameters
    ----------
    x : tensor, shape (B, C, H, W)
        uint8 or [0, 1] images.
    params : SequenceParams
    gen : torch.Generator
    factor : tensor of int, shape (B,), optional
        Which factor moves in each sequence (index into ``SEQUENCE_FACTORS``); drawn uniformly if None.

    Returns
    -------
    frames : tensor, shape (B, T, C, H, W)
        float in [0, 1].
    factor : tensor of int, shape (B,)
    """
    x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
    b, c, h, w = x.shape
    t = params.length
    if factor is None:
        factor = torch.randint(0, len(SEQUENCE_FACTORS), (b,), generator=gen)
    step = torch.empty(b, 3).uniform_(-1, 1, generator=gen)  # per-sequence step in units of the max
    steps = torch.arange(t, dtype=torch.float32).view(1, t)  # (1, T)
    zero = torch.zeros(b, t)
    is_pos, is_scale, is_rot = (factor == 0).unsqueeze(1), (factor == 1).unsqueeze(1), (factor == 2).unsqueeze(1)
    # normalised coordinates span 2 per image side
    dx = torch.where(is_pos, 2 * params.max_shift * step[:, :1] * steps, zero)
    dy = torch.where(is_pos, 2 * params.max_shift * step[:, 1:2] * steps, zero)
    log_s = torch.where(is_scale, params.max_log_scale * step[:, 2:3] * steps, zero)
    ang = torch.where(is_rot, math.radians(params.max_rotation_deg) * step[:, 2:3] * steps, zero)
    # sampling grid maps output -> input: inverse of (rotate by ang, scale by s, then shift by d)
    inv_s = torch.exp(-log_s)
    cos, sin = torch.cos(ang) * inv_s, torch.sin(ang) * inv_s
    theta = torch.zeros(b, t, 2, 3)
    theta[..., 0, 0], theta[..., 0, 1] = cos, sin
    theta[..., 1, 0], theta[..., 1, 1] = -sin, cos
    theta[..., 0, 2] = -(cos * dx + sin * dy)
    theta[..., 1, 2] = -(-sin * dx + cos * dy)
    xs = x.unsqueeze(1).expand(b, t, c, h, w).reshape(b * t, c, h, w)  # (B*T, C, H, W)
    frames = _affine_resample(xs, theta.reshape(b * t, 2, 3).to(x.device))
    return frames.reshape(b, t, c, h, w), factor


class SequenceViews:
    """Positive pairs from consecutive frames of :func:`digit_sequences`, normalised like the SimCLR views.

    ``pair(x, gen)`` makes one sequence per image and returns frames ``(0..T-2)`` and ``(1..T-1)``
    flattened: two tensors ``(B * (T - 1), C, H, W)``.
    """

    def __init__(self, params: SequenceParams, mean, std) -> None:
        self.p = params
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
        return (x - self.mean.to(x.device)) / self.std.to(x.device)

    def pair(self, x: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        frames, _ = digit_sequences(x, self.p, gen)
        b, t, c, h, w = frames.shape
        a = frames[:, :-1].reshape(b * (t - 1), c, h, w)  # (B*(T-1), C, H, W)
        z = frames[:, 1:].reshape(b * (t - 1), c, h, w)
        return self.normalise(a), self.normalise(z)
