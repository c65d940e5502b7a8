"""The paper's qualitative claims on a small fast MNIST setting (Halvagal & Zenke 2023, Fig. 3, Ext. Data Fig. 11).

LPL's deepest-layer readout beats the pixel readout and the random-init network; switching the Hebbian term
off collapses the representation; switching the predictive term off loses readout accuracy in the deeper
layers. Setting: the MNIST preset (MLP on temporal digit sequences) at 256-unit width, 4000 training
images, 2 epochs, one seed; numbers of a full run are in docs/results/lpl.md.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from ratenets.data import load_dataset
from ratenets.rules.lpl import LPL
from ratenets.train import RunContext, fit


@pytest.mark.slow
@pytest.mark.data
def test_lpl_qualitative_claims(data_root):
    data = load_dataset("mnist", data_root).subset(4000, 2000)
    base = dataclasses.replace(LPL.preset("mnist"), epochs=2, mlp_hidden=(256, 256, 256),
                               probe_train_images=4000)

    def last(**kw):
        ds, _ = fit(LPL, dataclasses.replace(base, **kw), data, RunContext(dataset="mnist"))
        return ds.isel(epoch=-1)

    lpl, pred_off, hebb_off = last(), last(pred_coeff=0.0), last(hebb_coeff=0.0)
    rand, pixels = last(baseline="random_init"), last(baseline="pixels")
    acc = lpl["test_accuracy"].values
    print("lpl", acc, "pred off", pred_off["test_accuracy"].values, "hebb off", hebb_off["test_accuracy"].values,
          "random", rand["test_accuracy"].values, "pixels", pixels["test_accuracy"].values,
          "PR", lpl["participation_ratio"].values, hebb_off["participation_ratio"].values)
    assert acc[-1] > float(pixels["test_accuracy"].values[0]) + 0.005
    assert acc[-1] > rand["test_accuracy"].values[-1] + 0.02
    # Hebb off: readout near chance or participation ratio near 1 (0: every unit dead)
    h_acc, h_pr = hebb_off["test_accuracy"].values[-1], hebb_off["participation_ratio"].values[-1]
    assert h_acc < 0.2 or h_pr < 1.5
    assert h_pr < 0.5 * lpl["participation_ratio"].values[-1]
    # pred off: lower readout than LPL in the deeper layers
    assert np.all(pred_off["test_accuracy"].values[1:] < acc[1:])
