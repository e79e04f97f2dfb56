import jax
import numpy as np
import pytest

from magan import FunctionSimulator, SimulatorError
from magan.studies.line.simulator import (
    LINE_FEATURES,
    LINE_SPACE,
    line_features,
    line_jax_simulator,
    line_simulator,
    render_lines,
)


def test_function_simulator_checks_shape():
    sim = FunctionSimulator(lambda rng, p: np.zeros((len(p), 5, 5)), (6, 6))
    with pytest.raises(SimulatorError, match=r"shape \(2, 5, 5\).*expected \(2, 6, 6, 1\)"):
        sim.simulate(np.random.default_rng(0), np.zeros((2, 4)))


def test_function_simulator_names_parameters_of_nan():
    def fn(rng, p):
        out = np.zeros((len(p), 6, 6, 1))
        out[p[:, 0] > 0.3] = np.nan
        return out

    sim = FunctionSimulator(fn, (6, 6, 1), name="mysim")
    params = LINE_SPACE.from_unit(np.array([[0.1] * 4, [0.9, 0.2, 0.2, 0.2]]))
    with pytest.raises(SimulatorError) as err:
        sim.simulate(np.random.default_rng(0), params, LINE_SPACE)
    msg = str(err.value)
    assert "mysim" in msg and "NaN" in msg and "image 1" in msg and "m=0.4" in msg


def test_function_simulator_refuses_non_numeric():
    sim = FunctionSimulator(lambda rng, p: np.full((len(p), 6, 6, 1), "a"), (6, 6, 1))
    with pytest.raises(SimulatorError, match="dtype"):
        sim.simulate(np.random.default_rng(0), np.zeros((1, 2)))


def test_bad_image_shape():
    with pytest.raises(ValueError, match="image_shape"):
        FunctionSimulator(lambda r, p: p, (28,))


def test_line_simulator_is_reproducible_and_random():
    sim = line_simulator()
    p = np.tile(LINE_SPACE.center(), (4, 1))
    a = sim.simulate(np.random.default_rng(1), p)
    b = sim.simulate(np.random.default_rng(1), p)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (4, 28, 28, 1) and a.dtype == np.float32
    assert np.std(a[0] - a[1]) > 0.02  # noise differs image to image


def test_lines_stay_inside_the_image():
    # corners of the box: every line's full length is drawn inside the image
    corners = np.array(np.meshgrid(*[[lo, hi] for lo, hi in zip(LINE_SPACE.low, LINE_SPACE.high)]))
    corners = corners.reshape(4, -1).T
    clean = render_lines(np, corners.astype(np.float32), np.ones(len(corners)),
                         np.zeros((len(corners), 28, 28)))
    expected = np.sqrt(2 * np.pi) * 0.6 * np.sqrt(1 + corners[:, 0] ** 2) * corners[:, 3]
    # the line's centre stays >= 1.25 px from the edges; at most the far Gaussian tail is cut
    np.testing.assert_allclose(clean.sum(axis=(1, 2, 3)), expected, rtol=0.04)


def test_line_features_recover_parameters():
    rng = np.random.default_rng(0)
    p = LINE_SPACE.sample(rng, 200)
    f = line_features(line_simulator().simulate(rng, p))
    col = {n: f[:, i] for i, n in enumerate(LINE_FEATURES)}
    assert np.abs(col["slope"] - p[:, 0]).mean() < 0.03
    assert np.abs(col["height"] - p[:, 1]).mean() < 0.2
    assert np.abs(col["x_center"] - (p[:, 2] + p[:, 3] / 2)).mean() < 0.3
    assert np.abs(col["x_length"] - p[:, 3]).mean() < 0.6
    assert np.abs(col["thickness"] - 0.5).mean() < 0.1
    # the jax.numpy version the fit differentiates computes the same features (float32)
    from magan.studies.line.simulator import line_fit_features
    np.testing.assert_allclose(np.asarray(line_fit_features(line_simulator().simulate(
        np.random.default_rng(1), p[:20]))), line_features(line_simulator().simulate(
            np.random.default_rng(1), p[:20])), rtol=1e-4, atol=1e-4)


def test_jax_simulator_matches_numpy_distribution():
    jsim, nsim = line_jax_simulator(), line_simulator()
    p = np.tile([0.2, 12.0, 4.0, 9.0], (256, 1))
    a = jsim.simulate_jax(jax.random.key(0), p.astype(np.float32))
    b = nsim.simulate(np.random.default_rng(0), p)
    assert a.shape == b.shape
    np.testing.assert_allclose(np.asarray(a).mean(0), b.mean(0), atol=0.03)
    np.testing.assert_allclose(np.asarray(a).std(0).mean(), b.std(0).mean(), rtol=0.1)
    # runs inside jit
    out = jax.jit(jsim.simulate_jax)(jax.random.key(1), p[:3].astype(np.float32))
    assert out.shape == (3, 28, 28, 1)
