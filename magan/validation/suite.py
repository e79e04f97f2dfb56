"""The validation suite: is the emulator a trustworthy simulator, and is the fit honest?

:func:`validate` runs every check below on an emulator and the simulator it emulates and writes
``report.json``, ``summary.md`` and PNG figures into ``out``. Each check ends in **pass**, **warn**
or **fail** by the stated rule, next to its numbers, and where finite samples make a number
non-zero even for a perfect emulator, the same number between two independent simulated samples
(the *floor*) is reported beside it.

Samples: ``n_samples`` points (parameters and conditions) are drawn uniformly over the space; the
simulator makes two independent images at each (T and T'), the emulator one (E).

1. ``distributions``: KS, Wasserstein-1 and separation power of E vs T (and T' vs T) for every
   high-level feature and for the pooled pixel values. Rule per variable: pass if
   ``S <= 0.05 + floor``, warn if ``S <= 0.2``, else fail; the check takes the worst.
2. ``constraints``: violation rate of every physical constraint for T and E. Pass if E's rate
   exceeds T's by at most ``max(0.01, 3 sigma)``, warn up to +0.05, else fail.
3. ``learned_features``: Frechet distance (extrapolated to infinite N) and unbiased KID on the
   embedding of a network trained on the simulator alone (:mod:`magan.validation.learned_features`), each
   feature in units of the simulator's spread. Pass if ``FD_inf / Tr(C_T) < 0.02``, or KID is
   within 3 standard errors of 0 and that relative FD is below 0.1; warn if the relative FD is
   below 0.1; else fail.
4. ``classifier``: classifier two-sample test on the emulator's network-space images, with each
   sample's parameters and conditions as input (a test of the conditional distribution). Pass if
   ``AUC < 0.6``, warn below 0.75, else fail (0.5 = indistinguishable).
5. ``memorisation``: the emulator at the points of its training simulations (the training stream
   is replayed from its seed) vs fresh simulations there (:mod:`magan.validation.memorisation`). Pass if the
   copy fraction is <= 0.03, warn <= 0.1, else fail.
6. ``coverage``: PRDC of E against T on the learned features (floor: T' against T), and per point
   of ``variety_points`` points the spread ratio std_E / std_T of each feature over
   ``variety_per_point`` images; its slope against each unit parameter says whether emulated
   variety follows simulated variety across the space. Pass if coverage >= floor - 0.1 and the
   median spread ratio is in [0.8, 1.25]; warn if coverage >= floor - 0.3 and the ratio in
   [0.6, 1.6]; else fail.
7. ``calibration``: :func:`magan.validation.calibration.fit_calibration` over ``calibration_truths`` truths.
   Pass if the 1- and 2-sigma coverages are within 2 binomial standard errors below nominal (or
   above); warn if the 2-sigma coverage is at least 0.7; else fail (the reported spread is too
   small to mean much).
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from magan.validation.calibration import fit_calibration
from magan.config import FitConfig
from magan.validation.constraints import violation_rates
from magan.validation.coverage import prdc
from magan.validation.distances import (
    frechet_distance_extrapolated,
    kernel_distance,
    ks_distance,
    separation_power,
    wasserstein_1,
)
from magan.runtime.io import atomic_write_bytes, atomic_write_json, to_jsonable
from magan.validation.learned_features import train_feature_network
from magan.validation.memorisation import memorisation_check
from magan.validation.two_sample import classifier_two_sample_test

__all__ = ["ValidationConfig", "VALIDATION_PRESETS", "validate"]

STATUS_ORDER = {"pass": 0, "warn": 1, "fail": 2, "skipped": -1}


@dataclass(frozen=True)
class ValidationConfig:
    """Sample sizes and training lengths of :func:`validate`'s checks."""

    n_samples: int = 2000  # points, each simulated twice and emulated once
    bins: int = 30  # histogram bins of the separation power
    feature_steps: int = 800  # training steps of the independent feature network
    classifier_steps: int = 800  # training steps of the two-sample classifier
    memorisation_n: int = 2000  # replayed training images (and emulated / fresh ones)
    prdc_k: int = 5
    variety_points: int = 32
    variety_per_point: int = 32
    calibration_truths: int | None = None  # None: the study's default (20 line, 10 calorimeter)
    calibration_targets: int | None = None  # target images per truth; None: the study's (500)

    def __post_init__(self):
        for f in ("n_samples", "feature_steps", "classifier_steps", "variety_points"):
            if getattr(self, f) < 1:
                raise ValueError(f"ValidationConfig.{f} must be >= 1, got {getattr(self, f)}.")
        if self.n_samples < 40:
            raise ValueError(f"ValidationConfig.n_samples must be >= 40 (the classifier splits "
                             f"it in halves, KID in 10 subsets), got {self.n_samples}.")
        if self.variety_per_point < 4:
            raise ValueError("ValidationConfig.variety_per_point must be >= 4 to measure a spread.")


VALIDATION_PRESETS = {
    "tiny": ValidationConfig(n_samples=200, feature_steps=60, classifier_steps=60,
                             memorisation_n=128, variety_points=4, variety_per_point=8,
                             calibration_truths=0, calibration_targets=64),
    "default": ValidationConfig(),
}


def _worst(statuses) -> str:
    ranked = [s for s in statuses if s != "skipped"]
    return max(ranked, key=STATUS_ORDER.__getitem__) if ranked else "skipped"


def _random_unit(sampler, rng, n):
    """(n, P + K) points drawn uniformly in the unit cube of parameters and conditions."""
    cs = sampler.conditions
    return rng.random((n, sampler.space.dim + (0 if cs is None else cs.dim)))


def _sources_at(sampler, simulator, rng, unit):
    """At unit-cube rows (N, P + K): params, cond and the T, T', E images (physical, float32)."""
    space, cs = sampler.space, sampler.conditions
    params = space.from_unit(unit[:, :space.dim])
    cond = None if cs is None else cs.from_unit(unit[:, space.dim:])
    t1 = simulator.simulate(rng, params, space, conditions=cond)
    t2 = simulator.simulate(rng, params, space, conditions=cond)
    e = sampler.sample(params, cond, seed=int(rng.integers(2**31)))
    return params, cond, np.asarray(t1, np.float32), np.asarray(t2, np.float32), e


def _draw(sampler, simulator, rng, n):
    """Points (unit (n, P + K), params, cond) and T, T', E images (physical)."""
    unit = _random_unit(sampler, rng, n)
    return (unit, *_sources_at(sampler, simulator, rng, unit))


def _distances(a, b, c, bins):
    """1-D distances of b vs a and (floor) c vs a."""
    out = {}
    for label, x in (("emulator", b), ("floor", c)):
        out[label] = {"separation_power": separation_power(a, x, bins),
                      "ks": ks_distance(a, x), "wasserstein_1": wasserstein_1(a, x)}
    s, f = out["emulator"]["separation_power"], out["floor"]["separation_power"]
    out["status"] = "pass" if s <= 0.05 + f else "warn" if s <= 0.2 else "fail"
    return out


def check_distributions(t1, t2, e, cond, features, feature_names, voxel_transform, bins):
    variables = {}
    vt = voxel_transform or (lambda v: v.ravel())
    variables["voxels"] = _distances(vt(t1.ravel()), vt(e.ravel()), vt(t2.ravel()), bins)
    hists = {"voxels": (vt(t1.ravel()), vt(e.ravel()))}
    if features is not None:
        f1, f2, fe = (np.asarray(features(x, cond), np.float64) for x in (t1, t2, e))
        names = feature_names or [f"f{j}" for j in range(f1.shape[1])]
        for j, nm in enumerate(names):
            variables[nm] = _distances(f1[:, j], fe[:, j], f2[:, j], bins)
            hists[nm] = (f1[:, j], fe[:, j])
    return {"status": _worst(v["status"] for v in variables.values()), "variables": variables}, hists


def check_constraints(constraints, t1, e, params, cond):
    if not constraints:
        return {"status": "skipped", "reason": "no constraints given"}
    rates = violation_rates(constraints, {"simulator": t1, "emulator": e}, params, cond)
    for row in rates.values():
        rs, re_, n = row["simulator"]["rate"], row["emulator"]["rate"], row["emulator"]["n"]
        sigma = math.sqrt(max(rs * (1 - rs), 1.0 / n) / n)
        row["status"] = ("pass" if re_ - rs <= max(0.01, 3 * sigma) else
                         "warn" if re_ - rs <= 0.05 else "fail")
    return {"status": _worst(r["status"] for r in rates.values()), "constraints": rates}


def _in_simulator_spread(g1, g2, ge):
    """Each feature divided by the simulator's spread of it (T's std): every unit counts alike."""
    scale = g1.std(0) + 1e-9
    return g1 / scale, g2 / scale, ge / scale


def check_learned_features(g1, g2, ge, seed):
    g1, g2, ge = _in_simulator_spread(g1, g2, ge)
    tr = float(np.trace(np.cov(g1, rowvar=False)))
    out = {}
    for label, x in (("emulator", ge), ("floor", g2)):
        fd = frechet_distance_extrapolated(g1, x, seed=seed)
        kid = kernel_distance(g1, x, seed=seed)
        out[label] = {**fd, "fd_inf_relative": fd["fd_inf"] / tr, **kid,
                      "kid_z": kid["kid"] / max(kid["stderr"], 1e-300)}
    em = out["emulator"]
    rel = em["fd_inf_relative"]
    out["status"] = ("pass" if rel < 0.02 or (em["kid_z"] < 3 and rel < 0.1) else
                     "warn" if rel < 0.1 else "fail")
    return out


def check_coverage(g1, g2, ge, var, k):
    g1, g2, ge = _in_simulator_spread(g1, g2, ge)
    emu, floor = prdc(g1, ge, k=k), prdc(g1, g2, k=k)
    cov_ok = emu["coverage"] >= floor["coverage"] - 0.1
    cov_warn = emu["coverage"] >= floor["coverage"] - 0.3
    r = var["median_spread_ratio_emulator"]
    status = ("pass" if cov_ok and 0.8 <= r <= 1.25 else
              "warn" if cov_warn and 0.6 <= r <= 1.6 else "fail")
    return {"status": status, "prdc_emulator": emu, "prdc_floor": floor, "variety": var}


def variety(sampler, simulator, rng, n_points, per_point, features, feature_names, embed):
    """Spread ratio std_E / std_T per point and feature, and its slope against each parameter."""
    space, cs = sampler.space, sampler.conditions
    unit = _random_unit(sampler, rng, n_points)
    _, cond, t1, t2, e = _sources_at(sampler, simulator, rng, np.repeat(unit, per_point, axis=0))
    if features is not None:
        fx = [np.asarray(features(x, cond), np.float64) for x in (t1, t2, e)]
        names = list(feature_names or [f"f{j}" for j in range(fx[0].shape[1])])
    else:
        fx = [embed(x, cond) for x in (t1, t2, e)]
        names = [f"learned_{j}" for j in range(fx[0].shape[1])]
    f1, f2, fe = (f.reshape(n_points, per_point, -1) for f in fx)
    s1 = f1.std(1) + 1e-12
    ratio_e, ratio_t = fe.std(1) / s1, f2.std(1) / s1  # (points, F)
    log_r = np.log(np.clip(ratio_e, 1e-6, None)).mean(1)  # per point, averaged over features
    slopes = {}
    for j, nm in enumerate(list(space.names) + ([] if cs is None else list(cs.names))):
        u = unit[:, j] - unit[:, j].mean()
        slopes[nm] = float((u @ (log_r - log_r.mean())) / max(u @ u, 1e-12))
    return {
        "features": names, "n_points": n_points, "per_point": per_point,
        "median_spread_ratio_emulator": float(np.median(ratio_e)),
        "median_spread_ratio_floor": float(np.median(ratio_t)),
        "per_feature_median_ratio": dict(zip(names, np.median(ratio_e, 0).tolist())),
        "log_ratio_slope_per_unit_parameter": slopes,
        "points_unit": unit.tolist(), "point_log_ratio": log_r.tolist(),
    }


def replay_training(emulator, simulator, n: int):
    """The first ``n`` images of the emulator's training stream (network space), replayed from
    the seed and batch size it records, with their unit points; or ``None`` with a reason."""
    from magan.pretraining.feeding import batch_rng, draw_training_batch

    info = getattr(emulator, "info", {}) or {}
    if "seed" not in info or "batch_size" not in info.get("config", {}):
        return None, "the emulator records no training seed / batch size"
    if simulator.traceable:
        return None, "the simulator is JAX-traceable: its training stream is drawn on the device"
    units, xs = [], []
    while sum(len(u) for u in units) < n:
        unit, _, x1, _ = draw_training_batch(simulator, emulator.space,
                                             batch_rng(info["seed"], len(units)),
                                             info["config"]["batch_size"], emulator.transform)
        units.append(unit)
        xs.append(x1)
    return (np.concatenate(units)[:n], np.concatenate(xs)[:n]), None


def check_memorisation(emulator, simulator, n, seed):
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
    total = emulator.info.get("config", {}).get("steps", 0) * emulator.info["config"]["batch_size"] * 2
    res["training_stream_images"] = int(total)
    res["note"] = (f"training set: the first {n} of the {total} images of the training stream "
                   "(each seen once), replayed from the emulator's seed")
    c = res["copy_fraction"]
    res["status"] = "pass" if c <= 0.03 else "warn" if c <= 0.1 else "fail"
    return res


def check_calibration(emulator, simulator, n_truths, n_targets, fit_config, seed, out, progress,
                      fit_features=None):
    if not n_truths:
        return {"status": "skipped", "reason": "calibration_truths = 0"}
    res = fit_calibration(emulator, simulator, n_truths=n_truths, n_targets=n_targets,
                          fit_config=fit_config, seed=seed, workdir=out, progress=progress,
                          fit_features=fit_features)
    s = res["summary"]
    se, nom = s["coverage_stderr"], s["nominal"]
    ok1 = s["coverage_1sigma"] >= nom["1sigma"] - 2 * se["1sigma"]
    ok2 = s["coverage_2sigma"] >= nom["2sigma"] - 2 * se["2sigma"]
    s["status"] = "pass" if ok1 and ok2 else "warn" if s["coverage_2sigma"] >= 0.7 else "fail"
    return {"status": s["status"], **res}


# ----------------------------------------------------------------------------------- figures
def _plot_distributions(hists, labels, path):
    from magan.runtime.plots import plt, save_figure

    names = list(hists)
    cols = min(4, len(names))
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.8 * rows), squeeze=False)
    for ax, nm in zip(axes.ravel(), names):
        a, b = hists[nm]
        lo, hi = np.quantile(a, [0.001, 0.999])
        edges = np.linspace(lo, hi if hi > lo else lo + 1, 41)
        ax.hist(np.clip(a, edges[0], edges[-1]), edges, histtype="step", density=True,
                label="simulator", color="k")
        ax.hist(np.clip(b, edges[0], edges[-1]), edges, histtype="step", density=True,
                label="emulator", color="C1")
        ax.set_title(f"{labels.get(nm, nm)}", fontsize=9)
    for ax in axes.ravel()[len(names):]:
        ax.axis("off")
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


def _plot_calibration(cal, path):
    from magan.runtime.plots import plt, save_figure

    names = cal["names"]
    t, m, s = (np.asarray(cal[k]) for k in ("truths", "means", "stds"))
    fig, axes = plt.subplots(1, len(names) + 1, figsize=(3.3 * (len(names) + 1), 3.2))
    for j, (ax, nm) in enumerate(zip(axes, names)):
        lo, hi = t[:, j].min(), t[:, j].max()
        ax.plot([lo, hi], [lo, hi], "k:", lw=1)
        ax.errorbar(t[:, j], m[:, j], yerr=s[:, j], fmt="o", ms=3, capsize=2)
        c1 = cal["summary"]["per_parameter"][nm]["coverage_1sigma"]
        ax.set_title(f"{nm}: 1-sigma coverage {c1:.0%}", fontsize=9)
        ax.set_xlabel("truth")
        ax.set_ylabel("fit +- reported std")
    pulls = ((m - t) / np.maximum(s, 1e-300)).ravel()
    ax = axes[-1]
    ax.hist(np.clip(pulls, -6, 6), np.linspace(-6, 6, 25), density=True, color="C0", alpha=0.7)
    xs = np.linspace(-6, 6, 200)
    ax.plot(xs, np.exp(-xs ** 2 / 2) / math.sqrt(2 * math.pi), "k", lw=1, label="N(0, 1)")
    ax.set_title("pulls (fit - truth) / std, clipped to +-6", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


def _plot_variety(var, names, path):
    from magan.runtime.plots import plt, save_figure

    u = np.asarray(var["points_unit"])
    r = np.exp(np.asarray(var["point_log_ratio"]))
    fig, axes = plt.subplots(1, len(names), figsize=(3.0 * len(names), 2.8), squeeze=False)
    for j, (ax, nm) in enumerate(zip(axes[0], names)):
        ax.axhline(1.0, color="k", lw=0.8, ls=":")
        ax.plot(u[:, j], r, "o", ms=3)
        ax.set_xlabel(f"{nm} (unit)")
        ax.set_yscale("log")
    axes[0, 0].set_ylabel("spread ratio emulator / simulator")
    fig.tight_layout()
    return save_figure(fig, path)


def _markdown(report) -> str:
    lines = [f"# Validation report: {report['title']}", "",
             f"Emulator: `{report['emulator']}`; simulator: `{report['simulator']}`; "
             f"{report['config']['n_samples']} points; seed {report['seed']}; "
             f"{report['seconds']:.0f} s.", "", "| check | status | numbers |", "|---|---|---|"]
    c = report["checks"]
    for name, row in c.items():
        lines.append(f"| {name} | **{row['status']}** | {_numbers(name, row)} |")
    lines += ["", "Rules: see `magan/validation.py` (module docstring). Floors are the same "
              "numbers between two independent simulated samples.", ""]
    d = c["distributions"]
    lines += ["## Distributions (emulator vs simulator; floor: simulator vs simulator)", "",
              "| variable | separation power | floor | KS | floor | W1 | floor | status |",
              "|---|---|---|---|---|---|---|---|"]
    for nm, v in d["variables"].items():
        e, f = v["emulator"], v["floor"]
        lines.append(f"| {nm} | {e['separation_power']:.4f} | {f['separation_power']:.4f} | "
                     f"{e['ks']:.3f} | {f['ks']:.3f} | {e['wasserstein_1']:.4g} | "
                     f"{f['wasserstein_1']:.4g} | {v['status']} |")
    if c["constraints"]["status"] != "skipped":
        lines += ["", "## Constraints (violation rate)", "",
                  "| constraint | simulator | emulator | status |", "|---|---|---|---|"]
        for nm, v in c["constraints"]["constraints"].items():
            lines.append(f"| {nm}: {v['description']} | {v['simulator']['rate']:.4f} | "
                         f"{v['emulator']['rate']:.4f} | {v['status']} |")
    cal = c["calibration"]
    if cal["status"] != "skipped":
        s = cal["summary"]
        lines += ["", f"## Fit calibration ({s['n_truths']} truths)", "",
                  "| parameter | bias % range | +- | rms error % range | median reported std % "
                  "range | pull std | 1-sigma cov. | 2-sigma cov. |", "|---|---|---|---|---|---|---|---|"]
        for nm, v in s["per_parameter"].items():
            lines.append(f"| {nm} | {v['bias_pct_of_range']:+.2f} | "
                         f"{v['bias_stderr_pct_of_range']:.2f} | {v['rms_error_pct_of_range']:.2f} | "
                         f"{v['median_reported_std_pct_of_range']:.2f} | {v['pull_std']:.2f} | "
                         f"{v['coverage_1sigma']:.0%} | {v['coverage_2sigma']:.0%} |")
        lines.append(f"| all | | | | | | {s['coverage_1sigma']:.0%} (nominal 68 %) | "
                     f"{s['coverage_2sigma']:.0%} (nominal 95 %) |")
    lines += ["", "Figures: " + ", ".join(f"`{f}`" for f in report["figures"]), ""]
    return "\n".join(lines)


def _numbers(name, row) -> str:
    if row["status"] == "skipped":
        return f"skipped: {row.get('reason', '')}"
    if name == "distributions":
        worst = max(row["variables"].items(), key=lambda kv: kv[1]["emulator"]["separation_power"])
        return (f"worst separation power {worst[1]['emulator']['separation_power']:.3f} "
                f"({worst[0]}; floor {worst[1]['floor']['separation_power']:.3f})")
    if name == "constraints":
        return "; ".join(f"{k}: {v['emulator']['rate']:.3f} vs {v['simulator']['rate']:.3f}"
                         for k, v in row["constraints"].items())
    if name == "learned_features":
        e, f = row["emulator"], row["floor"]
        return (f"FD_inf {e['fd_inf']:.3g} (rel. {e['fd_inf_relative']:.3g}; floor "
                f"{f['fd_inf']:.3g}), KID {e['kid']:.3g} +- {e['stderr']:.2g} (floor "
                f"{f['kid']:.2g} +- {f['stderr']:.2g})")
    if name == "classifier":
        return f"AUC {row['auc']:.3f} +- {row['auc_stderr']:.3f} (z = {row['z_vs_0.5']:.1f})"
    if name == "memorisation":
        return (f"copy fraction {row['copy_fraction']:.3f} (expected 0.01), median NN distance "
                f"ratio {row['median_d1_ratio']:.2f}")
    if name == "coverage":
        e, f, v = row["prdc_emulator"], row["prdc_floor"], row["variety"]
        return (f"precision {e['precision']:.2f}, recall {e['recall']:.2f}, density "
                f"{e['density']:.2f}, coverage {e['coverage']:.2f} (floor {f['coverage']:.2f}); "
                f"spread ratio {v['median_spread_ratio_emulator']:.2f} (floor "
                f"{v['median_spread_ratio_floor']:.2f})")
    if name == "calibration":
        s = row["summary"]
        return (f"{s['n_truths']} truths: coverage {s['coverage_1sigma']:.0%} / "
                f"{s['coverage_2sigma']:.0%} at 1 / 2 sigma (nominal 68 / 95 %), worst bias "
                f"{s['max_abs_bias_pct_of_range']:.1f} % of range")
    return ""


# ------------------------------------------------------------------------------------ driver
def validate(emulator, simulator, *, out, features=None, feature_names=None, constraints=(),
             config: ValidationConfig | None = None, fit_config: FitConfig | None = None,
             fit_features=None, voxel_transform=None, voxel_label: str = "pixel value", title: str = "emulator",
             emulator_label: str = "in memory", seed: int = 0,
             progress: bool | None = None) -> dict:
    """Run the validation suite (module docstring) and write the report into ``out``.

    Args:
      emulator: a trained :class:`~magan.Emulator`.
      simulator: the simulator it emulates (same parameter and condition spaces).
      out: the report folder (``report.json``, ``summary.md``, ``distributions.png``,
        ``variety.png``, ``calibration.png``, ``calibration.json``); an interrupted calibration
        resumes from ``calibration.json``.
      features: ``features(images, conditions) -> (N, F)`` NumPy high-level features (physical
        units), with ``feature_names``; the built-in studies supply theirs
        (:mod:`magan.studies.kits`).
      constraints: :class:`~magan.validation.constraints.Constraint` objects.
      config: a :class:`ValidationConfig` (default preset when None).
      fit_config: the fit settings of the calibration (default :class:`~magan.FitConfig`).
      fit_features: the fit's jax.numpy ``features(images, conditions)``, needed when
        ``fit_config.feature_weight > 0`` (feature matching, :func:`magan.fit`).
      voxel_transform: maps the pooled pixel values before their distances (e.g. log of the
        nonzero ones), labelled ``voxel_label``.
      title, emulator_label: how the report names the study and the emulator.
    Returns:
      The report dict (also ``out/report.json``).
    """
    cfg = config or VALIDATION_PRESETS["default"]
    if (emulator.conditions is None) != (simulator.conditions is None) or (
            emulator.conditions is not None and emulator.conditions != simulator.conditions):
        raise ValueError(f"The simulator's conditions ({simulator.conditions!r}) do not match the "
                         f"emulator's ({emulator.conditions!r}); validate an emulator against the "
                         "simulator it was trained on.")
    if simulator.image_shape != emulator.image_shape:
        raise ValueError(f"The simulator makes images of shape {simulator.image_shape}, the "
                         f"emulator {emulator.image_shape}; they do not belong together.")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    rng = np.random.default_rng([seed, 1001])
    unit, params, cond, t1, t2, e = _draw(emulator, simulator, rng, cfg.n_samples)
    checks, timings = {}, {}

    def timed(name, fn):
        s = time.perf_counter()
        checks[name] = fn()
        timings[name] = time.perf_counter() - s

    hists = {}

    def dist():
        res, h = check_distributions(t1, t2, e, cond, features, feature_names, voxel_transform,
                                     cfg.bins)
        hists.update(h)
        return res

    timed("distributions", dist)
    timed("constraints", lambda: check_constraints(constraints, t1, e, params, cond))
    s = time.perf_counter()
    fnet = train_feature_network(simulator, emulator.space, transform=emulator.transform,
                                 steps=cfg.feature_steps, seed=seed, progress=progress)
    g1, g2, ge = (fnet.embed(x, cond) for x in (t1, t2, e))
    timings["feature_network"] = time.perf_counter() - s
    timed("learned_features", lambda: {**check_learned_features(g1, g2, ge, seed),
                                       "feature_network": fnet.info})

    def classifier():
        na, nb = (np.asarray(emulator.transform.forward(x, cond), np.float32) for x in (t1, e))
        res = classifier_two_sample_test(na, nb, conditions_a=unit, conditions_b=unit,
                                         steps=cfg.classifier_steps, seed=seed, progress=progress)
        a = res["auc"]
        res["status"] = "pass" if a < 0.6 else "warn" if a < 0.75 else "fail"
        return res

    timed("classifier", classifier)
    timed("memorisation", lambda: check_memorisation(emulator, simulator, cfg.memorisation_n,
                                                     seed))

    def coverage():
        var = variety(emulator, simulator, np.random.default_rng([seed, 1002]), cfg.variety_points,
                      cfg.variety_per_point, features, feature_names, fnet.embed)
        return check_coverage(g1, g2, ge, var, cfg.prdc_k)

    timed("coverage", coverage)
    timed("calibration", lambda: check_calibration(
        emulator, simulator, 20 if cfg.calibration_truths is None else cfg.calibration_truths,
        cfg.calibration_targets or 500, fit_config,
        seed, out, progress, fit_features))

    figures = [_plot_distributions(hists, {"voxels": voxel_label}, out / "distributions.png").name]
    axis_names = list(emulator.space.names) + ([] if emulator.conditions is None
                                               else list(emulator.conditions.names))
    figures.append(_plot_variety(checks["coverage"]["variety"], axis_names,
                                 out / "variety.png").name)
    if checks["calibration"]["status"] != "skipped":
        figures.append(_plot_calibration(checks["calibration"], out / "calibration.png").name)
    report = {
        "title": title, "emulator": emulator_label,
        "simulator": getattr(simulator, "name", type(simulator).__name__), "seed": seed,
        "config": dataclasses.asdict(cfg),
        "overall": _worst(c["status"] for c in checks.values()),
        "status": {k: v["status"] for k, v in checks.items()},
        "checks": checks, "timings_s": timings, "figures": figures,
        "seconds": time.perf_counter() - t0,
    }
    atomic_write_json(out / "report.json", to_jsonable(report))
    atomic_write_bytes(out / "summary.md", _markdown(report).encode())
    return report
