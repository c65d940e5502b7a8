"""``ratespike info FILE.nc``: print what a results file holds."""
from __future__ import annotations

import argparse

HELP = "print what a ratespike results file holds (provenance, dimensions, variables, groups)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="a ratespike results file (.nc)")


def run(args: argparse.Namespace) -> int:
    from bridge.io import list_groups, open_run
    from bridge.summary import describe

    ds = open_run(args.file)
    print(f"{args.file}")
    print(describe(ds, list_groups(args.file)))
    from bridge.summary import representation_note

    if note := representation_note(ds, args.file):
        print(note)
    return 0
