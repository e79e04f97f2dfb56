"""The fit's closure check (magan.fitting.diagnostics.fit_closure) re-run on stored fits whose
truth is known, so the check can be judged: the fits that scripts/generalisation.py stored
(--simulator), or the fits of a calibration (--calibration, the ``calibration.json`` that
``magan validate`` writes, with --study and --emulator). For every fit it simulates a fresh target
set at the truth (1000 images, or the calibration's number, seed 5; at conditions drawn over the
emulator's condition space when it has one) and runs the check with the stored std (diagonal
covariance) twice: at the stored mean (a fit off by many std should warn) and at the truth itself
(a null test: it should not). Each time with the summaries the fit uses (``Emulator.describe``:
S's learned summaries, pixel statistics and the structure descriptors of ``image_structure``)
and, for comparison, with S's summaries and pixel statistics alone. It prints the errors, the
pulls, and each check's verdict (with the summary that failed).

    python scripts/closure_recheck.py --simulator poisson_hits --out runs/generalisation
    python scripts/closure_recheck.py --study calorimeter --emulator runs/calorimeter/emulator \\
        --calibration studies/calorimeter/validation/calibration.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

import magan
from magan.benchmarks import BENCHMARKS
from magan.fitting.diagnostics import STRUCTURE, fit_closure
from magan.studies import get_study


def _verdict(d) -> str:
    return f"warn ({d.numbers['nearest_its_limit']})" if d.status == "warn" else d.status


def _generalisation_fits(args):
    """(simulator, space, emulator, n_targets, [(label, truth, mean, std)]) of stored benchmark
    fits."""
    bench, folder = BENCHMARKS[args.simulator], Path(args.out) / args.simulator
    path = folder / f"{args.label}.json"
    if not path.exists():
        raise SystemExit(f"{path} does not exist; run scripts/generalisation.py --out {args.out} "
                         f"--label {args.label} first.")
    rows = json.loads(path.read_text())["rows"]
    fits = [(key, bench.truths[int(key.split("/")[0])], np.array(row["mean"]),
             np.array(row["std"])) for key, row in sorted(rows.items())]
    return bench.simulator(), bench.space, magan.load_emulator(folder / "emulator"), 1000, fits


def _calibration_fits(args):
    """The same for the fits of a calibration.json."""
    cal = json.loads(Path(args.calibration).read_text())
    study = get_study(args.study)
    fits = [(str(i), np.array(t), np.array(m), np.array(s))
            for i, (t, m, s) in enumerate(zip(cal["truths"], cal["means"], cal["stds"]))]
    return (study.make_simulator(), study.space, magan.load_emulator(args.emulator),
            int(cal["settings"]["n_targets"]), fits)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--simulator", choices=sorted(BENCHMARKS), help="a benchmark simulator")
    ap.add_argument("--label", default="results", help="the results file OUT/<name>/<label>.json")
    ap.add_argument("--out", default="runs/generalisation")
    ap.add_argument("--calibration", help="a calibration.json of magan validate (with --study)")
    ap.add_argument("--study", help="the study the calibration belongs to")
    ap.add_argument("--emulator", help="the emulator folder the calibration used")
    args = ap.parse_args()
    if bool(args.simulator) == bool(args.calibration):
        ap.error("give either --simulator or --calibration (with --study and --emulator)")
    if args.calibration and not (args.study and args.emulator):
        ap.error("--calibration needs --study and --emulator")
    sim, space, emu, n, fits = (_generalisation_fits if args.simulator else _calibration_fits)(args)
    names = emu.description_names
    keep = len(names) - len(STRUCTURE)

    def without_structure(images, conditions=None):
        return emu.describe(images, conditions)[:, :keep]

    print("| fit | error % of range | pull | closure at the fit | ... without structure "
          "| at the truth | ... without structure |")
    print("|---|---|---|---|---|---|---|")
    for label, truth, mean, std in fits:
        rng = np.random.default_rng(5)
        cond = None if emu.conditions is None else emu.conditions.sample(rng, n)
        targets = sim.simulate(rng, np.tile(truth, (n, 1)), space, conditions=cond)
        cov = np.diag(std ** 2)
        cells = [_verdict(fit_closure(sim, space, at, cov, targets, describe, cond, seed=0,
                                      names=nm))
                 for at in (mean, truth)
                 for describe, nm in ((emu.describe, names), (without_structure, names[:keep]))]
        err = (mean - truth) / space.width * 100
        print(f"| {label} | {' '.join(f'{e:+.1f}' for e in err)} "
              f"| {' '.join(f'{p:+.1f}' for p in (mean - truth) / std)} | {' | '.join(cells)} |",
              flush=True)


if __name__ == "__main__":
    main()
