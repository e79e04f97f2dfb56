"""The spread scores of pre-training: the per-pixel energy score (CRPS) is finite and smallest
at the right spread; the pooled energy score feels a spread of positions the whole-image score
hardly does; they, the energy score of S's embeddings and the structure score are wired into E's
loss behind their weights."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from magan.config import PretrainConfig, replace
from magan.losses import marginal_energy_score
from magan.transforms import PowerTransform


def _score(spread: float, n: int = 4096, seed: int = 0) -> float:
    """The score of emulated images N(0, spread^2) against simulated N(0, 1), 4 x 4 pixels."""
    k = jax.random.split(jax.random.key(seed), 4)
    x1, x2 = (jax.random.normal(k[i], (n, 4, 4, 1)) for i in (0, 1))
    e1, e2 = (spread * jax.random.normal(k[i], (n, 4, 4, 1)) for i in (2, 3))
    return float(marginal_energy_score(e1, e2, x1, x2))


def test_marginal_energy_score_is_finite_and_smallest_at_the_right_spread():
    right, wide, narrow = _score(1.0), _score(3.0), _score(0.2)
    assert np.isfinite([right, wide, narrow]).all()
    # CRPS of N(0, s^2) against N(0, 1), per pixel: E|e - x| - E|e - e'| / 2 > E|x - x'| / 2
    assert wide > right + 1.0 and narrow > right + 0.5


def test_marginal_energy_score_has_a_gradient_for_equal_images():
    x = jnp.zeros((2, 3, 3, 1))
    g = jax.grad(lambda e: marginal_energy_score(e, e + 1.0, x, x))(x + 0.5)
    assert np.isfinite(np.asarray(g)).all()


def test_block_pool_is_the_written_out_block_sum_over_k():
    """k x k block sums divided by k, edges padded with zeros (a 7 x 5 image in 2 x 2 blocks)."""
    from magan.losses import block_pool

    x = np.random.default_rng(0).normal(size=(2, 7, 5, 3)).astype(np.float32)
    padded = np.zeros((2, 8, 6, 3), np.float32)
    padded[:, :7, :5] = x
    want = np.array([[[padded[b, 2 * i:2 * i + 2, 2 * j:2 * j + 2].sum(axis=(0, 1)) / 2
                       for j in range(3)] for i in range(4)] for b in range(2)])
    np.testing.assert_allclose(np.asarray(block_pool(jnp.asarray(x), 2)), want, rtol=1e-6)


def test_pooled_energy_score_pools_only_the_axes_longer_than_a_block():
    """A 1-pixel-high image is pooled along its width (blocks 1 x 2 and 1 x 4); a 1 x 1 image
    has nothing to pool and scores 0."""
    from magan.losses import block_pool, energy_score, pooled_energy_score

    rng = np.random.default_rng(3)
    a, b, c, d = (jnp.asarray(rng.normal(size=(4, 1, 16, 2)), jnp.float32) for _ in range(4))
    want = sum(float(energy_score(*(block_pool(x, k) for x in (a, b, c, d))))
               for k in ((1, 2), (1, 4)))
    np.testing.assert_allclose(float(pooled_energy_score(a, b, c, d)), want, rtol=1e-6)
    assert block_pool(a, (1, 4)).shape == (4, 1, 4, 2)
    assert float(pooled_energy_score(*(x[:, :, :1] for x in (a, b, c, d)))) == 0.0


def _bars(spread: float, n: int, seed: int):
    """(n, 16, 16, 1) images of a vertical bar (Gaussian profile, 1 px wide, height 1) whose
    column varies by ``spread`` px around column 8, plus pixel noise of std 0.1."""
    rng = np.random.default_rng(seed)
    centre = 8.0 + spread * rng.normal(size=(n, 1, 1))
    x = np.exp(-0.5 * (np.arange(16)[None, None, :] - centre) ** 2) * np.ones((n, 16, 16))
    return jnp.asarray((x + 0.1 * rng.normal(size=(n, 16, 16)))[..., None], jnp.float32)


def test_pooled_energy_score_feels_a_position_spread_the_whole_image_score_hardly_does():
    """Emulated bars that wander by half a pixel against simulated ones that stay put: relative
    to the score of a sample that is right, the pooled score's excess is several times the
    whole-image score's (about 3.6x here), because pooling averages the pixel noise away and
    keeps the bar."""
    from magan.losses import energy_score, pooled_energy_score

    x1, x2 = _bars(0.0, 512, 1), _bars(0.0, 512, 2)
    right = [_bars(0.0, 512, s) for s in (3, 4)]
    wide = [_bars(0.5, 512, s) for s in (5, 6)]

    def excess(score):
        return float(score(*wide, x1, x2) - score(*right, x1, x2)) / float(score(*right, x1, x2))

    whole, pooled = excess(energy_score), excess(pooled_energy_score)
    assert whole > 0 and pooled > 2.0 * whole


def test_structure_bands_are_the_closure_checks_power_bands():
    """The differentiable texture descriptors of the structure score are the closure check's
    power bands (magan.fitting.diagnostics.image_structure), image sizes with and without the
    lowest band; and they have finite gradients."""
    from magan.fitting.diagnostics import image_structure
    from magan.pretraining.features import structure_bands

    rng = np.random.default_rng(0)
    for shape in ((3, 32, 32, 1), (3, 12, 10, 2)):
        x = rng.normal(size=shape).astype(np.float32)
        x[:, :, : shape[2] // 2] *= 3.0
        ref = image_structure(x)[:, :4]
        ref = ref[:, np.any(ref != 0, axis=0)]  # bands without frequencies are left out
        np.testing.assert_allclose(structure_bands(jnp.asarray(x)), ref, rtol=1e-5, atol=1e-5)
        g = jax.grad(lambda a: structure_bands(a).sum())(jnp.asarray(x))
        assert np.isfinite(np.asarray(g)).all() and float(jnp.abs(g).max()) > 0


@pytest.mark.parametrize("name", ["pixel_marginal_weight", "pooled_energy_weight",
                                  "siamese_feature_weight", "structure_weight",
                                  "occupancy_weight", "hit_pairs_weight"])
def test_spread_weights_are_validated(name):
    assert getattr(PretrainConfig(), name) == 0.0
    with pytest.raises(ValueError, match=f"{name} must be a finite number >= 0"):
        PretrainConfig(**{name: -1.0})
    assert getattr(replace(PretrainConfig(), **{name: 2.0}), name) == 2.0


@pytest.mark.parametrize("weight_name, metric", [("pixel_marginal_weight", "pixel_marginal_score"),
                                                 ("pooled_energy_weight", "pooled_energy_score"),
                                                 ("siamese_feature_weight",
                                                  "siamese_feature_score"),
                                                 ("structure_weight", "structure_score"),
                                                 ("occupancy_weight", "occupancy_score"),
                                                 ("hit_pairs_weight", "hit_pairs_score")])
def test_emulator_loss_adds_the_spread_score_by_its_weight(weight_name, metric):
    from magan.losses import EmulatorGraphs, PairBatch, emulator_loss
    from magan.nn.build import build_emulator_nets
    from magan.pretraining.features import hit_pairs, occupancy_counts, structure_bands
    from magan.pretraining.state import network_sizes

    tiny = replace(PretrainConfig(), emulator_width=2, siamese_width=2, siamese_embedding_width=4,
                   noise_dim=2)
    ge, pe, gs, ps = build_emulator_nets(2, (8, 8, 1), network_sizes(tiny), seed=0)
    rng = np.random.default_rng(0)
    batch = PairBatch(jnp.asarray(rng.random((4, 2)), jnp.float32), jnp.zeros((4, 0)),
                      *(jnp.asarray(rng.normal(size=(4, 8, 8, 1)), jnp.float32) for _ in (0, 1)))

    def loss(weight, params_e=pe):
        cfg = replace(tiny, **{weight_name: weight})
        return emulator_loss(params_e, ps, EmulatorGraphs(ge, gs), batch, jax.random.key(1), cfg,
                             n_params=2, descriptors={
                                 "structure": lambda x, c: structure_bands(x) / 0.5,
                                 "occupancy": occupancy_counts(_THRESHOLDED),
                                 "hit_pairs": hit_pairs(_THRESHOLDED)})

    (l0, (m0, _)), (l2, (m2, _)) = loss(0.0), loss(2.0)
    assert metric not in m0 and np.isfinite(float(m2[metric]))
    np.testing.assert_allclose(float(l2), float(l0) + 2.0 * float(m2[metric]), rtol=1e-5)
    # the score moves E (S is held fixed inside E's loss)
    g0, g2 = (jax.grad(lambda p, w=w: loss(w, p)[0])(pe) for w in (0.0, 2.0))
    diff = jax.tree.reduce(max, jax.tree.map(lambda a, b: float(jnp.abs(a - b).max()), g0, g2))
    assert diff > 0.0


_THRESHOLDED = PowerTransform(scale=0.5, power=0.5, threshold=0.3)


@pytest.mark.parametrize("total_channel", [False, True])
def test_occupancy_counts_are_exact_with_a_gradient_across_the_threshold(total_channel):
    """The occupancy score's descriptor is the exact per-channel count of physical values that
    survive the readout threshold; its straight-through gradient reaches values below the cut
    (which the exact count, flat everywhere, would not), pushing them up when the count is
    to grow."""
    from magan.pretraining.features import occupancy_counts

    t = replace(_THRESHOLDED, total_channel=total_channel)
    rng = np.random.default_rng(1)
    images = np.abs(rng.normal(0.0, 0.5, size=(3, 6, 5, 2))).astype(np.float32)
    images[images < t.threshold] = 0.0  # as a simulator with this readout makes them
    x = jnp.asarray(t.forward(images))
    counts = occupancy_counts(t)(x, None)
    np.testing.assert_array_equal(np.asarray(counts), (images > 0).sum(axis=(1, 2)))
    assert np.all(np.asarray(x)[..., :2][images == 0] == 0)  # the simulator's zeros sit at 0 ...
    xs = np.asarray(x).copy()
    xs[..., :2] = np.where(images == 0, 0.5 * np.sqrt(t.threshold / t.scale), xs[..., :2])
    grad = np.asarray(jax.grad(lambda a: occupancy_counts(t)(a, None).sum())(jnp.asarray(xs)))
    # ... an emulation with values just under the cut: the count does not see them, but the
    # gradient pushes each of them up, toward the threshold
    assert np.isfinite(grad).all() and (grad[..., :2][images == 0] > 0).all()
    np.testing.assert_array_equal(np.asarray(occupancy_counts(t)(jnp.asarray(xs), None)),
                                  counts)  # still under the cut: not counted


def test_hit_pairs_count_side_by_side_hits_with_a_gradient_that_joins_them():
    """The hit-pairs descriptor is the exact number of horizontal and vertical neighbour pairs of
    cells above the readout threshold, per channel; scattered hits count 0, a clump counts its
    touching pairs; the straight-through gradient reaches a cell just under the cut beside a
    hit."""
    from magan.pretraining.features import hit_pairs

    t = _THRESHOLDED
    images = np.zeros((2, 5, 5, 1), np.float32)
    images[0, [0, 2, 4], [0, 2, 4], 0] = 1.0  # scattered: no pairs
    images[1, 1:3, 1:3, 0] = 1.0  # a 2 x 2 clump: 4 pairs
    images[1, 4, 4, 0] = 1.0  # and a lone hit
    x = jnp.asarray(t.forward(images))
    np.testing.assert_array_equal(np.asarray(hit_pairs(t)(x, None)), [[0.0], [4.0]])
    xs = np.asarray(x).copy()
    xs[0, 0, 1, 0] = 0.5 * np.sqrt(t.threshold / t.scale)  # under the cut, beside a hit
    grad = np.asarray(jax.grad(lambda a: hit_pairs(t)(a, None).sum())(jnp.asarray(xs)))
    assert np.isfinite(grad).all() and grad[0, 0, 1, 0] > 0
    np.testing.assert_array_equal(np.asarray(hit_pairs(t)(jnp.asarray(xs), None)), [[0.0], [4.0]])


@pytest.mark.parametrize("make, weight", [("occupancy_counts", "occupancy_weight"),
                                          ("hit_pairs", "hit_pairs_weight")])
def test_threshold_scores_need_a_readout_threshold(make, weight):
    from magan.pretraining import features

    with pytest.raises(ValueError, match="readout threshold.*PowerTransform\\(threshold=.*"
                                         f"{weight}=0"):
        getattr(features, make)(PowerTransform(scale=1.0))
