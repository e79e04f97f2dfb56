"""High-level features for pre-training's feature energy scores, measured in units of the
simulator's own spread between two simulations at the same point."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from magan.fitting.diagnostics import power_band_rings
from magan.pretraining.feeding import draw_training_batch
from magan.transforms import ImageTransform

__all__ = ["THRESHOLD_SCORES", "calibration_batch", "hit_pairs", "occupancy_counts",
           "side_by_side_pairs", "standardised_features", "structure_bands"]


def structure_bands(images, conditions=None):
    """Generic texture descriptors for pre-training's structure score (jax.numpy,
    differentiable): (N, H, W, C) images -> (N, B) the log of the mean power of each image's 2-D
    Fourier transform (channels summed, mean removed) in the radial bands of the closure check's
    power bands (:func:`magan.fitting.diagnostics.power_band_rings`) that hold frequencies (B = 4
    from 16 pixels a side; fewer in smaller images). ``conditions`` is ignored. How much an
    image varies at each scale: a texture's smoothness, a pixel noise's level, an object's
    sharpness; no hand-written feature needed."""
    x = jnp.sum(images, axis=-1)
    n, h, w = x.shape
    x = x - jnp.mean(x, axis=(1, 2), keepdims=True)
    power = jnp.abs(jnp.fft.fft2(x)) ** 2 / (h * w)
    masks = np.stack([r / r.sum() for r in power_band_rings(h, w) if r.any()],
                     axis=-1).astype(np.float32)
    band = jnp.einsum("nhw,hwb->nb", power, jnp.asarray(masks))
    tiny = 1e-12 * jnp.mean(power, axis=(1, 2))[:, None] + 1e-30
    return jnp.log(band + tiny)


def _readout_hits(transform: ImageTransform, softness: float, weight_name: str):
    """``hits(x_net, cond_phys) -> (hard, smooth)``, both (B, H, W, C): 1 where a physical value
    passes the transform's readout threshold ``t``, else 0; and ``sigmoid((v - t) / (softness
    t))`` of the values ``v`` before the cut, whose gradient a straight-through estimate uses.
    Raises a ValueError that names ``weight_name`` for a transform without a readout
    threshold."""
    threshold = float(getattr(transform, "threshold", 0.0))
    if not threshold > 0:
        raise ValueError(f"The {weight_name.removesuffix('_weight')} score counts values above "
                         "the image transform's readout threshold, but "
                         f"{type(transform).__name__} has none: give the study a "
                         "PowerTransform(threshold=...) (the threshold your simulator applies), "
                         f"or set PretrainConfig.{weight_name}=0.")
    width = softness * threshold

    def hits(x_net, cond_phys):
        hit = (transform.inverse(x_net, cond_phys, xp=jnp) > 0).astype(jnp.float32)
        before_cut = transform.inverse(x_net, cond_phys, xp=jnp, cut=False)
        smooth = jax.nn.sigmoid((before_cut.astype(jnp.float32) - threshold) / width)
        return jax.lax.stop_gradient(hit), smooth

    return hits


def occupancy_counts(transform: ImageTransform, softness: float = 0.5):
    """Per-channel occupancy for pre-training's occupancy score: ``f(x_net, cond_phys) -> (B, C)``,
    the number of each image's physical values (per channel, e.g. per calorimeter layer) that
    pass the transform's readout threshold ``t``, from network-space images (B, H, W, C').

    The value is the exact count, as the simulator's readout makes it; the gradient is that of the
    smooth count ``sum sigmoid((v - t) / (softness t))`` over the values ``v`` before the cut (a
    straight-through estimate), so E learns to move values across the threshold, which the
    exact count (flat almost everywhere) would not teach it. Needs a transform with a readout
    threshold (:class:`~magan.transforms.PowerTransform` ``threshold > 0``)."""
    hits = _readout_hits(transform, softness, "occupancy_weight")

    def counts(x_net, cond_phys):
        hit, smooth = hits(x_net, cond_phys)
        return jnp.sum(smooth + jax.lax.stop_gradient(hit - smooth), axis=(1, 2))

    return counts


def side_by_side_pairs(hit):
    """(N, H, W, C) hit indicators (NumPy booleans, or NumPy / JAX numbers in [0, 1]) -> (N, C):
    per image and channel, the sum over horizontal and vertical neighbour pairs of the product
    of their indicators (for booleans, the number of neighbour pairs both set)."""
    return ((hit[:, 1:] * hit[:, :-1]).sum(axis=(1, 2))
            + (hit[:, :, 1:] * hit[:, :, :-1]).sum(axis=(1, 2)))


def hit_pairs(transform: ImageTransform, softness: float = 0.5):
    """Per-channel clustering of hits for pre-training's hit-pairs score: ``f(x_net, cond_phys)
    -> (B, C)``, the number of pairs of side-by-side pixels (horizontal and vertical neighbours)
    whose physical values both pass the transform's readout threshold, per channel.

    Independent noise hits rarely touch; hits that come in clumps do, so this count tells a
    detector's scattered noise hits from blobs of them even where the number of hits is right.
    The value is exact; the gradient is that of the same count over the smooth indicators of
    :func:`occupancy_counts` (straight-through), so it reaches every value near the threshold,
    beside a hit or not. Needs a transform with a readout threshold."""
    hits = _readout_hits(transform, softness, "hit_pairs_weight")

    def pairs(x_net, cond_phys):
        hit, smooth = hits(x_net, cond_phys)
        soft = side_by_side_pairs(smooth)
        return soft + jax.lax.stop_gradient(side_by_side_pairs(hit) - soft)

    return pairs


# E's descriptor scores that count values above a readout threshold: {name: maker}, each
# weighted by PretrainConfig.<name>_weight
THRESHOLD_SCORES = {"occupancy": occupancy_counts, "hit_pairs": hit_pairs}


def calibration_batch(simulator, space, transform: ImageTransform, seed: int):
    """The pairs of simulations that :func:`standardised_features` measures spreads on: 256
    points (1024 with per-event conditions) drawn across the space, two simulations each, as a
    pre-training batch ``(unit, cond_phys, x1, x2)`` in network space."""
    n = 256 if simulator.conditions is None else 1024
    return draw_training_batch(simulator, space, np.random.default_rng([seed, 99]), n, transform)


def standardised_features(features, transform: ImageTransform, batch, conditions,
                          network_space: bool = False):
    """Wrap ``features`` as ``f(x_net, cond_phys) -> (B, F)``, in units of each feature's
    *within-point* spread: the std of ``(f(x1) - f(x2)) / sqrt(2)`` over the pairs of simulations
    made at the same points in ``batch`` (:func:`calibration_batch`; ``conditions`` the
    simulator's :class:`~magan.space.ConditionSpace` or None). ``features(images, conditions)``
    takes physical images, or with ``network_space`` the network-space images as they are. In
    these units a bias of the size of the simulator's own fluctuations costs the same for every
    feature, which is what the separation power of a histogram sees.

    With per-event conditions the spread is modelled as ``s_f * exp(u(c) . b_f)`` (u the unit-cube
    conditions; b_f from a least-squares fit of log|f(x1) - f(x2)| on u, s_f so that the pairs'
    mean squared standardised difference is 2): a calorimeter's response fluctuates 3x less at
    100 GeV than at 10 GeV, and one spread for all energies would make the loss blind where the
    simulator is tightest.
    """
    _, cond, x1, x2 = batch
    n = len(x1)
    has_cond = conditions is not None

    def raw(x_net, cond_phys):
        c = cond_phys if has_cond else None
        return features(x_net if network_space else transform.inverse(x_net, c, xp=jnp), c)

    f1, f2 = (np.asarray(raw(jnp.asarray(x), jnp.asarray(cond)), np.float64) for x in (x1, x2))
    if f1.ndim != 2 or f1.shape[0] != n or not (np.isfinite(f1).all() and np.isfinite(f2).all()):
        raise ValueError(f"features(images, conditions) must return finite values of shape (N, F); "
                         f"got shape {f1.shape} for N = {n} (finite: {np.isfinite(f1).all()}).")
    overall = np.concatenate([f1, f2]).std(axis=0)
    floor = 1e-3 * overall + 1e-12
    mu = jnp.asarray(f1.mean(0), jnp.float32)
    if not has_cond:
        within = np.std(f1 - f2, axis=0) / np.sqrt(2.0)
        sd = jnp.asarray(np.maximum(within, floor), jnp.float32)
        return lambda x_net, cond_phys: (raw(x_net, cond_phys) - mu) / sd
    u = conditions.to_unit(cond)  # (n, K)
    d = np.abs(f1 - f2)
    design = np.concatenate([np.ones((n, 1)), u], axis=1)
    coef, *_ = np.linalg.lstsq(design, np.log(d + floor), rcond=None)  # (1 + K, F)
    slope = np.clip(coef[1:], -5.0, 5.0)  # at most a factor e^5 across the condition range
    shape = np.exp(u @ slope)  # (n, F)
    level = np.sqrt(np.mean((d / shape) ** 2, axis=0) / 2.0)
    level = np.maximum(level, floor)
    slope_j, level_j = jnp.asarray(slope, jnp.float32), jnp.asarray(level, jnp.float32)

    def standardised(x_net, cond_phys):
        sd = level_j * jnp.exp(conditions.to_unit_jax(cond_phys) @ slope_j)
        return (raw(x_net, cond_phys) - mu) / sd

    return standardised
