"""The calorimeter study's physics validation: emulator vs simulator at one parameter point and a
few beam energies (response, resolution, shower shapes, cell spectrum; CaloChallenge separation
power), its plots, and the side view of showers for image grids."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from magan.emulator import Emulator
from magan.studies.calorimeter.model import features_numpy
from magan.studies.calorimeter.simulator import (
    CALO_SPACE,
    FEATURE_NAMES,
    longitudinal_profile,
    radial_profile,
    sparsity,
)
from magan.validation.distances import separation_power

__all__ = ["physics_validation", "plot_physics", "public", "side_view", "worst"]


def _summaries(images, energies) -> dict[str, np.ndarray]:
    """Per-shower response, depth (X0), width (mm) and sparsity of images (N, 12, 12, 20) MeV."""
    f = features_numpy(images, energies)
    out = {name: f[:, j] for j, name in enumerate(FEATURE_NAMES)}
    out["sparsity"] = sparsity(images)
    return out


def physics_validation(emulator: Emulator, simulator, params, energies_gev, *, n: int = 3000,
                       seed: int = 0, bins: int = 30) -> dict:
    """Emulator vs simulator at one parameter point and a few beam energies.

    ``params`` (4,) physical detector parameters; ``energies_gev`` the beam energies (GeV); ``n``
    showers per source and energy; ``bins`` of the separation power. For each energy: mean
    response ``Esum/Einc`` and resolution (std/mean) of both, their relative difference, and the
    CaloChallenge separation power of response, depth, width, sparsity and the cell-energy
    spectrum (log10 of nonzero voxels), each with its floor (simulator vs a second simulated set
    of the same size). Mean longitudinal and radial profiles are kept for the plots, and the raw
    per-shower values under ``"_hist"`` (drop them with :func:`public`).
    """
    params = CALO_SPACE.check(params, what="validation params")[0]
    rng = np.random.default_rng(seed)
    out: dict = {"params": dict(zip(CALO_SPACE.names, params.tolist())), "n": n, "bins": bins,
                 "energies": {}}
    for i, e_gev in enumerate(energies_gev):
        cond = np.full((n, 1), 1000.0 * e_gev)
        rows = np.tile(params, (n, 1))
        sim = simulator.simulate(rng, rows, CALO_SPACE, conditions=cond)
        sim2 = simulator.simulate(rng, rows, CALO_SPACE, conditions=cond)
        emu = emulator.sample(rows, cond, seed=seed + 1 + i)
        out["energies"][f"{e_gev:g}"] = _compare_at_energy(sim, sim2, emu, cond, bins)
    return out


def _compare_at_energy(sim, sim2, emu, cond, bins: int) -> dict:
    """One energy's row of :func:`physics_validation` from two simulated sets and one emulated set
    of showers (N, 12, 12, 20) MeV at conditions ``cond`` (N, 1) MeV."""
    fs, fs2, fe = (_summaries(x, cond) for x in (sim, sim2, emu))
    cells = [np.log10(x[x > 0]) for x in (sim, sim2, emu)]
    row: dict = {
        "response_sim": float(fs["response"].mean()),
        "response_emu": float(fe["response"].mean()),
        "response_rel_diff": float(fe["response"].mean() / fs["response"].mean() - 1.0),
        "resolution_sim": float(fs["response"].std() / fs["response"].mean()),
        "resolution_emu": float(fe["response"].std() / fe["response"].mean()),
        "separation_power": {}, "separation_floor": {},
        "mean_sim": {k: float(v.mean()) for k, v in fs.items()},
        "mean_emu": {k: float(v.mean()) for k, v in fe.items()},
        "std_sim": {k: float(v.std()) for k, v in fs.items()},
        "std_emu": {k: float(v.std()) for k, v in fe.items()},
        "longitudinal_sim": longitudinal_profile(sim).mean(0).tolist(),
        "longitudinal_emu": longitudinal_profile(emu).mean(0).tolist(),
        "radial_sim": radial_profile(sim).mean(0).tolist(),
        "radial_emu": radial_profile(emu).mean(0).tolist(),
    }
    for k in fs:
        row["separation_power"][k] = separation_power(fs[k], fe[k], bins)
        row["separation_floor"][k] = separation_power(fs[k], fs2[k], bins)
    row["separation_power"]["cell_log10_mev"] = separation_power(cells[0], cells[2], bins)
    row["separation_floor"]["cell_log10_mev"] = separation_power(cells[0], cells[1], bins)
    row["_hist"] = {"sim": fs, "emu": fe, "cells_sim": cells[0], "cells_emu": cells[2]}
    return row


def public(physics: dict) -> dict:
    """physics_validation output without the raw arrays kept for plotting."""
    return {**physics, "energies": {e: {k: v for k, v in row.items() if not k.startswith("_")}
                                    for e, row in physics["energies"].items()}}


def worst(physics: dict) -> dict:
    """The summary's physics fields from :func:`public` output: the worst separation power over
    the energies of response, depth and width, and the largest relative difference of the mean
    response."""
    rows = physics["energies"].values()
    return {
        "physics_worst_separation_power": {
            k: max(r["separation_power"][k] for r in rows)
            for k in ("response", "depth_x0", "width_mm")},
        "physics_worst_response_rel_diff": max(abs(r["response_rel_diff"]) for r in rows),
    }


def plot_physics(physics: dict, out: Path) -> list[Path]:
    """response.png, features.png and profiles.png in ``out`` from :func:`physics_validation`."""
    energies = list(physics["energies"])
    rows = [physics["energies"][e] for e in energies]
    return [_plot_response(energies, rows, out / "response.png"),
            _plot_features(energies, rows, out / "features.png"),
            _plot_profiles(energies, rows, out / "profiles.png")]


def _plot_response(energies: list[str], rows: list[dict], path: Path) -> Path:
    """Mean response and resolution (%) of simulator and emulator against beam energy (GeV)."""
    import matplotlib.pyplot as plt

    from magan.runtime.plots import save_figure

    egev = np.array([float(e) for e in energies])
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for src, style in (("sim", "ko-"), ("emu", "s--")):
        axes[0].plot(egev, [r[f"response_{src}"] for r in rows], style,
                     label={"sim": "simulator", "emu": "emulator"}[src])
        axes[1].plot(egev, [100 * r[f"resolution_{src}"] for r in rows], style)
    axes[0].set_ylabel("mean Esum / Einc")
    axes[1].set_ylabel("resolution std/mean [%]")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel("beam energy [GeV]")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    return save_figure(fig, path)


def _plot_features(energies: list[str], rows: list[dict], path: Path) -> Path:
    """Histograms of response, depth (X0), width (mm) and sparsity, one row per energy."""
    import matplotlib.pyplot as plt

    from magan.runtime.plots import save_figure

    names = ["response", "depth_x0", "width_mm", "sparsity"]
    fig, axes = plt.subplots(len(rows), len(names), figsize=(3.2 * len(names), 2.6 * len(rows)),
                             squeeze=False)
    for i, (e, r) in enumerate(zip(energies, rows)):
        for j, k in enumerate(names):
            a, b = r["_hist"]["sim"][k], r["_hist"]["emu"][k]
            edges = np.linspace(min(np.quantile(a, 0.001), np.quantile(b, 0.01)),
                                max(np.quantile(a, 0.999), np.quantile(b, 0.99)), 41)
            ax = axes[i, j]
            ax.hist(a, edges, histtype="stepfilled", alpha=0.4, color="k", label="simulator")
            ax.hist(b, edges, histtype="step", lw=1.5, color="tab:red", label="emulator")
            ax.set_title(f"{e} GeV {k}: S = {r['separation_power'][k]:.3f}", fontsize=8)
            ax.tick_params(labelsize=7)
    axes[0, 0].legend(fontsize=7)
    return save_figure(fig, path)


def _plot_profiles(energies: list[str], rows: list[dict], path: Path) -> Path:
    """Mean longitudinal (per readout layer) and radial (per 5.1 mm bin) profiles in MeV, and the
    cell-energy spectrum (log10 MeV), simulator solid, emulator dashed."""
    import matplotlib.pyplot as plt

    from magan.runtime.plots import save_figure

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    for r, e, c in zip(rows, energies, ("tab:blue", "tab:green", "tab:red", "tab:purple")):
        axes[0].plot(r["longitudinal_sim"], color=c, label=f"{e} GeV sim")
        axes[0].plot(r["longitudinal_emu"], "--", color=c, label=f"{e} GeV emu")
        axes[1].plot(r["radial_sim"], color=c)
        axes[1].plot(r["radial_emu"], "--", color=c)
        edges = np.linspace(np.log10(0.075), 3, 41)
        axes[2].hist(r["_hist"]["cells_sim"], edges, histtype="step", color=c, density=True)
        axes[2].hist(r["_hist"]["cells_emu"], edges, histtype="step", ls="--", color=c,
                     density=True)
    axes[0].set(xlabel="readout layer (1.1 X0 each)", ylabel="mean MeV", yscale="log",
                title="longitudinal profile")
    axes[1].set(xlabel="radial bin (5.1 mm)", ylabel="mean MeV", yscale="log",
                title="radial profile")
    axes[2].set(xlabel="log10 cell energy [MeV]", ylabel="density", yscale="log",
                title="cell spectrum (solid sim, dashed emu)")
    axes[0].legend(fontsize=6)
    return save_figure(fig, path)


def side_view(images) -> np.ndarray:
    """(N, 12, 12, 20) showers -> (N, 12, 20, 1): energy summed over x, log10(1 + MeV)."""
    return np.log10(1.0 + np.asarray(images).sum(axis=2))[..., None]
