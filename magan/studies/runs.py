"""What every built-in study run does the same way: open its run folder and get its emulator."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from magan.emulator import Emulator, load_emulator
from magan.runtime.io import atomic_write_json

__all__ = ["reuse_emulator", "start_run"]


def start_run(study: str, preset, cfg, out, seed: int) -> Path:
    """Create the run folder ``out`` and write its ``config.json`` (the resolved study config)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "config.json", {"study": study, "seed": seed,
                                            "preset": preset if isinstance(preset, str) else None,
                                            **dataclasses.asdict(cfg)})
    return out


def reuse_emulator(emulator, out: Path, study: str, space, conditions=None) -> Emulator:
    """A given emulator (object or folder), checked against the study's spaces and copied into
    ``out/emulator`` unless one is there already."""
    emu = emulator if isinstance(emulator, Emulator) else load_emulator(emulator)
    if emu.space != space or emu.conditions != conditions:
        cond = "" if conditions is None else f" with conditions {conditions!r}"
        raise ValueError(f"The emulator was trained over {emu.space!r} with conditions "
                         f"{emu.conditions!r}, not the {study} study's {space!r}{cond}; train a new "
                         "one (omit --emulator).")
    if not (out / "emulator").exists():
        emu.save(out / "emulator")
    return emu
