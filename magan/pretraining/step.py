"""Pre-training's compiled programs: one S + E update, and several of them unrolled per dispatch.

A program runs ``len(pattern)`` steps unrolled (not in a ``lax.scan``), and step ``j`` applies the
lazy R1 penalty iff ``pattern[j]``, fixed when the program is traced (why:
:mod:`magan.runtime.loop`). Each step's key is ``fold_in(run key, step counter)``, so several
steps per dispatch give exactly the result of one step per dispatch, and the run's key is an
argument, so runs with other seeds reuse the compiled program.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax

from magan.config import PretrainConfig
from magan.losses import EmulatorGraphs, PairBatch, emulator_loss, siamese_loss
from magan.nn.build import emulate, network_dtype

__all__ = ["make_step", "r1_pattern", "host_batches_program", "traced_batches_program",
           "stack_metrics"]


def make_step(cfg: PretrainConfig, graphs: EmulatorGraphs, txs, n_params: int,
              features: Callable | None = None,
              descriptors: dict[str, Callable] | None = None) -> Callable:
    """``step(state, batch, key, do_r1) -> (state, metrics)``: one S update, then one E update
    against the updated S, then E's EMA. ``batch`` a :class:`~magan.losses.PairBatch`; ``do_r1``
    a Python bool; ``txs`` = (E's, S's) optimiser; ``features`` the standardised feature function
    of the feature energy scores, or None; ``descriptors`` the standardised generic descriptors
    of E's descriptor scores, ``{name: fn}`` weighted by ``cfg.<name>_weight`` ("structure",
    "occupancy"), or None."""
    tx_e, tx_s = txs
    dtype = network_dtype(cfg)

    def step(state, batch: PairBatch, key, do_r1: bool):
        k_fake, k_e = jax.random.split(key)
        fake = emulate(graphs.e, state["e"], batch.unit, k_fake, dtype)
        (_, m_s), g_s = jax.value_and_grad(siamese_loss, has_aux=True)(
            state["s"], graphs.s, batch, jax.lax.stop_gradient(fake), cfg, n_params, do_r1)
        upd, opt_s = tx_s.update(g_s, state["opt_s"], state["s"])
        params_s = optax.apply_updates(state["s"], upd)
        (_, (m_e, _)), g_e = jax.value_and_grad(emulator_loss, has_aux=True)(
            state["e"], params_s, graphs, batch, k_e, cfg, n_params=n_params, features=features,
            descriptors=descriptors)
        upd, opt_e = tx_e.update(g_e, state["opt_e"], state["e"])
        params_e = optax.apply_updates(state["e"], upd)
        ema = optax.incremental_update(params_e, state["ema"], 1.0 - cfg.ema_decay)
        new = {"e": params_e, "s": params_s, "ema": ema, "opt_e": opt_e, "opt_s": opt_s,
               "step": state["step"] + 1}
        return new, {**m_s, **m_e}

    return step


def r1_pattern(first_step: int, n: int, r1_every: int) -> tuple[bool, ...]:
    """Which of the steps first_step, ..., first_step + n - 1 apply the lazy R1 penalty."""
    return tuple((first_step + j) % r1_every == 0 for j in range(n))


def stack_metrics(trees):
    """Per-step metric dicts -> one dict, each metric with a leading step axis."""
    return jax.tree.map(lambda *a: jnp.stack(a), *trees)


def host_batches_program(step: Callable, pattern: tuple[bool, ...]):
    """One jitted program running ``len(pattern)`` steps on host-simulated batches.

    ``run(state, key, units, conds, x1s, x2s) -> (state, metrics)``: the batches are stacked along
    a leading axis of len(pattern) ((n, B, P + K), (n, B, K), (n, B, H, W, C) twice); every metric
    comes back with a leading axis of len(pattern). The state is donated.
    """
    def run(state, key, units, conds, x1s, x2s):
        metrics = []
        for j, r1 in enumerate(pattern):
            batch = PairBatch(units[j], conds[j], x1s[j], x2s[j])
            state, m = step(state, batch, jax.random.fold_in(key, state["step"]), r1)
            metrics.append(m)
        return state, stack_metrics(metrics)

    return jax.jit(run, donate_argnums=(0,))


def traced_batches_program(step: Callable, pattern: tuple[bool, ...], draw: Callable):
    """One jitted program running ``len(pattern)`` steps on batches a JAX-traceable simulator
    makes inside it: ``draw(k_unit, k_x1, k_x2) -> PairBatch``. ``run(state, key) -> (state,
    metrics)``; the state is donated."""
    def run(state, key):
        metrics = []
        for r1 in pattern:
            ku, k1, k2, ks = jax.random.split(jax.random.fold_in(key, state["step"]), 4)
            state, m = step(state, draw(ku, k1, k2), ks, r1)
            metrics.append(m)
        return state, stack_metrics(metrics)

    return jax.jit(run, donate_argnums=(0,))
