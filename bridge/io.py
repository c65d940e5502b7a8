"""Writing and reading ratespike results files (NetCDF4 through xarray).

A run file holds one :class:`xarray.Dataset` at its root (curves and scalars, provenance in global
attributes) and, optionally, child groups (``/representations/<layer>``) for arrays whose dimensions
differ per layer. The schema is documented in ``docs/results-format.md``.

Writes are atomic: the file is written under a temporary name in the target directory and renamed
over the target only when complete, so a crash leaves either the old file or the new one.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import tempfile
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from bridge.errors import ResultsFileError

SCHEMA_VERSION = "1"
CONVENTIONS = "CF-1.8"
_PACKAGES = ("ratespike", "numpy", "scipy", "xarray", "netCDF4", "torch", "torchvision", "brian2",
             "brian2cuda", "scikit-learn")
ENGINE = "netcdf4"


def package_versions() -> dict[str, str]:
    """Versions of the packages a result may depend on (absent ones are left out)."""
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def ratespike_version() -> str:
    try:
        return metadata.version("ratespike")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def _clean_attr(value: Any) -> Any:
    """NetCDF attributes must be strings, numbers or flat arrays: convert everything else."""
    if isinstance(value, bool | np.bool_):
        return int(value)
    if isinstance(value, dict):
        return json.dumps(value, default=str)
    if isinstance(value, list | tuple):
        if all(isinstance(v, int | float) and not isinstance(v, bool) for v in value) and value:
            return np.asarray(value)
        return json.dumps(list(value), default=str)
    if isinstance(value, Path):
        return str(value)
    return value


def _clean_attrs(attrs: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _clean_attr(v) for k, v in attrs.items() if v is not None}


def _clean(ds: xr.Dataset) -> xr.Dataset:
    ds = ds.copy()
    ds.attrs = _clean_attrs(ds.attrs)
    for name in list(ds.variables):
        ds[name].attrs = _clean_attrs(ds[name].attrs)
        if ds[name].dtype == bool:
            ds[name] = ds[name].astype("i1")
    return ds


def provenance(*, kind: str, config_json: str, seed: int | list[int], extra: Mapping[str, Any] | None = None
               ) -> dict[str, Any]:
    """The global attributes every ratespike results file carries.

    Parameters
    ----------
    kind : str
        ``"train"``, ``"spike"``, ``"compare"``, ``"analysis"`` ...
    config_json : str
        The full run config as one JSON string.
    seed : int or list of int
        The seed (or seeds of a multi-seed run).
    """
    now = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()
    attrs: dict[str, Any] = {
        "Conventions": CONVENTIONS,
        "title": f"ratespike {kind} results",
        "source": f"ratespike {ratespike_version()}",
        "ratespike_version": ratespike_version(),
        "ratespike_schema": SCHEMA_VERSION,
        "ratespike_kind": kind,
        "config": config_json,
        "seed": seed if isinstance(seed, int) else list(seed),
        "package_versions": json.dumps(package_versions()),
        "history": f"{now} created by ratespike {ratespike_version()}",
        "date_created": now,
    }
    if extra:
        attrs.update(extra)
    return attrs


def check_writable(path: str | os.PathLike) -> Path:
    """Check, before any expensive work, that ``path`` can be written; return it as a Path.

    Raises
    ------
    ResultsFileError
        If the parent directory does not exist and cannot be created, or is not writable, or the path
        is a directory.
    """
    p = Path(path)
    if p.is_dir():
        raise ResultsFileError(f"output path {str(p)!r} is a directory, expected a file name such as run.nc")
    parent = p.parent if str(p.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ResultsFileError(f"cannot create output directory {str(parent)!r}: {e.strerror}") from None
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ResultsFileError(f"output directory {str(parent)!r} is not writable")
    return p


def atomic_write(path: str | os.PathLike, writer) -> Path:
    """Call ``writer(tmp_path)`` then rename the temporary file over ``path``; clean up on failure."""
    p = check_writable(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    os.close(fd)
    try:
        writer(tmp)
        os.replace(tmp, p)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return p


def write_run(ds: xr.Dataset, path: str | os.PathLike,
              groups: Mapping[str, xr.Dataset] | None = None) -> Path:
    """Write a results Dataset (and optional child groups) to NetCDF4, atomically.

    Parameters
    ----------
    ds : xarray.Dataset
        The root dataset; its attrs should include :func:`provenance`.
    path : path-like
        Target file; replaced only once the new file is complete.
    groups : mapping of str to Dataset, optional
        Child groups, e.g. ``{"representations/conv1": rep_ds}``.
    """
    root = _clean(ds)

    def _write(tmp: str) -> None:
        root.to_netcdf(tmp, mode="w", engine=ENGINE)
        for name, g in (groups or {}).items():
            _clean(g).to_netcdf(tmp, mode="a", group=name, engine=ENGINE)

    try:
        return atomic_write(path, _write)
    except OSError as e:
        raise ResultsFileError(f"cannot write results file {str(path)!r}: {e.strerror or e}") from None


def _open(path: Path, group: str | None = None) -> xr.Dataset:
    try:
        with xr.open_dataset(path, engine=ENGINE, group=group) as ds:
            return ds.load()
    except FileNotFoundError:
        raise ResultsFileError(f"no such results file: {str(path)!r}") from None
    except OSError as e:
        if group is not None and "group not found" in str(e).lower():
            raise ResultsFileError(f"{str(path)!r} has no group {group!r}") from None
        raise ResultsFileError(f"{str(path)!r} is not a readable NetCDF file ({e.__class__.__name__})") from None
    except (ValueError, KeyError, RuntimeError) as e:
        raise ResultsFileError(f"{str(path)!r} is not a readable NetCDF file ({e})") from None


def open_run(path: str | os.PathLike) -> xr.Dataset:
    """Read any ratespike results file's root Dataset into memory.

    Raises
    ------
    ResultsFileError
        If the file is missing, is not NetCDF, or is not a ratespike results file.
    """
    p = Path(path)
    if not p.exists():
        raise ResultsFileError(f"no such results file: {str(p)!r}")
    if p.is_dir():
        raise ResultsFileError(f"{str(p)!r} is a directory, not a results file")
    ds = _open(p)
    if "ratespike_version" not in ds.attrs:
        raise ResultsFileError(f"{str(p)!r} is a NetCDF file but not a ratespike results file "
                               "(no 'ratespike_version' attribute)")
    return ds


def list_groups(path: str | os.PathLike) -> list[str]:
    """Paths of all child groups in a NetCDF4 file (``"representations/conv1"``, ...)."""
    import netCDF4

    out: list[str] = []
    try:
        with netCDF4.Dataset(path, "r") as nc:
            def walk(g, prefix):
                for name, child in g.groups.items():
                    full = f"{prefix}{name}"
                    out.append(full)
                    walk(child, full + "/")
            walk(nc, "")
    except OSError as e:
        raise ResultsFileError(f"{str(path)!r} is not a readable NetCDF file ({e})") from None
    return out


def open_group(path: str | os.PathLike, group: str) -> xr.Dataset:
    """Read one child group of a results file into memory."""
    return _open(Path(path), group=group)


def config_of(ds: xr.Dataset) -> dict[str, Any]:
    """The run config stored in a results file, as a dict."""
    try:
        return json.loads(ds.attrs["config"])
    except (KeyError, json.JSONDecodeError):
        raise ResultsFileError("results file has no valid 'config' attribute") from None
