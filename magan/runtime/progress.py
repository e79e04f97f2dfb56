"""Progress bars with live losses (tqdm), quiet when not attached to a terminal or in CI."""

from __future__ import annotations

import os
import sys

from tqdm.auto import tqdm

__all__ = ["progress_bar", "format_metrics"]


def progress_bar(total: int, desc: str, enabled: bool | None = None):
    """A tqdm bar over ``total`` steps. ``enabled=None`` shows it unless MAGAN_QUIET is set."""
    if enabled is None:
        enabled = not os.environ.get("MAGAN_QUIET")
    return tqdm(total=total, desc=desc, disable=not enabled, file=sys.stderr, dynamic_ncols=True,
                mininterval=0.5, leave=True)


def format_metrics(metrics: dict) -> dict:
    """Short strings for a tqdm postfix."""
    return {k: f"{float(v):.3g}" for k, v in metrics.items() if k != "step"}
