"""Generalisation benchmarks: simulators unlike the built-in studies, each with truth points.

* :mod:`~magan.benchmarks.simulators`: three NumPy simulators (a Gaussian random field, a sparse
  Poisson hit display, a mixture of two object populations), their parameter spaces, and
  :data:`~magan.benchmarks.simulators.BENCHMARKS`, the table that ``scripts/generalisation.py``
  runs: one emulator per simulator, fits at five truth points, one fit setting for all.
"""

from magan.benchmarks.simulators import BENCHMARKS, Benchmark

__all__ = ["BENCHMARKS", "Benchmark"]
