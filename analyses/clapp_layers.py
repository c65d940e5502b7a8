"""Per-layer linear readout of CLAPP, CLAPP-s, Hinge-CPC and the random-init encoder (Illing et al. 2021).

Reproduces the layer-wise comparison of Illing, Ventura, Bellec & Gerstner (NeurIPS 2021) at the size this
machine allows: each rule is trained with its preset for ``--dataset`` (MNIST / Fashion-MNIST: the small
patch encoder on 28x28 images; STL-10: VGG-6 on 64x64 grey crops), then a linear probe is trained on the
grid-averaged features of every layer. The random-init row probes the untrained encoder of the same seed.

Writes ``<out-dir>/clapp_layers_<dataset>.nc`` (variable ``test_accuracy`` with dims ``(condition, seed, layer)``, ``pixel_accuracy`` ``(seed,)``,
plus each rule's own run file) and ``clapp_layers_<dataset>.png``, and prints a Markdown table.

Example::

    OMP_NUM_THREADS=1 python analyses/clapp_layers.py --dataset mnist --epochs 1 --out-dir results/clapp
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import xarray as xr

RULES = ("clapp", "clapp-s", "hinge-cpc")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="mnist", help="mnist, fashion-mnist, stl10, digits or synthetic")
    p.add_argument("--epochs", type=int, default=None, help="training epochs (default: each preset's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--seeds", default=None, help="comma-separated seeds (overrides --seed), e.g. 0,1,2")
    p.add_argument("--rules", default=",".join(RULES), help="comma-separated subset of " + ", ".join(RULES))
    p.add_argument("--out-dir", default="results/clapp", help="folder for the NetCDF files and the figure")
    p.add_argument("--data-root", default=None)
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE",
                   help="config override applied to every rule (repeatable), e.g. --set train_size=20000")
    p.add_argument("--resume", action="store_true", help="continue each rule's run from its checkpoint")
    p.add_argument("--reuse", action="store_true",
                   help="take a rule's result from an existing finished run file in --out-dir (same config, e.g. "
                   "made by 'ratespike train RULE --out OUT_DIR/RULE_DATASET_sSEED.nc') instead of training")
    return p.parse_args(argv)


def _finished_run(path: Path, cfg) -> xr.Dataset | None:
    """The results of a finished run at ``path`` made with config ``cfg``, else None."""
    from bridge.config import to_json

    if not path.is_file():
        return None
    with xr.open_dataset(path) as ds:
        if ds.attrs.get("config") != to_json(cfg) or int(ds.attrs.get("epochs_completed", -1)) != cfg.epochs:
            return None
        return ds.load()


def _pixel_accuracy(cls, cfg, data, seed: int, device) -> float:
    """Linear readout of the prepared pixels (grey, centre crop, normalised) with the rule's probe settings."""
    from ratenets.probes import linear_probe

    rule = cls(cfg, data, seeds=(seed,), device=device)
    n_tr = min(cfg.probe_train_size, len(data.x_train))
    n_te = min(cfg.probe_test_size, len(data.x_test)) if cfg.probe_test_size else len(data.x_test)
    f_tr = rule.prepare(data.x_train[:n_tr], train=False).flatten(1)
    f_te = rule.prepare(data.x_test[:n_te], train=False).flatten(1)
    return linear_probe(f_tr, data.y_train[:n_tr], f_te, data.y_test[:n_te], epochs=cfg.probe_epochs,
                        lr=cfg.probe_lr, batch_size=cfg.probe_batch_size, seed=seed * 1000,
                        n_classes=data.num_classes, device=device)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from bridge.config import apply_overrides, replace_config, to_json
    from bridge.errors import ConfigError, RatespikeError
    from bridge.io import provenance, write_run
    from bridge.plots import _figure, save_figure
    from ratenets.rules import get_rule
    from ratenets.train import RunContext, fit, resolve_device, seed_everything

    try:
        seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else [args.seed]
    except ValueError:
        print(f"clapp_layers: error: --seeds must be comma-separated integers, got {args.seeds!r}", file=sys.stderr)
        return 2
    try:
        out_dir = Path(args.out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        rules = [r.strip() for r in args.rules.split(",") if r.strip()]
        if not rules:
            raise ConfigError("--rules names no rule")
        rows: dict[str, list[np.ndarray]] = {}
        seconds: dict[str, list[float]] = {}
        pixels: list[float] = []
        layers: list[str] = []
        configs = {}
        for name in rules:
            cls = get_rule(name)
            cfg = cls.preset(args.dataset)
            if args.epochs is not None:
                cfg = replace_config(cfg, {"epochs": args.epochs})
            configs[name] = apply_overrides(cfg, args.overrides)
        for seed in seeds:
            for k, name in enumerate(rules):
                cls, cfg = get_rule(name), configs[name]
                data = cls.load_data(cfg, args.dataset, args.data_root)
                if k == 0:  # the untrained encoder of the same seed and config (CLAPP's init is every rule's)
                    seed_everything(seed)
                    t0 = time.perf_counter()
                    rnd = cls(cfg, data, seeds=(seed,), device=resolve_device(args.device))
                    rows.setdefault("random-init", []).append(rnd.evaluate(0)["test_accuracy"].values)
                    seconds.setdefault("random-init", []).append(time.perf_counter() - t0)
                    layers = list(rnd.encoder.layer_names)
                    pixels.append(_pixel_accuracy(cls, cfg, data, seed, resolve_device(args.device)))
                    print(f"seed {seed} random-init: {np.round(rows['random-init'][-1], 4).tolist()}, "
                          f"pixels {pixels[-1]:.4f}", file=sys.stderr)
                ctx = RunContext(dataset=args.dataset, seeds=(seed,), device=args.device,
                                 out=out_dir / f"{name}_{args.dataset}_s{seed}.nc", resume=args.resume,
                                 progress=sys.stderr.isatty(), data_root=args.data_root)
                t0 = time.perf_counter()
                ds = _finished_run(ctx.out, cfg) if args.reuse else None
                if ds is None:
                    ds, _ = fit(cls, cfg, data, ctx)
                    seconds.setdefault(name, []).append(time.perf_counter() - t0)
                else:
                    seconds.setdefault(name, []).append(float("nan"))  # trained elsewhere: wall time unknown
                rows.setdefault(name, []).append(ds["test_accuracy"].isel(epoch=-1).values)
                print(f"seed {seed} {name}: {np.round(rows[name][-1], 4).tolist()} ({seconds[name][-1]:.0f} s)",
                      file=sys.stderr)
    except RatespikeError as e:
        print(f"clapp_layers: error: {e}", file=sys.stderr)
        return 2

    conds = list(rows)
    acc = xr.DataArray(np.stack([np.stack(rows[c]) for c in conds]), dims=("condition", "seed", "layer"),
                       coords={"condition": conds, "seed": seeds, "layer": layers},
                       attrs={"long_name": "linear-probe test accuracy on grid-averaged layer features",
                              "units": "1"})
    wall = xr.DataArray(np.array([seconds[c] for c in conds]), dims=("condition", "seed"),
                        coords={"condition": conds, "seed": seeds},
                        attrs={"long_name": "wall-clock time of training + probing", "units": "s"})
    pix = xr.DataArray(np.array(pixels), dims=("seed",), coords={"seed": seeds},
                       attrs={"long_name": "linear-probe test accuracy on the normalised pixels", "units": "1"})
    ds = xr.Dataset({"test_accuracy": acc, "wall_time": wall, "pixel_accuracy": pix})
    cfg_json = json.dumps({k: json.loads(to_json(v)) for k, v in configs.items()})
    ds.attrs.update(provenance(kind="analysis", config_json=cfg_json, seed=seeds[0],
                               extra={"analysis": "clapp_layers", "dataset": args.dataset, "seeds": str(seeds),
                                      "device": args.device, "command": " ".join(sys.argv)}))
    nc = write_run(ds, out_dir / f"clapp_layers_{args.dataset}.nc")

    mean, sd = acc.mean("seed"), acc.std("seed", ddof=1) if len(seeds) > 1 else acc.std("seed") * np.nan
    fig, axes = _figure()
    ax = axes[0, 0]
    x = np.arange(1, len(layers) + 1)
    for c in conds:
        ax.errorbar(x, mean.sel(condition=c) * 100, yerr=np.nan_to_num(sd.sel(condition=c).values) * 100,
                    marker="o", capsize=3, label=c)
    ax.axhline(float(pix.mean()) * 100, color="k", ls="--", label="pixels")
    ax.set_xticks(x, layers)
    ax.set_xlabel("layer")
    ax.set_ylabel("linear readout, test accuracy (%)")
    ax.set_title(f"CLAPP family on {args.dataset}, seeds {','.join(map(str, seeds))}")
    ax.legend()
    png = save_figure(fig, out_dir / f"clapp_layers_{args.dataset}.png")

    pm = lambda m, s: f"{m:.3f}" if not np.isfinite(s) else f"{m:.3f} ± {s:.3f}"  # noqa: E731
    print(f"| model | " + " | ".join(layers) + " | time per seed (s) |")
    print("|---|" + "---|" * (len(layers) + 1))
    for c in conds:
        cells = [pm(float(mean.sel(condition=c, layer=l)), float(sd.sel(condition=c, layer=l))) for l in layers]
        print(f"| {c} | " + " | ".join(cells) + f" | {np.mean(seconds[c]):.0f} |")  # nan: reused run
    psd = float(pix.std(ddof=1)) if len(seeds) > 1 else float("nan")
    print(f"| pixels | {pm(float(pix.mean()), psd)} (one layer) |" + " |" * len(layers))
    print(f"wrote {nc} and {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
