"""The outcome of a fit: :class:`FitResult`, the warnings a result gives about itself, and its
file: :meth:`FitResult.save` and :func:`load_fit`.

A saved fit is one ``.npz`` file (NumPy's zip of arrays, readable without magan): every array
field under its own name (``samples`` (K, P), ``mean`` (P,), ...) and ``meta``, the UTF-8 bytes of
a JSON document with the names, units, config, histories, diagnostics, timing and the emulator's
identity (tuples, NumPy arrays and scalars tagged so that they come back as they were).
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

__all__ = ["FitResult", "load_fit", "FIT_FORMAT", "FIT_FORMAT_VERSION"]

FIT_FORMAT = "magan-fit"
FIT_FORMAT_VERSION = 1
# the fields stored as arrays of the .npz (those that are None are left out and come back None)
_ARRAYS = ("samples", "mean", "std", "replica_means", "start", "raw_mean", "bias",
           "reference_at", "stat_std", "syst_std", "covariance", "reference_means")


@dataclass
class FitResult:
    """The outcome of :func:`fit`. Parameters are in physical units.

    Attributes:
      names: parameter names, length P.
      samples: (K, P) draws of the fitted parameters (all target replicas pooled; shifted by
        ``-bias`` when bias-corrected, so they may step slightly outside the bounds).
      mean: (P,) mean of ``samples``.
      std: (P,) the fit's reported uncertainty. With a simulator and ``bias_reference="around"``
        (the default) the total: the scatter of the reference fits' errors, which contains the
        emulator's systematic error near the fit (``covariance`` holds the whole matrix);
        with ``"start"``/``"fit"`` the spread of ``samples`` plus (in quadrature) that of the
        bias-correction replicas; without a simulator the spread of ``samples`` only
        (statistical; the ``uncertainty_is_statistical`` diagnostic warns).
      replica_means: (R, P) mean of each replica's outputs.
      start: (P,) where G started (S's regression estimate or the box centre).
      raw_mean: (P,) mean of G's outputs on the targets before bias correction.
      bias: (P,) the fit's bias measured on a reference set simulated at ``reference_at``
        (``None`` when no simulator was given); ``mean = raw_mean - bias``.
      reference_at: (P,) where the reference set was simulated (``(K, P)``, one row per set, with
        ``bias_reference="around"``): ``start``
        (``FitConfig.bias_reference = "start"``) or the uncorrected fit, clipped to the box
        (``"fit"``); ``None`` without bias correction.
      reference_means: what the reference fits found, the same shape as ``reference_at``: each
        set's mean fitted parameters (uncorrected), so ``reference_means - reference_at`` are
        the errors the bias and (with ``"around"``) the uncertainty come from; how they follow
        ``reference_at`` is the fit's local response to its truth. ``None`` without bias
        correction.
      history: metric rows over steps.
      reference_history: the reference fit's metric rows (``bias_reference = "fit"``), else [].
      timing: seconds spent.
      stat_std: (P,) the statistical part: the spread of the bootstrap replicas' draws.
      syst_std: (P,) with ``bias_reference="around"``: the part of ``std`` beyond the statistical
        one (the emulator's systematic error near the fit), else None.
      covariance: (P, P) with ``bias_reference="around"``: the total covariance of the corrected
        estimate (``std`` is the root of its diagonal), from the scatter of the reference fits'
        errors; else None.
      diagnostics: the fit's named checks (:mod:`magan.fitting.diagnostics`), each with a
        status ("ok", "warn", "unknown"), a message and its numbers; every "warn" was also
        issued as a ``FitWarning``.
      units: length P, each parameter's unit label ("" for none), or () when not recorded.
      emulator: the fitted emulator's identity (:meth:`magan.Emulator.identity`: its simulator's
        name, pre-training seed, parameter names and a hash of its weights), {} when unknown.

    ``save(path)`` writes it to one ``.npz`` file; :func:`magan.load_fit` reads it back equal.
    """

    names: tuple[str, ...]
    samples: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    replica_means: np.ndarray
    start: np.ndarray
    raw_mean: np.ndarray | None = None
    bias: np.ndarray | None = None
    reference_at: np.ndarray | None = None
    history: list[dict] = field(default_factory=list)
    reference_history: list[dict] = field(default_factory=list)
    timing: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    diagnostics: list = field(default_factory=list)
    stat_std: np.ndarray | None = None
    syst_std: np.ndarray | None = None
    covariance: np.ndarray | None = None
    units: tuple[str, ...] = ()
    emulator: dict = field(default_factory=dict)
    reference_means: np.ndarray | None = None

    @property
    def warnings(self) -> list[str]:
        """The names of the diagnostics that warn (empty when nothing looked wrong)."""
        return [d.name for d in self.diagnostics if d.status == "warn"]

    def to_dict(self) -> dict:
        """JSON-ready summary (no per-sample arrays beyond the replica means)."""
        return {
            "names": list(self.names),
            "mean": {n: float(v) for n, v in zip(self.names, self.mean)},
            "std": {n: float(v) for n, v in zip(self.names, self.std)},
            "start": {n: float(v) for n, v in zip(self.names, self.start)},
            "raw_mean": None if self.raw_mean is None else
            {n: float(v) for n, v in zip(self.names, self.raw_mean)},
            "bias": None if self.bias is None else
            {n: float(v) for n, v in zip(self.names, self.bias)},
            "reference_at": self._points(self.reference_at),
            "reference_means": self._points(self.reference_means),
            "replica_means": self.replica_means.tolist(),
            "n_samples": int(self.samples.shape[0]),
            "timing": self.timing,
            "config": self.config,
            "diagnostics": [d.to_dict() for d in self.diagnostics],
            "stat_std": None if self.stat_std is None else
            {n: float(v) for n, v in zip(self.names, self.stat_std)},
            "syst_std": None if self.syst_std is None else
            {n: float(v) for n, v in zip(self.names, self.syst_std)},
            "covariance": None if self.covariance is None else self.covariance.tolist(),
            "units": list(self.units),
            "emulator": self.emulator,
        }

    def _points(self, a):
        """None, one point (P,) as {name: value}, or several (K, P) as K lists, for JSON."""
        if a is None:
            return None
        if np.ndim(a) == 2:
            return np.asarray(a).tolist()
        return {n: float(v) for n, v in zip(self.names, a)}

    def __repr__(self) -> str:
        """One line per parameter, ``name = mean ± std (unit)`` (physical units), then the
        diagnostics that warn."""
        corrected = ", bias-corrected" if self.bias is not None else ""
        lines = [f"FitResult of {len(self.names)} parameter(s) "
                 f"({np.shape(self.samples)[0]} samples{corrected}):"]
        width = max((len(n) for n in self.names), default=0)
        units = self.units if len(self.units) == len(self.names) else ("",) * len(self.names)
        for n, m, s, u in zip(self.names, self.mean, self.std, units):
            lines.append(f"  {n:<{width}} = {m:.4g} ± {s:.2g}" + (f" ({u})" if u else ""))
        if self.warnings:
            lines.append(f"  warnings: {', '.join(self.warnings)} (see .diagnostics)")
        elif self.diagnostics:
            lines.append(f"  warnings: none ({len(self.diagnostics)} checks passed)")
        return "\n".join(lines)

    def to_inference_data(self):
        """The draws as an ArviZ posterior (``pip install "magan[arviz]"``).

        One chain per fit replica (R = ``len(replica_means)``; each replica's (G, D) pair trained
        on its own bootstrap resample of the targets), ``K / R`` draws per chain (G's outputs,
        independent, not a Markov chain: between-chain spread is the bootstrap's, so R-hat measures
        how well the replicas agree, not convergence), one variable of shape (chain, draw) per
        parameter, named as in ``names``, physical units (its ``units`` attribute), bias-corrected
        like ``samples``.

        Returns:
          With ArviZ 0.x an ``arviz.InferenceData``; with ArviZ 1.x (``arviz_base.from_dict``) an
          ``xarray.DataTree``. Both hold the group ``posterior``: ``result.to_inference_data()
          .posterior["m"]``, ``arviz.summary(...)`` and ArviZ's plots take either.
        Raises:
          ImportError naming ``pip install "magan[arviz]"`` when ArviZ is not installed;
          ValueError when the draws cannot be split into the replicas.
        """
        try:
            import arviz
        except ImportError:
            raise ImportError('FitResult.to_inference_data needs ArviZ: pip install "magan[arviz]" '
                              '(or pip install arviz).') from None
        chains = self.draws_by_replica()
        posterior = {n: chains[:, :, j] for j, n in enumerate(self.names)}
        if int(str(arviz.__version__).split(".")[0]) >= 1:  # arviz_base.from_dict: groups first
            data = arviz.from_dict({"posterior": posterior})
        else:
            data = arviz.from_dict(posterior=posterior)
        data["posterior"].attrs.update(inference_library="magan", chains="fit replicas",
                                       bias_corrected=int(self.bias is not None))
        units = self.units if len(self.units) == len(self.names) else ("",) * len(self.names)
        for n, u in zip(self.names, units):
            data["posterior"][n].attrs["units"] = u
        return data

    def draws_by_replica(self) -> np.ndarray:
        """``samples`` as (R, K / R, P): the draws of each fit replica (the fit pools them replica
        by replica, R = ``len(replica_means)``)."""
        samples = np.asarray(self.samples)
        r = len(self.replica_means)
        if samples.ndim != 2 or r < 1 or samples.shape[0] % r:
            raise ValueError(f"samples of shape {samples.shape} cannot be split into the "
                             f"{r} replicas of replica_means; a FitResult from magan.fit pools "
                             "K / R draws of each replica. Pass samples (R * S, P).")
        return samples.reshape(r, samples.shape[0] // r, samples.shape[1])

    # ------------------------------------------------------------------------------ files
    def save(self, path, *, overwrite: bool = False) -> Path:
        """Write the fit to one ``.npz`` file at ``path`` (``.npz`` is the suggested suffix),
        atomically: a temporary file in the same folder, renamed into place.

        Every array field, the names, units, config, histories, diagnostics, timing and the
        emulator's identity are kept; :func:`load_fit` reads back an equal result. A previous
        saved fit at ``path`` is replaced; anything else there (a file magan did not write as a
        fit) is refused with a ValueError unless ``overwrite=True``; a folder is always refused.
        """
        from magan.runtime.io import atomic_write_bytes

        path = Path(path)
        kind = _existing_fit(path)
        if kind not in ("none", "fit") and not overwrite:
            raise ValueError(f"FitResult.save: {path} already exists and is {kind}; saving would "
                             "destroy it. Choose a new file name (or a saved fit to replace), or "
                             "pass overwrite=True to replace that file.")
        arrays = {k: np.asarray(getattr(self, k)) for k in _ARRAYS if getattr(self, k) is not None}
        meta = {"format": FIT_FORMAT, "format_version": FIT_FORMAT_VERSION,
                "arrays": sorted(arrays), "fields": {}}
        for f in fields(self):
            if f.name in _ARRAYS:
                continue
            value = getattr(self, f.name)
            if f.name == "diagnostics":
                value = [d.to_dict() for d in value]
            meta["fields"][f.name] = _encode(value, f.name)
        text = json.dumps(meta, indent=1)
        buf = io.BytesIO()
        np.savez(buf, meta=np.frombuffer(text.encode(), np.uint8), **arrays)
        atomic_write_bytes(path, buf.getvalue())
        return path


_FIX = ("Save the fit again (FitResult.save, or `magan fit --out`), or restore the file from a "
        "copy.")


def load_fit(path) -> FitResult:
    """Read a fit written by :meth:`FitResult.save` (or the ``fit.npz`` of a ``magan fit --out``
    folder, when ``path`` is that folder). Arrays come back with their dtypes and shapes, the
    diagnostics as :class:`~magan.fitting.diagnostics.Diagnostic` objects.

    Raises FileNotFoundError for a missing path, ValueError (naming the path and the fix) for a
    folder without a saved fit, a file that is not one, or a damaged one.
    """
    path = Path(path)
    if path.is_dir():
        if not (path / "fit.npz").is_file():
            raise ValueError(f"{path} is a folder, not a saved fit: name the .npz file that "
                             "FitResult.save wrote (a `magan fit --out` folder holds it as "
                             "fit.npz).")
        path = path / "fit.npz"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: name the .npz file that FitResult.save wrote "
                                "(a `magan fit --out` folder holds it as fit.npz).")
    meta, arrays = _read_fit(path)
    try:
        kwargs = {name: _decode(value) for name, value in meta["fields"].items()}
        from magan.fitting.diagnostics import Diagnostic

        kwargs["diagnostics"] = [Diagnostic(**d) for d in kwargs.get("diagnostics", [])]
        return FitResult(**kwargs, **arrays)
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise ValueError(f"{path}: its description of the fit is malformed ({err}); the file is "
                         f"damaged or was edited. {_FIX}") from None


def _read_fit(path: Path) -> tuple[dict, dict]:
    """(meta document, {field: array}) of a saved fit, with errors that name the file."""
    try:
        z = np.load(path, allow_pickle=False)
    except Exception as err:  # zip and npy errors: not a fit, or a damaged one
        raise ValueError(f"{path} cannot be read as a saved fit ({err}); it is damaged or is not "
                         f"a fit saved by magan. {_FIX}") from None
    if not isinstance(z, np.lib.npyio.NpzFile):
        raise ValueError(f"{path} is a single array (.npy), not a fit saved by FitResult.save.")
    with z:
        try:
            if "meta" not in z.files:
                raise ValueError("no 'meta' entry")
            meta = json.loads(z["meta"].tobytes().decode())
            if not isinstance(meta, dict) or meta.get("format") != FIT_FORMAT:
                raise ValueError("its 'meta' entry does not describe a magan fit")
            arrays = {k: z[k] for k in meta["arrays"]}
        except Exception as err:  # zip, UTF-8, JSON and missing-entry errors
            raise ValueError(f"{path} cannot be read as a saved fit ({err}); it is damaged or is "
                             f"not a fit saved by magan. {_FIX}") from None
    if meta.get("format_version") != FIT_FORMAT_VERSION:
        raise ValueError(f"{path}: format_version {meta.get('format_version')!r} is not "
                         f"{FIT_FORMAT_VERSION}; it was written by an incompatible magan version.")
    return meta, arrays


def _existing_fit(path: Path) -> str:
    """What is at ``path``, for :meth:`FitResult.save`: ``"none"``, ``"fit"`` (a saved fit) or a
    description of anything else; a folder raises a ValueError naming the fix."""
    if path.is_dir():
        raise ValueError(f"FitResult.save: {path} is a folder; name a file to write, e.g. "
                         f"{path / 'fit.npz'}.")
    if not path.exists() and not path.is_symlink():
        return "none"
    try:
        _read_fit(path)
    except ValueError:
        return "a file that is not a fit saved by magan"
    return "fit"


def _encode(obj, where: str):
    """``obj`` as JSON-ready data that :func:`_decode` turns back into an equal object: tuples,
    NumPy arrays and scalars, and dicts with non-string keys are tagged."""
    if isinstance(obj, np.generic) and obj.dtype.kind in "biuf":  # before float: np.float64 is one
        return {"__magan_scalar__": obj.item(), "dtype": obj.dtype.str}
    if isinstance(obj, (str, bool, int, float)) or obj is None:
        return obj
    if isinstance(obj, dict):
        if all(isinstance(k, str) and not k.startswith("__magan_") for k in obj):
            return {k: _encode(v, f"{where}[{k!r}]") for k, v in obj.items()}
        return {"__magan_dict__": [[_encode(k, where), _encode(v, f"{where}[{k!r}]")]
                                   for k, v in obj.items()]}
    if isinstance(obj, list):
        return [_encode(v, where) for v in obj]
    if isinstance(obj, tuple):
        return {"__magan_tuple__": [_encode(v, where) for v in obj]}
    if isinstance(obj, np.ndarray) and obj.dtype.kind in "biuf":
        return {"__magan_array__": obj.tolist(), "dtype": obj.dtype.str, "shape": obj.shape}
    raise TypeError(f"FitResult.save: {where} holds a {type(obj).__name__} ({obj!r:.60}), which "
                    "cannot be saved; keep only numbers, strings, lists, tuples, dicts and "
                    "numeric NumPy arrays in a FitResult.")


def _decode(obj):
    """The inverse of :func:`_encode`."""
    if isinstance(obj, list):
        return [_decode(v) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if "__magan_tuple__" in obj:
        return tuple(_decode(v) for v in obj["__magan_tuple__"])
    if "__magan_dict__" in obj:
        return {_decode(k): _decode(v) for k, v in obj["__magan_dict__"]}
    if "__magan_array__" in obj:
        return np.array(obj["__magan_array__"], dtype=obj["dtype"]).reshape(obj["shape"])
    if "__magan_scalar__" in obj:
        return np.dtype(obj["dtype"]).type(obj["__magan_scalar__"])
    return {k: _decode(v) for k, v in obj.items()}
