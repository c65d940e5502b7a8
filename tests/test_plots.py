"""Figures a reviewer accepts: at most 4 panels a row, every axis labelled with units from the file, labelled
colour bars, integer epoch ticks, no offset notation, legends outside the data, titles that do not overlap
(checked on the rendered text extents)."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import xarray as xr

from bridge import plots


def _rendered(fig):
    fig.canvas.draw()
    return fig.canvas.get_renderer()


def _overlap(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def check_figure(fig, units: dict[str, str] | None = None, epoch_axes: bool = False) -> None:
    """Every rule of bridge.plots on a drawn figure; ``units`` maps an axis-label prefix to its unit."""
    r = _rendered(fig)
    axes = [ax for ax in fig.axes if ax.get_visible() and not hasattr(ax, "_colorbar")]
    cbars = [ax for ax in fig.axes if hasattr(ax, "_colorbar")]
    # at most four panels a row: no more than four panel axes share a row of the grid
    rows: dict[int, int] = {}
    for ax in axes:
        if ax.get_subplotspec() is not None:
            rows[ax.get_subplotspec().rowspan.start] = rows.get(ax.get_subplotspec().rowspan.start, 0) + 1
    assert max(rows.values()) <= plots.MAX_COLS, rows
    for ax in axes:
        xl, yl = ax.get_xlabel(), ax.get_ylabel()
        assert xl and yl, f"unlabelled axis in panel {ax.get_title()!r}: x {xl!r}, y {yl!r}"
        for prefix, unit in (units or {}).items():
            for text in (xl, yl):
                if text.startswith(prefix + " ") or text == prefix:
                    assert f"[{unit}]" in text, f"axis {text!r} lacks its unit [{unit}]"
        for axis in (ax.xaxis, ax.yaxis):
            assert axis.get_offset_text().get_text() == "", f"offset notation on {ax.get_title()!r}"
        if epoch_axes and xl == "epoch":
            ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
            assert ticks and all(float(t).is_integer() for t in ticks), ticks
        leg = ax.get_legend()
        if leg is not None:  # outside the axes: covers no data
            assert not _overlap(leg.get_window_extent(r), ax.get_window_extent(r)), ax.get_title()
    for cb in cbars:
        assert cb._colorbar.ax.get_ylabel() or cb._colorbar.ax.get_xlabel(), "colour bar without a label"
    titles = [ax.title for ax in axes if ax.get_title()] + ([fig._suptitle] if fig._suptitle else [])
    boxes = [(t.get_text(), t.get_window_extent(r)) for t in titles]
    for (ta, a), (tb, b) in itertools.combinations(boxes, 2):
        assert not _overlap(a, b), f"titles overlap: {ta!r} and {tb!r}"
    # titles stay clear of the other panels too
    for text, box in boxes:
        for ax in axes:
            if ax.title.get_text() != text:
                assert not _overlap(box, ax.get_window_extent(r)), f"title {text!r} runs into a panel"


def _curves(n_vars=9, epochs=1, layers=("conv1", "conv2")):
    ds = xr.Dataset(coords={"epoch": np.arange(1, epochs + 1), "layer": list(layers)})
    rng = np.random.default_rng(0)
    for k in range(n_vars):
        name = f"metric_number_{k}"
        ds[name] = (("epoch", "layer"), 1.9995 + 1e-4 * rng.normal(size=(epochs, len(layers))))
        ds[name].attrs.update(units="ms" if k % 2 else "1",
                              long_name=f"a long descriptive name of metric {k} that would run into the next title")
    ds.attrs.update(rule="clapp", dataset="stl10")
    return ds


@pytest.mark.parametrize("epochs", [1, 7])
def test_curves_wrap_and_keep_units_ticks_and_titles_apart(epochs):
    fig = plots.curves_figure(_curves(epochs=epochs))
    try:
        check_figure(fig, units={f"metric_number_{k}": "ms" if k % 2 else "1" for k in range(9)}, epoch_axes=True)
        assert len([ax for ax in fig.axes if ax.get_visible()]) == 9
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)


def test_the_checker_catches_what_the_old_layout_got_wrong():
    """Nine panels in one row with long titles and an offset axis fail the check (it can fail)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 9, figsize=(20, 3))
    for ax in axes:
        ax.plot([0.96, 1.04], [1.9995, 1.9996])
        ax.set_title("a long descriptive name that runs into the next title", fontsize=9)
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
    with pytest.raises(AssertionError):
        check_figure(fig, epoch_axes=True)
    plt.close(fig)


def test_comparison_heat_map_has_a_labelled_colour_bar():
    da = xr.DataArray(np.array([[1.0, 0.3], [0.2, 0.9]]), dims=("layer_a", "layer_b"),
                      coords={"layer_a": ["conv1", "conv2"], "layer_b": ["fc1", "fc2"]},
                      attrs={"units": "1", "label_a": "lpl layer", "label_b": "bp layer"})
    ds = xr.Dataset({"cka": da}, attrs={"model_a": "lpl", "model_b": "bp"})
    fig = plots.comparison_figure(ds)
    check_figure(fig)
    cb = next(ax for ax in fig.axes if hasattr(ax, "_colorbar"))
    assert cb.get_ylabel() == "cka [1]"
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_spiking_summary_panels_carry_the_file_units():
    t = np.arange(0, 2, 0.1)
    ds = xr.Dataset({
        "spike_time_E": ("spike_E", np.sort(np.random.default_rng(1).uniform(0, 2, 50)), {"units": "s"}),
        "spike_neuron_E": ("spike_E", np.random.default_rng(2).integers(0, 5, 50)),
        "population_rate_E": ("rate_time_E", np.ones(t.size), {"units": "Hz", "long_name": "mean E rate"}),
        "input_rate": (("input_time", "population"), np.ones((t.size, 2)), {"units": "Hz"}),
        "delta_w": ("delta_t", np.linspace(-1, 1, 9), {"units": "1"}),
        "rate_window_E": ("neuron_E", np.arange(5.0), {"units": "Hz"}),
    }, coords={"rate_time_E": ("rate_time_E", t, {"units": "s"}), "input_time": ("input_time", t, {"units": "s"}),
               "population": ["P0", "P1"], "delta_t": ("delta_t", np.linspace(-40, 40, 9), {"units": "ms"})},
        attrs={"experiment": "lpl-network"})
    rep = xr.Dataset({"response": (("time", "unit"), np.ones((20, 5)), {"units": "count"})},
                     coords={"time": ("time", t, {"units": "s"})})
    fig = plots.panels_figure(ds, {"E": rep})
    check_figure(fig, units={"rate_time_E": "s", "input_time": "s", "delta_t": "ms", "time": "s",
                             "population_rate_E": "Hz", "rate_window_E": "Hz"})
    labels = {ax.get_xlabel() for ax in fig.axes}
    assert {"rate_time_E [s]", "delta_t [ms]", "input_time [s]"} <= labels
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_rate_vs_spiking_figure():
    from bridge.fig5 import POPULATIONS
    from bridge.rate_vs_spiking import NETWORKS, side_by_side_figure

    rng = np.random.default_rng(3)
    ds = xr.Dataset(coords={"network": list(NETWORKS), "population": list(POPULATIONS), "neuron": np.arange(8)})
    ds["decoding_r2"] = (("network", "population"), rng.uniform(0, 1, (2, 5)))
    ds["relative_selectivity"] = (("network", "neuron"), rng.uniform(-1, 1, (2, 8)))
    ds["participation_ratio"] = ("network", [3.0, 5.0])
    for k in ("cka", "cka_debiased", "rsa"):
        ds[k] = 0.5
    ds.attrs.update(n_bins=400, window_start_s=10.0, spiking_duration_s=20.0)
    fig = side_by_side_figure(ds)
    check_figure(fig)
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_readout_of_models_beside_their_baselines():
    def acc(vals, layers):
        return xr.DataArray(vals, dims=("layer",), coords={"layer": layers}, attrs={"units": "1"})

    models = {"LPL": acc([0.95, 0.97], ["fc1", "fc2"]), "untrained": acc([0.96, 0.95], ["fc1", "fc2"]),
              "pixels": acc([0.94], ["pixels"])}
    fig = plots.readout_figure(models, "linear readout of every layer, same probe")
    check_figure(fig)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["fc1", "fc2"]
    assert len(ax.get_legend().get_texts()) == 3  # every baseline is in the legend
    import matplotlib.pyplot as plt

    plt.close(fig)
