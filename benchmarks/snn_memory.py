"""Throughput and memory of layer-local LPL vs end-to-end BPTT of the same spiking VGG-11, at T = 10, 25, 50.

The net is LPL's VGG-11 (no BatchNorm; ``--width-scale`` shrinks it for CPU runs) with snntorch ``Leaky``
neurons (``neuron=lif``, direct input current) on CIFAR-10-sized inputs (3x32x32, seeded random images: no
data download). Layer-local mode trains every block on its own LPL loss with the spike train of the block
below detached, so backpropagation through time stays inside one block and its graph is freed before the next
block runs; end-to-end mode (``end_to_end=True``) backpropagates the top block's loss through all blocks and
all ``T`` steps (BPTT).

Measured for each ``T``:

- **largest autograd graph** (load-independent, exact): bytes of the distinct non-parameter tensors saved
  for backward and still alive at a backward call (``torch.autograd.graph.saved_tensors_hooks``, as in
  ``benchmarks/lpl_memory.py``, plus weak references: see :func:`live_graph_bytes`);
- **peak memory added by a step**: CPU, the process's peak resident set (``VmHWM``, reset after the warm-up)
  minus its resident set before the first timed step, one child process per mode with
  ``MALLOC_MMAP_THRESHOLD_=131072`` so that RSS follows live memory; CUDA, ``max_memory_allocated`` minus the
  memory allocated before the first step;
- **throughput ratio**, side by side: one child process builds both nets and alternates one layer-local and
  one end-to-end step ``--steps`` times, so both modes see the same machine load; the ratio of the median
  step times is reported (images/s of each mode are printed too, but only the ratio is load-independent).

Targets (issue 18): at T = 25, layer-local throughput >= 1.0x and peak memory <= 0.5x of end-to-end BPTT.

Example::

    OMP_NUM_THREADS=1 python benchmarks/snn_memory.py --width-scale 0.25 --batch 8 --steps 3
    python benchmarks/snn_memory.py --device cuda --batch 64 --steps 10
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__))))
from lpl_memory import _reset_peak_rss, _rss_kib  # noqa: E402  - the same RSS measurement


def live_graph_bytes(rule, v1, v2) -> int:
    """Largest autograd graph of one step: bytes of the distinct non-parameter tensors saved for backward
    that are still alive when a backward call starts (layer-local: the largest block; end-to-end: the net).

    As ``lpl_memory.graph_bytes``, but a tensor saved by a node that died before the backward (snntorch's
    ``mem_reset`` calls the surrogate on a grad-carrying membrane and detaches the result, so its node and
    saved tensor are freed at once) no longer counts: it is held through a weak reference.
    """
    import weakref

    import torch

    params = {p.untyped_storage().data_ptr() for p in [*rule.encoder.parameters(), *rule.heads.parameters()]}
    current: dict[int, tuple[weakref.ref, int]] = {}
    peak = [0]

    def pack(t):
        st = t.untyped_storage()
        if st.data_ptr() not in params:
            current[st.data_ptr()] = (weakref.ref(t), st.nbytes())
        return t

    orig = torch.autograd.backward

    def backward(*a, **k):
        peak[0] = max(peak[0], sum(n for r, n in current.values() if r() is not None))
        current.clear()
        return orig(*a, **k)

    torch.autograd.backward = backward
    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            rule.train_step(v1, v2, None)
    finally:
        torch.autograd.backward = orig
    return peak[0]


def _rule(mode: str, T: int, batch: int, width_scale: float, device: str):
    import torch

    from ratenets.data import make_synthetic
    from ratenets.rules.lpl import LPL, LPLConfig
    from ratenets.train import resolve_device

    dev = resolve_device(device)
    data = make_synthetic(n_train=batch, n_test=8, size=32, channels=3, seed=0)
    cfg = LPLConfig(batch_size=batch, end_to_end=(mode == "end_to_end"), width_scale=width_scale,
                    probe_train_images=8, neuron="lif", timesteps=T, threshold=0.5)
    rule = LPL(cfg, data, seeds=(0,), device=dev)
    v1, v2 = rule.views.pair(data.x_train.to(dev), torch.Generator().manual_seed(0))
    return rule, v1, v2, dev


def _sync(dev) -> None:
    import torch

    if dev.type == "cuda":
        torch.cuda.synchronize()


def child_memory(mode: str, T: int, batch: int, steps: int, warmup: int, device: str, width_scale: float) -> dict:
    import torch

    rule, v1, v2, dev = _rule(mode, T, batch, width_scale, device)
    for _ in range(warmup):
        rule.train_step(v1, v2, None)
    _sync(dev)
    if dev.type == "cuda":
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
    else:
        _reset_peak_rss()
        base = _rss_kib("VmRSS") * 1024
    for _ in range(steps):
        rule.train_step(v1, v2, None)
    _sync(dev)
    peak = (torch.cuda.max_memory_allocated() if dev.type == "cuda" else _rss_kib("VmHWM") * 1024) - base
    return {"mode": mode, "T": T, "peak_mib": peak / 2**20, "graph_mib": live_graph_bytes(rule, v1, v2) / 2**20,
            "threads": torch.get_num_threads(), "device": str(dev)}


def child_speed(T: int, batch: int, steps: int, warmup: int, device: str, width_scale: float) -> dict:
    rules = {m: _rule(m, T, batch, width_scale, device) for m in ("layer_local", "end_to_end")}
    times: dict[str, list[float]] = {m: [] for m in rules}
    for i in range(warmup + steps):
        for m, (rule, v1, v2, dev) in rules.items():  # alternate: both modes share the load of the moment
            t0 = time.perf_counter()
            rule.train_step(v1, v2, None)
            _sync(dev)
            if i >= warmup:
                times[m].append(time.perf_counter() - t0)
    med = {m: statistics.median(t) for m, t in times.items()}
    return {"T": T, "step_s": med, "images_per_s": {m: batch / s for m, s in med.items()},
            "ratio": med["end_to_end"] / med["layer_local"]}


def _run_child(args: list[str]) -> dict:
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072"}
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "child failed")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--timesteps", default="10,25,50", help="comma-separated T values (default 10,25,50)")
    p.add_argument("--batch", type=int, default=16, help="images per step (two views each)")
    p.add_argument("--steps", type=int, default=3, help="timed steps per mode")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--width-scale", type=float, default=1.0, help="VGG-11 channel multiplier (1 = the paper's)")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--child-T", type=int, default=0, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    common = (a.batch, a.steps, a.warmup, a.device, a.width_scale)
    if a.child == "speed":
        print(json.dumps(child_speed(a.child_T, *common)))
        return 0
    if a.child:
        print(json.dumps(child_memory(a.child, a.child_T, *common)))
        return 0
    try:
        Ts = [int(t) for t in a.timesteps.split(",") if t.strip()]
    except ValueError:
        print(f"snn_memory: error: --timesteps must list integers, got {a.timesteps!r}", file=sys.stderr)
        return 2
    if not Ts or min(Ts) < 1 or a.batch < 2 or a.steps < 1:
        print("snn_memory: error: --timesteps must be >= 1, --batch >= 2 and --steps >= 1", file=sys.stderr)
        return 2
    if a.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            print("snn_memory: error: --device cuda requested but torch sees no CUDA GPU", file=sys.stderr)
            return 2
    flags = ["--batch", str(a.batch), "--steps", str(a.steps), "--warmup", str(a.warmup), "--device", a.device,
             "--width-scale", str(a.width_scale)]
    rows = []
    try:
        for T in Ts:
            mem = {m: _run_child(["--child", m, "--child-T", str(T), *flags]) for m in ("layer_local", "end_to_end")}
            speed = _run_child(["--child", "speed", "--child-T", str(T), *flags])
            rows.append((T, mem, speed))
    except RuntimeError as e:
        print(f"snn_memory: error: {e}", file=sys.stderr)
        return 1
    dev, threads = rows[0][1]["layer_local"]["device"], rows[0][1]["layer_local"]["threads"]
    kind = "CUDA max_memory_allocated" if dev.startswith("cuda") else "peak RSS"
    print(f"spiking VGG-11 (width x{a.width_scale}, snntorch Leaky, direct input), 3x32x32, batch {a.batch} "
          f"(two views each), {a.steps} timed steps per mode, device {dev}, torch threads {threads}")
    print(f"| T | graph LL (MiB) | graph E2E (MiB) | graph ratio | {kind} LL (MiB) | {kind} E2E (MiB) | "
          "peak ratio | images/s LL | images/s E2E | throughput ratio LL/E2E |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for T, mem, sp in rows:
        ll, e2e = mem["layer_local"], mem["end_to_end"]
        print(f"| {T} | {ll['graph_mib']:.1f} | {e2e['graph_mib']:.1f} | "
              f"{ll['graph_mib'] / max(e2e['graph_mib'], 1e-9):.2f} | {ll['peak_mib']:.0f} | {e2e['peak_mib']:.0f} | "
              f"{ll['peak_mib'] / max(e2e['peak_mib'], 1e-9):.2f} | {sp['images_per_s']['layer_local']:.2f} | "
              f"{sp['images_per_s']['end_to_end']:.2f} | {sp['ratio']:.2f} |")
    print("targets at T = 25: throughput ratio >= 1.0, peak memory ratio <= 0.5")
    return 0


if __name__ == "__main__":
    sys.exit(main())
