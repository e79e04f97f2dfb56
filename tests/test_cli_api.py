"""Fast checks of the command line's conventions and outputs (no training: `magan fit` runs on a
stand-in emulator and fit)."""

import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

import magan
from magan.cli import main
from magan.fitting.result import FitResult
from magan.studies.line.simulator import LINE_SPACE

ROOT = Path(__file__).resolve().parent.parent


def _fake_result() -> FitResult:
    rng = np.random.default_rng(1)
    samples = LINE_SPACE.sample(rng, 20)
    return FitResult(names=LINE_SPACE.names, samples=samples, mean=samples.mean(0),
                     std=samples.std(0), replica_means=samples[:2], start=LINE_SPACE.center(),
                     history=[{"step": 0, "loss_d": 1.0, "loss_g": 0.5}])


def test_fit_command_writes_the_samples_and_the_whole_result(tmp_path, monkeypatch, capsys):
    emu = types.SimpleNamespace(space=LINE_SPACE, image_shape=(28, 28, 1), cond_dim=0,
                                conditions=None)
    result = _fake_result()
    monkeypatch.setattr(magan, "load_emulator", lambda path: emu, raising=False)
    monkeypatch.setattr(magan, "fit", lambda *a, **k: result, raising=False)
    np.save(tmp_path / "t.npy", np.zeros((3, 28, 28, 1), np.float32))
    out = tmp_path / "fit"
    assert main(["fit", "--emulator", "e", "--data", str(tmp_path / "t.npy"), "--out", str(out),
                 "--preset", "tiny", "--quiet"]) == 0
    lines = (out / "samples.csv").read_text().splitlines()
    assert lines[0] == "m,c,x0,xsteps" and len(lines) == 21
    np.testing.assert_array_equal(np.loadtxt(out / "samples.csv", delimiter=",", skiprows=1),
                                  result.samples)  # every digit
    back = magan.load_fit(out)
    np.testing.assert_array_equal(back.samples, result.samples)
    assert back.names == result.names and back.history == result.history
    # no temporaries left (the run folder's lock file stays: a flock, free once the run ends)
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == [".magan.lock"]
    capsys.readouterr()


def _leaf_parsers(parser=None, path=()):
    """(argv prefix, parser) of every command that runs something (magan study NAME, fit, ...)."""
    import argparse

    from magan.cli import build_parser

    parser = parser or build_parser()
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield path, parser
    for action in subs:
        for name, child in action.choices.items():
            yield from _leaf_parsers(child, path + (name,))


def _all_parsers(parser=None):
    import argparse

    from magan.cli import build_parser

    parser = parser or build_parser()
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                yield from _all_parsers(child)


def test_preset_help_shows_the_choices_and_the_default():
    from magan.cli import VALIDATION_PRESET_NAMES
    from magan.studies.registry import entries, get_study
    from magan.validation.suite import VALIDATION_PRESETS

    assert VALIDATION_PRESET_NAMES == tuple(VALIDATION_PRESETS)
    for entry in entries():
        assert entry.presets == tuple(get_study(entry.name).presets)
    with_preset = {path: p for path, p in _leaf_parsers()
                   if any("--preset" in a.option_strings for a in p._actions)}
    assert set(with_preset) == {("study", "line"), ("study", "calorimeter"), ("fit",),
                                ("validate",)}
    for path, p in with_preset.items():
        text = " ".join(p.format_help().split())
        names = ("tiny, default" if path == ("validate",) else "tiny, default, gpu")
        assert f"(choices: {names}; default: default)" in text, path


@pytest.mark.parametrize("argv", [
    ["study", "line", "--preset", "huge"],
    ["fit", "--emulator", "e", "--data", "d.npy", "--out", "o", "--preset", "huge"],
    ["validate", "--emulator", "e", "--out", "o", "--preset", "huge"]])
def test_a_bad_preset_is_refused_before_jax_is_imported(argv):
    code = ("import sys; from magan.cli import main; "
            f"status = main({argv!r}); print(status, 'jax' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert out.stdout.split() == ["2", "False"], out.stderr
    assert "Unknown preset 'huge'" in out.stderr and "choose one of tiny, default" in out.stderr


def test_every_command_has_an_example_and_takes_quiet():
    for path, p in _leaf_parsers():
        assert "example" in (p.epilog or ""), path
        assert f"magan {' '.join(path)}" in p.epilog, path
        assert "--quiet" in [o for a in p._actions for o in a.option_strings], path
    for p in _all_parsers():
        assert p.epilog and "example" in p.epilog, p.prog


@pytest.mark.parametrize("argv", [[], ["study"]])
def test_bare_magan_and_bare_study_print_help_and_exit_2(argv, capsys):
    assert main(argv) == 2
    out = capsys.readouterr().out
    assert out.startswith("usage: magan") and "example" in out


@pytest.mark.parametrize("columns", ["50", "80", "120"])
def test_help_text_never_breaks_a_word(columns, monkeypatch):
    monkeypatch.setenv("COLUMNS", columns)
    for p in _all_parsers():
        text = p.format_help()
        flat = " ".join(text.split())
        sources = [p.description or ""] + [a.help or "" for a in p._actions]
        for source in sources:
            for token in source.split():
                if "%" not in token:
                    assert token in flat, (p.prog, token)
        assert "sampling_frac tion" not in flat and "--train- from" not in flat
