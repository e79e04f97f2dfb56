"""Fast simulation: showers per second, GFlash-style simulator vs trained emulator.

Times both at batch sizes 1 and 1000 (by default) on the current JAX backend, showers drawn at
log-uniform incident energies over 10-100 GeV and the nominal detector parameters, after one
warm-up call (compilation is not counted; it is reported separately). Prints a table and writes it
as JSON.

    python scripts/calorimeter_speed.py --emulator runs/calorimeter/emulator
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import jax
import numpy as np

from magan import load_emulator
from magan.runtime.io import atomic_write_json
from magan.studies.calorimeter.model import CALO_CONDITIONS, calorimeter_simulator
from magan.studies.calorimeter.simulator import CALO_SPACE, NOMINAL


def _rate(fn, n_per_call: int, min_time: float) -> tuple[float, int]:
    """Showers per second of ``fn`` (called repeatedly for at least ``min_time`` seconds)."""
    calls, t0 = 0, time.perf_counter()
    while True:
        fn()
        calls += 1
        dt = time.perf_counter() - t0
        if dt >= min_time and calls >= 3:
            return calls * n_per_call / dt, calls


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--emulator", default="runs/calorimeter/emulator")
    ap.add_argument("--batches", default="1,1000", help="comma-separated batch sizes")
    ap.add_argument("--min-time", type=float, default=3.0, help="seconds timed per cell")
    ap.add_argument("--out", default="runs/calorimeter_speed.json")
    args = ap.parse_args()

    emu = load_emulator(args.emulator)
    sim = calorimeter_simulator()
    rng = np.random.default_rng(0)
    rows = []
    for b in (int(x) for x in args.batches.split(",")):
        energies = CALO_CONDITIONS.sample(rng, b)
        params = np.tile(NOMINAL, (b, 1))
        t0 = time.perf_counter()
        emu.sample(params, energies, batch_size=b)
        first = time.perf_counter() - t0
        sim_rate, _ = _rate(lambda: sim.simulate(rng, params, CALO_SPACE, conditions=energies),
                            b, args.min_time)
        emu_rate, _ = _rate(lambda: emu.sample(params, energies, batch_size=b), b, args.min_time)
        rows.append({"batch": b, "simulator_per_s": sim_rate, "emulator_per_s": emu_rate,
                     "speedup": emu_rate / sim_rate, "emulator_first_call_s": first})
    machine = {"backend": jax.default_backend(), "devices": [str(d) for d in jax.devices()],
               "cpu_count": os.cpu_count(), "processor": platform.processor() or platform.machine(),
               "jax": jax.__version__}
    print(f"machine: {json.dumps(machine)}")
    print(f"{'batch':>6} {'simulator /s':>13} {'emulator /s':>12} {'speed-up':>9} "
          f"{'first call s':>13}")
    for r in rows:
        print(f"{r['batch']:>6} {r['simulator_per_s']:>13.1f} {r['emulator_per_s']:>12.1f} "
              f"{r['speedup']:>9.1f} {r['emulator_first_call_s']:>13.2f}")
    atomic_write_json(args.out, {"machine": machine, "rows": rows})


if __name__ == "__main__":
    main()
