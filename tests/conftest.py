"""Shared fixtures: where the offline data are, small seeded settings, and the hypothesis CI profile."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

try:
    from hypothesis import settings

    settings.register_profile("ci", max_examples=25, deadline=None, derandomize=True)
    settings.load_profile("ci")
except ImportError:  # pragma: no cover
    pass

REPO = Path(__file__).resolve().parents[1]
# helper modules beside the tests (e.g. auryn_lpl_reference) are importable under --import-mode=importlib
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))


def shared_data_root() -> Path | None:
    """The offline data folder: $RATESPIKE_DATA, else ../shared/data beside the checkout; None if absent."""
    env = os.environ.get("RATESPIKE_DATA")
    for cand in ([Path(env)] if env else []) + [REPO.parent / "shared" / "data"]:
        if (cand / "MNIST" / "raw").is_dir():
            return cand
    return None


@pytest.fixture
def data_root() -> Path:
    """The offline MNIST/Fashion-MNIST root; skips the test with a reason when it is absent."""
    root = shared_data_root()
    if root is None:
        pytest.skip("offline MNIST not found: set RATESPIKE_DATA or put ../shared/data beside the checkout")
    return root


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets a private cache dir, shared within the session (decoded IDX files are reused)."""
    cache = tmp_path_factory.getbasetemp() / "xdg-cache"
    cache.mkdir(exist_ok=True)
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))


#: the tiny Fig. 5 network of the standalone tests (one build for the whole session)
TINY_NETWORK = dict(n_per_population=6, n_exc=5, n_inh=2, ei_width=2.0, update_interval_s=0.1, rate_bin_s=0.1,
                    weight_snapshot_s=0.2, trace_dt_s=0.1, record_last_s=0.4, plasticity_start_s=0.1, eta=1.0,
                    fast_rms=True, w_input=0.8, p_input=0.9)  # dense input so that E fires


@pytest.fixture(scope="session")
def tiny_network():
    """The config fields of the tiny Fig. 5 network that ``network_build_root`` holds a binary of."""
    return dict(TINY_NETWORK)


@pytest.fixture(scope="session")
def network_build_root(tmp_path_factory):
    """A build root holding the one cpp_standalone binary of the tiny network (built once per session)."""
    if os.environ.get("RATESPIKE_STANDALONE_TESTS") != "1":
        pytest.skip("compiles a cpp_standalone project (1-4 min); set RATESPIKE_STANDALONE_TESTS=1 to run")
    from spiking.experiments import lpl_network as ln

    root = tmp_path_factory.mktemp("builds")
    ds, _ = ln.simulate(ln.config(duration_s=0.2, **TINY_NETWORK), seed=0, device="cpp_standalone",
                        build_root=root)
    assert ds.attrs["build_time_s"] > 0
    return root
