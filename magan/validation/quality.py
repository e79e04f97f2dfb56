"""Emulator quality over the whole parameter space, judged against the simulator itself.

At ``n_points`` parameter points drawn uniformly over the space, the simulator makes two
independent sets (T, T') and the emulator one (E), ``n_per_point`` images each. For every
high-level feature (a study supplies them; e.g. the line's position, slope, extent and thickness)
the report gives, averaged over points:

* ``bias``: ``|mean_E - mean_T|``, in the feature's own units, next to the same number for T' vs T
  (the floor set by finite samples). A misplaced line shows up here.
* ``spread_ratio``: ``std_E / std_T`` (1 is right; a blurred or collapsed emulator is off).

Pixel-level numbers (mean-image distance and MMD^2) are reported beside them.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from magan.validation.closure import image_set_distance
from magan.emulator import Emulator
from magan.simulators.base import Simulator

__all__ = ["compare_to_simulator"]


def compare_to_simulator(emulator: Emulator, simulator: Simulator, *, n_points: int = 64,
                         n_per_point: int = 32, seed: int = 0,
                         features: Callable[[np.ndarray], np.ndarray] | None = None,
                         feature_names=None) -> dict:
    """Compare emulator and simulator at random points of the space; see the module docstring."""
    space = emulator.space
    rng = np.random.default_rng(seed)
    pts = space.sample(rng, n_points)
    rows = np.repeat(pts, n_per_point, axis=0)
    sim_a = simulator.simulate(rng, rows, space)
    sim_b = simulator.simulate(rng, rows, space)
    emu = emulator.sample(rows, seed=seed)
    out: dict = {"n_points": n_points, "n_per_point": n_per_point}
    pix_e, pix_t = [], []
    for i in range(n_points):
        sl = slice(i * n_per_point, (i + 1) * n_per_point)
        pix_e.append(image_set_distance(emu[sl], sim_a[sl]))
        pix_t.append(image_set_distance(sim_b[sl], sim_a[sl]))
    out["pixels"] = {
        "emulator_vs_simulator": {k: float(np.mean([d[k] for d in pix_e])) for k in pix_e[0]},
        "simulator_vs_simulator": {k: float(np.mean([d[k] for d in pix_t])) for k in pix_t[0]},
    }
    if features is not None:
        fa, fb, fe = (features(x).reshape(n_points, n_per_point, -1) for x in (sim_a, sim_b, emu))
        names = feature_names or [f"f{i}" for i in range(fa.shape[-1])]
        bias_e = np.abs(fe.mean(1) - fa.mean(1)).mean(0)
        bias_t = np.abs(fb.mean(1) - fa.mean(1)).mean(0)
        sa = fa.std(1) + 1e-9
        ratio_e = np.median(fe.std(1) / sa, axis=0)
        ratio_t = np.median(fb.std(1) / sa, axis=0)
        out["features"] = {
            nm: {"bias_emulator": float(bias_e[j]), "bias_simulator": float(bias_t[j]),
                 "spread_ratio_emulator": float(ratio_e[j]),
                 "spread_ratio_simulator": float(ratio_t[j])}
            for j, nm in enumerate(names)
        }
    return out
