"""bridge.measures against small cases with known answers and against naive references."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.spatial.distance import pdist, squareform
from scipy.stats import ortho_group, spearmanr

from bridge import measures as M


def _rng(seed=0):
    return np.random.default_rng(seed)


# --- CKA ------------------------------------------------------------------------------------------------

def _cka_reference(x, y):
    """Naive biased linear CKA: HSIC = tr(K H L H) with the centring matrix H (Kornblith et al. 2019)."""
    n = len(x)
    h = np.eye(n) - np.ones((n, n)) / n
    k, l = x @ x.T, y @ y.T
    hsic = lambda a, b: np.trace(a @ h @ b @ h)  # noqa: E731
    return hsic(k, l) / np.sqrt(hsic(k, k) * hsic(l, l))


def _hsic_unbiased_reference(k, l):
    """Song et al. (2012), Eq. 5, term by term with explicit loops over index tuples."""
    n = len(k)
    kt, lt = k.copy(), l.copy()
    np.fill_diagonal(kt, 0)
    np.fill_diagonal(lt, 0)
    t1 = sum(kt[i, j] * lt[j, i] for i in range(n) for j in range(n))
    t2 = kt.sum() * lt.sum() / ((n - 1) * (n - 2))
    t3 = 2 / (n - 2) * sum(kt[i, j] * lt[j, q] for i in range(n) for j in range(n) for q in range(n))
    return (t1 + t2 - t3) / (n * (n - 3))


@pytest.mark.parametrize("n, p, q", [(30, 5, 7), (10, 40, 3)])  # feature-space and Gram-space branches
def test_cka_equals_naive_reference(n, p, q):
    r = _rng(1)
    x, y = r.normal(size=(n, p)), r.normal(size=(n, q)) + 0.5 * r.normal(size=(n, 1))
    assert M.linear_cka(x, y) == pytest.approx(_cka_reference(x, y), rel=1e-10)


def test_debiased_cka_equals_loop_reference():
    r = _rng(2)
    x, y = r.normal(size=(9, 4)), r.normal(size=(9, 6))
    xc, yc = x - x.mean(0), y - y.mean(0)
    k, l = xc @ xc.T, yc @ yc.T
    ref = _hsic_unbiased_reference(k, l) / np.sqrt(_hsic_unbiased_reference(k, k) * _hsic_unbiased_reference(l, l))
    assert M.linear_cka(x, y, debiased=True) == pytest.approx(ref, rel=1e-10)


@given(seed=st.integers(0, 2**31 - 1), scale=st.floats(1e-3, 1e3), shift=st.floats(-10, 10))
def test_cka_invariant_to_rotation_scaling_and_shift(seed, scale, shift):
    r = _rng(seed)
    x = r.normal(size=(20, 6))
    q = ortho_group.rvs(6, random_state=seed % 2**32)
    y = scale * x @ q + shift
    for deb in (False, True):
        assert M.linear_cka(x, y, debiased=deb) == pytest.approx(1.0, abs=1e-8)
        assert M.linear_cka(x, x, debiased=deb) == pytest.approx(1.0, abs=1e-10)


@given(seed=st.integers(0, 2**31 - 1))
def test_cka_symmetric_and_bounded(seed):
    r = _rng(seed)
    x, y = r.normal(size=(15, 4)), r.normal(size=(15, 8))
    c = M.linear_cka(x, y)
    assert c == pytest.approx(M.linear_cka(y, x), rel=1e-12)
    assert 0.0 <= c <= 1.0 + 1e-12


def test_debiased_cka_removes_the_bias_for_unrelated_wide_representations():
    r = _rng(3)
    x, y = r.normal(size=(40, 500)), r.normal(size=(40, 500))  # independent, units >> samples
    assert M.linear_cka(x, y) > 0.5                      # the biased estimator is far from 0
    assert abs(M.linear_cka(x, y, debiased=True)) < 0.05  # the debiased one is near 0


def test_cka_of_a_constant_representation_is_nan():
    x = _rng(0).normal(size=(10, 3))
    assert np.isnan(M.linear_cka(x, np.ones((10, 2))))


# --- RSA ------------------------------------------------------------------------------------------------

def test_rdm_matches_scipy_and_is_symmetric_with_zero_diagonal():
    x = _rng(4).normal(size=(12, 5))
    for metric in ("correlation", "euclidean"):
        d = M.rdm(x, metric)
        np.testing.assert_allclose(d, squareform(pdist(x, metric)), atol=1e-10)
        np.testing.assert_array_equal(d, d.T)
        assert np.all(np.diag(d) == 0)


def test_rsa_equals_spearman_of_upper_triangles():
    r = _rng(5)
    x, y = r.normal(size=(15, 6)), r.normal(size=(15, 4))
    ref = spearmanr(pdist(x, "correlation"), pdist(y, "correlation")).statistic
    assert M.rsa(x, y) == pytest.approx(ref, abs=1e-12)


def test_rsa_known_cases():
    r = _rng(6)
    x = r.normal(size=(10, 5))
    # monotone transforms of distances leave ranks unchanged: a scaled, shifted copy has RSA 1
    assert M.rsa(x, 3 * x + 1) == pytest.approx(1.0)
    assert M.rsa(x, x, metric="euclidean") == pytest.approx(1.0)
    assert np.isnan(M.rsa(x, np.ones((10, 3)), metric="euclidean"))


# RSA against rsatoolbox, the field's library (Nili et al. 2014; Schütt et al. 2023), on the same data

def _rsatoolbox():
    return pytest.importorskip("rsatoolbox", reason="rsatoolbox not installed (pip install '.[test]')")


@pytest.mark.parametrize("counts", [False, True], ids=["continuous", "spike-counts-with-ties"])
def test_rdm_matches_rsatoolbox(counts):
    rsat = _rsatoolbox()
    r = _rng(11)
    x = r.poisson(2.0, size=(20, 9)).astype(float) if counts else r.normal(size=(20, 9))
    ds = rsat.data.Dataset(x)
    # rsatoolbox's "correlation" RDM is 1 - Pearson r, as ours
    got = rsat.rdm.calc_rdm(ds, method="correlation").get_matrices()[0]
    np.testing.assert_allclose(M.rdm(x, "correlation"), got, atol=1e-12)
    # its "euclidean" RDM is the squared distance per channel: ours squared over the unit count
    got = rsat.rdm.calc_rdm(ds, method="euclidean").get_matrices()[0]
    np.testing.assert_allclose(M.rdm(x, "euclidean") ** 2 / x.shape[1], got, atol=1e-10)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("metric", ["correlation", "euclidean"])
def test_rsa_matches_rsatoolbox_spearman_comparison(seed, metric):
    rsat = _rsatoolbox()
    r = _rng(20 + seed)
    x = r.normal(size=(25, 8))
    y = x @ r.normal(size=(8, 6)) + r.normal(size=(25, 6)) * (1 + 2 * seed)  # related, less so for seed 1
    rdm_x = rsat.rdm.calc_rdm(rsat.data.Dataset(x), method=metric)
    rdm_y = rsat.rdm.calc_rdm(rsat.data.Dataset(y), method=metric)
    ref = float(rsat.rdm.compare(rdm_x, rdm_y, method="spearman")[0, 0])
    # a squared distance has the same ranks, so both metrics compare exactly as in rsatoolbox
    assert M.rsa(x, y, metric=metric) == pytest.approx(ref, abs=1e-12)


def test_rsa_with_tied_distances_matches_rsatoolbox():
    """Integer spike counts give exactly tied Euclidean distances; both rank ties by their average."""
    rsat = _rsatoolbox()
    r = _rng(40)
    x, y = r.poisson(1.0, size=(30, 3)).astype(float), r.poisson(1.0, size=(30, 2)).astype(float)
    d = M.rdm(x, "euclidean")
    assert len(np.unique(upper_triangle := d[np.triu_indices(30, 1)])) < upper_triangle.size / 4  # many ties
    ref = float(rsat.rdm.compare(rsat.rdm.calc_rdm(rsat.data.Dataset(x), method="euclidean"),
                                 rsat.rdm.calc_rdm(rsat.data.Dataset(y), method="euclidean"),
                                 method="spearman")[0, 0])
    assert M.rsa(x, y, metric="euclidean") == pytest.approx(ref, abs=1e-12)


def test_compare_rsa_layers_match_rsatoolbox():
    """The layer x layer RSA of ``ratespike compare`` is rsatoolbox's Spearman comparison of its RDMs."""
    rsat = _rsatoolbox()
    import xarray as xr

    from bridge.compare import compare_representations

    r = _rng(30)
    a = {"l1": r.normal(size=(18, 5)), "l2": r.normal(size=(18, 7))}
    b = {"m1": a["l1"] @ r.normal(size=(5, 4)), "m2": r.normal(size=(18, 3))}

    def reps(d):
        return {k: xr.Dataset({"response": (("stimulus", "unit"), v)}) for k, v in d.items()}

    got = compare_representations(reps(a), reps(b), "rsa")["rsa"].values
    rdms = {k: rsat.rdm.calc_rdm(rsat.data.Dataset(v), method="correlation") for k, v in {**a, **b}.items()}
    for i, la in enumerate(a):
        for j, lb in enumerate(b):
            ref = float(rsat.rdm.compare(rdms[la], rdms[lb], method="spearman")[0, 0])
            assert got[i, j] == pytest.approx(ref, abs=1e-12)


# --- decoding -----------------------------------------------------------------------------------------------

def test_classification_decoding_known_cases():
    r = _rng(7)
    labels = np.repeat(np.arange(4), 50)
    r.shuffle(labels)
    clean = np.eye(4)[labels] * 3 + 0.1 * r.normal(size=(200, 4))
    assert M.linear_decoding(clean, labels, kind="classification", contiguous=False) == 1.0
    noise = r.normal(size=(200, 4))
    acc = M.linear_decoding(noise, labels, kind="classification", contiguous=False)
    assert acc < 0.45  # chance is 0.25; 40 test samples


def test_regression_decoding_r2_known_cases():
    r = _rng(8)
    x = r.normal(size=(300, 5))
    y = np.stack([x @ np.array([1.0, -2, 0, 0, 0.5]), r.normal(size=300)], 1)
    r2 = M.linear_decoding(x, y, kind="regression")
    assert r2[0] == pytest.approx(1.0, abs=1e-5)   # a linear function of x is decoded exactly
    assert r2[1] < 0.05                             # noise is not decodable on held-out data
    lasso = M.linear_decoding(x, y[:, 0], kind="regression", method="lasso", alpha=0.01)
    assert 0.99 < lasso <= 1.0


def test_r2_score_matches_definition():
    yt, yp = np.array([1.0, 2, 3, 4]), np.array([1.1, 1.9, 3.2, 3.8])
    ref = 1 - np.sum((yt - yp) ** 2) / np.sum((yt - yt.mean()) ** 2)
    assert M.r2_score(yt, yp)[0] == pytest.approx(ref)


def test_ridge_dual_and_primal_agree():
    r = _rng(9)
    x, y = r.normal(size=(8, 20)), r.normal(size=(8, 2))
    w_dual, b_dual = M.ridge_fit(x, y, alpha=0.1)           # units > samples: dual form
    xc, yc = x - x.mean(0), y - y.mean(0)
    lam = 0.1 * np.sum(xc * xc) / 20
    w_ref = np.linalg.solve(xc.T @ xc + lam * np.eye(20), xc.T @ yc)
    np.testing.assert_allclose(w_dual, w_ref, atol=1e-10)
    np.testing.assert_allclose(b_dual, y.mean(0) - x.mean(0) @ w_ref, atol=1e-10)


def test_linear_predictivity_is_one_for_linear_maps_and_low_for_noise():
    r = _rng(10)
    x = r.normal(size=(200, 6))
    assert M.linear_predictivity(x, x @ r.normal(size=(6, 9))) == pytest.approx(1.0, abs=1e-4)
    assert M.linear_predictivity(x, r.normal(size=(200, 3))) < 0.1


def test_split_indices_hold_out_the_end_when_contiguous():
    tr, te = M.split_indices(100, 0.05)
    assert list(te) == list(range(95, 100)) and list(tr) == list(range(95))
    tr, te = M.split_indices(100, 0.2, contiguous=False, seed=1)
    assert len(te) == 20 and not set(tr) & set(te)


# --- selectivity and PR ----------------------------------------------------------------------------------------

def test_factor_selectivity_known_cases():
    r = _rng(11)
    factor = np.tile(np.arange(3), 40)
    tuned = np.array([0.0, 5.0, 1.0])[factor]           # depends only on the factor, prefers level 1
    blind = r.normal(size=120)                          # ignores it
    eta2, pref = M.factor_selectivity(np.stack([tuned, blind], 1), factor)
    assert eta2[0] == pytest.approx(1.0) and pref[0] == 1
    assert eta2[1] < 0.1


def test_factor_selectivity_matches_anova_definition():
    r = _rng(12)
    x = r.normal(size=(30, 2))
    f = r.integers(0, 4, 30)
    eta2, _ = M.factor_selectivity(x, f)
    for u in range(2):
        gm = x[:, u].mean()
        ssb = sum((f == k).sum() * (x[f == k, u].mean() - gm) ** 2 for k in np.unique(f))
        assert eta2[u] == pytest.approx(ssb / np.sum((x[:, u] - gm) ** 2))


def test_selectivity_index():
    np.testing.assert_allclose(M.selectivity_index([1.0, 0.0, 1.0], [0.0, 1.0, 1.0]), [1.0, -1.0, 0.0])
    assert np.isnan(M.selectivity_index(0.0, 0.0))


def test_participation_ratio_known_cases():
    r = _rng(13)
    assert M.participation_ratio(np.outer(r.normal(size=50), r.normal(size=8))) == pytest.approx(1.0)
    diag = r.normal(size=(20000, 4)) * np.array([1.0, 1.0, 1.0, 1.0])
    assert M.participation_ratio(diag) == pytest.approx(4.0, rel=0.02)
    # eigenvalues (4, 1): PR = 25 / 17
    x = np.array([[2.0, 0], [-2, 0], [0, 1], [0, -1]])
    assert M.participation_ratio(x) == pytest.approx(25 / 17)
