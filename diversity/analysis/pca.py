"""PCA across policies (Fig. 5d): for a signal family, a matrix policies x (time x features).

Families: ``activity`` (muscle activation), ``joint_angle`` and ``grf``. Each policy's whole
series is one row; columns are centred (scikit-learn's PCA) but not scaled, so a family's
variance is in its own units. With N policies at most N - 1 components carry variance.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

__all__ = ["FAMILIES", "family_matrix", "pca_explained"]

FAMILIES = {"activity": "activation", "joint_angle": "joint_angle", "grf": "grf"}


def family_matrix(ds: xr.Dataset, family: str) -> np.ndarray:
    """``[policy, time x features]`` for a family (completed seeds only)."""
    if family not in FAMILIES:
        raise ValueError(f"unknown signal family {family!r} (known: {list(FAMILIES)})")
    var = FAMILIES[family]
    if var not in ds:
        raise ValueError(f"store has no {var!r} for family {family!r}")
    from .tracking import completed

    x = completed(ds)[var].values
    return x.reshape(x.shape[0], -1).astype(float)


def pca_explained(matrix: np.ndarray, thresholds=(0.9, 0.95)) -> dict:
    """Per-component and cumulative explained-variance ratios of ``matrix [policy, features]``
    and the number of components reaching each threshold."""
    from sklearn.decomposition import PCA

    matrix = np.asarray(matrix, float)
    if matrix.shape[0] < 2:
        raise ValueError(f"PCA needs at least 2 policies, got {matrix.shape[0]}")
    pca = PCA().fit(matrix)
    ratio = pca.explained_variance_ratio_
    cum = np.cumsum(ratio)
    return {
        "explained_variance_ratio": ratio.tolist(),
        "cumulative": cum.tolist(),
        **{
            f"n_components_{int(round(100 * t))}": int(np.searchsorted(cum, t - 1e-12) + 1)
            for t in thresholds
        },
        "n_policies": int(matrix.shape[0]),
        "n_features": int(matrix.shape[1]),
    }
