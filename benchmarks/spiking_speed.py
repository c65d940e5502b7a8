"""Speed and memory of the Fig. 5 spiking LPL network (Halvagal & Zenke 2023) per Brian2 device.

For each (device, threads, scale) the script runs ``spiking.experiments.lpl_network.simulate`` in a fresh
subprocess with plasticity on from t = 0 and prints: build time, simulation wall time, real-time factor
(simulated seconds per wall second), the same per CPU second of the simulation (``RTF_cpu``, less
sensitive to other processes on a shared machine), peak resident memory of the process tree (Python + compiled binary),
the per-step cost and the projected wall time of the paper's full protocol (1800 s priming + 100 000 s).
``scale`` multiplies inputs, E and I cells (the GPU target of issue 6 is scale 10).

Reference (lpl.md, last section): the original Auryn code runs this network at 3.4x real time on one idle
core of this machine kind (full protocol about 8.4 h).

Examples::

    OMP_NUM_THREADS=1 python benchmarks/spiking_speed.py --duration 20 --devices cpp_standalone --threads 1 2
    python benchmarks/spiking_speed.py --duration 5 --devices cuda_standalone --scale 10   # needs a GPU
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile

FULL_PROTOCOL_S = 1800.0 + 100_000.0
STEP_S = 1e-4


def _child(args: argparse.Namespace) -> None:
    """Run one measurement in this process and print a JSON line."""
    import dataclasses

    from spiking.experiments import lpl_network as ln

    s = args.scale
    cfg = ln.Config(duration_s=args.duration, plasticity_start_s=0.0, n_per_population=100 * s, n_exc=100 * s,
                    n_inh=25 * s, ei_width=20.0 * s, record_input_spikes=False, record_last_s=args.duration,
                    rate_bin_s=max(1.0, args.duration / 10), weight_snapshot_s=args.duration,
                    trace_dt_s=args.duration)
    if args.fast_rms:
        cfg = dataclasses.replace(cfg, fast_rms=True)
    with tempfile.TemporaryDirectory(prefix="ratespike-bench-") as root:
        ds, _ = ln.simulate(cfg, seed=0, device=args.devices[0], threads=args.threads[0], build_root=root)
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    a = ds.attrs
    print(json.dumps({"device": a["device"], "threads": int(a["openmp_threads"]), "scale": s,
                      "n_lpl_synapses": int(ds.sizes["synapse_input"]), "simulated_s": a["simulated_time_s"],
                      "wall_s": a["wall_time_s"], "build_s": a["build_time_s"], "cpu_s": a["cpu_time_s"],
                      "peak_rss_mb": max(own, kids) / 1024.0, "rate_E_hz": float(ds["rate_window_E"].mean())}))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--duration", type=float, default=20.0, help="simulated seconds per measurement")
    p.add_argument("--devices", nargs="+", default=["cpp_standalone"],
                   help="runtime, cpp_standalone, cuda_standalone")
    p.add_argument("--threads", nargs="+", type=int, default=[1], help="OpenMP threads (cpp_standalone)")
    p.add_argument("--scale", type=int, default=1, help="multiply inputs and cells by this factor")
    p.add_argument("--fast-rms", action="store_true", help="the RMS-normalised LPL variant")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        _child(args)
        return 0
    print(f"# Fig. 5 LPL network, scale {args.scale}, {args.duration:g} s simulated, plasticity on; "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    print(f"{'device':16s} {'thr':>3s} {'build_s':>8s} {'wall_s':>8s} {'RTF':>7s} {'us/step':>8s} "
          f"{'peak_MB':>8s} {'E_Hz':>6s} {'full protocol':>14s} {'cpu_s':>7s} {'RTF_cpu':>7s}")
    for dev in args.devices:
        for th in (args.threads if dev == "cpp_standalone" else [1]):
            cmd = [sys.executable, __file__, "--child", "--duration", str(args.duration), "--devices", dev,
                   "--threads", str(th), "--scale", str(args.scale)] + (["--fast-rms"] if args.fast_rms else [])
            env = dict(os.environ, OMP_NUM_THREADS=str(th), OMP_WAIT_POLICY="PASSIVE")
            r = subprocess.run(cmd, capture_output=True, text=True, env=env)
            lines = [ln_ for ln_ in r.stdout.splitlines() if ln_.startswith("{")]
            if r.returncode != 0 or not lines:
                tail = (r.stderr.strip().splitlines() or ["?"])[-1]
                print(f"{dev:16s} {th:3d} failed: {tail}")
                continue
            m = json.loads(lines[-1])
            rtf = m["simulated_s"] / m["wall_s"]
            us = m["wall_s"] / (m["simulated_s"] / STEP_S) * 1e6
            hours = FULL_PROTOCOL_S / rtf / 3600
            print(f"{dev:16s} {th:3d} {m['build_s']:8.1f} {m['wall_s']:8.2f} {rtf:7.2f} {us:8.1f} "
                  f"{m['peak_rss_mb']:8.0f} {m['rate_E_hz']:6.2f} {hours:11.1f} h {m['cpu_s']:7.2f} "
                  f"{m['simulated_s'] / max(m['cpu_s'], 1e-9):7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
