"""``ratespike spike EXPERIMENT ...``: run a Brian2 spiking experiment and write one NetCDF file."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bridge.commands.common import add_set_argument

HELP = "simulate a spiking experiment in Brian2 (lpl-network, stdp-protocol, song-stdp) and write NetCDF"
_EXPERIMENTS = ("lpl-network", "stdp-protocol", "song-stdp")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("experiment", nargs="?", help="one of " + ", ".join(_EXPERIMENTS))
    p.add_argument("--list", action="store_true", help="list the experiments and their config fields, then exit")
    p.add_argument("--duration", type=float, default=None, metavar="SECONDS",
                   help="total simulated time in seconds (default: the paper's, e.g. 200 s for stdp-protocol, "
                        "101800 s for lpl-network)")
    p.add_argument("--device", default="cpp_standalone",
                   help="runtime, cpp_standalone or cuda_standalone (default cpp_standalone)")
    p.add_argument("--threads", type=int, default=1, help="OpenMP threads of cpp_standalone (default 1)")
    p.add_argument("--seed", type=int, default=0, help="random seed of Brian2 and NumPy (default 0)")
    p.add_argument("--out", default=None, help="results file (default EXPERIMENT_sSEED.nc)")
    p.add_argument("--build-root", default=None,
                   help="parent folder of the per-run standalone build directory (default: temp dir)")
    add_set_argument(p)
    p.add_argument("--no-progress", action="store_true", help="no progress report on stderr")


def run(args: argparse.Namespace) -> int:
    import dataclasses

    from bridge.config import apply_overrides, replace_config
    from bridge.errors import ConfigError, unknown_choice
    from bridge.io import check_writable

    if args.list or not args.experiment:
        if not args.list:
            raise ConfigError("missing EXPERIMENT (choices: " + ", ".join(_EXPERIMENTS) + ")")
        from spiking.experiments import get_experiment

        for name in _EXPERIMENTS:
            fields = [f.name for f in dataclasses.fields(get_experiment(name).Config)]
            print(f"{name}: " + ", ".join(fields))
        return 0
    if args.experiment not in _EXPERIMENTS:
        raise unknown_choice("spiking experiment", args.experiment, _EXPERIMENTS)
    if args.duration is not None and not args.duration > 0:
        raise ConfigError(f"--duration must be > 0 seconds, got {args.duration:g}")
    if args.seed < 0:
        raise ConfigError(f"--seed must be >= 0, got {args.seed}")
    from spiking.devices import check_device

    check_device(args.device)
    from spiking.experiments import get_experiment

    mod = get_experiment(args.experiment)
    cfg = mod.Config()
    if args.duration is not None:
        cfg = replace_config(cfg, {"duration_s": float(args.duration)})
    cfg = apply_overrides(cfg, args.overrides)
    out = check_writable(args.out or f"{args.experiment}_s{args.seed}.nc")

    from bridge.io import write_run

    kw = {}
    if getattr(cfg, "segment_s", 0) > 0:
        if args.device != "runtime":
            raise ConfigError(f"segment_s needs --device runtime (a {args.device} binary hands its results back "
                              "only when it ends); drop --set segment_s or use --device runtime")
        def keep(ds_part, groups_part):  # an interrupted run keeps the file of its last completed segment
            write_run(ds_part, out, groups=groups_part)

        kw["on_segment"] = keep
    ds, groups = mod.simulate(cfg, seed=args.seed, device=args.device, build_root=args.build_root,
                              threads=args.threads, progress=not args.no_progress and sys.stderr.isatty(), **kw)
    write_run(ds, out, groups=groups)
    a = ds.attrs
    print(f"{args.experiment} on {args.device}: simulated {a['simulated_time_s']:g} s in {a['wall_time_s']:.2f} s "
          f"(real-time factor {a['real_time_factor']:.2f}, build {a['build_time_s']:.1f} s)")
    for line in mod.summary(ds):
        print(line)
    print(f"wrote {Path(out)}")
    return 0
