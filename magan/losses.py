"""Every loss of both stages, as pure functions of split network parameters.

Pre-training (E against S, :mod:`magan.pretraining`): :func:`siamese_loss`, :func:`emulator_loss`
and the energy score they use. Fit (G against D, :mod:`magan.fitting`): :func:`discriminator_loss`
and :func:`feature_energy_distance` (feature matching). The R1 gradient penalties of S and D are
lazy (every ``r1_every`` steps, with gamma scaled to match) through :func:`lazy_r1`.

Shapes: images (B, H, W, C) in the networks' space; ``unit`` (B, P + K) unit-cube parameters
then per-event conditions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from magan.config import FitConfig, PretrainConfig
from magan.nn.build import cast_floats, emulate, network_dtype

__all__ = ["PairBatch", "EmulatorGraphs", "lazy_r1", "siamese_loss", "emulator_loss",
           "energy_score", "marginal_energy_score", "pooled_energy_score", "block_pool",
           "discriminator_loss", "feature_energy_distance"]


class PairBatch(NamedTuple):
    """One pre-training batch: B points, each simulated twice.

    unit (B, P + K): unit-cube parameters, then unit-cube conditions; cond_phys (B, K): the
    conditions in physical units (K may be 0); x1, x2 (B, H, W, C): the two simulations in the
    networks' space."""

    unit: jax.Array
    cond_phys: jax.Array
    x1: jax.Array
    x2: jax.Array


class EmulatorGraphs(NamedTuple):
    """The static structures (``nnx.GraphDef``) of E and S; their parameters travel apart."""

    e: object
    s: object


def lazy_r1(penalty: Callable[[], jax.Array], do_r1: bool) -> jax.Array:
    """``penalty()`` on R1 steps, else 0 (float32). ``do_r1`` must be a Python bool, fixed when
    the step is traced (one compiled program per pattern of R1 steps; why no ``lax.cond``:
    :mod:`magan.runtime.loop`)."""
    if not isinstance(do_r1, bool):
        raise TypeError(f"do_r1 must be a Python bool fixed at trace time, got {type(do_r1)}.")
    return penalty() if do_r1 else jnp.zeros((), jnp.float32)


def siamese_loss(params_s, graphdef_s, batch: PairBatch, fake, cfg: PretrainConfig,
                 n_params: int, do_r1: bool):
    """S's loss: genuine pairs -> 1, (simulation, emulation) pairs -> 0, the lazy R1 penalty on
    genuine pairs (``cfg.r1_gamma * cfg.r1_every`` on R1 steps) and the auxiliary regression of
    the first ``n_params`` columns of ``batch.unit`` from each simulation, weighted
    ``cfg.aux_weight``. ``fake`` (B, H, W, C) are E's images. With ``cfg.compute_dtype``
    bfloat16, S runs in bfloat16 and the losses in float32. Returns (loss, metrics dict)."""
    dtype = network_dtype(cfg)
    unit = batch.unit[:, :n_params]
    cond = batch.unit[:, n_params:] if batch.unit.shape[1] > n_params else None
    x1, x2 = batch.x1, batch.x2
    if dtype != jnp.float32:
        params_s, x1, x2, fake = cast_floats((params_s, x1, x2, fake), dtype)
        cond = None if cond is None else cond.astype(dtype)
    s = nnx.merge(graphdef_s, params_s)
    f1, f2, ff = s.branch(x1, cond), s.branch(x2, cond), s.branch(fake, cond)
    real = s.pair_logit_from_features(f1, f2).astype(jnp.float32)
    fake_logit = s.pair_logit_from_features(f1, ff).astype(jnp.float32)
    adv = jax.nn.softplus(-real).mean() + jax.nn.softplus(fake_logit).mean()
    aux = 0.5 * (jnp.mean((s.regress_from_features(f1).astype(jnp.float32) - unit) ** 2)
                 + jnp.mean((s.regress_from_features(f2).astype(jnp.float32) - unit) ** 2))

    def real_sum(a, b):
        return nnx.merge(graphdef_s, params_s).pair_logit(a, b, cond).astype(jnp.float32).sum()

    def r1_penalty():
        ga, gb = (g.astype(jnp.float32) for g in jax.grad(real_sum, argnums=(0, 1))(x1, x2))
        return jnp.mean(jnp.sum(ga ** 2, axis=(1, 2, 3)) + jnp.sum(gb ** 2, axis=(1, 2, 3)))

    r1 = lazy_r1(r1_penalty, do_r1)
    loss = adv + cfg.aux_weight * aux + 0.5 * (cfg.r1_gamma * cfg.r1_every) * r1
    acc = 0.5 * (jnp.mean(real > 0) + jnp.mean(fake_logit < 0))
    return loss, {"loss_siamese": adv, "aux_sim": aux, "r1": r1, "siamese_acc": acc}


def energy_score(e1, e2, x1, x2):
    """Energy score of emulated pairs (e1, e2) against simulated pairs (x1, x2), all (B, ...).

    ``E||e - x|| - 1/2 E||e - e'||`` with every cross term: a strictly proper scoring rule
    (Gneiting & Raftery 2007), minimised only when E's distribution at each parameter point equals
    the simulator's, so unlike a pixel MSE it does not reward blurred mean images.
    """
    def norm(a, b):
        return jnp.sqrt(jnp.sum((a - b).reshape(a.shape[0], -1) ** 2, axis=1) + 1e-8)

    cross = 0.25 * (norm(e1, x1) + norm(e1, x2) + norm(e2, x1) + norm(e2, x2))
    return jnp.mean(cross - 0.5 * norm(e1, e2))


def marginal_energy_score(e1, e2, x1, x2):
    """The sum over every coordinate (pixel) of its own 1-D energy score (its CRPS), averaged over
    the batch; arrays as :func:`energy_score`'s.

    The joint :func:`energy_score` of a whole image barely feels a wrong spread of a few pixels:
    ``||e - x||`` is dominated by the noise of every other pixel. Each pixel's CRPS ``E|e - x| -
    1/2 E|e - e'|`` is minimised only when that pixel's distribution at the point equals the
    simulator's, so a line that jitters in position (a too-wide spread at its edges) or a too-wide
    spread of the background costs here in full, whatever the image size.
    """
    def dist(a, b):
        return jnp.sum(jnp.abs(a - b).reshape(a.shape[0], -1), axis=1)

    cross = 0.25 * (dist(e1, x1) + dist(e1, x2) + dist(e2, x1) + dist(e2, x2))
    return jnp.mean(cross - 0.5 * dist(e1, e2))


POOL_FACTORS = (2, 4)  # block sizes of pooled_energy_score


def block_pool(x, k):
    """(B, H, W, C) images summed over blocks of ``k = (kh, kw)`` pixels (an int: k x k) and
    divided by ``sqrt(kh * kw)``: (B, ceil(H/kh), ceil(W/kw), C).

    Edges that do not fill a block are padded with zeros. Dividing the sum by the square root of
    the block's size (not by its size) keeps the norm of an image that is smooth over the blocks
    and shrinks that of independent pixel noise ``sqrt(kh * kw)``-fold: pooled, ``||a - b||``
    reads where the objects are, not the pixel noise.
    """
    kh, kw = (k, k) if isinstance(k, int) else k
    b, h, w, c = x.shape
    ph, pw = -h % kh, -w % kw
    if ph or pw:
        x = jnp.pad(x, ((0, 0), (0, ph), (0, pw), (0, 0)))
    x = x.reshape(b, (h + ph) // kh, kh, (w + pw) // kw, kw, c)
    return x.sum(axis=(2, 4)) / np.sqrt(kh * kw)


def pooled_energy_score(e1, e2, x1, x2, factors=POOL_FACTORS):
    """The sum over block sides k in ``factors`` of the :func:`energy_score` of the images pooled
    by :func:`block_pool` in k x k blocks; arrays (B, H, W, C). An axis no longer than k is not
    pooled (a 1-pixel-high image is pooled along its width only); a k that pools neither axis
    adds nothing.

    The whole-image score weighs a shifted or wrongly spread object against the noise of every
    pixel: ``||e - x|| = sqrt(noise^2 + shift^2)`` grows only quadratically with a shift much
    smaller than the noise term, so a too-wide spread of positions at a point costs almost
    nothing. Pooled in blocks of k x k, the noise term shrinks k-fold and the same shift costs
    nearly in proportion. Each pooled score is the energy score of a function of the image, so
    the sum is still minimised by the simulator's distribution at each point.
    """
    h, w = x1.shape[1], x1.shape[2]
    blocks = {(k if h > k else 1, k if w > k else 1) for k in factors} - {(1, 1)}
    total = jnp.zeros((), jnp.float32)
    for block in sorted(blocks):
        total = total + energy_score(*(block_pool(a, block) for a in (e1, e2, x1, x2)))
    return total


def _per_column_energy_scores(cols):
    """The sum over columns j of :func:`energy_score` of ``[e1, e2, x1, x2]`` (each (B, F))
    restricted to column j: every feature's own 1-D score."""
    return sum(energy_score(*(c[:, j:j + 1] for c in cols)) for j in range(cols[0].shape[1]))


def emulator_loss(params_e, params_s, graphs: EmulatorGraphs, batch: PairBatch, key,
                  cfg: PretrainConfig, *, n_params: int, features: Callable | None = None,
                  descriptors: dict[str, Callable] | None = None):
    """E's loss: fool S on (x1, E(unit)) pairs (weight ``cfg.adversarial_weight``), let S's
    regression head read the parameters back (``cfg.aux_weight``), the energy score of two
    emulations against (x1, x2) in the networks' space (``cfg.energy_weight``, if > 0) and of
    their high-level features (``cfg.feature_weight`` / ``cfg.feature_marginal_weight``, when
    ``features`` is given), the per-pixel energy scores (``cfg.pixel_marginal_weight``), the
    energy scores of the images pooled in 2 x 2 and 4 x 4 blocks (``cfg.pooled_energy_weight``),
    the energy score of S's branch embeddings (``cfg.siamese_feature_weight``; S fixed) and the 1-D
    energy scores of generic descriptors, ``descriptors = {name: fn}`` standardised like
    ``features`` and weighted by ``cfg.<name>_weight`` (``structure``: the power in bands of
    spatial frequency; ``occupancy``: the count of values above the readout threshold;
    ``hit_pairs``: the count of neighbouring pixel pairs both above it).

    The first ``n_params`` columns of ``batch.unit`` are the parameters. ``features(x_net,
    cond_phys) -> (B, F)`` maps network-space images to standardised physical features. With
    ``cfg.compute_dtype`` bfloat16 the networks run in bfloat16 and the scores in float32.
    Returns (loss, (metrics, E's first emulation)).
    """
    dtype = network_dtype(cfg)
    unit, x1, x2 = batch.unit, batch.x1, batch.x2
    p = n_params
    cond = unit[:, p:] if unit.shape[1] > p else None
    k1, k2 = jax.random.split(key)
    fake = emulate(graphs.e, params_e, unit, k1, dtype)
    low = dtype != jnp.float32
    s = nnx.merge(graphs.s, cast_floats(params_s, dtype) if low else params_s)

    def branch(x):
        return s.branch(x.astype(dtype), None if cond is None else cond.astype(dtype))

    f1 = jax.lax.stop_gradient(branch(x1))
    ff = branch(fake)
    adv = jax.nn.softplus(-s.pair_logit_from_features(f1, ff).astype(jnp.float32)).mean()
    aux = jnp.mean((s.regress_from_features(ff).astype(jnp.float32) - unit[:, :p]) ** 2)
    metrics = {"loss_emulator": adv, "aux_emu": aux}
    loss = cfg.adversarial_weight * adv + cfg.aux_weight * aux
    use_features = features is not None and (cfg.feature_weight > 0
                                              or cfg.feature_marginal_weight > 0)
    descriptors = {name: fn for name, fn in (descriptors or {}).items()
                   if getattr(cfg, f"{name}_weight") > 0}
    if (cfg.energy_weight > 0 or cfg.pixel_marginal_weight > 0 or use_features
            or cfg.pooled_energy_weight > 0 or cfg.siamese_feature_weight > 0 or descriptors):
        fake2 = emulate(graphs.e, params_e, unit, k2, dtype)
    for name, weight, score in (("energy_score", cfg.energy_weight, energy_score),
                                ("pixel_marginal_score", cfg.pixel_marginal_weight,
                                 marginal_energy_score),
                                ("pooled_energy_score", cfg.pooled_energy_weight,
                                 pooled_energy_score)):
        if weight > 0:  # scores of the images themselves: whole, per pixel, pooled in blocks
            metrics[name] = score(fake, fake2, x1, x2)
            loss = loss + weight * metrics[name]
    if cfg.siamese_feature_weight > 0:
        # S's embeddings, in which it tells (simulation, emulation) pairs from genuine ones, of
        # both emulations against both simulations at each point: what S sees per point
        f2 = jax.lax.stop_gradient(branch(x2))
        ss = energy_score(ff.astype(jnp.float32), branch(fake2).astype(jnp.float32),
                          f1.astype(jnp.float32), f2.astype(jnp.float32))
        metrics["siamese_feature_score"] = ss
        loss = loss + cfg.siamese_feature_weight * ss
    if use_features:
        feats = [features(x, batch.cond_phys) for x in (fake, fake2, x1, x2)]
        fs = energy_score(*feats)
        metrics["feature_score"] = fs
        loss = loss + cfg.feature_weight * fs
        if cfg.feature_marginal_weight > 0:
            # each feature's own 1-D energy score (its CRPS) presses on every feature with the
            # same force however many there are; the joint score's pull shrinks like 1/sqrt(F)
            ms = _per_column_energy_scores(feats)
            metrics["feature_marginal_score"] = ms
            loss = loss + cfg.feature_marginal_weight * ms
    for name, fn in descriptors.items():
        ds = _per_column_energy_scores([fn(x, batch.cond_phys) for x in (fake, fake2, x1, x2)])
        metrics[f"{name}_score"] = ds
        loss = loss + getattr(cfg, f"{name}_weight") * ds
    return loss, (metrics, fake)


def discriminator_loss(params_d, graphdef_d, real, fake, cond, cfg: FitConfig, do_r1: bool):
    """D's non-saturating GAN loss on real (target) and fake (emulated) images (B, H, W, C) with
    the lazy R1 penalty on the real ones (``cfg.r1_gamma * cfg.r1_every`` on R1 steps); ``cond``
    (B, K) unit-cube conditions shared by both batches, or None. Returns (loss, metrics)."""
    def logits(p, x):
        return nnx.merge(graphdef_d, p)(x, cond)

    lr, lf = logits(params_d, real), logits(params_d, fake)
    adv = jax.nn.softplus(-lr).mean() + jax.nn.softplus(lf).mean()

    def r1_penalty():
        g = jax.grad(lambda x: logits(params_d, x).sum())(real)
        return jnp.mean(jnp.sum(g ** 2, axis=(1, 2, 3)))

    r1 = lazy_r1(r1_penalty, do_r1)
    return adv + 0.5 * (cfg.r1_gamma * cfg.r1_every) * r1, {"loss_d": adv, "r1": r1}


def feature_energy_distance(f_fake, f_real, u, cond_scale):
    """Energy distance ``2 E|a - b| - E|a - a'| - E|b - b'|`` between two batches of standardised
    features (B, F), every pair included. ``u`` (B, K) are the rows' unit-cube conditions (shared
    by the two batches, K may be 0), appended to both with weight ``cond_scale``: pairs at distant
    conditions are then far apart whatever their features, and the distance compares events at
    alike conditions. Zero in expectation only when the two distributions agree."""
    a = jnp.concatenate([f_fake, cond_scale * u], axis=1)
    b = jnp.concatenate([f_real, cond_scale * u], axis=1)

    def mean_norm(x, y):
        d2 = jnp.sum((x[:, None, :] - y[None, :, :]) ** 2, axis=-1)
        return jnp.mean(jnp.sqrt(d2 + 1e-6))

    return 2.0 * mean_norm(a, b) - mean_norm(a, a) - mean_norm(b, b)
