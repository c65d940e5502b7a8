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


def test_code_hash_ignores_the_order_of_clock_initialisations_only():
    from spiking.standalone import _sorted_clock_resets as canonical_main

    a = "int main() {\n  _array_b_clock_t[0] = 0.0;\n  _array_a_clock_t[0] = 0.0;\n  run_x();\n  run_y();\n}"
    b = "int main() {\n  _array_a_clock_t[0] = 0.0;\n  _array_b_clock_t[0] = 0.0;\n  run_x();\n  run_y();\n}"
    c = "int main() {\n  _array_a_clock_t[0] = 0.0;\n  _array_b_clock_t[0] = 0.0;\n  run_y();\n  run_x();\n}"
    assert canonical_main(a) == canonical_main(b)
    assert canonical_main(b) != canonical_main(c)  # the order of everything else is the program


def test_builds_use_canonical_run_time_values():
    from bridge.config import get_path
    from spiking.experiments import lpl_network as ln

    a = ln.canonical_runtime(ln.effective(ln.config(duration_s=5, condition="pred-off", eta=3e-3,
                                                    plasticity_start_s=1800)))
    b = ln.canonical_runtime(ln.effective(ln.config(duration_s=5, condition="hebb-off", zeta=0.0)))
    for path in ln.LEARNING_PATHS:
        assert get_path(a, path) == get_path(b, path) == get_path(ln.config(), path), path
    assert ln.compiled_fields(ln.config(duration_s=5, eta=3e-3)) == ln.compiled_fields(ln.config(duration_s=9))
