"""The fit's closure check (magan.fitting.diagnostics.fit_closure) re-run on the fits that
scripts/generalisation.py stored, so the check can be judged against fits whose truth is known:
for every stored fit it simulates a fresh target set at the truth (1000 images, seed 5) and runs
the check with the stored std (diagonal covariance) twice: at the stored mean (a fit off by many
std should warn) and at the truth itself (a null test: it should not). Each time with the
summaries the fit uses (``Emulator.describe``: S's learned summaries, pixel statistics and the
structure descriptors of ``image_structure``) and, for comparison, with S's summaries and pixel
statistics alone. It prints the errors, the pulls, and each check's verdict (with the summary
that failed).

    python scripts/closure_recheck.py --simulator poisson_hits --out runs/generalisation
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

import magan
from magan.benchmarks import BENCHMARKS
from magan.fitting.diagnostics import STRUCTURE, fit_closure


def _verdict(d) -> str:
    if d.status != "warn":
        return d.status
    worst = max(d.numbers["summaries"].items(),
                key=lambda kv: kv[1]["difference_in_target_std"]
                / max(kv[1]["within_uncertainty_in_target_std"], 1e-300))[0]
    return f"warn ({worst})"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--simulator", required=True, choices=sorted(BENCHMARKS))
    ap.add_argument("--label", default="results", help="the results file OUT/<name>/<label>.json")
    ap.add_argument("--out", default="runs/generalisation")
    args = ap.parse_args()
    bench, folder = BENCHMARKS[args.simulator], Path(args.out) / args.simulator
    path = folder / f"{args.label}.json"
    if not path.exists():
        raise SystemExit(f"{path} does not exist; run scripts/generalisation.py --out {args.out} "
                         f"--label {args.label} first.")
    sim, emu = bench.simulator(), magan.load_emulator(folder / "emulator")
    names = emu.description_names
    keep = len(names) - len(STRUCTURE)

    def without_structure(images, conditions=None):
        return emu.describe(images, conditions)[:, :keep]

    rows = json.loads(path.read_text())["rows"]
    print("| truth | mode | error % of range | pull | closure at the fit | ... without structure "
          "| at the truth | ... without structure |")
    print("|---|---|---|---|---|---|---|---|")
    for key, row in sorted(rows.items()):
        k = int(key.split("/")[0])
        targets = sim.simulate(np.random.default_rng(5), np.tile(bench.truths[k], (1000, 1)),
                               bench.space)
        cov = np.diag(np.array(row["std"]) ** 2)
        cells = [_verdict(fit_closure(sim, bench.space, at, cov, targets, describe, seed=0,
                                      names=nm))
                 for at in (np.array(row["mean"]), bench.truths[k])
                 for describe, nm in ((emu.describe, names), (without_structure, names[:keep]))]
        print(f"| {k} | {key.split('/')[1]} | {' '.join(f'{e:+.1f}' for e in row['error_pct'])} "
              f"| {' '.join(f'{p:+.1f}' for p in row['pull'])} | {' | '.join(cells)} |",
              flush=True)


if __name__ == "__main__":
    main()
