"""Generalisation benchmark: do fits work on simulators unlike the built-in studies?

For each benchmark simulator of :mod:`magan.benchmarks` (a Gaussian random field, a sparse Poisson
hit display, a mixture of round blobs and streaks) this pre-trains one emulator with the named
preset, saved in OUT/<name>/emulator and reused when already there, so several fit settings can
be compared on the same emulators. At each of the benchmark's five truth points it simulates
--n-targets target images (seeded per simulator and truth) and fits them (a) without the
simulator ("nosim") and (b) with it ("sim": bias correction on a simulated reference set), with
the preset's FitConfig plus the --fit-set overrides, the same for every simulator. It prints a
table per simulator (truth, fitted mean, error and reported std in % of the range, pull =
error/std, the names of the fit's warnings, seconds per fit) and a summary per simulator and mode
(largest error, fits with every parameter within 5 % of its range, rms pulls, fits that warned,
and silent misses: fits more than 3 reported std off that raised no warning).

Results go to OUT/<name>/<label>.json, rewritten after every truth; a rerun with the same
settings skips the fits already there (an interrupted run resumes), a rerun with other settings
under the same label is refused.

    python scripts/generalisation.py --preset tiny --n-targets 200 --truths 0   # smoke, minutes
    python scripts/generalisation.py                                            # default preset
    python scripts/generalisation.py --fit-set "bias_reference=around" --label around
    python scripts/generalisation.py --simulators poisson_hits --modes sim --truths 3,4
    python scripts/generalisation.py --pretrain-set "pixel_marginal_weight=1" --out runs/gen_pm
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
import warnings
from pathlib import Path

import numpy as np

import magan
from magan.benchmarks import BENCHMARKS
from magan.config import replace_from_text
from magan.runtime.io import atomic_write_json

MODES = ("nosim", "sim")
SILENT_PULL = 3.0  # a fit this many reported std off that raised no warning is a silent miss


def _parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--preset", default="default", help="pretrain and fit preset (tiny|default|..)")
    ap.add_argument("--n-targets", type=int, default=1000, help="target images per truth")
    ap.add_argument("--simulators", default=",".join(BENCHMARKS),
                    help=f"comma-separated, from {','.join(BENCHMARKS)}")
    ap.add_argument("--truths", default="0,1,2,3,4", help="comma-separated truth indices (0-4)")
    ap.add_argument("--modes", default=",".join(MODES), help="nosim, sim or both")
    ap.add_argument("--fit-set", default="", help='FitConfig overrides, "name=value,..."')
    ap.add_argument("--pretrain-set", default="",
                    help='PretrainConfig overrides for the emulators, "name=value,..." (stamped '
                         "beside each emulator; use another --out per setting)")
    ap.add_argument("--label", default="results", help="results file OUT/<name>/<label>.json")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="runs/generalisation")
    return ap.parse_args()


def _choices(text: str, allowed, what: str, kind=str) -> list:
    picked = [kind(s.strip()) for s in text.split(",") if s.strip()]
    bad = [p for p in picked if p not in allowed]
    if bad or not picked:
        raise SystemExit(f"--{what} {text!r}: {bad or 'nothing'} not among {list(allowed)}.")
    return picked


def _emulator(bench, cfg, folder: Path, preset: str, seed: int, overrides: str = ""):
    """Load OUT/<name>/emulator when there (made with the same resolved pre-training config and
    seed, so a later change of a library default is not mistaken for the same emulator), else
    train it."""
    path, stamp = folder / "emulator", folder / "emulator_settings.json"
    settings = {"preset": preset, "seed": seed}
    if overrides:
        settings["pretrain_set"] = overrides
    settings["pretrain_config"] = dataclasses.asdict(cfg)
    if (path / "emulator.json").exists():
        old = json.loads(stamp.read_text()) if stamp.exists() else dict(settings)
        if "pretrain_config" in old:  # a field added to PretrainConfig since, at its default,
            # is the emulator of then
            old["pretrain_config"] = {**dataclasses.asdict(type(cfg)()), **old["pretrain_config"]}
        same = (old == settings if "pretrain_config" in old  # older stamps: the text alone
                else old == {k: v for k, v in settings.items() if k != "pretrain_config"})
        if not same:
            raise SystemExit(f"{path} was trained with other settings ({stamp}) than "
                             f"{preset!r} + {overrides!r} resolve to today; pass another --out "
                             "(or delete the folder).")
        print(f"{bench.name}: reusing the emulator in {path}", flush=True)
        return magan.load_emulator(path)
    t0 = time.perf_counter()
    emu = magan.train_emulator(bench.simulator(), bench.space, cfg, seed=seed, workdir=folder)
    atomic_write_json(stamp, settings)
    print(f"{bench.name}: pre-trained in {time.perf_counter() - t0:.0f} s -> {path}", flush=True)
    return emu


def _fit_row(emu, bench, targets, cfg, mode: str, seed: int, truth) -> dict:
    """One fit and its numbers, in % of each parameter's range."""
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:  # the table names them instead
        warnings.simplefilter("always")
        r = magan.fit(emu, targets, cfg, seed=seed, progress=False,
                      simulator=bench.simulator() if mode == "sim" else None)
    fit_s = time.perf_counter() - t0
    width = bench.space.width
    err, std = (r.mean - truth) / width * 100, r.std / width * 100
    other = sorted({type(w.message).__name__ for w in caught
                    if type(w.message).__name__ != "FitWarning"})
    return {"mean": r.mean.tolist(), "std": r.std.tolist(), "error_pct": err.tolist(),
            "std_pct": std.tolist(),
            "pull": np.divide(err, std, out=np.full_like(err, np.inf), where=std > 0).tolist(),
            "warnings": r.warnings + [f"!{c}" for c in other], "fit_s": fit_s,
            "diagnostics": [d.to_dict() for d in r.diagnostics]}


def _load_results(path: Path, settings: dict) -> dict:
    if not path.exists():
        return {"settings": settings, "rows": {}}
    saved = json.loads(path.read_text())
    if saved.get("settings") != settings:
        old = saved.get("settings", {})
        diff = sorted(k for k in set(old) | set(settings) if old.get(k) != settings.get(k))
        raise SystemExit(f"{path} holds results made with other settings (differing: {diff}); "
                         "pass another --label, or delete the file to start over.")
    return saved


def _run_benchmark(bench, args, fit_cfg, modes, truths) -> dict:
    folder = Path(args.out) / bench.name
    pre_cfg = replace_from_text(magan.PRETRAIN_PRESETS[args.preset], args.pretrain_set)
    emu = _emulator(bench, pre_cfg, folder, args.preset, args.seed, args.pretrain_set)
    settings = {"preset": args.preset, "n_targets": args.n_targets, "seed": args.seed,
                "fit_config": dataclasses.asdict(fit_cfg), "truths": bench.truths.tolist()}
    path = folder / f"{args.label}.json"
    results = _load_results(path, settings)
    for k in truths:
        todo = [m for m in modes if f"{k}/{m}" not in results["rows"]]
        if not todo:
            continue
        truth = bench.truths[k]
        targets = bench.targets(k, args.n_targets, args.seed)
        for mode in todo:
            row = _fit_row(emu, bench, targets, fit_cfg, mode, args.seed + k, truth)
            results["rows"][f"{k}/{mode}"] = row
            print(f"{bench.name} truth {k} {mode}: {row['fit_s']:.0f} s", flush=True)
        atomic_write_json(path, results)
    return results


def _print_table(bench, results, modes, truths) -> None:
    print(f"\n{bench.name}: {bench.description}")
    print("| truth | mode | parameter | truth value | fit mean | error % | std % | pull "
          "| warnings | fit s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for k in truths:
        for mode in modes:
            row = results["rows"][f"{k}/{mode}"]
            for j, name in enumerate(bench.space.names):
                head = [str(k), mode] if j == 0 else ["", ""]
                tail = [", ".join(row["warnings"]) or "-", f"{row['fit_s']:.0f}"] if j == 0 \
                    else ["", ""]
                cells = head + [name, f"{bench.truths[k][j]:.4g}", f"{row['mean'][j]:.4g}",
                                f"{row['error_pct'][j]:+.2f}", f"{row['std_pct'][j]:.2f}",
                                f"{row['pull'][j]:+.2f}"] + tail
                print("| " + " | ".join(cells) + " |")


def _summary_row(bench, results, mode, truths) -> str:
    rows = [results["rows"][f"{k}/{mode}"] for k in truths]
    err = np.array([r["error_pct"] for r in rows])
    pull = np.array([r["pull"] for r in rows])
    rms = np.sqrt((pull ** 2).mean(axis=0))
    per_param = ", ".join(f"{n} {v:.2f}" for n, v in zip(bench.space.names, rms))
    within = int((np.abs(err).max(axis=1) <= 5.0).sum())
    warned = np.array([bool(r["warnings"]) for r in rows])
    silent = int(((np.abs(pull).max(axis=1) > SILENT_PULL) & ~warned).sum())
    return (f"| {bench.name} | {mode} | {len(rows)} | {np.abs(err).max():.2f} | {within} | "
            f"{per_param} | {(np.abs(pull) < 2).mean():.2f} | {int(warned.sum())} | {silent} | "
            f"{np.mean([r['fit_s'] for r in rows]):.0f} |")


def main():
    args = _parse_args()
    names = _choices(args.simulators, BENCHMARKS, "simulators")
    truths = _choices(args.truths, range(5), "truths", int)
    modes = _choices(args.modes, MODES, "modes")
    fit_cfg = replace_from_text(magan.FIT_PRESETS[args.preset], args.fit_set)
    done = {}
    for name in names:
        bench = BENCHMARKS[name]
        done[name] = _run_benchmark(bench, args, fit_cfg, modes, truths)
        _print_table(bench, done[name], modes, truths)
    print(f"\nsummary: preset {args.preset}, {args.n_targets} targets per truth, truths "
          f"{','.join(map(str, truths))}, fit overrides {args.fit_set or '-'}")
    print("| simulator | mode | fits | max abs error % | fits within 5 % | rms pull per parameter "
          f"| frac abs(pull) < 2 | fits that warned "
          f"| silent misses (abs(pull) > {SILENT_PULL:g}, no warning) | mean fit s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name in names:
        for mode in modes:
            print(_summary_row(BENCHMARKS[name], done[name], mode, truths))


if __name__ == "__main__":
    main()
