"""Data-parallel training throughput: ``torchrun`` with N processes vs one process, same run, side by side.

Both runs train the same net on digits with the same global batch (so they compute the same result,
see ``tests/test_ddp.py``); the N-process run splits every batch across the ranks and all-reduces the
gradients (gloo on CPU, NCCL with ``--device cuda``). ``--rule bp`` (default): the bp MLP of width
``--hidden``; ``--rule lpl``: the digits LPL preset (small conv net), whose layer features are also
all-gathered every step for the whole-batch loss terms. Each configuration runs ``--repeats`` times,
in alternating order, and the best wall time of each is compared. Wall times include process start, data
loading and each epoch's evaluation (run by every rank), which the two share. Examples::

    OMP_NUM_THREADS=1 python benchmarks/ddp_throughput.py --nproc 2 --epochs 2 --batch-size 200
    OMP_NUM_THREADS=1 python benchmarks/ddp_throughput.py --rule lpl --nproc 2 --epochs 2 --batch-size 256
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rule", choices=("bp", "lpl"), default="bp")
    ap.add_argument("--nproc", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--hidden", default="1000", help="bp only: hidden width (default 1000)")
    ap.add_argument("--batch-size", type=int, default=200, help="global batch (LPL: images per batch)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args(argv)
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    load0 = os.getloadavg()
    best = {"1 process": float("inf"), f"torchrun {args.nproc}": float("inf")}
    with tempfile.TemporaryDirectory() as tmp:
        train = ["bridge.cli", "train", args.rule, "--dataset", "digits", "--epochs", str(args.epochs), "--seed",
                 "0", "--device", args.device, "--no-progress", "--set", f"batch_size={args.batch_size}"]
        if args.rule == "bp":
            train += ["--set", f"hidden={args.hidden}"]
        cmds = {"1 process": [sys.executable, "-m", *train, "--out", str(Path(tmp) / "one.nc")],
                f"torchrun {args.nproc}": [sys.executable, "-m", "torch.distributed.run", "--standalone",
                                           "--nproc-per-node", str(args.nproc), "-m", *train, "--out",
                                           str(Path(tmp) / "ddp.nc")]}
        for k in range(args.repeats):  # alternating order, so a load change hits both alike
            for name in (list(cmds) if k % 2 == 0 else list(cmds)[::-1]):
                cmd = cmds[name]
                t = time.perf_counter()
                subprocess.run(cmd, check=True, env=env, capture_output=True)
                best[name] = min(best[name], time.perf_counter() - t)
        import xarray as xr

        acc = {n: xr.open_dataset(Path(tmp) / f).test_accuracy.isel(epoch=-1).values.ravel()
               for n, f in zip(cmds, ("one.nc", "ddp.nc"))}
    load1 = os.getloadavg()
    net = f"bp on digits, hidden {args.hidden}" if args.rule == "bp" else "lpl on digits (preset conv net)"
    print(f"# {net}, batch {args.batch_size}, {args.epochs} epochs, device "
          f"{args.device}; OMP_NUM_THREADS={env['OMP_NUM_THREADS']} per process, {os.cpu_count()} cores, "
          f"load average {load0[0]:.2f} before / {load1[0]:.2f} after; best of {args.repeats}")
    for name, t in best.items():
        print(f"{name:12s} {t:8.2f} s   final test accuracy {' '.join(f'{a:.4f}' for a in acc[name])}"
              + (" (per layer)" if len(acc[name]) > 1 else ""))
    one, many = best["1 process"], best[f"torchrun {args.nproc}"]
    print(f"throughput ratio (torchrun {args.nproc} / 1 process): {one / many:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
