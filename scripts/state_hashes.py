"""Fingerprints of the trained state, to show that a restructuring changed no result.

Runs the built-in studies end to end (pre-training, emulator quality, fit with bias correction and
feature matching, closure) and a few direct ``magan.fit`` variants, and prints one SHA-256 per
artefact: the emulator's weights (E's EMA and S, bit for bit), the metric histories of
pre-training and the fits, the fitted samples, and each study's summary with its timings removed.
Run it before and after a change; identical lines mean identical behaviour.

    MAGAN_QUIET=1 python scripts/state_hashes.py                  # tiny presets (about 4 min)
    MAGAN_QUIET=1 python scripts/state_hashes.py --line-default   # + the line main job (+10 min)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
from pathlib import Path

import numpy as np


def _digest(obj) -> str:
    h = hashlib.sha256()
    if isinstance(obj, np.ndarray):
        h.update(str(obj.dtype).encode() + str(obj.shape).encode())
        h.update(np.ascontiguousarray(obj).tobytes())
    elif isinstance(obj, bytes):
        h.update(obj)
    else:
        h.update(json.dumps(obj, sort_keys=True).encode())
    return h.hexdigest()[:16]


def _no_timings(obj):
    """``obj`` without the keys that hold wall-clock measurements (they differ run to run)."""
    if isinstance(obj, dict):
        return {k: _no_timings(v) for k, v in obj.items()
                if "timing" not in k and not k.endswith("_s") and k != "steps_per_s"}
    if isinstance(obj, list):
        return [_no_timings(v) for v in obj]
    return obj


def _weights(folder: Path) -> str:
    with np.load(folder / "weights.npz") as z:
        return _digest(b"".join(k.encode() + bytes.fromhex(_digest(z[k])) for k in sorted(z.files)))


def run_hashes(run: Path) -> dict[str, str]:
    """Hashes of one study run folder's artefacts."""
    out = {"emulator weights": _weights(run / "emulator")}
    for name in ("pretrain_metrics.csv", "fit_metrics.csv", "fit_reference_metrics.csv"):
        if (run / name).exists():
            out[name] = _digest((run / name).read_bytes())
    summary = json.loads((run / "summary.json").read_text())
    out["summary (no timings)"] = _digest(_no_timings(summary))
    return out


def fit_hashes(result) -> dict[str, str]:
    rows = [{k: v for k, v in r.items()} for r in result.history + result.reference_history]
    return {"samples": _digest(np.asarray(result.samples)), "history": _digest(rows),
            "mean+std": _digest(np.concatenate([result.mean, result.std]))}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--line-default", action="store_true",
                    help="also run the line study's default preset (the README's main job)")
    ap.add_argument("--keep", default=None, help="keep the run folders in this folder")
    args = ap.parse_args(argv)
    import magan
    from magan.config import FIT_PRESETS, replace
    from magan.studies import calorimeter, line
    from magan.studies.line.simulator import LINE_SPACE, line_fit_features, line_simulator

    table: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory() as scratch:
        tmp = args.keep or scratch
        runs = [("line tiny", line, "tiny"), ("calorimeter tiny", calorimeter, "tiny")]
        if args.line_default:
            runs.append(("line default", line, "default"))
        for label, module, preset in runs:
            folder = Path(tmp) / label.replace(" ", "_")
            module.run(preset, out=folder, seed=0, progress=False)
            table += [(label, k, v) for k, v in run_hashes(folder).items()]
            if label == "line tiny":
                emu = magan.load_emulator(folder / "emulator")
                sim = line_simulator()
                targets = sim.simulate(np.random.default_rng(5),
                                       np.tile(line.DEFAULT_TRUTH, (64, 1)), LINE_SPACE)
                tiny = FIT_PRESETS["tiny"]
                variants = {
                    "fit, no simulator": (tiny, {}),
                    "fit, reference at start": (tiny, {"simulator": sim}),
                    "fit, features + reference at fit": (
                        replace(tiny, feature_weight=10.0, bias_reference="fit", average_last=0.5,
                                bootstrap=False, init="center"),
                        {"simulator": sim, "features": line_fit_features}),
                }
                for name, (cfg, kw) in variants.items():
                    res = magan.fit(emu, targets, cfg, seed=3, progress=False, **kw)
                    table += [(f"line tiny {name}", k, v) for k, v in fit_hashes(res).items()]
    width = max(len(a) + len(b) for a, b, _ in table) + 3
    for a, b, h in table:
        print(f"{(a + ' / ' + b):<{width}} {h}")


if __name__ == "__main__":
    main()
