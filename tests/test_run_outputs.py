"""What a run leaves behind is what its documentation says: ``magan fit``'s corner plot, the
metric files' names, the pre-training timings' fields."""

import re
import types
from pathlib import Path

import numpy as np

import magan
from magan import FitResult
from magan.cli import main
from magan.runtime.io import write_metrics
from magan.studies.line.simulator import LINE_SPACE

ROOT = Path(__file__).resolve().parent.parent


def test_magan_fit_writes_the_corner_plot(tmp_path, monkeypatch, capsys):
    rng = np.random.default_rng(1)
    samples = LINE_SPACE.sample(rng, 20)
    result = FitResult(names=LINE_SPACE.names, samples=samples, mean=samples.mean(0),
                       std=samples.std(0), replica_means=samples[:2], start=LINE_SPACE.center(),
                       units=tuple(q.unit for q in LINE_SPACE.parameters),
                       history=[{"step": 0, "loss_d": 1.0, "loss_g": 0.5, "mean_m": 0.1}])
    emu = types.SimpleNamespace(space=LINE_SPACE, image_shape=(28, 28, 1), cond_dim=0,
                                conditions=None)
    monkeypatch.setattr(magan, "load_emulator", lambda path: emu, raising=False)
    monkeypatch.setattr(magan, "fit", lambda *a, **k: result, raising=False)
    np.save(tmp_path / "t.npy", np.zeros((3, 28, 28, 1), np.float32))
    out = tmp_path / "fit"
    assert main(["fit", "--emulator", "e", "--data", str(tmp_path / "t.npy"), "--out", str(out),
                 "--quiet"]) == 0
    for name in ("corner.png", "losses.png", "fit.png"):
        data = (out / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000, name
    capsys.readouterr()


def test_every_metrics_file_named_in_the_code_is_the_csv_that_is_written(tmp_path):
    assert write_metrics(tmp_path, "pretrain", [{"step": 1, "loss": 0.5}]).name == \
        "pretrain_metrics.csv"
    named = {}
    sources = [*(ROOT / "magan").rglob("*.py"), ROOT / "README.md", *(ROOT / "docs").glob("*.md")]
    for path in sources:
        for m in re.finditer(r"\b(\w+)_metrics\.(\w+)", path.read_text()):
            named.setdefault(m.group(0), path.relative_to(ROOT))
    assert "pretrain_metrics.csv" in named and "fit_metrics.csv" in named
    wrong = {n: str(p) for n, p in named.items() if not n.endswith(".csv")}
    assert not wrong, f"metric files named with another suffix than write_metrics': {wrong}"
    assert "pretrain_metrics.csv" in magan.train_emulator.__doc__


def test_pretraining_reports_the_share_of_time_spent_waiting_for_the_simulator(
        tiny_line_emulator):
    """``device_wait_fraction`` is the wait over the run's time, a fraction; the former
    ``simulator_overlap`` (1 - wait / simulating time) read -2.1 on the tiny line study, where the
    thread hand-offs outlast the simulations."""
    timing = tiny_line_emulator.info["pretrain"]["timing"]
    assert "simulator_overlap" not in timing
    assert 0.0 <= timing["device_wait_fraction"] <= 1.0
    assert timing["device_wait_fraction"] == timing["device_waited_for_simulator_s"] / \
        timing["total_s"]
