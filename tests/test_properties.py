"""Property tests (hypothesis): parameter spaces, data readers and CLI argument parsing hold for
any valid input and refuse invalid input with a ValueError, never another exception."""

import string

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from magan.cli import build_parser
from magan.runtime.io import load_array, read_calochallenge, write_calochallenge
from magan.space import ParameterSpace

SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])
names = st.text(string.ascii_lowercase + "_", min_size=1, max_size=8)


@st.composite
def spaces(draw):
    keys = draw(st.lists(names, min_size=1, max_size=5, unique=True))
    bounds = {}
    for k in keys:
        log = draw(st.booleans())
        lo = draw(st.floats(1e-3, 1e3) if log else st.floats(-1e4, 1e4))
        width = draw(st.floats(1e-3, 1e4))
        bounds[k] = (lo, lo + width, "u", "log") if log else (lo, lo + width)
    return ParameterSpace(bounds)


@SETTINGS
@given(spaces(), st.data())
def test_unit_cube_round_trip_and_bounds(space, data):
    u = data.draw(hnp.arrays(np.float64, (3, space.dim), elements=st.floats(0, 1)))
    x = space.from_unit(u)
    assert np.all(x >= space.low) and np.all(x <= space.high)  # never outside by rounding
    np.testing.assert_allclose(space.to_unit(x), u, atol=1e-6)
    assert ParameterSpace.from_dict(space.to_dict()) == space


@SETTINGS
@given(spaces(), st.data())
def test_parse_format_round_trip_and_out_of_bounds_named(space, data):
    u = data.draw(hnp.arrays(np.float64, (space.dim,), elements=st.floats(0, 1)))
    x = space.check(space.from_unit(u))[0]
    back = space.parse(space.format(x))
    np.testing.assert_array_equal(back, x)  # exact: format writes round-trip decimals
    j = data.draw(st.integers(0, space.dim - 1))
    bad = x.copy()
    bad[j] = space.high[j] + space.width[j] + 1.0
    with pytest.raises(ValueError, match=repr(space.names[j])):
        space.check(bad)


@SETTINGS
@given(spaces(), st.text(max_size=40))
def test_parse_refuses_garbage_with_a_value_error(space, text):
    try:
        space.parse(text)
    except ValueError:
        pass  # the only acceptable failure


shapes = st.tuples(st.integers(1, 4), st.integers(4, 9), st.integers(4, 9), st.integers(1, 3))


@SETTINGS
@given(hnp.arrays(np.float32, shapes, elements=st.floats(-1e6, 1e6, width=32)),
       st.sampled_from(["npy", "npz", "h5"]))
def test_load_array_round_trips(tmp_path_factory, arr, kind):
    d = tmp_path_factory.mktemp("io")
    if kind == "npy":
        np.save(d / "a.npy", arr)
        spec = str(d / "a.npy")
    elif kind == "npz":
        np.savez(d / "a.npz", images=arr, other=np.zeros(2))
        spec = f"{d / 'a.npz'}:images"
    else:
        import h5py

        with h5py.File(d / "a.h5", "w") as f:
            f.create_dataset("x/images", data=arr)
        spec = f"{d / 'a.h5'}:x/images"
    np.testing.assert_array_equal(load_array(spec), arr)


@SETTINGS
@given(st.integers(1, 5), st.tuples(st.integers(4, 6), st.integers(4, 6), st.integers(1, 4)),
       st.data())
def test_calochallenge_round_trip(tmp_path_factory, n, shape, data):
    showers = data.draw(hnp.arrays(np.float32, (n, *shape), elements=st.floats(0, 1e4, width=32)))
    energies = data.draw(hnp.arrays(np.float64, (n,), elements=st.floats(1e3, 1e6)))
    path = tmp_path_factory.mktemp("calo") / "s.h5"
    write_calochallenge(path, showers, energies)
    back, e = read_calochallenge(path, shape)
    np.testing.assert_array_equal(back, showers)
    np.testing.assert_allclose(e.ravel(), energies)


@SETTINGS
@given(st.integers(0, 2**31 - 1), st.sampled_from(["tiny", "default", "gpu"]),
       st.text(string.ascii_letters + string.digits + "/_.-", min_size=1, max_size=20)
       .filter(lambda t: not t.startswith("-")))  # argparse reads a leading '-' as an option
def test_cli_parses_what_it_documents(seed, preset, out):
    a = build_parser().parse_args(["study", "line", "--seed", str(seed), "--preset", preset,
                                   "--out", out])
    assert (a.seed, a.preset, a.out, a.quiet) == (seed, preset, out, False)
    v = build_parser().parse_args(["validate", "--emulator", out, "--out", out,
                                   "--calibration-truths", "3"])
    assert v.calibration_truths == 3 and v.simulator is None
