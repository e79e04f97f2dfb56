"""The ``magan`` command line: ``magan study line|calorimeter``, ``magan fit``, ``magan sample``,
``magan validate``."""

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
    line.add_argument("--train-from", default=None,
                      help="pre-train from bank:FILE.h5|FILE.npz (a BankSimulator file: params, "
                           "images) or command:'PROGRAM {params} {out} {seed}' (an external "
                           "program) instead of the in-process simulator")
    _add_common(line)

    calo = study_sub.add_parser(
        "calorimeter", help="tune a W/Si calorimeter shower simulation to test-beam showers",
        description="Pre-train an emulator of the GFlash-style W/Si calorimeter over four "
                    "detector parameters and the beam energy (or reuse one), validate its physics "
                    "against the simulator, simulate a test beam at the truth, fit the detector "
                    "parameters, check closure, write plots.")
    calo.add_argument("--preset", default="default",
                      help="tiny (seconds), default (under 30 min on a CPU), gpu (an accelerator)")
    calo.add_argument("--truth", default=None,
                      help="the test beam's detector parameters, e.g. sampling_fraction=0.0215,"
                           "moliere_scale=1.1,depth_scale=0.92,noise_mev=0.033 (default)")
    calo.add_argument("--emulator", default=None,
                      help="folder of a trained emulator to reuse instead of pre-training")
    calo.add_argument("--out", default="runs/calorimeter",
                      help="run folder (default runs/calorimeter)")
    _add_common(calo)

    fitp = sub.add_parser("fit", help="fit parameters to target images with a trained emulator",
                          description="Fit simulator parameters to images with a trained emulator.")
    fitp.add_argument("--emulator", required=True, help="folder of a trained emulator")
    fitp.add_argument("--data", required=True,
                      help="target images: FILE.npy, FILE.npz[:KEY] or FILE.h5:DATASET, shape "
                           "(N, H, W, C) or (N, H, W); or a CaloChallenge HDF5 file (datasets "
                           "showers and incident_energies), whose energies become the conditions")
    fitp.add_argument("--conditions", default=None,
                      help="per-event conditions of the targets for an emulator that has them: "
                           "FILE.npy/.npz[:KEY]/.h5:DATASET of shape (N, K), or name=value,... "
                           "for all events")
    fitp.add_argument("--out", required=True, help="folder for fit.json, metrics and plots")
    fitp.add_argument("--preset", default="default", help="fit preset: tiny, default, gpu")
    _add_common(fitp)

    sample = sub.add_parser("sample", help="generate images with a trained emulator",
                            description="Generate images with a trained emulator (fast "
                                        "simulation).")
    sample.add_argument("--emulator", required=True, help="folder of a trained emulator")
    sample.add_argument("--params", required=True, help="physical parameters, e.g. m=0.2,c=12,...")
    sample.add_argument("--conditions", default=None,
                        help="per-event conditions for an emulator that has them: name=value,... "
                             "for all events, 'random' to draw them over the condition space "
                             "(log-uniform on log scales), or a file of shape (N, K)")
    sample.add_argument("-n", type=int, default=1000, help="number of images (default 1000)")
    sample.add_argument("--out", required=True,
                        help="output file: .npy (images (N, H, W, C)), or .h5 in the "
                             "CaloChallenge layout (incident_energies (N, 1), showers "
                             "(N, H*W*C) layer by layer) when the emulator has one condition")
    sample.add_argument("--seed", type=int, default=0, help="random seed (default 0)")

    val = sub.add_parser(
        "validate", help="check an emulator against its simulator and the fit's calibration",
        description="Run the validation suite (distances per variable, physical constraints, "
                    "learned-feature FD and KID, classifier two-sample test, memorisation, "
                    "coverage, fit calibration) and write report.json, summary.md and figures.")
    val.add_argument("--emulator", required=True, help="folder of a trained emulator")
    val.add_argument("--simulator", default=None,
                     help="'line', 'calorimeter', or MODULE:FUNCTION returning a magan Simulator "
                          "(default: the built-in study the emulator was trained for)")
    val.add_argument("--out", required=True, help="report folder")
    val.add_argument("--preset", default="default", help="tiny (seconds) or default (minutes)")
    val.add_argument("--calibration-truths", type=int, default=None,
                     help="truth points of the fit calibration (default: the study's, 20 for "
                          "the line study, 10 for the calorimeter; 0 skips it)")
    _add_common(val)
    return parser


def _cmd_study(args) -> int:
    if args.study == "line":
        from magan.studies import line as study
        from magan.studies.line.simulator import LINE_SPACE as space
    else:
        from magan.studies import calorimeter as study
        from magan.studies.calorimeter.simulator import CALO_SPACE as space

    truth = space.parse(args.truth) if args.truth else None
    extra = {}
    if getattr(args, "train_from", None):
        extra["training_simulator"] = _training_source(args.train_from, space)
    summary = study.run(args.preset, truth=truth, emulator=args.emulator, out=args.out,
                        seed=args.seed, progress=False if args.quiet else None, **extra)
    names = summary["parameters"]
    w = max(8, *(len(n) for n in names))
    print(f"{'param':>{w}} {'truth':>9} {'fit':>9} {'+-':>7} {'err % range':>12}")
    for n in names:
        print(f"{n:>{w}} {summary['truth'][n]:9.4f} {summary['fit_mean'][n]:9.4f} "
              f"{summary['fit_std'][n]:7.4f} {summary['error_pct_of_range'][n]:12.2f}")
    if "physics_worst_separation_power" in summary:
        sp = summary["physics_worst_separation_power"]
        print("physics, worst over energies: separation power "
              + ", ".join(f"{k} {v:.3f}" for k, v in sp.items())
              + f"; mean response off by {100 * summary['physics_worst_response_rel_diff']:.2f} %")
    print(f"closure mean-image distance {summary['closure']['fit']['mean_image_rel']:.4f} "
          f"(floor {summary['closure']['floor']['mean_image_rel']:.4f})")
    print(f"total {summary['timings_s']['total_s']:.0f} s; results in {args.out}/")
    return 0


def _training_source(spec: str, space):
    """A BankSimulator or CommandSimulator from ``bank:FILE`` or ``command:CMD``."""
    kind, _, value = spec.partition(":")
    if kind == "bank" and value:
        from magan.simulators.bank import BankSimulator

        return BankSimulator.load(value, space)
    if kind == "command" and value:
        from magan.simulators.command import CommandSimulator
        from magan.studies.line.simulator import IMAGE_SHAPE

        return CommandSimulator(value, IMAGE_SHAPE)
    raise ValueError(f"--train-from {spec!r}: give bank:FILE.h5 or command:'PROGRAM {{params}} "
                     "{out} {seed}'.")


def _conditions_arg(emu, spec: str | None, n: int | None, seed: int):
    """Conditions (N, K) for ``emu`` from a CLI value; ``n`` events when given as values."""
    if emu.conditions is None:
        if spec is not None:
            raise ValueError("--conditions given, but this emulator has no per-event conditions.")
        return None
    names = list(emu.conditions.names)
    if spec is None:
        raise ValueError(f"This emulator is conditioned on {names} per event; give --conditions "
                         f"(e.g. {emu.conditions.format(emu.conditions.center())}, or 'random', "
                         "or a file).")
    if spec == "random":
        return emu.conditions.sample(np.random.default_rng([seed, 1]), n)
    if "=" in spec:
        return np.tile(emu.conditions.parse(spec), (n, 1))
    from magan.runtime.io import load_array

    return emu.conditions.check(load_array(spec), what=f"--conditions {spec}")


def _cmd_fit(args) -> int:
    from magan import FIT_PRESETS, fit, load_emulator
    from magan.runtime.io import is_calochallenge, load_array, read_calochallenge
    from magan.runtime.plots import plot_fit, plot_losses

    if args.preset not in FIT_PRESETS:
        raise ValueError(f"Unknown fit preset {args.preset!r}; choose one of {sorted(FIT_PRESETS)}.")
    emu = load_emulator(args.emulator)
    cond = None
    if is_calochallenge(args.data):
        data, energies = read_calochallenge(args.data, emu.image_shape)
        if emu.cond_dim == 1 and args.conditions is None:
            cond = energies
    else:
        data = load_array(args.data)
    if cond is None:
        cond = _conditions_arg(emu, args.conditions, len(data), args.seed)
    result = fit(emu, data, FIT_PRESETS[args.preset], seed=args.seed, workdir=args.out,
                 target_conditions=cond, progress=False if args.quiet else None)
    plot_losses({"fit": result.history}, Path(args.out) / "losses.png")
    plot_fit(result.names, result.samples, Path(args.out) / "fit.png", start=result.start,
             bounds=(emu.space.low, emu.space.high))
    summary = result.to_dict()
    print(json.dumps({"mean": summary["mean"], "std": summary["std"]}, indent=2))
    return 0


def _cmd_sample(args) -> int:
    from magan import load_emulator
    from magan.runtime.io import atomic_save_npy

    if args.n < 1:
        raise ValueError(f"-n must be at least 1, got {args.n}.")
    from magan.runtime.io import write_calochallenge

    out = Path(args.out)
    if out.suffix.lower() not in (".npy", ".h5", ".hdf5"):
        raise ValueError(f"--out {out}: write to a .npy or a .h5 file.")
    emu = load_emulator(args.emulator)
    point = emu.space.parse(args.params)
    cond = _conditions_arg(emu, args.conditions, args.n, args.seed)
    if cond is not None and len(cond) != args.n:
        raise ValueError(f"--conditions gives {len(cond)} rows but -n is {args.n}.")
    images = emu.sample(np.tile(point, (args.n, 1)), cond, seed=args.seed)
    if out.suffix.lower() == ".npy":
        atomic_save_npy(out, images)
        print(f"wrote {images.shape} float32 images to {out}")
        return 0
    if emu.cond_dim != 1:
        raise ValueError("The CaloChallenge .h5 layout stores one incident energy per shower; "
                         f"this emulator has {emu.cond_dim} conditions. Write a .npy file.")
    write_calochallenge(out, images, cond[:, 0])
    print(f"wrote {len(images)} showers ({images[0].size} voxels, MeV) and their incident "
          f"energies to {out} (CaloChallenge layout)")
    return 0


def _simulator_arg(spec: str | None, emu):
    """(simulator, study kit or None) for ``magan validate --simulator``."""
    import importlib

    from magan.simulators.base import Simulator
    from magan.studies.kits import STUDY_NAMES, kit_for, study_kit

    if spec is None:
        kit = kit_for(emu)
        if kit is None:
            raise ValueError(f"{emu!r} is not an emulator of a built-in study; name its simulator "
                             "with --simulator MODULE:FUNCTION.")
        return kit.make_simulator(), kit
    if spec in STUDY_NAMES:
        kit = study_kit(spec)
        return kit.make_simulator(), kit
    if ":" not in spec:
        raise ValueError(f"--simulator {spec!r}: give 'line', 'calorimeter' or MODULE:FUNCTION.")
    mod, _, attr = spec.partition(":")
    try:
        fn = getattr(importlib.import_module(mod), attr)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"--simulator {spec!r}: cannot import it ({err}).") from None
    sim = fn() if callable(fn) and not isinstance(fn, Simulator) else fn
    if not isinstance(sim, Simulator):
        raise ValueError(f"--simulator {spec!r} gave a {type(sim).__name__}, not a magan "
                         "Simulator.")
    return sim, None


def _cmd_validate(args) -> int:
    from magan import load_emulator
    from magan.config import replace
    from magan.validation.suite import VALIDATION_PRESETS, validate

    if args.preset not in VALIDATION_PRESETS:
        raise ValueError(f"Unknown validation preset {args.preset!r}; choose one of "
                         f"{sorted(VALIDATION_PRESETS)}.")
    emu = load_emulator(args.emulator)
    sim, kit = _simulator_arg(args.simulator, emu)
    cfg = VALIDATION_PRESETS[args.preset]
    if args.calibration_truths is not None:
        if args.calibration_truths < 0 or args.calibration_truths == 1:
            raise ValueError(f"--calibration-truths must be 0 or at least 2, got "
                             f"{args.calibration_truths}.")
        cfg = replace(cfg, calibration_truths=args.calibration_truths)
    extra = {}
    if kit is not None:
        if cfg.calibration_truths is None:
            cfg = replace(cfg, calibration_truths=kit.calibration_truths)
        if cfg.calibration_targets is None:
            cfg = replace(cfg, calibration_targets=kit.calibration_targets)
        extra = dict(features=kit.features, feature_names=kit.feature_names,
                     constraints=kit.constraints, fit_config=kit.fit_config,
                     fit_features=kit.fit_features,
                     voxel_transform=kit.voxel_transform, voxel_label=kit.voxel_label,
                     title=f"{kit.name} study")
    if args.preset == "tiny":  # a smoke test: the smallest fit that still has a spread
        from magan import FIT_PRESETS

        extra["fit_config"] = replace(FIT_PRESETS["tiny"], replicas=1, steps=30)
    report = validate(emu, sim, out=args.out, config=cfg, seed=args.seed,
                      emulator_label=str(args.emulator), progress=False if args.quiet else None,
                      **extra)
    w = max(len(k) for k in report["status"])
    for name, status in report["status"].items():
        print(f"{name:>{w}}  {status}")
    print(f"overall: {report['overall']}; report in {args.out}/summary.md "
          f"({report['seconds']:.0f} s)")
    return 0


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from magan import __version__

        print(__version__)
        return 0
    try:
        if args.command in ("study", "fit", "validate"):
            from magan.runtime.parallel import initialize

            initialize()  # multi-process (Slurm / JAX_COORDINATOR_ADDRESS) jobs only
        if args.command == "study":
            if args.study in ("line", "calorimeter"):
                return _cmd_study(args)
            parser.parse_args(["study", "--help"])
        elif args.command == "fit":
            return _cmd_fit(args)
        elif args.command == "sample":
            return _cmd_sample(args)
        elif args.command == "validate":
            return _cmd_validate(args)
        parser.print_help()
        return 2
    except (ValueError, FileNotFoundError, TypeError) as err:
        print(f"magan: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
