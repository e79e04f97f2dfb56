"""The interface every simulator adapter implements, and the checks of what a simulator returns.

magan never looks inside a simulator. A :class:`Simulator` maps ``params`` of shape (N, P) in
physical units, in the order of the :class:`~magan.space.ParameterSpace` (and, when it declares a
:class:`~magan.space.ConditionSpace`, per-event ``conditions`` (N, K) in physical units), to images
of shape (N, H, W, C). The adapters are in :mod:`magan.simulators.function` (a NumPy or JAX
function), :mod:`magan.simulators.bank` (offline simulations) and
:mod:`magan.simulators.command` (an external program).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np

__all__ = ["Simulator", "SimulatorError"]


def _timed_call(fn, args: tuple, timeout: float | None, name: str, n: int):
    """``fn(*args)``; with a ``timeout`` (seconds) it runs in a daemon thread and a call that has
    not returned by then raises :class:`SimulatorError` (naming the simulator, the timeout and
    the fix) in the caller. Python cannot kill a thread: the stuck call is abandoned, still
    running, and ends with the process."""
    if timeout is None:
        return fn(*args)
    box: list = []

    def call():
        try:
            box.append((True, fn(*args)))
        except BaseException as err:  # noqa: BLE001 - re-raised in the caller
            box.append((False, err))

    worker = threading.Thread(target=call, daemon=True, name=f"magan-{name}-call")
    worker.start()
    worker.join(timeout)
    if not box:
        raise SimulatorError(f"{name} did not return within timeout={timeout:g} s for {n} "
                             "parameter vectors (it may hang); the call was abandoned, still "
                             "running in a background thread. Fix the simulator, or raise its "
                             "timeout (or lower the batch size) if it is only slow.")
    ok, value = box[0]
    if not ok:
        raise value
    return value


class SimulatorError(RuntimeError):
    """A simulator returned something magan cannot train on (wrong shape, dtype or NaN/inf)."""


def _image_shape(image_shape: Sequence[int]) -> tuple[int, int, int]:
    shape = tuple(int(s) for s in image_shape)
    if len(shape) == 2:
        shape = shape + (1,)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(
            f"image_shape must be (H, W) or (H, W, C) with positive sizes, got "
            f"{tuple(image_shape)}."
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

    def _wrap(self, fn, image_shape: Sequence[int], name: str | None, conditions, signature: str,
              timeout: float | None = None):
        """Set up an adapter around the user's function ``fn`` (checked to be callable), whose
        host calls may take ``timeout`` seconds (None: no limit)."""
        if not callable(fn):
            raise TypeError(f"{type(self).__name__} needs a callable {signature}, got {fn!r}.")
        if timeout is not None and not timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds or None, got "
                             f"{timeout!r}.")
        self.timeout = None if timeout is None else float(timeout)
        self.fn = fn
        self.image_shape = _image_shape(image_shape)
        self.name = name or getattr(fn, "__name__", "simulator")
        self.conditions = _check_conditions(conditions)

    def _points(self, params, space=None) -> np.ndarray:
        """``params`` as float64 rows (N, P): a vector (P,) is one point (1, P), so a user's
        function always receives a 2-D array. ValueError for any other shape, or (with
        ``space``) a row length other than its P."""
        arr = np.asarray(params, dtype=np.float64)
        if arr.ndim == 1:
            arr = arr[None, :]
        if arr.ndim != 2 or (space is not None and arr.shape[1] != space.dim):
            dim = "P" if space is None else space.dim
            raise ValueError(f"{self.name}: params must have shape (N, {dim}) (or ({dim},) for "
                             f"one point), got {np.shape(params)}.")
        return arr

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
