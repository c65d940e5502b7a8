"""bridge: the results data model of ratespike (xarray/NetCDF), comparison of representations, the CLI.

Importing ``bridge`` never imports torch or Brian2, so results files open anywhere.
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
