"""Simulator adapters: how magan calls a user's black box.

* :mod:`~magan.simulators.base`: the :class:`Simulator` interface, :class:`SimulatorError`, output
  checks;
* :mod:`~magan.simulators.function`: :class:`FunctionSimulator` (NumPy, host) and
  :class:`JaxSimulator` (traceable);
* :mod:`~magan.simulators.bank`: :class:`BankSimulator` (offline simulations in HDF5/npz);
* :mod:`~magan.simulators.command`: :class:`CommandSimulator` (an external program).
"""

from magan._lazy import exports

_WHERE = {
    "Simulator": "magan.simulators.base",
    "SimulatorError": "magan.simulators.base",
    "FunctionSimulator": "magan.simulators.function",
    "JaxSimulator": "magan.simulators.function",
    "BankSimulator": "magan.simulators.bank",
    "CommandSimulator": "magan.simulators.command",
}
__all__ = sorted(_WHERE)
__getattr__, __dir__ = exports(__name__, _WHERE)
