"""How close a ``torchrun`` N-process run comes to the one-process run: the largest deviation of every metric.

Runs ``ratespike train RULE --dataset digits`` once in one process and once under ``torchrun
--nproc-per-node N`` (gloo on CPU) with the same seeds and global batch, then prints, for every per-epoch
metric of the results files, the largest absolute and relative difference, and the spread between the
first two seeds (the size of a real difference); then, from the final training state stored in both files
(group ``checkpoint``), the largest difference of every parameter tensor of the first seed's model.
``--set`` passes config overrides to both runs.
Examples::

    OMP_NUM_THREADS=1 python benchmarks/ddp_equality.py --rule lpl --epochs 2 --seeds 0,1
    OMP_NUM_THREADS=1 python benchmarks/ddp_equality.py --rule lpl --set shuffle_positives=true \\
        --set stale_estimates=true
    OMP_NUM_THREADS=1 python benchmarks/ddp_equality.py --rule clapp --epochs 1 --set train_size=512
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rule", default="lpl")
    ap.add_argument("--nproc", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--seeds", default="0,1", help="seeds of both runs (default 0,1)")
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE")
    args = ap.parse_args(argv)
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    load0, t0 = os.getloadavg(), time.perf_counter()
    import xarray as xr

    with tempfile.TemporaryDirectory() as tmp:
        train = ["bridge.cli", "train", args.rule, "--dataset", "digits", "--epochs", str(args.epochs),
                 "--seeds", args.seeds, "--no-progress", *[a for kv in args.set for a in ("--set", kv)]]
        one, many = Path(tmp) / "one.nc", Path(tmp) / "ddp.nc"
        for cmd in ([sys.executable, "-m", *train, "--out", str(one)],
                    [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
                     str(args.nproc), "-m", *train, "--out", str(many)]):
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if proc.returncode != 0:
                print(proc.stderr[-2000:], file=sys.stderr)
                return 1
        a, b = xr.open_dataset(one), xr.open_dataset(many)
        rows = []
        for name, va in a.data_vars.items():
            if "epoch" not in va.dims or not np.issubdtype(va.dtype, np.floating):
                continue
            x, y = va.values, b[name].values
            d = np.abs(x - y)
            rel = np.nanmax(d / np.maximum(np.abs(x), 1e-12)) if d.size else 0.0
            spread = (float(np.nanmax(np.abs(va.isel(seed=0).values - va.isel(seed=1).values)))
                      if "seed" in va.dims and va.sizes["seed"] > 1 else float("nan"))
            rows.append((name, float(np.nanmax(d)), float(rel), spread))
        a.close(), b.close()
        params = _param_diffs(one, many)
    load1 = os.getloadavg()
    print(f"# {args.rule} on digits, seeds {args.seeds}, {args.epochs} epochs, overrides {args.set or 'none'}: "
          f"torchrun {args.nproc} processes (gloo) vs 1 process; OMP_NUM_THREADS={env['OMP_NUM_THREADS']}, "
          f"load average {load0[0]:.2f} before / {load1[0]:.2f} after, {time.perf_counter() - t0:.0f} s")
    print(f"{'metric':32s} {'max |diff|':>11s} {'max rel':>10s} {'seed 0 vs 1':>12s}")
    for name, d, rel, spread in rows:
        print(f"{name:32s} {d:11.3g} {rel:10.3g} {spread:12.3g}")
    print(f"{'parameter (first seed, final)':40s} {'max |diff|':>11s} {'max |value|':>12s}")
    for name, d, v in params:
        print(f"{name:40s} {d:11.3g} {v:12.3g}")
    return 0


def _param_diffs(one: Path, many: Path) -> list[tuple[str, float, float]]:
    """Per parameter tensor of the first rule state (optimiser and generator states left out)."""
    import io

    import torch
    import xarray as xr

    from ratenets.train import from_plain

    def state(path: Path) -> dict:
        with xr.open_dataset(path, group="checkpoint") as g:
            blob = torch.load(io.BytesIO(g["state"].values.tobytes()), weights_only=True)
        return from_plain(blob["runs"][0]["state"])

    out: list[tuple[str, float, float]] = []

    def walk(x, y, path: str) -> None:
        if isinstance(x, dict):
            for k in x:
                if k not in ("opt", "opts", "gen", "gens", "rng"):
                    walk(x[k], y[k], f"{path}.{k}" if path else str(k))
        elif isinstance(x, torch.Tensor) and x.is_floating_point() and x.numel():
            out.append((path, float((x - y).abs().max()), float(x.abs().max())))

    walk(state(one), state(many), "")
    return out


if __name__ == "__main__":
    sys.exit(main())
