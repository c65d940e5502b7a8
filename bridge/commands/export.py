"""``ratespike export RUN.nc --format nwb --out RUN.nwb``: write a spiking run in another format (NWB)."""
from __future__ import annotations

import argparse
from pathlib import Path

HELP = ("export a spiking run to NWB (Neurodata Without Borders: units with spike times per population, "
        "input rates, weights, config)")
FORMATS = ("nwb",)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="a spiking results file (.nc) written by 'ratespike spike'")
    p.add_argument("--format", default="nwb", help="output format: nwb (default; read with pynwb)")
    p.add_argument("--out", default=None, help="output file (default: FILE with .nwb)")


def run(args: argparse.Namespace) -> int:
    from bridge.errors import unknown_choice

    if args.format not in FORMATS:
        raise unknown_choice("export format", args.format, FORMATS)
    from bridge.nwb import export_nwb

    out = Path(args.out) if args.out else Path(args.file).with_suffix(".nwb")
    path = export_nwb(args.file, out)
    print(f"wrote {path}")
    return 0
