"""Pre-training's state: E's and S's parameters, E's moving average, both optimisers, the step."""

from __future__ import annotations

from typing import Any, TypedDict

import jax
import jax.numpy as jnp
import optax

from magan.config import PretrainConfig

__all__ = ["PretrainState", "network_sizes", "optimisers", "init_state"]


class PretrainState(TypedDict):
    """The pytree a pre-training step maps to the next one (and a checkpoint holds).

    ``e``/``s``: E's and S's parameters (``nnx.State``); ``ema``: E's exponential moving average
    (what the emulator samples with); ``opt_e``/``opt_s``: their Adam states; ``step``: int32
    scalar, the number of steps done."""

    e: Any
    s: Any
    ema: Any
    opt_e: Any
    opt_s: Any
    step: jax.Array


def network_sizes(cfg: PretrainConfig) -> dict:
    """The network-size dict of :func:`magan.nn.build.build_emulator_nets` (and of a saved
    emulator's ``emulator.json``) from ``cfg``."""
    return {"noise_dim": cfg.noise_dim, "emulator_width": cfg.emulator_width,
            "siamese_width": cfg.siamese_width, "features": cfg.siamese_embedding_width,
            "noise_channels": cfg.noise_channels, "spatial_noise": cfg.spatial_noise,
            "emulator_depth": cfg.emulator_depth, "output_noise": cfg.output_noise}


def optimisers(cfg: PretrainConfig) -> tuple[optax.GradientTransformation,
                                             optax.GradientTransformation]:
    """E's and S's Adam, with ``cfg.lr_schedule`` ("cosine": both rates decay to 5 % by the end)."""
    def rate(lr):
        if cfg.lr_schedule == "cosine":
            return optax.cosine_decay_schedule(lr, cfg.steps, alpha=0.05)
        return lr

    return (optax.adam(rate(cfg.lr_emulator), b1=cfg.beta1, b2=cfg.beta2),
            optax.adam(rate(cfg.lr_siamese), b1=cfg.beta1, b2=cfg.beta2))


def init_state(params_e, params_s, txs) -> PretrainState:
    """The state at step 0: the EMA starts as a copy of E; ``txs`` = (E's, S's) optimiser."""
    tx_e, tx_s = txs
    return {"e": params_e, "s": params_s, "ema": jax.tree.map(jnp.copy, params_e),
            "opt_e": tx_e.init(params_e), "opt_s": tx_s.init(params_s),
            "step": jnp.zeros((), jnp.int32)}
