"""The fit's closure check (magan.fitting.diagnostics.fit_closure) re-run on the fits that
scripts/generalisation.py stored, so the check can be judged against fits whose truth is known:
for every stored fit it simulates a fresh target set at the truth (1000 images, seed 5), runs the
check at the stored mean with the stored std (diagonal covariance), and prints the truth's
errors, the pulls, and whether the check warns (and on which summary).

    python scripts/closure_recheck.py --simulator poisson_hits --label base
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

import magan
from magan.benchmarks import BENCHMARKS
from magan.fitting.diagnostics import fit_closure


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--simulator", required=True, choices=sorted(BENCHMARKS))
    ap.add_argument("--label", default="base")
    ap.add_argument("--out", default="runs/generalisation")
    args = ap.parse_args()
    bench, folder = BENCHMARKS[args.simulator], Path(args.out) / args.simulator
    sim, emu = bench.simulator(), magan.load_emulator(folder / "emulator")
    rows = json.loads((folder / f"{args.label}.json").read_text())["rows"]
    print("| truth | mode | error % of range | pull | closure |")
    print("|---|---|---|---|---|")
    for key, row in rows.items():
        k = int(key.split("/")[0])
        targets = sim.simulate(np.random.default_rng(5), np.tile(bench.truths[k], (1000, 1)),
                               bench.space)
        d = fit_closure(sim, bench.space, np.array(row["mean"]),
                        np.diag(np.array(row["std"]) ** 2), targets, emu.describe, seed=0,
                        names=emu.description_names)
        worst = ""
        if d.status == "warn":
            worst = max(d.numbers["summaries"].items(),
                        key=lambda kv: kv[1]["difference_in_target_std"]
                        / max(kv[1]["within_uncertainty_in_target_std"], 1e-300))[0]
        print(f"| {k} | {key.split('/')[1]} | {' '.join(f'{e:+.1f}' for e in row['error_pct'])} "
              f"| {' '.join(f'{p:+.1f}' for p in row['pull'])} | {d.status}"
              f"{' (' + worst + ')' if worst else ''} |", flush=True)


if __name__ == "__main__":
    main()
