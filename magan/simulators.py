"""Adapters that turn a user's simulator into something magan can train against.

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

__all__ = ["Simulator", "FunctionSimulator", "JaxSimulator", "SimulatorError"]


class SimulatorError(RuntimeError):
    """A simulator returned something magan cannot train on (wrong shape, dtype or NaN/inf)."""


def _image_shape(image_shape: Sequence[int]) -> tuple[int, int, int]:
    shape = tuple(int(s) for s in image_shape)
    if len(shape) == 2:
        shape = shape + (1,)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(
            f"image_shape must be (H, W) or (H, W, C) with positive sizes, got {tuple(image_shape)}."
        )
    if min(shape[:2]) < 4:
        raise ValueError(f"image_shape {shape}: H and W must be at least 4 pixels.")
    return shape


def _check_conditions(conditions):
    from magan.space import ConditionSpace

    if conditions is not None and not isinstance(conditions, ConditionSpace):
        raise TypeError("conditions must be a magan.ConditionSpace describing the per-event "
                        f"conditions, got {type(conditions).__name__}.")
    return conditions


class Simulator:
    """Base class: a black box from parameters (N, P) [and conditions (N, K)] to images
    (N, H, W, C)."""

    image_shape: tuple[int, int, int]
    traceable: bool = False
    name: str = "simulator"
    conditions = None  # a ConditionSpace, or None

    def _call_args(self, params, conditions, n):
        """Checked (params, conditions) for one call; conditions (N, K) float64 or None."""
        if self.conditions is None:
            if conditions is not None:
                raise ValueError(f"{self.name} takes no per-event conditions (it was built "
                                 "without conditions=ConditionSpace(...)), but some were given.")
            return (params,)
        if conditions is None:
            raise ValueError(f"{self.name} needs per-event conditions {list(self.conditions.names)}"
                             f" of shape ({n}, {self.conditions.dim}); pass conditions=...")
        cond = self.conditions.check(conditions)
        if cond.shape[0] != n:
            raise ValueError(f"{self.name}: {cond.shape[0]} condition rows for {n} parameter "
                             "vectors; give one row per event.")
        return params, cond

    def check_output(self, images, params: np.ndarray, space=None,
                     allow_nonfinite: bool = False) -> np.ndarray:
        """Check a host batch: shape (N, H, W, C), real dtype, finite (unless
        ``allow_nonfinite``: the caller deals with NaN/inf rows). Returns float32."""
        arr = np.asarray(images)
        n = params.shape[0]
        shape = (n,) + self.image_shape
        if arr.ndim == 3 and self.image_shape[2] == 1:
            arr = arr[..., None]
        if arr.shape != shape:
            raise SimulatorError(
                f"{self.name} returned images of shape {np.shape(images)} for {n} parameter "
                f"vectors; expected {shape} (N, H, W, C) as declared by image_shape."
            )
        if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
            raise SimulatorError(
                f"{self.name} returned dtype {arr.dtype}; images must be real numbers."
            )
        arr = arr.astype(np.float32, copy=False)
        finite = np.isfinite(arr).reshape(n, -1).all(axis=1)
        if not finite.all() and not allow_nonfinite:
            i = int(np.argmin(finite))
            named = (
                space.format(params[i]) if space is not None else np.array2string(params[i])
            )
            raise SimulatorError(
                f"{self.name} returned NaN or inf in image {i} of the batch, made at parameters "
                f"{named}. Fix the simulator at these values or shrink the ParameterSpace."
            )
        return arr


class FunctionSimulator(Simulator):
    """Wrap a host (NumPy) simulator.

    Args:
      fn: ``fn(rng: numpy.random.Generator, params: ndarray[N, P]) -> ndarray[N, H, W, C]``, params in
        physical units (``fn(rng, params, conditions)`` with conditions (N, K) when ``conditions``
        is given). It must draw all its randomness from ``rng`` for runs to be reproducible.
      image_shape: (H, W) or (H, W, C) of one image.
      name: used in error messages and run summaries.
      conditions: a :class:`~magan.ConditionSpace` of per-event conditions, or ``None``.
    """

    traceable = False

    def __init__(self, fn: Callable, image_shape: Sequence[int], *, name: str | None = None,
                 conditions=None):
        if not callable(fn):
            raise TypeError(f"FunctionSimulator needs a callable fn(rng, params), got {fn!r}.")
        self.fn = fn
        self.image_shape = _image_shape(image_shape)
        self.name = name or getattr(fn, "__name__", "simulator")
        self.conditions = _check_conditions(conditions)

    def simulate(self, rng: np.random.Generator, params, space=None, *,
                 conditions=None, allow_nonfinite: bool = False) -> np.ndarray:
        """Run the wrapped function on (N, P) physical parameters (and (N, K) conditions when the
        simulator has them); returns checked float32 images (N, H, W, C)."""
        params = np.asarray(params, dtype=np.float64)
        args = self._call_args(params, conditions, params.shape[0])
        return self.check_output(self.fn(rng, *args), params, space, allow_nonfinite)


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
        if not callable(fn):
            raise TypeError(f"JaxSimulator needs a callable fn(key, params), got {fn!r}.")
        self.fn = fn
        self.image_shape = _image_shape(image_shape)
        self.name = name or getattr(fn, "__name__", "simulator")
        self.conditions = _check_conditions(conditions)

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

        params = np.asarray(params, dtype=np.float64)
        args = self._call_args(params, conditions, params.shape[0])
        key = jax.random.key(int(rng.integers(0, 2**31 - 1)))
        out = np.asarray(self.simulate_jax(key, *(np.asarray(a, np.float32) for a in args)))
        return self.check_output(out, params, space, allow_nonfinite)
