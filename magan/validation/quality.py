"""Emulator quality point by point over the parameter space, judged against the simulator itself.

At each of ``n_points`` points the simulator makes two independent sets (T, T') and the emulator
one (E) of ``n_per_point`` images; high-level features (a study supplies them; e.g. the line's
position, slope, extent and thickness) are compared within each point:

* ``bias``: ``|mean_E - mean_T|``, in the feature's own units, next to the same number for T' vs T
  (the floor set by finite samples). A misplaced line shows up here.
* ``spread ratio``: ``std_E / std_T`` (1 is right; a blurred or collapsed emulator is off),
  computed by :func:`spread_ratios` for both users below.

:func:`compare_to_simulator` (used by the studies) averages them over points and reports
pixel-level numbers (mean-image distance and MMD^2) beside them. :func:`variety` (the validation
suite's ``coverage`` check) takes the median ratio and its slope against every unit parameter, to
tell whether emulated variety follows simulated variety across the space.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from magan.emulator import Emulator
from magan.simulators.base import Simulator
from magan.validation.closure import image_set_distance
from magan.validation.samples import random_unit, sources_at

__all__ = ["compare_to_simulator", "spread_ratios", "variety"]


def spread_ratios(reference: np.ndarray, *others: np.ndarray, eps: float) -> tuple:
    """Per-point spread ratios ``std(other) / (std(reference) + eps)``.

    Args:
      reference: (points, per_point, F) features of the reference set (the simulator's T).
      others: arrays of the same shape (E, T', ...).
      eps: added to the reference's std (the features' units) against division by 0.
    Returns:
      One (points, F) array per ``other``, dimensionless; the standard deviations are over the
      ``per_point`` axis (``ddof = 0``).
    """
    scale = reference.std(1) + eps
    return tuple(x.std(1) / scale for x in others)


def _feature_names(names, n_features: int) -> list:
    """``names`` as a list, or ``f0``, ``f1``, ... for ``n_features`` unnamed features."""
    return list(names or [f"f{j}" for j in range(n_features)])


def _pixel_distances(sim_a, sim_b, emu, n_points: int, n_per_point: int) -> dict:
    """Mean over points of :func:`image_set_distance` of E vs T and T' vs T (point by point)."""
    pix_e, pix_t = [], []
    for i in range(n_points):
        sl = slice(i * n_per_point, (i + 1) * n_per_point)
        pix_e.append(image_set_distance(emu[sl], sim_a[sl]))
        pix_t.append(image_set_distance(sim_b[sl], sim_a[sl]))
    return {
        "emulator_vs_simulator": {k: float(np.mean([d[k] for d in pix_e])) for k in pix_e[0]},
        "simulator_vs_simulator": {k: float(np.mean([d[k] for d in pix_t])) for k in pix_t[0]},
    }


def compare_to_simulator(emulator: Emulator, simulator: Simulator, *, n_points: int = 64,
                         n_per_point: int = 32, seed: int = 0,
                         features: Callable[[np.ndarray], np.ndarray] | None = None,
                         feature_names=None) -> dict:
    """Compare emulator and simulator at random points of the space; see the module docstring.

    Args:
      emulator, simulator: a trained emulator and the simulator it emulates (no conditions).
      n_points, n_per_point: points drawn uniformly over the space, images per point and source.
      features: optional ``features(images (N, H, W, C)) -> (N, F)``, physical units.
      feature_names: F names (default ``f0``, ``f1``, ...).
    Returns:
      ``{"n_points", "n_per_point", "pixels": {"emulator_vs_simulator", "simulator_vs_simulator"}}``
      and, with ``features``, ``"features": {name: {"bias_emulator", "bias_simulator"`` (feature
      units, averaged over points), ``"spread_ratio_emulator", "spread_ratio_simulator"}}``
      (medians over points).
    """
    space = emulator.space
    rng = np.random.default_rng(seed)
    pts = space.sample(rng, n_points)
    rows = np.repeat(pts, n_per_point, axis=0)
    sim_a = simulator.simulate(rng, rows, space)
    sim_b = simulator.simulate(rng, rows, space)
    emu = emulator.sample(rows, seed=seed)
    out: dict = {"n_points": n_points, "n_per_point": n_per_point,
                 "pixels": _pixel_distances(sim_a, sim_b, emu, n_points, n_per_point)}
    if features is not None:
        fa, fb, fe = (features(x).reshape(n_points, n_per_point, -1) for x in (sim_a, sim_b, emu))
        names = _feature_names(feature_names, fa.shape[-1])
        bias_e = np.abs(fe.mean(1) - fa.mean(1)).mean(0)
        bias_t = np.abs(fb.mean(1) - fa.mean(1)).mean(0)
        ratio_e, ratio_t = (np.median(r, axis=0) for r in spread_ratios(fa, fe, fb, eps=1e-9))
        out["features"] = {
            nm: {"bias_emulator": float(bias_e[j]), "bias_simulator": float(bias_t[j]),
                 "spread_ratio_emulator": float(ratio_e[j]),
                 "spread_ratio_simulator": float(ratio_t[j])}
            for j, nm in enumerate(names)
        }
    return out


def _log_ratio_slopes(axis_names, unit: np.ndarray, log_r: np.ndarray) -> dict:
    """Least-squares slope of ``log_r`` (points,) against each unit coordinate (points, P + K)."""
    slopes = {}
    for j, nm in enumerate(axis_names):
        u = unit[:, j] - unit[:, j].mean()
        slopes[nm] = float((u @ (log_r - log_r.mean())) / max(u @ u, 1e-12))
    return slopes


def variety(sampler, simulator, rng: np.random.Generator, *, n_points: int, per_point: int,
            features=None, feature_names=None, embed=None) -> dict:
    """Spread ratio std_E / std_T per point and feature, and its slope against each parameter.

    Args:
      sampler: the emulator (its parameter and condition spaces set the points).
      simulator: the simulator it emulates.
      rng: draws the ``n_points`` points (uniform in the unit cube) and the simulations.
      n_points, per_point: points, and images per point of each of T, T' and E.
      features: ``features(images, conditions) -> (N, F)`` high-level features (physical units),
        named ``feature_names``; without them ``embed(images, conditions) -> (N, F)`` (learned
        features) is used.
    Returns:
      The medians over points and features of the ratios E / T and T' / T (the floor), the
      median per feature, the slope of the per-point mean log ratio against every unit parameter
      and condition, and the points (unit cube) with their log ratios.
    """
    space, cs = sampler.space, sampler.conditions
    unit = random_unit(sampler, rng, n_points)
    _, cond, t1, t2, e = sources_at(sampler, simulator, rng, np.repeat(unit, per_point, axis=0))
    if features is not None:
        fx = [np.asarray(features(x, cond), np.float64) for x in (t1, t2, e)]
        names = _feature_names(feature_names, fx[0].shape[1])
    else:
        fx = [embed(x, cond) for x in (t1, t2, e)]
        names = [f"learned_{j}" for j in range(fx[0].shape[1])]
    f1, f2, fe = (f.reshape(n_points, per_point, -1) for f in fx)
    ratio_e, ratio_t = spread_ratios(f1, fe, f2, eps=1e-12)  # (points, F)
    log_r = np.log(np.clip(ratio_e, 1e-6, None)).mean(1)  # per point, averaged over features
    axis_names = list(space.names) + ([] if cs is None else list(cs.names))
    return {
        "features": names, "n_points": n_points, "per_point": per_point,
        "median_spread_ratio_emulator": float(np.median(ratio_e)),
        "median_spread_ratio_floor": float(np.median(ratio_t)),
        "per_feature_median_ratio": dict(zip(names, np.median(ratio_e, 0).tolist())),
        "log_ratio_slope_per_unit_parameter": _log_ratio_slopes(axis_names, unit, log_r),
        "points_unit": unit.tolist(), "point_log_ratio": log_r.tolist(),
    }
