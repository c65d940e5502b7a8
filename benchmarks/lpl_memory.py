"""Throughput and peak training memory of layer-local LPL vs end-to-end training of the same VGG-11.

Each mode runs in its own child process (so peak memories do not mix): it builds the LPL rule with the
paper's VGG-11 (no BatchNorm) on CIFAR-10-sized inputs (3x32x32, seeded random images: no data download),
makes one batch of view pairs, runs ``--warmup`` optimiser steps, then times ``--steps`` steps.

- images/s = images per step (the two views of ``batch`` images count as ``batch`` images) / mean step time;
- peak memory: on CPU, the process's peak resident set (``VmHWM``, reset after the warm-up) minus its
  resident set just before the first timed step (model, gradient buffers, Adam moments and batch already
  allocated), i.e. what one training step adds at its peak; the children run with
  ``MALLOC_MMAP_THRESHOLD_=131072`` so that freed tensors go back to the system and RSS follows live memory; on CUDA,
  ``torch.cuda.max_memory_allocated`` minus the memory allocated before the first step.

Layer-local mode backpropagates block by block (each block's graph is freed before the next block runs), so
its peak is about one block's activations; end-to-end mode keeps the graph of all eight blocks.
Targets (issue #4): layer-local throughput >= end-to-end's, layer-local peak memory <= 0.5x end-to-end's.

Example::

    OMP_NUM_THREADS=1 python benchmarks/lpl_memory.py --batch 64 --steps 5
    python benchmarks/lpl_memory.py --device cuda --batch 1024 --steps 20
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time


def _rss_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _reset_peak_rss() -> None:
    """Reset VmHWM to the current RSS (Linux >= 4.0: write 5 to /proc/self/clear_refs), so the warm-up's peak
    does not count; where that is not allowed, the peak covers the warm-up steps too."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def child(mode: str, batch: int, steps: int, warmup: int, device: str, width_scale: float) -> dict:
    import torch

    from ratenets.data import make_synthetic
    from ratenets.rules.lpl import LPL, LPLConfig
    from ratenets.train import resolve_device

    dev = resolve_device(device)
    torch.manual_seed(0)
    data = make_synthetic(n_train=batch, n_test=8, size=32, channels=3, seed=0)
    cfg = LPLConfig(batch_size=batch, end_to_end=(mode == "end_to_end"), width_scale=width_scale,
                    probe_train_images=8)
    rule = LPL(cfg, data, seeds=(0,), device=dev)
    gen = torch.Generator().manual_seed(0)
    v1, v2 = rule.views.pair(data.x_train.to(dev), gen)
    t_aug = time.perf_counter()
    for _ in range(3):
        rule.views.pair(data.x_train.to(dev), gen)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    aug_s = (time.perf_counter() - t_aug) / 3  # both SimCLR views of one batch
    for _ in range(warmup):
        rule.train_step(v1, v2, None)
    if dev.type == "cuda":
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
    else:
        _reset_peak_rss()
        base = _rss_kib("VmRSS") * 1024
    t0 = time.perf_counter()
    for _ in range(steps):
        rule.train_step(v1, v2, None)
    dt_steps = time.perf_counter() - t0
    if dev.type == "cuda":
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - base
    else:
        peak = _rss_kib("VmHWM") * 1024 - base
    dt = dt_steps / steps
    graph = graph_bytes(rule, v1, v2)
    return {"mode": mode, "images_per_s": batch / dt, "step_s": dt, "peak_mib": peak / 2**20,
            "graph_mib": graph / 2**20, "views_s": aug_s, "threads": torch.get_num_threads(), "device": str(dev)}


def graph_bytes(rule, v1, v2) -> int:
    """Largest autograd graph of one training step: bytes of the distinct non-parameter tensors saved for
    backward between two backward calls (layer-local: the largest block's graph; end-to-end: the whole net).

    Counted with ``torch.autograd.graph.saved_tensors_hooks``; ``torch.autograd.backward`` is wrapped to
    close a graph. Device-independent and exact for the activations, unlike the process's peak RSS, which
    also holds allocator caches and convolution workspaces.
    """
    import torch

    params = {p.untyped_storage().data_ptr() for p in [*rule.encoder.parameters(), *rule.heads.parameters()]}
    current: dict[int, int] = {}
    peak = [0]

    def pack(t):
        st = t.untyped_storage()
        if st.data_ptr() not in params:
            current[st.data_ptr()] = st.nbytes()
        return t

    orig = torch.autograd.backward

    def backward(*a, **k):
        peak[0] = max(peak[0], sum(current.values()))
        current.clear()
        return orig(*a, **k)

    torch.autograd.backward = backward
    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            rule.train_step(v1, v2, None)
    finally:
        torch.autograd.backward = orig
    return peak[0]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=64, help="images per step (paper: 1024)")
    p.add_argument("--steps", type=int, default=5, help="timed steps")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--width-scale", type=float, default=1.0, help="VGG-11 channel multiplier (1 = the paper's)")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child:
        print(json.dumps(child(a.child, a.batch, a.steps, a.warmup, a.device, a.width_scale)))
        return 0
    if a.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            print("lpl_memory: error: --device cuda requested but torch sees no CUDA GPU", file=sys.stderr)
            return 2
    res = {}
    for mode in ("layer_local", "end_to_end"):
        cmd = [sys.executable, __file__, "--child", mode, "--batch", str(a.batch), "--steps", str(a.steps),
               "--warmup", str(a.warmup), "--device", a.device, "--width-scale", str(a.width_scale)]
        # a fixed mmap threshold stops glibc from keeping freed tensors in its heap, so RSS follows live memory
        env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072"}
        out = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if out.returncode != 0:
            print(out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "child failed", file=sys.stderr)
            return 1
        res[mode] = json.loads(out.stdout.strip().splitlines()[-1])
    ll, e2e = res["layer_local"], res["end_to_end"]
    print(f"VGG-11 (width x{a.width_scale}), 3x32x32, batch {a.batch}, {a.steps} timed steps, "
          f"device {ll['device']}, torch threads {ll['threads']}")
    print(f"SimCLR views (two per image, batched): {ll['views_s']:.3f} s per batch of {a.batch} "
          f"= {a.batch / ll['views_s']:.0f} images/s")
    kind = "CUDA max_memory_allocated" if ll["device"].startswith("cuda") else "peak RSS"
    print(f"| mode | images/s | s/step | largest autograd graph (MiB) | {kind} added by a step (MiB) |")
    print("|---|---|---|---|---|")
    for r in (ll, e2e):
        print(f"| {r['mode']} | {r['images_per_s']:.1f} | {r['step_s']:.3f} | {r['graph_mib']:.1f} | "
              f"{r['peak_mib']:.0f} |")
    print(f"throughput ratio layer-local/end-to-end = {ll['images_per_s'] / e2e['images_per_s']:.2f} (target >= 1); "
          f"graph memory ratio = {ll['graph_mib'] / max(e2e['graph_mib'], 1e-9):.2f}, {kind} ratio = "
          f"{ll['peak_mib'] / max(e2e['peak_mib'], 1e-9):.2f} (target <= 0.5)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
