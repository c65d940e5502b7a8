"""Writing and reading ratespike results files (NetCDF4 through xarray).

A run file holds one :class:`xarray.Dataset` at its root (curves and scalars, provenance in global
attributes) and, optionally, child groups (``/representations/<layer>``) for arrays whose dimensions
differ per layer. The schema is documented in ``docs/results-format.md``.

Writes are atomic: the file is written under a temporary name in the target directory (created with the
mode the umask allows), flushed to disk (``fsync`` of file and directory) and renamed over the target only
when complete, so a crash leaves either the old file or the new one. A temporary file is removed on every
exit path Python sees; one left by a killed process (SIGKILL) is removed by the next write to the same
target. While a write runs, SIGTERM and SIGINT are held back (:func:`deferred_signals`), so a stop never
falls inside a write.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import json
import os
import platform
import secrets
import signal
import socket
import stat
from collections.abc import Iterator, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from bridge.errors import ResultsFileError, StopSignal

SCHEMA_VERSION = "2"
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


# --- stopping cleanly on SIGTERM / SIGINT ---------------------------------------------------------------
_critical = 0                    # depth of deferred_signals() blocks
_pending: int | None = None      # a signal that arrived inside one


def _on_signal(signum, frame) -> None:  # noqa: ARG001 - the signal-handler signature
    global _pending
    if _critical > 0:
        _pending = signum
        return
    raise StopSignal(signum)


def install_stop_handlers() -> None:
    """Turn SIGTERM and SIGINT into :class:`~bridge.errors.StopSignal`, held back inside writes.

    A no-op outside the main thread (where Python cannot install signal handlers).
    """
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            signal.signal(sig, _on_signal)
        except ValueError:
            return


@contextlib.contextmanager
def deferred_signals() -> Iterator[None]:
    """Hold back SIGTERM/SIGINT while the block runs (a write, or the writes of one epoch); raise after it."""
    global _critical, _pending
    _critical += 1
    try:
        yield
    finally:
        _critical -= 1
        if _critical == 0 and _pending is not None:
            signum, _pending = _pending, None
            raise StopSignal(signum)


# --- output paths ---------------------------------------------------------------------------------------
_MAGIC = {"netcdf": (b"\x89HDF\r\n\x1a\n", b"CDF\x01", b"CDF\x02", b"CDF\x05"), "png": (b"\x89PNG\r\n\x1a\n",),
          "checkpoint": (b"PK\x03\x04",)}
_KIND_NAME = {"netcdf": "a ratespike results file", "png": "a PNG image", "checkpoint": "a checkpoint"}


def try_create_file(parent: Path) -> OSError | None:
    """Create and delete a file in ``parent``: the only test of writability that holds for root too (``os.access``
    is true for root on read-only places such as ``/proc``). Returns the error, or None when it worked."""
    name = Path(parent) / f".ratespike-probe.{os.getpid()}.{secrets.token_hex(4)}"
    try:
        fd = os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except OSError as e:
        return e
    os.close(fd)
    try:
        os.unlink(name)
    except OSError:
        pass
    return None


def _probe_directory(parent: Path) -> None:
    err = try_create_file(parent)
    if err is not None:
        raise ResultsFileError(f"output directory {str(parent)!r} is not writable ({err.strerror})") from None


def _same_file(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return os.path.abspath(a) == os.path.abspath(b)


def check_writable(path: str | os.PathLike, *, inputs: Sequence[str | os.PathLike] = (),
                   kind: str | None = None) -> Path:
    """Check, before any expensive work, that ``path`` can be written as a new regular file; return it.

    Parameters
    ----------
    path : path-like
        The output file.
    inputs : paths
        Files the command reads; the output may be none of them.
    kind : {"netcdf", "png", "checkpoint"}, optional
        What will be written: an existing non-empty file at ``path`` is replaced only if it is of that kind
        (a results file is never overwritten by a PNG, nor a text file by a results file).

    Raises
    ------
    ResultsFileError
        If the path names a folder (``newdir/``, an existing directory), exists and is not a regular file
        (FIFO, device, socket), is one of ``inputs``, holds a file of another kind, or its folder cannot be
        created or written (tried by creating a file there, not with ``os.access``, which is true for root
        on read-only places such as ``/proc``).
    """
    text = os.fspath(path)
    if not text or text.endswith(("/", os.sep)):
        raise ResultsFileError(f"output path {text!r} names a folder, expected a file name such as run.nc")
    p = Path(text)
    for src in inputs:
        if _same_file(p, Path(src)):
            raise ResultsFileError(f"output path {text!r} is also an input; choose another --out")
    try:
        st = os.stat(p)
    except (FileNotFoundError, NotADirectoryError):
        st = None
    except OSError as e:
        raise ResultsFileError(f"output path {text!r} cannot be used ({e.strerror})") from None
    if st is not None:
        if stat.S_ISDIR(st.st_mode):
            raise ResultsFileError(f"output path {text!r} is a directory, expected a file name such as run.nc")
        if not stat.S_ISREG(st.st_mode):
            raise ResultsFileError(f"output path {text!r} exists and is not a regular file (a FIFO, device or "
                                   "socket); refusing to replace it")
        if kind is not None and st.st_size > 0:
            try:
                with open(p, "rb") as f:
                    head = f.read(8)
            except OSError as e:
                raise ResultsFileError(f"output path {text!r} cannot be read ({e.strerror})") from None
            if not head.startswith(_MAGIC[kind]):
                raise ResultsFileError(f"output path {text!r} exists and is not {_KIND_NAME[kind]}; "
                                       "refusing to replace it")
    parent = p.parent if str(p.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ResultsFileError(f"cannot create output directory {str(parent)!r}: {e.strerror}") from None
    if not parent.is_dir():
        raise ResultsFileError(f"cannot create output directory {str(parent)!r}: not a directory")
    _probe_directory(parent)
    return p


def _tmp_prefix(p: Path) -> str:
    return f".{p.name}.{socket.gethostname()}."


def _remove_stale_temps(p: Path) -> None:
    """Delete temporary files of ``p`` left by killed processes of this host (their pid no longer runs)."""
    prefix = _tmp_prefix(p)
    try:
        names = os.listdir(p.parent if str(p.parent) else ".")
    except OSError:
        return
    for name in names:
        if not (name.startswith(prefix) and ".tmp" in name[len(prefix):]):
            continue
        pid_text = name[len(prefix):].split(".", 1)[0]
        if not pid_text.isdigit():
            continue
        try:
            os.kill(int(pid_text), 0)
            continue  # that process still runs
        except ProcessLookupError:
            pass
        except OSError:
            continue
        with contextlib.suppress(OSError):
            os.unlink(p.parent / name)


def _fsync_path(path: str | os.PathLike, directory: bool = False) -> None:
    flags = os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        if directory:
            return  # some file systems do not open directories; the data are synced
        raise
    try:
        os.fsync(fd)
    except OSError as e:
        if not directory or e.errno not in (errno.EINVAL, errno.EBADF, errno.ENOTSUP):
            raise
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike, writer, *, what: str = "file", suffix: str = "") -> Path:
    """Call ``writer(tmp_path)`` then rename the temporary file over ``path``; clean up on failure.

    ``suffix`` ends the temporary name, for writers that insist on an extension (pynwb: ``.nwb``).

    The temporary file is created with mode ``0o666`` less the umask (as ``open`` would), synced to disk,
    and renamed; the folder is synced after the rename. SIGTERM/SIGINT wait until the write has finished.

    Raises
    ------
    ResultsFileError
        ``cannot write <what> <path>: <reason>`` for any OS error (no space, read-only file system, ...),
        including the ``RuntimeError`` by which netCDF4/HDF5 and torch report failed writes.
    """
    p = check_writable(path)
    with deferred_signals():
        _remove_stale_temps(p)
        tmp = str(p.parent / f"{_tmp_prefix(p)}{os.getpid()}.{secrets.token_hex(4)}.tmp{suffix}")
        try:
            fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
            os.close(fd)
            writer(tmp)
            _fsync_path(tmp)
            os.replace(tmp, p)
            _fsync_path(p.parent if str(p.parent) else ".", directory=True)
        except BaseException as e:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            if isinstance(e, OSError):
                raise ResultsFileError(f"cannot write {what} {str(p)!r}: {e.strerror or e}") from None
            if isinstance(e, RuntimeError) and _looks_like_io(e):
                raise ResultsFileError(f"cannot write {what} {str(p)!r}: {e}") from None
            raise
    return p


def _looks_like_io(e: RuntimeError) -> bool:
    """netCDF4 (HDF error, ENOSPC), torch (file write failed) and matplotlib report I/O as RuntimeError."""
    text = str(e).lower()
    return any(k in text for k in ("hdf error", "netcdf", "write", "space", "errno", "permission", "file"))


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

    return atomic_write(path, _write, what="results file")


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
