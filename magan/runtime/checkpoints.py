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

Each checkpoint carries the SHA-256 of every file of it (``magan_sha256.json`` in the step folder),
checked before it is read: a damaged checkpoint (flipped bytes, a truncated file, a missing file)
is set aside into ``checkpoints/STAGE-damaged/`` with a warning and the run resumes from the latest
intact one; when none is intact the error names them and the fix.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp

from magan.runtime.io import MAYBE_FULL, ROOM_FIX, file_sha256, first_line

__all__ = ["RunCheckpoints"]

SUMS = "magan_sha256.json"


_KEPT = "The earlier checkpoints are kept: the same command resumes from the latest"


def file_sums(step_dir: Path) -> dict[str, str]:
    """SHA-256 of every file under ``step_dir`` (but the checksum file), by relative path."""
    return {str(f.relative_to(step_dir)): file_sha256(f) for f in sorted(step_dir.rglob("*"))
            if f.is_file() and f.name != SUMS}


def damage(step_dir: Path) -> str | None:
    """What is wrong with the checkpoint in ``step_dir`` (None when every file matches the
    checksums written with it)."""
    try:
        listed = json.loads((step_dir / SUMS).read_text())["sha256"]
    except FileNotFoundError:
        return (f"it has no {SUMS} (the run was killed while writing it, or an older magan "
                "wrote it)")
    except (OSError, ValueError, KeyError, TypeError) as err:
        return f"its {SUMS} cannot be read ({err})"
    for name, digest in listed.items():
        f = step_dir / name
        if not f.is_file():
            return f"its file {name} is missing"
        if file_sha256(f) != digest:
            return f"its file {name} does not match the checksum written with it"
    return None


def _sync(name: str) -> None:
    """A barrier across the processes of a multi-process run (nothing in a single process)."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def _jsonable(obj):
    return json.loads(json.dumps(obj, default=lambda o: o.tolist() if hasattr(o, "tolist")
                                 else str(o)))


def _check_room(directory: Path, step: int, state) -> None:
    """Raise an OSError (ENOSPC) naming ``directory`` and the fix when the disk, or the
    process's file size limit, cannot take the checkpoint of ``state`` (orbax would fail part-way
    with a screenful of its threads' tracebacks)."""
    import errno
    import resource
    import shutil

    need = sum(int(getattr(a, "nbytes", 0)) for a in jax.tree.leaves(state)) + (1 << 20)
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    free = shutil.disk_usage(directory).free
    if free < need or (limit != resource.RLIM_INFINITY and limit < need):
        size = lambda n: f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.0f} kB"  # noqa: E731
        room = (f"{size(free)} free on its disk" if free < need
                else f"files limited to {size(limit)} (ulimit -f)")
        raise OSError(errno.ENOSPC, f"no room for the checkpoint of step {step} ({size(need)}; "
                      f"{room}): {ROOM_FIX}. {_KEPT}", str(directory))


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
        """Write checkpoint ``step`` (blocking; the state is copied to the host first). An
        OSError naming the folder and the fix when it cannot be written (a full disk); the
        earlier checkpoints are kept."""
        _check_room(self.directory, step, state)
        try:
            self.manager.save(step, args=ocp.args.Composite(
                state=ocp.args.StandardSave(state),
                record=ocp.args.JsonSave(_jsonable({"settings": self.settings, **record}))))
            self.manager.wait_until_finished()
        except Exception as err:  # noqa: BLE001 - orbax's and tensorstore's errors, whatever kind
            said = first_line(err)[:300]
            raise OSError(getattr(err, "errno", None), f"the checkpoint of step {step} could "
                          f"not be written ({type(err).__name__}: {said}); {MAYBE_FULL}. {_KEPT}",
                          str(self.directory)) from err
        from magan.runtime.io import atomic_write_json

        step_dir = self.directory / str(step)
        atomic_write_json(step_dir / SUMS, {"sha256": file_sums(step_dir)})  # process 0 only
        _sync("magan_checkpoint_sums")

    def _latest_intact(self) -> int | None:
        """The latest checkpoint whose files match their checksums (None when there is none, or
        when the only ones were left unfinished by a killed run: it then restarts from step 0).
        Damaged or unfinished later ones are moved to ``STAGE-damaged/`` with a warning; raises
        ValueError when every checkpoint is damaged (not merely unfinished)."""
        steps = sorted(self.manager.all_steps(), reverse=True)
        damaged, step = [], None
        for s in steps:
            problem = damage(self.directory / str(s))
            if problem is None:
                step = s
                break
            damaged.append((s, problem))
        said = "; ".join(f"step {s}: {problem}" for s, problem in damaged)
        if step is None and any(not p.startswith(f"it has no {SUMS}") for _, p in damaged):
            raise ValueError(f"No checkpoint in {self.directory} is intact ({said}). Delete "
                             f"{self.directory} to restart the run from step 0.")
        if damaged:
            aside = self._set_aside([s for s, _ in damaged])
            warnings.warn(f"Damaged checkpoint(s) in {self.directory} ({said}) "
                          f"moved to {aside}; "
                          + (f"resuming from the intact step {step}." if step is not None
                             else "restarting from step 0.")
                          + f" Delete {aside} once you no longer need it.", stacklevel=3)
        return step

    def _set_aside(self, steps) -> Path:
        """Move the checkpoints of ``steps`` to ``STAGE-damaged/`` (process 0), keeping earlier
        ones set aside under new names; returns that folder."""
        aside = self.directory.with_name(f"{self.directory.name}-damaged")
        _sync("magan_checkpoint_verified")
        if jax.process_index() == 0:
            aside.mkdir(parents=True, exist_ok=True)
            for later in steps:
                target = aside / str(later)
                n = 1
                while target.exists():
                    target, n = aside / f"{later}.{n}", n + 1
                (self.directory / str(later)).rename(target)
        _sync("magan_checkpoint_set_aside")
        self.manager.reload()
        return aside

    def restore(self, like) -> tuple[int, object, dict] | None:
        """The latest checkpoint as ``(step, state, record)``, arrays placed like ``like``; None
        when there is none. A damaged latest checkpoint is set aside for the previous intact one
        (a warning says so). Raises ValueError when its settings differ or none can be read."""
        step = self._latest_intact()
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
