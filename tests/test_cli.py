import json
import subprocess
import sys

import numpy as np
import pytest

from magan.cli import build_parser, main


@pytest.mark.parametrize("argv", [["--help"], ["study", "--help"], ["study", "line", "--help"],
                                  ["study", "calorimeter", "--help"],
                                  ["fit", "--help"], ["sample", "--help"], ["validate", "--help"]])
def test_every_command_has_help(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 0
    assert "usage: magan" in capsys.readouterr().out


def test_console_script_entry_point():
    out = subprocess.run([sys.executable, "-m", "magan.cli", "--version"], capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == __import__("magan").__version__


def test_parser_defaults():
    args = build_parser().parse_args(["study", "line"])
    assert args.preset == "default" and args.out == "runs/line" and args.seed == 0


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "line"
    code = main(["study", "line", "--preset", "tiny", "--truth", "m=0.1,c=10,x0=3,xsteps=8",
                 "--out", str(out), "--quiet"])
    assert code == 0
    return out


def test_study_line_writes_a_complete_run_folder(tiny_run):
    for name in ("config.json", "summary.json", "quality.json", "fit.json",
                 "pretrain_metrics.csv", "fit_metrics.csv", "losses.png", "samples.png", "fit.png",
                 "emulator/emulator.json", "emulator/weights.npz", "corner.png",
                 "checkpoints/fit/0-targets"):  # the study's fit resumes from its checkpoints
        assert (tiny_run / name).exists(), name
    s = json.loads((tiny_run / "summary.json").read_text())
    assert s["truth"] == {"m": 0.1, "c": 10.0, "x0": 3.0, "xsteps": 8.0}
    assert set(s["error_pct_of_range"]) == {"m", "c", "x0", "xsteps"}
    assert s["timings_s"]["total_s"] > 0
    # the study passes its simulator to the fit: the bias correction ran and is reported
    assert set(s["bias_correction"]) == {"m", "c", "x0", "xsteps"}
    for n in s["parameters"]:
        assert np.isclose(s["fit_mean"][n], s["raw_fit_mean"][n] - s["bias_correction"][n],
                          atol=1e-6 * max(1.0, abs(s["fit_mean"][n])))
    assert np.isfinite(s["closure"]["fit"]["mean_image_rel"])
    assert (tiny_run / "losses.png").read_bytes()[:4] == b"\x89PNG"
    # the fit's diagnostics, the closure check among them, are in the summary
    names = [d["name"] for d in s["diagnostics"]]
    assert names[-1] == "closure" and "replicas_agree" in names
    assert s["warnings"] == [d["name"] for d in s["diagnostics"] if d["status"] == "warn"]


def test_sample_and_fit_commands(tiny_run, tmp_path, capsys):
    emu = str(tiny_run / "emulator")
    out = tmp_path / "x.npy"
    assert main(["sample", "--emulator", emu, "--params", "m=0.1,c=10,x0=3,xsteps=8", "-n", "40",
                 "--out", str(out)]) == 0
    x = np.load(out)
    assert x.shape == (40, 28, 28, 1)
    assert main(["fit", "--emulator", emu, "--data", str(out), "--out", str(tmp_path / "fit"),
                 "--preset", "tiny", "--quiet"]) == 0
    res = json.loads((tmp_path / "fit" / "fit.json").read_text())
    assert set(res["mean"]) == {"m", "c", "x0", "xsteps"}
    # no simulator in `magan fit`: its uncertainty is called statistical, under the result
    printed = capsys.readouterr().out
    assert "WARNING [uncertainty_is_statistical]" in printed
    assert "uncertainty_is_statistical" in [d["name"] for d in res["diagnostics"]]
    assert (tmp_path / "fit" / "fit.png").exists()


def test_cli_errors_are_one_clear_line(tiny_run, tmp_path, capsys):
    emu = str(tiny_run / "emulator")
    assert main(["sample", "--emulator", emu, "--params", "m=3,c=10,x0=3,xsteps=8", "--out",
                 str(tmp_path / "a.npy")]) == 2
    assert "'m' = 3 " in capsys.readouterr().err
    assert main(["fit", "--emulator", str(tmp_path / "none"), "--data", "x.npy", "--out",
                 str(tmp_path)]) == 2
    assert "not an emulator folder" in capsys.readouterr().err
    assert main(["study", "line", "--preset", "huge", "--out", str(tmp_path / "r")]) == 2
    assert "Unknown preset 'huge'" in capsys.readouterr().err
    np.save(tmp_path / "bad.npy", np.zeros((3, 10, 10)))
    assert main(["fit", "--emulator", emu, "--data", str(tmp_path / "bad.npy"), "--out",
                 str(tmp_path / "f")]) == 2
    assert "expected shape (N, 28, 28, 1)" in capsys.readouterr().err


@pytest.mark.slow
def test_validate_writes_a_report_and_fails_an_untrained_emulator(tiny_run, tmp_path, capsys):
    out = tmp_path / "val"
    assert main(["validate", "--emulator", str(tiny_run / "emulator"), "--out", str(out),
                 "--preset", "tiny", "--calibration-truths", "2", "--quiet"]) == 0
    printed = capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    assert set(report["status"]) == {"distributions", "constraints", "learned_features",
                                     "classifier", "memorisation", "coverage", "calibration"}
    assert f"overall: {report['overall']}" in printed
    # the tiny preset's emulator (a few hundred steps) is easy to tell from the simulator
    assert report["checks"]["classifier"]["auc"] > 0.9
    assert report["status"]["classifier"] == "fail" and report["overall"] == "fail"
    assert report["checks"]["calibration"]["summary"]["n_truths"] == 2
    md = (out / "summary.md").read_text()
    assert "| classifier | **fail** |" in md and "## Fit calibration (2 truths)" in md
    for f in ("distributions.png", "variety.png", "calibration.png"):
        assert (out / f).read_bytes()[:4] == b"\x89PNG"
    assert main(["validate", "--emulator", str(tiny_run / "emulator"), "--out", str(out),
                 "--simulator", "calorimeter"]) == 2
    assert "do not match" in capsys.readouterr().err


def test_common_failures_are_one_line_with_the_fix(tiny_run, tmp_path, capsys, monkeypatch):
    """Simulator failures, folders named as files, an -n too large for memory and damaged
    emulator.json files end in one `magan: error:` line (exit 1 for a failed run, 2 for bad
    input); --debug shows the traceback instead."""
    import magan.cli as cli
    from magan.simulators.base import SimulatorError

    emu = str(tiny_run / "emulator")
    params = "m=0.1,c=10,x0=3,xsteps=8"
    (tmp_path / "dir.npy").mkdir()
    assert main(["sample", "--emulator", emu, "--params", params, "-n", "2",
                 "--out", str(tmp_path / "dir.npy")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("magan: error: ") and "dir.npy: is a folder" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert main(["fit", "--emulator", emu, "--data", str(tmp_path / "dir.npy"), "--out",
                 str(tmp_path / "f")]) == 2
    assert "dir.npy: Is a directory; name a file, not a folder" in capsys.readouterr().err
    assert main(["sample", "--emulator", emu, "--params", params, "-n", str(10**12),
                 "--out", str(tmp_path / "big.npy")]) == 2
    assert "1000000000000 images of shape (28, 28, 1) need about 6,272 TB" in (
        capsys.readouterr().err)
    broken = tmp_path / "broken"
    __import__("shutil").copytree(emu, broken)
    meta = json.loads((broken / "emulator.json").read_text())
    del meta["image_shape"]
    (broken / "emulator.json").write_text(json.dumps(meta))
    assert main(["sample", "--emulator", str(broken), "--params", params, "--out",
                 str(tmp_path / "b.npy")]) == 2
    assert "has no entry 'image_shape'; the file is damaged" in capsys.readouterr().err

    def fail(args):
        raise SimulatorError("my_sim: `my_sim` exited with status 3. Raise timeout_s.")

    monkeypatch.setitem(cli._COMMANDS, "fit", fail)
    argv = ["fit", "--emulator", emu, "--data", "x.npy", "--out", str(tmp_path / "f")]
    assert main(argv) == 1
    assert capsys.readouterr().err == "magan: error: my_sim: `my_sim` exited with status 3. " \
                                      "Raise timeout_s.\n"
    with pytest.raises(SimulatorError):
        main(argv + ["--debug"])
    monkeypatch.setitem(cli._COMMANDS, "fit", lambda args: {}["oops"])
    assert main(argv) == 1
    assert "KeyError: 'oops' (unexpected: rerun with --debug" in capsys.readouterr().err
