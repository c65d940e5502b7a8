"""Sweeps: a grid of ``ratespike train`` or ``ratespike spike`` runs on Dask, one NetCDF file per point.

A sweep file (TOML) names the command, the output folder, the options every point shares and a grid::

    command = "train"          # or "spike"
    out_dir = "sweep-out"      # relative to the sweep file's folder
    retries = 2                # optional: reruns of a point whose process was killed (default 2)
    seed_block = 10            # optional: seeds per task for rules that batch seeds (default: all)
    exclude = [{rule = "pc", dataset = "cifar10"}]   # optional: grid points left out (NaN when collected)
    [fixed]
    rule = "bp"
    dataset = "digits"
    epochs = 1
    [grid]
    lr = [1e-3, 5e-4]
    seed = [0, 1]
    [cluster]                  # optional: only read by --cluster slurm|pbs|sge (dask-jobqueue)
    queue = "cpu"
    walltime = "02:00:00"
    cores = 8
    memory = "16GB"

Keys of ``[fixed]`` and ``[grid]`` are the command's long options (``dataset``, ``epochs``, ``duration``,
``data-root`` or ``data_root`` ...) or any field of the run's typed config (passed as ``--set FIELD=VALUE``);
``seed`` in the grid gives the seeds. Every point of the grid is one run writing one file named from its
grid values (``lr-0.001_seed-0.nc``). Seeds of rules with ``batched_seeds = True`` travel as one task per
seed block (one process training ``--seeds 0,1,...``); its file is split into the per-seed point files.

Every task runs the ``ratespike`` command line in a child process, so a crash of one point never touches
another; a point whose process is killed by a signal is retried (``retries``) with ``--resume``; a point
whose command fails reports its one-line error and the others carry on. A point whose file carries
``complete = 1`` is skipped on a rerun.

This module imports neither :mod:`ratenets` nor :mod:`spiking`: the command module
(:mod:`bridge.commands.sweep`) passes in a resolver that builds a point's config.
"""
from __future__ import annotations

import itertools
import json
import math
import os
import re
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bridge.errors import ConfigError, ResultsFileError, unknown_choice

COMMANDS = ("train", "spike")
TOP_KEYS = ("command", "out_dir", "fixed", "grid", "exclude", "cluster", "retries", "seed_block")
#: options the sweep sets itself; a sweep file may not name them
MANAGED = {"out", "list", "resume", "keep-checkpoint", "no-progress", "set", "seeds", "help"}
#: the positional argument that names the model, per command
MODEL_KEY = {"train": "rule", "spike": "experiment"}
SYSTEMS = ("slurm", "pbs", "sge")
#: keys of [cluster] that are ours, not dask-jobqueue's
CLUSTER_OWN = ("jobs",)
LOG_DIR = "logs"
BLOCK_DIR = ".blocks"


# --------------------------------------------------------------------------------------------------
# the sweep file
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Option:
    """One long option of the swept command (from its argparse parser)."""

    name: str          # "data-root"
    flag: str | None   # "--data-root"; None for the positional model name
    boolean: bool      # a store_true switch


@dataclass
class Point:
    """One run of the grid."""

    values: dict[str, Any]        # grid key -> value (the point's coordinates)
    name: str                     # file stem, from the grid values
    argv: list[str]               # the command line without --seed/--seeds/--out
    seed: int
    model_key: str                # points with equal model_key share a compiled model / batch of seeds
    batched: bool                 # the rule batches seeds
    config_json: str

    def path(self, out_dir: Path) -> Path:
        return out_dir / f"{self.name}.nc"


@dataclass
class Task:
    """What one Dask task runs: one point, or a block of seeds of a rule that batches seeds."""

    points: list[Point]
    argv: list[str]               # full command line (seeds and --out included)
    out: Path                     # the file the command writes (a point file or a block file)
    log: Path
    block: bool
    cwd: str
    retries: int
    env: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.out.stem


@dataclass
class Spec:
    path: Path
    command: str
    out_dir: Path
    fixed: dict[str, Any]
    grid: dict[str, list[Any]]
    cluster: dict[str, Any]
    retries: int
    seed_block: int | None
    points: list[Point]
    exclude: list[dict[str, Any]] = field(default_factory=list)

    @property
    def dims(self) -> list[str]:
        return list(self.grid)

    def to_json(self) -> str:
        return json.dumps({"command": self.command, "fixed": self.fixed, "grid": self.grid, "exclude": self.exclude,
                           "retries": self.retries, "seed_block": self.seed_block}, default=str)


def _norm(key: str) -> str:
    return key.replace("_", "-")


def command_options(add_arguments: Callable[[Any], None], command: str) -> dict[str, Option]:
    """The options of ``ratespike COMMAND`` that a sweep file may set, by name (dashes)."""
    import argparse

    p = argparse.ArgumentParser(add_help=False)
    add_arguments(p)
    out: dict[str, Option] = {}
    for a in p._actions:  # noqa: SLF001 - argparse keeps no public list of actions
        if not a.option_strings:
            out[_norm(a.dest)] = Option(_norm(a.dest), None, False)
            continue
        long = next((s for s in a.option_strings if s.startswith("--")), None)
        if long is None:
            continue
        name = long[2:]
        if name in MANAGED:
            continue
        out[name] = Option(name, long, isinstance(a, argparse._StoreTrueAction))  # noqa: SLF001
    return out


def _fmt_value(v: Any) -> str:
    """A value as the command line reads it (``--set hidden=500,500``, ``--set flag=true``)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list | tuple):
        return ",".join(_fmt_value(x) for x in v)
    return str(v)


def label(v: Any) -> Any:
    """A grid value as a coordinate label: numbers and strings stay, lists become ``500x500``."""
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int | float | str):
        return v
    if isinstance(v, list | tuple):
        return "x".join(str(label(x)) for x in v)
    return str(v)


def _name_part(key: str, v: Any) -> str:
    text = repr(v) if isinstance(v, float) else str(label(v))
    return f"{key}-" + re.sub(r"[^A-Za-z0-9.+-]+", "-", text).strip("-")


Resolver = Callable[[dict[str, Any]], tuple[Any, bool]]


def load_spec(path: str | os.PathLike, options: Mapping[str, Option], resolve: Resolver,
              command: str | None = None) -> Spec:
    """Read and check a sweep file, and expand its grid into points; every check runs before any work.

    Parameters
    ----------
    options : mapping
        The swept command's options (:func:`command_options`).
    resolve : callable
        ``resolve(option_values) -> (config, batched_seeds)`` builds the default config of one point from
        its option values (rule/experiment, dataset, epochs, duration ...); raises ConfigError.
    """
    p = Path(path)
    try:
        raw = tomllib.loads(p.read_text())
    except FileNotFoundError:
        raise ConfigError(f"no such sweep file: {str(p)!r}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read sweep file {str(p)!r}: {e}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"sweep file {str(p)!r} is not valid TOML: {e}") from None
    for k in raw:
        if k not in TOP_KEYS:
            raise unknown_choice("key in sweep file", k, TOP_KEYS)
    cmd = raw.get("command")
    if cmd not in COMMANDS:
        raise ConfigError(f"sweep file key 'command' must be one of {', '.join(COMMANDS)}, got {cmd!r}")
    if command is not None and cmd != command:
        raise ConfigError(f"sweep file runs {cmd!r}, not {command!r}")
    out_dir = raw.get("out_dir")
    if not isinstance(out_dir, str) or not out_dir:
        raise ConfigError("sweep file needs out_dir = \"FOLDER\" (relative to the sweep file)")
    fixed, grid, cluster = (raw.get(k, {}) for k in ("fixed", "grid", "cluster"))
    for k, v in (("fixed", fixed), ("grid", grid), ("cluster", cluster)):
        if not isinstance(v, dict):
            raise ConfigError(f"sweep file key {k!r} must be a table ([{k}])")
    if not grid:
        raise ConfigError("sweep file has an empty [grid]: give at least one key with a list of values")
    for k, v in grid.items():
        if not isinstance(v, list) or not v:
            raise ConfigError(f"[grid] key {k!r} needs a non-empty list of values, got {v!r}")
        if len({json.dumps(x, sort_keys=True) for x in v}) != len(v):
            raise ConfigError(f"[grid] key {k!r} repeats a value: {v!r}")
    both = set(map(_norm, fixed)) & set(map(_norm, grid))
    if both:
        raise ConfigError(f"key {sorted(both)[0]!r} is in both [fixed] and [grid]")
    retries = raw.get("retries", 2)
    if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
        raise ConfigError(f"sweep file key 'retries' must be an integer >= 0, got {retries!r}")
    seed_block = raw.get("seed_block")
    if seed_block is not None and (not isinstance(seed_block, int) or seed_block < 1):
        raise ConfigError(f"sweep file key 'seed_block' must be an integer >= 1, got {seed_block!r}")
    exclude = raw.get("exclude", [])
    if not isinstance(exclude, list) or not all(isinstance(e, dict) and e for e in exclude):
        raise ConfigError("sweep file key 'exclude' must be a list of tables such as {rule = \"pc\", "
                          "dataset = \"cifar10\"}")
    for e in exclude:
        for k, v in e.items():
            if k not in grid:
                raise unknown_choice("[grid] key in 'exclude'", k, grid)
            if v not in grid[k]:
                raise ConfigError(f"exclude: {v!r} is not a value of [grid] key {k!r} ({grid[k]!r})")
    model_key = MODEL_KEY[cmd]
    if model_key not in map(_norm, [*fixed, *grid]):
        raise ConfigError(f"sweep file names no {model_key}: put {model_key} = \"...\" in [fixed] or [grid]")
    for k in [*fixed, *grid]:
        if _norm(k) in MANAGED:
            hint = "; put seed = [...] in [grid]" if _norm(k) == "seeds" else ""
            raise ConfigError(f"key {k!r} is set by the sweep itself and cannot be given{hint}")
    seed_vals = grid.get("seed", [fixed.get("seed", 0)])
    for s in seed_vals:
        if not isinstance(s, int) or isinstance(s, bool) or s < 0:
            raise ConfigError(f"seed values must be integers >= 0, got {s!r}")

    base = p.parent.resolve()
    out = (base / out_dir).resolve()
    keys = list(grid)
    points: list[Point] = []
    names: dict[str, dict] = {}
    for combo in itertools.product(*(grid[k] for k in keys)):
        values = dict(zip(keys, combo))
        if any(all(values[k] == v for k, v in e.items()) for e in exclude):
            continue
        points.append(_point(cmd, {**fixed, **values}, values, options, resolve))
        if points[-1].name in names:
            raise ConfigError(f"grid points {names[points[-1].name]} and {values} give the same file name "
                              f"{points[-1].name!r}")
        names[points[-1].name] = values
    if not points:
        raise ConfigError("'exclude' leaves no point of the grid")
    return Spec(path=p, command=cmd, out_dir=out, fixed=fixed, grid=grid, cluster=cluster, retries=retries,
                seed_block=seed_block, points=points, exclude=exclude)


def _point(cmd: str, merged: dict[str, Any], values: dict[str, Any], options: Mapping[str, Option],
           resolve: Resolver) -> Point:
    from bridge.config import field_paths, parse_overrides, replace_config, to_json

    opts: dict[str, Any] = {}
    fields: dict[str, Any] = {}
    seed = 0
    for k, v in merged.items():
        n = _norm(k)
        if n == "seed":
            seed = int(v)
        elif n in options:
            opts[n] = v
        else:
            fields[k] = v
    cfg, batched = resolve(opts)
    paths = field_paths(cfg)  # dotted paths into a composed config; a bare name unique in it is taken too
    leaves = {p.rsplit(".", 1)[-1] for p in paths}
    model = opts[MODEL_KEY[cmd]]
    for k in fields:
        if k not in paths and k not in leaves:
            choices = list(dict.fromkeys([o for o in options if o != MODEL_KEY[cmd]] + list(paths)))
            raise unknown_choice(f"key of 'ratespike {cmd}' (an option, or a config field of {model!r})", k,
                                 choices)
    sets = [f"{k}={_fmt_value(v)}" for k, v in fields.items()]
    cfg = replace_config(cfg, parse_overrides(cfg, sets))
    argv = [cmd, str(model)]
    for n, v in opts.items():
        o = options[n]
        if o.flag is None:
            continue
        if o.boolean:
            if not isinstance(v, bool):
                raise ConfigError(f"option {n!r} is a switch: give true or false, got {v!r}")
            if v:
                argv.append(o.flag)
        else:
            argv += [o.flag, _fmt_value(v)]
    for s in sets:
        argv += ["--set", s]
    name = "_".join(_name_part(_norm(k), v) for k, v in values.items())
    no_seed = {k: v for k, v in merged.items() if _norm(k) != "seed"}
    return Point(values=values, name=name, argv=argv, seed=seed, batched=batched,
                 model_key=json.dumps(no_seed, sort_keys=True, default=str), config_json=to_json(cfg))


# --------------------------------------------------------------------------------------------------
# status of points on disk
# --------------------------------------------------------------------------------------------------
def file_complete(path: Path) -> bool:
    """True when ``path`` is a finished results file: its ``complete`` attribute is 1.

    A spiking file without the attribute counts as complete: ``ratespike spike`` writes its file once, when
    the run ends, except in segmented runs, which carry ``complete = 0`` until they end. A training file
    without it does not (the engine rewrites the file after every epoch).
    """
    if not path.is_file():
        return False
    try:
        import netCDF4

        with netCDF4.Dataset(path, "r") as nc:
            attrs = set(nc.ncattrs())
            if "complete" not in attrs:
                return "ratespike_version" in attrs and nc.getncattr("ratespike_kind") == "spike"
            return int(nc.getncattr("complete")) == 1
    except (OSError, ValueError, TypeError):
        return False


def plan(spec: Spec, build_root: Path | None = None) -> tuple[list[Task], list[Point]]:
    """The tasks still to run, and the points already complete (skipped)."""
    done = [pt for pt in spec.points if file_complete(pt.path(spec.out_dir))]
    todo = [pt for pt in spec.points if pt not in done]
    env = {"OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}
    cwd = os.getcwd()
    groups: dict[str, list[Point]] = {}
    for pt in todo:  # points of one model next to each other: they share a batch of seeds or a build
        groups.setdefault(pt.model_key, []).append(pt)
    tasks: list[Task] = []
    for key, pts in groups.items():
        if spec.command == "train" and pts[0].batched and len(pts) > 1:
            size = spec.seed_block or len(pts)
            for i in range(0, len(pts), size):
                blk = pts[i:i + size]
                seeds = ",".join(str(pt.seed) for pt in blk)
                out = spec.out_dir / BLOCK_DIR / f"{blk[0].name}+{len(blk)}.nc"
                tasks.append(Task(points=blk, argv=[*blk[0].argv, "--seeds", seeds, "--out", str(out)],
                                  out=out, log=spec.out_dir / LOG_DIR / f"{out.stem}.log", block=True,
                                  cwd=cwd, retries=spec.retries, env=env))
            continue
        for pt in pts:
            argv = [*pt.argv, "--seed", str(pt.seed), "--out", str(pt.path(spec.out_dir))]
            if spec.command == "spike" and "--build-root" not in argv and build_root is not None:
                argv += ["--build-root", str(build_root)]
            tasks.append(Task(points=[pt], argv=argv, out=pt.path(spec.out_dir),
                              log=spec.out_dir / LOG_DIR / f"{pt.name}.log", block=False, cwd=cwd,
                              retries=spec.retries, env=env))
    return tasks, done


# --------------------------------------------------------------------------------------------------
# one task (runs on a Dask worker)
# --------------------------------------------------------------------------------------------------
def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def run_task(task: Task) -> dict[str, Any]:
    """Run one task's command in a child process; retry it (with ``--resume``) when a signal killed it.

    Returns a dict with ``status`` (``ok`` or ``failed``), ``error`` (one line), ``attempts``, ``wall_s``.
    Never raises for a failing point: the failure is the result.
    """
    t0 = time.perf_counter()
    task.log.parent.mkdir(parents=True, exist_ok=True)
    task.out.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **task.env}
    argv = list(task.argv)
    if task.block and file_complete(task.out):  # the block ran; only its split was interrupted
        return _finish(task, t0, 0)
    if argv[0] == "train":
        argv.append("--resume")  # continues from OUT.ckpt when a killed attempt left one
    error = ""
    for attempt in range(1, task.retries + 2):
        with open(task.log, "w") as log:
            proc = subprocess.run([sys.executable, "-m", "bridge.cli", *argv, "--no-progress"], cwd=task.cwd,
                                  env=env, stdout=log, stderr=subprocess.STDOUT)
        text = task.log.read_text(errors="replace")
        if proc.returncode == 0:
            return _finish(task, t0, attempt)
        if proc.returncode < 0:
            error = f"killed by signal {-proc.returncode} (attempt {attempt})"
            continue  # the process died: retry, resuming from its checkpoint
        line = _last_line(text)
        error = line.removeprefix("ratespike: error: ") or f"exit status {proc.returncode}"
        if proc.returncode == 1 and "Traceback" in text:
            error = f"crashed: {line} (log {task.log})"
        break
    return {"task": task.name, "points": [pt.name for pt in task.points], "status": "failed", "error": error,
            "attempts": attempt, "wall_s": time.perf_counter() - t0}


def _finish(task: Task, t0: float, attempts: int) -> dict[str, Any]:
    res = {"task": task.name, "points": [pt.name for pt in task.points], "status": "ok", "error": "",
           "attempts": attempts}
    if task.block:
        try:
            split_block(task.out, [(pt.seed, pt.path(task.out.parent.parent)) for pt in task.points])
        except (ResultsFileError, OSError, KeyError, ValueError) as e:
            res.update(status="failed", error=f"cannot split seed block {task.out.name}: {e}")
    res["wall_s"] = time.perf_counter() - t0
    return res


def split_block(block: Path, targets: Sequence[tuple[int, Path]]) -> None:
    """Write each seed of a multi-seed results file as its own single-seed point file, then drop the block.

    The representation groups (which hold the first seed's layers) go with the first seed's file.
    """
    from bridge.io import list_groups, open_group, open_run, write_run

    ds = open_run(block)
    groups = {g: open_group(block, g) for g in list_groups(block)}
    seeds = [int(s) for s in ds["seed"].values]
    for i, (seed, path) in enumerate(targets):
        part = ds.sel(seed=seed, drop=True) if "seed" in ds.dims else ds
        part.attrs = {**ds.attrs, "seed": seed}
        write_run(part, path, groups=groups if seed == seeds[0] else None)
    block.unlink()


# --------------------------------------------------------------------------------------------------
# running on Dask
# --------------------------------------------------------------------------------------------------
def jobqueue_options(system: str, cluster: Mapping[str, Any]) -> dict[str, Any]:
    """The dask-jobqueue keyword arguments from ``[cluster]``; a ConfigError for one the system lacks."""
    import inspect

    from dask_jobqueue.core import Job

    job_cls = _job_class(system)
    allowed = set(inspect.signature(Job.__init__).parameters) | set(inspect.signature(job_cls.__init__).parameters)
    allowed -= {"self", "scheduler", "name", "config_name", "base_class_kwargs", "job_extra", "env_extra",
                "extra"}
    kw = {k: v for k, v in cluster.items() if k not in CLUSTER_OWN}
    for k in kw:
        if k not in allowed:
            raise unknown_choice(f"[cluster] option for {system}", k, sorted(allowed | set(CLUSTER_OWN)))
    for need in ("cores", "memory"):
        if need not in kw:
            raise ConfigError(f"--cluster {system} needs {need} = ... in the sweep file's [cluster] table")
    if not isinstance(kw["cores"], int) or kw["cores"] < 1:
        raise ConfigError(f"[cluster] cores must be an integer >= 1, got {kw['cores']!r}")
    try:
        from dask.utils import parse_bytes

        parse_bytes(str(kw["memory"]))
    except ValueError:
        raise ConfigError(f"[cluster] memory {kw['memory']!r} is not a size such as \"16GB\"") from None
    jobs = cluster.get("jobs", 1)
    if not isinstance(jobs, int) or jobs < 1:
        raise ConfigError(f"[cluster] jobs must be an integer >= 1, got {jobs!r}")
    kw.setdefault("processes", kw["cores"])  # one worker process per core, one thread each
    prologue = list(kw.get("job_script_prologue", []))
    kw["job_script_prologue"] = ["export OMP_NUM_THREADS=1", *prologue]
    kw.setdefault("python", sys.executable)
    return kw


def _job_class(system: str):
    if system == "slurm":
        from dask_jobqueue.slurm import SLURMJob as J
    elif system == "pbs":
        from dask_jobqueue.pbs import PBSJob as J
    elif system == "sge":
        from dask_jobqueue.sge import SGEJob as J
    else:
        raise unknown_choice("--cluster system", system, SYSTEMS)
    return J


def job_script(system: str, cluster: Mapping[str, Any], scheduler: str = "tcp://SCHEDULER:8786") -> str:
    """The batch script dask-jobqueue submits per job (``--dry-run`` shows it; the address is the driver's)."""
    kw = jobqueue_options(system, cluster)
    try:
        return _job_class(system)(scheduler=scheduler, name="ratespike-sweep", **kw).job_script()
    except (TypeError, ValueError) as e:
        raise ConfigError(f"dask-jobqueue rejects the [cluster] table for {system}: {e}") from None


def _cluster_class(system: str):
    import dask_jobqueue

    return {"slurm": dask_jobqueue.SLURMCluster, "pbs": dask_jobqueue.PBSCluster,
            "sge": dask_jobqueue.SGECluster}[system]


def local_workers() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def connect(*, scheduler: str | None = None, system: str | None = None, cluster_opts: Mapping[str, Any] | None = None,
            workers: int | None = None, n_tasks: int = 1, timeout_s: float = 5.0, retries: int = 2):
    """A Dask ``Client``: to ``scheduler``, to a dask-jobqueue cluster, or to a new ``LocalCluster``.

    Returns ``(client, close)`` where ``close()`` shuts down what this call started.
    """
    import logging

    import dask
    from distributed import Client

    dask.config.set({"distributed.scheduler.allowed-failures": retries})
    if scheduler is not None:
        try:
            client = Client(scheduler, timeout=f"{timeout_s}s")
        except (OSError, TimeoutError) as e:
            raise ConfigError(f"cannot reach Dask scheduler {scheduler!r} within {timeout_s:g} s "
                              f"({type(e).__name__})") from None
        except ValueError as e:
            raise ConfigError(f"bad Dask scheduler address {scheduler!r}: {e}") from None
        return client, client.close
    if system is not None:
        kw = jobqueue_options(system, cluster_opts or {})
        jobs = int((cluster_opts or {}).get("jobs", 1))
        cluster = _cluster_class(system)(**kw)
        cluster.scale(jobs=jobs)
        client = Client(cluster)

        def close():
            client.close()
            cluster.close()

        return client, close
    from distributed import LocalCluster

    n = max(1, min(workers or local_workers(), n_tasks))
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                           silence_logs=logging.CRITICAL)
    client = Client(cluster)

    def close_local():
        client.close()
        cluster.close()

    return client, close_local


def _fmt_eta(s: float) -> str:
    if not math.isfinite(s):
        return "?"
    s = int(round(s))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def execute(client, tasks: Sequence[Task], n_points_total: int, n_skipped: int,
            report: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """Submit every task, report progress (done, running, failed, ETA) as tasks finish, return the results."""
    from distributed import as_completed

    report = report or (lambda line: print(line, file=sys.stderr, flush=True))
    t0 = time.perf_counter()
    futures = [client.submit(run_task, t, key=f"ratespike-{i}-{t.name}", pure=False)
               for i, t in enumerate(tasks)]
    owner = {f.key: t for f, t in zip(futures, tasks)}
    todo = sum(len(t.points) for t in tasks)
    done = failed = 0
    results: list[dict[str, Any]] = []
    report(f"sweep: {n_points_total} points, {n_skipped} already complete, {todo} to run in {len(tasks)} tasks")
    for fut in as_completed(futures):
        t = owner[fut.key]
        try:
            res = fut.result()
        except Exception as e:  # noqa: BLE001 - a worker that died too often (KilledWorker) fails its points
            res = {"task": t.name, "points": [pt.name for pt in t.points], "status": "failed",
                   "error": f"{type(e).__name__}: {_last_line(str(e)) or 'worker died'}", "attempts": -1,
                   "wall_s": float("nan")}
        results.append(res)
        if res["status"] == "ok":
            done += len(t.points)
        else:
            failed += len(t.points)
            report(f"sweep: FAILED {', '.join(res['points'])}: {res['error']}")
        left = todo - done - failed
        try:
            busy = {k for keys in client.processing().values() for k in keys}
            running = sum(len(owner[k].points) for k in busy if k in owner)
        except Exception:  # noqa: BLE001 - progress only
            running = 0
        el = time.perf_counter() - t0
        eta = el / (done + failed) * left if done + failed else float("nan")
        report(f"sweep: {done + n_skipped}/{n_points_total} done, {running} running, {failed} failed, "
               f"ETA {_fmt_eta(eta) if left else '0m00s'}")
    return results


# --------------------------------------------------------------------------------------------------
# collecting a sweep into one Dataset
# --------------------------------------------------------------------------------------------------
def collect(spec: Spec, partial: bool = False):
    """Stack the point files lazily (dask-backed) along the grid's dimensions into one Dataset.

    Each point file is opened with ``chunks={}`` and gets the grid keys as new length-1 dimensions; the
    points are combined with :func:`xarray.combine_nested` (complete grid) or :func:`xarray.merge`
    (``partial``, or points left out by ``exclude``: those are NaN). Provenance per point: ``point_config`` (the run's config JSON),
    ``point_file`` and ``point_complete``.

    Raises
    ------
    ResultsFileError
        When a point's file is missing or incomplete (unless ``partial``), or when none is there.
    """
    import numpy as np
    import xarray as xr

    from bridge.io import ENGINE, provenance

    dims = spec.dims
    present, missing = [], []
    for pt in spec.points:
        (present if file_complete(pt.path(spec.out_dir)) else missing).append(pt)
    if missing and not partial:
        raise ResultsFileError(f"{len(missing)} of {len(spec.points)} points have no complete file (first: "
                               f"{missing[0].path(spec.out_dir).name}); run the sweep again or pass --partial")
    if not present:
        raise ResultsFileError(f"no complete point file in {str(spec.out_dir)!r}")
    coords = {k: [label(v) for v in spec.grid[k]] for k in dims}
    opened, parts, configs = [], {}, {}
    for pt in present:
        ds = xr.open_dataset(pt.path(spec.out_dir), engine=ENGINE, chunks={})
        opened.append(ds)
        configs[pt.name] = ds.attrs.get("config", pt.config_json)
        ds = ds.drop_attrs() if hasattr(ds, "drop_attrs") else ds.assign_attrs({})
        parts[pt.name] = ds.expand_dims({k: [label(pt.values[k])] for k in dims})
    full = len(spec.points) == math.prod(len(v) for v in spec.grid.values())  # no point excluded
    if not missing and full:
        def nest(level: int, fixed: dict):
            if level == len(dims):
                name = next(pt.name for pt in present if all(label(pt.values[k]) == v for k, v in fixed.items()))
                return parts[name]
            return [nest(level + 1, {**fixed, dims[level]: v}) for v in coords[dims[level]]]

        out = xr.combine_nested(nest(0, {}), concat_dim=dims, join="outer", combine_attrs="drop",
                                data_vars="all", coords="minimal", compat="override")
    else:
        out = xr.merge(list(parts.values()), join="outer", compat="no_conflicts", combine_attrs="drop")
        out = out.reindex({k: coords[k] for k in dims})
    shape = tuple(len(coords[k]) for k in dims)
    cfg = np.full(shape, "", dtype=object)
    files = np.full(shape, "", dtype=object)
    complete = np.zeros(shape, dtype=np.int8)
    for pt in spec.points:
        ix = tuple(coords[k].index(label(pt.values[k])) for k in dims)
        files[ix] = pt.path(spec.out_dir).name
        if pt in present:
            cfg[ix] = configs[pt.name]
            complete[ix] = 1
    out["point_config"] = xr.DataArray(cfg, dims=dims, attrs={"long_name": "config JSON of each point's run"})
    out["point_file"] = xr.DataArray(files, dims=dims, attrs={"long_name": "file of each point"})
    out["point_complete"] = xr.DataArray(complete, dims=dims, attrs={"long_name": "point file complete",
                                                                     "units": "1"})
    seeds = sorted({pt.seed for pt in spec.points})
    out.attrs = provenance(kind="sweep", config_json=spec.to_json(), seed=seeds if len(seeds) > 1 else seeds[0],
                           extra={"sweep_command": spec.command, "sweep_dims": json.dumps(dims),
                                  "points_total": len(spec.points), "points_complete": len(present),
                                  **{k: str(v) for k, v in spec.fixed.items() if isinstance(v, str | int | float)
                                     and k in ("rule", "dataset", "experiment")}})
    return out, opened
