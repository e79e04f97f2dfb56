"""The built-in studies (``magan study line|calorimeter``) and their registry
(:mod:`magan.studies.registry`); names are imported on first use, so ``import magan.studies``
imports no JAX."""

from magan._lazy import exports

_WHERE = {name: "magan.studies.registry" for name in (
    "Study", "StudyEntry", "STUDY_NAMES", "entries", "entry", "get_study", "studies",
    "study_names")}
__all__ = sorted(_WHERE)
__getattr__, __dir__ = exports(__name__, _WHERE)
