import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from magan.nn.convolution import conv_general_dilated
from magan.nn.models import (
    Discriminator,
    EmulatorNet,
    ImageEncoder,
    ParameterGenerator,
    SiameseNet,
    _upsample,
    coord_channels,
    fourier_channels,
    n_downsamples,
)
from magan.runtime.compile import jit_once


@pytest.mark.parametrize("shape", [(28, 28, 1), (25, 30, 3), (8, 8, 1), (64, 48, 5)])
def test_shapes_follow_the_image(shape):
    n = 3

    @jit_once  # one compiled program (op by op, every operation would compile on its own)
    def run():
        rngs = nnx.Rngs(0)
        e = EmulatorNet(4, shape, noise_dim=5, width=4, rngs=rngs)
        img = e(jnp.zeros((n, 4)), jnp.zeros((n, 5)), jnp.zeros((n,) + shape[:2] + (1,)))
        s = SiameseNet(shape, 4, width=4, embedding_width=8, rngs=rngs)
        d = Discriminator(shape, width=4, embedding_width=8, rngs=rngs)
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
        s = SiameseNet((28, 28, 1), 4, width=4, embedding_width=8, rngs=nnx.Rngs(1))
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
        g = ParameterGenerator(3, noise_dim=8, width=4, init_unit=init, init_scale=0.01,
                               rngs=nnx.Rngs(0))
        return g(z)

    out = draw(jax.random.normal(jax.random.key(0), (500, 8)))
    assert out.shape == (500, 3)
    assert bool(jnp.all((out > 0) & (out < 1)))
    np.testing.assert_allclose(out.mean(0), init, atol=0.01)


# ---------------------------------------------- the layers equal the plain formulation
def _plain_conv(x, kernel, strides=(1, 1)):
    return jax.lax.conv_general_dilated(x, kernel, strides, "SAME",
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))


def _plain_encoder(enc, x, cond=None):
    """ImageEncoder as concatenate-and-convolve with lax convolutions throughout."""
    n, h, w, _ = x.shape
    parts = [x, coord_channels(n, h, w, h, w)]
    if cond is not None:
        parts.append(jnp.broadcast_to(cond[:, None, None, :], (n, h, w, cond.shape[-1])))
    x = jax.nn.leaky_relu(_plain_conv(jnp.concatenate(parts, -1), enc.stem.kernel[...])
                          + enc.stem.bias[...])
    for conv in enc.downs:
        x = jax.nn.leaky_relu(_plain_conv(x, conv.kernel[...], (2, 2)) + conv.bias[...])
    return jax.nn.leaky_relu(enc.fc(x.reshape(n, -1)))


def _block_noise(e, m, i):
    """Stage i's noise map written out: f x f block sums of the zero-padded full-frame noise,
    divided by f (unit variance), f = 2^(levels - i)."""
    f = 2 ** (e.levels - i)
    hi, wi = e.h0 * 2 ** i, e.w0 * 2 ** i
    m = jnp.pad(m, ((0, 0), (0, hi * f - m.shape[1]), (0, wi * f - m.shape[2])))
    out = jnp.stack([jnp.stack([m[:, r * f:(r + 1) * f, c * f:(c + 1) * f].sum(axis=(1, 2))
                                for c in range(wi)], -1) for r in range(hi)], 1)
    return (out / f)[..., None]


def _plain_emulator(e, cond, z, pixel_noise):
    """EmulatorNet's full-resolution stage as concatenate-and-convolve (coarse stages shared)."""
    h, w, _ = e.image_shape
    n = cond.shape[0]
    full_h, full_w = e.h0 * 2 ** e.levels, e.w0 * 2 ** e.levels
    x = jax.nn.leaky_relu(e.fc(jnp.concatenate([cond, z], axis=-1)))
    ctx = jnp.concatenate([cond, z], axis=-1) if e.noise_channels else cond
    x = x.reshape(n, e.h0, e.w0, e.c0)
    for i, conv in enumerate(e.convs):
        if i > 0:
            x = _upsample(x)
        maps = [_block_noise(e, pixel_noise[..., 1 + i], i)] if e.spatial_noise else []
        x = jax.nn.leaky_relu(conv(jnp.concatenate(e._with_context(x, ctx, full_h, full_w) + maps,
                                                   -1)))
        for more in e.deeper[i] if e.depth > 1 else ():
            x = x + jax.nn.leaky_relu(more(jnp.concatenate(
                e._with_context(x, ctx, full_h, full_w) + maps, -1)))
    if e.levels > 0:
        x = _upsample(x)
    parts = e._with_context(x, ctx, full_h, full_w)
    hh, ww = x.shape[1:3]
    parts += [fourier_channels(parts[1], e.fourier),
              jnp.pad(pixel_noise[..., :1], ((0, 0), (0, hh - h), (0, ww - w), (0, 0)))]
    x = _plain_conv(jnp.concatenate(parts, -1), e.fine_in.kernel[...]) + e.fine_in.bias[...]
    gamma, beta = jnp.split(e.film(jnp.concatenate([cond, z], axis=-1)), 2, axis=-1)
    x = x * (1.0 + gamma[:, None, None, :]) + beta[:, None, None, :]
    for conv in e.fine:
        x = jax.nn.leaky_relu(_plain_conv(x, conv.kernel[...]) + conv.bias[...])
    out = (_plain_conv(x, e.out.kernel[...]) + e.out.bias[...])[:, :h, :w]
    if e.output_noise:  # + softplus(3x3 head) * the last C noise channels
        scale = jax.nn.softplus(_plain_conv(x, e.out_scale.kernel[...]) + e.out_scale.bias[...])
        out = out + scale[:, :h, :w] * pixel_noise[..., 1 + e.noise_maps:]
    return out


def _called(module, *args):
    """``module(*args)`` in a compiled program."""
    return nnx.jit(lambda m, *a: m(*a))(module, *args)


@pytest.mark.parametrize("shape,cond_dim,noise_channels,spatial_noise,depth,output_noise",
                         [((28, 28, 1), 0, False, False, 1, False),
                          ((12, 12, 5), 2, True, False, 1, True),
                          ((13, 9, 2), 1, False, True, 2, True),
                          ((28, 28, 1), 0, False, True, 1, False)])
def test_layers_equal_plain_formulation(shape, cond_dim, noise_channels, spatial_noise, depth,
                                        output_noise):
    """The restructured layers (constant channels convolved once, 1x1 convolutions as products,
    stride-2 convolutions with written-out derivatives) compute the concatenate-and-convolve
    networks, values and the R1 penalty's second derivatives."""
    k = jax.random.split(jax.random.key(3), 4)
    n = 5
    x = jax.random.normal(k[0], (n, *shape))
    cond = jax.random.uniform(k[1], (n, cond_dim)) if cond_dim else None
    # built and called in compiled programs (eager, each network's initialisation alone takes 6 s)
    enc = nnx.jit(lambda: ImageEncoder(shape, width=4, embedding_width=8, cond_dim=cond_dim,
                                       rngs=nnx.Rngs(0)))()
    np.testing.assert_allclose(_called(enc, x, cond), _plain_encoder(enc, x, cond), rtol=1e-5,
                               atol=1e-5)

    def r1(fn):  # d/d(params) of |d out / d x|^2, the R1 penalty's double backward pass
        def penalty(params):
            m = nnx.merge(nnx.graphdef(enc), params)
            g = jax.grad(lambda xx: fn(m, xx, cond).sum())(x)
            return jnp.sum(g ** 2)
        return jax.jit(jax.grad(penalty))(nnx.state(enc))  # jitted: eager is 3x slower

    fast, plain = r1(lambda m, xx, c: m(xx, c)), r1(_plain_encoder)
    for a, b in zip(jax.tree.leaves(fast), jax.tree.leaves(plain)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5 * float(jnp.abs(b).max()))

    p = 3 + cond_dim
    e = nnx.jit(lambda: EmulatorNet(p, shape, noise_dim=4, width=4, noise_channels=noise_channels,
                                    spatial_noise=spatial_noise, depth=depth,
                                    output_noise=output_noise, rngs=nnx.Rngs(1)))()
    assert e.noise_maps == (len(e.convs) if spatial_noise else 0)
    assert hasattr(e, "deeper") == (depth > 1)  # depth 1: the original layers, nothing added
    assert hasattr(e, "out_scale") == output_noise and e.noise_out == output_noise * shape[2]
    if output_noise:  # a non-trivial scale map (it starts as a constant)
        e.out_scale.kernel[...] = 0.3 * jax.random.normal(k[1], e.out_scale.kernel[...].shape)
    u, z = jax.random.uniform(k[2], (n, p)), jax.random.normal(k[3], (n, 4))
    noise = jax.random.normal(k[0], (n, *shape[:2], 1 + e.noise_maps + e.noise_out))
    np.testing.assert_allclose(_called(e, u, z, noise), _plain_emulator(e, u, z, noise), rtol=1e-5,
                               atol=1e-5)


@pytest.mark.parametrize("size,kernel,stride", [(28, 4, 2), (13, 4, 2), (7, 3, 1), (6, 3, 2)])
def test_strided_conv_and_its_two_derivatives_equal_lax(size, kernel, stride):
    """magan.nn.convolution.conv_general_dilated: lax's values, gradients, and the R1-style second
    derivatives (weights of |d out / d x|^2), for several paddings."""
    x = jax.random.normal(jax.random.key(0), (2, size, size + 1, 3))
    w = jax.random.normal(jax.random.key(1), (kernel, kernel, 3, 5))
    dn = ("NHWC", "HWIO", "NHWC")
    for pad in ("SAME", "VALID", ((1, 2), (0, 1))):
        def out(conv, xx, ww):
            y = conv(xx, ww, (stride, stride), pad, dimension_numbers=dn)
            return jnp.sum(jnp.tanh(y) * jnp.arange(y.size).reshape(y.shape) / y.size)

        def r1(conv, ww):
            return jnp.sum(jax.grad(lambda xx: out(conv, xx, ww))(x) ** 2)

        for f in (lambda c: out(c, x, w), lambda c: jax.grad(out, argnums=(1, 2))(c, x, w),
                  lambda c: jax.grad(lambda ww: r1(c, ww))(w)):
            for a, b in zip(jax.tree.leaves(jax.jit(lambda: f(conv_general_dilated))()),
                            jax.tree.leaves(jax.jit(lambda: f(jax.lax.conv_general_dilated))())):
                np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5 * float(jnp.abs(b).max()))
