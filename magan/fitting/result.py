"""The outcome of a fit: :class:`FitResult`, and the warnings a result gives about itself."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["FitResult"]


@dataclass
class FitResult:
    """The outcome of :func:`fit`. Parameters are in physical units.

    Attributes:
      names: parameter names, length P.
      samples: (K, P) draws of the fitted parameters (all target replicas pooled; shifted by
        ``-bias`` when bias-corrected, so they may step slightly outside the bounds).
      mean: (P,) mean of ``samples``.
      std: (P,) the fit's statistical uncertainty: the spread of ``samples``, plus (in
        quadrature) that of the bias-correction replicas. It does not contain the emulator's
        remaining systematic error; on the line study the true error is up to 2-5 std
        (studies/line/README.md).
      replica_means: (R, P) mean of each replica's outputs.
      start: (P,) where G started (S's regression estimate or the box centre).
      raw_mean: (P,) mean of G's outputs on the targets before bias correction.
      bias: (P,) the fit's bias measured on a reference set simulated at ``reference_at``
        (``None`` when no simulator was given); ``mean = raw_mean - bias``.
      reference_at: (P,) where the reference set was simulated (``(K, P)``, one row per set, with
        ``bias_reference="around"``): ``start``
        (``FitConfig.bias_reference = "start"``) or the uncorrected fit, clipped to the box
        (``"fit"``); ``None`` without bias correction.
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
            "reference_at": None if self.reference_at is None else
            np.asarray(self.reference_at).tolist() if np.ndim(self.reference_at) == 2 else
            {n: float(v) for n, v in zip(self.names, self.reference_at)},
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
        }

    def __repr__(self) -> str:
        body = ", ".join(f"{n}={m:.4g}+-{s:.2g}"
                         for n, m, s in zip(self.names, self.mean, self.std))
        flagged = f"; warnings: {', '.join(self.warnings)}" if self.warnings else ""
        return f"FitResult({body}{flagged})"
