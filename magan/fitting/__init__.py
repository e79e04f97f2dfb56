"""Stage 2, fitting: with E frozen, G and D play on the target images; G's outputs are the fit.

* :mod:`~magan.fitting.stage`: :func:`fit` and :func:`fit_many` (many target sets in one
  program), the stage's orchestration (inputs, bias-correction
  passes, result);
* :mod:`~magan.fitting.replicas`: fitting image sets with replicas of (G, D) in the training loop;
* :mod:`~magan.fitting.state`: G's and D's networks, optimisers and the fit's state;
* :mod:`~magan.fitting.step`: the compiled step;
* :mod:`~magan.fitting.features`: feature matching's standardised features;
* :mod:`~magan.fitting.result`: :class:`FitResult`, saved by ``FitResult.save`` and read by
  :func:`load_fit`.

The losses are in :mod:`magan.losses`, the loop in :mod:`magan.runtime.loop`.
"""

from magan._lazy import exports

_WHERE = {
    "fit": "magan.fitting.stage",
    "fit_many": "magan.fitting.stage",
    "FitResult": "magan.fitting.result",
    "load_fit": "magan.fitting.result",
    "feature_energy_distance": "magan.losses",
    "feature_scales": "magan.fitting.features",
    "discriminator_loss": "magan.losses",
}
__all__ = sorted(_WHERE)
__getattr__, __dir__ = exports(__name__, _WHERE)
