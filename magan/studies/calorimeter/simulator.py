"""A stochastic GFlash-style simulator of electromagnetic showers in a W/Si sampling calorimeter.

Physics follows GFlash (Grindhammer & Peters, hep-ex/0001020, and the Geant4 classes
``GFlashSamplingShowerParameterisation`` / ``GFlashSamplingShowerTuning``); the formulas are the
ones collected in ``shared/notes/gflash.md``. Everything is NumPy, vectorised over all energy spots
of all showers of a batch, and ``rng: np.random.Generator`` is the only source of randomness.

Geometry, modelled on the CLICdet electromagnetic calorimeter (one electron or photon per event,
normal incidence):

* 40 sampling layers, each 1.9 mm tungsten + 0.5 mm silicon (2.4 mm pitch);
* effective material from the GFlash sampling formulas, computed at import time into
  :data:`GEOMETRY` (W: Z=74, A=183.84, rho=19.3 g/cm3, X0=6.76 g/cm2; Si: Z=14, A=28.09,
  rho=2.33 g/cm3, X0=21.82 g/cm2). Mass weights ``w_i = d_i rho_i / sum(d rho)``; ``Z_eff``,
  ``A_eff`` w-weighted; ``1/X0_eff = sum w_i rho_eff / (X0_i rho_i)``; ``Fs = X0_eff / 2.4 mm``;
  ``e_hat = 1 / (1 + 0.007 (Z_W - Z_Si))``; ``Ec_eff = 2.66 (X0_eff[g/cm2] Z_eff / A_eff)^1.1`` MeV
  and ``R_M,eff = X0_eff * 21.2 MeV / Ec_eff`` (the homogeneous-material formulas applied to the
  effective material; the PDG mixture rule ``1/R_M = sum w_i Ec_i / (Es X0_i)`` gives 11.2 mm, while
  Geant4's ``ComputeZAX0EFFetc``, weighting ``Ec_i / X0_i`` with X0_i in length units, would give
  9.5 mm). This gives X0_eff = 4.38 mm (one sampling layer = 0.548 X0, the stack
  21.9 X0), Ec_eff = 8.20 MeV, R_M,eff = 11.3 mm, Z_eff = 72.2, Fs = 1.83, e_hat = 0.704;
* readout: square silicon cells of 5.1 mm (<= R_M,eff / 2, checked at import), a 12 x 12 grid
  (61.2 mm x 61.2 mm) centred on the beam axis, the beam entering at the common corner of the four
  central cells; 20 readout layers, each the sum of 2 consecutive sampling layers (1.10 X0).

Image: shape (N, 12, 12, 20) = (event, cell row y, cell column x, readout layer), float32, visible
energy in the silicon in MeV. Cell ``(j, i)`` has its centre at ``x = (i - 5.5) * 5.1 mm``,
``y = (j - 5.5) * 5.1 mm``; readout layer ``k`` spans depths ``[k, k + 1) * 1.095 X0``.

Per shower of incident energy E (MeV; ``y = E / Ec_eff``, ``E_GeV = E / 1000``):

1. Longitudinal profile: ``(ln T, ln alpha)`` drawn with the sampling-calorimeter means
   (``T = exp<ln T_hom> - 0.55/Fs - 0.69 (1 - e_hat)``, ``alpha = exp<ln alpha_hom> - 0.476/Fs``),
   widths and correlation of GFlash, with Geant4's guards (``T >= 1``, ``alpha >= 1.1``, widths
   <= 0.5); then ``T`` is multiplied by the fitted ``depth_scale``. The energy profile is
   ``dE/dt = E Gamma(t; alpha, beta)``, ``beta = (alpha - 1) / T``, t in X0.
2. Spots: ``N = round(10.3 / c_s * E_GeV^0.959)`` (``c_s = 0.11``, at least 1). Spot depths are
   drawn from the spot profile ``Gamma(alpha_s, beta_s)``, ``T_s = T (0.698 + 0.00212 Z_eff)``,
   ``alpha_s = alpha (0.639 + 0.00334 Z_eff)``. As in Geant4, where the energy of each depth step
   is shared by the spots that fall in it, the *energy* still follows the shower's profile
   ``(T, alpha)``: spot ``i`` carries ``E w_i / sum_j w_j`` with ``w = f(t; alpha, beta) /
   f(t; alpha_s, beta_s)`` (self-normalised, so a shower's spots carry exactly E; on average a
   spot carries E / N). Spots deeper than the stack (21.9 X0) are lost (leakage).
3. Radius of each spot from the GFlash core/tail profile at ``tau = t / T`` (E in GeV, Z_eff,
   sampling corrections included), ``r = R sqrt(u / (1 - u))`` with ``R = R_core`` with
   probability ``p`` else ``R_tail``, in units of R_M,eff times the fitted ``moliere_scale``;
   azimuth uniform. Spots outside the 12 x 12 grid are lost (lateral leakage).
4. Visible energy: times the fitted ``sampling_fraction``, times one Gamma-distributed factor per
   shower with mean 1 and relative variance ``c_s^2 / E_GeV`` (the sampling fluctuation of the
   shower's total visible energy). There is no separate per-spot energy fluctuation: local
   fluctuations come from the Poisson-like scatter of the spots themselves.
5. Electronics: Gaussian noise of std ``noise_mev`` added to every voxel (every cell of every
   readout layer), then the readout threshold :data:`THRESHOLD_MEV` = 0.075 MeV (half the most
   probable energy loss of a MIP in 0.5 mm silicon, taken as :data:`MIP_MEV` = 0.15 MeV) zeroes
   every voxel below it. Output voxels are 0 or >= THRESHOLD_MEV.

The incident energy is a per-event condition (known, never fitted), in
:data:`ENERGY_RANGE_MEV`; the formulas are extrapolated (with the guards above) outside it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from magan.space import ParameterSpace

__all__ = [
    "CALO_SPACE",
    "ENERGY_RANGE_MEV",
    "FEATURE_NAMES",
    "GEOMETRY",
    "IMAGE_SHAPE",
    "MIP_MEV",
    "NOMINAL",
    "SAMPLING_TERM",
    "THRESHOLD_MEV",
    "CalorimeterGeometry",
    "gflash_mean_depth",
    "longitudinal_profile",
    "radial_profile",
    "shower_features",
    "simulate_showers",
    "sparsity",
]

# ---------------------------------------------------------------------------------------- geometry
_ES_MEV = 21.2  # scale energy of the Moliere radius


@dataclass(frozen=True)
class _Material:
    z: float
    a: float  # g/mol
    density_g_cm3: float
    x0_g_cm2: float


_TUNGSTEN = _Material(z=74.0, a=183.84, density_g_cm3=19.3, x0_g_cm2=6.76)
_SILICON = _Material(z=14.0, a=28.09, density_g_cm3=2.33, x0_g_cm2=21.82)


@dataclass(frozen=True)
class CalorimeterGeometry:
    """The sampling calorimeter and its readout; effective quantities from the GFlash formulas."""

    n_layers: int  # sampling layers
    absorber_mm: float  # tungsten per layer
    active_mm: float  # silicon per layer
    cell_mm: float  # square readout cell pitch
    n_cells: int  # cells per side of the readout grid
    layers_per_readout: int  # sampling layers summed into one readout layer
    z_eff: float
    a_eff: float  # g/mol
    density_g_cm3: float  # effective density
    x0_mm: float  # effective radiation length
    x0_g_cm2: float
    critical_energy_mev: float  # effective critical energy Ec
    moliere_radius_mm: float  # effective Moliere radius R_M
    fs: float  # X0_eff / layer pitch
    e_hat: float  # 1 / (1 + 0.007 (Z_abs - Z_act))

    @property
    def layer_x0(self) -> float:
        """Thickness of one sampling layer, X0."""
        return (self.absorber_mm + self.active_mm) / self.x0_mm

    @property
    def n_readout(self) -> int:
        """Number of readout layers."""
        return self.n_layers // self.layers_per_readout

    @property
    def readout_layer_x0(self) -> float:
        """Thickness of one readout layer, X0."""
        return self.layers_per_readout * self.layer_x0

    @property
    def depth_x0(self) -> float:
        """Depth of the whole stack, X0."""
        return self.n_layers * self.layer_x0

    @property
    def half_width_mm(self) -> float:
        """Half the side of the readout grid, mm (the beam axis is at its centre)."""
        return 0.5 * self.n_cells * self.cell_mm


def _ec_mev(x0_g_cm2: float, z: float, a: float) -> float:
    """Critical energy, MeV: 2.66 (X0 Z / A)^1.1."""
    return 2.66 * (x0_g_cm2 * z / a) ** 1.1


def _sampling_geometry(absorber: _Material, active: _Material, absorber_mm: float,
                       active_mm: float, **readout) -> CalorimeterGeometry:
    """Effective material of an absorber/active stack with the GFlash sampling formulas."""
    mass = np.array([absorber_mm * absorber.density_g_cm3, active_mm * active.density_g_cm3])
    w = mass / mass.sum()
    pitch_mm = absorber_mm + active_mm
    rho_eff = float(mass.sum() / pitch_mm)
    z_eff = float(w[0] * absorber.z + w[1] * active.z)
    a_eff = float(w[0] * absorber.a + w[1] * active.a)
    inv_x0_cm = w[0] * rho_eff / absorber.x0_g_cm2 + w[1] * rho_eff / active.x0_g_cm2
    x0_mm = float(10.0 / inv_x0_cm)
    x0_g_cm2 = x0_mm / 10.0 * rho_eff
    ec = _ec_mev(x0_g_cm2, z_eff, a_eff)
    return CalorimeterGeometry(
        absorber_mm=absorber_mm, active_mm=active_mm, z_eff=z_eff, a_eff=a_eff,
        density_g_cm3=rho_eff, x0_mm=x0_mm, x0_g_cm2=x0_g_cm2, critical_energy_mev=ec,
        moliere_radius_mm=x0_mm * _ES_MEV / ec, fs=x0_mm / pitch_mm,
        e_hat=1.0 / (1.0 + 0.007 * (absorber.z - active.z)), **readout,
    )


GEOMETRY = _sampling_geometry(_TUNGSTEN, _SILICON, 1.9, 0.5, n_layers=40, cell_mm=5.1, n_cells=12,
                              layers_per_readout=2)
if not GEOMETRY.cell_mm <= GEOMETRY.moliere_radius_mm / 2:  # explicit, survives python -O
    raise AssertionError(f"cell {GEOMETRY.cell_mm} mm > R_M/2 = "
                         f"{GEOMETRY.moliere_radius_mm / 2} mm")

IMAGE_SHAPE = (GEOMETRY.n_cells, GEOMETRY.n_cells, GEOMETRY.n_readout)  # (12, 12, 20)
MIP_MEV = 0.15  # most probable energy loss of a MIP in 0.5 mm Si (~0.3 keV/um)
THRESHOLD_MEV = 0.075  # readout threshold, half a MIP
SAMPLING_TERM = 0.11  # c_s: sigma(E_vis)/E_vis = c_s / sqrt(E_GeV)
ENERGY_RANGE_MEV = (10_000.0, 100_000.0)

CALO_SPACE = ParameterSpace(
    {
        "sampling_fraction": (0.015, 0.025, ""),  # visible (Si) fraction of the deposited energy
        "moliere_scale": (0.8, 1.25, ""),  # multiplies every spot radius
        "depth_scale": (0.8, 1.25, ""),  # multiplies the shower depth T
        "noise_mev": (0.015, 0.045, "MeV"),  # electronic noise per voxel, std
    }
)
NOMINAL = np.array([0.02, 1.0, 1.0, 0.03])
FEATURE_NAMES = ("response", "depth_x0", "width_mm")

_MAX_SPOTS_PER_CHUNK = 1_000_000

# GFlash constants, E in GeV where it enters through ln E; Z = Z_eff
_Z = GEOMETRY.z_eff
_FS = GEOMETRY.fs
_ONE_M_EHAT = 1.0 - GEOMETRY.e_hat
_SPOT_T = 0.698 + 0.00212 * _Z
_SPOT_ALPHA = 0.639 + 0.00334 * _Z
_Z2 = 0.1162 - 0.000381 * _Z
_K1, _K2, _K3 = 0.659 - 0.00309 * _Z, 0.645, -2.59
_P1, _P2 = 2.632 - 0.00094 * _Z, 0.401 + 0.00187 * _Z


# ---------------------------------------------------------------------------------- longitudinal
def _ln_y(energy_mev: np.ndarray) -> np.ndarray:
    return np.log(np.asarray(energy_mev, dtype=np.float64) / GEOMETRY.critical_energy_mev)


def _mean_logs(ln_y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """<ln T>, <ln alpha> of the sampling calorimeter (Geant4's guards included)."""
    t_hom = np.maximum(ln_y - 0.812, 0.1)
    a_hom = np.maximum(0.81 + (0.458 + 2.26 / _Z) * ln_y, 0.1)
    t_sam = t_hom - 0.55 / _FS - 0.69 * _ONE_M_EHAT
    a_sam = a_hom - 0.476 / _FS
    return np.log(np.maximum(t_sam, math.exp(0.1))), np.log(np.maximum(a_sam, math.exp(0.1)))


def gflash_mean_depth(energy_mev) -> np.ndarray:
    """Shower maximum ``T = exp<ln T_hom> - 0.55/Fs - 0.69 (1 - e_hat)`` in X0, for depth_scale 1.

    ``exp<ln T_hom> = ln y - 0.812``, ``y = E / Ec_eff``. Same shape as ``energy_mev`` (MeV).
    """
    return np.exp(_mean_logs(_ln_y(energy_mev))[0])


def _draw_profiles(rng: np.random.Generator, energy_mev: np.ndarray,
                   depth_scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-shower (T [X0], alpha) with correlated fluctuations of ln T and ln alpha. (N,) each."""
    ln_y = _ln_y(energy_mev)
    mean_ln_t, mean_ln_a = _mean_logs(ln_y)
    sig_t = 1.0 / np.maximum(-2.5 + 1.25 * ln_y, 2.0)  # <= 0.5, as in Geant4
    sig_a = 1.0 / np.maximum(-0.82 + 0.79 * ln_y, 2.0)
    rho = np.clip(0.784 - 0.023 * ln_y, -1.0, 1.0)
    z1, z2 = rng.standard_normal((2, energy_mev.shape[0]))
    c1, c2 = np.sqrt((1.0 + rho) / 2.0), np.sqrt((1.0 - rho) / 2.0)
    t = np.maximum(np.exp(mean_ln_t + sig_t * (c1 * z1 + c2 * z2)), 1.0) * depth_scale
    alpha = np.maximum(np.exp(mean_ln_a + sig_a * (c1 * z1 - c2 * z2)), 1.1)
    return t, alpha


def _n_spots(energy_mev: np.ndarray) -> np.ndarray:
    """Number of spots per shower, ``10.3 / c_s * E_GeV^0.959``, rounded, at least 1."""
    n = 10.3 / SAMPLING_TERM * (energy_mev / 1000.0) ** 0.959
    return np.maximum(np.rint(n), 1).astype(np.int64)


# ---------------------------------------------------------------------------------------- radial
def _radial_parameters(tau: np.ndarray, ln_e: np.ndarray) -> tuple[np.ndarray, ...]:
    """GFlash (R_core, R_tail [R_M], p_core) at ``tau = t / T`` with sampling corrections."""
    exp_mtau = np.exp(-tau)
    r_core = (0.0251 + 0.00319 * ln_e) + _Z2 * tau - 0.0203 * _ONE_M_EHAT + 0.0397 / _FS * exp_mtau
    k4 = 0.3585 + 0.0412 * ln_e
    r_tail = (_K1 * (np.exp(_K3 * (tau - _K2)) + np.exp(k4 * (tau - _K2)))
              - 0.14 * _ONE_M_EHAT - 0.495 / _FS * exp_mtau)
    x = (_P2 - tau) / (1.313 - 0.0686 * ln_e)
    p = (_P1 * np.exp(x - np.exp(x))
         + _ONE_M_EHAT * (0.348 - 0.642 / _FS * np.exp(-(tau - 1.0) ** 2)))
    return np.maximum(r_core, 1e-3), np.maximum(r_tail, 1e-3), np.clip(p, 0.0, 1.0)


# ------------------------------------------------------------------------------------- simulator
def _check_inputs(params, energies) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(params, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != CALO_SPACE.dim:
        raise ValueError(f"params: expected shape (N, {CALO_SPACE.dim}) with columns "
                         f"{list(CALO_SPACE.names)}, got shape {np.shape(params)}.")
    e = np.asarray(energies, dtype=np.float64)
    n = p.shape[0]
    if e.shape not in ((n,), (n, 1)):
        raise ValueError(f"energies: expected shape ({n},) or ({n}, 1) (one incident energy in MeV "
                         f"per row of params), got shape {np.shape(energies)}.")
    e = e.reshape(n)
    if not (np.isfinite(p).all() and np.isfinite(e).all()):
        raise ValueError("params and energies must be finite.")
    if (e <= 0).any():
        raise ValueError("energies must be positive (MeV).")
    if (p[:, [0, 3]] < 0).any() or (p[:, [1, 2]] <= 0).any():
        raise ValueError("sampling_fraction and noise_mev must be >= 0, moliere_scale and "
                         "depth_scale > 0.")
    return p, e


def _deposit_chunk(rng: np.random.Generator, out: np.ndarray, energy: np.ndarray,
                   e_visible: np.ndarray, t_max: np.ndarray, alpha: np.ndarray,
                   r_scale_mm: np.ndarray, n_spots: np.ndarray) -> None:
    """Draw all spots of a few showers and add their visible energy to ``out`` (n, 12, 12, 20).

    Per-spot arithmetic is float32 (several times faster than float64 here); per-shower sums are
    float64.
    """
    g = GEOMETRY
    n = energy.shape[0]
    # per-shower spot profile; energy weights w = f(t; alpha, beta) / f(t; alpha_s, beta_s)
    t_s = np.maximum(t_max * _SPOT_T, 0.5)
    a_s = np.maximum(alpha * _SPOT_ALPHA, 1.1)
    b_s = (a_s - 1.0) / t_s
    beta = (alpha - 1.0) / t_max
    per_shower = np.stack([a_s, 1.0 / b_s, alpha - a_s, beta - b_s, 1.0 / t_max,
                           np.log(energy / 1000.0), r_scale_mm]).astype(np.float32)
    a_s, inv_b_s, d_alpha, d_beta, inv_t_max, ln_e, r_scale = np.repeat(per_shower, n_spots, axis=1)
    t = np.maximum(rng.standard_gamma(a_s, dtype=np.float32) * inv_b_s, 1e-6)  # depth, X0
    w = np.exp(d_alpha * np.log(t) - d_beta * t)
    starts = np.concatenate([[0], np.cumsum(n_spots)[:-1]])
    norm = e_visible / np.add.reduceat(w, starts, dtype=np.float64)
    e_spot = w * np.repeat(norm.astype(np.float32), n_spots)
    # lateral position: one uniform picks core/tail and, rescaled, gives the radius
    r_core, r_tail, p_core = _radial_parameters(t * inv_t_max, ln_e)
    v, u_phi = rng.random((2, t.shape[0]), dtype=np.float32)
    core = v < p_core
    u = np.where(core, v / np.maximum(p_core, 1e-30),
                 (v - p_core) / np.maximum(1.0 - p_core, 1e-30))
    u = np.minimum(u, np.float32(1.0 - 2.0**-24))
    r = np.where(core, r_core, r_tail) * np.sqrt(u / (1.0 - u)) * (r_scale / g.cell_mm)  # cells
    phi = np.float32(2.0 * np.pi) * u_phi
    ix = np.floor(r * np.cos(phi) + 0.5 * g.n_cells)
    iy = np.floor(r * np.sin(phi) + 0.5 * g.n_cells)
    layer = np.floor(t * np.float32(1.0 / g.readout_layer_x0))
    keep = (ix >= 0) & (ix < g.n_cells) & (iy >= 0) & (iy < g.n_cells) & (layer < g.n_readout)
    voxel = ((iy[keep] * g.n_cells + ix[keep]) * g.n_readout + layer[keep]).astype(np.int64)
    flat = np.repeat(np.arange(n, dtype=np.int64) * (out.size // max(n, 1)), n_spots)[keep] + voxel
    out += np.bincount(flat, weights=e_spot[keep], minlength=out.size).reshape(out.shape)


def simulate_showers(rng: np.random.Generator, params, energies) -> np.ndarray:
    """Simulate one electromagnetic shower per event.

    Args:
      rng: the only source of randomness.
      params: (N, 4) physical values in :data:`CALO_SPACE` order (sampling_fraction,
        moliere_scale, depth_scale, noise_mev). Not bounds-checked (``CALO_SPACE.check`` does
        that); must be finite, scales > 0, the others >= 0.
      energies: (N,) or (N, 1) incident energies, MeV, > 0.
    Returns:
      (N, 12, 12, 20) float32 visible energies in MeV, each 0 or >= :data:`THRESHOLD_MEV`.
    """
    p, energy = _check_inputs(params, energies)
    n = p.shape[0]
    sf, moliere_scale, depth_scale, noise = p.T
    t_max, alpha = _draw_profiles(rng, energy, depth_scale)
    k = energy / 1000.0 / SAMPLING_TERM**2  # Gamma shape: mean 1, variance c_s^2 / E_GeV
    e_visible = energy * sf * rng.standard_gamma(k) / k
    r_scale_mm = moliere_scale * GEOMETRY.moliere_radius_mm
    n_spots = _n_spots(energy)

    images = np.zeros((n,) + IMAGE_SHAPE, dtype=np.float32)
    ends = np.cumsum(n_spots)
    start = 0
    while start < n:  # chunks of whole showers, about _MAX_SPOTS_PER_CHUNK spots each
        done = ends[start - 1] if start > 0 else 0
        stop = max(int(np.searchsorted(ends, done + _MAX_SPOTS_PER_CHUNK, side="right")), start + 1)
        sl = slice(start, stop)
        _deposit_chunk(rng, images[sl], energy[sl], e_visible[sl], t_max[sl], alpha[sl],
                       r_scale_mm[sl], n_spots[sl])
        start = stop

    images += noise.astype(np.float32)[:, None, None, None] * rng.standard_normal(
        images.shape, dtype=np.float32)
    images[images < THRESHOLD_MEV] = 0.0
    return images


# -------------------------------------------------------------------------------------- features
_CELL_CENTRES_MM = (np.arange(GEOMETRY.n_cells) + 0.5 - 0.5 * GEOMETRY.n_cells) * GEOMETRY.cell_mm
_CELL_R_MM = np.hypot(_CELL_CENTRES_MM[:, None], _CELL_CENTRES_MM[None, :])  # (12, 12)
_LAYER_DEPTH_X0 = (np.arange(GEOMETRY.n_readout) + 0.5) * GEOMETRY.readout_layer_x0  # (20,)
_EPS = 1e-6


def shower_features(images, energies, xp=np):
    """(N, 12, 12, 20) images and (N,) or (N, 1) energies [MeV] -> (N, 3) features.

    Columns (:data:`FEATURE_NAMES`): ``response`` = visible sum / incident energy; ``depth_x0`` =
    energy-weighted mean depth of the readout-layer centres, X0; ``width_mm`` = energy-weighted RMS
    distance of the cell centres from the beam axis, mm. Only ``xp`` operations (numpy or
    jax.numpy), so it is differentiable with jax.numpy; an empty image gives about 0 for all three.
    """
    img = xp.asarray(images)
    e_inc = xp.reshape(xp.asarray(energies), (-1,))
    layers = xp.sum(img, axis=(1, 2))  # (N, 20)
    cells = xp.sum(img, axis=3)  # (N, 12, 12)
    total = xp.sum(layers, axis=1)
    denom = total + _EPS
    depth = xp.sum(layers * xp.asarray(_LAYER_DEPTH_X0, dtype=img.dtype), axis=1) / denom
    r2 = xp.sum(cells * xp.asarray(_CELL_R_MM**2, dtype=img.dtype), axis=(1, 2)) / denom
    return xp.stack([total / e_inc, depth, xp.sqrt(r2 + _EPS)], axis=1)


_RADIAL_BIN = np.floor(_CELL_R_MM / GEOMETRY.cell_mm).astype(np.int64).ravel()  # (144,)
_RADIAL_ONEHOT = np.eye(_RADIAL_BIN.max() + 1)[_RADIAL_BIN]  # (144, n_bins)


def longitudinal_profile(images) -> np.ndarray:
    """Visible energy per readout layer, MeV: (N, 12, 12, 20) -> (N, 20)."""
    return np.asarray(images, dtype=np.float64).sum(axis=(1, 2))


def radial_profile(images) -> np.ndarray:
    """Visible energy per radial bin, MeV: (N, 12, 12, 20) -> (N, 8).

    Bin ``b`` holds the cells whose centre lies at ``b * 5.1 <= r < (b + 1) * 5.1`` mm from the
    beam axis (one cell pitch per bin), summed over all readout layers.
    """
    cells = np.asarray(images, dtype=np.float64).sum(axis=3)
    return cells.reshape(cells.shape[0], -1) @ _RADIAL_ONEHOT


def sparsity(images) -> np.ndarray:
    """Fraction of nonzero voxels per image, (N,)."""
    img = np.asarray(images)
    return (img != 0).reshape(img.shape[0], -1).mean(axis=1)
