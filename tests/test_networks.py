import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from magan.compile import jit_once
from magan.networks import (Discriminator, EmulatorNet, ParameterGenerator, SiameseNet,
                            n_downsamples)


@pytest.mark.parametrize("shape", [(28, 28, 1), (25, 30, 3), (8, 8, 1), (64, 48, 5)])
def test_shapes_follow_the_image(shape):
    n = 3

    @jit_once  # one compiled program (op by op, every operation would compile on its own)
    def run():
        rngs = nnx.Rngs(0)
        e = EmulatorNet(4, shape, noise_dim=5, width=4, rngs=rngs)
        img = e(jnp.zeros((n, 4)), jnp.zeros((n, 5)), jnp.zeros((n,) + shape[:2] + (1,)))
        s = SiameseNet(shape, 4, width=4, features=8, rngs=rngs)
        d = Discriminator(shape, width=4, features=8, rngs=rngs)
        return img, s(img, img), s.regress(img), d(img)

    img, pair, r, logit = run()
    assert img.shape == (n,) + shape
    assert pair.shape == (n,)
    assert r.shape == (n, 4) and bool(jnp.all((r >= 0) & (r <= 1)))
    assert logit.shape == (n,)


def test_downsampling_depth():
    assert n_downsamples(28, 28) == 2
    assert n_downsamples(8, 8) == 0
    assert n_downsamples(64, 64) == 3


def test_siamese_is_symmetric():
    @jit_once
    def both(a, b):
        s = SiameseNet((28, 28, 1), 4, width=4, features=8, rngs=nnx.Rngs(1))
        return s(a, b), s(b, a)

    ab, ba = both(*jax.random.normal(jax.random.key(0), (2, 5, 28, 28, 1)))
    np.testing.assert_allclose(ab, ba, rtol=1e-5, atol=1e-6)


def test_emulator_uses_parameters_and_noise():
    @jit_once
    def three():
        e = EmulatorNet(4, (28, 28, 1), noise_dim=8, width=4, rngs=nnx.Rngs(0))
        pix = jnp.zeros((1, 28, 28, 1))
        return (e(jnp.full((1, 4), 0.5), jnp.zeros((1, 8)), pix),
                e(jnp.full((1, 4), 0.9), jnp.zeros((1, 8)), pix),
                e(jnp.full((1, 4), 0.5), jnp.ones((1, 8)), pix))

    base, other_params, other_noise = three()
    assert not np.allclose(base, other_params)
    assert not np.allclose(base, other_noise)


def test_generator_starts_at_init_and_stays_in_cube():
    init = jnp.array([0.1, 0.5, 0.8])

    @jit_once
    def draw(z):
        g = ParameterGenerator(3, noise_len=8, width=4, init_unit=init, init_scale=0.01,
                               rngs=nnx.Rngs(0))
        return g(z)

    out = draw(jax.random.normal(jax.random.key(0), (500, 8)))
    assert out.shape == (500, 3)
    assert bool(jnp.all((out > 0) & (out < 1)))
    np.testing.assert_allclose(out.mean(0), init, atol=0.01)
