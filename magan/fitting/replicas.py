"""Fitting image sets with replicas of (G, D): the data on the device, the initial state, the
loop, and the draws of the fitted parameters.

Several (G, D) pairs train side by side in one step, each on its own bootstrap resample of its
image set; ``cfg.replicas`` replicas per set, and several sets (the targets and a reference set of
the bias correction) in one program.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from magan.fitting.checkpoints import PassCheckpoints, pass_settings
from magan.fitting.features import feature_data
from magan.fitting.state import init_program, init_state, network_structures
from magan.fitting.step import StepSpec, fit_step
from magan.runtime.loop import run_loop
from magan.runtime.metrics import Watch
from magan.runtime.progress import format_metrics

__all__ = ["fit_sets"]


def _device_data(run, sets, conds):
    """The sets stacked in network space (M, H, W, C), their physical conditions (M, K) or None,
    and their unit-cube conditions (M, K) (K may be 0); ``conds``: each set's (N, K) or None."""
    cond = run.cond
    data_cond = None if cond is None else np.concatenate(conds)
    data = run.emulator.to_network(np.concatenate(sets), data_cond)
    data_cond_unit = (np.zeros((data.shape[0], 0), np.float32) if cond is None
                      else run.emulator.conditions.to_unit(data_cond).astype(np.float32))
    return data, data_cond, data_cond_unit


def _bootstrap_rows(cfg, key, n_rep: int, n_targets: int, per_set: int):
    """(n_rep, N) data rows per replica: replicas [s R, (s + 1) R) fit set s (rows offset by
    s N; R = ``per_set``), each on a bootstrap resample of its set (or the set itself without
    bootstrap)."""
    if cfg.bootstrap:
        boot = jax.random.randint(key, (n_rep, n_targets), 0, n_targets)
    else:
        boot = jnp.tile(jnp.arange(n_targets), (n_rep, 1))
    return boot + n_targets * (jnp.arange(n_rep) // per_set)[:, None]


def _postfix(space, use_features: bool):
    """The bar's text for a row: D's and G's losses (and the feature distance), then the first
    set's mean fitted parameters by name, in physical units."""
    losses = ("loss_d", "loss_g") + (("feature_distance",) if use_features else ())
    units = [f" {q.unit}" if q.unit else "" for q in space.parameters]

    def postfix(row: dict) -> dict:
        shown = format_metrics({k: row[k] for k in losses})
        shown.update({n: f"{row[f'mean_{n}']:.4g}{u}" for n, u in zip(space.names, units)})
        return shown

    return postfix


def _summarise(run, use_features: bool, per_set: int):
    """The loop's metric row: D's and G's losses, R1 (and the feature distance), averaged over
    the steps since the last sync and the replicas, and the first set's mean parameters."""
    space = run.emulator.space

    def summarise(host, done, state):
        row = {}
        for name in ("loss_d", "loss_g", "r1") + (("feature_distance",) if use_features else ()):
            row[name] = float(np.mean([h[name] for h in host]))
        if not np.isfinite([row["loss_d"], row["loss_g"]]).all():
            raise FloatingPointError(
                f"Non-finite fit loss at step {done}: { {'step': done, **row} }. Lower "
                "lr_generator / lr_discriminator or raise r1_gamma.")
        phys = space.from_unit(np.mean(host[-1]["unit_mean"][:per_set], axis=0))
        row.update({f"mean_{n}": float(v) for n, v in zip(space.names, phys)})
        return row

    return summarise


def fit_sets(run, sets, start_unit, key, label: str, *, replicas: int | None = None,
             conds=None):
    """Fit ``replicas`` (default ``run.cfg.replicas``) (G, D) pairs to each image set in ``sets``
    (each (N, H, W, C), physical, all with the same N), starting at ``start_unit``: (P,) for
    all, or (len(sets), P), one start per set. ``conds``: each set's physical conditions (N, K)
    (default: the targets' ``run.cond`` for every set). With ``run.workdir`` the pass is
    checkpointed and resumed (:mod:`magan.fitting.checkpoints`). Returns G's draws in the unit
    cube (len(sets) * R, S, P), the metric history and the loop's seconds."""
    cfg, emulator = run.cfg, run.emulator
    p, k_cond, n_targets = emulator.space.dim, emulator.cond_dim, sets[0].shape[0]
    per_set = replicas or cfg.replicas
    n_rep = per_set * len(sets)
    conds = [run.cond] * len(sets) if conds is None else conds
    data, data_cond, data_cond_unit = _device_data(run, sets, conds)
    k_init, k_boot, k_train, k_out = jax.random.split(key, 4)
    start_unit = np.asarray(start_unit, np.float32)
    per_replica = start_unit.ndim == 2
    starts = np.repeat(start_unit, per_set, axis=0) if per_replica else start_unit
    gg, gd = network_structures(p, emulator.network_shape, cfg, starts.reshape(-1, p)[0], k_cond)
    pg, pd = init_program(p, emulator.network_shape, cfg, k_cond, per_replica)(
        jax.random.split(k_init, n_rep), jnp.asarray(starts))
    state = init_state(pg, pd, cfg)
    boot = _bootstrap_rows(cfg, k_boot, n_rep, n_targets, per_set)
    data_dev, cond_dev = jnp.asarray(data), jnp.asarray(data_cond_unit)
    use_features = run.features is not None
    fdata = (feature_data(emulator, data_dev, data_cond, data_cond_unit, n_targets, run.features)
             if use_features else None)
    spec = StepSpec(cfg, gg, gd, emulator.graphdef_e, k_cond, run.features)
    steps = [fit_step(spec, n_rep, r1) for r1 in (False, True)]
    pe = emulator.params_e

    def advance(state, i, n):
        return steps[i % cfg.r1_every == 0](state, jax.random.fold_in(k_train, i), data_dev,
                                            cond_dev, boot, pe, fdata)

    watch = run.watch or Watch()
    ckpt = PassCheckpoints(run.workdir, label, None if run.workdir is None else pass_settings(
        run, sets, start_unit, label, per_set=per_set, conds=conds), total=cfg.steps)
    try:
        start, state, history = ckpt.resume(state)
        # the target pass's rows are fit_metrics.csv, the reference pass's
        # fit_reference_metrics.csv
        with watch.stream("fit" if label == "fitting" else "fit_reference", history) as on_row:
            out = run_loop(advance, state, total=cfg.steps, start=start, history=history,
                           summarise=_summarise(run, use_features, per_set),
                           sync_every=cfg.log_every, desc=label, progress=run.progress,
                           postfix=_postfix(emulator.space, use_features), on_row=on_row,
                           on_sync=ckpt.on_sync)
    finally:
        ckpt.close()
    return _draws(cfg, gg, out.state["g_avg"], k_out, n_rep), out.history, out.total_s


def _draws(cfg, gg, g_avg, key, n_rep: int) -> np.ndarray:
    """``cfg.samples_per_replica`` draws of each replica's averaged G: (n_rep, S, P) unit cube."""
    def draw(params_g, k):
        z = jax.random.normal(k, (cfg.samples_per_replica, cfg.noise_dim))
        return nnx.merge(gg, params_g)(z)

    out_keys = jax.random.split(key, n_rep)
    return np.stack([np.asarray(draw(jax.tree.map(lambda a: a[r], g_avg), out_keys[r]))
                     for r in range(n_rep)])
