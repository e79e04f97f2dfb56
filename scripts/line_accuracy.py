"""Parameter recovery of the line study at several truth points with one emulator.

Pre-trains one emulator with the chosen preset (or loads one with --emulator), then for each
truth point simulates a target set, fits, and prints a table: truth, fitted mean +- std, error in %
of the parameter's range, and where the fit started (S's regression estimate). Writes the table
as JSON too.

    python scripts/line_accuracy.py --preset default --out runs/line_accuracy
    python scripts/line_accuracy.py --emulator runs/line/emulator --out runs/line_accuracy
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from magan import fit, load_emulator, train_emulator
from magan.runtime.io import atomic_write_json
from magan.studies.line.simulator import (
    LINE_FEATURES,
    LINE_SPACE,
    line_features,
    line_simulator,
)
from magan.studies.line.study import STUDY, study_preset
from magan.validation.closure import closure_check

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reference_response import response  # noqa: E402

# Five points spread over the box; the last three each have parameters within 15 % of a bound.
TRUTHS = np.array([
    [0.20, 12.0, 4.0, 9.0],     # the study's default truth
    [-0.10, 15.0, 6.5, 8.0],    # near the centre
    [0.45, 9.0, 1.0, 12.0],     # m, c, x0 near bounds
    [-0.42, 19.0, 12.0, 5.0],   # m, c, x0, xsteps near bounds
    [0.05, 18.5, 11.5, 13.5],   # c, x0, xsteps near bounds
])


def reference_columns(result) -> dict:
    """The reference fits of a fit with ``bias_reference="around"`` (``reference_at`` and
    ``reference_means``, (K, 4) each) and their response slopes per parameter, as JSON columns;
    {} for a fit without them."""
    if result.reference_means is None or np.ndim(result.reference_at) != 2:
        return {}
    slopes, _ = response(result.reference_at, result.reference_means, LINE_SPACE)
    return {"reference_at": np.asarray(result.reference_at).tolist(),
            "reference_means": np.asarray(result.reference_means).tolist(),
            "response_slopes": slopes.tolist()}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--preset", default="default")
    ap.add_argument("--emulator", default=None, help="reuse a trained emulator folder")
    ap.add_argument("--out", default="runs/line_accuracy")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--init", default=None, help="override FitConfig.init (regressor|center)")
    ap.add_argument("--no-bias-correction", action="store_true",
                    help="fit without the simulator's reference set")
    ap.add_argument("--fit", default="", help="FitConfig overrides, e.g. replicas=6,steps=800")
    args = ap.parse_args()
    cfg = study_preset(args.preset)
    fit_cfg = cfg.fit
    from magan.config import replace, replace_from_text
    if args.fit:
        fit_cfg = replace_from_text(fit_cfg, args.fit)
    if args.init:
        fit_cfg = replace(fit_cfg, init=args.init)
    if args.no_bias_correction:
        fit_cfg = replace(fit_cfg, bias_correction=False)
    out = Path(args.out)
    sim = line_simulator()
    t0 = time.perf_counter()
    if args.emulator:
        emu = load_emulator(args.emulator)
    else:
        emu = train_emulator(sim, LINE_SPACE, cfg.pretrain, seed=args.seed, workdir=out,
                             features=STUDY.pretrain_features)
    pretrain_s = time.perf_counter() - t0
    rows = []
    width = LINE_SPACE.width
    for k, truth in enumerate(TRUTHS):
        near = [n for n, t, lo, hi in zip(LINE_SPACE.names, truth, LINE_SPACE.low, LINE_SPACE.high)
                if min(t - lo, hi - t) <= 0.15 * (hi - lo)]
        targets = sim.simulate(np.random.default_rng(1000 + k), np.tile(truth, (cfg.n_targets, 1)))
        t1 = time.perf_counter()
        r = fit(emu, targets, fit_cfg, seed=args.seed + k, simulator=sim,
                features=STUDY.fit_features)
        fit_s = time.perf_counter() - t1
        clo = closure_check(sim, LINE_SPACE, r.mean, targets, seed=k, features=line_features,
                            feature_names=LINE_FEATURES)
        rows.append({"truth": truth.tolist(), "near_bounds": near, "mean": r.mean.tolist(),
                     "std": r.std.tolist(), "start": r.start.tolist(),
                     "error_pct": ((r.mean - truth) / width * 100).tolist(),
                     "start_error_pct": ((r.start - truth) / width * 100).tolist(),
                     "raw_error_pct": ((r.raw_mean - truth) / width * 100).tolist(),
                     "closure_mean_image_rel": clo["fit"]["mean_image_rel"],
                     "closure_floor": clo["floor"]["mean_image_rel"], "fit_s": fit_s})
        rows[-1].update(reference_columns(r))
    print(f"emulator: "
          f"{'loaded ' + args.emulator if args.emulator else f'pre-trained in {pretrain_s:.0f} s'}"
          f"; fit preset {args.preset}, init {fit_cfg.init}")
    print("| point | param | truth | fit mean +- std | error % of range | before bias correction % "
          "| start (S regression) % |")
    print("|---|---|---|---|---|---|---|")
    for k, row in enumerate(rows):
        for j, name in enumerate(LINE_SPACE.names):
            flag = " (near bound)" if name in row["near_bounds"] else ""
            print(f"| {k + 1} | {name}{flag} | {row['truth'][j]:.3f} | {row['mean'][j]:.3f} +- "
                  f"{row['std'][j]:.3f} | {row['error_pct'][j]:+.2f} | "
                  f"{row['raw_error_pct'][j]:+.2f} | {row['start_error_pct'][j]:+.2f} |")
    worst = max(abs(e) for row in rows for e in row["error_pct"])
    print(f"\nmax |error| = {worst:.2f} % of range over {len(rows)} points x 4 parameters")
    for k, row in enumerate(rows):
        print(f"point {k + 1}: closure mean-image distance {row['closure_mean_image_rel']:.4f} "
              f"(floor {row['closure_floor']:.4f}), fit {row['fit_s']:.0f} s"
              + ("" if "response_slopes" not in row else ", reference fits' response slopes "
                 + ", ".join(f"{v:+.2f}" for v in row["response_slopes"])))
    atomic_write_json(out / "accuracy.json", {"rows": rows, "max_abs_error_pct": worst,
                                              "pretrain_s": pretrain_s,
                                              "fit_init": fit_cfg.init})


if __name__ == "__main__":
    main()
