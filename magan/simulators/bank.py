"""A pre-simulated bank as a simulator: train the emulator from images produced offline.

When the simulator cannot be called from Python (Geant4 on a batch farm, a licensed code), run it
offline at a set of parameter points, several images per point, and hand the result to magan as a
:class:`BankSimulator`. Pre-training then draws its genuine pairs (two images at one point) from
the bank instead of simulating; a point needs at least two images to be used.

Files (``.h5``/``.hdf5`` or ``.npz``): ``params`` (M, P) physical units, ``images`` (M, H, W, C)
(or (M, H, W)), optional ``conditions`` (M, K). Rows with identical (params, conditions) form one
point. :meth:`BankSimulator.save` writes this layout; :meth:`BankSimulator.from_simulator` fills a
bank from any simulator (handy to test the workflow).

``simulate(rng, params)`` at points not in the bank (target sets, the fit's bias correction)
returns images of the nearest bank point (in the unit cube), which is only as good as the bank is
dense; :attr:`BankSimulator.last_lookup_distance` says how far that was.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from magan.runtime.io import atomic_write_bytes
from magan.simulators.base import Simulator, _image_shape

__all__ = ["BankSimulator"]


class BankSimulator(Simulator):
    """A fixed set of simulated images at known parameters (module docstring).

    Args:
      params: (M, P) physical parameters of every image.
      images: (M, H, W, C) or (M, H, W) images.
      space: the :class:`~magan.ParameterSpace`; every row must lie inside it.
      conditions: optional (M, K) per-event conditions with ``condition_space``.
      name: for messages and run records.
    """

    traceable = False

    def __init__(self, params, images, space, *, conditions=None, condition_space=None,
                 name: str = "bank"):
        images = np.asarray(images)
        if images.ndim == 3:
            images = images[..., None]
        if images.ndim != 4:
            raise ValueError(f"Bank images must have shape (M, H, W, C) or (M, H, W); got "
                             f"{images.shape}.")
        self.image_shape = _image_shape(images.shape[1:])
        self.name = name
        m = images.shape[0]
        self.params = space.check(params, what=f"{name} params")
        if self.params.shape[0] != m:
            raise ValueError(f"{name}: {self.params.shape[0]} parameter rows for {m} images; "
                             "give one row per image.")
        if (conditions is None) != (condition_space is None):
            raise ValueError(f"{name}: give both conditions and condition_space, or neither.")
        self.conditions = condition_space
        self.cond = None if conditions is None else condition_space.check(conditions,
                                                                          what=f"{name} conditions")
        if self.cond is not None and self.cond.shape[0] != m:
            raise ValueError(f"{name}: {self.cond.shape[0]} condition rows for {m} images.")
        self.images = self.check_output(images, self.params, space)
        self.space = space
        keys = self.params if self.cond is None else np.concatenate([self.params, self.cond], 1)
        _, group, counts = np.unique(keys, axis=0, return_inverse=True, return_counts=True)
        group = group.reshape(-1)
        order = np.argsort(group, kind="stable")
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        self._members = [order[s:s + c] for s, c in zip(starts, counts)]
        self._usable = np.flatnonzero(counts >= 2)
        if self._usable.size == 0:
            raise ValueError(f"{name}: no parameter point has two or more images; pre-training "
                             "needs pairs of images made at the same point (simulate each point "
                             "at least twice).")
        first = np.array([mem[0] for mem in self._members])
        unit_p = space.to_unit(self.params[first])
        unit_c = (np.zeros((len(first), 0)) if self.cond is None
                  else condition_space.to_unit(self.cond[first]))
        self._unit = np.concatenate([unit_p, unit_c], axis=1)  # (G, P + K)
        self.last_lookup_distance = 0.0

    @property
    def n_points(self) -> int:
        return len(self._members)

    def __len__(self) -> int:
        return self.images.shape[0]

    # ----------------------------------------------------------------- training pairs
    def training_batch(self, rng: np.random.Generator, space, n: int, transform):
        """``(unit, cond, x1, x2)`` like :func:`magan.pretraining.feeding.draw_training_batch`:
        ``n`` random usable points, two different images of each."""
        if space != self.space:
            raise ValueError(f"The bank was made over {self.space!r}, not {space!r}.")
        g = self._usable[rng.integers(0, self._usable.size, n)]
        i1, i2 = np.empty(n, np.int64), np.empty(n, np.int64)
        for j, grp in enumerate(g):
            a, b = rng.choice(self._members[grp], 2, replace=False)
            i1[j], i2[j] = a, b
        cond = None if self.cond is None else self.cond[i1]
        cond32 = np.zeros((n, 0), np.float32) if cond is None else cond.astype(np.float32)
        return (self._unit[g].astype(np.float32), cond32,
                np.asarray(transform.forward(self.images[i1], cond), np.float32),
                np.asarray(transform.forward(self.images[i2], cond), np.float32))

    # ------------------------------------------------------------ nearest-point simulate
    def simulate(self, rng: np.random.Generator, params, space=None, *, conditions=None,
                 allow_nonfinite: bool = False):
        """Images of the nearest bank point (unit-cube distance) to each requested row (the bank
        holds only finite images)."""
        params = self._points(params, space)
        args = self._call_args(params, conditions, params.shape[0])
        unit = self.space.to_unit(params)
        if self.cond is not None:
            unit = np.concatenate([unit, self.conditions.to_unit(args[1])], axis=1)
        d2 = ((unit[:, None, :] - self._unit[None, :, :]) ** 2).sum(-1)
        nearest = d2.argmin(1)
        self.last_lookup_distance = float(np.sqrt(d2[np.arange(len(unit)), nearest]).max())
        rows = np.array([rng.choice(self._members[g]) for g in nearest])
        return self.images[rows].copy()

    # ------------------------------------------------------------------------- files
    def save(self, path) -> Path:
        """Write the bank as HDF5 (``.h5``/``.hdf5``) or ``.npz``, atomically."""
        import io

        path = Path(path)
        arrays = {"params": self.params, "images": self.images}
        if self.cond is not None:
            arrays["conditions"] = self.cond
        if path.suffix.lower() == ".npz":
            buf = io.BytesIO()
            np.savez(buf, **arrays)
            return atomic_write_bytes(path, buf.getvalue())
        if path.suffix.lower() not in (".h5", ".hdf5"):
            raise ValueError(f"{path}: write a bank to .h5, .hdf5 or .npz.")
        import h5py

        buf = io.BytesIO()
        with h5py.File(buf, "w") as f:
            for k, v in arrays.items():
                f.create_dataset(k, data=v, compression="gzip", compression_opts=1)
            f.attrs["space"] = repr(self.space.to_dict())
        return atomic_write_bytes(path, buf.getvalue())

    @classmethod
    def load(cls, path, space, *, condition_space=None, name: str | None = None) -> BankSimulator:
        """Read a bank file (module docstring) made over ``space``."""
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"Bank file {path} not found.")
        try:
            if path.suffix.lower() == ".npz":
                with np.load(path, allow_pickle=False) as z:
                    data = {k: z[k] for k in z.files}
            else:
                data = _read_h5_bank(path)
        except (OSError, ValueError) as err:
            raise ValueError(f"{path} cannot be read as a bank ({err}).") from None
        missing = [k for k in ("params", "images") if k not in data]
        if missing:
            raise ValueError(f"{path} has no dataset(s) {missing}; a bank needs 'params' (M, P) "
                             f"and 'images' (M, H, W, C), optionally 'conditions' (M, K); found "
                             f"{sorted(data)}.")
        if "conditions" in data and condition_space is None:
            raise ValueError(f"{path} has per-event conditions; pass condition_space=.")
        return cls(data["params"], data["images"], space, conditions=data.get("conditions"),
                   condition_space=condition_space if "conditions" in data else None,
                   name=name or path.name)

    @classmethod
    def from_simulator(cls, simulator: Simulator, space, n_points: int, per_point: int,
                       rng: np.random.Generator, *, condition_space=None) -> BankSimulator:
        """Fill a bank by running ``simulator`` at ``n_points`` random points, ``per_point``
        images each (conditions, if any, drawn once per point)."""
        if per_point < 2:
            raise ValueError("per_point must be >= 2: pre-training needs pairs at one point.")
        pts = np.repeat(space.sample(rng, n_points), per_point, axis=0)
        cond = None
        if simulator.conditions is not None:
            cond = np.repeat(simulator.conditions.sample(rng, n_points), per_point, axis=0)
        images = simulator.simulate(rng, pts, space, conditions=cond)
        return cls(pts, images, space, conditions=cond,
                   condition_space=simulator.conditions if cond is not None else None,
                   name=f"bank of {simulator.name}")


def _read_h5_bank(path: Path) -> dict[str, np.ndarray]:
    """The datasets of an HDF5 bank: those at the top level, or those of the one group that holds
    ``params`` and ``images`` (a ValueError naming the groups when several do, or none)."""
    import h5py

    with h5py.File(path, "r") as f:
        datasets: list[str] = []
        f.visititems(lambda name, obj: datasets.append(name)
                     if isinstance(obj, h5py.Dataset) else None)
        groups = sorted({name.rpartition("/")[0] for name in datasets})
        holders = [g for g in groups
                   if all(f"{g}/{k}".lstrip("/") in datasets for k in ("params", "images"))]
        if len(holders) > 1:
            raise ValueError(f"several groups hold a bank ({', '.join(h or '/' for h in holders)});"
                             " keep one bank per file (or move one to the top level).")
        if not holders:
            return {name: np.empty(0) for name in datasets}  # reported as missing by the caller
        group = f[holders[0]] if holders[0] else f
        return {k: v[()] for k, v in group.items() if isinstance(v, h5py.Dataset)}

