"""Why magan unrolls its steps: the line pre-training step in three program forms, timed.

XLA:CPU runs the convolutions inside a loop body (``lax.scan``) or a conditional branch
(``lax.cond``) without its fast kernels. This script compiles the library's own pre-training step
(line networks, default preset, batch 32) as

* two steps unrolled in one program (what magan runs) vs the same two steps in a ``lax.scan``;
* the R1 step with R1 fixed at trace time (what magan runs) vs chosen by a ``lax.cond``;

and prints milliseconds per step for each, alternating the forms over several rounds.

    MAGAN_QUIET=1 python scripts/cpu_loop_forms.py            # about 2 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from magan.config import PRETRAIN_PRESETS
from magan.losses import EmulatorGraphs, PairBatch
from magan.nn.build import build_emulator_nets
from magan.pretraining.state import init_state, network_sizes, optimisers
from magan.pretraining.step import make_step, stack_metrics
from magan.studies.line.simulator import IMAGE_SHAPE, LINE_SPACE


def programs(cfg, batch: int):
    """The four forms as compiled programs over one fixed pair of batches, and their state."""
    ge, pe, gs, ps = build_emulator_nets(LINE_SPACE.dim, IMAGE_SHAPE, network_sizes(cfg), 0)
    txs = optimisers(cfg)
    step = make_step(cfg, EmulatorGraphs(ge, gs), txs, LINE_SPACE.dim)
    rng = np.random.default_rng(0)
    batches = PairBatch(jnp.asarray(rng.random((2, batch, LINE_SPACE.dim)), jnp.float32),
                        jnp.zeros((2, batch, 0), jnp.float32),
                        *(jnp.asarray(rng.normal(size=(2, batch, *IMAGE_SHAPE)), jnp.float32)
                          for _ in range(2)))
    key = jax.random.key(0)

    def unrolled(state, b):
        ms = []
        for j in range(2):
            state, m = step(state, PairBatch(*(a[j] for a in b)), key, False)
            ms.append(m)
        return state, stack_metrics(ms)

    def scanned(state, b):
        return jax.lax.scan(lambda s, x: step(s, PairBatch(*x), key, False), state, b)

    def r1_fixed(state, b):
        return step(state, PairBatch(*(a[0] for a in b)), key, True)

    def r1_cond(state, b):
        one = PairBatch(*(a[0] for a in b))
        return jax.lax.cond(state["step"] >= 0, lambda s: step(s, one, key, True),
                            lambda s: step(s, one, key, False), state)

    state = init_state(pe, ps, txs)
    forms = {"2 steps unrolled": (unrolled, 2), "2 steps in lax.scan": (scanned, 2),
             "R1 step, fixed at trace time": (r1_fixed, 1), "R1 step in lax.cond": (r1_cond, 1)}
    return state, batches, {name: (jax.jit(fn).lower(state, batches).compile(), n)
                            for name, (fn, n) in forms.items()}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--calls", type=int, default=10, help="calls per form and round")
    args = ap.parse_args(argv)
    cfg = PRETRAIN_PRESETS["default"]
    state, batches, compiled = programs(cfg, cfg.batch_size)
    times: dict[str, list[float]] = {name: [] for name in compiled}
    for _ in range(args.rounds):
        for name, (program, n_steps) in compiled.items():
            jax.block_until_ready(program(state, batches))  # warm
            t0 = time.perf_counter()
            for _ in range(args.calls):
                out = program(state, batches)
            jax.block_until_ready(out)
            times[name].append(1e3 * (time.perf_counter() - t0) / (args.calls * n_steps))
    print(f"line pre-training step, batch {cfg.batch_size}, JAX {jax.__version__} on "
          f"{jax.default_backend()}; {args.rounds} rounds x {args.calls} calls\n")
    print("| form | ms per step, median | min - max |")
    print("|---|---|---|")
    for name, ts in times.items():
        print(f"| {name} | {statistics.median(ts):.1f} | {min(ts):.1f} - {max(ts):.1f} |")


if __name__ == "__main__":
    main()
