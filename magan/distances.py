"""Distances between two one-dimensional samples (a feature of simulated and of emulated events).

* :func:`separation_power`: the CaloChallenge measure (arXiv:2410.21611),
  ``S = 1/2 sum_i (h1_i - h2_i)^2 / (h1_i + h2_i)`` over normalised histograms; 0 for identical
  histograms, 1 for disjoint ones.
* :func:`ks_distance`: the Kolmogorov-Smirnov statistic, the largest gap between the two empirical
  CDFs (0 to 1; no binning).
* :func:`wasserstein_1`: the earth mover's distance between the two empirical distributions, in
  the variable's own units (no binning).

Finite samples give ``S > 0`` even for one distribution (about ``bins / (2 N)``); reports therefore
quote the same number between two independent simulated samples as the floor.
"""

from __future__ import annotations

import numpy as np

__all__ = ["common_bins", "ks_distance", "separation_power", "wasserstein_1"]


def common_bins(a, b, bins: int = 30, quantiles=(0.001, 0.999)) -> np.ndarray:
    """Equal-width bin edges (bins + 1,) spanning both samples between the given quantiles of the
    first (the reference), widened to include the central range of the second."""
    a, b = np.ravel(a), np.ravel(b)
    lo = min(np.quantile(a, quantiles[0]), np.quantile(b, 0.01))
    hi = max(np.quantile(a, quantiles[1]), np.quantile(b, 0.99))
    if not hi > lo:
        hi = lo + 1.0
    return np.linspace(lo, hi, bins + 1)


def separation_power(a, b, bins=30) -> float:
    """CaloChallenge separation power of samples ``a`` (reference) and ``b``; values outside the
    bins go to the outermost bins. ``bins``: a count or explicit edges."""
    a = np.asarray(a, np.float64).ravel()
    b = np.asarray(b, np.float64).ravel()
    if a.size == 0 or b.size == 0:
        raise ValueError("separation_power needs two non-empty samples.")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("separation_power: samples contain NaN or inf.")
    edges = common_bins(a, b, bins) if np.isscalar(bins) else np.asarray(bins, np.float64)
    inner = edges[1:-1]
    h1 = np.bincount(np.searchsorted(inner, a, side="right"), minlength=len(edges) - 1) / a.size
    h2 = np.bincount(np.searchsorted(inner, b, side="right"), minlength=len(edges) - 1) / b.size
    tot = h1 + h2
    m = tot > 0
    return float(0.5 * np.sum((h1[m] - h2[m]) ** 2 / tot[m]))


def _clean_pair(a, b, what: str):
    a = np.sort(np.asarray(a, np.float64).ravel())
    b = np.sort(np.asarray(b, np.float64).ravel())
    if a.size == 0 or b.size == 0:
        raise ValueError(f"{what} needs two non-empty samples.")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError(f"{what}: samples contain NaN or inf.")
    return a, b


def ks_distance(a, b) -> float:
    """Kolmogorov-Smirnov statistic ``sup_x |F_a(x) - F_b(x)|`` of two samples."""
    a, b = _clean_pair(a, b, "ks_distance")
    x = np.concatenate([a, b])
    fa = np.searchsorted(a, x, side="right") / a.size
    fb = np.searchsorted(b, x, side="right") / b.size
    return float(np.max(np.abs(fa - fb)))


def wasserstein_1(a, b) -> float:
    """Wasserstein-1 distance ``integral |F_a(x) - F_b(x)| dx`` of two samples (their units)."""
    a, b = _clean_pair(a, b, "wasserstein_1")
    x = np.concatenate([a, b])
    x.sort()
    fa = np.searchsorted(a, x[:-1], side="right") / a.size
    fb = np.searchsorted(b, x[:-1], side="right") / b.size
    return float(np.sum(np.abs(fa - fb) * np.diff(x)))
