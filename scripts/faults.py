"""Fault injection: bad inputs and faults through magan's command line and Python API.

    python scripts/faults.py [--quick] [--out runs/faults] [--redo]

Every row runs for real, in a subprocess (so that a hang is caught by a timeout and a crash does
not end the script): a bad simulator, bad data files, bad ``--params``/``--truth``/presets/config
values, corrupted files of every kind magan writes, SIGTERM/SIGKILL at random moments of
pre-training, fit and sampling (then the same command again), two runs into one ``--out``, an
unwritable ``--out``, a full disk (``RLIMIT_FSIZE``: writes past the limit fail with EFBIG, as
they would with ENOSPC), ``Emulator.save`` over a folder that is not an emulator. Each row
inspects the outcome and checks that the files that were there before (the user's, earlier
results) are intact. It prints a markdown table:

    fault | outcome (the error's first line, or what the rerun gave) | nothing lost | verdict

``verdict`` is ``ok`` when the fault was reported as one clear error (a ``magan: error:`` line
with no traceback, or an exception raised by magan's own checks) or the rerun resumed to the
identical result, and nothing was lost; ``FAIL`` otherwise (a raw traceback, an error from inside
a library, data lost, a wrong result without a word).

All rows share one tiny pre-trained line emulator, its target images and reference runs
(``OUT/shared``); each row works in ``OUT/rows/ROW`` (made afresh when the row runs) and stores
its result in ``OUT/results/ROW.json``: a rerun skips the rows already done (``--redo`` runs them
again) and nothing outside ``OUT`` is written. ``--quick`` runs a subset (a few minutes).
"""

from __future__ import annotations

import argparse
import ctypes
import hashlib
import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TRUTH = "m=0.2,c=12,x0=4,xsteps=9"
ROWS: list[Row] = []

# -------------------------------------------------------------------------------------- running

HARNESS = r"""
import json, sys, traceback, warnings
warnings.simplefilter("always")
_warned, _notes = [], []
def _show(message, category, *args, **kwargs):
    _warned.append(f"{category.__name__}: {str(message).splitlines()[0]}")
warnings.showwarning = _show
def note(text):
    _notes.append(str(text))
try:
    exec(compile(open(sys.argv[1]).read(), "<row>", "exec"), {"__name__": "__row__", "note": note})
    out = {"ok": True}
except BaseException as err:
    tb = traceback.extract_tb(err.__traceback__)
    out = {"ok": False, "type": type(err).__name__,
           "message": (str(err).strip().splitlines() or [""])[0], "where": tb[-1].filename}
out.update(warnings=_warned, notes=_notes)
print("ROW-RESULT " + json.dumps(out))
"""


@dataclass
class Ran:
    """A finished subprocess: exit status, stdout, stderr; ``timed_out`` when it was killed."""

    rc: int
    out: str
    err: str
    timed_out: bool = False

    @property
    def api(self) -> dict:
        """The harness's record of a Python snippet (``ok``, ``type``, ``message``, ...)."""
        for line in self.out.splitlines():
            if line.startswith("ROW-RESULT "):
                return json.loads(line[len("ROW-RESULT "):])
        return {"ok": False, "type": "NoResult", "message": _last_line(self.err), "where": ""}


def _last_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1].strip() if lines else ""


def drop_root_overrides() -> None:
    """In the child: give up root's right to write anywhere (CAP_DAC_OVERRIDE and friends), so
    that a read-only folder is read-only for it too."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2, 3):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER
        libc.prctl(24, cap, 0, 0, 0)  # PR_CAPBSET_DROP


def file_size_limit(limit: int) -> Callable[[], None]:
    """In the child: files may grow to ``limit`` bytes (a full disk, as far as writes go)."""
    def limit_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return limit_files


class Ctx:
    """What every row uses: the run folder, the shared emulator and data, how to run things."""

    def __init__(self, out: Path):
        self.out = out
        self.shared = out / "shared"
        self.env = dict(os.environ, MAGAN_QUIET="1", PYTHONUNBUFFERED="1",
                        MAGAN_COMPILATION_CACHE=str((out / ".xla-cache").absolute()),
                        PYTHONPATH=os.pathsep.join(
                            [str(ROOT)] + ([os.environ["PYTHONPATH"]]
                                           if os.environ.get("PYTHONPATH") else [])))
        self.dir = out

    # -- processes
    def cmd(self, *args) -> list[str]:
        return [sys.executable, "-m", "magan.cli", *map(str, args)]

    def run(self, argv, *, timeout=900, preexec=None, cwd=None) -> Ran:
        try:
            p = subprocess.run(argv, env=self.env, capture_output=True, text=True,
                               timeout=timeout, preexec_fn=preexec, cwd=cwd or self.dir)
        except subprocess.TimeoutExpired as err:
            return Ran(-9, _text(err.stdout), _text(err.stderr), True)
        return Ran(p.returncode, p.stdout, p.stderr)

    def cli(self, *args, **kw) -> Ran:
        return self.run(self.cmd(*args), **kw)

    def start(self, *args) -> subprocess.Popen:
        return subprocess.Popen(self.cmd(*args), env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, cwd=self.dir)

    def py(self, code: str, **kw) -> Ran:
        """Run the Python ``code`` (``note(text)`` records a remark) under the harness."""
        path = self.dir / f"row-{hashlib.sha1(code.encode()).hexdigest()[:8]}.py"
        path.write_text(code)
        harness = self.dir / "harness.py"
        harness.write_text(HARNESS)
        return self.run([sys.executable, str(harness), str(path)], **kw)

    # -- shared inputs, made once
    @property
    def emulator(self) -> Path:
        path = self.shared / "emulator"
        if not (path / "weights.npz").exists():
            self.shared.mkdir(parents=True, exist_ok=True)
            ran = self.py(f"""
import magan
from magan.studies.line.simulator import LINE_SPACE, line_simulator
emu = magan.train_emulator(line_simulator(), LINE_SPACE, magan.PRETRAIN_PRESETS["tiny"], seed=0,
                           progress=False)
emu.save({str(path)!r})
""")
            assert ran.api["ok"], ran.err[-3000:]
        return path

    @property
    def targets(self) -> Path:
        path = self.shared / "targets.npy"
        if not path.exists():
            self.shared.mkdir(parents=True, exist_ok=True)
            ran = self.py(f"""
import numpy as np
from magan.studies.line.simulator import LINE_SPACE, line_simulator
x = line_simulator().simulate(np.random.default_rng(2), np.tile([0.2, 12.0, 4.0, 9.0], (64, 1)),
                              LINE_SPACE)
np.save({str(path)!r}, x)
""")
            assert ran.api["ok"], ran.err[-3000:]
        return path

    def reference(self, name: str, args: list) -> Path:
        """The folder (or file) of an uninterrupted CLI run, made once: ``name`` under shared."""
        path = self.shared / name
        if not (path / "manifest.json").exists() and not (path.suffix and path.exists()):
            if path.is_dir():
                shutil.rmtree(path)
            ran = self.cli(*[str(path) if a == "{out}" else a for a in args])
            assert ran.rc == 0, ran.err[-3000:]
        return path

    def fit_args(self, out, data=None, *extra) -> list:
        return ["fit", "--emulator", self.emulator, "--data", data or self.targets, "--out", out,
                "--preset", "tiny", "--quiet", *extra]

    def sample_args(self, out, n=200, params=TRUTH, *extra) -> list:
        return ["sample", "--emulator", self.emulator, "--params", params, "-n", n,
                "--out", out, "--quiet", *extra]


def _text(b) -> str:
    return b.decode(errors="replace") if isinstance(b, bytes) else (b or "")


# ------------------------------------------------------------------------------ judging outcomes

def cli_outcome(ran: Ran) -> tuple[str, bool]:
    """(the outcome's first line, whether it is a clear error) of a CLI run that should fail."""
    if ran.timed_out:
        return "no answer: killed by the script's timeout", False
    if "Traceback (most recent call last)" in ran.err:
        return f"raw traceback: {_last_line(ran.err)}", False
    lines = [ln for ln in ran.err.splitlines() if ln.startswith("magan: error:")]
    if ran.rc == 0:
        return "exit 0 (no error)", False
    if not lines:
        return f"exit {ran.rc} without a message: {_last_line(ran.err)}", False
    return f"exit {ran.rc}: {lines[0]}", True


def api_outcome(ran: Ran) -> tuple[str, bool]:
    """(the outcome's first line, whether it is a clear error) of a snippet that should fail:
    an exception raised by magan's own code (not from inside numpy, JAX or orbax)."""
    if ran.timed_out:
        return "no answer: killed by the script's timeout", False
    res = ran.api
    if res["ok"]:
        return "no error" + (f"; warned {res['warnings'][0]}" if res["warnings"] else ""), False
    where = res.get("where", "")
    ours = str(ROOT / "magan") in where
    text = f"{res['type']}: {res['message']}"
    return (text if ours else f"{text} [raised in {where}]"), ours


def digest(paths) -> dict[str, str]:
    """SHA-256 of every file under ``paths`` (files or folders), by path."""
    out = {}
    for p in map(Path, paths):
        files = [p] if p.is_file() else sorted(f for f in p.rglob("*") if f.is_file())
        for f in files:
            out[str(f)] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


def same_files(before: dict[str, str]) -> bool:
    """Whether every file recorded by :func:`digest` is still there, unchanged."""
    return all(Path(f).is_file() and hashlib.sha256(Path(f).read_bytes()).hexdigest() == h
               for f, h in before.items())


def user_file(folder: Path, name="notes.txt") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text("the user's notes: must survive\n")
    return folder / name


def without_timing(d: dict) -> dict:
    """A summary or fit record without its timing fields (seconds differ from run to run)."""
    drop = {"timing", "timings_s", "pretrain_timing", "fit_timing", "finished"}
    if isinstance(d, dict):
        return {k: without_timing(v) for k, v in d.items() if k not in drop}
    if isinstance(d, list):
        return [without_timing(v) for v in d]
    return d


def read_json(path: Path):
    return json.loads(Path(path).read_text())


# -------------------------------------------------------------------------------------- the rows

@dataclass
class Row:
    slug: str
    category: str
    fault: str
    fn: Callable
    quick: bool


def row(category: str, fault: str, *, quick: bool = False):
    def register(fn):
        ROWS.append(Row(fn.__name__, category, fault, fn, quick))
        return fn

    return register


def expect_cli_error(ctx: Ctx, args, keep=(), **kw):
    """Run a CLI command that must fail; files ``keep`` (and a notes file in the row folder)
    must be unchanged."""
    before = digest([user_file(ctx.dir), *keep])
    outcome, clear = cli_outcome(ctx.cli(*args, **kw))
    return outcome, same_files(before), clear


def expect_api_error(ctx: Ctx, code: str, keep=(), **kw):
    before = digest([user_file(ctx.dir), *keep])
    outcome, clear = api_outcome(ctx.py(code, **kw))
    return outcome, same_files(before), clear


# --- bad simulator outputs (Python API: train_emulator on a FunctionSimulator)

def _bad_simulator(body: str, **sim_kw) -> str:
    kw = "".join(f", {k}={v!r}" for k, v in sim_kw.items())
    return f"""
import time
import numpy as np
import magan
from magan.config import replace
from magan.studies.line.simulator import LINE_SPACE, simulate_lines

def bad(rng, params):
{body}

cfg = replace(magan.PRETRAIN_PRESETS["tiny"], steps=4, log_every=2)
magan.train_emulator(magan.FunctionSimulator(bad, (28, 28, 1){kw}), LINE_SPACE, cfg,
                     workdir="run", progress=False)
"""


@row("simulator", "simulator returns images of the wrong shape (N, 27, 28, 1)", quick=True)
def sim_shape(ctx):
    return expect_api_error(ctx, _bad_simulator("    return simulate_lines(rng, params)[:, 1:]"))


@row("simulator", "simulator returns strings (dtype <U1)")
def sim_dtype(ctx):
    return expect_api_error(ctx, _bad_simulator(
        "    return np.full((len(params), 28, 28, 1), 'a')"))


@row("simulator", "simulator returns complex numbers")
def sim_complex(ctx):
    return expect_api_error(ctx, _bad_simulator(
        "    return simulate_lines(rng, params) * (1 + 1j)"))


@row("simulator", "simulator returns NaN images", quick=True)
def sim_nan(ctx):
    return expect_api_error(ctx, _bad_simulator(
        "    x = simulate_lines(rng, params)\n    x[0, 3, 3, 0] = np.nan\n    return x"))


@row("simulator", "simulator raises (crash) inside the run")
def sim_crash(ctx):
    """The simulator's own exception reaches the caller unchanged (its traceback points into
    the simulator), after the background simulation threads are stopped."""
    before = digest([user_file(ctx.dir)])
    ran = ctx.py(_bad_simulator("    raise RuntimeError('segfault-ish')"), timeout=300)
    res = ran.api
    own = res.get("type") == "RuntimeError" and res.get("message") == "segfault-ish"
    return ((f"the simulator's own {res['type']}: {res['message']} reaches the caller" if own
             else api_outcome(ran)[0]), same_files(before), own and not ran.timed_out)


@row("simulator", "simulator hangs (FunctionSimulator timeout=2 s)", quick=True)
def sim_hang(ctx):
    return expect_api_error(ctx, _bad_simulator("    time.sleep(1000)", timeout=2.0),
                            timeout=300)


@row("simulator", "simulator returns one image too few")
def sim_count(ctx):
    return expect_api_error(ctx, _bad_simulator("    return simulate_lines(rng, params)[1:]"))


@row("simulator", "simulator returns None")
def sim_none(ctx):
    return expect_api_error(ctx, _bad_simulator("    return None"))


@row("simulator", "external simulator program exits 1 (--train-from command:false)")
def sim_command_fails(ctx):
    return expect_cli_error(ctx, ["study", "line", "--preset", "tiny", "--out", "study",
                                  "--train-from", "command:false {params} {out} {seed}",
                                  "--quiet"])


@row("simulator", "external simulator program hangs (CommandSimulator timeout_s=3)")
def sim_command_hangs(ctx):
    (ctx.dir / "hang.sh").write_text("#!/bin/sh\nsleep 1000\n")
    return expect_api_error(ctx, """
import magan
from magan.config import replace
from magan.studies.line.simulator import LINE_SPACE
sim = magan.CommandSimulator("sh hang.sh {params} {out} {seed}", (28, 28, 1), timeout_s=3)
cfg = replace(magan.PRETRAIN_PRESETS["tiny"], steps=4, log_every=2)
magan.train_emulator(sim, LINE_SPACE, cfg, workdir="run", progress=False)
""", timeout=300)


# --- bad data files (magan fit --data)

def _data_row(ctx, make: str, name: str):
    """``magan fit`` on the data file ``name`` made by the snippet ``make`` (``x``: the shared
    targets, ``path``: the file)."""
    ran = ctx.py(f"import numpy as np\nx = np.load({str(ctx.targets)!r})\npath = {name!r}\n"
                 + make)
    assert ran.api["ok"], ran.out + ran.err
    return expect_cli_error(ctx, ctx.fit_args("fit", name), keep=[ctx.dir / name])


@row("data", "--data file missing", quick=True)
def data_missing(ctx):
    return expect_cli_error(ctx, ctx.fit_args("fit", "nothing.npy"))


@row("data", "--data is a folder")
def data_folder(ctx):
    (ctx.dir / "folder.npy").mkdir()
    return expect_cli_error(ctx, ctx.fit_args("fit", "folder.npy"))


@row("data", "--data of the wrong image shape (64, 20, 20, 1)", quick=True)
def data_shape(ctx):
    return _data_row(ctx, "np.save(path, x[:, :20, :20])", "small.npy")


@row("data", "--data with one NaN pixel")
def data_nan(ctx):
    return _data_row(ctx, "x[5, 3, 3, 0] = np.nan\nnp.save(path, x)", "nan.npy")


@row("data", "--data as uint8 scaled to 0..255")
def data_uint8(ctx):
    """Accepted as numbers, but images 255x brighter than the training ones must not be fitted
    without a word."""
    ran = ctx.py(f"import numpy as np\nx = np.load({str(ctx.targets)!r})\n"
                 "np.save('u8.npy', np.clip(x / x.max() * 255, 0, 255).astype(np.uint8))")
    assert ran.api["ok"]
    before = digest([user_file(ctx.dir), ctx.dir / "u8.npy"])
    res = ctx.cli(*ctx.fit_args("fit", "u8.npy"))
    if res.rc != 0:
        outcome, clear = cli_outcome(res)
        return outcome, same_files(before), clear
    warned = [ln.split("Warning: ", 1)[1] for ln in res.err.splitlines()
              if "Warning: " in ln and "training_range]" in ln]
    return (f"exit 0, warned: {warned[0]}" if warned else "fitted without a word on the scale",
            same_files(before), bool(warned))


@row("data", "--data empty (0, 28, 28, 1)")
def data_empty(ctx):
    return _data_row(ctx, "np.save(path, x[:0])", "empty.npy")


@row("data", "--data HDF5 with the images in a group (/run1/images)")
def data_h5_group(ctx):
    ran = ctx.py(f"import numpy as np, h5py\nx = np.load({str(ctx.targets)!r})\n"
                 "with h5py.File('t.h5', 'w') as f:\n    f.create_group('run1')['images'] = x")
    assert ran.api["ok"], ran.err
    ref = ctx.reference("fit", ctx.fit_args("{out}"))
    res = ctx.cli(*ctx.fit_args("fit", "t.h5"))
    if res.rc != 0:
        outcome, clear = cli_outcome(res)
        return outcome, True, clear
    same = without_timing(read_json(ctx.dir / "fit" / "fit.json")) == without_timing(
        read_json(ref / "fit.json"))
    return (f"read run1/images; fit {'identical to' if same else 'DIFFERS from'} the .npy "
            "fit", True, same)


@row("data", "--data HDF5 with two datasets and no :DATASET")
def data_h5_two(ctx):
    ran = ctx.py(f"import numpy as np, h5py\nx = np.load({str(ctx.targets)!r})\n"
                 "with h5py.File('t.h5', 'w') as f:\n    f['a'] = x\n    f['b'] = x")
    assert ran.api["ok"], ran.err
    return expect_cli_error(ctx, ctx.fit_args("fit", "t.h5"), keep=[ctx.dir / "t.h5"])


@row("data", "--data .npy truncated to half its bytes")
def data_truncated(ctx):
    raw = ctx.targets.read_bytes()
    (ctx.dir / "cut.npy").write_bytes(raw[:len(raw) // 2])
    return expect_cli_error(ctx, ctx.fit_args("fit", "cut.npy"), keep=[ctx.dir / "cut.npy"])


@row("data", "--data a text file named .npy")
def data_text(ctx):
    (ctx.dir / "text.npy").write_text("1,2,3\n4,5,6\n")
    return expect_cli_error(ctx, ctx.fit_args("fit", "text.npy"), keep=[ctx.dir / "text.npy"])


@row("data", "--data with an unsupported extension (.csv)")
def data_csv(ctx):
    (ctx.dir / "t.csv").write_text("1,2,3\n")
    return expect_cli_error(ctx, ctx.fit_args("fit", "t.csv"), keep=[ctx.dir / "t.csv"])


@row("data", "--data pickled object array (.npy with allow_pickle)")
def data_pickle(ctx):
    return _data_row(ctx, "np.save(path, np.array([x, 'a'], dtype=object), allow_pickle=True)",
                     "obj.npy")


# --- bad --params / --truth

@row("params", "--params m=abc (not a number)", quick=True)
def params_text(ctx):
    return expect_cli_error(ctx, ctx.sample_args("s.npy", 10, "m=abc,c=12,x0=4,xsteps=9"))


@row("params", "--params missing a parameter (m=0.2)")
def params_missing(ctx):
    return expect_cli_error(ctx, ctx.sample_args("s.npy", 10, "m=0.2"))


@row("params", "--params with an unknown name (q=1)")
def params_unknown(ctx):
    return expect_cli_error(ctx, ctx.sample_args("s.npy", 10, "q=1,m=0.2,c=12,x0=4,xsteps=9"))


@row("params", "--params outside the bounds (m=100)")
def params_bounds(ctx):
    return expect_cli_error(ctx, ctx.sample_args("s.npy", 10, "m=100,c=12,x0=4,xsteps=9"))


@row("params", "--params m=nan")
def params_nan(ctx):
    return expect_cli_error(ctx, ctx.sample_args("s.npy", 10, "m=nan,c=12,x0=4,xsteps=9"))


@row("params", "sample -n 0")
def params_n0(ctx):
    return expect_cli_error(ctx, ctx.sample_args("s.npy", 0))


@row("params", "--truth outside the bounds (study line --truth m=100,...)", quick=True)
def truth_bounds(ctx):
    return expect_cli_error(ctx, ["study", "line", "--preset", "tiny", "--out", "study",
                                  "--truth", "m=100,c=12,x0=4,xsteps=9", "--quiet"])


@row("params", "--truth garbage (study line --truth hello)")
def truth_garbage(ctx):
    return expect_cli_error(ctx, ["study", "line", "--preset", "tiny", "--out", "study",
                                  "--truth", "hello", "--quiet"])


# --- bad presets

@row("presets", "magan fit --preset huge", quick=True)
def preset_fit(ctx):
    return expect_cli_error(ctx, ["fit", "--emulator", ctx.emulator, "--data", ctx.targets,
                                  "--out", "fit", "--preset", "huge"])


@row("presets", "magan study line --preset huge")
def preset_study(ctx):
    return expect_cli_error(ctx, ["study", "line", "--preset", "huge", "--out", "study"])


@row("presets", "magan.preset('fit', 'huge') (API)")
def preset_api(ctx):
    return expect_api_error(ctx, "import magan\nmagan.preset('fit', 'huge')")


# --- bad config values (Python API)

@row("config", "FitConfig(steps=0)", quick=True)
def config_steps(ctx):
    return expect_api_error(ctx, "import magan\nmagan.FitConfig(steps=0)")


@row("config", "PretrainConfig(batch_size=0)")
def config_batch(ctx):
    return expect_api_error(ctx, "import magan\nmagan.PretrainConfig(batch_size=0)")


@row("config", "FitConfig(lr_generator=-1e-3)")
def config_lr(ctx):
    return expect_api_error(ctx, "import magan\nmagan.FitConfig(lr_generator=-1e-3)")


@row("config", "PretrainConfig(ema_decay=2)")
def config_ema(ctx):
    return expect_api_error(ctx, "import magan\nmagan.PretrainConfig(ema_decay=2)")


@row("config", "ParameterSpace with huge bounds (-1e300, 1e300), then pre-training")
def config_huge_bounds(ctx):
    return expect_api_error(ctx, _bad_simulator("    return simulate_lines(rng, params)")
                            .replace("LINE_SPACE, cfg", "magan.ParameterSpace("
                                     "{'m': (-1e300, 1e300), 'c': (4, 24), 'x0': (2, 26), "
                                     "'xsteps': (4, 14)}), cfg"))


@row("config", "ParameterSpace with low > high")
def config_low_high(ctx):
    return expect_api_error(ctx, "import magan\nmagan.ParameterSpace({'m': (1.0, -1.0)})")


# --- corrupted files magan wrote

def _emulator_copy(ctx) -> Path:
    dst = ctx.dir / "emulator"
    shutil.copytree(ctx.emulator, dst)
    return dst


def _corrupt_emulator(ctx, name: str, how: Callable[[bytes], bytes]):
    emu = _emulator_copy(ctx)
    f = emu / name
    f.write_bytes(how(f.read_bytes()))
    args = ["sample", "--emulator", emu, "--params", TRUTH, "-n", 10, "--out", "s.npy", "--quiet"]
    outcome, kept, clear = expect_cli_error(ctx, args, keep=[emu])
    return outcome, kept and not (ctx.dir / "s.npy").exists(), clear


def _flip(raw: bytes) -> bytes:
    b = bytearray(raw)
    b[len(b) // 2] ^= 0xFF
    return bytes(b)


@row("corrupted", "emulator.json truncated", quick=True)
def corrupt_emulator_json(ctx):
    return _corrupt_emulator(ctx, "emulator.json", lambda raw: raw[:len(raw) // 2])


@row("corrupted", "emulator.json valid JSON without its 'space'")
def corrupt_emulator_json_key(ctx):
    def drop_space(raw):
        meta = json.loads(raw)
        meta.pop("space")
        return json.dumps(meta).encode()

    return _corrupt_emulator(ctx, "emulator.json", drop_space)


@row("corrupted", "weights.npz with one byte flipped", quick=True)
def corrupt_weights_flip(ctx):
    return _corrupt_emulator(ctx, "weights.npz", _flip)


@row("corrupted", "weights.npz truncated")
def corrupt_weights_cut(ctx):
    return _corrupt_emulator(ctx, "weights.npz", lambda raw: raw[:len(raw) // 3])


@row("corrupted", "weights.npz deleted")
def corrupt_weights_gone(ctx):
    emu = _emulator_copy(ctx)
    (emu / "weights.npz").unlink()
    return expect_cli_error(ctx, ["sample", "--emulator", emu, "--params", TRUTH, "-n", 10,
                                  "--out", "s.npy"], keep=[emu])


@row("corrupted", "pre-training checkpoint damaged, then the run again")
def corrupt_pretrain_checkpoint(ctx):
    ran = ctx.py("""
import warnings
import numpy as np
import magan
from magan.config import replace
from magan.studies.line.simulator import LINE_SPACE, line_simulator
cfg = replace(magan.PRETRAIN_PRESETS["tiny"], steps=40, checkpoint_every=10)
def train(workdir, stop=None):
    def cb(stage, row):
        if row["step"] == stop:
            raise KeyboardInterrupt
    return magan.train_emulator(line_simulator(), LINE_SPACE, cfg, seed=3, workdir=workdir,
                                progress=False, callbacks=cb)
ref = train("ref")
try:
    train("run", stop=40)
except KeyboardInterrupt:
    pass
from pathlib import Path
latest = Path("run/checkpoints/pretrain/30")
f = max((p for p in latest.rglob("*") if p.is_file() and p.name != "magan_sha256.json"),
        key=lambda p: p.stat().st_size)
b = bytearray(f.read_bytes()); b[len(b) // 2] ^= 0xFF; f.write_bytes(bytes(b))
with warnings.catch_warnings(record=True) as w:
    warnings.simplefilter("always")
    again = train("run")
said = [str(x.message).split(";")[0] for x in w if "Damaged" in str(x.message)]
pts = np.tile(LINE_SPACE.center(), (8, 1))
same = np.array_equal(ref.sample(pts, seed=1), again.sample(pts, seed=1))
note(f"{said[0] if said else 'no warning'}; resumed from step "
     f"{again.info['pretrain']['timing']['resumed_from_step']}; emulator "
     + ("identical" if same else "DIFFERS"))
""")
    res = ran.api
    if not res["ok"]:
        return api_outcome(ran)[0], True, False
    text = res["notes"][0]
    return text, Path(ctx.dir / "run/checkpoints/pretrain-damaged/30").is_dir(), \
        "identical" in text and "Damaged" in text


@row("corrupted", "fit checkpoint damaged, then the fit again")
def corrupt_fit_checkpoint(ctx):
    ran = ctx.py(f"""
import warnings
import numpy as np
import magan
import magan.fitting.checkpoints
from magan.studies.line.simulator import line_simulator
magan.fitting.checkpoints.EVERY_S = 0.0  # a checkpoint at every metric row
emu = magan.load_emulator({str(ctx.emulator)!r})
x = np.load({str(ctx.targets)!r})
def fit(workdir, stop=None):
    def cb(stage, row):
        if row["step"] == stop:
            raise KeyboardInterrupt
    return magan.fit(emu, x, magan.FIT_PRESETS["tiny"], simulator=line_simulator(),
                     workdir=workdir, progress=False, callbacks=cb)
ref = fit("ref")
try:
    fit("run", stop=40)
except KeyboardInterrupt:
    pass
from pathlib import Path
latest = Path("run/checkpoints/fit/0-targets/30")
f = max((p for p in latest.rglob("*") if p.is_file() and p.name != "magan_sha256.json"),
        key=lambda p: p.stat().st_size)
b = bytearray(f.read_bytes()); b[len(b) // 2] ^= 0xFF; f.write_bytes(bytes(b))
with warnings.catch_warnings(record=True) as w:
    warnings.simplefilter("always")
    again = fit("run")
said = [str(m.message).split(";")[0] for m in w if "Damaged" in str(m.message)]
same = all(np.array_equal(getattr(ref, k), getattr(again, k))
           for k in ("samples", "mean", "std")) and ref.history == again.history
note((said[0] if said else "no warning") + "; fit " + ("identical" if same else "DIFFERS"))
""")
    res = ran.api
    if not res["ok"]:
        return api_outcome(ran)[0], True, False
    text = res["notes"][0]
    return (text, (ctx.dir / "run/checkpoints/fit/0-targets-damaged/30").is_dir(),
            "identical" in text and "Damaged" in text)


@row("corrupted", "fit.npz with one byte flipped, read by magan.load_fit")
def corrupt_fit_npz(ctx):
    ref = ctx.reference("fit", ctx.fit_args("{out}"))
    shutil.copy(ref / "fit.npz", ctx.dir / "fit.npz")
    f = ctx.dir / "fit.npz"
    f.write_bytes(_flip(f.read_bytes()))
    return expect_api_error(ctx, "import magan\nmagan.load_fit('fit.npz')", keep=[f])


@row("corrupted", "fit.npz truncated, read by magan.load_fit")
def corrupt_fit_npz_cut(ctx):
    ref = ctx.reference("fit", ctx.fit_args("{out}"))
    raw = (ref / "fit.npz").read_bytes()
    (ctx.dir / "fit.npz").write_bytes(raw[:len(raw) // 2])
    return expect_api_error(ctx, "import magan\nmagan.load_fit('fit.npz')",
                            keep=[ctx.dir / "fit.npz"])


@row("corrupted", "manifest.json of a finished fit corrupted, then magan fit into it again")
def corrupt_manifest(ctx):
    ref = ctx.reference("fit", ctx.fit_args("{out}"))
    shutil.copytree(ref, ctx.dir / "fit")
    (ctx.dir / "fit" / "manifest.json").write_text('{"kind": "fi')
    return expect_cli_error(ctx, ctx.fit_args("fit"), keep=[ctx.dir / "fit"])


@row("corrupted", "config.json of a study run corrupted, then the study into it again")
def corrupt_config(ctx):
    (ctx.dir / "study").mkdir()
    (ctx.dir / "study" / "config.json").write_text("{not json")
    return expect_cli_error(ctx, ["study", "line", "--preset", "tiny", "--out", "study",
                                  "--quiet"], keep=[ctx.dir / "study"])


@row("corrupted", "fit.json of a finished fit corrupted, then magan fit into it again")
def corrupt_fit_json(ctx):
    ref = ctx.reference("fit", ctx.fit_args("{out}"))
    shutil.copytree(ref, ctx.dir / "fit")
    (ctx.dir / "fit" / "fit.json").write_text('{"mean": ')
    res = ctx.cli(*ctx.fit_args("fit"))
    if res.rc != 0:
        outcome, clear = cli_outcome(res)
        return outcome, True, clear
    same = without_timing(read_json(ctx.dir / "fit/fit.json")) == without_timing(
        read_json(ref / "fit.json"))
    return ("rerun rewrote fit.json " + ("identical" if same else "DIFFERENT"), True, same)


@row("corrupted", "summary.json of a finished study corrupted, then the study again")
def corrupt_summary(ctx):
    ref = ctx.reference("study", ["study", "line", "--preset", "tiny", "--out", "{out}",
                                  "--quiet"])
    shutil.copytree(ref, ctx.dir / "study")
    (ctx.dir / "study" / "summary.json").write_text('{"study": "li')
    res = ctx.cli("study", "line", "--preset", "tiny", "--out", "study", "--quiet")
    if res.rc != 0:
        outcome, clear = cli_outcome(res)
        return outcome, True, clear
    same = without_timing(read_json(ctx.dir / "study/summary.json")) == without_timing(
        read_json(ref / "summary.json"))
    return ("rerun rewrote summary.json " + ("identical" if same else "DIFFERENT"), True, same)


# --- killed at a random moment, then the same command again

def _kill_and_rerun(ctx, args, ready: Callable[[], bool], sig, window: float, name: str,
                    probe: Callable[[], str] = lambda: ""):
    """Start ``args``, wait until ``ready()``, wait a random part of ``window`` seconds, send
    ``sig``; then run ``args`` again. Returns (when it was killed and ``probe()`` just after,
    rerun result)."""
    rng = random.Random(f"{name}-{sig}")
    proc = ctx.start(*args)
    t0 = time.time()
    while not ready() and proc.poll() is None and time.time() - t0 < 600:
        time.sleep(0.05)
    time.sleep(rng.uniform(0, window))
    when = f"{time.time() - t0:.1f} s in"
    if proc.poll() is not None:
        when = f"ended ({proc.returncode}) before the signal, {when}"
    else:
        proc.send_signal(sig)
        proc.communicate()
    return when + probe(), ctx.cli(*args)


def _steps_logged(csv: Path) -> int:
    try:
        return max(0, len(csv.read_text().strip().splitlines()) - 1)
    except OSError:
        return 0


def _study_killed_in_pretraining(ctx, sig):
    ref = ctx.reference("study", ["study", "line", "--preset", "tiny", "--out", "{out}",
                                  "--quiet"])
    keep = digest([user_file(ctx.dir / "study")])
    args = ["study", "line", "--preset", "tiny", "--out", "study", "--quiet"]
    csv = ctx.dir / "study" / "pretrain_metrics.csv"
    when, again = _kill_and_rerun(
        ctx, args, csv.exists, sig, 2.0, "pretrain",
        lambda: f" ({_steps_logged(csv)} of 10 pre-training metric rows written)")
    if again.rc != 0:
        return f"killed {when}; rerun: {cli_outcome(again)[0]}", same_files(keep), False
    same = without_timing(read_json(ctx.dir / "study/summary.json")) == without_timing(
        read_json(ref / "summary.json"))
    return (f"killed {when}; rerun: "
            + ("resumed identical" if same else "summary DIFFERS"), same_files(keep), same)


@row("signals", "SIGTERM at a random moment of pre-training (study line), rerun")
def sigterm_pretrain(ctx):
    return _study_killed_in_pretraining(ctx, signal.SIGTERM)


@row("signals", "SIGKILL at a random moment of pre-training (study line), rerun")
def sigkill_pretrain(ctx):
    return _study_killed_in_pretraining(ctx, signal.SIGKILL)


def _fit_killed(ctx, sig):
    ref = ctx.reference("fit", ctx.fit_args("{out}"))
    keep = digest([user_file(ctx.dir / "fit")])
    csv = ctx.dir / "fit" / "fit_metrics.csv"
    when, again = _kill_and_rerun(ctx, ctx.fit_args("fit"), csv.exists, sig, 1.5, "fit",
                                  lambda: f" ({_steps_logged(csv)} of 6 fit metric rows written)")
    if again.rc != 0:
        return f"killed {when}; rerun: {cli_outcome(again)[0]}", same_files(keep), False
    same = without_timing(read_json(ctx.dir / "fit/fit.json")) == without_timing(
        read_json(ref / "fit.json"))
    return (f"killed {when}; rerun: "
            + ("resumed identical" if same else "fit.json DIFFERS"), same_files(keep), same)


@row("signals", "SIGTERM at a random moment of magan fit, rerun", quick=True)
def sigterm_fit(ctx):
    return _fit_killed(ctx, signal.SIGTERM)


@row("signals", "SIGKILL at a random moment of magan fit, rerun")
def sigkill_fit(ctx):
    return _fit_killed(ctx, signal.SIGKILL)


def _sample_killed(ctx, sig):
    ref = ctx.reference("sample.npy", ctx.sample_args("{out}", 20000))
    old = ctx.dir / "s.npy"
    old.write_bytes(b"an earlier output at the same path")
    keep = digest([user_file(ctx.dir)])
    when, again = _kill_and_rerun(ctx, ctx.sample_args("s.npy", 20000), lambda: True, sig, 10.0,
                                  "sample")
    litter = [p.name for p in ctx.dir.iterdir() if p.name.startswith(".") or "tmp" in p.name]
    if again.rc != 0:
        return f"killed {when}; rerun: {cli_outcome(again)[0]}", same_files(keep), False
    same = old.read_bytes() == ref.read_bytes()
    return (f"killed {when}; rerun: " + ("identical file" if same else "file DIFFERS")
            + (f"; left behind {litter}" if litter else ""), same_files(keep),
            same and not litter)


@row("signals", "SIGTERM at a random moment of magan sample, rerun")
def sigterm_sample(ctx):
    return _sample_killed(ctx, signal.SIGTERM)


@row("signals", "SIGKILL at a random moment of magan sample, rerun")
def sigkill_sample(ctx):
    return _sample_killed(ctx, signal.SIGKILL)


# --- two runs, one folder

@row("concurrency", "two magan fit into the same --out at once", quick=True)
def two_fits(ctx):
    ref = ctx.reference("fit", ctx.fit_args("{out}"))
    keep = digest([user_file(ctx.dir / "fit")])
    a = ctx.start(*ctx.fit_args("fit"))
    time.sleep(0.5)
    b = ctx.start(*ctx.fit_args("fit"))
    (_, ea), (_, eb) = a.communicate(timeout=900), b.communicate(timeout=900)
    rcs = sorted([a.returncode, b.returncode])
    loser = next((e for p, e in ((a, ea), (b, eb)) if p.returncode != 0), "")
    same = ((ctx.dir / "fit/fit.json").exists() and without_timing(
        read_json(ctx.dir / "fit/fit.json")) == without_timing(read_json(ref / "fit.json")))
    outcome, clear = cli_outcome(Ran(1, "", loser)) if loser else ("both ran", False)
    return (f"{outcome}; the other run's fit " + ("identical" if same else "DIFFERS"),
            same_files(keep), rcs[0] == 0 and rcs[1] != 0 and clear and same)


@row("concurrency", "two magan sample into the same --out file at once")
def two_samples(ctx):
    ref = ctx.reference("sample.npy", ctx.sample_args("{out}", 20000))
    a = ctx.start(*ctx.sample_args("s.npy", 20000))
    b = ctx.start(*ctx.sample_args("s.npy", 20000))
    a.communicate(timeout=900)
    b.communicate(timeout=900)
    same = (ctx.dir / "s.npy").read_bytes() == ref.read_bytes()
    return (f"exit {a.returncode} and {b.returncode}; the file "
            + ("is one whole output" if same else "is MIXED/DIFFERENT"), True,
            same and a.returncode == b.returncode == 0)


# --- unwritable --out, a full disk

@row("unwritable", "--out inside a read-only folder (magan fit)", quick=True)
def out_read_only(ctx):
    ro = ctx.dir / "ro"
    ro.mkdir()
    user_file(ro)
    ro.chmod(0o555)
    try:
        return expect_cli_error(ctx, ctx.fit_args(ro / "fit"), keep=[ro],
                                preexec=drop_root_overrides)
    finally:
        ro.chmod(0o755)


@row("unwritable", "--out inside a read-only folder (magan sample)")
def sample_read_only(ctx):
    ro = ctx.dir / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        return expect_cli_error(ctx, ctx.sample_args(ro / "s.npy", 10),
                                preexec=drop_root_overrides)
    finally:
        ro.chmod(0o755)


@row("unwritable", "--out is an existing file (magan fit)")
def out_is_file(ctx):
    f = user_file(ctx.dir, "results.txt")
    return expect_cli_error(ctx, ctx.fit_args(f), keep=[f])


@row("unwritable", "--out is an existing folder (magan sample)")
def sample_out_folder(ctx):
    d = ctx.dir / "images.npy"
    user_file(d)
    return expect_cli_error(ctx, ctx.sample_args(d, 10), keep=[d])


@row("disk full", "disk full while magan sample writes (files limited to 1 MB)", quick=True)
def full_sample(ctx):
    (ctx.dir / "s.npy").write_bytes(b"an earlier output the user keeps")
    outcome, kept, clear = expect_cli_error(ctx, ctx.sample_args("s.npy", 5000),
                                            keep=[ctx.dir / "s.npy"],
                                            preexec=file_size_limit(1 << 20))
    litter = [p.name for p in ctx.dir.iterdir() if p.name not in
              ("s.npy", "notes.txt", "harness.py") and not p.name.startswith("row-")]
    return outcome + (f"; left behind {litter}" if litter else ""), kept and not litter, clear


@row("disk full", "disk full while magan fit writes its results (files limited to 40 kB)")
def full_fit(ctx):
    return expect_cli_error(ctx, ctx.fit_args("fit"), preexec=file_size_limit(40_000))


@row("disk full", "disk full during pre-training checkpoints (files limited to 100 kB)")
def full_pretrain(ctx):
    outcome, kept, clear = expect_api_error(ctx, """
import magan
from magan.config import replace
from magan.studies.line.simulator import LINE_SPACE, line_simulator
cfg = replace(magan.PRETRAIN_PRESETS["tiny"], steps=20, checkpoint_every=10)
magan.train_emulator(line_simulator(), LINE_SPACE, cfg, workdir="run", progress=False)
""", preexec=file_size_limit(100_000))
    return outcome, kept, clear


@row("disk full", "a full disk, then the fit again with space: resumes identical")
def full_fit_then_rerun(ctx):
    ref = ctx.reference("fit", ctx.fit_args("{out}"))
    first = ctx.cli(*ctx.fit_args("fit"), preexec=file_size_limit(40_000))
    again = ctx.cli(*ctx.fit_args("fit"))
    if again.rc != 0:
        return f"rerun: {cli_outcome(again)[0]}", True, False
    same = without_timing(read_json(ctx.dir / "fit/fit.json")) == without_timing(
        read_json(ref / "fit.json"))
    return (f"first run exit {first.rc}; rerun " + ("identical" if same else "DIFFERS"), True,
            first.rc != 0 and same)


# --- Emulator.save over what is not an emulator, --emulator that is not one

@row("save", "Emulator.save over a folder holding the user's files", quick=True)
def save_over_folder(ctx):
    user_file(ctx.dir / "thesis")
    return expect_api_error(ctx, f"""
import magan
magan.load_emulator({str(ctx.emulator)!r}).save("thesis")
""", keep=[ctx.dir / "thesis"])


@row("save", "Emulator.save over an existing file")
def save_over_file(ctx):
    f = user_file(ctx.dir, "emulator")
    return expect_api_error(ctx, f"""
import magan
magan.load_emulator({str(ctx.emulator)!r}).save("emulator")
""", keep=[f])


@row("save", "--emulator is a folder that is not an emulator")
def emulator_not_one(ctx):
    user_file(ctx.dir / "emu")
    return expect_cli_error(ctx, ["fit", "--emulator", "emu", "--data", ctx.targets, "--out",
                                  "fit", "--preset", "tiny"], keep=[ctx.dir / "emu"])


# ------------------------------------------------------------------------------------- the table

def run_rows(ctx: Ctx, rows: list[Row], redo: bool) -> None:
    results = ctx.out / "results"
    results.mkdir(parents=True, exist_ok=True)
    for r in rows:
        done = results / f"{r.slug}.json"
        if done.exists() and not redo:
            continue
        ctx.dir = ctx.out / "rows" / r.slug
        if ctx.dir.exists():
            for f in ctx.dir.rglob("*"):  # a read-only folder left by an earlier try
                if f.is_dir():
                    f.chmod(0o755)
            shutil.rmtree(ctx.dir)
        ctx.dir.mkdir(parents=True)
        t0 = time.time()
        try:
            outcome, kept, ok = r.fn(ctx)
        except Exception as err:  # noqa: BLE001 - a row that cannot run is reported, not fatal
            outcome, kept, ok = f"the row itself failed: {type(err).__name__}: {err}", False, False
        record = {"fault": r.fault, "category": r.category, "outcome": outcome,
                  "nothing_lost": bool(kept), "ok": bool(ok and kept),
                  "seconds": round(time.time() - t0, 1)}
        done.write_text(json.dumps(record, indent=1))
        print(f"[{record['seconds']:6.1f} s] {'ok  ' if record['ok'] else 'FAIL'} {r.slug}: "
              f"{outcome[:150]}", file=sys.stderr, flush=True)
        ctx.dir = ctx.out


def table(ctx: Ctx, rows: list[Row]) -> str:
    lines = ["| # | fault | outcome | nothing lost | verdict |", "|---|---|---|---|---|"]
    n_ok = n = 0
    for r in rows:
        path = ctx.out / "results" / f"{r.slug}.json"
        if not path.exists():
            continue
        rec = read_json(path)
        n, n_ok = n + 1, n_ok + rec["ok"]
        cell = lambda s: (s.replace(f"{ctx.out}/", "").replace("|", "\\|")  # noqa: E731
                          .replace("\n", " "))  # paths inside OUT are shown relative to it
        outcome = rec["outcome"] if len(rec["outcome"]) <= 300 else rec["outcome"][:297] + "..."
        lines.append(f"| {n} | {cell(rec['fault'])} | {cell(outcome)} | "
                     f"{'yes' if rec['nothing_lost'] else 'NO'} | "
                     f"{'ok' if rec['ok'] else 'FAIL'} |")
    lines.append("")
    lines.append(f"{n} faults, {n_ok} ok, {n - n_ok} FAIL.")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a subset (a few minutes)")
    parser.add_argument("--out", default="runs/faults", help="run folder (default runs/faults)")
    parser.add_argument("--redo", action="store_true", help="run the rows already done again")
    parser.add_argument("--only", default=None,
                        help="run only the rows whose name has one of these (comma-separated)")
    args = parser.parse_args()
    out = Path(args.out).absolute()
    out.mkdir(parents=True, exist_ok=True)
    ctx = Ctx(out)
    rows = [r for r in ROWS if (r.quick or not args.quick)
            and (args.only is None or any(o in r.slug for o in args.only.split(",")))]
    run_rows(ctx, rows, args.redo)
    text = table(ctx, rows)
    (out / "faults.md").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.exit(main())
