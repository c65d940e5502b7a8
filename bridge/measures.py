"""Measures of representations (NumPy only; no torch, no Brian2).

Every function takes ``(sample, unit)`` arrays (samples = stimuli or time bins).
"""
from __future__ import annotations

import numpy as np


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
