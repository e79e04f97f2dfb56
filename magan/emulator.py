"""The trained emulator: a fast, differentiable stand-in for the simulator.

An :class:`Emulator` holds the emulator network E and the siamese network S it was trained against
(S's auxiliary head gives a quick parameter estimate from an image, used to start fits), the
:class:`~magan.space.ParameterSpace`, the per-event :class:`~magan.space.ConditionSpace` (if any),
the image shape and the :class:`~magan.transforms.ImageTransform` between physical images and the
networks' space. It is saved as a folder::

    emulator.json   space, conditions, transform, image shape, network sizes, training summary
    weights.npz     E's parameters (EMA) and S's parameters, one array per path
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from magan.nn.build import build_emulator_nets, emulate
from magan.runtime.cache import use_compilation_cache
from magan.runtime.io import atomic_dir, atomic_write_bytes, atomic_write_json, to_jsonable
from magan.space import ConditionSpace, ParameterSpace
from magan.transforms import IdentityTransform, ImageTransform, transform_from_dict

__all__ = ["Emulator", "load_emulator", "build_emulator_nets", "FORMAT_VERSION"]

FORMAT_VERSION = 1


def _flatten(d: dict, prefix: str = "", leaf=np.asarray) -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}/{k}" if prefix else str(k)
        if isinstance(v, dict):
            out.update(_flatten(v, key, leaf))
        else:
            out[key] = leaf(v)
    return out


def _unflatten(flat: dict[str, np.ndarray]) -> dict:
    out: dict = {}
    for key, v in flat.items():
        node = out
        parts = key.split("/")
        for p in parts[:-1]:
            node = node.setdefault(int(p) if p.isdigit() else p, {})
        node[int(parts[-1]) if parts[-1].isdigit() else parts[-1]] = v
    return out


class Emulator:
    """A trained emulator of one simulator over one parameter space (and condition space).

    Use :func:`magan.train_emulator` to make one and :func:`load_emulator` to read one back.
    """

    def __init__(self, space: ParameterSpace, image_shape, net: dict, params_e, params_s, *,
                 graphdefs=None, info: dict | None = None,
                 conditions: ConditionSpace | None = None,
                 transform: ImageTransform | None = None):
        self.space = space
        self.conditions = conditions
        self.transform = transform or IdentityTransform()
        self.image_shape = tuple(int(s) for s in image_shape)
        self.network_shape = self.transform.network_shape(self.image_shape)
        self.net = dict(net)
        self.info = dict(info or {})
        if graphdefs is None:
            graphdefs = build_emulator_nets(space.dim, self.network_shape, self.net, 0,
                                            self.cond_dim, init=False)[::2]
        self.graphdef_e, self.graphdef_s = graphdefs
        self.params_e = params_e
        self.params_s = params_s
        self._sample_fn = jax.jit(self._sample_physical)
        self._regress_fn = jax.jit(self._regress_unit)
        self._summaries_fn = jax.jit(self._summaries_net)

    @property
    def cond_dim(self) -> int:
        """Number of per-event conditions K (0 without conditions)."""
        return 0 if self.conditions is None else self.conditions.dim

    # ----------------------------------------------------------------- use
    def check_inputs(self, params, conditions=None, *, what: str = "params"):
        """Checked, broadcast (params (N, P), conditions (N, K) or None), physical units.

        One parameter point with N condition rows (or the reverse) is broadcast to N events.
        """
        params = self.space.check(params, what=what)
        if self.conditions is None:
            if conditions is not None:
                raise ValueError("This emulator was trained without per-event conditions; do not "
                                 "pass conditions.")
            return params, None
        if conditions is None:
            raise ValueError(f"This emulator is conditioned on {list(self.conditions.names)} per "
                             "event; pass conditions=... of shape (N, "
                             f"{self.conditions.dim}) in {self.conditions!r}.")
        cond = self.conditions.check(conditions)
        n = max(params.shape[0], cond.shape[0])
        if params.shape[0] == 1:
            params = np.repeat(params, n, axis=0)
        if cond.shape[0] == 1:
            cond = np.repeat(cond, n, axis=0)
        if params.shape[0] != cond.shape[0]:
            raise ValueError(f"{params.shape[0]} parameter rows but {cond.shape[0]} condition "
                             "rows; give one row per event (or one row of either to broadcast).")
        return params, cond

    def conditioning(self, params, conditions=None) -> np.ndarray:
        """E's unit-cube input (N, P + K) from checked physical params and conditions."""
        unit = self.space.to_unit(params)
        if conditions is not None:
            unit = np.concatenate([unit, self.conditions.to_unit(conditions)], axis=1)
        return unit.astype(np.float32)

    def _sample_physical(self, params_e, unit, cond_phys, key):
        x = emulate(self.graphdef_e, params_e, unit, key)
        return self.transform.inverse(x, cond_phys, xp=jnp)

    def sample(self, params, conditions=None, *, n: int | None = None, seed: int = 0,
               batch_size: int = 1024) -> np.ndarray:
        """Emulated images at physical parameters (and per-event conditions).

        Args:
          params: (N, P) physical values, inside the space; a vector (P,) is one point.
          conditions: (N, K) (or (K,), or (N,) when K = 1) physical per-event conditions, required
            when the emulator has a ConditionSpace. One row of params or of conditions broadcasts.
          n: with one parameter point ((P,) or (1, P)), the number of images to make at it (the
            point is repeated n times; conditions then have 1 or n rows). None: one image per row.
          seed: the same seed gives the same images.
          batch_size: images per device call (memory bound, not a result change).
        Returns:
          (N, H, W, C) float32 NumPy array in the simulator's physical units (N = n when given).
        """
        if n is not None:
            params = self._repeated(params, n)
        params, cond = self.check_inputs(params, conditions)
        self.check_sample_size(max(len(params), 0 if cond is None else len(cond)))
        unit = self.conditioning(params, cond)
        cond32 = None if cond is None else cond.astype(np.float32)
        key = jax.random.key(seed)
        out = []
        for i, start in enumerate(range(0, unit.shape[0], batch_size)):
            c = None if cond32 is None else jnp.asarray(cond32[start:start + batch_size])
            out.append(self._sample_fn(self.params_e, jnp.asarray(unit[start:start + batch_size]),
                                       c, jax.random.fold_in(key, i)))
        if not out:
            return np.zeros((0,) + self.image_shape, np.float32)
        return np.asarray(jnp.concatenate(out, axis=0))

    def _repeated(self, params, n) -> np.ndarray:
        """One checked parameter point ((P,) or (1, P)) repeated to (n, P), for ``sample(n=)``."""
        if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)):
            raise TypeError(f"sample: n must be a whole number of images, got {n!r} "
                            f"({type(n).__name__}); e.g. n=1000.")
        if n < 1:
            raise ValueError(f"sample: n = {n}; ask for at least one image (n >= 1).")
        point = self.space.check(params)
        if point.shape[0] != 1:
            raise ValueError(f"sample: n={n} repeats one parameter point, but params has "
                             f"{point.shape[0]} rows; give one point (shape ({self.space.dim},)) "
                             "with n, or leave n out to make one image per row.")
        self.check_sample_size(int(n))
        return np.repeat(point, int(n), axis=0)

    def check_sample_size(self, n: int) -> None:
        """Refuse ``n`` images that cannot fit in this machine's available memory, before
        anything is allocated (a ValueError naming the size and the fix)."""
        need = 2 * int(n) * int(np.prod(self.image_shape)) * 4  # float32; joined from batches
        free = available_memory()
        if free is not None and need > free:
            raise ValueError(f"{n} images of shape {self.image_shape} need about "
                             f"{_size(need)} of memory, but {_size(free)} is available; ask for "
                             "fewer (magan sample -n), or sample in parts and write each part "
                             "out before the next.")

    def to_network(self, images, conditions=None) -> np.ndarray:
        """Physical images (N, H, W, C) -> the networks' space (float32), with their conditions."""
        return np.asarray(self.transform.forward(images, conditions), np.float32)

    def _regress_unit(self, params_s, images, cond_unit):
        return nnx.merge(self.graphdef_s, params_s).regress(images, cond_unit)

    def _summaries_net(self, params_s, images, cond_unit):
        s = nnx.merge(self.graphdef_s, params_s)
        return s.aux(s.branch(images, cond_unit)).astype(jnp.float32)

    def _apply_s(self, fn, images, conditions, batch_size: int) -> np.ndarray:
        """``fn(params_s, network images, unit conditions)`` over checked physical ``images``
        (N, H, W, C) in batches; ``conditions`` (N, K) required when the emulator has them."""
        images = check_images(images, self.image_shape, "images")
        cond = cond_unit = None
        if self.conditions is not None or conditions is not None:
            _, cond = self.check_inputs(self.space.center(), conditions)  # errors name the fix
            if cond.shape[0] != images.shape[0]:
                raise ValueError(f"{images.shape[0]} images but {cond.shape[0]} condition rows.")
            cond_unit = self.conditions.to_unit(cond).astype(np.float32)
        net = self.to_network(images, cond)
        out = []
        for i in range(0, images.shape[0], batch_size):
            c = None if cond_unit is None else jnp.asarray(cond_unit[i:i + batch_size])
            out.append(np.asarray(fn(self.params_s, jnp.asarray(net[i:i + batch_size]), c)))
        return np.concatenate(out, axis=0)

    def estimate(self, images, conditions=None, *, batch_size: int = 1024) -> np.ndarray:
        """Quick per-image parameter estimate from S's auxiliary head, physical units (N, P).

        This is the amortised regression learned during pre-training on simulated images; the fit
        uses its mean as a starting point. It is not a fit. ``conditions`` (N, K) are required
        when the emulator has them.
        """
        return self.space.from_unit(self._apply_s(self._regress_fn, images, conditions,
                                                  batch_size))

    def summaries(self, images, conditions=None, *, batch_size: int = 1024) -> np.ndarray:
        """S's learned summaries of each image, (N, P) float32: the logits of its auxiliary
        regression head (one per parameter; :meth:`estimate` is their sigmoid mapped to physical
        units). The default fit matches their distribution (``FitConfig.feature_weight``), and
        checks that the targets' lie in the range of the training simulations' ones."""
        return self._apply_s(self._summaries_fn, images, conditions, batch_size)

    def identity(self) -> dict:
        """What a fit records of the emulator it used (``FitResult.emulator``): the simulator's
        name and the pre-training seed (from ``info``; None when unknown), the parameter names,
        the image shape and ``weights_sha256``, a SHA-256 of E's and S's weights (equal for an
        emulator and its saved and loaded copy, different after any retraining)."""
        flat = _flatten(nnx.to_pure_dict(self.params_e), "emulator")
        flat.update(_flatten(nnx.to_pure_dict(self.params_s), "siamese"))
        digest = hashlib.sha256()
        for key in sorted(flat):
            arr = np.ascontiguousarray(flat[key])
            digest.update(f"{key}:{arr.dtype.str}:{arr.shape};".encode())
            digest.update(arr.tobytes())
        return {"simulator": self.info.get("simulator"), "seed": self.info.get("seed"),
                "parameters": list(self.space.names), "image_shape": list(self.image_shape),
                "weights_sha256": digest.hexdigest()}

    @property
    def description_names(self) -> list[str]:
        """The names of :meth:`describe`'s columns."""
        from magan.fitting.diagnostics import STATISTICS, STRUCTURE

        return ([f"S's reading of {n}" for n in self.space.names]
                + [f"pixel {k}" for k in STATISTICS] + list(STRUCTURE))

    def describe(self, images, conditions=None) -> np.ndarray:
        """Summaries of each image, (N, P + 9) float64 (:attr:`description_names`): S's learned
        summaries (:meth:`summaries`), the mean, std, min and max of its pixels and the generic
        structure descriptors of :func:`~magan.fitting.diagnostics.image_structure` (power in
        four bands of spatial frequency, orientation coherence), both in the networks' space;
        what a fit's closure check compares (:func:`magan.fitting.diagnostics.fit_closure`)."""
        from magan.fitting.diagnostics import STATISTICS, image_statistics, image_structure

        net = self.to_network(images, conditions)
        stats = image_statistics(net)
        return np.column_stack([self.summaries(images, conditions).astype(np.float64),
                                *(stats[k] for k in STATISTICS), image_structure(net)])

    # ----------------------------------------------------------- save/load
    def save(self, path, *, overwrite: bool = False) -> Path:
        """Write the emulator into folder ``path``: ``emulator.json`` and ``weights.npz``.

        A new folder, or a previous emulator folder (nothing but those two files), is replaced
        atomically as a whole. Anything else already at ``path`` (a file, a folder holding other
        files) is refused with a ValueError unless ``overwrite=True``; even then only the two
        emulator files are written into such a folder and nothing else in it is touched (a file
        at ``path`` is replaced by the folder).
        """
        path = Path(path)
        kind = _existing(path)
        if kind not in ("none", "emulator") and not overwrite:
            raise ValueError(f"Emulator.save: {path} already exists and is {kind}; saving would "
                             "destroy it. Choose a new folder (or an emulator folder to replace), "
                             "or pass overwrite=True to write emulator.json and weights.npz into "
                             "that folder (other files are kept) or to replace that file.")
        flat = {f"emulator/{k}": v for k, v in _flatten(nnx.to_pure_dict(self.params_e)).items()}
        flat.update({f"siamese/{k}": v
                     for k, v in _flatten(nnx.to_pure_dict(self.params_s)).items()})
        meta = {"format_version": FORMAT_VERSION, "space": self.space.to_dict(),
                "conditions": None if self.conditions is None else self.conditions.to_dict(),
                "transform": self.transform.to_dict(), "image_shape": list(self.image_shape),
                "net": self.net, "info": to_jsonable(self.info)}
        if path.is_dir() and kind != "emulator":  # overwrite=True into the user's folder
            buf = io.BytesIO()
            np.savez(buf, **flat)
            atomic_write_bytes(path / "weights.npz", buf.getvalue())
            atomic_write_json(path / "emulator.json", meta)
            return path
        with atomic_dir(path) as tmp:
            np.savez(tmp / "weights.npz", **flat)
            atomic_write_json(tmp / "emulator.json", meta)
        return path

    def __repr__(self) -> str:
        cond = "" if self.conditions is None else f", conditions={self.conditions!r}"
        return f"Emulator({self.space!r}{cond}, image_shape={self.image_shape})"


def available_memory() -> int | None:
    """Bytes of memory the OS says are available to a new allocation (None when unknown)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _size(nbytes: float) -> str:
    """``nbytes`` in readable units (1.5 GB)."""
    for unit in ("B", "kB", "MB", "GB"):
        if nbytes < 1000:
            return f"{nbytes:.3g} {unit}"
        nbytes /= 1000
    return f"{nbytes:.3g} TB" if nbytes < 1000 else f"{nbytes:,.0f} TB"


_EMULATOR_FILES = {"emulator.json", "weights.npz"}


def _existing(path: Path) -> str:
    """What is at ``path``, for :meth:`Emulator.save`: ``"none"`` (nothing, or an empty folder),
    ``"emulator"`` (a folder of magan's emulator files only, recognised by its emulator.json),
    or a description of anything else."""
    if not path.exists() and not path.is_symlink():
        return "none"
    if not path.is_dir():
        return "a file"
    names = {p.name for p in path.iterdir()}
    if not names:
        return "none"
    if not names <= _EMULATOR_FILES or "emulator.json" not in names:
        other = sorted(names - _EMULATOR_FILES)
        return (f"a folder holding {len(other)} file(s) that are not an emulator's "
                f"({', '.join(other[:3])}{', ...' if len(other) > 3 else ''})")
    try:
        meta = json.loads((path / "emulator.json").read_text())
    except (OSError, ValueError):
        meta = None
    if not isinstance(meta, dict) or "format_version" not in meta:
        return "a folder whose emulator.json was not written by magan"
    return "emulator"


def check_images(images, image_shape, what: str) -> np.ndarray:
    """Validate a stack of images (N, H, W, C) (or (N, H, W) when C == 1); returns float32."""
    arr = np.asarray(images)
    shape = tuple(image_shape)
    if arr.ndim == 3 and shape[2] == 1:
        arr = arr[..., None]
    if arr.ndim != 4 or arr.shape[1:] != shape:
        raise ValueError(f"{what}: expected shape (N, {', '.join(map(str, shape))}), "
                         f"got {np.shape(images)}.")
    if arr.shape[0] == 0:
        raise ValueError(f"{what}: got 0 images; need at least one.")
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"{what}: dtype {arr.dtype} is not numeric.")
    arr = arr.astype(np.float32, copy=False)
    bad = ~np.isfinite(arr).reshape(arr.shape[0], -1).all(axis=1)
    if bad.any():
        raise ValueError(f"{what}: image {int(np.argmax(bad))} contains NaN or inf "
                         f"({int(bad.sum())} bad images in all); remove or repair them.")
    return arr


def load_emulator(path) -> Emulator:
    """Read an emulator folder written by :meth:`Emulator.save`."""
    use_compilation_cache()
    path = Path(path)
    meta_file, weights_file = path / "emulator.json", path / "weights.npz"
    for f in (meta_file, weights_file):
        if not f.exists():
            raise FileNotFoundError(
                f"{f} not found: {path} is not an emulator folder (it needs emulator.json and "
                "weights.npz, as written by Emulator.save or `magan study ... --out`)."
            )
    try:
        meta = json.loads(meta_file.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{meta_file} is not valid JSON ({err}); the folder is "
                         "corrupted.") from None
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{meta_file}: format_version {meta.get('format_version')!r} is not "
                         f"{FORMAT_VERSION}; it was written by an incompatible magan version.")
    try:
        space = ParameterSpace.from_dict(meta["space"])
        conditions = (ConditionSpace.from_dict(meta["conditions"]) if meta.get("conditions")
                      else None)
        transform = transform_from_dict(meta.get("transform"))
        image_shape = tuple(int(s) for s in meta["image_shape"])
        ge, pe, gs, ps = build_emulator_nets(space.dim, transform.network_shape(image_shape),
                                             meta["net"], 0,
                                             0 if conditions is None else conditions.dim,
                                             init=False)
    except (KeyError, TypeError, AttributeError, IndexError) as err:
        what = f"has no entry {err}" if isinstance(err, KeyError) else f"is malformed ({err})"
        raise ValueError(f"{meta_file} {what}; the file is damaged or was edited by hand. Restore "
                         "it from a copy, or save the emulator again.") from None
    try:
        with np.load(weights_file, allow_pickle=False) as z:
            flat = {k: z[k] for k in z.files}
    except Exception as err:  # zipfile/npy errors: corrupted file
        raise ValueError(f"{weights_file} cannot be read ({err}); the file is corrupted.") from None
    loaded = []
    for prefix, state in (("emulator/", pe), ("siamese/", ps)):
        sub = {k[len(prefix):]: v for k, v in flat.items() if k.startswith(prefix)}
        expect = _flatten(nnx.to_pure_dict(state), leaf=lambda a: tuple(a.shape))
        if set(sub) != set(expect) or any(sub[k].shape != expect[k] for k in expect):
            raise ValueError(f"{weights_file} does not match the networks described in "
                             f"{meta_file} (different layers or shapes); the files do not belong "
                             "together.")
        nnx.replace_by_pure_dict(state, _unflatten({k: jnp.asarray(v) for k, v in sub.items()}))
        loaded.append(state)
    return Emulator(space, image_shape, meta["net"], loaded[0], loaded[1], graphdefs=(ge, gs),
                    info=meta.get("info"), conditions=conditions, transform=transform)
