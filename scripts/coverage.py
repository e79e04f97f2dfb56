"""Coverage of the fit's reported uncertainty, over many truths, on the line study and the three
benchmark simulators, with the library's default fit (plus ``--fit-set`` overrides).

For each simulator it loads an already pre-trained emulator (the line study's default emulator
and those ``scripts/generalisation.py`` trains), then runs :func:`magan.calibrate`: ``--n-truths``
truth points drawn uniformly from the central 80 % of the box, ``--n-targets`` simulated target
images each, one fit per truth with the simulator given, exactly as ``magan.fit(..., seed=i)``.
It prints one table row per simulator: the standard deviation of the pulls (fit - truth) /
reported std per parameter (1 for an honest uncertainty), the 1- and 2-sigma coverage over all
parameters with its binomial standard error, the largest error in % of the range, the same
coverage for the statistical std alone (what the fit reports without the simulator), the seconds
per fit, how many fits warned, how many missed (a parameter more than 5 % of its range off), how
many of those said nothing without and with the fit's ``follows_truth`` check, and how many fits
within 5 % that check warned about. The check is recomputed from the reference points the
calibration stores, so it counts for runs made before it existed too (n/a where a run stored
none). Each calibration is resumable (``OUT/<name>/<label>/``).

    python scripts/generalisation.py --modes sim --truths 0    # trains the benchmark emulators
    MAGAN_QUIET=1 python scripts/coverage.py --n-truths 20 --label default
    MAGAN_QUIET=1 python scripts/coverage.py --simulators line --fit-set bias_reference=start \\
        --label start
    python scripts/coverage.py --report --label start --first 6    # compare labels on 6 truths
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np

import magan
from magan.benchmarks import BENCHMARKS
from magan.config import replace_from_text
from magan.runtime.io import atomic_write_json

SIMULATORS = ("line", *BENCHMARKS)
_PER_TRUTH = ("truths", "means", "stds", "seconds", "warnings", "raw_means", "stat_stds",
              "reference_at", "reference_means")  # calibration.json's lists, one entry a truth


def _parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--simulators", default=",".join(SIMULATORS),
                    help=f"comma-separated, from {','.join(SIMULATORS)}")
    ap.add_argument("--n-truths", type=int, default=20, help="truth points per simulator")
    ap.add_argument("--rounds", type=int, default=5,
                    help="reach --n-truths in this many rounds over the simulators (each round "
                         "adds truths to every simulator, so an interrupted run has some for all)")
    ap.add_argument("--n-targets", type=int, default=500, help="target images per truth")
    ap.add_argument("--fit-set", default="", help='FitConfig overrides, "name=value,.."')
    ap.add_argument("--label", default="default", help="results in OUT/<name>/<label>/")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--line-emulator", default="runs/line_emu/emulator",
                    help="the line study's emulator (default pre-training)")
    ap.add_argument("--bench-root", default="runs/generalisation",
                    help="where scripts/generalisation.py keeps <name>/emulator")
    ap.add_argument("--out", default="runs/coverage")
    ap.add_argument("--report", action="store_true",
                    help="fit nothing: print the table of the truths already fitted under "
                         "--label (an interrupted run's, too)")
    ap.add_argument("--first", type=int, default=0,
                    help="with --report: count only each simulator's first N truths (to compare "
                         "two --labels on the same truths; 0: all)")
    args = ap.parse_args()
    args.simulators = [s.strip() for s in args.simulators.split(",") if s.strip()]
    bad = [s for s in args.simulators if s not in SIMULATORS]
    if bad or not args.simulators:
        raise SystemExit(f"--simulators: {bad or 'nothing'} not among {list(SIMULATORS)}.")
    if args.n_truths < 2:
        raise SystemExit(f"--n-truths must be at least 2, got {args.n_truths}.")
    return args


def _emulator_and_simulator(name: str, args):
    """The stored emulator of simulator ``name`` and the simulator itself."""
    if name == "line":
        from magan.studies.line.simulator import line_simulator

        path, sim = Path(args.line_emulator), line_simulator()
    else:
        path, sim = Path(args.bench_root) / name / "emulator", BENCHMARKS[name].simulator()
    if not (path / "emulator.json").exists():
        raise SystemExit(f"No emulator in {path}: train it first (`magan study line --out ...` "
                         "or scripts/generalisation.py), or point --line-emulator/--bench-root "
                         "at it.")
    return magan.load_emulator(path), sim


def _space(name: str):
    """The parameter space of simulator ``name`` (what --report needs; no emulator loaded)."""
    if name == "line":
        from magan.studies.line.simulator import LINE_SPACE

        return LINE_SPACE
    return BENCHMARKS[name].space


def _follows_truth_warned(space, cal: dict) -> list:
    """Per truth whether the fit's ``follows_truth`` check warns, recomputed from the reference
    points the calibration stored (None where it stored none: files of older runs)."""
    from magan.fitting.diagnostics import not_followed, reference_slopes

    return [None if at is None or found is None
            else bool(not_followed(*reference_slopes(space, at, found)).any())
            for at, found in zip(cal.get("reference_at", []), cal.get("reference_means", []))]


def _row(name: str, cal: dict, space) -> dict:
    """One table row from a calibration result of simulator ``name`` (parameter ``space``)."""
    s, st, width = cal["summary"], cal["summary_statistical"], space.width
    n = s["n_truths"] * len(cal["names"])
    err = np.abs(np.array(cal["means"]) - np.array(cal["truths"]))
    missed = np.any(err / np.asarray(width) > 0.05, axis=1)
    others = np.array([any(x != "follows_truth" for x in w) for w in cal["warnings"]])
    warned = _follows_truth_warned(space, cal)
    follows = np.array([bool(f) for f in warned] + [False] * (len(missed) - len(warned)))
    return {
        "simulator": name, "n_truths": s["n_truths"],
        "pull_std": {k: v["pull_std"] for k, v in s["per_parameter"].items()},
        "coverage_1sigma": s["coverage_1sigma"], "coverage_2sigma": s["coverage_2sigma"],
        "coverage_2sigma_stderr": math.sqrt(max(s["coverage_2sigma"]
                                                * (1 - s["coverage_2sigma"]), 1e-12) / n),
        "max_abs_error_pct": float(np.max(err / np.asarray(width) * 100.0)),
        "statistical_coverage_2sigma": st["coverage_2sigma"],
        "statistical_pull_std": {k: v["pull_std"] for k, v in st["per_parameter"].items()},
        "seconds_per_fit": float(np.mean(cal["seconds"])),
        "fits_warned": int((others | follows).sum()),
        "missed_5pct": int(missed.sum()),
        "silent_without_follows_truth": int((missed & ~others).sum()),
        "silent_misses": int((missed & ~others & ~follows).sum()),
        "follows_truth_on_good_fits": int((follows & ~missed).sum()),
        "follows_truth_checked": sum(f is not None for f in warned),
    }


def _print(rows: list[dict], label: str) -> None:
    print(f"\n## {label}\n")
    print("| simulator | truths | pull std per parameter | 1-sigma cov. | 2-sigma cov. (+- se) "
          "| max abs error % of range | stat.-only 2-sigma cov. (pull std) | s per fit | "
          "fits warned | fits > 5 % off | silent misses without / with follows_truth | "
          "follows_truth on fits within 5 % |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        pulls = ", ".join(f"{k} {v:.2f}" for k, v in r["pull_std"].items())
        stat = ", ".join(f"{v:.1f}" for v in r["statistical_pull_std"].values())
        print(f"| {r['simulator']} | {r['n_truths']} | {pulls} | {r['coverage_1sigma']:.2f} | "
              f"{r['coverage_2sigma']:.2f} +- {r['coverage_2sigma_stderr']:.2f} | "
              f"{r['max_abs_error_pct']:.2f} | {r['statistical_coverage_2sigma']:.2f} ({stat}) | "
              f"{r['seconds_per_fit']:.0f} | {r['fits_warned']} | {r['missed_5pct']} | "
              f"{r['silent_without_follows_truth']} / {_checked(r, 'silent_misses')} | "
              f"{_checked(r, 'follows_truth_on_good_fits')} |", flush=True)


def _checked(row: dict, key: str) -> str:
    """``row[key]``, or n/a where no fit stored the reference points the check needs (older
    runs), with how many did where only some did."""
    k, n = row["follows_truth_checked"], row["n_truths"]
    return "n/a" if k == 0 else str(row[key]) + ("" if k == n else f" ({k} of {n} checked)")


def _report(args) -> None:
    """The table of what OUT/<name>/<label>/calibration.json holds, finished truths only."""
    from magan.validation.calibration import summarise_calibration

    rows = []
    for name in args.simulators:
        path = Path(args.out) / name / args.label / "calibration.json"
        if not path.exists():
            continue
        cal = json.loads(path.read_text())
        t = len(cal["means"])
        if args.first > 0 and args.first < t:  # every per-truth list cut to the first truths
            cal = {k: v[:args.first] if k in _PER_TRUTH else v for k, v in cal.items()}
            t = args.first
        if t < 2:
            continue
        space = _space(name)
        truths = np.array(cal["truths"])[:t]
        cal["summary"] = summarise_calibration(space.names, truths, cal["means"], cal["stds"],
                                               space.width)
        cal["summary_statistical"] = summarise_calibration(
            space.names, truths, cal["raw_means"], cal["stat_stds"], space.width)
        cal["truths"] = truths.tolist()
        cal["names"] = list(space.names)
        rows.append(_row(name, cal, space))
    _print(rows, f"{args.label}, truths fitted so far"
           + (f" (the first {args.first} at most)" if args.first else ""))


def main() -> None:
    args = _parse_args()
    if args.report:
        return _report(args)
    cfg = replace_from_text(magan.FitConfig(), args.fit_set)
    loaded = {name: _emulator_and_simulator(name, args) for name in args.simulators}
    steps = np.linspace(args.n_truths / args.rounds, args.n_truths, args.rounds)
    for n_truths in sorted({max(2, int(round(k))) for k in steps}):
        rows = []
        for name, (emu, sim) in loaded.items():
            work = Path(args.out) / name / args.label
            t0 = time.perf_counter()
            cal = magan.calibrate(emu, sim, n_truths=n_truths, n_targets=args.n_targets,
                                  fit_config=cfg, seed=args.seed, workdir=work)
            rows.append(_row(name, cal, emu.space))
            print(f"{name}: {n_truths} truths ({time.perf_counter() - t0:.0f} s) -> {work}",
                  flush=True)
        _print(rows, f"{args.label}, {n_truths} truths (fit-set: {args.fit_set or 'none'})")
    atomic_write_json(Path(args.out) / f"{args.label}.json",
                      {"fit_set": args.fit_set, "n_targets": args.n_targets, "rows": rows})


if __name__ == "__main__":
    main()
