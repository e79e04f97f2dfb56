"""How well does the fit's ``follows_truth`` check separate failed fits from good ones?

Reads calibrations (the ``calibration.json`` that :func:`magan.calibrate`, ``magan validate`` and
``scripts/coverage.py`` write, with the reference points each fit stored) and, for every fit,
recomputes the check (:func:`magan.fitting.diagnostics.response_slopes`: the reference fits'
means regressed on where they were simulated) at each ``--sigmas`` value of
``DiagnosticLimits.response_sigmas`` (the library's is marked). A fit is a miss when a parameter
is more than 5 % of its range off its truth; a silent miss when none of its other checks warned.
It prints, per calibration and in total: fits, misses, silent misses without the check and with
it, the good fits (within 5 %) the check warns about (false alarms), and the quiet fits (no check
warned, this one at the library's setting): how many, the fraction of their errors (over all
parameters) within 2 reported std, and their largest error.

``--run STUDY`` first fits the first ``--n-truths`` truths of a study's committed validation
calibration (``studies/STUDY/validation/calibration.json``: the same truths, targets and seeds)
with the study's fit preset and features as they are today (the committed file's may be
older) into ``--out`` (resumable), so that they carry the reference points the committed file
lacks.

    MAGAN_QUIET=1 python scripts/follows_truth.py --run calorimeter --n-truths 4 \\
        --emulator runs/calorimeter/emulator --out runs/calo_ident
    python scripts/follows_truth.py runs/coverage_ident/*/default/calibration.json \\
        runs/calo_ident/calibration.json --sigmas 0,0.5,1,2
    python scripts/follows_truth.py runs/coverage_ident/*/default/calibration.json --truths 6:
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

import magan
from magan.benchmarks import BENCHMARKS
from magan.fitting.diagnostics import LIMITS, not_followed, reference_slopes
from magan.studies import get_study


def _spaces() -> dict:
    """{parameter names: (label, space)} of the studies and the benchmark simulators."""
    out = {tuple(b.space.names): (name, b.space) for name, b in BENCHMARKS.items()}
    for study in ("line", "calorimeter"):
        space = get_study(study).space
        out[tuple(space.names)] = (study, space)
    return out


def _fits(path: Path, spaces: dict, picked: slice = slice(None)) -> tuple[str, list]:
    """(label, [(miss, other checks warned, slopes (P,), stderrs (P,), points (P,))]) of the fits
    of one calibration file that stored reference points, truths ``picked`` only."""
    cal = json.loads(path.read_text())
    if "names" in cal:
        label, space = spaces.get(tuple(cal["names"]), (None, None))
    else:  # written by an older magan mid-run: the space whose box holds every truth
        match = [v for k, v in spaces.items() if len(k) == len(cal["truths"][0])
                 and _inside(cal["truths"], v[1])]
        label, space = match[0] if len(match) == 1 else (None, None)
    if space is None:
        raise SystemExit(f"{path}: its parameters match no study or benchmark simulator.")
    rows = []
    for t in range(len(cal["means"]))[picked]:
        at, found = cal.get("reference_at", [None] * (t + 1))[t], cal.get(
            "reference_means", [None] * (t + 1))[t]
        if at is None or np.ndim(at) != 2:
            continue
        diff = np.asarray(cal["means"][t]) - cal["truths"][t]
        err = np.abs(diff) / space.width
        other = any(w != "follows_truth" for w in cal["warnings"][t])
        rows.append((bool(err.max() > 0.05), other, *reference_slopes(space, at, found),
                     100 * err.max(), diff / np.asarray(cal["stds"][t])))
    return label, rows


def _inside(truths, space) -> bool:
    t = np.asarray(truths, np.float64)
    return bool(np.all((t >= space.low) & (t <= space.high)))


def _flags(slopes, errors, points, z: float) -> bool:
    """Whether the check warns at ``response_sigmas=z`` (the library's rule)."""
    return bool(np.any(not_followed(slopes, errors, points, z)))


def _quiet(rows: list) -> str:
    """The fits no check warned about (follows_truth at the library's setting): how many, the
    2-sigma coverage of their pulls over all parameters, their largest error (% of range)."""
    quiet = [r for r in rows if not r[1] and not _flags(*r[2:5], LIMITS.response_sigmas)]
    if not quiet:
        return "none"
    pulls = np.concatenate([r[6] for r in quiet])
    return (f"{len(quiet)}: {np.mean(np.abs(pulls) <= 2):.2f} within 2 std, max error "
            f"{max(r[5] for r in quiet):.2f} %")


def _counts(rows: list, z: float) -> tuple[int, int, int, int, int]:
    """(misses, silent without the check, silent with it, good fits, good fits it warns on)."""
    m = s0 = s1 = g = fa = 0
    for miss, other, slopes, errors, points, *_ in rows:
        flag = _flags(slopes, errors, points, z)
        m, g = m + miss, g + (not miss)
        s0 += miss and not other
        s1 += miss and not other and not flag
        fa += (not miss) and flag
    return m, s0, s1, g, fa


def _run(args) -> None:
    """Fit the first ``--n-truths`` truths of the study's validation calibration again."""
    study = get_study(args.run)
    committed = json.loads(Path(f"studies/{args.run}/validation/calibration.json").read_text())
    s = committed["settings"]
    truths = np.asarray(committed["truths"])[:args.n_truths]
    magan.calibrate(magan.load_emulator(args.emulator), study.make_simulator(), truths=truths,
                    n_targets=s["n_targets"], fit_config=study.fit_config, seed=s["seed"],
                    features=study.fit_features, workdir=args.out)


def _slice(text: str) -> slice:
    """``--truths START:STOP`` as a slice (either end may be left out)."""
    try:
        start, stop = (int(v) if v.strip() else None for v in text.split(":"))
    except ValueError:
        raise SystemExit(f"--truths must be START:STOP (e.g. 6: or 0:6), got {text!r}.") from None
    return slice(start, stop)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("calibrations", nargs="*", type=Path, help="calibration.json files")
    ap.add_argument("--sigmas", default=f"0,{LIMITS.response_sigmas:g},1,2",
                    help="values of response_sigmas to compare, comma-separated")
    ap.add_argument("--truths", default=":",
                    help="START:STOP, the truths of every file to count (a Python slice: 6: "
                         "leaves out the first six, e.g. those a threshold was chosen on)")
    ap.add_argument("--run", choices=("line", "calorimeter"), help="fit a study's truths first")
    ap.add_argument("--n-truths", type=int, default=4, help="with --run: how many truths")
    ap.add_argument("--emulator", help="with --run: the study's emulator folder")
    ap.add_argument("--out", type=Path, help="with --run: where its calibration.json goes")
    args = ap.parse_args()
    if args.run:
        if not (args.emulator and args.out):
            raise SystemExit("--run needs --emulator and --out.")
        _run(args)
        args.calibrations.append(args.out / "calibration.json")
    try:
        sigmas = [float(z) for z in args.sigmas.split(",")]
    except ValueError:
        raise SystemExit(f"--sigmas must be comma-separated numbers, got {args.sigmas!r}.") \
            from None
    missing = [str(p) for p in args.calibrations if not p.is_file()]
    if missing or not args.calibrations:
        raise SystemExit(f"No calibration file at {missing or 'all'}: give calibration.json paths.")
    spaces = _spaces()
    found = [_fits(p, spaces, _slice(args.truths)) for p in args.calibrations]
    print("| calibration | fits | misses (> 5 %) | silent misses without the check | "
          + " | ".join(f"z={z:g}{' (library)' if z == LIMITS.response_sigmas else ''}: silent "
                       "misses / false alarms" for z in sigmas) + " | quiet fits |")
    print("|---|---|---|---|" + "---|" * (len(sigmas) + 1))
    everything = [r for _, rows in found for r in rows]
    for (label, rows), path in [*zip(found, args.calibrations), (("all", everything), None)]:
        cells = [_counts(rows, z) for z in sigmas]
        m, s0, _, g, _ = cells[0]
        name = label if path is None else f"{label} (`{path}`)"
        print(f"| {name} | {len(rows)} | {m} | {s0} | "
              + " | ".join(f"{c[2]} / {c[4]} of {g}" for c in cells) + f" | {_quiet(rows)} |")


if __name__ == "__main__":
    main()
