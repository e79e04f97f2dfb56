"""What each built-in study hands to the validation suite: its simulator, its high-level features
(NumPy), its physical constraints and the fit settings a user of the study runs.

``magan validate`` finds the kit of an emulator from the spaces it was trained over
(:func:`kit_for`), so a study's emulator needs no extra flags.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from magan.config import FitConfig
from magan.validation.constraints import Constraint, non_negative, total_at_most, value_range

__all__ = ["StudyKit", "study_kit", "kit_for", "STUDY_NAMES"]

STUDY_NAMES = ("line", "calorimeter")


@dataclass(frozen=True)
class StudyKit:
    """A study's pieces for :func:`magan.validate`.

    ``features(images, conditions) -> (N, F)`` (NumPy, physical units) with ``feature_names``;
    ``fit_config`` and ``fit_features`` (jax.numpy) are the study's fit settings and the features
    its feature matching uses;
    ``voxel_transform`` maps pooled pixel values before their 1-D distances (e.g. log10 of the
    nonzero calorimeter cells); ``calibration_truths``/``calibration_targets`` set the default
    fit calibration (truth points, target images each)."""

    name: str
    make_simulator: Callable
    space: object
    conditions: object
    features: Callable
    feature_names: tuple[str, ...]
    constraints: tuple[Constraint, ...]
    fit_config: FitConfig
    fit_features: Callable | None = None
    voxel_transform: Callable | None = None
    voxel_label: str = "pixel value"
    calibration_truths: int = 20
    calibration_targets: int = 500


def _line_kit() -> StudyKit:
    from magan.studies.line.study import PRESETS as LINE_PRESETS
    from magan.studies.line.simulator import (
        AMPLITUDE_JITTER,
        LINE_FEATURES,
        LINE_SPACE,
        PIXEL_NOISE,
        line_features,
        line_fit_features,
        line_simulator,
    )

    hi = 1.0 + 5 * AMPLITUDE_JITTER + 5 * PIXEL_NOISE
    return StudyKit(
        "line", line_simulator, LINE_SPACE, None,
        lambda x, c: line_features(x), LINE_FEATURES,
        (value_range(-8 * PIXEL_NOISE, hi),),
        LINE_PRESETS["default"].fit, fit_features=line_fit_features)


def _calorimeter_kit() -> StudyKit:
    from magan.studies.calorimeter.study import PRESETS
    from magan.studies.calorimeter.model import (
        CALO_CONDITIONS,
        calorimeter_simulator,
        features_numpy,
        training_features,
    )
    from magan.studies.calorimeter.simulator import CALO_SPACE, THRESHOLD_MEV, sparsity

    sf_max = CALO_SPACE.high[list(CALO_SPACE.names).index("sampling_fraction")]

    def features(x, c):
        return np.concatenate([features_numpy(x, c[:, 0]), sparsity(x)[:, None]], axis=1)

    def above_threshold(x, p, c):
        flat = np.asarray(x).reshape(len(x), -1)
        return ~((flat > 0) & (flat < THRESHOLD_MEV)).any(axis=1)

    constraints = (
        non_negative(),
        total_at_most(lambda p, c: 1.25 * sf_max * c[:, 0], "energy_conservation",
                      f"visible energy <= 1.25 x the largest sampling fraction ({sf_max:g}) x "
                      "incident energy"),
        Constraint("zero_suppression", above_threshold,
                   f"no cell between 0 and the {THRESHOLD_MEV:g} MeV readout threshold"),
    )
    return StudyKit(
        "calorimeter", calorimeter_simulator, CALO_SPACE, CALO_CONDITIONS, features,
        ("response", "depth_x0", "width_mm", "sparsity"), constraints, PRESETS["default"].fit,
        fit_features=training_features, voxel_transform=lambda v: np.log10(v[v > 0]),
        voxel_label="log10 cell energy / MeV",
        calibration_truths=10)


def study_kit(name: str) -> StudyKit:
    """The kit of built-in study ``name`` ("line" or "calorimeter")."""
    if name == "line":
        return _line_kit()
    if name == "calorimeter":
        return _calorimeter_kit()
    raise ValueError(f"Unknown study {name!r}; built-in studies are {list(STUDY_NAMES)}.")


def kit_for(emulator) -> StudyKit | None:
    """The built-in study whose spaces ``emulator`` was trained over, or None."""
    for name in STUDY_NAMES:
        kit = study_kit(name)
        if emulator.space == kit.space and emulator.conditions == kit.conditions:
            return kit
    return None
