"""Named, bounded simulator parameters and the map between physical units and the unit cube.

Every network in magan works in the unit cube ``[0, 1]^P``; users always see physical units.
:class:`ParameterSpace` is the one place where the two meet, and the one place where a
parameter vector from outside is checked.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["ParameterSpace", "ConditionSpace", "Parameter"]

SCALES = ("linear", "log")


@dataclass(frozen=True)
class Parameter:
    """One named quantity: its bounds (physical units), an optional unit label and its scale.

    ``scale="log"`` maps ``log(value)`` linearly onto the unit interval, so uniform draws in the
    unit cube are log-uniform (for quantities such as an energy spanning a decade); it needs
    ``low > 0``.
    """

    name: str
    low: float
    high: float
    unit: str = ""
    scale: str = "linear"

    @property
    def width(self) -> float:
        return self.high - self.low

    def describe(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        log = ", log scale" if self.scale == "log" else ""
        return f"{self.name} in [{self.low:g}, {self.high:g}]{unit}{log}"


class ParameterSpace:
    """An ordered set of named parameters, each with bounds.

    Args:
      bounds: ``{name: (low, high)}``, ``{name: (low, high, unit)}`` or
        ``{name: (low, high, unit, "log")}``, in the order the simulator expects its parameter
        vector. ``low < high``, both finite; ``low > 0`` on a log scale.

    Example:
      >>> space = ParameterSpace({"m": (-1.0, 1.0), "c": (4.0, 24.0, "px")})
      >>> space.to_unit([[0.0, 14.0]])
      array([[0.5, 0.5]])
    """

    kind = "Parameter"  # used in error messages

    def __init__(self, bounds: Mapping[str, Sequence]):
        if not isinstance(bounds, Mapping) or len(bounds) == 0:
            raise ValueError(
                f"{type(self).__name__} needs a non-empty mapping {{name: (low, high)}}, "
                f"got {bounds!r}."
            )
        params = []
        for name, spec in bounds.items():
            if not isinstance(name, str) or not name.isidentifier():
                raise ValueError(
                    f"Parameter name {name!r} must be a plain identifier (letters, digits, _), "
                    "so it can be written on the command line as name=value."
                )
            if (not isinstance(spec, Sequence) or isinstance(spec, str)
                    or len(spec) not in (2, 3, 4)):
                raise ValueError(
                    f"{self.kind} {name!r}: bounds must be (low, high), (low, high, unit) or "
                    f"(low, high, unit, scale), got {spec!r}."
                )
            try:
                low, high = float(spec[0]), float(spec[1])
            except (TypeError, ValueError):
                raise ValueError(f"{self.kind} {name!r}: bounds must be numbers, got low="
                                 f"{spec[0]!r}, high={spec[1]!r}.") from None
            unit = str(spec[2]) if len(spec) >= 3 else ""
            scale = str(spec[3]) if len(spec) == 4 else "linear"
            if not (math.isfinite(low) and math.isfinite(high)) or not low < high:
                raise ValueError(
                    f"{self.kind} {name!r}: need finite low < high, got low={low}, high={high}."
                )
            if not math.isfinite(high - low) or (high - low) <= 1e-12 * max(abs(low), abs(high)):
                raise ValueError(
                    f"{self.kind} {name!r}: the range [{low:g}, {high:g}] cannot be mapped to the "
                    "unit cube in float64 (too wide or too narrow for its magnitude); rescale "
                    "the parameter (another unit) so that its range is a sensible number."
                )
            if scale not in SCALES:
                raise ValueError(f"{self.kind} {name!r}: scale {scale!r} is not one of {SCALES}.")
            if scale == "log" and low <= 0:
                raise ValueError(f"{self.kind} {name!r}: a log scale needs low > 0, got {low:g}.")
            params.append(Parameter(name, low, high, unit, scale))
        self.parameters: tuple[Parameter, ...] = tuple(params)
        self.names: tuple[str, ...] = tuple(p.name for p in params)
        self.low = np.array([p.low for p in params], dtype=np.float64)
        self.high = np.array([p.high for p in params], dtype=np.float64)
        self._log = np.array([p.scale == "log" for p in params])

    # ------------------------------------------------------------------ basics
    @property
    def dim(self) -> int:
        """Number of parameters P."""
        return len(self.parameters)

    @property
    def width(self) -> np.ndarray:
        """``high - low`` per parameter, shape (P,)."""
        return self.high - self.low

    def __len__(self) -> int:
        return self.dim

    def __repr__(self) -> str:
        inner = ", ".join(p.describe() for p in self.parameters)
        return f"{type(self).__name__}({inner})"

    def __eq__(self, other) -> bool:
        return type(other) is type(self) and self.parameters == other.parameters

    # ------------------------------------------------------------- validation
    def check(self, values, *, what: str | None = None, atol: float = 0.0) -> np.ndarray:
        """Validate physical values and return them as float64 of shape (N, P).

        A 1-D vector of length P is read as one point. Raises ``ValueError`` naming the first bad
        parameter (non-finite or outside ``[low - atol, high + atol]``) and its bounds.
        """
        what = what or f"{self.kind.lower()}s"
        arr = np.asarray(values, dtype=np.float64)
        if arr.ndim == 1:
            arr = arr[None, :]
        if arr.ndim != 2 or arr.shape[1] != self.dim:
            raise ValueError(
                f"{what}: expected shape (N, {self.dim}) for {list(self.names)}, "
                f"got shape {np.shape(values)}."
            )
        bad = ~np.isfinite(arr)
        if bad.any():
            i, j = np.argwhere(bad)[0]
            raise ValueError(
                f"{what}: {self.kind.lower()} {self.names[j]!r} of row {i} is {arr[i, j]}; "
                "every value must be finite."
            )
        out = (arr < self.low - atol) | (arr > self.high + atol)
        if out.any():
            i, j = np.argwhere(out)[0]
            p = self.parameters[j]
            raise ValueError(
                f"{what}: {self.kind.lower()} {p.name!r} = {arr[i, j]:g} (row {i}) is outside its "
                f"bounds [{p.low:g}, {p.high:g}]. Choose a value inside the bounds, or widen the "
                f"{type(self).__name__} (the emulator must then be trained again)."
            )
        return arr

    # -------------------------------------------------------------- mappings
    def to_unit(self, values) -> np.ndarray:
        """Physical values (N, P) -> unit cube (N, P), after :meth:`check`."""
        arr = self.check(values)
        lin = (arr - self.low) / self.width
        if self._log.any():
            lo, hi = self._log_bounds()  # 1 and e on linear columns: no warnings from the mask
            log = np.log(np.where(self._log, arr, 1.0) / lo) / np.log(hi / lo)
            lin = np.where(self._log, log, lin)
        return lin

    def clip(self, values) -> np.ndarray:
        """Physical values (..., P) moved to the nearest point of the box (NaN stays NaN)."""
        return np.clip(values, self.low, self.high)

    def _log_bounds(self):
        return np.where(self._log, self.low, 1.0), np.where(self._log, self.high, np.e)

    def from_unit(self, unit) -> np.ndarray:
        """Unit-cube values (N, P) -> physical values (N, P). Values outside [0, 1] map outside
        the bounds (not clipped); values inside never leave them by rounding."""
        u = np.asarray(unit, dtype=np.float64)
        out = self.low + u * self.width
        if self._log.any():
            lo, hi = self._log_bounds()
            out = np.where(self._log, lo * (hi / lo) ** u, out)
        inside = (u >= 0) & (u <= 1)
        return np.where(inside, np.clip(out, self.low, self.high), out)

    def from_unit_jax(self, unit):
        """:meth:`from_unit` for traced JAX arrays (inside jit), float32."""
        import jax.numpy as jnp

        low = jnp.asarray(self.low, jnp.float32)
        out = low + unit * jnp.asarray(self.width, jnp.float32)
        if self._log.any():
            ratio = jnp.asarray(self.high / self.low, jnp.float32)
            out = jnp.where(jnp.asarray(self._log), low * ratio ** unit, out)
        return out

    def to_unit_jax(self, values):
        """:meth:`to_unit` for traced JAX arrays (inside jit), float32, without the bounds check."""
        import jax.numpy as jnp

        v = jnp.asarray(values, jnp.float32)
        out = (v - jnp.asarray(self.low, jnp.float32)) / jnp.asarray(self.width, jnp.float32)
        if self._log.any():
            lo, hi = (jnp.asarray(b, jnp.float32) for b in self._log_bounds())
            log = jnp.log(jnp.where(jnp.asarray(self._log), v, 1.0) / lo) / jnp.log(hi / lo)
            out = jnp.where(jnp.asarray(self._log), log, out)
        return out

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` points drawn uniformly over the unit cube (log-uniform on log scales), physical
        units, shape (n, P)."""
        return self.from_unit(rng.random((int(n), self.dim)))

    def center(self) -> np.ndarray:
        """The middle of the unit cube in physical units (geometric mean on log scales), (P,)."""
        return self.from_unit(np.full(self.dim, 0.5))

    # ------------------------------------------------------------ text forms
    def parse(self, text: str, *, what: str = "--params") -> np.ndarray:
        """Parse ``"m=0.1,c=12"`` into a checked vector of shape (P,). Every parameter is
        required; errors start with ``what`` (the option or argument that gave ``text``)."""
        given: dict[str, float] = {}
        for item in filter(None, (s.strip() for s in text.split(","))):
            if "=" not in item:
                raise ValueError(
                    f"{what}: cannot read {item!r}: write parameters as name=value pairs "
                    "separated by commas, e.g. "
                    f"{','.join(f'{n}={v:g}' for n, v in zip(self.names, self.center()))}."
                )
            key, val = (s.strip() for s in item.split("=", 1))
            if key not in self.names:
                raise ValueError(f"{what}: unknown parameter {key!r}; this space has "
                                 f"{list(self.names)}.")
            try:
                given[key] = float(val)
            except ValueError:
                raise ValueError(f"{what}: parameter {key!r}: {val!r} is not a number.") from None
        missing = [n for n in self.names if n not in given]
        if missing:
            raise ValueError(f"{what}: missing parameter(s) {missing}; give all of "
                             f"{list(self.names)}.")
        return self.check([given[n] for n in self.names], what=what)[0]

    def format(self, values, digits: int | None = None) -> str:
        """Inverse of :meth:`parse` for one point: the shortest exact decimal form of each value
        (so a value at a bound stays inside it), or ``digits`` significant digits for display."""
        return ",".join(f"{n}={float(v)!r}" if digits is None else f"{n}={float(v):.{digits}g}"
                        for n, v in zip(self.names, np.ravel(values)))

    def to_dict(self) -> dict:
        """JSON-ready description; :meth:`from_dict` restores it."""
        return {p.name: [p.low, p.high, p.unit] + (["log"] if p.scale == "log" else [])
                for p in self.parameters}

    @classmethod
    def from_dict(cls, d: Mapping) -> ParameterSpace:
        return cls({k: tuple(v) for k, v in d.items()})


class ConditionSpace(ParameterSpace):
    """Per-event conditions: quantities known for every event and never fitted.

    An incident beam energy is the typical case. Same constructor and methods as
    :class:`ParameterSpace`; the emulator is conditioned on both, the fit only moves parameters,
    and pre-training draws conditions uniformly in the unit cube (log-uniform on log scales).

    Example:
      >>> ConditionSpace({"energy": (1e4, 1e5, "MeV", "log")})
      ConditionSpace(energy in [10000, 100000] MeV, log scale)
    """

    kind = "Condition"

    def check(self, values, *, what: str | None = None, atol: float = 0.0) -> np.ndarray:
        """As :meth:`ParameterSpace.check`; with a single condition, a vector (N,) is read as N
        events (one condition each) rather than one point."""
        arr = np.asarray(values, dtype=np.float64)
        if self.dim == 1 and arr.ndim == 1:
            arr = arr[:, None]
        return super().check(arr, what=what, atol=atol)
