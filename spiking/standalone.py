"""Compile once, run many: a cached cpp_standalone binary driven by run-time values, segment by segment.

Brian2 compiles the durations of ``Network.run`` and the seed into a standalone binary. Here the model is
generated once with sentinel durations and sentinel seeds, and :func:`build` rewrites those literals in the
generated ``main.cpp`` into values read from the environment before it compiles:

- ``RATESPIKE_SEED``: seeds Brian2's generators before anything is drawn (connectivity, initial values), so
  one binary serves every network seed;
- ``RATESPIKE_SEGMENT_SEED``: re-seeds them just before the first run (the random streams of a segment are
  derived from the seed and the segment index);
- ``RATESPIKE_RUN0``, ``RATESPIKE_RUN1``: the lengths (s) of the two runs of a segment (without and with spike
  recording).

Every other run-time value (lambda, phi, eta, zeta, the plasticity start, the time offset ``t_off`` of the
segment, and for a continued segment the complete state of every group and synapse) is passed on the binary's
command line (``group.variable=value`` or ``=file``, Brian2's ``set_from_command_line``), applied after the
initial values and before the first run.

Builds are cached by the model's code, under ``build_root`` or ``$XDG_CACHE_HOME/ratespike/builds`` (default
``~/.cache/ratespike/builds``): a first key hashes the compiled-in config fields, Brian2's version and this
package's sources (a hit costs nothing, ``build_time_s`` = 0); on a miss the C++ project is generated and
hashed (sources, makefile, static arrays), and a binary of the same generated code is reused without
compiling (``build_time_s`` = the few seconds of code generation). A lock file keeps two processes from
building the same model at once.

What does not carry over between segments: spikes in flight in Brian2's spike queues at the boundary (the
0.8 ms transmission delays, the LPL self-pathways of 0.8 ms (post spike for the error), 1.6 ms (pre spike for
the PSP trace) and 20 ms (post spike of the predictive term)); Brian2 offers no way to
set a queue from outside. A segmented run is therefore reproducible segment for segment (an uninterrupted
segmented run and an interrupted, resumed one give identical results) but not identical to one unsegmented
run.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from spiking.devices import BuildError

SEED_SENTINEL = 918273645
SEGMENT_SEED_SENTINEL = 546372819
RUN0_SENTINEL = 3141.5926
RUN1_SENTINEL = 2718.2818
_HELPERS = """
#include <cstdlib>
static unsigned long ratespike_env_ul(const char* name) {
    const char* s = std::getenv(name);
    return s ? std::strtoul(s, NULL, 10) : 0UL;
}
static double ratespike_env_d(const char* name) {
    const char* s = std::getenv(name);
    return s ? std::strtod(s, NULL) : 0.0;
}
"""


def default_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "ratespike" / "builds"


def source_hash() -> str:
    """Hash of this package's Python sources (the model's code)."""
    h = hashlib.sha256()
    root = Path(__file__).resolve().parent
    for p in sorted(root.rglob("*.py")):
        h.update(p.relative_to(root).as_posix().encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def build_key(name: str, compiled: Mapping[str, Any]) -> str:
    import brian2

    blob = json.dumps({"name": name, "compiled": compiled, "brian2": brian2.__version__, "src": source_hash(),
                       "python": sys.version_info[:2]}, sort_keys=True, default=str)
    return f"{name}-{hashlib.sha256(blob.encode()).hexdigest()[:16]}"


@dataclass
class Binary:
    """A compiled model: its directory and the manifest of its arrays."""

    directory: Path
    manifest: dict
    build_time_s: float = 0.0

    def run(self, results_dir: Path, *, env: Mapping[str, str], args: list[str], log: Path | None = None,
            show: bool = False) -> float:
        """Run the binary once into ``results_dir``; returns the wall time.

        ``show``: the binary's own progress report (Brian2's ``report``, every 30 s of wall time) goes to
        this process's stderr instead of the log.
        """
        results_dir.mkdir(parents=True, exist_ok=True)
        full_env = dict(os.environ)
        full_env.update({k: str(v) for k, v in env.items()})
        cmd = [str(self.directory / "main"), "--results_dir", str(results_dir.resolve()) + os.sep, *args]
        t0 = time.perf_counter()
        logf = open(log, "ab") if log else subprocess.DEVNULL
        try:
            out = sys.stderr.fileno() if show else logf
            r = subprocess.run(cmd, cwd=self.directory, env=full_env, stdout=out, stderr=subprocess.STDOUT)
        finally:
            if log:
                logf.close()
        if r.returncode != 0:
            raise BuildError(f"standalone binary failed (exit {r.returncode}); see {log or results_dir}")
        return time.perf_counter() - t0

    def read(self, results_dir: Path, key: str) -> np.ndarray:
        """One array of a run (``owner.var``; monitors: ``monitor.var``, 2-D ones reshaped (sample, index))."""
        spec = self.manifest["arrays"][key]
        a = np.fromfile(results_dir / spec["file"], dtype=spec["dtype"])
        if spec.get("cols_of"):
            n = len(np.fromfile(results_dir / self.manifest["arrays"][spec["cols_of"]]["file"],
                                dtype=self.manifest["arrays"][spec["cols_of"]]["dtype"]))
            a = a.reshape(n, -1) if n else a.reshape(0, spec["n_cols"])
        return a

    def state_keys(self) -> list[str]:
        return list(self.manifest["state"])


def _array_specs(objs: Mapping[str, Any], monitors: Mapping[str, tuple[Any, list[str]]]) -> tuple[dict, list]:
    """Manifest of the state variables (settable, carried between segments) and of the monitor arrays."""
    from brian2 import device
    from brian2.core.variables import ArrayVariable, DynamicArrayVariable

    arrays: dict[str, dict] = {}
    state: list[str] = []
    skip = {"N", "i", "j", "t", "dt", "t_in_timesteps", "_spikespace", "lastspike", "not_refractory", "delay",
            "_synaptic_pre", "_synaptic_post", "_source_offset", "_target_offset", "N_incoming", "N_outgoing",
            "N_pre", "N_post", "_postsynaptic_idx", "_presynaptic_idx"}
    for oname, obj in objs.items():
        for vname, var in obj.variables.items():
            if not isinstance(var, ArrayVariable) or var.owner is None or var.owner.name != obj.name:
                continue
            key = f"{obj.name}.{vname}"
            if vname in ("_synaptic_pre", "_synaptic_post"):  # read back, never set
                arrays[key] = {"file": device.get_array_filename(var), "dtype": np.dtype(var.dtype).str}
                continue
            if vname.startswith("_") or vname in skip or var.read_only or getattr(var, "constant", False):
                continue
            arrays[key] = {"file": device.get_array_filename(var), "dtype": np.dtype(var.dtype).str}
            state.append(key)
    for mname, (mon, names) in monitors.items():
        for vname in names:
            var = mon.variables[vname]
            spec = {"file": device.get_array_filename(var), "dtype": np.dtype(var.dtype).str}
            if isinstance(var, DynamicArrayVariable) and getattr(var, "ndim", 1) == 2:
                spec["cols_of"] = f"{mon.name}.t"
                spec["n_cols"] = int(var.size[1]) if isinstance(var.size, tuple) else 0
            arrays[f"{mon.name}.{vname}"] = spec
    return arrays, state


def build(name: str, compiled: Mapping[str, Any], construct: Callable[[], tuple], *, dt_ms: float,
          build_root: str | os.PathLike | None = None, progress: Callable[[str], None] | None = None) -> Binary:
    """The cached binary of a model, building it if needed.

    Parameters
    ----------
    compiled : mapping
        The config fields compiled into the model (part of the cache key).
    construct : callable() -> (net, objs, monitors, phase_monitors)
        Builds the Brian2 network on the active standalone device. ``objs`` maps names to the groups and
        synapses whose state is carried; ``monitors`` maps names to (monitor, [variables to read]);
        ``phase_monitors`` are the monitors active only in the second run (spike recording).
    """
    import brian2
    from brian2 import prefs, second

    root = Path(build_root) if build_root else default_root()
    root.mkdir(parents=True, exist_ok=True)
    directory = root / build_key(name, compiled)
    manifest_path = directory / "ratespike_manifest.json"
    lock = open(root / f"{directory.name}.lock", "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if manifest_path.exists() and (directory / "main").exists():
            return Binary(directory, json.loads(manifest_path.read_text()), 0.0)
        t0 = time.perf_counter()
        from spiking.devices import _redirect_output, _reset_device

        brian2.device.reinit()
        _reset_device()
        prefs.reset_to_defaults()
        directory.mkdir(parents=True, exist_ok=True)
        brian2.set_device("cpp_standalone", directory=str(directory), build_on_run=False)
        prefs.devices.cpp_standalone.extra_make_args_unix = [f"-j{max(1, min(2, os.cpu_count() or 1))}"]
        prefs.devices.cpp_standalone.openmp_threads = 0
        brian2.defaultclock.dt = dt_ms * brian2.ms
        log = directory / "build.log"
        try:
            brian2.seed(SEED_SENTINEL)
            net, objs, monitors, phase_monitors = construct()
            arrays, state = _array_specs(objs, monitors)
            brian2.seed(SEGMENT_SEED_SENTINEL)
            for m in phase_monitors:
                m.active = False
            net.run(RUN0_SENTINEL * second, namespace={}, report="stderr", report_period=30 * second)
            for m in phase_monitors:
                m.active = True
            net.run(RUN1_SENTINEL * second, namespace={}, report="stderr", report_period=30 * second)
            if progress:
                progress(f"build {directory.name}: generating C++")
            with _redirect_output(log):
                brian2.device.build(directory=str(directory), compile=False, run=False, with_output=True)
            _patch_main(directory / "main.cpp")
            code_dir = root / f"{name}-code-{_code_hash(directory)}"
            if (code_dir / "ratespike_manifest.json").exists() and (code_dir / "main").exists():
                # the Python sources changed but the generated model did not: reuse that binary
                import shutil

                shutil.rmtree(directory, ignore_errors=True)
                os.symlink(code_dir.name, directory)
                gen_time = time.perf_counter() - t0
                if progress:
                    progress(f"build {directory.name}: same generated code as {code_dir.name}, not compiled "
                             f"({gen_time:.0f} s of code generation)")
                return Binary(code_dir, json.loads((code_dir / "ratespike_manifest.json").read_text()), gen_time)
            if progress:
                progress(f"build {directory.name}: compiling ({time.perf_counter() - t0:.0f} s so far)")
            with open(log, "ab") as fh:
                proc = subprocess.Popen(["make", f"-j{max(1, min(2, os.cpu_count() or 1))}"], cwd=directory,
                                        stdout=fh, stderr=subprocess.STDOUT)
                n_src = len(list((directory / "code_objects").glob("*.cpp"))) + 5
                while True:
                    try:
                        proc.wait(timeout=15.0)
                        break
                    except subprocess.TimeoutExpired:
                        if progress:
                            n_obj = len(list(directory.rglob("*.o")))
                            progress(f"build {directory.name}: compiling, {n_obj} of about {n_src} objects, "
                                     f"{time.perf_counter() - t0:.0f} s elapsed")
                r = proc
            if r.returncode != 0:
                raise BuildError(f"cpp_standalone build failed; see the log {log}")
        finally:
            brian2.device.reinit()
            _reset_device()
            brian2.set_device("runtime")
            prefs.reset_to_defaults()
        build_time = time.perf_counter() - t0
        manifest = {"arrays": arrays, "state": state, "build_time_s": build_time}
        tmp = manifest_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(manifest))
        os.replace(tmp, manifest_path)
        if not code_dir.exists():
            os.replace(directory, code_dir)
            os.symlink(code_dir.name, directory)
        if progress:
            progress(f"build {directory.name}: done in {build_time:.0f} s")
        return Binary(code_dir if code_dir.exists() else directory, manifest, build_time)
    finally:
        fcntl.flock(lock, fcntl.LOCK_UN)
        lock.close()


def _code_hash(directory: Path) -> str:
    """Hash of the generated model: every source, header, makefile and static array of the project."""
    h = hashlib.sha256()
    for p in sorted(directory.rglob("*")):
        if p.is_file() and (p.suffix in (".cpp", ".h", ".hpp") or p.name in ("makefile", "main.cpp")
                            or p.parent.name == "static_arrays"):
            h.update(p.relative_to(directory).as_posix().encode())
            h.update(p.read_bytes())  # main.cpp with its clock resets sorted by _patch_main
    return h.hexdigest()[:16]


def _patch_main(path: Path) -> None:
    """Turn the sentinel durations and seeds of main.cpp into values read from the environment."""
    import re

    src = path.read_text()
    # after a run Brian2 writes the clocks' end values it computed from the (sentinel) duration; the C++
    # network leaves its clocks at the same values for the real duration, so those lines go
    first_run = src.find(f"run({RUN0_SENTINEL!r},")
    if first_run < 0:
        raise BuildError(f"cannot make {path.name} run-time configurable: no run({RUN0_SENTINEL!r}, ...)")
    tail = re.sub(r"\n[ \t]*_array_\w*clock_(?:timestep|t)\[0\] = [^;\n]+;", "", src[first_run:])
    src = _sorted_clock_resets(src[:first_run]) + tail
    reps = {f"{SEED_SENTINEL!r}L": 'ratespike_env_ul("RATESPIKE_SEED")',
            f"{SEGMENT_SEED_SENTINEL!r}L": 'ratespike_env_ul("RATESPIKE_SEGMENT_SEED")',
            f"run({RUN0_SENTINEL!r},": 'run(ratespike_env_d("RATESPIKE_RUN0"),',
            f"run({RUN1_SENTINEL!r},": 'run(ratespike_env_d("RATESPIKE_RUN1"),'}
    for old, new in reps.items():
        if src.count(old) != 1:
            raise BuildError(f"cannot make {path.name} run-time configurable: {old} found {src.count(old)} times")
        src = src.replace(old, new)
    marker = "#include <string>\n"
    if marker not in src:
        raise BuildError(f"cannot make {path.name} run-time configurable: no '{marker.strip()}'")
    src = src.replace(marker, marker + _HELPERS, 1)
    path.write_text(src)


def _sorted_clock_resets(src: str) -> str:
    """Sort every block of consecutive clock resets (``_array_X_clock_t[0] = 0.0;`` ...) by line.

    Brian2 writes these independent assignments in the iteration order of a set of clocks, which changes from
    one Python process to the next; sorted, the same model gives the same main.cpp and so the same code hash
    (:func:`_code_hash`), and a source edit that leaves the model unchanged reuses the compiled binary.
    """
    import re

    reset = re.compile(r"[ \t]*_array_\w*clock_(?:timestep|t)\[0\] = [^;\n]+;")
    lines = src.split("\n")
    out: list[str] = []
    block: list[str] = []
    for line in lines:
        if reset.fullmatch(line):
            block.append(line)
            continue
        out += sorted(block)
        block = []
        out.append(line)
    out += sorted(block)
    return "\n".join(out)


#: state variables that hold a time of the binary's own clock, which starts at 0 in every run: Brian2's
#: ``lastupdate`` (the last event of an event-driven synapse, used as ``exp(-(t - lastupdate) / tau)``)
LOCAL_TIME_VARS = ("lastupdate",)


def rebase_local_times(state: Mapping[str, np.ndarray], elapsed_s: float) -> dict[str, np.ndarray]:
    """The state read after a run of ``elapsed_s`` seconds, with clock times moved to the next run's clock.

    Every run of the binary starts its clock at 0; a ``lastupdate`` of 98.5 s carried unchanged into the next
    run would be 98.5 s in that run's future, and the first event there would decay its traces by
    ``exp(+98.5 s / tau)`` (infinite). Subtracting the elapsed time keeps the time since the last event.
    """
    out = dict(state)
    for key, arr in state.items():
        if key.rsplit(".", 1)[-1] in LOCAL_TIME_VARS:
            out[key] = np.asarray(arr, dtype=np.float64) - float(elapsed_s)
    return out


def segment_seed(seed: int, segment: int) -> int:
    """The seed of segment ``segment`` of a run with ``seed`` (below 2^31, Brian2 adds the thread index)."""
    return int(np.random.SeedSequence([int(seed), int(segment)]).generate_state(1, np.uint32)[0] >> 1)
