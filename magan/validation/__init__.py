"""Is the emulator a trustworthy simulator, and is the fit honest? The validation suite
(:func:`validate`) and the checks it is made of."""

from magan._lazy import exports

_WHERE = {
    "validate": "magan.validation.suite",
    "ValidationConfig": "magan.validation.suite",
    "VALIDATION_PRESETS": "magan.validation.suite",
}
__all__ = sorted(_WHERE)
__getattr__, __dir__ = exports(__name__, _WHERE)
