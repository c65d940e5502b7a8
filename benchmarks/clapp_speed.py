"""Throughput and peak memory: CLAPP layer-local training vs Hinge-CPC end to end, on the same encoder.

Each mode runs in a fresh subprocess (so peak-memory figures do not mix): it builds the rule on random
images of the preset's size, runs ``--warmup`` training steps, then times ``--steps`` steps. Reported:

* patches per second: encoded patches (batch x grid positions) per second of training;
* peak activation memory: the largest total size of the (distinct) tensors that autograd holds for the
  backward pass at any moment of a step, counted with ``torch.autograd.graph.saved_tensors_hooks``
  (parameters excluded); deterministic, and the same on CPU and GPU;
* on CUDA also the peak of ``torch.cuda.max_memory_allocated`` above the memory held before the step.

On a shared CPU, wall-clock throughput depends on the load; the process CPU time (one thread) gives a
load-independent figure, reported beside it.

Layer-local CLAPP backpropagates through one layer at a time and frees its graph before the next layer;
Hinge-CPC keeps every layer's activations for the end-to-end backward pass.

Example::

    OMP_NUM_THREADS=1 python benchmarks/clapp_speed.py --preset mnist --batch-size 32 --steps 20
    python benchmarks/clapp_speed.py --preset stl10 --device cuda --steps 20
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys

MODES = {"clapp": "layer-local (CLAPP)", "hinge-cpc": "end-to-end (Hinge-CPC)"}


class SavedTensorMeter:
    """Track the bytes of distinct storages held by autograd for backward (pack/unpack hooks)."""

    def __init__(self) -> None:
        self.live: dict[int, list[int]] = {}
        self.current = 0
        self.peak = 0

    def pack(self, t):
        if t.is_leaf and t.requires_grad:  # a parameter: not activation memory
            return t
        key = t.untyped_storage().data_ptr()
        if key in self.live:
            self.live[key][1] += 1
        else:
            nbytes = t.untyped_storage().nbytes()
            self.live[key] = [nbytes, 1]
            self.current += nbytes
            self.peak = max(self.peak, self.current)
        return _Held(self, key, t)

    def release(self, key: int) -> None:
        entry = self.live[key]
        entry[1] -= 1
        if entry[1] == 0:
            self.current -= entry[0]
            del self.live[key]

    @staticmethod
    def unpack(held):
        return held.tensor if isinstance(held, _Held) else held


class _Held:
    __slots__ = ("meter", "key", "tensor")

    def __init__(self, meter: SavedTensorMeter, key: int, tensor) -> None:
        self.meter, self.key, self.tensor = meter, key, tensor

    def __del__(self) -> None:
        self.meter.release(self.key)


def _child(args: argparse.Namespace) -> dict:
    import time

    import torch

    from bridge.config import replace_config
    from ratenets.data import ImageDataset
    from ratenets.rules import get_rule
    from ratenets.train import resolve_device

    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    cls = get_rule(args.mode)
    cfg = replace_config(cls.preset(args.preset), {"batch_size": args.batch_size})
    side = {"stl10": 96}.get(args.preset, 28 if args.preset in ("mnist", "fashion-mnist") else 8)
    g = torch.Generator().manual_seed(0)
    n = args.batch_size
    x = torch.randint(0, 256, (n, 1, side, side), generator=g, dtype=torch.uint8)
    y = torch.randint(0, 10, (n,), generator=g)
    data = ImageDataset(args.preset, x, y, x, y, tuple(str(i) for i in range(10)))
    rule = cls(cfg, data, seeds=(0,), device=device)
    batch = rule.prepare(x, train=True)
    gy, gx = rule.grid
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(args.warmup):
        rule.train_step(batch)
    sync()
    meter = SavedTensorMeter()
    with torch.autograd.graph.saved_tensors_hooks(meter.pack, meter.unpack):
        rule.train_step(batch)
    cuda_peak = float("nan")
    if device.type == "cuda":
        sync()
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        rule.train_step(batch)
        sync()
        cuda_peak = (torch.cuda.max_memory_allocated(device) - base) / 2**20
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(args.steps):
        rule.train_step(batch)
    sync()
    dt, dc = time.perf_counter() - t0, time.process_time() - c0
    patches = args.steps * n * gy * gx
    return {"mode": args.mode, "patches_per_s": patches / dt, "patches_per_cpu_s": patches / dc,
            "peak_mib": meter.peak / 2**20, "cuda_peak_mib": cuda_peak, "step_ms": 1000 * dt / args.steps,
            "grid": [gy, gx]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="mnist", help="dataset preset: mnist (small encoder) or stl10 (VGG-6)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=2, help="untimed steps before the measurements")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--mode", choices=list(MODES), default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.mode is not None:
        print(json.dumps(_child(args)))
        return 0
    res = {}
    for mode in MODES:
        cmd = [sys.executable, __file__, "--mode", mode, *(argv if argv is not None else sys.argv[1:])]
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode != 0:
            print(f"clapp_speed: error: {mode} failed: {out.stderr.strip().splitlines()[-1]}", file=sys.stderr)
            return 2
        res[mode] = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"preset {args.preset}, device {args.device}, batch {args.batch_size}, {args.steps} timed steps, "
          f"{args.threads} thread(s)")
    print("| training | patches/s (wall) | patches per CPU-s | ms/step | peak activation MiB | CUDA peak MiB |")
    print("|---|---|---|---|---|---|")
    for mode, r in res.items():
        print(f"| {MODES[mode]} | {r['patches_per_s']:.0f} | {r['patches_per_cpu_s']:.0f} | {r['step_ms']:.1f} | "
              f"{r['peak_mib']:.2f} | {r['cuda_peak_mib']:.1f} |")
    a, b = res["clapp"], res["hinge-cpc"]
    print(f"throughput ratio layer-local / end-to-end: wall {a['patches_per_s'] / b['patches_per_s']:.2f}, "
          f"CPU time {a['patches_per_cpu_s'] / b['patches_per_cpu_s']:.2f} (target >= 1)")
    print(f"peak activation memory ratio layer-local / end-to-end: {a['peak_mib'] / b['peak_mib']:.2f} "
          "(target <= 0.5)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
