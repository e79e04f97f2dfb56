"""magan: fit simulator parameters to images with a Model-Assisted GAN.

Data flow::

    ParameterSpace [+ ConditionSpace] + Simulator --train_emulator--> Emulator
    Emulator --fit(target images [, target conditions])--> FitResult
    Emulator.sample(params [, conditions]) -> fast simulation
    validate(emulator, simulator) -> report: is the emulator trustworthy, is the fit calibrated?

Names are imported on first use (PEP 562), so ``import magan.space`` or a NumPy-only simulator
program does not pay for importing JAX.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_WHERE = {
    "FIT_PRESETS": "magan.config", "PRETRAIN_PRESETS": "magan.config", "FitConfig": "magan.config",
    "PretrainConfig": "magan.config", "preset": "magan.config",
    "Emulator": "magan.emulator", "load_emulator": "magan.emulator",
    "FitResult": "magan.fitting", "fit": "magan.fitting",
    "train_emulator": "magan.pretraining",
    "FunctionSimulator": "magan.simulators", "JaxSimulator": "magan.simulators",
    "Simulator": "magan.simulators", "SimulatorError": "magan.simulators",
    "BankSimulator": "magan.bank", "CommandSimulator": "magan.command_simulator",
    "ConditionSpace": "magan.space", "ParameterSpace": "magan.space",
    "IdentityTransform": "magan.transforms", "ImageTransform": "magan.transforms",
    "PowerTransform": "magan.transforms",
    "ValidationConfig": "magan.validation", "validate": "magan.validation",
}

__all__ = [
    "ParameterSpace", "ConditionSpace", "ImageTransform", "IdentityTransform", "PowerTransform",
    "Simulator", "FunctionSimulator", "JaxSimulator", "BankSimulator", "CommandSimulator",
    "SimulatorError", "PretrainConfig", "FitConfig", "PRETRAIN_PRESETS", "FIT_PRESETS", "preset",
    "train_emulator", "Emulator", "load_emulator", "fit", "FitResult", "validate",
    "ValidationConfig", "__version__",
]


def __getattr__(name: str):
    if name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'magan' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
