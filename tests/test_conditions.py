"""Per-event conditions through the library: spaces, simulators, emulator, fit, files, CLI.

The toy: a Gaussian blob whose width is the fitted parameter and whose brightness is proportional
to a per-event condition ("energy", log-uniform over a decade), read through a PowerTransform that
divides by the energy, as the calorimeter study does.
"""

import h5py
import numpy as np
import pytest

import magan
from magan.cli import main
from magan.runtime.io import read_calochallenge, write_calochallenge

SPACE = magan.ParameterSpace({"width": (1.0, 3.0, "px")})
COND = magan.ConditionSpace({"energy": (10.0, 100.0, "GeV", "log")})
SHAPE = (8, 8, 2)


def blob(rng, params, conditions):
    yy, xx = np.mgrid[:8, :8] - 3.5
    w = params[:, 0][:, None, None]
    img = np.exp(-(yy ** 2 + xx ** 2)[None] / (2 * w ** 2)) * conditions[:, 0][:, None, None]
    img = img * (1 + 0.05 * rng.standard_normal(img.shape))
    return np.stack([img, 0.5 * img], axis=-1)


def simulator():
    return magan.FunctionSimulator(blob, SHAPE, conditions=COND)


TRANSFORM = magan.PowerTransform(scale=0.5, power=0.5, divide_by_condition=0)


@pytest.fixture(scope="module")
def emulator():
    return magan.train_emulator(simulator(), SPACE, magan.PRETRAIN_PRESETS["tiny"], seed=0,
                                transform=TRANSFORM)


def test_condition_space_log_scale():
    u = COND.to_unit([10.0, 100.0, np.sqrt(1000.0)])  # a vector (N,) of one condition
    np.testing.assert_allclose(u[:, 0], [0.0, 1.0, 0.5], atol=1e-12)
    np.testing.assert_allclose(COND.from_unit(u), [[10.0], [100.0], [np.sqrt(1000.0)]])
    draws = COND.sample(np.random.default_rng(0), 20000)[:, 0]
    assert abs(np.mean(draws < np.sqrt(1000.0)) - 0.5) < 0.02  # log-uniform: median at sqrt
    assert magan.ConditionSpace.from_dict(COND.to_dict()) == COND
    with pytest.raises(ValueError, match="log scale needs low > 0"):
        magan.ConditionSpace({"e": (0.0, 1.0, "", "log")})
    with pytest.raises(ValueError, match="condition 'energy' = 5"):
        COND.check([5.0])


def test_power_transform_round_trip_and_threshold():
    t = magan.PowerTransform(scale=2.0, power=0.5, divide_by_condition=0, threshold=0.1)
    rng = np.random.default_rng(0)
    x = rng.exponential(size=(4, 3, 3, 2)).astype(np.float32)
    c = np.array([[1.0], [10.0], [3.0], [7.0]])
    y = t.forward(x, c)
    assert y.dtype == np.float32
    back = t.inverse(y, c)
    np.testing.assert_allclose(back, np.where(x >= 0.1, x, 0.0), rtol=1e-5)
    assert ((back == 0) | (back >= 0.1)).all()
    with pytest.raises(ValueError, match="no conditions"):
        t.forward(x, None)


def test_total_channel_carries_the_image_sum():
    t = magan.PowerTransform(scale=0.5, divide_by_condition=0, threshold=0.1, total_channel=True)
    assert t.network_shape((3, 3, 2)) == (3, 3, 3)
    rng = np.random.default_rng(1)
    x = np.where(rng.random((4, 3, 3, 2)) < 0.5, 0.0, rng.exponential(size=(4, 3, 3, 2)) + 0.1)
    x = x.astype(np.float32)
    c = np.array([[1.0], [10.0], [3.0], [7.0]])
    y = t.forward(x, c)
    assert y.shape == (4, 3, 3, 3)
    np.testing.assert_allclose(t.inverse(y, c), x, rtol=1e-5)
    # the total comes from the extra channel: doubling it (in physical units) doubles the sum
    y2 = y.copy()
    y2[..., -1] *= np.sqrt(2.0)
    np.testing.assert_allclose(t.inverse(y2, c).sum(axis=(1, 2, 3)), 2 * x.sum(axis=(1, 2, 3)),
                               rtol=1e-5)
    assert magan.transforms.transform_from_dict(t.to_dict()) == t


def test_simulator_requires_its_conditions():
    sim, rng = simulator(), np.random.default_rng(0)
    assert sim.simulate(rng, [[2.0]] * 3, conditions=[20.0, 30.0, 40.0]).shape == (3,) + SHAPE
    with pytest.raises(ValueError, match="needs per-event conditions"):
        sim.simulate(rng, [[2.0]])
    with pytest.raises(ValueError, match="2 condition rows for 3"):
        sim.simulate(rng, [[2.0]] * 3, conditions=[20.0, 30.0])
    with pytest.raises(ValueError, match="takes no per-event conditions"):
        magan.FunctionSimulator(lambda r, p: np.zeros((len(p), 8, 8)), (8, 8)).simulate(
            rng, [[1.0]], conditions=[1.0])


def test_emulator_samples_physical_images_at_conditions(emulator):
    assert emulator.conditions == COND and emulator.cond_dim == 1
    lo = emulator.sample([2.0], np.full((64, 1), 10.0), seed=0)
    hi = emulator.sample([2.0], np.full((64, 1), 100.0), seed=0)
    assert lo.shape == (64,) + SHAPE and lo.dtype == np.float32 and (lo >= 0).all()
    # the transform divides by the energy, so even an untrained network scales with it
    ratio = hi.sum() / lo.sum()
    assert 5.0 < ratio < 20.0, ratio
    with pytest.raises(ValueError, match="conditioned on \\['energy'\\]"):
        emulator.sample([2.0])
    with pytest.raises(ValueError, match="3 parameter rows but 2 condition rows"):
        emulator.sample([[2.0]] * 3, [[20.0], [30.0]])


def test_save_load_keeps_conditions_and_transform(emulator, tmp_path):
    emulator.save(tmp_path / "emu")
    back = magan.load_emulator(tmp_path / "emu")
    assert back.conditions == COND and back.transform == TRANSFORM
    c = np.linspace(10.0, 100.0, 5)[:, None]
    np.testing.assert_array_equal(back.sample([1.5], c, seed=3), emulator.sample([1.5], c, seed=3))


def test_fit_uses_target_conditions(emulator):
    rng = np.random.default_rng(1)
    cond = COND.sample(rng, 64)
    targets = emulator.sample([1.5], cond, seed=5)
    res = magan.fit(emulator, targets, magan.FIT_PRESETS["tiny"], seed=0, target_conditions=cond,
                    simulator=simulator())
    assert np.isfinite(res.mean).all() and res.bias is not None
    with pytest.raises(ValueError, match="pass target_conditions"):
        magan.fit(emulator, targets, magan.FIT_PRESETS["tiny"])
    with pytest.raises(ValueError, match="63 rows for 64 target images"):
        magan.fit(emulator, targets, magan.FIT_PRESETS["tiny"], target_conditions=cond[:63])


def test_calochallenge_file_layout(tmp_path):
    rng = np.random.default_rng(0)
    showers = rng.random((5, 3, 4, 6)).astype(np.float32)  # (N, H, W, layers)
    path = write_calochallenge(tmp_path / "s.h5", showers, np.arange(1, 6) * 1000.0)
    with h5py.File(path, "r") as f:
        assert f["incident_energies"].shape == (5, 1) and f["showers"].shape == (5, 72)
        flat = np.asarray(f["showers"])
        np.testing.assert_array_equal(flat[:, :12].reshape(5, 3, 4), showers[..., 0])  # layer 0
    images, energies = read_calochallenge(path, (3, 4, 6))
    np.testing.assert_array_equal(images, showers)
    np.testing.assert_array_equal(energies[:, 0], np.arange(1, 6) * 1000.0)
    with pytest.raises(ValueError, match="needs \\(N, 60\\) voxels"):
        read_calochallenge(path, (3, 4, 5))
    with pytest.raises(ValueError, match="one energy per shower"):
        write_calochallenge(tmp_path / "t.h5", showers, [1.0, 2.0])


def test_cli_sample_h5_and_fit_from_it(emulator, tmp_path, capsys):
    emulator.save(tmp_path / "emu")
    out = tmp_path / "fast.h5"
    assert main(["sample", "--emulator", str(tmp_path / "emu"), "--params", "width=2",
                 "--conditions", "random", "-n", "40", "--out", str(out)]) == 0
    with h5py.File(out, "r") as f:
        e = np.asarray(f["incident_energies"])
        assert f["showers"].shape == (40, 128) and e.shape == (40, 1)
        assert (e >= 10.0).all() and (e <= 100.0).all() and e.std() > 0
    assert main(["sample", "--emulator", str(tmp_path / "emu"), "--params", "width=2",
                 "-n", "4", "--out", str(tmp_path / "x.npy")]) == 2
    assert "give --conditions" in capsys.readouterr().err
    assert main(["fit", "--emulator", str(tmp_path / "emu"), "--data", str(out), "--preset",
                 "tiny", "--out", str(tmp_path / "fit"), "--quiet"]) == 0
    assert (tmp_path / "fit" / "fit.json").exists()


def blob_features(images, conditions):
    """(N, 8, 8, 2) images, (N, 1) energies -> (N, 2): brightness over energy, r^2-weighted
    width."""
    import jax.numpy as jnp

    yy, xx = np.mgrid[:8, :8] - 3.5
    r2 = jnp.asarray(yy ** 2 + xx ** 2, jnp.float32)
    img = images[..., 0]
    tot = img.sum(axis=(1, 2))
    width = jnp.sqrt(jnp.sum(img * r2, axis=(1, 2)) / (tot + 1e-6))
    return jnp.stack([tot / conditions[:, 0], width], axis=1)


def test_fit_feature_matching(emulator):
    rng = np.random.default_rng(2)
    cond = COND.sample(rng, 64)
    targets = emulator.sample([2.0], cond, seed=6)
    cfg = magan.config.replace(magan.FIT_PRESETS["tiny"], feature_weight=1.0,
                               bias_reference="fit")
    res = magan.fit(emulator, targets, cfg, seed=0, target_conditions=cond,
                    features=blob_features, simulator=simulator())
    dist = [row["feature_distance"] for row in res.history + res.reference_history]
    assert len(res.reference_history) == len(res.history) > 0
    assert np.isfinite(dist).all() and np.isfinite(res.mean).all()
    # the reference set was simulated at the uncorrected fit, and its fit's error is subtracted
    np.testing.assert_allclose(res.reference_at, np.clip(res.raw_mean, SPACE.low, SPACE.high))
    np.testing.assert_allclose(res.mean, res.raw_mean - res.bias, rtol=1e-6)
    # without features the fit matches S's learned summaries, read at the targets' conditions
    learned = magan.fit(emulator, targets, magan.config.replace(cfg, steps=20), seed=0,
                        target_conditions=cond)
    assert np.isfinite([row["feature_distance"] for row in learned.history]).all()
    with pytest.raises(ValueError, match="bias_reference must be 'start', 'fit' or 'around'"):
        magan.config.replace(cfg, bias_reference="truth")


def test_feature_energy_distance_and_scales():
    from magan.fitting import feature_energy_distance, feature_scales

    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, 400, 3)).astype(np.float32)
    u = rng.uniform(size=(400, 1)).astype(np.float32)
    same = float(feature_energy_distance(a, b, u, 3.0))
    shifted = float(feature_energy_distance(a + 0.5, b, u, 3.0))
    assert abs(same) < 0.05 and shifted > 0.05 and shifted > 5 * abs(same)
    # a feature that follows the condition is scaled by its spread around the trend
    v = np.stack([10 * u[:, 0] + 0.1 * rng.standard_normal(400), rng.standard_normal(400)], 1)
    mu, sd = feature_scales(v, u)
    np.testing.assert_allclose(sd, [0.1, 1.0], rtol=0.15)
    with pytest.raises(ValueError, match="finite"):
        feature_scales(np.full((4, 2), np.nan), u[:4])
