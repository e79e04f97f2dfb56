"""A fit given a workdir checkpoints each pass; interrupted anywhere and rerun, it ends with the
result of an uninterrupted fit, bit for bit (means, stds, samples, histories). A damaged
checkpoint is set aside; one of a fit with another seed is refused, naming the seed."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import magan
from magan.config import replace
from magan.studies.line.simulator import LINE_SPACE, line_simulator

# two passes (the targets', then the reference set's), 4 checkpoints each (EVERY_S = 0 below)
CFG = replace(magan.FIT_PRESETS["tiny"], steps=20, log_every=5, bias_reference="fit")


class Stop(Exception):
    """Raised by a callback to interrupt a fit at a chosen row."""


@pytest.fixture(autouse=True)
def checkpoint_every_sync(monkeypatch):
    """A checkpoint at every metric row (every 5 steps), not every 30 s."""
    import magan.fitting.checkpoints

    monkeypatch.setattr(magan.fitting.checkpoints, "EVERY_S", 0.0)


@pytest.fixture(scope="module")
def emulator():
    """A tiny line emulator with freshly initialised weights (a fit's determinism does not need
    a trained one)."""
    from magan.nn.build import build_emulator_nets
    from magan.pretraining.state import network_sizes

    net = network_sizes(magan.PRETRAIN_PRESETS["tiny"])
    ge, pe, gs, ps = build_emulator_nets(LINE_SPACE.dim, (28, 28, 1), net, 0)
    return magan.Emulator(LINE_SPACE, (28, 28, 1), net, pe, ps, graphdefs=(ge, gs),
                          info={"simulator": "line", "seed": 0})


@pytest.fixture(scope="module")
def targets():
    sim = line_simulator()
    return sim.simulate(np.random.default_rng(2), np.tile(LINE_SPACE.center(), (32, 1)),
                        LINE_SPACE)


def _fit(emulator, targets, workdir=None, *, seed=0, stop_at=None, rows=None):
    """The fit; ``stop_at=(stage, step)`` raises Stop at that metric row; ``rows`` collects
    ``(stage, step)`` of every row."""
    def watch(stage, row):
        if rows is not None:
            rows.append((stage, row["step"]))
        if (stage, row["step"]) == stop_at:
            raise Stop

    return magan.fit(emulator, targets, CFG, seed=seed, simulator=line_simulator(),
                     workdir=workdir, progress=False, callbacks=watch)


@pytest.fixture(scope="module")
def uninterrupted(emulator, targets):
    return _fit(emulator, targets)


def _assert_identical(a, b):
    for name in ("samples", "mean", "std", "raw_mean", "bias", "replica_means", "start",
                 "reference_at"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert a.history == b.history and a.reference_history == b.reference_history


def _steps(workdir, stage):
    d = Path(workdir) / "checkpoints" / "fit" / stage
    return sorted(int(p.name) for p in d.iterdir() if p.name.isdigit())


@pytest.mark.parametrize("stop_at", [("fit", 15), ("fit_reference", 10)])
def test_an_interrupted_fit_resumes_to_the_identical_result(emulator, targets, uninterrupted,
                                                            tmp_path, stop_at):
    with pytest.raises(Stop):
        _fit(emulator, targets, tmp_path, stop_at=stop_at)
    rows = []
    resumed = _fit(emulator, targets, tmp_path, rows=rows)
    _assert_identical(resumed, uninterrupted)
    # the row that raised was never checkpointed: each pass resumed from its last checkpoint,
    # and a finished pass was not run again
    if stop_at[0] == "fit":
        assert rows[0] == ("fit", 15)
    else:
        assert ("fit", 5) not in rows and rows[0] == ("fit_reference", 10)
    assert _steps(tmp_path, "0-targets")[-1] == _steps(tmp_path, "1-references")[-1] == 20
    fit_json = json.loads((tmp_path / "fit.json").read_text())
    assert list(fit_json["mean"].values()) == np.asarray(uninterrupted.mean).tolist()


def test_a_damaged_checkpoint_is_set_aside_and_the_fit_still_ends_identical(
        emulator, targets, uninterrupted, tmp_path):
    with pytest.raises(Stop):
        _fit(emulator, targets, tmp_path, stop_at=("fit", 20))
    assert _steps(tmp_path, "0-targets") == [10, 15]
    data = next(p for p in sorted((tmp_path / "checkpoints/fit/0-targets/15").rglob("*"))
                if p.is_file() and p.stat().st_size > 64 and p.name != "magan_sha256.json")
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    data.write_bytes(bytes(raw))
    rows = []
    with pytest.warns(UserWarning, match="Damaged checkpoint.*resuming from the intact step 10"):
        resumed = _fit(emulator, targets, tmp_path, rows=rows)
    assert rows[0] == ("fit", 15)
    assert (tmp_path / "checkpoints/fit/0-targets-damaged/15").is_dir()
    _assert_identical(resumed, uninterrupted)


def test_a_checkpoint_of_another_seed_is_refused(emulator, targets, tmp_path):
    with pytest.raises(Stop):
        _fit(emulator, targets, tmp_path, stop_at=("fit", 10))
    with pytest.raises(ValueError, match=r"other settings \(seed: 0 -> 1\)"):
        _fit(emulator, targets, tmp_path, seed=1)
    assert _steps(tmp_path, "0-targets") == [5]  # kept


def _summary_without_timings(out: Path) -> dict:
    summary = json.loads((out / "summary.json").read_text())
    for key in ("timings_s", "pretrain_timing", "fit_timing"):
        summary.pop(key)
    return summary


@pytest.mark.slow
def test_a_study_killed_in_its_fit_resumes_to_the_same_summary(emulator, tmp_path):
    """kill -9 after ``magan study line --preset tiny`` fitted; the rerun takes the fit from
    its checkpoint and writes the summary of an uninterrupted run."""
    emulator.save(tmp_path / "emulator")
    env = dict(os.environ, MAGAN_QUIET="1",
               PYTHONPATH=os.pathsep.join([str(Path(magan.__file__).parents[1]),
                                           os.environ.get("PYTHONPATH", "")]))

    def study(out):
        return [sys.executable, "-c", "import sys; from magan.cli import main; sys.exit(main())",
                "study", "line", "--preset", "tiny", "--emulator", str(tmp_path / "emulator"),
                "--out", str(out), "--quiet"]

    ref = subprocess.run(study(tmp_path / "ref"), env=env, capture_output=True, text=True,
                         timeout=600)
    assert ref.returncode == 0, ref.stderr[-2000:]
    killed = tmp_path / "killed"
    proc = subprocess.Popen(study(killed), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    # the tiny study's fit is one pass of 60 steps, a few seconds: killed after it, in the
    # closure check or the figures
    first = killed / "checkpoints" / "fit" / "0-targets" / "60" / "magan_sha256.json"
    t0 = time.time()
    while not first.exists():
        assert proc.poll() is None, "the study ended before it could be killed"
        assert time.time() - t0 < 300
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / "summary.json").exists()
    again = subprocess.run(study(killed), env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert _summary_without_timings(killed) == _summary_without_timings(tmp_path / "ref")
