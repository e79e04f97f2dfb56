"""Run folders (issue 18 items 3 and 4): one run at a time, a refused run writes nothing, a fit
never overwrites a study's files, a finished run has a manifest, and a bad --out is reported
before any work."""

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import jax
import pytest

from magan.cli import main
from magan.studies.line.study import study_preset
from magan.studies.runs import start_run


def _files(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*")
            if p.is_file()}


def _finished_line_run(out: Path, seed: int = 0) -> None:
    """A (contentless) line study run into ``out``: its config, a result file, its manifest."""
    with start_run("line", "tiny", study_preset("tiny"), out, seed) as folder:
        assert not (folder / "manifest.json").exists()  # incomplete while it runs
        (folder / "summary.json").write_text(json.dumps({"seed": seed}))


def test_a_second_run_into_a_locked_folder_fails_at_once_naming_the_holder(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from magan.runtime.rundir import folder_lock\n"
         "with folder_lock(sys.argv[1]):\n    print('held', flush=True); time.sleep(60)",
         str(out)], stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    try:
        assert holder.stdout.readline().strip() == "held"
        t0 = time.perf_counter()
        for argv in (["study", "line", "--preset", "tiny", "--out", str(out), "--quiet"],
                     ["fit", "--emulator", str(tmp_path / "none"), "--data", "x.npy",
                      "--out", str(out)]):
            assert main(argv) == 1
            err = capsys.readouterr().err
            assert f"{out}: another magan run (pid {holder.pid}) is writing into this folder" in err
            assert "give this run another --out" in err
        assert time.perf_counter() - t0 < 20  # at once, not after a training
        assert sorted(os.listdir(out)) == [".magan.lock"]  # nothing written
    finally:
        holder.kill()
        holder.wait()
    _finished_line_run(out)  # the lock goes with its holder


def test_a_refused_rerun_writes_nothing_and_a_fit_never_overwrites_a_study(tmp_path, capsys):
    out = tmp_path / "run"
    _finished_line_run(out)
    before = _files(out)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["kind"] == "line study"
    env = manifest["environment"]  # what the numbers depend on besides code and seed
    assert env["versions"]["jax"] == jax.__version__ and env["backend"] == jax.default_backend()
    assert env["cpu"]["model"] and isinstance(env["cpu"]["vector_flags"], list)
    assert manifest["sha256"] == {n: hashlib.sha256(b).hexdigest() for n, b in before.items()
                                  if n not in ("manifest.json", ".magan.lock")}
    assert main(["study", "line", "--preset", "tiny", "--seed", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{out} holds a line study run with other settings (seed: 0 -> 1)" in err
    assert "give another --out" in err
    assert main(["fit", "--emulator", str(tmp_path / "none"), "--data", "x.npy", "--out",
                 str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{out} holds the results of a line study run; a fit run there would overwrite" in err
    assert f"--out (e.g. {out / 'fit'})" in err
    assert _files(out) == before  # config.json, summary.json, manifest.json untouched
    _finished_line_run(out)  # the same settings: a resume, allowed


def test_a_bad_out_is_reported_before_any_work(tmp_path, capsys):
    """Every command checks its --out first: here the emulator does not even exist, and the
    error is about the output path (with the fix), not the emulator."""
    import magan
    from magan.studies.line.simulator import LINE_SPACE, line_simulator

    a_file = tmp_path / "taken"
    a_file.write_text("user data\n")
    if os.geteuid() == 0:  # root writes through permissions; /sys takes no new folder
        unwritable = Path("/sys/magan-test-out")
    else:
        (tmp_path / "ro").mkdir(mode=0o500)
        unwritable = tmp_path / "ro" / "out"
    none = str(tmp_path / "none")
    for argv, status, says in [
            (["fit", "--emulator", none, "--data", "x.npy", "--out", str(a_file)], 2,
             f"{a_file}: is a file, not a folder; give --out a folder"),
            (["validate", "--emulator", none, "--out", str(a_file / "x")], 2,
             f"{a_file / 'x'}: a part of this path is a file"),
            (["fit", "--emulator", none, "--data", "x.npy", "--out", str(unwritable)], 1,
             f"{unwritable}: cannot create this folder"),
            (["sample", "--emulator", none, "--params", "m=0", "--out",
              str(unwritable / "x.npy")], 1, "give --out's folder a folder you may write in"),
            (["study", "line", "--preset", "tiny", "--out", str(a_file)], 2,
             f"{a_file}: is a file, not a folder")]:
        assert main(argv) == status, argv
        assert says in capsys.readouterr().err
    assert a_file.read_text() == "user data\n"
    t0 = time.perf_counter()
    with pytest.raises(NotADirectoryError, match="give workdir a folder"):
        magan.train_emulator(line_simulator(), LINE_SPACE, magan.PRETRAIN_PRESETS["tiny"],
                             workdir=a_file, progress=False)
    assert time.perf_counter() - t0 < 10  # before the networks are built or compiled


def test_host_cpu_reads_the_model_and_vector_flags(monkeypatch, tmp_path):
    """The CPU model and the vector instruction sets from /proc/cpuinfo (x86 'flags', Arm
    'Features'); other flags are left out, and without the file the platform's name stands."""
    from magan.runtime import rundir

    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: Test CPU 9000\n"
                    "flags\t\t: fpu sse4_2 avx avx2 fma avx512f ht\n\nprocessor\t: 1\n")
    real = rundir.Path
    monkeypatch.setattr(rundir, "Path", lambda p: info if p == "/proc/cpuinfo" else real(p))
    assert rundir.host_cpu() == {"model": "Test CPU 9000",
                                 "vector_flags": ["sse4_2", "avx", "avx2", "fma", "avx512f"]}
    monkeypatch.setattr(rundir, "Path", lambda p: tmp_path / "missing" if p == "/proc/cpuinfo"
                        else real(p))
    assert rundir.host_cpu()["model"] and rundir.host_cpu()["vector_flags"] == []
