"""Spiking LPL network (Halvagal & Zenke 2023, Fig. 5) vs its rate twin, on the same input signals and seed.

Simulates the Fig. 5 network in Brian2 (or reuses a finished run with ``--spiking-file``), trains the rate
twin (:mod:`ratenets.twin`) on the same five population rate time courses, drives it with the time course
of the spiking network's recorded window, and reports side by side: decoding R^2 per input population,
selectivity histograms, participation ratio, and CKA/RSA between the two networks' E responses to the same
input time course. Writes ``spiking.nc``, ``twin.nc``, ``rate_vs_spiking.nc`` (+ ``.png``) and
``compare_cka.nc`` into ``--out``.

Example (the run in docs/results/rate_vs_spiking.md)::

    OMP_NUM_THREADS=1 python analyses/rate_vs_spiking.py --duration 1200 --record-last 100 \\
        --set plasticity_start_s=200 --set fast_rms=true --seed 0 --out results/rate_vs_spiking
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="rate_vs_spiking", help="output folder (default ./rate_vs_spiking)")
    p.add_argument("--seed", type=int, default=0, help="seed of both networks (default 0)")
    p.add_argument("--duration", type=float, default=1200.0, help="simulated seconds of the spiking run")
    p.add_argument("--record-last", type=float, default=100.0,
                   help="seconds at the end whose 25 ms bins are compared (default 100, the paper's)")
    p.add_argument("--device", default="cpp_standalone", help="Brian2 device: runtime, cpp_standalone, "
                   "cuda_standalone (default cpp_standalone)")
    p.add_argument("--twin-device", default="cpu", help="torch device of the twin: cpu or cuda")
    p.add_argument("--twin-train", type=float, default=600.0,
                   help="seconds of the input signals the twin trains on (default 600)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE",
                   help="override a field of the spiking network's config (repeatable)")
    p.add_argument("--twin-set", dest="twin_overrides", action="append", default=[], metavar="FIELD=VALUE",
                   help="override a field of the rate twin's config (repeatable)")
    p.add_argument("--spiking-file", default=None, help="reuse a finished 'ratespike spike lpl-network' file")
    p.add_argument("--no-progress", action="store_true")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from bridge.errors import RatespikeError

    try:
        return _run(args)
    except RatespikeError as e:
        print(f"rate_vs_spiking: error: {e}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    import torch

    from bridge.commands.rate_vs_spiking import run_spiking, run_twin, spiking_config
    from bridge.compare import compare_runs, format_table
    from bridge.errors import ConfigError
    from bridge.io import check_writable, write_run
    from bridge.rate_vs_spiking import side_by_side

    torch.set_num_threads(1)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {str(out)!r} exists and is not a folder")
    if args.seed < 0 or args.duration <= 0 or args.record_last <= 0 or args.twin_train <= 0:
        raise ConfigError("--seed must be >= 0 and --duration, --record-last, --twin-train > 0")
    show = not args.no_progress
    spk = Path(args.spiking_file) if args.spiking_file else check_writable(out / "spiking.nc")
    if args.spiking_file is None:
        cfg = spiking_config(args.duration, min(args.record_last, args.duration), set_items=args.overrides)
        print(f"[1/3] spiking Fig. 5 network, {args.duration:g} s on {args.device}", file=sys.stderr)
        run_spiking(cfg, spk, seed=args.seed, device=args.device, progress=show and sys.stderr.isatty())
    twin = check_writable(out / "twin.nc")
    print(f"[2/3] rate twin, {args.twin_train:g} s of the same input signals", file=sys.stderr)
    run_twin(spk, twin, seed=args.seed, train_s=args.twin_train, twin_overrides=args.twin_overrides,
             device=args.twin_device, progress=show and sys.stderr.isatty())
    print("[3/3] side by side", file=sys.stderr)
    ds = side_by_side(spk, twin, out / "rate_vs_spiking.nc", png=out / "rate_vs_spiking.png")
    cka = compare_runs(spk, twin, "cka")
    write_run(cka, out / "compare_cka.nc")
    pops = list(ds["population"].values)
    print("decoding R^2 per input population (held out): " + ", ".join(pops))
    for net in ds["network"].values:
        r2 = ds["decoding_r2"].sel(network=net).values
        pr = float(ds["participation_ratio"].sel(network=net))
        rate = float(ds["rate_exc"].sel(network=net))
        rel = ds["relative_selectivity"].sel(network=net).values
        import numpy as np

        rel = rel[np.isfinite(rel)]
        print(f"  {net:>9}: R^2 [{', '.join(f'{v:.2f}' for v in r2)}], PR {pr:.1f}, E rate {rate:.2f} Hz, "
              f"|relative selectivity| > 0.5 in {np.mean(np.abs(rel) > 0.5):.0%} of cells")
    print(f"similarity of the E responses: CKA {float(ds['cka']):.3f}, debiased CKA "
          f"{float(ds['cka_debiased']):.3f}, RSA {float(ds['rsa']):.3f}")
    print(format_table(cka))
    print(f"wrote {out}/: spiking.nc, twin.nc, rate_vs_spiking.nc, rate_vs_spiking.png, compare_cka.nc")
    return 0


if __name__ == "__main__":
    sys.exit(main())
