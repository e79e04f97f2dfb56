"""PNG figures for runs: loss curves, simulated-vs-emulated grids, fitted parameters vs truth.

Every figure is written atomically (temporary file, then rename).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from magan.runtime.io import umask  # noqa: E402

__all__ = ["plot_losses", "plot_image_grid", "plot_fit", "save_figure"]


def save_figure(fig, path) -> Path:
    path = Path(path)
    import jax

    if jax.process_index() != 0:  # only process 0 writes
        plt.close(fig)
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".png", dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=110, bbox_inches="tight")
        os.chmod(tmp, 0o666 & ~umask())  # as an ordinary file, not mkstemp's 0600
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def plot_losses(histories: dict[str, list[dict]], path, skip=("step",)) -> Path:
    """One panel per stage; every metric of a stage's history against step (log-y if positive)."""
    stages = [(k, v) for k, v in histories.items() if v]
    fig, axes = plt.subplots(1, max(1, len(stages)), figsize=(6 * max(1, len(stages)), 4),
                             squeeze=False)
    for ax, (stage, hist) in zip(axes[0], stages):
        steps = [h["step"] for h in hist]
        for key in hist[0]:
            if key in skip or key.startswith("mean_"):
                continue
            vals = np.array([h[key] for h in hist])
            ax.plot(steps, vals, label=key)
        ax.set_title(stage)
        ax.set_xlabel("step")
        ax.set_yscale("symlog", linthresh=1e-2)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    return save_figure(fig, path)


def plot_image_grid(rows: dict[str, np.ndarray], path, titles=None) -> Path:
    """A grid: one row per named image set (N, H, W, C), columns share parameters.

    Shows channel 0 (or the channel sum for C > 1) with origin at the bottom.
    """
    names = list(rows)
    ncol = min(len(v) for v in rows.values())
    fig, axes = plt.subplots(len(names), ncol, figsize=(1.4 * ncol, 1.5 * len(names)),
                             squeeze=False)
    vmax = max(float(np.percentile(v[:ncol].sum(-1), 99.5)) for v in rows.values())
    for r, name in enumerate(names):
        for c in range(ncol):
            ax = axes[r, c]
            ax.imshow(rows[name][c].sum(-1), origin="lower", cmap="magma", vmin=0, vmax=vmax)
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(name, fontsize=9)
            if r == 0 and titles is not None:
                ax.set_title(titles[c], fontsize=6)
    return save_figure(fig, path)


def plot_fit(names, samples, path, truth=None, start=None, bounds=None) -> Path:
    """Histograms of fitted parameter samples (K, P), truth (P,) and start (P,) marked."""
    p = len(names)
    fig, axes = plt.subplots(1, p, figsize=(3.2 * p, 3), squeeze=False)
    for j, ax in enumerate(axes[0]):
        ax.hist(samples[:, j], bins=40, color="tab:blue", alpha=0.8, label="fit")
        if truth is not None:
            ax.axvline(truth[j], color="k", lw=2, label="truth")
        if start is not None:
            ax.axvline(start[j], color="tab:orange", ls="--", label="start")
        if bounds is not None:  # zoom on what matters: samples, truth, start, +-5 % of range
            lo_b, hi_b = bounds[0][j], bounds[1][j]
            marks = [samples[:, j].min(), samples[:, j].max()]
            marks += [v[j] for v in (truth, start) if v is not None]
            pad = 0.05 * (hi_b - lo_b)
            ax.set_xlim(max(lo_b, min(marks) - pad), min(hi_b, max(marks) + pad))
            ax.set_xlabel(f"range [{lo_b:g}, {hi_b:g}]", fontsize=7)
        ax.set_title(names[j])
        if j == 0:
            ax.legend(fontsize=7)
    return save_figure(fig, path)
