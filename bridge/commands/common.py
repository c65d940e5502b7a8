"""Argument helpers shared by the subcommands."""
from __future__ import annotations

import argparse

from bridge.config import MAX_SEED
from bridge.errors import ConfigError

#: most seeds one process trains (each is a model in memory); sweeps beyond that run as separate processes
MAX_SEEDS = 10_000


def check_seed(seed: int, flag: str = "--seed", limit: int = MAX_SEED) -> int:
    """ConfigError unless ``0 <= seed <= limit``."""
    if seed < 0 or seed > limit:
        raise ConfigError(f"{flag} must be in 0..{limit}, got {seed}")
    return seed


def parse_seeds(text: str) -> tuple[int, ...]:
    """``"3"`` -> (3,); ``"0-9"`` -> (0, ..., 9); ``"1,4,7"`` -> (1, 4, 7); at most MAX_SEEDS seeds."""
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
        if lo < 0 or hi > MAX_SEED:
            raise ConfigError(f"seeds must be in 0..{MAX_SEED}, got {text!r}")
        if len(seeds) + len(rng) > MAX_SEEDS:
            raise ConfigError(f"--seeds {text!r} lists more than {MAX_SEEDS} seeds; run larger sweeps as separate "
                              "processes (docs/scaling.md)")
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
    return (check_seed(seed),)
