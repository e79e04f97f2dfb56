"""Fit calibration, public path: does the fit's reported uncertainty mean anything?

:func:`calibrate` fits target sets simulated at many truth points (optionally several truths per
compiled program) and reports bias, pulls and coverage; the code lives in
:mod:`magan.validation.calibration` (whose module docstring says what is measured).

    import magan
    cal = magan.calibrate(emulator, simulator, n_truths=20, n_targets=500, workdir="cal")
    cal["summary"]["coverage_1sigma"]   # about 0.683 for an honest reported uncertainty
"""

from magan.validation.calibration import (
    NOMINAL_COVERAGE,
    TRUTHS_PER_PROGRAM,
    calibrate,
    fit_calibration,
    summarise_calibration,
)

__all__ = ["calibrate", "fit_calibration", "summarise_calibration", "NOMINAL_COVERAGE",
           "TRUTHS_PER_PROGRAM"]
