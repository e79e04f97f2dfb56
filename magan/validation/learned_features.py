"""A feature network trained on the simulator alone, for learned-feature distances (FD, KID, PRDC).

The Frechet and kernel distances need an embedding in which "looks alike" means "close". Image
GANs borrow Inception; a simulator has none, and the GAN's own siamese or discriminator would
judge the emulator with the networks it was trained against. :func:`train_feature_network` trains
a separate 2D CNN (:class:`~magan.nn.models.ImageEncoder` with a linear head) to regress the
parameters and per-event conditions (unit cube) from fresh simulations, never from emulated
images. Its penultimate features (64 by default) are the embedding: they vary with everything the
image says about its parameters, which is what an emulator must reproduce.

"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from magan.nn.models import ImageEncoder
from magan.nn.supervised import train_module
from magan.transforms import IdentityTransform, ImageTransform

__all__ = ["FeatureNetwork", "train_feature_network"]


class _Regressor(nnx.Module):
    """Images (N, H, W, C) in network space -> (N, out_dim) unit-cube parameters and conditions,
    through ``features`` penultimate features; ``width``: the encoder's channel width."""

    def __init__(self, image_shape, out_dim: int, width: int, features: int, rngs: nnx.Rngs):
        self.encoder = ImageEncoder(image_shape, width=width, embedding_width=features, rngs=rngs)
        self.head = nnx.Linear(features, out_dim, rngs=rngs)

    def __call__(self, x):
        return self.head(self.encoder(x))


class FeatureNetwork:
    """The embedding of a trained :func:`train_feature_network`; ``embed`` maps physical images
    (N, H, W, C) (+ conditions (N, K) when the transform needs them) to features (N, F)."""

    def __init__(self, model: _Regressor, transform: ImageTransform, image_shape, info: dict):
        self.model, self.transform, self.info = model, transform, info
        self.image_shape = image_shape
        graphdef, state = nnx.split(model.encoder)
        self._embed = jax.jit(lambda s, x: nnx.merge(graphdef, s)(x))
        self._state = state

    def embed(self, images, conditions=None, *, batch_size: int = 512) -> np.ndarray:
        """(N, F) float64 features of physical images (N, H, W, C), ``batch_size`` at a time."""
        x = np.asarray(self.transform.forward(np.asarray(images, np.float32), conditions, xp=np),
                       np.float32)
        out = [np.asarray(self._embed(self._state, jnp.asarray(x[i:i + batch_size])))
               for i in range(0, len(x), batch_size)]
        return np.concatenate(out, axis=0).astype(np.float64)


def train_feature_network(simulator, space, *, transform: ImageTransform | None = None,
                          steps: int = 800, batch_size: int = 64, width: int = 16,
                          features: int = 64, lr: float = 1e-3, seed: int = 0,
                          progress: bool | None = None) -> FeatureNetwork:
    """Train the feature network on fresh simulations (module docstring).

    Args:
      simulator: the black-box simulator (with its ConditionSpace, if any).
      space: the parameter space; points are drawn uniformly (conditions too).
      transform: the emulator's image transform, so the network sees the same well-scaled images.
      steps, batch_size: each step simulates ``batch_size`` new points (twice: both images train).
    Returns:
      A :class:`FeatureNetwork`; ``info["loss"]`` holds the regression loss curve (mean squared
      error in the unit cube; 1/12 = 0.083 means nothing learned).
    """
    from magan.pretraining.feeding import draw_training_batch

    transform = transform or IdentityTransform()
    k = 0 if simulator.conditions is None else simulator.conditions.dim
    net_shape = transform.network_shape(simulator.image_shape)
    model = _Regressor(net_shape, space.dim + k, width, features, nnx.Rngs(seed))
    rng = np.random.default_rng([seed, 31337])

    def next_batch(_):
        unit, _, x1, x2 = draw_training_batch(simulator, space, rng, batch_size, transform)
        return (jnp.asarray(np.concatenate([x1, x2]), jnp.float32),
                jnp.asarray(np.concatenate([unit, unit]), jnp.float32))

    def loss(m, x, y):
        return jnp.mean((m(x) - y) ** 2)

    model, losses = train_module(model, loss, next_batch, steps, lr=lr, desc="feature network",
                                 progress=progress)
    return FeatureNetwork(model, transform, simulator.image_shape,
                          {"steps": steps, "batch_size": batch_size, "loss": losses,
                           "final_mse_unit": losses[-1]})
