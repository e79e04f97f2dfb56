import importlib.util
from pathlib import Path

import pytest

import magan
from magan.config import FitConfig, PretrainConfig, replace

ROOT = Path(__file__).resolve().parents[1]


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


@pytest.mark.parametrize("change, message", [
    ({"steps": 0}, "PretrainConfig.steps must be an integer >= 1, got 0"),
    ({"batch_size": 0}, "PretrainConfig.batch_size must be an integer >= 1, got 0"),
    ({"log_every": 0}, "PretrainConfig.log_every must be an integer >= 1, got 0"),
    ({"steps": 10.5}, "PretrainConfig.steps must be an integer >= 1, got 10.5"),
    ({"lr_emulator": -1e-3}, "PretrainConfig.lr_emulator must be a finite number > 0"),
    ({"lr_siamese": float("nan")}, "PretrainConfig.lr_siamese must be a finite number > 0"),
    ({"ema_decay": 2.0}, r"PretrainConfig.ema_decay must be in \[0, 1\), got 2.0"),
    ({"energy_weight": -1.0}, "PretrainConfig.energy_weight must be a finite number >= 0"),
    ({"lr_schedule": "linear"}, "PretrainConfig.lr_schedule must be 'constant' or 'cosine'"),
    ({"on_nonfinite": "skip"}, "PretrainConfig.on_nonfinite must be 'stop' or 'drop'"),
    ({"steps_per_call": 3}, "steps_per_call = 3 must divide log_every = 50"),
])
def test_pretrain_config_refuses_bad_values(change, message):
    with pytest.raises(ValueError, match=message):
        PretrainConfig(**change)


@pytest.mark.parametrize("change, message", [
    ({"replicas": 0}, "FitConfig.replicas must be an integer >= 1, got 0"),
    ({"lr_generator": 0.0}, "FitConfig.lr_generator must be a finite number > 0, got 0.0"),
    ({"beta2": 1.0}, r"FitConfig.beta2 must be in \[0, 1\), got 1.0"),
    ({"bootstrap": 1}, "FitConfig.bootstrap must be True or False, got 1"),
    ({"average_last": 1.0}, r"FitConfig.average_last must be in \[0, 1\)"),
])
def test_fit_config_refuses_bad_values(change, message):
    with pytest.raises(ValueError, match=message):
        FitConfig(**change)


def test_renamed_fields_read_from_old_files():
    """Configs written by magan 0.1 (``features``, ``noise_len``) load under the new names."""
    from magan.config import config_from_dict

    fit = config_from_dict(FitConfig, {"features": 32, "noise_len": 8})
    assert (fit.discriminator_embedding_width, fit.noise_dim) == (32, 8)
    pre = config_from_dict(PretrainConfig, {"features": 16})
    assert pre.siamese_embedding_width == 16
