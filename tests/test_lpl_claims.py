"""LPL's claims that can be tested honestly at test scale (Halvagal & Zenke 2023, Fig. 3, Ext. Data Fig. 11).

Each claim is asserted only as an effect beyond the seed-to-seed spread (two seeds per condition), so a switch
that did nothing (identical runs) fails. Claims kept at this scale (MNIST preset MLP on temporal digit
sequences, 256 units, 4000 training images, 2 epochs, probe ``zscore``):

* switching the Hebbian term off collapses the representation (readout and participation ratio);
* LPL's deepest layer reads out better than the random-init network.

Dropped, because at test scale the effect is within the seed spread (see docs/results/lpl.md): "pred off loses
readout in the deeper layers" (0.002-0.004 here) and "LPL beats the pixel readout" (+0.008 here).
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from ratenets.data import load_dataset
from ratenets.rules.lpl import LPL
from ratenets.train import RunContext, fit

SEEDS = (0, 1)


def beyond_spread(high: np.ndarray, low: np.ndarray, floor: float = 0.005) -> tuple[bool, float, float]:
    """Whether every seed of ``high`` exceeds every seed of ``low`` by more than twice the larger spread."""
    spread = max(float(np.ptp(high)), float(np.ptp(low)), floor)
    gap = float(np.min(high) - np.max(low))
    return gap > 2 * spread, gap, spread


def test_beyond_spread_fails_for_a_no_op_switch():
    same = np.array([0.80, 0.81])
    assert not beyond_spread(same, same)[0]
    assert beyond_spread(np.array([0.85, 0.86]), np.array([0.11, 0.12]))[0]


@pytest.mark.slow
@pytest.mark.data
def test_lpl_claims_beyond_seed_spread(data_root):
    data = load_dataset("mnist", data_root).subset(4000, 2000)
    base = dataclasses.replace(LPL.preset("mnist"), epochs=2, mlp_hidden=(256, 256, 256), probe="zscore",
                               probe_train_images=4000)

    def last(seed, **kw):
        ds, _ = fit(LPL, dataclasses.replace(base, **kw), data, RunContext(dataset="mnist", seeds=(seed,)))
        return ds.isel(epoch=-1)

    runs = {name: [last(s, **kw) for s in SEEDS] for name, kw in
            (("lpl", {}), ("hebb_off", {"hebb_coeff": 0.0}), ("random", {"baseline": "random_init"}))}
    acc = {k: np.array([r["test_accuracy"].values[-1] for r in v]) for k, v in runs.items()}
    pr = {k: np.array([r["participation_ratio"].values[-1] for r in v]) for k, v in runs.items()}
    print("last-layer readout", {k: v.round(3).tolist() for k, v in acc.items()},
          "PR", {k: v.round(2).tolist() for k, v in pr.items()})
    ok, gap, spread = beyond_spread(acc["lpl"], acc["hebb_off"])
    assert ok, f"Hebb off readout gap {gap:.3f} not beyond 2x spread {spread:.3f}"
    ok, gap, spread = beyond_spread(pr["lpl"], pr["hebb_off"], floor=0.5)
    assert ok, f"Hebb off PR gap {gap:.2f} not beyond 2x spread {spread:.2f}"
    ok, gap, spread = beyond_spread(acc["lpl"], acc["random"])
    assert ok, f"LPL vs random init gap {gap:.3f} not beyond 2x spread {spread:.3f}"
