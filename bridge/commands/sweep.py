"""``ratespike sweep SPEC.toml`` and ``ratespike sweep collect SPEC.toml --out sweep.nc``: grids of runs on Dask.

The sweep file format and the execution model are in :mod:`bridge.sweep`. This module is the CLI and the
resolver that builds a point's config (it imports :mod:`ratenets` or :mod:`spiking`, which
:mod:`bridge.sweep` must not).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

HELP = "run a grid of train/spike runs on Dask (local, --scheduler, or Slurm/PBS/SGE); 'sweep collect' stacks them"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", nargs="+", metavar="[collect] SPEC.toml",
                   help="the sweep file; 'collect SPEC.toml --out FILE' stacks the finished points into one file")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--scheduler", default=None, metavar="ADDRESS",
                       help="address of a running Dask scheduler (tcp://host:8786); default: a local cluster")
    where.add_argument("--cluster", default=None, choices=("slurm", "pbs", "sge"),
                       help="start Dask workers as batch jobs via dask-jobqueue, per the sweep file's [cluster]")
    p.add_argument("--workers", type=int, default=None,
                   help="worker processes of the local cluster (default: the cores, one thread each)")
    p.add_argument("--connect-timeout", type=float, default=5.0, metavar="SECONDS",
                   help="how long to try reaching --scheduler (default 5)")
    p.add_argument("--build-root", default=None,
                   help="spiking points: shared parent of the standalone builds (default OUT_DIR/.build)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the points, their commands and (with --cluster) the job script; run nothing")
    p.add_argument("--out", default=None, help="collect: the stacked file (default OUT_DIR/sweep.nc)")
    p.add_argument("--partial", action="store_true",
                   help="collect: allow missing or incomplete points (their values are NaN)")


def _options(command: str):
    from bridge.commands import spike, train
    from bridge.sweep import command_options

    return command_options({"train": train, "spike": spike}[command].add_arguments, command)


def _resolver(command: str):
    from bridge.config import replace_config
    from bridge.errors import ConfigError

    if command == "train":
        def resolve(opts: dict[str, Any]):
            from ratenets.rules import get_rule

            rule = get_rule(str(opts["rule"]))
            preset = str(opts["preset"]) if "preset" in opts else None
            if "dataset" in opts:
                dataset = str(opts["dataset"])
            else:
                from ratenets.presets import dataset_of

                dataset = dataset_of(rule, preset) if preset is not None else "mnist"
            cfg = rule.preset(dataset, preset)
            if "epochs" in opts:
                if not isinstance(opts["epochs"], int) or opts["epochs"] < 1:
                    raise ConfigError(f"epochs must be an integer >= 1, got {opts['epochs']!r}")
                cfg = replace_config(cfg, {"epochs": opts["epochs"]})
            dev = str(opts.get("device", "cpu"))
            if dev not in ("cpu", "cuda") and not dev.startswith("cuda:"):
                raise ConfigError(f"unknown device {dev!r} (choices: cpu, cuda)")
            return cfg, bool(getattr(rule, "batched_seeds", False))

        return resolve

    def resolve_spike(opts: dict[str, Any]):
        from spiking.experiments import get_experiment

        mod = get_experiment(str(opts["experiment"]))
        cfg = mod.CONFIG()
        if "duration" in opts:
            d = opts["duration"]
            if not isinstance(d, int | float) or not d > 0:
                raise ConfigError(f"duration must be > 0 seconds, got {d!r}")
            cfg = replace_config(cfg, {"duration_s": float(d)})
        return cfg, False

    return resolve_spike


def load(path: str):
    """Read a sweep file with the options and configs of its command (every check, nothing run)."""
    import tomllib

    from bridge.errors import ConfigError
    from bridge.sweep import COMMANDS, load_spec

    try:
        cmd = tomllib.loads(Path(path).read_text()).get("command")
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        cmd = None  # load_spec reports it
    if cmd is not None and cmd not in COMMANDS:
        raise ConfigError(f"sweep file key 'command' must be one of {', '.join(COMMANDS)}, got {cmd!r}")
    c = cmd or "train"
    return load_spec(path, _options(c), _resolver(c))


def run(args: argparse.Namespace) -> int:
    from bridge.errors import ConfigError

    target = list(args.target)
    if target[0] == "collect":
        if len(target) != 2:
            raise ConfigError("usage: ratespike sweep collect SPEC.toml [--out FILE]")
        return _collect(target[1], args)
    if len(target) != 1:
        raise ConfigError(f"give one sweep file, got {' '.join(target)!r} (or 'collect SPEC.toml')")
    if args.out is not None or args.partial:
        raise ConfigError("--out and --partial belong to 'ratespike sweep collect'")
    if args.workers is not None and args.workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {args.workers}")
    if not args.connect_timeout > 0:
        raise ConfigError(f"--connect-timeout must be > 0, got {args.connect_timeout:g}")
    return _sweep(target[0], args)


def _sweep(path: str, args: argparse.Namespace) -> int:
    from bridge.io import check_writable
    from bridge.sweep import execute, job_script, jobqueue_options, plan

    spec = load(path)
    build_root = Path(args.build_root).resolve() if args.build_root else spec.out_dir / ".build"
    if args.cluster:
        jobqueue_options(args.cluster, spec.cluster)  # a bad [cluster] option fails before anything runs
        script = job_script(args.cluster, spec.cluster)
    tasks, done = plan(spec, build_root if spec.command == "spike" else None)
    if args.dry_run:
        print(f"# {len(spec.points)} points ({len(done)} complete), {len(tasks)} tasks, out_dir {spec.out_dir}")
        for t in tasks:
            print(f"{', '.join(pt.name for pt in t.points)}: ratespike {' '.join(t.argv)}")
        if args.cluster:
            print(f"# dask-jobqueue job script ({args.cluster}; the scheduler address is filled in at run time)")
            print(script.rstrip())
        return 0
    check_writable(spec.out_dir / "sweep.nc")
    from bridge.sweep import connect

    if not tasks:
        if args.scheduler:  # an unreachable address is an error even when nothing is left to run
            connect(scheduler=args.scheduler, timeout_s=args.connect_timeout)[1]()
        print(f"sweep: all {len(spec.points)} points complete in {spec.out_dir}", file=sys.stderr)
        return 0
    client, close = connect(scheduler=args.scheduler, system=args.cluster, cluster_opts=spec.cluster,
                            workers=args.workers, n_tasks=len(tasks), timeout_s=args.connect_timeout,
                            retries=spec.retries)
    try:
        results = execute(client, tasks, len(spec.points), len(done))
    finally:
        close()
    failed = [r for r in results if r["status"] != "ok"]
    n_failed = sum(len(r["points"]) for r in failed)
    print(f"sweep: {len(spec.points) - n_failed}/{len(spec.points)} points complete in {spec.out_dir}")
    for r in failed:
        print(f"failed: {', '.join(r['points'])}: {r['error']}")
    return 1 if failed else 0


def _collect(path: str, args: argparse.Namespace) -> int:
    from bridge.io import check_writable, write_run
    from bridge.sweep import collect

    spec = load(path)
    out = check_writable(args.out or spec.out_dir / "sweep.nc")
    ds, opened = collect(spec, partial=args.partial)
    try:
        write_run(ds, out)
    finally:
        for f in opened:
            f.close()
    sizes = ", ".join(f"{k}={ds.sizes[k]}" for k in spec.dims)
    print(f"collected {int(ds.attrs['points_complete'])}/{len(spec.points)} points ({sizes})")
    print(f"wrote {out}")
    return 0
