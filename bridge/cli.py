"""The ``ratespike`` command: one dispatcher, one module per subcommand in :mod:`bridge.commands`.

Each command module defines ``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int`` and
imports torch or Brian2 only inside ``run``, so ``ratespike --help`` is instant. Errors the user can fix
(:class:`~bridge.errors.RatespikeError`, an unwritable output path) print one line to stderr and give exit
status 2; anything else is a bug and keeps its traceback.
"""
from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys
from collections.abc import Sequence

from bridge.errors import RatespikeError, StopSignal, unknown_choice

#: subcommand -> module; the order is the order of ``ratespike --help``
COMMANDS: dict[str, str] = {
    "demo": "bridge.commands.demo",
    "train": "bridge.commands.train",
    "info": "bridge.commands.info",
    "spike": "bridge.commands.spike",
    "compare": "bridge.commands.compare",
    "plot": "bridge.commands.plot",
    "export": "bridge.commands.export",
    "sweep": "bridge.commands.sweep",
    "experiment": "bridge.commands.experiment",
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


#: OS errors that name a file the user chose (a read-only --build-root, a full disk): one line, exit 2
_FILE_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.ENOENT,
                errno.ENOTDIR, errno.EISDIR}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``ratespike`` command line; returns the exit status.

    Exit status: 0 done; 2 bad input or an unwritable/unreadable file (one line on stderr); 128 + signum
    when SIGTERM (143) or SIGINT (130) stopped the command at a safe point; 141 when the reader of stdout
    went away (``ratespike info run.nc | head``).
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:
        return int(e.code) if isinstance(e.code, int) else 2
    from bridge.io import install_stop_handlers

    install_stop_handlers()
    try:
        status = int(args._run(args) or 0)
        sys.stdout.flush()
        return status
    except RatespikeError as e:
        print(f"ratespike: error: {e}", file=sys.stderr)
        return 2
    except StopSignal as e:
        print(f"ratespike: {e}", file=sys.stderr)
        return 128 + e.signum
    except KeyboardInterrupt:
        print("ratespike: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        _silence_stdout()
        return 141
    except OSError as e:
        if e.errno not in _FILE_ERRNOS or not e.filename:
            raise
        print(f"ratespike: error: {str(e.filename)!r}: {e.strerror}", file=sys.stderr)
        return 2


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's final flush does not fail a second time."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def entry() -> None:
    """Console-script entry point."""
    status = main()
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()
        status = 141
    sys.exit(status)


if __name__ == "__main__":
    entry()
