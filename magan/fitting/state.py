"""The fit's state: every replica's G and D, their optimisers and G's running average."""

from __future__ import annotations

import functools
from typing import Any, TypedDict

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from magan.config import FitConfig
from magan.nn.models import Discriminator, ParameterGenerator
from magan.runtime.compile import jit_once

__all__ = ["FitState", "build_networks", "network_structures", "init_program", "optimisers",
           "init_state", "averaging_start"]


class FitState(TypedDict):
    """The pytree a fit step maps to the next one; every array has a leading replica axis R
    except ``step``. ``g``/``d``: G's and D's parameters; ``opt_g``/``opt_d``: their Adam states;
    ``g_avg``: G's running (Polyak) average the result is drawn from; ``step``: int32 scalar."""

    g: Any
    d: Any
    opt_g: Any
    opt_d: Any
    g_avg: Any
    step: jax.Array


def build_networks(param_dim: int, image_shape, cfg: FitConfig, init_unit, key, cond_dim=0):
    """One replica's G (started at ``init_unit`` (P,) in the unit cube) and D, as modules."""
    rngs = nnx.Rngs(key)
    g = ParameterGenerator(param_dim, noise_dim=cfg.noise_dim, width=cfg.generator_width,
                           init_unit=init_unit, init_scale=cfg.init_scale, rngs=rngs)
    d = Discriminator(image_shape, width=cfg.discriminator_width,
                      embedding_width=cfg.discriminator_embedding_width, cond_dim=cond_dim,
                      rngs=rngs)
    return g, d


def network_structures(param_dim: int, image_shape, cfg: FitConfig, init_unit, cond_dim: int):
    """G's and D's ``nnx.GraphDef`` (nothing computed)."""
    g_abs, d_abs = nnx.eval_shape(lambda: build_networks(param_dim, image_shape, cfg, init_unit,
                                                         jax.random.key(0), cond_dim))
    return nnx.split(g_abs, nnx.Param)[0], nnx.split(d_abs, nnx.Param)[0]


@functools.lru_cache(maxsize=16)
def init_program(p: int, net_shape, cfg: FitConfig, k_cond: int, per_replica: bool = False):
    """Jitted ``(keys (R,), start_unit) -> (G params, D params)`` with a leading replica axis:
    one compiled program, cached (op by op, every initialiser would compile on its own).
    ``start_unit`` is (P,), shared by every replica, or (R, P) with ``per_replica``."""
    def init_replica(k, start_unit):
        g, d = build_networks(p, net_shape, cfg, start_unit, k, k_cond)
        return nnx.split(g, nnx.Param)[1], nnx.split(d, nnx.Param)[1]

    return jit_once(jax.vmap(init_replica, in_axes=(0, 0 if per_replica else None)))


def optimisers(cfg: FitConfig):
    """G's and D's Adam, built from the same settings for the initial state and the step."""
    return (optax.adam(cfg.lr_generator, b1=cfg.beta1, b2=cfg.beta2),
            optax.adam(cfg.lr_discriminator, b1=cfg.beta1, b2=cfg.beta2))


def init_state(params_g, params_d, cfg: FitConfig) -> FitState:
    """The state at step 0 from every replica's initial G and D parameters."""
    tx_g, tx_d = optimisers(cfg)
    return {"g": params_g, "d": params_d, "opt_g": jax.vmap(tx_g.init)(params_g),
            "opt_d": jax.vmap(tx_d.init)(params_d), "g_avg": jax.tree.map(jnp.copy, params_g),
            "step": jnp.zeros((), jnp.int32)}


def averaging_start(cfg: FitConfig) -> int:
    """The first step (0-based) whose G enters the averaged G the result is drawn from."""
    return min(cfg.steps - 1, int(round(cfg.steps * (1.0 - cfg.average_last))))
