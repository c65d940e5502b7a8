"""Brian2 devices behind one option: ``runtime``, ``cpp_standalone`` or ``cuda_standalone``.

:func:`use_device` selects the device for one run and resets Brian2 afterwards; a standalone run builds in
its own fresh directory (under ``build_root``, default the system temp dir), so parallel runs never collide.
Experiments receive the :class:`DeviceRun` from the caller, build an explicit ``Network``, call
:meth:`DeviceRun.run` for each segment and :meth:`DeviceRun.finish` once; they never call ``set_device``.

Timing: ``build_time_s`` is code generation + compilation (standalone) and ``wall_time_s`` is the
simulation itself: the sum of the ``Network.run`` calls in runtime mode, the wall time of the compiled binary
in standalone mode (it includes the binary's few-ms setup of synapses and the writing of results).
"""
from __future__ import annotations

import contextlib
import os
import resource
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bridge.errors import ConfigError, RatespikeError, unknown_choice

DEVICES = ("runtime", "cpp_standalone", "cuda_standalone")
CUDA_HINT = ("install ratespike[cuda] (brian2cuda >= 1.0b1, Python >= 3.12) on a machine with an NVIDIA GPU "
             "and the CUDA toolkit")


class BuildError(RatespikeError):
    """A standalone project failed to compile or run; the message names the log file."""


def check_device(name: str) -> str:
    """Return ``name`` if it is a known device; ConfigError (one line) otherwise, also for unusable CUDA."""
    if name not in DEVICES:
        raise unknown_choice("device", name, DEVICES)
    if name == "cuda_standalone":
        try:
            import brian2cuda  # noqa: F401
        except ImportError:
            raise ConfigError(f"device 'cuda_standalone' needs brian2cuda, which is not installed: "
                              f"{CUDA_HINT}") from None
        if shutil.which("nvidia-smi") is None and not os.path.exists("/dev/nvidia0"):
            raise ConfigError("device 'cuda_standalone' needs an NVIDIA GPU, and none was found "
                              "(no nvidia-smi, no /dev/nvidia0)")
    return name


@dataclass
class DeviceRun:
    """One simulation on one device: segments to run, then (standalone) one build; timings."""

    name: str
    directory: Path | None = None
    threads: int = 1
    build_time_s: float = 0.0
    wall_time_s: float = 0.0
    simulated_time_s: float = 0.0
    #: CPU seconds (user + system) of the simulation: less sensitive to other load than the wall time
    cpu_time_s: float = 0.0

    @property
    def standalone(self) -> bool:
        return self.name != "runtime"

    def run(self, net: Any, duration_s: float, report: str | None = None) -> None:
        """Run (runtime) or record (standalone) one segment of ``duration_s`` seconds."""
        from brian2 import second

        if duration_s <= 0:
            return
        # an empty run namespace: every constant comes from the groups' own namespaces, never from
        # the caller's local variables (Brian2 would otherwise pick up names like i or w from the frame)
        kw: dict[str, Any] = {"namespace": {}}
        if report:
            kw.update(report=report, report_period=10 * second)
        t0 = time.perf_counter()
        c0 = time.process_time()
        net.run(duration_s * second, **kw)
        if not self.standalone:
            self.wall_time_s += time.perf_counter() - t0
            self.cpu_time_s += time.process_time() - c0
        self.simulated_time_s += duration_s

    def finish(self) -> None:
        """Standalone: generate, compile and run the project, timing compile and run separately."""
        if not self.standalone:
            return
        from brian2 import device

        assert self.directory is not None
        log = self.directory / "build.log"
        t0 = time.perf_counter()
        try:
            with _redirect_output(log):
                device.build(directory=str(self.directory), compile=True, run=False, with_output=True)
        except Exception as e:  # compiler errors come as RuntimeError/OSError with a long text
            _rerun_make(self.directory, log)
            raise BuildError(f"{self.name} build failed ({e.__class__.__name__}); see the log {log}") from None
        self.build_time_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        try:
            with _redirect_output(log):
                device.run(directory=str(self.directory), with_output=True)
        except Exception as e:
            raise BuildError(f"{self.name} simulation binary failed ({e.__class__.__name__}); see the log "
                             f"{log} and {self.directory / 'results'}") from None
        self.wall_time_s = time.perf_counter() - t1
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.cpu_time_s = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)


def _rerun_make(directory: Path, log: Path) -> None:
    """Brian2 hides the compiler's messages; run make once more (only the failed files) into ``log``."""
    import subprocess

    if not (directory / "makefile").exists():
        return
    with open(log, "ab") as fh:
        fh.write(b"\n--- make output (re-run by ratespike to keep the compiler messages) ---\n")
        fh.flush()
        subprocess.run(["make", "-j2"], cwd=directory, stdout=fh, stderr=subprocess.STDOUT, check=False)


@contextlib.contextmanager
def _redirect_output(log: Path):
    """Send the file descriptors 1 and 2 (compiler and binary output) to ``log`` for the block."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(log, "ab") as fh:
        os.dup2(fh.fileno(), 1)
        os.dup2(fh.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def _reset_device() -> None:
    import importlib

    importlib.import_module("brian2.devices.device").reset_device()


@contextlib.contextmanager
def use_device(name: str, *, seed: int, dt_ms: float, build_root: str | os.PathLike | None = None,
               threads: int = 1, codegen: str = "cython", keep_build: bool = False):
    """Select a Brian2 device for one run; yields a :class:`DeviceRun`.

    Parameters
    ----------
    name : {"runtime", "cpp_standalone", "cuda_standalone"}
    seed : int
        Seeds Brian2's generator (``rand()``, Poisson inputs) and NumPy's global one.
    dt_ms : float
        The default clock's step.
    build_root : path-like, optional
        Parent of the per-run build directory (default: the temp dir).
    threads : int
        OpenMP threads of cpp_standalone (1 = no OpenMP; on small nets more threads are slower).
    codegen : {"cython", "numpy"}
        Code generation target in runtime mode.
    keep_build : bool
        Keep the standalone build directory (default: removed after a successful run).

    Raises
    ------
    ConfigError
        Unknown device, or cuda_standalone without brian2cuda or without a GPU.
    """
    check_device(name)
    if codegen not in ("cython", "numpy"):
        raise unknown_choice("codegen target", codegen, ("cython", "numpy"))
    if threads < 1:
        raise ConfigError(f"threads must be >= 1, got {threads}")
    import brian2
    import numpy as np
    from brian2 import ms, prefs

    if name == "cuda_standalone":
        import brian2cuda  # noqa: F401
    brian2.device.reinit()
    _reset_device()
    prefs.reset_to_defaults()
    run = DeviceRun(name=name, threads=threads)
    if name == "runtime":
        brian2.set_device("runtime")
        prefs.codegen.target = codegen
    else:
        root = Path(build_root) if build_root else None
        if root is not None:
            root.mkdir(parents=True, exist_ok=True)
        run.directory = Path(tempfile.mkdtemp(prefix=f"ratespike-{name}-", dir=root))
        brian2.set_device(name, directory=str(run.directory), build_on_run=False)
        # Brian2's default is an unbounded 'make -j', which starts dozens of compilers at once on a
        # shared 2-core machine; two parallel jobs compile as fast there and leave the others alone
        prefs.devices.cpp_standalone.extra_make_args_unix = [f"-j{max(1, min(2, os.cpu_count() or 1))}"]
        if name == "cpp_standalone":
            prefs.devices.cpp_standalone.openmp_threads = threads if threads > 1 else 0
    brian2.defaultclock.dt = dt_ms * ms
    brian2.seed(seed)
    np.random.seed(seed)
    ok = False
    try:
        yield run
        ok = True
    finally:
        if run.standalone:
            brian2.device.reinit()
            _reset_device()
            brian2.set_device("runtime")
            if ok and not keep_build and run.directory is not None:
                shutil.rmtree(run.directory, ignore_errors=True)
        prefs.reset_to_defaults()
