"""Atomic file output and the reading of user data files.

Everything magan writes goes to a temporary name in the destination folder and is renamed into
place, so a crash never leaves a half-written file under the final name. In a multi-process run
only process 0 writes (the others' writes are no-ops), see :mod:`magan.runtime.parallel`.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

import numpy as np

__all__ = ["atomic_write_bytes", "atomic_write_json", "atomic_save_npy", "atomic_dir",
           "load_array", "to_jsonable", "write_calochallenge", "read_calochallenge",
           "is_calochallenge", "umask"]


ROOM_FIX = "free some space, or write elsewhere"  # what to do when a write finds no room
MAYBE_FULL = f"the disk may be full (or a file size limit reached): {ROOM_FIX}"


def to_jsonable(obj):
    """Convert numpy scalars/arrays (nested) into plain Python for JSON."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def umask() -> int:
    """The process's file-creation mask (read without changing it where Linux allows)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)  # elsewhere: set and restore at once
    os.umask(mask)
    return mask


def _tmp_in(path: Path):
    """A temporary file next to ``path``, renamed onto it when the block succeeds; it gets the
    permissions an ordinary ``open(path, "w")`` would (0666 less the umask), not mkstemp's 0600,
    so collaborators read results as they read any other file of the user."""
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "is a folder, not a file; name a file (in it or "
                                "elsewhere) to write to", str(path))
    return _replacing(path)


@contextlib.contextmanager
def _replacing(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~umask())
        os.replace(tmp, path)
    except OSError as err:
        if err.filename is not None:
            raise
        # a write that stopped short names no file (numpy: "N requested and M written";
        # a file size limit: "File too large"): say which, and what to do
        raise OSError(err.errno, f"could not be written ({err.strerror or err}); {MAYBE_FULL}. "
                      "Nothing was written under this name", str(path)) from err
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _writer() -> bool:
    import jax

    return jax.process_index() == 0


def atomic_write_bytes(path, data: bytes) -> Path:
    path = Path(path)
    if not _writer():
        return path
    with _tmp_in(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    return path


def atomic_write_json(path, obj) -> Path:
    return atomic_write_bytes(path, (json.dumps(to_jsonable(obj), indent=2) + "\n").encode())


def atomic_save_npy(path, array) -> Path:
    path = Path(path)
    if not _writer():
        return path
    with _tmp_in(path) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, np.asarray(array))
    return path


@contextlib.contextmanager
def atomic_dir(path):
    """Yield a fresh temporary folder; on success it replaces ``path`` as a whole (whatever is
    there: callers that must not destroy a user's files check first, as Emulator.save does)."""
    path = Path(path)
    if not _writer():  # written into, then discarded
        with tempfile.TemporaryDirectory() as scratch:
            yield Path(scratch)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~umask())  # as mkdir would make it, not mkdtemp's 0700
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            if old.exists():
                shutil.rmtree(old)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def _pick_key(path: Path, names: list[str], key: str, kind: str, placeholder: str) -> str:
    """The member of a multi-array file to read: ``key``, or the only one there is."""
    if not key:
        if len(names) != 1:
            raise _NoSuchMember(f"{path} holds {kind}s {names}; name one as {path}:{placeholder}.")
        return names[0]
    if key not in names:
        raise _NoSuchMember(f"{path} has no {kind} {key!r}; it holds {names}.")
    return key


def first_line(err: BaseException) -> str:
    """The first line of an exception's message (its type's name when it has none), to quote
    another library's error inside one of magan's."""
    return (str(err).strip().splitlines() or [type(err).__name__])[0]


def load_array(spec: str) -> np.ndarray:
    """Load images from ``FILE.npy``, ``FILE.npz[:KEY]`` or ``FILE.h5[:DATASET]``.

    Raises ``FileNotFoundError``/``ValueError`` naming the file, the key and what is available;
    a file that cannot be read (truncated, not of its suffix's format, an object array) is a
    ValueError naming the file and how to write one that can.
    """
    path_str, _, key = spec.partition(":") if not os.path.exists(spec) else (spec, "", "")
    path = Path(path_str)
    if not path.exists():
        raise FileNotFoundError(f"Data file {str(path)!r} does not exist.")
    suffix = path.suffix.lower()
    if suffix not in (".npy", ".npz", ".h5", ".hdf5"):
        raise ValueError(f"Cannot read {path}: use .npy, .npz or .h5/.hdf5.")
    try:
        return _read_array(path, suffix, key)
    except (_NoSuchMember, IsADirectoryError, PermissionError):
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        said = first_line(err)
        raise ValueError(f"{path} cannot be read as a {suffix} file ({said}): it is truncated, "
                         f"damaged or not a {suffix} file. Write images with numpy.save(path, "
                         "images) (a float array (N, H, W, C), not an object array), "
                         "numpy.savez or h5py.") from None


class _NoSuchMember(ValueError):
    """A multi-array file without the member asked for (the message names what it holds)."""


def _read_array(path: Path, suffix: str, key: str) -> np.ndarray:
    if suffix == ".npy":
        return np.load(path, allow_pickle=False)
    if suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:
            return z[_pick_key(path, list(z.keys()), key, "array", "KEY")]
    import h5py

    with h5py.File(path, "r") as f:
        datasets: list[str] = []
        f.visititems(lambda name, obj: datasets.append(name)
                     if isinstance(obj, h5py.Dataset) else None)  # nested paths too
        return np.asarray(f[_pick_key(path, datasets, key.strip("/"), "dataset", "DATASET")])


# ------------------------------------------------------------------------- CaloChallenge HDF5
def write_calochallenge(path, showers, incident_energies) -> Path:
    """Write showers in the CaloChallenge 2022 HDF5 layout, atomically.

    Datasets: ``incident_energies`` (N, 1) and ``showers`` (N, n_voxels), float32, MeV. Images
    (N, H, W, C) with layers as channels are flattened layer by layer (C, H, W), the CaloChallenge
    order of (layer, then the cells of a layer); (N, n_voxels) arrays are written as they are.
    """
    import h5py

    showers = np.asarray(showers, np.float32)
    energies = np.asarray(incident_energies, np.float32).reshape(-1, 1)
    if showers.shape[0] != energies.shape[0]:
        raise ValueError(f"{showers.shape[0]} showers but {energies.shape[0]} incident energies; "
                         "give one energy per shower.")
    if showers.ndim == 4:
        showers = showers.transpose(0, 3, 1, 2).reshape(showers.shape[0], -1)
    if showers.ndim != 2:
        raise ValueError(f"showers must be (N, H, W, C) or (N, n_voxels), got {showers.shape}.")
    path = Path(path)
    with _tmp_in(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.create_dataset("incident_energies", data=energies, compression="gzip")
            f.create_dataset("showers", data=showers, compression="gzip")
    return path


def is_calochallenge(path) -> bool:
    """Whether ``path`` is an HDF5 file with ``showers`` and ``incident_energies`` datasets."""
    path = Path(path)
    if path.suffix.lower() not in (".h5", ".hdf5") or not path.exists():
        return False
    import h5py

    with h5py.File(path, "r") as f:
        return "showers" in f and "incident_energies" in f


def read_calochallenge(path, image_shape) -> tuple[np.ndarray, np.ndarray]:
    """Read a CaloChallenge-layout HDF5 file into images (N, H, W, C) and energies (N, 1), MeV.

    ``image_shape`` (H, W, C) says how the flat voxels (layer by layer) fold back into images.
    """
    import h5py

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"Data file {str(path)!r} does not exist.")
    with h5py.File(path, "r") as f:
        missing = [k for k in ("showers", "incident_energies") if k not in f]
        if missing:
            raise ValueError(f"{path} is not in the CaloChallenge layout: no dataset(s) {missing} "
                             f"(it holds {list(f.keys())}).")
        showers = np.asarray(f["showers"], np.float32)
        energies = np.asarray(f["incident_energies"], np.float64).reshape(-1, 1)
    h, w, c = (int(s) for s in image_shape)
    if showers.ndim != 2 or showers.shape[1] != h * w * c:
        raise ValueError(f"{path}: showers have shape {showers.shape}; an emulator of {h}x{w}x{c} "
                         f"images needs (N, {h * w * c}) voxels.")
    if showers.shape[0] != energies.shape[0]:
        raise ValueError(f"{path}: {showers.shape[0]} showers but {energies.shape[0]} incident "
                         "energies.")
    return showers.reshape(-1, c, h, w).transpose(0, 2, 3, 1), energies


def metrics_path(workdir, stage: str) -> Path:
    """``workdir/{stage}_metrics.csv``: a stage's metric history."""
    return Path(workdir) / f"{stage}_metrics.csv"


def metrics_csv_line(keys, row: dict) -> str:
    """One row of a metric CSV: the values of ``keys`` to 6 significant digits (no newline)."""
    return ",".join(f"{row[k]:.6g}" for k in keys)


def write_metrics(workdir, stage: str, history: list[dict]) -> Path:
    """Write a metric history (list of {step, name: value}) as ``{stage}_metrics.csv``."""
    path = metrics_path(workdir, stage)
    if not history:
        return atomic_write_bytes(path, b"")
    keys = list(history[0].keys())
    lines = [",".join(keys)] + [metrics_csv_line(keys, row) for row in history]
    return atomic_write_bytes(path, ("\n".join(lines) + "\n").encode())


def file_sha256(path) -> str:
    """The SHA-256 hex digest of the file at ``path``, read in 1 MiB blocks."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
