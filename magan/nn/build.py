"""Building the networks and running them as pure functions.

The random initialisers run as one compiled program per architecture (:func:`build_emulator_nets`);
:func:`emulate` is E's pure forward pass over split parameters, used by both stages.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from flax import nnx

from magan.nn.models import EmulatorNet, SiameseNet
from magan.runtime.compile import jit_once

__all__ = ["build_emulator_nets", "cast_floats", "emulate", "network_dtype"]


def _make_nets(space_dim: int, image_shape, net: dict, key, cond_dim: int):
    rngs = nnx.Rngs(key)
    e = EmulatorNet(space_dim + cond_dim, tuple(image_shape), noise_dim=net["noise_dim"],
                    width=net["emulator_width"], noise_channels=net.get("noise_channels", False),
                    spatial_noise=net.get("spatial_noise", False),
                    depth=net.get("emulator_depth", 1),
                    output_noise=net.get("output_noise", False), rngs=rngs)
    s = SiameseNet(tuple(image_shape), space_dim, width=net["siamese_width"],
                   embedding_width=net["features"], cond_dim=cond_dim, rngs=rngs)
    return e, s


@functools.lru_cache(maxsize=16)
def _init_program(space_dim: int, image_shape: tuple, net_items: tuple, cond_dim: int):
    """Jitted ``key -> (params_E, params_S)``: the initialisers run as one compiled program (op by
    op, each would compile on its own), cached per architecture and independent of the seed, so
    repeated trainings (and the persistent compilation cache) reuse it."""
    net = dict(net_items)
    return jit_once(lambda key: tuple(nnx.split(m, nnx.Param)[1]
                                     for m in _make_nets(space_dim, image_shape, net, key,
                                                         cond_dim)))


def build_emulator_nets(space_dim: int, image_shape, net: dict, seed: int, cond_dim: int = 0,
                        init: bool = True):
    """Create E and S from a network-size dict; returns (graphdef_E, params_E, graphdef_S,
    params_S).

    E is conditioned on ``space_dim + cond_dim`` unit-cube values (parameters, then per-event
    conditions); S sees the ``cond_dim`` conditions beside its images and regresses the parameters.
    With ``init=False`` the parameters are abstract (shapes and dtypes only, nothing computed):
    for loading weights or for the structure alone.
    """
    shape = tuple(int(s) for s in image_shape)
    e_abs, s_abs = nnx.eval_shape(lambda: _make_nets(space_dim, shape, net, jax.random.key(0),
                                                     cond_dim))
    ge, pe = nnx.split(e_abs, nnx.Param)[:2]
    gs, ps = nnx.split(s_abs, nnx.Param)[:2]
    if init:
        pe, ps = _init_program(space_dim, shape, tuple(sorted(net.items())), cond_dim)(
            jax.random.key(seed))
    return ge, pe, gs, ps


def network_dtype(cfg):
    """The dtype the networks compute in, from a config's ``compute_dtype`` name ("float32" or
    "bfloat16"; parameters and losses stay float32)."""
    return {"float32": jnp.float32, "bfloat16": jnp.bfloat16}[cfg.compute_dtype]


def cast_floats(tree, dtype):
    """Cast every floating array of ``tree`` to ``dtype`` (mixed precision: float32 parameters,
    ``dtype`` compute; gradients flow back through the cast in float32)."""
    return jax.tree.map(lambda a: a.astype(dtype) if jnp.issubdtype(a.dtype, jnp.floating) else a,
                        tree)


def emulate(graphdef, params, unit, key, compute_dtype=jnp.float32):
    """Pure E forward: unit-cube conditioning (N, P [+ K]) and a key -> network-space images
    (N, H, W, C), float32. With ``compute_dtype`` bfloat16 the network runs in bfloat16."""
    if compute_dtype != jnp.float32:
        params, unit = cast_floats(params, compute_dtype), unit.astype(compute_dtype)
    net = nnx.merge(graphdef, params)
    kz, kp = jax.random.split(key)
    n = unit.shape[0]
    z = jax.random.normal(kz, (n, net.noise_dim), unit.dtype)
    h, w, _ = net.image_shape
    pix = jax.random.normal(kp, (n, h, w, 1 + net.noise_maps + net.noise_out), unit.dtype)
    return net(unit, z, pix).astype(jnp.float32)
