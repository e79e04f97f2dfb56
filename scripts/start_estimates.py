"""Where S places the targets of each benchmark truth: the fit's starting point against the truth.

For every benchmark emulator under --out (the folders ``scripts/generalisation.py`` writes) this
simulates the same target sets as that script (seed 0, 1000 images per truth unless told), reads
them with S's regression head (``Emulator.estimate``, averaged over the images: where a default
fit starts, and where ``bias_reference="start"`` measures the emulator's bias) and prints, per
parameter, the truth, the estimate and its error in % of the range at each of the five truths,
and the slope of the estimate against the truth over the five (1: S reads the parameter without
shrinkage; 0: it reads the same value whatever the truth). A per-image regressor averaged over
images shrinks toward the middle of the box where one image says little about a parameter.

    python scripts/start_estimates.py --out runs/generalisation
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import magan
from magan.benchmarks import BENCHMARKS


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--out", default="runs/generalisation",
                    help="folder of scripts/generalisation.py (OUT/<name>/emulator)")
    ap.add_argument("--n-targets", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    found = [b for name, b in sorted(BENCHMARKS.items())
             if (Path(args.out) / name / "emulator").exists()]
    if not found:
        raise SystemExit(f"No benchmark emulator under {args.out}/<name>/emulator; run "
                         f"scripts/generalisation.py --out {args.out} first.")
    print("| simulator | parameter | truth: estimate (error % of range) at truths 0-4 "
          "| slope of estimate on truth |")
    print("|---|---|---|---|")
    for bench in found:
        emu = magan.load_emulator(Path(args.out) / bench.name / "emulator")
        est = np.stack([emu.space.clip(emu.estimate(bench.targets(k, args.n_targets,
                                                                  args.seed))).mean(axis=0)
                        for k in range(len(bench.truths))])
        err = (est - bench.truths) / bench.space.width * 100
        for j, name in enumerate(bench.space.names):
            cells = ", ".join(f"{t:.3g}: {e:.3g} ({d:+.1f})"
                              for t, e, d in zip(bench.truths[:, j], est[:, j], err[:, j]))
            slope = np.polyfit(bench.truths[:, j], est[:, j], 1)[0]
            print(f"| {bench.name} | {name} | {cells} | {slope:.2f} |", flush=True)


if __name__ == "__main__":
    main()
