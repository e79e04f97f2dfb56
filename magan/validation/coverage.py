"""Mode collapse and coverage: precision, recall, density and coverage (PRDC) of feature samples.

Naeem et al. (arXiv:2002.09797), on embeddings (for instance
:mod:`magan.validation.learned_features`), with ``real`` the simulated and ``fake`` the emulated
samples and ``k`` nearest neighbours:

* **precision**: fraction of fake samples inside some real sample's k-NN ball (fidelity);
* **recall**: fraction of real samples inside some fake sample's k-NN ball (variety);
* **density**: how many real k-NN balls contain a fake sample, on average over fakes, divided by
  k (1 for matching distributions; robust to outliers);
* **coverage**: fraction of real samples whose k-NN ball contains at least one fake sample. For
  matching distributions it is about ``1 - 2^-k`` (0.97 at k = 5); an emulator that collapses to
  a few modes covers only their neighbourhoods.
"""

from __future__ import annotations

import numpy as np
import scipy.spatial.distance

__all__ = ["prdc"]


def _sqdist(x, y):
    """(N, M) squared Euclidean distances of the rows of x (N, F) and y (M, F)
    (:func:`scipy.spatial.distance.cdist`: exact, a row's distance to itself is 0)."""
    return scipy.spatial.distance.cdist(x, y, "sqeuclidean")


def prdc(real, fake, *, k: int = 5) -> dict:
    """Precision, recall, density and coverage of ``fake`` (M, F) against ``real`` (N, F)."""
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"prdc needs (N, F) and (M, F) feature arrays; got {real.shape} and "
                         f"{fake.shape}.")
    if min(len(real), len(fake)) <= k:
        raise ValueError(f"prdc with k = {k} needs more than {k} samples each; got {len(real)} "
                         f"and {len(fake)}.")
    if not (np.isfinite(real).all() and np.isfinite(fake).all()):
        raise ValueError("prdc: features contain NaN or inf.")
    d_rr = _sqdist(real, real)
    d_ff = _sqdist(fake, fake)
    r_rad = np.sort(d_rr, axis=1)[:, k]  # k-th neighbour, excluding itself (column 0)
    f_rad = np.sort(d_ff, axis=1)[:, k]
    d_rf = _sqdist(real, fake)  # (N, M)
    inside_real = d_rf < r_rad[:, None]  # fake j inside real i's ball
    return {
        "precision": float(inside_real.any(axis=0).mean()),
        "recall": float((d_rf < f_rad[None, :]).any(axis=1).mean()),
        "density": float(inside_real.sum(axis=0).mean() / k),
        "coverage": float((d_rf.min(axis=1) < r_rad).mean()),
        "k": k, "n_real": int(len(real)), "n_fake": int(len(fake)),
    }
