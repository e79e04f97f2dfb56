"""Physical constraints: checks a simulated or emulated sample must pass, as violation rates.

A :class:`Constraint` wraps ``check(images, params, conditions) -> (N,) bool`` (True where the
sample satisfies it). :func:`violation_rates` runs a list of them on the simulator's and the
emulator's samples side by side: a constraint the simulator itself breaks now and then (a
fluctuation, noise) sets the rate the emulator should match, not zero.

Ready-made: :func:`non_negative` (deposits >= 0), :func:`value_range` (every pixel in [low,
high]), :func:`total_at_most` (the image sum at most a bound that may depend on the parameters
and conditions, e.g. energy conservation).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["Constraint", "non_negative", "value_range", "total_at_most", "violation_rates"]


@dataclass(frozen=True)
class Constraint:
    """A named check; ``check(images (N, H, W, C), params (N, P), conditions (N, K) or None)``
    returns an (N,) boolean array, True where the sample satisfies the constraint."""

    name: str
    check: Callable
    description: str = ""


def non_negative(tolerance: float = 0.0) -> Constraint:
    """Every pixel >= -tolerance (energy deposits, counts)."""
    return Constraint("non_negative", lambda x, p, c: np.asarray(x).reshape(len(x), -1).min(1)
                      >= -tolerance, f"every pixel >= {-tolerance:g}")


def value_range(low: float, high: float) -> Constraint:
    """Every pixel within [low, high]."""
    def check(x, p, c):
        flat = np.asarray(x).reshape(len(x), -1)
        return (flat.min(1) >= low) & (flat.max(1) <= high)

    return Constraint("value_range", check, f"every pixel in [{low:g}, {high:g}]")


def total_at_most(bound: Callable, name: str = "total_at_most",
                  description: str = "") -> Constraint:
    """The sum over pixels at most ``bound(params, conditions) -> (N,)``."""
    return Constraint(name, lambda x, p, c: np.asarray(x).reshape(len(x), -1).sum(1)
                      <= np.asarray(bound(p, c)), description or "image sum <= bound")


def violation_rates(constraints, samples: dict, params, conditions=None) -> dict:
    """Violation rate of every constraint on every named sample set.

    Args:
      constraints: :class:`Constraint` objects.
      samples: e.g. ``{"simulator": images, "emulator": images}``, all made at ``params``.
      params: (N, P) physical parameters; conditions: (N, K) or None.
    Returns:
      ``{constraint name: {"description", set name: {"rate", "count", "n"}}}``.
    """
    out = {}
    for con in constraints:
        row = {"description": con.description}
        for label, x in samples.items():
            ok = np.asarray(con.check(x, params, conditions), bool).reshape(-1)
            if ok.shape[0] != len(x):
                raise ValueError(f"Constraint {con.name!r} returned {ok.shape[0]} values for "
                                 f"{len(x)} samples; it must return one bool per sample.")
            bad = int((~ok).sum())
            row[label] = {"rate": bad / len(x), "count": bad, "n": int(len(x))}
        out[con.name] = row
    return out
