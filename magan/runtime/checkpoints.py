"""Checkpoint and resume long runs with orbax-checkpoint.

A :class:`RunCheckpoints` keeps the last ``keep`` checkpoints of one training stage in
``WORKDIR/checkpoints/STAGE/STEP/``: the training state (a pytree of arrays: networks, optimiser
states, EMA, step counter) and a JSON record (the run's settings, the metric history so far, the
host random generator's state). Orbax writes each step into a temporary folder and renames it
when complete, so a run killed at any moment leaves only whole checkpoints behind.

Restarting the same command finds the latest checkpoint and resumes from it; because every random
draw of a step is derived from the seed and the step number (and the host generator's state is
restored), the resumed run ends in the same state as an uninterrupted one on the same machine.
A checkpoint written with other settings is never resumed silently: the error says which setting
differs and what to do.
"""

from __future__ import annotations

import json
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp

__all__ = ["RunCheckpoints"]


def _jsonable(obj):
    return json.loads(json.dumps(obj, default=lambda o: o.tolist() if hasattr(o, "tolist")
                                 else str(o)))


class RunCheckpoints:
    """The checkpoints of one stage (e.g. ``"pretrain"``) of a run in ``workdir``.

    Args:
      workdir: the run folder.
      stage: sub-folder name under ``workdir/checkpoints``.
      settings: everything that must match for a resume (config, seed, spaces ...), JSON-able.
      keep: how many recent checkpoints to keep.
    """

    def __init__(self, workdir, stage: str, settings: dict, *, keep: int = 2):
        self.directory = (Path(workdir) / "checkpoints" / stage).absolute()
        self.settings = _jsonable(settings)
        self.manager = ocp.CheckpointManager(
            self.directory,
            options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True,
                                                 enable_async_checkpointing=False,
                                                 cleanup_tmp_directories=True),
        )

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def save(self, step: int, state, record: dict) -> None:
        """Write checkpoint ``step`` (blocking; the state is copied to the host first)."""
        self.manager.save(step, args=ocp.args.Composite(
            state=ocp.args.StandardSave(state),
            record=ocp.args.JsonSave(_jsonable({"settings": self.settings, **record}))))
        self.manager.wait_until_finished()

    def restore(self, like) -> tuple[int, object, dict] | None:
        """The latest checkpoint as ``(step, state, record)``, arrays placed like ``like``; None
        when there is none. Raises ValueError when its settings differ or it cannot be read."""
        step = self.latest_step()
        if step is None:
            return None
        where = self.directory / str(step)
        try:
            record = self.manager.restore(step, args=ocp.args.Composite(
                record=ocp.args.JsonRestore()))["record"]
        except Exception as err:  # noqa: BLE001 - any reader error means an unusable checkpoint
            raise ValueError(f"The checkpoint {where} cannot be read ({type(err).__name__}: "
                             f"{str(err).splitlines()[0][:200]}). Delete that folder to resume "
                             "from an earlier checkpoint, or the whole checkpoints folder to "
                             "start afresh.") from None
        old = record.get("settings", {})
        if old != self.settings:
            diff = sorted(k for k in set(old) | set(self.settings)
                          if old.get(k) != self.settings.get(k))
            detail = []
            for k in diff:
                a, b = old.get(k), self.settings.get(k)
                if isinstance(a, dict) and isinstance(b, dict):
                    sub = sorted(j for j in set(a) | set(b) if a.get(j) != b.get(j))
                    detail += [f"{k}.{j}: {a.get(j)!r} -> {b.get(j)!r}" for j in sub]
                else:
                    detail.append(f"{k}: {a!r} -> {b!r}")
            raise ValueError(f"{self.directory} holds a checkpoint (step {step}) of a run with "
                             f"other settings ({'; '.join(detail)}). Rerun with the same settings "
                             "to resume it, or use another output folder (or delete "
                             f"{self.directory}) to start a new run.")
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
        try:
            state = self.manager.restore(step, args=ocp.args.Composite(
                state=ocp.args.StandardRestore(abstract)))["state"]
        except Exception as err:  # noqa: BLE001
            raise ValueError(f"The checkpoint {where} does not match this run's networks or is "
                             f"corrupted ({type(err).__name__}: {str(err).splitlines()[0][:200]}). "
                             "Delete it to resume from an earlier one, or start afresh.") from None
        return step, state, record

    def close(self) -> None:
        self.manager.close()


def rng_state(rng: np.random.Generator) -> dict:
    """The JSON-able state of a NumPy generator (PCG64 and friends)."""
    return _jsonable(rng.bit_generator.state)


def set_rng_state(rng: np.random.Generator, state: dict) -> None:
    rng.bit_generator.state = state
