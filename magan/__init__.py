"""magan: fit simulator parameters to images with a Model-Assisted GAN.

Data flow::

    ParameterSpace [+ ConditionSpace] + Simulator --train_emulator--> Emulator
    Emulator --fit(target images [, target conditions])--> FitResult
    FitResult.save(path) -> one .npz file; load_fit(path) -> FitResult
    Emulator.sample(params [, conditions]) -> fast simulation
    validate(emulator, simulator) -> report: is the emulator trustworthy, is the fit calibrated?
    calibrate(emulator, simulator) -> the fit's bias and coverage over many truths

Names are imported on first use (PEP 562), so ``import magan.space`` or a NumPy-only simulator
program does not pay for importing JAX.
"""

from __future__ import annotations

from magan._lazy import alias_moved_modules, exports

__version__ = "0.1.0"

_WHERE = {
    "ParameterSpace": "magan.space", "ConditionSpace": "magan.space",
    "ImageTransform": "magan.transforms", "IdentityTransform": "magan.transforms",
    "PowerTransform": "magan.transforms",
    "Simulator": "magan.simulators", "FunctionSimulator": "magan.simulators",
    "JaxSimulator": "magan.simulators", "BankSimulator": "magan.simulators",
    "CommandSimulator": "magan.simulators", "SimulatorError": "magan.simulators",
    "PretrainConfig": "magan.config", "FitConfig": "magan.config",
    "PRETRAIN_PRESETS": "magan.config", "FIT_PRESETS": "magan.config", "preset": "magan.config",
    "train_emulator": "magan.pretraining",
    "Emulator": "magan.emulator", "load_emulator": "magan.emulator",
    "fit": "magan.fitting", "FitResult": "magan.fitting", "load_fit": "magan.fitting",
    "validate": "magan.validation", "ValidationConfig": "magan.validation",
    "calibrate": "magan.calibration",
    "set_compilation_cache": "magan.runtime.cache",
}
__all__ = [*_WHERE, "__version__"]
__getattr__, __dir__ = exports(__name__, _WHERE)

# magan 0.1's flat module paths, served for one more release
alias_moved_modules({
    "magan.bank": "magan.simulators.bank",
    "magan.command_simulator": "magan.simulators.command",
    "magan.networks": "magan.nn.models",
    "magan.convolution": "magan.nn.convolution",
    "magan.compile": "magan.runtime.compile",
    "magan.checkpoints": "magan.runtime.checkpoints",
    "magan.parallel": "magan.runtime.parallel",
    "magan.io": "magan.runtime.io",
    "magan.progress": "magan.runtime.progress",
    "magan.plots": "magan.runtime.plots",
    **{f"magan.{m}": f"magan.validation.{m}" for m in (
        "distances", "two_sample", "learned_features", "memorisation", "coverage",
        "constraints", "closure", "quality")},
    "magan.studies.line_simulator": "magan.studies.line.simulator",
    "magan.studies.line_command": "magan.studies.line.command",
    "magan.studies.calorimeter_simulator": "magan.studies.calorimeter.simulator",
    "magan.studies.calorimeter_model": "magan.studies.calorimeter.model",
})
