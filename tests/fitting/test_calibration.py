"""Many target sets in one program (fit_many) and the batched calibration built on it
(magan.calibrate): one set is fit() bit for bit, several give each set its own sensible result,
the same seed gives the same numbers, an interrupted calibration resumes to the same result, and
bad arguments are refused with errors that name them. No wall-clock asserts here: the speed is
scripts/calibration_speed.py's."""

import json
import warnings

import numpy as np
import pytest

import magan
import magan.calibration
import magan.validation.calibration as vcal
from magan.config import replace
from magan.fitting.diagnostics import FitWarning
from magan.fitting.stage import fit_many
from magan.studies.line.simulator import LINE_SPACE, line_simulator

# bias_reference="fit": both passes of a program of T sets compile to one program (T * R
# replicas on T sets), so these tests compile two (R and 2 R replicas) between them
CFG = replace(magan.FIT_PRESETS["tiny"], bias_reference="fit", steps=20)
TRUTHS = np.array([[-0.3, 10.0, 3.0, 6.0], [0.3, 17.0, 10.0, 12.0]])


def _targets(truth, seed, n=32):
    return line_simulator().simulate(np.random.default_rng(seed), np.tile(truth, (n, 1)),
                                     LINE_SPACE)


def _quiet(call, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FitWarning)  # a tiny emulator fits poorly
        return call(*args, **kwargs)


def test_one_set_is_fit_bit_for_bit(tiny_line_emulator):
    sim, x = line_simulator(), _targets(TRUTHS[0], 1)
    single = _quiet(magan.fit, tiny_line_emulator, x, CFG, seed=3, simulator=sim, progress=False)
    [many] = _quiet(fit_many, tiny_line_emulator, [x], CFG, seed=3, simulator=sim,
                    progress=False)
    assert np.array_equal(many.samples, single.samples)
    assert np.array_equal(many.std, single.std) and np.array_equal(many.bias, single.bias)
    assert np.array_equal(many.reference_at, single.reference_at)
    assert many.history == single.history and many.reference_history == single.reference_history
    assert [d.to_dict() for d in many.diagnostics] == [d.to_dict() for d in single.diagnostics]


def test_sets_side_by_side_each_get_their_own_fit(tiny_line_emulator):
    sim = line_simulator()
    sets = [_targets(t, 10 + i) for i, t in enumerate(TRUTHS)]
    both = _quiet(fit_many, tiny_line_emulator, sets, CFG, seed=0, simulator=sim, progress=False)
    again = _quiet(fit_many, tiny_line_emulator, sets, CFG, seed=0, simulator=sim, progress=False)
    for a, b in zip(both, again):  # the same seed, the same numbers
        assert np.array_equal(a.samples, b.samples) and np.array_equal(a.std, b.std)
    width = LINE_SPACE.width
    for t, res in enumerate(both):
        own = _quiet(magan.fit, tiny_line_emulator, sets[t], CFG, seed=t, simulator=sim,
                     progress=False)
        assert np.array_equal(res.start, own.start)  # where S places set t, in both
        assert np.allclose(res.reference_at, np.clip(res.raw_mean, LINE_SPACE.low,
                                                     LINE_SPACE.high))  # at set t's own fit
        assert np.allclose(res.bias, res.reference_means - res.reference_at)  # its one set's
        # the same procedure on the same targets: the means differ by the random draws only
        assert np.all(np.abs(res.mean - own.mean) < 0.1 * width + 3 * (res.std + own.std)), t
        assert res.samples.shape == own.samples.shape
    assert not np.allclose(both[0].start, both[1].start)  # the two sets are told apart


def test_fit_many_refuses_mismatched_sets(tiny_line_emulator):
    x = _targets(TRUTHS[0], 1)
    with pytest.raises(ValueError, match="different sizes"):
        fit_many(tiny_line_emulator, [x, x[:16]], CFG)
    with pytest.raises(TypeError, match="non-empty list"):
        fit_many(tiny_line_emulator, x, CFG)
    with pytest.raises(ValueError, match="target_conditions has 1 arrays for 2 target sets"):
        fit_many(tiny_line_emulator, [x, x], CFG, target_conditions=[None])


def test_calibration_resumes_after_an_interrupted_chunk(tiny_line_emulator, tmp_path,
                                                        monkeypatch):
    kw = dict(n_truths=3, n_targets=32, fit_config=CFG, seed=1, truths_per_program=2,
              progress=False)
    sim = line_simulator()
    whole = _quiet(magan.calibrate, tiny_line_emulator, sim, workdir=tmp_path / "a", **kw)
    assert len(whole["means"]) == len(whole["warnings"]) == 3
    assert whole["summary"]["n_truths"] == 3 and whole["names"] == list(LINE_SPACE.names)

    real, calls = vcal._fit_chunk, []

    def interrupted(*args):
        calls.append(list(args[3]))
        if len(calls) == 2:
            raise KeyboardInterrupt  # stopped during the second chunk
        return real(*args)

    monkeypatch.setattr(vcal, "_fit_chunk", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _quiet(magan.calibrate, tiny_line_emulator, sim, workdir=tmp_path / "b", **kw)
    saved = json.loads((tmp_path / "b" / "calibration.json").read_text())
    assert len(saved["means"]) == 2  # the first chunk was written, with the parameters' names
    assert saved["names"] == list(LINE_SPACE.names)
    calls.clear()
    resumed = _quiet(magan.calibrate, tiny_line_emulator, sim, workdir=tmp_path / "b", **kw)
    assert calls == [[2]]  # only the unfinished chunk ran again
    for key in ("truths", "means", "stds", "warnings", "summary", "reference_at",
                "reference_means"):
        assert resumed[key] == whole[key], key
    assert np.shape(whole["reference_at"]) == np.shape(whole["reference_means"]) == (3, 4)
    # a file written before the reference points were kept resumes too (None for its truths)
    for key in ("reference_at", "reference_means"):
        saved.pop(key)
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "calibration.json").write_text(json.dumps(saved))
    calls.clear()
    older = _quiet(magan.calibrate, tiny_line_emulator, sim, workdir=tmp_path / "c", **kw)
    assert calls == [[2]] and older["means"] == whole["means"]
    assert older["reference_at"][:2] == [None, None]
    assert older["reference_at"][2] == whole["reference_at"][2]


@pytest.mark.parametrize("kwargs, match", [
    ({"n_truths": 1}, "n_truths must be at least 2"),
    ({"truths": [0.0, 10.0, 3.0, 6.0]}, r"truths must be an array \(T, 4\)"),
    ({"truths": np.zeros((3, 3))}, r"expected shape \(N, 4\)"),
    ({"truths": [[0.0, 10.0, 3.0, 6.0], [0.0, 30.0, 3.0, 6.0]]}, "'c' = 30 .* outside"),
    ({"truths": [[0.0, 10.0, 3.0, 6.0]]}, "at least 2 truth points"),
    ({"truths_per_program": 0}, "truths_per_program must be an integer >= 1"),
    ({"inner": 1.5}, r"inner must be in \(0, 1\]"),
])
def test_calibrate_refuses_bad_arguments(tiny_line_emulator, kwargs, match):
    with pytest.raises(ValueError, match=match):
        magan.calibrate(tiny_line_emulator, line_simulator(), **kwargs)


def test_calibration_is_a_public_module_without_a_deprecation():
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        import importlib

        module = importlib.import_module("magan.calibration")
    assert module.calibrate is vcal.calibrate is magan.calibrate
    assert module.summarise_calibration is vcal.summarise_calibration
