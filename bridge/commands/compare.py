"""``ratespike compare A.nc B.nc [--measure cka|rsa|decoding]``: compare two runs' representations layer by layer."""
from __future__ import annotations

import argparse
from pathlib import Path

HELP = "compare what two runs learned, layer by layer (CKA, RSA or linear decoding), and write it to NetCDF"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file_a", help="first results file (.nc) with representations/<layer> groups")
    p.add_argument("file_b", help="second results file (.nc), probed with the same stimuli or time bins")
    p.add_argument("--measure", default="cka",
                   help="cka (default), cka-debiased, rsa, or decoding (held-out R^2 of a ridge readout of "
                        "B's layer from A's layer)")
    p.add_argument("--out", default=None, help="comparison file (default A_vs_B_MEASURE.nc)")
    p.add_argument("--layers-a", default=None, metavar="L1,L2", help="only these layers of A (comma-separated)")
    p.add_argument("--layers-b", default=None, metavar="L1,L2", help="only these layers of B (comma-separated)")
    p.add_argument("--max-samples", type=int, default=None,
                   help="use at most this many evenly spaced probe samples (RSA is quadratic in samples)")
    p.add_argument("--seed", type=int, default=0, help="seed of the held-out splits of the decoding measures")
    p.add_argument("--plot", default=None, metavar="PNG", help="also draw the heat map to this PNG file")


def _layers(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return [t.strip() for t in text.split(",") if t.strip()]


def _check_shapes(a: Path, b: Path, measure: str, max_samples: int | None) -> None:
    """One-line refusals for representations no measure can use: empty layers, too few samples."""
    from bridge.compare import load_representations
    from bridge.errors import ResultsFileError

    need = 4 if measure == "cka-debiased" else (3 if measure in ("rsa", "decoding") else 2)
    for path in (a, b):
        for layer, ds in load_representations(path).items():
            n_samples, n_units = ds["response"].shape if ds["response"].ndim == 2 else (0, 0)
            if n_units == 0:
                raise ResultsFileError(f"{path.name} layer {layer!r} has no units; nothing to compare")
            n = min(n_samples, max_samples) if max_samples else n_samples
            if n < need:
                raise ResultsFileError(f"{measure} needs at least {need} samples, {path.name} layer {layer!r} has {n}")


def _same(x: Path, y: Path) -> bool:
    import os

    return os.path.abspath(x) == os.path.abspath(y)


def run(args: argparse.Namespace) -> int:
    from bridge.compare import MEASURES, compare_runs, format_table
    from bridge.errors import ConfigError, unknown_choice
    from bridge.io import check_writable, write_run

    if args.measure not in MEASURES:
        raise unknown_choice("measure", args.measure, MEASURES)
    if not 0 <= args.seed < 2**32:
        raise ConfigError(f"--seed must be in 0..{2**32 - 1} (NumPy's seed range), got {args.seed}")
    a, b = Path(args.file_a), Path(args.file_b)
    out = check_writable(args.out or f"{a.stem}_vs_{b.stem}_{args.measure}.nc", inputs=[a, b], kind="netcdf")
    if args.plot:
        if _same(Path(args.plot), out):
            raise ConfigError("--plot and --out name the same file")
        check_writable(args.plot, inputs=[a, b], kind="png")
    _check_shapes(a, b, args.measure, args.max_samples)
    ds = compare_runs(a, b, args.measure, layers_a=_layers(args.layers_a), layers_b=_layers(args.layers_b),
                      max_samples=args.max_samples, seed=args.seed)
    write_run(ds, out)
    print(f"{args.measure}: {ds.attrs['model_a']} ({a.name}, rows) vs {ds.attrs['model_b']} ({b.name}, columns), "
          f"{ds.attrs['n_samples']} {ds.attrs['sample_dim']} samples")
    print(format_table(ds))
    from bridge.io import open_run
    from bridge.summary import representation_note

    for f in (a, b):
        if note := representation_note(open_run(f), f):
            print(f"{f.name}: {note}")
    if args.plot:
        from bridge.plots import plot_comparison

        print(f"wrote {out} and {plot_comparison(ds, args.plot)}")
    else:
        print(f"wrote {out}")
    return 0
