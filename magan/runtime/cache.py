"""JAX's persistent compilation cache, on by default for magan.

XLA compiles every program of a run anew in each process: a tiny study spends most of its time
compiling. With the cache, a compiled program is written to a folder and later runs (any seed:
the training programs take the key as an argument) read it back instead of compiling; the results
are the same executables, so the same numbers. Measured in docs/speed.md.

The cache folder is, in order:

* ``set_compilation_cache(False)`` / ``set_compilation_cache(path=...)`` in the program;
* the environment variable ``MAGAN_COMPILATION_CACHE``: ``0`` (or ``false``, ``off``, ``no``)
  turns it off, a folder path chooses the folder;
* ``$XDG_CACHE_HOME/magan/jax``, or ``~/.cache/magan/jax`` without XDG_CACHE_HOME.

magan turns it on when first used (:func:`use_compilation_cache` at the start of
``train_emulator``, ``fit``, ``fit_many`` and ``load_emulator``, which every command and study
goes through), not when imported. A cache the user gave JAX themselves
(``JAX_COMPILATION_CACHE_DIR`` or ``jax.config.update("jax_compilation_cache_dir", ...)``) is
left as it is, its thresholds too.
The setting is JAX's, so it is process-wide: the user's own jitted programs are cached too.

Several processes may share the folder (JAX writes each entry under its own name; an entry read
while another process writes it fails to load and is compiled again, with a warning). Anyone who
can write to the folder can make JAX run code, so it is created readable by its owner only. It
grows without bound; delete it at any time to reclaim the space.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

__all__ = ["ENV", "cache_dir", "default_cache_dir", "set_compilation_cache",
           "use_compilation_cache"]

ENV = "MAGAN_COMPILATION_CACHE"
_OFF = ("0", "false", "off", "no")
_ON = ("", "1", "true", "on", "yes")
# programs that compile faster than this are not written (JAX's default is 1 s, which leaves out
# most of a small run's programs; reading a cached one back takes milliseconds)
MIN_COMPILE_S = 0.0
# and none is too small to write (JAX's default, 0, lets it pick a minimum for the file system)
MIN_ENTRY_BYTES = -1
_THRESHOLDS = {"jax_persistent_cache_min_compile_time_secs": (1.0, MIN_COMPILE_S),
               "jax_persistent_cache_min_entry_size_bytes": (0, MIN_ENTRY_BYTES)}  # JAX's, magan's

_setting: bool | Path | None = None  # set_compilation_cache's choice; None: the environment's
_applied: dict = {}  # what magan gave JAX: {"dir": str, "replaced": {option: JAX's value}}


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/magan/jax``, or ``~/.cache/magan/jax`` without XDG_CACHE_HOME."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "magan" / "jax"


def cache_dir() -> Path | None:
    """The folder magan gives JAX's compilation cache, or None when it is off (module
    docstring: the program's setting, then ``MAGAN_COMPILATION_CACHE``, then the default)."""
    if _setting is False:
        return None
    if isinstance(_setting, Path):
        return _setting
    env = os.environ.get(ENV, "").strip()
    if env.lower() in _OFF:
        return None
    return default_cache_dir() if env.lower() in _ON else Path(env).expanduser()


def set_compilation_cache(enabled: bool = True, path=None) -> Path | None:
    """Turn magan's compilation cache on (in ``path``, default :func:`default_cache_dir`) or
    off (``enabled=False``), overriding ``MAGAN_COMPILATION_CACHE``; applied at once. Returns the
    folder in use, None when off. A cache the user gave JAX themselves is not touched."""
    global _setting
    if not isinstance(enabled, bool):
        raise TypeError(f"set_compilation_cache(enabled={enabled!r}): give True or False; choose "
                        "the folder with path=.")
    if path is not None and not enabled:
        raise ValueError(f"set_compilation_cache(enabled=False, path={str(path)!r}): a folder "
                         "is only used with the cache on; drop one of them.")
    _setting = (Path(path).expanduser() if path is not None else True) if enabled else False
    return use_compilation_cache()


def use_compilation_cache() -> Path | None:
    """Give JAX magan's cache folder (:func:`cache_dir`), creating it, unless the user set one;
    or take it back when the cache was turned off. Idempotent and cheap after the first call.
    Returns the folder JAX caches in (the user's own included), None when none."""
    import jax

    want = cache_dir()
    current = jax.config.jax_compilation_cache_dir
    if current is not None and current != _applied.get("dir"):
        return Path(current)  # the user's own cache
    if want is None:
        if _applied:
            _release(jax)
        return None
    if _applied.get("dir") == str(want):
        return want
    try:
        want.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as err:
        warnings.warn(f"magan's compilation cache is off: cannot create {str(want)!r} ({err}). "
                      f"Set {ENV} to a folder you may write to, or to 0.", stacklevel=2)
        return None
    _give(jax, str(want))
    return want


def _give(jax, folder: str) -> None:
    """Point JAX's cache at ``folder`` (re-initialised if magan had given it another) and set
    its thresholds to magan's (:data:`MIN_COMPILE_S`, :data:`MIN_ENTRY_BYTES`) where they are
    JAX's defaults (a user's own values stay)."""
    from jax.experimental.compilation_cache import compilation_cache

    switching = bool(_applied)
    jax.config.update("jax_compilation_cache_dir", folder)
    if not switching:
        replaced = {}
        for option, (default, ours) in _THRESHOLDS.items():
            if getattr(jax.config, option) == default:
                jax.config.update(option, ours)
                replaced[option] = default
        _applied["replaced"] = replaced
    else:
        compilation_cache.reset_cache()
    _applied["dir"] = folder


def _release(jax) -> None:
    """Undo :func:`_give`: no cache folder, JAX's thresholds as they were."""
    from jax.experimental.compilation_cache import compilation_cache

    jax.config.update("jax_compilation_cache_dir", None)
    for option, value in _applied["replaced"].items():
        jax.config.update(option, value)
    compilation_cache.reset_cache()
    _applied.clear()
