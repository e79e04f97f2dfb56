"""The calorimeter study end to end with the tiny preset, through the CLI, plus its fast-sim
output."""

import json

import h5py
import numpy as np
import pytest

from magan.cli import main
from magan.studies.calorimeter.simulator import IMAGE_SHAPE


@pytest.mark.slow
def test_tiny_calorimeter_study_writes_a_complete_run(tmp_path, capsys):
    out = tmp_path / "calo"
    assert main(["study", "calorimeter", "--preset", "tiny", "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "sampling_fraction" in printed and "separation power" in printed
    for name in ("summary.json", "physics.json", "config.json", "fit.json", "losses.png",
                 "samples.png", "response.png", "features.png", "profiles.png", "fit.png",
                 "emulator/emulator.json"):
        assert (out / name).exists(), name
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["fit_mean"]) == {"sampling_fraction", "moliere_scale", "depth_scale",
                                        "noise_mev"}
    physics = json.loads((out / "physics.json").read_text())
    assert set(physics["energies"]) == {"10", "30", "100"}
    row = physics["energies"]["30"]
    for k in ("response", "depth_x0", "width_mm", "sparsity", "cell_log10_mev"):
        assert 0.0 <= row["separation_power"][k] <= 1.0
        assert row["separation_floor"][k] < 0.2  # two simulated sets of one distribution
    # the simulator's response is about its sampling fraction (0.0215 at the default truth)
    assert 0.019 < row["response_sim"] < 0.0215

    # fast simulation from the study's emulator, in the CaloChallenge layout
    h5 = tmp_path / "fast.h5"
    assert main(["sample", "--emulator", str(out / "emulator"), "--params",
                 "sampling_fraction=0.02,moliere_scale=1,depth_scale=1,noise_mev=0.03",
                 "--conditions", "energy=20000", "-n", "50", "--out", str(h5)]) == 0
    with h5py.File(h5, "r") as f:
        assert f["showers"].shape == (50, int(np.prod(IMAGE_SHAPE)))
        np.testing.assert_array_equal(np.asarray(f["incident_energies"]), 20000.0)
        showers = np.asarray(f["showers"])
    assert showers.dtype == np.float32 and (showers >= 0).all()
    assert ((showers == 0) | (showers >= 0.075)).all()  # the readout threshold

    # a study refuses an emulator trained for another study, naming both spaces
    assert main(["study", "line", "--emulator", str(out / "emulator"), "--out",
                 str(tmp_path / "line"), "--quiet"]) == 2
    assert "not the line study's ParameterSpace(m in" in capsys.readouterr().err
