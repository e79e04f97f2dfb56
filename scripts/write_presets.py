"""Write each built-in study's presets to ``studies/<study>/presets.json``.

The presets live in the library (each study's record in :mod:`magan.studies.registry`, also
``magan.studies.<study>.PRESETS``); the JSON files are a readable copy for the study folders, kept
in sync by ``tests/test_config.py``. Run after changing a preset:

    python scripts/write_presets.py
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from magan.studies.registry import studies

STUDIES = {study.name: study.presets for study in studies()}
ROOT = Path(__file__).resolve().parent.parent


def presets_json(presets: dict) -> str:
    """The JSON text of a study's presets: each preset's config as nested dicts."""
    return json.dumps({name: dataclasses.asdict(cfg) for name, cfg in presets.items()},
                      indent=2) + "\n"


def main():
    """Write ``studies/<study>/presets.json`` for every built-in study."""
    for study, presets in STUDIES.items():
        path = ROOT / "studies" / study / "presets.json"
        path.write_text(presets_json(presets))
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
