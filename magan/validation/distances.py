"""Distances between two samples: one-dimensional (a feature of simulated and of emulated events)
and multi-dimensional (feature vectors of a network, for instance
:mod:`magan.validation.learned_features`).

* :func:`separation_power`: the CaloChallenge measure (arXiv:2410.21611),
  ``S = 1/2 sum_i (h1_i - h2_i)^2 / (h1_i + h2_i)`` over normalised histograms; 0 for identical
  histograms, 1 for disjoint ones.
* :func:`ks_distance`: the Kolmogorov-Smirnov statistic, the largest gap between the two empirical
  CDFs (0 to 1; no binning; SciPy's).
* :func:`wasserstein_1`: the earth mover's distance between the two empirical distributions, in
  the variable's own units (no binning; SciPy's).

Finite samples give ``S > 0`` even for one distribution (about ``bins / (2 N)``); reports therefore
quote the same number between two independent simulated samples as the floor.

Multi-dimensional (rows are samples, columns features):

* :func:`frechet_distance`: ``|mu_a - mu_b|^2 + Tr(C_a + C_b - 2 (C_a C_b)^(1/2))`` between the
  Gaussians fitted to the two samples (FID when the features are Inception's). It is biased
  upwards by about ``const / N``; :func:`frechet_distance_extrapolated` fits ``FD(N) = FD_inf +
  k / N`` over subsets of several sizes and returns ``FD_inf`` (Chong & Forsyth, arXiv:1911.07023).
* :func:`kernel_distance`: the unbiased MMD^2 with the cubic polynomial kernel
  ``(x.y / d + 1)^3`` (KID, Binkowski et al., arXiv:1801.01401), averaged over disjoint subsets,
  with its standard error; unbiased, so two samples of one distribution give 0 within errors.
"""

from __future__ import annotations

import numpy as np
import scipy.stats

__all__ = ["common_bins", "frechet_distance", "frechet_distance_extrapolated", "kernel_distance",
           "ks_distance", "separation_power", "wasserstein_1"]


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
    """Both samples flattened and float64; ValueError (naming ``what``) if one is empty or not
    finite."""
    a = np.asarray(a, np.float64).ravel()
    b = np.asarray(b, np.float64).ravel()
    if a.size == 0 or b.size == 0:
        raise ValueError(f"{what} needs two non-empty samples.")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError(f"{what}: samples contain NaN or inf.")
    return a, b


def ks_distance(a, b) -> float:
    """Kolmogorov-Smirnov statistic ``sup_x |F_a(x) - F_b(x)|`` of two samples
    (:func:`scipy.stats.ks_2samp`'s statistic)."""
    a, b = _clean_pair(a, b, "ks_distance")
    # "asymp": the statistic does not depend on the method, and the exact p-value is not needed
    return float(scipy.stats.ks_2samp(a, b, method="asymp").statistic)


def wasserstein_1(a, b) -> float:
    """Wasserstein-1 distance ``integral |F_a(x) - F_b(x)| dx`` of two samples (their units;
    :func:`scipy.stats.wasserstein_distance`)."""
    a, b = _clean_pair(a, b, "wasserstein_1")
    return float(scipy.stats.wasserstein_distance(a, b))


def _features_pair(a, b, what: str, min_rows: int = 2):
    """Both (N, F), (M, F) feature samples as float64; ValueError (naming ``what``) unless F
    agrees, each has ``min_rows`` rows and all values are finite."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"{what} needs two (N, F) arrays with the same F; got {a.shape} and "
                         f"{b.shape}.")
    if min(len(a), len(b)) < min_rows:
        raise ValueError(f"{what} needs at least {min_rows} rows per sample; got {len(a)} and "
                         f"{len(b)}.")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError(f"{what}: features contain NaN or inf.")
    return a, b


def frechet_distance(a, b) -> float:
    """Frechet distance of the Gaussians fitted to feature samples ``a`` (N, F) and ``b`` (M, F)."""
    a, b = _features_pair(a, b, "frechet_distance")
    mu = a.mean(0) - b.mean(0)
    ca, cb = np.cov(a, rowvar=False).reshape(a.shape[1], -1), np.cov(b, rowvar=False).reshape(
        b.shape[1], -1)
    # not scipy.linalg.sqrtm(C_a C_b): this symmetric form is exact for rank-deficient C (two
    # identical samples of 50 x 64 features: 0 here, -2.8e-7 through sqrtm)
    w, v = np.linalg.eigh(ca)
    sqrt_a = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    m = sqrt_a @ cb @ sqrt_a  # symmetric PSD, same trace-sqrt as C_a C_b
    tr_sqrt = np.sum(np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2), 0, None)))
    return float(max(mu @ mu + np.trace(ca) + np.trace(cb) - 2.0 * tr_sqrt, 0.0))


def frechet_distance_extrapolated(a, b, *, n_sizes: int = 5, repeats: int = 3,
                                  seed: int = 0) -> dict:
    """``FD_inf``: the Frechet distance extrapolated to infinitely many samples.

    FD is computed on random subsets of ``n_sizes`` sizes between 20 % and 100 % of the smaller
    sample (``repeats`` draws each), a line ``FD = FD_inf + k / N`` is fitted, and
    ``{"fd": FD at full size, "fd_inf": intercept, "slope": k}`` is returned. ``fd_inf`` can be
    slightly negative when the true distance is 0."""
    a, b = _features_pair(a, b, "frechet_distance_extrapolated", min_rows=10)
    n = min(len(a), len(b))
    rng = np.random.default_rng(seed)
    sizes = np.unique(np.linspace(max(0.2 * n, 5), n, n_sizes).astype(int))
    xs, ys = [], []
    for s in sizes:
        for _ in range(1 if s == n else repeats):
            ia, ib = rng.choice(len(a), s, replace=False), rng.choice(len(b), s, replace=False)
            xs.append(1.0 / s)
            ys.append(frechet_distance(a[ia], b[ib]))
    k, fd_inf = np.polyfit(np.array(xs), np.array(ys), 1)
    return {"fd": frechet_distance(a, b), "fd_inf": float(fd_inf), "slope": float(k)}


def kernel_distance(a, b, *, n_subsets: int = 10, seed: int = 0) -> dict:
    """Unbiased KID (MMD^2, cubic polynomial kernel) of feature samples ``a`` and ``b``.

    Both samples are shuffled and cut into ``n_subsets`` disjoint subsets of equal size; the
    unbiased estimate is averaged over them. Returns ``{"kid", "stderr", "subset_size"}``; the
    standard error is that of the mean of independent subset estimates."""
    a, b = _features_pair(a, b, "kernel_distance", min_rows=2 * n_subsets)
    rng = np.random.default_rng(seed)
    m = min(len(a), len(b)) // n_subsets
    pa, pb = rng.permutation(len(a)), rng.permutation(len(b))
    d = a.shape[1]
    vals = []
    for i in range(n_subsets):
        x, y = a[pa[i * m:(i + 1) * m]], b[pb[i * m:(i + 1) * m]]
        kxx, kyy, kxy = ((u @ v.T / d + 1.0) ** 3 for u, v in ((x, x), (y, y), (x, y)))
        off = m * (m - 1)
        vals.append((kxx.sum() - np.trace(kxx)) / off + (kyy.sum() - np.trace(kyy)) / off
                    - 2.0 * kxy.mean())
    vals = np.array(vals)
    return {"kid": float(vals.mean()), "stderr": float(vals.std(ddof=1) / np.sqrt(n_subsets)),
            "subset_size": int(m)}
