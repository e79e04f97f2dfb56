"""Do a calorimeter emulator's noise hits come scattered, as the simulator's, or in clumps?

At the calorimeter study's truth and 10, 30 and 100 GeV, 2000 simulated and 2000 emulated showers:
in the cells more than 4 cells from the beam axis (where a hit above the readout threshold is
mostly electronic noise), the fraction that fired, and for a fired cell how often its right-hand
neighbour fired, and the same cell in the next layer. Independent noise hits give neighbour rates
near the fired fraction; clumped ones give more. Prints a table.

    python scripts/hit_clumping.py runs/calorimeter/emulator
"""

from __future__ import annotations

import argparse

import numpy as np

import magan
from magan.studies.calorimeter.model import calorimeter_simulator
from magan.studies.calorimeter.simulator import CALO_SPACE
from magan.studies.calorimeter.study import DEFAULT_TRUTH

ENERGIES_MEV = (1e4, 3e4, 1e5)


def clumping(showers: np.ndarray, min_radius: float = 4.0) -> tuple[float, float, float]:
    """(N, H, W, L) showers -> (fraction of outer cells fired, P(right neighbour fired | fired),
    P(same cell in the next layer fired | fired)) over cells farther than ``min_radius`` cells
    from the image centre."""
    fired = showers > 0
    h, w = fired.shape[1:3]
    yy, xx = np.mgrid[:h, :w]
    outer = np.hypot(yy - (h - 1) / 2, xx - (w - 1) / 2) > min_radius
    both = (outer[:, :-1] & outer[:, 1:])[None, :, :, None]
    left, right = fired[:, :, :-1], fired[:, :, 1:]
    side = (left & right & both).sum() / max((left & both).sum(), 1)
    cells = outer[None, :, :, None]
    this, nxt = fired[..., :-1], fired[..., 1:]
    deeper = (this & nxt & cells).sum() / max((this & cells).sum(), 1)
    return float(fired[:, outer].mean()), float(side), float(deeper)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("emulator", help="a calorimeter emulator folder")
    ap.add_argument("--n", type=int, default=2000, help="showers per source and energy")
    args = ap.parse_args()
    emu, sim = magan.load_emulator(args.emulator), calorimeter_simulator()
    rng = np.random.default_rng(0)
    print("| energy | source | outer cells fired | right neighbour fired, given fired | "
          "next layer fired, given fired |")
    print("|---|---|---|---|---|")
    for energy in ENERGIES_MEV:
        params, cond = np.tile(DEFAULT_TRUTH, (args.n, 1)), np.full((args.n, 1), energy)
        sources = {"simulator": sim.simulate(rng, params, CALO_SPACE, conditions=cond),
                   "emulator": emu.sample(params, cond, seed=1)}
        for name, showers in sources.items():
            frac, side, deeper = clumping(showers)
            print(f"| {energy / 1e3:g} GeV | {name} | {frac:.4f} | {side:.4f} | {deeper:.4f} |")


if __name__ == "__main__":
    main()
