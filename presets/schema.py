"""One schema for every preset kind, reporting every problem at once (STYLE.md rule 7).

A schema is a dict ``key -> Field``.  :func:`verify` walks a loaded YAML mapping and returns a list
of problems, each naming the file and the key path, instead of stopping at the first one.
Cross-file rules (a template's room must exist, its roles must be in the lexicon) are checked by
:func:`stase.presets.verify_all`.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from stase.core.placement import REVERB_DB_RANGE


@dataclass(frozen=True)
class Field:
    """What one key may hold.

    kind : "str" | "number" | "int" | "bool" | "list" | "map" | "any"
    items : Field for list elements; schema (dict) for map values when ``kind == "map"``
    fields : nested schema for an object (``kind == "object"``)
    """

    kind: str
    required: bool = False
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple | None = None
    pattern: str | None = None
    items: "Field | None" = None
    fields: dict[str, "Field"] | None = None
    min_items: int | None = None
    max_items: int | None = None
    allow_extra: bool = False
    doc: str = ""


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))


def _check_value(spec: Field, value: Any, path: str, problems: list[str]) -> None:
    kind = spec.kind
    if kind == "any":
        return
    if kind == "str":
        if not isinstance(value, str) or not value.strip():
            problems.append(f"{path}: must be a non-empty string, got {value!r}")
            return
        if spec.pattern and not re.fullmatch(spec.pattern, value):
            problems.append(f"{path}: {value!r} does not match {spec.pattern}")
    elif kind in ("number", "int"):
        if not _is_number(value) or (kind == "int" and not isinstance(value, int)):
            problems.append(f"{path}: must be {'an integer' if kind == 'int' else 'a finite number'}, got {value!r}")
            return
        if spec.minimum is not None and value < spec.minimum:
            problems.append(f"{path}: {value} is below the minimum {spec.minimum}")
        if spec.maximum is not None and value > spec.maximum:
            problems.append(f"{path}: {value} is above the maximum {spec.maximum}")
    elif kind == "bool":
        if not isinstance(value, bool):
            problems.append(f"{path}: must be true or false, got {value!r}")
            return
    elif kind == "list":
        if not isinstance(value, list):
            problems.append(f"{path}: must be a list, got {type(value).__name__}")
            return
        if spec.min_items is not None and len(value) < spec.min_items:
            problems.append(f"{path}: needs at least {spec.min_items} items, has {len(value)}")
        if spec.max_items is not None and len(value) > spec.max_items:
            problems.append(f"{path}: allows at most {spec.max_items} items, has {len(value)}")
        if spec.items is not None:
            for i, item in enumerate(value):
                _check_value(spec.items, item, f"{path}[{i}]", problems)
    elif kind == "object":
        if not isinstance(value, dict):
            problems.append(f"{path}: must be a mapping, got {type(value).__name__}")
            return
        problems.extend(verify(value, spec.fields or {}, path, allow_extra=spec.allow_extra))
    elif kind == "map":
        if not isinstance(value, dict):
            problems.append(f"{path}: must be a mapping, got {type(value).__name__}")
            return
        for key, item in value.items():
            if spec.items is not None:
                _check_value(spec.items, item, f"{path}.{key}", problems)
    else:  # pragma: no cover - a schema bug, not a user error
        raise ValueError(f"unknown field kind {kind!r} in schema at {path}")
    if spec.choices is not None and value not in spec.choices:
        problems.append(f"{path}: {value!r} is not one of {list(spec.choices)}")


def verify(data: Any, schema: dict[str, Field], where: str, allow_extra: bool = False) -> list[str]:
    """All problems of ``data`` against ``schema``; ``where`` prefixes each message (file or path)."""
    if not isinstance(data, dict):
        return [f"{where}: must be a mapping, got {type(data).__name__}"]
    problems: list[str] = []
    for key, spec in schema.items():
        if key not in data:
            if spec.required:
                problems.append(f"{where}.{key}: is required")
            continue
        _check_value(spec, data[key], f"{where}.{key}", problems)
    if not allow_extra:
        for key in data:
            if key not in schema:
                problems.append(f"{where}.{key}: unknown key (allowed: {', '.join(schema)})")
    return problems


# ---------------------------------------------------------------------------------------------
# Schemas of the preset kinds.  Rooms are read by stase.dsp.rooms, templates and the lexicon by agent.
# ---------------------------------------------------------------------------------------------
ID_PATTERN = r"[a-z][a-z0-9_]*"

ROOM_SCHEMA: dict[str, Field] = {
    "id": Field("str", required=True, pattern=ID_PATTERN),
    "name": Field("str", required=True),
    "description": Field("str", required=True),
    "keywords": Field("list", items=Field("str")),
    "dimensions_m": Field("list", required=True, items=Field("number", minimum=1.0, maximum=500.0),
                          min_items=3, max_items=3, doc="length x width x height"),
    "rt60_s": Field("number", required=True, minimum=0.0, maximum=12.0,
                    doc="broadband reverberation time (T60)"),
    "source": Field("str", doc="where the acoustic figures come from"),
    "params": Field("object", allow_extra=True, fields={}, doc="engine-specific extra parameters"),
}

ROLE_PLACEMENT_SCHEMA: dict[str, Field] = {
    "role": Field("str", required=True, pattern=ID_PATTERN),
    "name": Field("str", doc="track name for this seat when a template has two seats of one role"),
    "azimuth_deg": Field("number", required=True, minimum=-180.0, maximum=180.0),
    "elevation_deg": Field("number", minimum=-90.0, maximum=90.0),
    "distance_m": Field("number", required=True, minimum=0.1, maximum=100.0),
    "gain_db": Field("number", minimum=-60.0, maximum=24.0),
}

TEMPLATE_SCHEMA: dict[str, Field] = {
    "id": Field("str", required=True, pattern=ID_PATTERN),
    "name": Field("str", required=True),
    "description": Field("str", required=True),
    "keywords": Field("list", required=True, items=Field("str"), min_items=1),
    "room": Field("str", required=True, pattern=ID_PATTERN),
    "roles": Field("list", required=True, min_items=1, max_items=6,
                   items=Field("object", fields=ROLE_PLACEMENT_SCHEMA)),
    "layout_source": Field("str", required=True, doc="where the stage layout comes from"),
    "music": Field("object", allow_extra=True, fields={}, doc="defaults for the stem generator"),
    "reverb_db": Field("number", minimum=REVERB_DB_RANGE[0], maximum=REVERB_DB_RANGE[1],
                       doc="the template's default wetness relative to its room's physical level, dB"),
}

LEXICON_ROLE_SCHEMA: dict[str, Field] = {
    "family": Field("str", required=True),
    "gm_program": Field("int", required=True, minimum=0, maximum=127,
                        doc="General MIDI program the sampled voices play (0-based, GM 1 table)"),
    "aliases": Field("list", required=True, items=Field("str")),
}

LEXICON_SCHEMA: dict[str, Field] = {
    "roles": Field("map", required=True, items=Field("object", fields=LEXICON_ROLE_SCHEMA)),
}

SCHEMAS: dict[str, dict[str, Field]] = {
    "room": ROOM_SCHEMA,
    "template": TEMPLATE_SCHEMA,
    "lexicon": LEXICON_SCHEMA,
}
