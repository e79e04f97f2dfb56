"""Fast checks of the command line's conventions and outputs (no training: `magan fit` runs on a
stand-in emulator and fit)."""

import types

import numpy as np

import magan
from magan.cli import main
from magan.fitting.result import FitResult
from magan.studies.line.simulator import LINE_SPACE


def _fake_result() -> FitResult:
    rng = np.random.default_rng(1)
    samples = LINE_SPACE.sample(rng, 20)
    return FitResult(names=LINE_SPACE.names, samples=samples, mean=samples.mean(0),
                     std=samples.std(0), replica_means=samples[:2], start=LINE_SPACE.center(),
                     history=[{"step": 0, "loss_d": 1.0, "loss_g": 0.5}])


def test_fit_command_writes_the_samples_and_the_whole_result(tmp_path, monkeypatch, capsys):
    emu = types.SimpleNamespace(space=LINE_SPACE, image_shape=(28, 28, 1), cond_dim=0,
                                conditions=None)
    result = _fake_result()
    monkeypatch.setattr(magan, "load_emulator", lambda path: emu, raising=False)
    monkeypatch.setattr(magan, "fit", lambda *a, **k: result, raising=False)
    np.save(tmp_path / "t.npy", np.zeros((3, 28, 28, 1), np.float32))
    out = tmp_path / "fit"
    assert main(["fit", "--emulator", "e", "--data", str(tmp_path / "t.npy"), "--out", str(out),
                 "--preset", "tiny", "--quiet"]) == 0
    lines = (out / "samples.csv").read_text().splitlines()
    assert lines[0] == "m,c,x0,xsteps" and len(lines) == 21
    np.testing.assert_array_equal(np.loadtxt(out / "samples.csv", delimiter=",", skiprows=1),
                                  result.samples)  # every digit
    back = magan.load_fit(out)
    np.testing.assert_array_equal(back.samples, result.samples)
    assert back.names == result.names and back.history == result.history
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no temporaries left
    capsys.readouterr()
