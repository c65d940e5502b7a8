"""Measures of representations and of their similarity (NumPy/SciPy only; no torch, no Brian2).

Every function takes ``(sample, unit)`` arrays, samples being stimuli or time bins; two representations
compared with each other must have the same samples in the same order (their unit counts may differ).

Measures
--------
* :func:`participation_ratio` -- linear dimensionality.
* :func:`linear_cka` -- linear centred kernel alignment, biased (Kornblith et al. 2019, Eq. 5) or debiased
  (unbiased HSIC estimator of Song et al. 2012, Eq. 5; as used for CKA by Nguyen, Raghu & Kornblith 2021).
* :func:`rdm`, :func:`rsa` -- representational dissimilarity matrices and the Spearman rank correlation of
  their upper triangles (Kriegeskorte, Mur & Bandettini 2008).
* :func:`linear_decoding`, :func:`linear_predictivity` -- ridge (or Lasso) readouts scored on held-out
  samples: classification accuracy or R^2.
* :func:`factor_selectivity`, :func:`selectivity_index` -- selectivity of each unit to a labelled input
  factor, and the contrast index of Halvagal & Zenke (2023), Methods ("selectivity").

Which library computes what (also in ``docs/measures.md``): CKA, RDMs, RSA, ridge readouts, participation
ratio and selectivity are this module's NumPy code; Spearman ranks come from SciPy (``rankdata``), the Lasso
readout from scikit-learn. RDMs and RSA are checked against rsatoolbox, the field's RSA library, on the same
data (``tests/test_measures.py``: its ``calc_rdm`` "correlation" RDM equals ours, its "euclidean" RDM equals
ours squared over the unit count, and its ``compare(..., method="spearman")`` equals :func:`rsa` to 1e-12,
tied distances included). The comparison is not routed through rsatoolbox at run time because it needs only
these RDMs and one rank correlation, and rsatoolbox would add a second data model (its ``Dataset``/``RDMs``
classes) beside xarray; it is a test dependency (``pip install ".[test]"``).
"""
from __future__ import annotations

from typing import Literal

import numpy as np


def _as_2d(x: np.ndarray, name: str = "x") -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"{name} must be a (sample, unit) matrix, got shape {x.shape}")
    return x


def _same_samples(x: np.ndarray, y: np.ndarray) -> None:
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"representations have different sample counts ({x.shape[0]} vs {y.shape[0]})")


def participation_ratio(x: np.ndarray) -> float:
    """Participation ratio PR = (sum_i l_i)^2 / sum_i l_i^2 of the covariance eigenvalues l_i of ``x``.

    Ranges from 1 (one dimension carries all variance) to ``n_units`` (isotropic). Computed from the
    Gram matrix of the centred data, so it is exact and cheap for ``n_units`` >> ``n_samples`` too; a
    constant representation (no variance) gives NaN.

    Parameters
    ----------
    x : array, shape (n_samples, n_units)

    References
    ----------
    Gao, Trautmann, Yu et al. (2017), bioRxiv 214262; Halvagal & Zenke (2023), Methods ("dimensionality").
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"participation_ratio expects (sample, unit), got shape {x.shape}")
    xc = x - x.mean(0, keepdims=True)
    # tr(C) and tr(C^2) of C = xc^T xc / n equal those of the Gram matrix xc xc^T / n
    g = xc @ xc.T if xc.shape[0] <= xc.shape[1] else xc.T @ xc
    tr = np.trace(g)
    tr2 = np.sum(g * g)
    if tr2 <= 0:
        return float("nan")
    return float(tr * tr / tr2)


# --- CKA -----------------------------------------------------------------------------------------------

def _hsic_biased(k: np.ndarray, l: np.ndarray) -> float:
    """tr(K H L H) of two Gram matrices (the 1/(n-1)^2 factor cancels in CKA)."""
    kc = k - k.mean(0, keepdims=True)
    kc = kc - kc.mean(1, keepdims=True)
    return float(np.sum(kc * l))


def _hsic_unbiased(k: np.ndarray, l: np.ndarray) -> float:
    """Unbiased HSIC estimator of Song et al. (2012), Eq. 5, for Gram matrices ``k``, ``l`` (n >= 4).

    HSIC_1 = [tr(K~ L~) + 1'K~1 1'L~1 / ((n-1)(n-2)) - 2/(n-2) 1'K~L~1] / (n(n-3)), with K~, L~ the Gram
    matrices with their diagonals set to zero.
    """
    n = k.shape[0]
    kt = k.copy()
    lt = l.copy()
    np.fill_diagonal(kt, 0.0)
    np.fill_diagonal(lt, 0.0)
    sk, sl = kt.sum(0), lt.sum(0)  # column sums (the matrices are symmetric): (n,)
    term1 = np.sum(kt * lt)
    term2 = sk.sum() * sl.sum() / ((n - 1) * (n - 2))
    term3 = 2.0 / (n - 2) * float(sk @ sl)
    return float((term1 + term2 - term3) / (n * (n - 3)))


def linear_cka(x: np.ndarray, y: np.ndarray, debiased: bool = False) -> float:
    """Linear centred kernel alignment between two representations of the same samples.

    Biased: CKA = ||Y_c' X_c||_F^2 / (||X_c' X_c||_F ||Y_c' Y_c||_F) (Kornblith et al. 2019, Eq. 5 with
    linear kernels). Debiased: the same ratio of the unbiased HSIC estimator (Song et al. 2012, Eq. 5),
    which removes the positive bias of CKA for few samples and many units (Nguyen et al. 2021, App.); it can
    be slightly negative for unrelated representations.

    Parameters
    ----------
    x : array, shape (n_samples, n_units_x)
    y : array, shape (n_samples, n_units_y)
    debiased : bool
        Use the unbiased HSIC estimator (needs at least 4 samples).

    Returns
    -------
    float
        In [0, 1] for the biased estimator; 1 for ``y = x Q a + b`` (Q orthogonal, a > 0); NaN when either
        representation is constant.

    References
    ----------
    Kornblith, Norouzi, Lee & Hinton (2019), ICML, "Similarity of neural network representations revisited".
    Song, Smola, Gretton, Bedo & Borgwardt (2012), JMLR 13, "Feature selection via dependence maximization".
    """
    x, y = _as_2d(x, "x"), _as_2d(y, "y")
    _same_samples(x, y)
    n = x.shape[0]
    if debiased:
        if n < 4:
            raise ValueError(f"debiased CKA needs at least 4 samples, got {n}")
        xc = x - x.mean(0, keepdims=True)
        yc = y - y.mean(0, keepdims=True)
        k, l = xc @ xc.T, yc @ yc.T  # (n, n) Gram matrices
        hxy, hxx, hyy = _hsic_unbiased(k, l), _hsic_unbiased(k, k), _hsic_unbiased(l, l)
    elif n <= max(x.shape[1], y.shape[1]):
        k, l = x @ x.T, y @ y.T  # (n, n)
        hxy, hxx, hyy = _hsic_biased(k, l), _hsic_biased(k, k), _hsic_biased(l, l)
    else:
        # feature-space form: cheaper when units < samples
        xc = x - x.mean(0, keepdims=True)
        yc = y - y.mean(0, keepdims=True)
        hxy = float(np.sum((yc.T @ xc) ** 2))
        hxx = float(np.sum((xc.T @ xc) ** 2))
        hyy = float(np.sum((yc.T @ yc) ** 2))
    denom = hxx * hyy
    if not denom > 0:
        return float("nan")
    return float(hxy / np.sqrt(denom))


# --- RSA -----------------------------------------------------------------------------------------------

def rdm(x: np.ndarray, metric: Literal["correlation", "euclidean"] = "correlation") -> np.ndarray:
    """Representational dissimilarity matrix between the samples of ``x``.

    Parameters
    ----------
    x : array, shape (n_samples, n_units)
    metric : {"correlation", "euclidean"}
        ``correlation``: 1 - Pearson correlation of two samples' response patterns (a constant pattern
        gets distance 1 to every other pattern); ``euclidean``: Euclidean distance.

    Returns
    -------
    array, shape (n_samples, n_samples)
        Symmetric, zero diagonal.
    """
    x = _as_2d(x)
    if metric == "correlation":
        xc = x - x.mean(1, keepdims=True)
        norm = np.linalg.norm(xc, axis=1)
        safe = np.where(norm > 0, norm, 1.0)
        z = xc / safe[:, None]  # (sample, unit), unit-norm rows (zero rows stay zero)
        d = 1.0 - z @ z.T
    elif metric == "euclidean":
        sq = np.sum(x * x, axis=1)
        d = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2.0 * x @ x.T, 0.0))
    else:
        raise ValueError(f"unknown RDM metric {metric!r} (choices: correlation, euclidean)")
    d = 0.5 * (d + d.T)
    np.fill_diagonal(d, 0.0)
    return d


def upper_triangle(d: np.ndarray) -> np.ndarray:
    """The entries above the diagonal of a square matrix, row by row."""
    i, j = np.triu_indices(d.shape[0], k=1)
    return d[i, j]


def rsa(x: np.ndarray, y: np.ndarray, metric: Literal["correlation", "euclidean"] = "correlation") -> float:
    """Spearman rank correlation between the upper triangles of the RDMs of two representations.

    Returns NaN when either RDM is constant (no ranks to correlate).

    References
    ----------
    Kriegeskorte, Mur & Bandettini (2008), Front. Syst. Neurosci. 2:4, "Representational similarity analysis".
    """
    from scipy.stats import rankdata

    x, y = _as_2d(x, "x"), _as_2d(y, "y")
    _same_samples(x, y)
    a = rankdata(upper_triangle(rdm(x, metric)))
    b = rankdata(upper_triangle(rdm(y, metric)))
    a -= a.mean()
    b -= b.mean()
    denom = np.sqrt(np.sum(a * a) * np.sum(b * b))
    if not denom > 0:
        return float("nan")
    return float(np.sum(a * b) / denom)


# --- linear decoding ---------------------------------------------------------------------------------------

def split_indices(n: int, test_fraction: float = 0.2, contiguous: bool = True,
                  seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Train and held-out test indices of ``n`` samples.

    ``contiguous`` holds out the last ``test_fraction`` of samples (for time series, so that no test bin
    sits between training bins; Halvagal & Zenke 2023 test on the last 5 %); otherwise a seeded random split.
    """
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    n_test = max(1, int(round(n * test_fraction)))
    if n - n_test < 2:
        raise ValueError(f"too few samples ({n}) for a held-out split with test_fraction {test_fraction}")
    order = np.arange(n) if contiguous else np.random.default_rng(seed).permutation(n)
    return np.sort(order[:n - n_test]), np.sort(order[n - n_test:])


def ridge_fit(x: np.ndarray, y: np.ndarray, alpha: float = 1e-3) -> tuple[np.ndarray, np.ndarray]:
    """Ridge regression weights ``(unit, target)`` and intercept ``(target,)`` of ``y`` on ``x``.

    The penalty is ``alpha`` times the mean eigenvalue of ``x_c' x_c`` (so ``alpha`` is scale-free). Uses the
    dual form when there are more units than samples.
    """
    x, y = _as_2d(x, "x"), np.asarray(y, dtype=np.float64)
    y2 = y[:, None] if y.ndim == 1 else y
    mx, my = x.mean(0), y2.mean(0)
    xc, yc = x - mx, y2 - my
    n, p = xc.shape
    scale = float(np.sum(xc * xc)) / max(p, 1)
    lam = alpha * scale if scale > 0 else alpha
    if p <= n:
        w = np.linalg.solve(xc.T @ xc + lam * np.eye(p), xc.T @ yc)
    else:
        w = xc.T @ np.linalg.solve(xc @ xc.T + lam * np.eye(n), yc)
    b = my - mx @ w
    return w, b


def r2_score(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Coefficient of determination 1 - SS_res/SS_tot per column (NaN for a constant target)."""
    yt = np.asarray(y_true, dtype=np.float64)
    yp = np.asarray(y_pred, dtype=np.float64)
    if yt.ndim == 1:
        yt, yp = yt[:, None], yp[:, None]
    ss_res = np.sum((yt - yp) ** 2, axis=0)
    ss_tot = np.sum((yt - yt.mean(0)) ** 2, axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(ss_tot > 0, 1.0 - ss_res / np.where(ss_tot > 0, ss_tot, 1.0), np.nan)


def lasso_predict(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, alpha: float = 0.1) -> np.ndarray:
    """scikit-learn Lasso(alpha, max_iter=5000) fitted to every column of ``y_train`` on its own; predictions on
    ``x_test``, shape ``(n_test, n_targets)`` (the one Lasso readout of ratespike)."""
    from sklearn.linear_model import Lasso

    y2 = np.asarray(y_train, dtype=np.float64)
    y2 = y2[:, None] if y2.ndim == 1 else y2
    pred = np.empty((len(x_test), y2.shape[1]))
    for c in range(y2.shape[1]):
        pred[:, c] = Lasso(alpha=alpha, max_iter=5000).fit(x_train, y2[:, c]).predict(x_test)
    return pred


def linear_decoding(x: np.ndarray, y: np.ndarray, *, kind: Literal["classification", "regression"],
                    method: Literal["ridge", "lasso"] = "ridge", alpha: float | None = None,
                    test_fraction: float = 0.2, contiguous: bool = True, seed: int = 0,
                    standardize: bool = False) -> float | np.ndarray:
    """Decode labels or continuous targets from a representation with a linear readout, scored on held-out data.

    Parameters
    ----------
    x : array, shape (n_samples, n_units)
    y : array, shape (n_samples,) of int labels (classification) or (n_samples,) / (n_samples, n_targets)
        of values (regression)
    kind : {"classification", "regression"}
        Classification: ridge regression to one-hot targets, argmax readout, returns the test accuracy.
        Regression: returns the held-out R^2 of each target column (a float for 1-D ``y``).
    method : {"ridge", "lasso"}
        ``lasso`` (regression only) uses scikit-learn's Lasso with ``alpha`` (default 0.1, Halvagal & Zenke
        2023, Methods: Lasso alpha 0.1 on 25 ms bins).
    alpha : float, optional
        Ridge: relative penalty (default 1e-3); Lasso: the penalty (default 0.1).
    test_fraction, contiguous, seed
        The held-out split, see :func:`split_indices`.
    standardize : bool
        z-score each unit with the training samples' mean and s.d. first.
    """
    x = _as_2d(x)
    y = np.asarray(y)
    if len(y) != len(x):
        raise ValueError(f"x has {len(x)} samples but y has {len(y)}")
    tr, te = split_indices(len(x), test_fraction, contiguous, seed)
    if standardize:
        mu, sd = x[tr].mean(0), x[tr].std(0)
        x = (x - mu) / np.where(sd > 0, sd, 1.0)
    if kind == "classification":
        if method != "ridge":
            raise ValueError("classification decoding uses ridge readouts only")
        classes, codes = np.unique(y, return_inverse=True)
        onehot = np.eye(len(classes))[codes]  # (sample, class)
        w, b = ridge_fit(x[tr], onehot[tr], 1e-3 if alpha is None else alpha)
        pred = np.argmax(x[te] @ w + b, axis=1)
        return float(np.mean(pred == codes[te]))
    if kind != "regression":
        raise ValueError(f"unknown decoding kind {kind!r} (choices: classification, regression)")
    yf = y.astype(np.float64)
    y2 = yf[:, None] if yf.ndim == 1 else yf
    if method == "lasso":
        pred = lasso_predict(x[tr], y2[tr], x[te], 0.1 if alpha is None else alpha)
    elif method == "ridge":
        w, b = ridge_fit(x[tr], y2[tr], 1e-3 if alpha is None else alpha)
        pred = x[te] @ w + b
    else:
        raise ValueError(f"unknown decoding method {method!r} (choices: ridge, lasso)")
    r2 = r2_score(y2[te], pred)
    return float(r2[0]) if yf.ndim == 1 else r2


def linear_predictivity(x: np.ndarray, y: np.ndarray, alpha: float = 1e-3, test_fraction: float = 0.2,
                        contiguous: bool = False, seed: int = 0) -> float:
    """How well a ridge readout of ``x`` predicts all of ``y`` on held-out samples: the variance-weighted R^2.

    R^2 = 1 - sum over units of SS_res / sum over units of SS_tot, so units with more variance count more;
    1 when ``y`` is a linear function of ``x``; NaN when ``y`` is constant on the test samples.
    """
    x, y = _as_2d(x, "x"), _as_2d(y, "y")
    _same_samples(x, y)
    tr, te = split_indices(len(x), test_fraction, contiguous, seed)
    w, b = ridge_fit(x[tr], y[tr], alpha)
    pred = x[te] @ w + b
    ss_res = float(np.sum((y[te] - pred) ** 2))
    ss_tot = float(np.sum((y[te] - y[te].mean(0)) ** 2))
    return 1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan")


# --- selectivity -----------------------------------------------------------------------------------------

def factor_selectivity(x: np.ndarray, factor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Selectivity of every unit to a labelled (categorical) input factor.

    For each unit, the fraction of its variance explained by the factor, eta^2 = SS_between / SS_total
    (one-way ANOVA effect size): 1 when the unit's response depends only on the factor's level, near 0 when
    it ignores the factor. Also returns each unit's preferred level (the level of largest mean response).

    Parameters
    ----------
    x : array, shape (n_samples, n_units)
    factor : array, shape (n_samples,)
        The level of the factor (class label, position, ...) of each sample.

    Returns
    -------
    eta2 : array, shape (n_units,)
        NaN for a unit with no variance.
    preferred : array, shape (n_units,)
        The preferred level of each unit.
    """
    x = _as_2d(x)
    f = np.asarray(factor)
    if f.shape != (x.shape[0],):
        raise ValueError(f"factor must have one level per sample ({x.shape[0]}), got shape {f.shape}")
    levels, codes = np.unique(f, return_inverse=True)
    counts = np.bincount(codes, minlength=len(levels)).astype(np.float64)  # (level,)
    sums = np.zeros((len(levels), x.shape[1]))
    np.add.at(sums, codes, x)
    means = sums / counts[:, None]  # (level, unit)
    grand = x.mean(0)
    ss_between = np.sum(counts[:, None] * (means - grand) ** 2, axis=0)
    ss_total = np.sum((x - grand) ** 2, axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        eta2 = np.where(ss_total > 0, ss_between / np.where(ss_total > 0, ss_total, 1.0), np.nan)
    return eta2, levels[np.argmax(means, axis=0)]


def selectivity_index(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Contrast index (a - b) / (a + b) of non-negative quantities, element by element; NaN where a + b = 0.

    Halvagal & Zenke (2023), Methods: selectivity of a neuron for an input population P is
    (w_P - w_Pctl) / (w_P + w_Pctl) with mean weights from P and from its shuffled control; the relative
    selectivity is (w_P2 - w_P1) / (w_P2 + w_P1). Ranges over [-1, 1].
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    s = a + b
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(s != 0, (a - b) / np.where(s != 0, s, 1.0), np.nan)
