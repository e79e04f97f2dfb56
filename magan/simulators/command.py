"""An external program as the simulator.

:class:`CommandSimulator` runs a user's program once per batch: magan writes the parameters (and
conditions) to a ``.npy`` file, runs the command with the placeholders filled in, and reads the
images the program wrote. The program can be anything (a Fortran code behind a shell script, a
container), as long as it reads and writes ``.npy`` files::

    sim = CommandSimulator("my_sim --in {params} --out {out} --seed {seed}", (28, 28, 1))

Placeholders: ``{params}`` (N, P) float64 physical parameters; ``{conditions}`` (N, K) (only with
``conditions=``); ``{out}`` where the program must write (N, H, W, C) images (or (N, H, W));
``{seed}`` an integer drawn from magan's generator (use it for reproducible runs). A run that
exceeds ``timeout_s`` (then the program and every process it started, its whole process group,
are killed), exits with a non-zero status, or writes no or malformed output raises
:class:`~magan.SimulatorError` with the command, the exit status and the end of its stderr.
"""

from __future__ import annotations

import os
import shlex
import signal
import string
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from magan.simulators.base import Simulator, SimulatorError, _check_conditions, _image_shape

__all__ = ["CommandSimulator"]


PLACEHOLDERS = ("params", "out", "seed", "conditions")


def _check_placeholders(args: list[str], has_conditions: bool) -> None:
    """Refuse a command whose ``{...}`` fields magan cannot fill (a ValueError naming the field,
    the placeholders there are, and how to write a literal brace), instead of a KeyError on the
    first batch."""
    allowed = PLACEHOLDERS if has_conditions else PLACEHOLDERS[:3]
    for arg in args:
        try:
            fields = [f for _, f, _, _ in string.Formatter().parse(arg) if f is not None]
        except ValueError as err:
            raise ValueError(f"The command argument {arg!r} has unbalanced braces ({err}); write "
                             "a literal { or } as {{ or }}.") from None
        for field in fields:
            if field not in allowed:
                extra = (" ({conditions} needs conditions= with a ConditionSpace)"
                         if field == "conditions" else "")
                raise ValueError(f"The command argument {arg!r} has an unknown placeholder "
                                 f"{{{field}}}{extra}; magan fills "
                                 f"{', '.join('{' + a + '}' for a in allowed)}. Write a literal "
                                 "{ or } as {{ or }}.")


def _run_program(argv: list[str], timeout: float) -> subprocess.CompletedProcess:
    """Run ``argv`` in its own session (process group), its output captured; past ``timeout``
    seconds kill the whole group (the program and whatever it started, which would otherwise
    keep running and hold its output pipes open) and raise ``subprocess.TimeoutExpired``."""
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          start_new_session=True) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except BaseException:  # the timeout, or an interrupt: leave nothing of it running
            _kill_group(proc)
            raise
        return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the process group that ``proc`` leads, then reap ``proc``."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
    try:  # a process that left the group could still hold the pipes: do not wait on it forever
        proc.communicate(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class CommandSimulator(Simulator):
    """Run an external command per batch (module docstring).

    Args:
      command: a string (split like a shell would, no shell is started) or a list of arguments,
        with the placeholders ``{params}``, ``{out}``, and optionally ``{seed}``, ``{conditions}``.
      image_shape: (H, W) or (H, W, C) of one image.
      timeout_s: seconds one batch may take; past it the program and all the processes it
        started (its process group) are killed and a SimulatorError says so.
      conditions: a :class:`~magan.ConditionSpace` when the program takes per-event conditions.
      name: for messages (default: the program's name).
    """

    traceable = False

    def __init__(self, command: str | Sequence[str], image_shape, *, timeout_s: float = 600.0,
                 conditions=None, name: str | None = None):
        args = shlex.split(command) if isinstance(command, str) else [str(a) for a in command]
        if not args:
            raise ValueError("CommandSimulator needs a command.")
        text = " ".join(args)
        _check_placeholders(args, conditions is not None)
        for needed in ("{params}", "{out}"):
            if needed not in text:
                raise ValueError(f"The command {text!r} has no {needed} placeholder; magan passes "
                                 "the parameters file as {params} and reads the images from {out}.")
        self.conditions = _check_conditions(conditions)
        if self.conditions is not None and "{conditions}" not in text:
            raise ValueError(f"The command {text!r} has no {{conditions}} placeholder, but the "
                             "simulator has per-event conditions.")
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s}.")
        self.args, self.timeout_s = args, float(timeout_s)
        self.image_shape = _image_shape(image_shape)
        self.name = name or Path(args[0]).name
        self.calls = 0

    def simulate(self, rng: np.random.Generator, params, space=None, *, conditions=None,
                 allow_nonfinite: bool = False):
        params = self._points(params, space)
        call = self._call_args(params, conditions, params.shape[0])
        seed = int(rng.integers(0, 2**31 - 1))
        with tempfile.TemporaryDirectory(prefix="magan-cmd-") as tmp:
            tmp = Path(tmp)
            files = {"params": tmp / "params.npy", "out": tmp / "images.npy",
                     "conditions": tmp / "conditions.npy", "seed": str(seed)}
            np.save(files["params"], params)
            if len(call) > 1:
                np.save(files["conditions"], call[1])
            argv = [a.format(**{k: str(v) for k, v in files.items()}) for a in self.args]
            where = (f"for {len(params)} parameter vectors (first: "
                     f"{space.format(params[0]) if space is not None else params[0].tolist()})")
            try:
                proc = _run_program(argv, self.timeout_s)
            except subprocess.TimeoutExpired:
                raise SimulatorError(f"{self.name}: `{' '.join(argv)}` did not finish within "
                                     f"{self.timeout_s:g} s {where}; it was killed with the "
                                     "processes it started. Raise timeout_s or make batches "
                                     "smaller.") from None
            except OSError as err:
                raise SimulatorError(f"{self.name}: cannot start `{argv[0]}` ({err}).") from None
            self.calls += 1
            if proc.returncode != 0:
                tail = "\n".join(proc.stderr.strip().splitlines()[-8:])
                raise SimulatorError(f"{self.name}: `{' '.join(argv)}` exited with status "
                                     f"{proc.returncode} {where}. Its stderr ends with:\n{tail}")
            if not files["out"].exists():
                raise SimulatorError(f"{self.name}: `{' '.join(argv)}` exited normally but wrote "
                                     f"no {{out}} file ({files['out']}); it must np.save the "
                                     "images there.")
            try:
                images = np.load(files["out"], allow_pickle=False)
            except ValueError as err:
                raise SimulatorError(f"{self.name}: the {{out}} file is not a readable .npy array "
                                     f"({err}).") from None
        return self.check_output(images, params, space, allow_nonfinite)
