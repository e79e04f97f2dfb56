"""The line simulator as an external program, for :class:`magan.CommandSimulator` demos and tests:

    python -m magan.studies.line.command PARAMS.npy OUT.npy SEED

reads (N, 4) parameters, writes (N, 28, 28, 1) float32 images."""

import sys

import numpy as np

from magan.studies.line.simulator import simulate_lines


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 3:
        print("usage: python -m magan.studies.line.command PARAMS.npy OUT.npy SEED",
              file=sys.stderr)
        return 2
    params = np.load(argv[0])
    np.save(argv[1], simulate_lines(np.random.default_rng(int(argv[2])), params))
    return 0


if __name__ == "__main__":
    sys.exit(main())
