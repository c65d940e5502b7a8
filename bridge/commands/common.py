"""Argument helpers shared by the subcommands."""
from __future__ import annotations

import argparse

from bridge.errors import ConfigError


def parse_seeds(text: str) -> tuple[int, ...]:
    """``"3"`` -> (3,); ``"0-9"`` -> (0, ..., 9); ``"1,4,7"`` -> (1, 4, 7)."""
    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        try:
            if "-" in part[1:]:
                lo, hi = (int(v) for v in part.split("-", 1))
                rng = range(lo, hi + 1)
            else:
                lo = hi = int(part)
                rng = range(lo, lo + 1)
        except ValueError:
            raise ConfigError(f"seeds must look like 3, 0-9 or 1,4,7; got {text!r}") from None
        if hi < lo:
            raise ConfigError(f"seed range {part!r} runs backwards")
        seeds.extend(rng)
    if any(s < 0 for s in seeds):
        raise ConfigError(f"seeds must be >= 0, got {text!r}")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds repeat in {text!r}")
    return tuple(seeds)


def add_set_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE",
                   help="override a field of the run's typed config (repeatable), e.g. --set lr=0.01")


def add_seed_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int, default=None, help="random seed (default 0)")
    p.add_argument("--seeds", default=None, metavar="SPEC",
                   help="several seeds in one process, e.g. 0-9 or 1,4,7 (adds a seed dimension)")


def seeds_from_args(args: argparse.Namespace) -> tuple[int, ...]:
    if args.seed is not None and args.seeds is not None:
        raise ConfigError("give --seed or --seeds, not both")
    if args.seeds is not None:
        return parse_seeds(args.seeds)
    seed = 0 if args.seed is None else args.seed
    if seed < 0:
        raise ConfigError(f"--seed must be >= 0, got {seed}")
    return (seed,)
