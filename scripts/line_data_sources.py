"""The line study pre-trained from three sources of the same simulator: in process, a bank of
offline simulations written to HDF5 (magan.BankSimulator), and an external program run per batch
(magan.CommandSimulator). Each is pre-trained with the same settings and seed, then checked
against the in-process simulator (feature bias and spread over 64 points) and fitted at the
default truth with the default fit. Prints a table.

    python scripts/line_data_sources.py --steps 1000 --bank-points 3000
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from magan import (
    FIT_PRESETS,
    PRETRAIN_PRESETS,
    BankSimulator,
    CommandSimulator,
    fit,
    train_emulator,
)
from magan.config import replace
from magan.runtime.io import atomic_write_json
from magan.studies.line.simulator import (
    IMAGE_SHAPE,
    LINE_FEATURES,
    LINE_SPACE,
    line_features,
    line_simulator,
)
from magan.studies.line.study import DEFAULT_TRUTH
from magan.validation.quality import compare_to_simulator


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--bank-points", type=int, default=3000)
    ap.add_argument("--per-point", type=int, default=4)
    ap.add_argument("--out", default="runs/line_sources")
    args = ap.parse_args()
    out = Path(args.out)
    sim = line_simulator()
    t0 = time.perf_counter()
    bank = BankSimulator.from_simulator(sim, LINE_SPACE, args.bank_points, args.per_point,
                                        np.random.default_rng(123))
    bank.save(out / "line_bank.h5")
    bank = BankSimulator.load(out / "line_bank.h5", LINE_SPACE)
    bank_s = time.perf_counter() - t0
    command = CommandSimulator([sys.executable, "-m", "magan.studies.line.command", "{params}",
                                "{out}", "{seed}"], IMAGE_SHAPE)
    cfg = replace(PRETRAIN_PRESETS["default"], steps=args.steps, checkpoint_every=0)
    targets = sim.simulate(np.random.default_rng(2), np.tile(DEFAULT_TRUTH, (500, 1)), LINE_SPACE)
    rows = {}
    for name, source in (("in process", sim), ("bank (HDF5)", bank), ("external command", command)):
        t1 = time.perf_counter()
        emu = train_emulator(source, LINE_SPACE, cfg, seed=0, progress=False)
        train_s = time.perf_counter() - t1
        q = compare_to_simulator(emu, sim, n_points=64, n_per_point=32, seed=1,
                                 features=line_features, feature_names=LINE_FEATURES)
        res = fit(emu, targets, FIT_PRESETS["default"], seed=0, simulator=sim, progress=False)
        err = (res.mean - DEFAULT_TRUTH) / LINE_SPACE.width * 100
        rows[name] = {"train_s": train_s,
                      "steps_per_s": emu.info["pretrain"]["timing"]["steps_per_s"],
                      "feature_bias": {k: v["bias_emulator"] for k, v in q["features"].items()},
                      "spread_ratio": {k: v["spread_ratio_emulator"]
                                       for k, v in q["features"].items()},
                      "fit_error_pct": dict(zip(LINE_SPACE.names, err.tolist())),
                      "max_abs_fit_error_pct": float(np.abs(err).max())}
        if name == "external command":
            rows[name]["program_calls"] = command.calls
    atomic_write_json(out / "sources.json", {"steps": args.steps, "bank_points": args.bank_points,
                                             "per_point": args.per_point, "bank_s": bank_s,
                                             "rows": rows})
    print(f"pre-training {args.steps} steps (default preset otherwise), seed 0; bank: "
          f"{args.bank_points} points x {args.per_point} images, written in {bank_s:.1f} s\n")
    print("| source | train s | steps/s | x_center bias px | slope bias | thickness spread ratio | "
          "fit error m / c / x0 / xsteps (% range) | max |")
    print("|---|---|---|---|---|---|---|---|")
    for name, r in rows.items():
        e = r["fit_error_pct"]
        print(f"| {name} | {r['train_s']:.0f} | {r['steps_per_s']:.1f} | "
              f"{r['feature_bias']['x_center']:.3f} | {r['feature_bias']['slope']:.4f} | "
              f"{r['spread_ratio']['thickness']:.2f} | "
              + " / ".join(f"{e[k]:+.1f}" for k in LINE_SPACE.names)
              + f" | {r['max_abs_fit_error_pct']:.1f} |")


if __name__ == "__main__":
    main()
