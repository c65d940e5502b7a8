"""Layer-wise linear readout of LPL and its ablations (Halvagal & Zenke 2023, Fig. 3 / Ext. Data Fig. 11a).

Trains the LPL rule with its preset for ``--dataset`` under each condition (LPL, pred off, Hebb off, decorr
off, shuffled positives, by default; any of the switches below with ``--conditions``), plus the pixel-readout
and random-init baselines, then collects per layer the linear-probe test accuracy, the participation ratio
over the whole test set, the mean activity and the dead-unit fraction of the last epoch.

Writes ``<out-dir>/lpl_layers_<dataset>.nc`` (variables with dims ``(condition, layer)``; the pixel baseline
is the scalar ``pixel_accuracy``), every condition's own run file ``lpl_<condition>_<dataset>_s<seed>.nc``,
and ``lpl_layers_<dataset>.png``, and prints a Markdown table.

Paper CIFAR-10 numbers (official notebook outputs, one seed; the method spec ``reference/lpl.md``, section 3),
LPL .32 .49 .57 .61 .62 .62 .61 .60 over L1-L8, pred off decays to .20 at L8, Hebb off .10 everywhere.

Example::

    OMP_NUM_THREADS=1 python analyses/lpl_layers.py --dataset mnist --epochs 1 --out-dir results/lpl
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import xarray as xr

#: condition name -> --set overrides (one switch each)
CONDITIONS: dict[str, list[str]] = {
    "lpl": [],
    "pred_off": ["pred_coeff=0"],
    "hebb_off": ["hebb_coeff=0"],
    "decorr_off": ["decorr_coeff=0"],
    "shuffled": ["shuffle_positives=true"],
    "stale": ["stale_estimates=true"],
    "no_pooling": ["no_pooling=true"],
    "projector": ["projector=true"],
    "negsample": ["objective=negsample"],
    "end_to_end": ["end_to_end=true"],
    "supervised": ["objective=supervised"],
    "random_init": ["baseline=random_init"],
}
DEFAULT = ("lpl", "pred_off", "hebb_off", "decorr_off", "shuffled", "random_init")
METRICS = ("test_accuracy", "participation_ratio", "mean_activity", "dead_fraction")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="mnist", help="mnist, fashion-mnist, cifar10, stl10, digits, synthetic")
    p.add_argument("--epochs", type=int, default=None, help="training epochs (default: the preset's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--conditions", default=",".join(DEFAULT),
                   help="comma-separated subset of " + ", ".join(CONDITIONS))
    p.add_argument("--out-dir", default="results/lpl", help="folder for the NetCDF files and the figure")
    p.add_argument("--data-root", default=None)
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE",
                   help="config override applied to every condition (repeatable), e.g. --set train_images=20000")
    p.add_argument("--resume", action="store_true", help="continue each condition from its checkpoint")
    return p.parse_args(argv)


def run_condition(name: str, extra: list[str], args: argparse.Namespace, data) -> xr.Dataset:
    from bridge.config import apply_overrides, replace_config
    from ratenets.rules.lpl import LPL
    from ratenets.train import RunContext, fit, remove_checkpoint

    cfg = LPL.preset(args.dataset)
    if args.epochs is not None:
        cfg = replace_config(cfg, {"epochs": args.epochs})
    cfg = apply_overrides(cfg, [*args.overrides, *extra])
    out = Path(args.out_dir) / f"lpl_{name}_{args.dataset}_s{args.seed}.nc"
    ctx = RunContext(dataset=args.dataset, seeds=(args.seed,), device=args.device, out=out, resume=args.resume,
                     progress=sys.stderr.isatty(), data_root=args.data_root, extra_attrs={"condition": name})
    ds, _ = fit(LPL, cfg, data, ctx)
    remove_checkpoint(ctx)
    return ds


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from bridge.errors import ConfigError, RatespikeError
    from bridge.io import check_writable, provenance, write_run
    from bridge.plots import _figure, save_figure
    from ratenets.rules.lpl import LPL

    try:
        names = [c.strip() for c in args.conditions.split(",") if c.strip()]
        bad = [c for c in names if c not in CONDITIONS]
        if bad:
            raise ConfigError(f"unknown condition {bad[0]!r} (choices: {', '.join(CONDITIONS)})")
        out_dir = Path(args.out_dir)
        check_writable(out_dir / f"lpl_layers_{args.dataset}.nc")
        cfg0 = LPL.preset(args.dataset)
        data = LPL.load_data(cfg0, args.dataset, args.data_root)
        t0 = time.time()
        rows = {}
        for name in names:
            ds = run_condition(name, CONDITIONS[name], args, data)
            rows[name] = ds.isel(epoch=-1)
            print(f"{name}: test_accuracy {np.round(rows[name]['test_accuracy'].values, 3).tolist()} "
                  f"({time.time() - t0:.0f} s so far)", file=sys.stderr)
        pix = run_condition("pixels", ["baseline=pixels"], args, data).isel(epoch=-1)
    except RatespikeError as e:
        print(f"lpl_layers: error: {e}", file=sys.stderr)
        return 2
    layers = list(rows[names[0]]["layer"].values)
    res = xr.Dataset({m: xr.concat([rows[n][m].reindex(layer=layers) for n in names], dim="condition")
                      for m in METRICS})
    res = res.assign_coords(condition=names)
    res["pixel_accuracy"] = xr.DataArray(float(pix["test_accuracy"].values[0]),
                                         attrs={"long_name": "linear readout of the pixels", "units": "1"})
    res["pixel_participation_ratio"] = xr.DataArray(float(pix["participation_ratio"].values[0]),
                                                    attrs={"long_name": "PR of the pixels", "units": "1"})
    for m in METRICS:
        res[m].attrs = rows[names[0]][m].attrs
    res.attrs.update(provenance(kind="analysis", config_json=rows[names[0]].attrs.get("config", "{}"),
                                seed=args.seed, extra={"analysis": "lpl_layers", "dataset": args.dataset,
                                                       "epochs": int(rows[names[0]].attrs["epochs_completed"]),
                                                       "wall_time_s": round(time.time() - t0, 1)}))
    path = write_run(res, out_dir / f"lpl_layers_{args.dataset}.nc")

    fig, axes = _figure(1, 2, figsize=(10, 3.6))
    x = np.arange(1, len(layers) + 1)
    for n in names:
        axes[0, 0].plot(x, res["test_accuracy"].sel(condition=n), marker="o", label=n)
        axes[0, 1].plot(x, res["participation_ratio"].sel(condition=n), marker="o", label=n)
    axes[0, 0].axhline(float(res["pixel_accuracy"]), color="k", ls="--", label="pixels")
    axes[0, 0].axhline(1.0 / data.num_classes, color="grey", ls=":", label="chance")
    for ax, t in zip(axes[0], ("linear readout", "participation ratio (test set)")):
        ax.set_xticks(x, layers)
        ax.set_xlabel("layer")
        ax.set_title(f"{t}, {args.dataset}")
    axes[0, 0].legend(fontsize=7)
    save_figure(fig, out_dir / f"lpl_layers_{args.dataset}.png")

    print(f"| condition | {' | '.join(layers)} | last-layer PR |")
    print("|---" * (len(layers) + 2) + "|")
    for n in names:
        acc = res["test_accuracy"].sel(condition=n).values
        pr = res["participation_ratio"].sel(condition=n).values[-1]
        print(f"| {n} | " + " | ".join(f"{a:.3f}" for a in acc) + f" | {pr:.1f} |")
    print(f"| pixels | {float(res['pixel_accuracy']):.3f} (one layer) | |")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
