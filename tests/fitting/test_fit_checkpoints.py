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
                 "reference_at", "reference_means"):
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


_KILLED_FIT = """
import sys, time
from pathlib import Path
import numpy as np
import magan, magan.fitting.checkpoints
from magan.config import replace
from magan.studies.line.simulator import line_simulator
magan.fitting.checkpoints.EVERY_S = 0.0
work = Path(sys.argv[3])

def hold(stage, row):  # the row at step 15 of the first pass: checkpoint 10 is on disk
    if (stage, row["step"]) == ("fit", 15):
        (work.parent / "holding").write_text("1")
        time.sleep(600)

cfg = replace(magan.FIT_PRESETS["tiny"], steps=20, log_every=5, bias_reference="fit")
magan.fit(magan.load_emulator(sys.argv[1]), np.load(sys.argv[2]), cfg, seed=0,
          simulator=line_simulator(), workdir=work, progress=False, callbacks=hold)
"""


@pytest.mark.slow
def test_a_fit_killed_in_another_process_resumes_to_the_identical_result(
        emulator, targets, uninterrupted, tmp_path):
    """kill -9 a process in the middle of its fit's first pass; the fit rerun into the same
    workdir (here, with the emulator loaded from disk) resumes from the checkpoint on disk and
    ends with the uninterrupted fit's result, bit for bit."""
    emulator.save(tmp_path / "emulator")
    np.save(tmp_path / "targets.npy", targets)
    work, log = tmp_path / "work", tmp_path / "stderr.txt"
    env = dict(os.environ, MAGAN_QUIET="1",
               PYTHONPATH=os.pathsep.join([str(Path(magan.__file__).parents[1]),
                                           os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_FIT, str(tmp_path / "emulator"),
                             str(tmp_path / "targets.npy"), str(work)], env=env,
                            stdout=subprocess.DEVNULL, stderr=log.open("w"))  # a file: never full
    t0 = time.time()
    while not (tmp_path / "holding").exists():
        assert proc.poll() is None, log.read_text()[-2000:]
        assert time.time() - t0 < 300
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (work / "fit.json").exists() and _steps(work, "0-targets") == [5, 10]
    rows = []
    resumed = _fit(magan.load_emulator(tmp_path / "emulator"), targets, work, rows=rows)
    assert rows[0] == ("fit", 15)
    _assert_identical(resumed, uninterrupted)
