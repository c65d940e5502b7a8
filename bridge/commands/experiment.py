"""``ratespike experiment NAME ...``: a paper figure of a rate network as one experiment, NetCDF + PNG.

``lpl-fig2``
    Halvagal & Zenke (2023), Fig. 2: one linear LPL neuron on a slow (x) and a fast (y) input; LPL, pred off,
    Hebb off and Oja's rule over sigma_y, and LPL over the cluster-switch probability (:mod:`ratenets.lpl_toy`).
``lpl-fig4``
    Halvagal & Zenke (2023), Fig. 4: swap exposure after Li & DiCarlo (2008) on a conv net trained with LPL
    (:mod:`ratenets.lpl_swap`).

Every field of the experiment's config can be set with ``--set FIELD=VALUE``; the file holds the full config,
the seeds and the package versions; the figure is written beside it (``--figure``, default OUT with .png).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bridge.commands.common import add_seed_arguments, add_set_argument, seeds_from_args

HELP = "run a paper figure of a rate network (lpl-fig2, lpl-fig4) and write NetCDF and a PNG figure"
EXPERIMENTS = {"lpl-fig2": "ratenets.lpl_toy", "lpl-fig4": "ratenets.lpl_swap"}
CONFIGS = {"lpl-fig2": "ToyConfig", "lpl-fig4": "SwapConfig"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("experiment", nargs="?", help="one of " + ", ".join(EXPERIMENTS))
    p.add_argument("--list", action="store_true", help="list the experiments and their config fields, then exit")
    add_seed_arguments(p)
    p.add_argument("--out", default=None, help="results file (default EXPERIMENT.nc)")
    p.add_argument("--figure", default=None, help="figure file (default: OUT with the suffix .png)")
    add_set_argument(p)
    p.add_argument("--no-progress", action="store_true", help="no progress report on stderr")


def run(args: argparse.Namespace) -> int:
    import dataclasses
    import importlib

    from bridge.config import apply_overrides
    from bridge.errors import ConfigError, unknown_choice
    from bridge.io import check_writable, write_run

    if args.list or not args.experiment:
        if not args.list:
            raise ConfigError("missing EXPERIMENT (choices: " + ", ".join(EXPERIMENTS) + ")")
        for name, modname in EXPERIMENTS.items():
            cls = getattr(importlib.import_module(modname), CONFIGS[name])
            print(f"{name}: " + ", ".join(f.name for f in dataclasses.fields(cls)))
        return 0
    if args.experiment not in EXPERIMENTS:
        raise unknown_choice("experiment", args.experiment, EXPERIMENTS)
    seeds = seeds_from_args(args)
    mod = importlib.import_module(EXPERIMENTS[args.experiment])
    cfg = apply_overrides(getattr(mod, CONFIGS[args.experiment])(), args.overrides)
    out = check_writable(args.out or f"{args.experiment}.nc", kind="netcdf")
    fig_path = Path(args.figure) if args.figure else out.with_suffix(".png")
    if fig_path.suffix.lower() != ".png":
        raise ConfigError(f"--figure must name a .png file, got {str(fig_path)!r}")
    fig_path = check_writable(fig_path, inputs=[out], kind="png")
    progress = None if args.no_progress else (lambda msg: print(msg, file=sys.stderr, flush=True))
    ds = mod.run(cfg, seeds, progress=progress)
    write_run(ds, out)
    mod.plot(ds, fig_path)
    print(mod.summary(ds))
    print(f"wrote {out}")
    print(f"wrote {fig_path}")
    return 0
