"""Case study II, a GFlash-style W/Si calorimeter: simulator, physics validation and the study run."""

from magan._lazy import exports

_WHERE = {
    "run": "magan.studies.calorimeter.study",
    "PRESETS": "magan.studies.calorimeter.study",
    "DEFAULT_TRUTH": "magan.studies.calorimeter.study",
    "CalorimeterStudyConfig": "magan.studies.calorimeter.study",
    "study_preset": "magan.studies.calorimeter.study",
    "physics_validation": "magan.studies.calorimeter.study",
}
__all__ = sorted(_WHERE)
__getattr__, __dir__ = exports(__name__, _WHERE)
