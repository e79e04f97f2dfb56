"""Stage 1, pre-training: the emulator E learns to mimic the simulator, judged by the siamese S.

* :mod:`~magan.pretraining.stage`: :func:`train_emulator`, the stage's orchestration;
* :mod:`~magan.pretraining.state`: the training state, network sizes, optimisers;
* :mod:`~magan.pretraining.step`: the compiled S + E update and the programs that unroll it;
* :mod:`~magan.pretraining.feeding`: host simulations in background threads;
* :mod:`~magan.pretraining.features`: high-level features in units of the simulator's spread.

The losses are in :mod:`magan.losses`, the loop in :mod:`magan.runtime.loop`.
"""

from magan._lazy import exports

_WHERE = {
    "train_emulator": "magan.pretraining.stage",
    "SimulationFeeder": "magan.pretraining.feeding",
    "draw_training_batch": "magan.pretraining.feeding",
    "batch_rng": "magan.pretraining.feeding",
    "siamese_loss": "magan.losses",
    "emulator_loss": "magan.losses",
    "energy_score": "magan.losses",
}
__all__ = sorted(_WHERE)
__getattr__, __dir__ = exports(__name__, _WHERE)
