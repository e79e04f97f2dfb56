"""Lazy package namespaces (PEP 562): a name is imported from its module on first use, so
``import magan`` or a NumPy-only simulator program does not pay for importing JAX."""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings


def exports(package: str, where: dict[str, str]):
    """``(__getattr__, __dir__)`` for ``package`` whose public names live in the modules
    ``where[name]``; each name is imported once and then kept in the package's namespace."""
    def __getattr__(name: str):
        if name in where:
            value = getattr(importlib.import_module(where[name]), name)
            setattr(sys.modules[package], name, value)
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__():
        return sorted(set(vars(sys.modules[package])) | set(where))

    return __getattr__, __dir__


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves the module paths of magan 0.1's flat layout (``magan.networks``, ``magan.io``, ...)
    as the modules that now hold their code, with a DeprecationWarning naming the new path."""

    def __init__(self, moved: dict[str, str]):
        self.moved = moved
        self.specs: dict = {}  # new module name -> its own spec, restored by exec_module

    def find_spec(self, fullname, path=None, target=None):
        if fullname in self.moved:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        new = self.moved[spec.name]
        warnings.warn(f"{spec.name} moved to {new}; the old path will be removed in the next "
                      "release.", DeprecationWarning, stacklevel=2)
        module = importlib.import_module(new)
        self.specs.setdefault(new, module.__spec__)
        return module

    def exec_module(self, module):
        # the import system has stamped the old name's spec on the module: give it back its own
        module.__spec__ = self.specs[module.__name__]


def alias_moved_modules(moved: dict[str, str]) -> None:
    """Install the finder for the old module paths ``moved`` (old -> new), once."""
    if not any(isinstance(f, _Alias) for f in sys.meta_path):
        sys.meta_path.append(_Alias(moved))
