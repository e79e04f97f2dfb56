"""A fit that may be wrong says so: each diagnostic fires on its failure and stays quiet on a
healthy fit."""

import warnings

import numpy as np
import pytest

import magan
from magan.fitting.diagnostics import (
    LIMITS,
    STRUCTURE,
    FitWarning,
    closure_diagnostic,
    diagnose,
    fit_closure,
    image_statistics,
    image_structure,
    response_slopes,
    training_image_ranges,
    warn_about,
)
from magan.studies.line.simulator import LINE_SPACE, line_simulator

TRUTH = np.array([0.2, 12.0, 4.0, 9.0])


def _status(diags, name):
    return next(d for d in diags if d.name == name)


@pytest.fixture(scope="module")
def line_images():
    sim = line_simulator()
    rng = np.random.default_rng(0)
    train = sim.simulate(rng, LINE_SPACE.sample(rng, 256), LINE_SPACE)
    targets = sim.simulate(rng, np.tile(TRUTH, (200, 1)), LINE_SPACE)
    return training_image_ranges(train), targets


def test_targets_like_the_training_images_pass(line_images):
    ranges, targets = line_images
    d = _status(diagnose(LINE_SPACE, n_targets=200, targets_net=targets, training_ranges=ranges),
                "targets_in_training_range")
    assert d.status == "ok", d.message


@pytest.mark.parametrize("scale", [255.0, 1e6, -1.0])
def test_scaled_targets_are_out_of_range(line_images, scale):
    ranges, targets = line_images
    d = _status(diagnose(LINE_SPACE, n_targets=200, targets_net=targets * scale,
                         training_ranges=ranges), "targets_in_training_range")
    assert d.status == "warn" and "units and scale" in d.message


def test_old_emulators_without_ranges_are_unknown(line_images):
    _, targets = line_images
    d = _status(diagnose(LINE_SPACE, n_targets=200, targets_net=targets, training_ranges=None),
                "targets_in_training_range")
    assert d.status == "unknown"


def test_learned_summaries_out_of_range():
    ranges = {"summaries": {"low": [-2.0, -1.0, -3.0, -2.0], "high": [2.0, 1.0, 3.0, 2.0]}}
    inside = np.random.default_rng(0).uniform(-1, 1, (200, 4))
    check = lambda v, r=ranges: _status(  # noqa: E731
        diagnose(LINE_SPACE, n_targets=200, target_summaries=v, training_ranges=r),
        "summaries_in_training_range")
    assert check(inside).status == "ok"
    shifted = inside + [0, 0, 6.0, 0]  # beyond 3 + 25 % of the 6-wide range: 4.5
    d = check(shifted)
    assert d.status == "warn" and "x0" in d.message and "100 %" in d.message
    assert check(inside, {"mean": [0, 1]}).status == "unknown"


@pytest.mark.parametrize("n, status", [(1, "warn"), (LIMITS.min_targets - 1, "warn"),
                                       (LIMITS.min_targets, "ok")])
def test_too_few_targets(n, status):
    assert _status(diagnose(LINE_SPACE, n_targets=n), "too_few_targets").status == status


def test_replicas_in_two_modes_are_reported_as_modes():
    stds = np.full((3, 4), 0.01)
    agree = np.array([[0.20, 12.0, 4.0, 9.0], [0.21, 12.1, 4.0, 9.0], [0.19, 11.9, 4.1, 9.1]])
    d = _status(diagnose(LINE_SPACE, n_targets=500, replica_means=agree, replica_stds=stds),
                "replicas_agree")
    assert d.status == "ok"
    split = agree.copy()
    split[2, 1] = 17.0  # c: 5 of a range of 12 away
    d = _status(diagnose(LINE_SPACE, n_targets=500, replica_means=split, replica_stds=stds),
                "replicas_agree")
    assert d.status == "warn" and d.numbers["split_parameter"] == "c"
    modes = sorted(m[1] for m in d.numbers["modes"])
    assert modes == pytest.approx([12.05, 17.0])
    # replicas that are broad enough to overlap are one mode
    wide = np.full((3, 4), 2.0)
    d = _status(diagnose(LINE_SPACE, n_targets=500, replica_means=split, replica_stds=wide),
                "replicas_agree")
    assert d.status == "ok"


def test_bounds():
    inside = diagnose(LINE_SPACE, n_targets=500, mean=TRUTH)
    assert _status(inside, "away_from_bounds").status == "ok"
    near = diagnose(LINE_SPACE, n_targets=500, mean=np.array([0.495, 12.0, 4.0, 9.0]))
    assert "m = 0.495 is within 0.5 % of the range of its upper bound 0.5" in \
        _status(near, "away_from_bounds").message
    far = diagnose(LINE_SPACE, n_targets=500, mean=np.array([1.49, 12.0, 4.0, 9.0]),
                   raw_mean=TRUTH)
    d = _status(far, "away_from_bounds")
    assert "m = 1.49 lies outside its range [-0.5, 0.5] by 99.0 % of the range" in d.message


def test_uncertainty_without_a_simulator_is_called_statistical():
    d = _status(diagnose(LINE_SPACE, n_targets=500, bias_corrected=False),
                "uncertainty_is_statistical")
    assert d.status == "warn" and "statistical only" in d.message
    d = _status(diagnose(LINE_SPACE, n_targets=500, bias_corrected=True),
                "uncertainty_is_statistical")
    assert d.status == "ok"


def _references(slope_m, noise=0.002, k=8, centre=(0.5, 0.5, 0.5, 0.5), seed=0):
    """K reference points scattered 1 % of each range around ``centre`` (unit cube) and what
    fits responding with slope 1 (``slope_m`` for m) plus ``noise`` would find, physical."""
    rng = np.random.default_rng(seed)
    at = np.clip(np.asarray(centre) + 0.01 * rng.normal(size=(k, 4)), 0.0, 1.0)
    slope = np.array([slope_m, 1.0, 1.0, 1.0])
    found = 0.5 + slope * (at - 0.5) + 0.003 + noise * rng.normal(size=(k, 4))
    return LINE_SPACE.from_unit(at), LINE_SPACE.from_unit(found)


def _exact_references(slope_m, stderr_m, k=8):
    """K reference points around the box's centre where m's fits respond with exactly slope
    ``slope_m`` and residuals (orthogonal to the points) giving exactly standard error
    ``stderr_m``; the other parameters respond with slope 1 and no residual. Physical units."""
    d = 0.01 * (np.arange(k) - (k - 1) / 2)  # the points' offsets, unit cube
    r = np.cos(np.pi * np.arange(k))  # +-1: sums to 0, orthogonal to d
    r -= d * (r @ d) / (d @ d)
    r *= stderr_m * np.sqrt((k - 2) * (d @ d) / (r @ r))
    at = 0.5 + np.repeat(d[:, None], 4, axis=1)
    found = at.copy()
    found[:, 0] = 0.5 + slope_m * d + r
    return LINE_SPACE.from_unit(at), LINE_SPACE.from_unit(found)


def test_response_slopes_recover_the_slope_and_its_error():
    rng = np.random.default_rng(3)
    at = rng.random((40, 2))
    found = np.c_[0.2 + 0.7 * at[:, 0], 0.5 + 0.05 * rng.normal(size=40)]
    slopes, errors, used = response_slopes(at, found)
    assert slopes[0] == pytest.approx(0.7, abs=1e-9) and errors[0] < 1e-9
    assert abs(slopes[1]) < 3 * errors[1] and 0.01 < errors[1] < 0.2
    assert used.tolist() == [40, 40]
    # points clipped to a bound in a parameter do not count for it
    at[:37, 1] = 1.0
    slopes, errors, used = response_slopes(at, found)
    assert used.tolist() == [40, 3]
    at[:38, 1] = 0.0
    assert np.isnan(response_slopes(at, found)[0][1])


def test_follows_truth():
    def check(at, found):
        return _status(diagnose(LINE_SPACE, n_targets=500, bias_corrected=True,
                                reference_at=at, reference_means=found), "follows_truth")

    assert check(*_references(1.0)).status == "ok"
    d = check(*_references(0.0))
    assert d.status == "warn" and "does not follow the truth of m near the fitted point" in \
        d.message
    assert d.numbers["m"]["slope"] == pytest.approx(0.0, abs=0.3)
    assert d.numbers["c"]["slope"] == pytest.approx(1.0, abs=0.3)
    # a slope is judged with its error: m's slope 0.2 warns when it is measured to +- 0.2, not
    # when the reference fits scatter so much that it is uncertain to +- 0.8
    for stderr, status in ((0.2, "warn"), (0.8, "ok")):
        d = check(*_exact_references(0.2, stderr))
        assert d.numbers["m"]["slope"] == pytest.approx(0.2, abs=1e-6)
        assert d.numbers["m"]["slope_stderr"] == pytest.approx(stderr, rel=1e-6)
        assert d.status == status, d.message
    assert "m +0.20 +- 0.20" in check(*_exact_references(0.2, 0.2)).message
    # a reference fit that came back non-finite is left out, not a crash
    at, found = _references(1.0)
    found[0, 0] = np.nan
    assert check(at, found).status == "ok"
    # a parameter at its bound (its points clipped into the box) is not assessed
    d = check(*_references(0.0, centre=(1.02, 0.5, 0.5, 0.5)))
    assert d.status == "ok" and "m: too few reference points off the bounds" in d.message
    # three sets: too few points for any slope
    assert check(*_references(1.0, k=3)).status == "unknown"
    # one reference point (bias_reference "fit" or "start"): not checked
    one = diagnose(LINE_SPACE, n_targets=500, bias_corrected=True, reference_at=TRUTH,
                   reference_means=TRUTH)
    assert _status(one, "follows_truth").status == "unknown"
    assert "follows_truth" not in [d.name for d in diagnose(LINE_SPACE, n_targets=500,
                                                            bias_corrected=False)]


def test_closure_far_above_its_floor():
    good = {"fit": {"mean_image_rel": 0.03}, "floor": {"mean_image_rel": 0.02}}
    bad = {"fit": {"mean_image_rel": 0.35}, "floor": {"mean_image_rel": 0.014}}
    assert closure_diagnostic(good).status == "ok"
    assert closure_diagnostic(bad).status == "warn"
    assert "25.0x its floor" in closure_diagnostic(bad).message


def _line_summaries(images, conditions=None):
    """Per-image total, centroid (x, y) and second moments of line images (N, 28, 28, 1)."""
    w = np.clip(images[..., 0], 0, None) + 1e-9
    yy, xx = np.mgrid[:28, :28]
    tot = w.sum(axis=(1, 2))
    cy, cx = (w * yy).sum(axis=(1, 2)) / tot, (w * xx).sum(axis=(1, 2)) / tot
    sx = np.sqrt((w * (xx - cx[:, None, None]) ** 2).sum(axis=(1, 2)) / tot)
    return np.column_stack([tot, cx, cy, sx])


def test_fit_closure_runs_the_simulator_at_the_fit(line_images):
    _, targets = line_images
    sim = line_simulator()
    cov = np.diag((0.01 * LINE_SPACE.width) ** 2)  # a fit that claims 1 % of each range
    check = lambda at, c: fit_closure(sim, LINE_SPACE, at, c, targets,  # noqa: E731
                                      _line_summaries, seed=1)
    assert check(TRUTH, cov).status == "ok"
    # 5 % off in c: far outside the claimed 1 %, within a claimed 5 %
    off = TRUTH + [0, 0.6, 0, 0]
    d = check(off, cov)
    assert d.status == "warn" and "does not reproduce the targets" in d.message
    assert check(off, 25 * cov).status == "ok"


def test_warnings_name_the_check():
    diags = diagnose(LINE_SPACE, n_targets=3)
    with pytest.warns(FitWarning, match=r"\[too_few_targets\] Only 3 target image"):
        warn_about(diags)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_about(diagnose(LINE_SPACE, n_targets=500))


def test_fit_reports_its_diagnostics(tiny_line_emulator):
    """End to end: the emulator records its training range; a fit on images scaled by 255
    warns about it, lists it in result.diagnostics and in to_dict()."""
    emu = tiny_line_emulator
    assert set(emu.info["training_images"]) == {"mean", "std", "min", "max", "summaries"}
    targets = line_simulator().simulate(np.random.default_rng(1), np.tile(TRUTH, (64, 1)),
                                        LINE_SPACE)
    with pytest.warns(FitWarning, match="targets_in_training_range"):
        res = magan.fit(emu, targets * 255, magan.FIT_PRESETS["tiny"], progress=False)
    assert "targets_in_training_range" in res.warnings
    names = [d["name"] for d in res.to_dict()["diagnostics"]]
    assert names == ["too_few_targets", "uncertainty_is_statistical", "targets_in_training_range",
                     "summaries_in_training_range", "replicas_agree", "away_from_bounds"]
    assert "uncertainty_is_statistical" in res.warnings  # no simulator given
    assert "warnings:" in repr(res)


def test_fit_closure_compares_like_with_like_under_conditions():
    """Targets sorted by a per-event condition (a test beam at rising energies): the closure
    simulates at the conditions of the targets it compares with, not at the first ones only."""
    space = magan.ParameterSpace({"width": (1.0, 3.0, "px")})

    def blob(rng, params, conditions):  # brightness proportional to the energy
        yy, xx = np.mgrid[:8, :8] - 3.5
        img = np.exp(-(yy ** 2 + xx ** 2)[None] / (2 * params[:, 0][:, None, None] ** 2))
        img = img * conditions[:, 0][:, None, None]
        return (img * (1 + 0.05 * rng.standard_normal(img.shape)))[..., None]

    sim = magan.FunctionSimulator(blob, (8, 8, 1), conditions=magan.ConditionSpace(
        {"energy": (10.0, 100.0, "GeV", "log")}))
    cond = np.repeat([10.0, 20.0, 50.0, 100.0], 250)[:, None]  # sorted, as a test beam's
    truth = np.array([2.0])
    targets = sim.simulate(np.random.default_rng(0), np.tile(truth, (1000, 1)), space,
                           conditions=cond)

    def summaries(x, c):
        return np.column_stack([x.mean(axis=(1, 2, 3)), x.max(axis=(1, 2, 3)) / c[:, 0]])

    check = lambda at: fit_closure(sim, space, at, np.diag([0.02 ** 2]), targets,  # noqa: E731
                                   summaries, cond, seed=1)
    assert check(truth).status == "ok"
    assert check(truth + 0.3).status == "warn"  # 15 % of the range off: seen


def test_image_structure_reads_scale_and_orientation():
    """Power moves to low frequencies as an image gets smoother; orientation coherence orders
    white noise < a round blob < a streak; images under 16 pixels a side and several channels
    are described too (an empty band is 0)."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:32, :32] - 15.5
    noise = rng.normal(size=(1, 32, 32, 1))
    blob = np.exp(-(yy ** 2 + xx ** 2) / 8.0)[None, ..., None]
    streak = np.exp(-(yy ** 2 / 2.0 + xx ** 2 / 60.0))[None, ..., None]
    s = image_structure(np.concatenate([noise, blob, streak]))
    assert s.shape == (3, len(STRUCTURE)) and np.isfinite(s).all()
    coherence = s[:, STRUCTURE.index("orientation coherence")]
    assert coherence[0] < coherence[1] < coherence[2]
    assert s[1, 0] - s[1, 3] > s[0, 0] - s[0, 3] + 5  # the blob's power sits at low frequency
    small = image_structure(rng.normal(size=(4, 8, 8, 3)))
    assert small.shape == (4, 5) and np.isfinite(small).all() and (small[:, 0] == 0).all()


def test_fit_closure_sees_texture_that_pixel_statistics_miss():
    """Smoothed noise fields standardised per image: a wrong smoothing length leaves each
    image's pixel mean and std unchanged, so a closure on them alone passes; the structure
    descriptors (what Emulator.describe adds) catch it, and stay quiet at the truth."""
    space = magan.ParameterSpace({"smoothing": (0.5, 3.0, "px")})

    def field(rng, params):
        k = np.hypot(*np.meshgrid(np.fft.fftfreq(32), np.fft.fftfreq(32), indexing="ij"))
        f = np.fft.fft2(rng.standard_normal((len(params), 32, 32)))
        x = np.fft.ifft2(f * np.exp(-2 * (np.pi * k * params[:, :1, None]) ** 2)).real
        x = (x - x.mean(axis=(1, 2), keepdims=True)) / x.std(axis=(1, 2), keepdims=True)
        return x[..., None].astype(np.float32)

    sim = magan.FunctionSimulator(field, (32, 32, 1))
    truth, off = np.array([1.5]), np.array([1.9])
    targets = sim.simulate(np.random.default_rng(0), np.tile(truth, (500, 1)), space)

    def pixels(x, c=None):
        stats = image_statistics(x)
        return np.column_stack([stats["mean"], stats["std"]])

    def with_structure(x, c=None):
        return np.column_stack([pixels(x), image_structure(x)])

    cov = np.diag([0.02 ** 2])
    check = lambda at, d: fit_closure(sim, space, at, cov, targets, d, seed=1)  # noqa: E731
    assert check(off, pixels).status == "ok"
    assert check(off, with_structure).status == "warn"
    assert check(truth, with_structure).status == "ok"
