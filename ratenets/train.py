"""The training engine shared by every rate-network rule: seeds, epochs, checkpoints, resume, results.

A rule (see :class:`ratenets.rules.base.Rule`) owns its networks, optimisers and batches; this engine
owns the seed and epoch loops. One loop serves every rule: a rule with ``batched_seeds = True`` trains all
seeds as one batch dimension of its tensors (one rule object); for the others the engine builds one rule
object per seed and trains them side by side, epoch by epoch, each with its own copy of the global random
streams, so seed ``s`` gives the same run alone or among others. After each epoch it

1. checks every recorded metric for NaN/inf and stops with a :class:`~bridge.errors.DivergenceError`
   naming the metric and epoch (the results of the finished epochs stay written);
2. saves **one** checkpoint for the run (``<out>.ckpt`` beside the results file, every seed in it)
   atomically; it records rule, config, dataset, seeds and versions and holds only tensors, numbers and
   strings, so it is read with ``torch.load(..., weights_only=True)`` and can run no code;
3. rewrites the results file atomically with everything so far, marked ``complete = 0`` -- unless the
   results file already holds a *complete* run: that file is never replaced before the new run has
   finished, and the new run's progress is then kept in the checkpoint alone.

At the end the results file is written with ``complete = 1``, each layer's responses to a fixed probe set
(``representations/<layer>`` for the first seed, ``representations_seed<s>/<layer>`` for every other seed)
and the final training state in the group ``checkpoint``; the ``<out>.ckpt`` file is then deleted (the CLI
keeps it with ``--keep-checkpoint``). ``resume=True`` continues from ``<out>.ckpt`` when it exists, else
from the state stored in a finished ``<out>``, so a finished run can be extended to more epochs.

Epochs are numbered from 1 in the ``epoch`` coordinate (the number of finished training epochs). A
multi-seed run has a ``seed`` dimension on every metric.
"""
from __future__ import annotations

import io
import json
import os
import platform
import random
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr

from bridge.config import MAX_SEED, to_json
from bridge.errors import ConfigError, DivergenceError, ResultsFileError, StopSignal
from bridge.io import (atomic_write, deferred_signals, list_groups, open_group, provenance, ratespike_version,
                       write_run)
from bridge.reps import groups_of
from ratenets import distributed

# under torchrun only rank 0 writes results files and checkpoints (ratenets.distributed)
atomic_write, write_run = distributed.main_only(atomic_write), distributed.main_only(write_run)

#: the checkpoint layout this engine writes and reads
CHECKPOINT_FORMAT = "ratespike-checkpoint-2"
#: the group of a finished results file that holds its final training state
STATE_GROUP = "checkpoint"


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) with one integer."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_device(name: str) -> torch.device:
    """A torch device from ``cpu``/``cuda``/``cuda:N``, with a one-line error if it is not available."""
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"device {name!r} requested but torch sees no CUDA GPU; use --device cpu")
        return torch.device(name)
    raise ConfigError(f"unknown device {name!r} (choices: cpu, cuda)")


def progress(iterable: Iterable, *, desc: str, total: int | None = None, enabled: bool = True):
    """A tqdm progress bar on stderr when enabled (and tqdm importable), else the iterable itself."""
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, total=total, leave=False, file=sys.stderr, dynamic_ncols=True)


@dataclass
class RunContext:
    """Where and how a training run happens (everything that is not a model constant).

    Attributes
    ----------
    dataset : str
        Dataset registry name.
    seeds : tuple of int
        One seed, or several for a multi-seed run.
    device : str
        ``cpu`` or ``cuda``.
    out : Path or None
        Results file; rewritten after each epoch. None: results only returned.
    resume : bool
        Continue from ``checkpoint`` if it exists, else from the state stored in a finished ``out``.
    checkpoint : Path or None
        Defaults to ``<out>.ckpt``.
    progress : bool
        Show tqdm bars on stderr.
    data_root : str or None
        Passed to the data loaders.
    """

    dataset: str
    seeds: tuple[int, ...] = (0,)
    device: str = "cpu"
    out: Path | None = None
    resume: bool = False
    checkpoint: Path | None = None
    progress: bool = False
    data_root: str | None = None
    extra_attrs: dict[str, Any] = field(default_factory=dict)

    def checkpoint_path(self) -> Path | None:
        if self.checkpoint is not None:
            return Path(self.checkpoint)
        return Path(str(self.out) + ".ckpt") if self.out is not None else None


# --- plain encoding: what torch.load(weights_only=True) can read back ------------------------------------
_KIND = "__ratespike__"


def to_plain(obj: Any) -> Any:
    """Encode ``obj`` as tensors, numbers, strings, lists, tuples and dicts only (no pickled classes).

    NumPy arrays become ``{"__ratespike__": "ndarray", ...}`` with their bytes in a uint8 tensor, NumPy
    scalars Python numbers, and :class:`xarray.DataArray` a dict of dims, data, coords and attrs.
    :func:`from_plain` undoes it exactly.
    """
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu().clone()
    if isinstance(obj, xr.DataArray):
        return {_KIND: "dataarray", "name": obj.name, "dims": list(obj.dims), "data": to_plain(obj.values),
                "attrs": to_plain(dict(obj.attrs)),
                "coords": {str(k): {"dims": list(c.dims), "data": to_plain(c.values), "attrs": to_plain(dict(c.attrs))}
                           for k, c in obj.coords.items()}}
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind in "OUS":
            return {_KIND: "ndarray_list", "dtype": obj.dtype.str, "shape": list(obj.shape),
                    "data": [to_plain(v) for v in obj.ravel().tolist()]}
        arr = np.array(obj, order="C", copy=True)  # (ascontiguousarray would make 0-d arrays 1-d)
        return {_KIND: "ndarray", "dtype": arr.dtype.str, "shape": list(arr.shape),
                "data": torch.frombuffer(bytearray(arr.tobytes()), dtype=torch.uint8) if arr.nbytes
                else torch.zeros(0, dtype=torch.uint8)}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        return {k: to_plain(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [to_plain(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(to_plain(v) for v in obj)
    if obj is None or isinstance(obj, bool | int | float | str | torch.dtype | torch.device):
        return obj
    raise TypeError(f"a checkpoint cannot hold a {type(obj).__name__}; store tensors, numbers or strings")


def from_plain(obj: Any) -> Any:
    """The inverse of :func:`to_plain`."""
    if isinstance(obj, dict):
        kind = obj.get(_KIND)
        if kind == "ndarray":
            data = obj["data"].numpy().tobytes()
            return np.frombuffer(data, dtype=np.dtype(obj["dtype"])).reshape(obj["shape"]).copy()
        if kind == "ndarray_list":
            return np.asarray(obj["data"], dtype=np.dtype(obj["dtype"])).reshape(obj["shape"])
        if kind == "dataarray":
            coords = {k: xr.Variable(c["dims"], from_plain(c["data"]), attrs=from_plain(c["attrs"]))
                      for k, c in obj["coords"].items()}
            return xr.DataArray(from_plain(obj["data"]), dims=obj["dims"], coords=coords,
                                attrs=from_plain(obj["attrs"]), name=obj["name"])
        return {k: from_plain(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [from_plain(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(from_plain(v) for v in obj)
    return obj


def code_versions() -> dict[str, str]:
    """The versions a checkpoint's numbers depend on; resuming under others is refused."""
    return {"ratespike": ratespike_version(), "torch": torch.__version__.split("+")[0], "numpy": np.__version__,
            "python": ".".join(platform.python_version_tuple()[:2])}


def _rng_state(device: torch.device) -> dict[str, Any]:
    st = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if device.type == "cuda":
        st["cuda"] = torch.cuda.get_rng_state(device)
    return st


def _set_rng_state(st: Mapping[str, Any], device: torch.device) -> None:
    torch.set_rng_state(st["torch"])
    np.random.set_state(tuple(st["numpy"]))
    random.setstate(_tuples(st["python"]))
    if device.type == "cuda" and "cuda" in st:
        torch.cuda.set_rng_state(st["cuda"], device)


def _tuples(x: Any) -> Any:
    return tuple(_tuples(v) for v in x) if isinstance(x, list | tuple) else x


def _load_bytes(blob: bytes | Path, where: str) -> dict[str, Any]:
    """``torch.load(weights_only=True)`` of a checkpoint; one-line ResultsFileError for anything else."""
    src = io.BytesIO(blob) if isinstance(blob, bytes | bytearray) else blob
    try:
        state = torch.load(src, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - a damaged or crafted file is a user-facing file error
        why = "it holds objects other than tensors, numbers and strings" if "weights_only" in str(e) or \
            "Unsupported" in str(e) else f"{type(e).__name__}"
        raise ResultsFileError(f"cannot read checkpoint {where} ({why}); it was not loaded -- delete it to "
                               "start afresh") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ResultsFileError(f"{where} is not a ratespike checkpoint of format {CHECKPOINT_FORMAT!r} (an older "
                               "ratespike or another program wrote it); delete it to start afresh")
    for key, tp in (("rule", str), ("config", str), ("dataset", str), ("seeds", list), ("versions", dict),
                    ("epoch", int), ("history", list), ("runs", list)):
        if not isinstance(state.get(key), tp):
            raise ResultsFileError(f"checkpoint {where} is damaged (field {key!r} missing or of the wrong type); "
                                   "delete it to start afresh")
    return state


def _config_diff(a_json: str, b_json: str) -> list[str]:
    a, b = json.loads(a_json), json.loads(b_json)
    keys = [k for k in dict.fromkeys([*a, *b]) if k != "epochs" and a.get(k) != b.get(k)]
    return [f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in keys]


def check_checkpoint(state: Mapping[str, Any], where: str, *, rule: str, cfg_json: str, dataset: str,
                     seeds: tuple[int, ...], epochs: int) -> None:
    """Refuse (one line) a checkpoint made with another rule, config, dataset, seeds or code versions.

    Only ``epochs`` may differ, and only upwards: a finished run is extended to more epochs.
    """
    hint = "; delete it or choose another --out to start afresh"
    if state["rule"] != rule:
        raise ConfigError(f"checkpoint {where} is of rule {state['rule']!r}, not {rule!r}{hint}")
    if state["dataset"] != dataset:
        raise ConfigError(f"checkpoint {where} was trained on {state['dataset']!r}, not {dataset!r}{hint}")
    if [int(s) for s in state["seeds"]] != list(seeds):
        have = state["seeds"][0] if len(state["seeds"]) == 1 else state["seeds"]
        want = seeds[0] if len(seeds) == 1 else list(seeds)
        raise ConfigError(f"checkpoint {where} is of seed {have}, not {want}{hint}")
    diff = _config_diff(state["config"], cfg_json)
    if diff:
        raise ConfigError(f"checkpoint {where} was made with another config ({'; '.join(diff[:3])}); use the same "
                          f"--set values{hint}")
    if state["versions"] != code_versions():
        changed = [f"{k} {state['versions'].get(k)} -> {v}" for k, v in code_versions().items()
                   if state["versions"].get(k) != v]
        raise ConfigError(f"checkpoint {where} was made by other code versions ({', '.join(changed)}); its run "
                          f"would not continue identically{hint}")
    if state["epoch"] > epochs:
        raise ConfigError(f"checkpoint {where} holds {state['epoch']} finished epochs, more than the {epochs} "
                          "asked for; ask for at least as many epochs")


def _read_results_state(out: Path) -> tuple[dict[str, Any] | None, bool]:
    """(state stored in a results file, whether the file is a complete run); (None, False) if unreadable."""
    try:
        with xr.open_dataset(out, engine="netcdf4") as ds:
            complete = int(ds.attrs.get("complete", 0)) == 1 and "ratespike_version" in ds.attrs
    except Exception:  # noqa: BLE001 - not a results file: nothing to keep, nothing to resume
        return None, False
    if STATE_GROUP not in list_groups(out):
        return None, complete
    g = open_group(out, STATE_GROUP)
    return _load_bytes(bytes(np.asarray(g["state"].values, dtype=np.uint8)), f"stored in {str(out)!r}"), complete


def is_complete_results_file(path: Path) -> bool:
    """Whether ``path`` holds a finished ratespike run (``complete = 1``)."""
    if not Path(path).is_file():
        return False
    try:
        with xr.open_dataset(path, engine="netcdf4") as ds:
            return int(ds.attrs.get("complete", 0)) == 1 and "ratespike_version" in ds.attrs
    except Exception:  # noqa: BLE001
        return False


# --- memory ----------------------------------------------------------------------------------------------
def available_memory(device: torch.device) -> int | None:
    """Bytes free for a run: the GPU's free memory, or the smaller of MemAvailable and the cgroup limit."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    best = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    best = int(line.split()[1]) * 1024
    except OSError:
        pass
    for lim, cur in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                     ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            text = Path(lim).read_text().strip()
            if text.isdigit() and int(text) < 2**60:
                free = int(text) - int(Path(cur).read_text().strip())
                best = free if best is None else min(best, free)
        except (OSError, ValueError):
            continue
    return best


def _gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB"


def check_memory(need: float, device: torch.device, what: str) -> None:
    """ConfigError when ``need`` bytes exceed what the device has free."""
    have = available_memory(device)
    if have is not None and need > have:
        raise ConfigError(f"{what} needs about {_gib(need)} of {'GPU' if device.type == 'cuda' else ''} memory "
                          f"but {_gib(have)} is free; use fewer seeds or smaller layers".replace("of  ", "of "))


def _tensor_bytes(rule: Any) -> int:
    """Bytes held by a rule object's tensors and modules (parameters, buffers, dict-held tensors)."""
    seen: set[int] = set()
    total = 0

    def add(t: torch.Tensor) -> None:
        nonlocal total
        key = t.untyped_storage().data_ptr() if t.numel() else id(t)
        if key not in seen:
            seen.add(key)
            total += t.untyped_storage().nbytes()

    for v in vars(rule).values():
        if isinstance(v, torch.nn.Module):
            for t in [*v.parameters(), *v.buffers()]:
                add(t)
        elif isinstance(v, torch.Tensor):
            add(v)
        elif isinstance(v, dict):
            for t in v.values():
                if isinstance(t, torch.Tensor):
                    add(t)
    return total


def _build(rule_cls: type, cfg: Any, data: Any, seeds: tuple[int, ...], device: torch.device, show: bool) -> Any:
    try:
        return rule_cls(cfg, data, seeds=seeds, device=device, progress=show)
    except (MemoryError, torch.OutOfMemoryError) as e:
        raise ConfigError(f"{rule_cls.name}: not enough memory for this config ({type(e).__name__}); use fewer "
                          "seeds or smaller layers") from None
    except RuntimeError as e:
        if "allocate" in str(e) or "out of memory" in str(e):
            raise ConfigError(f"{rule_cls.name}: not enough memory for this config ({str(e).splitlines()[0][:120]})"
                              ) from None
        raise


# --- results ---------------------------------------------------------------------------------------------
def _stack_epochs(history: list[Mapping[str, xr.DataArray]]) -> dict[str, xr.DataArray]:
    names = list(dict.fromkeys(k for h in history for k in h))
    out = {}
    for name in names:
        items = [h[name] for h in history if name in h]
        epochs = [i + 1 for i, h in enumerate(history) if name in h]
        da = xr.concat(items, dim="epoch", coords="minimal", compat="override", combine_attrs="override")
        out[name] = da.assign_coords(epoch=np.asarray(epochs, dtype=np.int32))
    return out


def _check_finite(metrics: Mapping[str, xr.DataArray], epoch: int) -> None:
    for name, da in metrics.items():
        vals = np.asarray(da.values)
        if vals.dtype.kind == "f" and not np.isfinite(vals).all():
            where = ""
            if da.ndim:
                bad = np.argwhere(~np.isfinite(vals))[0]
                where = " at " + ", ".join(f"{d}={da[d].values[i] if d in da.coords else i}"
                                           for d, i in zip(da.dims, bad))
            raise DivergenceError(f"training diverged in epoch {epoch}: {name} is not finite{where}")


def results_dataset(rule_name: str, cfg: Any, ctx: RunContext, history: list[Mapping[str, xr.DataArray]],
                    seeds: tuple[int, ...], static: Mapping[str, xr.DataArray] | None = None,
                    complete: bool = False) -> xr.Dataset:
    """Assemble the per-epoch metrics into a results Dataset with provenance attributes.

    ``complete`` is stored as the attribute ``complete`` (1: the run finished; 0: written mid-run).
    """
    data = _stack_epochs(history) if history else {}
    if static:
        data.update(static)
    ds = xr.Dataset(data)
    if "epoch" in ds.dims:
        ds["epoch"].attrs.update(long_name="finished training epochs", units="1")
    if "seed" in ds.dims:
        ds = ds.assign_coords(seed=np.asarray(seeds, dtype=np.int64))
    seed_attr: int | list[int] = seeds[0] if len(seeds) == 1 else list(seeds)
    ds.attrs.update(provenance(kind="train", config_json=to_json(cfg), seed=seed_attr,
                               extra={"rule": rule_name, "dataset": ctx.dataset, "device": ctx.device,
                                      "epochs_completed": len(history), "complete": int(bool(complete)),
                                      **ctx.extra_attrs}))
    return ds


def _squeeze_seed(metrics: Mapping[str, xr.DataArray]) -> dict[str, xr.DataArray]:
    return {k: (v.isel(seed=0, drop=True) if "seed" in v.dims else v) for k, v in metrics.items()}


def _merge_seeds(parts: list[Mapping[str, xr.DataArray]], seeds: tuple[int, ...]) -> dict[str, xr.DataArray]:
    """Per-seed metric dicts of unbatched rules -> one dict with a ``seed`` dimension first."""
    if len(parts) == 1:
        return dict(parts[0])
    out = {}
    for name in dict.fromkeys(k for p in parts for k in p):
        items = [_squeeze_seed({name: p[name]})[name] for p in parts]
        da = xr.concat(items, dim="seed", coords="minimal", compat="override", combine_attrs="override")
        out[name] = da.assign_coords(seed=np.asarray(seeds, dtype=np.int64)).transpose("seed", ...)
    return out


@dataclass
class _Member:
    """One rule object of the run: all seeds of a batched rule, or one seed of an unbatched one."""

    rule: Any
    seeds: tuple[int, ...]
    rng: dict[str, Any]


def _representation_groups(members: list[_Member], seeds: tuple[int, ...]) -> dict[str, xr.Dataset]:
    """``representations/<layer>`` for the first seed, ``representations_seed<s>/<layer>`` for the others."""
    per_seed: dict[int, dict[str, xr.Dataset]] = {}
    for m in members:
        many = getattr(m.rule, "probe_representations_per_seed", None)
        if many is not None and len(m.seeds) > 1:
            per_seed.update(many())
        else:
            probe = getattr(m.rule, "probe_representations", None)
            if probe is not None:
                per_seed[m.seeds[0]] = probe()
    groups: dict[str, xr.Dataset] = {}
    for s in seeds:
        if s not in per_seed:
            continue
        prefix = "representations" if s == seeds[0] else f"representations_seed{s}"
        groups.update({k.replace("representations", prefix, 1): v for k, v in groups_of(per_seed[s]).items()})
    return groups


def _static(members: list[_Member], seeds: tuple[int, ...]) -> dict[str, xr.DataArray]:
    parts = [m.rule.static_results() for m in members]
    if not any(parts):
        return {}
    return _merge_seeds(parts, seeds) if len(members) > 1 else dict(parts[0])


def fit(rule_cls: type, cfg: Any, data: Any, ctx: RunContext,
        on_epoch: Callable[[int, Mapping[str, xr.DataArray]], None] | None = None) -> tuple[xr.Dataset, Any]:
    """Train ``rule_cls`` with config ``cfg`` on ``data`` for ``cfg.epochs`` epochs, every seed of ``ctx``.

    Returns
    -------
    (xarray.Dataset, rule)
        Per-epoch metrics (dims ``epoch`` [, ``seed``] [, ``layer`` ...]) with provenance attributes, and the
        trained rule object (for representation extraction; the last seed's for unbatched multi-seed runs).

    Raises
    ------
    DivergenceError
        On NaN/inf in a metric; the results file then holds the epochs finished before.
    ConfigError
        For seeds out of range, a config that cannot fit in memory, or a checkpoint of another run.
    ResultsFileError
        For a checkpoint that cannot be read safely, or a write that fails.
    StopSignal
        On SIGTERM/SIGINT (when the CLI installed its handlers): the checkpoint and the results file then
        hold the last finished epoch.
    """
    seeds = tuple(int(s) for s in ctx.seeds)
    if not seeds:
        raise ConfigError("no seeds given")
    if any(s < 0 or s > MAX_SEED for s in seeds):
        raise ConfigError(f"seeds must be in 0..2**63-1, got {max(seeds) if max(seeds) > 0 else min(seeds)}")
    if len(set(seeds)) != len(seeds):
        raise ConfigError("seeds repeat")
    device = distributed.setup(rule_cls, resolve_device(ctx.device))  # joins torchrun's group, if any
    batched = bool(getattr(rule_cls, "batched_seeds", False)) or len(seeds) == 1
    estimate = getattr(rule_cls, "estimate_bytes", None)
    if estimate is not None:
        check_memory(estimate(cfg, data, len(seeds)), device, f"{rule_cls.name} with {len(seeds)} seed(s)")
    ckpt = ctx.checkpoint_path()
    cfg_json = to_json(cfg)
    out = Path(ctx.out) if ctx.out is not None else None

    # where to resume from: the checkpoint file, else the state stored in a finished results file
    state, where = None, ""
    if ctx.resume:
        if ckpt is not None and ckpt.exists():
            if not ckpt.is_file():
                raise ResultsFileError(f"checkpoint {str(ckpt)!r} is not a regular file")
            where = repr(str(ckpt))
            state = _load_bytes(ckpt, where)
        elif out is not None and out.is_file():
            state, complete = _read_results_state(out)
            where = f"stored in {str(out)!r}"
            if state is None and complete:
                raise ConfigError(f"{str(out)!r} is a finished run without a stored training state (written by an "
                                  "older ratespike); it cannot be extended -- drop --resume to train afresh")
        if state is not None:
            check_checkpoint(state, where, rule=rule_cls.name, cfg_json=cfg_json, dataset=ctx.dataset,
                             seeds=seeds, epochs=cfg.epochs)
            n_members = 1 if batched else len(seeds)
            if len(state["runs"]) != n_members:
                raise ResultsFileError(f"checkpoint {where} is damaged (it holds {len(state['runs'])} rule states, "
                                       f"expected {n_members}); delete it to start afresh")
    # an existing complete results file is replaced only when this run has finished
    progress_to_out = out is not None and not is_complete_results_file(out)

    members: list[_Member] = []
    for k, sub in enumerate([seeds] if batched else [(s,) for s in seeds]):
        seed_everything(sub[0])
        rule = _build(rule_cls, cfg, data, sub, device, ctx.progress)
        members.append(_Member(rule, sub, _rng_state(device)))
        if k == 0 and not batched and estimate is None:
            # one object built: the others need as much again
            check_memory(_tensor_bytes(rule) * 4.0 * (len(seeds) - 1), device,
                         f"{rule_cls.name} with {len(seeds)} seeds")
    history: list[dict[str, xr.DataArray]] = []
    start = 0
    if state is not None:
        try:
            for m, saved in zip(members, state["runs"]):
                m.rule.load_state_dict(from_plain(saved["state"]))
                m.rng = from_plain(saved["rng"])
            history = [from_plain(h) for h in state["history"]]
        except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as e:
            raise ResultsFileError(f"checkpoint {where} does not fit this rule ({type(e).__name__}: "
                                   f"{str(e).splitlines()[0][:100] if str(e) else ''}); delete it to start afresh"
                                   ) from None
        start = int(state["epoch"])
        if len(history) != start:
            raise ResultsFileError(f"checkpoint {where} is damaged (history of {len(history)} epochs, epoch {start})")

    def snapshot(epoch: int) -> dict[str, Any]:
        return {"format": CHECKPOINT_FORMAT, "rule": rule_cls.name, "config": cfg_json, "dataset": ctx.dataset,
                "seeds": list(seeds), "versions": code_versions(), "device": ctx.device, "epoch": epoch,
                "history": [to_plain(h) for h in history],
                "runs": [{"seeds": list(m.seeds), "state": to_plain(m.rule.state_dict()), "rng": to_plain(m.rng)}
                         for m in members]}

    try:
        for epoch in range(start + 1, cfg.epochs + 1):
            parts = []
            for m in members:
                _set_rng_state(m.rng, device)
                metrics = dict(m.rule.train_epoch(epoch))
                metrics.update(m.rule.evaluate(epoch))
                m.rng = _rng_state(device)
                parts.append(metrics)
            metrics = _squeeze_seed(parts[0]) if len(seeds) == 1 else _merge_seeds(parts, seeds)
            _check_finite(metrics, epoch)
            history.append(metrics)
            with deferred_signals():  # the checkpoint and the results file of one epoch, or neither
                if ckpt is not None:
                    blob = snapshot(epoch)
                    atomic_write(ckpt, lambda tmp: torch.save(blob, tmp), what="checkpoint")
                if progress_to_out:
                    write_run(results_dataset(rule_cls.name, cfg, ctx, history, seeds, _static(members, seeds)), out)
            if on_epoch is not None:
                on_epoch(epoch, metrics)
        ds = results_dataset(rule_cls.name, cfg, ctx, history, seeds, _static(members, seeds), complete=True)
        if out is not None:
            groups = _representation_groups(members, seeds)
            buf = io.BytesIO()
            torch.save(snapshot(len(history)), buf)
            groups[STATE_GROUP] = xr.Dataset(
                {"state": ("byte", np.frombuffer(buf.getvalue(), dtype=np.uint8))},
                attrs={"format": CHECKPOINT_FORMAT, "epoch": len(history),
                       "long_name": "final training state (torch.save, read with weights_only=True) for --resume"})
            write_run(ds, out, groups=groups)
    except StopSignal as e:
        e.note = (f"{len(history)} finished epoch(s) kept in {str(ckpt) if ckpt else 'memory'}"
                  + ("; --resume continues" if ckpt else ""))
        raise
    return ds, members[-1].rule


def remove_checkpoint(ctx: RunContext) -> None:
    """Delete the checkpoint of a finished run (the CLI keeps it only with --keep-checkpoint).

    The finished results file holds the final state, so ``--resume`` can still extend the run.
    """
    p = ctx.checkpoint_path()
    if p is not None and p.is_file() and distributed.is_main():
        os.unlink(p)
