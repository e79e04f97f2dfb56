import importlib.util
from pathlib import Path

import pytest

import magan
from magan.config import FitConfig, PretrainConfig, replace

ROOT = Path(__file__).resolve().parent.parent


def test_study_preset_files_are_in_sync():
    spec = importlib.util.spec_from_file_location("write_presets", ROOT / "scripts" /
                                                  "write_presets.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    for study, presets in mod.STUDIES.items():
        path = ROOT / "studies" / study / "presets.json"
        assert path.read_text() == mod.presets_json(presets), (
            f"{path} is out of date; run `python scripts/write_presets.py`.")


def test_presets_named_and_typed():
    for table, cls in ((magan.PRETRAIN_PRESETS, PretrainConfig), (magan.FIT_PRESETS, FitConfig)):
        assert set(table) == {"tiny", "default", "gpu"}
        assert all(isinstance(c, cls) for c in table.values())
    with pytest.raises(ValueError, match="Unknown preset 'huge'"):
        magan.preset("fit", "huge")


def test_replace_names_unknown_fields():
    with pytest.raises(ValueError, match=r"unknown field\(s\) \['stepz'\]"):
        replace(magan.FIT_PRESETS["tiny"], stepz=3)
    with pytest.raises(ValueError, match="init must be"):
        replace(magan.FIT_PRESETS["tiny"], init="random")
