"""Stage 1, pre-training: the emulator E learns to mimic the simulator through the siamese S.

Each step draws B parameter points uniformly in the unit cube and simulates each point twice
(x1, x2). S learns to tell a genuine pair (x1, x2) from a pair (x1, E(theta, z)) at the same
parameters; E learns to make its pairs indistinguishable. Two stabilisers, measured in
``studies/line/README.md``:

* an R1 gradient penalty on S's genuine pairs (Mescheder et al. 2018), without which S wins within a
  few hundred steps and E stops learning;
* an auxiliary head on S's branch that regresses the parameters from one *simulated* image (as the
  auxiliary energy regression of 3DGAN); E is asked to make images from which that head reads back
  the parameters it was given. This tells E where its structure must be, not only that it is wrong.

E's weights are averaged (EMA) for sampling. Host simulators run in a background thread
(:class:`SimulationFeeder`) so the device trains while the next batches are simulated.
"""

from __future__ import annotations

import dataclasses
import os
import queue
import threading
import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.sharding import NamedSharding, PartitionSpec

from magan.runtime.checkpoints import RunCheckpoints
from magan.config import PretrainConfig
from magan.emulator import Emulator
from magan.nn.build import build_emulator_nets, cast_floats, emulate
from magan.runtime.io import write_metrics
from magan.runtime.parallel import data_mesh, replicate, shard_batch, to_local
from magan.runtime.progress import format_metrics, progress_bar
from magan.simulators.base import Simulator, SimulatorError
from magan.space import ParameterSpace
from magan.transforms import IdentityTransform, ImageTransform

__all__ = ["train_emulator", "SimulationFeeder", "siamese_loss", "emulator_loss", "energy_score"]


# ---------------------------------------------------------------------- losses
def siamese_loss(params_s, graphdef_s, x1, x2, fake, unit, r1_gamma, aux_weight, do_r1=True,
                 cond=None, compute_dtype=jnp.float32):
    """S's loss: genuine pairs -> 1, (simulation, emulation) pairs -> 0, plus R1 and regression.

    Shapes: x1, x2, fake (B, H, W, C); unit (B, P) the parameters S regresses; cond (B, K) unit-cube
    per-event conditions or None. ``do_r1`` switches the R1 term, whose double backward pass
    costs as much as the rest of the loss: the training step applies it every ``r1_every`` steps
    with ``r1_gamma`` scaled up to match (lazy regularisation, StyleGAN2). A Python bool selects
    at trace time (what the training loop does: XLA:CPU runs convolutions inside a ``lax.cond``
    branch without its fast kernels, 3-4x slower); a traced bool selects with ``lax.cond``. ``compute_dtype`` bfloat16: S runs in bfloat16, losses in float32.
    Returns (loss, metrics dict).
    """
    if compute_dtype != jnp.float32:
        params_s, x1, x2, fake = cast_floats((params_s, x1, x2, fake), compute_dtype)
        cond = None if cond is None else cond.astype(compute_dtype)
    s = nnx.merge(graphdef_s, params_s)
    f1, f2, ff = s.branch(x1, cond), s.branch(x2, cond), s.branch(fake, cond)
    real = s.pair_logit_from_features(f1, f2).astype(jnp.float32)
    fake_logit = s.pair_logit_from_features(f1, ff).astype(jnp.float32)
    adv = jax.nn.softplus(-real).mean() + jax.nn.softplus(fake_logit).mean()
    aux = 0.5 * (jnp.mean((s.regress_from_features(f1).astype(jnp.float32) - unit) ** 2)
                 + jnp.mean((s.regress_from_features(f2).astype(jnp.float32) - unit) ** 2))

    def real_sum(a, b):
        return nnx.merge(graphdef_s, params_s).pair_logit(a, b, cond).astype(jnp.float32).sum()

    def r1_penalty():
        ga, gb = (g.astype(jnp.float32) for g in jax.grad(real_sum, argnums=(0, 1))(x1, x2))
        return jnp.mean(jnp.sum(ga ** 2, axis=(1, 2, 3)) + jnp.sum(gb ** 2, axis=(1, 2, 3)))

    if isinstance(do_r1, bool):
        r1 = r1_penalty() if do_r1 else jnp.zeros((), jnp.float32)
    else:
        r1 = jax.lax.cond(do_r1, r1_penalty, lambda: jnp.zeros((), jnp.float32))
    loss = adv + aux_weight * aux + 0.5 * r1_gamma * r1
    acc = 0.5 * (jnp.mean(real > 0) + jnp.mean(fake_logit < 0))
    return loss, {"loss_siamese": adv, "aux_sim": aux, "r1": r1, "siamese_acc": acc}


def energy_score(e1, e2, x1, x2):
    """Energy score of emulated pairs (e1, e2) against simulated pairs (x1, x2), all (B, H, W, C).

    ``E||e - x|| - 1/2 E||e - e'||`` with every cross term: a strictly proper scoring rule
    (Gneiting & Raftery 2007), minimised only when E's distribution at each parameter point equals
    the simulator's, so unlike a pixel MSE it does not reward blurred mean images.
    """
    def norm(a, b):
        return jnp.sqrt(jnp.sum((a - b).reshape(a.shape[0], -1) ** 2, axis=1) + 1e-8)

    cross = 0.25 * (norm(e1, x1) + norm(e1, x2) + norm(e2, x1) + norm(e2, x2))
    return jnp.mean(cross - 0.5 * norm(e1, e2))


def emulator_loss(params_e, graphdef_e, params_s, graphdef_s, x1, x2, unit, key, aux_weight,
                  energy_weight, adversarial_weight=1.0, n_params=None, cond_phys=None,
                  feature_fn=None, feature_weight=0.0, compute_dtype=jnp.float32,
                  feature_marginal_weight=0.0):
    """E's loss: fool S on (x1, E(unit)) pairs, let S's regression head read the parameters back,
    (if ``energy_weight`` > 0) the energy score of two emulations against (x1, x2) in the networks'
    space and (if ``feature_weight`` > 0) the energy score of their high-level features; with
    ``feature_marginal_weight`` > 0 also the sum over features of each one's own (1-D) energy
    score (the CRPS), which presses on every feature's distribution (mean *and* spread) with the
    same force however many features there are, where the joint score's pull on one feature
    shrinks like 1/sqrt(F).

    ``unit`` (B, P + K) is E's conditioning (parameters, then conditions); the first ``n_params``
    columns are the parameters (all when ``None``). ``feature_fn(x_net, cond_phys) -> (B, F)``
    maps network-space images to standardised physical features. With ``compute_dtype``
    bfloat16 the networks run in bfloat16 and the scores in float32.
    """
    p = unit.shape[1] if n_params is None else n_params
    cond = unit[:, p:] if unit.shape[1] > p else None
    k1, k2 = jax.random.split(key)
    fake = emulate(graphdef_e, params_e, unit, k1, compute_dtype)
    low = compute_dtype != jnp.float32
    s = nnx.merge(graphdef_s, cast_floats(params_s, compute_dtype) if low else params_s)

    def branch(x):
        return s.branch(x.astype(compute_dtype), None if cond is None else cond.astype(compute_dtype))

    f1 = jax.lax.stop_gradient(branch(x1))
    ff = branch(fake)
    adv = jax.nn.softplus(-s.pair_logit_from_features(f1, ff).astype(jnp.float32)).mean()
    aux = jnp.mean((s.regress_from_features(ff).astype(jnp.float32) - unit[:, :p]) ** 2)
    metrics = {"loss_emulator": adv, "aux_emu": aux}
    loss = adversarial_weight * adv + aux_weight * aux
    use_features = feature_fn is not None and (feature_weight > 0 or feature_marginal_weight > 0)
    if energy_weight > 0 or use_features:
        fake2 = emulate(graphdef_e, params_e, unit, k2, compute_dtype)
    if energy_weight > 0:
        es = energy_score(fake, fake2, x1, x2)
        metrics["energy_score"] = es
        loss = loss + energy_weight * es
    if use_features:
        feats = [feature_fn(x, cond_phys) for x in (fake, fake2, x1, x2)]
        fs = energy_score(*feats)
        metrics["feature_score"] = fs
        loss = loss + feature_weight * fs
        if feature_marginal_weight > 0:
            ms = sum(energy_score(*(f[:, j:j + 1] for f in feats))
                     for j in range(feats[0].shape[1]))
            metrics["feature_marginal_score"] = ms
            loss = loss + feature_marginal_weight * ms
    return loss, (metrics, fake)


# ------------------------------------------------------------------- the step
def network_sizes(cfg: PretrainConfig) -> dict:
    """The network-size dict of :func:`magan.emulator.build_emulator_nets` from ``cfg``."""
    return {"noise_dim": cfg.noise_dim, "emulator_width": cfg.emulator_width,
            "siamese_width": cfg.siamese_width, "features": cfg.features,
            "noise_channels": cfg.noise_channels}


def _make_step(cfg: PretrainConfig, ge, gs, tx_e, tx_s, n_params, feature_fn):
    dtype = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}.get(cfg.compute_dtype)
    if dtype is None:
        raise ValueError(f"PretrainConfig.compute_dtype {cfg.compute_dtype!r} is not 'float32' or "
                         "'bfloat16'.")

    def step(state, unit, cond_phys, x1, x2, key, do_r1=None):
        """One S + E update. ``do_r1``: apply R1 (a Python bool, fixed at trace time); ``None``
        decides from the step counter at run time (``lax.cond``, slow on CPU)."""
        k_fake, k_e = jax.random.split(key)
        fake = emulate(ge, state["e"], unit, k_fake, dtype)
        if do_r1 is None:
            do_r1 = state["step"] % cfg.r1_every == 0
        cond = unit[:, n_params:] if unit.shape[1] > n_params else None
        (_, m_s), g_s = jax.value_and_grad(siamese_loss, has_aux=True)(
            state["s"], gs, x1, x2, jax.lax.stop_gradient(fake), unit[:, :n_params],
            cfg.r1_gamma * cfg.r1_every, cfg.aux_weight, do_r1, cond, dtype)
        upd, opt_s = tx_s.update(g_s, state["opt_s"], state["s"])
        params_s = optax.apply_updates(state["s"], upd)
        (_, (m_e, _)), g_e = jax.value_and_grad(emulator_loss, has_aux=True)(
            state["e"], ge, params_s, gs, x1, x2, unit, k_e, cfg.aux_weight, cfg.energy_weight,
            cfg.adversarial_weight, n_params, cond_phys, feature_fn,
            cfg.feature_weight if feature_fn is not None else 0.0, dtype,
            cfg.feature_marginal_weight if feature_fn is not None else 0.0)
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


def _stack(trees):
    return jax.tree.map(lambda *a: jnp.stack(a), *trees)


def host_batches_program(step, pattern: tuple[bool, ...]):
    """One jitted program running ``len(pattern)`` steps, unrolled, on host-simulated batches.

    ``run(state, key, units, conds, x1s, x2s) -> (state, metrics)``: the batches are stacked along
    a leading axis of len(pattern) ((n, B, P + K), (n, B, K), (n, B, H, W, C) twice); step j
    applies R1 iff ``pattern[j]``; each step's key is ``fold_in(key, step counter)``; every metric
    comes back with a leading axis of len(pattern). The state is donated. The run's key is an
    argument, not a constant of the program, so runs with other seeds reuse the compiled program
    (through JAX's persistent compilation cache when it is enabled).
    """
    def run(state, key, units, conds, x1s, x2s):
        metrics = []
        for j, r1 in enumerate(pattern):
            state, m = step(state, units[j], conds[j], x1s[j], x2s[j],
                            jax.random.fold_in(key, state["step"]), r1)
            metrics.append(m)
        return state, _stack(metrics)

    return jax.jit(run, donate_argnums=(0,))


# -------------------------------------------------------------- host feeding
def draw_training_batch(simulator: Simulator, space: ParameterSpace, rng: np.random.Generator,
                        n: int, transform=None, on_nonfinite: str = "stop", dropped=None):
    """One host batch ``(unit (n, P + K), cond (n, K), x1, x2)``; see :class:`SimulationFeeder`.
    A simulator with its own ``training_batch`` (a :class:`~magan.BankSimulator`) supplies it.

    ``on_nonfinite``: ``"stop"`` raises :class:`~magan.SimulatorError` naming the parameters of
    the first NaN/inf image; ``"drop"`` replaces such points by new draws (up to 10 rounds) and
    adds their number to ``dropped[0]``."""
    transform = transform or IdentityTransform()
    if hasattr(simulator, "training_batch"):
        return simulator.training_batch(rng, space, n, transform)
    if on_nonfinite not in ("stop", "drop"):
        raise ValueError(f"on_nonfinite must be 'stop' or 'drop', got {on_nonfinite!r}.")
    conditions = simulator.conditions
    k = 0 if conditions is None else conditions.dim
    unit = rng.random((n, space.dim + k))
    params = space.from_unit(unit[:, :space.dim])
    cond = None if conditions is None else conditions.from_unit(unit[:, space.dim:])
    drop = on_nonfinite == "drop"
    x1 = simulator.simulate(rng, params, space, conditions=cond, allow_nonfinite=drop)
    x2 = simulator.simulate(rng, params, space, conditions=cond, allow_nonfinite=drop)
    for round_ in range(11 if drop else 0):
        bad = ~(np.isfinite(x1).reshape(n, -1).all(1) & np.isfinite(x2).reshape(n, -1).all(1))
        if not bad.any():
            break
        if round_ == 10:
            raise SimulatorError(f"{simulator.name} kept returning NaN or inf for {int(bad.sum())} "
                                 "of the points redrawn 10 times (on_nonfinite='drop'); the "
                                 f"last one was {space.format(params[np.argmax(bad)], 6)}.")
        if dropped is not None:
            dropped[0] += int(bad.sum())
        unit[bad] = rng.random((int(bad.sum()), space.dim + k))
        params = space.from_unit(unit[:, :space.dim])
        cond = None if conditions is None else conditions.from_unit(unit[:, space.dim:])
        sub_c = None if cond is None else cond[bad]
        x1[bad] = simulator.simulate(rng, params[bad], space, conditions=sub_c, allow_nonfinite=True)
        x2[bad] = simulator.simulate(rng, params[bad], space, conditions=sub_c, allow_nonfinite=True)
    cond32 = np.zeros((n, 0), np.float32) if cond is None else cond.astype(np.float32)
    return (unit.astype(np.float32), cond32, np.asarray(transform.forward(x1, cond), np.float32),
            np.asarray(transform.forward(x2, cond), np.float32))


def batch_rng(seed, k: int) -> np.random.Generator:
    """The random stream of host training batch ``k`` of a run with ``seed`` (an int or a list of
    ints): every batch has its own stream, so batches can be simulated in any order, by any
    number of threads, and a resumed run needs only the index of its next batch."""
    return np.random.default_rng([*np.atleast_1d(seed).tolist(), k])


class SimulationFeeder:
    """Runs a host simulator in ``workers`` background threads, ``prefetch`` batches ahead each.

    Batch ``k`` is ``(unit (B, P + K), cond (B, K), x1 (B, H, W, C), x2 (B, H, W, C))``: B points
    drawn uniformly in the unit cube of parameters and conditions (``cond`` their physical
    conditions, K may be 0), each simulated twice and mapped to the networks' space by
    ``transform``, all from :func:`batch_rng` ``(seed, k)``. Worker w makes batches w, w + workers,
    ...; :meth:`next` hands them out in order, so the sequence depends only on ``seed`` (not on
    the number of workers; NumPy simulators release the GIL in their array operations, so two
    threads simulate nearly twice as fast). ``wait_s`` is the time the consumer spent blocked
    (the device idling for the simulator); ``sim_s`` the time spent simulating, summed over the
    workers; ``next_batch`` the index of the next batch :meth:`next` returns.
    """

    def __init__(self, simulator: Simulator, space: ParameterSpace, batch_size: int, seed,
                 prefetch: int = 4, transform=None, start_batch: int = 0,
                 on_nonfinite: str = "stop", workers: int = 1):
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}.")
        self.simulator, self.space, self.batch_size = simulator, space, batch_size
        self.seed, self.on_nonfinite = seed, on_nonfinite
        self.transform = transform or IdentityTransform()
        self.next_batch = self.start = int(start_batch)
        self.workers = workers
        self.dropped = [0]  # points redrawn (on_nonfinite="drop") in the batches handed out
        self._sim_s = [0.0] * workers
        self.queues = [queue.Queue(maxsize=max(1, prefetch)) for _ in range(workers)]
        self.stop = threading.Event()
        self.wait_s = 0.0
        self.threads = [threading.Thread(target=self._run, args=(w,), daemon=True,
                                         name=f"magan-simulator-{w}") for w in range(workers)]
        for t in self.threads:
            t.start()

    @property
    def sim_s(self) -> float:
        return sum(self._sim_s)

    def _run(self, w: int):
        k = self.start + w
        while not self.stop.is_set():
            t0 = time.perf_counter()
            try:
                dropped = [0]
                item = (draw_training_batch(self.simulator, self.space, batch_rng(self.seed, k),
                                            self.batch_size, self.transform, self.on_nonfinite,
                                            dropped), dropped[0])
            except BaseException as err:  # handed to the consumer, raised there
                item = err
            self._sim_s[w] += time.perf_counter() - t0
            while not self.stop.is_set():
                try:
                    self.queues[w].put(item, timeout=0.1)
                    break
                except queue.Full:
                    continue
            if isinstance(item, BaseException):
                return
            k += self.workers

    def next(self):
        t0 = time.perf_counter()
        item = self.queues[(self.next_batch - self.start) % self.workers].get()
        self.wait_s += time.perf_counter() - t0
        if isinstance(item, BaseException):
            self.close()
            raise item
        self.next_batch += 1
        batch, dropped = item
        self.dropped[0] += dropped
        return batch

    def close(self):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=5)


# ------------------------------------------------------------------ the loop
def _standardised_features(features, transform: ImageTransform, simulator, space, seed: int):
    """Wrap ``features`` as ``f(x_net, cond_phys) -> (B, F)``, in units of each feature's
    *within-point* spread: the std of ``(f(x1) - f(x2)) / sqrt(2)`` over pairs of simulations
    made at the same points (drawn across the space and conditions). In these units a bias of the
    size of the simulator's own fluctuations costs the same for every feature, which is what the
    separation power of a histogram sees.

    With per-event conditions the spread is modelled as ``s_f * exp(u(c) . b_f)`` (u the unit-cube
    conditions; b_f from a least-squares fit of log|f(x1) - f(x2)| on u, s_f so that the pairs'
    mean squared standardised difference is 2): a calorimeter's response fluctuates 3x less at
    100 GeV than at 10 GeV, and one spread for all energies would make the loss blind where the
    simulator is tightest.
    """
    conditions = simulator.conditions
    n = 256 if conditions is None else 1024
    batch = draw_training_batch(simulator, space, np.random.default_rng([seed, 99]), n, transform)
    _, cond, x1, x2 = batch
    has_cond = conditions is not None

    def raw(x_net, cond_phys):
        c = cond_phys if has_cond else None
        return features(transform.inverse(x_net, c, xp=jnp), c)

    f1, f2 = (np.asarray(raw(jnp.asarray(x), jnp.asarray(cond)), np.float64) for x in (x1, x2))
    if f1.ndim != 2 or f1.shape[0] != n or not (np.isfinite(f1).all() and np.isfinite(f2).all()):
        raise ValueError(f"features(images, conditions) must return finite values of shape (N, F); "
                         f"got shape {f1.shape} for N = {n} (finite: {np.isfinite(f1).all()}).")
    overall = np.concatenate([f1, f2]).std(axis=0)
    floor = 1e-3 * overall + 1e-12
    mu = jnp.asarray(f1.mean(0), jnp.float32)
    if not has_cond:
        within = np.std(f1 - f2, axis=0) / np.sqrt(2.0)
        sd = jnp.asarray(np.maximum(within, floor), jnp.float32)
        return lambda x_net, cond_phys: (raw(x_net, cond_phys) - mu) / sd
    u = conditions.to_unit(cond)  # (n, K)
    d = np.abs(f1 - f2)
    design = np.concatenate([np.ones((n, 1)), u], axis=1)
    coef, *_ = np.linalg.lstsq(design, np.log(d + floor), rcond=None)  # (1 + K, F)
    slope = np.clip(coef[1:], -5.0, 5.0)  # at most a factor e^5 across the condition range
    shape = np.exp(u @ slope)  # (n, F)
    level = np.sqrt(np.mean((d / shape) ** 2, axis=0) / 2.0)
    level = np.maximum(level, floor)
    slope_j, level_j = jnp.asarray(slope, jnp.float32), jnp.asarray(level, jnp.float32)

    def standardised(x_net, cond_phys):
        sd = level_j * jnp.exp(conditions.to_unit_jax(cond_phys) @ slope_j)
        return (raw(x_net, cond_phys) - mu) / sd

    return standardised


def train_emulator(simulator: Simulator, space: ParameterSpace, config: PretrainConfig | None = None,
                   *, seed: int = 0, workdir=None, progress: bool | None = None,
                   transform: ImageTransform | None = None, features=None,
                   devices=None) -> Emulator:
    """Pre-train an emulator of ``simulator`` over ``space`` (and its per-event conditions).

    Args:
      simulator: a :class:`~magan.FunctionSimulator` (host) or :class:`~magan.JaxSimulator`. When it
        has a :class:`~magan.ConditionSpace`, the emulator is conditioned on it too; conditions are
        drawn uniformly in their unit cube (log-uniform on log scales).
      space: the parameters and their bounds; points are drawn uniformly inside.
      config: a :class:`~magan.PretrainConfig`; ``None`` means the ``default`` preset.
      seed: the same seed gives the same emulator on the same machine.
      transform: an :class:`~magan.transforms.ImageTransform` from physical images to the space E
        works in (default identity); saved with the emulator.
      features: optional ``features(images, conditions) -> (N, F)`` written with ``jax.numpy``,
        high-level physical features (physical images, physical conditions or ``None``). With
        ``config.feature_weight > 0`` E is also trained on the energy score of these features
        (standardised over the space), a proper scoring rule that asks E to reproduce their
        distribution at every point, not only their mean.
      workdir: if given, the emulator is saved to ``workdir/emulator`` at the end and the metrics to
        ``workdir/pretrain_metrics.json``.
      progress: show a progress bar (``None``: unless MAGAN_QUIET is set).
      devices: the devices the batch is split over (data parallel, parameters replicated;
        default every device of every process, see :mod:`magan.runtime.parallel`). ``batch_size`` must
        be a multiple of their number.
    Returns:
      The trained :class:`~magan.Emulator`; ``emulator.info["pretrain"]`` holds the metric history
      and timings.
    """
    cfg = config or PretrainConfig()
    if not isinstance(cfg, PretrainConfig):
        raise TypeError(f"config must be a PretrainConfig, got {type(cfg).__name__}.")
    if not isinstance(simulator, Simulator):
        raise TypeError("simulator must be a magan.FunctionSimulator or magan.JaxSimulator, got "
                        f"{type(simulator).__name__}; wrap your function with one of them.")
    transform = transform or IdentityTransform()
    if not isinstance(transform, ImageTransform):
        raise TypeError(f"transform must be a magan ImageTransform, got {type(transform).__name__}.")
    conditions = simulator.conditions
    k_cond = 0 if conditions is None else conditions.dim
    feature_fn = None
    if features is not None and (cfg.feature_weight > 0 or cfg.feature_marginal_weight > 0):
        feature_fn = _standardised_features(features, transform, simulator, space, seed)
    net = network_sizes(cfg)
    ge, pe, gs, ps = build_emulator_nets(space.dim, transform.network_shape(simulator.image_shape),
                                         net, seed, k_cond)
    def rate(lr):
        if cfg.lr_schedule == "cosine":
            return optax.cosine_decay_schedule(lr, cfg.steps, alpha=0.05)
        if cfg.lr_schedule != "constant":
            raise ValueError(f"lr_schedule {cfg.lr_schedule!r} is not 'constant' or 'cosine'.")
        return lr

    tx_e = optax.adam(rate(cfg.lr_emulator), b1=cfg.beta1, b2=cfg.beta2)
    tx_s = optax.adam(rate(cfg.lr_siamese), b1=cfg.beta1, b2=cfg.beta2)
    mesh = data_mesh(devices)
    n_proc = jax.process_count()
    if cfg.batch_size % mesh.size:
        raise ValueError(f"PretrainConfig.batch_size = {cfg.batch_size} must be a multiple of the "
                         f"{mesh.size} devices it is split over; use e.g. "
                         f"{mesh.size * max(1, round(cfg.batch_size / mesh.size))}.")
    state = {"e": pe, "s": ps, "ema": jax.tree.map(jnp.copy, pe), "opt_e": tx_e.init(pe),
             "opt_s": tx_s.init(ps), "step": jnp.zeros((), jnp.int32)}
    state = replicate(state, mesh)
    step = _make_step(cfg, ge, gs, tx_e, tx_s, space.dim, feature_fn)
    key = jax.random.key(seed)
    per_call = cfg.steps_per_call
    if per_call < 1 or cfg.log_every % per_call:
        raise ValueError(f"PretrainConfig.steps_per_call = {cfg.steps_per_call} must be >= 1 and "
                         f"divide log_every = {cfg.log_every}.")
    ckpt = None
    start, history, feeder_start = 0, [], 0
    if workdir is not None and cfg.checkpoint_every > 0:
        ckpt = RunCheckpoints(workdir, "pretrain", {
            "config": dataclasses.asdict(cfg), "seed": seed, "simulator": simulator.name,
            "space": space.to_dict(), "conditions": None if conditions is None else
            conditions.to_dict(), "transform": transform.to_dict(), "devices": mesh.size})
        found = ckpt.restore(state)
        if found is not None:
            start, state, record = found
            history, feeder_start = record["history"], record.get("feeder_next_batch", 0)
    if simulator.traceable:
        data = NamedSharding(mesh, PartitionSpec("data"))

        def sim_step(state, key, r1):
            # the step's key follows from the step counter alone, so several steps per dispatch
            # (unrolled) give exactly the result of one step per dispatch
            ku, k1, k2, ks = jax.random.split(jax.random.fold_in(key, state["step"]), 4)
            unit = jax.random.uniform(ku, (cfg.batch_size, space.dim + k_cond))
            params = space.from_unit_jax(unit[:, :space.dim])
            if conditions is None:
                cond = jnp.zeros((cfg.batch_size, 0), jnp.float32)
                c = None
            else:
                cond = c = conditions.from_unit_jax(unit[:, space.dim:])
            x1 = transform.forward(simulator.simulate_jax(k1, params, c), c, xp=jnp)
            x2 = transform.forward(simulator.simulate_jax(k2, params, c), c, xp=jnp)
            unit, cond, x1, x2 = (jax.lax.with_sharding_constraint(a, data)
                                  for a in (unit, cond, x1, x2))
            return step(state, unit, cond, x1, x2, ks, r1)

        def group(pattern):
            def run(state, key):
                metrics = []
                for r1 in pattern:
                    state, m = sim_step(state, key, r1)
                    metrics.append(m)
                return state, _stack(metrics)
            return jax.jit(run, donate_argnums=(0,))

        feeder = None
    else:
        def group(pattern):
            return host_batches_program(step, pattern)

        # each process simulates its own share of the batch from its own stream
        feeder = SimulationFeeder(simulator, space, cfg.batch_size // n_proc,
                                  seed if n_proc == 1 else [seed, jax.process_index()],
                                  cfg.prefetch, transform, start_batch=feeder_start,
                                  on_nonfinite=cfg.on_nonfinite,
                                  workers=cfg.simulator_workers or min(4, os.cpu_count() or 1))

    # One compiled program per pattern of R1 steps within a call (usually one or two): the steps
    # of a call are unrolled, not looped, because XLA:CPU runs convolutions inside a loop or a
    # conditional without its fast kernels (a lax.scan step measured 3x slower than a plain one).
    compiled: dict[tuple[bool, ...], object] = {}
    pending: list = []
    t_start = time.perf_counter()
    t_compile = None
    bar = progress_bar(cfg.steps, "pre-training", progress)
    bar.update(start)
    last_good = start if start else None
    try:
        i = start
        while i < cfg.steps:
            n_now = min(per_call, cfg.steps - i)
            pattern = r1_pattern(i, n_now, cfg.r1_every)
            if pattern not in compiled:
                compiled[pattern] = group(pattern)
            if feeder is None:
                state, metrics = compiled[pattern](state, key)
            else:
                batches = [feeder.next() for _ in range(n_now)]
                stacked = shard_batch([np.stack(a) for a in zip(*batches)], mesh, axis=1)
                state, metrics = compiled[pattern](state, key, *stacked)
            pending.append(metrics)
            if t_compile is None:
                jax.block_until_ready(state)
                t_compile = time.perf_counter() - t_start
            i += n_now
            if i % cfg.log_every == 0 or i == cfg.steps:
                host = jax.device_get(pending)  # the loop's only host sync
                n_host = sum(len(next(iter(m.values()))) for m in host)
                mean = {k_: float(np.mean(np.concatenate([m[k_] for m in host])))
                        for k_ in host[0]}
                if not all(np.isfinite(v) for v in mean.values()):
                    kept = (f" The last good checkpoint (step {last_good}) is kept in "
                            f"{ckpt.directory}; rerunning resumes from it." if last_good else "")
                    raise FloatingPointError(
                        f"Non-finite pre-training loss at step {i}: {mean}. Lower the learning "
                        "rates or raise r1_gamma; check the simulator's output scale." + kept)
                history.append({"step": i, **mean})
                pending = []
                bar.set_postfix(format_metrics(mean), refresh=False)
                bar.update(n_host)
                # at the first metric fetch at or after every checkpoint_every steps, and at the end
                if ckpt is not None and (i // cfg.checkpoint_every > (last_good or 0)
                                         // cfg.checkpoint_every or i == cfg.steps):
                    ckpt.save(i, state, {"history": history, "feeder_next_batch": 0 if
                                         feeder is None else feeder.next_batch})
                    last_good = i
    finally:
        bar.close()
        if feeder is not None:
            feeder.close()
        if ckpt is not None:
            ckpt.close()
    jax.block_until_ready(state)
    state = to_local(state)
    total = time.perf_counter() - t_start
    timing = {"total_s": total, "first_step_s": t_compile, "resumed_from_step": start,
              "steps_per_s": (cfg.steps - start - 1) / max(total - (t_compile or 0.0), 1e-9)}
    timing["devices"] = mesh.size
    if feeder is not None and feeder.dropped[0]:
        warnings.warn(f"{feeder.dropped[0]} simulations returned NaN or inf and were replaced by "
                      "draws at new points (PretrainConfig.on_nonfinite='drop'); regions of the "
                      "parameter space where the simulator fails are under-represented.",
                      stacklevel=2)
        timing["dropped_simulations"] = feeder.dropped[0]
    if feeder is not None:
        timing.update(simulate_s=feeder.sim_s, device_waited_for_simulator_s=feeder.wait_s,
                      simulator_overlap=1.0 - feeder.wait_s / max(feeder.sim_s, 1e-9))
    info = {"simulator": simulator.name, "seed": seed, "config": dataclasses.asdict(cfg),
            "pretrain": {"timing": timing, "history": history}}
    emulator = Emulator(space, simulator.image_shape, net, state["ema"], state["s"],
                        graphdefs=(ge, gs), info=info, conditions=conditions, transform=transform)
    if workdir is not None:
        write_metrics(workdir, "pretrain", history)
        emulator.save(f"{workdir}/emulator")
    return emulator
