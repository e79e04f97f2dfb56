"""bias_reference="around": several reference sets around the fit give the bias and the total
covariance; the parts add up."""

import numpy as np
import pytest

import magan
import magan.fitting.diagnostics  # noqa: F401
from magan.config import replace
from magan.studies.line.simulator import LINE_SPACE, line_simulator


def test_reference_sets_around_the_fit(tiny_line_emulator):
    sim = line_simulator()
    targets = sim.simulate(np.random.default_rng(1), np.tile([0.2, 12.0, 4.0, 9.0], (64, 1)),
                           LINE_SPACE)
    # the tiny preset otherwise: its first pass compiles to the programs other tests compiled
    cfg = replace(magan.FIT_PRESETS["tiny"], bias_reference="around", reference_sets=4)
    with pytest.warns(magan.fitting.diagnostics.FitWarning):  # a tiny emulator fits poorly
        res = magan.fit(tiny_line_emulator, targets, cfg, simulator=sim, progress=False)
    k, p = 4, LINE_SPACE.dim
    assert np.shape(res.reference_at) == (k, p)
    assert np.allclose(res.reference_at[0], np.clip(res.raw_mean, LINE_SPACE.low,
                                                     LINE_SPACE.high))  # the first at the fit
    assert res.covariance.shape == (p, p)
    assert np.allclose(res.covariance, res.covariance.T)
    assert np.allclose(res.std, np.sqrt(np.diag(res.covariance)))
    assert np.allclose(res.syst_std ** 2, np.maximum(res.std ** 2 - res.stat_std ** 2, 0))
    assert np.allclose(res.mean, res.raw_mean - res.bias)
    # what each reference fit found: their errors' mean is the bias
    assert np.shape(res.reference_means) == (k, p)
    assert np.allclose(res.bias, (res.reference_means - res.reference_at).mean(axis=0))
    d = res.to_dict()
    assert len(d["reference_at"]) == k and set(d["syst_std"]) == set(LINE_SPACE.names)
    assert np.allclose(d["reference_means"], res.reference_means)
    assert "uncertainty_is_statistical" not in res.warnings
    # the follows_truth check regresses what the reference fits found on where they were made
    follows = next(d for d in res.diagnostics if d.name == "follows_truth")
    slopes = magan.fitting.diagnostics.response_slopes(LINE_SPACE.to_unit(res.reference_at),
                                                       LINE_SPACE.to_unit(res.reference_means))[0]
    got = [follows.numbers[n]["slope"] for n in LINE_SPACE.names]
    assert follows.status in ("ok", "warn") and np.allclose(got, slopes, equal_nan=True)
