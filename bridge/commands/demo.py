"""``ratespike demo``: the main job, offline on data that ship with the install.

Trains the backprop baseline MLP (784-500-10 on MNIST; 64-500-10 on scikit-learn's digits, the default,
which ship with scikit-learn and need no download) and leaves a NetCDF file and a PNG figure in the
output folder.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "run the demo pipeline offline and leave NetCDF files and PNG figures in an output folder"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="ratespike-demo", help="output folder (default ./ratespike-demo)")
    p.add_argument("--dataset", default="digits", help="digits (default, ships with the install), mnist, "
                   "fashion-mnist, ... when their data are present")
    p.add_argument("--epochs", type=int, default=None, help="training epochs (default 10 on digits, 1 otherwise)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-root", default=None)
    p.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    from bridge.config import replace_config
    from bridge.errors import ConfigError
    from bridge.io import check_writable
    from bridge.plots import plot_curves
    from bridge.summary import final_metrics
    from ratenets.rules import get_rule
    from ratenets.train import RunContext, fit

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {str(out)!r} exists and is not a folder")
    if args.seed < 0:
        raise ConfigError(f"--seed must be >= 0, got {args.seed}")
    nc = check_writable(out / "bp.nc")
    epochs = args.epochs if args.epochs is not None else (10 if args.dataset == "digits" else 1)
    rule = get_rule("bp")
    cfg = replace_config(rule.preset(args.dataset), {"epochs": epochs})
    show = not args.no_progress
    print(f"[1/2] training bp (backprop MLP) on {args.dataset} for {epochs} epochs", file=sys.stderr)
    data = rule.load_data(cfg, args.dataset, args.data_root)
    ctx = RunContext(dataset=args.dataset, seeds=(args.seed,), out=nc, progress=show and sys.stderr.isatty(),
                     data_root=args.data_root)
    ds, _ = fit(rule, cfg, data, ctx,
                on_epoch=lambda e, m: print(f"  epoch {e}/{epochs}: test accuracy "
                                            f"{float(m['test_accuracy']):.4f}", file=sys.stderr) if show else None)
    ckpt = ctx.checkpoint_path()
    if ckpt is not None and ckpt.exists():
        ckpt.unlink()
    print("[2/2] plotting", file=sys.stderr)
    png = plot_curves(ds, out / "bp_curves.png")
    print(f"bp on {args.dataset}: {final_metrics(ds)}")
    print(f"wrote {nc} and {png}")
    return 0
