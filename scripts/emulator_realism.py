"""Does the line study's emulator pass for the simulator? One table row per pre-training variant.

Each variant pre-trains the line study's emulator (default preset with PretrainConfig overrides,
the study's seed) and measures the three checks of ``magan validate`` that say whether emulated
images pass for simulated ones, on the same samples as the suite (same seeds):

* classifier: AUC of the two-sample classifier (image + parameters), 2000 points, 800 steps;
  the simulator-vs-simulator floor (T' against T) beside it, computed once per seed;
* spread ratio std_E / std_T per line feature, median over 32 points x 32 images;
* out-of-range: the fraction of emulated images with a pixel outside the study's value range;
* the worst separation power of a line feature (and which).

With ``--fit``, also the study's default fit at the default truth (500 targets): the largest
error in % of range. Results go to ``--out`` (JSON), one entry per variant name; variants already
there are skipped, so an interrupted run resumes.

    python scripts/emulator_realism.py base "nc:noise_channels=true" "s9k:steps=9000"
    python scripts/emulator_realism.py --fit base
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

import magan
from magan.config import replace_from_text
from magan.studies.line.simulator import LINE_FEATURES, LINE_SPACE
from magan.studies.line.study import DEFAULT_TRUTH, PRESETS, STUDY, _targets
from magan.validation.checks import check_classifier, check_constraints, check_distributions
from magan.validation.quality import variety
from magan.validation.samples import draw
from magan.validation.two_sample import classifier_two_sample_test

N_SAMPLES, CLASSIFIER_STEPS = 2000, 800  # the validation suite's defaults


def realism(emu, sim, seed: int) -> dict:
    """The realism numbers of ``emu`` on the validation suite's samples (seeds as the suite's)."""
    s = draw(emu, sim, np.random.default_rng([seed, 1001]), N_SAMPLES)
    dist, _ = check_distributions(s, features=STUDY.features, feature_names=LINE_FEATURES)
    sep = {k: v["emulator"]["separation_power"] for k, v in dist["variables"].items()
           if k != "voxels"}
    worst = max(sep, key=sep.get)
    cls = check_classifier(emu, s, steps=CLASSIFIER_STEPS, seed=seed)
    con = check_constraints(STUDY.constraints, s)["constraints"]["value_range"]
    var = variety(emu, sim, np.random.default_rng([seed, 1002]), n_points=32, per_point=32,
                  features=STUDY.features, feature_names=LINE_FEATURES)
    return {"auc": cls["auc"], "auc_err": cls["auc_stderr"],
            "spread_ratio": var["per_feature_median_ratio"],
            "spread_ratio_median": var["median_spread_ratio_emulator"],
            "spread_ratio_floor": var["median_spread_ratio_floor"],
            "out_of_range": con["emulator"]["rate"], "out_of_range_sim": con["simulator"]["rate"],
            "worst_separation": [worst, sep[worst]], "separation": sep}


def classifier_floor(sim, emu, seed: int) -> dict:
    """The classifier AUC of T' against T on the same samples: what a perfect emulator gets."""
    s = draw(emu, sim, np.random.default_rng([seed, 1001]), N_SAMPLES)
    res = classifier_two_sample_test(s.t1, s.t2, conditions_a=s.unit, conditions_b=s.unit,
                                     steps=CLASSIFIER_STEPS, seed=seed, progress=False)
    return {"auc": res["auc"], "auc_err": res["auc_stderr"]}


def fit_error(emu, sim, seed: int) -> dict:
    """The study's default fit at the default truth: errors in % of range."""
    targets = _targets(sim, DEFAULT_TRUTH, PRESETS["default"].n_targets, seed)
    res = magan.fit(emu, targets, PRESETS["default"].fit, seed=seed, simulator=sim,
                    features=STUDY.fit_features, progress=False)
    err = 100.0 * (np.asarray(res.mean) - DEFAULT_TRUTH) / LINE_SPACE.width
    return {"error_pct": dict(zip(LINE_SPACE.names, err.tolist())),
            "max_abs_error_pct": float(np.max(np.abs(err)))}


def row(name: str, r: dict) -> str:
    sr = " | ".join(f"{r['spread_ratio'][k]:.2f}" for k in LINE_FEATURES)
    fit = f"{r['fit']['max_abs_error_pct']:.2f}" if "fit" in r else ""
    return (f"| {name} | {r['steps']} | {r['wall_s']:.0f} | {r['auc']:.3f} +- {r['auc_err']:.3f} | "
            f"{sr} | {100 * r['out_of_range']:.1f} | {r['worst_separation'][0]} "
            f"{r['worst_separation'][1]:.3f} | {fit} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("variants", nargs="*", default=["base"],
                    help="NAME or NAME:field=value,field=value (PretrainConfig overrides)")
    ap.add_argument("--set", nargs="*", default=[], help="overrides of one variant (--name)")
    ap.add_argument("--name", default=None, help="the name of the --set variant")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--fit", action="store_true", help="also run the default fit (about 1 min)")
    ap.add_argument("--out", default="runs/emulator_realism.json")
    ap.add_argument("--save", default="runs/emulator_realism", help="folder of the emulators")
    args = ap.parse_args()
    variants = [v.partition(":")[::2] for v in args.variants]
    if args.set:
        variants.append((args.name or ",".join(args.set), ",".join(args.set)))
    out = Path(args.out)
    results = json.loads(out.read_text()) if out.exists() else {}
    sim = line_simulator_once()
    for name, text in variants:
        key = f"{name}@seed{args.seed}"
        if key in results and (not args.fit or "fit" in results[key]):
            print(f"{name}: done already", flush=True)
            continue
        cfg = replace_from_text(PRESETS["default"].pretrain, text)
        workdir = Path(args.save) / key  # checkpoints and metrics as it goes: resumable
        if (workdir / "emulator").exists():
            emu = magan.load_emulator(workdir / "emulator")
            wall = emu.info["pretrain"]["timing"]["total_s"]  # inside train_emulator
        else:
            t0 = time.perf_counter()
            emu = magan.train_emulator(sim, LINE_SPACE, cfg, seed=args.seed, progress=False,
                                       features=STUDY.pretrain_features, workdir=workdir)
            wall = time.perf_counter() - t0
        r = results.get(key) or {"overrides": text, "steps": cfg.steps, "wall_s": wall,
                                 **realism(emu, sim, args.seed)}
        if args.fit:
            r["fit"] = fit_error(emu, sim, args.seed)
        fkey = f"floor@seed{args.seed}"
        if fkey not in results:
            results[fkey] = classifier_floor(sim, emu, args.seed)
        results[key] = r
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=1))
        print(row(name, r), flush=True)
    print("\n| variant | steps | wall s | AUC | " + " | ".join(LINE_FEATURES)
          + " | out-of-range % | worst sep. power | fit max err % |")
    print("|---|" + "---|" * (len(LINE_FEATURES) + 7))
    for key, r in results.items():
        if not key.startswith("floor@"):
            print(row(key, r))
    for key, r in results.items():
        if key.startswith("floor@"):
            print(f"simulator vs simulator ({key}): AUC {r['auc']:.3f} +- {r['auc_err']:.3f}")


def line_simulator_once():
    from magan.studies.line.simulator import line_simulator
    return line_simulator()


if __name__ == "__main__":
    main()
