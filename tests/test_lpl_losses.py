"""LPL loss terms: autograd equals the analytic local rule (erratum form), batch-size behaviour, identities.

The analytic rule is the one of Halvagal & Zenke (2023) as corrected by the erratum (PR #9 of
fmi-basel/latent-predictive-learning), written for the official code's normalisation: for unit i, sample b,
view v, with z = f(a), a = W x + b,

    dL/dW_ij = sum_v sum_b dL/dz_i^b(v) f'(a_i^b(v)) x_j^b(v)

    pred (symmetric):  dL/dz(1) = 2/(BM) (z(1) - z(2)),  dL/dz(2) = -2/(BM) (z(1) - z(2))
    pred (stop-grad):  dL/dz(1) = 2/(BM) (z(1) - z(2)),  dL/dz(2) = 0
    Hebb:              dL/dz(v) = -1/(M(B-1)) (z - zbar)/(sigma^2 + eps)         (0.5 view average included)
    decorr:            dL/dz_i^b(v) = 2/((B-1)(M^2-M)) sum_{k != i} C_ik c_k^b     (0.5 view average included)

computed here in NumPy (float64) and compared with torch autograd to 1e-5 relative error.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ratenets.rules.lpl import (decorrelation_loss, hebbian_loss, lpl_loss, lpl_terms, lpl_terms_maps,
                                negsample_terms, predictive_loss)

EPS = 1e-4


def _setup(relu: bool, b: int = 16, n: int = 7, m: int = 5, seed: int = 0):
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=(b, n)), rng.normal(size=(b, n))
    w = rng.normal(size=(m, n)) / np.sqrt(n)
    bias = rng.normal(size=m) * 0.3 + (0.5 if relu else 0.0)
    return x1, x2, w, bias


def _forward_np(x, w, bias, relu):
    a = x @ w.T + bias
    z = np.maximum(a, 0) if relu else a
    fprime = (a > 0).astype(float) if relu else np.ones_like(a)
    return z, fprime


def _analytic_dz(term: str, z1: np.ndarray, z2: np.ndarray, stop: bool = False):
    b, m = z1.shape
    if term == "pred":
        d = 2.0 / (b * m) * (z1 - z2)
        return d, (np.zeros_like(d) if stop else -d)
    out = []
    for z in (z1, z2):
        c = z - z.mean(0)
        if term == "hebb":
            var = (c ** 2).sum(0) / (b - 1)
            out.append(-c / (m * (b - 1) * (var + EPS)))
        else:
            cov = c.T @ c / (b - 1)
            off = cov - np.diag(np.diag(cov))
            out.append(2.0 / ((b - 1) * (m * m - m)) * c @ off)
    return out[0], out[1]


def _analytic_dw(term, x1, x2, w, bias, relu, stop=False):
    z1, f1 = _forward_np(x1, w, bias, relu)
    z2, f2 = _forward_np(x2, w, bias, relu)
    d1, d2 = _analytic_dz(term, z1, z2, stop)
    return (d1 * f1).T @ x1 + (d2 * f2).T @ x2


def _autograd_dw(term, x1, x2, w, bias, relu, stop=False):
    layer = torch.nn.Linear(w.shape[1], w.shape[0]).double()
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(w))
        layer.bias.copy_(torch.from_numpy(bias))
    f = torch.relu if relu else (lambda t: t)
    z1, z2 = f(layer(torch.from_numpy(x1))), f(layer(torch.from_numpy(x2)))
    terms = lpl_terms(z1, z2, eps=EPS, stop_gradient=stop)
    terms[term].backward()
    return layer.weight.grad.numpy()


def _rel(a, b):
    return np.abs(a - b).max() / np.abs(b).max()


@pytest.mark.parametrize("relu", [False, True], ids=["linear", "relu"])
@pytest.mark.parametrize("term", ["pred", "hebb", "decorr"])
def test_autograd_equals_local_rule(term, relu):
    x1, x2, w, bias = _setup(relu)
    ref = _analytic_dw(term, x1, x2, w, bias, relu)
    got = _autograd_dw(term, x1, x2, w, bias, relu)
    assert np.abs(ref).max() > 0
    assert _rel(got, ref) < 1e-5


@pytest.mark.parametrize("relu", [False, True], ids=["linear", "relu"])
def test_stopgrad_predictive_term_is_the_papers_form(relu):
    x1, x2, w, bias = _setup(relu, seed=3)
    ref = _analytic_dw("pred", x1, x2, w, bias, relu, stop=True)
    got = _autograd_dw("pred", x1, x2, w, bias, relu, stop=True)
    assert _rel(got, ref) < 1e-5


def test_decorrelation_is_the_erratum_form_not_published_eq6():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(12, 4)) @ rng.normal(size=(4, 4))
    b, m = z.shape
    c = z - z.mean(0)
    cov = c.T @ c / (b - 1)
    corrected = sum(cov[i, k] ** 2 for i in range(m) for k in range(m) if i != k) / (m * m - m)
    published = sum((c[:, i] ** 2 * c[:, k] ** 2).sum() for i in range(m) for k in range(m) if i != k) / (
        (b - 1) * (m * m - m))
    got = float(decorrelation_loss(torch.from_numpy(z)))
    assert got == pytest.approx(corrected, rel=1e-10)
    assert abs(got - published) > 0.1 * abs(published)


def test_predictive_term_zero_for_identical_views():
    z = torch.randn(9, 6, requires_grad=True)
    for stop in (False, True):
        loss = predictive_loss(z, z.clone(), stop_gradient=stop)
        assert float(loss.detach()) == 0.0
        (g,) = torch.autograd.grad(loss, z)
        assert torch.count_nonzero(g) == 0
    maps = torch.rand(3, 2, 4, 4)
    assert float(lpl_terms_maps(maps, maps.clone())["pred"]) == 0.0


def test_predictive_term_is_intensive_in_batch_size():
    """Mean reduction: the loss of two stacked batches is the mean of their losses (no B or M scaling)."""
    g = torch.Generator().manual_seed(0)
    a1, a2, b1, b2 = (torch.randn(n, 8, generator=g) for n in (16, 16, 48, 48))
    whole = predictive_loss(torch.cat([a1, b1]), torch.cat([a2, b2]))
    parts = (16 * predictive_loss(a1, a2) + 48 * predictive_loss(b1, b2)) / 64
    assert float(whole) == pytest.approx(float(parts), rel=1e-6)


def test_hebbian_term_batch_size_independent_in_expectation():
    """Unbiased variance: E[-log(s^2)] = -log(sigma^2) + O(1/B), the small bias of the log (Jensen)."""
    g = torch.Generator().manual_seed(0)
    sigma2 = 4.0
    for b in (32, 512):
        vals = [float(hebbian_loss(2.0 * torch.randn(b, 64, generator=g) + 3.0, eps=0.0)) for _ in range(40)]
        assert np.mean(vals) == pytest.approx(-np.log(sigma2), abs=2.5 / b + 0.01)


def test_decorrelation_term_finite_batch_bias_as_expected():
    """Independent Gaussian units: E[C_ik^2] = sigma^4/(B-1) exactly, so (B-1) E[L_dec] = sigma^4 for any B
    (the only batch-size dependence: the squared estimator's variance); correlated units converge to rho^2."""
    g = torch.Generator().manual_seed(1)
    for b in (16, 128):
        vals = [float(decorrelation_loss(1.5 * torch.randn(b, 6, generator=g))) for _ in range(600)]
        assert (b - 1) * np.mean(vals) == pytest.approx(1.5 ** 4, rel=0.08)
    rho = 0.6
    s = torch.randn(20000, 1, generator=g)
    z = torch.cat([s, rho * s + np.sqrt(1 - rho ** 2) * torch.randn(20000, 1, generator=g)], 1)
    assert float(decorrelation_loss(z)) == pytest.approx(rho ** 2, rel=0.05)


def test_stale_hebbian_gradient():
    """--stale_estimates: dL/dz = -2 (z - mu_old) / (M (sigma_old^2 + eps)(B - 1)) per view."""
    g = torch.Generator().manual_seed(2)
    z = torch.randn(10, 3, generator=g, dtype=torch.float64, requires_grad=True)
    mu, var = torch.rand(3, generator=g, dtype=torch.float64), torch.rand(3, generator=g, dtype=torch.float64) + 0.5
    (grad,) = torch.autograd.grad(hebbian_loss(z, EPS, mu, var), z)
    ref = -2 * (z.detach() - mu) / (3 * (var + EPS) * 9)
    assert torch.allclose(grad, ref, rtol=1e-10)


def test_coefficients_weight_the_terms_and_zero_switches_off():
    terms = {"pred": torch.tensor(2.0), "hebb": torch.tensor(-3.0), "decorr": torch.tensor(0.5)}
    assert float(lpl_loss(terms, 1.0, 1.0, 10.0)) == pytest.approx(2 - 3 + 5)
    assert float(lpl_loss(terms, 0.0, 1.0, 0.0)) == pytest.approx(-3)
    terms["hebb"] = torch.tensor(float("nan"))
    assert float(lpl_loss(terms, 1.0, 0.0, 10.0)) == pytest.approx(7)  # an off term cannot leak NaN


def test_negsample_terms_known_values():
    z = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    t = negsample_terms(z, z.clone())
    assert float(t["pred"]) == pytest.approx(-1.0)
    assert float(t["hebb"]) == pytest.approx(0.0)
    t = negsample_terms(torch.tensor([[1.0, 0.0], [3.0, 0.0]]), torch.tensor([[0.0, 1.0], [0.0, 1.0]]))
    assert float(t["pred"]) == pytest.approx(0.0)
    assert float(t["hebb"]) == pytest.approx(1.0)


def test_no_pooling_terms_layout():
    """Unpooled maps: Hebb per (C,H,W) position, decorrelation over B*H*W samples of the C channels."""
    g = torch.Generator().manual_seed(4)
    h1, h2 = torch.randn(5, 3, 2, 2, generator=g), torch.randn(5, 3, 2, 2, generator=g)
    t = lpl_terms_maps(h1, h2)
    assert float(t["hebb"]) == pytest.approx(0.5 * float(hebbian_loss(h1.flatten(1)) + hebbian_loss(h2.flatten(1))))
    pos = h1.permute(0, 2, 3, 1).reshape(20, 3)
    assert float(decorrelation_loss(pos)) == pytest.approx(
        float(2 * t["decorr"] - decorrelation_loss(h2.permute(0, 2, 3, 1).reshape(20, 3))))
