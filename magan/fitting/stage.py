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

With high-level features (``fit(..., features=f)`` and ``FitConfig.feature_weight > 0``) G's loss
also has a feature-matching term (Salimans et al. 2016, here on physical features rather than D's):
the energy distance between the standardised features of G's emulated batch and of the target
batch, made at the same per-event conditions. D judges whole images, where a batch of 32 carries
little information on a parameter that moves the showers by less than their own fluctuations; the
energy distance looks at exactly the quantities that parameter moves and, being a proper distance
between distributions, is zero only when G's images match the targets' in distribution, so G's
outputs contract onto the parameters instead of wandering with D.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass

import jax
import numpy as np

from magan.config import FitConfig
from magan.emulator import Emulator, check_images
from magan.fitting.diagnostics import diagnose, warn_about
from magan.fitting.features import LearnedSummaries, UserFeatures
from magan.fitting.replicas import fit_sets
from magan.fitting.result import FitResult
from magan.runtime.io import atomic_write_json, write_metrics

__all__ = ["fit"]


def fit(emulator: Emulator, target_images, config: FitConfig | None = None, *, seed: int = 0,
        target_conditions=None, simulator=None, features=None, workdir=None,
        progress: bool | None = None) -> FitResult:
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
        the fit also runs on a reference set that the simulator makes at a known point (the
        starting point, or with ``config.bias_reference = "fit"`` the uncorrected fit); the
        fit's error there estimates the bias that the emulator's imperfections put into the fit,
        and it is subtracted (parametric-bootstrap bias correction). Its spread is added to the
        reported uncertainty.
      features: optional ``features(images, conditions) -> (B, F)`` written with ``jax.numpy``
        (physical images, physical conditions or ``None``), high-level features such as the
        ones pre-training used. With ``config.feature_weight > 0`` G's loss adds the energy
        distance between the features of its emulated batch and of the target batch, each
        feature in units of the targets' event-to-event spread (module docstring). Without
        them the fit matches S's learned summaries (what S's regression head, trained on
        simulations during pre-training, reads off each image). Pass a module-level function:
        the compiled step is cached per function.
      workdir: if given, ``fit_metrics.csv`` and ``fit.json`` are written there.
      progress: show a progress bar (``None``: unless MAGAN_QUIET is set).
    Returns:
      A :class:`FitResult` in physical units.
    """

    cfg, targets, cond = _checked_inputs(emulator, target_images, config, target_conditions,
                                         features)
    t0 = time.perf_counter()
    run = _Fit(emulator, cfg, cond, _summaries(emulator, cfg, features), simulator, seed,
               progress)
    start_unit = run.start_of(targets)
    correct = simulator is not None and cfg.bias_correction
    passes = {"start": _reference_at_start, "fit": _reference_at_fit,
              "around": _references_around_fit}[cfg.bias_reference]
    raw_unit, ref_unit, ref_at, histories, loop_s = passes(run, targets, start_unit, correct)
    result = _result(run, raw_unit, ref_unit, ref_at, start_unit, histories)
    result.diagnostics = _diagnostics(run, targets, raw_unit, result)
    warn_about(result.diagnostics, stacklevel=2)
    result.timing = {"total_s": time.perf_counter() - t0, "loop_s": loop_s,
                     "steps_per_s": cfg.steps * (2 if histories[1] else 1) / loop_s}
    if workdir is not None:
        write_metrics(workdir, "fit", result.history)
        if result.reference_history:
            write_metrics(workdir, "fit_reference", result.reference_history)
        atomic_write_json(f"{workdir}/fit.json", result.to_dict())
    return result


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
    when it matches none); ``cond`` (N, K) the targets' physical conditions or None."""

    emulator: Emulator
    cfg: FitConfig
    cond: np.ndarray | None
    features: Callable | None
    simulator: object
    seed: int
    progress: bool | None

    def start_of(self, images) -> np.ndarray:
        """G's starting point (P,) in the unit cube for images at the targets' conditions."""
        space = self.emulator.space
        if self.cfg.init != "regressor":
            return np.full(space.dim, 0.5, np.float32)
        est = np.clip(self.emulator.estimate(images, self.cond), space.low, space.high)
        return np.clip(space.to_unit(est).mean(axis=0), 0.02, 0.98).astype(np.float32)

    def simulate_reference(self, at, n: int, stream: tuple = ()) -> np.ndarray:
        """``n`` images simulated at the physical point ``at`` (P,), at the targets' conditions,
        from the random stream ``(seed, 7, *stream)``."""
        ref = self.simulator.simulate(np.random.default_rng([self.seed, 7, *stream]),
                                      np.tile(at, (n, 1)), self.emulator.space,
                                      conditions=self.cond)
        return check_images(ref, self.emulator.image_shape, "reference")


def _reference_at_start(run: _Fit, targets, start_unit, correct: bool):
    """One pass: the reference set (with bias correction), simulated at the start, is fitted
    beside the targets. Returns (raw unit draws (R, S, P), reference draws or None, reference
    point or None, (history, []), loop seconds)."""
    key = jax.random.key(run.seed)
    if not correct:
        unit, history, loop_s = fit_sets(run, [targets], start_unit, key, "fitting")
        return unit, None, None, (history, []), loop_s
    ref_at = run.emulator.space.from_unit(start_unit.astype(np.float64))
    sets = [targets, run.simulate_reference(ref_at, targets.shape[0])]
    unit, history, loop_s = fit_sets(run, sets, start_unit, key, "fitting")
    r = run.cfg.replicas
    return unit[:r], unit[r:], ref_at, (history, []), loop_s


def _reference_at_fit(run: _Fit, targets, start_unit, correct: bool):
    """Two passes (the parametric bootstrap): fit the targets, then a reference set simulated
    where that fit landed, started where S places it; the same procedure both times."""
    key = jax.random.key(run.seed)
    unit, history, loop_s = fit_sets(run, [targets], start_unit, key, "fitting")
    if not correct:
        return unit, None, None, (history, []), loop_s
    space = run.emulator.space
    raw = space.from_unit(unit.reshape(-1, space.dim))
    ref_at = np.clip(raw.mean(axis=0), space.low, space.high)
    ref = run.simulate_reference(ref_at, targets.shape[0])
    ref_unit, ref_history, ref_s = fit_sets(run, [ref], run.start_of(ref),
                                            jax.random.fold_in(key, 1), "reference fit")
    return unit, ref_unit, ref_at, (history, ref_history), loop_s + ref_s


def _references_around_fit(run: _Fit, targets, start_unit, correct: bool):
    """Two passes: fit the targets, then ``cfg.reference_sets`` reference sets simulated at
    points scattered around where that fit landed (the first at it; the others displaced by
    normal draws of twice the fit's spread, at least 1 % of each range), all fitted in one
    program with one replica each, each started where S places it. Their errors sample the
    error distribution of the whole procedure near the fit, systematic error included."""
    key = jax.random.key(run.seed)
    unit, history, loop_s = fit_sets(run, [targets], start_unit, key, "fitting")
    if not correct:
        return unit, None, None, (history, []), loop_s
    space, k = run.emulator.space, run.cfg.reference_sets
    raw = space.from_unit(unit.reshape(-1, space.dim))
    scale = np.maximum(2.0 * raw.std(axis=0), 0.01 * space.width)
    offsets = np.random.default_rng([run.seed, 11]).normal(size=(k, space.dim)) * scale
    offsets[0] = 0.0
    ats = np.clip(raw.mean(axis=0) + offsets, space.low, space.high)
    refs = [run.simulate_reference(at, targets.shape[0], (i,)) for i, at in enumerate(ats)]
    starts = np.stack([run.start_of(ref) for ref in refs])
    ref_unit, ref_history, ref_s = fit_sets(run, refs, starts, jax.random.fold_in(key, 1),
                                            "reference fits", replicas=1)
    return unit, ref_unit, ats, (history, ref_history), loop_s + ref_s


def _corrected(space, raw, ref_unit, ref_at):
    """(samples, std, bias, stat_std, syst_std, covariance) from the raw draws (M, P) and the
    reference fits' draws (unit cube) at ``ref_at``: one point (P,) or one per set (K, P)."""
    p = space.dim
    stat = raw.std(axis=0)
    if ref_unit is None:
        return raw, stat, None, stat, None, None
    if np.ndim(ref_at) == 1:  # one reference set: its spread added in quadrature
        ref_samples = space.from_unit(ref_unit.reshape(-1, p))
        bias = ref_samples.mean(axis=0) - ref_at
        std = np.sqrt(raw.var(axis=0) + ref_samples.var(axis=0))
        return raw - bias, std, bias, stat, None, None
    # K reference sets: their errors sample the procedure's error distribution near the fit
    errors = np.stack([space.from_unit(u).mean(axis=0) for u in ref_unit]) - ref_at  # (K, P)
    k = errors.shape[0]
    bias = errors.mean(axis=0)
    cov = np.atleast_2d(np.cov(errors, rowvar=False)) * (1.0 + 1.0 / k)  # + the bias's error
    std = np.sqrt(np.diag(cov))
    syst = np.sqrt(np.maximum(np.diag(cov) - stat ** 2, 0.0))
    return raw - bias, std, bias, stat, syst, cov


def _result(run: _Fit, raw_unit, ref_unit, ref_at, start_unit, histories) -> FitResult:
    """The result in physical units: the raw draws, shifted by the bias measured on the
    reference set(s) when there are any (:func:`_corrected`)."""
    space, p = run.emulator.space, run.emulator.space.dim
    replica_means = space.from_unit(raw_unit.mean(axis=1))
    raw = space.from_unit(raw_unit.reshape(-1, p))
    samples, std, bias, stat, syst, cov = _corrected(space, raw, ref_unit, ref_at)
    return FitResult(
        names=space.names, samples=samples, mean=samples.mean(axis=0), std=std,
        replica_means=replica_means, start=space.from_unit(start_unit.astype(np.float64)),
        raw_mean=raw.mean(axis=0), bias=bias, reference_at=ref_at,
        history=histories[0], reference_history=histories[1],
        config=dataclasses.asdict(run.cfg), stat_std=stat, syst_std=syst, covariance=cov)


def _diagnostics(run: _Fit, targets, raw_unit, result: FitResult):
    """The fit's named checks (:mod:`magan.fitting.diagnostics`) on its inputs and outcome."""
    space = run.emulator.space
    r = run.cfg.replicas
    per_replica = [space.from_unit(raw_unit[i]) for i in range(r)]
    return diagnose(space, n_targets=targets.shape[0],
                    targets_net=run.emulator.to_network(targets, run.cond),
                    training_ranges=run.emulator.info.get("training_images"),
                    target_summaries=run.emulator.summaries(targets, run.cond),
                    replica_means=np.stack([x.mean(axis=0) for x in per_replica]),
                    replica_stds=np.stack([x.std(axis=0) for x in per_replica]),
                    mean=result.mean, raw_mean=result.raw_mean,
                    bias_corrected=result.bias is not None)
