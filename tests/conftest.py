"""Shared fixtures: where the offline data are, small seeded settings, and the hypothesis CI profile."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

try:
    from hypothesis import settings

    settings.register_profile("ci", max_examples=25, deadline=None, derandomize=True)
    settings.load_profile("ci")
except ImportError:  # pragma: no cover
    pass

REPO = Path(__file__).resolve().parents[1]


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
