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
(:class:`~magan.pretraining.feeding.SimulationFeeder`) so the device trains while the next batches
are simulated.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import warnings
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from magan.config import PretrainConfig
from magan.emulator import Emulator
from magan.fitting.diagnostics import training_image_ranges
from magan.losses import EmulatorGraphs, PairBatch
from magan.nn.build import build_emulator_nets
from magan.pretraining.features import (
    THRESHOLD_SCORES,
    calibration_batch,
    standardised_features,
    structure_bands,
)
from magan.pretraining.feeding import SimulationFeeder, draw_training_batch
from magan.pretraining.state import init_state, network_sizes, optimisers
from magan.pretraining.step import (
    host_batches_program,
    make_step,
    r1_pattern,
    traced_batches_program,
)
from magan.runtime.cache import use_compilation_cache
from magan.runtime.checkpoints import RunCheckpoints
from magan.runtime.io import write_metrics
from magan.runtime.loop import run_loop
from magan.runtime.metrics import Watch
from magan.runtime.parallel import data_mesh, replicate, shard_batch, to_local
from magan.runtime.progress import phase
from magan.runtime.rundir import folder_lock, output_folder
from magan.simulators.base import Simulator, SimulatorError
from magan.space import ParameterSpace
from magan.transforms import IdentityTransform, ImageTransform

__all__ = ["train_emulator"]


def train_emulator(simulator: Simulator, space: ParameterSpace,
                   config: PretrainConfig | None = None,
                   *, seed: int = 0, workdir=None, progress: bool | None = None,
                   transform: ImageTransform | None = None, features=None,
                   devices=None, callbacks=None, tensorboard=None) -> Emulator:
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
        distribution at every point, not only their mean; with
        ``config.feature_marginal_weight > 0`` on each feature's 1-D energy score. Required
        when either weight is > 0 (a ValueError otherwise), ignored when both are 0.
      workdir: if given, the emulator is saved to ``workdir/emulator`` at the end and the metrics to
        ``workdir/pretrain_metrics.csv``, a row appended and flushed every ``log_every`` steps
        (readable while the run goes). It is created and checked to take files before any
        work, and locked (``workdir/.magan.lock``) for the run: a second run into it fails at once.
      callbacks: a function ``f(stage, row)`` or a list of them, called with ``"pretrain"`` and
        each metric row (``{"step": steps done, name: mean since the last row}``) as it comes.
      tensorboard: a folder for TensorBoard event files (scalars ``pretrain/NAME``); needs the
        optional ``tensorboardX`` (``pip install 'magan[tensorboard]'``). See
        :mod:`magan.runtime.metrics`.
      progress: show a progress bar (``None``: unless MAGAN_QUIET is set).
      devices: the devices the batch is split over (data parallel, parameters replicated;
        default every device of every process, see :mod:`magan.runtime.parallel`). ``batch_size``
        must be a multiple of their number.
    Returns:
      The trained :class:`~magan.Emulator`; ``emulator.info["pretrain"]`` holds the metric history
      and timings (seconds): ``total_s``, ``first_step_s`` (compilation included),
      ``steps_per_s`` (after the first step) and, for a host simulator, ``simulate_s`` (time
      spent simulating, summed over the simulator threads), ``device_waited_for_simulator_s``
      (time the training loop waited for simulated batches) and ``device_wait_fraction`` (that
      wait over ``total_s``: 0 when the simulator kept ahead, near 1 when it set the pace).
    """

    use_compilation_cache()
    cfg, transform = _checked_inputs(simulator, space, config, transform, features)
    watch = Watch.of(workdir, callbacks, tensorboard)
    with _owned(workdir):  # checked to take files, and locked, before any work
        with phase("pre-training: building the networks", progress):
            feature_fn, descriptors = _standardised_scores(cfg, features, transform, simulator,
                                                           space, seed)
            run = _Run.start(cfg, simulator, space, transform, seed, devices)
            ckpt = _Checkpointing.open(workdir, run)
            start, history, feeder_start = ckpt.resume(run)
            step = make_step(cfg, run.graphs, run.txs, space.dim, feature_fn, descriptors)
        feeder = None if simulator.traceable else _feeder(run, feeder_start)
        ckpt.feeder = feeder
        try:
            with watch.stream("pretrain", history) as on_row:
                out = run_loop(_advance(run, step, feeder), run.state, total=cfg.steps,
                               start=start, per_call=cfg.steps_per_call,
                               sync_every=cfg.log_every, summarise=ckpt.summarise,
                               desc="pre-training", progress=progress, on_row=on_row,
                               on_sync=ckpt.on_sync, history=history)
        finally:
            if feeder is not None:
                feeder.close()
            ckpt.close()
            watch.close()
        with phase("pre-training: checking the training range, saving", progress):
            return _finish(run, out, start, feeder, workdir)


def _advance(run: _Run, step, feeder: SimulationFeeder | None):
    """The loop's ``advance(state, i, n)``: steps i .. i + n - 1 as one program (one per
    pattern of R1 steps, made when first needed), the batches drawn inside it (a JAX
    simulator) or taken from the background ``feeder`` (a host simulator)."""
    programs: dict[tuple[bool, ...], object] = {}

    def advance(state, i, n):
        pattern = r1_pattern(i, n, run.cfg.r1_every)
        if pattern not in programs:
            programs[pattern] = (traced_batches_program(step, pattern, _jax_batches(run))
                                 if feeder is None else host_batches_program(step, pattern))
        if feeder is None:
            return programs[pattern](state, run.key)
        batches = [feeder.next() for _ in range(n)]
        stacked = shard_batch([np.stack(a) for a in zip(*batches)], run.mesh, axis=1)
        return programs[pattern](state, run.key, *stacked)

    return advance


def _owned(workdir):
    """A context holding ``workdir`` for the run (None: nothing): created and checked to take
    files before any work, locked against a second run (re-entrant, so a study that holds its run
    folder may pre-train into it); see :mod:`magan.runtime.rundir`."""
    if workdir is None:
        return contextlib.nullcontext()
    return folder_lock(output_folder(workdir, "workdir"), "workdir")


@dataclass
class _Run:
    """What the parts of one pre-training run share: settings, networks, optimisers, devices,
    the initial (replicated) state and the run's key."""

    cfg: PretrainConfig
    simulator: Simulator
    space: ParameterSpace
    transform: ImageTransform
    seed: int
    net: dict
    graphs: EmulatorGraphs
    txs: tuple
    mesh: object
    state: dict
    key: jax.Array

    @classmethod
    def start(cls, cfg, simulator, space, transform, seed, devices) -> _Run:
        conditions = simulator.conditions
        mesh = data_mesh(devices)
        if cfg.batch_size % mesh.size:  # refused before the networks are built
            raise ValueError(f"PretrainConfig.batch_size = {cfg.batch_size} must be a multiple of "
                             f"the {mesh.size} devices it is split over; use e.g. "
                             f"{mesh.size * max(1, round(cfg.batch_size / mesh.size))}.")
        net = network_sizes(cfg)
        ge, pe, gs, ps = build_emulator_nets(
            space.dim, transform.network_shape(simulator.image_shape), net, seed,
            0 if conditions is None else conditions.dim)
        txs = optimisers(cfg)
        state = replicate(init_state(pe, ps, txs), mesh)
        return cls(cfg, simulator, space, transform, seed, net, EmulatorGraphs(ge, gs), txs, mesh,
                   state, jax.random.key(seed))

    def settings(self) -> dict:
        """What must match for a checkpoint of this run to be resumed."""
        conditions = self.simulator.conditions
        return {"config": dataclasses.asdict(self.cfg), "seed": self.seed,
                "simulator": self.simulator.name, "space": self.space.to_dict(),
                "conditions": None if conditions is None else conditions.to_dict(),
                "transform": self.transform.to_dict(), "devices": self.mesh.size}


def _standardised_scores(cfg: PretrainConfig, features, transform, simulator, space, seed):
    """The standardised functions of E's feature scores (or None) and of its descriptor scores
    (``{name: fn}``, weighted by ``cfg.<name>_weight``), calibrated on one batch of simulations."""
    use_features = features is not None and (cfg.feature_weight > 0
                                             or cfg.feature_marginal_weight > 0)
    wanted = {"structure": (structure_bands, False)} if cfg.structure_weight > 0 else {}
    for name, make in THRESHOLD_SCORES.items():
        if getattr(cfg, f"{name}_weight") > 0:
            wanted[name] = (make(transform), True)
    if not (use_features or wanted):
        return None, {}
    batch = calibration_batch(simulator, space, transform, seed)
    cond = simulator.conditions
    feature_fn = (standardised_features(features, transform, batch, cond) if use_features
                  else None)
    return feature_fn, {name: standardised_features(fn, transform, batch, cond, network_space=net)
                        for name, (fn, net) in wanted.items()}


def _checked_inputs(simulator, space, config, transform, features):
    """The config (default preset when None) and transform (identity when None), checked."""
    cfg = config or PretrainConfig()
    if not isinstance(cfg, PretrainConfig):
        raise TypeError(f"config must be a PretrainConfig, got {type(cfg).__name__}.")
    if not isinstance(simulator, Simulator):
        raise TypeError("simulator must be a magan.FunctionSimulator or magan.JaxSimulator, got "
                        f"{type(simulator).__name__}; wrap your function with one of them.")
    if not isinstance(space, ParameterSpace):
        raise TypeError(f"space must be a magan.ParameterSpace, got {type(space).__name__}.")
    transform = transform or IdentityTransform()
    if not isinstance(transform, ImageTransform):
        raise TypeError(f"transform must be a magan ImageTransform, got "
                        f"{type(transform).__name__}.")
    if simulator.traceable and cfg.on_nonfinite == "drop":
        raise ValueError(f"PretrainConfig.on_nonfinite='drop' cannot drop images of the "
                         f"JaxSimulator {simulator.name}: they are made inside the compiled step, "
                         "where there is no redrawing. Wrap the same function as a "
                         "magan.FunctionSimulator (host, NumPy) to drop its NaN/inf images, or "
                         "make it return finite values everywhere in the box.")
    weights = {k: getattr(cfg, k) for k in ("feature_weight", "feature_marginal_weight")
               if getattr(cfg, k) > 0}
    if weights and features is None:
        named = ", ".join(f"{k}={v:g}" for k, v in weights.items())
        raise ValueError(f"PretrainConfig has {named}, the weight of energy scores of high-level "
                         "features, but train_emulator got no features: pass "
                         "features=FN(images, conditions) -> (N, F) written with jax.numpy (a "
                         "built-in study's preset wants its own, e.g. "
                         "magan.studies.line.simulator.line_fit_features), or set "
                         f"{' and '.join(f'{k}=0' for k in weights)}.")
    for name, make in THRESHOLD_SCORES.items():
        if getattr(cfg, f"{name}_weight") > 0:
            make(transform)  # a transform without a readout threshold: a clear error now
    return cfg, transform


def _nonfinite_simulation(run: _Run, n: int = 256) -> str | None:
    """For a traceable simulator: simulate ``n`` points drawn over the box (and condition space)
    and return the first that gives a NaN/inf image, formatted, or None when all are finite."""
    sim, space = run.simulator, run.space
    rng = np.random.default_rng([run.seed, 99])
    params = space.sample(rng, n)
    cond = None if sim.conditions is None else sim.conditions.sample(rng, n)
    images = np.asarray(sim.simulate_jax(jax.random.key(run.seed), jnp.asarray(params, jnp.float32),
                                         None if cond is None else jnp.asarray(cond, jnp.float32)))
    bad = ~np.isfinite(images.reshape(n, -1)).all(axis=1)
    return space.format(params[np.argmax(bad)], 6) if bad.any() else None


def _feeder(run: _Run, start_batch: int) -> SimulationFeeder:
    """Background simulation of the host batches; each process simulates its own share of a
    batch from its own stream."""
    n_proc = jax.process_count()
    cfg = run.cfg
    return SimulationFeeder(run.simulator, run.space, cfg.batch_size // n_proc,
                            run.seed if n_proc == 1 else [run.seed, jax.process_index()],
                            prefetch=cfg.prefetch, transform=run.transform,
                            start_batch=start_batch, on_nonfinite=cfg.on_nonfinite,
                            workers=cfg.simulator_workers or min(4, os.cpu_count() or 1))


def _jax_batches(run: _Run):
    """``draw(k_unit, k_x1, k_x2) -> PairBatch`` of a JAX-traceable simulator, inside the
    program, the batch split over the devices."""
    cfg, space, transform = run.cfg, run.space, run.transform
    conditions = run.simulator.conditions
    k_cond = 0 if conditions is None else conditions.dim
    data = NamedSharding(run.mesh, PartitionSpec("data"))

    def draw(ku, k1, k2):
        unit = jax.random.uniform(ku, (cfg.batch_size, space.dim + k_cond))
        params = space.from_unit_jax(unit[:, :space.dim])
        if conditions is None:
            cond = jnp.zeros((cfg.batch_size, 0), jnp.float32)
            c = None
        else:
            cond = c = conditions.from_unit_jax(unit[:, space.dim:])
        x1 = transform.forward(run.simulator.simulate_jax(k1, params, c), c, xp=jnp)
        x2 = transform.forward(run.simulator.simulate_jax(k2, params, c), c, xp=jnp)
        return PairBatch(*(jax.lax.with_sharding_constraint(a, data)
                           for a in (unit, cond, x1, x2)))

    return draw


class _Checkpointing:
    """The loop's hooks: metric rows, the non-finite check, and a checkpoint at the first sync at
    or after every ``checkpoint_every`` steps and at the end (when the run has a workdir)."""

    def __init__(self, cfg: PretrainConfig, ckpt: RunCheckpoints | None, run=None):
        self.cfg, self.ckpt, self.feeder, self.run = cfg, ckpt, None, run
        self.last_good: int | None = None

    @classmethod
    def open(cls, workdir, run: _Run) -> _Checkpointing:
        if workdir is None or run.cfg.checkpoint_every <= 0:
            return cls(run.cfg, None, run)
        return cls(run.cfg, RunCheckpoints(workdir, "pretrain", run.settings()), run)

    def resume(self, run: _Run) -> tuple[int, list, int]:
        """``(first step, history so far, next feeder batch)``; ``run.state`` is replaced by the
        latest checkpoint's when there is one."""
        found = None if self.ckpt is None else self.ckpt.restore(run.state)
        if found is None:
            return 0, [], 0
        start, run.state, record = found
        self.last_good = start if start else None
        return start, record["history"], record.get("feeder_next_batch", 0)

    def summarise(self, host, done, state) -> dict:
        mean = {k: float(np.mean(np.concatenate([m[k] for m in host]))) for k in host[0]}
        if not all(np.isfinite(v) for v in mean.values()):
            bad_at = (_nonfinite_simulation(self.run) if self.run is not None
                      and self.run.simulator.traceable else None)
            if bad_at is not None:
                raise SimulatorError(
                    f"The JaxSimulator {self.run.simulator.name} returns NaN or inf images (for "
                    f"instance at {bad_at}), which made the pre-training loss non-finite at step "
                    f"{done}. Make it return finite values everywhere in the box (or narrow "
                    "the box); a host FunctionSimulator may also drop such images "
                    "(PretrainConfig.on_nonfinite='drop').")
            kept = (f" The last good checkpoint (step {self.last_good}) is kept in "
                    f"{self.ckpt.directory}; rerunning resumes from it." if self.last_good else "")
            raise FloatingPointError(
                f"Non-finite pre-training loss at step {done}: {mean}. Lower the learning "
                "rates or raise r1_gamma; check the simulator's output scale." + kept)
        return mean

    def on_sync(self, done, state, history) -> None:
        every = self.cfg.checkpoint_every
        if self.ckpt is not None and (done // every > (self.last_good or 0) // every
                                      or done == self.cfg.steps):
            self.ckpt.save(done, state, {"history": history, "feeder_next_batch": 0 if
                                         self.feeder is None else self.feeder.next_batch})
            self.last_good = done

    def close(self) -> None:
        if self.ckpt is not None:
            self.ckpt.close()


def _training_ranges(run: _Run, emulator: Emulator, n: int = 128) -> dict | None:
    """The range of per-image pixel statistics of simulations like the training ones (``n``
    points, two images each, in the networks' space, from a stream of their own), and of S's
    learned summaries of them (``"summaries": {"low": (P,), "high": (P,)}``), against which a fit
    checks that its targets are images the emulator knows; None if the simulator fails."""
    try:
        unit, _, x1, x2 = draw_training_batch(run.simulator, run.space,
                                              np.random.default_rng([run.seed, 98]), n,
                                              run.transform, run.cfg.on_nonfinite, [0])
    except SimulatorError as err:
        warnings.warn(f"The range of the training images was not recorded ({err}); fits through "
                      "this emulator cannot check that their targets lie in it.", stacklevel=4)
        return None
    images = np.concatenate([x1, x2])
    cond_unit = np.tile(np.asarray(unit, np.float32)[:, run.space.dim:], (2, 1))
    summaries = np.asarray(emulator._summaries_fn(emulator.params_s, jnp.asarray(images),
                                                  jnp.asarray(cond_unit) if cond_unit.shape[1]
                                                  else None))
    return {**training_image_ranges(images),
            "summaries": {"low": summaries.min(axis=0).tolist(),
                          "high": summaries.max(axis=0).tolist()}}


def _finish(run: _Run, out, start: int, feeder, workdir) -> Emulator:
    """The trained emulator (E's EMA and S), with the history and timings in its info; saved
    with the metrics into ``workdir`` when given."""
    cfg = run.cfg
    jax.block_until_ready(out.state)
    state = to_local(out.state)
    total = out.total_s
    first = out.first_call_s
    timing = {"total_s": total, "first_step_s": first, "resumed_from_step": start,
              "steps_per_s": (cfg.steps - start - 1) / max(total - (first or 0.0), 1e-9),
              "devices": run.mesh.size}
    if feeder is not None and feeder.dropped[0]:
        warnings.warn(f"{feeder.dropped[0]} simulations returned NaN or inf and were replaced by "
                      "draws at new points (PretrainConfig.on_nonfinite='drop'); regions of the "
                      "parameter space where the simulator fails are under-represented.",
                      stacklevel=3)
        timing["dropped_simulations"] = feeder.dropped[0]
    if feeder is not None:  # the wait's share of the run, in [0, 1]; wait / simulate_s is none
        # (simulate_s sums the threads, and the wait includes the hand-offs between threads)
        timing.update(simulate_s=feeder.sim_s, device_waited_for_simulator_s=feeder.wait_s,
                      device_wait_fraction=feeder.wait_s / max(total, 1e-9))
    info = {"simulator": run.simulator.name, "seed": run.seed, "config": dataclasses.asdict(cfg),
            "pretrain": {"timing": timing, "history": out.history}}
    emulator = Emulator(run.space, run.simulator.image_shape, run.net, state["ema"], state["s"],
                        graphdefs=tuple(run.graphs), info=info,
                        conditions=run.simulator.conditions, transform=run.transform)
    emulator.info["training_images"] = _training_ranges(run, emulator)
    if workdir is not None:
        write_metrics(workdir, "pretrain", out.history)
        emulator.save(f"{workdir}/emulator")
    return emulator
