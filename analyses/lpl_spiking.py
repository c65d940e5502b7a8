"""Halvagal & Zenke (2023), Figs. 5 and 6: analysis of spiking LPL runs into NetCDF + figures.

Two modes:

``network RUN.nc [RUN2.nc ...]``
    For each ``ratespike spike lpl-network`` file: Lasso decoding R^2 of every input population from the
    25 ms binned E activity, per-neuron selectivity and relative selectivity (histograms), participation
    ratio, rates over time, group weights (see :mod:`spiking.analysis`). Writes ``<stem>_analysis.nc`` and
    ``<stem>_fig5.png`` into ``--out-dir``.

``stdp``
    The Fig. 6 protocol sweeps in one build per sweep: windows for sigma2 in {0.1, 1, 100} (rho = 10 Hz,
    T = 50 ms, prior 10 Hz); pairing-rate dependence at delta_t = +-10 ms (T = 20 ms, prior 20 Hz,
    sigma2 = 0.1, rho in {0.1, 1, 5, 10, 20, 30, 40, 50} Hz); priors of 0 and 50 Hz. Writes ``stdp_windows.nc``,
    ``stdp_rates.nc``, ``stdp_priors.nc`` and ``stdp_fig6.png``.

``run``
    The Fig. 5 reproductions as resumable segmented cpp_standalone runs, one process per condition (at most
    ``--jobs`` at once), all on one cached binary: ``--protocol fast`` is ``run_snn_augmented_grad.sh``
    (fast RMS variant, 1800 s frozen priming + 10 000 s), ``--protocol paper`` is ``run_snn.sh`` (1800 s +
    100 000 s). Each run writes ``<condition>_s<seed>.nc`` into ``--out-dir`` after every ``--segment``
    seconds; running the same command again continues every unfinished file (``--resume``) and skips the
    finished ones, so a reproduction longer than a session is run in pieces.

``snapshots`` (also done by ``run`` as it waits)
    Keeps a copy of every segmented results file in ``--out-dir`` each time it advances, as
    ``snapshots/<stem>_t<simulated seconds>.nc``: the run file holds only its latest state, and the spikes are
    recorded only in the last ``record_last_s`` of the whole run, so R^2 over simulated time is measured on
    these copies by ``probe``.

``fork SRC.nc --conditions pred-off,hebb-off``
    Starts runs of other conditions from a run that is still in its frozen priming: during priming the weights
    do not change, so the spikes of lpl, pred-off and hebb-off (which differ only in lambda and phi) are the
    same; what carries the condition is the fast-RMS accumulator g2 (updated during priming, as
    ``LPLConnection::evolve`` does whatever ``stdp_active``; it decays by exp(-t / 100 s)) and the error
    traces (ms time constants). A fork at 1500 s of an 1800 s priming refreshes both with its own condition
    for the remaining 300 s (g2's older part weighs at most e^-3). Writes ``<condition>_s<seed>.nc`` files
    that ``run`` (or ``spike lpl-network --resume``) continues; inhib-fixed and inhib-off change the priming
    itself and are refused.

``probe RUN.nc [...]``
    Continues a copy of each file for ``--duration`` seconds with frozen weights (eta = zeta = 0; the rate and
    variance estimates run on) from its saved state, recording every spike, and analyses that window as
    ``network`` does: the decoding R^2, rates, participation ratio and selectivity of the network as it was at
    that simulated time. Writes ``<stem>_probe_analysis.nc`` per file and ``probe_summary.nc`` (one row per
    file: condition, seed, simulated time, R^2 per population, rates, PR, selectivity fractions).

Examples::

    python analyses/lpl_spiking.py run --protocol fast --conditions lpl,pred-off,hebb-off,inhib-off,inhib-fixed \
        --segment 200 --out-dir results/
    python analyses/lpl_spiking.py network run.nc --out-dir results/
    python analyses/lpl_spiking.py probe results/snapshots/lpl_s0_t*.nc --duration 100 --out-dir results/probe/
    python analyses/lpl_spiking.py stdp --device cpp_standalone --duration 200 --out-dir results/
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import xarray as xr

RATES_HZ = (0.1, 1.0, 5.0, 10.0, 20.0, 30.0, 40.0, 50.0)
SIGMA2 = (0.1, 1.0, 100.0)


def _plot_network(ds: xr.Dataset, an: xr.Dataset, path: Path) -> None:
    from bridge.plots import _figure, save_figure

    fig, ax = _figure(2, 3, figsize=(13, 7.5))  # constrained layout: titles and labels never overlap
    ax[0][0].bar(an["population"].values, an["r2"].values)
    ax[0][0].set_ylabel("decoding R$^2$ (1)")
    ax[0][0].set_xlabel("input population")
    ax[0][0].axhline(0, color="k", lw=0.5)
    ax[0][0].set_title("Lasso decoding from 25 ms E counts", fontsize=9)
    for k in ("E", "I"):
        if f"population_rate_{k}" in ds:
            ax[0][1].plot(ds[f"rate_time_{k}"].values, ds[f"population_rate_{k}"].values, label=k)
    ax[0][1].set_xlabel("time [s]")
    ax[0][1].set_ylabel("rate [Hz]")
    ax[0][1].legend(fontsize=8)
    ax[0][1].set_title("population rates", fontsize=9)
    gw = an["group_weight"].values
    im = ax[0][2].imshow(gw.T, aspect="auto", interpolation="nearest")
    ax[0][2].set_yticks(range(5), an["population"].values)
    ax[0][2].set_xlabel("E cell (index)")
    ax[0][2].set_ylabel("input population")
    ax[0][2].set_title("mean input weight per population", fontsize=9)
    fig.colorbar(im, ax=ax[0][2], label="mean input weight")
    bins = np.linspace(-1, 1, 21)
    for a, name in zip((ax[1][0], ax[1][1], ax[1][2]), ("selectivity_P1", "selectivity_P2", "relative_selectivity")):
        v = an[name].values
        a.hist(v[np.isfinite(v)], bins=bins)
        a.set_title(an[name].attrs["long_name"], fontsize=9)
        a.set_xlabel(f"{name} (1)")
        a.set_ylabel("E cells")
    fig.suptitle(f"lpl-network ({ds.attrs.get('condition', '')}), {ds.attrs['simulated_time_s']:g} s; "
                 f"PR {float(an['participation_ratio']):.1f}, E {float(an['rate_E']):.2f} Hz, "
                 f"I {float(an['rate_I']):.2f} Hz", fontsize=10)
    save_figure(fig, path)


def network(args: argparse.Namespace) -> int:
    from bridge.io import open_run, provenance, write_run
    from spiking.analysis import analyse

    out_dir = Path(args.out_dir)
    for f in args.files:
        ds = open_run(f)
        an = analyse(ds, bin_s=args.bin_ms * 1e-3, alpha=args.alpha)
        an.attrs.update(provenance(kind="analysis", config_json=ds.attrs["config"], seed=int(ds.attrs["seed"]),
                                   extra={"source_file": str(f), "analysis": "lpl_spiking network",
                                          "simulated_time_s": float(ds.attrs["simulated_time_s"])}))
        stem = Path(f).stem
        write_run(an, out_dir / f"{stem}_analysis.nc")
        _plot_network(ds, an, out_dir / f"{stem}_fig5.png")
        r2 = ", ".join(f"{p} {v:+.2f}" for p, v in zip(an["population"].values, an["r2"].values))
        rs = an["relative_selectivity"].values
        rs = rs[np.isfinite(rs)]
        print(f"{f}: R2 [{r2}]; PR {float(an['participation_ratio']):.1f}; rates E {float(an['rate_E']):.2f} Hz, "
              f"I {float(an['rate_I']):.2f} Hz; relative selectivity: {np.mean(rs > 0.5):.0%} > 0.5, "
              f"{np.mean(rs < -0.5):.0%} < -0.5")
    return 0


def stdp(args: argparse.Namespace) -> int:
    from bridge.config import replace_config, to_json
    from bridge.io import provenance, write_run
    from bridge.plots import _figure, save_figure
    from spiking.experiments import stdp_protocol as sp

    out_dir = Path(args.out_dir)
    base = sp.config(duration_s=args.duration)
    # windows
    cfgs = [replace_config(base, {"sigma2": s}) for s in SIGMA2]
    res, timing = sp.sweep(cfgs, seed=args.seed, device=args.device)
    win = xr.concat([r["dw"] for r in res], dim="sigma2").assign_coords(sigma2=list(SIGMA2))
    wds = xr.Dataset({"dw": win})
    wds.attrs.update(provenance(kind="analysis", config_json=to_json(base), seed=args.seed, extra=timing))
    write_run(wds, out_dir / "stdp_windows.nc")
    # pairing-rate dependence at +-10 ms (pre indices 25 and 75 of 100 with T = 20 ms)
    rb = replace_config(base, {"window_ms": 20.0, "prior_rate_hz": 20.0, "sigma2": 0.1})
    cfgs = [replace_config(rb, {"pairing_rate_hz": r}) for r in RATES_HZ]
    res, timing = sp.sweep(cfgs, seed=args.seed, device=args.device)
    rate = xr.Dataset({
        "dw_plus10": ("pairing_rate", [float(r["dw"].sel(delta_t=10, method="nearest")) for r in res],
                      {"units": "1", "long_name": "dw at delta_t = +10 ms"}),
        "dw_minus10": ("pairing_rate", [float(r["dw"].sel(delta_t=-10, method="nearest")) for r in res],
                       {"units": "1", "long_name": "dw at delta_t = -10 ms"})},
        coords={"pairing_rate": ("pairing_rate", list(RATES_HZ), {"units": "Hz"})})
    rate.attrs.update(provenance(kind="analysis", config_json=to_json(rb), seed=args.seed, extra=timing))
    write_run(rate, out_dir / "stdp_rates.nc")
    # priors of 0 and 50 Hz over the same rates
    pri = {}
    for prior in (0.0, 50.0):
        cfgs = [replace_config(rb, {"prior_rate_hz": prior, "pairing_rate_hz": r}) for r in RATES_HZ]
        res, timing = sp.sweep(cfgs, seed=args.seed, device=args.device)
        pri[prior] = [float(r["dw"].sel(delta_t=10, method="nearest")) for r in res]
    prs = xr.Dataset({"dw_plus10": (("prior", "pairing_rate"), [pri[0.0], pri[50.0]], {"units": "1"})},
                     coords={"prior": ("prior", [0.0, 50.0], {"units": "Hz"}),
                             "pairing_rate": ("pairing_rate", list(RATES_HZ), {"units": "Hz"})})
    prs.attrs.update(provenance(kind="analysis", config_json=to_json(rb), seed=args.seed, extra=timing))
    write_run(prs, out_dir / "stdp_priors.nc")
    fig, ax = _figure(1, 3, figsize=(13, 3.6))
    for s in SIGMA2:
        d = win.sel(sigma2=s)
        ax[0][0].plot(d["delta_t"], d, label=f"$\\sigma^2$={s:g}")
    ax[0][0].axhline(0, color="k", lw=0.5)
    ax[0][0].set_xlabel("$\\Delta t$ = t_post - t_pre [ms]")
    ax[0][0].set_ylabel("$\\Delta W$")
    ax[0][0].legend(fontsize=8)
    ax[0][1].semilogx(RATES_HZ, rate["dw_plus10"], "o-", label="+10 ms")
    ax[0][1].semilogx(RATES_HZ, rate["dw_minus10"], "o-", label="-10 ms")
    ax[0][1].set_xlabel("pairing rate [Hz]")
    ax[0][1].legend(fontsize=8)
    for prior in (0.0, 50.0):
        ax[0][2].semilogx(RATES_HZ, pri[prior], "o-", label=f"prior {prior:g} Hz")
    ax[0][2].set_xlabel("pairing rate [Hz]")
    ax[0][2].set_title("+10 ms", fontsize=9)
    ax[0][2].legend(fontsize=8)
    save_figure(fig, out_dir / "stdp_fig6.png")
    for s in SIGMA2:
        d = win.sel(sigma2=s)
        print(f"sigma2={s:g}: " + ", ".join(f"dw({t:+g})={float(d.sel(delta_t=t, method='nearest')):+.3f}"
                                             for t in (-30, -10, 0, 12, 20)))
    print("rate dependence +10 ms: " + ", ".join(f"{r:g} Hz {v:+.2f}" for r, v in zip(RATES_HZ, rate["dw_plus10"].values)))
    print("rate dependence -10 ms: " + ", ".join(f"{r:g} Hz {v:+.2f}" for r, v in zip(RATES_HZ, rate["dw_minus10"].values)))
    for prior in (0.0, 50.0):
        print(f"prior {prior:g} Hz, +10 ms: " + ", ".join(f"{r:g} Hz {v:+.2f}" for r, v in zip(RATES_HZ, pri[prior])))
    return 0


PROTOCOLS = {"fast": (1800.0, 10000.0, True), "paper": (1800.0, 100000.0, False)}


def run(args: argparse.Namespace) -> int:
    """Start or continue the segmented runs of every condition; one subprocess each."""
    import subprocess
    import time

    import xarray as xr

    prime, learn, fast = PROTOCOLS[args.protocol]
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    todo = []
    for cond in args.conditions.split(","):
        out = out_dir / f"{cond}_s{args.seed}.nc"
        cmd = [sys.executable, "-m", "bridge.cli", "spike", "lpl-network", "--device", "cpp_standalone",
               "--seed", str(args.seed), "--duration", repr(prime + learn), "--out", str(out),
               "--set", f"condition={cond}", "--set", f"plasticity_start_s={prime!r}",
               "--set", f"segment_s={args.segment!r}", "--set", f"fast_rms={'true' if fast else 'false'}",
               "--set", f"record_last_s={args.record_last!r}"]
        if args.build_root:
            cmd += ["--build-root", args.build_root]
        if out.exists():
            with xr.open_dataset(out) as ds:
                if int(ds.attrs.get("complete", 0)) == 1:
                    print(f"{out}: complete, skipped")
                    continue
            cmd.append("--resume")
        todo.append((cond, out, cmd))
    running: list = []
    rc = 0
    last_snap = 0.0
    while todo or running:
        while todo and len(running) < args.jobs:
            cond, out, cmd = todo.pop(0)
            log = open(out.with_suffix(".log"), "ab")
            running.append((cond, out, subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT), log))
            print(f"{cond}: started -> {out} (log {out.with_suffix('.log')})")
        if time.monotonic() - last_snap > 30:
            keep_snapshots(out_dir)
            last_snap = time.monotonic()
        for item in list(running):
            cond, out, proc, log = item
            if proc.poll() is not None:
                log.close()
                running.remove(item)
                rc = rc or proc.returncode
                print(f"{cond}: exit {proc.returncode}")
        time.sleep(1.0)
    keep_snapshots(out_dir)
    return rc


def _progress_of(path: Path) -> tuple[float, int] | None:
    """(simulated_until_s, complete) of a segmented results file, None if it is not one (or being replaced)."""
    try:
        with xr.open_dataset(path) as ds:
            if "simulated_until_s" not in ds.attrs:
                return None
            return float(ds.attrs["simulated_until_s"]), int(ds.attrs.get("complete", 0))
    except Exception:  # noqa: BLE001 - a file mid-replace or not ours: skipped this time
        return None


def keep_snapshots(out_dir: Path) -> list[Path]:
    """Copy each segmented file of ``out_dir`` that advanced to ``snapshots/<stem>_t<T>.nc`` (atomic)."""
    import os
    import shutil

    snap_dir = out_dir / "snapshots"
    made = []
    for f in sorted(out_dir.glob("*.nc")):
        prog = _progress_of(f)
        if prog is None:
            continue
        dest = snap_dir / f"{f.stem}_t{prog[0]:g}.nc"
        if dest.exists():
            continue
        snap_dir.mkdir(exist_ok=True)
        tmp = snap_dir / f".{dest.name}.tmp"
        shutil.copyfile(f, tmp)
        if _progress_of(tmp) != prog:  # replaced while copying: next time
            tmp.unlink()
            continue
        os.replace(tmp, dest)
        made.append(dest)
    return made


def snapshots(args: argparse.Namespace) -> int:
    """Keep snapshots of the files of --out-dir until every one is complete (or --hours have passed)."""
    import time

    out_dir = Path(args.out_dir)
    stop = time.monotonic() + args.hours * 3600
    while time.monotonic() < stop:
        for d in keep_snapshots(out_dir):
            print(f"snapshot {d}", flush=True)
        progs = [_progress_of(f) for f in out_dir.glob("*.nc")]
        if progs and all(p is not None and p[1] == 1 for p in progs):
            return 0
        time.sleep(args.every)
    return 0


#: conditions whose frozen priming is the same simulation (they differ only in lambda and phi)
SHARED_PRIMING = ("lpl", "pred-off", "hebb-off")


def fork(args: argparse.Namespace) -> int:
    """Copies of a priming-phase run file relabelled as other conditions (see the module docstring)."""
    import json
    import os
    import shutil

    import netCDF4

    from bridge.config import replace_config, to_json
    from bridge.errors import ConfigError
    from spiking.experiments import lpl_network as ln

    src = Path(args.source)
    prog = _progress_of(src)
    if prog is None:
        raise ConfigError(f"fork: {str(src)!r} is not a segmented lpl-network results file")
    with xr.open_dataset(src) as ds:
        cfg0 = ln.config_from_json(ds.attrs["config"])
        seed = int(ds.attrs["seed"])
    if cfg0.protocol.condition not in SHARED_PRIMING:
        raise ConfigError(f"fork: {cfg0.protocol.condition!r} primes differently from {', '.join(SHARED_PRIMING)}")
    if not prog[0] < cfg0.rule.plasticity_start_s:
        raise ConfigError(f"fork: {str(src)!r} is past its priming ({prog[0]:g} s >= {cfg0.rule.plasticity_start_s:g} s)")
    conds = [c for c in args.conditions.split(",") if c]
    bad = [c for c in conds if c not in SHARED_PRIMING or c == cfg0.protocol.condition]
    if bad or not conds:
        raise ConfigError(f"fork: conditions must be among {', '.join(c for c in SHARED_PRIMING if c != cfg0.protocol.condition)}"
                          f", got {args.conditions!r}")
    out_dir = Path(args.out_dir)
    for cond in conds:
        dest = out_dir / f"{cond}_s{seed}.nc"
        if dest.exists():
            raise ConfigError(f"fork: {str(dest)!r} exists")
    out_dir.mkdir(parents=True, exist_ok=True)
    for cond in conds:
        dest = out_dir / f"{cond}_s{seed}.nc"
        cfg = replace_config(cfg0, {"condition": cond})
        tmp = out_dir / f".{dest.name}.tmp"
        shutil.copyfile(src, tmp)
        with netCDF4.Dataset(tmp, "r+") as nc:
            nc.setncattr("config", to_json(cfg))
            nc.setncattr("condition", cond)
            nc.setncattr("forked_from", json.dumps({"file": str(src), "condition": cfg0.protocol.condition,
                                                    "simulated_until_s": prog[0]}))
        os.replace(tmp, dest)
        print(f"{dest}: {cond}, from {src} at {prog[0]:g} s of {cfg0.rule.plasticity_start_s:g} s priming")
    return 0


def probe(args: argparse.Namespace) -> int:
    """Frozen-weight continuation of each file, analysed like ``network``."""
    import json
    import shutil
    import tempfile

    from bridge.config import recorded_field, replace_config
    from bridge.errors import ConfigError
    from bridge.io import open_group, open_run, provenance, write_run
    from spiking.analysis import analyse
    from spiking.experiments import lpl_network as ln

    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for f in args.files:
        prog = _progress_of(Path(f))
        if prog is None:
            raise ConfigError(f"probe: {f!r} is not a segmented lpl-network results file")
        done = prog[0]
        steps = args.duration / 0.5
        if not args.duration > 0 or abs(steps - round(steps)) > 1e-9 or abs(done / args.duration - round(done / args.duration)) > 1e-9:
            raise ConfigError(f"probe: --duration must be a positive whole number of 0.5 s steps dividing the "
                              f"file's {done:g} s, got {args.duration!r}")
        with tempfile.TemporaryDirectory(prefix="ratespike-probe-") as tmp:
            copy = Path(tmp) / "run.nc"
            shutil.copyfile(f, copy)
            ds0 = open_run(copy)
            groups0 = {g: open_group(copy, g) for g in ("raw", "state")}
            cfg0 = ln.config_from_json(ds0.attrs["config"])
            cfg = replace_config(cfg0, {"duration_s": done + args.duration, "segment_s": args.duration,
                                        "record_last_s": args.duration, "eta": 0.0, "zeta": 0.0})
            ds, _ = ln.simulate(cfg, seed=int(ds0.attrs["seed"]), device="cpp_standalone",
                                build_root=args.build_root, resume_from=(ds0, groups0))
        an = analyse(ds, bin_s=args.bin_ms * 1e-3, alpha=args.alpha)
        an.attrs.update(provenance(kind="analysis", config_json=ds.attrs["config"], seed=int(ds.attrs["seed"]),
                                   extra={"source_file": str(f), "analysis": "lpl_spiking probe",
                                          "probe_from_s": done, "probe_duration_s": float(args.duration),
                                          "source_config": ds0.attrs["config"]}))
        stem = Path(f).stem
        write_run(an, out_dir / f"{stem}_probe_analysis.nc")
        rs = an["relative_selectivity"].values
        rs = rs[np.isfinite(rs)]
        cond = recorded_field(json.loads(ds0.attrs["config"]), "condition", "")
        rows.append({"file": stem, "condition": cond, "seed": int(ds0.attrs["seed"]), "time_s": done,
                     "r2": an["r2"].values.astype(float), "rate_E": float(an["rate_E"]), "rate_I": float(an["rate_I"]),
                     "pr": float(an["participation_ratio"]), "rs_pos": float(np.mean(rs > 0.5)) if len(rs) else np.nan,
                     "rs_neg": float(np.mean(rs < -0.5)) if len(rs) else np.nan,
                     "population": an["population"].values})
        r2 = ", ".join(f"{p} {v:+.2f}" for p, v in zip(an["population"].values, an["r2"].values))
        print(f"{f} ({cond}, {done:g} s): R2 [{r2}]; PR {float(an['participation_ratio']):.1f}; rates E "
              f"{float(an['rate_E']):.2f} Hz, I {float(an['rate_I']):.2f} Hz; relative selectivity "
              f"{rows[-1]['rs_pos']:.0%} > 0.5, {rows[-1]['rs_neg']:.0%} < -0.5", flush=True)
    summary = xr.Dataset(
        {"r2": (("file", "population"), np.array([r["r2"] for r in rows])),
         **{k: ("file", np.array([r[k] for r in rows])) for k in ("rate_E", "rate_I", "pr", "rs_pos", "rs_neg")}},
        coords={"file": [r["file"] for r in rows], "population": rows[0]["population"],
                "condition": ("file", [r["condition"] for r in rows]), "seed": ("file", [r["seed"] for r in rows]),
                "time_s": ("file", [r["time_s"] for r in rows])})
    summary["time_s"].attrs["units"] = "s"
    summary["rate_E"].attrs["units"] = summary["rate_I"].attrs["units"] = "Hz"
    summary["rs_pos"].attrs["long_name"] = "fraction of E cells with relative selectivity > 0.5"
    summary["rs_neg"].attrs["long_name"] = "fraction of E cells with relative selectivity < -0.5"
    summary.attrs.update(provenance(kind="analysis", config_json=json.dumps({"duration_s": args.duration,
                                                                             "bin_ms": args.bin_ms,
                                                                             "alpha": args.alpha}),
                                    seed=0, extra={"analysis": "lpl_spiking probe summary"}))
    write_run(summary, out_dir / "probe_summary.nc")
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Halvagal & Zenke (2023) Figs. 5-6 from spiking LPL runs: "
                                "NetCDF + figures")
    sub = p.add_subparsers(dest="mode", required=True)
    n = sub.add_parser("network", help="analyse lpl-network result files (Fig. 5)")
    n.add_argument("files", nargs="+")
    n.add_argument("--bin-ms", type=float, default=25.0)
    n.add_argument("--alpha", type=float, default=0.1, help="Lasso alpha (notebook: 0.1)")
    n.add_argument("--out-dir", default=".")
    s = sub.add_parser("stdp", help="run the Fig. 6 STDP-protocol sweeps and plot them")
    s.add_argument("--device", default="cpp_standalone")
    s.add_argument("--duration", type=float, default=200.0)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out-dir", default=".")
    r = sub.add_parser("run", help="start or continue the segmented Fig. 5 runs of several conditions")
    r.add_argument("--protocol", choices=sorted(PROTOCOLS), default="fast")
    r.add_argument("--conditions", default="lpl,pred-off,hebb-off,inhib-off,inhib-fixed")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--segment", type=float, default=500.0, help="seconds per segment (whole 0.5 s steps)")
    r.add_argument("--record-last", type=float, default=100.0, help="spikes recorded in the last seconds")
    r.add_argument("--jobs", type=int, default=1, help="runs at once (one core each)")
    r.add_argument("--build-root", default=None)
    r.add_argument("--out-dir", default=".")
    w = sub.add_parser("snapshots", help="keep a copy of each segmented file of --out-dir as it advances")
    w.add_argument("--out-dir", default=".")
    w.add_argument("--every", type=float, default=30.0, help="seconds between looks")
    w.add_argument("--hours", type=float, default=12.0, help="give up after this long")
    fk = sub.add_parser("fork", help="start pred-off/hebb-off runs from an lpl run still in its priming")
    fk.add_argument("source")
    fk.add_argument("--conditions", default="pred-off,hebb-off")
    fk.add_argument("--out-dir", default=".")
    pr = sub.add_parser("probe", help="frozen-weight continuation of files, analysed as network")
    pr.add_argument("files", nargs="+")
    pr.add_argument("--duration", type=float, default=100.0, help="probe seconds (notebook window: 100)")
    pr.add_argument("--bin-ms", type=float, default=25.0)
    pr.add_argument("--alpha", type=float, default=0.1, help="Lasso alpha (notebook: 0.1)")
    pr.add_argument("--build-root", default=None)
    pr.add_argument("--out-dir", default=".")
    args = p.parse_args(argv)
    from bridge.errors import RatespikeError

    try:
        return {"run": run, "network": network, "stdp": stdp, "snapshots": snapshots, "probe": probe,
                "fork": fork}[args.mode](args)
    except RatespikeError as e:
        print(f"lpl_spiking: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
