"""Speed and memory of the Fig. 5 spiking LPL network (Halvagal & Zenke 2023) per Brian2 device.

For each (device, threads, scale) the script runs ``spiking.experiments.lpl_network.simulate`` in a fresh
subprocess and prints: build time, simulation wall time, real-time factor (simulated seconds per wall
second), the same per CPU second of the simulation (``RTF_cpu``, less sensitive to other processes on a
shared machine), peak resident memory of the process tree (Python + compiled binary), the per-step cost, the
plastic-synapse updates per second and the projected wall time of the paper's full protocol (1800 s priming
+ 100 000 s). ``scale`` multiplies inputs, E and I cells.

On cpp_standalone the figure that matters is the speed *during learning*: ``--priming S`` runs S seconds of
frozen priming as a first segment of the run and reports the second (learning) segment alone (``RTF``), the
rates it ran at (E, I), and the priming segment apart (``RTF_prime``). The paper's priming is 1800 s; a
shorter one leaves the rate estimate below the true rate (tau_mean = 600 s), so state the priming length
beside any figure. Runtime-device runs report the whole run.

Auryn is not built or timed by this script: the comparison with the original needs the Auryn code built
from its public repository in a temporary directory and run side by side on an idle core.

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
    prime = args.priming if args.devices[0] == "cpp_standalone" else 0.0
    total = prime + args.duration
    cfg = ln.config(duration_s=total, plasticity_start_s=prime, n_per_population=100 * s, n_exc=100 * s,
                    n_inh=25 * s, ei_width=20.0 * s, record_input_spikes=False, record_last_s=args.duration,
                    rate_bin_s=max(1.0, args.duration / 10), weight_snapshot_s=total, trace_dt_s=total,
                    segment_s=prime if prime > 0 else 0.0)
    if args.fast_rms:
        cfg = dataclasses.replace(cfg, fast_rms=True)
    with tempfile.TemporaryDirectory(prefix="ratespike-bench-") as root:
        ds, _ = ln.simulate(cfg, seed=0, device=args.devices[0], threads=args.threads[0], build_root=root)
    a = ds.attrs
    learn_wall = float(a.get("last_segment_wall_time_s", a["wall_time_s"])) if prime > 0 else a["wall_time_s"]
    learn_sim = float(a.get("last_segment_simulated_s", a["simulated_time_s"])) if prime > 0 else a["simulated_time_s"]
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(json.dumps({"device": a["device"], "threads": int(a["openmp_threads"]), "scale": s,
                      "n_lpl_synapses": int(ds.sizes["synapse_input"]), "simulated_s": learn_sim,
                      "wall_s": learn_wall, "build_s": a["build_time_s"], "cpu_s": a["cpu_time_s"],
                      "prime_s": prime, "prime_wall_s": a["wall_time_s"] - learn_wall if prime > 0 else 0.0,
                      "peak_rss_mb": max(own, kids) / 1024.0, "rate_E_hz": float(ds["rate_window_E"].mean()),
                      "rate_I_hz": float(ds["rate_window_I"].mean()) if "rate_window_I" in ds else 0.0}))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--duration", type=float, default=20.0, help="simulated seconds per measurement")
    p.add_argument("--devices", nargs="+", default=["cpp_standalone"],
                   help="runtime, cpp_standalone, cuda_standalone")
    p.add_argument("--threads", nargs="+", type=int, default=[1], help="OpenMP threads (cpp_standalone)")
    p.add_argument("--scale", type=int, default=1, help="multiply inputs and cells by this factor")
    p.add_argument("--fast-rms", action="store_true", help="the RMS-normalised LPL variant")
    p.add_argument("--priming", type=float, default=100.0,
                   help="cpp_standalone: seconds of frozen priming before the timed learning segment "
                        "(paper 1800; a whole number of 0.5 s steps)")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        _child(args)
        return 0
    print(f"# Fig. 5 LPL network, scale {args.scale}, {args.duration:g} s of learning timed after {args.priming:g} s "
          f"of priming (cpp_standalone); load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    print(f"{'device':16s} {'thr':>3s} {'build_s':>8s} {'wall_s':>8s} {'RTF':>7s} {'us/step':>8s} "
          f"{'peak_MB':>8s} {'E_Hz':>6s} {'I_Hz':>6s} {'syn_upd/s':>10s} {'full protocol':>14s} {'RTF_prime':>9s}")
    for dev in args.devices:
        for th in (args.threads if dev == "cpp_standalone" else [1]):
            cmd = [sys.executable, __file__, "--child", "--duration", str(args.duration), "--devices", dev,
                   "--threads", str(th), "--scale", str(args.scale), "--priming", str(args.priming)] + (
                       ["--fast-rms"] if args.fast_rms else [])
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
            upd = m["n_lpl_synapses"] * (m["simulated_s"] / STEP_S) / m["wall_s"]  # per-step eligibility updates
            rtf_p = m["prime_s"] / m["prime_wall_s"] if m["prime_wall_s"] > 0 else float("nan")
            print(f"{dev:16s} {th:3d} {m['build_s']:8.1f} {m['wall_s']:8.2f} {rtf:7.2f} {us:8.1f} "
                  f"{m['peak_rss_mb']:8.0f} {m['rate_E_hz']:6.2f} {m['rate_I_hz']:6.2f} {upd:10.3g} {hours:11.1f} h "
                  f"{rtf_p:9.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
