"""Gabor surprise analysis of DPC: loss by image type, D vs U unit responses and the surprise index over epochs.

Trains DPC on Gabor sequences (or reads a finished ``ratespike train dpc`` results file with ``--from``) and
writes ``gabor_surprise.nc`` with dimensions ``epoch`` (0 = the no-update baseline), ``stage`` (encoder,
aggregator, predictor), ``unit`` (channel x spatial cell) and ``image_type`` (A B C D U G), plus figures:

* ``loss_by_image_type.png``: probe loss per predicted image type over epochs, U onset marked;
* ``usi_distribution.png``: per-stage histograms of the unit surprise index USI = (mean_U - mean_D) /
  sqrt((sd_U^2 + sd_D^2) / 2) before U onset and at the last epoch;
* ``usi_over_epochs.png``: mean USI +- SEM over units per stage, and the correlation of unit USIs between
  consecutive epochs.

As in colleenjg/DPC ``analysis/usi_diffs.py`` (after Gillon et al. 2023): per-epoch mean and SEM over units,
a one-sample t-test of the USIs against 0, the paired change from the last pre-onset epoch, and the Pearson
correlation of unit USIs between consecutive epochs ("epochs since U onset" standing in for recording days).

Examples
--------
python analyses/gabor_surprise.py --out-dir results/gabor                      # CPU preset, 6 epochs, U at 3
python analyses/gabor_surprise.py --from dpc.nc --out-dir results/gabor        # analyse an existing run
python analyses/gabor_surprise.py --protocol paper --device cuda --out-dir r/  # ResNet-18, 128 px, U at 12
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np
import xarray as xr

USI_BINS = np.linspace(-3.0, 3.0, 31)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__[__doc__.index(
                                    "Examples"):])
    p.add_argument("--from", dest="source", default=None, help="results file of 'ratespike train dpc' to analyse "
                   "(no training)")
    p.add_argument("--out-dir", required=True, help="folder for gabor_surprise.nc and the figures")
    p.add_argument("--protocol", choices=("cpu", "paper", "roll"), default="cpu",
                   help="cpu: small 3D encoder at 64 px; paper: 2D3D ResNet-18 at 128 px, no roll; roll: paper "
                        "with the roll variant (default cpu)")
    p.add_argument("--epochs", type=int, default=None, help="training epochs (default: the protocol's)")
    p.add_argument("--onset", type=int, default=None, help="U onset epoch (default: the protocol's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE")
    p.add_argument("--resume", action="store_true", help="continue the training run from its checkpoint")
    return p.parse_args(argv)


def train(args: argparse.Namespace, out_dir: Path) -> Path:
    """Train DPC with the chosen protocol; returns the results file (``dpc_run.nc`` in ``out_dir``)."""
    from bridge.config import apply_overrides
    from ratenets.rules.dpc import DPC, cpu_preset, paper_preset, roll_preset
    from ratenets.train import RunContext, fit

    cfg = {"cpu": cpu_preset, "paper": paper_preset, "roll": lambda: roll_preset(paper_preset())}[args.protocol]()
    changes = {}
    if args.epochs is not None:
        changes["epochs"] = args.epochs
    if args.onset is not None:
        changes["unexpected_onset_epoch"] = args.onset
    cfg = apply_overrides(dataclasses.replace(cfg, **changes), args.overrides)
    run = out_dir / "dpc_run.nc"
    ctx = RunContext(dataset="gabor", seeds=(args.seed,), device=args.device, out=run, resume=args.resume,
                     progress=sys.stderr.isatty())
    fit(DPC, cfg, DPC.load_data(cfg, "gabor", None), ctx,
        on_epoch=lambda e, m: print(f"epoch {e}: loss_by_image_type "
                                    f"{np.round(m['loss_by_image_type'].values, 3).tolist()}", file=sys.stderr))
    return run


def _with_baseline(run: xr.Dataset, name: str) -> xr.DataArray:
    """Per-epoch variable with the epoch-0 baseline prepended (when the run has one)."""
    da = run[name]
    base = f"baseline_{name}"
    if base in run:
        b = run[base].expand_dims(epoch=[0])
        da = xr.concat([b, da], dim="epoch")
    return da


def analyse(run: xr.Dataset) -> xr.Dataset:
    """The analysis dataset (dims epoch, stage, unit, image_type) from a DPC results dataset."""
    from scipy import stats

    from bridge.io import provenance

    cfg = __import__("json").loads(run.attrs["config"])
    onset = int(cfg["unexpected_onset_epoch"])
    out = {n: _with_baseline(run, n) for n in ("loss_by_image_type", "accuracy_by_image_type",
                                                 "type_accuracy_by_image_type", "loss_by_orientation",
                                                 "response_mean", "response_sd", "surprise_index", "test_loss")}
    usi = out["surprise_index"]                                        # (epoch, stage, unit)
    n_units = usi.sizes["unit"]
    ep = usi["epoch"].values
    out["usi_mean"] = usi.mean("unit").assign_attrs(long_name="mean USI over units", units="1")
    out["usi_sem"] = (usi.std("unit", ddof=1) / np.sqrt(n_units)).assign_attrs(long_name="SEM of the USI over "
                                                                               "units", units="1")
    out["usi_abs_mean"] = abs(usi).mean("unit").assign_attrs(long_name="mean |USI| over units", units="1")
    p0 = stats.ttest_1samp(usi.values, 0.0, axis=-1).pvalue
    out["usi_p_vs_zero"] = xr.DataArray(p0, dims=("epoch", "stage"), coords={"epoch": ep, "stage": usi["stage"]},
                                        attrs={"long_name": "two-sided one-sample t-test of unit USIs against 0",
                                               "units": "1"})
    hist = np.stack([np.stack([np.histogram(np.clip(usi.sel(epoch=e, stage=s).values, USI_BINS[0], USI_BINS[-1]),
                                            USI_BINS)[0] for s in usi["stage"].values]) for e in ep])
    centers = (USI_BINS[:-1] + USI_BINS[1:]) / 2
    out["usi_histogram"] = xr.DataArray(hist / n_units, dims=("epoch", "stage", "usi_bin"),
                                        coords={"epoch": ep, "stage": usi["stage"], "usi_bin": centers},
                                        attrs={"long_name": "fraction of units per USI bin (clipped to [-3, 3])",
                                               "units": "1"})
    pre = onset - 1                                                    # last epoch trained without U
    ref = usi.sel(epoch=pre) if pre in ep else usi.isel(epoch=0)
    diff = usi - ref
    out["usi_change_from_pre_onset"] = diff.mean("unit").assign_attrs(
        long_name=f"mean change of unit USIs since epoch {pre} (the last before U onset)", units="1")
    pd = stats.ttest_rel(usi.values, np.broadcast_to(ref.values, usi.shape), axis=-1).pvalue
    out["usi_change_p"] = xr.DataArray(np.nan_to_num(pd, nan=1.0), dims=("epoch", "stage"),
                                       coords={"epoch": ep, "stage": usi["stage"]},
                                       attrs={"long_name": "paired t-test of unit USIs vs the pre-onset epoch",
                                              "units": "1"})
    corr = np.full((len(ep), usi.sizes["stage"]), np.nan)
    for i in range(1, len(ep)):
        for j in range(usi.sizes["stage"]):
            a, b = usi.values[i - 1, j], usi.values[i, j]
            if a.std() > 0 and b.std() > 0:
                corr[i, j] = np.corrcoef(a, b)[0, 1]
    out["usi_corr_previous_epoch"] = xr.DataArray(corr, dims=("epoch", "stage"),
                                                  coords={"epoch": ep, "stage": usi["stage"]},
                                                  attrs={"long_name": "Pearson r of unit USIs with the previous "
                                                         "epoch's (NaN at the first epoch)", "units": "1"})
    out["epoch"] = xr.DataArray(ep, dims="epoch", attrs={"long_name": "finished training epochs (0: no update)",
                                                           "units": "1"})
    ds = xr.Dataset(out)
    ds.attrs.update(provenance(kind="analysis", config_json=run.attrs["config"], seed=int(run.attrs.get("seed", 0)),
                               extra={"analysis": "gabor_surprise", "rule": "dpc", "dataset": "gabor",
                                      "unexpected_onset_epoch": onset}))
    return ds


def figures(ds: xr.Dataset, out_dir: Path) -> list[Path]:
    """Write the three figures; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bridge.plots import save_figure

    onset = int(ds.attrs["unexpected_onset_epoch"])
    paths = []
    fig, ax = plt.subplots(figsize=(5, 3.6))
    for t in ds["image_type"].values:
        ax.plot(ds["epoch"], ds["loss_by_image_type"].sel(image_type=t), marker="o", label=str(t))
    ax.axvline(onset - 0.5, color="k", ls="--", lw=1, label="U onset")
    ax.set_xlabel("epoch (0: before any update)")
    ax.set_ylabel("probe InfoNCE loss")
    ax.set_title("DPC loss by predicted image type")
    ax.legend(fontsize=7, ncol=2)
    paths.append(save_figure(fig, out_dir / "loss_by_image_type.png"))

    stages = list(ds["stage"].values)
    fig, axes = plt.subplots(1, len(stages), figsize=(4 * len(stages), 3.3), squeeze=False)
    pre = onset - 1 if (onset - 1) in ds["epoch"].values else int(ds["epoch"][0])
    last = int(ds["epoch"][-1])
    for ax, s in zip(axes[0], stages):
        for e, col in ((pre, "tab:blue"), (last, "tab:red")):
            h = ds["usi_histogram"].sel(epoch=e, stage=s)
            ax.step(h["usi_bin"], h, where="mid", color=col, label=f"epoch {e}")
        ax.axvline(0, color="k", lw=0.8)
        ax.set_title(f"{s}: USI per unit", fontsize=9)
        ax.set_xlabel("USI")
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("fraction of units")
    paths.append(save_figure(fig, out_dir / "usi_distribution.png"))

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for s in stages:
        m, e = ds["usi_mean"].sel(stage=s), ds["usi_sem"].sel(stage=s)
        axes[0].errorbar(ds["epoch"], m, yerr=e, marker="o", capsize=2, label=s)
        axes[1].plot(ds["epoch"], ds["usi_corr_previous_epoch"].sel(stage=s), marker="o", label=s)
    for ax in axes:
        ax.axvline(onset - 0.5, color="k", ls="--", lw=1)
        ax.set_xlabel("epoch")
        ax.legend(fontsize=7)
    axes[0].set_ylabel("mean USI +- SEM")
    axes[1].set_ylabel("r(USI, previous epoch)")
    paths.append(save_figure(fig, out_dir / "usi_over_epochs.png"))
    return paths


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from bridge.errors import RatespikeError
    from bridge.io import check_writable, open_run, write_run

    try:
        out_dir = Path(args.out_dir)
        check_writable(out_dir / "gabor_surprise.nc")
        src = Path(args.source) if args.source else train(args, out_dir)
        run = open_run(src)
        if run.attrs.get("rule") != "dpc":
            raise RatespikeError(f"{str(src)!r} is not a results file of 'ratespike train dpc'")
        ds = analyse(run)
        write_run(ds, out_dir / "gabor_surprise.nc")
        paths = figures(ds, out_dir)
    except RatespikeError as e:
        print(f"gabor_surprise: error: {e}", file=sys.stderr)
        return 2
    last = ds.isel(epoch=-1)
    print("last-epoch loss by image type: " + ", ".join(
        f"{t} {float(v):.3f}" for t, v in zip(ds["image_type"].values, last["loss_by_image_type"].values)))
    for s in ds["stage"].values:
        print(f"{s}: mean USI by epoch " + " ".join(f"{float(v):+.3f}" for v in ds["usi_mean"].sel(stage=s).values))
    print(f"wrote {out_dir / 'gabor_surprise.nc'} and " + ", ".join(p.name for p in paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
