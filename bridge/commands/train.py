"""``ratespike train RULE --dataset NAME ...``: train a rate network with a local learning rule.

The config is a preset of the rule (:mod:`ratenets.presets`): by default the one named after the dataset,
or ``--preset NAME`` (``ratespike train RULE --list`` lists them); ``--set FIELD=VALUE`` changes fields of it.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bridge.commands.common import add_seed_arguments, add_set_argument, seeds_from_args

HELP = "train a rate network with a learning rule and write its results to NetCDF"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("rule", help="learning rule by name (bp, ...); see 'ratespike train --list'", nargs="?")
    p.add_argument("--list", action="store_true",
                   help="list the rules and datasets (with RULE: that rule's presets) and exit")
    p.add_argument("--dataset", default=None, help="mnist, fashion-mnist, cifar10, stl10, digits, synthetic, "
                   "gabor (default: the --preset's dataset, else mnist; 'ratespike train --list' shows all)")
    p.add_argument("--preset", default=None, metavar="NAME",
                   help="a named config of the rule (default: the one named after --dataset); "
                        "'ratespike train RULE --list' lists them")
    p.add_argument("--epochs", type=int, default=None, help="training epochs (default: the preset's)")
    add_seed_arguments(p)
    p.add_argument("--out", default=None, help="results file (default RULE_DATASET_sSEED.nc)")
    p.add_argument("--data-root", default=None, help="data folder (default $RATESPIKE_DATA, else the cache)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    add_set_argument(p)
    p.add_argument("--resume", action="store_true",
                   help="continue from OUT.ckpt if it exists, else extend the finished run in OUT to --epochs")
    p.add_argument("--keep-checkpoint", action="store_true",
                   help="keep OUT.ckpt after a finished run (OUT holds the final state anyway)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from bridge.config import apply_overrides, parse_overrides, replace_config
    from bridge.errors import ConfigError
    from bridge.io import check_writable
    from ratenets.rules import get_rule, rule_names

    if args.list or not args.rule:
        if not args.list:
            raise ConfigError("missing RULE (choices: " + ", ".join(rule_names()) + ")")
        if args.rule:
            rule_cls = get_rule(args.rule)
            print(f"presets of {args.rule} (--preset NAME; the one named after --dataset is its default):")
            for name, p in rule_cls.PRESETS.items():
                print(f"  {name}: dataset {p.dataset}" + (f"; {p.doc}" if p.doc else ""))
            return 0
        from ratenets.data import dataset_names
        print("rules:    " + ", ".join(rule_names()))
        print("datasets: " + ", ".join(dataset_names()))
        return 0
    rule_cls = get_rule(args.rule)
    seeds = seeds_from_args(args)
    if args.dataset is None:
        from ratenets.presets import dataset_of

        args.dataset = dataset_of(rule_cls, args.preset) if args.preset is not None else "mnist"
    cfg = rule_cls.preset(args.dataset, args.preset)  # raises for an unknown preset or unsupported dataset
    if args.epochs is not None:
        given = parse_overrides(cfg, [o for o in args.overrides if o.split("=", 1)[0].strip() == "epochs"])
        if "epochs" in given and given["epochs"] != args.epochs:
            raise ConfigError(f"--epochs {args.epochs} and --set epochs={given['epochs']} disagree; give one of them")
        cfg = replace_config(cfg, {"epochs": args.epochs})
    from ratenets.encoders.spiking import check_rule_supports

    check_rule_supports(args.rule, cfg, args.overrides or [])  # neuron=lif on a rate-only rule: one clear line
    cfg = apply_overrides(cfg, args.overrides)
    if args.device not in ("cpu", "cuda") and not args.device.startswith("cuda:"):
        raise ConfigError(f"unknown device {args.device!r} (choices: cpu, cuda)")
    seed_tag = f"s{seeds[0]}" if len(seeds) == 1 else f"s{seeds[0]}-{seeds[-1]}"
    out = check_writable(args.out or f"{args.rule}_{args.dataset}_{seed_tag}.nc", kind="netcdf")
    check_writable(str(out) + ".ckpt", kind=None if args.resume else "checkpoint")  # --resume reads it first
    from ratenets.train import RunContext, fit, remove_checkpoint, resolve_device

    resolve_device(args.device)
    ctx = RunContext(dataset=args.dataset, seeds=seeds, device=args.device, out=out, resume=args.resume,
                     progress=not args.no_progress and sys.stderr.isatty(), data_root=args.data_root)
    estimate = getattr(rule_cls, "estimate_bytes", None)
    if estimate is not None:  # refuse what cannot fit before reading any data
        from ratenets.data import shape_stub
        from ratenets.train import check_memory

        stub = shape_stub(args.dataset)
        if stub is not None:
            check_memory(estimate(cfg, stub, len(seeds)), resolve_device(args.device),
                         f"{args.rule} with {len(seeds)} seed(s)")
    data = rule_cls.load_data(cfg, args.dataset, args.data_root)
    from bridge.summary import final_metrics

    def report(epoch: int, metrics) -> None:
        if not args.no_progress:
            import xarray as xr
            print(f"epoch {epoch}/{cfg.epochs}: {final_metrics(xr.Dataset(dict(metrics)))}", file=sys.stderr)

    ds, _ = fit(rule_cls, cfg, data, ctx, on_epoch=report)
    if not args.keep_checkpoint:
        remove_checkpoint(ctx)
    print(f"{args.rule} on {args.dataset}: {final_metrics(ds)}")
    from bridge.summary import representation_note
    from ratenets import distributed

    # under torchrun only rank 0 wrote the file (the others would race its write)
    if distributed.is_main() and (note := representation_note(ds, out)):
        print(note)
    print(f"wrote {Path(out)}")
    return 0
