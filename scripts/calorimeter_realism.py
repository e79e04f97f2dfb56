"""Does the calorimeter study's emulator pass for the simulator? One table row per pre-training
variant.

Each variant pre-trains the calorimeter study's emulator (its default preset with PretrainConfig
overrides, seed 0, the study's transform and training features; checkpointed, so an interrupted
variant resumes) and measures what issue 17 asks of it:

* classifier: AUC of the validation suite's two-sample classifier (image + unit-cube point incl.
  the beam energy, network space), 2000 points, 800 steps, the suite's seeds; the
  simulator-vs-simulator floor on the same samples beside it, once per seed;
* at the study's truth and 10, 30 and 100 GeV (3000 showers per source, ``physics_validation``,
  the study's seed): the sparsity separation power (target <= 0.05), the response resolution of
  the emulator over the simulator's (target within 10 %), the cell-energy spectrum's separation
  power, and the mean response's relative error.

Results go to ``--out`` (JSON), one entry per variant; variants already there are skipped.

    python scripts/calorimeter_realism.py base "pm1:pixel_marginal_weight=1.0"
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

import magan
from magan.config import replace_from_text
from magan.runtime.io import atomic_write_json
from magan.studies.calorimeter.model import CALO_TRANSFORM, calorimeter_simulator
from magan.studies.calorimeter.physics import physics_validation, public
from magan.studies.calorimeter.simulator import CALO_SPACE
from magan.studies.calorimeter.study import DEFAULT_TRUTH, PRESETS, STUDY
from magan.validation.checks import check_classifier
from magan.validation.samples import draw
from magan.validation.two_sample import classifier_two_sample_test

N_SAMPLES, CLASSIFIER_STEPS = 2000, 800  # the validation suite's defaults
ENERGIES = (10.0, 30.0, 100.0)


def realism(emu, sim, seed: int) -> dict:
    """The realism numbers of ``emu``, and the classifier's simulator-vs-simulator floor."""
    s = draw(emu, sim, np.random.default_rng([seed, 1001]), N_SAMPLES)
    cls = check_classifier(emu, s, steps=CLASSIFIER_STEPS, seed=seed)
    t1, t2 = (np.asarray(emu.transform.forward(x, s.cond), np.float32) for x in (s.t1, s.t2))
    floor = classifier_two_sample_test(t1, t2, conditions_a=s.unit, conditions_b=s.unit,
                                       steps=CLASSIFIER_STEPS, seed=seed, progress=False)
    cfg = PRESETS["default"]
    phys = public(physics_validation(emu, sim, DEFAULT_TRUTH, ENERGIES, n=cfg.validation_events,
                                     seed=seed + 1, bins=cfg.bins))
    per = {}
    for e, row in phys["energies"].items():
        per[e] = {"sparsity_sp": row["separation_power"]["sparsity"],
                  "sparsity_floor": row["separation_floor"]["sparsity"],
                  "cells_sp": row["separation_power"]["cell_log10_mev"],
                  "resolution_ratio": row["resolution_emu"] / row["resolution_sim"],
                  "response_rel_diff": row["response_rel_diff"]}
    return {"auc": cls["auc"], "auc_err": cls["auc_stderr"], "floor_auc": floor["auc"],
            "floor_auc_err": floor["auc_stderr"], "energies": per}


def row(name: str, r: dict) -> str:
    e = r["energies"]
    sp = " / ".join(f"{e[k]['sparsity_sp']:.3f}" for k in e)
    res = " / ".join(f"{e[k]['resolution_ratio']:.2f}" for k in e)
    cells = " / ".join(f"{e[k]['cells_sp']:.3f}" for k in e)
    return (f"| {name} | {r['steps']} | {r['wall_s']:.0f} | {r['auc']:.3f} +- {r['auc_err']:.3f}"
            f" | {sp} | {res} | {cells} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("variants", nargs="*", default=["base"],
                    help="NAME or NAME:field=value,field=value (PretrainConfig overrides)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="runs/calorimeter_realism.json")
    ap.add_argument("--save", default="runs/calorimeter_realism", help="folder of the emulators")
    args = ap.parse_args()
    out = Path(args.out)
    results = json.loads(out.read_text()) if out.exists() else {}
    sim = calorimeter_simulator()
    for name, _, text in (v.partition(":") for v in args.variants):
        key = f"{name}@seed{args.seed}"
        if key in results:
            print(f"{name}: done already", flush=True)
            continue
        cfg = replace_from_text(PRESETS["default"].pretrain, text)
        workdir = Path(args.save) / key
        t0 = time.perf_counter()
        if (workdir / "emulator").exists():
            emu = magan.load_emulator(workdir / "emulator")
        else:
            emu = magan.train_emulator(sim, CALO_SPACE, cfg, seed=args.seed, progress=False,
                                       transform=CALO_TRANSFORM, features=STUDY.pretrain_features,
                                       workdir=workdir)
        wall = emu.info["pretrain"]["timing"]["total_s"] if emu.info.get("pretrain") else (
            time.perf_counter() - t0)
        results[key] = {"overrides": text, "steps": cfg.steps, "wall_s": wall,
                        **realism(emu, sim, args.seed)}
        atomic_write_json(out, results)
        print(row(name, results[key]), flush=True)
    print("\nAUC floor (simulator vs simulator): "
          + ", ".join(f"{k}: {r['floor_auc']:.3f} +- {r['floor_auc_err']:.3f}"
                      for k, r in results.items()))
    print("\n| variant | steps | pre-training s | classifier AUC | sparsity sep. power "
          "10/30/100 GeV | resolution emu/sim | cell spectrum sep. power |")
    print("|---|---|---|---|---|---|---|")
    for key, r in results.items():
        print(row(key, r))


if __name__ == "__main__":
    main()
