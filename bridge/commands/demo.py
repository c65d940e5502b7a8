"""``ratespike demo``: the main job end to end, offline, on data that ship with the install.

1. trains a small LPL rate network (layer-local, self-supervised) and its backprop twin (the supervised
   MLP baseline) on the same images (default: scikit-learn's 8x8 digits, which ship with scikit-learn and
   need no download; ``--dataset mnist`` and the others when their data are present);
2. compares what they learned, every LPL layer against every backprop layer (linear CKA and RSA on the
   same 1000-image probe set);
3. runs a short simulation of the spiking LPL network of Halvagal & Zenke (2023), Fig. 5, in Brian2, and
   trains its rate twin on the same input signals and seed;
4. compares those two (decoding R^2 per input population, selectivity, participation ratio, CKA/RSA).

Every step writes NetCDF into the output folder and the figures as PNG beside them; progress goes to
stderr, the summary and the file list to stdout.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HELP = ("run the demo end to end offline: LPL and backprop rate nets, a spiking LPL network and its rate "
        "twin, compared; NetCDF files and PNG figures in an output folder")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="ratespike-demo", help="output folder (default ./ratespike-demo)")
    p.add_argument("--dataset", default="digits", help="digits (default, ships with the install), mnist, "
                   "fashion-mnist, ... when their data are present")
    p.add_argument("--epochs", type=int, default=None,
                   help="training epochs of both rate nets (default: 10 backprop / 5 LPL on digits, 1 otherwise)")
    p.add_argument("--seed", type=int, default=0, help="seed of every model (default 0)")
    p.add_argument("--data-root", default=None)
    p.add_argument("--spike-duration", type=float, default=20.0,
                   help="simulated seconds of the spiking network (default 20)")
    p.add_argument("--spike-device", default="cpp_standalone",
                   help="Brian2 device: cpp_standalone (default), runtime, cuda_standalone")
    p.add_argument("--twin-train", type=float, default=120.0,
                   help="seconds of the input signals the rate twin trains on (default 120)")
    p.add_argument("--device", default="cpu", help="torch device of the rate nets: cpu or cuda (default cpu)")
    p.add_argument("--no-progress", action="store_true", help="no progress lines on stderr")


def run(args: argparse.Namespace) -> int:
    from bridge.errors import ConfigError

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {str(out)!r} exists and is not a folder")
    if args.seed < 0:
        raise ConfigError(f"--seed must be >= 0, got {args.seed}")
    if args.epochs is not None and args.epochs < 1:
        raise ConfigError(f"--epochs must be >= 1, got {args.epochs}")
    if not args.spike_duration > 0:
        raise ConfigError(f"--spike-duration must be > 0 seconds, got {args.spike_duration:g}")
    if not args.twin_train > 0:
        raise ConfigError(f"--twin-train must be > 0 seconds, got {args.twin_train:g}")
    from bridge.io import check_writable
    from ratenets.data import check_dataset_name
    from ratenets.train import resolve_device
    from spiking.devices import check_device

    check_dataset_name(args.dataset)
    resolve_device(args.device)
    check_device(args.spike_device)
    check_writable(out / "bp.nc")

    show = not args.no_progress
    t_start = time.monotonic()
    files: list[Path] = []
    lines: list[str] = []

    def step(k: int, text: str) -> None:
        if show:
            print(f"[{k}/6 {time.monotonic() - t_start:5.0f} s] {text}", file=sys.stderr, flush=True)

    # --- 1-2: the two rate nets on images ------------------------------------------------------------------
    runs = {}
    for k, rule in ((1, "lpl"), (2, "bp")):
        path, ds, epochs = _train(rule, args, out, show, lambda text, k=k: step(k, text))
        runs[rule] = path
        files.append(path)
        from bridge.plots import plot_curves
        from bridge.summary import final_metrics

        files.append(plot_curves(ds, out / f"{rule}_curves.png"))
        lines.append(f"{rule} on {args.dataset} ({epochs} epochs): {final_metrics(ds)}")

    # --- 3: what the two rate nets learned, layer by layer -----------------------------------------------
    step(3, "comparing LPL and backprop layer by layer (CKA, RSA on the same probe images)")
    from bridge.compare import compare_runs, format_table
    from bridge.io import write_run
    from bridge.plots import plot_comparison

    for measure in ("cka", "rsa"):
        cmp = compare_runs(runs["lpl"], runs["bp"], measure)
        path = write_run(cmp, out / f"compare_lpl_bp_{measure}.nc")
        files += [path, plot_comparison(cmp, out / f"compare_lpl_bp_{measure}.png")]
        lines.append(f"{measure}, LPL layers (rows) vs backprop layers (columns):\n" + format_table(cmp))

    # --- 4-6: the spiking network and its rate twin ------------------------------------------------------
    from bridge.commands import rate_vs_spiking as rvs

    record = min(10.0, args.spike_duration)
    # a short run: plasticity from the start with the RMS-normalised step (run_snn_augmented_grad.sh), so
    # that weights move within seconds; the paper primes 1800 s and then learns for 100 000 s
    cfg = rvs.spiking_config(args.spike_duration, record, overrides={"plasticity_start_s": 0.0, "fast_rms": True})
    step(4, f"spiking LPL network (Fig. 5), {args.spike_duration:g} s simulated on {args.spike_device} "
         "(cpp_standalone compiles first: about a minute)")
    spk = rvs.run_spiking(cfg, out / "spiking.nc", seed=args.seed, device=args.spike_device,
                          progress=show and sys.stderr.isatty())
    files.append(spk)
    step(5, f"rate twin on the same input signals ({args.twin_train:g} s), seed {args.seed}")
    twin = rvs.run_twin(spk, out / "twin.nc", seed=args.seed, train_s=args.twin_train,
                        twin_overrides=["epochs=5"], device=args.device, progress=show and sys.stderr.isatty())
    files.append(twin)
    step(6, "comparing the spiking network and its rate twin")
    # a 10 s window: hold out its last 2 s (the paper holds out the last 5 s of 100 s)
    side = rvs.side_by_side(spk, twin, out / "rate_vs_spiking.nc", png=out / "rate_vs_spiking.png",
                            test_fraction=0.2)
    files += [out / "rate_vs_spiking.nc", out / "rate_vs_spiking.png"]
    pops = ", ".join(str(p) for p in side["population"].values)
    for net in side["network"].values:
        r2 = side["decoding_r2"].sel(network=net).values
        lines.append(f"{net}: decoding R^2 [{pops}] = [{', '.join(f'{v:.2f}' for v in r2)}], "
                     f"PR {float(side['participation_ratio'].sel(network=net)):.1f}, "
                     f"E rate {float(side['rate_exc'].sel(network=net)):.2f} Hz")
    lines.append(f"spiking vs rate twin E responses: CKA {float(side['cka']):.3f}, "
                 f"debiased CKA {float(side['cka_debiased']):.3f}, RSA {float(side['rsa']):.3f}")

    print("\n".join(lines))
    print(f"demo finished in {time.monotonic() - t_start:.0f} s; wrote {len(files)} files to {out}/:")
    for f in files:
        print(f"  {f}")
    return 0


def _train(rule_name: str, args: argparse.Namespace, out: Path, show: bool, say):
    """Train one rate net for the demo; returns (results path, Dataset, epochs)."""
    from bridge.config import replace_config
    from ratenets.rules import get_rule
    from ratenets.train import RunContext, fit, remove_checkpoint

    rule = get_rule(rule_name)
    cfg = rule.preset(args.dataset)
    small = args.dataset == "digits"
    if args.epochs is not None:
        epochs = args.epochs
    else:
        epochs = cfg.epochs if (small and rule_name == "lpl") else (10 if small else 1)
    changes: dict = {"epochs": epochs}
    if rule_name == "lpl" and not small:
        # ours: a 1-epoch CPU-sized run on 10 000 images, probes on 5000
        changes.update(train_images=10000, probe_train_images=5000, probe_epochs=10)
    cfg = replace_config(cfg, changes)
    name = {"lpl": "LPL (layer-local, self-supervised)", "bp": "backprop (supervised)"}[rule_name]
    say(f"training {name} on {args.dataset} for {epochs} epochs")
    data = rule.load_data(cfg, args.dataset, args.data_root)
    path = out / f"{rule_name}.nc"
    ctx = RunContext(dataset=args.dataset, seeds=(args.seed,), device=args.device, out=path,
                     progress=show and sys.stderr.isatty(), data_root=args.data_root)

    def report(epoch: int, metrics) -> None:
        if show:
            import xarray as xr

            from bridge.summary import final_metrics

            print(f"  {rule_name} epoch {epoch}/{epochs}: {final_metrics(xr.Dataset(dict(metrics)))}",
                  file=sys.stderr, flush=True)

    ds, _ = fit(rule, cfg, data, ctx, on_epoch=report)
    remove_checkpoint(ctx)
    return path, ds, epochs
