"""Benchmark: magan's hot loops on this machine, beside a PyTorch implementation of the same step.

Prints Markdown tables (and writes them with the raw numbers to ``--out``, JSON):

1. the machine (CPU model, cores, vector units, the assumed peak FP32 rate; the accelerator);
2. the pre-training step (S update + E update, the study presets' networks, fixed batch, no
   simulator): magan (one jitted pure step, donated state) vs PyTorch eager and ``torch.compile``
   (scripts/torch_peer.py, same architecture and losses), steps/s and simulated images/s, XLA's
   FLOP count per step and the achieved fraction of peak;
3. the fit step (G and D updates of all replicas) in steps/s;
4. emulator inference in samples/s at batch sizes 1 to 4096 and the simulator's at 1 and 1000, so
   the emulator's speed-up over the simulator, for both studies;
5. how the step time grows with batch size and image size;
6. how long training waits for the host simulator (background threads) in a short real run.

    python scripts/bench.py                 # about 10 minutes on a 2-core CPU
    python scripts/bench.py --quick --no-compile
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from magan import PretrainConfig, fit, train_emulator  # noqa: E402
from magan.config import replace  # noqa: E402
from magan.emulator import Emulator  # noqa: E402
from magan.losses import EmulatorGraphs  # noqa: E402
from magan.nn.build import build_emulator_nets  # noqa: E402
from magan.pretraining.state import init_state, network_sizes, optimisers  # noqa: E402
from magan.pretraining.step import host_batches_program, make_step, r1_pattern  # noqa: E402
from magan.runtime.io import atomic_write_json  # noqa: E402


# ------------------------------------------------------------------------------- the machine
def machine() -> dict:
    info = {"python": platform.python_version(), "jax": jax.__version__,
            "backend": jax.default_backend(), "devices": [str(d) for d in jax.devices()],
            "cores": os.cpu_count()}
    try:
        text = Path("/proc/cpuinfo").read_text()
        first = text.split("\n\n")[0]
        fields = dict(line.split(":", 1) for line in first.splitlines() if ":" in line)
        fields = {k.strip(): v.strip() for k, v in fields.items()}
        info["cpu"] = fields.get("model name", "?")
        flags = fields.get("flags", "").split()
        info["avx512f"], info["avx2_fma"] = "avx512f" in flags, "avx2" in flags and "fma" in flags
        ghz = float(fields.get("cpu MHz", "0")) / 1000.0
        # per core and cycle: 2 FMA units x (16 FP32 lanes for AVX-512, 8 for AVX2) x 2 FLOPs
        per_cycle = 64 if info["avx512f"] else 32 if info["avx2_fma"] else 8
        info["ghz"] = ghz
        info["peak_gflops_fp32"] = os.cpu_count() * ghz * per_cycle
        info["peak_note"] = (f"{os.cpu_count()} cores x {ghz:.2f} GHz x {per_cycle} FP32 "
                             "FLOP/cycle (2 FMA units assumed; a vCPU may be a hyper-thread)")
    except (OSError, ValueError):
        info["cpu"] = platform.processor()
    if jax.default_backend() != "cpu":
        info["peak_gflops_fp32"] = None
        info["peak_note"] = "accelerator peak not known to this script"
    return info


def timed(fn, n: int, warmup: int = 3) -> float:
    """Seconds per call of ``fn`` (which must block until its result is ready)."""
    for _ in range(warmup):
        fn()
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n


# ------------------------------------------------------------------------------ pre-training
def step_shapes(study: dict) -> tuple[int, tuple]:
    """(parameters, network image shape) of a study's pre-training step as timed here: the PyTorch
    peer has no conditioning input, so the per-event conditions (the calorimeter's energy) become
    extra parameters."""
    shape = (study["transform"].network_shape(study["sim"].image_shape) if study["transform"]
             else study["sim"].image_shape)
    return study["space"].dim + (0 if study["cond"] is None else study["cond"].dim), shape


def step_programs(param_dim: int, shape, cfg: PretrainConfig, batch: int) -> dict:
    """The training loop's compiled programs on a fixed batch (``steps_per_call`` steps each, R1
    where step % r1_every == 0), with the state and arguments to call them: ``programs[pattern]
    (state, *args)``; ``patterns`` is one period of the R1 pattern, in order."""
    ge, pe, gs, ps = build_emulator_nets(param_dim, shape, network_sizes(cfg), 0)
    txs = optimisers(cfg)
    state = init_state(pe, ps, txs)
    step = make_step(cfg, EmulatorGraphs(ge, gs), txs, param_dim)
    per = cfg.steps_per_call
    n_steps = math.lcm(per, cfg.r1_every)  # the R1 pattern repeats after these
    patterns = [r1_pattern(i, per, cfg.r1_every) for i in range(0, n_steps, per)]
    rng = np.random.default_rng(0)
    args = (jax.random.key(0), jnp.asarray(rng.random((per, batch, param_dim)), jnp.float32),
            jnp.zeros((per, batch, 0), jnp.float32),
            *(jnp.asarray(rng.normal(size=(per, batch, *shape)), jnp.float32) for _ in range(2)))
    programs = {p: host_batches_program(step, p).lower(state, *args).compile()
                for p in dict.fromkeys(patterns)}  # each distinct program compiled once
    return {"state": state, "args": args, "patterns": patterns, "programs": programs}


def magan_step(param_dim: int, shape, cfg: PretrainConfig, batch: int, reps: int) -> dict:
    run = step_programs(param_dim, shape, cfg, batch)
    patterns, programs = run["patterns"], run["programs"]
    n_steps = len(patterns) * cfg.steps_per_call
    flops = 0.0
    for pattern in patterns:
        cost = programs[pattern].cost_analysis()
        cost = cost[0] if isinstance(cost, (list, tuple)) else cost
        flops += float(cost.get("flops", float("nan"))) if cost else float("nan")

    def call():
        for pattern in patterns:
            run["state"], _ = programs[pattern](run["state"], *run["args"])
        jax.block_until_ready(run["state"])

    sec = timed(call, max(1, reps // n_steps), warmup=1) / n_steps
    return {"s_per_step": sec, "steps_per_s": 1 / sec, "flops_per_step": flops / n_steps}


def torch_step(param_dim: int, shape, cfg: PretrainConfig, batch: int, reps: int,
               compile: bool, timeout_s: int = 600) -> dict:
    """The PyTorch peer's step, timed in a subprocess (scripts/torch_peer.py) with a timeout."""
    import subprocess

    spec = {"param_dim": param_dim, "shape": list(shape), "noise_dim": cfg.noise_dim,
            "emulator_width": cfg.emulator_width, "siamese_width": cfg.siamese_width,
            "features": cfg.siamese_embedding_width, "r1_gamma": cfg.r1_gamma,
            "r1_every": cfg.r1_every,
            "aux_weight": cfg.aux_weight, "energy_weight": cfg.energy_weight,
            "compile": compile, "batch": batch, "reps": reps}
    peer = Path(__file__).resolve().parent / "torch_peer.py"
    try:
        proc = subprocess.run([sys.executable, str(peer), json.dumps(spec)], capture_output=True,
                              text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return {"error": f"did not finish within {timeout_s} s"}
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["?"])[-1]
        return {"error": last[:200]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------------- studies
def studies():
    from magan.studies.calorimeter.model import (
        CALO_CONDITIONS,
        CALO_TRANSFORM,
        calorimeter_simulator,
    )
    from magan.studies.calorimeter.simulator import CALO_SPACE
    from magan.studies.calorimeter.study import PRESETS as CALO
    from magan.studies.line.simulator import LINE_SPACE, line_simulator
    from magan.studies.line.study import PRESETS as LINE
    from magan.studies.registry import get_study

    line, calo = get_study("line"), get_study("calorimeter")  # the studies' fits and features
    return {
        "line": dict(space=LINE_SPACE, cond=None, transform=None, sim=line_simulator(),
                     cfg=LINE["default"].pretrain, fit=line.fit_config,
                     fit_features=line.fit_features, pretrain_features=line.pretrain_features),
        "calorimeter": dict(space=CALO_SPACE, cond=CALO_CONDITIONS, transform=CALO_TRANSFORM,
                            sim=calorimeter_simulator(), cfg=CALO["default"].pretrain,
                            fit=calo.fit_config, fit_features=calo.fit_features,
                            pretrain_features=calo.pretrain_features),
    }


def random_emulator(st) -> Emulator:
    cfg, space, cond, tr = st["cfg"], st["space"], st["cond"], st["transform"]
    from magan.transforms import IdentityTransform

    tr = tr or IdentityTransform()
    net = network_sizes(cfg)
    k = 0 if cond is None else cond.dim
    ge, pe, gs, ps = build_emulator_nets(space.dim, tr.network_shape(st["sim"].image_shape), net,
                                         0, k)
    return Emulator(space, st["sim"].image_shape, net, pe, ps, graphdefs=(ge, gs),
                    conditions=cond, transform=tr)


def inference(st, batches, reps) -> dict:
    emu = random_emulator(st)
    space, cond, sim = st["space"], st["cond"], st["sim"]
    rng = np.random.default_rng(0)
    out = {}
    for b in batches:
        p = space.sample(rng, b)
        c = None if cond is None else cond.sample(rng, b)
        n = max(2, min(reps, int(20000 / b)))
        out[b] = b / timed(lambda: emu.sample(p, c), n, warmup=2)
    sim_rate = {}
    for b in (1, 1000):
        p = space.sample(rng, b)
        c = None if cond is None else cond.sample(rng, b)
        n = max(2, min(reps, int(5000 / b)))
        sim_rate[b] = b / timed(lambda: sim.simulate(rng, p, space, conditions=c), n, warmup=1)
    return {"emulator_samples_per_s": out, "simulator_samples_per_s": sim_rate}


def fit_speed(st) -> dict:
    emu = random_emulator(st)
    rng = np.random.default_rng(0)
    p = np.tile(st["space"].center(), (256, 1))
    c = None if st["cond"] is None else st["cond"].sample(rng, 256)
    targets = st["sim"].simulate(rng, p, st["space"], conditions=c)
    cfg = replace(st["fit"], steps=100, log_every=50)
    res = fit(emu, targets, cfg, target_conditions=c, progress=False,
              features=st["fit_features"])
    return {"steps_per_s": res.timing.get("steps_per_s"), "replicas": cfg.replicas,
            "batch_size": cfg.batch_size}


def overlap(st, steps) -> dict:
    cfg = replace(st["cfg"], steps=steps, log_every=50)
    emu = train_emulator(st["sim"], st["space"], cfg, progress=False, transform=st["transform"],
                         features=st["pretrain_features"])
    t = emu.info["pretrain"]["timing"]
    return {k: t.get(k) for k in ("steps_per_s", "simulate_s", "device_waited_for_simulator_s",
                                  "device_wait_fraction", "total_s")}


# ------------------------------------------------------------------------------------ main
def step_rounds(n: int, reps: int):
    """Pre-training step, magan vs PyTorch eager, ``n`` interleaved rounds per study."""
    print("## Pre-training step, magan vs PyTorch eager, interleaved rounds\n")
    print("| study | round | magan steps/s | PyTorch eager steps/s | magan / eager |")
    print("|---|---|---|---|---|")
    for name, s in studies().items():
        cfg, b = s["cfg"], s["cfg"].batch_size
        pdim, shape = step_shapes(s)
        ratios = []
        for r in range(n):
            te = torch_step(pdim, shape, cfg, b, max(5, reps // 2), False)
            mg = magan_step(pdim, shape, cfg, b, reps)
            if "error" in te:
                print(f"| {name} | {r + 1} | {mg['steps_per_s']:.1f} | "
                      f"failed: {te['error'][:60]} | |")
                continue
            ratios.append(mg["steps_per_s"] / te["steps_per_s"])
            print(f"| {name} | {r + 1} | {mg['steps_per_s']:.1f} | {te['steps_per_s']:.1f} | "
                  f"{ratios[-1]:.2f}x |", flush=True)
        if ratios:
            print(f"| {name} | median (min-max) | | | {np.median(ratios):.2f}x "
                  f"({min(ratios):.2f}-{max(ratios):.2f}) |", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer repetitions (rougher numbers)")
    ap.add_argument("--no-torch", action="store_true", help="skip the PyTorch peer")
    ap.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    ap.add_argument("--out", default="runs/bench.json", help="JSON with every number")
    ap.add_argument("--step-rounds", type=int, default=0, metavar="N",
                    help="only the pre-training step vs PyTorch eager, N interleaved rounds "
                         "(eager, magan, eager, magan, ...): the spread between rounds")
    args = ap.parse_args()
    if args.step_rounds:
        return step_rounds(args.step_rounds, 10 if args.quick else 40)
    reps = 10 if args.quick else 40
    res: dict = {"machine": machine()}
    m = res["machine"]
    print(f"## Machine\n\n{m.get('cpu')}, {m['cores']} cores, JAX {m['jax']} on {m['backend']} "
          f"({len(m['devices'])} device(s)); assumed peak {m.get('peak_gflops_fp32') or 0:.0f} "
          f"GFLOP/s FP32: {m.get('peak_note')}.\n")
    st = studies()

    print("## Pre-training step (S + E update, fixed batch)\n")
    print("| study | batch | magan steps/s | images/s | GFLOP/step (XLA) | GFLOP/s | % of peak | "
          "PyTorch eager steps/s | magan / eager | torch.compile steps/s | magan / compile |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    res["pretrain"] = {}
    for name, s in st.items():
        cfg, b = s["cfg"], s["cfg"].batch_size
        pdim, shape = step_shapes(s)
        mg = magan_step(pdim, shape, cfg, b, reps)
        te = None if args.no_torch else torch_step(pdim, shape, cfg, b, max(5, reps // 2), False)
        tc = (None if args.no_torch or args.no_compile else
              torch_step(pdim, shape, cfg, b, max(5, reps // 2), True))
        res["pretrain"][name] = {"batch": b, "shape": shape, "magan": mg, "torch_eager": te,
                                 "torch_compile": tc}
        gfs = mg["flops_per_step"] * mg["steps_per_s"] / 1e9
        peak = m.get("peak_gflops_fp32")

        def cell(t):
            if t is None:
                return "not run", ""
            if "error" in t:
                return f"failed: {t['error'][:60]}", ""
            return f"{t['steps_per_s']:.1f}", f"{mg['steps_per_s'] / t['steps_per_s']:.2f}x"

        e1, e2 = cell(te)
        c1, c2 = cell(tc)
        pct = f"{100 * gfs / peak:.1f}" if peak else "n/a"
        print(f"| {name} {shape} | {b} | {mg['steps_per_s']:.1f} | "
              f"{2 * b * mg['steps_per_s']:.0f} | {mg['flops_per_step'] / 1e9:.3f} | {gfs:.1f} | "
              f"{pct} | {e1} | {e2} | {c1} | {c2} |")

    print("\n## Step time vs batch size and image size (line networks, magan)\n")
    print("| image | batch | ms/step | ms/step per image |")
    print("|---|---|---|---|")
    res["scaling"] = []
    cfg = st["line"]["cfg"]
    for hw, b in [(28, 16), (28, 32), (28, 64), (28, 128), (16, 32), (56, 32)]:
        r = magan_step(4, (hw, hw, 1), cfg, b, max(5, reps // 2))
        res["scaling"].append({"image": hw, "batch": b, **r})
        print(f"| {hw}x{hw} | {b} | {1e3 * r['s_per_step']:.1f} | "
              f"{1e3 * r['s_per_step'] / b:.3f} |")

    print("\n## Fit step (all replicas, random-weight emulator)\n")
    print("| study | replicas x batch | steps/s |")
    print("|---|---|---|")
    res["fit"] = {}
    for name, s in st.items():
        r = fit_speed(s)
        res["fit"][name] = r
        print(f"| {name} | {r['replicas']} x {r['batch_size']} | {r['steps_per_s']:.2f} |")

    print("\n## Fast simulation: samples/s (emulator: random weights, same cost as trained)\n")
    batches = [1, 4, 16, 64, 256, 1024, 4096]
    print("| study | " + " | ".join(f"emulator b={b}" for b in batches)
          + " | simulator b=1 | simulator b=1000 | speed-up b=1 | speed-up b=1000 |")
    print("|---|" + "---|" * (len(batches) + 4))
    res["inference"] = {}
    for name, s in st.items():
        r = inference(s, batches, reps)
        res["inference"][name] = r
        e, sm = r["emulator_samples_per_s"], r["simulator_samples_per_s"]
        print(f"| {name} | " + " | ".join(f"{e[b]:.0f}" for b in batches)
              + f" | {sm[1]:.0f} | {sm[1000]:.0f} | {e[1] / sm[1]:.2f}x | "
                f"{e[1024] / sm[1000]:.1f}x |")

    print("\n## Host simulator overlapped with training (background threads, real run)\n")
    print("| study | steps | steps/s | simulating s | device waited s | waited, % of run |")
    print("|---|---|---|---|---|---|")
    res["overlap"] = {}
    for name, s in st.items():
        n = 100 if args.quick else 300
        r = overlap(s, n)
        res["overlap"][name] = r
        print(f"| {name} | {n} | {r['steps_per_s']:.1f} | {r['simulate_s']:.1f} | "
              f"{r['device_waited_for_simulator_s']:.1f} | "
              f"{100 * r['device_wait_fraction']:.0f} % |")
    atomic_write_json(args.out, res)
    print(f"\n(all numbers in {args.out})")


if __name__ == "__main__":
    main()
