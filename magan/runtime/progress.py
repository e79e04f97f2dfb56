"""Progress bars with live losses (tqdm), quiet when not attached to a terminal or in CI, and a
clock for the wall time of a run's stages."""

from __future__ import annotations

import os
import sys
import time
from contextlib import contextmanager

from tqdm.auto import tqdm

__all__ = ["progress_bar", "format_metrics", "Clock"]


def progress_bar(total: int, desc: str, enabled: bool | None = None):
    """A tqdm bar over ``total`` steps. ``enabled=None`` shows it unless MAGAN_QUIET is set."""
    if enabled is None:
        enabled = not os.environ.get("MAGAN_QUIET")
    return tqdm(total=total, desc=desc, disable=not enabled, file=sys.stderr, dynamic_ncols=True,
                mininterval=0.5, leave=True)


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
    def stage(self, name: str):
        """Time the ``with`` block as ``timings[name]`` (seconds; not recorded if it raises)."""
        t = time.perf_counter()
        yield
        self.timings[name] = time.perf_counter() - t

    def stop(self) -> None:
        self.timings["total_s"] = time.perf_counter() - self.start
