"""Small statistics shared by the analyses: Pearson r, bootstrap intervals, bounded lag."""

from __future__ import annotations

import numpy as np

__all__ = ["best_lag_r", "bootstrap_ci", "pearson_r"]


def pearson_r(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation of two equal-length 1-D arrays (NaN where either is constant)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = ~(np.isnan(x) | np.isnan(y))
    x, y = x[ok] - x[ok].mean(), y[ok] - y[ok].mean()
    den = np.sqrt((x * x).sum() * (y * y).sum())
    return float((x * y).sum() / den) if den > 0 else float("nan")


def best_lag_r(x: np.ndarray, y: np.ndarray, max_lag: int = 0, circular: bool = True) -> tuple[float, int]:
    """The highest Pearson r of ``x`` shifted by -max_lag..max_lag samples against ``y``, and that
    lag (positive: ``x`` is later than ``y``). Circular shifts suit gait cycles."""
    best = (pearson_r(x, y), 0)
    for lag in range(-max_lag, max_lag + 1):
        if lag == 0:
            continue
        if circular:
            r = pearson_r(np.roll(x, -lag), y)
        else:
            r = pearson_r(x[lag:], y[:-lag]) if lag > 0 else pearson_r(x[:lag], y[-lag:])
        if r > best[0]:
            best = (r, lag)
    return best


def bootstrap_ci(
    per_seed: np.ndarray, stat, n_boot: int = 1000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile interval of ``stat(per_seed[resampled seeds])`` over ``n_boot`` resamples of the
    seed axis (axis 0) with replacement."""
    rng = np.random.default_rng(seed)
    n = len(per_seed)
    vals = np.array([stat(per_seed[rng.integers(0, n, n)]) for _ in range(n_boot)])
    vals = vals[~np.isnan(vals)]
    if len(vals) == 0:
        return float("nan"), float("nan")
    a = (1 - level) / 2
    lo, hi = np.quantile(vals, [a, 1 - a])
    return float(lo), float(hi)
