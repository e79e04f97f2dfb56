"""Case study I: fit the four parameters of a line image (the paper's first study).

``magan study line`` (or :func:`run`) pre-trains an emulator of the line simulator (or reuses one),
simulates a target set at the truth, fits, runs the closure check through the real simulator and
writes a run folder::

    OUT/config.json             the study config (presets resolved)
    OUT/summary.json            truth, fitted mean +- std, error in % of range, closure, timings
    OUT/emulator/               the emulator checkpoint (reusable with --emulator)
    OUT/pretrain_metrics.csv    metrics over pre-training steps
    OUT/fit_metrics.csv         metrics over fit steps
    OUT/quality.json            emulator vs simulator over the whole space
    OUT/losses.png, OUT/samples.png, OUT/fit.png
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from magan.validation.closure import closure_check
from magan.config import FIT_PRESETS, PRETRAIN_PRESETS, FitConfig, PretrainConfig, replace
from magan.fitting.stage import fit
from magan.runtime.io import atomic_write_json
from magan.runtime.plots import plot_fit, plot_image_grid, plot_losses
from magan.pretraining.stage import train_emulator
from magan.studies.runs import reuse_emulator, start_run
from magan.validation.quality import compare_to_simulator
from magan.studies.line.simulator import (LINE_FEATURES, LINE_SPACE, line_features,
                                          line_fit_features, line_simulator)

__all__ = ["LineStudyConfig", "PRESETS", "DEFAULT_TRUTH", "run"]

DEFAULT_TRUTH = np.array([0.2, 12.0, 4.0, 9.0])  # m, c, x0, xsteps


@dataclass(frozen=True)
class LineStudyConfig:
    """Everything a line-study run needs besides the truth and the seed."""

    pretrain: PretrainConfig
    fit: FitConfig
    n_targets: int = 500  # target images simulated at the truth
    quality_points: int = 64  # parameter points of the emulator-quality check
    quality_per_point: int = 32  # images per point and source in that check


# The fit matches the line features as well as fooling D, measures its bias on a reference set
# simulated where it landed, and draws the result from G averaged over the last half of the steps
# (as the calorimeter study; measured in studies/line/README.md).
_LINE_FIT_CHANGES = dict(feature_weight=10.0, bias_reference="fit", average_last=0.5)
PRESETS: dict[str, LineStudyConfig] = {
    "tiny": LineStudyConfig(PRETRAIN_PRESETS["tiny"], FIT_PRESETS["tiny"], n_targets=64,
                            quality_points=4, quality_per_point=8),
    "default": LineStudyConfig(PRETRAIN_PRESETS["default"],
                               replace(FIT_PRESETS["default"], **_LINE_FIT_CHANGES)),
    "gpu": LineStudyConfig(PRETRAIN_PRESETS["gpu"], replace(FIT_PRESETS["gpu"], **_LINE_FIT_CHANGES),
                           n_targets=2000, quality_points=256, quality_per_point=64),
}


def study_preset(name: str) -> LineStudyConfig:
    if name not in PRESETS:
        raise ValueError(f"Unknown preset {name!r} for the line study; choose one of "
                         f"{sorted(PRESETS)}.")
    return PRESETS[name]


def run(preset: str | LineStudyConfig = "default", *, truth=None, emulator=None,
        out="runs/line", seed: int = 0, progress: bool | None = None,
        training_simulator=None) -> dict:
    """Run the line study end to end; returns the summary dict (also in ``OUT/summary.json``).

    Args:
      preset: a preset name ("tiny", "default", "gpu") or a :class:`LineStudyConfig`.
      truth: (4,) physical (m, c, x0, xsteps) of the target set; default :data:`DEFAULT_TRUTH`.
      emulator: a trained :class:`~magan.Emulator` or the path of one; ``None`` pre-trains.
      out: the run folder.
      seed: seeds pre-training, targets and the fit.
      training_simulator: pre-train from this simulator instead of the in-process one, e.g. a
        :class:`~magan.BankSimulator` of offline simulations or a
        :class:`~magan.CommandSimulator`; targets, fit and checks still use the in-process one.
    """
    cfg = study_preset(preset) if isinstance(preset, str) else preset
    truth = LINE_SPACE.check(DEFAULT_TRUTH if truth is None else truth, what="--truth")[0]
    out = start_run("line", preset, cfg, out, seed)
    simulator = line_simulator()
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    if emulator is None:
        emu = train_emulator(training_simulator or simulator, LINE_SPACE, cfg.pretrain,
                             seed=seed, workdir=out, progress=progress)
        timings["pretrain_s"] = time.perf_counter() - t0
    else:
        emu = reuse_emulator(emulator, out, "line", LINE_SPACE)

    t1 = time.perf_counter()
    quality = compare_to_simulator(emu, simulator, n_points=cfg.quality_points,
                                   n_per_point=cfg.quality_per_point, seed=seed + 1,
                                   features=line_features, feature_names=LINE_FEATURES)
    atomic_write_json(out / "quality.json", quality)
    timings["quality_s"] = time.perf_counter() - t1

    rng = np.random.default_rng(seed + 2)
    targets = simulator.simulate(rng, np.tile(truth, (cfg.n_targets, 1)), LINE_SPACE)
    t2 = time.perf_counter()
    result = fit(emu, targets, cfg.fit, seed=seed, simulator=simulator, features=line_fit_features,
                 workdir=out, progress=progress)
    timings["fit_s"] = time.perf_counter() - t2

    t3 = time.perf_counter()
    closure = closure_check(simulator, LINE_SPACE, result.mean, targets, seed=seed + 3,
                            features=line_features, feature_names=LINE_FEATURES)
    timings["closure_s"] = time.perf_counter() - t3

    err_pct = (result.mean - truth) / LINE_SPACE.width * 100.0
    start_err_pct = (result.start - truth) / LINE_SPACE.width * 100.0
    summary = {
        "study": "line", "seed": seed, "preset": preset if isinstance(preset, str) else None,
        "parameters": list(LINE_SPACE.names),
        "truth": dict(zip(LINE_SPACE.names, truth.tolist())),
        "fit_mean": dict(zip(LINE_SPACE.names, result.mean.tolist())),
        "fit_std": dict(zip(LINE_SPACE.names, result.std.tolist())),
        "error_pct_of_range": dict(zip(LINE_SPACE.names, err_pct.tolist())),
        "max_abs_error_pct_of_range": float(np.max(np.abs(err_pct))),
        "raw_fit_mean": dict(zip(LINE_SPACE.names, result.raw_mean.tolist())),
        "raw_error_pct_of_range": dict(zip(LINE_SPACE.names, ((result.raw_mean - truth)
                                                               / LINE_SPACE.width * 100).tolist())),
        "bias_correction": None if result.bias is None else
        dict(zip(LINE_SPACE.names, result.bias.tolist())),
        "bias_reference_at": None if result.reference_at is None else
        dict(zip(LINE_SPACE.names, result.reference_at.tolist())),
        "start": dict(zip(LINE_SPACE.names, result.start.tolist())),
        "start_error_pct_of_range": dict(zip(LINE_SPACE.names, start_err_pct.tolist())),
        "closure": closure,
        "emulator_quality": quality,
        "timings_s": timings,
        "pretrain_timing": emu.info.get("pretrain", {}).get("timing"),
        "fit_timing": result.timing,
    }

    # figures
    hist = {"pre-training": emu.info.get("pretrain", {}).get("history", []), "fit": result.history}
    if result.reference_history:
        hist["fit (reference set)"] = result.reference_history
    plot_losses(hist, out / "losses.png")
    grid_rng = np.random.default_rng(seed + 4)
    pts = LINE_SPACE.sample(grid_rng, 8)
    plot_image_grid({"simulated": simulator.simulate(grid_rng, pts, LINE_SPACE),
                     "emulated": emu.sample(pts, seed=seed)}, out / "samples.png",
                    titles=[LINE_SPACE.format(p, 3).replace(",", "\n") for p in pts])
    plot_fit(LINE_SPACE.names, result.samples, out / "fit.png", truth=truth, start=result.start,
             bounds=(LINE_SPACE.low, LINE_SPACE.high))
    timings["total_s"] = time.perf_counter() - t0
    atomic_write_json(out / "summary.json", summary)
    return summary
