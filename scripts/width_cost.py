"""Benchmark: what a wider emulator costs per pre-training step, side by side in one process.

The study's default pre-training step (S update + E update, its compiled loop programs on a fixed
batch, the lazy R1 penalty where its pattern falls; no simulator, no feature score) with E at each
width of ``--widths`` (``PretrainConfig.emulator_width``; S unchanged), timed as
``scripts/networks_ab.py`` times two networks: round after round, alternating between the
widths, so machine drift hits all alike. Prints a Markdown table:
E's parameters, ms per step (averaged over the R1 pattern), steps/s, and the time relative to the
first width.

    python scripts/width_cost.py --study line --widths 8,16,24,32   # about 3 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import jax
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench import step_programs, step_shapes, studies  # noqa: E402
from networks_ab import summary, time_round  # noqa: E402

from magan.config import replace  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--study", default="line", choices=["line", "calorimeter"])
    ap.add_argument("--widths", default="8,16,24,32", help="comma-separated emulator widths")
    ap.add_argument("--rounds", type=int, default=10, help="timed rounds per width")
    args = ap.parse_args()
    widths = [int(w) for w in args.widths.split(",")]
    if not widths or min(widths) < 1:
        raise SystemExit(f"--widths must be integers >= 1, got {args.widths!r}.")
    st = studies()[args.study]
    param_dim, shape = step_shapes(st)
    runs = {}
    for w in widths:
        cfg = replace(st["cfg"], emulator_width=w)
        run = step_programs(param_dim, shape, cfg, cfg.batch_size)
        runs[w] = {**run, "per": cfg.steps_per_call, "times": {p: [] for p in run["programs"]}}
        time_round(runs[w], calls=2)  # warm-up
        runs[w]["times"] = {p: [] for p in run["programs"]}
    for _ in range(args.rounds):
        for run in runs.values():
            time_round(run)
    res = {w: summary(run) for w, run in runs.items()}
    base = res[widths[0]]["avg_ms"]
    print(f"{args.study} study, default preset's pre-training step, batch "
          f"{st['cfg'].batch_size}, {args.rounds} rounds each (median per program, averaged over "
          "the R1 pattern)")
    print("| emulator_width | E's parameters | ms per step | steps/s | relative time |")
    print("|---|---|---|---|---|")
    for w in widths:
        n_e = sum(int(np.size(a)) for a in jax.tree.leaves(runs[w]["state"]["e"]))
        print(f"| {w} | {n_e:,} | {res[w]['avg_ms']:.1f} | {res[w]['steps_per_s']:.1f} "
              f"| {res[w]['avg_ms'] / base:.2f} |")


if __name__ == "__main__":
    main()
