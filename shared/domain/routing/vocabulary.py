"""The rules-v1 router's vocabulary and patterns, read once from the data file `rules-v1.toml` beside this module.

Cue tables, word and phrase lists, and regular expressions are data, so the router's rules are code and its
vocabulary is not; `rules.py` and `followups.py` compile what is here at import. See the file's header for the
format of each table.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

Cues = tuple[tuple[str, str, float], ...]


def _load() -> dict[str, Any]:
    with (Path(__file__).parent / "rules-v1.toml").open("rb") as file:
        return tomllib.load(file)


_DATA = _load()

CUES: dict[str, Cues] = {
    name: tuple((str(label), str(alternatives), float(points)) for label, alternatives, points in table)
    for name, table in _DATA["cues"].items()
}
PATTERNS: dict[str, str] = dict(_DATA["patterns"])
MATH: dict[str, Any] = dict(_DATA["math"])
TEXT: dict[str, Any] = dict(_DATA["text"])
FOLLOW_UPS: dict[str, Any] = dict(_DATA["follow_ups"])
CALIBRATION: dict[str, Any] = dict(_DATA["calibration"])
