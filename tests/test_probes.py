"""Tests of ratenets.probes: the linear readout shared by the self-supervised rules."""
from __future__ import annotations

import pytest
import torch

from bridge.errors import ConfigError
from ratenets.probes import collect_features, linear_probe, probe_layers, standardise


def _blobs(n: int, d: int = 20, k: int = 4, sep: float = 3.0, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(k, d, generator=g) * sep
    y = torch.randint(0, k, (n,), generator=g)
    return centres[y] + torch.randn(n, d, generator=g), y


def test_separable_blobs_are_read_out():
    x, y = _blobs(600)
    acc = linear_probe(x[:400], y[:400], x[400:], y[400:], epochs=30, lr=1e-2, batch_size=64)
    assert acc > 0.95


def test_random_labels_give_chance():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(1200, 10, generator=g)
    y = torch.randint(0, 4, (1200,), generator=g)
    acc = linear_probe(x[:800], y[:800], x[800:], y[800:], epochs=10, lr=1e-2)
    assert 0.15 < acc < 0.4


def test_deterministic_and_scale_invariant():
    x, y = _blobs(300, sep=0.7)
    a = linear_probe(x[:200], y[:200], x[200:], y[200:], epochs=5, seed=3)
    b = linear_probe(x[:200], y[:200], x[200:], y[200:], epochs=5, seed=3)
    c = linear_probe(1e3 * x[:200], y[:200], 1e3 * x[200:], y[200:], epochs=5, seed=3)
    assert a == b
    assert abs(a - c) < 0.02  # standardisation removes the feature scale


def test_standardise_uses_train_statistics_and_dead_units_stay_finite():
    tr = torch.tensor([[1.0, 5.0], [3.0, 5.0]])
    te = torch.tensor([[2.0, 5.0]])
    a, b = standardise(tr, te)
    assert torch.allclose(a[:, 0], torch.tensor([-1.0, 1.0]), atol=1e-5)
    assert torch.isfinite(b).all() and b[0, 1] == 0


def test_probe_layers_and_bad_layer():
    x, y = _blobs(200)
    feats = {"l1": x, "l2": x[:, :5]}
    out = probe_layers(feats, y, feats, y, epochs=2)
    assert list(out) == ["l1", "l2"] and all(0 <= v <= 1 for v in out.values())
    with pytest.raises(ConfigError, match="no layer 'l9'"):
        probe_layers(feats, y, feats, y, layers=["l9"])


def test_bad_shapes_are_config_errors():
    x, y = _blobs(50)
    with pytest.raises(ConfigError):
        linear_probe(x, y[:10], x, y)
    with pytest.raises(ConfigError):
        linear_probe(x, y, x[:, :3], y)
    with pytest.raises(ConfigError):
        linear_probe(x, y, x, y, epochs=0)


def test_collect_features_concatenates_batches():
    x = torch.arange(10.0).reshape(10, 1)
    out = collect_features(lambda b: {"double": 2 * b}, x, batch_size=3)
    assert torch.equal(out["double"], 2 * x)


def test_eval_py_probe_options_use_raw_features_and_keep_the_order():
    """standardize=False sees the raw scale (a z-scored probe is scale-invariant, the raw one is not)."""
    import torch

    from ratenets.probes import linear_probe

    g = torch.Generator().manual_seed(0)
    y = torch.arange(200) % 2
    x = torch.randn(200, 3, generator=g) + y[:, None].float()
    kw = dict(epochs=2, lr=1e-2, batch_size=50, seed=0)
    z1 = linear_probe(x, y, x, y, **kw)
    z2 = linear_probe(1e3 * x, y, 1e3 * x, y, **kw)
    assert z1 == z2  # z-scoring removes the scale
    raw = [linear_probe(s * x, y, s * x, y, standardize=False, shuffle=False, init="linear", **kw)
           for s in (1e-3, 1.0)]
    assert raw[0] != raw[1]  # raw features: the scale matters
    a = linear_probe(x, y, x, y, standardize=False, shuffle=False, init="linear", **kw)
    assert a == raw[1]  # deterministic for a seed
