"""Video encoders for Dense Predictive Coding: the 2D3D ResNet-18 of DPC and a small 3D conv net for CPU runs.

Both map a block of frames ``(B, C, L, H, W)`` to a feature map ``(B, D, L', H / s, W / s)`` (``s`` the
spatial stride, ``D`` the feature width) whose last layer has *no* ReLU: DPC predicts these pre-ReLU
features. BatchNorm uses batch statistics in training and evaluation alike (``track_running_stats=False``),
as DPC's self-supervised model does.

References
----------
Han, Xie, Zisserman (2019), arXiv:1909.04656, Sec. 3.2 and the TengdaHan/DPC code (``backbone/
resnet_2d3d.py``): conv1 1x7x7 /2, max-pool 1x3x3 /2, layers 1-2 of 2D (1x3x3) basic blocks, layers 3-4
of 3D (3x3x3) basic blocks with stride 2 in time and space; layer 4 has 256 channels (not 512) and ends
without ReLU.
"""
from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from bridge.errors import ConfigError, unknown_choice
from ratenets.encoders import encoder_builder, encoder_names


def _bn(c: int) -> nn.BatchNorm3d:
    return nn.BatchNorm3d(c, track_running_stats=False)


class BasicBlock(nn.Module):
    """ResNet basic block in 2D (``1x3x3`` kernels) or 3D (``3x3x3``) form.

    ``(B, c_in, L, H, W)`` -> ``(B, c_out, L / st, H / s, W / s)``; the final ReLU is dropped when ``final``.
    """

    def __init__(self, c_in: int, c_out: int, stride: tuple[int, int, int], three_d: bool, final: bool = False):
        super().__init__()
        k, p = ((3, 3, 3), (1, 1, 1)) if three_d else ((1, 3, 3), (0, 1, 1))
        self.conv1 = nn.Conv3d(c_in, c_out, k, stride=stride, padding=p, bias=False)
        self.bn1 = _bn(c_out)
        self.conv2 = nn.Conv3d(c_out, c_out, k, padding=p, bias=False)
        self.bn2 = _bn(c_out)
        self.final = final
        self.down = None
        if c_in != c_out or stride != (1, 1, 1):
            self.down = nn.Sequential(nn.Conv3d(c_in, c_out, 1, stride=stride, bias=False), _bn(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        y = y + (x if self.down is None else self.down(x))
        return y if self.final else torch.relu(y)


class ResNet2d3d18(nn.Module):
    """DPC's 2D3D ResNet-18: ``(B, C, L, H, W)`` -> ``(B, 256, ceil(L / 4), H / 32, W / 32)``."""

    stride: ClassVar[int] = 32
    #: smallest frame size that leaves a 2x2 grid of cells (so spatial negatives exist)
    min_px: ClassVar[int] = 64

    def __init__(self, in_channels: int = 3, out_dim: int = 256) -> None:
        super().__init__()
        self.out_dim = out_dim
        self.stem = nn.Sequential(
            nn.Conv3d(in_channels, 64, (1, 7, 7), stride=(1, 2, 2), padding=(0, 3, 3), bias=False), _bn(64),
            nn.ReLU(inplace=True), nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)))
        widths = (64, 128, 256, out_dim)
        strides = ((1, 1, 1), (1, 2, 2), (2, 2, 2), (2, 2, 2))
        layers, c_in = [], 64
        for i, (c, s) in enumerate(zip(widths, strides)):
            three_d, last = i >= 2, i == 3
            layers.append(nn.Sequential(BasicBlock(c_in, c, s, three_d),
                                        BasicBlock(c, c, (1, 1, 1), three_d, final=last)))
            c_in = c
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(self.stem(x))


class Small3d(nn.Module):
    """A small 3D conv encoder for CPU runs: ``(B, C, L, H, W)`` -> ``(B, D, ceil(L / 4), H / 16, W / 16)``.

    conv 1x3x3 /2 -> conv 3x3x3 /2 (time and space) -> conv 3x3x3 /2 -> conv 1x3x3 /2 (no ReLU), each
    conv followed by BatchNorm (batch statistics) and, except the last, ReLU; widths D/4, D/2, D, D.
    """

    stride: ClassVar[int] = 16
    min_px: ClassVar[int] = 32

    def __init__(self, in_channels: int = 1, out_dim: int = 64) -> None:
        super().__init__()
        self.out_dim = out_dim
        w = (max(out_dim // 4, 1), max(out_dim // 2, 1), out_dim, out_dim)
        spec = [((1, 3, 3), (1, 2, 2), (0, 1, 1)), ((3, 3, 3), (2, 2, 2), (1, 1, 1)),
                ((3, 3, 3), (2, 2, 2), (1, 1, 1)), ((1, 3, 3), (1, 2, 2), (0, 1, 1))]
        mods: list[nn.Module] = []
        c_in = in_channels
        for i, (c, (k, s, p)) in enumerate(zip(w, spec)):
            mods += [nn.Conv3d(c_in, c, k, stride=s, padding=p, bias=False), _bn(c)]
            if i < len(w) - 1:
                mods.append(nn.ReLU(inplace=True))
            c_in = c
        self.net = nn.Sequential(*mods)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


#: the video encoders of the registry (:data:`ratenets.encoders.ENCODERS`), by name
VIDEO_ENCODERS: dict[str, type[nn.Module]] = {n: encoder_builder(n) for n in encoder_names(__name__)}


def video_encoder(name: str, in_channels: int, out_dim: int) -> nn.Module:
    """Build a video encoder by name (ConfigError for an unknown name)."""
    if name not in VIDEO_ENCODERS:
        raise unknown_choice("video encoder", name, VIDEO_ENCODERS)
    return VIDEO_ENCODERS[name](in_channels=in_channels, out_dim=out_dim)


def check_resolution(name: str, px: int) -> int:
    """The side of the cell grid an encoder gives at ``px`` pixels; ConfigError below its minimum."""
    if name not in VIDEO_ENCODERS:
        raise unknown_choice("video encoder", name, VIDEO_ENCODERS)
    cls = VIDEO_ENCODERS[name]
    if px < cls.min_px:
        raise ConfigError(f"img_px {px} is below the minimum {cls.min_px} of encoder {name!r} "
                          f"(it downsamples by {cls.stride} and needs a 2x2 grid of cells)")
    return -(-px // cls.stride)
