"""LPL's depth claim on a deep conv encoder: per-layer readout of LPL and its ablations over several seeds.

Halvagal & Zenke (2023), Fig. 3 / Ext. Data Fig. 11a: in a layer-local deep network, LPL's linear readout
rises with depth, switching the predictive term off makes it decline with depth, switching the Hebbian term off
collapses every layer, and switching decorrelation off degrades it. This script trains a ``>= 4``-block conv
encoder (each block 3x3 conv + ReLU + 2x2 max-pool, layer-local, on MNIST / Fashion-MNIST temporal digit
sequences by default) under LPL, pred off, Hebb off, decorr off, plus the random-init network and the pixels,
for every seed, with the official ``eval.py`` probe (held-out split of the training images, raw pooled features).

Writes ``<out-dir>/lpl_deep_<dataset>.nc`` (``test_accuracy`` and ``participation_ratio`` with dims
``(condition, seed, layer)``, ``pixel_accuracy`` ``(seed,)``), ``lpl_deep_<dataset>.png``, every run's own
file, and prints a Markdown table of mean ± s.d. over the seeds.

Example (the scale run in docs/results/lpl.md)::

    OMP_NUM_THREADS=1 python analyses/lpl_deep.py --dataset mnist --seeds 0,1,2 --epochs 2 \\
        --set train_images=3000 --out-dir results/lpl_deep
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np
import xarray as xr

CONDITIONS = {"lpl": [], "pred_off": ["pred_coeff=0"], "hebb_off": ["hebb_coeff=0"],
              "decorr_off": ["decorr_coeff=0"], "random_init": ["baseline=random_init"]}
#: the deep encoder: 4 conv blocks (28 -> 14 -> 7 -> 3 -> 1 px), temporal sequences as on the MLP preset
DEEP = ["encoder=conv", "conv_channels=16,32,64,128", "views=sequence", "probe=eval_py", "probe_lr=1e-3"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="mnist", help="mnist or fashion-mnist (28x28; 4 blocks need >= 16 px)")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--out-dir", default="results/lpl_deep")
    p.add_argument("--data-root", default=None)
    p.add_argument("--device", default="cpu")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE",
                   help="config override for every run, after the deep-encoder settings (repeatable)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from bridge.config import apply_overrides
    from bridge.errors import ConfigError, RatespikeError
    from bridge.io import check_writable, provenance, write_run
    from bridge.plots import _figure, save_figure
    from ratenets.rules.lpl import LPL

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from lpl_layers import run_condition

    try:
        try:
            seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
        except ValueError:
            raise ConfigError(f"--seeds must be comma-separated integers, got {args.seeds!r}") from None
        if len(seeds) < 1:
            raise ConfigError("--seeds names no seed")
        out_dir = Path(args.out_dir)
        check_writable(out_dir / f"lpl_deep_{args.dataset}.nc")
        cfg = apply_overrides(LPL.preset(args.dataset), [*DEEP, *args.overrides])  # validates before any work
        if len(cfg.conv_channels) < 4:
            raise ConfigError(f"the depth claim needs >= 4 conv blocks, got conv_channels {cfg.conv_channels}")
        data = LPL.load_data(cfg, args.dataset, args.data_root)
        acc: dict[str, list] = {c: [] for c in CONDITIONS}
        pr: dict[str, list] = {c: [] for c in CONDITIONS}
        accz: dict[str, list] = {c: [] for c in CONDITIONS}
        pix, pixz, t0 = [], [], time.time()
        for seed in seeds:
            ns = argparse.Namespace(dataset=args.dataset, epochs=args.epochs, seed=seed, out_dir=str(out_dir),
                                    data_root=args.data_root, device=args.device, resume=False,
                                    overrides=[*DEEP, *args.overrides])
            for name, extra in CONDITIONS.items():
                ds, rule = run_condition(f"deep_{name}", extra, ns, data, return_rule=True)
                ds = ds.isel(epoch=-1)
                acc[name].append(ds["test_accuracy"].values)
                # the same trained encoder and held-out split, probed on standardised features (probe=zscore)
                rule.config = dataclasses.replace(rule.config, probe="zscore")
                accz[name].append(rule.evaluate(args.epochs)["test_accuracy"].values)
                pr[name].append(ds["participation_ratio"].values)
                layers = list(ds["layer"].values)
                print(f"seed {seed} {name}: {np.round(acc[name][-1], 3).tolist()}, z-scored "
                      f"{np.round(accz[name][-1], 3).tolist()} ({time.time() - t0:.0f} s)",
                      file=sys.stderr)
            p, prule = run_condition("deep_pixels", ["baseline=pixels"], ns, data, return_rule=True)
            pix.append(float(p.isel(epoch=-1)["test_accuracy"].values[0]))
            prule.config = dataclasses.replace(prule.config, probe="zscore")
            pixz.append(float(prule.evaluate(args.epochs)["test_accuracy"].values[0]))
    except RatespikeError as e:
        print(f"lpl_deep: error: {e}", file=sys.stderr)
        return 2
    conds = list(CONDITIONS)
    coords = {"condition": conds, "seed": seeds, "layer": layers}
    res = xr.Dataset({
        "test_accuracy": xr.DataArray(np.stack([np.stack(acc[c]) for c in conds]), dims=tuple(coords), coords=coords,
                                      attrs={"long_name": "eval.py-style linear readout of each block", "units": "1"}),
        "participation_ratio": xr.DataArray(np.stack([np.stack(pr[c]) for c in conds]), dims=tuple(coords),
                                            coords=coords, attrs={"long_name": "participation ratio (test set)",
                                                                  "units": "1"}),
        "test_accuracy_zscore": xr.DataArray(np.stack([np.stack(accz[c]) for c in conds]), dims=tuple(coords),
                                             coords=coords, attrs={"long_name": "linear readout of each block, "
                                                                   "standardised features of the same held-out split",
                                                                   "units": "1"}),
        "pixel_accuracy": xr.DataArray(pix, dims=("seed",), coords={"seed": seeds},
                                       attrs={"long_name": "linear readout of the pixels", "units": "1"}),
        "pixel_accuracy_zscore": xr.DataArray(pixz, dims=("seed",), coords={"seed": seeds},
                                              attrs={"long_name": "z-scored linear readout of the pixels",
                                                     "units": "1"}),
    })
    res.attrs.update(provenance(kind="analysis", config_json="{}", seed=seeds[0],
                                extra={"analysis": "lpl_deep", "dataset": args.dataset, "epochs": args.epochs,
                                       "overrides": " ".join([*DEEP, *args.overrides]),
                                       "wall_time_s": round(time.time() - t0, 1), "command": " ".join(sys.argv)}))
    path = write_run(res, out_dir / f"lpl_deep_{args.dataset}.nc")
    m = res["test_accuracy"].mean("seed")
    s = res["test_accuracy"].std("seed", ddof=1) if len(seeds) > 1 else m * np.nan
    fig, axes = _figure()
    x = np.arange(1, len(layers) + 1)
    for c in conds:
        axes[0, 0].errorbar(x, m.sel(condition=c), yerr=np.nan_to_num(s.sel(condition=c).values), marker="o",
                            capsize=3, label=c)
    axes[0, 0].axhline(float(np.mean(pix)), color="k", ls="--", label="pixels")
    axes[0, 0].set_xticks(x, layers)
    axes[0, 0].set_xlabel("block")
    axes[0, 0].set_ylabel("linear readout (test accuracy)")
    axes[0, 0].set_title(f"LPL deep conv, {args.dataset}, {len(seeds)} seeds")
    axes[0, 0].legend(fontsize=7)
    save_figure(fig, out_dir / f"lpl_deep_{args.dataset}.png")
    for var, pv in (("test_accuracy", pix), ("test_accuracy_zscore", pixz)):
        mm = res[var].mean("seed")
        ss = res[var].std("seed", ddof=1) if len(seeds) > 1 else mm * np.nan
        print(f"{var}:")
        print("| condition | " + " | ".join(layers) + " |")
        print("|---" * (len(layers) + 1) + "|")
        for c in conds:
            print(f"| {c} | " + " | ".join(f"{float(mm.sel(condition=c, layer=l)):.3f} ± "
                                           f"{float(ss.sel(condition=c, layer=l)):.3f}" for l in layers) + " |")
        print(f"| pixels | {np.mean(pv):.3f} ± {np.std(pv, ddof=1) if len(pv) > 1 else float('nan'):.3f} |" +
              " |" * (len(layers) - 1))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
