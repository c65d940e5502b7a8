"""Opt-in oracle tests of the spiking inputs against the original script (``RATESPIKE_LPL_ORIG``).

``RATESPIKE_LPL_ORIG`` names a checkout of ``fmi-basel/latent-predictive-learning`` (written against commit
0210f55). ``spiking_simulations/mk_rates.py`` is run as it is, in a temporary directory (its ``seaborn`` import
stubbed, matplotlib on the Agg backend: it only draws a PDF), and the five rate files it writes are compared
with :func:`spiking.inputs.rate_samples`. Absent variable: skipped with the reason; wrong repository or commit:
one line (see ``tests/test_oracle_ssl.py``).
"""
from __future__ import annotations

import runpy
import sys
import types

import numpy as np
import pytest

from spiking.inputs import InputConfig, rate_samples
from test_oracle_ssl import LPL_COMMIT, _checkout  # tests/ is on sys.path (conftest)


def test_rate_files_of_mk_rates_are_our_input_traces(tmp_path, monkeypatch):
    root = _checkout("RATESPIKE_LPL_ORIG", "spiking_simulations/mk_rates.py", LPL_COMMIT,
                     "fmi-basel/latent-predictive-learning")
    import matplotlib

    matplotlib.use("Agg")
    sns = types.ModuleType("seaborn")
    sns.despine = lambda *a, **k: None
    monkeypatch.setitem(sys.modules, "seaborn", sns)
    monkeypatch.chdir(tmp_path)
    runpy.run_path(str(root / "spiking_simulations" / "mk_rates.py"), run_name="__main__")
    ours = rate_samples(InputConfig())  # the Fig. 5 network's input config (its defaults)
    for k in range(1, 5):  # rates0.dat is a constant 5 Hz given by two points
        t, v = np.loadtxt(tmp_path / f"rates{k}.dat", unpack=True)
        assert len(v) == len(ours[k]), k
        np.testing.assert_allclose(t, np.arange(len(v)) * 10e-3, atol=5e-7)
        np.testing.assert_array_equal(ours[k], v)  # the printed (%e) values, bit for bit
    t0, v0 = np.loadtxt(tmp_path / "rates0.dat", unpack=True)
    assert np.all(v0 == ours[0][0])
