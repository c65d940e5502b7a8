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

``--from-run RUN.nc`` times the learning phase as the paper's runs see it: it continues a copy of a segmented
``lpl-network`` results file (one written past its priming, e.g. by ``analyses/lpl_spiking.py run``) for
``--duration`` seconds from the complete state saved in it (weights, traces, rate estimates, iSTDP balance), on
the cached binary of that run's model, and times only that continuation. The rates printed are those of the
timed window.

``--auryn-dir DIR`` times the original beside it: DIR holds ``sim_lpl_spiking`` built from the public
repository (``fmi-basel/latent-predictive-learning/spiking_simulations`` against Auryn 36b3c197, following its
README, in a temporary directory: neither its code nor a build recipe is part of ratespike) and the input files
its Makefile makes (``rates0.dat`` .. ``rates4.dat``, ``local_inh_connectivity.wmat``). The script runs it
with the flags of ``run_snn_augmented_grad.sh`` (``--fast-rms`` / a fast-RMS ``--from-run`` file) or of
``run_snn.sh``, on one process, with ``--simtime`` = ``--duration``; Auryn primes for 3 tau_mean = 1800 s
first. The learning phase is timed from the moment Auryn prints "Simulating ..." to the moment it prints
"Saving neurons state ..." (read from its stdout as it streams), and its E and I rates are read from its
population-rate files over the learning window (100 s bins; for a shorter learning window the E rate is the
mean of the online rate its progress bar prints, and the I rate is not available).

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
import time

FULL_PROTOCOL_S = 1800.0 + 100_000.0
STEP_S = 1e-4


def _continue_run(args: argparse.Namespace) -> None:
    """Continue a copy of a segmented results file for ``--duration`` s; print a JSON line (the child's output)."""
    import shutil

    from bridge.config import replace_config
    from bridge.io import open_group, open_run
    from spiking.experiments import lpl_network as ln

    with tempfile.TemporaryDirectory(prefix="ratespike-bench-") as tmp:
        copy = os.path.join(tmp, "run.nc")
        shutil.copyfile(args.from_run, copy)
        ds0 = open_run(copy)
        groups0 = {g: open_group(copy, g) for g in ("raw", "state")}
        cfg0 = ln.config_from_json(ds0.attrs["config"])
        done = float(ds0.attrs["simulated_until_s"])
        cfg = replace_config(cfg0, {"duration_s": done + args.duration, "segment_s": args.duration,
                                    "record_last_s": args.duration})
        ds, _ = ln.simulate(cfg, seed=int(ds0.attrs["seed"]), device="cpp_standalone", build_root=args.build_root,
                            resume_from=(ds0, groups0))
    a = ds.attrs
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(json.dumps({"device": "cpp_standalone", "threads": 1, "scale": 1,
                      "n_lpl_synapses": int(ds.sizes["synapse_input"]), "simulated_s": float(a["last_segment_simulated_s"]),
                      "wall_s": float(a["last_segment_wall_time_s"]), "build_s": a["build_time_s"],
                      "cpu_s": a["cpu_time_s"], "prime_s": 0.0, "prime_wall_s": 0.0, "from_s": done,
                      "plasticity_start_s": float(cfg.rule.plasticity_start_s), "fast_rms": bool(cfg.rule.fast_rms),
                      "peak_rss_mb": kids / 1024.0, "rate_E_hz": float(ds["rate_window_E"].mean()),
                      "rate_I_hz": float(ds["rate_window_I"].mean()) if "rate_window_I" in ds else 0.0}))


#: flags of the original's run scripts (spiking_simulations/run_snn_augmented_grad.sh and run_snn.sh)
AURYN_COMMON = ["--seed", "123", "--sparseness", "0.1", "--ampa", "1", "--ne", "100", "--ni", "25", "--wext", "0.15",
                "--wee", "0.0", "--wei", "0.5", "--wii", "0.4", "--wie", "0.5", "--psize", "100", "--plen", "4",
                "--tau_mean", "600", "--tau_sigma2", "30", "--phi", "1", "--lambda", "1", "--zeta", "1e-3",
                "--kappa", "10", "--tau_weight_decay", "1e9", "--ieplastic"]


def _auryn(args: argparse.Namespace, fast: bool) -> dict:
    """Run the original's sim_lpl_spiking once; time its learning phase from its streamed stdout."""
    exe = os.path.join(args.auryn_dir, "sim_lpl_spiking")
    if not os.access(exe, os.X_OK):
        raise SystemExit(f"--auryn-dir: no executable sim_lpl_spiking in {args.auryn_dir!r}")
    out = tempfile.mkdtemp(prefix="auryn-out-")
    eta = "1e-2"  # ETA of both run_snn_augmented_grad.sh and run_snn.sh
    cmd = [exe, *(["--augment_gradient"] if fast else []), "--simtime", repr(args.duration), "--dir", out,
           "--eta", eta, *AURYN_COMMON]
    env = dict(os.environ, HWLOC_COMPONENTS="-gl", OMP_NUM_THREADS="1")
    marks: dict[str, float] = {}
    buf = b""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=args.auryn_dir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    while True:
        chunk = proc.stdout.read1(4096)
        now = time.perf_counter()
        if not chunk:
            break
        buf += chunk
        for key, text in (("prime", b"Priming ..."), ("learn", b"Simulating ..."), ("save", b"Saving neurons state")):
            if key not in marks and text in buf:
                marks[key] = now
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = rc = os.waitstatus_to_exitcode(status)
    end = time.perf_counter()
    if rc != 0 or "learn" not in marks:
        tail = buf.decode(errors="replace").strip().splitlines()[-3:]
        raise SystemExit(f"auryn run failed (exit {rc}): {' | '.join(tail)}")
    stop = marks.get("save", end)
    prime_s = 1800.0

    def rate(name: str) -> float:
        import numpy as np

        files = [f for f in os.listdir(out) if f".{name}." in f"." + f and f.endswith(".prate")]
        if not files:
            return float("nan")
        d = np.loadtxt(os.path.join(out, files[0]))
        d = d[d[:, 0] > prime_s]
        return float(d[:, 1].mean()) if len(d) else float("nan")

    res = {"device": "auryn (original)", "simulated_s": float(args.duration), "wall_s": stop - marks["learn"],
           "prime_wall_s": marks["learn"] - marks.get("prime", t0), "prime_s": prime_s, "build_s": 0.0,
           "rate_E_hz": _progress_rate(buf, rate("exc")), "rate_I_hz": rate("inh"),
           "n_lpl_synapses": _auryn_synapses(out),
           "peak_rss_mb": usage.ru_maxrss / 1024.0}
    import shutil

    shutil.rmtree(out, ignore_errors=True)
    return res


def _progress_rate(buf: bytes, fallback: float) -> float:
    """E rate of Auryn's learning phase: the mean of the online rate its progress bar prints ("f=... Hz", the E
    group, tau_chk) after "Simulating ..."; the population-rate file (100 s bins) when it has a learning bin."""
    import re

    if fallback == fallback:  # a learning bin exists in the prate file
        return fallback
    text = buf.split(b"Simulating ...", 1)[-1].decode(errors="replace")
    vals = [float(v) for v in re.findall(r"f=([0-9.eE+-]+) Hz", text)]
    return sum(vals) / len(vals) if vals else float("nan")


def _auryn_synapses(out: str) -> int:
    """Nonzero entries of the input connection's weight matrix (Matrix Market file written at the end)."""
    for f in os.listdir(out):
        if "input_con" in f and f.endswith(".wmat"):
            with open(os.path.join(out, f)) as fh:
                for line in fh:
                    if not line.startswith("%"):
                        return int(line.split()[2])
    return 0


def _child(args: argparse.Namespace) -> None:
    """Run one measurement in this process and print a JSON line."""
    if args.from_run:
        _continue_run(args)
        return

    from bridge.config import replace_config
    from spiking.experiments import lpl_network as ln

    s = args.scale
    prime = args.priming if args.devices[0] == "cpp_standalone" else 0.0
    total = prime + args.duration
    cfg = ln.config(duration_s=total, plasticity_start_s=prime, n_per_population=100 * s, n_exc=100 * s,
                    n_inh=25 * s, ei_width=20.0 * s, record_input_spikes=False, record_last_s=args.duration,
                    rate_bin_s=max(1.0, args.duration / 10), weight_snapshot_s=total, trace_dt_s=total,
                    segment_s=prime if prime > 0 else 0.0)
    if args.fast_rms:
        cfg = replace_config(cfg, {"fast_rms": True})
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
    p.add_argument("--from-run", default=None, help="continue a copy of this segmented lpl-network results file "
                   "(past its priming) and time that learning (cpp_standalone)")
    p.add_argument("--build-root", default=None, help="build cache of --from-run's binary (default: the user cache)")
    p.add_argument("--auryn-dir", default=None, help="directory of the original's built sim_lpl_spiking, timed beside")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        _child(args)
        return 0
    what = (f"{args.duration:g} s of learning continued from --from-run" if args.from_run else
            f"{args.duration:g} s of learning timed after {args.priming:g} s of priming (cpp_standalone)")
    print(f"# Fig. 5 LPL network, scale {args.scale}, {what}; load average {os.getloadavg()[0]:.2f} on "
          f"{os.cpu_count()} CPUs, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    print(f"{'device':16s} {'thr':>3s} {'build_s':>8s} {'wall_s':>8s} {'RTF':>7s} {'us/step':>8s} "
          f"{'peak_MB':>8s} {'E_Hz':>6s} {'I_Hz':>6s} {'syn_upd/s':>10s} {'full protocol':>14s} {'RTF_prime':>9s}")
    if args.auryn_dir and not os.access(os.path.join(args.auryn_dir, "sim_lpl_spiking"), os.X_OK):
        raise SystemExit(f"--auryn-dir: no executable sim_lpl_spiking in {args.auryn_dir!r}")
    fast = args.fast_rms
    if args.from_run:
        import xarray as xr

        if not os.path.isfile(args.from_run):
            raise SystemExit(f"--from-run: no file {args.from_run!r}")
        with xr.open_dataset(args.from_run) as ds:
            cfg = ln.config_from_json(ds.attrs["config"])  # schema 1 (flat) or 2 (composed)
            print(f"# continuing {args.from_run} from {float(ds.attrs['simulated_until_s']):g} s (plasticity from "
                  f"{cfg.rule.plasticity_start_s:g} s, fast_rms={cfg.rule.fast_rms})")
            fast = bool(cfg.rule.fast_rms)
            if float(ds.attrs["simulated_until_s"]) < float(cfg.rule.plasticity_start_s):
                raise SystemExit("--from-run: that file has not reached its learning phase yet")
    jobs = [(dev, th) for dev in (["cpp_standalone"] if args.from_run else args.devices)
            for th in (args.threads if dev == "cpp_standalone" else [1])]
    if args.auryn_dir:
        jobs.append(("auryn", 1))
    for dev, th in jobs:
            if dev == "auryn":
                m = _auryn(args, fast)
                dev = m["device"]
                m["cpu_s"] = m["wall_s"]
            else:
                cmd = [sys.executable, __file__, "--child", "--duration", str(args.duration), "--devices", dev,
                       "--threads", str(th), "--scale", str(args.scale), "--priming", str(args.priming)] + (
                           ["--fast-rms"] if args.fast_rms else []) + (
                           ["--from-run", args.from_run] if args.from_run else []) + (
                           ["--build-root", args.build_root] if args.build_root else [])
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
