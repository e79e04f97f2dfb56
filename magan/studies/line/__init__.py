"""Case study I, the line image of the MAGAN paper: simulator, features and the study run."""

from magan._lazy import exports

_WHERE = {
    "run": "magan.studies.line.study",
    "PRESETS": "magan.studies.line.study",
    "DEFAULT_TRUTH": "magan.studies.line.study",
    "LineStudyConfig": "magan.studies.line.study",
    "study_preset": "magan.studies.line.study",
}
__all__ = sorted(_WHERE)
__getattr__, __dir__ = exports(__name__, _WHERE)
