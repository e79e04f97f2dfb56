"""Can a classifier tell a benchmark fit's simulations from its targets, where the closure
check's summaries cannot? Prints one table row per truth.

For each truth of a stored ``scripts/generalisation.py`` run (``BENCH_ROOT/SIMULATOR/results.json``,
the fits with the simulator given): the validation suite's two-sample classifier
(:func:`magan.validation.two_sample.classifier_two_sample_test`, 600 steps) on the benchmark's
targets at that truth (the run's ``n_targets``, its seed) against as many simulations at the
fit's mean, and, as the floor, against as many simulations at the truth. Images are divided by the
targets' std (the classifier wants O(1) inputs). AUC 0.5: indistinguishable.

    MAGAN_QUIET=1 python scripts/closure_classifier.py --bench-root runs/gen_sn9k \\
        --simulator two_populations --truths 2,0
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from magan.benchmarks.simulators import BENCHMARKS
from magan.validation.two_sample import classifier_two_sample_test

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reference_response import truths  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bench-root", type=Path, required=True,
                    help="folder of a scripts/generalisation.py run with --modes sim")
    ap.add_argument("--simulator", required=True, choices=sorted(BENCHMARKS))
    ap.add_argument("--truths", default="0,1,2,3,4", help="comma-separated truth indices")
    ap.add_argument("--steps", type=int, default=600, help="classifier training steps")
    args = ap.parse_args()
    path = args.bench_root / args.simulator / "results.json"
    if not path.is_file():
        raise SystemExit(f"{path} not found: run scripts/generalisation.py --out "
                         f"{args.bench_root} (with --modes sim) first.")
    stored = json.loads(path.read_text())
    bench, n = BENCHMARKS[args.simulator], int(stored["settings"]["n_targets"])
    sim = bench.simulator()
    print("| truth | fit's worst error, % of range | AUC targets vs simulations at the fit "
          "| floor (at the truth) |")
    print("|---|---|---|---|")
    for k in truths(args.truths):
        row = stored["rows"].get(f"{k}/sim")
        if row is None:
            raise SystemExit(f"{path} has no fit with the simulator at truth {k}.")
        truth, mean = np.asarray(stored["settings"]["truths"][k]), np.asarray(row["mean"])
        targets = bench.targets(k, n, seed=int(stored["settings"]["seed"]))
        rng = np.random.default_rng(5)
        at_fit = sim.simulate(rng, np.tile(mean, (n, 1)), bench.space)
        at_truth = sim.simulate(rng, np.tile(truth, (n, 1)), bench.space)
        scale = np.std(targets) + 1e-9
        fit, floor = (classifier_two_sample_test(targets / scale, x / scale, steps=args.steps,
                                                 progress=False) for x in (at_fit, at_truth))
        worst = float(np.max(np.abs(row["error_pct"])))
        print(f"| {k} | {worst:.2f} | {fit['auc']:.3f} +- {fit['auc_stderr']:.3f} "
              f"| {floor['auc']:.3f} +- {floor['auc_stderr']:.3f} |", flush=True)


if __name__ == "__main__":
    main()
