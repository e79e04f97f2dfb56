"""Is the emulator a trustworthy simulator, and is the fit honest? The validation suite
(:func:`validate`) and the checks it is made of.

The suite: :mod:`~magan.validation.suite` (:func:`validate`, :class:`ValidationConfig`, the
presets; orchestration only), :mod:`~magan.validation.samples` (the T, T', E samples),
:mod:`~magan.validation.checks` (each check's numbers), :mod:`~magan.validation.rules` (every
pass / warn / fail threshold), :mod:`~magan.validation.report` (``report.json``, ``summary.md``,
figures).

The measures, each usable alone: :mod:`~magan.validation.distances` (1-D and feature-space
distances), :mod:`~magan.validation.constraints`, :mod:`~magan.validation.learned_features`,
:mod:`~magan.validation.two_sample`, :mod:`~magan.validation.memorisation`,
:mod:`~magan.validation.coverage` (PRDC), :mod:`~magan.validation.quality` (per-point bias and
spread ratio), :mod:`~magan.validation.calibration` (the fit's coverage) and
:mod:`~magan.validation.closure` (simulating at the fitted point).
"""

from magan._lazy import exports

_WHERE = {
    "validate": "magan.validation.suite",
    "ValidationConfig": "magan.validation.suite",
    "VALIDATION_PRESETS": "magan.validation.suite",
}
__all__ = sorted(_WHERE)
__getattr__, __dir__ = exports(__name__, _WHERE)
