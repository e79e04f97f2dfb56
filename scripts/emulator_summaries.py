"""Where does a benchmark emulator differ from its simulator? At each benchmark truth, the mean of
every summary the closure check compares (:meth:`magan.Emulator.describe`: S's readings, pixel
statistics, power in four bands of spatial frequency, orientation coherence) over emulated
images, minus its mean over simulated ones, in units of the simulated images' spread at that
point. A perfect emulator gives about +-0.05 (1000 images each); several units mean the fit
compares the targets with images that differ from the simulator's where the fit cannot see it.

    python scripts/emulator_summaries.py --bench-root runs/generalisation
    python scripts/emulator_summaries.py --bench-root runs/gen_st1 --simulators random_field
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import magan
from magan.benchmarks.simulators import BENCHMARKS


def differences(emu, bench, k: int, n: int, seed: int) -> np.ndarray:
    """(F,) mean summary of ``n`` emulations minus that of ``n`` simulations at truth ``k``, in
    units of the simulations' std (0 where the simulations' std is at rounding level: a summary the
    parameters fix, such as the random field's pixel mean)."""
    p = np.tile(bench.truths[k], (n, 1))
    sim = bench.simulator().simulate(np.random.default_rng([seed, k]), p, bench.space)
    ft, fe = emu.describe(sim), emu.describe(emu.sample(p, seed=seed + k))
    sd = ft.std(axis=0)
    fixed = sd <= 1e-5 * (1.0 + np.abs(ft.mean(axis=0)))  # set by the parameters (to rounding)
    return np.where(fixed, 0.0, (fe.mean(axis=0) - ft.mean(axis=0)) / np.where(fixed, 1.0, sd))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--bench-root", required=True,
                    help="a scripts/generalisation.py --out folder (its <simulator>/emulator)")
    ap.add_argument("--simulators", default=",".join(BENCHMARKS))
    ap.add_argument("--n", type=int, default=1000, help="images per source and truth")
    ap.add_argument("--seed", type=int, default=5)
    args = ap.parse_args()
    for name in args.simulators.split(","):
        if name not in BENCHMARKS:
            raise SystemExit(f"--simulators: unknown {name!r}; choose from {sorted(BENCHMARKS)}")
        path = Path(args.bench_root) / name / "emulator"
        if not (path / "emulator.json").exists():
            print(f"{name}: no emulator at {path}, skipped")
            continue
        emu, bench = magan.load_emulator(path), BENCHMARKS[name]
        names = [nm.replace("S's reading of ", "S: ") for nm in emu.description_names]
        print(f"\n{name} ({path}): emulated minus simulated mean, in simulated std\n")
        print("| truth | " + " | ".join(names) + " | largest |")
        print("|---" * (len(names) + 2) + "|")
        for k in range(len(bench.truths)):
            d = differences(emu, bench, k, args.n, args.seed)
            j = int(np.argmax(np.abs(d)))
            print(f"| {k} | " + " | ".join(f"{v:+.2f}" for v in d)
                  + f" | {abs(d[j]):.2f} ({names[j]}) |", flush=True)


if __name__ == "__main__":
    main()
