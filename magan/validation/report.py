"""The validation suite's report: ``report.json``, the markdown ``summary.md`` and the figures.

Nothing here computes or judges: it formats the numbers and statuses of
:mod:`magan.validation.checks` (the report dict :func:`magan.validation.suite.validate` builds).

Figures (PNG): ``distributions.png`` (histograms of T and E for every variable),
``variety.png`` (per-point spread ratio against every unit parameter) and, when the calibration
ran, ``calibration.png`` (fit against truth, and the pulls).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from magan.runtime.io import atomic_write_bytes, atomic_write_json, to_jsonable

__all__ = ["write_report", "write_figures", "markdown_summary", "check_numbers",
           "plot_distributions", "plot_variety", "plot_calibration"]


# ----------------------------------------------------------------------------------- figures
def plot_distributions(hists: dict, labels: dict, path) -> Path:
    """Histograms of T (black) and E (orange) per variable; ``hists`` maps a variable to its
    (T values, E values), ``labels`` a variable to its title (default its name)."""
    from magan.runtime.plots import plt, save_figure

    names = list(hists)
    cols = min(4, len(names))
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.8 * rows), squeeze=False)
    for ax, nm in zip(axes.ravel(), names):
        a, b = hists[nm]
        lo, hi = np.quantile(a, [0.001, 0.999])
        edges = np.linspace(lo, hi if hi > lo else lo + 1, 41)
        ax.hist(np.clip(a, edges[0], edges[-1]), edges, histtype="step", density=True,
                label="simulator", color="k")
        ax.hist(np.clip(b, edges[0], edges[-1]), edges, histtype="step", density=True,
                label="emulator", color="C1")
        ax.set_title(f"{labels.get(nm, nm)}", fontsize=9)
    for ax in axes.ravel()[len(names):]:
        ax.axis("off")
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_calibration(cal: dict, path) -> Path:
    """Fitted mean +- reported std against truth per parameter, and the pulls' histogram against
    N(0, 1); ``cal`` is the calibration check's dict."""
    from magan.runtime.plots import plt, save_figure

    names = cal["names"]
    t, m, s = (np.asarray(cal[k]) for k in ("truths", "means", "stds"))
    fig, axes = plt.subplots(1, len(names) + 1, figsize=(3.3 * (len(names) + 1), 3.2))
    for j, (ax, nm) in enumerate(zip(axes, names)):
        lo, hi = t[:, j].min(), t[:, j].max()
        ax.plot([lo, hi], [lo, hi], "k:", lw=1)
        ax.errorbar(t[:, j], m[:, j], yerr=s[:, j], fmt="o", ms=3, capsize=2)
        c1 = cal["summary"]["per_parameter"][nm]["coverage_1sigma"]
        ax.set_title(f"{nm}: 1-sigma coverage {c1:.0%}", fontsize=9)
        ax.set_xlabel("truth")
        ax.set_ylabel("fit +- reported std")
    pulls = ((m - t) / np.maximum(s, 1e-300)).ravel()
    ax = axes[-1]
    ax.hist(np.clip(pulls, -6, 6), np.linspace(-6, 6, 25), density=True, color="C0", alpha=0.7)
    xs = np.linspace(-6, 6, 200)
    ax.plot(xs, np.exp(-xs ** 2 / 2) / math.sqrt(2 * math.pi), "k", lw=1, label="N(0, 1)")
    ax.set_title("pulls (fit - truth) / std, clipped to +-6", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_variety(var: dict, names, path) -> Path:
    """Per-point spread ratio (log scale) against each unit coordinate named in ``names``;
    ``var`` is :func:`~magan.validation.quality.variety`'s dict."""
    from magan.runtime.plots import plt, save_figure

    u = np.asarray(var["points_unit"])
    r = np.exp(np.asarray(var["point_log_ratio"]))
    fig, axes = plt.subplots(1, len(names), figsize=(3.0 * len(names), 2.8), squeeze=False)
    for j, (ax, nm) in enumerate(zip(axes[0], names)):
        ax.axhline(1.0, color="k", lw=0.8, ls=":")
        ax.plot(u[:, j], r, "o", ms=3)
        ax.set_xlabel(f"{nm} (unit)")
        ax.set_yscale("log")
    axes[0, 0].set_ylabel("spread ratio emulator / simulator")
    fig.tight_layout()
    return save_figure(fig, path)


def write_figures(out: Path, checks: dict, hists: dict, *, axis_names, voxel_label: str) -> list:
    """Draw the suite's figures into ``out``; returns their file names. ``axis_names``: the
    parameter and condition names, ``voxel_label``: the title of the pooled pixel values."""
    figures = [plot_distributions(hists, {"voxels": voxel_label}, out / "distributions.png").name]
    figures.append(plot_variety(checks["coverage"]["variety"], axis_names,
                                out / "variety.png").name)
    if checks["calibration"]["status"] != "skipped":
        figures.append(plot_calibration(checks["calibration"], out / "calibration.png").name)
    return figures


# ---------------------------------------------------------------------------------- markdown
def _distribution_table(d: dict) -> list:
    """The markdown lines of the per-variable distance table."""
    lines = ["## Distributions (emulator vs simulator; floor: simulator vs simulator)", "",
             "| variable | separation power | floor | KS | floor | W1 | floor | status |",
             "|---|---|---|---|---|---|---|---|"]
    for nm, v in d["variables"].items():
        e, f = v["emulator"], v["floor"]
        lines.append(f"| {nm} | {e['separation_power']:.4f} | {f['separation_power']:.4f} | "
                     f"{e['ks']:.3f} | {f['ks']:.3f} | {e['wasserstein_1']:.4g} | "
                     f"{f['wasserstein_1']:.4g} | {v['status']} |")
    return lines


def _constraint_table(c: dict) -> list:
    """The markdown lines of the violation-rate table."""
    lines = ["", "## Constraints (violation rate)", "",
             "| constraint | simulator | emulator | status |", "|---|---|---|---|"]
    for nm, v in c["constraints"].items():
        lines.append(f"| {nm}: {v['description']} | {v['simulator']['rate']:.4f} | "
                     f"{v['emulator']['rate']:.4f} | {v['status']} |")
    return lines


def _calibration_table(cal: dict) -> list:
    """The markdown lines of the per-parameter calibration table."""
    s = cal["summary"]
    lines = ["", f"## Fit calibration ({s['n_truths']} truths)", "",
             "| parameter | bias % range | +- | rms error % range | median reported std % "
             "range | pull std | 1-sigma cov. | 2-sigma cov. |",
             "|---|---|---|---|---|---|---|---|"]
    for nm, v in s["per_parameter"].items():
        lines.append(f"| {nm} | {v['bias_pct_of_range']:+.2f} | "
                     f"{v['bias_stderr_pct_of_range']:.2f} | {v['rms_error_pct_of_range']:.2f} | "
                     f"{v['median_reported_std_pct_of_range']:.2f} | {v['pull_std']:.2f} | "
                     f"{v['coverage_1sigma']:.0%} | {v['coverage_2sigma']:.0%} |")
    lines.append(f"| all | | | | | | {s['coverage_1sigma']:.0%} (nominal 68 %) | "
                 f"{s['coverage_2sigma']:.0%} (nominal 95 %) |")
    return lines


def markdown_summary(report: dict) -> str:
    """``summary.md``: one row per check (status and headline numbers), then the tables of the
    distributions, constraints and calibration."""
    lines = [f"# Validation report: {report['title']}", "",
             f"Emulator: `{report['emulator']}`; simulator: `{report['simulator']}`; "
             f"{report['config']['n_samples']} points; seed {report['seed']}; "
             f"{report['seconds']:.0f} s.", "", "| check | status | numbers |", "|---|---|---|"]
    c = report["checks"]
    for name, row in c.items():
        lines.append(f"| {name} | **{row['status']}** | {check_numbers(name, row)} |")
    lines += ["", "Rules: see `magan/validation.py` (module docstring). Floors are the same "
              "numbers between two independent simulated samples.", ""]
    lines += _distribution_table(c["distributions"])
    if c["constraints"]["status"] != "skipped":
        lines += _constraint_table(c["constraints"])
    if c["calibration"]["status"] != "skipped":
        lines += _calibration_table(c["calibration"])
    lines += ["", "Figures: " + ", ".join(f"`{f}`" for f in report["figures"]), ""]
    return "\n".join(lines)


def _distribution_numbers(row: dict) -> str:
    worst = max(row["variables"].items(), key=lambda kv: kv[1]["emulator"]["separation_power"])
    return (f"worst separation power {worst[1]['emulator']['separation_power']:.3f} "
            f"({worst[0]}; floor {worst[1]['floor']['separation_power']:.3f})")


def _constraint_numbers(row: dict) -> str:
    return "; ".join(f"{k}: {v['emulator']['rate']:.3f} vs {v['simulator']['rate']:.3f}"
                     for k, v in row["constraints"].items())


def _learned_feature_numbers(row: dict) -> str:
    e, f = row["emulator"], row["floor"]
    return (f"FD_inf {e['fd_inf']:.3g} (rel. {e['fd_inf_relative']:.3g}; floor "
            f"{f['fd_inf']:.3g}), KID {e['kid']:.3g} +- {e['stderr']:.2g} (floor "
            f"{f['kid']:.2g} +- {f['stderr']:.2g})")


def _classifier_numbers(row: dict) -> str:
    return f"AUC {row['auc']:.3f} +- {row['auc_stderr']:.3f} (z = {row['z_vs_0.5']:.1f})"


def _memorisation_numbers(row: dict) -> str:
    return (f"copy fraction {row['copy_fraction']:.3f} (expected 0.01), median NN distance "
            f"ratio {row['median_d1_ratio']:.2f}")


def _coverage_numbers(row: dict) -> str:
    e, f, v = row["prdc_emulator"], row["prdc_floor"], row["variety"]
    return (f"precision {e['precision']:.2f}, recall {e['recall']:.2f}, density "
            f"{e['density']:.2f}, coverage {e['coverage']:.2f} (floor {f['coverage']:.2f}); "
            f"spread ratio {v['median_spread_ratio_emulator']:.2f} (floor "
            f"{v['median_spread_ratio_floor']:.2f})")


def _calibration_numbers(row: dict) -> str:
    s = row["summary"]
    return (f"{s['n_truths']} truths: coverage {s['coverage_1sigma']:.0%} / "
            f"{s['coverage_2sigma']:.0%} at 1 / 2 sigma (nominal 68 / 95 %), worst bias "
            f"{s['max_abs_bias_pct_of_range']:.1f} % of range")


_NUMBERS = {"distributions": _distribution_numbers, "constraints": _constraint_numbers,
            "learned_features": _learned_feature_numbers, "classifier": _classifier_numbers,
            "memorisation": _memorisation_numbers, "coverage": _coverage_numbers,
            "calibration": _calibration_numbers}


def check_numbers(name: str, row: dict) -> str:
    """The headline numbers of check ``name`` (its dict ``row``) in one line of the summary."""
    if row["status"] == "skipped":
        return f"skipped: {row.get('reason', '')}"
    return _NUMBERS[name](row) if name in _NUMBERS else ""


def write_report(out: Path, report: dict) -> None:
    """Write ``report.json`` (JSON-safe) and ``summary.md`` into ``out``."""
    atomic_write_json(out / "report.json", to_jsonable(report))
    atomic_write_bytes(out / "summary.md", markdown_summary(report).encode())
