"""Compiling programs that run once.

XLA:CPU spends most of its compile time in LLVM's backend optimisation, which a program that runs
once (the networks' random initialisers) does not repay. At backend optimisation level 1 the
initialisers compile about four times faster and give bit-identical parameters (level 0 does not:
it changes the last bit of some values); the numbers are in docs/speed.md.
"""

from __future__ import annotations

import jax

__all__ = ["jit_once"]

_CPU_OPTIONS = {"xla_backend_optimization_level": 1}


def jit_once(fn):
    """``jax.jit(fn)`` for programs that run once or rarely: on CPU compiled with less backend
    optimisation (same results, a quarter of the compile time); elsewhere a plain ``jax.jit``.
    One compiled program per signature of the arguments' shapes and dtypes."""
    jitted = jax.jit(fn)
    compiled: dict = {}

    def call(*args):
        if jax.default_backend() != "cpu":
            return jitted(*args)
        sig = tuple((tuple(a.shape), str(a.dtype)) for a in jax.tree.leaves(args))
        if sig not in compiled:
            compiled[sig] = jitted.lower(*args).compile(compiler_options=_CPU_OPTIONS)
        return compiled[sig](*args)

    return call
