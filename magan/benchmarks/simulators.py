"""Three benchmark simulators that differ in kind from the built-in studies.

The line study draws one object with little randomness; the calorimeter study one shower. These
three test whether a fit generalises to other kinds of image, each 32 x 32 pixels, one channel:

* :func:`simulate_random_field`: a texture, no object at all: a Gaussian random field with a
  power-law power spectrum. Every pixel is random; only the statistics of many images carry the
  parameters.
* :func:`simulate_poisson_hits`: a sparse display of integer hit counts: a Poisson number of hits
  drawn from a 2-D Gaussian blob, each hit in one pixel. Most pixels are 0.
* :func:`simulate_two_populations`: several objects per image, each a round blob or an elongated
  streak; the mixing fraction is a property of the population, not of any one image.

Coordinates are in pixels: column ``i`` spans ``[i, i+1)`` in x, row ``j`` spans ``[j, j+1)`` in
y. Every simulator draws all its randomness from its ``rng`` argument, is vectorised over the N
images (about 1e4 images/s or faster on one core) and returns float32 images (N, 32, 32, 1).

:data:`BENCHMARKS` maps each name to a :class:`Benchmark`: the simulator, its
:class:`~magan.ParameterSpace`, five truth points (rows 0-2 inside the box, rows 3-4 with
parameters within 5-10 % of a bound) and a one-line description. The ranges are chosen so that a
set of ~1000 images pins the parameters down and one image does not.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from magan.simulators.function import FunctionSimulator
from magan.space import ParameterSpace

__all__ = ["IMAGE_SHAPE", "Benchmark", "BENCHMARKS", "RANDOM_FIELD_SPACE", "POISSON_HITS_SPACE",
           "TWO_POPULATIONS_SPACE", "simulate_random_field", "simulate_poisson_hits",
           "simulate_two_populations", "render_objects", "wavenumbers", "random_field_simulator",
           "poisson_hits_simulator", "two_populations_simulator"]

IMAGE_SHAPE = (32, 32, 1)
PIVOT_K = 0.1  # cycles/px: the wavenumber at which the field's amplitude is quoted
OBJECTS_MEAN = 4.0  # two_populations: objects per image are 1 + Poisson(4), at most MAX_OBJECTS
MAX_OBJECTS = 10
OBJECT_MARGIN = 4.0  # px: object centres are uniform in [4, 28) in x and y
BRIGHTNESS_JITTER = 0.2  # lognormal sigma of each object's peak brightness
OBJECT_NOISE = 0.1  # two_populations: additive Gaussian pixel noise
RENDER_CHUNK = 256  # images rendered at a time

RANDOM_FIELD_SPACE = ParameterSpace({
    "log10_amplitude": (-0.5, 1.0, "log10 px^2"),  # log10 P(k) at k = 0.1 cycles/px
    "slope": (0.5, 3.5, "dimensionless"),  # P(k) ~ k^-slope
    "mean": (-1.0, 1.0, "field units"),  # level added to every pixel
    "smoothing": (0.3, 2.0, "px"),  # Gaussian smoothing sigma (cuts the spectrum at high k)
})

POISSON_HITS_SPACE = ParameterSpace({
    "rate": (5.0, 60.0, "hits/image"),  # Poisson mean of the number of hits (before the edges)
    "x": (10.0, 22.0, "px"),  # blob centre, column direction
    "y": (10.0, 22.0, "px"),  # blob centre, row direction
    "width": (1.0, 4.0, "px"),  # Gaussian sigma of the blob
})

TWO_POPULATIONS_SPACE = ParameterSpace({
    "round_fraction": (0.1, 0.9, "probability"),  # probability that an object is a round blob
    "size": (0.7, 1.8, "px"),  # Gaussian sigma of a blob, and a streak's half-thickness sigma
    "brightness": (0.5, 2.0, "peak units"),  # median peak value of an object
    "streak_length": (4.0, 14.0, "px"),  # full length of a streak
})


def wavenumbers(n: int = 32) -> np.ndarray:
    """|k| in cycles/px of the (n, n // 2 + 1) grid of ``numpy.fft.rfft2``; (0, 0) holds 0."""
    ky = np.fft.fftfreq(n)[:, None]
    kx = np.fft.rfftfreq(n)[None, :]
    return np.sqrt(kx ** 2 + ky ** 2)


def simulate_random_field(rng: np.random.Generator, params: np.ndarray) -> np.ndarray:
    """Gaussian random fields with power spectrum ``A (k / 0.1)^-slope exp(-(2 pi k s)^2)``.

    White noise (unit variance per pixel) is Fourier transformed, multiplied by ``sqrt(P(k))``
    and transformed back, so a pixel's variance is the mean of P over the grid's modes. The
    k = 0 mode is removed and ``mean`` added, so an image's own mean scatters around ``mean``
    by the power of the lowest modes: one image does not pin any parameter down.

    Args:
      rng: the source of all randomness.
      params: (N, 4) physical values: ``log10_amplitude`` (log10 of P at k = 0.1 cycles/px, in
        px^2 field units^2), ``slope`` (dimensionless), ``mean`` (field units), ``smoothing``
        (Gaussian sigma ``s`` in px).
    Returns:
      (N, 32, 32, 1) float32 images; pixel standard deviations of about 0.2 to 4.
    """
    params = np.asarray(params, dtype=np.float64)
    n, size = params.shape[0], IMAGE_SHAPE[0]
    log_amp, slope, mean, smooth = (params[:, j, None, None] for j in range(4))
    k = wavenumbers(size)
    k_safe = np.where(k > 0, k, 1.0)
    power = (10.0 ** log_amp * (k_safe / PIVOT_K) ** -slope
             * np.exp(-(2 * np.pi * k_safe * smooth) ** 2))
    power[:, 0, 0] = 0.0
    amp = np.sqrt(power).astype(np.float32)
    white = rng.standard_normal((n, size, size), dtype=np.float32)
    field = np.fft.irfft2(np.fft.rfft2(white) * amp, s=(size, size))
    return (field + mean)[..., None].astype(np.float32)


def simulate_poisson_hits(rng: np.random.Generator, params: np.ndarray) -> np.ndarray:
    """Sparse hit displays: Poisson(rate) hits from a 2-D Gaussian blob, each hit in one pixel.

    Hit ``(x, y)`` is ``centre + width * N(0, 1)`` in each coordinate and lands in pixel
    ``(floor(y), floor(x))``; hits outside the image are lost. Pixels hold integer counts.

    Args:
      rng: the source of all randomness.
      params: (N, 4) physical values: ``rate`` (mean hits per image), ``x``, ``y`` (blob centre,
        px), ``width`` (Gaussian sigma of the blob, px).
    Returns:
      (N, 32, 32, 1) float32 images of hit counts (0 in most pixels, up to about 15).
    """
    params = np.asarray(params, dtype=np.float64)
    n, (h, w) = params.shape[0], IMAGE_SHAPE[:2]
    counts = rng.poisson(params[:, 0])
    owner = np.repeat(np.arange(n), counts)  # image of each hit
    xy = rng.standard_normal((owner.size, 2)) * params[owner, 3, None] + params[owner, 1:3]
    col, row = np.floor(xy[:, 0]).astype(np.int64), np.floor(xy[:, 1]).astype(np.int64)
    inside = (col >= 0) & (col < w) & (row >= 0) & (row < h)
    flat = (owner * h + row) * w + col
    images = np.bincount(flat[inside], minlength=n * h * w)
    return images.reshape(n, h, w, 1).astype(np.float32)


def render_objects(owner, centres, sigmas, angles, peaks, n: int) -> np.ndarray:
    """Sum of elliptical Gaussians on the 32 x 32 grid, M objects into N images.

    Args:
      owner: (M,) the image each object belongs to, ascending (integers in [0, n)).
      centres: (M, 2) object centres (x, y) in px.
      sigmas: (M, 2) Gaussian sigmas along and across the object's axis, px.
      angles: (M,) axis angle from the x axis, radians.
      peaks: (M,) peak values, > 0.
      n: the number of images.
    Returns:
      (N, 32, 32) float32 images (0 where an image has no object).
    """
    h, w = IMAGE_SHAPE[:2]
    f32 = np.float32
    # exponent -q/2 with q = a dx^2 + 2 b dx dy + c dy^2: one term per column, one per row, and
    # the cross term, so the (M, H, W) work is three passes and one exp
    cos, sin = np.cos(angles)[:, None], np.sin(angles)[:, None]
    inv1, inv2 = 1.0 / sigmas[:, 0, None] ** 2, 1.0 / sigmas[:, 1, None] ** 2
    dx = np.arange(w) + 0.5 - centres[:, 0, None]  # (M, W)
    dy = np.arange(h) + 0.5 - centres[:, 1, None]  # (M, H)
    col = (-0.5 * (cos ** 2 * inv1 + sin ** 2 * inv2) * dx ** 2).astype(f32)
    row = (np.log(peaks)[:, None] - 0.5 * (sin ** 2 * inv1 + cos ** 2 * inv2) * dy ** 2).astype(f32)
    cross = (-(cos * sin) * (inv1 - inv2) * dx).astype(f32)
    blobs = row[:, :, None] + col[:, None, :]
    blobs += dy.astype(f32)[:, :, None] * cross[:, None, :]
    np.exp(blobs, out=blobs)
    images = np.zeros((n, h, w), f32)
    if owner.size:
        starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
        images[owner[starts]] = np.add.reduceat(blobs, starts, axis=0)
    return images


def simulate_two_populations(rng: np.random.Generator, params: np.ndarray) -> np.ndarray:
    """Images of a few objects each, drawn from two populations: round blobs and streaks.

    Each image holds ``1 + Poisson(4)`` objects (at most 10), centres uniform in [4, 28) px.
    Each object is a round Gaussian blob (sigma ``size``) with probability ``round_fraction``,
    else a streak: an elliptical Gaussian of sigma ``size`` across and
    ``sqrt(size^2 + streak_length^2 / 12)`` along (the second moment of a segment of that
    length), at a uniform random angle. Peaks are ``brightness * lognormal(0, 0.2)``; every
    pixel gets ``0.1 * N(0, 1)`` noise. With ~5 objects an image shows the mixing fraction to
    about +-0.2; a thousand images to about +-0.01.

    Args:
      rng: the source of all randomness.
      params: (N, 4) physical values: ``round_fraction`` (probability), ``size`` (px),
        ``brightness`` (peak units), ``streak_length`` (px).
    Returns:
      (N, 32, 32, 1) float32 images, values of order 0-3.
    """
    params = np.asarray(params, dtype=np.float64)
    n, k, (h, w) = params.shape[0], MAX_OBJECTS, IMAGE_SHAPE[:2]
    frac, size, bright, length = (params[:, j, None] for j in range(4))
    present = np.arange(k)[None, :] < np.minimum(1 + rng.poisson(OBJECTS_MEAN, n), k)[:, None]
    is_round = rng.random((n, k)) < frac
    centres = rng.uniform(OBJECT_MARGIN, w - OBJECT_MARGIN, (n, k, 2))
    angles = rng.uniform(0.0, np.pi, (n, k))
    peaks = bright * np.exp(BRIGHTNESS_JITTER * rng.standard_normal((n, k)))
    along = np.where(is_round, size, np.sqrt(size ** 2 + length ** 2 / 12.0))
    sigmas = np.stack([along, np.broadcast_to(size, (n, k))], axis=-1)
    noise = OBJECT_NOISE * rng.standard_normal((n, h, w), dtype=np.float32)
    owner, slot = np.nonzero(present)  # row-major: owners ascending
    for lo in range(0, n, RENDER_CHUNK):  # chunks of images keep the (M, H, W) work in cache
        i = slice(*np.searchsorted(owner, [lo, lo + RENDER_CHUNK]))
        o, j = owner[i], slot[i]
        noise[lo:lo + RENDER_CHUNK] += render_objects(
            o - lo, centres[o, j], sigmas[o, j], angles[o, j], peaks[o, j],
            min(RENDER_CHUNK, n - lo))
    return noise[..., None]


def random_field_simulator() -> FunctionSimulator:
    """:func:`simulate_random_field` as a host simulator."""
    return FunctionSimulator(simulate_random_field, IMAGE_SHAPE, name="random-field")


def poisson_hits_simulator() -> FunctionSimulator:
    """:func:`simulate_poisson_hits` as a host simulator."""
    return FunctionSimulator(simulate_poisson_hits, IMAGE_SHAPE, name="poisson-hits")


def two_populations_simulator() -> FunctionSimulator:
    """:func:`simulate_two_populations` as a host simulator."""
    return FunctionSimulator(simulate_two_populations, IMAGE_SHAPE, name="two-populations")


@dataclass(frozen=True, eq=False)
class Benchmark:
    """One benchmark: a simulator, its space and where to fit it.

    Attributes:
      name: the key in :data:`BENCHMARKS`.
      simulator: a factory: ``simulator()`` returns the :class:`~magan.FunctionSimulator`.
      space: the :class:`~magan.ParameterSpace` (physical units).
      truths: (5, P) truth points in physical units: rows 0-2 inside the box, rows 3-4 with
        parameters within 5-10 % of a bound.
      description: one line.
    """

    name: str
    simulator: Callable[[], FunctionSimulator]
    space: ParameterSpace
    truths: np.ndarray
    description: str

    def target_rng(self, k: int, seed: int = 0) -> np.random.Generator:
        """The random stream of truth ``k``'s target set, ``(seed, crc32(name), k)``: every
        script that fits or reads the benchmark's targets draws the very same images."""
        return np.random.default_rng([seed, zlib.crc32(self.name.encode()), k])

    def targets(self, k: int, n: int, seed: int = 0) -> np.ndarray:
        """``n`` target images (n, 32, 32, 1) simulated at truth ``k`` from :meth:`target_rng`."""
        return self.simulator().simulate(self.target_rng(k, seed), np.tile(self.truths[k], (n, 1)),
                                         self.space)


BENCHMARKS: dict[str, Benchmark] = {b.name: b for b in (
    Benchmark("random_field", random_field_simulator, RANDOM_FIELD_SPACE, np.array([
        [0.2, 2.0, 0.0, 1.0],
        [0.6, 1.2, 0.4, 0.6],
        [-0.1, 2.8, -0.5, 1.5],
        [-0.4, 3.3, 0.9, 0.4],  # amplitude, slope, mean, smoothing near bounds
        [0.9, 0.7, -0.9, 1.9],  # ... the other bounds
    ]), "Gaussian random field, P(k) = A (k/0.1)^-slope, smoothed; a texture with no object"),
    Benchmark("poisson_hits", poisson_hits_simulator, POISSON_HITS_SPACE, np.array([
        [30.0, 16.0, 16.0, 2.5],
        [15.0, 13.0, 18.0, 1.8],
        [45.0, 19.0, 14.0, 3.2],
        [8.0, 10.8, 21.3, 1.2],  # rate, x, y, width near bounds
        [57.0, 21.2, 10.7, 3.8],  # ... the other bounds
    ]), "Poisson(rate) single-pixel hits from a 2-D Gaussian blob; sparse integer counts"),
    Benchmark("two_populations", two_populations_simulator, TWO_POPULATIONS_SPACE, np.array([
        [0.5, 1.2, 1.2, 9.0],
        [0.3, 0.9, 1.6, 6.0],
        [0.7, 1.5, 0.8, 12.0],
        [0.15, 0.77, 1.9, 4.6],  # fraction, size, brightness, length near bounds
        [0.85, 1.72, 0.6, 13.4],  # ... the other bounds
    ]), "1 + Poisson(4) objects per image, round blobs (fraction f) or streaks; pixel noise"),
)}
