"""Printed summaries: per-layer values labelled by layer, digits that never round a loss to an integer, and a
note when a multi-seed file keeps representations of some seeds only."""
from __future__ import annotations

import numpy as np
import xarray as xr

from bridge.summary import describe, final_metrics, fmt_number, representation_note


def test_numbers_keep_their_non_integer_digits():
    assert fmt_number(1.9995) == "1.9995"
    assert fmt_number(0.6797) == "0.6797"
    assert fmt_number(2.0) == "2"
    assert fmt_number(0.844) == "0.844"
    assert fmt_number(1.99999) == "1.99999"


def test_per_layer_values_are_labelled_by_layer():
    ds = xr.Dataset({"test_accuracy": (("epoch", "layer"), [[0.5, 0.6], [0.6797, 0.844]]),
                     "train_loss": (("epoch", "layer"), [[2.1, 2.2], [1.9995, 2.0004]])},
                    coords={"epoch": [1, 2], "layer": ["conv1", "conv2"]})
    text = final_metrics(ds)
    assert text == "test_accuracy conv1 0.6797, conv2 0.844; train_loss conv1 1.9995, conv2 2.0004"
    assert "conv1 0.6797" in describe(ds)


def test_several_seeds_print_mean_and_spread_per_layer():
    ds = xr.Dataset({"test_accuracy": (("epoch", "seed", "layer"), [[[0.5, 0.7], [0.7, 0.9]]])},
                    coords={"epoch": [1], "seed": [0, 1], "layer": ["fc1", "fc2"]})
    assert final_metrics(ds) == "test_accuracy fc1 0.6 +- 0.1, fc2 0.8 +- 0.1 (mean +- sd over 2 seeds)"


def test_note_when_representations_are_kept_for_some_seeds_only(tmp_path):
    from bridge.io import provenance, write_run
    from bridge.reps import groups_of, representation

    rep = representation(np.ones((4, 3)), layer="fc1", attrs={"seed": 0})
    multi = write_run(xr.Dataset(attrs=provenance(kind="train", config_json="{}", seed=[0, 1, 2])),
                      tmp_path / "m.nc", groups=groups_of({"fc1": rep}))
    note = representation_note(xr.open_dataset(multi), multi)
    assert note is not None and "seed 0 only" in note and "3 seeds" in note
    single = write_run(xr.Dataset(attrs=provenance(kind="train", config_json="{}", seed=0)),
                       tmp_path / "s.nc", groups=groups_of({"fc1": rep}))
    assert representation_note(xr.open_dataset(single), single) is None
