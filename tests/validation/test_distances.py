"""One-dimensional distances with known answers."""

import numpy as np
import pytest

from magan.validation.distances import ks_distance, separation_power, wasserstein_1


def test_separation_power_known_values():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=5000), rng.normal(size=5000)
    assert separation_power(a, b) < 0.01  # finite-sample floor ~ bins / (2 N) = 0.003
    # a shift of d sigma gives about d^2 / 4 for small d
    assert separation_power(a, b + 0.4) == pytest.approx(0.04, abs=0.015)
    assert separation_power(a, a + 100.0) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="NaN or inf"):
        separation_power(a, np.array([np.nan]))


def test_ks_and_wasserstein_known_values():
    a = np.array([0.0, 1.0, 2.0, 3.0])
    assert ks_distance(a, a) == 0.0 and wasserstein_1(a, a) == 0.0
    assert wasserstein_1(a, a + 0.5) == pytest.approx(0.5)  # a shift moves every unit of mass
    assert ks_distance(a, a + 10.0) == 1.0
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=4000), rng.normal(size=4000)
    assert ks_distance(x, y) < 1.36 * np.sqrt(2 / 4000)  # the 95 % KS critical value
    assert wasserstein_1(x, 2.0 * y) == pytest.approx(np.sqrt(2 / np.pi), rel=0.1)  # E|N|(2-1)
    with pytest.raises(ValueError, match="non-empty"):
        ks_distance([], a)
