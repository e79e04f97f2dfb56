"""magan: fit simulator parameters to images with a Model-Assisted GAN.

Data flow::

    ParameterSpace [+ ConditionSpace] + Simulator --train_emulator--> Emulator
    Emulator --fit(target images [, target conditions])--> FitResult
    Emulator.sample(params [, conditions]) -> fast simulation
    validate(emulator, simulator) -> report: is the emulator trustworthy, is the fit calibrated?
"""

from magan.config import FIT_PRESETS, PRETRAIN_PRESETS, FitConfig, PretrainConfig, preset
from magan.emulator import Emulator, load_emulator
from magan.fitting import FitResult, fit
from magan.pretraining import train_emulator
from magan.simulators import FunctionSimulator, JaxSimulator, Simulator, SimulatorError
from magan.space import ConditionSpace, ParameterSpace
from magan.transforms import IdentityTransform, ImageTransform, PowerTransform
from magan.validation import ValidationConfig, validate

__version__ = "0.1.0"

__all__ = [
    "ParameterSpace", "ConditionSpace", "ImageTransform", "IdentityTransform", "PowerTransform",
    "Simulator", "FunctionSimulator", "JaxSimulator", "SimulatorError",
    "PretrainConfig", "FitConfig", "PRETRAIN_PRESETS", "FIT_PRESETS", "preset",
    "train_emulator", "Emulator", "load_emulator", "fit", "FitResult", "validate",
    "ValidationConfig", "__version__",
]
