"""The training engine shared by every rate-network rule: epochs, progress, checkpoints, resume, results.

A rule (see :class:`ratenets.rules.base.Rule`) owns its networks, optimisers and batches; this engine
owns the epoch loop. After each epoch it

1. checks every recorded metric for NaN/inf and stops with a :class:`~bridge.errors.DivergenceError`
   naming the metric and epoch (the results of the finished epochs stay written);
2. saves a checkpoint atomically (``<out>.ckpt`` beside the results file), so ``resume=True`` continues
   from the last finished epoch with identical results;
3. rewrites the results file atomically with everything so far.

At the end, a rule with a ``probe_representations()`` method adds each layer's responses to a fixed probe
set as child groups ``representations/<layer>`` (see :mod:`bridge.reps`).

Epochs are numbered from 1 in the ``epoch`` coordinate (the number of finished training epochs).
Multi-seed runs add a ``seed`` dimension: rules with ``batched_seeds = True`` train all seeds as one batch
dimension of their tensors; for the others the engine trains the seeds one after another.
"""
from __future__ import annotations

import os
import random
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr

from bridge.config import to_json
from bridge.errors import ConfigError, DivergenceError, ResultsFileError
from bridge.io import atomic_write, provenance, write_run
from bridge.reps import groups_of
from ratenets import distributed

# under torchrun only rank 0 writes results files and checkpoints (ratenets.distributed)
atomic_write, write_run = distributed.main_only(atomic_write), distributed.main_only(write_run)


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
        Continue from ``checkpoint`` if it exists.
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
                    seeds: tuple[int, ...], static: Mapping[str, xr.DataArray] | None = None) -> xr.Dataset:
    """Assemble the per-epoch metrics into a results Dataset with provenance attributes."""
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
                                      "epochs_completed": len(history),
                                      "complete": int(len(history) >= cfg.epochs), **ctx.extra_attrs}))
    return ds


def _squeeze_seed(metrics: Mapping[str, xr.DataArray]) -> dict[str, xr.DataArray]:
    return {k: (v.isel(seed=0, drop=True) if "seed" in v.dims else v) for k, v in metrics.items()}


def fit(rule_cls: type, cfg: Any, data: Any, ctx: RunContext,
        on_epoch: Callable[[int, Mapping[str, xr.DataArray]], None] | None = None) -> tuple[xr.Dataset, Any]:
    """Train ``rule_cls`` with config ``cfg`` on ``data`` for ``cfg.epochs`` epochs.

    Returns
    -------
    (xarray.Dataset, rule)
        Per-epoch metrics (dims ``epoch`` [, ``seed``] [, ``layer`` ...]) with provenance attributes, and the
        trained rule object (for representation extraction; the last seed's for unbatched multi-seed runs).

    Raises
    ------
    DivergenceError
        On NaN/inf in a metric; the results file then holds the epochs finished before.
    """
    seeds = tuple(ctx.seeds)
    if len(seeds) > 1 and not getattr(rule_cls, "batched_seeds", False):
        parts, rule = [], None
        for s in seeds:
            sub = RunContext(**{**ctx.__dict__, "seeds": (s,), "out": None,
                                "checkpoint": (Path(f"{ctx.checkpoint_path()}.seed{s}") if ctx.checkpoint_path()
                                               else None)})
            part, rule = fit(rule_cls, cfg, data, sub)
            parts.append(part)
        ds = xr.concat([p.drop_attrs() if hasattr(p, "drop_attrs") else p for p in parts], dim="seed",
                       coords="minimal", compat="override")
        ds = ds.assign_coords(seed=np.asarray(seeds, dtype=np.int64))
        ds.attrs = parts[0].attrs
        ds.attrs["seed"] = list(seeds)
        if ctx.out is not None:
            write_run(ds, ctx.out)
        return ds, rule

    seed_everything(seeds[0])
    device = distributed.setup(rule_cls, resolve_device(ctx.device))  # joins torchrun's group, if any
    rule = rule_cls(cfg, data, seeds=seeds, device=device, progress=ctx.progress)
    history: list[dict[str, xr.DataArray]] = []
    start = 0
    ckpt = ctx.checkpoint_path()
    cfg_json = to_json(cfg)
    if ctx.resume and ckpt is not None and ckpt.is_file():
        try:
            state = torch.load(ckpt, map_location=device, weights_only=False)
        except Exception as e:  # noqa: BLE001 - a damaged checkpoint is a user-facing file error
            raise ResultsFileError(f"cannot read checkpoint {str(ckpt)!r} ({type(e).__name__}); "
                                   "delete it to start afresh") from None
        if state.get("config") != cfg_json or state.get("rule") != rule_cls.name:
            raise ConfigError(f"checkpoint {str(ckpt)!r} was made with another rule or config; "
                              "use the same --set values or delete the checkpoint")
        rule.load_state_dict(state["rule_state"])
        history = state["history"]
        start = state["epoch"]
        torch.set_rng_state(state["torch_rng"])
    for epoch in range(start + 1, cfg.epochs + 1):
        metrics = dict(rule.train_epoch(epoch))
        metrics.update(rule.evaluate(epoch))
        if len(seeds) == 1:
            metrics = _squeeze_seed(metrics)
        try:
            _check_finite(metrics, epoch)
        except DivergenceError:
            if ctx.out is not None and history:
                write_run(results_dataset(rule_cls.name, cfg, ctx, history, seeds, rule.static_results()),
                          ctx.out)
            raise
        history.append(metrics)
        if ckpt is not None:
            state = {"rule": rule_cls.name, "config": cfg_json, "epoch": epoch, "history": history,
                     "rule_state": rule.state_dict(), "torch_rng": torch.get_rng_state()}
            atomic_write(ckpt, lambda tmp: torch.save(state, tmp))
        if ctx.out is not None:
            write_run(results_dataset(rule_cls.name, cfg, ctx, history, seeds, rule.static_results()), ctx.out)
        if on_epoch is not None:
            on_epoch(epoch, metrics)
    ds = results_dataset(rule_cls.name, cfg, ctx, history, seeds, rule.static_results())
    probe = getattr(rule, "probe_representations", None)
    reps = probe() if probe is not None else {}
    if ctx.out is not None and (reps or start >= cfg.epochs):
        write_run(ds, ctx.out, groups=groups_of(reps))
    return ds, rule


def remove_checkpoint(ctx: RunContext) -> None:
    """Delete the checkpoint of a finished run (the CLI keeps it only with --keep-checkpoint)."""
    p = ctx.checkpoint_path()
    if p is not None and p.is_file() and distributed.is_main():
        os.unlink(p)
