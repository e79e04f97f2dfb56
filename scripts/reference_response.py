"""How does a fit respond to its truth near where it landed? Prints one table row per truth.

For each truth of a benchmark simulator: the default fit with the simulator given (``magan.fit``,
seed 0, the benchmark's targets at that truth) through the emulator that a
``scripts/generalisation.py`` run stored (``BENCH_ROOT/SIMULATOR/emulator``). Its reference sets,
simulated at points scattered around the fit (``FitResult.reference_at``) and fitted the same way
(``FitResult.reference_means``), sample the fit's response to its truth there: regressed on
their truths (unit cube, least squares with an intercept), a well-identified parameter has a
slope near 1, one the fit does not follow a slope near 0 (or below). Printed: the fit's error
(% of range) and pull per parameter, its warnings, the reference points' scatter (unit cube),
each parameter's own slope, and the singular values of the whole response matrix.

    MAGAN_QUIET=1 python scripts/reference_response.py --bench-root runs/gen_sn9k \\
        --simulator two_populations --truths 2,0
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import magan
from magan.benchmarks.simulators import BENCHMARKS
from magan.fitting.diagnostics import response_slopes


def response(at, found, space) -> tuple[np.ndarray, np.ndarray]:
    """(per-parameter slopes (P,), singular values of the response matrix) of the reference fits'
    means ``found`` (K, P) on their truths ``at`` (K, P), both mapped to ``space``'s unit cube;
    the slopes are those of the fit's ``follows_truth`` check (:func:`magan.fitting.diagnostics.
    response_slopes`: points clipped to a bound in a parameter left out of its slope; the
    singular values use every point)."""
    u_at, u_found = space.to_unit(at), space.to_unit(found)
    slopes = response_slopes(u_at, u_found)[0]
    design = np.c_[np.ones(len(at)), u_at - u_at.mean(axis=0)]
    coef, *_ = np.linalg.lstsq(design, u_found, rcond=None)
    return slopes, np.linalg.svd(coef[1:], compute_uv=False)


def truths(text: str) -> list[int]:
    """``"2,0"`` -> [2, 0]; a clear error for anything else."""
    try:
        return [int(t) for t in text.split(",")]
    except ValueError:
        raise SystemExit(f"--truths must be comma-separated integers, got {text!r}.") from None


def _fmt(v) -> str:
    return ", ".join(f"{x:+.2f}" for x in v)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bench-root", type=Path, required=True,
                    help="folder of a scripts/generalisation.py run")
    ap.add_argument("--simulator", required=True, choices=sorted(BENCHMARKS))
    ap.add_argument("--truths", default="0,1,2,3,4", help="comma-separated truth indices")
    ap.add_argument("--n-targets", type=int, default=1000, help="target images per truth")
    args = ap.parse_args()
    folder = args.bench_root / args.simulator / "emulator"
    if not folder.is_dir():
        raise SystemExit(f"{folder} not found: run scripts/generalisation.py --out "
                         f"{args.bench_root} first (it stores each simulator's emulator there).")
    bench = BENCHMARKS[args.simulator]
    sim, emulator = bench.simulator(), magan.load_emulator(folder)
    width = np.asarray(bench.space.width)
    print(f"{args.simulator}: parameters {', '.join(bench.space.names)}")
    print("| truth | error % of range | pull | warnings | reference scatter (unit) "
          "| slope per parameter | singular values |")
    print("|---|---|---|---|---|---|---|")
    for k in truths(args.truths):
        res = magan.fit(emulator, bench.targets(k, args.n_targets), simulator=sim, seed=0,
                        progress=False)
        truth = np.asarray(bench.truths[k], np.float64)
        slopes, sv = response(res.reference_at, res.reference_means, bench.space)
        scatter = bench.space.to_unit(res.reference_at).std(axis=0)
        print(f"| {k} | {_fmt(100 * (res.mean - truth) / width)} "
              f"| {_fmt((res.mean - truth) / res.std)} | {', '.join(res.warnings) or 'none'} "
              f"| {', '.join(f'{x:.3f}' for x in scatter)} | {_fmt(slopes)} "
              f"| {', '.join(f'{x:.2f}' for x in sv)} |", flush=True)


if __name__ == "__main__":
    main()
