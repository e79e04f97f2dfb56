"""Stage 2, fitting: parameters whose emulated images match the target images.

With the emulator E frozen, a parameter generator G (noise -> parameters) and a discriminator D play
on the targets: D tells target images from E(G(z)); G moves its parameters until D cannot. The
distribution of G's outputs is the fitted parameter set.

Several (G, D) pairs ("replicas") train side by side in one vmapped step, each on its own bootstrap
resample of the targets. The spread of their outputs is the fit's uncertainty: for targets that all
come from one parameter point, a perfect G collapses to a point, and the replica-to-replica scatter
is what measures how well the finite target set pins that point down.

G starts where S's auxiliary regression head (trained on simulations during pre-training) places
the targets (``init="regressor"``), or at the centre of the box (``init="center"``).

With ``FitConfig.feature_weight > 0`` G's loss also has a feature-matching term (Salimans et al.
2016, here on summaries of the images rather than D's features): the energy distance between the
standardised summaries of G's emulated batch and of the target batch, made at the same per-event
conditions. The summaries are the user's high-level features (``fit(..., features=f)``) or,
without them, S's learned summaries (:mod:`magan.fitting.features`: what S's regression head,
trained on simulations only, reads off each image). D judges whole images, where a batch of 32
carries little information on a parameter that moves the images by less than their own
fluctuations; the energy distance looks at exactly the quantities that parameter moves and, being
a proper distance between distributions, is zero only when G's images match the targets' in
distribution, so G's outputs contract onto the parameters instead of wandering with D.

With the simulator given, every fit also runs the closure check
(:func:`magan.fitting.diagnostics.fit_closure`): the simulator at the fit against the targets.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import jax
import numpy as np

from magan.config import FitConfig
from magan.emulator import Emulator, check_images
from magan.fitting.diagnostics import diagnose, fit_closure, warn_about
from magan.fitting.features import LearnedSummaries, UserFeatures
from magan.fitting.replicas import fit_sets
from magan.fitting.result import FitResult
from magan.runtime.cache import use_compilation_cache
from magan.runtime.io import atomic_write_json, write_metrics
from magan.runtime.metrics import Watch
from magan.runtime.progress import phase
from magan.runtime.rundir import folder_lock, output_folder

__all__ = ["fit", "fit_many"]


def fit(emulator: Emulator, target_images, config: FitConfig | None = None, *, seed: int = 0,
        target_conditions=None, simulator=None, features=None, workdir=None,
        progress: bool | None = None, callbacks=None, tensorboard=None) -> FitResult:
    """Fit the simulator parameters to ``target_images`` through a frozen emulator.

    Args:
      emulator: a trained :class:`~magan.Emulator`.
      target_images: (N, H, W, C) (or (N, H, W) for one channel), the observed images in the
        simulator's physical units, finite.
      target_conditions: (N, K) per-event conditions of the targets (for instance each event's
        beam energy), required when the emulator has a ConditionSpace. The emulated images that D
        compares with a batch of targets are made at the same conditions, so the fit is
        conditional on them; only the parameters are fitted.
      config: a :class:`~magan.FitConfig`; ``None`` means the ``default`` preset.
      seed: the same seed gives the same result on the same machine.
      simulator: the black-box simulator, optional. When given (and ``config.bias_correction``),
        the fit also runs on reference sets that the simulator makes at known points: by
        default (``config.bias_reference = "around"``) 8 sets scattered around the uncorrected
        fit, fitted in a second pass; the fits' mean error there estimates the bias that the
        emulator's imperfections put into the fit, and it is subtracted (parametric-bootstrap
        bias correction); the scatter of their errors is the reported uncertainty, the
        emulator's systematic error near the fit included. ``"start"`` (one set at the starting
        point, beside the targets) and ``"fit"`` (one set at the uncorrected fit) add only that
        set's spread to the statistical uncertainty.
      features: optional ``features(images, conditions) -> (B, F)`` written with ``jax.numpy``
        (physical images, physical conditions or ``None``), high-level features such as the
        ones pre-training used. With ``config.feature_weight > 0`` G's loss adds the energy
        distance between the features of its emulated batch and of the target batch, each
        feature in units of the targets' event-to-event spread (module docstring). Without
        them the fit matches S's learned summaries (what S's regression head, trained on
        simulations during pre-training, reads off each image). Pass a module-level function:
        the compiled step is cached per function.
      workdir: if given, ``fit_metrics.csv`` (a row appended and flushed every ``log_every``
        steps, readable while the fit runs; ``fit_reference_metrics.csv`` for a reference
        pass), ``fit.json`` and ``corner.png`` (the draws' joint distribution) are written
        there, and each pass is checkpointed in
        ``workdir/checkpoints/fit/`` every half minute or so: the same call after an
        interruption resumes it, to the identical result (:mod:`magan.fitting.checkpoints`;
        a checkpoint of a fit with other settings is refused, naming them). The folder is
        created, checked to take files and locked (``workdir/.magan.lock``) for the fit.
      progress: show a progress bar (``None``: unless MAGAN_QUIET is set).
      callbacks: a function ``f(stage, row)`` or a list of them, called with ``"fit"`` (or
        ``"fit_reference"``) and each metric row as it comes (:mod:`magan.runtime.metrics`).
      tensorboard: a folder for TensorBoard event files (scalars ``fit/NAME``); needs the
        optional ``tensorboardX`` (``pip install 'magan[tensorboard]'``).
    Returns:
      A :class:`FitResult` in physical units.
    """

    use_compilation_cache()
    cfg, targets, cond = _checked_inputs(emulator, target_images, config, target_conditions,
                                         features)
    t0 = time.perf_counter()
    watch = Watch.of(workdir, callbacks, tensorboard)
    run = _Fit(emulator, cfg, cond, _summaries(emulator, cfg, features), simulator, seed,
               progress, watch, workdir)
    with _owned(workdir):
        try:
            [result] = _fit_runs([run], [targets], t0)
        finally:
            watch.close()
        warn_about(result.diagnostics, stacklevel=2)
        if workdir is not None:
            write_metrics(workdir, "fit", result.history)
            if result.reference_history:
                write_metrics(workdir, "fit_reference", result.reference_history)
            atomic_write_json(f"{workdir}/fit.json", result.to_dict())
            _corner(result, workdir)
    return result


def _corner(result: FitResult, workdir) -> None:
    """``workdir/corner.png`` of the fit's draws (skipped, with a warning, when they cannot be
    drawn, e.g. fewer than two finite draws)."""
    from magan.runtime.plots import plot_corner

    try:
        plot_corner(result.names, result.samples, Path(workdir) / "corner.png",
                    units=result.units)
    except ValueError as err:
        warnings.warn(f"fit: corner.png not written: {err}", stacklevel=3)


def _owned(workdir):
    """A context holding ``workdir`` for the fit (None: nothing): created and checked to take
    files before any work, locked against a second run (re-entrant: a study or ``magan fit``
    holding its run folder may fit into it); see :mod:`magan.runtime.rundir`."""
    if workdir is None:
        return contextlib.nullcontext()
    return folder_lock(output_folder(workdir, "workdir"), "workdir")


def fit_many(emulator: Emulator, target_sets, config: FitConfig | None = None, *, seed: int = 0,
             target_conditions=None, simulator=None, features=None, warn: bool = True,
             progress: bool | None = None, callbacks=None, workdir=None) -> list[FitResult]:
    """Fit T target sets in one pass sequence: one compiled program fits all T sets (T * R
    replicas), and one more (when the bias reference needs a second pass) fits all their
    reference sets; then each set gets its own :class:`FitResult`, as :func:`fit` makes it.

    ``fit_many(e, [x], seed=s, ...)[0]`` is bit for bit ``fit(e, x, seed=s, ...)``. With T > 1 a
    set's result differs from its own single fit by the random draws only (the bootstrap rows,
    G's and D's initial weights and the batches are drawn for the whole program), not in
    distribution. The step unrolls the T * R replicas, so the program compiles in a time growing
    with them and, on a CPU, runs them one after another: there T fits one after another (which
    share one compiled program) are faster (``scripts/calibration_speed.py``).

    Args:
      emulator: a trained :class:`~magan.Emulator`.
      target_sets: T >= 1 image sets, each (N, H, W, C) (or (N, H, W)), physical units, finite,
        all with the same N.
      target_conditions: with a conditioned emulator, T arrays (N, K), one per set (each set's
        reference sets are simulated at its conditions); else None.
      config, simulator, features, progress, callbacks: as for :func:`fit`, shared by all sets.
      seed: the program's random key; set t's reference sets are simulated from the streams of
        ``seed + t`` (so set t's reference images are those of ``fit(..., seed=seed + t)``).
      warn: issue each set's warnings (:class:`~magan.fitting.diagnostics.FitWarning`).
      workdir: if given, each pass is checkpointed in ``workdir/checkpoints/fit/`` (and the
        folder locked) as for :func:`fit`, so that the same call after an interruption resumes
        to the identical results; nothing else is written there.
    Returns:
      T results (:class:`FitResult`) in physical units, in the order of ``target_sets``. Each
      carries the program's metric history (its ``mean_*`` columns follow set 0) and timing.
    """
    use_compilation_cache()
    sets = list(target_sets) if isinstance(target_sets, (list, tuple)) else None
    if not sets:
        raise TypeError("target_sets must be a non-empty list of image arrays (N, H, W, C); for "
                        "one set call fit(emulator, images) or pass [images].")
    conds = [None] * len(sets) if target_conditions is None else list(target_conditions)
    if len(conds) != len(sets):
        raise ValueError(f"target_conditions has {len(conds)} arrays for {len(sets)} target "
                         "sets; give one (N, K) array per set.")
    checked = [_checked_inputs(emulator, x, config, c, features) for x, c in zip(sets, conds)]
    sizes = sorted({c[1].shape[0] for c in checked})
    if len(sizes) > 1:
        raise ValueError(f"target sets of different sizes {sizes} cannot share a program; give "
                         "every set the same number of images.")
    t0 = time.perf_counter()
    cfg = checked[0][0]
    used = _summaries(emulator, cfg, features)
    watch = Watch.of(callbacks=callbacks)
    runs = [_Fit(emulator, cfg, cond, used, simulator, seed + t, progress, watch, workdir)
            for t, (_, _, cond) in enumerate(checked)]
    with _owned(workdir):
        results = _fit_runs(runs, [c[1] for c in checked], t0)
    for result in results if warn else ():
        warn_about(result.diagnostics, stacklevel=2)
    return results


def _fit_runs(runs: list, targets: list, t0: float) -> list[FitResult]:
    """The pass sequence of ``cfg.bias_reference`` over the target sets ``targets`` (each
    (N, H, W, C)), ``runs[t]`` holding set t's conditions and seed (``runs[0]``'s seed keys the
    programs); one result per set, with its diagnostics and the shared timing."""
    run, cfg = runs[0], runs[0].cfg
    starts = [r.start_of(x) for r, x in zip(runs, targets)]
    correct = run.simulator is not None and cfg.bias_correction
    passes = {"start": _reference_at_start, "fit": _reference_at_fit,
              "around": _references_around_fit}[cfg.bias_reference]
    raw_units, ref_units, ref_ats, histories, loop_s = passes(runs, targets, starts, correct)
    timing = {"loop_s": loop_s, "steps_per_s": cfg.steps * (2 if histories[1] else 1) / loop_s}
    results = []
    for t, r in enumerate(runs):
        result = _result(r, raw_units[t], ref_units[t], ref_ats[t], starts[t], histories)
        with phase("fit diagnostics" + (" and closure" if r.simulator is not None else ""),
                   r.progress):
            result.diagnostics = _diagnostics(r, targets[t], raw_units[t], result)
        results.append(result)
    total_s = time.perf_counter() - t0
    for result in results:
        result.timing = {"total_s": total_s, **timing}
    return results


def _checked_inputs(emulator, target_images, config, target_conditions, features):
    """The config (default preset when None), the targets (N, H, W, C) float32 and their
    conditions (N, K) (None without), checked, with errors that say how to fix them."""
    cfg = config or FitConfig()
    if not isinstance(cfg, FitConfig):
        raise TypeError(f"config must be a FitConfig, got {type(cfg).__name__}.")
    if not isinstance(emulator, Emulator):
        raise TypeError(f"emulator must be a magan.Emulator, got {type(emulator).__name__}; "
                        "load one with magan.load_emulator(path).")
    targets = check_images(target_images, emulator.image_shape, "target_images")
    n_targets, k_cond = targets.shape[0], emulator.cond_dim
    cond = None
    if k_cond:
        if target_conditions is None:
            raise ValueError(f"This emulator is conditioned on {list(emulator.conditions.names)}; "
                             f"pass target_conditions of shape ({n_targets}, {k_cond}).")
        cond = emulator.conditions.check(target_conditions, what="target_conditions")
        if cond.shape[0] != n_targets:
            raise ValueError(f"target_conditions has {cond.shape[0]} rows for {n_targets} target "
                             "images; give one row per image.")
    elif target_conditions is not None:
        raise ValueError("This emulator was trained without per-event conditions; do not pass "
                         "target_conditions.")
    if features is not None and not callable(features):
        raise TypeError(f"features must be a function f(images, conditions) -> (N, F), got "
                        f"{type(features).__name__}.")
    return cfg, targets, cond


def _summaries(emulator, cfg: FitConfig, features):
    """What G's loss matches (:mod:`magan.fitting.features`): the user's ``features``, or
    without them S's learned summaries; None when ``cfg.feature_weight`` is 0."""
    if cfg.feature_weight == 0:
        return None
    if features is None:
        return LearnedSummaries(emulator.graphdef_s)
    return UserFeatures(features, emulator.transform)


@dataclass
class _Fit:
    """What the parts of one fit share. ``features`` are the summaries G's loss matches (None
    when it matches none); ``cond`` (N, K) the targets' physical conditions or None; ``watch``
    where the metric rows go as they come."""

    emulator: Emulator
    cfg: FitConfig
    cond: np.ndarray | None
    features: Callable | None
    simulator: object
    seed: int
    progress: bool | None
    watch: Watch | None = None
    workdir: object = None

    def start_of(self, images) -> np.ndarray:
        """G's starting point (P,) in the unit cube for images at the targets' conditions."""
        space = self.emulator.space
        if self.cfg.init != "regressor":
            return np.full(space.dim, 0.5, np.float32)
        est = space.clip(self.emulator.estimate(images, self.cond))
        return np.clip(space.to_unit(est).mean(axis=0), 0.02, 0.98).astype(np.float32)

    def simulate_reference(self, at, n: int, stream: tuple = ()) -> np.ndarray:
        """``n`` images simulated at the physical point ``at`` (P,), at the targets' conditions,
        from the random stream ``(seed, 7, *stream)``."""
        with phase(f"simulating a reference set ({n} images)", self.progress):
            ref = self.simulator.simulate(np.random.default_rng([self.seed, 7, *stream]),
                                          np.tile(at, (n, 1)), self.emulator.space,
                                          conditions=self.cond)
        return check_images(ref, self.emulator.image_shape, "reference")


def _one_or_each(starts) -> np.ndarray:
    """G's start for :func:`~magan.fitting.replicas.fit_sets`: the point (P,) itself for one
    set (as a single fit always passed it), else one row per set (len(starts), P)."""
    return starts[0] if len(starts) == 1 else np.stack(starts)


def _fit_targets(runs, targets, starts, key):
    """The first pass: all T target sets in one program. Returns T draws (R, S, P) (unit cube),
    the history and the loop's seconds."""
    unit, history, loop_s = fit_sets(runs[0], targets, _one_or_each(starts), key, "fitting",
                                     conds=[r.cond for r in runs])
    r = runs[0].cfg.replicas
    return [unit[t * r:(t + 1) * r] for t in range(len(runs))], history, loop_s


def _reference_at_start(runs: list, targets, starts, correct: bool):
    """One pass: each set's reference set (with bias correction), simulated at its start, is
    fitted beside it, all in one program (sets in the order [targets 0, reference 0, targets 1,
    ...]). Returns per set: raw unit draws (R, S, P), reference draws (or None), reference point
    (or None); then (history, []) and the loop's seconds."""
    key, t_n = jax.random.key(runs[0].seed), len(runs)
    if not correct:
        units, history, loop_s = _fit_targets(runs, targets, starts, key)
        return units, [None] * t_n, [None] * t_n, (history, []), loop_s
    space, r = runs[0].emulator.space, runs[0].cfg.replicas
    ref_ats = [space.from_unit(s.astype(np.float64)) for s in starts]
    refs = [run.simulate_reference(at, x.shape[0]) for run, x, at in zip(runs, targets, ref_ats)]
    sets = [s for pair in zip(targets, refs) for s in pair]
    start = starts[0] if t_n == 1 else np.repeat(np.stack(starts), 2, axis=0)
    unit, history, loop_s = fit_sets(runs[0], sets, start, key, "fitting",
                                     conds=[run.cond for run in runs for _ in range(2)])
    pairs = unit.reshape(t_n, 2, r, *unit.shape[1:])
    return list(pairs[:, 0]), list(pairs[:, 1]), ref_ats, (history, []), loop_s


def _fitted_points(runs, units) -> list:
    """Each set's raw draws (R * S, P) in physical units."""
    space = runs[0].emulator.space
    return [space.from_unit(u.reshape(-1, space.dim)) for u in units]


def _reference_at_fit(runs: list, targets, starts, correct: bool):
    """Two passes (the parametric bootstrap): fit the targets, then for each set a reference set
    simulated where its fit landed, started where S places it; the same procedure both times,
    each pass one program for all sets."""
    key, t_n = jax.random.key(runs[0].seed), len(runs)
    units, history, loop_s = _fit_targets(runs, targets, starts, key)
    if not correct:
        return units, [None] * t_n, [None] * t_n, (history, []), loop_s
    space = runs[0].emulator.space
    ref_ats = [space.clip(raw.mean(axis=0))
               for raw in _fitted_points(runs, units)]
    refs = [run.simulate_reference(at, x.shape[0]) for run, at, x in zip(runs, ref_ats, targets)]
    ref_starts = [run.start_of(ref) for run, ref in zip(runs, refs)]
    ref_unit, ref_history, ref_s = fit_sets(runs[0], refs, _one_or_each(ref_starts),
                                            jax.random.fold_in(key, 1), "reference fit",
                                            conds=[run.cond for run in runs])
    r = runs[0].cfg.replicas
    ref_units = [ref_unit[t * r:(t + 1) * r] for t in range(t_n)]
    return units, ref_units, ref_ats, (history, ref_history), loop_s + ref_s


def _points_around(run, raw) -> np.ndarray:
    """``cfg.reference_sets`` points (K, P) around the fit whose raw draws are ``raw`` (M, P):
    the first at their mean, the others displaced by normal draws of twice their spread (at
    least 1 % of each range) from the stream ``(seed, 11)``, clipped to the box."""
    space, k = run.emulator.space, run.cfg.reference_sets
    scale = np.maximum(2.0 * raw.std(axis=0), 0.01 * space.width)
    offsets = np.random.default_rng([run.seed, 11]).normal(size=(k, space.dim)) * scale
    offsets[0] = 0.0
    return space.clip(raw.mean(axis=0) + offsets)


def _references_around_fit(runs: list, targets, starts, correct: bool):
    """Two passes: fit the targets, then for each set ``cfg.reference_sets`` reference sets
    simulated at points scattered around where its fit landed (:func:`_points_around`), all of
    all sets fitted in one program with one replica each, each started where S places it. Their
    errors sample the error distribution of the whole procedure near the fit, systematic error
    included."""
    key, t_n = jax.random.key(runs[0].seed), len(runs)
    units, history, loop_s = _fit_targets(runs, targets, starts, key)
    if not correct:
        return units, [None] * t_n, [None] * t_n, (history, []), loop_s
    k = runs[0].cfg.reference_sets
    ref_ats = [_points_around(run, raw) for run, raw in zip(runs, _fitted_points(runs, units))]
    refs = [run.simulate_reference(at, x.shape[0], (i,))
            for run, ats, x in zip(runs, ref_ats, targets) for i, at in enumerate(ats)]
    set_runs = [run for run in runs for _ in range(k)]
    ref_starts = np.stack([run.start_of(ref) for run, ref in zip(set_runs, refs)])
    ref_unit, ref_history, ref_s = fit_sets(runs[0], refs, ref_starts, jax.random.fold_in(key, 1),
                                            "reference fits", replicas=1,
                                            conds=[run.cond for run in set_runs])
    ref_units = [ref_unit[t * k:(t + 1) * k] for t in range(t_n)]
    return units, ref_units, ref_ats, (history, ref_history), loop_s + ref_s


def _corrected(space, raw, ref_unit, ref_at):
    """(samples, std, bias, stat_std, syst_std, covariance, reference_means) from the raw draws
    (M, P) and the reference fits' draws (unit cube) at ``ref_at``: one point (P,) or one per
    set (K, P)."""
    p = space.dim
    stat = raw.std(axis=0)
    if ref_unit is None:
        return raw, stat, None, stat, None, None, None
    if np.ndim(ref_at) == 1:  # one reference set: its spread added in quadrature
        ref_samples = space.from_unit(ref_unit.reshape(-1, p))
        found = ref_samples.mean(axis=0)
        bias = found - ref_at
        std = np.sqrt(raw.var(axis=0) + ref_samples.var(axis=0))
        return raw - bias, std, bias, stat, None, None, found
    # K reference sets: their errors sample the procedure's error distribution near the fit
    found = np.stack([space.from_unit(u).mean(axis=0) for u in ref_unit])  # (K, P)
    errors = found - ref_at
    k = errors.shape[0]
    bias = errors.mean(axis=0)
    cov = np.atleast_2d(np.cov(errors, rowvar=False)) * (1.0 + 1.0 / k)  # + the bias's error
    std = np.sqrt(np.diag(cov))
    syst = np.sqrt(np.maximum(np.diag(cov) - stat ** 2, 0.0))
    return raw - bias, std, bias, stat, syst, cov, found


def _result(run: _Fit, raw_unit, ref_unit, ref_at, start_unit, histories) -> FitResult:
    """The result in physical units: the raw draws, shifted by the bias measured on the
    reference set(s) when there are any (:func:`_corrected`)."""
    space, p = run.emulator.space, run.emulator.space.dim
    replica_means = space.from_unit(raw_unit.mean(axis=1))
    raw = space.from_unit(raw_unit.reshape(-1, p))
    samples, std, bias, stat, syst, cov, found = _corrected(space, raw, ref_unit, ref_at)
    return FitResult(
        names=space.names, samples=samples, mean=samples.mean(axis=0), std=std,
        replica_means=replica_means, start=space.from_unit(start_unit.astype(np.float64)),
        raw_mean=raw.mean(axis=0), bias=bias, reference_at=ref_at,
        history=histories[0], reference_history=histories[1],
        config=dataclasses.asdict(run.cfg), stat_std=stat, syst_std=syst, covariance=cov,
        units=tuple(q.unit for q in space.parameters), emulator=run.emulator.identity(),
        reference_means=found)


def _diagnostics(run: _Fit, targets, raw_unit, result: FitResult):
    """The fit's named checks (:mod:`magan.fitting.diagnostics`) on its inputs and outcome."""
    space = run.emulator.space
    r = run.cfg.replicas
    per_replica = [space.from_unit(raw_unit[i]) for i in range(r)]
    checks = diagnose(space, n_targets=targets.shape[0],
                      targets_net=run.emulator.to_network(targets, run.cond),
                      training_ranges=run.emulator.info.get("training_images"),
                      target_summaries=run.emulator.summaries(targets, run.cond),
                      replica_means=np.stack([x.mean(axis=0) for x in per_replica]),
                      replica_stds=np.stack([x.std(axis=0) for x in per_replica]),
                      mean=result.mean, raw_mean=result.raw_mean,
                      bias_corrected=result.bias is not None,
                      reference_at=result.reference_at, reference_means=result.reference_means)
    if run.simulator is not None:
        cov = (result.covariance if result.covariance is not None
               else np.diag(np.asarray(result.std, np.float64) ** 2))
        checks.append(fit_closure(run.simulator, space, result.mean, cov, targets,
                                  run.emulator.describe, run.cond, seed=run.seed,
                                  names=run.emulator.description_names))
    return checks
