"""The ``magan`` command line: ``magan study NAME`` (the studies of
:mod:`magan.studies.registry`: line, calorimeter), ``magan fit``, ``magan sample``,
``magan validate``."""

from __future__ import annotations

import argparse
import errno
import json
import os
import sys
import textwrap
from pathlib import Path

import numpy as np

__all__ = ["build_parser", "main", "VALIDATION_PRESET_NAMES"]

# the names of magan.validation.suite.VALIDATION_PRESETS, known without importing the suite (and
# JAX) so that --help lists them and a bad one is refused at once (a test keeps them equal)
VALIDATION_PRESET_NAMES = ("tiny", "default")


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """argparse's help, wrapped only between words (a long value such as
    ``sampling_fraction=0.0215,...`` or an option such as ``--train-from`` is never cut); in
    descriptions and epilogs, indented lines (the examples) are kept as written."""

    def _split_lines(self, text, width):
        return textwrap.wrap(" ".join(text.split()), max(width, 1), break_long_words=False,
                             break_on_hyphens=False)

    def _fill_text(self, text, width, indent):
        out: list[str] = []
        prose: list[str] = []
        for line in [*text.splitlines(), ""]:
            if line.strip() and not line.startswith((" ", "\t")):
                prose.append(line.strip())
                continue
            if prose:
                out += textwrap.wrap(" ".join(prose), max(width, 1), initial_indent=indent,
                                     subsequent_indent=indent, break_long_words=False,
                                     break_on_hyphens=False)
                prose = []
            out.append(indent + line.rstrip() if line.strip() else "")
        return "\n".join(out).rstrip("\n")


def _examples(*lines: str) -> str:
    """An epilog of example command lines."""
    return "example" + ("s" if len(lines) > 1 else "") + ":\n" + "\n".join(
        f"  {line}" for line in lines)


def _parser(sub, name: str, **kwargs) -> argparse.ArgumentParser:
    """A sub-command's parser with magan's help formatter."""
    return sub.add_parser(name, formatter_class=_HelpFormatter, **kwargs)


def _preset_help(text: str, names) -> str:
    """The help of a ``--preset`` option: what each preset is, the choices and the default."""
    return f"{text} (choices: {', '.join(names)}; default: default)"


def _add_quiet(p: argparse.ArgumentParser, what: str = "no progress bar") -> None:
    p.add_argument("--quiet", action="store_true", help=what)


def _add_debug(p: argparse.ArgumentParser) -> None:
    """``--debug`` after a sub-command too (``magan fit ... --debug``)."""
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                   help="on an error, show the full Python traceback instead of one line")


def _add_tensorboard(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tensorboard", default=None, metavar="DIR",
                   help="also write the training metrics as TensorBoard event files into DIR "
                        "(view with: tensorboard --logdir DIR); needs pip install "
                        "'magan[tensorboard]'")


def _add_common(p: argparse.ArgumentParser):
    """``--seed`` and ``--quiet``, shared by the commands that train or fit."""
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0); the same seed "
                   "gives the same result on the same machine")
    _add_quiet(p)
    _add_debug(p)


def build_parser() -> argparse.ArgumentParser:
    """The ``magan`` parser: one sub-command per function below (no JAX import)."""
    parser = argparse.ArgumentParser(
        prog="magan", formatter_class=_HelpFormatter,
        description="Fit simulator parameters to images with a Model-Assisted GAN, and use the "
                    "trained emulator as a fast simulation.",
        epilog=_examples("magan study line --preset tiny --out runs/line",
                         "magan fit --emulator runs/line/emulator --data targets.npy --out "
                         "runs/fit", "magan COMMAND --help"))
    parser.set_defaults(show_help=parser.print_help)
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    parser.add_argument("--debug", action="store_true",
                        help="on an error, show the full Python traceback instead of one line")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_study_parsers(sub)
    _add_fit_parser(sub)
    _add_sample_parser(sub)
    _add_validate_parser(sub)
    return parser


def _add_study_parsers(sub) -> None:
    """``magan study STUDY``: one sub-command per study of the registry."""
    from magan.studies.registry import entries

    study = _parser(sub, "study", help="run a built-in study",
                    description="Run a built-in study end to end.",
                    epilog=_examples("magan study line --preset tiny --out runs/line",
                                     "magan study STUDY --help"))
    study.set_defaults(show_help=study.print_help)
    study_sub = study.add_subparsers(dest="study", metavar="STUDY")
    for entry in entries():
        _add_study_parser(study_sub, entry)


def _add_study_parser(study_sub, entry) -> None:
    """``magan study NAME`` from the study's :class:`~magan.studies.registry.StudyEntry`."""
    p = _parser(study_sub, entry.name, help=entry.description, description=entry.details,
                epilog=_examples(f"magan study {entry.name} --preset tiny --out {entry.out}"))
    p.add_argument("--preset", default="default", metavar="PRESET",
                   help=_preset_help(entry.preset_help, entry.presets))
    p.add_argument("--truth", default=None, help=entry.truth_help)
    p.add_argument("--emulator", default=None,
                   help="folder of a trained emulator to reuse instead of pre-training")
    p.add_argument("--out", default=entry.out, help=f"run folder (default {entry.out})")
    if entry.train_from:
        p.add_argument("--train-from", default=None,
                       help="pre-train from bank:FILE.h5|FILE.npz (a BankSimulator file: params, "
                            "images) or command:'PROGRAM {params} {out} {seed}' (an external "
                            "program) instead of the in-process simulator")
    _add_tensorboard(p)
    _add_common(p)


def _add_fit_parser(sub) -> None:
    from magan.config import FIT_PRESETS

    fitp = _parser(sub, "fit", help="fit parameters to target images with a trained emulator",
                   description="Fit simulator parameters to images with a trained emulator.",
                   epilog=_examples("magan fit --emulator runs/line/emulator --data targets.npy "
                                    "--out runs/fit --preset tiny",
                                    "python -c \"import magan; "
                                    "print(magan.load_fit('runs/fit'))\""))
    fitp.add_argument("--emulator", required=True, help="folder of a trained emulator")
    fitp.add_argument("--data", required=True,
                      help="target images: FILE.npy, FILE.npz[:KEY] or FILE.h5:DATASET, shape "
                           "(N, H, W, C) or (N, H, W); or a CaloChallenge HDF5 file (datasets "
                           "showers and incident_energies), whose energies become the conditions")
    fitp.add_argument("--conditions", default=None,
                      help="per-event conditions of the targets for an emulator that has them: "
                           "FILE.npy/.npz[:KEY]/.h5:DATASET of shape (N, K), or name=value,... "
                           "for all events")
    fitp.add_argument("--out", required=True,
                      help="folder for fit.json (summary), fit.npz (the whole result: "
                           "magan.load_fit), samples.csv (the draws, one column per parameter), "
                           "metrics and plots (corner.png: the draws' joint distribution)")
    fitp.add_argument("--preset", default="default", metavar="PRESET",
                      help=_preset_help("the fit's settings, magan.FIT_PRESETS", FIT_PRESETS))
    _add_tensorboard(fitp)
    _add_common(fitp)


def _add_sample_parser(sub) -> None:
    sample = _parser(sub, "sample", help="generate images with a trained emulator",
                     description="Generate images with a trained emulator (fast simulation).",
                     epilog=_examples("magan sample --emulator runs/line/emulator --params "
                                      "m=0.2,c=12,x0=4,xsteps=9 -n 100 --out images.npy"))
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
    _add_quiet(sample, "print nothing on success")
    _add_debug(sample)


def _add_validate_parser(sub) -> None:
    from magan.studies.registry import study_names

    val = _parser(
        sub, "validate", help="check an emulator against its simulator and the fit's calibration",
        description="Run the validation suite (distances per variable, physical constraints, "
                    "learned-feature FD and KID, classifier two-sample test, memorisation, "
                    "coverage, fit calibration) and write report.json, summary.md and figures.",
        epilog=_examples("magan validate --emulator runs/line/emulator --out runs/validation "
                         "--preset tiny"))
    val.add_argument("--emulator", required=True, help="folder of a trained emulator")
    val.add_argument("--simulator", default=None,
                     help=f"{_quoted(study_names())}, or MODULE:FUNCTION returning a magan "
                          "Simulator (default: the built-in study the emulator was trained for)")
    val.add_argument("--out", required=True, help="report folder")
    val.add_argument("--preset", default="default", metavar="PRESET",
                     help=_preset_help("tiny (seconds) or default (minutes)",
                                       VALIDATION_PRESET_NAMES))
    val.add_argument("--calibration-truths", type=int, default=None,
                     help="truth points of the fit calibration (default: the study's, 20 for "
                          "the line study, 10 for the calorimeter; 0 skips it)")
    _add_common(val)


def _quoted(names) -> str:
    """'a', 'b', 'c' for names (a, b, c)."""
    return ", ".join(f"'{n}'" for n in names)


def _cmd_study(args) -> int:
    """``magan study NAME``: run the study of the registry, print its table."""
    from magan.studies.registry import get_study

    study = get_study(args.study)
    truth = study.space.parse(args.truth, what="--truth") if args.truth else None
    extra = {}
    if getattr(args, "train_from", None):
        extra["training_simulator"] = study.training_source(args.train_from)
    if args.tensorboard:
        extra["tensorboard"] = args.tensorboard
    summary = study.run(args.preset, truth=truth, emulator=args.emulator, out=args.out,
                        seed=args.seed, progress=False if args.quiet else None, **extra)
    _print_study_summary(summary, args.out)
    return 0


def _print_study_summary(summary: dict, out: str) -> None:
    """The table a study prints: truth, fit +- std and error (% of range) per parameter, the
    physics validation's worst values (when the study has one), closure and total time."""
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
    _print_diagnostics(summary.get("diagnostics", []))
    print(f"total {summary['timings_s']['total_s']:.0f} s; results in {out}/")


def _print_diagnostics(diagnostics: list[dict]) -> None:
    """One line per diagnostic that warns (what to distrust and why), or that none does."""
    warned = [d for d in diagnostics if d["status"] == "warn"]
    if diagnostics and not warned:
        print(f"diagnostics: all {len(diagnostics)} checks passed")
    for d in warned:
        print(f"WARNING [{d['name']}] {d['message']}")


def _conditions_arg(emu, spec: str | None, n: int | None, seed: int):
    """Conditions (N, K) for ``emu`` from a CLI value (name=value,..., 'random' or a file); ``n``
    events when given as values or drawn; None for an emulator without conditions."""
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
        return np.tile(emu.conditions.parse(spec, what="--conditions"), (n, 1))
    from magan.runtime.io import load_array

    return emu.conditions.check(load_array(spec), what=f"--conditions {spec}")


def _cmd_fit(args) -> int:
    """``magan fit``: fit the emulator's parameters to the target images, write fit.json, fit.npz,
    samples.csv, the metrics, losses.png, fit.png and corner.png (the joint distribution of the
    draws), print the fitted mean and std (physical units)."""
    from magan import FIT_PRESETS, fit, load_emulator
    from magan.runtime.plots import plot_corner, plot_fit, plot_losses

    if args.preset not in FIT_PRESETS:
        raise ValueError(f"Unknown fit preset {args.preset!r}; choose one of "
                         f"{sorted(FIT_PRESETS)}.")
    emu = load_emulator(args.emulator)
    data, cond = _fit_targets(emu, args)
    result = fit(emu, data, FIT_PRESETS[args.preset], seed=args.seed, workdir=args.out,
                 target_conditions=cond, progress=False if args.quiet else None,
                 tensorboard=args.tensorboard)
    _write_fit_outputs(result, Path(args.out))
    plot_losses({"fit": result.history}, Path(args.out) / "losses.png")
    plot_fit(result.names, result.samples, Path(args.out) / "fit.png", start=result.start,
             bounds=(emu.space.low, emu.space.high))
    plot_corner(result.names, result.samples, Path(args.out) / "corner.png", units=result.units)
    summary = result.to_dict()
    print(json.dumps({"mean": summary["mean"], "std": summary["std"]}, indent=2))
    _print_diagnostics(summary["diagnostics"])
    return 0


def _write_fit_outputs(result, out: Path) -> None:
    """Write the fit's draws as ``samples.csv`` (header: the parameter names; one row per draw,
    physical units, every digit of float64) and the whole result as ``fit.npz``
    (:meth:`~magan.FitResult.save`, read back by :func:`magan.load_fit`), both atomically."""
    import io

    from magan.runtime.io import atomic_write_bytes

    buf = io.BytesIO()
    np.savetxt(buf, np.asarray(result.samples, np.float64), fmt="%.17g", delimiter=",",
               header=",".join(result.names), comments="")
    atomic_write_bytes(out / "samples.csv", buf.getvalue())
    result.save(out / "fit.npz")


def _fit_targets(emu, args):
    """(target images (N, H, W, C), conditions (N, K) or None) of ``magan fit``: a CaloChallenge
    file's energies are the conditions of a one-condition emulator unless --conditions is given."""
    from magan.runtime.io import is_calochallenge, load_array, read_calochallenge

    cond = None
    if is_calochallenge(args.data):
        data, energies = read_calochallenge(args.data, emu.image_shape)
        if emu.cond_dim == 1 and args.conditions is None:
            cond = energies
    else:
        data = load_array(args.data)
    if cond is None:
        cond = _conditions_arg(emu, args.conditions, len(data), args.seed)
    return data, cond


def _cmd_sample(args) -> int:
    """``magan sample``: ``-n`` emulated images at ``--params`` to a .npy file, or showers and
    their incident energies to a CaloChallenge .h5 file."""
    from magan import load_emulator

    if args.n < 1:
        raise ValueError(f"-n must be at least 1, got {args.n}.")
    out = Path(args.out)
    if out.suffix.lower() not in (".npy", ".h5", ".hdf5"):
        raise ValueError(f"--out {out}: write to a .npy or a .h5 file.")
    emu = load_emulator(args.emulator)
    emu.check_sample_size(args.n)  # before -n rows of anything are allocated
    point = emu.space.parse(args.params)
    cond = _conditions_arg(emu, args.conditions, args.n, args.seed)
    if cond is not None and len(cond) != args.n:
        raise ValueError(f"--conditions gives {len(cond)} rows but -n is {args.n}.")
    images = emu.sample(point, cond, n=args.n, seed=args.seed)
    _write_samples(out, emu, images, cond, quiet=args.quiet)
    return 0


def _write_samples(out: Path, emu, images, cond, *, quiet: bool = False) -> None:
    """Write images (N, H, W, C) to ``out`` (.npy), or in the CaloChallenge layout (.h5) with
    the incident energies ``cond[:, 0]`` (MeV) of a one-condition emulator."""
    from magan.runtime.io import atomic_save_npy, write_calochallenge

    if out.suffix.lower() == ".npy":
        atomic_save_npy(out, images)
        if not quiet:
            print(f"wrote {images.shape} float32 images to {out}")
        return
    if emu.cond_dim != 1:
        raise ValueError("The CaloChallenge .h5 layout stores one incident energy per shower; "
                         f"this emulator has {emu.cond_dim} conditions. Write a .npy file.")
    write_calochallenge(out, images, cond[:, 0])
    if not quiet:
        print(f"wrote {len(images)} showers ({images[0].size} voxels, MeV) and their incident "
          f"energies to {out} (CaloChallenge layout)")


def _simulator_arg(spec: str | None, emu):
    """(simulator, study kit or None) for ``magan validate --simulator``: the study ``emu`` was
    trained for (``spec`` None), a study of the registry by name, or MODULE:FUNCTION."""
    from magan.studies.kits import kit_for, study_kit
    from magan.studies.registry import study_names

    if spec is None:
        kit = kit_for(emu)
        if kit is None:
            raise ValueError(f"{emu!r} is not an emulator of a built-in study; name its simulator "
                             "with --simulator MODULE:FUNCTION.")
        return kit.make_simulator(), kit
    if spec in study_names():
        kit = study_kit(spec)
        return kit.make_simulator(), kit
    if ":" not in spec:
        raise ValueError(f"--simulator {spec!r}: give {_quoted(study_names())} or MODULE:FUNCTION.")
    return _imported_simulator(spec), None


def _imported_simulator(spec: str):
    """The magan Simulator that ``--simulator MODULE:FUNCTION`` names (FUNCTION is called when
    it is a factory)."""
    import importlib

    from magan.simulators.base import Simulator

    mod, _, attr = spec.partition(":")
    try:
        fn = getattr(importlib.import_module(mod), attr)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"--simulator {spec!r}: cannot import it ({err}).") from None
    sim = fn() if callable(fn) and not isinstance(fn, Simulator) else fn
    if not isinstance(sim, Simulator):
        raise ValueError(f"--simulator {spec!r} gave a {type(sim).__name__}, not a magan "
                         "Simulator.")
    return sim


def _validation_config(args, kit):
    """The ValidationConfig of ``magan validate``: the preset, ``--calibration-truths``, and the
    study kit's calibration sizes where neither sets them."""
    from magan.config import replace
    from magan.validation.suite import VALIDATION_PRESETS

    cfg = VALIDATION_PRESETS[args.preset]
    if args.calibration_truths is not None:
        if args.calibration_truths < 0 or args.calibration_truths == 1:
            raise ValueError(f"--calibration-truths must be 0 or at least 2, got "
                             f"{args.calibration_truths}.")
        cfg = replace(cfg, calibration_truths=args.calibration_truths)
    if kit is not None:
        if cfg.calibration_truths is None:
            cfg = replace(cfg, calibration_truths=kit.calibration_truths)
        if cfg.calibration_targets is None:
            cfg = replace(cfg, calibration_targets=kit.calibration_targets)
    return cfg


def _kit_arguments(kit) -> dict:
    """The keyword arguments of :func:`magan.validate` that a study kit supplies."""
    return {"features": kit.features, "feature_names": kit.feature_names,
            "constraints": kit.constraints, "fit_config": kit.fit_config,
            "fit_features": kit.fit_features, "voxel_transform": kit.voxel_transform,
            "voxel_label": kit.voxel_label, "title": f"{kit.name} study"}


def _cmd_validate(args) -> int:
    """``magan validate``: run the suite, print each check's status and the overall verdict."""
    from magan import load_emulator
    from magan.config import replace
    from magan.validation.suite import VALIDATION_PRESETS, validate

    if args.preset not in VALIDATION_PRESETS:
        raise ValueError(f"Unknown validation preset {args.preset!r}; choose one of "
                         f"{sorted(VALIDATION_PRESETS)}.")
    emu = load_emulator(args.emulator)
    sim, kit = _simulator_arg(args.simulator, emu)
    cfg = _validation_config(args, kit)
    extra = {} if kit is None else _kit_arguments(kit)
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


_COMMANDS = {"fit": _cmd_fit, "sample": _cmd_sample, "validate": _cmd_validate}

# What went wrong on the command line (a bad value, a file or folder that is not there or is the
# wrong kind): exit status 2, as argparse's own usage errors. Anything else failed while running.
_INPUT_ERRORS = (ValueError, TypeError, FileNotFoundError, IsADirectoryError, NotADirectoryError)
_OS_FIXES = {
    FileNotFoundError: "check the path",
    IsADirectoryError: "name a file, not a folder",
    NotADirectoryError: "a folder on that path is a file; check the path",
    PermissionError: "choose a path you may use (e.g. another --out), or change its permissions",
    FileExistsError: "choose another path, or move what is there",
}


def _explain(err: BaseException) -> tuple[str, int]:
    """(one message with the fix, exit status) for an error that ended a command."""
    from magan.runtime.io import ROOM_FIX
    from magan.simulators.base import SimulatorError

    status = 2 if isinstance(err, _INPUT_ERRORS) else 1
    if isinstance(err, OSError) and err.filename is not None and err.strerror:
        msg = f"{err.filename}: {err.strerror}"
        if err.errno is not None and err.strerror == os.strerror(err.errno):
            fix = next((f for t, f in _OS_FIXES.items() if isinstance(err, t)), None)
            if err.errno == errno.ENOSPC:
                fix = f"{ROOM_FIX} (--out)"
            msg += f"; {fix}" if fix else ""
        return msg, status
    if isinstance(err, MemoryError):
        return (f"out of memory{f' ({err})' if str(err) else ''}; ask for less (a smaller -n, "
                "preset or batch) or use a machine with more memory.", 1)
    if isinstance(err, (_INPUT_ERRORS, OSError, SimulatorError, FloatingPointError)):
        return str(err), status
    if "RESOURCE_EXHAUSTED" in str(err):
        return (f"the accelerator ran out of memory ({str(err).splitlines()[0][:300]}); use a "
                "smaller preset or batch size.", 1)
    return (f"{type(err).__name__}: {err} (unexpected: rerun with --debug for the full traceback "
            "and report it)", 1)


def _check_preset(args) -> None:
    """Refuse an unknown ``--preset`` before anything heavy is imported (no JAX): a ValueError
    naming the value and the choices."""
    preset = getattr(args, "preset", None)
    if preset is None:
        return
    if args.command == "study":
        from magan.studies.registry import entry

        names, what = entry(args.study).presets, f"magan study {args.study}"
    elif args.command == "fit":
        from magan.config import FIT_PRESETS

        names, what = tuple(FIT_PRESETS), "magan fit"
    else:
        names, what = VALIDATION_PRESET_NAMES, f"magan {args.command}"
    if preset not in names:
        raise ValueError(f"Unknown preset {preset!r} for {what}; choose one of "
                         f"{', '.join(names)} (--preset).")


def _check_tensorboard(args) -> None:
    """Refuse ``--tensorboard`` without the tensorboardX package before any work."""
    if getattr(args, "tensorboard", None) is None:
        return
    import importlib.util

    if importlib.util.find_spec("tensorboardX") is None:
        raise ValueError(f"--tensorboard {args.tensorboard}: the tensorboardX package is not "
                         "installed; pip install 'magan[tensorboard]' (or pip install "
                         "tensorboardX), or drop --tensorboard.")


def _run(parser, args) -> int:
    """Dispatch the parsed command line to its ``_cmd_*`` function; a bare ``magan`` or
    ``magan study`` prints its help and returns 2 (a usage error)."""
    if args.command is None or (args.command == "study" and args.study is None):
        args.show_help()
        return 2
    _check_preset(args)
    _check_tensorboard(args)
    if args.command in ("study", "fit", "validate"):
        from magan.runtime.parallel import initialize

        initialize()  # multi-process (Slurm / JAX_COORDINATOR_ADDRESS) jobs only
    if args.command == "study":
        return _cmd_study(args)
    with _output_of(args):
        return _COMMANDS[args.command](args)


# the kind of run each command's --out folder holds (see magan.runtime.rundir.run_folder)
_RUN_KINDS = {"fit": "fit", "validate": "validation"}


def _output_of(args):
    """A context holding the command's ``--out`` before any work: a run folder (``fit``,
    ``validate``) created, checked to take files, locked against a second run, refused when it
    holds another kind of run, and given its manifest at the end; the output file of ``sample``
    checked to be writable. (``study`` runs do this themselves, in the library.)"""
    import contextlib

    from magan.runtime.rundir import output_file, run_folder

    if args.command in _RUN_KINDS:
        return run_folder(args.out, _RUN_KINDS[args.command])
    if args.command == "sample":
        output_file(args.out)
    return contextlib.nullcontext()


def main(argv=None) -> int:
    """Run the ``magan`` command line on ``argv`` (default ``sys.argv[1:]``); returns the exit
    code: 0; 2 for a usage or input error (a bad value, a missing or wrong-kind file); 1 when the
    run failed (the simulator, memory, permissions, a full disk, anything unexpected). Errors are
    one ``magan: error: ...`` message with the fix on stderr; ``--debug`` shows the traceback."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from magan import __version__

        print(__version__)
        return 0
    try:
        return _run(parser, args)
    except KeyboardInterrupt:
        if args.debug:
            raise
        print("magan: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - every error reaches the user as one clear line
        if args.debug:
            raise
        msg, status = _explain(err)
        print(f"magan: error: {msg}", file=sys.stderr)
        return status


if __name__ == "__main__":
    sys.exit(main())
