"""The seven checks of the validation suite, each: compute its numbers, then judge them.

Every ``check_<name>`` returns the dict that becomes ``report.json["checks"][name]``: the numbers
(computed by the measuring modules: :mod:`~magan.validation.distances`,
:mod:`~magan.validation.constraints`, :mod:`~magan.validation.two_sample`,
:mod:`~magan.validation.memorisation`, :mod:`~magan.validation.coverage`,
:mod:`~magan.validation.quality`, :mod:`~magan.validation.calibration`) and a ``status``, which
only the ``status_of_<check>`` functions of :mod:`~magan.validation.rules` decide. A check that
cannot run returns ``{"status": "skipped", "reason": ...}``.
"""

from __future__ import annotations

import numpy as np

from magan.validation import rules
from magan.validation.calibration import calibrate
from magan.validation.constraints import violation_rates
from magan.validation.coverage import prdc
from magan.validation.distances import (
    frechet_distance_extrapolated,
    kernel_distance,
    ks_distance,
    separation_power,
    wasserstein_1,
)
from magan.validation.memorisation import memorisation_check
from magan.validation.samples import Samples, replay_training
from magan.validation.two_sample import classifier_two_sample_test

__all__ = ["check_distributions", "check_constraints", "check_learned_features",
           "check_classifier", "check_memorisation", "check_coverage", "check_calibration",
           "in_simulator_spread"]


def _distances(a, b, c, bins: int) -> dict:
    """1-D distances of sample ``b`` vs ``a`` (``emulator``) and of ``c`` vs ``a`` (``floor``):
    separation power and KS (0 to 1), Wasserstein-1 (the variable's units); and the status."""
    out = {}
    for label, x in (("emulator", b), ("floor", c)):
        out[label] = {"separation_power": separation_power(a, x, bins),
                      "ks": ks_distance(a, x), "wasserstein_1": wasserstein_1(a, x)}
    out["status"] = rules.status_of_distribution(out["emulator"]["separation_power"],
                                                 out["floor"]["separation_power"])
    return out


def check_distributions(s: Samples, *, features=None, feature_names=None, voxel_transform=None,
                        bins: int = 30):
    """Distances of E vs T (and T' vs T) for the pooled pixel values and every feature.

    Args:
      s: the suite's samples.
      features: ``features(images, conditions) -> (N, F)`` (physical units), named
        ``feature_names`` (default ``f0``, ``f1``, ...).
      voxel_transform: maps the pooled pixel values (flat) before their distances (default: none).
      bins: histogram bins of the separation power.
    Returns:
      ``(check dict, hists)``; ``hists`` maps each variable to its (T values, E values) for the
      figure.
    """
    variables = {}
    vt = voxel_transform or (lambda v: v.ravel())
    variables["voxels"] = _distances(vt(s.t1.ravel()), vt(s.e.ravel()), vt(s.t2.ravel()), bins)
    hists = {"voxels": (vt(s.t1.ravel()), vt(s.e.ravel()))}
    if features is not None:
        f1, f2, fe = (np.asarray(features(x, s.cond), np.float64) for x in (s.t1, s.t2, s.e))
        names = feature_names or [f"f{j}" for j in range(f1.shape[1])]
        for j, nm in enumerate(names):
            variables[nm] = _distances(f1[:, j], fe[:, j], f2[:, j], bins)
            hists[nm] = (f1[:, j], fe[:, j])
    status = rules.worst(v["status"] for v in variables.values())
    return {"status": status, "variables": variables}, hists


def check_constraints(constraints, s: Samples) -> dict:
    """Violation rates (fractions of samples) of every constraint for T and E, with statuses."""
    if not constraints:
        return {"status": "skipped", "reason": "no constraints given"}
    rates = violation_rates(constraints, {"simulator": s.t1, "emulator": s.e}, s.params, s.cond)
    for row in rates.values():
        row["status"] = rules.status_of_constraint(row["simulator"]["rate"],
                                                   row["emulator"]["rate"], row["emulator"]["n"])
    return {"status": rules.worst(r["status"] for r in rates.values()), "constraints": rates}


def in_simulator_spread(g1, g2, ge):
    """Each feature column of (N, F) embeddings divided by T's (``g1``'s) standard deviation of
    it, so that every unit counts alike."""
    scale = g1.std(0) + 1e-9
    return g1 / scale, g2 / scale, ge / scale


def check_learned_features(g1, g2, ge, seed: int) -> dict:
    """Extrapolated Frechet distance and KID of E's (``ge``) and T''s (``g2``, the floor)
    embeddings (N, F) against T's (``g1``), in units of T's spread; ``fd_inf_relative`` is
    ``FD_inf / Tr(C_T)`` and ``kid_z`` the KID over its standard error."""
    g1, g2, ge = in_simulator_spread(g1, g2, ge)
    tr = float(np.trace(np.cov(g1, rowvar=False)))
    out = {}
    for label, x in (("emulator", ge), ("floor", g2)):
        fd = frechet_distance_extrapolated(g1, x, seed=seed)
        kid = kernel_distance(g1, x, seed=seed)
        out[label] = {**fd, "fd_inf_relative": fd["fd_inf"] / tr, **kid,
                      "kid_z": kid["kid"] / max(kid["stderr"], 1e-300)}
    em = out["emulator"]
    out["status"] = rules.status_of_learned_features(em["fd_inf_relative"], em["kid_z"])
    return out


def check_classifier(emulator, s: Samples, *, steps: int, seed: int, progress=None) -> dict:
    """Classifier two-sample test of E against T in the emulator's network space, each image
    with its unit-cube point (N, P + K) as input; the AUC decides."""
    na, nb = (np.asarray(emulator.transform.forward(x, s.cond), np.float32) for x in (s.t1, s.e))
    res = classifier_two_sample_test(na, nb, conditions_a=s.unit, conditions_b=s.unit,
                                     steps=steps, seed=seed, progress=progress)
    res["status"] = rules.status_of_classifier(res["auc"])
    return res


def check_memorisation(emulator, simulator, n: int, seed: int) -> dict:
    """Memorisation check of E against the first ``n`` replayed training images (network space),
    with fresh simulations at the same points as the reference."""
    replay, why = replay_training(emulator, simulator, n)
    if replay is None:
        return {"status": "skipped", "reason": why}
    unit, train = replay
    space, cs = emulator.space, emulator.conditions
    params = space.from_unit(unit[:, :space.dim].astype(np.float64))
    cond = None if cs is None else cs.from_unit(unit[:, space.dim:].astype(np.float64))
    gen = emulator.transform.forward(emulator.sample(params, cond, seed=seed + 5), cond)
    fresh = emulator.transform.forward(
        simulator.simulate(np.random.default_rng([seed, 55]), params, space, conditions=cond), cond)
    res = memorisation_check(np.asarray(gen, np.float32), train, np.asarray(fresh, np.float32))
    config = emulator.info.get("config", {})
    total = config.get("steps", 0) * emulator.info["config"]["batch_size"] * 2
    res["training_stream_images"] = int(total)
    res["note"] = (f"training set: the first {n} of the {total} images of the training stream "
                   "(each seen once), replayed from the emulator's seed")
    res["status"] = rules.status_of_memorisation(res["copy_fraction"])
    return res


def check_coverage(g1, g2, ge, var: dict, k: int) -> dict:
    """PRDC of E's (``ge``) and T''s (``g2``, the floor) embeddings (N, F) against T's (``g1``),
    in units of T's spread, with ``k`` neighbours; judged with the spread ratios of ``var``
    (:func:`~magan.validation.quality.variety`)."""
    g1, g2, ge = in_simulator_spread(g1, g2, ge)
    emu, floor = prdc(g1, ge, k=k), prdc(g1, g2, k=k)
    status = rules.status_of_coverage(emu["coverage"], floor["coverage"],
                                      var["median_spread_ratio_emulator"])
    return {"status": status, "prdc_emulator": emu, "prdc_floor": floor, "variety": var}


def check_calibration(emulator, simulator, *, n_truths: int, n_targets: int, fit_config, seed: int,
                      out, progress=None, fit_features=None) -> dict:
    """:func:`~magan.validation.calibration.calibrate` over ``n_truths`` truths of
    ``n_targets`` images each (resuming from ``out/calibration.json``); skipped for 0 truths."""
    if not n_truths:
        return {"status": "skipped", "reason": "calibration_truths = 0"}
    res = calibrate(emulator, simulator, n_truths=n_truths, n_targets=n_targets,
                    fit_config=fit_config, seed=seed, workdir=out, progress=progress,
                    features=fit_features)
    s = res["summary"]
    s["status"] = rules.status_of_calibration(s["coverage_1sigma"], s["coverage_2sigma"],
                                              s["nominal"], s["coverage_stderr"])
    return {"status": s["status"], **res}
