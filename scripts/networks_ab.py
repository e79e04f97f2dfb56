"""Side by side in one process: the pre-training step with this checkout's networks and with
``magan/networks.py`` of another git revision.

Both versions' E and S are built with the same parameters and compiled into the same training
programs (the loop's: ``steps_per_call`` steps per dispatch, the lazy R1 penalty where its pattern
falls); the timings alternate between the two, round after round, so machine drift hits both
alike. Prints a Markdown table: ms per step with and without R1, the average over the R1 pattern,
steps/s, and the ratio.

    python scripts/networks_ab.py --against 4c1ef0f          # about 3 minutes on a 2-core CPU
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jax
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench import step_programs, step_shapes, studies  # noqa: E402

import magan.nn.build as emulator_module  # noqa: E402
import magan.nn.models as networks_now  # noqa: E402


def networks_at(rev: str):
    """``magan/networks.py`` of git revision ``rev``, imported as a module of its own."""
    root = Path(__file__).resolve().parents[1]
    text = subprocess.run(["git", "show", f"{rev}:magan/networks.py"], cwd=root, check=True,
                          capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / f"networks_{rev}.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location(f"networks_{rev}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def programs(study: dict, networks):
    """bench.step_programs for the study, built with ``networks``' EmulatorNet and SiameseNet."""
    cfg = study["cfg"]
    saved = emulator_module.EmulatorNet, emulator_module.SiameseNet
    emulator_module.EmulatorNet, emulator_module.SiameseNet = (networks.EmulatorNet,
                                                               networks.SiameseNet)
    try:  # same parameters for both versions (same structure, same seed)
        run = step_programs(*step_shapes(study), cfg, cfg.batch_size)
    finally:
        emulator_module.EmulatorNet, emulator_module.SiameseNet = saved
    return {**run, "per": cfg.steps_per_call, "times": {p: [] for p in run["programs"]}}


def time_round(run: dict, calls: int = 4) -> None:
    for pattern, program in run["programs"].items():
        t0 = time.perf_counter()
        for _ in range(calls):
            run["state"], _ = program(run["state"], *run["args"])
        jax.block_until_ready(run["state"])
        run["times"][pattern].append((time.perf_counter() - t0) / calls)


def summary(run: dict) -> dict:
    per_call = {p: float(np.median(t)) for p, t in run["times"].items()}
    avg = sum(per_call[p] for p in run["patterns"]) / (len(run["patterns"]) * run["per"])
    plain = [t for p, t in per_call.items() if not any(p)]
    with_r1 = [t for p, t in per_call.items() if any(p)]
    out = {"avg_ms": 1e3 * avg, "steps_per_s": 1 / avg}
    if plain:
        out["plain_ms"] = 1e3 * plain[0] / run["per"]
        if with_r1:  # the call with one R1 step minus the plain steps beside it
            out["r1_ms"] = 1e3 * (with_r1[0] - plain[0] * (run["per"] - 1) / run["per"])
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--against", default="4c1ef0f", help="git revision of the other networks.py")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--studies", nargs="+", default=["line", "calorimeter"])
    args = ap.parse_args()
    other = networks_at(args.against)
    print("| study | networks | R1 step ms | plain step ms | ms/step (R1 every k) | steps/s | "
          "speed-up |\n|---|---|---|---|---|---|---|")
    for name in args.studies:
        study = studies()[name]
        runs = {args.against: programs(study, other),
                "this checkout": programs(study, networks_now)}
        for run in runs.values():
            time_round(run, calls=2)  # warm-up
            run["times"] = {p: [] for p in run["programs"]}
        for _ in range(args.rounds):
            for run in runs.values():
                time_round(run)
        res = {k: summary(r) for k, r in runs.items()}
        base = res[args.against]["avg_ms"]
        for label, r in res.items():
            print(f"| {name} | {label} | {r.get('r1_ms', float('nan')):.1f} | "
                  f"{r.get('plain_ms', float('nan')):.1f} | {r['avg_ms']:.1f} | "
                  f"{r['steps_per_s']:.1f} | {base / r['avg_ms']:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
