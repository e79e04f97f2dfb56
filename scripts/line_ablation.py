"""Pre-training ablation on the line study: which stabiliser buys what.

Trains one emulator per variant (PretrainConfig overrides of the default preset) for --steps steps
and prints the emulator-vs-simulator report: per high-level line feature, the mean absolute bias
of the emulator against the simulator at the same parameters (simulator-vs-simulator floor beside
it). Variants run one after another; pass --variants to pick.

    python scripts/line_ablation.py --steps 3000
    python scripts/line_ablation.py --steps 3000 --variants default pure_energy_score
"""

from __future__ import annotations

import argparse
import json
import time

import magan
from magan.config import replace
from magan.studies.line.simulator import LINE_FEATURES, LINE_SPACE, line_features, line_simulator
from magan.validation.quality import compare_to_simulator

VARIANTS = {
    # the default preset: siamese (R1) + auxiliary regression + energy score x10
    "default": {},
    # the method's siamese game alone with weak energy score (the first working setting)
    "energy_x1_lr3e-4": {"energy_weight": 1.0, "lr_emulator": 3e-4, "noise_dim": 16},
    "energy_x3_lr6e-4": {"energy_weight": 3.0, "lr_emulator": 6e-4, "noise_dim": 16},
    # no siamese terms for E at all: the energy score alone (engression)
    "pure_energy_score": {"adversarial_weight": 0.0, "aux_weight": 0.0},
    # no energy score: siamese + auxiliary regression only
    "no_energy_score": {"energy_weight": 0.0},
}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--variants", nargs="*", default=list(VARIANTS))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    sim = line_simulator()
    rows = {}
    for name in args.variants:
        cfg = replace(magan.PRETRAIN_PRESETS["default"], steps=args.steps, **VARIANTS[name])
        t0 = time.perf_counter()
        emu = magan.train_emulator(sim, LINE_SPACE, cfg, seed=args.seed, progress=False)
        q = compare_to_simulator(emu, sim, n_points=32, n_per_point=32, seed=0,
                                 features=line_features, feature_names=LINE_FEATURES)
        rows[name] = {"s": time.perf_counter() - t0, "q": q}
        print(json.dumps({name: {k: round(v["bias_emulator"], 3)
                                 for k, v in q["features"].items()}}), flush=True)
    print(f"\nemulator bias vs simulator after {args.steps} steps (mean |E - T| of each feature "
          "over 32 points x 32 images; px unless noted)")
    print("| variant | " + " | ".join(LINE_FEATURES) + " | mean-image dist. | time s |")
    print("|---|" + "---|" * (len(LINE_FEATURES) + 2))
    floor = None
    for name, r in rows.items():
        f = r["q"]["features"]
        floor = {k: v["bias_simulator"] for k, v in f.items()}
        print(f"| {name} | " + " | ".join(f"{f[k]['bias_emulator']:.3f}" for k in LINE_FEATURES)
              + f" | {r['q']['pixels']['emulator_vs_simulator']['mean_image_rel']:.3f} | "
              f"{r['s']:.0f} |")
    if floor:
        print("| simulator vs simulator | " + " | ".join(f"{floor[k]:.3f}" for k in LINE_FEATURES)
              + f" | {r['q']['pixels']['simulator_vs_simulator']['mean_image_rel']:.3f} | |")


if __name__ == "__main__":
    main()
