"""The ``magan`` command line: ``magan study line``, ``magan fit``, ``magan sample``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

__all__ = ["main", "build_parser"]


def _add_common(p: argparse.ArgumentParser):
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0); the same seed "
                   "gives the same result on the same machine")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="magan",
        description="Fit simulator parameters to images with a Model-Assisted GAN, and use the "
                    "trained emulator as a fast simulation.")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    study = sub.add_parser("study", help="run a built-in study",
                           description="Run a built-in study end to end.")
    study_sub = study.add_subparsers(dest="study", metavar="STUDY")
    line = study_sub.add_parser(
        "line", help="the line-image study of the original paper",
        description="Pre-train an emulator of the line simulator (or reuse one), simulate target "
                    "images at the truth, fit m, c, x0, xsteps, check closure, write plots.")
    line.add_argument("--preset", default="default",
                      help="tiny (seconds), default (minutes on a CPU), gpu (an accelerator)")
    line.add_argument("--truth", default=None,
                      help="the target's parameters, e.g. m=0.2,c=12,x0=4,xsteps=9 (default)")
    line.add_argument("--emulator", default=None,
                      help="folder of a trained emulator to reuse instead of pre-training")
    line.add_argument("--out", default="runs/line", help="run folder (default runs/line)")
    _add_common(line)

    fitp = sub.add_parser("fit", help="fit parameters to target images with a trained emulator",
                          description="Fit simulator parameters to images with a trained emulator.")
    fitp.add_argument("--emulator", required=True, help="folder of a trained emulator")
    fitp.add_argument("--data", required=True,
                      help="target images: FILE.npy, FILE.npz[:KEY] or FILE.h5:DATASET, shape "
                           "(N, H, W, C) or (N, H, W)")
    fitp.add_argument("--out", required=True, help="folder for fit.json, metrics and plots")
    fitp.add_argument("--preset", default="default", help="fit preset: tiny, default, gpu")
    _add_common(fitp)

    sample = sub.add_parser("sample", help="generate images with a trained emulator",
                            description="Generate images with a trained emulator (fast "
                                        "simulation).")
    sample.add_argument("--emulator", required=True, help="folder of a trained emulator")
    sample.add_argument("--params", required=True, help="physical parameters, e.g. m=0.2,c=12,...")
    sample.add_argument("-n", type=int, default=1000, help="number of images (default 1000)")
    sample.add_argument("--out", required=True, help="output .npy file")
    sample.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    return parser


def _cmd_study_line(args) -> int:
    from magan.studies import line

    truth = line.LINE_SPACE.parse(args.truth) if args.truth else None
    summary = line.run(args.preset, truth=truth, emulator=args.emulator, out=args.out,
                       seed=args.seed, progress=False if args.quiet else None)
    names = summary["parameters"]
    print(f"{'param':>8} {'truth':>9} {'fit':>9} {'+-':>7} {'err % range':>12}")
    for n in names:
        print(f"{n:>8} {summary['truth'][n]:9.4f} {summary['fit_mean'][n]:9.4f} "
              f"{summary['fit_std'][n]:7.4f} {summary['error_pct_of_range'][n]:12.2f}")
    print(f"closure mean-image distance {summary['closure']['fit']['mean_image_rel']:.4f} "
          f"(floor {summary['closure']['floor']['mean_image_rel']:.4f})")
    print(f"total {summary['timings_s']['total_s']:.0f} s; results in {args.out}/")
    return 0


def _cmd_fit(args) -> int:
    from magan import FIT_PRESETS, fit, load_emulator
    from magan.io import load_array
    from magan.plots import plot_fit, plot_losses

    if args.preset not in FIT_PRESETS:
        raise ValueError(f"Unknown fit preset {args.preset!r}; choose one of {sorted(FIT_PRESETS)}.")
    emu = load_emulator(args.emulator)
    data = load_array(args.data)
    result = fit(emu, data, FIT_PRESETS[args.preset], seed=args.seed, workdir=args.out,
                 progress=False if args.quiet else None)
    plot_losses({"fit": result.history}, Path(args.out) / "losses.png")
    plot_fit(result.names, result.samples, Path(args.out) / "fit.png", start=result.start,
             bounds=(emu.space.low, emu.space.high))
    summary = result.to_dict()
    print(json.dumps({"mean": summary["mean"], "std": summary["std"]}, indent=2))
    return 0


def _cmd_sample(args) -> int:
    from magan import load_emulator
    from magan.io import atomic_save_npy

    if args.n < 1:
        raise ValueError(f"-n must be at least 1, got {args.n}.")
    emu = load_emulator(args.emulator)
    point = emu.space.parse(args.params)
    images = emu.sample(np.tile(point, (args.n, 1)), seed=args.seed)
    out = Path(args.out)
    if out.suffix != ".npy":
        raise ValueError(f"--out {out}: write to a .npy file.")
    atomic_save_npy(out, images)
    print(f"wrote {images.shape} float32 images to {out}")
    return 0


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from magan import __version__

        print(__version__)
        return 0
    try:
        if args.command == "study":
            if args.study == "line":
                return _cmd_study_line(args)
            parser.parse_args(["study", "--help"])
        elif args.command == "fit":
            return _cmd_fit(args)
        elif args.command == "sample":
            return _cmd_sample(args)
        parser.print_help()
        return 2
    except (ValueError, FileNotFoundError, TypeError) as err:
        print(f"magan: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
