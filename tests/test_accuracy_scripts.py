"""The accuracy scripts' own helpers, without their long runs: what scripts/line_accuracy.py
writes of a fit's reference sets (it once crashed there after its first fit, when the helper it
calls changed its arguments)."""

import importlib.util
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _script(name: str):
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(ROOT / "scripts"))


def test_line_accuracy_writes_reference_fits_and_their_response_slopes():
    from magan.studies.line.simulator import LINE_SPACE

    script = _script("line_accuracy")
    rng = np.random.default_rng(0)
    at = LINE_SPACE.from_unit(0.3 + 0.4 * rng.random((8, 4)))
    found = LINE_SPACE.from_unit(0.5 + 0.5 * (LINE_SPACE.to_unit(at) - 0.5))  # slope 0.5 each
    cols = script.reference_columns(SimpleNamespace(reference_at=at, reference_means=found))
    assert np.asarray(cols["reference_at"]).shape == (8, 4)
    np.testing.assert_allclose(cols["response_slopes"], [0.5] * 4, atol=1e-6)
    assert script.reference_columns(SimpleNamespace(reference_at=None,
                                                    reference_means=None)) == {}
