"""Both stages end to end with the tiny preset (well under a minute on a 2-core CPU).

A tiny emulator (100 steps) is far from the simulator, and an adversarial fit through an emulator
that is far from the simulator can run anywhere (see studies/line/README.md). What this test pins
down is the machinery: pre-training gives finite losses and an emulator whose images depend on the
parameters, and the fit, started at the centre of the box, moves toward the parameters that made
the targets when the emulator is an exact model of them (targets emulated at the truth).
"""

import numpy as np

import magan
from magan.studies.line.simulator import LINE_SPACE


def test_pretrain_then_fit_moves_toward_the_truth(tiny_line_emulator):
    emu = tiny_line_emulator
    for row in emu.info["pretrain"]["history"]:
        assert all(np.isfinite(v) for v in row.values())
    truth = np.array([0.35, 18.5, 10.5, 6.0])  # far from the centre of the box in every parameter
    targets = emu.sample(np.tile(truth, (128, 1)), seed=9)
    cfg = magan.config.replace(magan.FIT_PRESETS["tiny"], init="center")
    result = magan.fit(emu, targets, cfg, seed=0)
    for row in result.history:
        assert np.isfinite(row["loss_d"]) and np.isfinite(row["loss_g"])
    start = np.linalg.norm(LINE_SPACE.to_unit(result.start) - LINE_SPACE.to_unit(truth))
    end = np.linalg.norm(LINE_SPACE.to_unit(result.mean) - LINE_SPACE.to_unit(truth))
    assert end < 0.8 * start, (start, end, result)
