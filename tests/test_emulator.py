import json

import numpy as np
import pytest

import magan
from magan.config import replace
from magan.studies.line.simulator import LINE_SPACE, line_simulator


@pytest.fixture(scope="module")
def tiny_emulator(tiny_line_emulator):
    return tiny_line_emulator


def test_training_records_finite_history(tiny_emulator):
    hist = tiny_emulator.info["pretrain"]["history"]
    assert hist[-1]["step"] == magan.PRETRAIN_PRESETS["tiny"].steps
    for row in hist:
        assert all(np.isfinite(v) for v in row.values())
    timing = tiny_emulator.info["pretrain"]["timing"]
    assert timing["device_waited_for_simulator_s"] >= 0


def test_sample_shape_and_seed(tiny_emulator):
    p = np.tile(LINE_SPACE.center(), (5, 1))
    a = tiny_emulator.sample(p, seed=1)
    assert a.shape == (5, 28, 28, 1) and a.dtype == np.float32
    np.testing.assert_array_equal(a, tiny_emulator.sample(p, seed=1))
    assert not np.array_equal(a, tiny_emulator.sample(p, seed=2))
    # batching is not a result change in shape; one point works as (P,)
    assert tiny_emulator.sample(LINE_SPACE.center()).shape == (1, 28, 28, 1)
    assert tiny_emulator.sample(np.tile(LINE_SPACE.center(), (7, 1)), batch_size=3).shape[0] == 7


def test_sample_refuses_out_of_bounds(tiny_emulator):
    with pytest.raises(ValueError, match="'c' = 40"):
        tiny_emulator.sample([[0.0, 40.0, 3.0, 5.0]])


def test_same_seed_same_emulator():
    cfg = magan.PRETRAIN_PRESETS["tiny"]
    a = magan.train_emulator(line_simulator(), LINE_SPACE, cfg, seed=3, progress=False)
    b = magan.train_emulator(line_simulator(), LINE_SPACE, cfg, seed=3, progress=False)
    p = np.tile(LINE_SPACE.center(), (2, 1))
    np.testing.assert_array_equal(a.sample(p), b.sample(p))


def test_save_load_round_trip(tiny_emulator, tmp_path):
    tiny_emulator.save(tmp_path / "emu")
    back = magan.load_emulator(tmp_path / "emu")
    p = LINE_SPACE.sample(np.random.default_rng(0), 4)
    np.testing.assert_array_equal(back.sample(p, seed=5), tiny_emulator.sample(p, seed=5))
    x = line_simulator().simulate(np.random.default_rng(0), p)
    np.testing.assert_allclose(back.estimate(x), tiny_emulator.estimate(x), rtol=1e-6)
    assert back.space == LINE_SPACE
    # saving again over it replaces it whole
    tiny_emulator.save(tmp_path / "emu")
    assert sorted(f.name for f in (tmp_path / "emu").iterdir()) == ["emulator.json", "weights.npz"]


def test_save_never_destroys_what_is_not_an_emulator(tiny_emulator, tmp_path):
    """A folder holding a user's files, or a file, is refused by save (naming it and the fix);
    overwrite=True writes the two emulator files into the folder and keeps everything else."""
    work = tmp_path / "work"
    (work / "run").mkdir(parents=True)
    (work / "thesis.tex").write_text("years of work")
    (work / "run" / "fit.json").write_text("{}")
    with pytest.raises(ValueError, match=r"work already exists .*thesis.tex.*overwrite=True"):
        tiny_emulator.save(work)
    assert (work / "thesis.tex").read_text() == "years of work"
    assert (work / "run" / "fit.json").exists()
    (tmp_path / "notes.txt").write_text("keep")
    with pytest.raises(ValueError, match=r"notes.txt already exists and is a file"):
        tiny_emulator.save(tmp_path / "notes.txt")
    assert (tmp_path / "notes.txt").read_text() == "keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "work"]  # no litter
    # an emulator.json of someone else's is not an emulator folder either
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "emulator.json").write_text('{"mine": 1}')
    with pytest.raises(ValueError, match="not written by magan"):
        tiny_emulator.save(tmp_path / "other")
    # overwrite=True: the emulator files go in, the user's files stay
    tiny_emulator.save(work, overwrite=True)
    assert sorted(p.name for p in work.iterdir()) == ["emulator.json", "run", "thesis.tex",
                                                      "weights.npz"]
    assert (work / "thesis.tex").read_text() == "years of work"
    assert magan.load_emulator(work).space == LINE_SPACE
    # an empty folder and a previous emulator folder are written without asking
    (tmp_path / "empty").mkdir()
    tiny_emulator.save(tmp_path / "empty")
    tiny_emulator.save(tmp_path / "empty")
    assert magan.load_emulator(tmp_path / "empty").space == LINE_SPACE


def test_load_errors_are_clear(tiny_emulator, tmp_path):
    with pytest.raises(FileNotFoundError, match="not an emulator folder"):
        magan.load_emulator(tmp_path / "nothing")
    tiny_emulator.save(tmp_path / "emu")
    (tmp_path / "emu" / "weights.npz").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="corrupted"):
        magan.load_emulator(tmp_path / "emu")
    tiny_emulator.save(tmp_path / "emu")
    meta = json.loads((tmp_path / "emu" / "emulator.json").read_text())
    meta["net"]["emulator_width"] = 12
    (tmp_path / "emu" / "emulator.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="do not belong together"):
        magan.load_emulator(tmp_path / "emu")
    meta["format_version"] = 99
    (tmp_path / "emu" / "emulator.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="incompatible"):
        magan.load_emulator(tmp_path / "emu")


def test_train_rejects_wrong_types():
    with pytest.raises(TypeError, match="FunctionSimulator"):
        magan.train_emulator(lambda r, p: p, LINE_SPACE)
    with pytest.raises(TypeError, match="PretrainConfig"):
        magan.train_emulator(line_simulator(), LINE_SPACE, magan.FIT_PRESETS["tiny"])


def test_train_refuses_feature_weights_without_features(tmp_path):
    """A feature weight with no features would silently train without that term (the line
    study's preset, say, used outside the study)."""
    from magan.studies.line import study_preset

    cfg = study_preset("default").pretrain
    with pytest.raises(ValueError, match=r"feature_marginal_weight=0.05.*pass features=.*"
                                         r"line_fit_features.*feature_marginal_weight=0"):
        magan.train_emulator(line_simulator(), LINE_SPACE, cfg, workdir=tmp_path / "run")
    assert not (tmp_path / "run").exists()  # refused before anything was written


def test_simulator_nan_stops_training_with_the_parameters():
    def fn(rng, p):
        out = np.zeros((len(p), 28, 28, 1), np.float32)
        out[-1] = np.nan
        return out

    sim = magan.FunctionSimulator(fn, (28, 28, 1), name="broken")
    with pytest.raises(magan.SimulatorError, match=r"broken returned NaN.*m="):
        magan.train_emulator(sim, LINE_SPACE, magan.PRETRAIN_PRESETS["tiny"])


def test_fit_shapes_and_errors(tiny_emulator):
    targets = line_simulator().simulate(np.random.default_rng(0),
                                        np.tile(LINE_SPACE.center(), (32, 1)))
    r = magan.fit(tiny_emulator, targets, magan.FIT_PRESETS["tiny"], seed=0)
    cfg = magan.FIT_PRESETS["tiny"]
    assert r.samples.shape == (cfg.replicas * cfg.samples_per_replica, 4)
    assert (r.samples >= LINE_SPACE.low).all() and (r.samples <= LINE_SPACE.high).all()
    assert r.mean.shape == (4,) and np.all(r.std >= 0)
    d = r.to_dict()
    assert set(d["mean"]) == set(LINE_SPACE.names)
    json.dumps(d)
    r2 = magan.fit(tiny_emulator, targets, magan.FIT_PRESETS["tiny"], seed=0)
    np.testing.assert_array_equal(r.samples, r2.samples)
    with pytest.raises(ValueError, match=r"expected shape \(N, 28, 28, 1\)"):
        magan.fit(tiny_emulator, targets[:, :20])
    with pytest.raises(ValueError, match="0 images"):
        magan.fit(tiny_emulator, targets[:0])
    bad = targets.copy()
    bad[3, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="image 3 contains NaN"):
        magan.fit(tiny_emulator, bad)


def test_output_noise_emulator_saves_loads_and_varies_each_value(tmp_path):
    """PretrainConfig.output_noise: the saved emulator rebuilds the noise head, samples the same
    values after loading, and two samples at one point differ at every pixel (each value draws
    its own output noise)."""
    cfg = replace(magan.PRETRAIN_PRESETS["tiny"], output_noise=True)
    emu = magan.train_emulator(line_simulator(), LINE_SPACE, cfg, seed=0, progress=False)
    assert emu.net["output_noise"] is True
    emu.save(tmp_path / "emu")
    back = magan.load_emulator(tmp_path / "emu")
    p = np.tile(LINE_SPACE.center(), (2, 1))
    a = back.sample(p, seed=4)
    np.testing.assert_array_equal(a, emu.sample(p, seed=4))
    assert np.all(a[0] != a[1])
