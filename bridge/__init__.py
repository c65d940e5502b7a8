"""bridge: the results data model of ratespike (xarray/NetCDF), comparison of representations, the CLI.

Importing ``bridge`` never imports torch or Brian2, so results files open anywhere. Two layers: the kernel
(``bridge/*.py``: data model, measures, comparison, the Fig. 5 paradigm :mod:`bridge.fig5`, plots), which
``ratenets`` and ``spiking`` may import and which imports neither of them; and the CLI (``bridge/commands/``),
which parses arguments, calls the models and writes files, the only code that imports both.
"""
from bridge.errors import ConfigError, DataError, DivergenceError, RatespikeError, ResultsFileError
from bridge.io import open_run, write_run

__all__ = [
    "ConfigError",
    "DataError",
    "DivergenceError",
    "RatespikeError",
    "ResultsFileError",
    "open_run",
    "write_run",
]
