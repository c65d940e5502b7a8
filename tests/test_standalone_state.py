"""State carried between runs of a standalone binary (no build needed)."""
from __future__ import annotations

import numpy as np

from spiking.standalone import rebase_local_times


def test_lastupdate_moves_to_the_next_runs_clock_and_nothing_else_moves():
    state = {"ie.lastupdate": np.array([0.0, 98.5, 100.0]), "ie.t_arr": np.array([-1.0, 398.5, 400.0]),
             "ie.w": np.array([0.5, 0.6, 0.7]), "exc.v": np.array([-0.07])}
    out = rebase_local_times(state, 100.0)
    np.testing.assert_array_equal(out["ie.lastupdate"], [-100.0, -1.5, 0.0])
    for key in ("ie.t_arr", "ie.w", "exc.v"):  # global times (t + t_off) and values stay as they were
        np.testing.assert_array_equal(out[key], state[key])
    # the decay a trace sees at the next run's time t is exp(-(t - lastupdate) / tau) <= 1 for every t >= 0
    assert np.all(np.exp(-(0.0 - out["ie.lastupdate"]) / 0.02) <= 1.0)
