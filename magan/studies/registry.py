"""The built-in studies, each declared once, found by name by the CLI, the validation suite and
the scripts.

A study is two frozen records:

* :class:`StudyEntry`, in its package's ``__init__.py`` (``magan/studies/<name>/__init__.py``):
  its name, one-line description and the text and flags of ``magan study <name>``. Reading it
  imports no JAX, so ``magan --help`` and parser building stay fast.
* :class:`Study`, in the module the entry names (``magan/studies/<name>/study.py``, as ``STUDY``):
  the entry and everything a run or a check needs: the ``run`` function, presets, parameter and
  condition spaces, simulator factory, default truth and the validation suite's pieces. Loading
  it imports the study (and JAX) on first use.

Adding a study: write its package with ``ENTRY`` and ``STUDY`` and add it to :data:`_PACKAGES`;
the CLI (``magan study``, ``magan validate --simulator``), :mod:`magan.studies.kits` and
``scripts/write_presets.py`` find it from here.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["STUDY_NAMES", "Study", "StudyEntry", "entries", "entry", "get_study", "studies",
           "study_names"]

# each study's package (holding its ENTRY), in the order the CLI lists them
_PACKAGES = {"line": "magan.studies.line", "calorimeter": "magan.studies.calorimeter"}
STUDY_NAMES = tuple(_PACKAGES)


@dataclass(frozen=True)
class StudyEntry:
    """A built-in study as the command line shows it (no JAX import).

    ``magan study <name>`` gets ``--preset`` (one of ``presets``, help ``preset_help``),
    ``--truth`` (``truth_help``; parsed by the study's space), ``--emulator``, ``--out``
    (default ``out``), ``--train-from`` when ``train_from`` (the :class:`Study` then has a
    ``training_source``), ``--seed`` and ``--quiet``. ``module`` holds the :class:`Study`
    record as ``STUDY``."""

    name: str
    description: str  # one line: the study's help in ``magan study --help``
    details: str  # the description of ``magan study <name> --help``
    module: str
    out: str  # the default run folder
    preset_help: str
    truth_help: str
    train_from: bool = False
    # the names of the study's presets, offered by ``--preset`` and checked before JAX is
    # imported (tests check them against the Study's ``presets``)
    presets: tuple[str, ...] = ("tiny", "default", "gpu")


@dataclass(frozen=True)
class Study:
    """A built-in study: its :class:`StudyEntry` and every piece a run or a check needs.

    ``run(preset, *, truth, emulator, out, seed, progress, **extra) -> summary dict`` runs the
    study end to end; ``presets`` maps a preset name to the study's config; ``space`` (P
    parameters) and ``conditions`` (K per-event conditions, or None) are the emulator's spaces;
    ``make_simulator()`` builds the in-process simulator; ``default_truth`` (P,) is the target's
    physical parameters when none is given.

    The validation suite's pieces (see :class:`magan.studies.kits.StudyKit`):
    ``features(images (N, H, W, C), conditions (N, K) or None) -> (N, F)`` NumPy features in
    physical units, named ``feature_names``; ``constraints``; ``fit_config`` and ``fit_features``
    (jax.numpy, for feature matching) are the study's fit settings; ``pretrain_features``
    (jax.numpy) are the features its pre-training's feature energy scores compare (the study run
    and every script that pre-trains its emulator read them here); ``voxel_transform`` maps pooled
    pixel values before their 1-D distances (axis label ``voxel_label``);
    ``calibration_truths``/``calibration_targets`` size the default fit calibration (truth points,
    target images each).

    ``training_source(spec) -> Simulator`` reads ``--train-from`` (entries with ``train_from``)."""

    entry: StudyEntry
    run: Callable[..., dict]
    presets: Mapping[str, Any]
    space: Any  # ParameterSpace
    conditions: Any  # ConditionSpace or None
    make_simulator: Callable
    default_truth: Any  # np.ndarray (P,)
    features: Callable
    feature_names: tuple[str, ...]
    constraints: tuple
    fit_config: Any  # FitConfig
    fit_features: Callable | None = None
    pretrain_features: Callable | None = None
    voxel_transform: Callable | None = None
    voxel_label: str = "pixel value"
    calibration_truths: int = 20
    calibration_targets: int = 500
    training_source: Callable | None = None

    @property
    def name(self) -> str:
        return self.entry.name

    @property
    def description(self) -> str:
        return self.entry.description


def entry(name: str) -> StudyEntry:
    """The entry of built-in study ``name`` (imports no JAX); ValueError naming the studies if
    there is none."""
    if name not in _PACKAGES:
        raise ValueError(f"Unknown study {name!r}; built-in studies are {list(_PACKAGES)}.")
    found = importlib.import_module(_PACKAGES[name]).ENTRY
    assert found.name == name, (found.name, name)
    return found


def entries() -> tuple[StudyEntry, ...]:
    """Every built-in study's entry, in the CLI's order (imports no JAX)."""
    return tuple(entry(name) for name in _PACKAGES)


def get_study(name: str) -> Study:
    """The :class:`Study` record of built-in study ``name`` (imports the study on first use)."""
    study = importlib.import_module(entry(name).module).STUDY
    assert study.name == name, (study.name, name)
    return study


def study_names() -> tuple[str, ...]:
    """The built-in studies' names, in the CLI's order (:data:`STUDY_NAMES`, read at call
    time)."""
    return tuple(_PACKAGES)


def studies() -> tuple[Study, ...]:
    """Every built-in study's record, in the CLI's order."""
    return tuple(get_study(name) for name in _PACKAGES)
