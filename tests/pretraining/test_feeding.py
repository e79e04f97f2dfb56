"""The background simulation feeder: the batches depend on the seed only, not on the threads."""
import numpy as np
import pytest

from magan.pretraining.feeding import SimulationFeeder
from magan.studies.line.simulator import LINE_SPACE, line_simulator


def _take(n, **kw):
    feeder = SimulationFeeder(line_simulator(), LINE_SPACE, 4, seed=7, prefetch=2, **kw)
    try:
        return [feeder.next() for _ in range(n)], feeder
    finally:
        feeder.close()


def test_batches_do_not_depend_on_the_number_of_threads_and_resume_by_index():
    one, f1 = _take(6, workers=1)
    three, f3 = _take(6, workers=3)
    for a, b in zip(one, three):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)
    assert f1.next_batch == f3.next_batch == 6
    resumed, _ = _take(2, workers=2, start_batch=4)  # a resumed run continues the same stream
    for a, b in zip(one[4:], resumed):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)
    assert not np.array_equal(one[0][2], one[1][2])  # every batch is new


def test_a_failing_simulator_is_reported_by_next():
    def broken(rng, params):
        raise RuntimeError("detector geometry missing")

    from magan import FunctionSimulator
    feeder = SimulationFeeder(FunctionSimulator(broken, (28, 28, 1)), LINE_SPACE, 4, seed=0,
                              workers=2)
    with pytest.raises(RuntimeError, match="geometry missing"):
        feeder.next()
    feeder.close()
    with pytest.raises(ValueError, match="workers must be >= 1"):
        SimulationFeeder(line_simulator(), LINE_SPACE, 4, seed=0, workers=0)


def test_a_hung_simulator_with_a_timeout_is_reported_by_next():
    """A FunctionSimulator that never returns, given timeout=: the batch wait ends with a
    SimulatorError naming it and the timeout (not a training run blocked forever)."""
    import threading
    import time

    from magan import FunctionSimulator, SimulatorError

    release = threading.Event()

    def hangs(rng, params):
        release.wait(60)
        return np.zeros((len(params), 28, 28, 1))

    feeder = SimulationFeeder(FunctionSimulator(hangs, (28, 28, 1), name="stuck_sim", timeout=0.5),
                              LINE_SPACE, 4, seed=0)
    t0 = time.perf_counter()
    try:
        with pytest.raises(SimulatorError, match=r"stuck_sim did not return within timeout=0.5 s"
                                                 r"(.|\n)*raise its timeout"):
            feeder.next()
        assert time.perf_counter() - t0 < 10
    finally:
        release.set()
        feeder.close()
    with pytest.raises(ValueError, match="timeout must be a positive"):
        FunctionSimulator(hangs, (28, 28, 1), timeout=0)
