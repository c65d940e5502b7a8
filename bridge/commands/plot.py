"""``ratespike plot FILE.nc``: draw the figure that fits a results file."""
from __future__ import annotations

import argparse
from pathlib import Path

HELP = "draw the figure that fits a results file (curves, comparison heat map, spiking summary) as PNG"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="a ratespike results file (.nc)")
    p.add_argument("--out", default=None, help="PNG file (default: FILE with .png)")


def run(args: argparse.Namespace) -> int:
    from bridge.io import check_writable, open_run
    from bridge.plots import plot_file

    out = check_writable(args.out or Path(args.file).with_suffix(".png"), inputs=[args.file], kind="png")
    ds = open_run(args.file)
    if ds.attrs.get("experiment") == "rate-vs-spiking":
        from bridge.rate_vs_spiking import plot_side_by_side

        png = plot_side_by_side(ds, out)
    else:
        png = plot_file(ds, out, path=args.file)
    print(f"wrote {png}")
    return 0
