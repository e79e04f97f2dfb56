"""What each built-in study hands to the validation suite: its simulator, its high-level features
(NumPy), its physical constraints and the fit settings a user of the study runs.

Each study declares these pieces once, in its :class:`~magan.studies.registry.Study` record;
:func:`study_kit` presents them as a :class:`StudyKit`. ``magan validate`` finds the kit of an
emulator from the spaces it was trained over (:func:`kit_for`), so a study's emulator needs no
extra flags.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from magan.config import FitConfig
from magan.studies.registry import STUDY_NAMES, get_study, study_names
from magan.validation.constraints import Constraint

__all__ = ["STUDY_NAMES", "StudyKit", "kit_for", "study_kit"]


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


def _kit(study) -> StudyKit:
    """The validation pieces of a :class:`~magan.studies.registry.Study` record."""
    return StudyKit(
        study.name, study.make_simulator, study.space, study.conditions, study.features,
        study.feature_names, study.constraints, study.fit_config,
        fit_features=study.fit_features, voxel_transform=study.voxel_transform,
        voxel_label=study.voxel_label, calibration_truths=study.calibration_truths,
        calibration_targets=study.calibration_targets)


def study_kit(name: str) -> StudyKit:
    """The kit of built-in study ``name`` (one of :data:`STUDY_NAMES`); ValueError if there is
    none."""
    return _kit(get_study(name))


def kit_for(emulator) -> StudyKit | None:
    """The built-in study whose spaces ``emulator`` was trained over, or None."""
    for name in study_names():
        study = get_study(name)
        if emulator.space == study.space and emulator.conditions == study.conditions:
            return _kit(study)
    return None
