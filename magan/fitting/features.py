"""Feature matching in the fit: the targets' high-level features, standardised per feature by
their event-to-event spread, for the energy distance in G's loss
(:func:`magan.losses.feature_energy_distance`)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

__all__ = ["feature_scales", "feature_data", "standardised"]


def feature_scales(values, cond_unit):
    """Per-feature centre and scale (F,) of the targets' features ``values`` (N, F): the mean and
    the standard deviation left after a quadratic fit in each unit-cube condition (N, K), so a
    feature that follows the beam energy is measured against its event-to-event spread, not against
    its spread over the energies. Raises on non-finite features."""
    v = np.asarray(values, np.float64)
    if v.ndim != 2 or not np.isfinite(v).all():
        raise ValueError(f"features(images, conditions) must return finite values of shape (N, F) "
                         f"for the targets; got shape {v.shape} (finite: {np.isfinite(v).all()}).")
    u = np.asarray(cond_unit, np.float64)
    design = np.concatenate([np.ones((len(v), 1)), u, u ** 2], axis=1)
    coef, *_ = np.linalg.lstsq(design, v, rcond=None)
    resid = v - design @ coef
    dof = max(len(v) - design.shape[1], 1)
    sd = np.sqrt(np.sum(resid ** 2, axis=0) / dof)
    sd = np.maximum(sd, 1e-3 * v.std(axis=0) + 1e-12)
    return v.mean(axis=0).astype(np.float32), sd.astype(np.float32)


def feature_data(emulator, data_dev, data_cond, data_cond_unit, n_first: int, features) -> dict:
    """What the compiled fit step needs to standardise features: their centre and scale (F,)
    from the first ``n_first`` rows of the network-space data ``data_dev`` (the targets, or the
    reference set of a fit-point bias correction: the reference fit repeats the procedure) and
    every row's physical conditions ``cond_phys`` (M, K) (K = 0 without conditions;
    ``data_cond`` is then None)."""
    cond_phys = (jnp.zeros((data_dev.shape[0], 0), jnp.float32) if data_cond is None
                 else jnp.asarray(data_cond, jnp.float32))
    first_cond = None if data_cond is None else cond_phys[:n_first]
    phys = emulator.transform.inverse(data_dev[:n_first], first_cond, xp=jnp)
    mu, sd = feature_scales(features(phys, first_cond), data_cond_unit[:n_first])
    return {"mu": jnp.asarray(mu), "sd": jnp.asarray(sd), "cond_phys": cond_phys}


def standardised(features, transform, x_net, fdata, rows, k_cond: int):
    """Standardised features (B, F) of network-space images ``x_net`` (B, H, W, C) that stand at
    the data rows ``rows`` (B,) (whose conditions they share)."""
    c = fdata["cond_phys"][rows] if k_cond else None
    f = features(transform.inverse(x_net, c, xp=jnp), c)
    return (f - fdata["mu"]) / fdata["sd"]
