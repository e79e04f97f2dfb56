"""The validation metrics that come from SciPy equal their definitions, computed by brute force
on small samples with ties."""

import numpy as np
import pytest

from magan.validation.coverage import prdc
from magan.validation.distances import frechet_distance, ks_distance, wasserstein_1
from magan.validation.two_sample import auc_score


def _samples(seed: int):
    rng = np.random.default_rng(seed)
    n, m = rng.integers(1, 40, 2)
    a, b = rng.normal(size=n), 1.5 * rng.normal(size=m) + 0.3
    return (np.round(a, 1), np.round(b, 1)) if seed % 2 else (a, b)  # odd seeds: ties


def _ecdf(sample, x):
    return (np.asarray(sample)[None, :] <= np.asarray(x)[:, None]).mean(axis=1)


@pytest.mark.parametrize("seed", range(8))
def test_ks_and_wasserstein_equal_their_definitions(seed):
    a, b = _samples(seed)
    x = np.sort(np.concatenate([a, b]))
    gap = np.abs(_ecdf(a, x) - _ecdf(b, x))  # the ECDFs are steps: their largest gap is at a point
    assert ks_distance(a, b) == pytest.approx(gap.max(), abs=1e-15)
    assert wasserstein_1(a, b) == pytest.approx(np.sum(gap[:-1] * np.diff(x)), rel=1e-12)


@pytest.mark.parametrize("seed", range(8))
def test_auc_is_the_share_of_pairs_ranked_right_ties_half(seed):
    neg, pos = _samples(seed)
    pairs = pos[:, None] - neg[None, :]
    assert auc_score(neg, pos) == pytest.approx(np.mean((pairs > 0) + 0.5 * (pairs == 0)),
                                                abs=1e-15)
    with pytest.raises(ValueError, match="both classes"):
        auc_score([], pos)


def test_prdc_equals_its_definition():
    """Naeem et al.'s definitions, one pair of samples at a time (distances by np.linalg.norm)."""
    rng = np.random.default_rng(0)
    real, fake, k = rng.normal(size=(30, 3)), rng.normal(size=(25, 3)) + 0.3, 4
    d_rr = np.array([[np.linalg.norm(x - y) for y in real] for x in real])
    d_ff = np.array([[np.linalg.norm(x - y) for y in fake] for x in fake])
    d_rf = np.array([[np.linalg.norm(x - y) for y in fake] for x in real])
    r_rad, f_rad = np.sort(d_rr, axis=1)[:, k], np.sort(d_ff, axis=1)[:, k]
    out = prdc(real, fake, k=k)
    assert out["precision"] == np.mean([(d_rf[:, j] < r_rad).any() for j in range(25)])
    assert out["recall"] == np.mean([(d_rf[i] < f_rad).any() for i in range(30)])
    assert out["density"] == pytest.approx((d_rf < r_rad[:, None]).sum() / (25 * k))
    assert out["coverage"] == np.mean(d_rf.min(axis=1) < r_rad)


def test_frechet_distance_is_zero_for_one_rank_deficient_sample():
    """More features than rows: the covariance is singular; the distance of a sample to itself is
    still 0 (the reason magan keeps its own matrix square root)."""
    a = np.random.default_rng(1).normal(size=(50, 64))
    assert frechet_distance(a, a.copy()) == pytest.approx(0.0, abs=1e-9)
