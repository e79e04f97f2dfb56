"""Fit settings side by side on one line emulator: the five truths of scripts/line_accuracy.py,
500 target images each (seeds 1000 + k), fitted with the simulator given (fit seed k), through the
library's default FitConfig plus the given overrides. Prints one row per truth (error and pull
per parameter, warnings, seconds) and a summary row (largest |error| in % of range, rms pull per
parameter, fraction of |pull| < 2, mean seconds); writes OUT/<label>.json.

    python scripts/line_fit_settings.py --emulator runs/line_emu/emulator --label base
    python scripts/line_fit_settings.py --emulator runs/line_emu/emulator --label learned \\
        --fit "feature_weight=10"

(runs/line_emu/emulator: ``magan study line`` 's default pre-training, seed 0.)
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

import magan
from magan.config import replace_from_text
from magan.fitting.diagnostics import FitWarning
from magan.runtime.io import atomic_write_json
from magan.studies.line.simulator import LINE_SPACE, line_simulator

sys.path.insert(0, str(Path(__file__).resolve().parent))
from line_accuracy import TRUTHS  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--emulator", required=True)
    ap.add_argument("--label", required=True)
    ap.add_argument("--fit", default="", help="FitConfig overrides, e.g. feature_weight=10")
    ap.add_argument("--out", default="runs/line_fit_settings")
    args = ap.parse_args()
    emu, sim = magan.load_emulator(args.emulator), line_simulator()
    cfg = replace_from_text(magan.FitConfig(), args.fit)
    rows = []
    print(f"| {args.label} truth | error % of range (m, c, x0, xsteps) | pull | warnings | s |")
    print("|---|---|---|---|---|")
    for k, truth in enumerate(TRUTHS):
        targets = sim.simulate(np.random.default_rng(1000 + k), np.tile(truth, (500, 1)),
                               LINE_SPACE)
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FitWarning)
            r = magan.fit(emu, targets, cfg, seed=k, simulator=sim, progress=False)
        err = (r.mean - truth) / LINE_SPACE.width * 100
        pull = (r.mean - truth) / r.std
        rows.append({"error_pct": err.tolist(), "pull": pull.tolist(), "warnings": r.warnings,
                     "fit_s": time.perf_counter() - t0})
        print(f"| {k} | {' '.join(f'{e:+.2f}' for e in err)} | "
              f"{' '.join(f'{p:+.2f}' for p in pull)} | {', '.join(r.warnings) or '-'} | "
              f"{rows[-1]['fit_s']:.0f} |", flush=True)
    e = np.array([x["error_pct"] for x in rows])
    p = np.array([x["pull"] for x in rows])
    summary = {"max_abs_error_pct": float(np.abs(e).max()),
               "rms_pull": np.sqrt((p ** 2).mean(axis=0)).tolist(),
               "fraction_pull_within_2": float((np.abs(p) < 2).mean()),
               "mean_fit_s": float(np.mean([x["fit_s"] for x in rows]))}
    print(f"\n{args.label} ({args.fit or 'defaults'}): max |error| "
          f"{summary['max_abs_error_pct']:.2f} % of range; rms pull "
          f"{', '.join(f'{v:.2f}' for v in summary['rms_pull'])}; |pull| < 2 in "
          f"{100 * summary['fraction_pull_within_2']:.0f} %; {summary['mean_fit_s']:.0f} s per fit")
    atomic_write_json(Path(args.out) / f"{args.label}.json",
                      {"fit": args.fit, "rows": rows, "summary": summary})


if __name__ == "__main__":
    main()
