"""Encoders (torch modules) for the rate-network rules, one family per file.

Each encoder exposes ``blocks`` (an ``nn.ModuleList`` of layer-local blocks, trained block by block by the
layer-local rules) and ``layer_names``; ``forward`` returns the named output of every block.
"""
