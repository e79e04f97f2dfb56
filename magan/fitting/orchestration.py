"""Stage 2, fitting: parameters whose emulated images match the target images.

With the emulator E frozen, a parameter generator G (noise -> parameters) and a discriminator D play
on the targets: D tells target images from E(G(z)); G moves its parameters until D cannot. The
distribution of G's outputs is the fitted parameter set.

Several (G, D) pairs ("replicas") train side by side in one vmapped step, each on its own bootstrap
resample of the targets. The spread of their outputs is the fit's uncertainty: for targets that all
come from one parameter point, a perfect G collapses to a point, and the replica-to-replica scatter
is what measures how well the finite target set pins that point down.

G starts where S's auxiliary regression head (trained on simulations during pre-training) places
the targets (``init="regressor"``), or at the centre of the box (``init="center"``).

With high-level features (``fit(..., features=f)`` and ``FitConfig.feature_weight > 0``) G's loss
also has a feature-matching term (Salimans et al. 2016, here on physical features rather than D's):
the energy distance between the standardised features of G's emulated batch and of the target
batch, made at the same per-event conditions. D judges whole images, where a batch of 32 carries
little information on a parameter that moves the showers by less than their own fluctuations; the
energy distance looks at exactly the quantities that parameter moves and, being a proper distance
between distributions, is zero only when G's images match the targets' in distribution, so G's
outputs contract onto the parameters instead of wandering with D.
"""

from __future__ import annotations

import dataclasses
import functools
import time
import warnings
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from magan.runtime.compile import jit_once
from magan.config import FitConfig
from magan.emulator import Emulator, check_images
from magan.nn.build import emulate
from magan.runtime.io import write_metrics, atomic_write_json
from magan.nn.models import Discriminator, ParameterGenerator
from magan.runtime.progress import format_metrics, progress_bar

__all__ = ["fit", "FitResult"]



def _warn_outside(space, mean, raw_mean, tolerance: float = 0.05) -> None:
    """Warn when the (bias-corrected) mean lies outside the box by more than ``tolerance`` of a
    range: the correction carried the bias of a fit that ran to a bound, or the fit failed."""
    over = np.maximum(space.low - mean, mean - space.high) / space.width
    for name, o, m, r, lo, hi in zip(space.names, over, mean, raw_mean, space.low, space.high):
        if o > tolerance:
            warnings.warn(f"The fitted {name} = {m:.6g} lies outside its range [{lo:g}, {hi:g}] "
                          f"by {100 * o:.1f} % of the range (before bias correction: {r:.6g}). "
                          "A fit that ends there has failed (the emulator or the fit), not found "
                          "a value outside the box: check the closure against the simulator, "
                          "or widen the range and pre-train the emulator over it.", stacklevel=3)


@dataclass
class FitResult:
    """The outcome of :func:`fit`. Parameters are in physical units.

    Attributes:
      names: parameter names, length P.
      samples: (K, P) draws of the fitted parameters (all target replicas pooled; shifted by
        ``-bias`` when bias-corrected, so they may step slightly outside the bounds).
      mean: (P,) mean of ``samples``.
      std: (P,) the fit's statistical uncertainty: the spread of ``samples``, plus (in
        quadrature) that of the bias-correction replicas. It does not contain the emulator's
        remaining systematic error; on the line study the true error is up to 2-5 std
        (studies/line/README.md).
      replica_means: (R, P) mean of each replica's outputs.
      start: (P,) where G started (S's regression estimate or the box centre).
      raw_mean: (P,) mean of G's outputs on the targets before bias correction.
      bias: (P,) the fit's bias measured on a reference set simulated at ``reference_at``
        (``None`` when no simulator was given); ``mean = raw_mean - bias``.
      reference_at: (P,) where the reference set was simulated: ``start``
        (``FitConfig.bias_reference = "start"``) or the uncorrected fit, clipped to the box
        (``"fit"``); ``None`` without bias correction.
      history: metric rows over steps.
      reference_history: the reference fit's metric rows (``bias_reference = "fit"``), else [].
      timing: seconds spent.
    """

    names: tuple[str, ...]
    samples: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    replica_means: np.ndarray
    start: np.ndarray
    raw_mean: np.ndarray | None = None
    bias: np.ndarray | None = None
    reference_at: np.ndarray | None = None
    history: list[dict] = field(default_factory=list)
    reference_history: list[dict] = field(default_factory=list)
    timing: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON-ready summary (no per-sample arrays beyond the replica means)."""
        return {
            "names": list(self.names),
            "mean": {n: float(v) for n, v in zip(self.names, self.mean)},
            "std": {n: float(v) for n, v in zip(self.names, self.std)},
            "start": {n: float(v) for n, v in zip(self.names, self.start)},
            "raw_mean": None if self.raw_mean is None else
            {n: float(v) for n, v in zip(self.names, self.raw_mean)},
            "bias": None if self.bias is None else
            {n: float(v) for n, v in zip(self.names, self.bias)},
            "reference_at": None if self.reference_at is None else
            {n: float(v) for n, v in zip(self.names, self.reference_at)},
            "replica_means": self.replica_means.tolist(),
            "n_samples": int(self.samples.shape[0]),
            "timing": self.timing,
            "config": self.config,
        }

    def __repr__(self) -> str:
        body = ", ".join(f"{n}={m:.4g}+-{s:.2g}" for n, m, s in zip(self.names, self.mean, self.std))
        return f"FitResult({body})"


def _build(param_dim, image_shape, cfg: FitConfig, init_unit, key, cond_dim=0, split=True):
    rngs = nnx.Rngs(key)
    g = ParameterGenerator(param_dim, noise_len=cfg.noise_len, width=cfg.generator_width,
                           init_unit=init_unit, init_scale=cfg.init_scale, rngs=rngs)
    d = Discriminator(image_shape, width=cfg.discriminator_width, features=cfg.features,
                      cond_dim=cond_dim, rngs=rngs)
    if not split:
        return g, d
    return nnx.split(g, nnx.Param), nnx.split(d, nnx.Param)


def discriminator_loss(params_d, graphdef_d, real, fake, r1_gamma, do_r1, cond=None):
    """Non-saturating GAN loss of D with a (lazy) R1 penalty on the real images; ``cond`` (B, K)
    unit-cube conditions shared by the real and fake batches, or None."""
    def logits(p, x):
        return nnx.merge(graphdef_d, p)(x, cond)

    lr, lf = logits(params_d, real), logits(params_d, fake)
    adv = jax.nn.softplus(-lr).mean() + jax.nn.softplus(lf).mean()

    def r1_penalty():
        g = jax.grad(lambda x: logits(params_d, x).sum())(real)
        return jnp.mean(jnp.sum(g ** 2, axis=(1, 2, 3)))

    if isinstance(do_r1, bool):  # fixed at trace time (fast on CPU, see siamese_loss)
        r1 = r1_penalty() if do_r1 else jnp.zeros((), real.dtype)
    else:
        r1 = jax.lax.cond(do_r1, r1_penalty, lambda: jnp.zeros((), real.dtype))
    return adv + 0.5 * r1_gamma * r1, {"loss_d": adv, "r1": r1}


def feature_energy_distance(f_fake, f_real, u, cond_scale):
    """Energy distance ``2 E|a - b| - E|a - a'| - E|b - b'|`` between two batches of standardised
    features (B, F), every pair included. ``u`` (B, K) are the rows' unit-cube conditions (shared
    by the two batches, K may be 0), appended to both with weight ``cond_scale``: pairs at distant
    conditions are then far apart whatever their features, and the distance compares events at
    alike conditions. Zero in expectation only when the two distributions agree."""
    a = jnp.concatenate([f_fake, cond_scale * u], axis=1)
    b = jnp.concatenate([f_real, cond_scale * u], axis=1)

    def mean_norm(x, y):
        d2 = jnp.sum((x[:, None, :] - y[None, :, :]) ** 2, axis=-1)
        return jnp.mean(jnp.sqrt(d2 + 1e-6))

    return 2.0 * mean_norm(a, b) - mean_norm(a, a) - mean_norm(b, b)


def feature_scales(values, cond_unit):
    """Per-feature centre and scale (F,) of the targets' features ``values`` (N, F): the mean and
    the standard deviation left after a quadratic fit in each unit-cube condition (N, K), so a
    feature that follows the beam energy is measured against its event-to-event spread, not against
    its spread over the energies. Raises on non-finite features."""
    v = np.asarray(values, np.float64)
    if v.ndim != 2 or not np.isfinite(v).all():
        raise ValueError(f"features(images, conditions) must return finite values of shape (N, F) "
                         f"for the targets; got shape {v.shape} (finite: {np.isfinite(v).all()}).")
    u = np.asarray(cond_unit, np.float64)
    design = np.concatenate([np.ones((len(v), 1)), u, u ** 2], axis=1)
    coef, *_ = np.linalg.lstsq(design, v, rcond=None)
    resid = v - design @ coef
    dof = max(len(v) - design.shape[1], 1)
    sd = np.sqrt(np.sum(resid ** 2, axis=0) / dof)
    sd = np.maximum(sd, 1e-3 * v.std(axis=0) + 1e-12)
    return v.mean(axis=0).astype(np.float32), sd.astype(np.float32)


def _optimisers(cfg: FitConfig):
    """G's and D's Adam, built from the same settings for the initial state and the step."""
    return (optax.adam(cfg.lr_generator, b1=cfg.beta1, b2=cfg.beta2),
            optax.adam(cfg.lr_discriminator, b1=cfg.beta1, b2=cfg.beta2))


@functools.lru_cache(maxsize=16)
def _init_program(p: int, net_shape, cfg: FitConfig, k_cond: int):
    """Jitted ``(keys (R,), start_unit (P,)) -> (G params, D params)`` with a leading replica
    axis: one compiled program, cached (op by op, every initialiser would compile on its own)."""
    def init_replica(k, start_unit):
        (_, pg), (_, pd) = _build(p, net_shape, cfg, start_unit, k, k_cond)
        return pg, pd

    return jit_once(jax.vmap(init_replica, in_axes=(0, None)))


def averaging_start(cfg: FitConfig) -> int:
    """The first step (0-based) whose G enters the averaged G the result is drawn from."""
    return min(cfg.steps - 1, int(round(cfg.steps * (1.0 - cfg.average_last))))


@functools.lru_cache(maxsize=16)
def _fit_step(cfg: FitConfig, gg, gd, ge, n_rep: int, k_cond: int, do_r1: bool,
              features=None, transform=None):
    """The jitted fit step for one configuration and set of network structures, with or without
    D's lazy R1 penalty (two programs: XLA:CPU runs a ``lax.cond`` branch's convolutions slowly).

    ``step(state, key, targets, cond, boot, params_e, fdata) -> (state, metrics)``: the data
    (targets (M, H, W, C) in network space, their unit-cube conditions (M, K), the bootstrap rows
    (n_rep, N)), E's parameters and the feature data (``None`` without features, else the
    physical conditions (M, K), the features' centre and scale (F,)) are arguments, not constants
    baked into the program, so one compiled step serves every fit with the same settings and
    shapes. ``features(images, conditions)`` (physical units, jax.numpy) and the emulator's
    ``transform`` turn network-space images into features.
    """
    b = cfg.batch_size
    avg_from = averaging_start(cfg)
    use_features = features is not None and cfg.feature_weight > 0

    def std_features(x_net, fdata, rows):
        c = fdata["cond_phys"][rows] if k_cond else None
        f = features(transform.inverse(x_net, c, xp=jnp), c)
        return (f - fdata["mu"]) / fdata["sd"]

    def generate(params_g, params_e, c, k):
        """G's parameters (B, P) and E's images at them and at the batch's conditions c (B, K)."""
        kz, ke = jax.random.split(k)
        z = jax.random.normal(kz, (b, cfg.noise_len))
        unit = nnx.merge(gg, params_g)(z)
        return unit, emulate(ge, params_e, jnp.concatenate([unit, c], axis=1), ke)

    def replica_step(params_g, params_d, opt_g, opt_d, boot_idx, do_r1, k, targets, cond,
                     params_e, fdata):
        tx_g, tx_d = _optimisers(cfg)
        k_idx, k_d, k_g = jax.random.split(k, 3)
        rows = boot_idx[jax.random.randint(k_idx, (b,), 0, boot_idx.shape[0])]
        real, c = targets[rows], cond[rows]
        c_d = c if k_cond else None
        unit, fake = generate(params_g, params_e, c, k_d)
        (_, m_d), grads = jax.value_and_grad(discriminator_loss, has_aux=True)(
            params_d, gd, real, jax.lax.stop_gradient(fake), cfg.r1_gamma * cfg.r1_every, do_r1, c_d)
        upd, opt_d = tx_d.update(grads, opt_d, params_d)
        params_d = optax.apply_updates(params_d, upd)

        f_real = std_features(real, fdata, rows) if use_features else None

        def g_loss(pg_):
            u, f = generate(pg_, params_e, c, k_g)
            adv = jax.nn.softplus(-nnx.merge(gd, params_d)(f, c_d)).mean()
            if not use_features:
                return adv, (u, adv, jnp.zeros(()))
            # conditions weigh 3 feature standard deviations per unit of their range
            dist = feature_energy_distance(std_features(f, fdata, rows), f_real, c, 3.0)
            return adv + cfg.feature_weight * dist, (u, adv, dist)

        (_, (u, loss_g, dist)), grads = jax.value_and_grad(g_loss, has_aux=True)(params_g)
        upd, opt_g = tx_g.update(grads, opt_g, params_g)
        params_g = optax.apply_updates(params_g, upd)
        return params_g, params_d, opt_g, opt_d, {**m_d, "loss_g": loss_g,
                                                  "feature_distance": dist,
                                                  "unit_mean": u.mean(axis=0)}

    def step(state, k, targets, cond, boot, params_e, fdata):
        keys = jax.random.split(k, n_rep)
        # Replicas are unrolled inside one jitted step. Neither vmap (it turns per-replica
        # convolution weights into grouped convolutions) nor lax.map (a loop XLA:CPU runs
        # without its fast convolution paths) is fast on CPU; measured in studies/line/README.md.
        outs = []
        for r in range(n_rep):
            pick = lambda tree: jax.tree.map(lambda a: a[r], tree)  # noqa: E731
            outs.append(replica_step(pick(state["g"]), pick(state["d"]), pick(state["opt_g"]),
                                     pick(state["opt_d"]), boot[r], do_r1, keys[r], targets,
                                     cond, params_e, fdata))
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


def fit(emulator: Emulator, target_images, config: FitConfig | None = None, *, seed: int = 0,
        target_conditions=None, simulator=None, features=None, workdir=None,
        progress: bool | None = None) -> FitResult:
    """Fit the simulator parameters to ``target_images`` through a frozen emulator.

    Args:
      emulator: a trained :class:`~magan.Emulator`.
      target_images: (N, H, W, C) (or (N, H, W) for one channel), the observed images in the
        simulator's physical units, finite.
      target_conditions: (N, K) per-event conditions of the targets (for instance each event's
        beam energy), required when the emulator has a ConditionSpace. The emulated images that D
        compares with a batch of targets are made at the same conditions, so the fit is
        conditional on them; only the parameters are fitted.
      config: a :class:`~magan.FitConfig`; ``None`` means the ``default`` preset.
      seed: the same seed gives the same result on the same machine.
      simulator: the black-box simulator, optional. When given (and ``config.bias_correction``),
        the fit also runs on a reference set that the simulator makes at a known point (the
        starting point, or with ``config.bias_reference = "fit"`` the uncorrected fit); the
        fit's error there estimates the bias that the emulator's imperfections put into the fit,
        and it is subtracted (parametric-bootstrap bias correction). Its spread is added to the
        reported uncertainty.
      features: optional ``features(images, conditions) -> (B, F)`` written with ``jax.numpy``
        (physical images, physical conditions or ``None``), high-level features such as the
        ones pre-training used. With ``config.feature_weight > 0`` G's loss adds the energy
        distance between the features of its emulated batch and of the target batch, each
        feature in units of the targets' event-to-event spread (module docstring). Pass a
        module-level function: the compiled step is cached per function.
      workdir: if given, ``fit_metrics.csv`` and ``fit.json`` are written there.
      progress: show a progress bar (``None``: unless MAGAN_QUIET is set).
    Returns:
      A :class:`FitResult` in physical units.
    """
    cfg = config or FitConfig()
    if not isinstance(cfg, FitConfig):
        raise TypeError(f"config must be a FitConfig, got {type(cfg).__name__}.")
    if not isinstance(emulator, Emulator):
        raise TypeError(f"emulator must be a magan.Emulator, got {type(emulator).__name__}; "
                        "load one with magan.load_emulator(path).")
    targets = check_images(target_images, emulator.image_shape, "target_images")
    space, n_targets, p = emulator.space, targets.shape[0], emulator.space.dim
    k_cond = emulator.cond_dim
    if k_cond:
        if target_conditions is None:
            raise ValueError(f"This emulator is conditioned on {list(emulator.conditions.names)}; "
                             f"pass target_conditions of shape ({n_targets}, {k_cond}).")
        cond = emulator.conditions.check(target_conditions, what="target_conditions")
        if cond.shape[0] != n_targets:
            raise ValueError(f"target_conditions has {cond.shape[0]} rows for {n_targets} target "
                             "images; give one row per image.")
    elif target_conditions is not None:
        raise ValueError("This emulator was trained without per-event conditions; do not pass "
                         "target_conditions.")
    else:
        cond = None
    if cfg.feature_weight > 0 and features is None:
        raise ValueError(f"FitConfig.feature_weight = {cfg.feature_weight} needs the features: "
                         "pass fit(..., features=f) with f(images, conditions) -> (N, F), or set "
                         "feature_weight=0.")
    if features is not None and not callable(features):
        raise TypeError(f"features must be a function f(images, conditions) -> (N, F), got "
                        f"{type(features).__name__}.")
    t0 = time.perf_counter()
    use_features = features is not None and cfg.feature_weight > 0
    net_shape = emulator.network_shape

    def start_of(images):
        """G's starting point (P,) in the unit cube for a set of images at the targets' conditions."""
        if cfg.init != "regressor":
            return np.full(p, 0.5, np.float32)
        est = np.clip(emulator.estimate(images, cond), space.low, space.high)
        return np.clip(space.to_unit(est).mean(axis=0), 0.02, 0.98).astype(np.float32)

    def simulate_reference(at):
        ref = simulator.simulate(np.random.default_rng([seed, 7]), np.tile(at, (n_targets, 1)),
                                 space, conditions=cond)
        return check_images(ref, emulator.image_shape, "reference")

    def train(sets, start_unit, key, label):
        """Fit ``cfg.replicas`` (G, D) pairs to each image set in ``sets`` (each (N, H, W, C),
        physical, at the targets' conditions), all starting at ``start_unit``. Returns G's draws
        in the unit cube (len(sets) * R, S, P), the metric history of the first set and the
        loop's seconds."""
        n_sets = len(sets)
        n_rep = cfg.replicas * n_sets
        data_cond = None if cond is None else np.concatenate([cond] * n_sets)
        data = emulator.to_network(np.concatenate(sets), data_cond)
        # per row: unit-cube conditions for E and D (K columns, possibly 0)
        data_cond_unit = (np.zeros((data.shape[0], 0), np.float32) if cond is None
                          else emulator.conditions.to_unit(data_cond).astype(np.float32))
        k_init, k_boot, k_train, k_out = jax.random.split(key, 4)
        g_abs, d_abs = nnx.eval_shape(
            lambda: _build(p, net_shape, cfg, start_unit, jax.random.key(0), k_cond, split=False))
        gg, gd = nnx.split(g_abs, nnx.Param)[0], nnx.split(d_abs, nnx.Param)[0]
        pg, pd = _init_program(p, net_shape, cfg, k_cond)(jax.random.split(k_init, n_rep),
                                                           jnp.asarray(start_unit))
        tx_g, tx_d = _optimisers(cfg)
        state = {"g": pg, "d": pd, "opt_g": jax.vmap(tx_g.init)(pg),
                 "opt_d": jax.vmap(tx_d.init)(pd), "g_avg": jax.tree.map(jnp.copy, pg),
                 "step": jnp.zeros((), jnp.int32)}
        # replicas [s R, (s + 1) R) fit set s (its rows offset by s N)
        if cfg.bootstrap:
            boot = jax.random.randint(k_boot, (n_rep, n_targets), 0, n_targets)
        else:
            boot = jnp.tile(jnp.arange(n_targets), (n_rep, 1))
        boot = boot + n_targets * (jnp.arange(n_rep) // cfg.replicas)[:, None]
        data_dev = jnp.asarray(data)
        cond_dev = jnp.asarray(data_cond_unit)
        fdata = None
        if use_features:
            # feature centre and scales from the first set (the targets, or the reference set
            # of a fit-point bias correction: the reference fit repeats the procedure)
            cond_phys = (jnp.zeros((data.shape[0], 0), jnp.float32) if cond is None
                         else jnp.asarray(data_cond, jnp.float32))
            first_cond = None if cond is None else cond_phys[:n_targets]
            phys = emulator.transform.inverse(data_dev[:n_targets], first_cond, xp=jnp)
            mu, sd = feature_scales(features(phys, first_cond), data_cond_unit[:n_targets])
            fdata = {"mu": jnp.asarray(mu), "sd": jnp.asarray(sd), "cond_phys": cond_phys}
        jsteps = [_fit_step(cfg, gg, gd, emulator.graphdef_e, n_rep, k_cond, r1,
                            features if use_features else None,
                            emulator.transform if use_features else None)
                  for r1 in (False, True)]
        pe = emulator.params_e
        history, pending = [], []
        bar = progress_bar(cfg.steps, label, progress)
        t_loop = time.perf_counter()
        try:
            for i in range(cfg.steps):
                state, m = jsteps[i % cfg.r1_every == 0](state, jax.random.fold_in(k_train, i),
                                                      data_dev, cond_dev, boot, pe, fdata)
                pending.append(m)
                if (i + 1) % cfg.log_every == 0 or i + 1 == cfg.steps:
                    host = jax.device_get(pending)
                    row = {"step": i + 1}
                    for name in ("loss_d", "loss_g", "r1") + (("feature_distance",)
                                                              if use_features else ()):
                        row[name] = float(np.mean([h[name] for h in host]))
                    if not np.isfinite([row["loss_d"], row["loss_g"]]).all():
                        raise FloatingPointError(
                            f"Non-finite fit loss at step {i + 1}: {row}. Lower lr_generator / "
                            "lr_discriminator or raise r1_gamma.")
                    phys = space.from_unit(np.mean(host[-1]["unit_mean"][:cfg.replicas], axis=0))
                    row.update({f"mean_{n}": float(v) for n, v in zip(space.names, phys)})
                    history.append(row)
                    pending = []
                    bar.set_postfix(format_metrics({k_: row[k_] for k_ in
                                                    ("loss_d", "loss_g", "feature_distance")
                                                    if k_ in row}), refresh=False)
                    bar.update(len(host))
        finally:
            bar.close()
        loop_s = time.perf_counter() - t_loop

        def draw(params_g, k):
            z = jax.random.normal(k, (cfg.samples_per_replica, cfg.noise_len))
            return nnx.merge(gg, params_g)(z)

        out_keys = jax.random.split(k_out, n_rep)
        unit = np.stack([np.asarray(draw(jax.tree.map(lambda a: a[r], state["g_avg"]),
                                         out_keys[r])) for r in range(n_rep)])
        return unit, history, loop_s

    start_unit = start_of(targets)
    start = space.from_unit(start_unit.astype(np.float64))
    correct = simulator is not None and cfg.bias_correction
    key = jax.random.key(seed)
    ref_history, ref_at = [], None
    if correct and cfg.bias_reference == "start":
        # one pass: the reference set, simulated at the start, is fitted beside the targets
        ref_at = start
        unit, history, loop_s = train([targets, simulate_reference(start)], start_unit, key,
                                      "fitting")
        raw, ref_unit = unit[:cfg.replicas], unit[cfg.replicas:]
    else:
        unit, history, loop_s = train([targets], start_unit, key, "fitting")
        raw, ref_unit = unit, None
    replica_means = space.from_unit(raw.mean(axis=1))
    raw = space.from_unit(raw.reshape(-1, p))
    if correct and cfg.bias_reference == "fit":
        # a second pass on a reference set simulated where the first one landed (the parametric
        # bootstrap): the same procedure, started where S places the reference set
        ref_at = np.clip(raw.mean(axis=0), space.low, space.high)
        ref = simulate_reference(ref_at)
        ref_unit, ref_history, ref_s = train([ref], start_of(ref), jax.random.fold_in(key, 1),
                                             "reference fit")
        loop_s += ref_s
    bias = None
    samples, std = raw, raw.std(axis=0)
    if correct:
        ref_samples = space.from_unit(ref_unit.reshape(-1, p))
        bias = ref_samples.mean(axis=0) - ref_at
        samples = raw - bias
        std = np.sqrt(raw.var(axis=0) + ref_samples.var(axis=0))
    _warn_outside(space, samples.mean(axis=0), raw.mean(axis=0))
    result = FitResult(
        names=space.names, samples=samples, mean=samples.mean(axis=0), std=std,
        replica_means=replica_means, start=start,
        raw_mean=raw.mean(axis=0), bias=bias, reference_at=ref_at,
        history=history, reference_history=ref_history,
        timing={"total_s": time.perf_counter() - t0, "loop_s": loop_s,
                "steps_per_s": cfg.steps * (2 if ref_history else 1) / loop_s},
        config=dataclasses.asdict(cfg))
    if workdir is not None:
        write_metrics(workdir, "fit", history)
        if ref_history:
            write_metrics(workdir, "fit_reference", ref_history)
        atomic_write_json(f"{workdir}/fit.json", result.to_dict())
    return result
