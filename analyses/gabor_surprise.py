"""Gabor surprise analysis of DPC: loss by image type, and the unit surprise index at colleenjg/DPC's hook sites.

Trains DPC on Gabor sequences (or reads a finished ``ratespike train dpc`` results file with ``--from``) and
writes ``gabor_surprise.nc`` with dimensions ``epoch`` (0 = the no-update baseline), ``site`` (encoder,
contextual, predictive: the original's hook sites, see ``ratenets/analysis/dpc_hooks.py``), ``hook_type``
(activations: the module output; errors: the gradient of the loss w.r.t. it, from a dry pass in eval mode
without update), ``unit`` (prediction step x channel x spatial cell) and ``image_type`` (A B C D U G), plus
figures:

* ``loss_by_image_type.png``: probe loss per predicted image type over epochs, U onset marked;
* ``usi_distribution.png``: per site and hook type, histograms of the unit surprise index USI = (mean_U -
  mean_D) / sqrt((sd_U^2 + sd_D^2) / 2) (D and U pooled over orientations) before U onset and at the last epoch;
* ``usi_over_epochs.png``: mean USI +- SEM over units per site and hook type, and the correlation of unit USIs
  between consecutive epochs.

As in colleenjg/DPC ``analysis/usi_diffs.py`` (after Gillon et al. 2023): per-epoch mean, SEM and SD over
units of the USI and of the U - D difference, a t-test of each against 0, paired t-tests of unit USIs between
epochs 0, 1, 2 since onset (Bonferroni over 6 comparisons, as the original's ``format_pval``), and the Pearson
correlation of unit USIs between consecutive epochs with a bootstrapped SD ("epochs since U onset" standing in
for recording days). Also: the mean change of unit USIs from the last epoch before onset. With one model all
units are used (the original subsamples 1/50 of them per model only when several models are pooled).

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
#: epochs since U onset compared pairwise (colleenjg/DPC ``usi_diffs.DIFF_EP_NS``) and the Bonferroni factor
#: of the original's ``format_pval`` (``get_n_comps(3)`` = 3 + 3)
DIFF_EPOCHS = (0, 1, 2)
N_COMPS = 6
SITE_COLORS = {"encoder": "#26783C", "contextual": "#A22D8A", "predictive": "#2E3392"}


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


def bootstrapped_corr_sd(a: np.ndarray, b: np.ndarray, seed: int, n_samples: int = 1000) -> float:
    """SD of the Pearson r over ``n_samples`` resamplings of the units with replacement (as the original's
    ``bootstrapped_corr``, which seeds 100 and counts up per comparison)."""
    rng = np.random.RandomState(seed)
    idx = rng.choice(len(a), (len(a), n_samples), replace=True)
    x, y = a[idx], b[idx]
    x = x - x.mean(0)
    y = y - y.mean(0)
    r = (x * y).sum(0) / np.sqrt((x * x).sum(0) * (y * y).sum(0))
    return float(np.clip(r, -1, 1).std())


def _finite_pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ok = np.isfinite(a) & np.isfinite(b)
    return a[ok], b[ok]


def analyse(run: xr.Dataset) -> xr.Dataset:
    """The analysis dataset (dims epoch, site, hook_type, unit, image_type) from a DPC results dataset."""
    from scipy import stats

    from bridge.errors import RatespikeError
    from bridge.io import provenance

    if "hook_mean" not in run:
        raise RatespikeError("the results file has no hook-site data (it was written before the hook analysis of "
                             "colleenjg/DPC was added); rerun 'ratespike train dpc'")
    cfg = __import__("json").loads(run.attrs["config"])
    onset = int(cfg["unexpected_onset_epoch"])
    out = {n: _with_baseline(run, n) for n in ("loss_by_image_type", "accuracy_by_image_type",
                                                 "type_accuracy_by_image_type", "loss_by_orientation",
                                                 "hook_mean", "hook_sd", "hook_clips_by_image_type",
                                                 "surprise_index", "test_loss")}
    from ratenets.analysis.dpc_hooks import surprise_index

    hm, hs = out["hook_mean"], out["hook_sd"]
    # recomputed from the unit statistics so that undefined units (both SDs 0) are NaN and left out
    u, d = dict(hook_image_type="U", drop=True), dict(hook_image_type="D", drop=True)
    usi = xr.apply_ufunc(surprise_index, hm.sel(**u), hs.sel(**u), hm.sel(**d), hs.sel(**d))
    out["surprise_index"] = usi.assign_attrs(run["surprise_index"].attrs, long_name="USI = (mean_U - mean_D) / "
                                             "sqrt((sd_U^2 + sd_D^2) / 2) per unit (NaN: undefined)")
    ep = usi["epoch"].values
    out["epochs_since_onset"] = xr.DataArray(ep - onset, dims="epoch", attrs={
        "long_name": "epochs since U onset (0: after the first epoch trained with U; colleenjg/DPC's "
                     "post-training pass of epoch n = 0)", "units": "1"})
    n_ok = np.isfinite(usi).sum("unit")
    out["usi_units"] = n_ok.assign_attrs(long_name="units with a defined USI", units="1")
    out["usi_mean"] = usi.mean("unit", skipna=True).assign_attrs(long_name="mean USI over units", units="1")
    out["usi_sem"] = (usi.std("unit", ddof=1, skipna=True) / np.sqrt(n_ok)).assign_attrs(
        long_name="SEM of the USI over units", units="1")
    out["usi_abs_mean"] = abs(usi).mean("unit", skipna=True).assign_attrs(long_name="mean |USI| over units",
                                                                         units="1")
    ud = hm.sel(hook_image_type="U", drop=True) - hm.sel(hook_image_type="D", drop=True)
    out["ud_diff_mean"] = ud.mean("unit", skipna=True).assign_attrs(long_name="mean U - D difference of the "
                                                                     "unit means", units="1")
    out["ud_diff_sem"] = (ud.std("unit", ddof=1, skipna=True) / np.sqrt(np.isfinite(ud).sum("unit"))).assign_attrs(
        long_name="SEM of the U - D difference over units", units="1")
    dims3 = ("epoch", "site", "hook_type")
    coords3 = {"epoch": ep, "site": usi["site"], "hook_type": usi["hook_type"]}
    p0 = stats.ttest_1samp(usi.values, 0.0, axis=-1, nan_policy="omit").pvalue
    out["usi_p_vs_zero"] = xr.DataArray(np.asarray(p0), dims=dims3, coords=coords3, attrs={
        "long_name": "two-sided t-test of unit USIs against 0 (the original's ttest_rel against zeros)",
        "units": "1"})
    pud = stats.ttest_1samp(ud.values, 0.0, axis=-1, nan_policy="omit").pvalue
    out["ud_diff_p_vs_zero"] = xr.DataArray(np.asarray(pud), dims=dims3, coords=coords3, attrs={
        "long_name": "two-sided t-test of unit U - D differences against 0", "units": "1"})
    hist = np.stack([[[np.histogram(np.clip(v[np.isfinite(v)], USI_BINS[0], USI_BINS[-1]), USI_BINS)[0]
                       for v in per_site] for per_site in per_ep] for per_ep in usi.values])
    centers = (USI_BINS[:-1] + USI_BINS[1:]) / 2
    out["usi_histogram"] = xr.DataArray(hist / np.maximum(n_ok.values[..., None], 1), dims=(*dims3, "usi_bin"),
                                        coords={**coords3, "usi_bin": centers},
                                        attrs={"long_name": "fraction of units per USI bin (clipped to [-3, 3])",
                                               "units": "1"})
    # paired t-tests between epochs 0, 1, 2 since onset (colleenjg/DPC DIFF_EP_NS), Bonferroni over
    # get_n_comps(3) = 6 comparisons as the original's format_pval
    pairs = [(a, b) for i, a in enumerate(DIFF_EPOCHS) for b in DIFF_EPOCHS[i + 1:]]
    pp = np.full((len(pairs), usi.sizes["site"], usi.sizes["hook_type"]), np.nan)
    for k, (a, b) in enumerate(pairs):
        if onset + a in ep and onset + b in ep:
            va, vb = usi.sel(epoch=onset + a).values, usi.sel(epoch=onset + b).values
            for i in range(pp.shape[1]):
                for j in range(pp.shape[2]):
                    x, y = _finite_pair(va[i, j], vb[i, j])
                    pp[k, i, j] = stats.ttest_rel(x, y).pvalue
    cmp_coords = {"comparison": [f"{a}v{b}" for a, b in pairs], "site": usi["site"], "hook_type": usi["hook_type"]}
    out["usi_epoch_pair_p"] = xr.DataArray(pp, dims=("comparison", "site", "hook_type"), coords=cmp_coords, attrs={
        "long_name": "paired t-test of unit USIs between epochs since onset", "units": "1"})
    out["usi_epoch_pair_p_bonferroni"] = xr.DataArray(np.minimum(pp * N_COMPS, 1.0),
                                                      dims=("comparison", "site", "hook_type"), coords=cmp_coords,
                                                      attrs={"long_name": f"the same, x {N_COMPS} (Bonferroni as "
                                                             "the original)", "units": "1"})
    pre = onset - 1                                                    # last epoch trained without U
    ref = usi.sel(epoch=pre) if pre in ep else usi.isel(epoch=0)
    out["usi_change_from_pre_onset"] = (usi - ref).mean("unit", skipna=True).assign_attrs(
        long_name=f"mean change of unit USIs since epoch {pre} (the last before U onset)", units="1")
    pc = np.ones((len(ep), usi.sizes["site"], usi.sizes["hook_type"]))
    for e in range(len(ep)):
        for i in range(pc.shape[1]):
            for j in range(pc.shape[2]):
                x, y = _finite_pair(usi.values[e, i, j], ref.values[i, j])
                if np.any(x != y):
                    pc[e, i, j] = stats.ttest_rel(x, y).pvalue
    out["usi_change_p"] = xr.DataArray(pc, dims=dims3, coords=coords3, attrs={
        "long_name": f"paired t-test of unit USIs against epoch {pre} (1 at that epoch)", "units": "1"})
    corr = np.full((len(ep), usi.sizes["site"], usi.sizes["hook_type"]), np.nan)
    corr_sd = np.full_like(corr, np.nan)
    seed = 100
    for e in range(1, len(ep)):
        for i in range(corr.shape[1]):
            for j in range(corr.shape[2]):
                a, b = _finite_pair(usi.values[e - 1, i, j], usi.values[e, i, j])
                if len(a) > 2 and a.std() > 0 and b.std() > 0:
                    corr[e, i, j] = np.corrcoef(a, b)[0, 1]
                    corr_sd[e, i, j] = bootstrapped_corr_sd(a, b, seed)
                seed += 1
    out["usi_corr_previous_epoch"] = xr.DataArray(corr, dims=dims3, coords=coords3, attrs={
        "long_name": "Pearson r of unit USIs with the previous epoch's (NaN at the first epoch)", "units": "1"})
    out["usi_corr_bootstrap_sd"] = xr.DataArray(corr_sd, dims=dims3, coords=coords3, attrs={
        "long_name": "bootstrapped SD of that r (1000 resamplings of the units)", "units": "1"})
    out["epoch"] = xr.DataArray(ep, dims="epoch", attrs={"long_name": "finished training epochs (0: no update)",
                                                           "units": "1"})
    ds = xr.Dataset(out)
    ds.attrs.update(provenance(kind="analysis", config_json=run.attrs["config"], seed=int(run.attrs.get("seed", 0)),
                               extra={"analysis": "gabor_surprise", "rule": "dpc", "dataset": "gabor",
                                      "unexpected_onset_epoch": onset,
                                      "contextual_steps": str(cfg.get("contextual_steps", "original"))}))
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

    sites, kinds = list(ds["site"].values), list(ds["hook_type"].values)
    fig, axes = plt.subplots(len(kinds), len(sites), figsize=(4 * len(sites), 3 * len(kinds)), squeeze=False,
                             constrained_layout=True)
    pre = onset - 1 if (onset - 1) in ds["epoch"].values else int(ds["epoch"][0])
    last = int(ds["epoch"][-1])
    for r, k in enumerate(kinds):
        for c, s in enumerate(sites):
            ax = axes[r][c]
            for e, col in ((pre, "tab:blue"), (last, "tab:red")):
                h = ds["usi_histogram"].sel(epoch=e, site=s, hook_type=k)
                ax.step(h["usi_bin"], h, where="mid", color=col,
                        label=f"epoch {e}" + (" (last before U)" if e == pre and e < onset else ""))
            ax.axvline(0, color="k", lw=0.8)
            ax.set_title(f"{s} {k}", fontsize=9)
            ax.set_xlabel("USI per unit")
            ax.set_ylabel("fraction of units")
            ax.legend(fontsize=7)
    paths.append(save_figure(fig, out_dir / "usi_distribution.png"))

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), constrained_layout=True)
    for s in sites:
        for k, ls in zip(kinds, ("-", "--")):      # the original's colours per site, errors dashed
            m, e = ds["usi_mean"].sel(site=s, hook_type=k), ds["usi_sem"].sel(site=s, hook_type=k)
            col = SITE_COLORS.get(str(s))
            axes[0].errorbar(ds["epoch"], m, yerr=e, marker="o", capsize=2, ls=ls, color=col, label=f"{s} {k}")
            axes[1].plot(ds["epoch"], ds["usi_corr_previous_epoch"].sel(site=s, hook_type=k), marker="o", ls=ls,
                         color=col, label=f"{s} {k}")
    for ax in axes:
        ax.axvline(onset - 0.5, color="k", ls="--", lw=1)
        ax.set_xlabel("epoch (0: before any update)")
        ax.legend(fontsize=6, ncol=2)
    axes[0].set_ylabel("mean USI +- SEM over units")
    axes[1].set_ylabel("r(unit USIs, previous epoch)")
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
    for s in ds["site"].values:
        for k in ds["hook_type"].values:
            print(f"{s} {k}: mean USI by epoch " + " ".join(
                f"{float(v):+.3f}" for v in ds["usi_mean"].sel(site=s, hook_type=k).values))
    print(f"wrote {out_dir / 'gabor_surprise.nc'} and " + ", ".join(p.name for p in paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
