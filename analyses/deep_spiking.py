"""Deep rate nets vs their spiking twins, trained with the same layer-local rule (LPL, CLAPP) on offline data.

For every rule and seed, two runs with the rule's preset for ``--dataset``: the rate net (``neuron=rate``,
ReLU units) and its spiking twin (``neuron=lif``: snntorch leaky integrate-and-fire units over
``--timesteps`` steps, same synapses, same initial weights, same data order and views, the rule's loss on
each layer's readout over time). Each layer of each run gets a linear probe; the spiking runs record their
firing rates; :func:`bridge.compare.compare_runs` gives the linear CKA between the twins, layer by layer
(``ratespike compare rate.nc snn.nc --measure cka``), and, as a yardstick, between rate nets of two
different seeds.

Writes ``<out-dir>/deep_spiking_<dataset>.nc`` (per rule: ``<rule>_test_accuracy`` ``(model, seed, layer)``,
``<rule>_firing_rate`` and ``<rule>_firing_rate_silent_fraction`` ``(seed, layer)``, ``<rule>_twin_cka``
``(seed, layer)``, ``<rule>_seed_cka`` ``(seed, layer)``), every run's own file, ``deep_spiking_<dataset>.png``,
and prints Markdown tables.

Example::

    OMP_NUM_THREADS=1 python analyses/deep_spiking.py --dataset digits --seeds 0,1,2 --timesteps 8 \
        --out-dir results/deep_spiking
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import xarray as xr

RULES = ("lpl", "clapp")
MODELS = ("rate", "lif")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="digits", help="digits (default), synthetic, mnist or fashion-mnist")
    p.add_argument("--rules", default=",".join(RULES), help="comma-separated subset of " + ", ".join(RULES))
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    p.add_argument("--epochs", type=int, default=None, help="training epochs (default: each preset's)")
    p.add_argument("--timesteps", type=int, default=8, help="time steps of the spiking twins (default 8)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE",
                   help="override applied to both twins (repeatable)")
    p.add_argument("--spiking-set", dest="spiking_overrides", action="append", default=[], metavar="FIELD=VALUE",
                   help="override applied to the spiking twin only, e.g. --spiking-set threshold=0.5")
    p.add_argument("--out-dir", default="results/deep_spiking", help="folder for the NetCDF files and the figure")
    p.add_argument("--data-root", default=None)
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    return p.parse_args(argv)


def _stat(a: np.ndarray) -> str:
    """``mean ± sd`` over seeds (axis 0) of a per-layer array, in percent."""
    return " | ".join(f"{100 * m:.1f} ± {100 * s:.1f}" for m, s in zip(np.nanmean(a, 0), np.nanstd(a, 0, ddof=1)
                                                                   if len(a) > 1 else np.zeros(a.shape[1])))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from bridge.compare import compare_runs
    from bridge.config import apply_overrides, replace_config, to_json
    from bridge.errors import ConfigError, RatespikeError
    from bridge.io import provenance, write_run
    from bridge.plots import _figure, save_figure
    from ratenets.rules import get_rule
    from ratenets.train import RunContext, fit

    try:
        rules = [r.strip() for r in args.rules.split(",") if r.strip()]
        bad = [r for r in rules if r not in RULES]
        if bad:
            raise ConfigError(f"rule {bad[0]!r} is not compared here (choices: {', '.join(RULES)})")
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
        if not seeds:
            raise ConfigError("--seeds lists no seed")
        out_dir = Path(args.out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        configs, data_vars, seconds = {}, {}, {}
        for rule in rules:
            cls = get_rule(rule)
            base = cls.preset(args.dataset)
            if args.epochs is not None:
                base = replace_config(base, {"epochs": args.epochs})
            base = apply_overrides(base, args.overrides)
            cfgs = {"rate": base,
                    "lif": apply_overrides(replace_config(base, {"neuron": "lif", "timesteps": args.timesteps}),
                                           args.spiking_overrides)}
            configs[rule] = cfgs
            data = cls.load_data(base, args.dataset, args.data_root)
            files: dict[tuple[str, int], Path] = {}
            acc, rate, silent = {}, [], []
            layers: list[str] = []
            for model in MODELS:
                for s in seeds:
                    out = out_dir / f"{rule}_{model}_{args.dataset}_s{s}.nc"
                    ctx = RunContext(dataset=args.dataset, seeds=(s,), device=args.device, out=out,
                                     progress=sys.stderr.isatty(), data_root=args.data_root)
                    t0 = time.perf_counter()
                    ds, _ = fit(cls, cfgs[model], data, ctx)
                    seconds[f"{rule}_{model}_s{s}"] = time.perf_counter() - t0
                    files[model, s] = out
                    last = ds.isel(epoch=-1)
                    layers = [str(v) for v in last["test_accuracy"].layer.values]
                    acc.setdefault(model, []).append(last["test_accuracy"].values)
                    if model == "lif":
                        rate.append(last["firing_rate"].values)
                        silent.append(last["firing_rate_silent_fraction"].values)
                    print(f"{rule} {model} seed {s}: readout {np.round(acc[model][-1], 4).tolist()} "
                          f"({seconds[f'{rule}_{model}_s{s}']:.0f} s)", file=sys.stderr)
            twin, across = [], []
            for i, s in enumerate(seeds):
                c = compare_runs(files["rate", s], files["lif", s], "cka")
                twin.append(np.diag(np.asarray(c[list(c.data_vars)[0]].values)))
                other = seeds[(i + 1) % len(seeds)]
                if other != s:
                    c = compare_runs(files["rate", s], files["rate", other], "cka")
                    across.append(np.diag(np.asarray(c[list(c.data_vars)[0]].values)))
                else:
                    across.append(np.full(len(layers), np.nan))
            dims, co = ("seed", "layer"), {"seed": seeds, "layer": layers}
            data_vars[f"{rule}_test_accuracy"] = xr.DataArray(
                np.stack([np.stack(acc[m]) for m in MODELS]), dims=("model", *dims), coords={"model": list(MODELS), **co},
                attrs={"long_name": f"{rule}: linear-probe test accuracy of each layer, last epoch", "units": "1"})
            data_vars[f"{rule}_firing_rate"] = xr.DataArray(
                np.stack(rate), dims=dims, coords=co,
                attrs={"long_name": f"{rule} spiking twin: spikes per neuron per time step on the test images",
                       "units": "1"})
            data_vars[f"{rule}_firing_rate_silent_fraction"] = xr.DataArray(
                np.stack(silent), dims=dims, coords=co,
                attrs={"long_name": f"{rule} spiking twin: fraction of channels silent on all test images",
                       "units": "1"})
            data_vars[f"{rule}_twin_cka"] = xr.DataArray(
                np.stack(twin), dims=dims, coords=co,
                attrs={"long_name": f"{rule}: linear CKA between the rate net and its spiking twin, same layer",
                       "units": "1"})
            data_vars[f"{rule}_seed_cka"] = xr.DataArray(
                np.stack(across), dims=dims, coords=co,
                attrs={"long_name": f"{rule}: linear CKA between rate nets of this seed and the next, same layer",
                       "units": "1"})
    except RatespikeError as e:
        print(f"deep_spiking: error: {e}", file=sys.stderr)
        return 2

    ds = xr.Dataset(data_vars)
    cfg_json = json.dumps({r: {m: json.loads(to_json(c)) for m, c in v.items()} for r, v in configs.items()})
    ds.attrs.update(provenance(kind="analysis", config_json=cfg_json, seed=seeds,
                               extra={"analysis": "deep_spiking", "dataset": args.dataset, "device": args.device,
                                      "command": " ".join(sys.argv), "wall_time_s": json.dumps(seconds)}))
    nc = write_run(ds, out_dir / f"deep_spiking_{args.dataset}.nc")

    fig, axes = _figure(1, 3, figsize=(13, 3.8))
    for rule in rules:
        a = ds[f"{rule}_test_accuracy"]
        x = np.arange(1, a.sizes["layer"] + 1)
        for m, style in zip(MODELS, ("-", "--")):
            v = a.sel(model=m).values * 100
            axes[0, 0].errorbar(x, v.mean(0), yerr=v.std(0), ls=style, marker="o", capsize=3, label=f"{rule} {m}")
        r = ds[f"{rule}_firing_rate"].values
        axes[0, 1].errorbar(x, r.mean(0), yerr=r.std(0), marker="o", capsize=3, label=rule)
        for var, style, lab in ((f"{rule}_twin_cka", "-", "rate vs lif"), (f"{rule}_seed_cka", ":", "rate vs rate, other seed")):
            v = ds[var].values
            axes[0, 2].errorbar(x, np.nanmean(v, 0), yerr=np.nanstd(v, 0), ls=style, marker="o", capsize=3,
                                label=f"{rule}: {lab}")
    layers = [str(v) for v in ds.layer.values]
    for ax, yl, t in zip(axes[0], ("linear readout, test accuracy (%)", "spikes / neuron / step", "linear CKA"),
                         ("readout per layer", "firing rate (spiking twins)", "CKA, same layer")):
        ax.set_xticks(range(1, len(layers) + 1), layers)
        ax.set_xlabel("layer")
        ax.set_ylabel(yl)
        ax.set_title(f"{t}, {args.dataset}, {len(seeds)} seeds")
        ax.legend(fontsize=7)
    png = save_figure(fig, out_dir / f"deep_spiking_{args.dataset}.png")

    layers_h = " | ".join(layers)
    for rule in rules:
        print(f"\n{rule} on {args.dataset}, T = {args.timesteps}, seeds {seeds} (mean ± sd, %)\n")
        print(f"| quantity | {layers_h} |")
        print("|---|" + "---|" * len(layers))
        a = ds[f"{rule}_test_accuracy"]
        print(f"| readout, rate net | {_stat(a.sel(model='rate').values)} |")
        print(f"| readout, spiking twin | {_stat(a.sel(model='lif').values)} |")
        print(f"| readout gap (spiking - rate) | {_stat(a.sel(model='lif').values - a.sel(model='rate').values)} |")
        print(f"| firing rate (% of neuron-steps with a spike) | {_stat(ds[f'{rule}_firing_rate'].values)} |")
        print(f"| silent channels (%) | {_stat(ds[f'{rule}_firing_rate_silent_fraction'].values)} |")
        print(f"| CKA rate vs spiking twin | {_stat(ds[f'{rule}_twin_cka'].values)} |")
        print(f"| CKA rate vs rate (next seed) | {_stat(ds[f'{rule}_seed_cka'].values)} |")
    print(f"\nwrote {nc} and {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
