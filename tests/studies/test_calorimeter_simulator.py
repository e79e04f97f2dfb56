import math

import numpy as np
import pytest

from magan.studies.calorimeter.simulator import (
    CALO_SPACE,
    ENERGY_RANGE_MEV,
    FEATURE_NAMES,
    GEOMETRY,
    IMAGE_SHAPE,
    NOMINAL,
    THRESHOLD_MEV,
    gflash_mean_depth,
    longitudinal_profile,
    radial_profile,
    shower_features,
    simulate_showers,
    sparsity,
)

N = 200


def _params(n=N, **values):
    p = np.tile(NOMINAL, (n, 1))
    for name, v in values.items():
        p[:, CALO_SPACE.names.index(name)] = v
    return p


def _run(seed, energy_mev, n=N, **values):
    energies = np.full(n, float(energy_mev))
    return simulate_showers(np.random.default_rng(seed), _params(n, **values), energies), energies


def test_geometry_constants():
    g = GEOMETRY
    assert IMAGE_SHAPE == (12, 12, 20)
    assert g.x0_mm == pytest.approx(4.38, abs=0.01)
    assert g.layer_x0 == pytest.approx(0.548, abs=0.001)
    assert g.depth_x0 == pytest.approx(21.9, abs=0.05)
    assert g.readout_layer_x0 == pytest.approx(2 * g.layer_x0)
    assert g.z_eff == pytest.approx(72.15, abs=0.01)
    assert g.critical_energy_mev == pytest.approx(8.20, abs=0.01)
    assert g.moliere_radius_mm == pytest.approx(11.32, abs=0.01)
    assert g.fs == pytest.approx(1.8255, abs=1e-4)
    assert g.e_hat == pytest.approx(1 / 1.42)
    assert g.cell_mm <= g.moliere_radius_mm / 2
    assert CALO_SPACE.names == ("sampling_fraction", "moliere_scale", "depth_scale", "noise_mev")
    assert CALO_SPACE.check(NOMINAL).shape == (1, 4)
    assert ENERGY_RANGE_MEV == (10_000.0, 100_000.0)
    # T = ln y - 0.812 - 0.55/Fs - 0.69 (1 - e_hat), y = E / Ec
    t10 = math.log(1e4 / g.critical_energy_mev) - 0.812 - 0.55 / g.fs - 0.69 * (1 - g.e_hat)
    assert gflash_mean_depth(1e4) == pytest.approx(t10)
    assert np.all(np.diff(gflash_mean_depth(np.array([1e4, 3e4, 1e5]))) > 0)


def test_output_shape_dtype_and_threshold():
    rng = np.random.default_rng(1)
    energies = np.exp(rng.uniform(np.log(1e4), np.log(5e4), N))
    params = CALO_SPACE.sample(rng, N)
    img = simulate_showers(rng, params, energies[:, None])
    assert img.shape == (N,) + IMAGE_SHAPE and img.dtype == np.float32
    assert np.isfinite(img).all() and (img >= 0).all()
    assert (img[img != 0] >= THRESHOLD_MEV).all()
    assert 0.02 < sparsity(img).mean() < 0.5
    assert simulate_showers(rng, params[:0], energies[:0]).shape == (0,) + IMAGE_SHAPE


@pytest.mark.parametrize("energy_gev", [10, 50])
def test_longitudinal_peak_at_gflash_depth_and_moves_with_depth_scale(energy_gev):
    e = energy_gev * 1000.0
    centres = (np.arange(IMAGE_SHAPE[2]) + 0.5) * GEOMETRY.readout_layer_x0
    peaks, depths = [], []
    for seed, scale in enumerate([0.8, 1.0, 1.25]):
        img, energies = _run(seed, e, depth_scale=scale)
        peaks.append(centres[np.argmax(longitudinal_profile(img).mean(0))])
        depths.append(shower_features(img, energies)[:, 1].mean())
    assert abs(peaks[1] - gflash_mean_depth(e)) <= GEOMETRY.readout_layer_x0
    assert peaks[0] < peaks[1] < peaks[2]
    assert depths[0] < depths[1] < depths[2]


def test_visible_energy_linear_in_sampling_fraction():
    low, energies = _run(10, 2e4, sampling_fraction=0.015)
    high, _ = _run(11, 2e4, sampling_fraction=0.025)
    ratio = high.sum((1, 2, 3)).mean() / low.sum((1, 2, 3)).mean()
    assert ratio == pytest.approx(5 / 3, rel=0.03)
    nominal, _ = _run(12, 2e4)
    response = shower_features(nominal, energies)[:, 0].mean()
    assert 0.85 * NOMINAL[0] < response < 1.02 * NOMINAL[0]


def test_lateral_width_grows_with_moliere_scale():
    widths, core = [], []
    for seed, scale in enumerate([0.8, 1.0, 1.25]):
        img, energies = _run(20 + seed, 2e4, moliere_scale=scale)
        widths.append(shower_features(img, energies)[:, 2].mean())
        rad = radial_profile(img)
        core.append((rad[:, 0] / rad.sum(1)).mean())
    assert widths[0] < widths[1] < widths[2]
    assert core[0] > core[1] > core[2]


def test_noise_hits_follow_gaussian_tail():
    # 1 MeV showers leave at most 0.02 MeV in one voxel: the outer ring sees noise only
    ring = np.zeros(IMAGE_SHAPE[:2], bool)
    ring[[0, -1], :] = ring[:, [0, -1]] = True
    fractions, expected, n_voxels = [], [], 0
    for seed, noise in enumerate([0.015, 0.03, 0.045]):
        img, _ = _run(30 + seed, 1.0, noise_mev=noise)
        hits = img[:, ring, :] > 0
        fractions.append(hits.mean())
        expected.append(0.5 * math.erfc(THRESHOLD_MEV / (noise * math.sqrt(2))))
        n_voxels = hits.size
    assert fractions[0] < fractions[1] < fractions[2]
    for f, p in zip(fractions[1:], expected[1:]):
        assert abs(f - p) < 4 * math.sqrt(p * (1 - p) / n_voxels)


def test_threshold_zeroes_small_voxels():
    img, _ = _run(40, 1e4, n=50, noise_mev=0.045)
    nonzero = img[img > 0]
    assert nonzero.min() >= THRESHOLD_MEV
    assert nonzero.min() < THRESHOLD_MEV + 0.005  # noise fills the region just above it


def test_reproducible_and_different_seeds_differ():
    a, _ = _run(5, 3e4, n=20)
    b, _ = _run(5, 3e4, n=20)
    c, _ = _run(6, 3e4, n=20)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_bad_shapes_raise_naming_expected_shape():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"expected shape \(N, 4\)"):
        simulate_showers(rng, np.zeros((3, 3)), np.full(3, 1e4))
    with pytest.raises(ValueError, match=r"expected shape \(N, 4\)"):
        simulate_showers(rng, NOMINAL, np.full(1, 1e4))
    with pytest.raises(ValueError, match=r"expected shape \(3,\) or \(3, 1\)"):
        simulate_showers(rng, _params(3), np.full(4, 1e4))
    with pytest.raises(ValueError, match=r"expected shape \(3,\) or \(3, 1\)"):
        simulate_showers(rng, _params(3), np.full((3, 2), 1e4))
    with pytest.raises(ValueError, match="positive"):
        simulate_showers(rng, _params(3), np.zeros(3))


def test_features_of_a_single_voxel():
    img = np.zeros((1,) + IMAGE_SHAPE, np.float32)
    img[0, 5, 6, 0] = 2.0
    f = shower_features(img, np.array([100.0]))
    assert FEATURE_NAMES == ("response", "depth_x0", "width_mm")
    np.testing.assert_allclose(f[0], [0.02, 0.5 * GEOMETRY.readout_layer_x0,
                                      GEOMETRY.cell_mm / math.sqrt(2)], rtol=1e-5)
    np.testing.assert_allclose(longitudinal_profile(img)[0, 0], 2.0)
    np.testing.assert_allclose(radial_profile(img)[0], [2.0] + [0.0] * 7)


def test_features_numpy_and_jax_agree_and_are_differentiable():
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    img, energies = _run(50, 3e4, n=16)
    f_np = shower_features(img, energies)
    f_jax = np.asarray(shower_features(jnp.asarray(img), jnp.asarray(energies), xp=jnp))
    np.testing.assert_allclose(f_jax, f_np, rtol=1e-5)
    grad = jax.grad(lambda x: shower_features(x, energies, xp=jnp).sum())(jnp.asarray(img))
    assert grad.shape == img.shape and np.isfinite(np.asarray(grad)).all()
    zero = jnp.zeros((2,) + IMAGE_SHAPE)
    assert np.isfinite(np.asarray(jax.grad(lambda x: shower_features(x, energies[:2], xp=jnp)
                                           .sum())(zero))).all()
