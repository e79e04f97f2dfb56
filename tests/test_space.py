import numpy as np
import pytest

from magan import ParameterSpace

SPACE = ParameterSpace({"m": (-1.0, 1.0), "c": (4.0, 24.0, "px")})


def test_unit_round_trip_and_order():
    x = np.array([[0.0, 14.0], [-1.0, 4.0], [1.0, 24.0]])
    u = SPACE.to_unit(x)
    np.testing.assert_allclose(u, [[0.5, 0.5], [0.0, 0.0], [1.0, 1.0]])
    np.testing.assert_allclose(SPACE.from_unit(u), x)
    assert SPACE.names == ("m", "c") and SPACE.dim == 2
    assert SPACE.parameters[1].unit == "px"


def test_sample_inside_and_reproducible():
    a = SPACE.sample(np.random.default_rng(3), 1000)
    b = SPACE.sample(np.random.default_rng(3), 1000)
    np.testing.assert_array_equal(a, b)
    assert (a >= SPACE.low).all() and (a <= SPACE.high).all()
    # uniform: each half of each axis gets about half of the points
    frac = (SPACE.to_unit(a) < 0.5).mean(axis=0)
    assert np.all(np.abs(frac - 0.5) < 0.06)


@pytest.mark.parametrize("bad, words", [
    ([[0.0, 30.0]], ["'c'", "30", "[4, 24]"]),
    ([[-1.5, 10.0]], ["'m'", "-1.5", "[-1, 1]"]),
    ([[np.nan, 10.0]], ["'m'", "nan", "finite"]),
    ([[0.0, np.inf]], ["'c'", "inf"]),
    ([[0.0, 1.0, 2.0]], ["shape", "(N, 2)"]),
])
def test_check_names_the_bad_value(bad, words):
    with pytest.raises(ValueError) as err:
        SPACE.to_unit(bad)
    for w in words:
        assert w in str(err.value)


@pytest.mark.parametrize("bounds, word", [
    ({}, "non-empty"),
    ({"a": (1.0, 0.0)}, "low < high"),
    ({"a": (0.0, float("inf"))}, "finite"),
    ({"a b": (0.0, 1.0)}, "identifier"),
    ({"a": (0.0,)}, "(low, high)"),
])
def test_bad_bounds_are_refused(bounds, word):
    with pytest.raises(ValueError, match=None) as err:
        ParameterSpace(bounds)
    assert word in str(err.value)


def test_parse_and_format():
    v = SPACE.parse("c=12, m=-0.25")
    np.testing.assert_allclose(v, [-0.25, 12.0])
    assert np.allclose(SPACE.parse(SPACE.format(v)), v)
    with pytest.raises(ValueError, match="missing parameter"):
        SPACE.parse("m=0.1")
    with pytest.raises(ValueError, match="unknown parameter 'q'"):
        SPACE.parse("m=0.1,c=5,q=1")
    with pytest.raises(ValueError, match="not a number"):
        SPACE.parse("m=abc,c=5")
    with pytest.raises(ValueError, match="outside its bounds"):
        SPACE.parse("m=0.1,c=50")


def test_dict_round_trip():
    assert ParameterSpace.from_dict(SPACE.to_dict()) == SPACE


@pytest.mark.parametrize("bounds, message", [
    ({"a": ("zero", 1.0)}, r"Parameter 'a': bounds must be numbers, got low='zero'"),
    ({"a": (None, 1.0)}, r"Parameter 'a': bounds must be numbers"),
    ({"a": (-1.7e308, 1.7e308)}, r"Parameter 'a': the range .* cannot be mapped"),
    ({"a": (1e20, 1e20 + 1e4)}, r"Parameter 'a': the range .* cannot be mapped"),
])
def test_bounds_that_cannot_be_mapped_are_refused_by_name(bounds, message):
    with pytest.raises(ValueError, match=message):
        ParameterSpace(bounds)
