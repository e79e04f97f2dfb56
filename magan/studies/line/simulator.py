"""The line-image simulator of case study I (Alonso-Monsalve & Whitehead, arXiv:1812.00879).

A 28 x 28 image holds one anti-aliased line ``y = m x + c`` drawn from ``x0`` to ``x0 + xsteps``.
Coordinates are in pixels: column ``i`` spans ``[i, i+1)`` in x, row ``j`` spans ``[j, j+1)`` in y
(row 0 at the bottom when plotted with ``origin="lower"``). ``x`` in ``y = m x + c`` is measured
from the centre of the image, so ``c`` is the line's height at the centre column and ``m`` and ``c``
are not degenerate. The bounds of :data:`LINE_SPACE` keep every line inside the image.

Randomness, so that a distribution is fitted and not a single image:

* intensity jitter: each image's line amplitude is ``1 + 0.1 * N(0, 1)``;
* pixel noise: ``0.03 * N(0, 1)`` added to every pixel.

The same code renders with NumPy (the black-box :class:`~magan.FunctionSimulator` of the study)
and with JAX (a :class:`~magan.JaxSimulator`, used in tests and benchmarks).
"""

from __future__ import annotations

import numpy as np

from magan.simulators.function import FunctionSimulator, JaxSimulator
from magan.space import ParameterSpace

__all__ = ["LINE_SPACE", "IMAGE_SHAPE", "LINE_FEATURES", "render_lines", "simulate_lines",
           "line_features", "line_fit_features", "line_simulator", "line_jax_simulator"]

IMAGE_SHAPE = (28, 28, 1)
LINE_WIDTH_PX = 0.6  # Gaussian sigma of the line's cross-section, pixels
AMPLITUDE_JITTER = 0.10  # relative, per image
PIXEL_NOISE = 0.03  # absolute, per pixel

LINE_SPACE = ParameterSpace(
    {
        "m": (-0.5, 0.5, "px/px"),  # gradient
        "c": (8.0, 20.0, "px"),  # height at the centre column
        "x0": (0.0, 13.0, "px"),  # start in x
        "xsteps": (4.0, 14.0, "px"),  # length in x
    }
)


def render_lines(xp, params, amplitude, noise):
    """Render lines with array namespace ``xp`` (numpy or jax.numpy).

    Args:
      params: (N, 4) physical values (m, c, x0, xsteps).
      amplitude: (N,) line amplitude per image.
      noise: (N, 28, 28) additive pixel noise.
    Returns:
      (N, 28, 28, 1) float32 images.
    """
    h, w, _ = IMAGE_SHAPE
    m, c, x0, xs = (params[:, k][:, None, None] for k in range(4))
    cols = xp.arange(w, dtype=xp.float32)[None, None, :]  # left edge of column i
    rows = xp.arange(h, dtype=xp.float32)[None, :, None]
    # fraction of column [i, i+1) covered by the segment [x0, x0 + xsteps]
    cover = xp.clip(xp.minimum(cols + 1.0, x0 + xs) - xp.maximum(cols, x0), 0.0, 1.0)
    y_line = m * (cols + 0.5 - w / 2.0) + c
    sigma = LINE_WIDTH_PX * xp.sqrt(1.0 + m * m)
    profile = xp.exp(-0.5 * ((rows + 0.5 - y_line) / sigma) ** 2)
    img = amplitude[:, None, None] * cover * profile + noise
    return img[..., None].astype(xp.float32)


def simulate_lines(rng: np.random.Generator, params: np.ndarray) -> np.ndarray:
    """Host simulator: (N, 4) physical params -> (N, 28, 28, 1) float32 images."""
    params = np.asarray(params, dtype=np.float32)
    n = params.shape[0]
    amp = 1.0 + AMPLITUDE_JITTER * rng.standard_normal(n, dtype=np.float32)
    noise = PIXEL_NOISE * rng.standard_normal((n,) + IMAGE_SHAPE[:2], dtype=np.float32)
    return render_lines(np, params, amp, noise)


def _simulate_lines_jax(key, params):
    import jax
    import jax.numpy as jnp

    k1, k2 = jax.random.split(key)
    n = params.shape[0]
    amp = 1.0 + AMPLITUDE_JITTER * jax.random.normal(k1, (n,))
    noise = PIXEL_NOISE * jax.random.normal(k2, (n,) + IMAGE_SHAPE[:2])
    return render_lines(jnp, params.astype(jnp.float32), amp, noise)


def line_simulator() -> FunctionSimulator:
    """The study's black-box simulator (NumPy, runs on the host)."""
    return FunctionSimulator(simulate_lines, IMAGE_SHAPE, name="line-simulator")


def line_jax_simulator() -> JaxSimulator:
    """The same simulator, JAX-traceable (runs inside jit)."""
    return JaxSimulator(_simulate_lines_jax, IMAGE_SHAPE, name="line-simulator-jax")


LINE_FEATURES = ("intensity", "x_center", "x_length", "slope", "height", "thickness")
_THRESHOLD = 0.1  # pixels below this (about 3 sigma of the pixel noise) are ignored


def line_features(images, xp=np) -> np.ndarray:
    """High-level features of line images, robust to pixel noise. (N, 28, 28, 1) -> (N, 6).

    ``xp``: ``numpy`` (float64, the default) or ``jax.numpy`` (float32, differentiable: the fit's
    feature matching uses :func:`line_fit_features`).

    Columns (all in pixels unless noted), from the thresholded intensity ``w = max(img - 0.1, 0)``:

    * ``intensity``: total thresholded intensity (arbitrary units);
    * ``x_center``, ``x_length``: mean and ``sqrt(12)`` x standard deviation of the column
      profile, i.e. ``x0 + xsteps / 2`` and ``xsteps`` for a uniform segment;
    * ``slope``, ``height``: weighted least-squares line through the pixels (``m`` and ``c``);
    * ``thickness``: weighted RMS distance of intensity from that line, across it: a blurred
      line is thicker, a misplaced one has the wrong slope/height/extent.
    """
    dtype = np.float64 if xp is np else np.float32
    img = xp.asarray(images, dtype)[..., 0]
    n, h, w = img.shape
    wgt = xp.maximum(img - _THRESHOLD, 0.0)
    tot = wgt.sum(axis=(1, 2)) + 1e-9
    xs_np = np.arange(w) + 0.5 - w / 2.0
    yy_np, xx_np = np.meshgrid(np.arange(h) + 0.5, xs_np, indexing="ij")
    xs, yy, xx = (xp.asarray(a, dtype) for a in (xs_np, yy_np, xx_np))
    col = wgt.sum(axis=1)  # (n, w)
    xc = (col * xs).sum(1) / tot
    xvar = (col * (xs - xc[:, None]) ** 2).sum(1) / tot
    ym = (wgt * yy).sum((1, 2)) / tot
    cov = (wgt * (xx - xc[:, None, None]) * (yy - ym[:, None, None])).sum((1, 2)) / tot
    slope = cov / xp.maximum(xvar, 1e-6)
    height = ym - slope * xc
    resid = yy - (slope[:, None, None] * xx + height[:, None, None])
    thick = xp.sqrt((wgt * resid ** 2).sum((1, 2)) / tot / (1.0 + slope ** 2) + 1e-12)
    return xp.stack([tot, xc + w / 2.0, xp.sqrt(12.0 * xvar + 1e-12), slope, height, thick],
                    axis=1)


def line_fit_features(images, conditions=None):
    """:func:`line_features` in jax.numpy with the ``features(images, conditions)`` signature of
    :func:`magan.fit` (the line study has no conditions)."""
    import jax.numpy as jnp

    return line_features(images, xp=jnp)
