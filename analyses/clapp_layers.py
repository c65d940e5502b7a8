"""Per-layer linear readout of CLAPP, CLAPP-s, Hinge-CPC and the random-init encoder (Illing et al. 2021).

Reproduces the layer-wise comparison of Illing, Ventura, Bellec & Gerstner (NeurIPS 2021) at the size this
machine allows: each rule is trained with its preset for ``--dataset`` (MNIST / Fashion-MNIST: the small
patch encoder on 28x28 images; STL-10: VGG-6 on 64x64 grey crops), then a linear probe is trained on the
grid-averaged features of every layer. The random-init row probes the untrained encoder of the same seed.

Writes ``<out-dir>/clapp_layers_<dataset>.nc`` (variable ``test_accuracy`` with dims ``(condition, layer)``,
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


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from bridge.config import apply_overrides, replace_config, to_json
    from bridge.errors import RatespikeError
    from bridge.io import provenance, write_run
    from bridge.plots import _figure, save_figure
    from ratenets.rules import get_rule
    from ratenets.train import RunContext, fit, resolve_device, seed_everything

    try:
        out_dir = Path(args.out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        rules = [r.strip() for r in args.rules.split(",") if r.strip()]
        rows: dict[str, np.ndarray] = {}
        seconds: dict[str, float] = {}
        layers: list[str] = []
        configs = {}
        for name in rules:
            cls = get_rule(name)
            cfg = cls.preset(args.dataset)
            if args.epochs is not None:
                cfg = replace_config(cfg, {"epochs": args.epochs})
            cfg = apply_overrides(cfg, args.overrides)
            configs[name] = cfg
            data = cls.load_data(cfg, args.dataset, args.data_root)
            if not rows:  # the untrained encoder of the same seed and config (CLAPP's init is every rule's)
                seed_everything(args.seed)
                t0 = time.perf_counter()
                rnd = cls(cfg, data, seeds=(args.seed,), device=resolve_device(args.device))
                rows["random-init"] = rnd.evaluate(0)["test_accuracy"].values
                seconds["random-init"] = time.perf_counter() - t0
                layers = list(rnd.encoder.layer_names)
                print(f"random-init: {np.round(rows['random-init'], 4).tolist()}", file=sys.stderr)
            ctx = RunContext(dataset=args.dataset, seeds=(args.seed,), device=args.device,
                             out=out_dir / f"{name}_{args.dataset}_s{args.seed}.nc", resume=args.resume,
                             progress=sys.stderr.isatty(), data_root=args.data_root)
            t0 = time.perf_counter()
            ds = _finished_run(ctx.out, cfg) if args.reuse else None
            if ds is None:
                ds, _ = fit(cls, cfg, data, ctx)
                seconds[name] = time.perf_counter() - t0
            else:
                seconds[name] = float("nan")  # trained elsewhere; its wall time is not known here
            rows[name] = ds["test_accuracy"].isel(epoch=-1).values
            print(f"{name}: {np.round(rows[name], 4).tolist()} ({seconds[name]:.0f} s)", file=sys.stderr)
    except RatespikeError as e:
        print(f"clapp_layers: error: {e}", file=sys.stderr)
        return 2

    conds = list(rows)
    acc = xr.DataArray(np.stack([rows[c] for c in conds]), dims=("condition", "layer"),
                       coords={"condition": conds, "layer": layers},
                       attrs={"long_name": "linear-probe test accuracy on grid-averaged layer features",
                              "units": "1"})
    wall = xr.DataArray([seconds[c] for c in conds], dims=("condition",), coords={"condition": conds},
                        attrs={"long_name": "wall-clock time of training + probing", "units": "s"})
    ds = xr.Dataset({"test_accuracy": acc, "wall_time": wall})
    cfg_json = json.dumps({k: json.loads(to_json(v)) for k, v in configs.items()})
    ds.attrs.update(provenance(kind="analysis", config_json=cfg_json, seed=args.seed,
                               extra={"analysis": "clapp_layers", "dataset": args.dataset,
                                      "device": args.device, "command": " ".join(sys.argv)}))
    nc = write_run(ds, out_dir / f"clapp_layers_{args.dataset}.nc")

    fig, axes = _figure()
    ax = axes[0, 0]
    for c in conds:
        ax.plot(range(1, len(layers) + 1), rows[c] * 100, marker="o", label=c)
    ax.set_xticks(range(1, len(layers) + 1), layers)
    ax.set_xlabel("layer")
    ax.set_ylabel("linear readout, test accuracy (%)")
    ax.set_title(f"CLAPP family on {args.dataset}, seed {args.seed}")
    ax.legend()
    png = save_figure(fig, out_dir / f"clapp_layers_{args.dataset}.png")

    print("| model | " + " | ".join(layers) + " | time (s) |")
    print("|---|" + "---|" * (len(layers) + 1))
    for c in conds:
        print(f"| {c} | " + " | ".join(f"{100 * v:.1f}" for v in rows[c]) + f" | {seconds[c]:.0f} |")  # nan: reused run
    print(f"wrote {nc} and {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
