"""Encoders (torch modules) for the rate-network rules, one family per file.

Each encoder exposes ``blocks`` (an ``nn.ModuleList`` of layer-local blocks, trained block by block by the
layer-local rules) and ``layer_names``; ``forward`` returns the named output of every block.
"""
from __future__ import annotations

import importlib

#: The one registry of the encoders a config can name: name -> ``"module:builder"``. The module is the family,
#: which fixes how the encoder is built: :mod:`ratenets.encoders.conv` (networks of layer-local blocks on
#: images, :func:`~ratenets.encoders.conv.build_encoder`; LPL's ``encoder``) and :mod:`ratenets.encoders.video`
#: (clip encoders, :func:`~ratenets.encoders.video.video_encoder`; DPC's ``encoder``). The CLAPP family's patch
#: encoder is built from its layer spec, not by name.
ENCODERS: dict[str, str] = {
    "vgg11": "ratenets.encoders.conv:vgg11",
    "conv": "ratenets.encoders.conv:small_conv",
    "mlp": "ratenets.encoders.conv:mlp",
    "resnet18_2d3d": "ratenets.encoders.video:ResNet2d3d18",
    "small3d": "ratenets.encoders.video:Small3d",
}


def encoder_names(module: str) -> tuple[str, ...]:
    """The registered encoders of one family, by its module name (``"ratenets.encoders.video"``)."""
    return tuple(n for n, target in ENCODERS.items() if target.split(":")[0] == module)


def encoder_builder(name: str):
    """The function or class registered as ``name`` (a ConfigError with the choices if unknown)."""
    from bridge.errors import unknown_choice

    if name not in ENCODERS:
        raise unknown_choice("encoder", name, ENCODERS)
    module, attr = ENCODERS[name].split(":")
    return getattr(importlib.import_module(module), attr)
