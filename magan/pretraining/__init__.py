"""Stage 1, pre-training: the emulator E learns to mimic the simulator, judged by the siamese S."""

from magan._lazy import exports

_WHERE = {
    "train_emulator": "magan.pretraining.orchestration",
    "SimulationFeeder": "magan.pretraining.orchestration",
    "siamese_loss": "magan.pretraining.orchestration",
    "emulator_loss": "magan.pretraining.orchestration",
    "energy_score": "magan.pretraining.orchestration",
}
__all__ = sorted(_WHERE)
__getattr__, __dir__ = exports(__name__, _WHERE)
