"""Stage 2, fitting: with E frozen, G and D play on the target images; G's outputs are the fit."""

from magan._lazy import exports

_WHERE = {
    "fit": "magan.fitting.orchestration",
    "FitResult": "magan.fitting.orchestration",
    "feature_energy_distance": "magan.fitting.orchestration",
    "feature_scales": "magan.fitting.orchestration",
}
__all__ = sorted(_WHERE)
__getattr__, __dir__ = exports(__name__, _WHERE)
