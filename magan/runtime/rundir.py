"""Run folders: checked before any work, owned by one run at a time, complete or visibly not.

* :func:`output_folder` / :func:`output_file` check an output path at the start of a command
  (the folder is created, is a folder, and takes a file: a probe is written and removed), so an
  unwritable ``--out`` is reported before a fit or a pre-training runs, not after.
* :func:`folder_lock` holds an exclusive ``fcntl.flock`` on ``OUT/.magan.lock`` for the run; a
  second run into the same folder fails at once naming the folder and the holder's pid. It is
  re-entrant within a process (a study holds it, and pre-training inside it takes it again).
* :func:`run_folder` adds what a whole run needs: the folder must not hold another kind of run
  (a ``magan fit`` into a study's folder would overwrite its ``fit.json`` and figures) nor a run
  with other settings (its ``config.json``), both refused before anything is written; the old
  ``manifest.json`` is removed at the start and a new one (every file of the finished run with
  its sha256) is written last, so a folder without one holds an incomplete run.

In a multi-process run only process 0 locks and writes (see :mod:`magan.runtime.io`).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import threading
import time
from pathlib import Path

from magan.runtime.io import _writer, atomic_write_json, file_sha256, to_jsonable

__all__ = ["LOCK", "MANIFEST", "folder_lock", "output_file", "output_folder", "run_environment",
           "run_folder", "write_manifest"]

LOCK = ".magan.lock"
MANIFEST = "manifest.json"
_HELD: dict[str, list] = {}  # resolved folder -> [lock file descriptor, depth]
_HELD_GUARD = threading.Lock()


def output_folder(path, flag: str = "--out") -> Path:
    """Create the folder ``path`` (and its parents) and check that files can be written in it;
    an OSError naming the path and the fix (``flag`` is the option that gave it) otherwise."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, f"is a file, not a folder; give {flag} a folder "
                                 "(a new or an existing one), not a file", str(path))
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):  # a file somewhere on the path
        raise NotADirectoryError(errno.ENOTDIR, f"a part of this path is a file; give {flag} "
                                 "a folder path", str(path)) from None
    except OSError as err:
        raise type(err)(err.errno, f"cannot create this folder ({err.strerror}); give {flag} a "
                        "folder you may write in, or change the permissions", str(path)) from None
    if _writer():
        probe = path / f".magan-probe-{os.getpid()}"
        try:
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as err:
            raise type(err)(err.errno, f"cannot write in this folder ({err.strerror}); give "
                            f"{flag} a folder you may write in, or change its permissions",
                            str(path)) from None
    return path


def output_file(path, flag: str = "--out") -> Path:
    """Check that the file ``path`` can be written: not a folder, and its folder (created when
    missing) takes files; an OSError naming the path and the fix otherwise."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, f"is a folder, not a file; give {flag} a file name "
                                "(in it or elsewhere)", str(path))
    output_folder(path.parent, f"{flag}'s folder")
    return path


@contextlib.contextmanager
def folder_lock(path, flag: str = "--out"):
    """Hold the exclusive lock of the run folder ``path`` (``path/.magan.lock``, which must
    exist as a folder) for the block; a BlockingIOError naming the folder, the holder's pid and
    the fix when another process holds it. Re-entrant within this process."""
    if not _writer():
        yield
        return
    key = str(Path(path).resolve())
    with _HELD_GUARD:
        if key in _HELD:
            _HELD[key][1] += 1
        else:
            _HELD[key] = [_acquire(Path(path), flag), 1]
    try:
        yield
    finally:
        with _HELD_GUARD:
            _HELD[key][1] -= 1
            if _HELD[key][1] == 0:
                fd = _HELD.pop(key)[0]
                os.ftruncate(fd, 0)
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)


def _acquire(path: Path, flag: str) -> int:
    """The open, locked (and pid-stamped) lock file of the folder ``path``."""
    fd = os.open(path / LOCK, os.O_RDWR | os.O_CREAT, 0o666)  # not inherited by children
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise BlockingIOError(errno.EWOULDBLOCK, f"another magan run (pid {holder}) is writing "
                              f"into this folder (it holds {LOCK} there); wait for it to finish, "
                              f"or give this run another {flag}", str(path)) from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def _owner(path: Path) -> tuple[str, dict | None] | None:
    """(kind of run, its config or None) of what the folder ``path`` holds, None if nothing: a
    study's (its config.json), the kind its manifest names, or a fit's (a fit.json alone)."""
    for name, read in (("config.json", lambda d: (f"{d.get('study')} study", d)),
                       (MANIFEST, lambda d: (d.get("kind"), None))):
        if (path / name).is_file():
            try:
                return read(json.loads((path / name).read_text()))
            except (ValueError, AttributeError):
                raise ValueError(f"{path / name} cannot be read: it is damaged, or not a magan "
                                 "run's record. Give another --out, or move that file away (a "
                                 "damaged record of this run: delete it, and the same command "
                                 "runs into the folder again).") from None
    return ("fit", None) if (path / "fit.json").is_file() else None


def _check_owner(path: Path, kind: str, config: dict | None, flag: str) -> None:
    """Refuse (ValueError) a run of ``kind`` into a folder that holds another kind of run, or
    the same kind with another ``config``: either would overwrite results it does not own."""
    owner = _owner(path)
    if owner is None:
        return
    if owner[0] != kind:
        raise ValueError(f"{path} holds the results of a {owner[0]} run; a {kind} run there would "
                         f"overwrite them. Give another {flag} (e.g. {path / kind.split()[0]}), "
                         "or move those results away.")
    old, new = owner[1], None if config is None else json.loads(json.dumps(to_jsonable(config)))
    if old is not None and new is not None and old != new:
        diff = [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in sorted(set(old) | set(new))
                if old.get(k) != new.get(k)]
        raise ValueError(f"{path} holds a {kind} run with other settings ({'; '.join(diff)[:600]})."
                         f" Rerun with its settings to resume or redo it, or give another {flag} "
                         "for a new run (or delete that folder).")


@contextlib.contextmanager
def run_folder(path, kind: str, *, config: dict | None = None, flag: str = "--out"):
    """Own the run folder ``path`` for a run of ``kind`` (e.g. ``"line study"``, ``"fit"``):
    checked and locked (:func:`output_folder`, :func:`folder_lock`), refused before anything is
    written when it holds another kind of run or one with another ``config`` (written to
    ``config.json`` when given), its manifest removed for the block and written after it."""
    path = output_folder(path, flag)
    with folder_lock(path, flag):
        _check_owner(path, kind, config, flag)
        if _writer():
            (path / MANIFEST).unlink(missing_ok=True)
        if config is not None:
            atomic_write_json(path / "config.json", config)
        yield path
        write_manifest(path, kind)


def _run_files(path: Path) -> list[Path]:
    """The files of the run in ``path``: not hidden ones (locks, temporaries), not checkpoints,
    not those of another run folder nested in it."""
    files = []
    for root, dirs, names in os.walk(path):
        here = Path(root)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not (
            here == path and d == "checkpoints") and not (here / d / LOCK).exists())
        files += [here / n for n in sorted(names) if not n.startswith(".") and n != MANIFEST]
    return files


_VECTOR_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_bf16", "amx_tile", "asimd",
                 "sve")


def host_cpu() -> dict:
    """The host CPU's model and the vector instruction sets XLA's CPU kernels may use (they set
    the float rounding of a compiled program: a machine with AVX-512 and one without give
    different last digits, which a GAN's training amplifies). Read from /proc/cpuinfo on Linux;
    elsewhere the model from :mod:`platform` and no flags."""
    import platform

    model, flags = platform.processor() or platform.machine(), set()
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        text = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and value.strip():
            model = value.strip()
        elif key.strip() in ("flags", "Features"):
            flags |= set(value.split())
    return {"model": model, "vector_flags": [f for f in _VECTOR_FLAGS if f in flags]}


def run_environment() -> dict:
    """What a result depends on besides its code and seed: the Python, platform and versions of
    magan and the numerical libraries, the host CPU (:func:`host_cpu`), and the JAX backend and
    device kind. The same seed gives the same numbers only on the same kind of machine with the
    same versions (XLA's kernels change between jax releases and CPU instruction sets), so two
    runs that differ can be told apart by this."""
    import platform
    from importlib import metadata

    import jax

    versions = {}
    for name in ("magan", "jax", "jaxlib", "flax", "optax", "numpy"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {"python": platform.python_version(), "platform": platform.platform(),
            "cpu": host_cpu(), "versions": versions, "backend": jax.default_backend(),
            "devices": sorted({d.device_kind for d in jax.devices()})}


def write_manifest(path, kind: str) -> Path:
    """``path/manifest.json``: the kind of run, when it finished, the environment it ran in
    (:func:`run_environment`) and every file of the run (relative path: sha256). Written last,
    so a run folder without one is incomplete."""
    path = Path(path)
    if not _writer():
        return path
    files = {f.relative_to(path).as_posix(): file_sha256(f) for f in _run_files(path)}
    return atomic_write_json(path / MANIFEST, {
        "kind": kind, "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "environment": run_environment(), "sha256": files})
