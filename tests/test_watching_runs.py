"""Runs that can be watched: the metric CSVs grow row by row while a stage runs, the callbacks
get every row as it comes, and TensorBoard event files hold the same numbers; none of it changes
a result."""

import struct
from pathlib import Path

import numpy as np
import pytest

import magan
from magan.config import replace
from magan.studies.line.simulator import LINE_SPACE, line_simulator


def read_events(folder) -> dict[str, list[tuple[int, float]]]:
    """``{tag: [(step, value), ...]}`` of the scalars in every TensorBoard event file in
    ``folder``, read back with tensorboardX's protocol buffers (TFRecord framing: length,
    its CRC, the record, its CRC)."""
    event_pb2 = pytest.importorskip("tensorboardX.proto.event_pb2")
    scalars: dict[str, list[tuple[int, float]]] = {}
    for path in sorted(Path(folder).glob("events.out.tfevents.*")):
        data, i = path.read_bytes(), 0
        while i < len(data):
            (n,) = struct.unpack("<Q", data[i:i + 8])
            event = event_pb2.Event.FromString(data[i + 12:i + 12 + n])
            i += 12 + n + 4
            for v in event.summary.value:
                scalars.setdefault(v.tag, []).append((event.step, v.simple_value))
    return scalars


def _csv_rows(path: Path) -> int:
    """Data rows (header excluded) in the CSV at ``path`` now."""
    return max(0, len(path.read_text().splitlines()) - 1)


def test_pretraining_metrics_readable_mid_run_in_callbacks_and_tensorboard(tmp_path):
    pytest.importorskip("tensorboardX")
    csv = tmp_path / "run" / "pretrain_metrics.csv"
    seen = []

    def look(stage, row):  # runs inside the loop, as another reader of the folder would
        seen.append((stage, row["step"], _csv_rows(csv), row["loss_siamese"]))

    cfg = replace(magan.PRETRAIN_PRESETS["tiny"], steps=20, checkpoint_every=0)
    emu = magan.train_emulator(line_simulator(), LINE_SPACE, cfg, seed=0, workdir=tmp_path / "run",
                               progress=False, callbacks=[look], tensorboard=tmp_path / "tb")
    history = emu.info["pretrain"]["history"]
    assert [(s, step, rows) for s, step, rows, _ in seen] == [("pretrain", 10, 1),
                                                              ("pretrain", 20, 2)]
    assert [v for *_, v in seen] == [row["loss_siamese"] for row in history]
    events = read_events(tmp_path / "tb")
    assert [step for step, _ in events["pretrain/loss_siamese"]] == [10, 20]
    np.testing.assert_allclose([v for _, v in events["pretrain/loss_siamese"]],
                               [row["loss_siamese"] for row in history], rtol=1e-6)
    assert _csv_rows(csv) == 2  # the final file, written over the live one


@pytest.mark.filterwarnings("ignore::magan.fitting.diagnostics.FitWarning")
def test_fit_metrics_as_they_come_and_the_same_result(tmp_path, tiny_line_emulator):
    pytest.importorskip("tensorboardX")
    cfg = replace(magan.FIT_PRESETS["tiny"], steps=20)
    x = line_simulator().simulate(np.random.default_rng(2), np.tile([0.2, 12.0, 4.0, 9.0], (32, 1)),
                                  LINE_SPACE)
    csv, seen = tmp_path / "fit" / "fit_metrics.csv", []
    watched = magan.fit(tiny_line_emulator, x, cfg, seed=1, workdir=tmp_path / "fit",
                        progress=False, tensorboard=tmp_path / "tb",
                        callbacks=lambda stage, row: seen.append((stage, row, _csv_rows(csv))))
    plain = magan.fit(tiny_line_emulator, x, cfg, seed=1, progress=False)
    np.testing.assert_array_equal(watched.samples, plain.samples)
    assert (tmp_path / "fit" / "corner.png").stat().st_size > 0  # fit(workdir) draws its corner
    assert [(stage, row["step"], rows) for stage, row, rows in seen] == [("fit", 10, 1),
                                                                         ("fit", 20, 2)]
    assert [row for _, row, _ in seen] == watched.history
    events = read_events(tmp_path / "tb")
    assert {"fit/loss_d", "fit/loss_g", "fit/mean_m"} <= set(events)
    np.testing.assert_allclose([v for _, v in events["fit/mean_c"]],
                               [row["mean_c"] for row in watched.history], rtol=1e-6)


def test_tensorboard_without_the_extra_is_refused_before_any_work(monkeypatch, tmp_path):
    import importlib.util

    from magan.cli import main

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "tensorboardX" else real(name, *a))
    with pytest.raises(ImportError, match=r"pip install 'magan\[tensorboard\]'"):
        magan.train_emulator(line_simulator(), LINE_SPACE, magan.PRETRAIN_PRESETS["tiny"],
                             progress=False, tensorboard=tmp_path / "tb")
    assert main(["study", "line", "--preset", "tiny", "--out", str(tmp_path / "run"),
                 "--tensorboard", str(tmp_path / "tb")]) == 2
    assert not (tmp_path / "run").exists() and not (tmp_path / "tb").exists()


def test_callbacks_that_are_not_functions_are_refused():
    from magan.runtime.metrics import check_callbacks

    assert check_callbacks(None) == ()
    assert len(check_callbacks(print)) == 1
    with pytest.raises(TypeError, match="not callable"):
        check_callbacks([print, "loss"])
    with pytest.raises(TypeError, match="callbacks must be a function"):
        check_callbacks("loss")
