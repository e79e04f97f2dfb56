"""Detector-parameter recovery of the calorimeter study at three truth points, one emulator.

Loads a trained emulator (``--emulator``, e.g. the one ``magan study calorimeter`` wrote) or
pre-trains one with the chosen preset, then for each truth point simulates a test beam (the preset's
beam energies and events per energy), fits the four detector parameters with the incident
energies as per-event conditions, and prints a Markdown table: truth, fitted mean +- std, error in
% of the parameter's range, before bias correction, and where the fit started. Writes JSON too.

    python scripts/calorimeter_accuracy.py --emulator runs/calorimeter/emulator
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np

from magan import fit, load_emulator, train_emulator
from magan.config import replace_from_text
from magan.runtime.io import atomic_write_json
from magan.studies.calorimeter.model import (
    CALO_TRANSFORM,
    calorimeter_simulator,
    features_numpy,
)
from magan.studies.calorimeter.simulator import CALO_SPACE, FEATURE_NAMES
from magan.studies.calorimeter.study import DEFAULT_TRUTH, STUDY, study_preset
from magan.validation.closure import closure_check

# the study's default truth and two points on opposite sides of the nominal detector
TRUTHS = np.array([
    DEFAULT_TRUTH,                  # 0.0215, 1.10, 0.92, 0.033
    [0.0175, 0.90, 1.15, 0.022],
    [0.0235, 1.18, 0.85, 0.040],
])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--preset", default="default")
    ap.add_argument("--emulator", default=None, help="reuse a trained emulator folder")
    ap.add_argument("--out", default="runs/calorimeter_accuracy")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--fit", default="", help="FitConfig overrides, e.g. replicas=6,steps=800")
    args = ap.parse_args()
    cfg = study_preset(args.preset)
    if args.fit:
        cfg = dataclasses.replace(cfg, fit=replace_from_text(cfg.fit, args.fit))
    out = Path(args.out)
    sim = calorimeter_simulator()
    t0 = time.perf_counter()
    if args.emulator:
        emu = load_emulator(args.emulator)
    else:
        emu = train_emulator(sim, CALO_SPACE, cfg.pretrain, seed=args.seed, workdir=out,
                             transform=CALO_TRANSFORM, features=STUDY.pretrain_features)
    pretrain_s = time.perf_counter() - t0
    cond = np.repeat(1000.0 * np.asarray(cfg.beam_energies_gev), cfg.events_per_energy)[:, None]
    width = CALO_SPACE.width
    rows = []
    for k, truth in enumerate(TRUTHS):
        targets = sim.simulate(np.random.default_rng(2000 + k), np.tile(truth, (len(cond), 1)),
                               CALO_SPACE, conditions=cond)
        t1 = time.perf_counter()
        r = fit(emu, targets, cfg.fit, seed=args.seed + k, target_conditions=cond, simulator=sim,
                features=STUDY.fit_features)
        fit_s = time.perf_counter() - t1
        inside = np.clip(r.mean, CALO_SPACE.low, CALO_SPACE.high)  # the mean may step outside
        clo = closure_check(sim, CALO_SPACE, inside, targets, seed=k, target_conditions=cond,
                            features=lambda x: features_numpy(x, cond), feature_names=FEATURE_NAMES)
        rows.append({"truth": truth.tolist(), "mean": r.mean.tolist(), "std": r.std.tolist(),
                     "start": r.start.tolist(),
                     "error_pct": ((r.mean - truth) / width * 100).tolist(),
                     "raw_error_pct": ((r.raw_mean - truth) / width * 100).tolist(),
                     "start_error_pct": ((r.start - truth) / width * 100).tolist(),
                     "closure_feature_pulls": clo["feature_pulls"], "fit_s": fit_s})
    src = f"loaded {args.emulator}" if args.emulator else f"pre-trained in {pretrain_s:.0f} s"
    print(f"emulator: {src}; fit preset {args.preset} {args.fit}; test beam "
          f"{cfg.events_per_energy} showers at each of {list(cfg.beam_energies_gev)} GeV")
    print("| point | param | truth | fit mean +- std | error % of range | before bias correction % "
          "| start (S regression) % |")
    print("|---|---|---|---|---|---|---|")
    for k, row in enumerate(rows):
        for j, name in enumerate(CALO_SPACE.names):
            print(f"| {k + 1} | {name} | {row['truth'][j]:.4g} | {row['mean'][j]:.4g} +- "
                  f"{row['std'][j]:.2g} | {row['error_pct'][j]:+.2f} | "
                  f"{row['raw_error_pct'][j]:+.2f} | {row['start_error_pct'][j]:+.2f} |")
    worst = max(abs(e) for row in rows for e in row["error_pct"])
    print(f"\nmax |error| = {worst:.2f} % of range over {len(rows)} points x 4 parameters")
    for k, row in enumerate(rows):
        pulls = ", ".join(f"{n} {v:+.2f}" for n, v in row["closure_feature_pulls"].items())
        print(f"point {k + 1}: closure feature pulls (simulated at the fit vs targets, in target "
              f"std) {pulls}; fit {row['fit_s']:.0f} s")
    atomic_write_json(out / "accuracy.json", {"rows": rows, "max_abs_error_pct": worst,
                                              "pretrain_s": pretrain_s})


if __name__ == "__main__":
    main()
