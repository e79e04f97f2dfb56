"""Progress bars with live losses (tqdm), quiet when MAGAN_QUIET is set; spinners for the phases
without steps; and a clock for the wall time of a run's stages.

A training loop's bar says when it is compiling (its first call: tracing and XLA compilation,
tens of seconds on a CPU) and computes its rate and ETA from the stepping alone: from the steps
after that first call, over the time since it less the time spent compiling later programs (the
R1 step's, measured by JAX's compile events), so a first ETA is not a compile time.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from contextlib import contextmanager

from tqdm.auto import tqdm

__all__ = ["progress_bar", "phase", "format_metrics", "compile_seconds", "Clock", "StageBar"]

# the host time of making a JAX program: tracing, lowering to MLIR and XLA's compilation (or
# reading it back from the persistent cache); durations in seconds, one event per program
_COMPILE_EVENTS = ("/jax/core/compile/jaxpr_trace_duration",
                   "/jax/core/compile/jaxpr_to_mlir_module_duration",
                   "/jax/core/compile/backend_compile_duration")
_compiled = {"s": 0.0, "listening": False}
_TICK_S = 1.0  # how often a bar that waits (compiling, a phase) redraws its elapsed time
PHASE_DELAY_S = 2.0  # a phase's spinner appears once the phase has run this long


def _count_compile(event: str, duration: float, **_) -> None:
    if event in _COMPILE_EVENTS:
        _compiled["s"] += duration


def compile_seconds() -> float:
    """Seconds this process has spent making JAX programs since it was first asked (the first
    call starts the count, registering a ``jax.monitoring`` listener, and returns 0)."""
    if not _compiled["listening"]:
        import jax.monitoring

        jax.monitoring.register_event_duration_secs_listener(_count_compile)
        _compiled["listening"] = True
    return _compiled["s"]


def _enabled(enabled: bool | None) -> bool:
    return not os.environ.get("MAGAN_QUIET") if enabled is None else bool(enabled)


class StageBar(tqdm):
    """A tqdm bar over a loop's steps whose rate (and so ETA) counts the stepping only: the
    steps after :meth:`compiling` over the time since, less the later compile time. Until a
    step has run after it, rate and ETA show ``?``."""

    def __init__(self, *args, **kwargs):
        self._origin: tuple[float, int, float] | None = None  # (time, steps, compile seconds)
        super().__init__(*args, **kwargs)

    @contextmanager
    def compiling(self, steps_after: int):
        """The loop's first call inside the block: the bar reads "(compiling)" and its elapsed
        time keeps moving; after it the stepping starts at ``steps_after`` steps done."""
        if self.disable:
            yield
            return
        desc = self.desc
        self.set_description_str(f"{desc} (compiling)", refresh=True)
        t0 = time.perf_counter()
        with _ticking(self):
            yield
        self._origin = (time.perf_counter(), steps_after, compile_seconds())
        self.set_description_str(desc, refresh=False)
        self.set_postfix_str(f"compiled in {time.perf_counter() - t0:.1f} s", refresh=True)

    def stepping_rate(self) -> float:
        """Steps per second since the first call, compile time excluded; 0 when unknown."""
        if self._origin is None:
            return 0.0
        t, steps, compiled = self._origin
        dt = time.perf_counter() - t - (compile_seconds() - compiled)
        return (self.n - steps) / dt if self.n > steps and dt > 0 else 0.0

    @property
    def format_dict(self):
        d = super().format_dict
        d["rate"] = self.stepping_rate()  # 0, not None: tqdm would average over the compile
        return d


def progress_bar(total: int, desc: str, enabled: bool | None = None) -> StageBar:
    """A :class:`StageBar` over ``total`` steps. ``enabled=None`` shows it unless MAGAN_QUIET is
    set."""
    if _enabled(enabled):
        compile_seconds()  # start counting before the first compile
    return StageBar(total=total, desc=desc, disable=not _enabled(enabled), file=sys.stderr,
                    dynamic_ncols=True, mininterval=0.5, leave=True)


@contextmanager
def phase(desc: str, enabled: bool | None = None, *, delay: float = PHASE_DELAY_S):
    """A spinner for a phase without steps (a check, a simulation): ``desc`` and the elapsed
    time, redrawn every second once the phase has run ``delay`` seconds (a shorter phase shows
    nothing), left on screen when the block ends. ``enabled`` as for :func:`progress_bar`."""
    bar = tqdm(total=None, desc=desc, disable=not _enabled(enabled), file=sys.stderr,
               bar_format="{desc}: {elapsed}{postfix}", leave=True, delay=delay)
    try:
        with _ticking(bar):
            yield bar
        if not bar.disable and bar.last_print_t >= bar.start_t + bar.delay:  # it was shown
            bar.set_postfix_str("done", refresh=True)
    finally:
        bar.close()


@contextmanager
def _ticking(bar):
    """Redraw ``bar`` every :data:`_TICK_S` seconds from a thread for the block, once its
    ``delay`` has passed (nothing for a disabled bar); the thread is stopped before the block's
    caller touches the bar again."""
    if bar.disable:
        yield
        return
    stop = threading.Event()

    def tick():
        while not stop.wait(_TICK_S):
            if bar._time() >= bar.start_t + bar.delay:
                bar.refresh()
                bar.last_print_t = bar._time()  # tqdm's record that it was shown (close() reads it)

    thread = threading.Thread(target=tick, name="magan-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def format_metrics(metrics: dict) -> dict:
    """Short strings for a tqdm postfix."""
    return {k: f"{float(v):.3g}" for k, v in metrics.items() if k != "step"}


class Clock:
    """Wall-clock seconds of a run's stages: ``timings[name]`` for each :meth:`stage`, and
    ``timings["total_s"]`` from the clock's creation to :meth:`stop`."""

    def __init__(self):
        self.start = time.perf_counter()
        self.timings: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str, *, show: str | None = None, progress: bool | None = None):
        """Time the ``with`` block as ``timings[name]`` (seconds; not recorded if it raises);
        with ``show``, a :func:`phase` spinner of that name runs for it (``progress`` as for
        :func:`progress_bar`)."""
        t = time.perf_counter()
        if show is None:
            yield
        else:
            with phase(show, progress):
                yield
        self.timings[name] = time.perf_counter() - t

    def stop(self) -> None:
        self.timings["total_s"] = time.perf_counter() - self.start
