"""Supervised training of a small network with Adam: the validation suite's feature network and
two-sample classifier, run in the library's one training loop (:mod:`magan.runtime.loop`)."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from magan.runtime.loop import run_loop

__all__ = ["train_module"]


def train_module(model: nnx.Module, loss_fn: Callable, next_batch: Callable[[int], tuple],
                 steps: int, *, lr: float = 1e-3, desc: str = "training",
                 progress: bool | None = None, held_out: tuple | None = None,
                 every: int = 50) -> tuple[nnx.Module, list[float]]:
    """Minimise ``loss_fn(model, *batch)`` with Adam for ``steps`` steps, one jitted pure step
    per batch. ``next_batch(i)`` returns the i-th batch (arrays). Returns the trained model and
    the loss after steps 1, every + 1, 2 every + 1, ... and the last (read from the device only
    then). With ``held_out`` (a batch never trained on) the model with the lowest held-out loss
    at those steps is returned (early stopping), and the losses listed are the held-out ones."""
    graphdef, params = nnx.split(model)
    tx = optax.adam(lr)

    @jax.jit
    def step(params, opt, *batch):
        def loss(p):
            return loss_fn(nnx.merge(graphdef, p), *batch)

        val, grads = jax.value_and_grad(loss)(params)
        upd, opt = tx.update(grads, opt, params)
        return optax.apply_updates(params, upd), opt, val

    def advance(state, i, n):
        params, opt, val = step(*state, *next_batch(i))
        return (params, opt), val

    held = jax.jit(lambda p, *b: loss_fn(nnx.merge(graphdef, p), *b))
    best = {"loss": np.inf, "params": params}

    def summarise(host, done, state):
        val = host[-1] if held_out is None else held(state[0], *held_out)
        loss = float(val)
        if held_out is not None and loss < best["loss"]:
            best.update(loss=loss, params=jax.tree.map(jnp.copy, state[0]))
        return {"loss": loss}

    out = run_loop(advance, (params, tx.init(params)), total=steps, summarise=summarise,
                   sync_at=lambda done: (done - 1) % every == 0 or done == steps, desc=desc,
                   progress=progress)
    final = best["params"] if held_out is not None else out.state[0]
    return nnx.merge(graphdef, final), [row["loss"] for row in out.history]
