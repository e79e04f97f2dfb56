"""Feature matching in the fit: summaries of the images, standardised per summary by the targets'
event-to-event spread, for the energy distance in G's loss
(:func:`magan.losses.feature_energy_distance`).

Two kinds of summaries, both hashable so that the compiled step is cached per kind:

* :class:`LearnedSummaries` (the default): what S's auxiliary regression head, trained on
  simulations only during pre-training, reads off each image: one number per parameter (its
  logit, so that the summaries stay linear near the bounds). Learned, amortised summary
  statistics in the sense of neural posterior estimation's embedding networks: they need nothing
  from the user and are informative on every parameter S learned to regress.
* :class:`UserFeatures`: a user's ``features(images, conditions) -> (B, F)`` written with
  ``jax.numpy`` on physical images (hand-written high-level features, such as the studies').
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np
from flax import nnx

__all__ = ["LearnedSummaries", "UserFeatures", "feature_scales", "feature_data", "standardised"]


@dataclass(frozen=True)
class LearnedSummaries:
    """S's regression logits (B, P) of network-space images; S's parameters travel in the
    feature data (``fdata["params_s"]``) so that one compiled step serves every emulator with
    the same architecture."""

    graphdef_s: object

    def __call__(self, x_net, fdata, rows):
        s = nnx.merge(self.graphdef_s, fdata["params_s"])
        c = fdata["cond_unit"][rows] if fdata["cond_unit"].shape[1] else None
        return s.aux(s.branch(x_net, c)).astype(jnp.float32)


@dataclass(frozen=True)
class UserFeatures:
    """A user's ``fn(images, conditions) -> (B, F)`` on physical images (``transform`` maps the
    networks' space back to them)."""

    fn: Callable
    transform: object

    def __call__(self, x_net, fdata, rows):
        c = fdata["cond_phys"][rows] if fdata["cond_phys"].shape[1] else None
        return self.fn(self.transform.inverse(x_net, c, xp=jnp), c)


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


def feature_data(emulator, data_dev, data_cond, data_cond_unit, set_size: int, features) -> dict:
    """What the compiled fit step needs to compute and standardise the summaries ``features``
    (a :class:`LearnedSummaries` or :class:`UserFeatures`): every row's physical and unit-cube
    conditions (M, K) (K = 0 without conditions; ``data_cond`` is then None), S's parameters, and
    per image set (the M rows of the network-space data ``data_dev`` are consecutive sets of
    ``set_size``) the summaries' centre and scale (S, F) and each row's set (M,): every set is
    measured against its own spread, as a fit of that set alone would be."""
    cond_phys = (jnp.zeros((data_dev.shape[0], 0), jnp.float32) if data_cond is None
                 else jnp.asarray(data_cond, jnp.float32))
    fdata = {"cond_phys": cond_phys, "cond_unit": jnp.asarray(data_cond_unit, jnp.float32),
             "params_s": emulator.params_s}
    scales = []
    for start in range(0, data_dev.shape[0], set_size):
        rows = jnp.arange(start, start + set_size)
        values = features(data_dev[start:start + set_size], fdata, rows)
        scales.append(feature_scales(values, data_cond_unit[start:start + set_size]))
    mu, sd = (jnp.asarray(np.stack(v)) for v in zip(*scales))
    return {**fdata, "mu": mu, "sd": sd,
            "set_of_row": jnp.arange(data_dev.shape[0]) // set_size}


def standardised(features, x_net, fdata, rows):
    """Standardised summaries (B, F) of network-space images ``x_net`` (B, H, W, C) that stand
    at the data rows ``rows`` (B,) (whose conditions and set they share)."""
    s = fdata["set_of_row"][rows]
    return (features(x_net, fdata, rows) - fdata["mu"][s]) / fdata["sd"][s]
