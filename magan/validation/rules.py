"""Every pass / warn / fail threshold of the validation suite, in one table.

The suite first *computes* its numbers (:mod:`magan.validation.checks`) and then *judges* them
here, with one pure function per check, ``status_of_<check>(numbers) -> "pass" | "warn" |
"fail"``, reading its thresholds from one frozen dataclass per check (:data:`RULES`). Each rule
also writes its own prose (``prose()``), from which the rule sentences in the module docstring of
:mod:`magan.validation.suite` are generated, so the documentation cannot drift from the code.

Statuses rank ``pass < warn < fail``; ``skipped`` (a check that could not run) ranks below them
all and never decides the overall status (:func:`worst`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = [
    "STATUS_ORDER", "RULES", "SuiteRules", "DistributionRule", "ConstraintRule",
    "LearnedFeatureRule", "ClassifierRule", "MemorisationRule", "CoverageRule", "CalibrationRule",
    "worst", "status_of_distribution", "status_of_constraint", "status_of_learned_features",
    "status_of_classifier", "status_of_memorisation", "status_of_coverage",
    "status_of_calibration", "rule_prose",
]

STATUS_ORDER = {"pass": 0, "warn": 1, "fail": 2, "skipped": -1}


def worst(statuses: Iterable[str]) -> str:
    """The worst of ``statuses`` (``fail > warn > pass``), ignoring ``skipped``; ``skipped`` when
    nothing else is there."""
    ranked = [s for s in statuses if s != "skipped"]
    return max(ranked, key=STATUS_ORDER.__getitem__) if ranked else "skipped"


@dataclass(frozen=True)
class DistributionRule:
    """Separation power ``S`` (0 to 1) of one variable, emulator vs simulator, next to its floor
    (the same number between two simulated samples)."""

    pass_above_floor: float = 0.05  # pass if S <= this + floor
    warn_max: float = 0.2  # warn if S <= this

    def prose(self) -> str:
        """The rule in words (reStructuredText), with the thresholds above."""
        return (f"Rule per variable: pass if ``S <= {self.pass_above_floor:g} + floor``, warn if "
                f"``S <= {self.warn_max:g}``, else fail; the check takes the worst.")


@dataclass(frozen=True)
class ConstraintRule:
    """Excess violation rate (fraction of samples) of the emulator over the simulator, judged
    against the binomial standard error ``sigma`` of the simulator's rate over n samples."""

    pass_excess_min: float = 0.01  # pass if the excess is <= max(this, pass_sigmas * sigma)
    pass_sigmas: float = 3
    warn_excess: float = 0.05  # warn if the excess is <= this

    def prose(self) -> str:
        """The rule in words (reStructuredText), with the thresholds above."""
        return (f"Pass if E's rate exceeds T's by at most ``max({self.pass_excess_min:g}, "
                f"{self.pass_sigmas:g} sigma)``, warn up to +{self.warn_excess:g}, else fail.")


@dataclass(frozen=True)
class LearnedFeatureRule:
    """Relative Frechet distance ``FD_inf / Tr(C_T)`` (dimensionless) and the KID's distance from
    0 in standard errors (``kid_z``)."""

    pass_relative_fd: float = 0.02  # pass if FD_inf / Tr(C_T) < this, ...
    kid_z_max: float = 3  # ... or if kid_z < this and the relative FD < warn_relative_fd
    warn_relative_fd: float = 0.1  # warn if the relative FD < this

    def prose(self) -> str:
        """The rule in words (reStructuredText), with the thresholds above."""
        return (f"Pass if ``FD_inf / Tr(C_T) < {self.pass_relative_fd:g}``, or KID is within "
                f"{self.kid_z_max:g} standard errors of 0 and that relative FD is below "
                f"{self.warn_relative_fd:g}; warn if the relative FD is below "
                f"{self.warn_relative_fd:g}; else fail.")


@dataclass(frozen=True)
class ClassifierRule:
    """Held-out AUC of the two-sample classifier (0.5: indistinguishable, 1: told apart)."""

    pass_auc: float = 0.6  # pass if AUC < this
    warn_auc: float = 0.75  # warn if AUC < this

    def prose(self) -> str:
        """The rule in words (reStructuredText), with the thresholds above."""
        return (f"Pass if ``AUC < {self.pass_auc:g}``, warn below {self.warn_auc:g}, else fail "
                "(0.5 = indistinguishable).")


@dataclass(frozen=True)
class MemorisationRule:
    """Copy fraction: the fraction of emulated images closer to one training image than 99 % of
    fresh simulations are (about 0.01 without copying)."""

    pass_copy_fraction: float = 0.03  # pass if <= this
    warn_copy_fraction: float = 0.1  # warn if <= this

    def prose(self) -> str:
        """The rule in words (reStructuredText), with the thresholds above."""
        return (f"Pass if the copy fraction is <= {self.pass_copy_fraction:g}, warn <= "
                f"{self.warn_copy_fraction:g}, else fail.")


@dataclass(frozen=True)
class CoverageRule:
    """PRDC coverage (0 to 1) of E against T next to its floor (T' against T), and the median
    per-point spread ratio std_E / std_T (1 is right)."""

    pass_coverage_below_floor: float = 0.1  # pass needs coverage >= floor - this ...
    pass_ratio: tuple[float, float] = (0.8, 1.25)  # ... and the ratio within this range
    warn_coverage_below_floor: float = 0.3  # warn needs coverage >= floor - this ...
    warn_ratio: tuple[float, float] = (0.6, 1.6)  # ... and the ratio within this range

    def prose(self) -> str:
        """The rule in words (reStructuredText), with the thresholds above."""
        (p_lo, p_hi), (w_lo, w_hi) = self.pass_ratio, self.warn_ratio
        return (f"Pass if coverage >= floor - {self.pass_coverage_below_floor:g} and the median "
                f"spread ratio is in [{p_lo:g}, {p_hi:g}]; warn if coverage >= floor - "
                f"{self.warn_coverage_below_floor:g} and the ratio in [{w_lo:g}, {w_hi:g}]; "
                "else fail.")


@dataclass(frozen=True)
class CalibrationRule:
    """Fractions of truths within 1 and 2 reported sigma (coverages), against their nominal
    values (68.3 %, 95.4 %) and the binomial standard errors there."""

    pass_stderrs_below_nominal: float = 2  # pass if both coverages >= nominal - this * stderr
    warn_coverage_2sigma: float = 0.7  # warn if the 2-sigma coverage >= this

    def prose(self) -> str:
        """The rule in words (reStructuredText), with the thresholds above."""
        return (f"Pass if the 1- and 2-sigma coverages are within "
                f"{self.pass_stderrs_below_nominal:g} binomial standard errors below nominal (or "
                f"above); warn if the 2-sigma coverage is at least "
                f"{self.warn_coverage_2sigma:g}; else fail (the reported spread is too small to "
                "mean much).")


@dataclass(frozen=True)
class SuiteRules:
    """The rules of all seven checks, by check name (the keys of ``report.json["checks"]``)."""

    distributions: DistributionRule = DistributionRule()
    constraints: ConstraintRule = ConstraintRule()
    learned_features: LearnedFeatureRule = LearnedFeatureRule()
    classifier: ClassifierRule = ClassifierRule()
    memorisation: MemorisationRule = MemorisationRule()
    coverage: CoverageRule = CoverageRule()
    calibration: CalibrationRule = CalibrationRule()


RULES = SuiteRules()


def rule_prose(check: str) -> str:
    """The rule of check ``check`` (a field of :class:`SuiteRules`) in words."""
    return getattr(RULES, check).prose()


def status_of_distribution(s: float, floor: float,
                           rule: DistributionRule = RULES.distributions) -> str:
    """Status of one variable from its separation power ``s`` and its ``floor`` (both 0 to 1)."""
    return ("pass" if s <= rule.pass_above_floor + floor else
            "warn" if s <= rule.warn_max else "fail")


def status_of_constraint(rate_simulator: float, rate_emulator: float, n: int,
                         rule: ConstraintRule = RULES.constraints) -> str:
    """Status of one constraint from the violation rates (fractions) of T and E, over ``n``
    emulated samples."""
    sigma = math.sqrt(max(rate_simulator * (1 - rate_simulator), 1.0 / n) / n)
    excess = rate_emulator - rate_simulator
    return ("pass" if excess <= max(rule.pass_excess_min, rule.pass_sigmas * sigma) else
            "warn" if excess <= rule.warn_excess else "fail")


def status_of_learned_features(fd_inf_relative: float, kid_z: float,
                               rule: LearnedFeatureRule = RULES.learned_features) -> str:
    """Status from the relative extrapolated Frechet distance and the KID in standard errors."""
    rel = fd_inf_relative
    return ("pass" if rel < rule.pass_relative_fd or (kid_z < rule.kid_z_max
                                                      and rel < rule.warn_relative_fd) else
            "warn" if rel < rule.warn_relative_fd else "fail")


def status_of_classifier(auc: float, rule: ClassifierRule = RULES.classifier) -> str:
    """Status from the classifier's held-out AUC (0.5 to 1)."""
    return "pass" if auc < rule.pass_auc else "warn" if auc < rule.warn_auc else "fail"


def status_of_memorisation(copy_fraction: float,
                           rule: MemorisationRule = RULES.memorisation) -> str:
    """Status from the copy fraction (0 to 1) of :func:`~magan.validation.memorisation.
    memorisation_check`."""
    c = copy_fraction
    return ("pass" if c <= rule.pass_copy_fraction else
            "warn" if c <= rule.warn_copy_fraction else "fail")


def status_of_coverage(coverage: float, coverage_floor: float, spread_ratio: float,
                       rule: CoverageRule = RULES.coverage) -> str:
    """Status from E's PRDC coverage, its floor (T' vs T) and the median spread ratio."""
    cov_ok = coverage >= coverage_floor - rule.pass_coverage_below_floor
    cov_warn = coverage >= coverage_floor - rule.warn_coverage_below_floor
    (p_lo, p_hi), (w_lo, w_hi) = rule.pass_ratio, rule.warn_ratio
    return ("pass" if cov_ok and p_lo <= spread_ratio <= p_hi else
            "warn" if cov_warn and w_lo <= spread_ratio <= w_hi else "fail")


def status_of_calibration(coverage_1sigma: float, coverage_2sigma: float,
                          nominal: Mapping[str, float], stderr: Mapping[str, float],
                          rule: CalibrationRule = RULES.calibration) -> str:
    """Status from the fit's 1- and 2-sigma coverages (fractions), with ``nominal`` and ``stderr``
    keyed ``"1sigma"`` and ``"2sigma"`` (as :func:`~magan.validation.calibration.
    summarise_calibration` reports them)."""
    k = rule.pass_stderrs_below_nominal
    ok1 = coverage_1sigma >= nominal["1sigma"] - k * stderr["1sigma"]
    ok2 = coverage_2sigma >= nominal["2sigma"] - k * stderr["2sigma"]
    return ("pass" if ok1 and ok2 else
            "warn" if coverage_2sigma >= rule.warn_coverage_2sigma else "fail")
