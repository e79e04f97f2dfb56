"""Data-parallel pre-training over several devices matches one device; several steps per dispatch
(lax.scan) match one step per dispatch; bfloat16 compute keeps float32 parameters."""

import json
import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest
from flax import nnx

from magan import PretrainConfig, load_emulator, train_emulator
from magan.config import replace
from magan.studies.line.simulator import LINE_SPACE, line_jax_simulator

TINY = PretrainConfig(steps=20, batch_size=8, noise_dim=4, emulator_width=4, siamese_width=4,
                      r1_every=1, steps_per_call=1,
                      siamese_embedding_width=16, log_every=10)


def _leaves(emu):
    return [np.asarray(v) for v in jax.tree.leaves(nnx.to_pure_dict(emu.params_e))]


@pytest.fixture(scope="module")
def two_per_call():
    """Reference run: JAX simulator, 2 steps per dispatch, seed 3."""
    return train_emulator(line_jax_simulator(), LINE_SPACE, replace(TINY, steps_per_call=2),
                          seed=3, progress=False)


def test_two_steps_per_call_equal_one_step_per_call(two_per_call):
    two = two_per_call
    one = train_emulator(line_jax_simulator(), LINE_SPACE, replace(TINY, steps_per_call=1),
                         seed=3, progress=False)
    for a, b in zip(_leaves(one), _leaves(two)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert [h["step"] for h in two.info["pretrain"]["history"]] == [10, 20]


SCRIPT = textwrap.dedent("""
    import json, jax, numpy as np
    from flax import nnx
    from magan import PretrainConfig, train_emulator
    from magan.studies.line.simulator import LINE_SPACE, line_simulator
    assert jax.device_count() == 4, jax.devices()
    cfg = PretrainConfig(steps=20, batch_size=8, noise_dim=4, emulator_width=4, siamese_width=4,
                         r1_every=1, steps_per_call=2, siamese_embedding_width=16, log_every=10)
    out = {}
    # the host-simulator path (2 stacked batches per call, sharded by device_put along their
    # batch axis); the JAX-simulator path's sharding
    # constraint is the same mesh and is exercised on one device by the tests above
    for name, sim in (("host", line_simulator()),):
        res = {}
        for n in (1, 4):
            emu = train_emulator(sim, LINE_SPACE, cfg, seed=1, progress=False,
                                 devices=jax.devices()[:n])
            leaves = jax.tree.leaves(nnx.to_pure_dict(emu.params_e))
            res[n] = np.concatenate([np.ravel(np.asarray(v)) for v in leaves])
            assert emu.info["pretrain"]["timing"]["devices"] == n
        out[name] = {"max_abs_diff": float(np.max(np.abs(res[1] - res[4]))),
                     "max_abs_param": float(np.max(np.abs(res[1]))),
                     "moved": float(np.max(np.abs(res[1] - res[4]))) < 1e9}
    try:
        train_emulator(line_simulator(), LINE_SPACE, PretrainConfig(steps=1, batch_size=6),
                       progress=False)
    except ValueError as err:
        out["error"] = str(err)
    print("RESULT" + json.dumps(out))
""")


def _xla_flags(flag: str) -> str:
    """The session's XLA_FLAGS (tests/conftest.py) plus ``flag``."""
    return f"{os.environ.get('XLA_FLAGS', '')} {flag}".strip()


@pytest.mark.slow
def test_four_forced_cpu_devices_match_one_device():
    env = dict(os.environ, XLA_FLAGS=_xla_flags("--xla_force_host_platform_device_count=4"),
               JAX_PLATFORMS="cpu", MAGAN_QUIET="1")
    proc = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.split("RESULT", 1)[1])
    for name in ("host",):
        # same maths, only the order of the batch reductions differs
        assert out[name]["max_abs_diff"] < 1e-4 * max(1.0, out[name]["max_abs_param"]), out
    assert "multiple of the 4 devices" in out["error"]


def test_bfloat16_compute_keeps_float32_parameters_and_trains(two_per_call):
    sim = line_jax_simulator()
    emu = train_emulator(sim, LINE_SPACE, replace(TINY, compute_dtype="bfloat16",
                                                  steps_per_call=2), seed=3, progress=False)
    assert all(a.dtype == np.float32 for a in _leaves(emu))
    hist = emu.info["pretrain"]["history"]
    assert all(np.isfinite(v) for row in hist for v in row.values())
    ref = two_per_call
    diffs = [np.max(np.abs(a - b)) for a, b in zip(_leaves(emu), _leaves(ref))]
    assert 0 < max(diffs) < 0.05  # the same training, at a lower precision
    with pytest.raises(ValueError, match="compute_dtype must be 'float32' or 'bfloat16', got "
                       "'float16'"):
        replace(TINY, compute_dtype="float16")


WORKER = textwrap.dedent("""
    import json, sys
    import jax, numpy as np
    from flax import nnx
    from magan import PretrainConfig, train_emulator
    from magan.runtime.parallel import initialize
    from magan.studies.line.simulator import LINE_SPACE, line_simulator
    assert initialize() and jax.process_count() == 2 and jax.device_count() == 4, jax.devices()
    cfg = PretrainConfig(steps=8, batch_size=8, noise_dim=4, emulator_width=4, siamese_width=4,
                         r1_every=2, steps_per_call=2, siamese_embedding_width=16, log_every=4,
                         checkpoint_every=4)
    emu = train_emulator(line_simulator(), LINE_SPACE, cfg, seed=1, progress=False,
                         workdir=sys.argv[1])
    leaves = [np.asarray(v) for v in jax.tree.leaves(nnx.to_pure_dict(emu.params_e))]
    flat = np.concatenate([np.ravel(v) for v in leaves])
    out = {"process": jax.process_index(), "params": flat[::7].tolist(),
           "finite": bool(np.all(np.isfinite(flat))),
           "devices": emu.info["pretrain"]["timing"]["devices"],
           "steps": [h["step"] for h in emu.info["pretrain"]["history"]]}
    print("RESULT" + json.dumps(out))
""")


@pytest.mark.slow
def test_two_processes_train_one_emulator(tmp_path):
    """The multi-host path on one machine: two processes (2 forced CPU devices each) joined by
    jax.distributed through magan.runtime.parallel.initialize, each simulating half of every batch;
    they end with the same replicated parameters, and the run's checkpoints and emulator are
    written."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    procs = []
    for rank in range(2):
        env = dict(os.environ, JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}", JAX_NUM_PROCESSES="2",
                   JAX_PROCESS_ID=str(rank), JAX_PLATFORMS="cpu", MAGAN_QUIET="1",
                   XLA_FLAGS=_xla_flags("--xla_force_host_platform_device_count=2"))
        procs.append(subprocess.Popen([sys.executable, "-c", WORKER, str(tmp_path / "run")],
                                      env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True))
    outs = []
    try:
        for p in procs:
            stdout, stderr = p.communicate(timeout=600)
            assert p.returncode == 0, stderr[-3000:]
            outs.append(json.loads(stdout.split("RESULT", 1)[1]))
    finally:  # a failed or hung rank must not leave the other waiting for it
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert [o["process"] for o in outs] == [0, 1]
    assert all(o["finite"] and o["devices"] == 4 and o["steps"] == [4, 8] for o in outs), outs
    np.testing.assert_array_equal(outs[0]["params"], outs[1]["params"])
    run = tmp_path / "run"
    assert (run / "emulator" / "emulator.json").exists()
    assert sorted(int(p.name) for p in (run / "checkpoints" / "pretrain").iterdir()) == [4, 8]
    emu = load_emulator(run / "emulator")
    flat = np.concatenate([np.ravel(np.asarray(v))
                           for v in jax.tree.leaves(nnx.to_pure_dict(emu.params_e))])
    np.testing.assert_array_equal(flat[::7], outs[0]["params"])
