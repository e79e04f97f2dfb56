"""A feature network trained on the simulator alone, for learned-feature distances (FD, KID, PRDC).

The Frechet and kernel distances need an embedding in which "looks alike" means "close". Image
GANs borrow Inception; a simulator has none, and the GAN's own siamese or discriminator would
judge the emulator with the networks it was trained against. :func:`train_feature_network` trains
a separate 2D CNN (:class:`~magan.nn.models.ImageEncoder` with a linear head) to regress the
parameters and per-event conditions (unit cube) from fresh simulations, never from emulated
images. Its penultimate features (64 by default) are the embedding: they vary with everything the
image says about its parameters, which is what an emulator must reproduce.

:func:`train_module` is the small jitted Adam loop shared with :mod:`magan.validation.two_sample`.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from magan.nn.models import ImageEncoder
from magan.runtime.progress import progress_bar
from magan.transforms import IdentityTransform, ImageTransform

__all__ = ["FeatureNetwork", "train_feature_network", "train_module"]


def train_module(model: nnx.Module, loss_fn: Callable, next_batch: Callable[[int], tuple],
                 steps: int, *, lr: float = 1e-3, desc: str = "training",
                 progress: bool | None = None, held_out: tuple | None = None,
                 every: int = 50) -> tuple[nnx.Module, list[float]]:
    """Minimise ``loss_fn(model, *batch)`` with Adam for ``steps`` steps, one jitted pure step
    per batch. ``next_batch(i)`` returns the i-th batch (arrays). Returns the trained model and
    the loss every ``every`` steps (read from the device only then). With ``held_out`` (a batch
    never trained on) the model with the lowest held-out loss at those steps is returned (early
    stopping), and the losses listed are the held-out ones."""
    graphdef, params = nnx.split(model)
    tx = optax.adam(lr)
    opt = tx.init(params)

    @jax.jit
    def step(params, opt, *batch):
        def loss(p):
            return loss_fn(nnx.merge(graphdef, p), *batch)

        val, grads = jax.value_and_grad(loss)(params)
        upd, opt = tx.update(grads, opt, params)
        return optax.apply_updates(params, upd), opt, val

    held = jax.jit(lambda p, *b: loss_fn(nnx.merge(graphdef, p), *b))
    losses, best, best_params = [], np.inf, params
    with progress_bar(steps, desc, progress) as bar:
        for i in range(steps):
            params, opt, val = step(params, opt, *next_batch(i))
            if i % every == 0 or i == steps - 1:
                if held_out is not None:
                    val = held(params, *held_out)
                losses.append(float(val))
                if held_out is not None and losses[-1] < best:
                    best, best_params = losses[-1], jax.tree.map(jnp.copy, params)
                bar.set_postfix(loss=f"{losses[-1]:.4f}")
            bar.update(1)
    return nnx.merge(graphdef, best_params if held_out is not None else params), losses


class _Regressor(nnx.Module):
    def __init__(self, image_shape, out_dim: int, width: int, features: int, rngs: nnx.Rngs):
        self.encoder = ImageEncoder(image_shape, width=width, features=features, rngs=rngs)
        self.head = nnx.Linear(features, out_dim, rngs=rngs)

    def __call__(self, x):
        return self.head(self.encoder(x))


class FeatureNetwork:
    """The embedding of a trained :func:`train_feature_network`; ``embed`` maps physical images
    (N, H, W, C) (+ conditions (N, K) when the transform needs them) to features (N, F)."""

    def __init__(self, model: _Regressor, transform: ImageTransform, image_shape, info: dict):
        self.model, self.transform, self.image_shape, self.info = model, transform, image_shape, info
        graphdef, state = nnx.split(model.encoder)
        self._embed = jax.jit(lambda s, x: nnx.merge(graphdef, s)(x))
        self._state = state

    def embed(self, images, conditions=None, *, batch_size: int = 512) -> np.ndarray:
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
    from magan.pretraining.orchestration import draw_training_batch

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
