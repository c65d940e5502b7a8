"""Layer-local encoders: VGG-11 without BatchNorm, a small conv net, and an MLP, as stacks of blocks.

Every encoder is a :class:`BlockEncoder`: an ``nn.ModuleList`` of blocks plus their names. A conv block is
conv 3x3 (padding 1) -> ReLU -> optional max-pool 2x2; an MLP block is linear -> ReLU. Layer-local rules
run the blocks one at a time on a detached input (so no gradient crosses blocks); end-to-end training
calls :meth:`BlockEncoder.forward`.

VGG-11 follows the official LPL code (``models/encoders.py``, ``VGG11Encoder``; Halvagal & Zenke 2023,
Methods "Network architecture"): eight blocks with 64, 128, 256, 256, 512, 512, 512, 512 channels, max
pooling after blocks 1, 2, 4, 6 and 8, biases on, no BatchNorm.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from bridge.errors import ConfigError, unknown_choice
from ratenets.encoders import encoder_names
from ratenets.encoders.spiking import TimeSteps

#: Halvagal & Zenke (2023), official VGG11Encoder: channels of the eight blocks
VGG11_CHANNELS = (64, 128, 256, 256, 512, 512, 512, 512)
#: ... and the blocks followed by a 2x2 max-pool (1-based: 1, 2, 4, 6, 8)
VGG11_POOL = (True, True, False, True, False, True, False, True)

#: the block encoders of the registry (:data:`ratenets.encoders.ENCODERS`)
ENCODERS = encoder_names(__name__)


class ConvBlock(nn.Module):
    """conv3x3(pad 1) -> ReLU -> [MaxPool 2x2]: ``(B, C_in, H, W)`` -> ``(B, C_out, H', W')``."""

    def __init__(self, c_in: int, c_out: int, pool: bool, bias: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, bias=bias)
        self.pool = nn.MaxPool2d(2) if pool else nn.Identity()
        self.pools = bool(pool)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(torch.relu(self.conv(x)))


class DenseBlock(nn.Module):
    """linear -> ReLU on flattened input: ``(B, ...)`` -> ``(B, units)``."""

    pools = False

    def __init__(self, n_in: int, n_out: int, bias: bool = True) -> None:
        super().__init__()
        self.fc = nn.Linear(n_in, n_out, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.fc(x.flatten(1)))  # (B, n_in) from (B, C, H, W) for the first block


class BlockEncoder(TimeSteps, nn.Module):
    """A stack of named blocks; ``forward`` returns every block's output ``{name: tensor}``.

    With spiking neurons (:func:`ratenets.encoders.spiking.with_neurons`) the blocks pass spike trains
    ``(T, B, ...)``; ``forward`` encodes the input over time and returns every block's readout ``(B, ...)``.

    Attributes
    ----------
    blocks : nn.ModuleList
    layer_names : tuple of str
    widths : tuple of int
        Units of each block's pooled output (channels for conv blocks).
    """

    def __init__(self, blocks: Sequence[nn.Module], names: Sequence[str], widths: Sequence[int]) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.layer_names = tuple(names)
        self.widths = tuple(int(w) for w in widths)

    def forward(self, x: torch.Tensor, detach_between: bool = False) -> dict[str, torch.Tensor]:
        out = {}
        h = self.encode(x)
        for name, block in zip(self.layer_names, self.blocks):
            h = block(h.detach() if detach_between else h)
            out[name] = self.readout(h)
        return out


def global_pool(h: torch.Tensor) -> torch.Tensor:
    """Global average pooling of a block output: ``(B, C, H, W)`` -> ``(B, C)``; ``(B, M)`` unchanged."""
    return h.mean(dim=(2, 3)) if h.ndim == 4 else h


def vgg11(in_channels: int = 3, bias: bool = True, width_scale: float = 1.0) -> BlockEncoder:
    """VGG-11 without BatchNorm (official LPL encoder); ``width_scale`` shrinks every block for quick runs."""
    chans = [max(1, int(round(c * width_scale))) for c in VGG11_CHANNELS]
    blocks, c = [], in_channels
    for c_out, pool in zip(chans, VGG11_POOL):
        blocks.append(ConvBlock(c, c_out, pool, bias))
        c = c_out
    return BlockEncoder(blocks, [f"conv{i + 1}" for i in range(len(chans))], chans)


def small_conv(in_channels: int = 1, channels: Sequence[int] = (32, 64, 128), bias: bool = True) -> BlockEncoder:
    """A small conv net for quick CPU runs: one block per entry of ``channels``, each followed by max-pooling."""
    blocks, c = [], in_channels
    for c_out in channels:
        blocks.append(ConvBlock(c, int(c_out), True, bias))
        c = int(c_out)
    return BlockEncoder(blocks, [f"conv{i + 1}" for i in range(len(channels))], [int(c) for c in channels])


def mlp(n_in: int, hidden: Sequence[int] = (512, 512, 512), bias: bool = True) -> BlockEncoder:
    """A ReLU MLP on flattened images, one block per hidden layer."""
    blocks, n = [], n_in
    for h in hidden:
        blocks.append(DenseBlock(n, int(h), bias))
        n = int(h)
    return BlockEncoder(blocks, [f"fc{i + 1}" for i in range(len(hidden))], [int(h) for h in hidden])


def n_pools(encoder: str, conv_channels: Sequence[int] = ()) -> int:
    """Number of 2x2 max-pooling stages of an encoder (what bounds the smallest image it takes)."""
    if encoder == "vgg11":
        return sum(VGG11_POOL)
    if encoder == "conv":
        return len(conv_channels)
    return 0


def build_encoder(encoder: str, image_shape: tuple[int, int, int], *, conv_channels: Sequence[int] = (32, 64, 128),
                  mlp_hidden: Sequence[int] = (512, 512, 512), bias: bool = True,
                  width_scale: float = 1.0) -> BlockEncoder:
    """Build an encoder by name for images ``(C, H, W)``.

    Raises
    ------
    ConfigError
        For an unknown name, or an image smaller than the encoder's pooling needs (each 2x2 max-pool halves
        the size, so ``k`` pools need at least ``2**k`` pixels per side).
    """
    if encoder not in ENCODERS:
        raise unknown_choice("encoder", encoder, ENCODERS)
    c, h, w = image_shape
    k = n_pools(encoder, conv_channels)
    if min(h, w) < 2 ** k:
        raise ConfigError(f"image size {h}x{w} px is too small for encoder {encoder!r}: its {k} max-pooling "
                          f"stages need at least {2 ** k}x{2 ** k} px")
    if encoder == "vgg11":
        return vgg11(c, bias, width_scale)
    if encoder == "conv":
        return small_conv(c, conv_channels, bias)
    return mlp(c * h * w, mlp_hidden, bias)
