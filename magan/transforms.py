"""Maps between the simulator's physical images and the space the networks work in.

A calorimeter image holds energies in MeV that span five decades and scale with the incident
energy; a CNN learns far better from ``sqrt(E_voxel / E_incident)``. An :class:`ImageTransform`
is that map and its inverse. The emulator network works in the transformed ("network") space;
:meth:`magan.Emulator.sample` returns physical images, and :func:`magan.fit` transforms the target
images itself, so users only ever see physical units. The transform is saved with the emulator.

Both directions take the per-event conditions (N, K) in physical units (``None`` without
conditions) and an array namespace ``xp`` (``numpy`` or ``jax.numpy``), so the same transform runs
on the host and inside jitted code.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["ImageTransform", "IdentityTransform", "PowerTransform", "transform_from_dict"]


class ImageTransform:
    """Base class; see the module docstring. Subclasses are frozen dataclasses."""

    kind = "base"

    def network_shape(self, image_shape) -> tuple[int, int, int]:
        """The (H, W, C') of network-space images for physical images of shape (H, W, C)."""
        return tuple(int(v) for v in image_shape)

    def forward(self, images, conditions=None, xp=np):
        """Physical images (N, H, W, C) -> network space, same shape."""
        raise NotImplementedError

    def inverse(self, x, conditions=None, xp=np, cut: bool = True):
        """Network space (N, H, W, C) -> physical images, same shape. ``cut=False`` skips the
        readout threshold (if the transform has one) and returns the values before it, on the
        same scale."""
        raise NotImplementedError

    def to_dict(self) -> dict:
        return {"kind": self.kind, **asdict(self)}


@dataclass(frozen=True)
class IdentityTransform(ImageTransform):
    """Networks see the physical images unchanged (the default)."""

    kind = "identity"

    def forward(self, images, conditions=None, xp=np):
        return images

    def inverse(self, x, conditions=None, xp=np, cut: bool = True):
        return x


@dataclass(frozen=True)
class PowerTransform(ImageTransform):
    """``x = (image / (scale * c)) ** power``, inverse
    ``image = scale * c * max(x, 0) ** (1/power)``.

    Args:
      scale: a typical voxel value (physical units) for ``c = 1``; sets the network range to O(1).
      power: in (0, 1]; 0.5 compresses a wide dynamic range while keeping zeros at zero.
      divide_by_condition: index of the condition ``c`` that images are proportional to (for
        instance the incident energy), or ``None`` for ``c = 1``.
      threshold: physical values below it are set to exactly zero by the inverse (a readout
        threshold the simulator applies too), so emulated images are as sparse as simulated ones.
      total_channel: add one network channel that carries the image's total,
        ``(sum(image) / (scale * c * H * W)) ** power`` at every pixel. The inverse reads the
        total from that channel's mean and rescales the (thresholded) image to it. The networks
        then model an image's total and its shape separately, as calorimeter generators do with
        the energy sum: voxel-level noise no longer adds up into a too-wide total.
    """

    scale: float = 1.0
    power: float = 0.5
    divide_by_condition: int | None = None
    threshold: float = 0.0
    total_channel: bool = False
    kind = "power"

    def __post_init__(self):
        if not (np.isfinite(self.scale) and self.scale > 0):
            raise ValueError(f"PowerTransform: scale must be finite and > 0, got {self.scale}.")
        if not 0 < self.power <= 1:
            raise ValueError(f"PowerTransform: power must be in (0, 1], got {self.power}.")
        if not self.threshold >= 0:
            raise ValueError(f"PowerTransform: threshold must be >= 0, got {self.threshold}.")

    def _norm(self, conditions, xp, ndim):
        if self.divide_by_condition is None:
            return self.scale
        if conditions is None:
            raise ValueError("PowerTransform divides by condition "
                             f"{self.divide_by_condition}, but no conditions were given.")
        c = conditions[:, self.divide_by_condition]
        return self.scale * c.reshape(c.shape + (1,) * (ndim - 1))

    def network_shape(self, image_shape) -> tuple[int, int, int]:
        h, w, c = (int(v) for v in image_shape)
        return (h, w, c + 1) if self.total_channel else (h, w, c)

    def forward(self, images, conditions=None, xp=np):
        norm = self._norm(conditions, xp, images.ndim)
        pos = xp.maximum(images, 0.0)
        x = (pos / norm) ** self.power
        if self.total_channel:
            n, h, w, _ = images.shape
            total = xp.sum(pos, axis=(1, 2, 3), keepdims=True) / (norm * h * w)
            x = xp.concatenate([x, xp.broadcast_to(total ** self.power, (n, h, w, 1))], axis=-1)
        return x.astype(images.dtype)

    def inverse(self, x, conditions=None, xp=np, cut: bool = True):
        norm = self._norm(conditions, xp, x.ndim)
        body = x[..., :-1] if self.total_channel else x
        pre = norm * xp.maximum(body, 0.0) ** (1.0 / self.power)
        out = xp.where(pre >= self.threshold, pre, 0.0) if self.threshold > 0 else pre
        if self.total_channel:
            n, h, w, _ = x.shape
            t = xp.maximum(xp.mean(x[..., -1:], axis=(1, 2), keepdims=True), 0.0)
            total = norm * h * w * t ** (1.0 / self.power)
            rescale = total / (xp.sum(out, axis=(1, 2, 3), keepdims=True) + 1e-12)
            out, pre = out * rescale, pre * rescale
            if self.threshold > 0:
                out = xp.where(out >= self.threshold, out, 0.0)
        return (out if cut else pre).astype(x.dtype)


_KINDS = {"identity": IdentityTransform, "power": PowerTransform}


def transform_from_dict(d: dict | None) -> ImageTransform:
    """Rebuild a transform from :meth:`ImageTransform.to_dict` (``None``: identity)."""
    if not d:
        return IdentityTransform()
    d = dict(d)
    kind = d.pop("kind", None)
    if kind not in _KINDS:
        raise ValueError(f"Unknown image transform {kind!r}; known: {sorted(_KINDS)}.")
    return _KINDS[kind](**d)
