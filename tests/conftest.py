import os
import tempfile

import pytest

os.environ.setdefault("MAGAN_QUIET", "1")  # no progress bars in test logs

# One persistent XLA compilation cache for the whole session (and the subprocesses it starts,
# which inherit the environment): many tests compile the same tiny networks. Fresh per session,
# so every run starts cold and nothing leaks between runs.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="magan-test-xla-cache-")
    os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
    os.environ["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "0"

# Tests compile far more than they compute, and XLA:CPU spends most of a compile in LLVM's backend
# optimisation: at level 1 (magan's jit_once uses it for the initialisers, docs/speed.md) the suite
# takes 510 s instead of 596 s. Results may differ from the default level's in the last bits; no
# test compares against numbers computed outside the session. Users' programs keep XLA's default.
if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                               + " --xla_backend_optimization_level=1").strip()



@pytest.fixture(scope="session")
def tiny_line_emulator():
    """One tiny line emulator (seed 0) for every test that only reads it."""
    import magan
    from magan.studies.line.simulator import LINE_SPACE, line_simulator

    return magan.train_emulator(line_simulator(), LINE_SPACE, magan.PRETRAIN_PRESETS["tiny"],
                                seed=0, progress=False)
