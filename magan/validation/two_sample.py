"""Classifier two-sample test: can a network tell emulated from simulated samples?

Each sample is split in halves. A classifier is trained on the first halves to tell ``b`` (e.g.
emulated) from ``a`` (simulated) (40 % of each sample to train, 10 % to stop early at the lowest
held-out loss) and scored on the second halves, which it never saw; the score
is the area under the ROC curve (AUC). 0.5 means the two are indistinguishable to this classifier;
1.0 means every sample can be told apart. Training on one split and scoring on another keeps the
AUC free of over-fitting bias, so under the null hypothesis it is 0.5 within its standard error.

The classifier is a 2D CNN (:class:`~magan.nn.models.ImageEncoder`, per-event conditions as extra
channels) for images (N, H, W, C), or a two-layer MLP for feature vectors (N, F) (conditions
appended). This is the CaloChallenge's "classifier metric" (arXiv:2410.21611), as a test with an
error bar.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import scipy.stats
from flax import nnx

from magan.nn.models import ImageEncoder
from magan.nn.supervised import train_module

__all__ = ["auc_score", "classifier_two_sample_test"]


def auc_score(scores_neg, scores_pos) -> float:
    """Area under the ROC curve for scores of negatives and positives: the Mann-Whitney U of the
    positives (:func:`scipy.stats.mannwhitneyu`, ties counted half) over ``n1 n2``."""
    neg, pos = np.ravel(scores_neg).astype(np.float64), np.ravel(scores_pos).astype(np.float64)
    if neg.size == 0 or pos.size == 0:
        raise ValueError(f"auc_score needs scores of both classes; got {neg.size} negatives and "
                         f"{pos.size} positives.")
    # "asymptotic": U does not depend on the method, and its exact p-value is not needed
    u = scipy.stats.mannwhitneyu(pos, neg, method="asymptotic").statistic
    return float(u / (pos.size * neg.size))


def _auc_stderr(auc: float, n_pos: int, n_neg: int) -> float:
    """Hanley & McNeil (1982) standard error of an AUC."""
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    var = (auc * (1 - auc) + (n_pos - 1) * (q1 - auc * auc) + (n_neg - 1) * (q2 - auc * auc))
    return math.sqrt(max(var, 0.0) / (n_pos * n_neg))


class _ImageClassifier(nnx.Module):
    """Images (N, H, W, C) and conditions (N, K) -> (N,) logits; a CNN of channel width
    ``width`` with the conditions as extra channels."""

    def __init__(self, shape, cond_dim: int, width: int, rngs: nnx.Rngs):
        self.encoder = ImageEncoder(shape, width=width, embedding_width=64, cond_dim=cond_dim,
                                    rngs=rngs)
        self.head = nnx.Linear(64, 1, rngs=rngs)
        self.cond_dim = cond_dim

    def __call__(self, x, c):
        return self.head(self.encoder(x, c if self.cond_dim else None))[:, 0]


class _VectorClassifier(nnx.Module):
    """Features (N, F) and conditions (N, K) -> (N,) logits; an MLP of width ``width`` on
    both, concatenated (``dim = F + K``)."""

    def __init__(self, dim: int, width: int, rngs: nnx.Rngs):
        self.l1 = nnx.Linear(dim, width, rngs=rngs)
        self.l2 = nnx.Linear(width, width, rngs=rngs)
        self.out = nnx.Linear(width, 1, rngs=rngs)

    def __call__(self, x, c):
        h = jnp.concatenate([x, c], axis=1)
        h = jax.nn.leaky_relu(self.l2(jax.nn.leaky_relu(self.l1(h))))
        return self.out(h)[:, 0]


def _checked_pair(a, b, conditions_a, conditions_b):
    """``a``, ``b`` and their conditions as float32 arrays (no conditions: (N, 0)); ValueError
    unless the samples are (N, F) or (N, H, W, C) of one sample shape, finite, at least 20 rows
    each, with one (N, K) condition row per sample and the same K."""
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    if a.ndim not in (2, 4) or a.shape[1:] != b.shape[1:]:
        raise ValueError(f"classifier_two_sample_test needs two (N, F) or (N, H, W, C) arrays of "
                         f"the same sample shape; got {a.shape} and {b.shape}.")
    if min(len(a), len(b)) < 20:
        raise ValueError(f"Need at least 20 samples each for a train/test split; got {len(a)} and "
                         f"{len(b)}.")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("classifier_two_sample_test: samples contain NaN or inf.")
    ca = np.zeros((len(a), 0), np.float32) if conditions_a is None else np.asarray(conditions_a,
                                                                                  np.float32)
    cb = np.zeros((len(b), 0), np.float32) if conditions_b is None else np.asarray(conditions_b,
                                                                                  np.float32)
    if ca.shape[1] != cb.shape[1] or len(ca) != len(a) or len(cb) != len(b):
        raise ValueError(f"conditions must be (N, K) with one row per sample and the same K; got "
                         f"{ca.shape} for {len(a)} and {cb.shape} for {len(b)} samples.")
    return a, b, ca, cb


def classifier_two_sample_test(a, b, *, conditions_a=None, conditions_b=None, steps: int = 600,
                               batch_size: int = 128, lr: float = 1e-3, width: int = 16,
                               seed: int = 0, progress: bool | None = None) -> dict:
    """Train on half of ``a`` (label 0) and ``b`` (label 1), report the AUC on the other halves.

    Args:
      a, b: (N, H, W, C) images or (N, F) feature vectors, well scaled (for instance the
        emulator's network space or standardised features); at least 20 rows each.
      conditions_a, conditions_b: optional (N, K) per-event conditions (unit cube), which the
        classifier sees beside each sample.
      steps, batch_size: training steps, each on ``batch_size / 2`` rows of each sample.
    Returns:
      ``{"auc", "auc_stderr", "z_vs_0.5", "n_test", "held_out_loss"}``; ``z_vs_0.5`` is
      ``(AUC - 0.5)`` over the null hypothesis' standard error ``sqrt((n1 + n2 + 1) / (12 n1 n2))``.
    """
    a, b, ca, cb = _checked_pair(a, b, conditions_a, conditions_b)
    rng = np.random.default_rng([seed, 2])
    pa, pb = rng.permutation(len(a)), rng.permutation(len(b))
    ha, hb = len(a) // 2, len(b) // 2
    va, vb = ha * 4 // 5, hb * 4 // 5  # 40 % train, 10 % early stopping, 50 % test
    tr_a, es_a, te_a = pa[:va], pa[va:ha], pa[ha:]
    tr_b, es_b, te_b = pb[:vb], pb[vb:hb], pb[hb:]
    if a.ndim == 2:  # standardise features with the training halves' statistics
        both = np.concatenate([a[tr_a], b[tr_b]])
        mu, sd = both.mean(0), both.std(0) + 1e-6
        a, b = (a - mu) / sd, (b - mu) / sd
        model = _VectorClassifier(a.shape[1] + ca.shape[1], 4 * width, nnx.Rngs(seed))
    else:
        model = _ImageClassifier(a.shape[1:], ca.shape[1], width, nnx.Rngs(seed))
    half = max(1, batch_size // 2)
    brng = np.random.default_rng([seed, 3])

    def next_batch(_):
        ia, ib = brng.choice(tr_a, half), brng.choice(tr_b, half)
        x = np.concatenate([a[ia], b[ib]])
        c = np.concatenate([ca[ia], cb[ib]])
        y = np.concatenate([np.zeros(half), np.ones(half)]).astype(np.float32)
        return jnp.asarray(x), jnp.asarray(c), jnp.asarray(y)

    def loss(m, x, c, y):
        return jnp.mean(optax.sigmoid_binary_cross_entropy(m(x, c), y))

    held_out = (jnp.asarray(np.concatenate([a[es_a], b[es_b]])),
                jnp.asarray(np.concatenate([ca[es_a], cb[es_b]])),
                jnp.asarray(np.concatenate([np.zeros(len(es_a)), np.ones(len(es_b))]), jnp.float32))
    model, losses = train_module(model, loss, next_batch, steps, lr=lr,
                                 desc="two-sample classifier", progress=progress,
                                 held_out=held_out, every=25)
    graphdef, state = nnx.split(model)
    score = jax.jit(lambda s, x, c: nnx.merge(graphdef, s)(x, c))

    def scores(x, c, idx):
        return np.concatenate([np.asarray(score(state, jnp.asarray(x[idx[i:i + 512]]),
                                                jnp.asarray(c[idx[i:i + 512]])))
                               for i in range(0, len(idx), 512)])

    sa, sb = scores(a, ca, te_a), scores(b, cb, te_b)
    auc = auc_score(sa, sb)
    n1, n2 = len(te_b), len(te_a)
    null_se = math.sqrt((n1 + n2 + 1) / (12.0 * n1 * n2))
    return {"auc": auc, "auc_stderr": _auc_stderr(auc, n1, n2), "z_vs_0.5": (auc - 0.5) / null_se,
            "n_test": [int(n2), int(n1)], "steps": steps, "held_out_loss": losses}
