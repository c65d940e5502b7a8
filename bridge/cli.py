"""The ``ratespike`` command: one dispatcher, one module per subcommand in :mod:`bridge.commands`.

Each command module defines ``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int`` and
imports torch or Brian2 only inside ``run``, so ``ratespike --help`` is instant. Errors the user can fix
(:class:`~bridge.errors.RatespikeError`, an unwritable output path) print one line to stderr and give exit
status 2; anything else is a bug and keeps its traceback.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from bridge.errors import RatespikeError, unknown_choice

#: subcommand -> module; the order is the order of ``ratespike --help``
COMMANDS: dict[str, str] = {
    "demo": "bridge.commands.demo",
    "train": "bridge.commands.train",
    "info": "bridge.commands.info",
    "spike": "bridge.commands.spike",
    "compare": "bridge.commands.compare",
    "plot": "bridge.commands.plot",
    "sweep": "bridge.commands.sweep",
}


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line (no usage block) with exit status 2."""

    def error(self, message: str):  # type: ignore[override]
        if message.startswith("argument COMMAND: invalid choice"):
            bad = message.split("'")[1] if "'" in message else message
            message = str(unknown_choice("subcommand", bad, COMMANDS))
        self.exit(2, f"ratespike: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    from bridge.io import ratespike_version

    parser = _Parser(prog="ratespike", description="Rate and spiking networks with local learning rules: "
                     "train, simulate, compare; every result in NetCDF.")
    parser.add_argument("--version", action="version", version=f"ratespike {ratespike_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, modname in COMMANDS.items():
        mod = importlib.import_module(modname)
        p = sub.add_parser(name, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``ratespike`` command line; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:
        return int(e.code) if isinstance(e.code, int) else 2
    try:
        return int(args._run(args) or 0)
    except RatespikeError as e:
        print(f"ratespike: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ratespike: interrupted", file=sys.stderr)
        return 130


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    entry()
