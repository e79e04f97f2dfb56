"""The study registry: the CLI, the validation kits and the preset files find studies through it,
a new study needs no edit of the CLI, and reading it imports no JAX."""

import subprocess
import sys
import types

import numpy as np
import pytest

from magan.cli import build_parser, main
from magan.space import ParameterSpace
from magan.studies import registry
from magan.studies.kits import STUDY_NAMES, StudyKit, kit_for, study_kit


def test_registry_lists_the_built_in_studies_in_cli_order():
    assert STUDY_NAMES == registry.STUDY_NAMES == ("line", "calorimeter")
    assert [e.name for e in registry.entries()] == ["line", "calorimeter"]
    with pytest.raises(ValueError, match=r"Unknown study 'x'; built-in studies are \['line', "):
        registry.entry("x")
    with pytest.raises(ValueError, match="Unknown study 'x'"):
        study_kit("x")


def test_reading_the_registry_and_building_the_parser_import_no_jax():
    code = ("import sys, magan.studies, magan.studies.kits; from magan.studies.registry import "
            "entries; entries(); from magan.cli import build_parser; build_parser(); "
            "print('jax' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_study_records_hold_their_pieces():
    from magan.studies import calorimeter, line

    for module in (line, calorimeter):
        study = module.STUDY
        assert study is registry.get_study(study.name) and study.entry is module.ENTRY
        assert study.run is module.run and study.presets is module.PRESETS
        assert study.default_truth is module.DEFAULT_TRUTH
        assert study.fit_config is module.PRESETS["default"].fit
        assert study.space.check(study.default_truth, what="truth").shape == (1, study.space.dim)
        kit = study_kit(study.name)
        assert isinstance(kit, StudyKit) and kit.name == study.name
        assert (kit.space, kit.conditions, kit.constraints) == (study.space, study.conditions,
                                                                study.constraints)
    assert line.STUDY.training_source is not None and calorimeter.STUDY.training_source is None
    assert study_kit("calorimeter").calibration_truths == 10
    assert study_kit("line").calibration_truths == 20


@pytest.mark.parametrize("name", ["line", "calorimeter"])
def test_study_runs_pretrain_with_the_records_pretrain_features(name, monkeypatch, tmp_path):
    """Scripts that pre-train a study's emulator read ``Study.pretrain_features``; the study's own
    run must pass the same features (one declaration, no hand-copied sets)."""
    import importlib

    study = registry.get_study(name)
    module = importlib.import_module(f"magan.studies.{name}.study")
    seen = {}

    class Stop(Exception):
        pass

    def spy(*args, **kwargs):
        seen.update(kwargs)
        raise Stop

    monkeypatch.setattr(module, "train_emulator", spy)
    with pytest.raises(Stop):
        study.run("tiny", out=str(tmp_path / name), progress=False)
    assert study.pretrain_features is not None
    assert seen["features"] is study.pretrain_features


def test_kit_for_matches_an_emulator_by_its_spaces():
    from magan.studies import calorimeter, line

    for module in (line, calorimeter):
        emu = types.SimpleNamespace(space=module.STUDY.space, conditions=module.STUDY.conditions)
        assert kit_for(emu).name == module.STUDY.name
    other = types.SimpleNamespace(space=ParameterSpace({"a": (0.0, 1.0)}), conditions=None)
    assert kit_for(other) is None


def _toy_study(monkeypatch):
    """A third study, 'toy', registered the way a built-in one is (package ENTRY, module STUDY)."""
    space = ParameterSpace({"a": (0.0, 1.0), "b": (-2.0, 2.0)})
    calls = []

    def run(preset, *, truth, emulator, out, seed, progress):
        calls.append({"preset": preset, "truth": truth, "out": out, "seed": seed})
        t = {"a": 0.5, "b": 0.0} if truth is None else dict(zip(space.names, truth.tolist()))
        return {"parameters": ["a", "b"], "truth": t, "fit_mean": t,
                "fit_std": {"a": 0.1, "b": 0.2}, "error_pct_of_range": {"a": 0.0, "b": 0.0},
                "closure": {"fit": {"mean_image_rel": 0.01}, "floor": {"mean_image_rel": 0.02}},
                "timings_s": {"total_s": 1.0}}

    entry = registry.StudyEntry(name="toy", description="a toy study", details="A toy study.",
                                module="toy_study_record", out="runs/toy",
                                preset_help="tiny only", truth_help="e.g. a=0.5,b=0")
    record = registry.Study(entry=entry, run=run, presets={"tiny": None}, space=space,
                            conditions=None, make_simulator=lambda: None,
                            default_truth=np.array([0.5, 0.0]), features=lambda x, c: x,
                            feature_names=("x",), constraints=(), fit_config=None)
    monkeypatch.setitem(sys.modules, "toy_study_package", types.SimpleNamespace(ENTRY=entry))
    monkeypatch.setitem(sys.modules, "toy_study_record", types.SimpleNamespace(STUDY=record))
    monkeypatch.setitem(registry._PACKAGES, "toy", "toy_study_package")
    return calls


def test_a_new_study_needs_no_edit_of_the_cli(monkeypatch, tmp_path, capsys):
    calls = _toy_study(monkeypatch)
    args = build_parser().parse_args(["study", "toy"])
    assert (args.out, args.preset) == ("runs/toy", "default")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["study", "toy", "--train-from", "bank:x.h5"])
    capsys.readouterr()
    assert main(["study", "toy", "--truth", "a=0.25,b=1", "--out", str(tmp_path), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert calls[0]["truth"].tolist() == [0.25, 1.0] and calls[0]["out"] == str(tmp_path)
    assert "closure mean-image distance 0.0100 (floor 0.0200)" in printed
    assert main(["study", "toy", "--truth", "a=3,b=0", "--out", str(tmp_path)]) == 2
    assert "'a' = 3" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["validate", "--help"])
    assert "'toy', or MODULE:FUNCTION" in " ".join(capsys.readouterr().out.split())
