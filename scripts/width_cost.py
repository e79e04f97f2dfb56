"""Benchmark: what a wider emulator costs per pre-training step, side by side in one process.

The study's default pre-training step (S update + E update, its compiled loop programs on a fixed
batch, the lazy R1 penalty where its pattern falls; no simulator, no feature score) with E at each
width of ``--widths`` (``PretrainConfig.emulator_width``; S unchanged). The timings alternate
between the widths, round after round, so machine drift hits all alike. Prints a Markdown table:
E's parameters, ms per step (averaged over the R1 pattern), steps/s, and the time relative to the
first width.

    python scripts/width_cost.py --study line --widths 8,16,24,32   # about 3 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import jax
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench import step_programs, step_shapes, studies  # noqa: E402

from magan.config import replace  # noqa: E402


def _time_round(run: dict) -> float:
    """Seconds per step over one period of the R1 pattern (the state carried on)."""
    state, args = run["state"], run["args"]
    t = time.perf_counter()
    for pattern in run["patterns"]:
        state, _ = run["programs"][pattern](state, *args)
    jax.block_until_ready(state)
    run["state"] = state
    return (time.perf_counter() - t) / (len(run["patterns"]) * run["steps_per_call"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--study", default="line", choices=["line", "calorimeter"])
    ap.add_argument("--widths", default="8,16,24,32", help="comma-separated emulator widths")
    ap.add_argument("--rounds", type=int, default=20, help="timed rounds per width")
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
        run["steps_per_call"] = cfg.steps_per_call
        run["e_params"] = sum(int(np.size(a)) for a in jax.tree.leaves(run["state"]["e"]))
        _time_round(run)  # warm-up
        runs[w] = run
    times = {w: [] for w in widths}
    for _ in range(args.rounds):
        for w in widths:
            times[w].append(_time_round(runs[w]))
    base = float(np.median(times[widths[0]]))
    print(f"{args.study} study, default preset's pre-training step, batch "
          f"{st['cfg'].batch_size}, {args.rounds} rounds each (median)")
    print("| emulator_width | E's parameters | ms per step | steps/s | relative time |")
    print("|---|---|---|---|---|")
    for w in widths:
        med = float(np.median(times[w]))
        print(f"| {w} | {runs[w]['e_params']:,} | {1e3 * med:.1f} | {1 / med:.1f} "
              f"| {med / base:.2f} |")


if __name__ == "__main__":
    main()
