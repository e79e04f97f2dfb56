"""Wall time of a fit calibration: one fit per truth (sequential) against several truths per
compiled program (``magan.calibrate(..., truths_per_program=c)``), and whether the summaries agree.

Trains one line-study emulator (``--preset``'s pre-training), then runs the same calibration (the
same truths and target sets) once per chunk size, each in a fresh process so that no run reuses
another's compiled programs. The table gives the wall time, the time per truth, the speed-up over
the sequential run, the coverage, and ``max |z|``: the largest difference of a parameter's bias
from the sequential run's, in units of their combined standard error (below 3: they agree).

    MAGAN_QUIET=1 python scripts/calibration_speed.py                     # tiny, 8 truths
    MAGAN_QUIET=1 python scripts/calibration_speed.py --n-truths 10 --chunks 1,2,5,10
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _worker(args) -> None:
    """One calibration with ``--chunk`` truths per program; its result (and wall seconds) to
    ``--out``."""
    import warnings

    import magan
    from magan.studies.line.simulator import line_simulator

    emu = magan.load_emulator(args.emulator)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a tiny emulator's fits warn; the table is the point
        res = magan.calibrate(emu, line_simulator(), n_truths=args.n_truths,
                              n_targets=args.n_targets, fit_config=magan.FIT_PRESETS[args.preset],
                              seed=args.seed, truths_per_program=args.chunk, progress=False)
    res["wall_s"] = time.perf_counter() - t0
    Path(args.out).write_text(json.dumps(res))


def _agreement(a: dict, b: dict) -> float:
    """The largest |z| over parameters of the difference of two summaries' biases (% of range),
    in units of their combined standard error."""
    z = []
    for name, pa in a["per_parameter"].items():
        pb = b["per_parameter"][name]
        se = math.hypot(pa["bias_stderr_pct_of_range"], pb["bias_stderr_pct_of_range"])
        z.append(abs(pa["bias_pct_of_range"] - pb["bias_pct_of_range"]) / max(se, 1e-12))
    return max(z)


def _table(results: dict) -> list[str]:
    """The markdown table of the runs ``results`` (chunk size -> calibration dict; 1 first)."""
    base = results[1]
    lines = ["| truths per program | programs | wall s | s per truth | speed-up | coverage 1σ "
             "| coverage 2σ | max bias |z| vs sequential |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for chunk, res in results.items():
        n = len(res["means"])
        s = res["summary"]
        label = f"{chunk} (sequential)" if chunk == 1 else str(chunk)
        z = "-" if chunk == 1 else f"{_agreement(base['summary'], s):.2f}"
        lines.append(f"| {label} | {math.ceil(n / chunk)} | {res['wall_s']:.1f} | "
                     f"{res['wall_s'] / n:.1f} | {base['wall_s'] / res['wall_s']:.2f}x | "
                     f"{s['coverage_1sigma']:.2f} | {s['coverage_2sigma']:.2f} | {z} |")
    return lines


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="tiny", help="pre-training and fit preset (tiny)")
    ap.add_argument("--n-truths", type=int, default=8, help="truth points (8)")
    ap.add_argument("--n-targets", type=int, default=64, help="target images per truth (64)")
    ap.add_argument("--chunks", default="1,2,4,8",
                    help="truths per program to time, comma-separated; 1 (sequential) always runs")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--emulator", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--chunk", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--out", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.chunk is not None:
        return _worker(args)
    chunks = sorted({1, *(int(c) for c in args.chunks.split(","))})
    if chunks[0] < 1 or args.n_truths < 2:
        raise SystemExit(f"--chunks must be >= 1 and --n-truths >= 2, got {args.chunks} and "
                         f"{args.n_truths}.")
    import magan
    from magan.studies.line.simulator import LINE_SPACE, line_simulator

    with tempfile.TemporaryDirectory() as tmp:
        emu = magan.train_emulator(line_simulator(), LINE_SPACE, magan.PRETRAIN_PRESETS[
            args.preset], seed=args.seed, progress=False)
        emu.save(Path(tmp) / "emulator")
        results = {}
        for chunk in chunks:
            out = Path(tmp) / f"chunk{chunk}.json"
            cmd = [sys.executable, __file__, "--emulator", str(Path(tmp) / "emulator"),
                   "--chunk", str(chunk), "--out", str(out), "--preset", args.preset,
                   "--n-truths", str(args.n_truths), "--n-targets", str(args.n_targets),
                   "--seed", str(args.seed)]
            env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_COMPILATION")}
            subprocess.run(cmd, check=True, env={**env, "MAGAN_QUIET": "1"})
            results[chunk] = json.loads(out.read_text())
            print(f"truths per program {chunk}: {results[chunk]['wall_s']:.1f} s", flush=True)
    print(f"\nline study, preset {args.preset}, {args.n_truths} truths x {args.n_targets} targets, "
          f"{os.cpu_count()} CPUs\n")
    print("\n".join(_table(results)))


if __name__ == "__main__":
    main()
