"""What every built-in study run does the same way: pick its preset, open its run folder, get its
emulator (pre-train or reuse), time its stages, write the summary's common fields and the common
figures, and read ``--train-from``."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from magan.emulator import Emulator, load_emulator
from magan.runtime.plots import plot_corner, plot_fit, plot_image_grid, plot_losses
from magan.runtime.progress import Clock
from magan.runtime.rundir import run_folder

__all__ = ["Clock", "emulator_for_run", "fit_fields", "pick_preset",
           "plot_fit_result", "plot_samples", "plot_training", "reuse_emulator", "start_run",
           "summary_head", "summary_tail", "training_source"]


def pick_preset(presets: dict, name: str, study: str):
    """``presets[name]``, or a ValueError naming the study's presets."""
    if name not in presets:
        raise ValueError(f"Unknown preset {name!r} for the {study} study; choose one of "
                         f"{sorted(presets)}.")
    return presets[name]


def start_run(study: str, preset, cfg, out, seed: int):
    """``with start_run(...) as out:`` the run folder ``out`` (a Path) for the block: checked to
    take files, locked against a second run, refused before anything is written when it holds
    another run (another study's or a fit's) or this study's with another config, its
    ``config.json`` (the resolved study config) written, and its ``manifest.json`` written after
    the block (see :func:`magan.runtime.rundir.run_folder`)."""
    config = {"study": study, "seed": seed, "preset": preset if isinstance(preset, str) else None,
              **dataclasses.asdict(cfg)}
    return run_folder(out, f"{study} study", config=config)


def reuse_emulator(emulator, out: Path, study: str, space, conditions=None) -> Emulator:
    """A given emulator (object or folder), checked against the study's spaces and copied into
    ``out/emulator`` unless one is there already."""
    emu = emulator if isinstance(emulator, Emulator) else load_emulator(emulator)
    if emu.space != space or emu.conditions != conditions:
        cond = "" if conditions is None else f" with conditions {conditions!r}"
        raise ValueError(f"The emulator was trained over {emu.space!r} with conditions "
                         f"{emu.conditions!r}, not the {study} study's {space!r}{cond}; train a "
                         "new one (omit --emulator).")
    if not (out / "emulator").exists():
        emu.save(out / "emulator")
    return emu


def emulator_for_run(emulator, pretrain, clock: Clock, *, out: Path, study: str, space,
                     conditions=None) -> Emulator:
    """The run's emulator: ``pretrain()`` (timed as ``pretrain_s``) when ``emulator`` is None,
    else the given one checked by :func:`reuse_emulator`."""
    if emulator is None:
        with clock.stage("pretrain_s"):
            return pretrain()
    return reuse_emulator(emulator, out, study, space, conditions)


def _named(space, values) -> dict[str, float]:
    return dict(zip(space.names, np.asarray(values).tolist()))


def _pct(space, values, truth) -> np.ndarray:
    """(P,) physical ``values - truth`` in % of each parameter's range."""
    return (values - truth) / space.width * 100.0


def summary_head(study: str, preset, seed: int, space, truth) -> dict:
    """The summary's first fields: study, seed, preset name (None for a config), parameter
    names, truth (physical units)."""
    return {"study": study, "seed": seed, "preset": preset if isinstance(preset, str) else None,
            "parameters": list(space.names), "truth": _named(space, truth)}


def fit_fields(space, truth, result, *, raw_errors: bool = False) -> dict:
    """The fit's summary fields (physical units, errors in % of range): mean, std, errors,
    uncorrected mean (and its errors when ``raw_errors``), bias correction and where it was
    measured, start and its errors."""
    err_pct = _pct(space, result.mean, truth)
    fields = {
        "fit_mean": _named(space, result.mean), "fit_std": _named(space, result.std),
        "error_pct_of_range": _named(space, err_pct),
        "max_abs_error_pct_of_range": float(np.max(np.abs(err_pct))),
        "raw_fit_mean": _named(space, result.raw_mean),
    }
    if raw_errors:
        fields["raw_error_pct_of_range"] = _named(space, _pct(space, result.raw_mean, truth))
    fields["bias_correction"] = None if result.bias is None else _named(space, result.bias)
    at = result.reference_at
    fields["bias_reference_at"] = (None if at is None else [_named(space, a) for a in at]
                                   if np.ndim(at) == 2 else _named(space, at))
    if result.syst_std is not None:  # bias_reference="around": the std's two parts
        fields["fit_stat_std"] = _named(space, result.stat_std)
        fields["fit_syst_std"] = _named(space, result.syst_std)
    fields["start"] = _named(space, result.start)
    fields["start_error_pct_of_range"] = _named(space, _pct(space, result.start, truth))
    return fields


def summary_tail(clock: Clock, emu: Emulator, result) -> dict:
    """The summary's last fields: the fit's diagnostics (the names of those that warn, and all
    of them), the run's stage timings (the clock's own dict, so ``total_s`` lands there at
    :meth:`Clock.stop`), pre-training's and the fit's own timings."""
    return {"warnings": result.warnings,
            "diagnostics": [d.to_dict() for d in result.diagnostics],
            "timings_s": clock.timings,
            "pretrain_timing": emu.info.get("pretrain", {}).get("timing"),
            "fit_timing": result.timing}


def plot_training(emu: Emulator, result, out: Path, truth=None) -> None:
    """``out/losses.png``: pre-training's and the fit's (and its reference set's) metrics, and
    the fitted parameters over the fit's steps against the truth (P,) when given."""
    hist = {"pre-training": emu.info.get("pretrain", {}).get("history", []), "fit": result.history}
    if result.reference_history:
        hist["fit (reference set)"] = result.reference_history
    truth = None if truth is None else dict(zip(result.names, np.asarray(truth).tolist()))
    plot_losses(hist, out / "losses.png", truth=truth)


def plot_samples(simulator, emu: Emulator, space, seed: int, out: Path, *, conditions=None,
                 view=None, title=None) -> None:
    """``out/samples.png``: simulated over emulated images at 8 random parameter points (and
    conditions drawn from ``conditions``), seeded by ``seed + 4``. ``view`` maps images (N, H, W,
    C) to what is shown; ``title(point (P,), conditions (K,) or None) -> str`` heads a column."""
    grid_rng = np.random.default_rng(seed + 4)
    pts = space.sample(grid_rng, 8)
    if conditions is None:
        cond = [None] * len(pts)
        simulated = simulator.simulate(grid_rng, pts, space)
        emulated = emu.sample(pts, seed=seed)
    else:
        cond = conditions.sample(grid_rng, 8)
        simulated = simulator.simulate(grid_rng, pts, space, conditions=cond)
        emulated = emu.sample(pts, cond, seed=seed)
    if view is not None:
        simulated, emulated = view(simulated), view(emulated)
    title = title or (lambda p, c: space.format(p, 3).replace(",", "\n"))
    plot_image_grid({"simulated": simulated, "emulated": emulated}, out / "samples.png",
                    titles=[title(p, c) for p, c in zip(pts, cond)])


def plot_fit_result(space, result, truth, out: Path) -> None:
    """``out/fit.png``: the fitted samples per parameter, with the truth and the start;
    ``out/corner.png``: their joint distribution (corner plot), with the truth."""
    plot_fit(space.names, result.samples, out / "fit.png", truth=truth, start=result.start,
             bounds=(space.low, space.high))
    plot_corner(space.names, result.samples, out / "corner.png",
                units=[q.unit for q in space.parameters], truth=truth)


def training_source(spec: str, space, image_shape):
    """A BankSimulator or CommandSimulator from ``--train-from bank:FILE`` or ``command:CMD``
    (images of ``image_shape`` (H, W, C))."""
    kind, _, value = spec.partition(":")
    if kind == "bank" and value:
        from magan.simulators.bank import BankSimulator

        return BankSimulator.load(value, space)
    if kind == "command" and value:
        from magan.simulators.command import CommandSimulator

        return CommandSimulator(value, image_shape)
    raise ValueError(f"--train-from {spec!r}: give bank:FILE.h5 or command:'PROGRAM {{params}} "
                     "{out} {seed}'.")
