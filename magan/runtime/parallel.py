"""Beyond one device, on JAX's own engine: a data-parallel mesh and multi-host start-up.

Pre-training is data parallel: a :class:`jax.sharding.Mesh` with one axis ``"data"`` over every
device of every process; each step's batch is split along ``"data"`` and the parameters and
optimiser states are replicated. The step itself is the same jitted function as on one device;
XLA's SPMD partitioner inserts the gradient all-reduce. So a run's result does not depend on the
device count beyond floating-point summation order (tests/runtime/test_parallel.py checks 4 forced
CPU devices against 1).

Several hosts: call :func:`initialize` first (``magan`` commands do). It runs
``jax.distributed.initialize()`` when the environment describes a multi-process job (Slurm with
more than one task, or ``JAX_COORDINATOR_ADDRESS`` set, with ``JAX_NUM_PROCESSES`` and
``JAX_PROCESS_ID``) and does nothing otherwise. Every process then simulates its share of the
batch (``batch_size / process_count`` points, its own random stream), and only process 0 writes
files (:func:`is_main_process`, honoured by :mod:`magan.runtime.io` and the figures).
"""

from __future__ import annotations

import os

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

__all__ = ["initialize", "is_main_process", "data_mesh", "shard_batch", "replicate",
           "to_local"]

_initialized = False


def _multi_process_env() -> bool:
    if os.environ.get("JAX_COORDINATOR_ADDRESS"):
        return True
    try:
        return int(os.environ.get("SLURM_NTASKS", "1")) > 1 and "SLURM_JOB_ID" in os.environ
    except ValueError:
        return False


def _env_int(name: str) -> int | None:
    text = os.environ.get(name)
    if text is None or text == "":
        return None
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{name}={text!r} is not an integer; set it to the process count "
                         "(JAX_NUM_PROCESSES) or this process's rank, 0 to count - 1 "
                         "(JAX_PROCESS_ID), or unset it under Slurm.") from None


def initialize() -> bool:
    """Start JAX's multi-process runtime when the environment asks for it; True if it did.

    ``JAX_COORDINATOR_ADDRESS`` (host:port of process 0), ``JAX_NUM_PROCESSES`` and
    ``JAX_PROCESS_ID`` describe the job by hand (JAX itself reads only the first); under Slurm
    (more than one task) JAX detects all three. tests/runtime/test_parallel.py starts two processes
    on this machine this way.
    """
    global _initialized
    if _initialized or not _multi_process_env():
        return False
    n, rank = _env_int("JAX_NUM_PROCESSES"), _env_int("JAX_PROCESS_ID")
    if n is not None and rank is not None and not 0 <= rank < n:
        raise ValueError(f"JAX_PROCESS_ID={rank} is outside 0..{n - 1} (JAX_NUM_PROCESSES={n}).")
    jax.distributed.initialize(num_processes=n, process_id=rank)
    _initialized = True
    return True


def is_main_process() -> bool:
    """True on process 0 (and in every single-process run): the one that writes files."""
    return jax.process_index() == 0


def data_mesh(devices=None) -> Mesh:
    """A 1-D mesh with axis ``"data"`` over ``devices`` (default: all devices of all processes)."""
    devs = np.asarray(jax.devices() if devices is None else devices)
    return Mesh(devs.reshape(-1), ("data",))


def replicate(tree, mesh: Mesh):
    """Place every array of ``tree`` on every device of ``mesh``."""
    return jax.device_put(tree, NamedSharding(mesh, PartitionSpec()))


def shard_batch(arrays, mesh: Mesh, axis: int = 0):
    """Split each array's batch axis (``axis``: 0, or 1 under a leading steps axis) over
    ``"data"``. With several processes each passes its own rows (process-local data) and gets the
    global array back."""
    sharding = NamedSharding(mesh, PartitionSpec(*([None] * axis), "data"))
    if jax.process_count() == 1:
        return jax.device_put(tuple(arrays), sharding)
    return tuple(jax.make_array_from_process_local_data(sharding, np.asarray(a)) for a in arrays)


def to_local(tree):
    """Bring (replicated) arrays back as ordinary single-device arrays."""
    def local(a):
        return jax.numpy.asarray(np.asarray(a.addressable_data(0)) if hasattr(a, "addressable_data")
                                 else np.asarray(a))

    return jax.tree.map(local, tree)
