"""The validation suite's samples: points over the space, and the images made there.

At points drawn uniformly over the unit cube of parameters and conditions, the simulator makes two
independent images (T and T') and the emulator one (E), all in physical units; T' against T is the
*floor* of every distance (what finite samples give for a perfect emulator).
:func:`replay_training` rebuilds the first images of an emulator's training stream from the seed
it records, for the memorisation check.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["Samples", "random_unit", "sources_at", "draw", "replay_training"]


class Samples(NamedTuple):
    """Points and images of one draw: N rows each; images (N, H, W, C) in physical units (T and T'
    float32, E as the emulator returns it)."""

    unit: np.ndarray  # (N, P + K) the points in the unit cube of parameters and conditions
    params: np.ndarray  # (N, P) physical parameters
    cond: np.ndarray | None  # (N, K) physical conditions, or None without a condition space
    t1: np.ndarray  # T: the simulator's images
    t2: np.ndarray  # T': a second, independent simulation at the same points
    e: np.ndarray  # E: the emulator's images


def random_unit(sampler, rng: np.random.Generator, n: int) -> np.ndarray:
    """(n, P + K) points drawn uniformly in the unit cube of ``sampler``'s parameter space and
    condition space (K = 0 without one)."""
    cs = sampler.conditions
    return rng.random((n, sampler.space.dim + (0 if cs is None else cs.dim)))


def sources_at(sampler, simulator, rng: np.random.Generator, unit: np.ndarray):
    """At unit-cube rows ``unit`` (N, P + K): ``(params, cond, T, T', E)``, the images (N, H, W, C)
    physical, T and T' float32; the emulator (``sampler``) draws its seed from ``rng`` after the
    two simulations."""
    space, cs = sampler.space, sampler.conditions
    params = space.from_unit(unit[:, :space.dim])
    cond = None if cs is None else cs.from_unit(unit[:, space.dim:])
    t1 = simulator.simulate(rng, params, space, conditions=cond)
    t2 = simulator.simulate(rng, params, space, conditions=cond)
    e = sampler.sample(params, cond, seed=int(rng.integers(2**31)))
    return params, cond, np.asarray(t1, np.float32), np.asarray(t2, np.float32), e


def draw(sampler, simulator, rng: np.random.Generator, n: int) -> Samples:
    """``n`` uniform points and the T, T', E images there (see :class:`Samples`)."""
    unit = random_unit(sampler, rng, n)
    return Samples(unit, *sources_at(sampler, simulator, rng, unit))


def replay_training(emulator, simulator, n: int):
    """The first ``n`` images of the emulator's training stream, replayed from the seed and batch
    size it records.

    Returns:
      ``((unit (n, P + K), images (n, H', W', C') in network space), None)``, or
      ``(None, reason)`` when the stream cannot be replayed.
    """
    from magan.pretraining.feeding import batch_rng, draw_training_batch

    info = getattr(emulator, "info", {}) or {}
    if "seed" not in info or "batch_size" not in info.get("config", {}):
        return None, "the emulator records no training seed / batch size"
    if simulator.traceable:
        return None, "the simulator is JAX-traceable: its training stream is drawn on the device"
    units, xs = [], []
    while sum(len(u) for u in units) < n:
        unit, _, x1, _ = draw_training_batch(simulator, emulator.space,
                                             batch_rng(info["seed"], len(units)),
                                             info["config"]["batch_size"], emulator.transform)
        units.append(unit)
        xs.append(x1)
    return (np.concatenate(units)[:n], np.concatenate(xs)[:n]), None
