"""Emulator.sample(params, n=...) repeats one point n times; a parameter vector (P,) is one point
everywhere, and never reaches a user's simulator as a 1-D array. The emulator here is untrained
(freshly initialised weights): only shapes and errors are checked."""

import numpy as np
import pytest

import magan
from magan.studies.line.simulator import LINE_SPACE


@pytest.fixture(scope="module")
def emu():
    from magan.nn.build import build_emulator_nets
    from magan.pretraining.state import network_sizes

    net = network_sizes(magan.PRETRAIN_PRESETS["tiny"])
    ge, pe, gs, ps = build_emulator_nets(LINE_SPACE.dim, (28, 28, 1), net, 0)
    return magan.Emulator(LINE_SPACE, (28, 28, 1), net, pe, ps, graphdefs=(ge, gs))


def test_sample_n_repeats_one_point(emu):
    point = LINE_SPACE.center()
    a = emu.sample(point, n=5, seed=3)
    assert a.shape == (5, 28, 28, 1) and a.dtype == np.float32
    np.testing.assert_array_equal(a, emu.sample(point[None, :], n=5, seed=3))
    np.testing.assert_array_equal(a, emu.sample(np.tile(point, (5, 1)), seed=3))
    assert emu.sample(point, n=np.int64(2)).shape[0] == 2
    assert emu.sample(point).shape == (1, 28, 28, 1)


@pytest.mark.parametrize("n, error, match", [
    (0, ValueError, "n = 0; ask for at least one image"),
    (-3, ValueError, "n = -3"),
    (2.5, TypeError, "n must be a whole number of images, got 2.5 \\(float\\)"),
    ("10", TypeError, "got '10' \\(str\\)"),
    (True, TypeError, "got True"),
])
def test_sample_n_refuses_bad_counts(emu, n, error, match):
    with pytest.raises(error, match=match):
        emu.sample(LINE_SPACE.center(), n=n)


def test_sample_n_refuses_several_points(emu):
    with pytest.raises(ValueError, match="n=4 repeats one parameter point, but params has 2 rows"):
        emu.sample(np.tile(LINE_SPACE.center(), (2, 1)), n=4)


def _recording_simulator(kind):
    seen = []

    def fn(rng_or_key, params):
        seen.append(np.shape(params))
        return np.zeros((params.shape[0], 8, 8, 1), np.float32)

    if kind == "jax":
        import jax.numpy as jnp

        def jfn(key, params):
            seen.append(np.shape(params))
            return jnp.zeros((params.shape[0], 8, 8, 1), jnp.float32)

        return magan.JaxSimulator(jfn, (8, 8)), seen
    return magan.FunctionSimulator(fn, (8, 8)), seen


@pytest.mark.parametrize("kind", ["numpy", "jax"])
def test_a_parameter_vector_reaches_the_simulator_as_one_row(kind):
    sim, seen = _recording_simulator(kind)
    out = sim.simulate(np.random.default_rng(0), LINE_SPACE.center(), LINE_SPACE)
    assert out.shape == (1, 8, 8, 1) and seen == [(1, 4)]
    with pytest.raises(ValueError, match=r"params must have shape \(N, 4\).*got \(3,\)"):
        sim.simulate(np.random.default_rng(0), np.zeros(3), LINE_SPACE)


def test_bank_simulator_takes_a_parameter_vector():
    rng = np.random.default_rng(0)
    params = np.repeat(LINE_SPACE.sample(rng, 3), 2, axis=0)  # pairs at each point
    bank = magan.BankSimulator(params, rng.random((6, 28, 28, 1)).astype(np.float32), LINE_SPACE)
    assert bank.simulate(rng, params[2]).shape == (1, 28, 28, 1)
