"""The fit's compiled step: every replica's D update, then its G update, unrolled in one program.

The data (targets in network space, their unit-cube conditions, the bootstrap rows), E's
parameters and the feature data are arguments, not constants baked into the program, so one
compiled step serves every fit with the same settings and shapes (calibration and accuracy runs
compile once). D's lazy R1 penalty gives two programs, with and without it (why:
:mod:`magan.runtime.loop`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from magan.config import FitConfig
from magan.fitting.features import standardised
from magan.fitting.state import averaging_start, optimisers
from magan.losses import discriminator_loss, feature_energy_distance
from magan.nn.build import emulate

__all__ = ["StepSpec", "fit_step"]

# conditions weigh this many feature standard deviations per unit of their range in the
# feature-matching energy distance
CONDITION_SCALE = 3.0


@dataclass(frozen=True)
class StepSpec:
    """What a compiled fit step is specialised on (hashable: the step is cached per spec).

    ``gg``/``gd``/``ge``: G's, D's and E's ``nnx.GraphDef``; ``k_cond``: K, the number of
    per-event conditions; ``features``: the summaries G's loss matches
    (:mod:`magan.fitting.features`), None when the fit matches none."""

    cfg: FitConfig
    gg: object
    gd: object
    ge: object
    k_cond: int
    features: Callable | None = None

    def generate(self, params_g, params_e, c, k):
        """G's parameters (B, P) and E's images at them and at the batch's conditions c (B, K)."""
        kz, ke = jax.random.split(k)
        z = jax.random.normal(kz, (self.cfg.batch_size, self.cfg.noise_dim))
        unit = nnx.merge(self.gg, params_g)(z)
        return unit, emulate(self.ge, params_e, jnp.concatenate([unit, c], axis=1), ke)


def _replica_step(spec: StepSpec, nets, boot_idx, do_r1: bool, k, data):
    """One replica's D then G update. ``nets`` = (params_g, params_d, opt_g, opt_d); ``data`` =
    (targets, cond, params_e, fdata)."""
    cfg, b = spec.cfg, spec.cfg.batch_size
    params_g, params_d, opt_g, opt_d = nets
    targets, cond, params_e, fdata = data
    tx_g, tx_d = optimisers(cfg)
    k_idx, k_d, k_g = jax.random.split(k, 3)
    rows = boot_idx[jax.random.randint(k_idx, (b,), 0, boot_idx.shape[0])]
    real, c = targets[rows], cond[rows]
    c_d = c if spec.k_cond else None
    unit, fake = spec.generate(params_g, params_e, c, k_d)
    (_, m_d), grads = jax.value_and_grad(discriminator_loss, has_aux=True)(
        params_d, spec.gd, real, jax.lax.stop_gradient(fake), c_d, cfg, do_r1)
    upd, opt_d = tx_d.update(grads, opt_d, params_d)
    params_d = optax.apply_updates(params_d, upd)
    use_features = spec.features is not None
    f_real = (standardised(spec.features, real, fdata, rows)
              if use_features else None)

    def g_loss(pg_):
        u, f = spec.generate(pg_, params_e, c, k_g)
        adv = jax.nn.softplus(-nnx.merge(spec.gd, params_d)(f, c_d)).mean()
        if not use_features:
            return adv, (u, adv, jnp.zeros(()))
        f_fake = standardised(spec.features, f, fdata, rows)
        dist = feature_energy_distance(f_fake, f_real, c, CONDITION_SCALE)
        return adv + cfg.feature_weight * dist, (u, adv, dist)

    (_, (u, loss_g, dist)), grads = jax.value_and_grad(g_loss, has_aux=True)(params_g)
    upd, opt_g = tx_g.update(grads, opt_g, params_g)
    params_g = optax.apply_updates(params_g, upd)
    metrics = {**m_d, "loss_g": loss_g, "feature_distance": dist, "unit_mean": u.mean(axis=0)}
    return params_g, params_d, opt_g, opt_d, metrics


@functools.lru_cache(maxsize=16)
def fit_step(spec: StepSpec, n_rep: int, do_r1: bool):
    """The jitted fit step of ``n_rep`` replicas, with or without D's R1 penalty.

    ``step(state, key, targets, cond, boot, params_e, fdata) -> (state, metrics)``: targets
    (M, H, W, C) in network space, their unit-cube conditions (M, K), the bootstrap rows
    (n_rep, N), E's parameters and the feature data (None without features; else
    :func:`magan.fitting.features.feature_data`'s). The state is donated.
    """
    avg_from = averaging_start(spec.cfg)

    def step(state, k, targets, cond, boot, params_e, fdata):
        keys = jax.random.split(k, n_rep)
        # Replicas are unrolled inside one jitted step. Neither vmap (it turns per-replica
        # convolution weights into grouped convolutions) nor lax.map (a loop XLA:CPU runs
        # without its fast convolution paths) is fast on CPU (studies/line/README.md).
        outs = []
        for r in range(n_rep):
            pick = lambda tree: jax.tree.map(lambda a: a[r], tree)  # noqa: E731
            nets = (pick(state["g"]), pick(state["d"]), pick(state["opt_g"]), pick(state["opt_d"]))
            outs.append(_replica_step(spec, nets, boot[r], do_r1, keys[r],
                                      (targets, cond, params_e, fdata)))
        pg_, pd_, og, od, m = jax.tree.map(lambda *a: jnp.stack(a), *outs)
        # running mean of G's parameters over the steps from avg_from on (weight 1/(n + 1), 0
        # before); its first step, and with average_last = 0 the last, is G as it is
        n_avg = state["step"] - avg_from
        w = jnp.where(n_avg > 0, 1.0 / (n_avg.astype(jnp.float32) + 1.0), 0.0)
        g_avg = jax.tree.map(lambda a, g: jnp.where(n_avg == 0, g, a + w * (g - a)),
                             state["g_avg"], pg_)
        return {"g": pg_, "d": pd_, "opt_g": og, "opt_d": od, "g_avg": g_avg,
                "step": state["step"] + 1}, m

    return jax.jit(step, donate_argnums=(0,))
