"""PNG figures for runs: metric curves, simulated-vs-emulated grids, fitted parameters vs truth
and the joint posterior of a fit (corner plot).

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

__all__ = ["plot_losses", "plot_image_grid", "plot_fit", "plot_corner", "save_figure"]


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


def _is_accuracy(key: str) -> bool:
    """Whether a metric column is a fraction in [0, 1] (an accuracy), drawn on a linear axis."""
    return key.endswith("_acc") or key.endswith("accuracy")


def _stage_panels(hist: list[dict], skip) -> list[tuple[str, list[str]]]:
    """A stage's panels: ``("losses", keys)``, ``("accuracy", keys)`` when it has accuracies,
    then ``("parameter", ["mean_NAME"])`` for each fitted parameter the history tracks."""
    keys = [k for k in hist[0] if k not in skip]
    params = [k for k in keys if k.startswith("mean_")]
    acc = [k for k in keys if _is_accuracy(k)]
    losses = [k for k in keys if k not in params and k not in acc]
    panels = [("losses", losses)] if losses else []
    panels += [("accuracy", acc)] if acc else []
    return panels + [("parameter", [k]) for k in params]


def _draw_panel(ax, kind: str, keys: list[str], hist: list[dict], truth: dict) -> None:
    """One panel of :func:`plot_losses`: the columns ``keys`` of ``hist`` against step."""
    steps = [h["step"] for h in hist]
    for key in keys:
        ax.plot(steps, [h[key] for h in hist], label=key)
    if kind == "losses":
        ax.set_yscale("symlog", linthresh=1e-2)  # losses span decades and may dip below 0
        ax.set_ylabel("loss (symlog)", fontsize=8)
    elif kind == "accuracy":
        ax.set_ylim(0.0, 1.0)
        ax.axhline(0.5, color="0.5", ls=":", lw=1)  # chance level
        ax.set_ylabel("accuracy", fontsize=8)
    else:
        name = keys[0][len("mean_"):]
        if name in truth:
            ax.axhline(truth[name], color="k", lw=1.5, label="truth")
        ax.set_ylabel(f"fitted {name}", fontsize=8)
    ax.set_xlabel("step", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=6)
    ax.grid(alpha=0.3)


def plot_losses(histories: dict[str, list[dict]], path, skip=("step",), *,
                truth: dict | None = None) -> Path:
    """Metric curves, one row of panels per stage (``histories``: stage name -> metric rows).

    A row holds the stage's losses on one symlog axis, its accuracies (columns ending in
    ``_acc``) on a linear axis from 0 to 1, and one panel per fitted parameter that the history
    tracks (``mean_NAME``: the fit's current mean of parameter NAME, physical units), with the
    truth as a horizontal line where ``truth`` (name -> value) has it."""
    rows = [(stage, hist, _stage_panels(hist, skip)) for stage, hist in histories.items() if hist]
    ncol = max([len(panels) for _, _, panels in rows] + [1])
    fig, axes = plt.subplots(max(1, len(rows)), ncol, figsize=(3.6 * ncol, 2.8 * max(1, len(rows))),
                             squeeze=False, layout="constrained")
    for r, (stage, hist, panels) in enumerate(rows):
        for c, (kind, keys) in enumerate(panels):
            _draw_panel(axes[r, c], kind, keys, hist, truth or {})
            what = keys[0][len("mean_"):] if kind == "parameter" else kind
            axes[r, c].set_title(f"{stage}: {what}", fontsize=9)
        for c in range(len(panels), ncol):
            axes[r, c].axis("off")
    return save_figure(fig, path)


def plot_image_grid(rows: dict[str, np.ndarray], path, titles=None) -> Path:
    """A grid: one row per named image set (N, H, W, C), columns share parameters.

    Shows channel 0 (or the channel sum for C > 1) with origin at the bottom. Each column is made
    wide enough for its title (``titles``: one string per column, lines split by newlines) and
    each row as tall as the images' aspect needs, so titles never overlap."""
    names = list(rows)
    ncol = min(len(v) for v in rows.values())
    h, w = next(iter(rows.values())).shape[1:3]
    longest = max((len(line) for t in titles or () for line in str(t).split("\n")), default=0)
    col_w = max(1.4, 0.055 * longest + 0.2)  # 6 pt text: about 0.055 inch a character
    n_lines = max((str(t).count("\n") + 1 for t in titles or ()), default=0)
    fig, axes = plt.subplots(len(names), ncol, squeeze=False, layout="constrained",
                             figsize=(col_w * ncol, 0.2 + (0.95 * col_w * h / w + 0.1) * len(names)
                                      + 0.1 * n_lines))
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


def _corner_ranges(samples: np.ndarray, truth) -> list[tuple[float, float]]:
    """Each column's axis range for :func:`plot_corner`: the samples and the truth with 5 %
    padding; a column without spread (all draws equal) gets a small window around its value."""
    ranges = []
    for j in range(samples.shape[1]):
        marks = samples[:, j]
        if truth is not None and np.isfinite(truth[j]):
            marks = np.append(marks, truth[j])
        lo, hi = float(marks.min()), float(marks.max())
        pad = 0.05 * (hi - lo) if hi > lo else max(1e-3 * abs(lo), 1e-12)
        ranges.append((lo - pad, hi + pad))
    return ranges


def plot_corner(names, samples, path, *, units=(), truth=None, bins: int | None = None) -> Path:
    """Corner plot of the joint posterior (the ``corner`` package): the 1-D histogram of each
    parameter on the diagonal and the 2-D histogram with 1-sigma and 2-sigma contours of each
    pair below it, titled with the median and the 16 %-84 % interval.

    Args:
      names: P parameter names.
      samples: (K, P) draws (:attr:`magan.FitResult.samples`), physical units, finite.
      path: the PNG to write (atomically).
      units: P unit labels ("" for none) shown beside the names, or () for none.
      truth: (P,) values marked by lines (for instance the truth of a study's targets), or None.
      bins: histogram bins per axis; ``None``: from 10 to 40, growing with K.
    """
    import corner

    samples = np.asarray(samples, np.float64)
    p = len(names)
    if samples.ndim != 2 or samples.shape[1] != p or samples.shape[0] < 2:
        raise ValueError(f"plot_corner: samples must be (K, {p}) with K >= 2 for the parameters "
                         f"{list(names)}; got shape {samples.shape}.")
    bad = [n for n, ok in zip(names, np.isfinite(samples).all(axis=0)) if not ok]
    if bad:
        raise ValueError(f"plot_corner: the samples of {bad} contain NaN or inf; plot a fit's "
                         "finite draws (samples[np.isfinite(samples).all(axis=1)]).")
    truth = None if truth is None else np.asarray(truth, np.float64).ravel()
    if truth is not None and truth.shape != (p,):
        raise ValueError(f"plot_corner: truth must hold {p} values (one per parameter), got "
                         f"{truth.shape[0]}.")
    units = tuple(units) if len(units) == p else ("",) * p
    labels = [f"{n} ({u})" if u else n for n, u in zip(names, units)]
    bins = bins or int(np.clip(np.sqrt(samples.shape[0]), 10, 40))
    fig = corner.corner(samples, labels=labels, range=_corner_ranges(samples, truth), bins=bins,
                        quantiles=(0.16, 0.5, 0.84), show_titles=True, title_fmt=".3g",
                        title_kwargs={"fontsize": 9}, label_kwargs={"fontsize": 9},
                        levels=(1 - np.exp(-0.5), 1 - np.exp(-2.0)), quiet=True,
                        truths=truth if p > 1 else None, truth_color="tab:red")
    if p == 1 and truth is not None:  # corner's own truth lines fail for a single parameter
        fig.axes[0].axvline(truth[0], color="tab:red")
    return save_figure(fig, path)
