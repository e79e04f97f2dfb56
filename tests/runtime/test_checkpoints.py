"""Checkpoint and resume: a run killed with SIGKILL and restarted ends where an uninterrupted run
ends; other settings or a damaged checkpoint are refused with a clear error."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from magan import PretrainConfig, train_emulator
from magan.config import replace
from magan.studies.line.simulator import LINE_SPACE, line_simulator

JOB = Path(__file__).with_name("resume_job.py")
ENV = dict(os.environ, MAGAN_QUIET="1")


def _run(workdir):
    return subprocess.run([sys.executable, str(JOB), str(workdir)], env=ENV, capture_output=True,
                          text=True, timeout=600)


def _steps(workdir):
    d = Path(workdir) / "checkpoints" / "pretrain"
    return sorted(int(p.name) for p in d.iterdir() if p.name.isdigit()) if d.exists() else []


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_final_state(tmp_path):
    ref = _run(tmp_path / "ref")
    assert ref.returncode == 0, ref.stderr[-2000:]
    assert "RESUMED_FROM 0" in ref.stdout

    work = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, str(JOB), str(work)], env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    t0 = time.time()
    while not any(s >= 20 for s in _steps(work)):
        assert proc.poll() is None, "the run ended before it could be killed"
        assert time.time() - t0 < 300
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = _steps(work)
    assert max(done) < 80  # killed part-way

    again = _run(work)
    assert again.returncode == 0, again.stderr[-2000:]
    resumed = int(again.stdout.split("RESUMED_FROM")[1].split()[0])
    assert 20 <= resumed < 80
    np.testing.assert_allclose(np.load(work / "final.npy"), np.load(tmp_path / "ref" / "final.npy"),
                               rtol=1e-5, atol=1e-6)


TINY = PretrainConfig(steps=20, batch_size=8, noise_dim=4, emulator_width=4, siamese_width=4,
                      r1_every=1, steps_per_call=1,
                      siamese_embedding_width=16, log_every=10, checkpoint_every=10)


def test_other_settings_and_damaged_checkpoints_are_refused(tmp_path):
    sim = line_simulator()
    train_emulator(sim, LINE_SPACE, TINY, seed=0, workdir=tmp_path, progress=False)
    with pytest.raises(ValueError, match=r"other settings \(config.lr_emulator: 0.001 -> 0.002"):
        train_emulator(sim, LINE_SPACE, replace(TINY, lr_emulator=2e-3), seed=0,
                       workdir=tmp_path, progress=False)
    with pytest.raises(ValueError, match="seed: 0 -> 1"):
        train_emulator(sim, LINE_SPACE, TINY, seed=1, workdir=tmp_path, progress=False)
    # damage the latest checkpoint's arrays
    latest = tmp_path / "checkpoints" / "pretrain" / str(max(_steps(tmp_path)))
    for f in (latest / "state").rglob("*"):
        if f.is_file() and f.stat().st_size > 0 and "metadata" not in f.name:
            f.write_bytes(b"\0garbage")
    with pytest.raises(ValueError, match="corrupted|cannot be read"):
        train_emulator(sim, LINE_SPACE, TINY, seed=0, workdir=tmp_path, progress=False)
