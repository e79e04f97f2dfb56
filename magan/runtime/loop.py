"""The one training loop: pre-training, the fit and the validation networks all run in it.

A stage hands :func:`run_loop` its compiled step (``advance``) and what to make of the metrics
(``summarise``); the loop dispatches the steps, fetches the metrics from the device only at the
sync points (its only host syncs), shows them in a progress bar, keeps the history and hands
each new row to the stage's hooks (metric files and callbacks, then checkpoints). Steps are
dispatched asynchronously between syncs, so the host prepares the next call while the device
computes.

Why a stage's steps are unrolled Python calls and not a ``lax.scan`` or ``lax.cond``: XLA:CPU runs
the convolutions inside a loop body or a conditional branch without its fast kernels. So several
steps per dispatch are unrolled in one program (``PretrainConfig.steps_per_call``), the lazy R1
penalty is decided when a program is traced (one program per pattern of R1 steps,
:func:`magan.losses.lazy_r1`), and the fit's replicas are unrolled too. The measurement, and the
command that repeats it (``scripts/cpu_loop_forms.py``), are in docs/speed.md.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import jax

from magan.runtime.progress import format_metrics, progress_bar

__all__ = ["LoopResult", "run_loop"]


@dataclass
class LoopResult:
    """What :func:`run_loop` returns.

    Attributes:
      state: the stage's state after the last step (on the device).
      history: one row per sync, ``{"step": steps done, **summarised metrics}``.
      first_call_s: seconds from the start to the end of the first dispatch (its compilation
        included; the loop waits for it once), ``None`` when no step ran.
      total_s: seconds of the whole loop.
    """

    state: Any
    history: list[dict] = field(default_factory=list)
    first_call_s: float | None = None
    total_s: float = 0.0


def run_loop(advance: Callable, state, *, total: int, summarise: Callable, start: int = 0,
             per_call: int = 1, sync_every: int = 1, sync_at: Callable[[int], bool] | None = None,
             desc: str = "training", progress: bool | None = None,
             shown: Sequence[str] | None = None, postfix: Callable[[dict], dict] | None = None,
             on_row: Callable[[dict], None] | None = None, on_sync: Callable | None = None,
             history: list[dict] | None = None) -> LoopResult:
    """Run steps ``start, ..., total - 1`` of a stage.

    Args:
      advance: ``advance(state, i, n) -> (state, metrics)`` runs steps ``i, ..., i + n - 1``
        (``n <= per_call``) as one dispatch; ``metrics`` stays on the device.
      state: the stage's initial state (any pytree).
      total: the number of steps of the whole run.
      summarise: ``summarise(host, done, state) -> dict``: the metrics of every dispatch since the
        last sync (fetched to the host, in order) -> one history row (``"step"`` is added in
        front). Raise there on a non-finite loss.
      start: the first step (a resumed run).
      per_call: steps per dispatch.
      sync_every: fetch the metrics when the steps done are a multiple of it, and at the end
        (unless ``sync_at(done)`` says when instead).
      shown: the row's keys in the progress bar (default: all).
      postfix: ``postfix(row) -> {label: text}`` beside the bar, instead of ``shown``'s values.
      on_row: ``on_row(row)`` with each new row, as it comes (the metric files, the callbacks).
      on_sync: ``on_sync(done, state, history)`` after each row (e.g. a checkpoint).
      history: rows of the run so far (a resumed run); new rows are appended to it.
    """
    history = [] if history is None else history
    sync_at = sync_at or (lambda done: done % sync_every == 0 or done == total)
    pending: list = []
    t0 = time.perf_counter()
    first = None
    bar = progress_bar(total, desc, progress)
    bar.update(start)
    postfix = postfix or (lambda row: format_metrics({k: row[k] for k in (shown or row)
                                                      if k in row}))
    last, i = start, start
    try:
        while i < total:
            n = min(per_call, total - i)
            if first is None:  # the call that compiles: the loop waits for it once
                with bar.compiling(steps_after=i + n):
                    state, metrics = advance(state, i, n)
                    jax.block_until_ready(state)
                first = time.perf_counter() - t0
            else:
                state, metrics = advance(state, i, n)
            pending.append(metrics)
            i += n
            if sync_at(i):
                host = jax.device_get(pending)  # the loop's only host sync
                pending = []
                row = {"step": i, **summarise(host, i, state)}
                history.append(row)
                bar.set_postfix(postfix(row), refresh=False)
                bar.update(i - last)
                last = i
                if on_row is not None:
                    on_row(row)
                if on_sync is not None:
                    on_sync(i, state, history)
    finally:
        bar.close()
    return LoopResult(state, history, first, time.perf_counter() - t0)
