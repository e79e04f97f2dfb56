"""Bad input during training: NaN/inf from the simulator (stop or drop and count) and non-finite
losses (stop, keep the last good checkpoint, say so)."""

import numpy as np
import pytest

from magan import FunctionSimulator, PretrainConfig, SimulatorError, train_emulator
from magan.config import replace
from magan.studies.line.simulator import IMAGE_SHAPE, LINE_SPACE, simulate_lines

TINY = PretrainConfig(steps=20, batch_size=8, noise_dim=4, emulator_width=4, siamese_width=4,
                      r1_every=1, steps_per_call=1,
                      siamese_embedding_width=16, log_every=10, checkpoint_every=10)


def nan_for_steep_lines(rng, params):
    out = simulate_lines(rng, params)
    out[params[:, 0] > 0.3] = np.nan  # the simulator fails for m > 0.3 (20 % of the space)
    return out


def test_simulator_nan_stops_by_default_and_can_be_dropped_and_counted():
    sim = FunctionSimulator(nan_for_steep_lines, IMAGE_SHAPE, name="flaky")
    with pytest.raises(SimulatorError, match=r"flaky returned NaN or inf in image \d+ of the "
                                             r"batch, made at parameters m=0\.[3-5]"):
        train_emulator(sim, LINE_SPACE, TINY, progress=False)
    with pytest.warns(UserWarning, match=r"\d+ simulations returned NaN or inf and were replaced"):
        emu = train_emulator(sim, LINE_SPACE, replace(TINY, on_nonfinite="drop"), progress=False)
    dropped = emu.info["pretrain"]["timing"]["dropped_simulations"]
    assert 0.1 < dropped / (20 * 8) < 0.35  # about a fifth of the points
    assert all(np.isfinite(v) for row in emu.info["pretrain"]["history"] for v in row.values())


class Exploding:
    """Normal images for the first 12 batches, then values whose squares overflow float32."""

    def __init__(self):
        self.calls = 0

    def __call__(self, rng, params):
        self.calls += 1
        out = simulate_lines(rng, params)
        return out * 1e30 if self.calls > 24 else out


def test_non_finite_loss_stops_and_points_to_the_last_good_checkpoint(tmp_path):
    sim = FunctionSimulator(Exploding(), IMAGE_SHAPE, name="exploding")
    with pytest.raises(FloatingPointError, match=r"Non-finite pre-training loss at step 20(.|\n)*"
                                                 r"last good checkpoint \(step 10\)"):
        train_emulator(sim, LINE_SPACE, replace(TINY, prefetch=1), workdir=tmp_path,
                       progress=False)
    assert (tmp_path / "checkpoints" / "pretrain" / "10").is_dir()
    assert not (tmp_path / "checkpoints" / "pretrain" / "20").exists()


def test_target_images_with_a_wrong_dtype_or_shape_are_refused():
    from magan.emulator import check_images

    with pytest.raises(ValueError, match="dtype bool is not numeric"):
        check_images(np.zeros((2, 28, 28, 1), bool), (28, 28, 1), "target_images")
    with pytest.raises(ValueError, match=r"target_images: expected shape \(N, 28, 28, 1\), got "
                                         r"\(2, 28, 28, 3\)"):
        check_images(np.zeros((2, 28, 28, 3)), (28, 28, 1), "target_images")


def _nan_for_steep_lines_jax(key, params):
    import jax.numpy as jnp

    from magan.studies.line.simulator import line_jax_simulator

    out = line_jax_simulator().simulate_jax(key, params)
    return jnp.where(params[:, :1, None, None] > 0.3, jnp.nan, out)


def test_jax_simulator_nan_is_blamed_on_the_simulator():
    """A JaxSimulator's NaN is reported as the simulator's (not as a learning-rate problem), and
    on_nonfinite='drop', which cannot act inside the compiled step, is refused at once."""
    from magan import JaxSimulator

    sim = JaxSimulator(_nan_for_steep_lines_jax, IMAGE_SHAPE, name="flaky_jax")
    with pytest.raises(SimulatorError, match=r"JaxSimulator flaky_jax returns NaN or inf images "
                                             r"\(for instance at m=0\.[3-5]"):
        train_emulator(sim, LINE_SPACE, TINY, progress=False)
    with pytest.raises(ValueError, match="cannot drop images of the JaxSimulator flaky_jax"):
        train_emulator(sim, LINE_SPACE, replace(TINY, on_nonfinite="drop"), progress=False)
