"""Case study I, the line image of the MAGAN paper: simulator, features and the study run."""

from magan._lazy import exports
from magan.studies.registry import StudyEntry

ENTRY = StudyEntry(
    name="line",
    description="the line-image study of the original paper",
    details="Pre-train an emulator of the line simulator (or reuse one), simulate target images at "
            "the truth, fit m, c, x0, xsteps, check closure, write plots.",
    module="magan.studies.line.study",
    out="runs/line",
    preset_help="tiny (seconds), default (minutes on a CPU), gpu (an accelerator)",
    truth_help="the target's parameters, e.g. m=0.2,c=12,x0=4,xsteps=9 (default)",
    train_from=True,
)

_WHERE = {
    "run": "magan.studies.line.study",
    "PRESETS": "magan.studies.line.study",
    "DEFAULT_TRUTH": "magan.studies.line.study",
    "LineStudyConfig": "magan.studies.line.study",
    "study_preset": "magan.studies.line.study",
    "STUDY": "magan.studies.line.study",
}
__all__ = sorted([*_WHERE, "ENTRY"])
__getattr__, __dir__ = exports(__name__, _WHERE)
