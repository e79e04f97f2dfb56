"""Pre-train a 20-step tiny line emulator and print a digest of E's parameters: run several at
once into one empty cache folder to check that processes can share magan's compilation cache
(docs/speed.md)::

    export MAGAN_QUIET=1 MAGAN_COMPILATION_CACHE=/tmp/magan-cache-race
    python scripts/compilation_cache_race.py A & python scripts/compilation_cache_race.py B & wait
    python scripts/compilation_cache_race.py C                            # reads the cache
    MAGAN_COMPILATION_CACHE=0 python scripts/compilation_cache_race.py D  # no cache

Every run prints the same digest and no warning.
"""

import hashlib
import sys
import warnings

import jax
import numpy as np

import magan
from magan.config import replace
from magan.studies.line.simulator import LINE_SPACE, line_simulator

if __name__ == "__main__":
    warnings.simplefilter("always")  # a cache entry that fails to load warns
    cfg = replace(magan.PRETRAIN_PRESETS["tiny"], steps=20, checkpoint_every=0)
    emu = magan.train_emulator(line_simulator(), LINE_SPACE, cfg, seed=0, progress=False)
    data = b"".join(np.asarray(x).tobytes() for x in jax.tree.leaves(emu.params_e))
    print(sys.argv[1] if len(sys.argv) > 1 else "", hashlib.sha256(data).hexdigest()[:16])
