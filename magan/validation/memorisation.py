"""Memorisation: does the emulator copy the simulations it was trained on?

For each generated sample ``g`` the distances to its nearest and second-nearest training samples,
``d1`` and ``d2``, are found (Euclidean, flattened). A copy of a training sample (even with a little
noise added) has ``d1 / d2`` near 0: it sits on one training sample and far from the rest. A fresh
simulation, which the emulator should resemble, sits among the training samples like any other,
so the same ratio for fresh simulations (``d1 / d2`` against the same training set) is the
reference. Reported:

* ``copy_fraction``: the fraction of generated samples whose ``d1 / d2`` is below the 1st
  percentile of the fresh simulations' ratios (about 0.01 when the emulator does not copy);
* ``median_d1_ratio``: median ``d1`` of generated over median ``d1`` of fresh samples (below 1:
  closer to the training set than new simulations are; a blurred emulator is also below 1, which
  is why the flag uses ``d1 / d2``, which a blur does not lower).

The ratio test follows the idea of the authenticity / "copy" tests of Alaa et al. (arXiv:2102.08921)
and Meehan et al. (arXiv:2004.05675), in a form that needs no threshold tuning.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["nearest_two", "memorisation_check"]


@jax.jit
def _two_smallest(q, ref, ref_sq):
    """(n, 2) distances from queries q (n, D) to their two nearest rows of ref (M, D), given
    ref_sq (M,), the squared norms of ref's rows."""
    d2 = jnp.maximum(jnp.sum(q * q, 1)[:, None] + ref_sq[None, :] - 2.0 * q @ ref.T, 0.0)
    neg, _ = jax.lax.top_k(-d2, 2)
    return jnp.sqrt(-neg)


def nearest_two(queries, reference, *, chunk: int = 512) -> np.ndarray:
    """(N, 2) Euclidean distances from each query row to its two nearest reference rows."""
    q = np.asarray(queries, np.float32).reshape(len(queries), -1)
    r = np.asarray(reference, np.float32).reshape(len(reference), -1)
    if len(r) < 2:
        raise ValueError(f"The reference set needs at least 2 samples, got {len(r)}.")
    if q.shape[1] != r.shape[1]:
        raise ValueError(f"Queries have {q.shape[1]} values per sample, the reference "
                         f"{r.shape[1]}; they must have the same shape.")
    rj = jnp.asarray(r)
    rsq = jnp.sum(rj * rj, 1)
    out = []
    for i in range(0, len(q), chunk):
        part = q[i:i + chunk]
        pad = chunk - len(part)
        if pad:  # one compiled shape for every chunk
            part = np.concatenate([part, np.zeros((pad, q.shape[1]), np.float32)])
        out.append(np.asarray(_two_smallest(jnp.asarray(part), rj, rsq))[:chunk - pad])
    return np.concatenate(out).astype(np.float64)


def memorisation_check(generated, training, fresh) -> dict:
    """Compare generated and fresh samples' nearest-neighbour distances to the training samples.

    Args:
      generated: (N, ...) samples of the emulator (ideally at the training samples' parameters).
      training: (M, ...) the samples the emulator was trained on, or a replay of them.
      fresh: (N', ...) new simulations (same parameters as ``generated``), never used in training.
    Returns:
      ``{"copy_fraction", "expected_copy_fraction", "median_d1_ratio", "threshold", ...}``.
    """
    for name, x in (("generated", generated), ("training", training), ("fresh", fresh)):
        if not np.isfinite(np.asarray(x, np.float64)).all():
            raise ValueError(f"memorisation_check: {name} samples contain NaN or inf.")
    g = nearest_two(generated, training)
    f = nearest_two(fresh, training)
    rg = g[:, 0] / np.maximum(g[:, 1], 1e-12)
    rf = f[:, 0] / np.maximum(f[:, 1], 1e-12)
    thr = float(np.quantile(rf, 0.01))
    return {
        "copy_fraction": float(np.mean(rg < thr)),
        "expected_copy_fraction": 0.01,
        "fresh_copy_fraction_floor": float(np.mean(rf < thr)),
        "threshold_d1_over_d2": thr,
        "median_d1_generated": float(np.median(g[:, 0])),
        "median_d1_fresh": float(np.median(f[:, 0])),
        "median_d1_ratio": float(np.median(g[:, 0]) / max(np.median(f[:, 0]), 1e-12)),
        "n_generated": int(len(g)), "n_training": int(len(np.asarray(training))),
        "n_fresh": int(len(f)),
    }
