"""Pre-training variants of the calorimeter emulator, judged by the physics that matters.

Each variant pre-trains an emulator for ``--steps`` steps (seed 0), then compares 2000 emulated
with 2000 simulated showers at the nominal detector parameters and 10, 30 and 100 GeV: mean and
std of response (Esum/Einc), shower depth (X0) and lateral width (mm), and the separation power of
each. The variants are the steps by which the study's preset was found
(studies/calorimeter/README.md).

    python scripts/calorimeter_ablation.py --variant final --steps 6000
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from magan import PretrainConfig, train_emulator
from magan.config import replace
from magan.runtime.io import atomic_write_json
from magan.studies.calorimeter.model import (
    calorimeter_features,
    calorimeter_simulator,
    features_numpy,
    training_features,
)
from magan.studies.calorimeter.simulator import CALO_SPACE, NOMINAL, THRESHOLD_MEV
from magan.transforms import PowerTransform
from magan.validation.distances import separation_power

# name: (features, PretrainConfig changes, total_channel)
VARIANTS = {
    "three_features": ("3", dict(feature_weight=10.0), False),
    "three_features_w30": ("3", dict(feature_weight=30.0), False),
    "layer_features": ("23", dict(feature_weight=10.0), False),
    "layer_features_noise_channels": ("23", dict(feature_weight=10.0, noise_channels=True), False),
    "adversarial_0.1": ("23", dict(feature_weight=10.0, adversarial_weight=0.1), False),
    "adversarial_0": ("23", dict(feature_weight=10.0, adversarial_weight=0.0), False),
    "total_channel": ("23", dict(feature_weight=10.0), True),
    "total_channel_w30_pixel1": ("23", dict(feature_weight=30.0, energy_weight=1.0), True),
    "cosine_w30": ("23", dict(feature_weight=30.0, energy_weight=1.0, lr_schedule="cosine"), True),
    "final": ("23", dict(feature_weight=100.0, energy_weight=1.0, lr_schedule="cosine"), True),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--variant", choices=sorted(VARIANTS), default="final")
    ap.add_argument("--steps", type=int, default=6000)
    ap.add_argument("--out", default=None, help="run folder (default runs/calo_ablation/VARIANT)")
    args = ap.parse_args()
    feats, changes, total = VARIANTS[args.variant]
    out = args.out or f"runs/calo_ablation/{args.variant}"
    cfg = replace(PretrainConfig(), steps=args.steps, log_every=100, **changes)
    transform = PowerTransform(scale=5e-4, divide_by_condition=0, threshold=THRESHOLD_MEV,
                               total_channel=total)
    features = {"3": calorimeter_features, "23": training_features}[feats]
    sim = calorimeter_simulator()
    t0 = time.perf_counter()
    emu = train_emulator(sim, CALO_SPACE, cfg, seed=0, workdir=out, transform=transform,
                         features=features)
    train_s = time.perf_counter() - t0
    rng = np.random.default_rng(1)
    rows = []
    print(f"variant {args.variant}: {args.steps} steps in {train_s:.0f} s")
    print("| E GeV | response sim / emu (std) | depth X0 sim / emu (std) "
          "| width mm sim / emu (std) | S response | S depth | S width |")
    print("|---|---|---|---|---|---|---|")
    for e in (1e4, 3e4, 1e5):
        c = np.full((2000, 1), e)
        p = np.tile(NOMINAL, (2000, 1))
        a = features_numpy(sim.simulate(rng, p, CALO_SPACE, conditions=c), c)
        b = features_numpy(emu.sample(p, c), c)
        sp = [separation_power(a[:, j], b[:, j]) for j in range(3)]
        cells = [f"{a[:, j].mean():.4g} ({a[:, j].std():.2g}) / {b[:, j].mean():.4g} "
                 f"({b[:, j].std():.2g})" for j in range(3)]
        print(f"| {e / 1000:g} | " + " | ".join(cells) + " | "
              + " | ".join(f"{v:.3f}" for v in sp) + " |")
        rows.append({"energy_mev": e, "sim_mean": a.mean(0).tolist(), "sim_std": a.std(0).tolist(),
                     "emu_mean": b.mean(0).tolist(), "emu_std": b.std(0).tolist(),
                     "separation_power": sp})
    atomic_write_json(f"{out}/ablation.json", {"variant": args.variant, "steps": args.steps,
                                               "train_s": train_s, "rows": rows})


if __name__ == "__main__":
    main()
