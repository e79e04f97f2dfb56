import json
import os
import stat

import numpy as np
import pytest

from magan.runtime.io import atomic_dir, atomic_write_json, load_array
from magan.studies.line.simulator import LINE_SPACE, line_features, line_simulator
from magan.validation.closure import closure_check, image_set_distance, mmd2_unbiased


def test_mmd_is_near_zero_for_one_distribution_and_positive_for_a_shift():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(300, 10)), rng.normal(size=(300, 10))
    c = rng.normal(size=(300, 10)) + 0.5
    same, shifted = mmd2_unbiased(a, b), mmd2_unbiased(a, c)
    assert abs(same) < 0.01
    assert shifted > 10 * abs(same) and shifted > 0.02


def test_closure_at_truth_is_at_the_floor_and_off_truth_is_not():
    sim = line_simulator()
    truth = np.array([0.2, 12.0, 4.0, 9.0])
    targets = sim.simulate(np.random.default_rng(1), np.tile(truth, (200, 1)))
    good = closure_check(sim, LINE_SPACE, truth, targets, seed=2, features=line_features)
    bad = closure_check(sim, LINE_SPACE, truth + [0.0, 1.0, 0.0, 0.0], targets, seed=2,
                        features=line_features)
    assert good["fit"]["mean_image_rel"] < 2 * good["floor"]["mean_image_rel"] + 0.02
    assert bad["fit"]["mean_image_rel"] > 5 * good["fit"]["mean_image_rel"]
    assert bad["fit"]["mmd2"] > good["fit"]["mmd2"]
    # the height feature (index 4) is pulled by the 1-pixel shift
    assert abs(bad["feature_pulls"]["f4"]) > 5 * abs(good["feature_pulls"]["f4"])


def test_closure_outside_the_box_is_simulated_at_its_edge_and_says_so():
    """A bias-corrected mean can land just outside the box; the closure then runs at the
    nearest point inside (the simulator refuses points outside) and flags it."""
    sim = line_simulator()
    edge = np.array([0.5, 12.0, 4.0, 9.0])  # m's upper bound
    targets = sim.simulate(np.random.default_rng(1), np.tile(edge, (20, 1)))
    outside = closure_check(sim, LINE_SPACE, edge + [0.01, 0, 0, 0], targets, seed=2)
    assert outside["clipped_into_box"] is True
    assert outside["fit"] == closure_check(sim, LINE_SPACE, edge, targets, seed=2)["fit"]
    assert "clipped_into_box" not in closure_check(sim, LINE_SPACE, edge, targets, seed=2)
    with pytest.raises(ValueError, match="closure params"):
        closure_check(sim, LINE_SPACE, [np.nan, 12.0, 4.0, 9.0], targets)


def test_image_set_distance_keys():
    x = np.ones((4, 3, 3, 1))
    d = image_set_distance(x, x)
    assert d["mean_image_rel"] == 0.0


def test_atomic_json_and_dir(tmp_path):
    p = atomic_write_json(tmp_path / "a" / "x.json", {"v": np.float32(1.5), "a": np.arange(2)})
    assert json.loads(p.read_text()) == {"v": 1.5, "a": [0, 1]}
    with atomic_dir(tmp_path / "d") as d:
        (d / "f").write_text("one")
    with pytest.raises(RuntimeError):
        with atomic_dir(tmp_path / "d") as d:
            (d / "f").write_text("half")
            raise RuntimeError("crash mid-write")
    assert (tmp_path / "d" / "f").read_text() == "one"  # the old folder is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "d"]  # no temp litter


def test_load_array_formats(tmp_path):
    import h5py

    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    np.save(tmp_path / "x.npy", x)
    np.savez(tmp_path / "x.npz", images=x)
    np.savez(tmp_path / "two.npz", a=x, b=x)
    with h5py.File(tmp_path / "x.h5", "w") as f:
        f["showers"] = x
        f["other"] = x
    np.testing.assert_array_equal(load_array(str(tmp_path / "x.npy")), x)
    np.testing.assert_array_equal(load_array(str(tmp_path / "x.npz")), x)
    np.testing.assert_array_equal(load_array(f"{tmp_path}/x.h5:showers"), x)
    with pytest.raises(ValueError, match="name one"):
        load_array(str(tmp_path / "two.npz"))
    with pytest.raises(ValueError, match="no dataset 'nope'"):
        load_array(f"{tmp_path}/x.h5:nope")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_array(str(tmp_path / "missing.npy"))


@pytest.mark.parametrize("mask", [0o022, 0o077])
def test_outputs_keep_the_umask(tmp_path, mask):
    """Files come out 0666 & ~umask and folders 0777 & ~umask, as `open`/`mkdir` make them, not
    mkstemp/mkdtemp's private 0600/0700 (collaborators on a shared machine read results)."""
    import matplotlib.pyplot as plt

    from magan.runtime.io import atomic_save_npy, write_calochallenge
    from magan.runtime.plots import save_figure

    old = os.umask(mask)
    try:
        files = [atomic_write_json(tmp_path / "a.json", {"v": 1}),
                 atomic_save_npy(tmp_path / "x.npy", np.zeros(3)),
                 write_calochallenge(tmp_path / "c.h5", np.zeros((2, 3)), np.ones(2)),
                 save_figure(plt.figure(), tmp_path / "f.png")]
        with atomic_dir(tmp_path / "d") as d:
            atomic_write_json(d / "inner.json", {})
    finally:
        os.umask(old)
    for f in files + [tmp_path / "d" / "inner.json"]:
        assert stat.S_IMODE(f.stat().st_mode) == 0o666 & ~mask, f
    assert stat.S_IMODE((tmp_path / "d").stat().st_mode) == 0o777 & ~mask


def test_atomic_write_to_a_folder_is_refused_naming_it(tmp_path):
    (tmp_path / "out.npy").mkdir()
    with pytest.raises(IsADirectoryError, match="is a folder, not a file") as err:
        atomic_write_json(tmp_path / "out.npy", {})
    assert err.value.filename == str(tmp_path / "out.npy")


def test_a_write_cut_short_names_the_file_and_keeps_the_old_one(tmp_path, monkeypatch):
    """A full disk makes numpy stop short with an OSError naming no file ("N requested and M
    written"); the error says which file and what to do, and the earlier file is kept."""
    from magan.runtime.io import atomic_save_npy

    old = tmp_path / "images.npy"
    old.write_bytes(b"an earlier output")

    def short_write(f, array):
        raise OSError("3920000 requested and 262112 written")

    monkeypatch.setattr(np, "save", short_write)
    with pytest.raises(OSError, match="could not be written .*disk may be full") as err:
        atomic_save_npy(old, np.zeros(3))
    assert err.value.filename == str(old)
    assert old.read_bytes() == b"an earlier output"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["images.npy"]  # no temporary left


def test_load_array_names_a_file_it_cannot_read(tmp_path):
    """A truncated .npy, a text file named .npy, an object array, a damaged .npz or .h5: one
    ValueError naming the file and how to write one that can be read."""
    x = np.zeros((4, 3, 3, 1), np.float32)
    np.save(tmp_path / "x.npy", x)
    raw = (tmp_path / "x.npy").read_bytes()
    (tmp_path / "cut.npy").write_bytes(raw[:len(raw) // 2])
    (tmp_path / "text.npy").write_text("1,2,3\n")
    np.save(tmp_path / "obj.npy", np.array([x, "a"], dtype=object), allow_pickle=True)
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    (tmp_path / "bad.h5").write_bytes(b"not hdf5")
    for name in ("cut.npy", "text.npy", "obj.npy", "bad.npz", "bad.h5"):
        with pytest.raises(ValueError, match=f"{tmp_path / name} cannot be read as a "
                                             r"\.(npy|npz|h5) file .*numpy\.save"):
            load_array(str(tmp_path / name))
    np.savez(tmp_path / "two.npz", a=x, b=x)
    with pytest.raises(ValueError, match=r"holds arrays \['a', 'b'\]; name one"):
        load_array(str(tmp_path / "two.npz"))
