"""The validation suite's checks, each against a known answer."""

import dataclasses

import numpy as np
import pytest

from magan.validation import rules
from magan.validation.calibration import NOMINAL_COVERAGE, summarise_calibration
from magan.validation.constraints import Constraint, non_negative, total_at_most, violation_rates
from magan.validation.coverage import prdc
from magan.validation.distances import (
    frechet_distance,
    frechet_distance_extrapolated,
    kernel_distance,
)
from magan.validation.memorisation import memorisation_check
from magan.validation.quality import spread_ratios
from magan.validation.two_sample import auc_score, classifier_two_sample_test


def test_auc_score_known_values():
    assert auc_score([0, 1, 2], [3, 4, 5]) == 1.0
    assert auc_score([3, 4, 5], [0, 1, 2]) == 0.0
    assert auc_score([1, 1], [1, 1]) == 0.5  # ties count half


def test_classifier_test_one_distribution_gives_half_and_a_shift_is_detected():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(3000, 6)), rng.normal(size=(3000, 6))
    same = classifier_two_sample_test(a, b, steps=300, seed=0)
    assert abs(same["auc"] - 0.5) < 0.03
    assert abs(same["z_vs_0.5"]) < 3
    # half a sigma in one of six variables; the best possible AUC is Phi(0.5 / sqrt 2) = 0.64
    shifted = classifier_two_sample_test(a, b + np.array([0.5, 0, 0, 0, 0, 0]), steps=300, seed=0)
    assert shifted["auc"] > 0.58 and shifted["z_vs_0.5"] > 5


def test_classifier_test_on_images_with_conditions():
    rng = np.random.default_rng(1)
    c = rng.random((600, 1)).astype(np.float32)
    a = rng.normal(size=(600, 8, 8, 1)).astype(np.float32) + c[:, :, None, None]
    b = rng.normal(size=(600, 8, 8, 1)).astype(np.float32) + 1.5 * c[:, :, None, None]
    res = classifier_two_sample_test(a, b, conditions_a=c, conditions_b=c, steps=200, seed=0)
    assert res["auc"] > 0.6  # the conditional mismatch (b's brightness grows faster with c)
    with pytest.raises(ValueError, match="same sample shape"):
        classifier_two_sample_test(a, b[:, :4], steps=1)


def test_frechet_and_kernel_distance_known_answers():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(2000, 8)), rng.normal(size=(2000, 8))
    fd = frechet_distance_extrapolated(a, b)
    assert fd["fd"] > 0 and abs(fd["fd_inf"]) < 0.02  # raw FD biased up, FD_inf near 0
    kid = kernel_distance(a, b)
    assert abs(kid["kid"]) < 3 * kid["stderr"]
    # a mean shift of 0.2 in each of 8 dimensions: FD = 8 * 0.04 = 0.32; the sample means alone
    # scatter it by 0.4 * sqrt(8 * 2 / 2000) = 0.036
    assert frechet_distance_extrapolated(a, b + 0.2)["fd_inf"] == pytest.approx(0.32, abs=0.09)
    # a scale change: Tr(C_a + C_b - 2 sqrt(C_a C_b)) = 8 (1 + 4 - 4) = 8
    assert frechet_distance(a, 2 * b) == pytest.approx(8.0, rel=0.1)
    shifted = kernel_distance(a, b + 0.2)
    assert shifted["kid"] > 5 * shifted["stderr"]
    with pytest.raises(ValueError, match="same F"):
        frechet_distance(a, b[:, :3])


def test_memorisation_flags_a_generator_that_returns_training_images():
    rng = np.random.default_rng(3)
    train = rng.normal(size=(1000, 64))
    fresh = rng.normal(size=(500, 64))
    honest = memorisation_check(rng.normal(size=(500, 64)), train, fresh)
    assert honest["copy_fraction"] < 0.04
    copies = train[rng.choice(1000, 500, replace=False)] + 0.01 * rng.normal(size=(500, 64))
    copier = memorisation_check(copies, train, fresh)
    assert copier["copy_fraction"] > 0.9
    # a blurred generator (shrunk towards the mean) is closer to everything but copies nothing
    blurred = memorisation_check(0.5 * rng.normal(size=(500, 64)), train, fresh)
    assert blurred["median_d1_ratio"] < 1 and blurred["copy_fraction"] < 0.04


def test_coverage_flags_a_generator_that_repeats_one_image():
    rng = np.random.default_rng(4)
    real = rng.normal(size=(800, 5))
    good = prdc(real, rng.normal(size=(800, 5)))
    assert good["coverage"] > 0.9 and good["recall"] > 0.8 and good["precision"] > 0.8
    collapsed = prdc(real, np.tile(rng.normal(size=(1, 5)), (800, 1))
                     + 1e-3 * rng.normal(size=(800, 5)))
    assert collapsed["coverage"] < 0.05 and collapsed["recall"] < 0.05


def test_constraint_check_catches_injected_violations():
    rng = np.random.default_rng(5)
    x = rng.random((200, 4, 4, 1))
    bad = x.copy()
    bad[:20, 0, 0, 0] = -1.0  # 10 % negative deposits
    cons = [non_negative(), total_at_most(lambda p, c: np.full(len(p), 100.0), "sum_bound")]
    rates = violation_rates(cons, {"simulator": x, "emulator": bad}, np.zeros((200, 1)))
    assert rates["non_negative"]["simulator"]["rate"] == 0.0
    assert rates["non_negative"]["emulator"]["rate"] == pytest.approx(0.1)
    assert rates["sum_bound"]["emulator"]["count"] == 0
    broken = Constraint("broken", lambda x, p, c: np.ones(3, bool))
    with pytest.raises(ValueError, match="one bool per sample"):
        violation_rates([broken], {"a": x}, np.zeros((200, 1)))


def test_calibration_summary_coverage_known_answers():
    rng = np.random.default_rng(6)
    truths = rng.random((4000, 2))
    std = np.full((4000, 2), 0.05)
    honest = summarise_calibration(["a", "b"], truths, truths + std * rng.normal(size=(4000, 2)),
                                   std, np.ones(2))
    assert honest["coverage_1sigma"] == pytest.approx(0.683, abs=0.02)
    assert honest["coverage_2sigma"] == pytest.approx(0.954, abs=0.01)
    overconfident = summarise_calibration(["a", "b"], truths,
                                          truths + std * rng.normal(size=(4000, 2)), std / 3,
                                          np.ones(2))
    assert overconfident["coverage_1sigma"] < 0.3
    assert overconfident["per_parameter"]["a"]["pull_std"] == pytest.approx(3.0, rel=0.05)


def test_rules_judge_at_their_thresholds():
    assert rules.status_of_distribution(0.055, 0.01) == "pass"
    assert rules.status_of_distribution(0.2, 0.0) == "warn"
    assert rules.status_of_distribution(0.21, 0.0) == "fail"
    assert rules.status_of_constraint(0.0, 0.01, 1000) == "pass"
    assert rules.status_of_constraint(0.0, 0.05, 1000) == "warn"
    assert rules.status_of_constraint(0.0, 0.06, 1000) == "fail"
    assert rules.status_of_learned_features(0.01, 10.0) == "pass"
    assert rules.status_of_learned_features(0.05, 2.0) == "pass"
    assert rules.status_of_learned_features(0.05, 5.0) == "warn"
    assert rules.status_of_learned_features(0.1, 0.0) == "fail"
    assert [rules.status_of_classifier(a) for a in (0.59, 0.6, 0.75)] == ["pass", "warn", "fail"]
    assert [rules.status_of_memorisation(c) for c in (0.03, 0.1, 0.11)] == ["pass", "warn", "fail"]
    assert rules.status_of_coverage(0.9, 0.95, 1.0) == "pass"
    assert rules.status_of_coverage(0.9, 0.95, 1.3) == "warn"
    assert rules.status_of_coverage(0.6, 0.95, 1.0) == "fail"
    se = {"1sigma": 0.05, "2sigma": 0.02}
    assert rules.status_of_calibration(0.6, 0.92, NOMINAL_COVERAGE, se) == "pass"
    assert rules.status_of_calibration(0.4, 0.8, NOMINAL_COVERAGE, se) == "warn"
    assert rules.status_of_calibration(0.4, 0.6, NOMINAL_COVERAGE, se) == "fail"
    assert rules.worst(["pass", "skipped", "warn"]) == "warn"
    assert rules.worst(["skipped"]) == "skipped"


def test_suite_docstring_states_every_rule_from_the_rules_table():
    from magan.validation import suite

    names = [f.name for f in dataclasses.fields(rules.SuiteRules)]
    assert list(suite._CHECK_PROSE) == names
    flat = " ".join(suite.__doc__.split())
    for name in names:
        assert " ".join(rules.rule_prose(name).split()) in flat, name


def test_spread_ratios_is_the_ratio_of_per_point_stds():
    rng = np.random.default_rng(0)
    fa, fe = rng.normal(size=(5, 16, 3)), rng.normal(size=(5, 16, 3)) * 2
    (ratio,) = spread_ratios(fa, fe, eps=1e-9)
    assert np.array_equal(np.median(ratio, axis=0),
                          np.median(fe.std(1) / (fa.std(1) + 1e-9), axis=0))
