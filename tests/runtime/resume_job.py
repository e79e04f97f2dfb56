"""A small pre-training run for tests/runtime/test_checkpoints.py:
python tests/runtime/resume_job.py WORKDIR.

The simulator sleeps a little per call so that the test can kill the run part-way."""

import sys
import time

import numpy as np

from magan import FunctionSimulator, PretrainConfig, train_emulator
from magan.studies.line.simulator import IMAGE_SHAPE, LINE_SPACE, simulate_lines


def slow_lines(rng, params):
    time.sleep(0.02)
    return simulate_lines(rng, params)


if __name__ == "__main__":
    cfg = PretrainConfig(steps=80, batch_size=8, noise_dim=4, emulator_width=4, siamese_width=4,
                         r1_every=1, steps_per_call=1,
                         siamese_embedding_width=16, log_every=10, checkpoint_every=20, prefetch=2)
    emu = train_emulator(FunctionSimulator(slow_lines, IMAGE_SHAPE, name="slow-lines"), LINE_SPACE,
                         cfg, seed=7, workdir=sys.argv[1], progress=False)
    print("RESUMED_FROM", emu.info["pretrain"]["timing"]["resumed_from_step"])
    np.save(sys.argv[1] + "/final.npy", emu.sample(np.tile(LINE_SPACE.center(), (4, 1)), seed=1))
