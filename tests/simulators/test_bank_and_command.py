"""Simulators from data: a pre-simulated bank (HDF5 / npz) and an external command."""

import sys

import numpy as np
import pytest

from magan import BankSimulator, CommandSimulator, PretrainConfig, SimulatorError, train_emulator
from magan.studies.line.simulator import LINE_SPACE, line_simulator
from magan.transforms import IdentityTransform


@pytest.fixture(scope="module")
def bank():
    return BankSimulator.from_simulator(line_simulator(), LINE_SPACE, 64, 3,
                                        np.random.default_rng(0))


def test_bank_round_trips_and_draws_pairs_at_one_point(bank, tmp_path):
    assert len(bank) == 192 and bank.n_points == 64
    for name in ("bank.h5", "bank.npz"):
        bank.save(tmp_path / name)
        back = BankSimulator.load(tmp_path / name, LINE_SPACE)
        np.testing.assert_array_equal(back.images, bank.images)
        np.testing.assert_array_equal(back.params, bank.params)
    unit, cond, x1, x2 = bank.training_batch(np.random.default_rng(1), LINE_SPACE, 16,
                                             IdentityTransform())
    assert unit.shape == (16, 4) and cond.shape == (16, 0) and x1.shape == (16, 28, 28, 1)
    assert not np.array_equal(x1, x2)  # two different images of one point
    # each pair's parameters are those of its point
    p = LINE_SPACE.from_unit(unit.astype(np.float64))
    rows = [np.flatnonzero(np.all(np.isclose(bank.params, q, atol=1e-4), axis=1)) for q in p]
    assert all(len(r) == 3 for r in rows)
    # nearest-point lookup
    out = bank.simulate(np.random.default_rng(2), bank.params[:2], LINE_SPACE)
    assert out.shape == (2, 28, 28, 1) and bank.last_lookup_distance < 1e-6


def test_bank_trains_an_emulator(bank):
    cfg = PretrainConfig(steps=10, batch_size=8, noise_dim=4, emulator_width=4, siamese_width=4,
                         r1_every=1, steps_per_call=1,
                         siamese_embedding_width=16, log_every=5)
    emu = train_emulator(bank, LINE_SPACE, cfg, progress=False)
    assert emu.sample(bank.params[:3]).shape == (3, 28, 28, 1)


def test_bank_errors_name_the_problem(tmp_path, bank):
    with pytest.raises(ValueError, match="no parameter point has two or more images"):
        BankSimulator(bank.params[:5] + np.arange(5)[:, None] * 1e-3, bank.images[:5], LINE_SPACE)
    with pytest.raises(ValueError, match="3 parameter rows for 4 images"):
        BankSimulator(bank.params[:3], bank.images[:4], LINE_SPACE)
    with pytest.raises(ValueError, match="'m' = 9"):
        BankSimulator(np.tile([9.0, 12, 4, 9], (2, 1)), bank.images[:2], LINE_SPACE)
    np.savez(tmp_path / "wrong.npz", x=np.zeros(3))
    with pytest.raises(ValueError, match=r"no dataset\(s\) \['params', 'images'\]"):
        BankSimulator.load(tmp_path / "wrong.npz", LINE_SPACE)
    with pytest.raises(FileNotFoundError, match="not found"):
        BankSimulator.load(tmp_path / "none.h5", LINE_SPACE)
    bad = bank.images[:6].copy()
    bad[4, 0, 0, 0] = np.nan
    with pytest.raises(SimulatorError, match="NaN or inf in image 4"):
        BankSimulator(bank.params[:6], bad, LINE_SPACE)


LINE_CMD = [sys.executable, "-m", "magan.studies.line.command", "{params}", "{out}", "{seed}"]


def test_command_simulator_runs_an_external_program():
    sim = CommandSimulator(LINE_CMD, (28, 28, 1), timeout_s=60)
    rng = np.random.default_rng(0)
    p = np.tile(LINE_SPACE.center(), (50, 1))
    a = sim.simulate(rng, p, LINE_SPACE)
    b = line_simulator().simulate(rng, p, LINE_SPACE)
    assert a.shape == (50, 28, 28, 1) and a.dtype == np.float32
    np.testing.assert_allclose(a.mean(0), b.mean(0), atol=0.05)  # the same simulator
    assert sim.calls == 1


def _py(code):
    return [sys.executable, "-c", code, "{params}", "{out}"]


def test_command_simulator_failures_are_reported():
    rng = np.random.default_rng(0)
    p = np.tile(LINE_SPACE.center(), (2, 1))
    failing = CommandSimulator(_py("import sys; print('boom: no licence', file=sys.stderr); "
                                   "sys.exit(3)"), (28, 28, 1))
    with pytest.raises(SimulatorError, match="exited with status 3(.|\n)*boom: no licence"):
        failing.simulate(rng, p, LINE_SPACE)
    slow = CommandSimulator(_py("import time; time.sleep(30)"), (28, 28, 1), timeout_s=1)
    with pytest.raises(SimulatorError, match="did not finish within 1 s for 2 parameter vectors"):
        slow.simulate(rng, p, LINE_SPACE)
    silent = CommandSimulator(_py("pass"), (28, 28, 1))
    with pytest.raises(SimulatorError, match="wrote no {out} file"):
        silent.simulate(rng, p, LINE_SPACE)
    wrong = CommandSimulator(_py("import sys, numpy as np; np.save(sys.argv[2], np.zeros((2, 5)))"),
                             (28, 28, 1))
    with pytest.raises(SimulatorError, match=r"shape \(2, 5\)"):
        wrong.simulate(rng, p, LINE_SPACE)
    with pytest.raises(ValueError, match="no {out} placeholder"):
        CommandSimulator("my_sim {params}", (28, 28))


def test_bank_datasets_inside_a_group_are_read_or_refused_clearly(bank, tmp_path):
    import h5py

    with h5py.File(tmp_path / "grouped.h5", "w") as f:
        f.create_dataset("run1/params", data=bank.params)
        f.create_dataset("run1/images", data=bank.images)
    back = BankSimulator.load(tmp_path / "grouped.h5", LINE_SPACE)
    np.testing.assert_array_equal(back.images, bank.images)
    with h5py.File(tmp_path / "two.h5", "w") as f:
        for g in ("a", "b"):
            f.create_dataset(f"{g}/params", data=bank.params)
            f.create_dataset(f"{g}/images", data=bank.images)
    with pytest.raises(ValueError, match=r"several groups hold a bank \(a, b\); keep one"):
        BankSimulator.load(tmp_path / "two.h5", LINE_SPACE)
    with h5py.File(tmp_path / "half.h5", "w") as f:
        f.create_dataset("g/params", data=bank.params)
    with pytest.raises(ValueError, match=r"no dataset\(s\) \['params', 'images'\].*'g/params'"):
        BankSimulator.load(tmp_path / "half.h5", LINE_SPACE)


@pytest.mark.parametrize("command, match", [
    ("sim {params} {out} {sed}", r"unknown placeholder \{sed\}; magan fills \{params\}, \{out\}"),
    ("awk '{print $1}' {params} {out}", r"unknown placeholder \{print \$1\}.*as \{\{ or \}\}"),
    ("sim {params} {out} {conditions}", r"\{conditions\} needs conditions="),
    ("sim {params} {out} }", r"unbalanced braces"),
])
def test_command_placeholders_are_checked_when_made(command, match):
    with pytest.raises(ValueError, match=match):
        CommandSimulator(command, (28, 28, 1))


def test_command_simulator_timeout_kills_the_programs_children_too(tmp_path):
    """A program that starts a child (here a shell that runs ``sleep``) and outlives timeout_s:
    the whole process group goes, not only the shell, and the error comes at the timeout (not
    when the child would have ended, which held the captured output open)."""
    import os
    import time

    pidfile = tmp_path / "child.pid"
    sim = CommandSimulator(["sh", "-c", f"sleep 60 & echo $! > {pidfile}; wait",
                            "{params}", "{out}"], (28, 28, 1), timeout_s=1)
    t0 = time.perf_counter()
    with pytest.raises(SimulatorError, match="did not finish within 1 s.*killed with the "
                                             "processes it started"):
        sim.simulate(np.random.default_rng(0), np.tile(LINE_SPACE.center(), (2, 1)), LINE_SPACE)
    assert time.perf_counter() - t0 < 15
    child = int(pidfile.read_text())
    for _ in range(50):  # reaped by init a moment after the kill
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        os.kill(child, 9)
        raise AssertionError(f"the program's child {child} (sleep 60) is still running")
