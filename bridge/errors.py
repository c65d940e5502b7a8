"""Errors of ratespike: library code raises these, the CLI turns them into one line and exit status 2."""
from __future__ import annotations

import difflib
from collections.abc import Iterable


class RatespikeError(Exception):
    """Base class of every error the user can cause and fix (bad input, missing data, bad files)."""


class ConfigError(RatespikeError, ValueError):
    """A config field, a CLI argument or a combination of them is invalid."""


class DataError(RatespikeError):
    """A dataset cannot be found, downloaded or read."""


class ResultsFileError(RatespikeError):
    """A results file cannot be read, is not a ratespike file, or cannot be written."""


class DivergenceError(RatespikeError):
    """Training or simulation produced NaN or inf; the message names where and when."""


def unknown_choice(kind: str, value: str, choices: Iterable[str]) -> ConfigError:
    """A ConfigError for an unknown name, with a 'did you mean' suggestion and the valid choices."""
    choices = sorted(choices)
    close = difflib.get_close_matches(value, choices, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return ConfigError(f"unknown {kind} {value!r}{hint} (choices: {', '.join(choices)})")


class StopSignal(BaseException):
    """SIGTERM or SIGINT arrived: stop at the next safe point (never inside a write).

    A ``BaseException`` like ``KeyboardInterrupt``, so that no ``except Exception`` in a rule swallows it. The
    CLI prints one line and exits with ``128 + signum`` (143 for SIGTERM, 130 for SIGINT).
    """

    def __init__(self, signum: int, note: str = "") -> None:
        super().__init__(signum, note)
        self.signum = int(signum)
        self.note = note

    def __str__(self) -> str:
        import signal

        try:
            name = signal.Signals(self.signum).name
        except ValueError:
            name = f"signal {self.signum}"
        return f"stopped by {name}" + (f"; {self.note}" if self.note else "")
