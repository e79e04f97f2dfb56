"""The per-pixel energy score (CRPS) of pre-training: finite, zero-mean for a matching emulator,
larger for a too-wide or too-narrow spread, and wired into E's loss behind its weight."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from magan.config import PretrainConfig, replace
from magan.losses import marginal_energy_score


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


def test_pixel_marginal_weight_is_validated():
    assert PretrainConfig().pixel_marginal_weight == 0.0
    with pytest.raises(ValueError, match="pixel_marginal_weight must be a finite number >= 0"):
        PretrainConfig(pixel_marginal_weight=-1.0)
    assert replace(PretrainConfig(), pixel_marginal_weight=2.0).pixel_marginal_weight == 2.0


def test_emulator_loss_adds_the_pixel_score_by_its_weight():
    from magan.losses import EmulatorGraphs, PairBatch, emulator_loss
    from magan.nn.build import build_emulator_nets
    from magan.pretraining.state import network_sizes

    tiny = replace(PretrainConfig(), emulator_width=2, siamese_width=2, siamese_embedding_width=4,
                   noise_dim=2)
    ge, pe, gs, ps = build_emulator_nets(2, (8, 8, 1), network_sizes(tiny), seed=0)
    rng = np.random.default_rng(0)
    batch = PairBatch(jnp.asarray(rng.random((4, 2)), jnp.float32), jnp.zeros((4, 0)),
                      *(jnp.asarray(rng.normal(size=(4, 8, 8, 1)), jnp.float32) for _ in (0, 1)))

    def loss(weight):
        cfg = replace(tiny, pixel_marginal_weight=weight)
        return emulator_loss(pe, ps, EmulatorGraphs(ge, gs), batch, jax.random.key(1), cfg,
                             n_params=2)

    (l0, (m0, _)), (l2, (m2, _)) = loss(0.0), loss(2.0)
    assert "pixel_marginal_score" not in m0 and np.isfinite(float(m2["pixel_marginal_score"]))
    np.testing.assert_allclose(float(l2), float(l0) + 2.0 * float(m2["pixel_marginal_score"]),
                               rtol=1e-5)
