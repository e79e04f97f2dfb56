"""S's learned summaries in the fit's feature matching (magan.fitting.features)."""

import jax.numpy as jnp
import numpy as np
import pytest

import magan
from magan.fitting.features import LearnedSummaries, feature_data, standardised
from magan.studies.line.simulator import LINE_SPACE, line_simulator


@pytest.fixture(scope="module")
def targets():
    return line_simulator().simulate(np.random.default_rng(3),
                                     np.tile([0.2, 12.0, 4.0, 9.0], (96, 1)), LINE_SPACE)


def test_learned_summaries_are_s_regression_logits(tiny_line_emulator, targets):
    emu = tiny_line_emulator
    summaries = LearnedSummaries(emu.graphdef_s)
    x = jnp.asarray(emu.to_network(targets))
    cond_unit = np.zeros((len(targets), 0), np.float32)
    fdata = feature_data(emu, x, None, cond_unit, len(targets), summaries)
    logits = np.asarray(summaries(x, fdata, jnp.arange(len(targets))))
    # the sigmoid of the summaries is S's estimate, in the unit cube
    np.testing.assert_allclose(1 / (1 + np.exp(-logits)),
                               LINE_SPACE.to_unit(emu.estimate(targets)), atol=1e-5)
    # standardised by the targets' own spread: mean 0 and unit std per parameter
    z = np.asarray(standardised(summaries, x, fdata, jnp.arange(len(targets))))
    np.testing.assert_allclose(z.mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(z.std(axis=0, ddof=1), 1.0, rtol=0.02)


def test_fit_without_features_matches_learned_summaries(tiny_line_emulator, targets):
    cfg = magan.config.replace(magan.FIT_PRESETS["tiny"], steps=20, feature_weight=10.0)
    res = magan.fit(tiny_line_emulator, targets, cfg, seed=1)
    dist = [row["feature_distance"] for row in res.history]
    assert np.isfinite(dist).all() and min(dist) > 0
    off = magan.fit(tiny_line_emulator, targets, magan.config.replace(cfg, feature_weight=0.0),
                    seed=1)
    assert "feature_distance" not in off.history[-1]
    assert not np.array_equal(off.samples, res.samples)
