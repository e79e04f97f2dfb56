"""Fit calibration: does the fit's reported uncertainty mean anything?

Over ``n_truths`` truth points drawn uniformly from the central part of the parameter box, the
simulator makes a target set, :func:`magan.fit` fits it (with the simulator, so bias-corrected as
a user would run it), and the result is compared with the truth:

* **bias** per parameter: the mean of ``fit - truth`` over truths, in % of the parameter's range,
  with its standard error; the **rms error** beside it.
* **pulls** ``(fit - truth) / reported_std``; for an honest uncertainty they are standard normal:
  the **coverage** (fraction of truths within 1 and 2 reported sigma) is then 68.3 % and 95.4 %.
  Lower coverage means the reported spread is too small (the fit is over-confident).

Each finished truth is written to ``workdir/calibration.json`` at once, so an interrupted
calibration resumes where it stopped when it is run again with the same settings.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np

from magan.config import FitConfig
from magan.emulator import Emulator
from magan.runtime.io import atomic_write_json, to_jsonable

__all__ = ["fit_calibration", "summarise_calibration", "NOMINAL_COVERAGE"]

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


def fit_calibration(emulator: Emulator, simulator, *, n_truths: int = 20, n_targets: int = 500,
                    fit_config: FitConfig | None = None, seed: int = 0, inner: float = 0.8,
                    workdir=None, progress: bool | None = None, fit_features=None) -> dict:
    """Fit ``n_truths`` simulated target sets and measure bias and coverage (module docstring).

    Args:
      emulator, simulator: the trained emulator and the simulator it emulates.
      n_truths: truth points, drawn uniformly from the central ``inner`` fraction of every
        parameter's range (in the unit cube; fits right at a bound are a separate question).
      n_targets: target images per truth. With per-event conditions they are drawn uniformly
        over the condition space (log-uniform on log scales), as a test beam at mixed energies.
      fit_config: the fit settings (default :class:`FitConfig`).
      fit_features: the fit's ``features(images, conditions)`` (jax.numpy), needed when
        ``fit_config.feature_weight > 0`` (see :func:`magan.fit`).
      workdir: where ``calibration.json`` (and its figure, by the caller) go; enables resuming.
    Returns:
      ``{"settings", "truths", "means", "stds", "summary"}`` (lists, physical units).
    """
    if n_truths < 2:
        raise ValueError(f"n_truths must be at least 2 to measure a coverage, got {n_truths}.")
    if not 0 < inner <= 1:
        raise ValueError(f"inner must be in (0, 1], got {inner}.")
    from magan.fitting.stage import fit

    cfg = fit_config or FitConfig()
    space = emulator.space
    settings = {"n_truths": n_truths, "n_targets": n_targets, "seed": seed, "inner": inner,
                "fit_config": to_jsonable(cfg.__dict__)}
    rng = np.random.default_rng([seed, 4242])
    unit = 0.5 + inner * (rng.random((n_truths, space.dim)) - 0.5)
    truths = space.from_unit(unit)
    path = None if workdir is None else Path(workdir) / "calibration.json"
    done: dict = {"means": [], "stds": [], "seconds": []}
    if path is not None and path.exists():
        old = json.loads(path.read_text())
        if old.get("settings") == json.loads(json.dumps(settings)):
            done = {k: old[k] for k in ("means", "stds", "seconds")}
    for i in range(len(done["means"]), n_truths):
        t0 = time.perf_counter()
        trng = np.random.default_rng([seed, 4243, i])
        cond = None
        if emulator.conditions is not None:
            cond = emulator.conditions.sample(trng, n_targets)
        targets = simulator.simulate(trng, np.tile(truths[i], (n_targets, 1)), space,
                                     conditions=cond)
        res = fit(emulator, targets, cfg, seed=seed + i, simulator=simulator,
                  target_conditions=cond, features=fit_features, progress=progress)
        done["means"].append(res.mean.tolist())
        done["stds"].append(res.std.tolist())
        done["seconds"].append(time.perf_counter() - t0)
        if path is not None:
            atomic_write_json(path, {"settings": settings, "truths": truths.tolist(), **done})
    summary = summarise_calibration(space.names, truths, np.array(done["means"]),
                                    np.array(done["stds"]), space.width)
    result = {"settings": settings, "names": list(space.names), "truths": truths.tolist(), **done,
              "summary": summary}
    if path is not None:
        atomic_write_json(path, result)
    return result
