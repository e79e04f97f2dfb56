"""The benchmark simulators: shapes, dtype, determinism, truths in the box, and every parameter
moving a simple statistic of the images the way its docstring says (no training here)."""

import numpy as np
import pytest

from magan.benchmarks import BENCHMARKS, Benchmark
from magan.benchmarks.simulators import IMAGE_SHAPE, wavenumbers

N = 300  # images per point of the direction tests


def _radial_power(images) -> tuple[np.ndarray, np.ndarray]:
    """Mean power per |k| bin of (N, 32, 32, 1) images: (bin centres in cycles/px, power)."""
    power = (np.abs(np.fft.rfft2(images[..., 0] - images.mean(axis=(1, 2, 3))[:, None, None]))
             ** 2).mean(0)
    k = wavenumbers(IMAGE_SHAPE[0])
    edges = np.linspace(0.03, 0.5, 16)
    idx = np.digitize(k, edges)
    centres, values = [], []
    for b in range(1, len(edges)):
        sel = idx == b
        if sel.any():
            centres.append(k[sel].mean())
            values.append(power[sel].mean())
    return np.array(centres), np.array(values)


def _spectral_slope(images) -> float:
    """-d log P / d log k over 0.04-0.2 cycles/px (where the smoothing cut-off barely acts)."""
    k, p = _radial_power(images)
    sel = (k > 0.04) & (k < 0.2)
    return -np.polyfit(np.log(k[sel]), np.log(p[sel]), 1)[0]


def _high_k_fraction(images) -> float:
    """Power above 0.3 cycles/px over power below 0.1 cycles/px."""
    k, p = _radial_power(images)
    return p[k > 0.3].sum() / p[k < 0.1].sum()


def _centroid(images, axis) -> float:
    """Mean count-weighted pixel-centre coordinate: axis 2 = x (columns), axis 1 = y (rows)."""
    coord = np.arange(images.shape[axis]) + 0.5
    marginal = images[..., 0].sum(axis=3 - axis)  # (N, 32)
    return float((marginal * coord).sum() / marginal.sum())


def _rms_radius(images) -> float:
    """Count-weighted RMS distance of the hits from their common centroid, px."""
    img = images[..., 0]
    y, x = np.meshgrid(np.arange(32) + 0.5, np.arange(32) + 0.5, indexing="ij")
    tot = img.sum()
    xc, yc = (img * x).sum() / tot, (img * y).sum() / tot
    return float(np.sqrt((img * ((x - xc) ** 2 + (y - yc) ** 2)).sum() / tot))


# (benchmark, parameter) -> (statistic of N images, +1 if it rises with the parameter else -1)
DIRECTIONS = {
    ("random_field", "log10_amplitude"): (lambda im: im.std(axis=(1, 2, 3)).mean(), +1),
    ("random_field", "slope"): (_spectral_slope, +1),
    ("random_field", "mean"): (lambda im: im.mean(), +1),
    ("random_field", "smoothing"): (_high_k_fraction, -1),
    ("poisson_hits", "rate"): (lambda im: im.sum(axis=(1, 2, 3)).mean(), +1),
    ("poisson_hits", "x"): (lambda im: _centroid(im, 2), +1),
    ("poisson_hits", "y"): (lambda im: _centroid(im, 1), +1),
    ("poisson_hits", "width"): (_rms_radius, +1),
    # streaks carry more flux than round blobs of the same size and peak
    ("two_populations", "round_fraction"): (lambda im: im.sum(axis=(1, 2, 3)).mean(), -1),
    ("two_populations", "size"): (lambda im: im.sum(axis=(1, 2, 3)).mean(), +1),
    ("two_populations", "brightness"): (lambda im: im.max(axis=(1, 2, 3)).mean(), +1),
    ("two_populations", "streak_length"): (lambda im: im.sum(axis=(1, 2, 3)).mean(), +1),
}


def _simulate(bench: Benchmark, params, seed: int = 0) -> np.ndarray:
    return bench.simulator().simulate(np.random.default_rng(seed), params, bench.space)


@pytest.mark.parametrize("name", sorted(BENCHMARKS))
def test_images_have_the_promised_shape_dtype_and_scale(name):
    bench = BENCHMARKS[name]
    params = bench.space.sample(np.random.default_rng(1), 64)
    images = _simulate(bench, params)
    assert images.shape == (64,) + IMAGE_SHAPE
    assert images.dtype == np.float32
    assert np.isfinite(images).all()
    assert 0.01 < images.std() < 10.0 and np.abs(images).max() < 100.0
    extremes = np.array([bench.space.low, bench.space.high])  # the box's two corners
    assert np.isfinite(_simulate(bench, extremes)).all()


@pytest.mark.parametrize("name", sorted(BENCHMARKS))
def test_the_rng_is_the_only_source_of_randomness(name):
    bench = BENCHMARKS[name]
    params = np.tile(bench.truths[0], (16, 1))
    first, again = _simulate(bench, params, seed=3), _simulate(bench, params, seed=3)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, _simulate(bench, params, seed=4))
    assert not np.array_equal(first[0], first[1])  # images of one call differ


def test_poisson_hits_are_integer_counts():
    bench = BENCHMARKS["poisson_hits"]
    images = _simulate(bench, np.tile(bench.truths[0], (50, 1)))
    assert (images >= 0).all() and np.array_equal(images, np.round(images))
    assert (images == 0).mean() > 0.9  # sparse


@pytest.mark.parametrize("key", sorted(DIRECTIONS), ids=lambda k: f"{k[0]}-{k[1]}")
def test_each_parameter_moves_its_statistic(key):
    name, param = key
    bench = BENCHMARKS[name]
    statistic, sign = DIRECTIONS[key]
    j = bench.space.names.index(param)
    base = bench.space.center()
    if name == "random_field" and param == "slope":
        base[bench.space.names.index("smoothing")] = bench.space.low[-1]
    values = []
    for fraction in (0.2, 0.8):
        point = base.copy()
        point[j] = bench.space.low[j] + fraction * bench.space.width[j]
        values.append(statistic(_simulate(bench, np.tile(point, (N, 1)), seed=7)))
    low, high = values
    assert sign * (high - low) > 0.1 * abs(low) + 1e-6, (param, low, high)


def test_every_parameter_has_a_direction_test():
    assert set(DIRECTIONS) == {(n, p) for n, b in BENCHMARKS.items() for p in b.space.names}


def test_spectral_slope_is_measured_near_the_slope_parameter():
    bench = BENCHMARKS["random_field"]
    point = np.array([0.0, 2.5, 0.0, 0.3])
    slope = _spectral_slope(_simulate(bench, np.tile(point, (N, 1))))
    assert 2.0 < slope < 3.0, slope


@pytest.mark.parametrize("name", sorted(BENCHMARKS))
def test_truths_three_inside_two_near_a_bound(name):
    bench = BENCHMARKS[name]
    assert bench.name == name and bench.description and "\n" not in bench.description
    assert bench.truths.shape == (5, bench.space.dim) and 3 <= bench.space.dim <= 5
    bench.space.check(bench.truths)
    margin = np.minimum(bench.truths - bench.space.low, bench.space.high - bench.truths)
    margin = margin / bench.space.width
    assert (margin[:3] >= 0.15).all(), margin[:3]
    assert ((margin[3:] >= 0.04) & (margin[3:] <= 0.10)).all(), margin[3:]
    assert all(p.unit for p in bench.space.parameters)
