"""The validation suite: is the emulator a trustworthy simulator, and is the fit honest?

:func:`validate` runs every check below on an emulator and the simulator it emulates and writes
``report.json``, ``summary.md`` and PNG figures into ``out``. Each check ends in **pass**, **warn**
or **fail** by the stated rule, next to its numbers, and where finite samples make a number
non-zero even for a perfect emulator, the same number between two independent simulated samples
(the *floor*) is reported beside it.

Samples: ``n_samples`` points (parameters and conditions) are drawn uniformly over the space; the
simulator makes two independent images at each (T and T'), the emulator one (E).

Layout: :mod:`~magan.validation.samples` draws the samples, :mod:`~magan.validation.checks`
computes each check's numbers, :mod:`~magan.validation.rules` judges them (every threshold, and
the rule sentences below, which are generated from it), :mod:`~magan.validation.report` writes
the report; this module only runs them in order.
"""

from __future__ import annotations

import dataclasses
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from magan.config import FitConfig
from magan.runtime.progress import Clock, phase
from magan.validation.checks import (
    check_calibration,
    check_classifier,
    check_constraints,
    check_coverage,
    check_distributions,
    check_learned_features,
    check_memorisation,
)
from magan.validation.learned_features import train_feature_network
from magan.validation.quality import variety
from magan.validation.report import write_figures, write_report
from magan.validation.rules import rule_prose, worst
from magan.validation.samples import draw

__all__ = ["ValidationConfig", "VALIDATION_PRESETS", "validate"]

# What each check measures; its rule (from magan.validation.rules) follows in the docstring.
_CHECK_PROSE = {
    "distributions": "KS, Wasserstein-1 and separation power of E vs T (and T' vs T) for every "
                     "high-level feature and for the pooled pixel values.",
    "constraints": "violation rate of every physical constraint for T and E.",
    "learned_features": "Frechet distance (extrapolated to infinite N) and unbiased KID on the "
                        "embedding of a network trained on the simulator alone "
                        "(:mod:`magan.validation.learned_features`), each feature in units of "
                        "the simulator's spread.",
    "classifier": "classifier two-sample test on the emulator's network-space images, with each "
                  "sample's parameters and conditions as input (a test of the conditional "
                  "distribution).",
    "memorisation": "the emulator at the points of its training simulations (the training "
                    "stream is replayed from its seed) vs fresh simulations there "
                    "(:mod:`magan.validation.memorisation`).",
    "coverage": "PRDC of E against T on the learned features (floor: T' against T), and per "
                "point of ``variety_points`` points the spread ratio std_E / std_T of each "
                "feature over ``variety_per_point`` images; its slope against each unit "
                "parameter says whether emulated variety follows simulated variety across the "
                "space (:func:`magan.validation.quality.variety`).",
    "calibration": ":func:`magan.calibration.calibrate` over "
                   "``calibration_truths`` truths.",
}


def _checks_docstring() -> str:
    """The numbered list of checks, each with its rule in words (from the rules table)."""
    return "\n".join(textwrap.fill(f"{i}. ``{name}``: {what} {rule_prose(name)}", width=99,
                                   subsequent_indent="   ", break_on_hyphens=False)
                     for i, (name, what) in enumerate(_CHECK_PROSE.items(), 1))


if __doc__ is not None:  # None under python -OO
    __doc__ += "\nThe checks and their rules:\n\n" + _checks_docstring() + "\n"


@dataclass(frozen=True)
class ValidationConfig:
    """Sample sizes and training lengths of :func:`validate`'s checks."""

    n_samples: int = 2000  # points, each simulated twice and emulated once
    bins: int = 30  # histogram bins of the separation power
    feature_steps: int = 800  # training steps of the independent feature network
    classifier_steps: int = 800  # training steps of the two-sample classifier
    memorisation_n: int = 2000  # replayed training images (and emulated / fresh ones)
    prdc_k: int = 5  # nearest neighbours of PRDC
    variety_points: int = 32  # points of the per-point spread ratio
    variety_per_point: int = 32  # images per point (of each of T, T', E)
    calibration_truths: int | None = None  # None: the study's default (20 line, 10 calorimeter)
    calibration_targets: int | None = None  # target images per truth; None: the study's (500)

    def __post_init__(self):
        for f in ("n_samples", "feature_steps", "classifier_steps", "variety_points"):
            if getattr(self, f) < 1:
                raise ValueError(f"ValidationConfig.{f} must be >= 1, got {getattr(self, f)}.")
        if self.n_samples < 40:
            raise ValueError(f"ValidationConfig.n_samples must be >= 40 (the classifier splits "
                             f"it in halves, KID in 10 subsets), got {self.n_samples}.")
        if self.variety_per_point < 4:
            raise ValueError("ValidationConfig.variety_per_point must be >= 4 to measure a spread.")


VALIDATION_PRESETS = {
    "tiny": ValidationConfig(n_samples=200, feature_steps=60, classifier_steps=60,
                             memorisation_n=128, variety_points=4, variety_per_point=8,
                             calibration_truths=0, calibration_targets=64),
    "default": ValidationConfig(),
}


def _check_pair(emulator, simulator) -> None:
    """Raise ValueError unless the simulator has the emulator's conditions and image shape."""
    if (emulator.conditions is None) != (simulator.conditions is None) or (
            emulator.conditions is not None and emulator.conditions != simulator.conditions):
        raise ValueError(f"The simulator's conditions ({simulator.conditions!r}) do not match the "
                         f"emulator's ({emulator.conditions!r}); validate an emulator against the "
                         "simulator it was trained on.")
    if simulator.image_shape != emulator.image_shape:
        raise ValueError(f"The simulator makes images of shape {simulator.image_shape}, the "
                         f"emulator {emulator.image_shape}; they do not belong together.")


def _axis_names(emulator) -> list:
    """The parameter names, then the condition names (if any)."""
    cs = emulator.conditions
    return list(emulator.space.names) + ([] if cs is None else list(cs.names))


def validate(emulator, simulator, *, out, features=None, feature_names=None, constraints=(),
             config: ValidationConfig | None = None, fit_config: FitConfig | None = None,
             fit_features=None, voxel_transform=None, voxel_label: str = "pixel value",
             title: str = "emulator", emulator_label: str = "in memory", seed: int = 0,
             progress: bool | None = None) -> dict:
    """Run the validation suite (module docstring) and write the report into ``out``.

    Args:
      emulator: a trained :class:`~magan.Emulator`.
      simulator: the simulator it emulates (same parameter and condition spaces).
      out: the report folder (``report.json``, ``summary.md``, ``distributions.png``,
        ``variety.png``, ``calibration.png``, ``calibration.json``); an interrupted calibration
        resumes from ``calibration.json``.
      features: ``features(images, conditions) -> (N, F)`` NumPy high-level features (physical
        units), with ``feature_names``; the built-in studies supply theirs
        (:mod:`magan.studies.kits`).
      constraints: :class:`~magan.validation.constraints.Constraint` objects.
      config: a :class:`ValidationConfig` (default preset when None).
      fit_config: the fit settings of the calibration (default :class:`~magan.FitConfig`).
      fit_features: the fit's jax.numpy ``features(images, conditions)``, needed when
        ``fit_config.feature_weight > 0`` (feature matching, :func:`magan.fit`).
      voxel_transform: maps the pooled pixel values before their distances (e.g. log of the
        nonzero ones), labelled ``voxel_label``.
      title, emulator_label: how the report names the study and the emulator.
    Returns:
      The report dict (also ``out/report.json``); ``timings_s`` and ``seconds`` in seconds.
    """
    cfg = config or VALIDATION_PRESETS["default"]
    _check_pair(emulator, simulator)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with phase("validation: drawing samples", progress):
        s = draw(emulator, simulator, np.random.default_rng([seed, 1001]), cfg.n_samples)
    checks, clock = {}, Clock()
    with clock.stage("distributions", show="validation: distributions", progress=progress):
        checks["distributions"], hists = check_distributions(
            s, features=features, feature_names=feature_names, voxel_transform=voxel_transform,
            bins=cfg.bins)
    with clock.stage("constraints", show="validation: constraints", progress=progress):
        checks["constraints"] = check_constraints(constraints, s)
    with clock.stage("feature_network"):
        fnet = train_feature_network(simulator, emulator.space, transform=emulator.transform,
                                     steps=cfg.feature_steps, seed=seed, progress=progress)
        g1, g2, ge = (fnet.embed(x, s.cond) for x in (s.t1, s.t2, s.e))
    with clock.stage("learned_features", show="validation: learned features",
                     progress=progress):
        checks["learned_features"] = {**check_learned_features(g1, g2, ge, seed),
                                      "feature_network": fnet.info}
    with clock.stage("classifier"):
        checks["classifier"] = check_classifier(emulator, s, steps=cfg.classifier_steps,
                                                seed=seed, progress=progress)
    with clock.stage("memorisation", show="validation: memorisation", progress=progress):
        checks["memorisation"] = check_memorisation(emulator, simulator, cfg.memorisation_n, seed)
    with clock.stage("coverage", show="validation: coverage", progress=progress):
        var = variety(emulator, simulator, np.random.default_rng([seed, 1002]),
                      n_points=cfg.variety_points, per_point=cfg.variety_per_point,
                      features=features, feature_names=feature_names, embed=fnet.embed)
        checks["coverage"] = check_coverage(g1, g2, ge, var, cfg.prdc_k)
    with clock.stage("calibration"):
        checks["calibration"] = check_calibration(
            emulator, simulator,
            n_truths=20 if cfg.calibration_truths is None else cfg.calibration_truths,
            n_targets=cfg.calibration_targets or 500, fit_config=fit_config, seed=seed, out=out,
            progress=progress, fit_features=fit_features)
    figures = write_figures(out, checks, hists, axis_names=_axis_names(emulator),
                            voxel_label=voxel_label)
    report = {
        "title": title, "emulator": emulator_label,
        "simulator": getattr(simulator, "name", type(simulator).__name__), "seed": seed,
        "config": dataclasses.asdict(cfg),
        "overall": worst(c["status"] for c in checks.values()),
        "status": {k: v["status"] for k, v in checks.items()},
        "checks": checks, "timings_s": clock.timings, "figures": figures,
        "seconds": time.perf_counter() - t0,
    }
    write_report(out, report)
    return report
