"""The networks: emulator E, siamese S, parameter generator G, discriminator D (flax.nnx),
the convolutions they are computed with, and the programs that build and run them."""

from magan._lazy import exports

_WHERE = {
    "EmulatorNet": "magan.nn.models",
    "SiameseNet": "magan.nn.models",
    "Discriminator": "magan.nn.models",
    "ParameterGenerator": "magan.nn.models",
    "ImageEncoder": "magan.nn.models",
}
__all__ = sorted(_WHERE)
__getattr__, __dir__ = exports(__name__, _WHERE)
