"""Sweep throughput: the same CPU-bound points on a 2-worker Dask LocalCluster vs one after another.

Measured side by side in one run (so the machine load is shared):

1. **sequential**: every point's task (:func:`bridge.sweep.run_task`: one ``ratespike train`` child
   process) run in this process, one after another;
2. **dask, 2 workers**: the same tasks on a ``LocalCluster`` of 2 single-threaded worker processes (as
   ``ratespike sweep --workers 2`` does), once including the cluster start and once the tasks alone;
3. **overhead per point**: a Dask round trip of a no-op task on that cluster, and the start of one
   ``python -m bridge.cli --version`` child process (what every point pays beyond its training).

Runs ``--repeats`` rounds in alternating order and keeps each side's best. Prints the wall times, the ratios, the load average and the thread settings. Example::

    OMP_NUM_THREADS=1 python benchmarks/sweep_throughput.py --points 4 --epochs 2
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _noop(i: int) -> int:
    return i


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--points", type=int, default=4, help="grid points (one lr value each; default 4)")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--hidden", default="256", help="hidden width of the bp net on digits (default 256)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--noop-tasks", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=2, help="rounds, alternating the order (default 2)")
    args = ap.parse_args(argv)

    from bridge import sweep
    from bridge.commands.sweep import load

    load0 = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        lrs = ", ".join(f"{1e-3 * (1 + i / 10):.6g}" for i in range(args.points))

        def spec_for(name: str):
            p = tmp / f"{name}.toml"
            p.write_text(f'command = "train"\nout_dir = "{name}"\n[fixed]\nrule = "bp"\ndataset = "digits"\n'
                         f'epochs = {args.epochs}\nhidden = [{args.hidden}]\nseed = 0\n[grid]\nlr = [{lrs}]\n')
            return load(str(p))

        results: list[dict] = []
        t_seq = t_par = t_tasks = t_start = t_noop = float("inf")

        def sequential(k: int) -> float:
            tasks, _ = sweep.plan(spec_for(f"seq{k}"))
            assert len(tasks) == args.points, "bp with one seed per point: one task per point"
            t = time.perf_counter()
            results.extend(sweep.run_task(task) for task in tasks)
            return time.perf_counter() - t

        def on_dask(k: int) -> tuple[float, float, float, float]:
            spec = spec_for(f"par{k}")
            tasks, _ = sweep.plan(spec)
            t = time.perf_counter()
            client, close = sweep.connect(workers=args.workers, n_tasks=len(tasks))
            started = time.perf_counter() - t
            try:
                t1 = time.perf_counter()
                results.extend(sweep.execute(client, tasks, len(spec.points), 0, report=lambda line: None))
                only = time.perf_counter() - t1
                client.gather(client.map(_noop, range(20), pure=False))  # warm the workers
                t2 = time.perf_counter()
                client.gather(client.map(_noop, range(args.noop_tasks), pure=False))
                noop = (time.perf_counter() - t2) / args.noop_tasks
            finally:
                close()
            return time.perf_counter() - t, only, started, noop

        # alternate A B B A ... so that a load change during the run hits both sides alike; keep the best
        for k in range(args.repeats):
            order = ("seq", "dask") if k % 2 == 0 else ("dask", "seq")
            for what in order:
                if what == "seq":
                    t_seq = min(t_seq, sequential(k))
                else:
                    a, b, c, d = on_dask(k)
                    t_par, t_tasks, t_start, t_noop = min(t_par, a), min(t_tasks, b), min(t_start, c), min(t_noop, d)

        t = time.perf_counter()
        for _ in range(3):
            subprocess.run([sys.executable, "-m", "bridge.cli", "--version"], check=True, capture_output=True)
        t_child = (time.perf_counter() - t) / 3
    bad = [r for r in results if r["status"] != "ok"]
    if bad:
        print(f"points failed: {bad}", file=sys.stderr)
        return 1
    load1 = os.getloadavg()
    print(f"# {args.points} points: bp on digits, hidden {args.hidden}, {args.epochs} epochs, one ratespike "
          f"train child process each; OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, "
          f"{os.cpu_count()} cores, load average {load0[0]:.2f} before / {load1[0]:.2f} after; best of "
          f"{args.repeats} alternating rounds")
    print(f"sequential:                 {t_seq:8.2f} s")
    print(f"dask {args.workers} workers, with start: {t_par:8.2f} s   (cluster start {t_start:.2f} s)")
    print(f"dask {args.workers} workers, tasks only: {t_tasks:8.2f} s")
    print(f"throughput ratio (sequential / dask incl. start): {t_seq / t_par:.2f}x")
    print(f"throughput ratio (sequential / dask tasks only):  {t_seq / t_tasks:.2f}x")
    print(f"scheduler round trip per no-op task: {t_noop * 1e3:.2f} ms ({args.noop_tasks} tasks)")
    print(f"child process start per point (python -m bridge.cli --version): {t_child:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
