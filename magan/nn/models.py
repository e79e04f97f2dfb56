"""The four networks of the Model-Assisted GAN, in flax.nnx.

* :class:`EmulatorNet` E: conditioning vector (parameters in the unit cube) + noise -> image.
* :class:`SiameseNet` S: two images -> similarity logit, through one shared 2D-CNN branch; the
  branch also carries an auxiliary head that regresses the parameters (as the auxiliary energy
  regression of 3DGAN), which gives the emulator a direct signal about *where* its image must be.
* :class:`ParameterGenerator` G: noise -> parameters in the unit cube, a 1D CNN.
* :class:`Discriminator` D: image -> realness logit, a 2D CNN.

All sizes follow from the image shape (H, W, C); nothing is tied to 28 x 28. Images are NHWC.
Every 2D network sees two coordinate channels (CoordConv, arXiv:1807.03247), which makes position a
feature the convolutions can read directly.

How the layers are computed (same functions as the plain concatenate-and-convolve formulation, to
float rounding; tests/nn/test_networks.py checks both ways): input channels that are the same for
every image (coordinates, their Fourier features) are convolved once and broadcast, per-image
constants (the conditioning vector) go through a matrix product, 1x1 convolutions are matrix
products over the channel axis, and the stride-2 convolutions have their second derivatives
written out (:mod:`magan.nn.convolution`). What this buys is measured by
``python scripts/networks_ab.py`` (docs/speed.md).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

from magan.nn.convolution import conv_general_dilated, conv_nhwc

__all__ = ["EmulatorNet", "SiameseNet", "ParameterGenerator", "Discriminator", "ImageEncoder",
           "n_downsamples"]

_act = jax.nn.leaky_relu
OUTPUT_NOISE_BIAS = -4.0  # EmulatorNet's output-noise scale starts at softplus(-4) = 0.018


def coord_channels(n: int, h: int, w: int, full_h: int, full_w: int, dtype=jnp.float32):
    """(n, h, w, 2) channels with pixel-centre coordinates in [-1, 1] of the full image frame.

    A map of size (h, w) is read as a coarse grid over (full_h, full_w) pixels (it may overhang the
    image when full_h is not a multiple of the stride).
    """
    sy, sx = full_h / h if h <= full_h else 1.0, full_w / w if w <= full_w else 1.0
    ys = ((jnp.arange(h, dtype=dtype) + 0.5) * sy) / full_h * 2.0 - 1.0
    xs = ((jnp.arange(w, dtype=dtype) + 0.5) * sx) / full_w * 2.0 - 1.0
    grid = jnp.stack(jnp.meshgrid(ys, xs, indexing="ij"), axis=-1)
    return jnp.broadcast_to(grid[None], (n, h, w, 2))


def n_downsamples(h: int, w: int, minimum: int = 6) -> int:
    """How many stride-2 stages keep the smaller side at least ``minimum`` pixels (0 to 3)."""
    k, s = 0, min(h, w)
    while k < 3 and math.ceil(s / 2) >= minimum:
        s, k = math.ceil(s / 2), k + 1
    return k


def _upsample(x):
    n, h, w, c = x.shape
    return jax.image.resize(x, (n, 2 * h, 2 * w, c), method="bilinear")


def pointwise(conv: nnx.Conv, x, kernel=None):
    """A 1x1 :class:`nnx.Conv` as a matrix product over the channel axis, with its bias.

    ``kernel`` (C_in, C_out), default the convolution's own, may be a block of its rows (for the
    channels ``x`` holds). XLA:CPU runs a product over the last axis, and its weight gradient, as
    one GEMM; as a 1x1 convolution it first copies the activations into channel-major layouts.
    """
    k = conv.kernel[...][0, 0] if kernel is None else kernel
    return jnp.einsum("...c,co->...o", x, k.astype(x.dtype)) + conv.bias[...].astype(x.dtype)


def fourier_channels(coords, n_freq: int):
    """sin/cos of coordinates at frequencies pi * 2^k, k < n_freq: (..., 2) -> (..., 4 * n_freq)."""
    if n_freq == 0:
        return coords[..., :0]
    freqs = jnp.pi * 2.0 ** jnp.arange(n_freq, dtype=coords.dtype)
    ang = coords[..., None] * freqs  # (..., 2, F)
    ang = ang.reshape(ang.shape[:-2] + (-1,))
    return jnp.concatenate([jnp.sin(ang), jnp.cos(ang)], axis=-1)


class EmulatorNet(nnx.Module):
    """E(cond, z) -> image.

    A dense layer maps (cond, z) to a coarse feature map; stride-2 upsampling and 3x3 convolutions
    bring it to half resolution. At every resolution the conditioning vector is broadcast as extra
    channels beside the coordinate channels, so the convolutions can place structure as a function
    of (position, parameters). The full-resolution stage is a per-pixel MLP (1x1 convolutions, 9x
    cheaper than 3x3) that reads the upsampled features, the coordinates and their Fourier features
    (for sharp, sub-pixel structure), the conditioning vector and a per-pixel noise channel; its
    first layer is modulated per image by FiLM (scale and shift from (cond, z); Perez et al. 2018,
    as in pi-GAN's coordinate decoders). A final 3x3 convolution writes the C output channels.

    Args:
      cond_dim: length of the conditioning vector: parameters, then per-event conditions, all in
        the unit cube.
      image_shape: (H, W, C).
      noise_dim: length of the per-image noise vector z.
      width: channels at half resolution; coarser stages have 2x, 4x; the per-pixel MLP has 2x.
      fine_layers: hidden layers of the per-pixel MLP.
      fourier: Fourier frequencies of the coordinates fed to the per-pixel MLP.
      noise_channels: also broadcast z as channels beside the conditioning at every stage, so
        every convolution can vary its output per image (not only through the dense input and
        FiLM); helps images whose global shape fluctuates from event to event (showers).
      spatial_noise: also give every coarse 3x3 stage a map of independent noise at its own
        resolution (one extra input channel; noise injection per resolution level, as StyleGAN's),
        so that local structure (where objects sit, a texture's phases) can vary from image to
        image at every scale, not only through the ``noise_dim`` numbers of z.
      depth: 3x3 convolutions per coarse stage; the ones beyond the first are residual
        (``x + act(conv(x, context))``), for objects whose shape needs a wider receptive field
        than one convolution per resolution gives (1: the original architecture, unchanged).
      output_noise: add independent Gaussian noise to every output value, with a scale that a
        second 3x3 head writes per pixel and channel from the last features (``softplus``,
        about 0.018 at the start): ``out = mu + sigma * eps``. The per-pixel MLP has one noise
        channel for all C outputs, so without it the C channels of a pixel (a calorimeter's
        layers) share their pixel-level noise; with it each value gets its own, as a detector's
        electronic noise does.
    Shapes: ``cond`` (N, cond_dim), ``z`` (N, noise_dim), ``pixel_noise`` (N, H, W,
    1 + ``noise_maps`` + ``noise_out``), standard normal: channel 0 feeds the per-pixel MLP,
    channel 1 + i (``spatial_noise``) is averaged over blocks to stage i's resolution and
    rescaled to unit variance, the last ``noise_out`` (C with ``output_noise``, else 0) are the
    output's eps -> (N, H, W, C).
    """

    def __init__(self, cond_dim: int, image_shape, *, noise_dim: int = 16, width: int = 16,
                 fine_layers: int = 2, fourier: int = 3, noise_channels: bool = False,
                 spatial_noise: bool = False, depth: int = 1, output_noise: bool = False,
                 rngs: nnx.Rngs):
        h, w, c = image_shape
        self.image_shape = tuple(image_shape)
        self.cond_dim, self.noise_dim, self.fourier = cond_dim, noise_dim, fourier
        self.noise_channels, self.spatial_noise = bool(noise_channels), bool(spatial_noise)
        self.levels = n_downsamples(h, w)
        f = 2 ** self.levels
        self.h0, self.w0 = math.ceil(h / f), math.ceil(w / f)
        # coarse -> half resolution; (at least one 3x3 stage even when the image is small)
        chans = [width * 2 ** max(self.levels - 1 - i, 0) for i in range(max(self.levels, 1))]
        self.c0 = chans[0]
        self.fc = nnx.Linear(cond_dim + noise_dim, self.h0 * self.w0 * chans[0], rngs=rngs)
        extra = 2 + cond_dim + (noise_dim if noise_channels else 0)
        self.noise_maps = len(chans) if spatial_noise else 0  # extra channels of pixel_noise
        self.convs = nnx.List([nnx.Conv((chans[i - 1] if i else chans[0]) + extra
                                        + int(self.spatial_noise), chans[i], (3, 3), rngs=rngs)
                               for i in range(len(chans))])
        fine_in = chans[-1] + extra + 4 * fourier + 1
        fine_w = 2 * width
        self.fine_in = nnx.Conv(fine_in, fine_w, (1, 1), rngs=rngs)
        self.film = nnx.Linear(cond_dim + noise_dim, 2 * fine_w, rngs=rngs)
        self.fine = nnx.List([nnx.Conv(fine_w, fine_w, (1, 1), rngs=rngs)
                              for _ in range(fine_layers)])
        self.out = nnx.Conv(fine_w, c, (3, 3), rngs=rngs)
        self.depth = int(depth)
        if self.depth > 1:  # created last, so that depth 1 draws the original initial weights
            self.deeper = nnx.List([
                nnx.List([nnx.Conv(chans[i] + extra + int(self.spatial_noise), chans[i], (3, 3),
                                   rngs=rngs) for _ in range(self.depth - 1)])
                for i in range(len(chans))])
        self.output_noise = bool(output_noise)
        self.noise_out = c if self.output_noise else 0  # last channels of pixel_noise
        if self.output_noise:  # created last, like ``deeper``
            self.out_scale = nnx.Conv(fine_w, c, (3, 3), kernel_init=nnx.initializers.zeros,
                                      bias_init=nnx.initializers.constant(OUTPUT_NOISE_BIAS),
                                      rngs=rngs)

    def _with_context(self, x, cond, full_h, full_w):
        n, hh, ww, _ = x.shape
        return [x, coord_channels(n, hh, ww, full_h, full_w),
                jnp.broadcast_to(cond[:, None, None, :], (n, hh, ww, cond.shape[-1]))]

    def stage_noise(self, pixel_noise, i: int):
        """Channel 1 + i of ``pixel_noise`` (N, H, W, 1 + noise_maps) as stage i's noise map
        (N, h0 2^i, w0 2^i, 1): zero-padded to the full frame, averaged over f x f blocks and
        multiplied by f (unit variance again), f = 2^(levels - i)."""
        n, h, w, _ = pixel_noise.shape
        f = 2 ** (self.levels - i)
        hi, wi = self.h0 * 2 ** i, self.w0 * 2 ** i
        m = jnp.pad(pixel_noise[..., 1 + i], ((0, 0), (0, hi * f - h), (0, wi * f - w)))
        return (m.reshape(n, hi, f, wi, f).mean(axis=(2, 4)) * f)[..., None]

    def __call__(self, cond, z, pixel_noise):
        h, w, _ = self.image_shape
        n = cond.shape[0]
        full_h, full_w = self.h0 * 2 ** self.levels, self.w0 * 2 ** self.levels
        x = _act(self.fc(jnp.concatenate([cond, z], axis=-1)))
        if self.noise_channels:
            cond = jnp.concatenate([cond, z], axis=-1)  # broadcast beside the conditioning
        x = x.reshape(n, self.h0, self.w0, self.c0)
        for i, conv in enumerate(self.convs):
            if i > 0:
                x = _upsample(x)
            parts = self._with_context(x, cond, full_h, full_w)
            if self.spatial_noise:
                parts.append(self.stage_noise(pixel_noise, i).astype(x.dtype))
            x = _act(conv(jnp.concatenate(parts, axis=-1)))
            for more in self.deeper[i] if self.depth > 1 else ():
                x = x + _act(more(jnp.concatenate([x, *parts[1:]], axis=-1)))
        if self.levels > 0:
            x = _upsample(x)
        hh, ww = x.shape[1:3]
        # fine_in reads (features, coordinates, conditioning, Fourier features, pixel noise); the
        # coordinate terms are the same for every image and the conditioning the same for every
        # pixel, so each block of the kernel is applied where its input varies (same result as
        # the 1x1 convolution of all of them concatenated, without that (N, H, W, 27) tensor)
        cx, kc = x.shape[-1], cond.shape[-1]
        coords = coord_channels(1, hh, ww, full_h, full_w, x.dtype)
        k = self.fine_in.kernel[...][0, 0].astype(x.dtype)
        pixel = jnp.concatenate([coords, fourier_channels(coords, self.fourier)], axis=-1)
        k_pixel = jnp.concatenate([k[cx:cx + 2], k[cx + 2 + kc:-1]], axis=0)
        noise = jnp.pad(pixel_noise[..., :1],
                        ((0, 0), (0, hh - h), (0, ww - w), (0, 0))).astype(x.dtype)
        x = (pointwise(self.fine_in, x, k[:cx])
             + jnp.einsum("nhwc,co->nhwo", pixel, k_pixel)
             + (cond.astype(x.dtype) @ k[cx + 2:cx + 2 + kc])[:, None, None, :]
             + noise * k[-1])
        # FiLM: a per-image affine map of the per-pixel features, so that products of position
        # and parameters (a line y - m x - c, a radius r / R(theta)) are one layer away
        gamma, beta = jnp.split(self.film(jnp.concatenate([cond[:, :self.cond_dim], z], axis=-1)),
                                2, axis=-1)
        x = x * (1.0 + gamma[:, None, None, :]) + beta[:, None, None, :]
        for conv in self.fine:
            x = _act(pointwise(conv, x))
        if self.output_noise:
            eps = pixel_noise[..., pixel_noise.shape[-1] - self.noise_out:].astype(x.dtype)
            return (self.out(x)[:, :h, :w]
                    + jax.nn.softplus(self.out_scale(x)[:, :h, :w]) * eps)
        return self.out(x)[:, :h, :w]


class ImageEncoder(nnx.Module):
    """2D CNN: (N, H, W, C) [+ conditions (N, K)] -> (N, embedding_width).

    CoordConv input, stride-2 stages, leaky ReLU. With ``cond_dim`` K > 0 the per-event conditions
    (unit cube) are broadcast as K extra input channels.
    """

    def __init__(self, image_shape, *, width: int = 16, embedding_width: int = 64,
                 cond_dim: int = 0, rngs: nnx.Rngs):
        h, w, c = image_shape
        self.levels = n_downsamples(h, w)
        self.cond_dim = cond_dim
        layers, cin = [], c + 2 + cond_dim
        ch = width
        self.stem = nnx.Conv(cin, ch, (3, 3), rngs=rngs)
        for _ in range(self.levels):
            layers.append(nnx.Conv(ch, 2 * ch, (4, 4), strides=2,
                                   conv_general_dilated=conv_general_dilated, rngs=rngs))
            ch *= 2
        self.downs = nnx.List(layers)
        hh, ww = h, w
        for _ in range(self.levels):
            hh, ww = math.ceil(hh / 2), math.ceil(ww / 2)
        self.fc = nnx.Linear(hh * ww * ch, embedding_width, rngs=rngs)

    def __call__(self, x, cond=None):
        n, h, w, c = x.shape
        # the stem reads (image, coordinates, conditions); the coordinates' share of its output is
        # the same for every image, so it is computed once and broadcast
        k = self.stem.kernel[...].astype(x.dtype)
        parts, k_var = [x], [k[:, :, :c]]
        if self.cond_dim:
            if cond is None:
                raise ValueError(f"This network is conditioned on {self.cond_dim} per-event "
                                 "conditions; pass them.")
            parts.append(jnp.broadcast_to(cond[:, None, None, :].astype(x.dtype),
                                          (n, h, w, self.cond_dim)))
            k_var.append(k[:, :, c + 2:])
        varying = (parts[0], k_var[0]) if len(parts) == 1 else (
            jnp.concatenate(parts, axis=-1), jnp.concatenate(k_var, axis=2))
        fixed = conv_nhwc(coord_channels(1, h, w, h, w, x.dtype), k[:, :, c:c + 2])
        x = _act(conv_nhwc(*varying) + fixed + self.stem.bias[...].astype(x.dtype))
        for conv in self.downs:
            x = _act(conv(x))
        return _act(self.fc(x.reshape(n, -1)))


class SiameseNet(nnx.Module):
    """S(a, b): one shared :class:`ImageEncoder` branch applied to both images.

    ``pair_logit(a, b)`` is symmetric in (a, b): the head reads ``|f(a) - f(b)|`` and
    ``f(a) * f(b)``.
    ``regress(x)`` maps one image to parameters in the unit cube (auxiliary head), shape (N, P).
    With ``cond_dim`` K > 0 every call also takes the per-event conditions (N, K) (unit cube); both
    images of a pair share them.
    """

    def __init__(self, image_shape, param_dim: int, *, width: int = 16, embedding_width: int = 64,
                 cond_dim: int = 0, rngs: nnx.Rngs):
        self.branch = ImageEncoder(image_shape, width=width, embedding_width=embedding_width,
                                   cond_dim=cond_dim, rngs=rngs)
        self.head1 = nnx.Linear(2 * embedding_width, embedding_width, rngs=rngs)
        self.head2 = nnx.Linear(embedding_width, 1, rngs=rngs)
        self.aux = nnx.Linear(embedding_width, param_dim, rngs=rngs)

    def pair_logit_from_features(self, fa, fb):
        g = jnp.concatenate([jnp.abs(fa - fb), fa * fb], axis=-1)
        return self.head2(_act(self.head1(g)))[:, 0]

    def pair_logit(self, a, b, cond=None):
        return self.pair_logit_from_features(self.branch(a, cond), self.branch(b, cond))

    def regress_from_features(self, f):
        return jax.nn.sigmoid(self.aux(f))

    def regress(self, x, cond=None):
        return self.regress_from_features(self.branch(x, cond))

    def __call__(self, a, b, cond=None):
        return self.pair_logit(a, b, cond)


class Discriminator(nnx.Module):
    """D(x [, cond]) -> realness logit (N,); conditions (N, K) as extra channels when K > 0."""

    def __init__(self, image_shape, *, width: int = 16, embedding_width: int = 64,
                 cond_dim: int = 0, rngs: nnx.Rngs):
        self.encoder = ImageEncoder(image_shape, width=width, embedding_width=embedding_width,
                                    cond_dim=cond_dim, rngs=rngs)
        self.head = nnx.Linear(embedding_width, 1, rngs=rngs)

    def __call__(self, x, cond=None):
        return self.head(self.encoder(x, cond))[:, 0]


class ParameterGenerator(nnx.Module):
    """G(z) -> parameters in the unit cube, a 1D CNN over the noise sequence.

    z has shape (N, noise_dim); it is read as a length-``noise_dim`` sequence of one channel, passed
    through two 1D convolutions, flattened, and mapped to (N, P) through a sigmoid.
    ``init_unit`` (P,) sets where G starts: the output bias is set to its logit and the last
    layer's weights are scaled down, so G starts as a narrow distribution around that point.
    """

    def __init__(self, param_dim: int, *, noise_dim: int = 16, width: int = 16, init_unit=None,
                 init_scale: float = 0.05, rngs: nnx.Rngs):
        self.noise_dim = noise_dim
        self.conv1 = nnx.Conv(1, width, (3,), rngs=rngs)
        self.conv2 = nnx.Conv(width, width, (3,), rngs=rngs)
        self.fc = nnx.Linear(noise_dim * width, 64, rngs=rngs)
        self.out = nnx.Linear(64, param_dim, rngs=rngs)
        self.out.kernel[...] = self.out.kernel[...] * init_scale
        if init_unit is not None:
            u = jnp.clip(jnp.asarray(init_unit, jnp.float32), 1e-3, 1 - 1e-3)
            self.out.bias[...] = jnp.log(u) - jnp.log1p(-u)

    def __call__(self, z):
        x = z[..., None]
        x = _act(self.conv1(x))
        x = _act(self.conv2(x))
        x = _act(self.fc(x.reshape(x.shape[0], -1)))
        return jax.nn.sigmoid(self.out(x))
