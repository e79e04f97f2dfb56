"""Where does the line emulator's extra within-point spread come from? Per-pixel std maps.

At a few fixed parameter points, 512 simulations and 512 emulations: the per-pixel standard
deviation over them, summarised on the line (pixels whose mean is above 0.1) and off it, for the
simulator, the emulator, the emulator with its noise vector z fixed (only the per-pixel noise
channel varies) and with its per-pixel noise fixed (only z varies); near the line (within 2 px
of the pixels whose simulated mean is above 0.02) and far from it (over 3 px away): the std, the
kurtosis (3 for Gaussian noise) and the fraction of pixels above the line features' threshold
0.1. Then the standard deviation of each line feature over the 512 images at each point (how
far the line moves at fixed parameters), and the emulated images with a pixel outside the
study's value range.

    python scripts/emulator_spread_maps.py runs/emulator_realism/base@seed0/emulator
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from scipy import ndimage

import magan
from magan.studies.line.simulator import LINE_FEATURES, LINE_SPACE, line_features, line_simulator

POINTS = np.array([[0.2, 12.0, 4.0, 9.0], [-0.3, 15.0, 2.0, 12.0], [0.4, 10.0, 8.0, 5.0]])
N = 512


def emulate_parts(emu, params, fix_z: bool, fix_pix: bool, seed: int = 0):
    """(N, 28, 28) emulations at one point with z and/or the pixel noise shared by all images."""
    net = nnx.merge(emu.graphdef_e, emu.params_e)
    unit = jnp.asarray(np.repeat(LINE_SPACE.to_unit(params[None]), N, 0), jnp.float32)
    kz, kp = jax.random.split(jax.random.key(seed))
    z = jax.random.normal(kz, (1 if fix_z else N, net.noise_dim))
    pix = jax.random.normal(kp, (1 if fix_pix else N, 28, 28, 1))
    out = net(unit, jnp.broadcast_to(z, (N, net.noise_dim)), jnp.broadcast_to(pix, (N, 28, 28, 1)))
    return np.asarray(out)[..., 0]


def tails(x, t) -> str:
    """Std, kurtosis and fraction above 0.1 of the pixels of ``x`` near and far from the line
    of the simulations ``t`` (both (N, 28, 28))."""
    on = t.mean(0) > 0.02
    near = ndimage.binary_dilation(on, iterations=2) & ~on
    far = ~ndimage.binary_dilation(on, iterations=3)
    out = []
    for label, mask in (("near", near), ("far", far)):
        a = x[:, mask]
        kurt = ((a - a.mean()) ** 4).mean() / a.var() ** 2
        out.append(f"{label}: std {a.std():.4f}, kurtosis {kurt:.2f}, >0.1 {(a > 0.1).mean():.5f}")
    return "; ".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("emulator")
    args = ap.parse_args()
    emu = magan.load_emulator(args.emulator)
    sim = line_simulator()
    rng = np.random.default_rng(0)
    print("| point | source | std on the line | std off the line | mean on line | tails |")
    print("|---|---|---|---|---|---|")
    feature_rows = []
    for p in POINTS:
        t = sim.simulate(rng, np.repeat(p[None], N, 0), LINE_SPACE)[..., 0]
        on = t.mean(0) > 0.1
        sources = {"simulator": t, "emulator": emulate_parts(emu, p, False, False),
                   "emulator, z fixed": emulate_parts(emu, p, True, False),
                   "emulator, pixel noise fixed": emulate_parts(emu, p, False, True)}
        for name, x in sources.items():
            sd = x.std(0)
            print(f"| {p.tolist()} | {name} | {sd[on].mean():.4f} | {sd[~on].mean():.4f} | "
                  f"{x.mean(0)[on].mean():.3f} | {tails(x, t)} |")
        for name in ("simulator", "emulator"):
            std = line_features(sources[name][..., None]).std(axis=0)
            feature_rows.append(f"| {p.tolist()} | {name} | "
                                + " | ".join(f"{v:.4f}" for v in std) + " |")
    print("\n| point | source | " + " | ".join(f"std of {f}" for f in LINE_FEATURES) + " |")
    print("|---|---|" + "---|" * len(LINE_FEATURES))
    print("\n".join(feature_rows))
    e = emu.sample(LINE_SPACE.sample(rng, 2000), seed=1)[..., 0]
    low, high = -8 * 0.03, 1.0 + 5 * 0.1 + 5 * 0.03
    bad_lo, bad_hi = (e < low).reshape(len(e), -1).any(1), (e > high).reshape(len(e), -1).any(1)
    print(f"\nemulated images with a pixel below {low:g}: {bad_lo.mean():.4f}, above {high:g}: "
          f"{bad_hi.mean():.4f}; min {e.min():.3f}, max {e.max():.3f}; simulator-range pixels: "
          f"{((e < low) | (e > high)).mean():.2e} of all pixels")


if __name__ == "__main__":
    main()
