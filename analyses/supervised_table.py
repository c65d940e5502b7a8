"""The supervised comparison table of Bozkurt, Pehlevan & Erdogan (NeurIPS 2023): CorInfoMax and baselines.

Trains every requested rule on every requested dataset with its paper preset, all seeds batched in one
process, and reports the final-epoch test accuracy as mean +- std over seeds next to the paper's numbers
(spec §4, from the authors' notebook outputs; 50 epochs, 10 seeds). Runs that are already complete in
``--out-dir`` are reused, unfinished ones resume from their checkpoint.

Writes ``<out-dir>/<rule>_<dataset>[_3layer].nc`` (one training run each), ``supervised_table.nc``
(variables ``test_accuracy_mean``/``_std``, ``paper_mean``/``_std`` with dims ``(rule, dataset)``),
``supervised_table.md`` and ``supervised_table.png``, and prints the Markdown table.

Example::

    OMP_NUM_THREADS=1 python analyses/supervised_table.py --rules corinfomax,ep --datasets mnist \\
        --epochs 1 --seeds 0-2 --out-dir results/supervised
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import xarray as xr

RULES = ("corinfomax", "corinfomax-sparse", "ep", "csm", "pc", "pc-nudge", "fa", "bp")
DATASETS = ("mnist", "fashion-mnist", "cifar10")
#: hidden layers of the paper's 3-layer nets (Table 2)
DEEP_HIDDEN = {"mnist": (500, 500), "cifar10": (1000, 500)}

#: final-epoch test accuracy (%), mean and std over 10 seeds, 50 epochs (spec §4; MSE rows for FA and BP)
PAPER = {
    ("corinfomax", "mnist"): (97.62, 0.12), ("corinfomax", "fashion-mnist"): (88.14, 0.28),
    ("corinfomax", "cifar10"): (51.86, 0.33),
    ("corinfomax-sparse", "mnist"): (97.71, 0.10), ("corinfomax-sparse", "fashion-mnist"): (88.09, 0.08),
    ("corinfomax-sparse", "cifar10"): (51.19, 0.36),
    ("ep", "mnist"): (97.62, 0.08), ("ep", "fashion-mnist"): (88.06, 0.70), ("ep", "cifar10"): (49.28, 0.50),
    ("csm", "mnist"): (98.08, 0.06), ("csm", "fashion-mnist"): (88.73, 0.19),
    ("pc", "mnist"): (98.17, 0.22), ("pc", "fashion-mnist"): (89.31, 0.42),
    ("pc-nudge", "mnist"): (97.71, 0.15), ("pc-nudge", "fashion-mnist"): (88.49, 0.23),
    ("pc-nudge", "cifar10"): (48.58, 0.67),
    ("fa", "mnist"): (97.99, 0.10), ("fa", "fashion-mnist"): (88.72, 0.46), ("fa", "cifar10"): (50.75, 0.61),
    ("bp", "mnist"): (97.58, 0.06), ("bp", "fashion-mnist"): (88.39, 0.23), ("bp", "cifar10"): (52.75, 0.40),
}

#: 3-layer nets (spec §4 "Deeper and extra runs"; std not given for BP/FA)
PAPER_3LAYER = {
    ("corinfomax", "mnist"): (97.55, 0.09), ("corinfomax", "cifar10"): (50.97, 0.38),
    ("bp", "mnist"): (97.75, float("nan")), ("fa", "mnist"): (98.18, float("nan")),
    ("bp", "cifar10"): (55.49, float("nan")), ("fa", "cifar10"): (50.26, float("nan")),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rules", default=",".join(RULES), help="comma-separated subset of " + ", ".join(RULES))
    p.add_argument("--datasets", default="mnist,fashion-mnist", help="comma-separated subset of "
                   + ", ".join(DATASETS) + " (digits and synthetic work for quick checks)")
    p.add_argument("--epochs", type=int, default=None, help="training epochs (default: each preset's, 50)")
    p.add_argument("--seeds", default="0-2", help="seeds, batched in one process: 0-9 or 1,4,7 (default 0-2)")
    p.add_argument("--depth", type=int, default=2, choices=(2, 3),
                   help="3: the 3-layer nets of Table 2 (corinfomax, fa, bp; mnist and cifar10)")
    p.add_argument("--out-dir", default="results/supervised", help="folder for the NetCDF files and the figure")
    p.add_argument("--data-root", default=None)
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE",
                   help="config override applied to every rule (repeatable)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p.parse_args(argv)


def parse_seeds(spec: str) -> tuple[int, ...]:
    from bridge.errors import ConfigError

    try:
        if "-" in spec:
            a, b = spec.split("-")
            return tuple(range(int(a), int(b) + 1))
        return tuple(int(s) for s in spec.split(","))
    except ValueError:
        raise ConfigError(f"--seeds expects 0-9 or 1,4,7, got {spec!r}") from None


def run_one(rule: str, dataset: str, args: argparse.Namespace, seeds: tuple[int, ...], out: Path) -> xr.Dataset:
    """Train (or reuse / resume) one rule on one dataset; returns its results Dataset."""
    from bridge.config import apply_overrides, replace_config
    from bridge.errors import ConfigError
    from bridge.io import open_run
    from ratenets.rules import get_rule
    from ratenets.train import RunContext, fit, remove_checkpoint

    cls = get_rule(rule)
    cfg = cls.preset(dataset)
    if args.depth == 3:
        if getattr(cls, "DEEP_PRESETS", None):
            cfg = cls.preset(dataset, depth=3)
        elif rule in ("fa", "bp") and dataset in DEEP_HIDDEN:
            cfg = replace_config(cfg, {"hidden": DEEP_HIDDEN[dataset]})  # Table 2: same optimiser settings
        else:
            raise ConfigError(f"no 3-layer setting of {rule!r} for {dataset!r} in the paper (3-layer rows: "
                              "corinfomax, fa, bp on mnist and cifar10)")
    if args.epochs is not None:
        cfg = replace_config(cfg, {"epochs": args.epochs})
    cfg = apply_overrides(cfg, args.overrides)
    if out.is_file():
        ds = open_run(out)
        if int(ds.attrs.get("epochs_completed", 0)) >= cfg.epochs and ds.attrs.get("config") == _json(cfg):
            return ds
    ctx = RunContext(dataset=dataset, seeds=seeds, device=args.device, out=out, resume=True,
                     progress=not args.no_progress and sys.stderr.isatty(), data_root=args.data_root,
                     extra_attrs={"analysis": "supervised_table"})
    data = cls.load_data(cfg, dataset, args.data_root)
    t0 = time.perf_counter()
    ds, _ = fit(cls, cfg, data, ctx)
    ds.attrs["wall_time_s"] = round(time.perf_counter() - t0, 1)
    remove_checkpoint(ctx)
    return ds


def _json(cfg) -> str:
    from bridge.config import to_json

    return to_json(cfg)


def final_accuracy(ds: xr.Dataset) -> np.ndarray:
    """Final-epoch test accuracy per seed, in %."""
    acc = ds["test_accuracy"].isel(epoch=-1)
    return 100.0 * np.atleast_1d(np.asarray(acc.values, dtype=float))


def table(rules: list[str], datasets: list[str], results: dict, epochs: dict, paper_values: dict) -> str:
    head = "| method | " + " | ".join(f"{d} (ours)" + " | " + f"{d} (paper)" for d in datasets) + " |"
    lines = [head, "|" + "---|" * (1 + 2 * len(datasets))]
    for r in rules:
        cells = []
        for d in datasets:
            a = results.get((r, d))
            ours = (f"{a.mean():.2f} ± {a.std(ddof=1) if a.size > 1 else 0.0:.2f} ({epochs[(r, d)]} ep, "
                    f"{a.size} seeds)" if a is not None else "not run")
            paper = paper_values.get((r, d))
            cells += [ours, ("–" if paper is None else f"{paper[0]:.2f}" if np.isnan(paper[1])
                             else f"{paper[0]:.2f} ± {paper[1]:.2f}")]
        lines.append(f"| {r} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from bridge.errors import RatespikeError, unknown_choice
    from bridge.io import provenance, write_run
    from bridge.plots import _figure, save_figure

    try:
        rules = [r.strip() for r in args.rules.split(",") if r.strip()]
        datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
        for r in rules:
            if r not in RULES:
                raise unknown_choice("rule", r, RULES)
        seeds = parse_seeds(args.seeds)
        out_dir = Path(args.out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        results, epochs, walls = {}, {}, {}
        for d in datasets:
            for r in rules:
                tag = "_3layer" if args.depth == 3 else ""
                ds = run_one(r, d, args, seeds, out_dir / f"{r}_{d}{tag}.nc")
                results[(r, d)] = final_accuracy(ds)
                epochs[(r, d)] = int(ds.sizes.get("epoch", 0))
                walls[(r, d)] = ds.attrs.get("wall_time_s", float("nan"))
                print(f"{r} on {d}: {results[(r, d)].round(2).tolist()} %", file=sys.stderr)
    except RatespikeError as e:
        print(f"supervised_table: error: {e}", file=sys.stderr)
        return 2
    paper_values = PAPER_3LAYER if args.depth == 3 else PAPER
    shape = (len(rules), len(datasets))
    mean, std, pm, ps = (np.full(shape, np.nan) for _ in range(4))
    for i, r in enumerate(rules):
        for j, d in enumerate(datasets):
            if (r, d) in results:
                a = results[(r, d)]
                mean[i, j], std[i, j] = a.mean(), (a.std(ddof=1) if a.size > 1 else 0.0)
            if (r, d) in paper_values:
                pm[i, j], ps[i, j] = paper_values[(r, d)]
    pct = {"units": "percent"}
    summary = xr.Dataset(
        {"test_accuracy_mean": (("rule", "dataset"), mean, {**pct, "long_name": "final-epoch test accuracy, "
                                                            "mean over seeds"}),
         "test_accuracy_std": (("rule", "dataset"), std, {**pct, "long_name": "sample std over seeds"}),
         "paper_mean": (("rule", "dataset"), pm, {**pct, "long_name": "Bozkurt et al. (2023), 50 epochs"}),
         "paper_std": (("rule", "dataset"), ps, pct)},
        coords={"rule": rules, "dataset": datasets})
    summary.attrs.update(provenance(kind="analysis", config_json=json.dumps(vars(args)), seed=list(seeds),
                                    extra={"analysis": "supervised_table", "epochs": json.dumps(
                                        {f"{r}/{d}": e for (r, d), e in epochs.items()})}))
    write_run(summary, out_dir / "supervised_table.nc")
    md = table(rules, datasets, results, epochs, paper_values)
    (out_dir / "supervised_table.md").write_text(md + "\n")
    fig, axes = _figure(1, len(datasets), figsize=(4.5 * len(datasets), 3.5))
    for j, d in enumerate(datasets):
        ax = axes[0][j]
        x = np.arange(len(rules))
        ax.bar(x - 0.2, mean[:, j], 0.4, yerr=std[:, j], label="ours")
        ax.bar(x + 0.2, pm[:, j], 0.4, yerr=ps[:, j], label="paper (50 ep)")
        ax.set_xticks(x, rules, rotation=60, ha="right")
        finite = np.concatenate([mean[:, j][np.isfinite(mean[:, j])], pm[:, j][np.isfinite(pm[:, j])]])
        if finite.size:
            ax.set_ylim(max(0.0, finite.min() - 5), min(100.0, finite.max() + 2))
        ax.set_title(d)
        ax.set_ylabel("test accuracy (%)")
    axes[0][0].legend(fontsize=8)
    save_figure(fig, out_dir / "supervised_table.png")
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
