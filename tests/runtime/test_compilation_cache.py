"""magan's persistent compilation cache: on by default in a per-user folder, off by
MAGAN_COMPILATION_CACHE=0 or set_compilation_cache(False), a user's own JAX cache left alone.
(Times are not asserted: docs/speed.md measures them.)"""

import jax
import jax.numpy as jnp
import pytest
from jax.experimental.compilation_cache import compilation_cache

from magan.runtime import cache


@pytest.fixture
def no_jax_cache(monkeypatch, tmp_path):
    """JAX without a cache folder (the test session's own, from conftest, put back after), and
    a fresh per-user cache home under tmp_path."""
    options = ("jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs",
               "jax_persistent_cache_min_entry_size_bytes")
    saved = {option: getattr(jax.config, option) for option in options}
    for option, jax_default in zip(options, (None, 1.0, 0)):
        jax.config.update(option, jax_default)
    compilation_cache.reset_cache()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv(cache.ENV, raising=False)
    monkeypatch.setattr(cache, "_setting", None)
    monkeypatch.setattr(cache, "_applied", {})
    yield tmp_path
    for option, value in saved.items():
        jax.config.update(option, value)
    compilation_cache.reset_cache()


def _compile_something(k: float):
    jax.jit(lambda x: jnp.tanh(x) * k + 0.5)(jnp.ones(3)).block_until_ready()


def test_on_by_default_in_the_per_user_folder_with_every_program_cached(no_jax_cache):
    folder = no_jax_cache / "home" / "magan" / "jax"
    assert cache.use_compilation_cache() == folder
    assert jax.config.jax_compilation_cache_dir == str(folder)
    assert jax.config.jax_persistent_cache_min_compile_time_secs == cache.MIN_COMPILE_S
    assert jax.config.jax_persistent_cache_min_entry_size_bytes == cache.MIN_ENTRY_BYTES
    assert folder.stat().st_mode & 0o777 == 0o700  # others cannot plant programs in it
    _compile_something(1.25)  # compiles in milliseconds, under JAX's default threshold of 1 s
    assert any(p.name.endswith("-cache") for p in folder.iterdir())


def test_opt_out_by_environment_variable(no_jax_cache, monkeypatch):
    monkeypatch.setenv(cache.ENV, "0")
    assert cache.use_compilation_cache() is None
    assert jax.config.jax_compilation_cache_dir is None
    assert not (no_jax_cache / "home" / "magan").exists()
    monkeypatch.setenv(cache.ENV, str(no_jax_cache / "elsewhere"))
    assert cache.use_compilation_cache() == no_jax_cache / "elsewhere"


def test_opt_out_by_setting_takes_back_what_magan_gave_jax(no_jax_cache):
    assert cache.use_compilation_cache() is not None
    assert cache.set_compilation_cache(False) is None
    assert jax.config.jax_compilation_cache_dir is None
    assert jax.config.jax_persistent_cache_min_compile_time_secs == 1.0  # JAX's own again
    assert jax.config.jax_persistent_cache_min_entry_size_bytes == 0
    _compile_something(2.5)
    assert cache.use_compilation_cache() is None  # the setting wins over the default
    assert cache.set_compilation_cache(path=no_jax_cache / "mine") == no_jax_cache / "mine"
    _compile_something(3.75)
    assert any((no_jax_cache / "mine").iterdir())
    with pytest.raises(ValueError, match="only used with the cache on"):
        cache.set_compilation_cache(False, path=no_jax_cache / "mine")


def test_a_cache_the_user_gave_jax_is_left_alone(no_jax_cache, monkeypatch):
    jax.config.update("jax_compilation_cache_dir", str(no_jax_cache / "users"))
    monkeypatch.setenv(cache.ENV, "0")
    assert cache.use_compilation_cache() == no_jax_cache / "users"
    assert jax.config.jax_compilation_cache_dir == str(no_jax_cache / "users")
    assert jax.config.jax_persistent_cache_min_compile_time_secs == 1.0
