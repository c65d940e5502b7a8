"""DPC training speed on Gabor sequences: clips per second and peak memory, CPU or GPU.

Times ``--steps`` training steps (after ``--warmup`` untimed ones) of the DPC rule exactly as
``ratespike train dpc`` runs them (clip generation included, then separately without it), and prints one line
per measurement. Peak memory is the process's peak resident set size on CPU (``ru_maxrss``, whole process)
and ``torch.cuda.max_memory_allocated`` on GPU.

Examples
--------
OMP_NUM_THREADS=1 python benchmarks/dpc_speed.py                                  # CPU preset (small3d, 64 px)
OMP_NUM_THREADS=1 python benchmarks/dpc_speed.py --protocol paper --steps 2       # ResNet-18, 128 px on CPU
python benchmarks/dpc_speed.py --protocol paper --device cuda --steps 50          # GPU
"""
from __future__ import annotations

import argparse
import dataclasses
import resource
import sys
import time


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__[__doc__.index("Examples"):])
    p.add_argument("--protocol", choices=("cpu", "paper"), default="cpu")
    p.add_argument("--device", default="cpu")
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default 1)")
    args = p.parse_args(argv)

    import numpy as np
    import torch

    from bridge.errors import RatespikeError
    from ratenets.rules.dpc import DPC, cpu_preset, dense_infonce, paper_preset
    from ratenets.train import resolve_device

    torch.set_num_threads(args.threads)
    try:
        device = resolve_device(args.device)
        cfg = cpu_preset() if args.protocol == "cpu" else paper_preset()
        cfg = dataclasses.replace(cfg, baseline_epoch=False, probe_clips_per_type=8, unexpected_onset_epoch=1,
                                  hook_clips=64,  # the hook set is not timed; keep its memory out of the peak
                                  **({"batch_size": args.batch_size} if args.batch_size else {}))
        torch.manual_seed(0)
        rule = DPC(cfg, DPC.load_data(cfg, "gabor", None), seeds=(0,), device=device)
    except RatespikeError as e:
        print(f"dpc_speed: error: {e}", file=sys.stderr)
        return 2
    rng = np.random.default_rng(0)
    cuda = device.type == "cuda"

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    def step(video: torch.Tensor) -> None:
        pred, target = rule.net(rule.to_input(video), cfg.pred_step)
        loss, _, _ = dense_infonce(pred, target)
        rule.opt.zero_grad(set_to_none=True)
        loss.mean().backward()
        rule.opt.step()

    rule.net.train()
    fixed = rule.gen.clips(cfg.batch_size, cfg.frames, rng, unexpected=True).video
    for _ in range(args.warmup):
        step(fixed)
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    sync()
    t0 = time.perf_counter()
    gen_s = 0.0
    for _ in range(args.steps):
        g0 = time.perf_counter()
        video = rule.gen.clips(cfg.batch_size, cfg.frames, rng, unexpected=True).video
        gen_s += time.perf_counter() - g0
        step(video)
    sync()
    total = time.perf_counter() - t0
    clips = args.steps * cfg.batch_size
    peak = (torch.cuda.max_memory_allocated(device) / 2 ** 20 if cuda
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    kind = "GPU allocated" if cuda else "process RSS"
    print(f"dpc {args.protocol}: encoder {cfg.encoder}, {cfg.img_px} px, batch {cfg.batch_size}, "
          f"{cfg.num_seq}x{cfg.seq_len} frames, device {device}, threads {args.threads}")
    print(f"  training incl. clip generation: {clips / total:.2f} clips/s ({total / args.steps:.3f} s/step)")
    print(f"  training excl. clip generation: {clips / (total - gen_s):.2f} clips/s "
          f"(generation {gen_s / args.steps:.3f} s/step)")
    print(f"  peak memory ({kind}): {peak:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
