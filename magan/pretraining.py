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
import queue
import threading
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from magan.config import PretrainConfig
from magan.emulator import Emulator, build_emulator_nets, emulate
from magan.io import write_metrics
from magan.progress import format_metrics, progress_bar
from magan.simulators import Simulator
from magan.space import ParameterSpace

__all__ = ["train_emulator", "SimulationFeeder", "siamese_loss", "emulator_loss", "energy_score"]


# ---------------------------------------------------------------------- losses
def siamese_loss(params_s, graphdef_s, x1, x2, fake, unit, r1_gamma, aux_weight, do_r1=True):
    """S's loss: genuine pairs -> 1, (simulation, emulation) pairs -> 0, plus R1 and regression.

    Shapes: x1, x2, fake (B, H, W, C); unit (B, P). ``do_r1`` (traced bool) switches the R1 term,
    whose double backward pass costs three times the rest of the loss: the training step applies
    it every ``r1_every`` steps with ``r1_gamma`` scaled up to match (lazy regularisation,
    StyleGAN2). Returns (loss, metrics dict).
    """
    s = nnx.merge(graphdef_s, params_s)
    f1, f2, ff = s.branch(x1), s.branch(x2), s.branch(fake)
    real = s.pair_logit_from_features(f1, f2)
    fake_logit = s.pair_logit_from_features(f1, ff)
    adv = jax.nn.softplus(-real).mean() + jax.nn.softplus(fake_logit).mean()
    aux = 0.5 * (jnp.mean((s.regress_from_features(f1) - unit) ** 2)
                 + jnp.mean((s.regress_from_features(f2) - unit) ** 2))

    def real_sum(a, b):
        return nnx.merge(graphdef_s, params_s).pair_logit(a, b).sum()

    def r1_penalty():
        ga, gb = jax.grad(real_sum, argnums=(0, 1))(x1, x2)
        return jnp.mean(jnp.sum(ga ** 2, axis=(1, 2, 3)) + jnp.sum(gb ** 2, axis=(1, 2, 3)))

    r1 = jax.lax.cond(do_r1, r1_penalty, lambda: jnp.zeros((), x1.dtype))
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
                  energy_weight, adversarial_weight=1.0):
    """E's loss: fool S on (x1, E(unit)) pairs, let S's regression head read ``unit`` back, and
    (if ``energy_weight`` > 0) the energy score of two emulations against (x1, x2)."""
    k1, k2 = jax.random.split(key)
    fake = emulate(graphdef_e, params_e, unit, k1)
    s = nnx.merge(graphdef_s, params_s)
    f1 = jax.lax.stop_gradient(s.branch(x1))
    ff = s.branch(fake)
    adv = jax.nn.softplus(-s.pair_logit_from_features(f1, ff)).mean()
    aux = jnp.mean((s.regress_from_features(ff) - unit) ** 2)
    metrics = {"loss_emulator": adv, "aux_emu": aux}
    loss = adversarial_weight * adv + aux_weight * aux
    if energy_weight > 0:
        es = energy_score(fake, emulate(graphdef_e, params_e, unit, k2), x1, x2)
        metrics["energy_score"] = es
        loss = loss + energy_weight * es
    return loss, (metrics, fake)


# ------------------------------------------------------------------- the step
def _make_step(cfg: PretrainConfig, ge, gs, tx_e, tx_s):
    def step(state, unit, x1, x2, key):
        k_fake, k_e = jax.random.split(key)
        fake = emulate(ge, state["e"], unit, k_fake)
        do_r1 = state["step"] % cfg.r1_every == 0
        (_, m_s), g_s = jax.value_and_grad(siamese_loss, has_aux=True)(
            state["s"], gs, x1, x2, jax.lax.stop_gradient(fake), unit, cfg.r1_gamma * cfg.r1_every,
            cfg.aux_weight, do_r1)
        upd, opt_s = tx_s.update(g_s, state["opt_s"], state["s"])
        params_s = optax.apply_updates(state["s"], upd)
        (_, (m_e, _)), g_e = jax.value_and_grad(emulator_loss, has_aux=True)(
            state["e"], ge, params_s, gs, x1, x2, unit, k_e, cfg.aux_weight, cfg.energy_weight,
            cfg.adversarial_weight)
        upd, opt_e = tx_e.update(g_e, state["opt_e"], state["e"])
        params_e = optax.apply_updates(state["e"], upd)
        ema = optax.incremental_update(params_e, state["ema"], 1.0 - cfg.ema_decay)
        new = {"e": params_e, "s": params_s, "ema": ema, "opt_e": opt_e, "opt_s": opt_s,
               "step": state["step"] + 1}
        return new, {**m_s, **m_e}

    return step


# -------------------------------------------------------------- host feeding
class SimulationFeeder:
    """Runs a host simulator in a background thread, ``prefetch`` batches ahead.

    Each batch is ``(unit (B, P), x1 (B, H, W, C), x2 (B, H, W, C))``: B points drawn uniformly in the
    unit cube, each simulated twice. The sequence depends only on ``seed``. ``wait_s`` is the time
    the consumer spent blocked on the queue (the device idling for the simulator); ``sim_s`` the
    time spent simulating.
    """

    def __init__(self, simulator: Simulator, space: ParameterSpace, batch_size: int, seed: int,
                 prefetch: int = 4):
        self.simulator, self.space, self.batch_size = simulator, space, batch_size
        self.rng = np.random.default_rng(seed)
        self.queue: queue.Queue = queue.Queue(maxsize=max(1, prefetch))
        self.stop = threading.Event()
        self.sim_s = 0.0
        self.wait_s = 0.0
        self.thread = threading.Thread(target=self._run, daemon=True, name="magan-simulator")
        self.thread.start()

    def _make(self):
        unit = self.rng.random((self.batch_size, self.space.dim))
        params = self.space.from_unit(unit)
        x1 = self.simulator.simulate(self.rng, params, self.space)
        x2 = self.simulator.simulate(self.rng, params, self.space)
        return unit.astype(np.float32), x1, x2

    def _run(self):
        while not self.stop.is_set():
            t0 = time.perf_counter()
            try:
                item = self._make()
            except BaseException as err:  # handed to the consumer, raised there
                item = err
            self.sim_s += time.perf_counter() - t0
            while not self.stop.is_set():
                try:
                    self.queue.put(item, timeout=0.1)
                    break
                except queue.Full:
                    continue
            if isinstance(item, BaseException):
                return

    def next(self):
        t0 = time.perf_counter()
        item = self.queue.get()
        self.wait_s += time.perf_counter() - t0
        if isinstance(item, BaseException):
            self.close()
            raise item
        return item

    def close(self):
        self.stop.set()
        self.thread.join(timeout=5)


# ------------------------------------------------------------------ the loop
def train_emulator(simulator: Simulator, space: ParameterSpace, config: PretrainConfig | None = None,
                   *, seed: int = 0, workdir=None, progress: bool | None = None) -> Emulator:
    """Pre-train an emulator of ``simulator`` over ``space``.

    Args:
      simulator: a :class:`~magan.FunctionSimulator` (host) or :class:`~magan.JaxSimulator`.
      space: the parameters and their bounds; points are drawn uniformly inside.
      config: a :class:`~magan.PretrainConfig`; ``None`` means the ``default`` preset.
      seed: the same seed gives the same emulator on the same machine.
      workdir: if given, the emulator is saved to ``workdir/emulator`` at the end and the metrics to
        ``workdir/pretrain_metrics.json``.
      progress: show a progress bar (``None``: unless MAGAN_QUIET is set).
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
    net = {"noise_dim": cfg.noise_dim, "emulator_width": cfg.emulator_width,
           "siamese_width": cfg.siamese_width, "features": cfg.features}
    ge, pe, gs, ps = build_emulator_nets(space.dim, simulator.image_shape, net, seed)
    tx_e = optax.adam(cfg.lr_emulator, b1=cfg.beta1, b2=cfg.beta2)
    tx_s = optax.adam(cfg.lr_siamese, b1=cfg.beta1, b2=cfg.beta2)
    state = {"e": pe, "s": ps, "ema": jax.tree.map(jnp.copy, pe), "opt_e": tx_e.init(pe),
             "opt_s": tx_s.init(ps), "step": jnp.zeros((), jnp.int32)}
    step = _make_step(cfg, ge, gs, tx_e, tx_s)
    key = jax.random.key(seed)

    if simulator.traceable:
        def sim_step(state, key):
            ku, k1, k2, ks = jax.random.split(key, 4)
            unit = jax.random.uniform(ku, (cfg.batch_size, space.dim))
            params = jnp.asarray(space.low, jnp.float32) + unit * jnp.asarray(space.width,
                                                                            jnp.float32)
            x1 = simulator.simulate_jax(k1, params)
            x2 = simulator.simulate_jax(k2, params)
            return step(state, unit, x1, x2, ks)

        jstep = jax.jit(sim_step, donate_argnums=(0,))
        feeder = None
    else:
        jstep = jax.jit(step, donate_argnums=(0,))
        feeder = SimulationFeeder(simulator, space, cfg.batch_size, seed, cfg.prefetch)

    history: list[dict] = []
    pending: list = []
    t_start = time.perf_counter()
    t_compile = None
    bar = progress_bar(cfg.steps, "pre-training", progress)
    try:
        for i in range(cfg.steps):
            k = jax.random.fold_in(key, i)
            if feeder is None:
                state, metrics = jstep(state, k)
            else:
                unit, x1, x2 = feeder.next()
                state, metrics = jstep(state, unit, x1, x2, k)
            pending.append(metrics)
            if i == 0:
                jax.block_until_ready(state)
                t_compile = time.perf_counter() - t_start
            if (i + 1) % cfg.log_every == 0 or i + 1 == cfg.steps:
                host = jax.device_get(pending)  # the loop's only host sync
                mean = {k_: float(np.mean([m[k_] for m in host])) for k_ in host[0]}
                if not all(np.isfinite(v) for v in mean.values()):
                    raise FloatingPointError(
                        f"Non-finite pre-training loss at step {i + 1}: {mean}. Lower the learning "
                        "rates or raise r1_gamma; check the simulator's output scale.")
                history.append({"step": i + 1, **mean})
                pending = []
                bar.set_postfix(format_metrics(mean), refresh=False)
                bar.update(len(host))
    finally:
        bar.close()
        if feeder is not None:
            feeder.close()
    jax.block_until_ready(state)
    total = time.perf_counter() - t_start
    timing = {"total_s": total, "first_step_s": t_compile,
              "steps_per_s": (cfg.steps - 1) / max(total - (t_compile or 0.0), 1e-9)}
    if feeder is not None:
        timing.update(simulate_s=feeder.sim_s, device_waited_for_simulator_s=feeder.wait_s)
    info = {"simulator": simulator.name, "seed": seed, "config": dataclasses.asdict(cfg),
            "pretrain": {"timing": timing, "history": history}}
    emulator = Emulator(space, simulator.image_shape, net, state["ema"], state["s"],
                        graphdefs=(ge, gs), info=info)
    if workdir is not None:
        write_metrics(workdir, "pretrain", history)
        emulator.save(f"{workdir}/emulator")
    return emulator
