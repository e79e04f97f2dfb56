"""Typed configurations of the two stages, with named presets.

Presets (``tiny``, ``default``, ``gpu``) are the same for every study unless a study overrides them:

* ``tiny``: seconds; for tests and smoke runs. Not expected to fit anything well.
* ``default``: the README's main job on a 2-core CPU (minutes).
* ``gpu``: longer and larger; for an accelerator.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass
from typing import ClassVar

__all__ = ["PretrainConfig", "FitConfig", "PRETRAIN_PRESETS", "FIT_PRESETS", "preset",
           "config_from_dict"]


def _require(cfg, rules) -> None:
    """Raise a ValueError naming the first field of ``cfg`` whose value breaks its rule; ``rules``
    is a sequence of (field names, predicate, what the value must be)."""
    for names, ok, must in rules:
        for name in names.split():
            value = getattr(cfg, name)
            if not ok(value):
                raise ValueError(f"{type(cfg).__name__}.{name} must be {must}, got {value!r}.")


def _int_at_least(low: int):
    return lambda v: isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= low


_positive_int = _int_at_least(1)


def _finite_at_least_0(v) -> bool:
    return (isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)
            and v >= 0)


def _finite_positive(v) -> bool:
    return _finite_at_least_0(v) and v > 0


def _fraction(v) -> bool:
    return _finite_at_least_0(v) and v < 1


@dataclass(frozen=True)
class PretrainConfig:
    """Pre-training of the emulator E against the siamese network S. Checks its values when made."""

    # the run
    # optimisation steps (one S update and one E update each). 9000: on three benchmark
    # simulators unlike the studies, twice the former 4500 brought the fit's worst error at 7
    # truths from 6.4-77.8 % to 1.6-35.2 % of a range (docs/generalisation.md)
    steps: int = 9000
    batch_size: int = 32  # parameter points per step; each gets two simulations
    # the networks
    noise_dim: int = 8  # length of E's per-image noise vector z
    emulator_width: int = 8  # channels of E at full resolution (2x, 4x at coarser stages)
    emulator_depth: int = 1  # 3x3 convolutions per coarse stage of E (beyond 1: residual)
    noise_channels: bool = False  # also feed E's noise z as channels to every convolution
    # give each of E's coarse 3x3 stages a map of independent noise at its resolution (local
    # randomness at every scale: object positions, textures), not only z's noise_dim numbers.
    # On: on three benchmark simulators unlike the studies it lowered each one's worst fit error
    # (6 of 15 fits within 5 % of every range against 4; docs/generalisation.md)
    spatial_noise: bool = True
    # E's output gets independent Gaussian noise per pixel and channel, its scale a learned map
    # (EmulatorNet's output_noise): each value of a multi-channel image its own pixel noise
    output_noise: bool = False
    siamese_width: int = 8  # channels of S's first layer
    siamese_embedding_width: int = 64  # length of the vector each of S's branches makes of an image
    # the optimisers
    lr_emulator: float = 1e-3  # Adam learning rate of E
    lr_siamese: float = 3e-4  # Adam learning rate of S
    lr_schedule: str = "constant"  # "constant", or "cosine": both rates decay to 5 % by the end
    beta1: float = 0.5  # Adam beta1 for both (GAN practice)
    beta2: float = 0.99  # Adam beta2 for both
    # the losses
    r1_gamma: float = 1.0  # R1 gradient penalty on S's genuine pairs (Mescheder et al. 2018)
    r1_every: int = 4  # apply R1 every k steps with gamma * k (lazy regularisation)
    aux_weight: float = 10.0  # weight of the auxiliary parameter regression (S learns, E obeys)
    adversarial_weight: float = 1.0  # weight of E's "fool the siamese" loss
    energy_weight: float = 10.0  # weight of the energy score of E's samples vs the simulator's
    feature_weight: float = 0.0  # weight of the energy score of high-level features (if given)
    feature_marginal_weight: float = 0.0  # weight of the sum over features of 1-D energy scores
    pixel_marginal_weight: float = 0.0  # weight of the sum over pixels of 1-D energy scores (CRPS)
    # weight of the energy scores of the images pooled in 2 x 2 and 4 x 4 blocks
    # (magan.losses.pooled_energy_score): where objects lie at each point, with the pixel noise
    # averaged away, which the whole-image score hardly feels
    pooled_energy_weight: float = 0.0
    # weight of the energy score of S's branch embeddings of two emulations against those of the
    # two simulations at the same point (S held fixed): per-point distribution matching in the
    # space S learned to tell emulations apart in, for simulators without hand-written features
    siamese_feature_weight: float = 0.0
    # weight of the sum of 1-D energy scores of generic texture descriptors (log power in four
    # bands of spatial frequency, magan.pretraining.features.structure_bands), each in units of
    # the simulator's spread between two images at the same point: needs no hand-written features
    structure_weight: float = 0.0
    # weight of the sum of 1-D energy scores of each channel's count of values above the image
    # transform's readout threshold (magan.pretraining.features.occupancy_counts; needs a
    # transform with a threshold), in units of the simulator's spread: a sparse detector's
    # occupancy, which a classifier reads first
    occupancy_weight: float = 0.0
    # weight of the sum of 1-D energy scores of each channel's count of side-by-side pixel pairs
    # that both pass the readout threshold (magan.pretraining.features.hit_pairs), in units of
    # the simulator's spread: scattered noise hits against clumps of them
    hit_pairs_weight: float = 0.0
    ema_decay: float = 0.999  # exponential moving average of E's weights, used for sampling
    # the runtime (results do not depend on these, except on_nonfinite="drop")
    prefetch: int = 4  # batches each background simulator thread keeps ready
    simulator_workers: int = 0  # host simulator threads (0: min(4, CPU cores)); same batches
                                # for any
    log_every: int = 50  # steps between metric fetches (the only host syncs of the loop)
    steps_per_call: int = 2  # steps per dispatch, unrolled in one program (must divide log_every)
    compute_dtype: str = "float32"  # "bfloat16": mixed precision (float32 parameters; GPU/TPU)
    checkpoint_every: int = 500  # steps between checkpoints in WORKDIR/checkpoints (0: none)
    on_nonfinite: str = "stop"  # simulator NaN/inf: "stop" (error naming the parameters) or "drop"

    RENAMED: ClassVar[dict[str, str]] = {"features": "siamese_embedding_width"}

    def __post_init__(self):
        _require(self, (
            ("steps batch_size noise_dim emulator_width emulator_depth siamese_width "
             "siamese_embedding_width "
             "r1_every prefetch log_every steps_per_call", _positive_int, "an integer >= 1"),
            ("simulator_workers checkpoint_every", _int_at_least(0), "an integer >= 0"),
            ("lr_emulator lr_siamese", _finite_positive, "a finite number > 0"),
            ("beta1 beta2 ema_decay", _fraction, "in [0, 1)"),
            ("r1_gamma aux_weight adversarial_weight energy_weight feature_weight "
             "feature_marginal_weight pixel_marginal_weight pooled_energy_weight "
             "siamese_feature_weight structure_weight occupancy_weight hit_pairs_weight",
             _finite_at_least_0,
             "a finite number >= 0"),
            ("lr_schedule", lambda v: v in ("constant", "cosine"), "'constant' or 'cosine'"),
            ("compute_dtype", lambda v: v in ("float32", "bfloat16"), "'float32' or 'bfloat16'"),
            ("on_nonfinite", lambda v: v in ("stop", "drop"), "'stop' or 'drop'"),
            ("noise_channels spatial_noise output_noise", lambda v: isinstance(v, bool),
             "True or False"),
        ))
        if self.log_every % self.steps_per_call:
            raise ValueError(f"PretrainConfig.steps_per_call = {self.steps_per_call} must divide "
                             f"log_every = {self.log_every}.")


@dataclass(frozen=True)
class FitConfig:
    """Adversarial fit: generator G against discriminator D on the target images, E frozen."""

    steps: int = 300  # optimisation steps (one D and one G update each)
    batch_size: int = 32  # target images and generated images per step and replica
    replicas: int = 3  # independent (G, D) pairs, each on a bootstrap resample of the targets
    noise_dim: int = 16  # length of G's noise vector, read by G as a one-channel sequence
    generator_width: int = 16  # channels of G's 1D convolutions
    discriminator_width: int = 8  # channels of D's first layer
    discriminator_embedding_width: int = 64  # length of the vector D's encoder makes of an image
    lr_generator: float = 3e-3  # Adam learning rate of G (Adam moves its output bias <= lr per
                                # step)
    lr_discriminator: float = 3e-4  # Adam learning rate of D
    beta1: float = 0.5
    beta2: float = 0.99
    r1_gamma: float = 1.0  # R1 penalty on D's real (target) images
    r1_every: int = 4  # apply R1 every k steps with gamma * k (lazy regularisation)
    init: str = "regressor"  # where G starts: "regressor" (S's auxiliary estimate) or "center"
    init_scale: float = 0.05  # initial spread of G's output layer
    bias_correction: bool = True  # with a simulator: subtract the bias measured on a reference set
    # where the reference set(s) are simulated: "around" (the default: ``reference_sets`` sets at
    # points scattered around the uncorrected fit, fitted in one second pass with one replica
    # each: their mean error is the bias, the scatter of their errors the fit's total
    # uncertainty, the emulator's systematic error near the fit included), "start" (one set at
    # S's estimate, fitted beside the targets in one pass; its std is statistical only) or "fit"
    # (one set at the uncorrected fit's mean, a second pass: the parametric bootstrap). On the
    # line study and three benchmark simulators, the fits that raised no warning had 1- and
    # 2-sigma coverage 0.68 and 0.90 with "around" (docs/generalisation.md, scripts/coverage.py)
    bias_reference: str = "around"
    reference_sets: int = 8  # reference sets of bias_reference="around" (one replica each)
    bootstrap: bool = True  # resample the targets with replacement per replica (spread = stat.
                            # error)
    samples_per_replica: int = 256  # G outputs drawn per replica for the result
    # the result is drawn from G with its parameters averaged over this last fraction of the steps
    # (Polyak / iterate averaging: the adversarial updates leave G oscillating around the
    # solution; the average sits closer to it); 0 = G's final parameters
    average_last: float = 0.0
    # weight, in G's loss, of the energy distance between summaries of G's emulated images and of
    # the target batch (feature matching): the user's fit(..., features=f), or without them S's
    # learned summaries (its regression head's reading of each image); 0 = off. On three benchmark
    # simulators unlike the studies it brought the largest error at five truths from 36.63 % to
    # 4.55 % of the range (docs/generalisation.md)
    feature_weight: float = 10.0
    log_every: int = 50

    RENAMED: ClassVar[dict[str, str]] = {"features": "discriminator_embedding_width",
                                         "noise_len": "noise_dim"}

    def __post_init__(self):
        _require(self, (
            ("init", lambda v: v in ("regressor", "center"), "'regressor' or 'center'"),
            ("bias_reference", lambda v: v in ("start", "fit", "around"),
             "'start', 'fit' or 'around'"),
            ("reference_sets", _int_at_least(2), "an integer >= 2"),
            ("steps batch_size replicas samples_per_replica r1_every noise_dim generator_width "
             "discriminator_width discriminator_embedding_width log_every", _positive_int,
             "an integer >= 1"),
            ("lr_generator lr_discriminator", _finite_positive, "a finite number > 0"),
            ("beta1 beta2 average_last", _fraction, "in [0, 1)"),
            ("r1_gamma init_scale feature_weight", _finite_at_least_0, "a finite number >= 0"),
            ("bias_correction bootstrap", lambda v: isinstance(v, bool), "True or False"),
        ))


PRETRAIN_PRESETS: dict[str, PretrainConfig] = {
    # tiny runs are compile-bound: R1 every step and one step per call give a single program
    "tiny": PretrainConfig(steps=100, batch_size=16, emulator_width=4, siamese_width=4,
                           siamese_embedding_width=16, log_every=10, r1_every=1, steps_per_call=1),
    "default": PretrainConfig(),
    "gpu": PretrainConfig(steps=50000, batch_size=256, emulator_width=32, siamese_width=32,
                          siamese_embedding_width=128, log_every=200),
}

FIT_PRESETS: dict[str, FitConfig] = {
    # tiny fits match no summaries and fit one reference set beside the targets ("start", one
    # program): the tests that use them stay fast; tests of the summaries and of "around" set
    # feature_weight and bias_reference themselves
    "tiny": FitConfig(steps=60, batch_size=16, replicas=2, discriminator_width=8,
                      discriminator_embedding_width=32, samples_per_replica=32, log_every=10,
                      r1_every=1, feature_weight=0.0, bias_reference="start"),
    "default": FitConfig(),
    "gpu": FitConfig(steps=5000, batch_size=256, replicas=8, discriminator_width=32,
                     discriminator_embedding_width=128, log_every=200),
}


def preset(kind: str, name: str):
    """Return the preset ``name`` of ``kind`` ("pretrain" or "fit"), with a helpful error."""
    table = {"pretrain": PRETRAIN_PRESETS, "fit": FIT_PRESETS}[kind]
    if name not in table:
        raise ValueError(f"Unknown preset {name!r}; choose one of {sorted(table)}.")
    return table[name]


def config_from_dict(cls, d: dict):
    """Rebuild a config dataclass from a dict, refusing unknown keys by name. Fields renamed
    since magan 0.1 (``cls.RENAMED``: ``features``, ``noise_len``) are read under their new
    names."""
    renamed = getattr(cls, "RENAMED", {})
    d = {renamed.get(k, k) if renamed.get(k, k) not in d else k: v for k, v in d.items()}
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown field(s) {unknown}; known: {sorted(names)}.")
    return cls(**d)


def replace(cfg, **changes):
    """``dataclasses.replace`` that names an unknown field instead of a TypeError."""
    return config_from_dict(type(cfg), {**dataclasses.asdict(cfg), **changes})


def replace_from_text(cfg, text: str):
    """:func:`replace` with changes written ``"name=value,name=value"`` (a command line's), each
    value converted to the type of the field's current value (``true``/``false`` for booleans);
    an unknown name is an error that lists the known ones."""
    changes = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        name, _, value = item.partition("=")
        if not hasattr(cfg, name):
            return replace(cfg, **{name: value})  # raises, naming the known fields
        kind = type(getattr(cfg, name))
        changes[name] = (value if kind is str else value.lower() == "true" if kind is bool
                         else kind(value))
    return replace(cfg, **changes)
