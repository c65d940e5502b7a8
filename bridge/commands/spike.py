"""``ratespike spike EXPERIMENT ...``: run a Brian2 spiking experiment and write one NetCDF file (or a set).

``lpl-network`` on cpp_standalone uses one cached binary (:mod:`spiking.standalone`): ``--conditions`` and
``--seeds`` run a set of conditions x seeds on it, one process per core, each into its own file in
``--out-dir``; ``--set segment_s=S`` rewrites the results file atomically after every segment and ``--resume``
continues an interrupted run from its last segment.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

from bridge.commands.common import add_set_argument
from spiking.experiments import EXPERIMENTS  # the one registry: a dict of module paths, loads no Brian2

HELP = "simulate a spiking experiment in Brian2 (" + ", ".join(EXPERIMENTS) + ") and write NetCDF"
_EXPERIMENTS = tuple(EXPERIMENTS)
#: the Fig. 5 protocol: 1800 s priming + 100 000 s (run_snn.sh)
PAPER_DURATION_S = 101800.0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("experiment", nargs="?", help="one of " + ", ".join(EXPERIMENTS))
    p.add_argument("--list", action="store_true", help="list the experiments and their config fields, then exit")
    p.add_argument("--duration", type=float, default=None, metavar="SECONDS",
                   help="total simulated time in seconds (default: the config's for stdp-protocol, song-stdp and "
                        "bcm-rate; lpl-network needs --duration or --paper-protocol)")
    p.add_argument("--paper-protocol", action="store_true",
                   help="lpl-network: the paper's full length, 1800 s priming + 100 000 s of simulated time")
    p.add_argument("--device", default="cpp_standalone",
                   help="runtime, cpp_standalone or cuda_standalone (default cpp_standalone)")
    p.add_argument("--threads", type=int, default=1, help="OpenMP threads of cpp_standalone (default 1)")
    p.add_argument("--seed", type=int, default=0, help="random seed of Brian2 and NumPy (default 0)")
    p.add_argument("--seeds", default=None, metavar="LIST",
                   help="lpl-network: a set of seeds, e.g. 0-4 or 0,3,7 (one file each, in --out-dir)")
    p.add_argument("--conditions", default=None, metavar="LIST",
                   help="lpl-network: comma-separated conditions (lpl, pred-off, hebb-off, inhib-off, inhib-fixed)")
    p.add_argument("--out", default=None, help="results file (default EXPERIMENT_sSEED.nc)")
    p.add_argument("--out-dir", default=None, help="folder of the files of a --conditions/--seeds set")
    p.add_argument("--jobs", type=int, default=None, help="parallel processes of a set (default: the cores)")
    p.add_argument("--resume", action="store_true",
                   help="lpl-network: continue the interrupted segmented run in --out from its last segment")
    p.add_argument("--build-root", default=None,
                   help="folder of the cached standalone builds (default $XDG_CACHE_HOME/ratespike/builds)")
    add_set_argument(p)
    p.add_argument("--no-progress", action="store_true", help="no progress report on stderr")


def parse_seeds(text: str) -> list[int]:
    """``0-3`` or ``0,2,5`` (or a mix) -> list of seeds in [0, 2^32); ConfigError otherwise."""
    from bridge.errors import ConfigError

    out: list[int] = []
    try:
        for part in text.split(","):
            part = part.strip()
            if "-" in part[1:]:
                a, b = part.split("-", 1)
                a, b = int(a), int(b)
                if b < a:
                    raise ValueError
                out += list(range(a, b + 1))
            else:
                out.append(int(part))
    except ValueError:
        raise ConfigError(f"--seeds must be a list like 0-4 or 0,3,7, got {text!r}") from None
    for s in out:
        _check_seed(s)
    if not out or len(set(out)) != len(out):
        raise ConfigError(f"--seeds must name distinct seeds, got {text!r}")
    return out


def _check_seed(s: int) -> None:
    from bridge.errors import ConfigError

    if not 0 <= s < 2 ** 32:
        raise ConfigError(f"seeds must be in [0, 2^32), got {s}")


def run(args: argparse.Namespace) -> int:
    from bridge.config import apply_overrides, replace_config
    from bridge.errors import ConfigError, unknown_choice
    from bridge.io import check_writable

    if args.list or not args.experiment:
        if not args.list:
            raise ConfigError("missing EXPERIMENT (choices: " + ", ".join(EXPERIMENTS) + ")")
        from spiking.experiments import get_experiment

        for name in _EXPERIMENTS:
            cls = get_experiment(name).CONFIG
            print(f"{name} ({cls.__name__}): " + ", ".join(_set_names(cls)))
        return 0
    if args.experiment not in EXPERIMENTS:
        raise unknown_choice("spiking experiment", args.experiment, EXPERIMENTS)
    if args.duration is not None and not (math.isfinite(args.duration) and args.duration > 0):
        raise ConfigError(f"--duration must be a finite number of seconds > 0, got {args.duration:g}")
    _check_seed(args.seed)
    net = args.experiment == "lpl-network"
    if not net and (args.seeds or args.conditions or args.resume or args.paper_protocol or args.out_dir):
        raise ConfigError("--seeds, --conditions, --out-dir, --resume and --paper-protocol are for lpl-network")
    set_duration = any(o.split("=", 1)[0].strip() in ("duration_s", "protocol.duration_s")
                       for o in (args.overrides or []))
    if net and args.duration is None and not args.paper_protocol and not set_duration:
        raise ConfigError(f"lpl-network needs --duration SECONDS or --paper-protocol (the paper's protocol is "
                          f"{PAPER_DURATION_S:g} s = {PAPER_DURATION_S / 3600:.1f} h of simulated time: 1800 s "
                          "priming + 100 000 s; use --set segment_s=... to make it resumable)")
    if args.paper_protocol and args.duration is not None:
        raise ConfigError("give --duration or --paper-protocol, not both")
    from spiking.devices import check_device

    check_device(args.device)
    from spiking.experiments import get_experiment

    mod = get_experiment(args.experiment)
    cfg = mod.CONFIG()
    if args.duration is not None:
        cfg = replace_config(cfg, {"duration_s": float(args.duration)})
    elif args.paper_protocol:
        cfg = replace_config(cfg, {"duration_s": PAPER_DURATION_S})
    cfg = apply_overrides(cfg, args.overrides)
    if net:
        return _run_network(args, mod, cfg)
    out = check_writable(args.out or f"{args.experiment}_s{args.seed}.nc")
    from bridge.io import write_run

    ds, groups = mod.simulate(cfg, seed=args.seed, device=args.device, build_root=args.build_root,
                              threads=args.threads, progress=not args.no_progress and sys.stderr.isatty())
    write_run(ds, out, groups=groups)
    _report(args.experiment, args.device, ds, mod, out)
    return 0


def _report(experiment, device, ds, mod, out) -> None:
    a = ds.attrs
    print(f"{experiment} on {device}: simulated {a['simulated_time_s']:g} s in {a['wall_time_s']:.2f} s "
          f"(real-time factor {a['real_time_factor']:.2f}, build {a['build_time_s']:.1f} s)")
    for line in mod.summary(ds):
        print(line)
    print(f"wrote {Path(out)}")


def _run_network(args, mod, cfg) -> int:
    from bridge.config import replace_config
    from bridge.errors import ConfigError, unknown_choice
    from bridge.io import check_writable

    mod.check_segments(cfg)
    if args.device == "cuda_standalone":
        raise ConfigError("lpl-network runs on runtime or cpp_standalone (its compile-once binary is C++)")
    if cfg.protocol.segment_s > 0 and args.device == "runtime" and args.resume:
        raise ConfigError("--resume needs --device cpp_standalone")
    conds = [cfg.protocol.condition]
    if args.conditions is not None:
        conds = [c.strip() for c in args.conditions.split(",")]
        for c in conds:
            if c not in mod.CONDITIONS:
                raise unknown_choice("condition", c, mod.CONDITIONS)
        if len(set(conds)) != len(conds):
            raise ConfigError(f"--conditions names a condition twice: {args.conditions!r}")
    seeds = parse_seeds(args.seeds) if args.seeds is not None else [args.seed]
    if args.conditions is not None or args.seeds is not None:
        if args.out is not None or args.out_dir is None:
            raise ConfigError("a --conditions/--seeds set writes one file per run: give --out-dir DIR, not --out")
        if args.resume:
            raise ConfigError("--resume continues one run (--out FILE), not a set")
        if args.device != "cpp_standalone":
            raise ConfigError("a --conditions/--seeds set runs on --device cpp_standalone")
        out_dir = Path(args.out_dir)
        jobs = [(replace_config(cfg, {"protocol.condition": c}), s, out_dir / f"lpl-network_{c}_s{s}.nc")
                for c in conds for s in seeds]
        for _, _, path in jobs:
            check_writable(path)
        return _run_set(args, mod, jobs)
    out = check_writable(args.out or f"lpl-network_s{args.seed}.nc")
    resume_from = None
    if args.resume:
        resume_from = _partial(out, cfg, args.seed, mod.config_from_json)
    elif cfg.protocol.segment_s > 0 and out.exists():
        pass  # a fresh run replaces the file only after its first segment
    progress = not args.no_progress
    from bridge.io import write_run

    def keep(ds_part, groups_part):  # an interrupted run keeps the file of its last completed segment
        write_run(ds_part, out, groups=groups_part)

    ds, groups = mod.simulate(cfg, seed=args.seed, device=args.device, build_root=args.build_root,
                              threads=args.threads, progress=progress,
                              on_segment=keep if cfg.protocol.segment_s > 0 else None, resume_from=resume_from)
    write_run(ds, out, groups=groups)
    _report("lpl-network", args.device, ds, mod, out)
    return 0


def _partial(out: Path, cfg, seed: int, config_from_json):
    """The (Dataset, groups) of a partial results file that matches the config and seed; ConfigError if none.

    The file's config is read back (schema 1, the flat config, or schema 2, the composed one) and compared
    field by field, so a file written before the configs were composed resumes; the resumed file is schema 2.
    """
    from bridge.errors import ConfigError
    from bridge.io import open_group, open_run

    if not out.exists():
        raise ConfigError(f"--resume: no partial results file {str(out)!r}")
    try:
        ds = open_run(out)
        groups = {g: open_group(out, g) for g in ("raw", "state")}
    except Exception as e:  # noqa: BLE001 - any unreadable file is the same user error
        raise ConfigError(f"--resume: {str(out)!r} is not a readable segmented lpl-network file ({e.__class__.__name__})"
                          ) from None
    if ds.attrs.get("experiment") != "lpl-network" or "simulated_until_s" not in ds.attrs:
        raise ConfigError(f"--resume: {str(out)!r} is not a segmented lpl-network results file")
    if int(ds.attrs.get("complete", 0)) == 1:
        raise ConfigError(f"--resume: {str(out)!r} is already complete")
    try:
        same = config_from_json(ds.attrs.get("config")) == cfg
    except ConfigError:
        same = False
    if not same or int(ds.attrs.get("seed", -1)) != int(seed):
        raise ConfigError(f"--resume: {str(out)!r} was written with another config or seed; use the same "
                          "--duration, --set and --seed, or another --out")
    return ds, groups


def _set_names(cls) -> list[str]:
    """The names ``--set`` takes for a config class: bare where unique in the tree, else the dotted path."""
    from bridge.config import field_paths

    paths = list(field_paths(cls))
    leaf = [p.rsplit(".", 1)[-1] for p in paths]
    return [name if leaf.count(name) == 1 else p for p, name in zip(paths, leaf)]


def _one(job):
    """Worker of a set: one run on the binary its parent built, into its own file."""
    cfg, seed, path, binary, mod_name, build_s = job
    from bridge.io import write_run
    from spiking.experiments import get_experiment

    mod = get_experiment(mod_name)
    ds, groups = mod.simulate(cfg, seed=seed, device="cpp_standalone", binary=binary, progress=False)
    ds.attrs["build_time_s"] = build_s  # the build this set made before its runs (0: it was cached)
    write_run(ds, path, groups=groups)
    return str(path), float(ds.attrs["wall_time_s"]), float(ds.attrs["real_time_factor"])


def _run_set(args, mod, jobs) -> int:
    from concurrent.futures import ProcessPoolExecutor

    Path(args.out_dir).mkdir(parents=True, exist_ok=True)
    # build first (once per model, in this process, with progress), then run the set on those binaries
    say = (lambda m: print(m, file=sys.stderr, flush=True)) if not args.no_progress else None
    from spiking import standalone

    binaries = {}
    for cfg, _, _ in jobs:
        key = _json_key(mod.compiled_fields(cfg))
        if key not in binaries:
            binaries[key] = standalone.build(
                "lpl-network", mod.compiled_fields(cfg),
                lambda c=cfg: mod._construct(mod.effective(c), weight_monitors=False)[:4], dt_ms=cfg.neuron.dt_ms,
                build_root=args.build_root, progress=say)
    n = args.jobs or max(1, os.cpu_count() or 1)
    work = []
    for cfg, s, p in jobs:
        b = binaries[_json_key(mod.compiled_fields(cfg))]
        work.append((cfg, s, p, b, "lpl-network", b.build_time_s))
    with ProcessPoolExecutor(max_workers=min(n, len(work))) as ex:
        for (cfg, s, _), (path, wall, rtf) in zip(jobs, ex.map(_one, work)):
            print(f"{cfg.protocol.condition} seed {s}: real-time factor {rtf:.2f} -> {path}")
    return 0


def _json_key(fields: dict) -> str:
    import json

    return json.dumps(fields, sort_keys=True, default=str)
