"""The calorimeter study's pieces as magan objects: simulator, conditions, transform, features.

* :data:`CALO_CONDITIONS`: the per-event condition, the incident energy in MeV, log-uniform over
  10-100 GeV during pre-training.
* :func:`calorimeter_simulator`: :func:`~magan.studies.calorimeter.simulator.simulate_showers`
  wrapped as a host :class:`~magan.FunctionSimulator` with that condition.
* :data:`CALO_TRANSFORM`: what the networks see, ``sqrt(E_voxel / (5e-4 E_incident))``; a voxel at
  the core of a shower is O(1) at every energy. An extra channel carries the shower's total
  visible energy, so the emulator models the energy sum and the shower shape separately. The
  inverse zeroes values below the readout threshold, as the simulator does.
* :func:`calorimeter_features`: the high-level features (response, depth, width) in jax.numpy;
  :func:`training_features` adds the 20 layer energies, for the feature energy score of
  pre-training.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from magan.simulators.function import FunctionSimulator
from magan.space import ConditionSpace
from magan.studies.calorimeter.simulator import (
    _RADIAL_ONEHOT,
    ENERGY_RANGE_MEV,
    IMAGE_SHAPE,
    THRESHOLD_MEV,
    shower_features,
    simulate_showers,
)
from magan.transforms import PowerTransform

__all__ = ["CALO_CONDITIONS", "CALO_TRANSFORM", "calorimeter_features", "calorimeter_simulator",
           "features_numpy", "training_features"]

CALO_CONDITIONS = ConditionSpace({"energy": (*ENERGY_RANGE_MEV, "MeV", "log")})
CALO_TRANSFORM = PowerTransform(scale=5e-4, power=0.5, divide_by_condition=0,
                                threshold=THRESHOLD_MEV, total_channel=True)


def _simulate(rng, params, conditions):
    return simulate_showers(rng, params, conditions[:, 0])


def calorimeter_simulator() -> FunctionSimulator:
    """The GFlash-style W/Si calorimeter as a host simulator with the incident-energy condition."""
    return FunctionSimulator(_simulate, IMAGE_SHAPE, name="gflash_wsi_calorimeter",
                             conditions=CALO_CONDITIONS)


def calorimeter_features(images, conditions):
    """(N, 12, 12, 20) MeV images, (N, 1) MeV energies -> (N, 3) response, depth [X0], width [mm]
    (jax.numpy; differentiable)."""
    return shower_features(images, conditions[:, 0], xp=jnp)


def training_features(images, conditions):
    """Features of pre-training's feature energy scores, (N, 31): response, depth, width, the
    fraction of the incident energy seen in each of the 20 readout layers and the fraction of the
    visible energy in each of the 8 radial rings (one cell pitch wide; jax.numpy). The layer
    fractions carry the event-to-event fluctuations of the longitudinal profile (and their
    anti-correlations), the ring fractions the lateral profile, which width (an r^2-weighted
    mean) alone leaves loose: without them the emulator's halo had holes and hot edges."""
    layers = jnp.sum(images, axis=(1, 2)) / conditions[:, :1]
    rings = images.sum(axis=3).reshape(images.shape[0], -1) @ jnp.asarray(_RADIAL_ONEHOT,
                                                                           jnp.float32)
    rings = rings / (rings.sum(axis=1, keepdims=True) + 1.0)  # +1 MeV: empty images stay finite
    return jnp.concatenate([calorimeter_features(images, conditions), layers, rings], axis=1)


def features_numpy(images, energies) -> np.ndarray:
    """NumPy float64 version of :func:`calorimeter_features`; energies (N,) or (N, 1) MeV."""
    return shower_features(np.asarray(images, np.float64), np.asarray(energies, np.float64))
