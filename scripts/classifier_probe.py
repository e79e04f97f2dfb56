"""What does the validation classifier see? The suite's two-sample classifier, trained on views of
the images that each keep one kind of information, emulator against simulator and simulator
against simulator (the floor) on the same points.

Views (all in the emulator's network space, the classifier's input in ``magan validate``; every
view keeps the unit-cube point beside the image, as the suite does):

* ``full``: the images as the suite sees them;
* ``occupancy``: 1 where a pixel is non-zero, else 0 (which cells fire; with a readout threshold,
  the sparsity and the isolated noise hits);
* ``spectrum``: each image's pixel values sorted, as a vector (the value distribution, with every
  position removed);
* ``blurred``: 2 x 2 block means (the pixel-level texture removed, shapes kept);
* ``bright``: only pixels above the 90th percentile of the simulator's non-zero values, the rest
  zeroed (the core of the object, noise and tails removed);
* ``faint``: only non-zero pixels below the 50th percentile of those values (tails, noise hits);
* ``summaries``: the emulator's per-image summaries (:meth:`magan.Emulator.describe`: S's
  readings, pixel statistics, structure descriptors), as a vector.

A view where the AUC stays near 1 while its floor is near 0.5 holds what gives the emulator away.
The script first prints single cues, one number at a time: per channel the mean number of
non-zero pixels per image (a readout threshold's occupancy), how well that count alone separates
E from T (AUC), the same for the number of side-by-side pairs of non-zero pixels (whether hits
come scattered or in clumps, per non-zero pixel), and E's mean channel sum over T's; and the
summary that separates best alone.

    python scripts/classifier_probe.py --emulator runs/calorimeter/emulator --study calorimeter
    python scripts/classifier_probe.py --emulator runs/line/emulator --study line
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import magan
from magan.pretraining.features import side_by_side_pairs
from magan.runtime.io import atomic_write_json
from magan.validation.samples import draw
from magan.validation.two_sample import auc_score, classifier_two_sample_test

VIEWS = ("full", "occupancy", "spectrum", "blurred", "bright", "faint", "summaries")


def simulator_of(study: str):
    """The study's simulator (``line``, ``calorimeter``) or a benchmark simulator's (by name)."""
    if study == "line":
        from magan.studies.line.simulator import line_simulator
        return line_simulator()
    if study == "calorimeter":
        from magan.studies.calorimeter.model import calorimeter_simulator
        return calorimeter_simulator()
    from magan.benchmarks.simulators import BENCHMARKS
    if study not in BENCHMARKS:
        raise SystemExit(f"--study {study!r}: use line, calorimeter or one of {sorted(BENCHMARKS)}")
    return BENCHMARKS[study].simulator()


def block_mean(x: np.ndarray) -> np.ndarray:
    """(N, H, W, C) -> (N, ceil(H/2), ceil(W/2), C) means of 2 x 2 blocks (zero-padded)."""
    n, h, w, c = x.shape
    x = np.pad(x, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)))
    return x.reshape(n, x.shape[1] // 2, 2, x.shape[2] // 2, 2, c).mean(axis=(2, 4))


def views(net: np.ndarray, summaries: np.ndarray, reference: np.ndarray) -> dict[str, np.ndarray]:
    """Every view of one source: its network-space images ``net`` (N, H, W, C) and per-image
    summaries (N, F); ``reference`` (the simulator's network-space images) sets the ``bright``
    and ``faint`` cuts."""
    ref = reference[reference > 0]
    hi, lo = np.quantile(ref, 0.9), np.quantile(ref, 0.5)
    return {
        "full": net,
        "occupancy": (net > 0).astype(np.float32),
        "spectrum": -np.sort(-net.reshape(len(net), -1), axis=1),
        "blurred": block_mean(net),
        "bright": np.where(net >= hi, net, 0.0).astype(np.float32),
        "faint": np.where((net > 0) & (net < lo), net, 0.0).astype(np.float32),
        "summaries": summaries,
    }


def single_cues(emu, s, ft: np.ndarray, fe: np.ndarray) -> dict:
    """One number at a time, E against T (physical images): per channel the mean number of
    non-zero pixels per image (T, T', E), the AUC of that count alone (folded to >= 0.5) and the
    ratio of the channel's mean sum; per summary of :meth:`magan.Emulator.describe` (T's ``ft``
    and E's ``fe``, (N, F) each) its AUC."""
    t1, t2, e = (np.asarray(x) for x in (s.t1, s.t2, s.e))
    counts = {name: (x != 0).sum(axis=(1, 2)) for name, x in (("T", t1), ("T'", t2), ("E", e))}
    pairs = {name: side_by_side_pairs(x != 0) for name, x in (("T", t1), ("T'", t2), ("E", e))}

    def folded(a, b):
        v = auc_score(a, b)
        return round(float(max(v, 1.0 - v)), 3)

    return {"nonzero_per_channel": {k: v.mean(axis=0).round(1).tolist() for k, v in counts.items()},
            "nonzero_auc_per_channel": [folded(counts["T"][:, c], counts["E"][:, c])
                                        for c in range(t1.shape[-1])],
            "pairs_per_nonzero_per_channel": {
                k: (v.sum(axis=0) / np.maximum(counts[k].sum(axis=0), 1)).round(3).tolist()
                for k, v in pairs.items()},
            "pairs_auc_per_channel": [folded(pairs["T"][:, c], pairs["E"][:, c])
                                      for c in range(t1.shape[-1])],
            "sum_ratio_per_channel": (e.sum(axis=(0, 1, 2)) / t1.sum(axis=(0, 1, 2))).round(3)
                                     .tolist(),
            "summary_auc": {nm: folded(ft[:, j], fe[:, j])
                            for j, nm in enumerate(emu.description_names)}}


def print_cues(cues: dict) -> None:
    for title, rows in (("non-zero pixels per image, by channel", cues["nonzero_per_channel"]),
                        ("E vs T by that count alone (AUC)",
                         {"": cues["nonzero_auc_per_channel"]}),
                        ("side-by-side non-zero pairs per non-zero pixel, by channel",
                         cues["pairs_per_nonzero_per_channel"]),
                        ("E vs T by the pair count alone (AUC)",
                         {"": cues["pairs_auc_per_channel"]}),
                        ("E / T sum, by channel", {"": cues["sum_ratio_per_channel"]})):
        print(title + ":")
        for name, row in rows.items():
            print(f"  {name:2s} " + " ".join(f"{v:6.3g}" for v in row))
    best = max(cues["summary_auc"].items(), key=lambda kv: kv[1])
    print(f"best single summary: {best[0]} (AUC {best[1]:.3f})")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--emulator", required=True, help="an emulator folder (Emulator.save)")
    ap.add_argument("--study", required=True,
                    help="whose simulator: line, calorimeter, or a benchmark simulator's name")
    ap.add_argument("--n", type=int, default=2000, help="points (the validation suite's default)")
    ap.add_argument("--steps", type=int, default=800, help="classifier steps (the suite's)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--views", default=",".join(VIEWS), help="comma-separated subset of " +
                    ", ".join(VIEWS))
    ap.add_argument("--out", default=None, help="JSON of the table (default: beside nothing)")
    args = ap.parse_args()
    chosen = [v.strip() for v in args.views.split(",") if v.strip()]
    unknown = sorted(set(chosen) - set(VIEWS))
    if unknown:
        raise SystemExit(f"--views: unknown {unknown}; choose from {', '.join(VIEWS)}")
    if not Path(args.emulator, "emulator.json").exists():
        raise SystemExit(f"--emulator {args.emulator}: no emulator.json there (an emulator "
                         "folder is what Emulator.save / magan pretrain --out writes)")
    emu, sim = magan.load_emulator(args.emulator), simulator_of(args.study)
    s = draw(emu, sim, np.random.default_rng([args.seed, 1001]), args.n)
    sources = (s.t1, s.t2, s.e)
    nets = [np.asarray(emu.transform.forward(x, s.cond), np.float32) for x in sources]
    summaries = [emu.describe(x, s.cond) for x in sources]  # float64; the classifier casts
    vt1, vt2, ve = (views(net, f, nets[0]) for net, f in zip(nets, summaries))
    cues = single_cues(emu, s, summaries[0], summaries[2])
    print_cues(cues)
    rows = {}
    print("| view | AUC emulator vs simulator | AUC simulator vs simulator (floor) | s |")
    print("|---|---|---|---|")
    for v in chosen:
        t0 = time.perf_counter()
        r = [classifier_two_sample_test(vt1[v], b[v], conditions_a=s.unit, conditions_b=s.unit,
                                        steps=args.steps, seed=args.seed, progress=False)
             for b in (ve, vt2)]
        rows[v] = {"auc": r[0]["auc"], "auc_stderr": r[0]["auc_stderr"],
                   "floor_auc": r[1]["auc"], "floor_auc_stderr": r[1]["auc_stderr"]}
        print(f"| {v} | {r[0]['auc']:.3f} +- {r[0]['auc_stderr']:.3f} | {r[1]['auc']:.3f} +- "
              f"{r[1]['auc_stderr']:.3f} | {time.perf_counter() - t0:.0f} |", flush=True)
    if args.out:
        atomic_write_json(Path(args.out), {"emulator": args.emulator, "study": args.study,
                                           "n": args.n, "steps": args.steps, "seed": args.seed,
                                           "views": rows, **cues})
    return rows


if __name__ == "__main__":
    main()
