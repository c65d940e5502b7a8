"""Patch encoders of CLAPP: every image is cut into a grid of overlapping patches, each encoded on its own.

Illing, Ventura, Bellec & Gerstner (NeurIPS 2021), Sec. 4 and App. B: grey 64x64 crops of STL-10 are cut
into 16x16 patches at stride 8 (a 7x7 grid); a VGG-6 (3x3 convolutions with ReLU, no batch norm, max-pooling
after layers 2, 4, 5, 6) encodes every patch as a small image; each layer's output is average-pooled over the
pixels of the patch, which gives one feature vector per grid position and layer.

The same machinery with a small encoder (:data:`SMALL_MNIST`) and a 4x4 grid of overlapping 10x10 patches
(stride 6) serves 28x28 inputs (MNIST, Fashion-MNIST) on a CPU.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from bridge.errors import ConfigError
from ratenets.encoders.spiking import TimeSteps


@dataclass(frozen=True)
class PatchEncoderSpec:
    """Architecture of a patch encoder.

    Attributes
    ----------
    channels : tuple of int
        Output channels of each 3x3 convolution (padding 1, bias, ReLU).
    pool : tuple of bool
        Whether a 2x2 max-pool (stride 2) follows the ReLU of each layer.
    """

    channels: tuple[int, ...]
    pool: tuple[bool, ...]

    def __post_init__(self) -> None:
        if not self.channels or any(c <= 0 for c in self.channels):
            raise ConfigError(f"channels must list positive channel counts, got {self.channels!r}")
        if len(self.pool) != len(self.channels):
            raise ConfigError(f"pool must have one flag per layer ({len(self.channels)}), got {self.pool!r}")


#: Illing et al. (2021), App. B: VGG-6 128-256-256-512-1024-1024, max-pool after layers 2, 4, 5, 6
VGG6 = PatchEncoderSpec(channels=(128, 256, 256, 512, 1024, 1024), pool=(False, True, False, True, True, True))
#: CPU-sized encoder for 10x10 patches of 28x28 images (this project's choice, not the paper's)
SMALL_MNIST = PatchEncoderSpec(channels=(32, 64, 256), pool=(True, True, False))


def grid_size(image: int, patch: int, stride: int) -> int:
    """Patches along one side: ``(image - patch) // stride + 1``; ConfigError when the image is too small."""
    if patch > image:
        raise ConfigError(f"patch_size {patch} is larger than the {image}x{image} image: no patch fits")
    if stride <= 0:
        raise ConfigError(f"patch_stride must be > 0, got {stride}")
    return (image - patch) // stride + 1


def extract_patches(x: torch.Tensor, patch: int, stride: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Cut images into a grid of square patches.

    Parameters
    ----------
    x : tensor, shape (batch, channel, height, width)
    patch, stride : int
        Patch side and step in pixels.

    Returns
    -------
    patches : tensor, shape (batch * grid_y * grid_x, channel, patch, patch)
        Patches in row-major grid order: flat index ``b * gy * gx + y * gx + x``.
    grid : (int, int)
        ``(grid_y, grid_x)``.
    """
    b, c, h, w = x.shape
    gy, gx = grid_size(h, patch, stride), grid_size(w, patch, stride)
    u = x.unfold(2, patch, stride).unfold(3, patch, stride)  # (b, c, gy, gx, patch, patch)
    return u.permute(0, 2, 3, 1, 4, 5).reshape(b * gy * gx, c, patch, patch), (gy, gx)


class ConvBlock(nn.Module):
    """One layer: 3x3 convolution (padding 1, bias) -> ReLU -> optional 2x2 max-pool."""

    def __init__(self, c_in: int, c_out: int, pool: bool) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.pool = pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.conv(x))
        return nn.functional.max_pool2d(h, 2) if self.pool else h


class PatchEncoder(TimeSteps, nn.Module):
    """A stack of :class:`ConvBlock` applied to every patch independently.

    ``blocks[i]`` is layer ``conv{i+1}``; layer-local rules train each block on the detached output of the
    block below. With spiking neurons (:func:`ratenets.encoders.spiking.with_neurons`) the blocks pass spike
    trains ``(T, n, ...)`` and ``forward`` returns every block's readout ``(n, ...)``.
    """

    def __init__(self, spec: PatchEncoderSpec, in_channels: int = 1) -> None:
        super().__init__()
        self.spec = spec
        chans = (in_channels, *spec.channels)
        self.blocks = nn.ModuleList(ConvBlock(a, b, p) for a, b, p in zip(chans[:-1], chans[1:], spec.pool))
        self.layer_names = [f"conv{i + 1}" for i in range(len(self.blocks))]

    def check_patch(self, patch: int) -> None:
        """ConfigError when max-pooling would shrink a patch of side ``patch`` below one pixel."""
        side = patch
        for name, p in zip(self.layer_names, self.spec.pool):
            if p:
                side //= 2
            if side < 1:
                raise ConfigError(f"patch_size {patch} is too small for the encoder: it pools to nothing "
                                  f"at layer {name}")

    def forward(self, patches: torch.Tensor, detach: bool = False) -> list[torch.Tensor]:
        """Every layer's full (un-pooled-over-pixels) output for patches ``(n, c, p, p)``.

        With ``detach=True`` each block sees a detached copy of the block below (no gradient between layers).
        """
        outs = []
        h = self.encode(patches)
        for block in self.blocks:
            h = block(h.detach() if detach else h)
            outs.append(self.readout(h))
        return outs


def pooled(h: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """Average a layer's output over the pixels of each patch: ``(b*gy*gx, c, s, s)`` -> ``(b, gy, gx, c)``."""
    n, c = h.shape[:2]
    return h.mean(dim=(2, 3)).reshape(n // (grid[0] * grid[1]), grid[0], grid[1], c)
