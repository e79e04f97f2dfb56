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
    ckpts = work / "checkpoints" / "pretrain"
    # kill once step 20 or later is complete (its checksums written: one killed before that is
    # set aside as unfinished, tested below)
    while not any(s >= 20 and (ckpts / str(s) / "magan_sha256.json").exists()
                  for s in _steps(work)):
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


def _flip(step_dir, n=16):
    """Flip ``n`` bytes in the middle of the largest array-data file of a checkpoint (orbax reads
    such a file without complaint: the arrays just come back wrong)."""
    f = max((p for p in (step_dir / "state").rglob("*") if p.is_file() and p.parent.name == "d"),
            key=lambda p: p.stat().st_size)
    b = bytearray(f.read_bytes())
    for i in range(len(b) // 2, len(b) // 2 + n):
        b[i] ^= 0xFF
    f.write_bytes(bytes(b))


def test_other_settings_and_damaged_checkpoints_are_refused(tmp_path):
    sim = line_simulator()
    train_emulator(sim, LINE_SPACE, TINY, seed=0, workdir=tmp_path, progress=False)
    with pytest.raises(ValueError, match=r"other settings \(config.lr_emulator: 0.001 -> 0.002"):
        train_emulator(sim, LINE_SPACE, replace(TINY, lr_emulator=2e-3), seed=0,
                       workdir=tmp_path, progress=False)
    with pytest.raises(ValueError, match="seed: 0 -> 1"):
        train_emulator(sim, LINE_SPACE, TINY, seed=1, workdir=tmp_path, progress=False)
    # flipped bytes in the latest checkpoint: set aside, the run resumes from the intact one
    weights = tmp_path / "emulator" / "weights.npz"
    with np.load(weights) as z:
        before = {k: z[k] for k in z.files}
    ckpts = tmp_path / "checkpoints" / "pretrain"
    assert _steps(tmp_path) == [10, 20]
    _flip(ckpts / "20")
    with pytest.warns(UserWarning, match=r"Damaged checkpoint.*step 20: its file state/.* does "
                                         r"not match .*resuming from the intact step 10"):
        train_emulator(sim, LINE_SPACE, TINY, seed=0, workdir=tmp_path, progress=False)
    with np.load(weights) as z:
        after = {k: z[k] for k in z.files}
    for k, v in after.items():
        assert np.isfinite(v).all(), k
        np.testing.assert_allclose(v, before[k], rtol=1e-4, atol=1e-5, err_msg=k)
    assert (tmp_path / "checkpoints" / "pretrain-damaged" / "20").is_dir()
    assert _steps(tmp_path) == [10, 20]  # step 20 written afresh
    # every checkpoint damaged: refused, naming them and the fix; the emulator is kept
    for step in _steps(tmp_path):
        _flip(ckpts / str(step))
    with pytest.raises(ValueError, match=r"No checkpoint in .* is intact \(step 20: .*; step 10: "
                                         r".*\)\. Delete .* to restart the run from step 0"):
        train_emulator(sim, LINE_SPACE, TINY, seed=0, workdir=tmp_path, progress=False)
    with np.load(weights) as z:
        assert all(np.array_equal(z[k], after[k]) for k in z.files)
    # checkpoints a killed run left unfinished (no checksums yet) are set aside: restart from 0
    for step in _steps(tmp_path):
        (ckpts / str(step) / "magan_sha256.json").unlink()
    with pytest.warns(UserWarning, match=r"step 20: it has no magan_sha256\.json.*restarting "
                                         r"from step 0"):
        train_emulator(sim, LINE_SPACE, TINY, seed=0, workdir=tmp_path, progress=False)
    with np.load(weights) as z:  # the same run as the first, from step 0
        for k in z.files:
            np.testing.assert_array_equal(z[k], before[k], err_msg=k)


def test_a_checkpoint_without_room_is_refused_before_orbax_and_keeps_the_earlier(tmp_path,
                                                                                 monkeypatch):
    """A full disk (here: a file size limit) is one OSError naming the folder and the fix,
    raised before orbax starts writing; the earlier checkpoint stays the one a rerun resumes."""
    import errno
    import resource

    import jax.numpy as jnp

    from magan.runtime.checkpoints import RunCheckpoints

    state = {"w": jnp.ones((64, 64)), "step": jnp.zeros((), jnp.int32)}
    ckpt = RunCheckpoints(tmp_path, "stage", {"seed": 0})
    ckpt.save(1, state, {"history": []})
    monkeypatch.setattr(resource, "getrlimit", lambda which: (40_000, 40_000))
    with pytest.raises(OSError, match="no room for the checkpoint of step 2 .*files limited to "
                                      r"40 kB \(ulimit -f\)") as err:
        ckpt.save(2, state, {"history": []})
    assert err.value.errno == errno.ENOSPC and err.value.filename == str(ckpt.directory)
    monkeypatch.undo()
    assert ckpt.restore(state)[0] == 1
    ckpt.close()
