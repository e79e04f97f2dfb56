"""The README's own-simulator example runs as written (with the tiny presets swapped in)."""

import re
from pathlib import Path

import numpy as np
import pytest

import magan

README = Path(__file__).resolve().parent.parent / "README.md"


@pytest.mark.slow
def test_readme_example_runs(tmp_path, monkeypatch):
    text = README.read_text()
    block = re.search(r"## Your own simulator.*?```python\n(.*?)```", text, re.S).group(1)
    assert block.count("\n") <= 20, "the README promises a short example"
    code = (block.replace('PRETRAIN_PRESETS["default"]', 'PRETRAIN_PRESETS["tiny"]')
                 .replace("magan.fit(emulator, data,",
                          'magan.fit(emulator, data, magan.FIT_PRESETS["tiny"],'))
    assert code != block
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)
    assert scope["fast"].shape == (1000, 32, 32, 1)
    assert np.isfinite(scope["result"].mean).all()
    assert (tmp_path / "runs" / "blob" / "emulator" / "weights.npz").exists()
    saved = magan.load_fit(tmp_path / "runs" / "blob" / "fit.npz")  # the example's result.save
    np.testing.assert_array_equal(saved.samples, scope["result"].samples)
