"""Case study II, a GFlash-style W/Si calorimeter: simulator, physics validation and the study
run."""

from magan._lazy import exports
from magan.studies.registry import StudyEntry

ENTRY = StudyEntry(
    name="calorimeter",
    description="tune a W/Si calorimeter shower simulation to test-beam showers",
    details="Pre-train an emulator of the GFlash-style W/Si calorimeter over four detector "
            "parameters and the beam energy (or reuse one), validate its physics against the "
            "simulator, simulate a test beam at the truth, fit the detector parameters, check "
            "closure, write plots.",
    module="magan.studies.calorimeter.study",
    out="runs/calorimeter",
    preset_help="tiny (seconds), default (under 30 min on a CPU), gpu (an accelerator)",
    truth_help="the test beam's detector parameters, e.g. sampling_fraction=0.0215,"
               "moliere_scale=1.1,depth_scale=0.92,noise_mev=0.033 (default)",
)

_WHERE = {
    "run": "magan.studies.calorimeter.study",
    "PRESETS": "magan.studies.calorimeter.study",
    "DEFAULT_TRUTH": "magan.studies.calorimeter.study",
    "CalorimeterStudyConfig": "magan.studies.calorimeter.study",
    "study_preset": "magan.studies.calorimeter.study",
    "physics_validation": "magan.studies.calorimeter.physics",
    "STUDY": "magan.studies.calorimeter.study",
}
__all__ = sorted([*_WHERE, "ENTRY"])
__getattr__, __dir__ = exports(__name__, _WHERE)
