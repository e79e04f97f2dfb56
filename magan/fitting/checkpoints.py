"""Checkpoints of a fit's passes, so that a killed fit resumes to the identical result.

A fit given a ``workdir`` (:func:`magan.fit`, :func:`magan.fit_many`, ``magan fit --out``, the
studies) checkpoints each of its passes into its own folder,

    WORKDIR/checkpoints/fit/0-targets       the targets' pass (with the reference set beside
                                            them when ``bias_reference="start"``)
    WORKDIR/checkpoints/fit/1-references    the reference pass of ``bias_reference="fit"`` or
                                            ``"around"``

at the first metric sync (every ``FitConfig.log_every`` steps) at least :data:`EVERY_S` seconds
after the pass's start or its last checkpoint, and at the pass's end, with
:class:`~magan.runtime.checkpoints.RunCheckpoints`: the state (every replica's G and D, their
Adam states, G's running average, the step), the metric history so far, SHA-256 checksums. A
run killed loses at most about that much of its fit; a checkpoint costs some tenths of a second,
which at every sync would slow a short fit by a third.

Rerunning the same fit resumes each pass from its latest checkpoint, and a finished pass is not
run again (its averaged G is read back and drawn from). Every random draw of a step derives from
the seed and the step number, and a pass's inputs (the images it fits, their conditions, its
starting point) are recomputed from the same seeds and checked against the checkpoint's, so the
result (means, stds, samples, histories) is bit for bit that of an uninterrupted fit on the same
machine. A checkpoint of a pass with other inputs (config, seed, emulator, target images,
features ...) is refused with an error naming what differs; a damaged one is set aside into
``fit/N-LABEL-damaged/`` with a warning and the pass resumes from the previous intact one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time

import jax
import jax.numpy as jnp
import numpy as np

from magan.runtime.checkpoints import RunCheckpoints

__all__ = ["EVERY_S", "PassCheckpoints", "pass_settings", "stage_of"]

EVERY_S = 30.0  # seconds of a pass between two of its checkpoints (at the next metric sync)

# the checkpoint folder (under WORKDIR/checkpoints/fit/) of each pass, by its progress label
_STAGES = {"fitting": "0-targets", "reference fit": "1-references",
           "reference fits": "1-references"}


def stage_of(label: str) -> str:
    """The checkpoint stage ``fit/N-LABEL`` of the pass shown as ``label``."""
    return f"fit/{_STAGES[label]}"


def _features_name(features) -> str | None:
    """What G's loss matches, as a checkpoint records it: None, ``"learned summaries"`` or the
    user's function as ``module.name``."""
    if features is None:
        return None
    fn = getattr(features, "fn", None)
    if fn is None:
        return "learned summaries"
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


def _images_digest(sets, conds) -> str:
    """SHA-256 of the image sets (each (N, H, W, C)) and their conditions ((N, K) or None)."""
    digest = hashlib.sha256()
    for a in [*sets, *(c for c in conds if c is not None)]:
        arr = np.ascontiguousarray(a)
        digest.update(f"{arr.dtype.str}{arr.shape};".encode())
        digest.update(arr.tobytes())
    return digest.hexdigest()


def pass_settings(run, sets, start_unit, label: str, *, per_set: int, conds) -> dict:
    """What must match for a checkpoint of a pass to be resumed: the config, the seed that keys
    the pass, the emulator's identity, what G's loss matches, the pass's layout (sets, replicas
    per set), a SHA-256 of its images and conditions, and its start (P,) or (sets, P) in the
    unit cube."""
    return {"config": dataclasses.asdict(run.cfg), "seed": run.seed, "pass": label,
            "emulator": run.emulator.identity(), "features": _features_name(run.features),
            "sets": len(sets), "replicas_per_set": per_set,
            "images_sha256": _images_digest(sets, conds),
            "start": np.asarray(start_unit, np.float32).tolist()}


class PassCheckpoints:
    """The checkpoints of one pass (module docstring), or nothing when the fit has no workdir.

    Args:
      workdir: the fit's folder, or None (no checkpoints).
      label: the pass's progress label (``"fitting"``, ``"reference fit"``, ``"reference fits"``).
      settings: :func:`pass_settings` (None without a workdir).
      total: the pass's number of steps (its last step is always checkpointed).
    """

    def __init__(self, workdir, label: str, settings: dict | None, *, total: int):
        self.ckpt = (None if workdir is None
                     else RunCheckpoints(workdir, stage_of(label), settings))
        self.total, self.last = total, time.monotonic()

    def resume(self, state) -> tuple[int, object, list[dict]]:
        """``(first step, state, history so far)``: from the latest intact checkpoint, or
        ``(0, state, [])`` when there is none. Raises ValueError when it was written with other
        settings (naming them) or none is intact."""
        found = None if self.ckpt is None else self.ckpt.restore(state)
        if found is None:
            return 0, state, []
        step, restored, record = found
        # orbax places the arrays on a device explicitly ("committed"), which jit keys its
        # programs on: unplaced copies (the same bytes) reuse the fit step compiled for a
        # fresh state instead of compiling it again
        restored = jax.tree.map(lambda a: jnp.asarray(np.asarray(a)), restored)
        return step, restored, list(record.get("history", []))

    def on_sync(self, done: int, state, history: list[dict]) -> None:
        """The loop's hook after each metric row: a checkpoint of step ``done`` when it is the
        last or :data:`EVERY_S` seconds have passed since the last checkpoint."""
        if self.ckpt is not None and (done == self.total
                                      or time.monotonic() - self.last >= EVERY_S):
            self.ckpt.save(done, state, {"history": history})
            self.last = time.monotonic()

    def close(self) -> None:
        if self.ckpt is not None:
            self.ckpt.close()
