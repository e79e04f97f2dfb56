"""Adapters for a user's simulator written as a function: NumPy on the host, or JAX-traceable.

magan never looks inside a simulator. Two kinds exist:

* :class:`FunctionSimulator` wraps a NumPy callable ``fn(rng, params) -> images`` that runs on the
  host: not differentiable, not jittable, perhaps slow, perhaps written by someone else. magan runs
  it in background threads (``PretrainConfig.simulator_workers``; the function must then be
  thread-safe, or set that to 1) so the accelerator trains while the next batches are simulated.
* :class:`JaxSimulator` wraps a JAX-traceable ``fn(key, params) -> images``; it runs inside the
  jitted training step.

In both, ``params`` has shape (N, P) in physical units, in the order of the
:class:`~magan.space.ParameterSpace`, and images have shape (N, H, W, C).

Per-event conditions (quantities known for every event and never fitted, such as a beam energy)
are declared with ``conditions=ConditionSpace(...)``; the simulator is then called as
``fn(rng, params, conditions)`` with ``conditions`` of shape (N, K) in physical units.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from magan.simulators.base import Simulator, SimulatorError, _timed_call

__all__ = ["FunctionSimulator", "JaxSimulator"]


class FunctionSimulator(Simulator):
    """Wrap a host (NumPy) simulator.

    Args:
      fn: ``fn(rng: numpy.random.Generator, params: ndarray[N, P]) -> ndarray[N, H, W, C]``, params
        in physical units (``fn(rng, params, conditions)`` with conditions (N, K) when
        ``conditions`` is given). It must draw all its randomness from ``rng`` for runs to be
        reproducible.
      image_shape: (H, W) or (H, W, C) of one image.
      name: used in error messages and run summaries.
      conditions: a :class:`~magan.ConditionSpace` of per-event conditions, or ``None``.
      timeout: seconds one call of ``fn`` may take (None: no limit). A call past it raises
        :class:`~magan.SimulatorError` naming the simulator and the timeout, so a hung simulator
        ends the run with a message instead of blocking it forever. Python cannot kill a thread:
        the stuck call is abandoned in a background thread (it ends with the process), so a
        simulator that only slows down keeps using a CPU until then.
    """

    traceable = False

    def __init__(self, fn: Callable, image_shape: Sequence[int], *, name: str | None = None,
                 conditions=None, timeout: float | None = None):
        self._wrap(fn, image_shape, name, conditions, "fn(rng, params)", timeout)

    def simulate(self, rng: np.random.Generator, params, space=None, *,
                 conditions=None, allow_nonfinite: bool = False) -> np.ndarray:
        """Run the wrapped function on (N, P) physical parameters (and (N, K) conditions when the
        simulator has them); returns checked float32 images (N, H, W, C)."""
        params = self._points(params, space)
        args = self._call_args(params, conditions, params.shape[0])
        images = _timed_call(self.fn, (rng, *args), self.timeout, self.name, len(params))
        return self.check_output(images, params, space, allow_nonfinite)


class JaxSimulator(Simulator):
    """Wrap a JAX-traceable simulator that runs inside jit.

    Args:
      fn: ``fn(key: jax.Array, params: Array[N, P]) -> Array[N, H, W, C]``, params in physical units
        (``fn(key, params, conditions)`` with conditions (N, K) when ``conditions`` is given).
      image_shape: (H, W) or (H, W, C) of one image.
      conditions: a :class:`~magan.ConditionSpace` of per-event conditions, or ``None``.
    """

    traceable = True

    def __init__(self, fn: Callable, image_shape: Sequence[int], *, name: str | None = None,
                 conditions=None):
        self._wrap(fn, image_shape, name, conditions, "fn(key, params)")

    def simulate_jax(self, key, params, conditions=None):
        """Traceable call; returns float32 images of shape (N, H, W, C)."""
        import jax.numpy as jnp

        args = (params,) if self.conditions is None else (params, conditions)
        out = jnp.asarray(self.fn(key, *args), dtype=jnp.float32)
        if out.ndim == 3 and self.image_shape[2] == 1:
            out = out[..., None]
        expect = (params.shape[0],) + self.image_shape
        if out.shape != expect:
            raise SimulatorError(
                f"{self.name} returned images of shape {out.shape}; expected {expect} (N, H, W, C)."
            )
        return out

    def simulate(self, rng: np.random.Generator, params, space=None, *,
                 conditions=None, allow_nonfinite: bool = False) -> np.ndarray:
        """Host-side call (used for closure checks and target sets); seeds a key from ``rng``."""
        import jax

        params = self._points(params, space)
        args = self._call_args(params, conditions, params.shape[0])
        key = jax.random.key(int(rng.integers(0, 2**31 - 1)))
        out = np.asarray(self.simulate_jax(key, *(np.asarray(a, np.float32) for a in args)))
        return self.check_output(out, params, space, allow_nonfinite)
