"""Feeding pre-training with host simulations: batches drawn over the space, simulated twice per
point, in background threads a few batches ahead, each batch from its own random stream."""

from __future__ import annotations

import queue
import threading
import time

import numpy as np

from magan.simulators.base import Simulator, SimulatorError
from magan.space import ParameterSpace
from magan.transforms import IdentityTransform

__all__ = ["draw_training_batch", "batch_rng", "SimulationFeeder"]


def draw_training_batch(simulator: Simulator, space: ParameterSpace, rng: np.random.Generator,
                        n: int, transform=None, on_nonfinite: str = "stop", dropped=None):
    """One host batch ``(unit (n, P + K), cond (n, K), x1, x2)``; see :class:`SimulationFeeder`.
    A simulator with its own ``training_batch`` (a :class:`~magan.BankSimulator`) supplies it.

    ``on_nonfinite``: ``"stop"`` raises :class:`~magan.SimulatorError` naming the parameters of
    the first NaN/inf image; ``"drop"`` replaces such points by new draws (up to 10 rounds) and
    adds their number to ``dropped[0]``."""
    transform = transform or IdentityTransform()
    if hasattr(simulator, "training_batch"):
        return simulator.training_batch(rng, space, n, transform)
    if on_nonfinite not in ("stop", "drop"):
        raise ValueError(f"on_nonfinite must be 'stop' or 'drop', got {on_nonfinite!r}.")
    conditions = simulator.conditions
    k = 0 if conditions is None else conditions.dim
    unit = rng.random((n, space.dim + k))
    params = space.from_unit(unit[:, :space.dim])
    cond = None if conditions is None else conditions.from_unit(unit[:, space.dim:])
    drop = on_nonfinite == "drop"
    x1 = simulator.simulate(rng, params, space, conditions=cond, allow_nonfinite=drop)
    x2 = simulator.simulate(rng, params, space, conditions=cond, allow_nonfinite=drop)
    for round_ in range(11 if drop else 0):
        bad = ~(np.isfinite(x1).reshape(n, -1).all(1) & np.isfinite(x2).reshape(n, -1).all(1))
        if not bad.any():
            break
        if round_ == 10:
            raise SimulatorError(f"{simulator.name} kept returning NaN or inf for {int(bad.sum())} "
                                 "of the points redrawn 10 times (on_nonfinite='drop'); the "
                                 f"last one was {space.format(params[np.argmax(bad)], 6)}.")
        if dropped is not None:
            dropped[0] += int(bad.sum())
        unit[bad] = rng.random((int(bad.sum()), space.dim + k))
        params = space.from_unit(unit[:, :space.dim])
        cond = None if conditions is None else conditions.from_unit(unit[:, space.dim:])
        sub_c = None if cond is None else cond[bad]
        x1[bad] = simulator.simulate(rng, params[bad], space, conditions=sub_c,
                                     allow_nonfinite=True)
        x2[bad] = simulator.simulate(rng, params[bad], space, conditions=sub_c,
                                     allow_nonfinite=True)
    cond32 = np.zeros((n, 0), np.float32) if cond is None else cond.astype(np.float32)
    return (unit.astype(np.float32), cond32, np.asarray(transform.forward(x1, cond), np.float32),
            np.asarray(transform.forward(x2, cond), np.float32))


def batch_rng(seed, k: int) -> np.random.Generator:
    """The random stream of host training batch ``k`` of a run with ``seed`` (an int or a list of
    ints): every batch has its own stream, so batches can be simulated in any order, by any
    number of threads, and a resumed run needs only the index of its next batch."""
    return np.random.default_rng([*np.atleast_1d(seed).tolist(), k])


class SimulationFeeder:
    """Runs a host simulator in ``workers`` background threads, ``prefetch`` batches ahead each.

    Batch ``k`` is ``(unit (B, P + K), cond (B, K), x1 (B, H, W, C), x2 (B, H, W, C))``: B points
    drawn uniformly in the unit cube of parameters and conditions (``cond`` their physical
    conditions, K may be 0), each simulated twice and mapped to the networks' space by
    ``transform``, all from :func:`batch_rng` ``(seed, k)``. Worker w makes batches w, w + workers,
    ...; :meth:`next` hands them out in order, so the sequence depends only on ``seed`` (not on
    the number of workers; NumPy simulators release the GIL in their array operations, so two
    threads simulate nearly twice as fast). ``wait_s`` is the time the consumer spent blocked
    (the device idling for the simulator); ``sim_s`` the time spent simulating, summed over the
    workers; ``next_batch`` the index of the next batch :meth:`next` returns.
    """

    def __init__(self, simulator: Simulator, space: ParameterSpace, batch_size: int, seed, *,
                 prefetch: int = 4, transform=None, start_batch: int = 0,
                 on_nonfinite: str = "stop", workers: int = 1):
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}.")
        self.simulator, self.space, self.batch_size = simulator, space, batch_size
        self.seed, self.on_nonfinite = seed, on_nonfinite
        self.transform = transform or IdentityTransform()
        self.next_batch = self.start = int(start_batch)
        self.workers = workers
        self.dropped = [0]  # points redrawn (on_nonfinite="drop") in the batches handed out
        self._sim_s = [0.0] * workers
        self.queues = [queue.Queue(maxsize=max(1, prefetch)) for _ in range(workers)]
        self.stop = threading.Event()
        self.wait_s = 0.0
        self.threads = [threading.Thread(target=self._run, args=(w,), daemon=True,
                                         name=f"magan-simulator-{w}") for w in range(workers)]
        for t in self.threads:
            t.start()

    @property
    def sim_s(self) -> float:
        return sum(self._sim_s)

    def _run(self, w: int):
        k = self.start + w
        while not self.stop.is_set():
            t0 = time.perf_counter()
            try:
                dropped = [0]
                item = (draw_training_batch(self.simulator, self.space, batch_rng(self.seed, k),
                                            self.batch_size, self.transform, self.on_nonfinite,
                                            dropped), dropped[0])
            except BaseException as err:  # handed to the consumer, raised there
                item = err
            self._sim_s[w] += time.perf_counter() - t0
            while not self.stop.is_set():
                try:
                    self.queues[w].put(item, timeout=0.1)
                    break
                except queue.Full:
                    continue
            if isinstance(item, BaseException):
                return
            k += self.workers

    def next(self):
        t0 = time.perf_counter()
        item = self.queues[(self.next_batch - self.start) % self.workers].get()
        self.wait_s += time.perf_counter() - t0
        if isinstance(item, BaseException):
            self.close()
            raise item
        self.next_batch += 1
        batch, dropped = item
        self.dropped[0] += dropped
        return batch

    def close(self):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=5)
