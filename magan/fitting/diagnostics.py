"""A fit that may be wrong says so: named checks on a fit's inputs and outcome, each a warning.

:func:`diagnose` runs every check that the available information allows and returns one
:class:`Diagnostic` per check (``status`` ``"ok"``, ``"warn"`` or ``"unknown"`` when the check
could not run). :func:`magan.fit` stores them in ``FitResult.diagnostics`` and issues a
``FitWarning`` for each ``"warn"``. The thresholds are in :data:`LIMITS`, in one place.

* ``too_few_targets``: a bootstrap over a handful of images is no uncertainty.
* ``targets_in_training_range``: per-image statistics (mean, std, min, max of the pixels, in the
  networks' space) of the targets against the range the emulator saw in pre-training
  (``emulator.info["training_images"]``): images scaled by 255 or 1e6, or another detector, fall
  outside it, and the emulator then has nothing to say about them.
* ``summaries_in_training_range``: the same for S's learned summaries (:meth:`Emulator.summaries
  <magan.Emulator.summaries>`, one per parameter): targets whose pixels look ordinary but whose
  content S reads as lying beyond every simulation it was trained on (another detector, another
  kind of object) fall outside.
* ``replicas_agree``: the (G, D) replicas, each on its own bootstrap resample, must land in one
  place; replicas in separate clusters (a bimodal fit) are reported as modes, not averaged.
* ``away_from_bounds``: a mean within a few percent of a bound of its range is where failed fits
  end (G runs to the edge of the box); if the truth can lie there, widen the range.
* ``uncertainty_is_statistical``: without a simulator (or with ``bias_correction=False``) the
  reported std is the spread of bootstrap replicas only; the emulator's systematic error is not
  in it (on the line study the true error was up to 2-5 times that std).
* ``follows_truth``: with ``bias_reference="around"`` the reference sets, simulated at points
  scattered around the fit, are fitted like the targets; regressed on where they were simulated
  (:func:`response_slopes`), what their fits found rises with slope near 1 for a parameter the
  data determine. A slope below ``LIMITS.min_response_slope`` (by more than half its standard
  error) means the fit lands where it does whatever that parameter's truth is near it (a
  direction the images do not pin down, or one the fit cannot move along): the value and its
  reported std are then not to be trusted, however small that std is.
* ``closure``: the real simulator at the fitted parameters against the targets, next to two
  simulations at the same point (:func:`magan.validation.closure.closure_check`); every fit
  given the simulator runs it (:func:`fit_closure`), on S's learned summaries, pixel statistics
  and generic descriptors of spatial structure (:func:`image_structure`: power per band of
  spatial frequency, orientation coherence), which see what S did not learn to read.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field

import numpy as np

__all__ = ["Diagnostic", "DiagnosticLimits", "LIMITS", "FitWarning", "diagnose",
           "image_statistics", "image_structure", "training_image_ranges", "closure_diagnostic",
           "fit_closure", "not_followed", "reference_slopes", "response_slopes", "warn_about"]


class FitWarning(UserWarning):
    """A fit's diagnostic found a reason to distrust the result."""


@dataclass(frozen=True)
class DiagnosticLimits:
    """The thresholds of every fit diagnostic."""

    min_targets: int = 50  # fewer target images: the bootstrap spread is not an uncertainty
    # a target statistic more than this many widths of the training range outside it is out of
    # range; more than ``max_outside_fraction`` of the targets out of range fails the check
    range_margin: float = 0.25
    max_outside_fraction: float = 0.05
    # replicas whose means are apart by more than this fraction of a parameter's range and by
    # more than ``split_sigmas`` times the replicas' own spread are in separate modes
    split_fraction: float = 0.05
    split_sigmas: float = 4.0
    bound_fraction: float = 0.02  # a mean this close to a bound (fraction of the range)
    outside_fraction: float = 0.05  # a mean this far outside the box (bias correction carried it)
    closure_ratio: float = 3.0  # closure distance over its floor above this (and above ...)
    closure_min: float = 0.02  # ... this absolute mean-image distance) fails
    # a fit's closure (fit_closure) fails above closure_ratio times its floor and this many
    # times the largest distance
    # between the simulation at the fit and simulations at ``closure_draws`` points drawn from the
    # fit's own uncertainty: the targets lie farther from the fit than its uncertainty allows
    closure_spread_ratio: float = 1.5
    closure_draws: int = 16
    # follows_truth: a parameter whose response slope (reference fits' found on their truths)
    # is below this by more than ``response_sigmas`` of its standard error is not followed
    # (half a standard error: the slope is then more likely below than above it; the trade
    # between missed failures and false alarms over ``response_sigmas`` is measured in
    # docs/generalisation.md); slopes from fewer than ``response_min_points`` reference points
    # off the bounds are not assessed
    min_response_slope: float = 0.5
    response_sigmas: float = 0.5
    response_min_points: int = 4


LIMITS = DiagnosticLimits()


@dataclass
class Diagnostic:
    """One named check of a fit: ``status`` ``"ok"``, ``"warn"`` or ``"unknown"``, a message
    that says what was seen and what to do, and the numbers behind it."""

    name: str
    status: str
    message: str
    numbers: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


STATISTICS = ("mean", "std", "min", "max")


def image_statistics(images) -> dict[str, np.ndarray]:
    """Per-image pixel statistics (N,) each: mean, std, min and max of (N, H, W, C) images."""
    flat = np.asarray(images, np.float64).reshape(len(images), -1)
    return {"mean": flat.mean(1), "std": flat.std(1), "min": flat.min(1), "max": flat.max(1)}


STRUCTURE = ("power band 1", "power band 2", "power band 3", "power band 4",
             "orientation coherence")
POWER_BAND_EDGES = (0.0, 0.125, 0.25, 0.5, np.inf)  # fractions of the Nyquist frequency


def power_band_rings(h: int, w: int) -> list[np.ndarray]:
    """The (H, W) boolean masks of the 2-D FFT grid's frequencies in each radial band of
    :data:`POWER_BAND_EDGES` (the zero frequency in none; a band may be empty in small images)."""
    k = np.hypot(*np.meshgrid(np.fft.fftfreq(h), np.fft.fftfreq(w), indexing="ij")) / 0.5
    return [(k > lo) & (k <= hi) for lo, hi in zip(POWER_BAND_EDGES, POWER_BAND_EDGES[1:])]


def image_structure(images) -> np.ndarray:
    """Generic descriptors of each image's spatial structure, (N, 5) float64 (:data:`STRUCTURE`),
    of (N, H, W, C) images summed over channels: the log of the mean power of its 2-D Fourier
    transform (mean removed) in four radial bands of spatial frequency (0-1/8, 1/8-1/4, 1/4-1/2
    and 1/2-1 of the Nyquist frequency: the scales at which it varies; a band without
    frequencies, in images under 16 pixels a side, is 0), and its orientation coherence: the
    image smoothed over 3 x 3 pixels, the structure tensor of its gradients summed over 5 x 5
    neighbourhoods, and ``(l1 - l2) / (l1 + l2)`` of the tensor's eigenvalues averaged over the
    pixels with weight ``l1 + l2`` (0 where structure has no direction, near 1 where it is
    elongated: lines, streaks). They describe any image, whatever made it; the closure check
    compares them beside S's summaries, which see only what S learned to read."""
    x = np.asarray(images, np.float64).sum(axis=-1)
    n, h, w = x.shape
    x = x - x.mean(axis=(1, 2), keepdims=True)
    power = np.abs(np.fft.fft2(x)) ** 2 / (h * w)
    tiny = 1e-12 * power.mean(axis=(1, 2)) + 1e-300
    bands = [np.log(power[:, ring].mean(axis=1) + tiny) if ring.any() else np.zeros(n)
             for ring in power_band_rings(h, w)]
    gy, gx = np.gradient(_box(x, 1), axis=(1, 2)) if min(h, w) > 1 else (x * 0, x * 0)
    jxx, jyy, jxy = (_box(g, 2) for g in (gx * gx, gy * gy, gx * gy))
    coherent = np.sqrt((jxx - jyy) ** 2 + 4.0 * jxy ** 2).sum(axis=(1, 2))
    coherence = coherent / np.maximum((jxx + jyy).sum(axis=(1, 2)), 1e-300)
    return np.column_stack(bands + [coherence])


def _box(a, r: int) -> np.ndarray:
    """Sums of (N, H, W) over each pixel's (2r + 1) x (2r + 1) neighbourhood (zero beyond the
    edges)."""
    p = np.pad(a, ((0, 0), (r, r), (r, r)))
    h, w = a.shape[1:]
    return sum(p[:, i:i + h, j:j + w] for i in range(2 * r + 1) for j in range(2 * r + 1))


def training_image_ranges(images) -> dict[str, list[float]]:
    """``{statistic: [lowest, highest]}`` of the per-image statistics of a set of simulations,
    what :func:`diagnose` compares targets with (saved as ``emulator.info["training_images"]``)."""
    return {k: [float(v.min()), float(v.max())] for k, v in image_statistics(images).items()}


def _too_few_targets(n: int) -> Diagnostic:
    numbers = {"n_targets": n, "minimum": LIMITS.min_targets}
    if n >= LIMITS.min_targets:
        return Diagnostic("too_few_targets", "ok", f"{n} target images.", numbers)
    return Diagnostic("too_few_targets", "warn",
                      f"Only {n} target image(s): the spread of bootstrap replicas over so few "
                      f"images is not a meaningful uncertainty (use at least "
                      f"{LIMITS.min_targets}).", numbers)


def _training_range(targets_net, ranges: dict | None) -> Diagnostic:
    name = "targets_in_training_range"
    if not ranges:
        return Diagnostic(name, "unknown", "The emulator records no range of its training images "
                          "(saved by an older magan); not checked.")
    stats = image_statistics(targets_net)
    numbers, worst = {}, None
    for k in STATISTICS:
        lo, hi = ranges[k]
        margin = LIMITS.range_margin * max(hi - lo, 1e-12)
        outside = float(np.mean((stats[k] < lo - margin) | (stats[k] > hi + margin)))
        numbers[k] = {"training_range": [lo, hi], "targets_median": float(np.median(stats[k])),
                      "fraction_outside": outside}
        if outside > LIMITS.max_outside_fraction and (worst is None or outside
                                                      > numbers[worst]["fraction_outside"]):
            worst = k
    if worst is None:
        return Diagnostic(name, "ok", "The targets' pixel statistics lie within the range of the "
                          "simulations the emulator was trained on.", numbers)
    w = numbers[worst]
    return Diagnostic(name, "warn",
                      f"{100 * w['fraction_outside']:.0f} % of the target images have a pixel "
                      f"{worst} outside the range the emulator was trained on (targets' median "
                      f"{w['targets_median']:.4g}, training range {w['training_range'][0]:.4g} to "
                      f"{w['training_range'][1]:.4g}, in the networks' space). Check the targets' "
                      "units and scale (uint8 0-255? a factor 1e6?) and that they come from the "
                      "simulated detector; the fit through the emulator means little outside its "
                      "training range.", numbers)


def _summaries_in_range(space, target_summaries, ranges: dict | None) -> Diagnostic:
    """Targets' learned summaries (N, P) against ``ranges["summaries"]`` ({"low", "high"} (P,))."""
    name = "summaries_in_training_range"
    if not ranges or "summaries" not in ranges:
        return Diagnostic(name, "unknown", "The emulator records no range of its learned summaries "
                          "(saved by an older magan); not checked.")
    lo, hi = (np.asarray(ranges["summaries"][k], np.float64) for k in ("low", "high"))
    margin = LIMITS.range_margin * np.maximum(hi - lo, 1e-12)
    v = np.asarray(target_summaries, np.float64)
    outside = np.mean((v < lo - margin) | (v > hi + margin) | ~np.isfinite(v), axis=0)  # (P,)
    numbers = {n: {"training_range": [float(a), float(b)], "targets_median":
                   float(np.median(v[:, j])), "fraction_outside": float(outside[j])}
               for j, (n, a, b) in enumerate(zip(space.names, lo, hi))}
    j = int(np.argmax(outside))
    if outside[j] <= LIMITS.max_outside_fraction:
        return Diagnostic(name, "ok", "S's learned summaries of the targets lie within the range "
                          "of the simulations the emulator was trained on.", numbers)
    return Diagnostic(name, "warn",
                      f"For {100 * outside[j]:.0f} % of the target images, S's learned summary of "
                      f"{space.names[j]} lies outside the range it takes on the simulations the "
                      f"emulator was trained on (targets' median {np.median(v[:, j]):.3g}, "
                      f"training range {lo[j]:.3g} to {hi[j]:.3g}): the targets do not look like "
                      "any simulation in the parameter box. Check that they come from the "
                      "simulated detector and setup, and that the box contains the truth.",
                      numbers)


def _replicas_agree(space, replica_means, replica_stds) -> Diagnostic:
    """Replica means (R, P) and within-replica stds (R, P), physical units."""
    name = "replicas_agree"
    r = len(replica_means)
    if r < 2:
        return Diagnostic(name, "unknown", "One replica: agreement not checked.")
    unit = (replica_means - space.low) / space.width  # (R, P), fractions of the range
    sig = np.sqrt(np.mean((replica_stds / space.width) ** 2, axis=0))  # (P,)
    best = None
    for j in range(space.dim):
        order = np.argsort(unit[:, j])
        gaps = np.diff(unit[order, j])
        k = int(np.argmax(gaps))
        gap = float(gaps[k])
        if gap > LIMITS.split_fraction and gap > LIMITS.split_sigmas * sig[j]:
            if best is None or gap > best[1]:
                best = (j, gap, order[:k + 1], order[k + 1:])
    numbers = {"replica_means": replica_means.tolist()}
    if best is None:
        return Diagnostic(name, "ok", f"The {r} replicas agree.", numbers)
    j, gap, low, high = best
    modes = [replica_means[idx].mean(axis=0) for idx in (low, high)]
    numbers.update(modes=[m.tolist() for m in modes], split_parameter=space.names[j],
                   gap_fraction_of_range=gap)
    described = "; ".join(f"{len(idx)} replica(s) at {space.format(m, 4)}"
                          for idx, m in zip((low, high), modes))
    return Diagnostic(name, "warn",
                      f"The replicas split into two modes, {100 * gap:.1f} % of {space.names[j]}'s "
                      f"range apart: {described}. The mean of the two is not a fit; the data (or "
                      "the emulator) allow both. More target images, more replicas, or a start "
                      "nearer one mode (FitConfig.init) tell them apart.", numbers)


def _away_from_bounds(space, mean, raw_mean) -> Diagnostic:
    """``mean`` (P,) the (bias-corrected) fitted mean, ``raw_mean`` (P,) before the correction."""
    name = "away_from_bounds"
    frac = (np.asarray(mean) - space.low) / space.width
    dist = np.minimum(frac, 1.0 - frac)  # negative outside the box
    numbers = {"distance_fraction_of_range": dict(zip(space.names, dist.tolist()))}
    said = []
    for j, n in enumerate(space.names):
        lo, hi, m = space.low[j], space.high[j], mean[j]
        if dist[j] < -LIMITS.outside_fraction:
            said.append(f"{n} = {m:.6g} lies outside its range [{lo:g}, {hi:g}] by "
                        f"{-100 * dist[j]:.1f} % of the range (before bias correction: "
                        f"{raw_mean[j]:.6g})")
        elif dist[j] < LIMITS.bound_fraction:
            side, bound = ("lower", lo) if frac[j] < 0.5 else ("upper", hi)
            said.append(f"{n} = {m:.4g} is within {max(100 * dist[j], 0):.1f} % of the range of "
                        f"its {side} bound {bound:g}")
    if not said:
        return Diagnostic(name, "ok", "Every fitted parameter lies inside its range.", numbers)
    return Diagnostic(name, "warn",
                      "The fit ended at the edge of the parameter box: " + "; ".join(said)
                      + ". A fit that ends at the edge of the box "
                      "has usually failed (a poorly trained emulator, or targets it does not "
                      "describe), not found a value there: check the closure against the "
                      "simulator; if the truth can lie there, widen the range and pre-train the "
                      "emulator over it.", numbers)


def _uncertainty(bias_corrected: bool) -> Diagnostic:
    name = "uncertainty_is_statistical"
    if bias_corrected:
        return Diagnostic(name, "ok", "The fit measured and removed its bias on reference sets "
                          "simulated by the simulator; the std includes their fits' spread "
                          "(with bias_reference='around', the emulator's systematic error near "
                          "the fit).")
    return Diagnostic(name, "warn",
                      "The reported std is statistical only (the spread of bootstrap replicas): "
                      "the emulator's own systematic error is not in it, and the true error can "
                      "be several times larger. Pass fit(..., simulator=sim) to measure and "
                      "remove the bias on reference sets simulated near the fit.")


def response_slopes(at_unit, found_unit) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """How reference fits respond to their truths: ``at_unit`` (K, P) where K reference sets were
    simulated, ``found_unit`` (K, P) their fits' means, both in the unit cube. Per parameter j,
    the least-squares slope (with an intercept) of ``found[:, j]`` on ``at[:, j]`` over the
    points not clipped to a bound in j, its standard error from the residuals, and how many
    points it used: (slopes (P,), standard errors (P,), points (P,) int). Fewer than 3 points
    (or points without spread) give NaN."""
    at = np.atleast_2d(np.asarray(at_unit, np.float64))
    found = np.atleast_2d(np.asarray(found_unit, np.float64))
    p = at.shape[1]
    slopes, errors = np.full(p, np.nan), np.full(p, np.nan)
    used = np.zeros(p, int)
    for j in range(p):
        free = (at[:, j] > 0.0) & (at[:, j] < 1.0) & np.isfinite(found[:, j])
        x, y = at[free, j], found[free, j]
        used[j] = x.size
        dx = x - x.mean() if x.size else x
        sxx = float(dx @ dx)
        if x.size < 3 or sxx <= 1e-24:
            continue
        slopes[j] = float(dx @ (y - y.mean())) / sxx
        resid = y - y.mean() - slopes[j] * dx
        errors[j] = float(np.sqrt(resid @ resid / (x.size - 2) / sxx))
    return slopes, errors, used


def reference_slopes(space, reference_at, reference_means):
    """:func:`response_slopes` of reference fits in physical units: ``reference_at`` and
    ``reference_means`` (K, P) as a fit stores them, mapped to ``space``'s unit cube, a reference
    set whose point or fit is not finite left out."""
    at, found = np.asarray(reference_at, np.float64), np.asarray(reference_means, np.float64)
    finite = np.all(np.isfinite(at), axis=1) & np.all(np.isfinite(found), axis=1)
    return response_slopes(space.to_unit(at[finite]), space.to_unit(found[finite]))


def not_followed(slopes, errors, points, sigmas: float | None = None) -> np.ndarray:
    """Which parameters ``follows_truth`` warns about, from :func:`response_slopes`' output:
    those with at least ``response_min_points`` points whose slope is below
    ``min_response_slope`` by more than ``sigmas`` (default ``response_sigmas``) standard errors.
    (P,) bool."""
    lim = LIMITS
    z = lim.response_sigmas if sigmas is None else sigmas
    errors = np.asarray(errors, np.float64)
    assessed = (np.asarray(points) >= lim.response_min_points) & np.isfinite(errors)
    return assessed & (np.asarray(slopes, np.float64) + z * errors < lim.min_response_slope)


def _follows_truth(space, reference_at, reference_means) -> Diagnostic:
    """``reference_at`` and ``reference_means`` (K, P) physical: the reference sets' points and
    their fits' means (:attr:`FitResult.reference_means <magan.FitResult.reference_means>`)."""
    name, lim = "follows_truth", LIMITS
    if (reference_at is None or np.ndim(reference_at) != 2
            or len(reference_at) < lim.response_min_points):
        return Diagnostic(name, "unknown", f"Fewer than {lim.response_min_points} reference sets "
                          "scattered around the fit (they need the simulator, "
                          "bias_reference='around' and FitConfig.reference_sets >= "
                          f"{lim.response_min_points}); whether the fit follows each "
                          "parameter's truth was not checked.")
    slopes, errors, used = reference_slopes(space, reference_at, reference_means)
    assessed = (used >= lim.response_min_points) & np.isfinite(errors)
    flags = not_followed(slopes, errors, used)
    flagged = [j for j in range(space.dim) if flags[j]]
    numbers = {n: {"slope": float(slopes[j]), "slope_stderr": float(errors[j]),
                   "points": int(used[j])} for j, n in enumerate(space.names)}
    skipped = [n for j, n in enumerate(space.names) if not assessed[j]]
    if not assessed.any():
        return Diagnostic(name, "unknown", f"Fewer than {lim.response_min_points} finite "
                          "reference points off the bounds (or no spread among them) in every "
                          "parameter; whether the fit follows each parameter's truth was not "
                          "checked.", numbers)
    if not flagged:
        tail = (f" ({', '.join(skipped)}: too few reference points off the bounds to tell)"
                if skipped else "")
        return Diagnostic(name, "ok", "Reference sets simulated around the fit, fitted back, "
                          "moved with the points they were simulated at (no response slope "
                          f"clearly below {lim.min_response_slope:g}): the fit follows each "
                          f"parameter's truth{tail}.", numbers)
    said = "; ".join(f"{space.names[j]} {slopes[j]:+.2f} +- {errors[j]:.2f}" for j in flagged)
    which = ", ".join(space.names[j] for j in flagged)
    return Diagnostic(name, "warn",
                      f"The fit does not follow the truth of {which} "
                      f"near the fitted point: reference sets simulated at points scattered "
                      f"around the fit were fitted back with response slopes {said} (1 where "
                      "the data determine a parameter). The fit lands there whatever that "
                      "parameter's value is nearby, so neither the value nor its reported std "
                      "can be trusted. The images may not pin it down (a degeneracy with "
                      "another parameter, too few targets) or the emulator may not render it; "
                      "check with more target images, fix it if it is known, or pre-train "
                      "longer.", numbers)


def closure_diagnostic(closure: dict) -> Diagnostic:
    """The ``closure`` check from a :func:`~magan.validation.closure.closure_check` result."""
    fit, floor = closure["fit"]["mean_image_rel"], closure["floor"]["mean_image_rel"]
    numbers = {"mean_image_rel": fit, "floor": floor}
    if fit <= max(LIMITS.closure_ratio * floor, LIMITS.closure_min):
        return Diagnostic("closure", "ok", f"The simulator at the fit reproduces the targets "
                          f"(mean-image distance {fit:.4f}, floor {floor:.4f}).", numbers)
    return Diagnostic("closure", "warn",
                      f"The simulator at the fitted parameters does not reproduce the targets: "
                      f"mean-image distance {fit:.4f}, {fit / max(floor, 1e-12):.1f}x its floor "
                      f"{floor:.4f} (two simulations at the same point). The fit (or the "
                      "emulator there) is off, or the simulator cannot describe the data.",
                      numbers)


def fit_closure(simulator, space, mean, cov, targets, describe, conditions=None, *,
                seed: int = 0, max_images: int = 250, names=None) -> Diagnostic:
    """The ``closure`` check of a fit, a posterior-predictive test. ``n = min(N, max_images)``
    images simulated at the fitted ``mean`` (P,) are compared with the N ``targets`` (N, H, W, C)
    through ``describe(images, conditions) -> (n, F)``, F summaries of each image (``names``;
    the fit uses S's learned summaries, the pixel statistics and the generic structure
    descriptors of :func:`image_structure`, :meth:`magan.Emulator.describe`):
    per summary, the difference of its means. Beside it two references per summary: the floor (a
    second simulation at the mean) and the largest difference at ``LIMITS.closure_draws`` points
    drawn from N(mean, ``cov`` (P, P)), the fit's own uncertainty. If that uncertainty is honest
    the truth is like those points; the check fails when for some summary the targets lie
    farther from the fit than ``closure_spread_ratio`` times the farthest of them and than
    ``closure_ratio`` times the floor. Physical units; points are clipped into the box. With
    per-event ``conditions`` (N, K), the simulations are made at the conditions of n targets
    drawn at random and compared with those n targets' summaries (like with like: targets
    ordered by, say, beam energy would otherwise be compared with simulations at their first
    energies only)."""
    rng = np.random.default_rng([seed, 13])
    n = min(len(targets), max_images)
    if conditions is not None:
        pick = (np.sort(rng.choice(len(targets), n, replace=False)) if n < len(targets)
                else np.arange(n))
        conditions, targets = np.asarray(conditions)[pick], targets[pick]

    def means_at(at):
        x = simulator.simulate(rng, np.tile(at, (n, 1)), space, conditions=conditions)
        return np.asarray(describe(x, conditions), np.float64).mean(axis=0)

    at = space.clip(np.asarray(mean, np.float64))
    draws = np.clip(rng.multivariate_normal(at, np.atleast_2d(cov), LIMITS.closure_draws,
                                            method="eigh"), space.low, space.high)
    f_targets = np.asarray(describe(targets, conditions), np.float64)
    scale = np.maximum(f_targets.std(axis=0), 1e-300)  # reporting only: the test is per summary
    m_fit, m_floor, *m_draws = (means_at(p) for p in [at, at, *draws])
    d_fit = np.abs(m_fit - f_targets.mean(axis=0))
    floor = np.abs(m_floor - m_fit)
    spread = np.max(np.abs(np.stack(m_draws) - m_fit), axis=0)
    allowed = np.maximum(LIMITS.closure_ratio * floor, LIMITS.closure_spread_ratio * spread)
    names = list(names) if names is not None else [f"summary {j}" for j in range(len(d_fit))]
    ratio = d_fit / np.maximum(allowed, 1e-300)
    j = int(np.argmax(ratio))
    numbers = {"n_simulated": n, "nearest_its_limit": names[j], "summaries": {
        nm: {"difference_in_target_std": float(d_fit[k] / scale[k]),
             "floor_in_target_std": float(floor[k] / scale[k]),
             "within_uncertainty_in_target_std": float(spread[k] / scale[k])}
        for k, nm in enumerate(names)}}
    if ratio[j] <= 1.0:
        return Diagnostic("closure", "ok", "The simulator at the fit reproduces the targets' "
                          "image summaries within the fit's uncertainty.", numbers)
    w = numbers["summaries"][names[j]]
    return Diagnostic("closure", "warn",
                      f"The simulator at the fitted parameters does not reproduce the targets: "
                      f"their mean {names[j]} differs by {w['difference_in_target_std']:.3g} "
                      f"target standard deviations, {d_fit[j] / max(spread[j], 1e-300):.1f}x the "
                      "largest difference at points drawn from the fit's own uncertainty "
                      f"({w['within_uncertainty_in_target_std']:.3g}) and "
                      f"{d_fit[j] / max(floor[j], 1e-300):.1f}x the floor "
                      f"({w['floor_in_target_std']:.3g}, two simulations at the fit). The fit is "
                      "off by more than its reported uncertainty (the emulator is inaccurate "
                      "there), or the simulator cannot describe the data.", numbers)


def diagnose(space, *, n_targets: int, targets_net=None, training_ranges=None,
             target_summaries=None, replica_means=None, replica_stds=None, mean=None, raw_mean=None,
             bias_corrected: bool | None = None, reference_at=None,
             reference_means=None) -> list[Diagnostic]:
    """Every check the given information allows, in a fixed order (module docstring)."""
    out = [_too_few_targets(n_targets)]
    if bias_corrected is not None:
        out.append(_uncertainty(bias_corrected))
    if targets_net is not None:
        out.append(_training_range(targets_net, training_ranges))
    if target_summaries is not None:
        out.append(_summaries_in_range(space, target_summaries, training_ranges))
    if replica_means is not None:
        out.append(_replicas_agree(space, replica_means, replica_stds))
    if mean is not None:
        out.append(_away_from_bounds(space, mean, mean if raw_mean is None else raw_mean))
    if bias_corrected:
        out.append(_follows_truth(space, reference_at, reference_means))
    return out


def warn_about(diagnostics, stacklevel: int = 2) -> None:
    """A :class:`FitWarning` for every diagnostic that warns."""
    for d in diagnostics:
        if d.status == "warn":
            warnings.warn(f"[{d.name}] {d.message}", FitWarning, stacklevel=stacklevel + 1)
