"""A run's metric rows as they come, so that a long run can be watched while it runs.

Each row the training loop makes (every ``log_every`` steps: ``{"step": steps done, name:
value, ...}``, the loop's own host sync, no new one) goes, when the run asks for it, to

* ``WORKDIR/{stage}_metrics.csv``: appended and flushed at once, so another process can read
  the rows so far (``pandas.read_csv`` while it runs); at the end of the stage the whole history
  is written over it atomically, as before;
* the callbacks: ``callback(stage, row)`` with a copy of the row, in the order given, on every
  process of a multi-process run;
* TensorBoard (``tensorboard=DIR``, the optional ``tensorboardX`` package: ``pip install
  'magan[tensorboard]'``): one scalar per metric, tagged ``{stage}/{name}``, at step
  ``row["step"]``, flushed at every row; ``tensorboard --logdir DIR`` shows them live.

The stages are ``pretrain`` (:func:`magan.train_emulator`), ``fit`` and ``fit_reference`` (the
bias correction's reference pass of :func:`magan.fit`). Files are written by process 0 only.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from magan.runtime.io import metrics_csv_line, metrics_path

__all__ = ["Watch", "check_callbacks", "tensorboard_writer"]

Callback = Callable[[str, dict], None]


def check_callbacks(callbacks) -> tuple[Callback, ...]:
    """``callbacks`` as a tuple: None, one callable or an iterable of them, each called as
    ``callback(stage, row)``; a TypeError names anything else."""
    if callbacks is None:
        return ()
    if callable(callbacks):
        return (callbacks,)
    if not isinstance(callbacks, Iterable) or isinstance(callbacks, (str, bytes)):
        raise TypeError(f"callbacks must be a function f(stage, row) or a list of them, got "
                        f"{type(callbacks).__name__} {callbacks!r}.")
    out = tuple(callbacks)
    for c in out:
        if not callable(c):
            raise TypeError(f"callbacks holds {c!r} ({type(c).__name__}), which is not callable; "
                            "give functions f(stage, row).")
    return out


def _missing_tensorboardx(logdir) -> ImportError:
    return ImportError(f"tensorboard={str(logdir)!r} needs the tensorboardX package, which is not "
                       "installed: pip install 'magan[tensorboard]' (or pip install tensorboardX), "
                       "or leave tensorboard unset.")


def tensorboard_writer(logdir):
    """A ``tensorboardX.SummaryWriter`` into ``logdir``; an ImportError saying how to install
    the extra when tensorboardX is missing."""
    try:
        from tensorboardX import SummaryWriter
    except ImportError:
        raise _missing_tensorboardx(logdir) from None
    return SummaryWriter(logdir=str(logdir))


def _process_zero() -> bool:
    import jax

    return jax.process_index() == 0


@dataclass
class Watch:
    """Where one stage call (``train_emulator``, ``fit``) sends its metric rows (module
    docstring): the CSV in ``workdir``, ``callbacks``, TensorBoard in ``tensorboard``; each may
    be absent. Make it with :meth:`of` (checked before any work); :meth:`close` at the end."""

    workdir: Path | None = None
    callbacks: tuple[Callback, ...] = ()
    tensorboard: Path | None = None
    _writer: object = field(default=None, repr=False)

    @classmethod
    def of(cls, workdir=None, callbacks=None, tensorboard=None) -> Watch:
        """The checked settings; with ``tensorboard`` and no tensorboardX, an ImportError now,
        before the run starts."""
        if tensorboard is not None and importlib.util.find_spec("tensorboardX") is None:
            raise _missing_tensorboardx(tensorboard)
        return cls(None if workdir is None else Path(workdir), check_callbacks(callbacks),
                   None if tensorboard is None else Path(tensorboard))

    @contextmanager
    def stream(self, stage: str, history: list[dict] | None = None):
        """``with watch.stream("pretrain", history) as on_row:`` the loop's ``on_row(row)`` for
        one stage; the CSV starts with the rows of ``history`` (a resumed run's) and is closed
        after the block."""
        csv = _open_csv(self.workdir, stage, history or [])
        tb = self._tensorboard()

        def on_row(row: dict) -> None:
            if csv is not None:
                csv.write(row)
            if tb is not None:
                for name, value in row.items():
                    if name != "step":
                        tb.add_scalar(f"{stage}/{name}", float(value), int(row["step"]))
                tb.flush()
            for callback in self.callbacks:
                callback(stage, dict(row))

        try:
            yield on_row
        finally:
            if csv is not None:
                csv.close()

    def _tensorboard(self):
        """The run's writer, made at the first stage (process 0 only), or None."""
        if self._writer is None and self.tensorboard is not None and _process_zero():
            self._writer = tensorboard_writer(self.tensorboard)
        return self._writer

    def close(self) -> None:
        """Close the TensorBoard writer (its event file is complete)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class _LiveCsv:
    """``{stage}_metrics.csv`` written row by row: the header at the first row, each row flushed
    at once."""

    def __init__(self, path: Path, history: list[dict]):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.file = open(path, "w")  # noqa: SIM115 - kept open for the stage, closed by close()
        self.keys: list[str] | None = None
        for row in history:
            self.write(row)

    def write(self, row: dict) -> None:
        if self.keys is None:
            self.keys = list(row)
            self.file.write(",".join(self.keys) + "\n")
        self.file.write(metrics_csv_line(self.keys, row) + "\n")
        self.file.flush()

    def close(self) -> None:
        self.file.close()


def _open_csv(workdir: Path | None, stage: str, history: list[dict]) -> _LiveCsv | None:
    if workdir is None or not _process_zero():
        return None
    return _LiveCsv(metrics_path(workdir, stage), history)
