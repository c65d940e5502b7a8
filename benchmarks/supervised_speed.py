"""Speed and memory of the supervised rules of issue 3 on MNIST: one seed vs ten batched seeds.

Each (rule, seeds) pair runs in its own subprocess with the rule's MNIST preset (batch 20): a few warm-up
batches, then ``--batches`` timed training batches (wall and process CPU time) and a free-phase /
forward evaluation of ``--eval-images`` test images. It prints one Markdown row per pair: milliseconds per
batch, the extrapolated training epoch (3000 batches of 20) and 10 000-image test pass, each from wall
time and from process CPU time (the CPU figures are the ones that survive a shared, loaded machine),
and the peak resident memory of the process (CPU) or peak allocated GPU memory (CUDA).

The original CorInfoMax code needs about 613 s wall / 145 ms CPU per batch for one MNIST epoch on
this machine kind (spec, closing section: 2 threads, OMP_WAIT_POLICY=PASSIVE, load ~4).

Example::

    OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE python benchmarks/supervised_speed.py --rules corinfomax --seeds 1,10
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

RULES = ("corinfomax", "corinfomax-sparse", "ep", "csm", "pc", "pc-nudge", "fa", "bp")


def child(rule: str, n_seeds: int, batches: int, eval_images: int, device: str, data_root: str | None) -> dict:
    import torch

    from ratenets.rules import get_rule
    from ratenets.train import resolve_device

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    dev = resolve_device(device)
    cls = get_rule(rule)
    cfg = cls.preset("mnist")
    data = cls.load_data(cfg, "mnist", data_root)
    r = cls(cfg, data, seeds=tuple(range(n_seeds)), device=dev, progress=False)
    g = torch.Generator().manual_seed(0)
    bs = cfg.batch_size

    def batch():
        idx = torch.stack([torch.randperm(len(r.y_train), generator=g)[:bs] for _ in range(n_seeds)]).to(dev)
        return r.x_train[idx], r.y_train[idx]

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    step = (lambda x, y: r.step(x, y, 1)) if hasattr(r, "step") else r.train_batch
    for _ in range(3):
        step(*batch())
    sync()
    xs = [batch() for _ in range(batches)]
    w0, c0 = time.perf_counter(), time.process_time()
    for x, y in xs:
        step(x, y)
    sync()
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    xe = r.x_test[:eval_images].unsqueeze(0).expand(n_seeds, -1, -1)
    e0, ec0 = time.perf_counter(), time.process_time()
    with torch.no_grad():
        for i in range(0, eval_images, cfg.eval_batch_size):
            r.predict(xe[:, i:i + cfg.eval_batch_size])
    sync()
    ev, ev_cpu = time.perf_counter() - e0, time.process_time() - ec0
    mem = (torch.cuda.max_memory_allocated() / 2**20 if dev.type == "cuda"
           else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return {"rule": rule, "seeds": n_seeds, "ms_per_batch": 1e3 * wall / batches,
            "cpu_ms_per_batch": 1e3 * cpu / batches, "epoch_s": wall / batches * 3000,
            "cpu_epoch_s": cpu / batches * 3000, "eval_10k_s": ev * 10000 / eval_images,
            "eval_10k_cpu_s": ev_cpu * 10000 / eval_images, "peak_mb": mem, "device": device}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rules", default=",".join(RULES))
    p.add_argument("--seeds", default="1,10", help="seed counts to compare (default 1,10)")
    p.add_argument("--batches", type=int, default=100, help="timed training batches (default 100)")
    p.add_argument("--eval-images", type=int, default=1000, help="test images timed for evaluation")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--data-root", default=None)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child:
        print(json.dumps(child(a.rules, int(a.seeds), a.batches, a.eval_images, a.device, a.data_root)))
        return 0
    if a.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            print("supervised_speed: error: --device cuda but torch sees no CUDA GPU", file=sys.stderr)
            return 2
    print(f"# threads={os.environ.get('OMP_NUM_THREADS', 'unset')} device={a.device} batches={a.batches} "
          f"load average at start={os.getloadavg()[0]:.1f}")
    print("| rule | seeds | wall ms/batch | CPU ms/batch | train epoch s, wall | train epoch s, CPU | "
          "test 10k s, wall | test 10k s, CPU | peak MB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for rule in a.rules.split(","):
        for s in a.seeds.split(","):
            cmd = [sys.executable, __file__, "--child", "--rules", rule, "--seeds", s, "--batches", str(a.batches),
                   "--eval-images", str(a.eval_images), "--device", a.device]
            if a.data_root:
                cmd += ["--data-root", a.data_root]
            out = subprocess.run(cmd, capture_output=True, text=True)
            if out.returncode != 0:
                print(f"| {rule} | {s} | failed: {out.stderr.strip().splitlines()[-1:]} |||||||")
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"| {rule} | {s} | {r['ms_per_batch']:.1f} | {r['cpu_ms_per_batch']:.1f} | {r['epoch_s']:.0f} | "
                  f"{r['cpu_epoch_s']:.0f} | {r['eval_10k_s']:.1f} | {r['eval_10k_cpu_s']:.1f} | {r['peak_mb']:.0f} |",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
