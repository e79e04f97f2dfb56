"""Fit calibration: does the fit's reported uncertainty mean anything?

Over ``n_truths`` truth points drawn uniformly from the central part of the parameter box (or
given), the simulator makes a target set, the fit fits it (with the simulator, so bias-corrected
as a user would run it), and the result is compared with the truth:

* **bias** per parameter: the mean of ``fit - truth`` over truths, in % of the parameter's range,
  with its standard error; the **rms error** beside it.
* **pulls** ``(fit - truth) / reported_std``; for an honest uncertainty they are standard normal:
  the **coverage** (fraction of truths within 1 and 2 reported sigma) is then 68.3 % and 95.4 %.
  Lower coverage means the reported spread is too small (the fit is over-confident).

:func:`calibrate` can fit ``truths_per_program`` truths side by side in one compiled program
(:func:`magan.fitting.stage.fit_many`). On a CPU that does not pay: one truth per program (the
default) already compiles the fit once for all truths (the compiled step is cached per replica
count), while a program of T truths unrolls T times the replicas, compiles in time growing with
them and runs them one after another (``scripts/calibration_speed.py``: 6 tiny truths took 84 s
sequentially, 108 s two per program, 155 s three per program). Each finished chunk is written to
``workdir/calibration.json`` at once, so an interrupted calibration resumes where it stopped when
it is run again with the same settings, and one run again with more truths fits only the new
ones. :func:`fit_calibration` is magan 0.1's name for it.

Public path: :mod:`magan.calibration` (this module's names).
"""

from __future__ import annotations

import json
import math
import time
import warnings
from pathlib import Path

import numpy as np

from magan.config import FitConfig
from magan.emulator import Emulator
from magan.runtime.io import atomic_write_json, to_jsonable

__all__ = ["calibrate", "fit_calibration", "summarise_calibration", "NOMINAL_COVERAGE",
           "TRUTHS_PER_PROGRAM"]

# truths fitted in one program by default: the fastest on a 2-core CPU with the tiny presets
# (scripts/calibration_speed.py; module docstring). With 1 each truth's fit is magan.fit's.
TRUTHS_PER_PROGRAM = 1

NOMINAL_COVERAGE = {"1sigma": math.erf(1 / math.sqrt(2)), "2sigma": math.erf(2 / math.sqrt(2))}


def summarise_calibration(names, truths, means, stds, width) -> dict:
    """Bias, rms error, pulls and coverage from (T, P) truths, fitted means and reported stds."""
    truths, means, stds = (np.asarray(a, np.float64) for a in (truths, means, stds))
    width = np.asarray(width, np.float64)
    err = (means - truths) / width * 100.0  # % of range
    pulls = (means - truths) / np.maximum(stds, 1e-300)
    t = truths.shape[0]
    out = {"n_truths": t, "per_parameter": {}}
    for j, n in enumerate(names):
        c1 = float(np.mean(np.abs(pulls[:, j]) < 1))
        c2 = float(np.mean(np.abs(pulls[:, j]) < 2))
        out["per_parameter"][n] = {
            "bias_pct_of_range": float(err[:, j].mean()),
            "bias_stderr_pct_of_range": (float(err[:, j].std(ddof=1) / math.sqrt(t))
                                         if t > 1 else None),
            "rms_error_pct_of_range": float(np.sqrt(np.mean(err[:, j] ** 2))),
            "median_reported_std_pct_of_range": float(np.median(stds[:, j] / width[j] * 100)),
            "pull_mean": float(pulls[:, j].mean()),
            "pull_std": float(pulls[:, j].std(ddof=1)) if t > 1 else None,
            "coverage_1sigma": c1,
            "coverage_2sigma": c2,
        }
    allp = np.abs(pulls).ravel()
    out["coverage_1sigma"] = float(np.mean(allp < 1))
    out["coverage_2sigma"] = float(np.mean(allp < 2))
    out["nominal"] = NOMINAL_COVERAGE
    # binomial standard error of a coverage fraction at its nominal value, over all T * P pulls
    out["coverage_stderr"] = {k: math.sqrt(v * (1 - v) / allp.size)
                              for k, v in NOMINAL_COVERAGE.items()}
    out["max_abs_bias_pct_of_range"] = float(np.max(np.abs(err.mean(0))))
    return out


def calibrate(emulator: Emulator, simulator, *, n_truths: int = 20, n_targets: int = 500,
              fit_config: FitConfig | None = None, seed: int = 0, inner: float = 0.8,
              truths=None, features=None, truths_per_program: int = TRUTHS_PER_PROGRAM,
              workdir=None, progress: bool | None = None) -> dict:
    """Fit a target set at each of many truths and measure bias and coverage (module docstring).

    Args:
      emulator, simulator: the trained emulator and the simulator it emulates.
      n_truths: truth points (>= 2), drawn uniformly from the central ``inner`` fraction of every
        parameter's range (in the unit cube; fits right at a bound are a separate question).
        Ignored when ``truths`` is given.
      truths: optional (T, P) truth points in physical units (T >= 2), inside the box.
      n_targets: target images per truth. With per-event conditions they are drawn uniformly
        over the condition space (log-uniform on log scales), as a test beam at mixed energies.
      fit_config: the fit settings (default :class:`FitConfig`).
      seed: truth i's targets come from the stream ``(seed, 4243, i)``, its reference sets from
        ``seed + i`` (as ``fit(..., seed=seed + i)``); a chunk's program is keyed by the seed of
        its first truth. The same settings give the same result on the same machine.
      features: the fit's ``features(images, conditions)`` (jax.numpy); without them a fit with
        ``fit_config.feature_weight > 0`` matches S's learned summaries (see :func:`magan.fit`).
      truths_per_program: truths fitted side by side in one compiled program (the last chunk
        may be smaller); 1 (the default, fastest on a CPU) fits each truth exactly as
        ``magan.fit(..., seed=seed + i)`` would.
      workdir: where ``calibration.json`` (and its figure, by the caller) go; enables resuming.
      progress: show progress bars (``None``: unless MAGAN_QUIET is set).
    Returns:
      ``{"settings", "names", "truths", "means", "stds", "raw_means", "stat_stds", "seconds",
      "warnings", "summary", "summary_statistical"}``: truths, means and stds (T, P) as lists in
      physical units; ``raw_means`` and ``stat_stds`` (T, P) each fit's mean before bias
      correction and its statistical std (the bootstrap spread alone), and
      ``summary_statistical`` their calibration: what the fit would claim without the simulator;
      ``seconds`` (T,) each truth's share of its chunk's wall time; ``warnings`` (T,) the names
      of each fit's warnings; ``reference_at`` and ``reference_means`` (T,) each fit's
      :attr:`FitResult.reference_at <magan.FitResult.reference_at>` and ``reference_means`` as
      lists (None where the fit had no reference set, and for truths fitted by an older magan
      whose file this run resumed).
    """
    space = emulator.space
    cfg, truths, settings = _setup(space, n_truths, n_targets, fit_config, seed, inner, truths,
                                   truths_per_program)
    path = None if workdir is None else Path(workdir) / "calibration.json"
    done = _resumed(path, settings, truths)
    n, chunk = truths.shape[0], truths_per_program
    for a in range(len(done["means"]), n, chunk):
        t0 = time.perf_counter()
        results = _fit_chunk(emulator, simulator, truths, range(a, min(a + chunk, n)),
                             settings, cfg, features, progress)
        for res in results:
            done["means"].append(res.mean.tolist())
            done["stds"].append(res.std.tolist())
            done["seconds"].append((time.perf_counter() - t0) / len(results))
            done["warnings"].append(list(res.warnings))
            done["raw_means"].append(res.raw_mean.tolist())
            done["stat_stds"].append(np.asarray(res.stat_std, np.float64).tolist())
            for k in _REFERENCE_FIELDS:
                v = getattr(res, k)
                done[k].append(None if v is None else np.asarray(v, np.float64).tolist())
        if path is not None:
            atomic_write_json(path, {"settings": settings, "names": list(space.names),
                                     "truths": truths.tolist(), **done})
    _warn_once(done["warnings"])
    summary = summarise_calibration(space.names, truths, np.array(done["means"]),
                                    np.array(done["stds"]), space.width)
    statistical = summarise_calibration(space.names, truths, np.array(done["raw_means"]),
                                        np.array(done["stat_stds"]), space.width)
    result = {"settings": settings, "names": list(space.names), "truths": truths.tolist(), **done,
              "summary": summary, "summary_statistical": statistical}
    if path is not None:
        atomic_write_json(path, result)
    return result


def fit_calibration(emulator: Emulator, simulator, *, n_truths: int = 20, n_targets: int = 500,
                    fit_config: FitConfig | None = None, seed: int = 0, inner: float = 0.8,
                    workdir=None, progress: bool | None = None, fit_features=None) -> dict:
    """magan 0.1's name for :func:`calibrate` with one truth per program (each truth fitted
    exactly as ``magan.fit(..., seed=seed + i)`` fits it); ``fit_features`` is its
    ``features``."""
    return calibrate(emulator, simulator, n_truths=n_truths, n_targets=n_targets,
                     fit_config=fit_config, seed=seed, inner=inner, features=fit_features,
                     truths_per_program=1, workdir=workdir, progress=progress)


def _setup(space, n_truths, n_targets, fit_config, seed, inner, truths, truths_per_program):
    """The fit config, the truths (T, P) physical and the settings that a resumed run must
    share, with the arguments checked."""
    if not isinstance(truths_per_program, int) or truths_per_program < 1:
        raise ValueError(f"truths_per_program must be an integer >= 1, got "
                         f"{truths_per_program!r}; 1 fits one truth per program.")
    if not isinstance(n_targets, int) or n_targets < 2:
        raise ValueError(f"n_targets must be an integer >= 2 (images per truth), got "
                         f"{n_targets!r}.")
    if truths is None:
        if n_truths < 2:
            raise ValueError(f"n_truths must be at least 2 to measure a coverage, got "
                             f"{n_truths}.")
        if not 0 < inner <= 1:
            raise ValueError(f"inner must be in (0, 1], got {inner}.")
        rng = np.random.default_rng([seed, 4242])
        truths = space.from_unit(0.5 + inner * (rng.random((n_truths, space.dim)) - 0.5))
    else:
        if np.ndim(truths) != 2:
            raise ValueError(f"truths must be an array (T, {space.dim}) of points "
                             f"{list(space.names)}, got shape {np.shape(truths)}.")
        truths = space.check(truths, what="truths")
        if truths.shape[0] < 2:
            raise ValueError(f"truths has {truths.shape[0]} row(s); give at least 2 truth points "
                             "to measure a coverage.")
    cfg = fit_config or FitConfig()
    settings = {"n_truths": int(truths.shape[0]), "n_targets": n_targets, "seed": seed,
                "inner": inner, "truths_per_program": truths_per_program,
                "fit_config": to_jsonable(cfg.__dict__)}
    return cfg, truths, settings


# per-truth fields that files written before they existed lack: None for their truths
_REFERENCE_FIELDS = ("reference_at", "reference_means")


def _resumed(path, settings: dict, truths) -> dict:
    """What an earlier run with the same settings finished (whole chunks), read from ``path``;
    empty lists without. An earlier run with fewer (or more) truths counts when the truths it
    fitted are the first of ``truths`` (as drawn truths are: the first k of n are those of k), so
    a calibration can be extended with more truths."""
    done: dict = {"means": [], "stds": [], "seconds": [], "warnings": [], "raw_means": [],
                  "stat_stds": [], **{k: [] for k in _REFERENCE_FIELDS}}
    if path is None or not path.exists():
        return done
    old = json.loads(path.read_text())

    def but_n(d: dict) -> dict:
        return {k: v for k, v in d.items() if k != "n_truths"}

    if (but_n(old.get("settings", {})) != but_n(json.loads(json.dumps(settings)))
            or any(k not in old for k in done if k not in _REFERENCE_FIELDS)):
        return done
    n, chunk = len(truths), settings["truths_per_program"]
    keep = min(len(old["means"]), n)
    if old.get("truths", [])[:keep] != truths.tolist()[:keep]:
        return done
    keep = keep if keep == n else keep - keep % chunk
    return {k: list(old.get(k, [None] * keep))[:keep] for k in done}


def _fit_chunk(emulator, simulator, truths, rows, settings: dict, cfg, features, progress):
    """The fits (:func:`~magan.fitting.stage.fit_many`) of the truths ``rows`` in one program,
    each on ``n_targets`` images simulated at its truth (at conditions drawn over the condition
    space when the emulator has them)."""
    from magan.fitting.stage import fit_many

    seed, n_targets, space = settings["seed"], settings["n_targets"], emulator.space
    sets, conds = [], []
    for i in rows:
        trng = np.random.default_rng([seed, 4243, i])
        cond = None
        if emulator.conditions is not None:
            cond = emulator.conditions.sample(trng, n_targets)
        sets.append(simulator.simulate(trng, np.tile(truths[i], (n_targets, 1)), space,
                                       conditions=cond))
        conds.append(cond)
    return fit_many(emulator, sets, cfg, seed=seed + rows[0], simulator=simulator,
                    target_conditions=None if emulator.conditions is None else conds,
                    features=features, warn=False, progress=progress)


def _warn_once(per_truth: list) -> None:
    """One FitWarning naming how many truths' fits warned, and of what."""
    from magan.fitting.diagnostics import FitWarning

    flagged = [w for w in per_truth if w]
    if flagged:
        names = sorted({n for w in flagged for n in w})
        warnings.warn(f"{len(flagged)} of {len(per_truth)} calibration fits warned "
                      f"({', '.join(names)}); result['warnings'] lists each truth's.", FitWarning,
                      stacklevel=3)
