"""The one schema of a source placement: its fields, units and bounds (STYLE.md rule 15).

The rules are data: ``stase/core/placement.schema.json`` (JSON Schema, draft 2020-12), checked with
``jsonschema`` through :mod:`stase.core.schemas`.  This module reads its fields and bounds from
that file at import, so the Python constants below are never a second list.

Holds
-----
PLACEMENT_SCHEMA  the schema (parsed placement.schema.json); PLACEMENT_SCHEMA_ID its ``$id``
NUMERIC_FIELDS    the numeric placement fields, in order (azimuth, elevation, distance, gain)
PLACEMENT_FIELDS  every field a placement update may carry (numeric + mode + role + reverb_db)
FIELD_SPECS       {name: FieldSpec(kind, unit, minimum, maximum, exclusive_minimum, doc)}
GAIN_DB_RANGE, REVERB_DB_RANGE, MAX_TRACK_NAME_CHARS, MAX_ROLE_CHARS, MODES   (from the schema)
NORMALISED_RANGES {field: (low, high)} where a normalised placement lies (azimuth, elevation, distance)
MAX_TRACKS, MAX_PROMPT_CHARS    request limits (not placement fields)
placement_problems(fields, where) -> (accepted, problems)     every problem at once
check_placement_fields(fields, where) -> accepted   (raises InputError listing every problem)
field_problem(key, value), track_name_problem(name) -> str | None

The plan (``stase.core.plan``, whose sources refer to these fields by ``$ref``), the daemon's session, OSC,
MIDI, the command queue, the preset seats and the REAPER scripts (``tools/gen_lua_fields.py``) all
take their bounds from here, so a value refused in one place is refused in every place.

Bounds (see the schema's descriptions for why)
------
* ``azimuth_deg``: any finite number (wrapped to (-180, 180]).
* ``elevation_deg``: any finite number (clamped to [-90, 90]).
* ``distance_m``: > 0 (clamped to [MIN_DISTANCE_M, MAX_DISTANCE_M]).
* ``gain_db``: [-120, +24] dB; beyond is a typo or an attack (``1e308``), refused, not clamped.
* ``reverb_db``: [-60, +12] dB, a source's (or the plan's) wetness relative to the room's level.
* ``mode``: one of MODES (conventions.LOCALISATION_MODES); ``role`` and ``track``: strings of at most 64 / 128 characters.
* NaN, infinities and ints too large for a float are refused everywhere.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from stase.core.errors import InputError
from stase.core.schemas import PLACEMENT_SCHEMA_PATH, load_schema, schema_problems, shown, validator

PLACEMENT_SCHEMA: dict[str, Any] = load_schema(PLACEMENT_SCHEMA_PATH)
PLACEMENT_SCHEMA_ID: str = PLACEMENT_SCHEMA["$id"]
_DEFS: dict[str, dict[str, Any]] = PLACEMENT_SCHEMA["$defs"]

#: Most tracks a session, a plan or a DAW mirror holds (a replied track list stays one datagram).
MAX_TRACKS = 256
#: Longest request text (prompt, chat, edit request) in characters: a producer's paragraph is
#: a few hundred; the cap keeps every parser pattern's work small (issue 14 #2).
MAX_PROMPT_CHARS = 4000
PLACEMENT_FIELDS: tuple[str, ...] = tuple(PLACEMENT_SCHEMA["properties"])
NUMERIC_FIELDS: tuple[str, ...] = tuple(PLACEMENT_SCHEMA["x-numeric-fields"])
GAIN_DB_RANGE = (float(_DEFS["gain_db"]["minimum"]), float(_DEFS["gain_db"]["maximum"]))
REVERB_DB_RANGE = (float(_DEFS["reverb_db"]["minimum"]), float(_DEFS["reverb_db"]["maximum"]))
MAX_TRACK_NAME_CHARS: int = _DEFS["track"]["maxLength"]
MAX_ROLE_CHARS: int = _DEFS["role"]["maxLength"]
#: The accepted ``mode`` values (equal to stase.core.conventions.LOCALISATION_MODES; tested).
MODES: tuple[str, ...] = tuple(_DEFS["mode"]["enum"])
#: Where a normalised placement lies (``SourcePlacement.normalised``); hand-written stored data
#: (the preset seats) must lie there already.
NORMALISED_RANGES: dict[str, tuple[float, float]] = {
    name: (float(_DEFS[f"normalised_{name}"]["minimum"]), float(_DEFS[f"normalised_{name}"]["maximum"]))
    for name in ("azimuth_deg", "elevation_deg", "distance_m")}


@dataclass(frozen=True)
class FieldSpec:
    """One placement field, as the schema states it: kind, unit and inclusive bounds (None = unbounded)."""

    kind: str                      # "number", "mode" or "role"
    unit: str = ""
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    doc: str = ""


def _spec(name: str) -> FieldSpec:
    d = _DEFS[name]
    kind = "number" if d.get("type") == "number" else name
    low = d.get("minimum", d.get("exclusiveMinimum"))
    return FieldSpec(kind, d.get("x-unit", ""), None if low is None else float(low),
                     None if d.get("maximum") is None else float(d["maximum"]),
                     "exclusiveMinimum" in d, d.get("description", ""))


FIELD_SPECS: dict[str, FieldSpec] = {name: _spec(name) for name in PLACEMENT_FIELDS}


_FIELD_CHECKS: dict[str, Any] = {}


def _check_of(name: str):
    """The validator of one field's value (built on first use: jsonschema is imported only then)."""
    if not _FIELD_CHECKS:
        _FIELD_CHECKS.update({key: validator({"$ref": f"{PLACEMENT_SCHEMA_ID}#/$defs/{key}"})
                              for key in _DEFS})
    return _FIELD_CHECKS[name]


def _check_of_placement():
    return validator(PLACEMENT_SCHEMA_PATH)


def field_problem(key: str, value: Any) -> str | None:
    """What is wrong with one field's value (None when it is acceptable)."""
    if key not in FIELD_SPECS:
        return f"unknown field {shown(key)}; accepted: {PLACEMENT_FIELDS}"
    problems = schema_problems(_check_of(key), value, key)
    return problems[0] if problems else None


def track_name_problem(name: Any) -> str | None:
    """What is wrong with a track name (None when it is acceptable)."""
    problems = schema_problems(_check_of("track"), name, "track")
    return problems[0] if problems else None


def _fast_accept(fields: dict[str, Any]) -> dict[str, Any] | None:
    """The accepted fields when every one is a number or mode plainly inside the schema's bounds
    (:data:`FIELD_SPECS`, read from the same schema), else None (then jsonschema decides and
    words the problems).  A live move checks its fields on every block: jsonschema's 75-125 us
    per call cost two thirds of the moving-source budget, this takes about 2 us."""
    accepted: dict[str, Any] = {}
    for key, value in fields.items():
        spec = FIELD_SPECS.get(key)
        if spec is None:
            return None
        if spec.kind == "number":
            if type(value) is not float and (type(value) is not int or abs(value) > 2 ** 53):
                return None
            x = float(value)
            if x != x or x in (_INF, -_INF):
                return None
            if spec.minimum is not None and (x <= spec.minimum if spec.exclusive_minimum else x < spec.minimum):
                return None
            if spec.maximum is not None and x > spec.maximum:
                return None
            accepted[key] = x
        elif spec.kind == "mode" and value in MODES and type(value) is str:
            accepted[key] = value
        else:
            return None
    return accepted


_INF = float("inf")


def placement_problems(fields: dict[str, Any], where: str = "") -> tuple[dict[str, Any], list[str]]:
    """Check a (partial) placement update against the schema; returns ``(accepted fields, problems)``.

    Every problem is reported at once; the accepted fields are those without one.  Numbers come
    back as ``float``; nothing is clamped here (see ``SourcePlacement.normalised``).  ``where``
    prefixes each problem (e.g. ``"sources[2]."``).
    """
    if not isinstance(fields, dict):
        return {}, [f"{where}placement must be an object of fields, got {type(fields).__name__}"]
    fast = _fast_accept(fields)
    if fast is not None:
        return fast, []
    problems = schema_problems(_check_of_placement(), fields, where.rstrip("."))
    accepted: dict[str, Any] = {}
    for key, value in fields.items():
        if key in FIELD_SPECS and (not problems or _check_of(key).is_valid(value)):
            accepted[key] = float(value) if FIELD_SPECS[key].kind == "number" else value
    return accepted, problems


def check_placement_fields(fields: dict[str, Any], where: str = "") -> dict[str, Any]:
    """Like :func:`placement_problems`, raising one ``InputError`` that lists every problem."""
    accepted, problems = placement_problems(fields, where)
    if problems:
        raise InputError("; ".join(problems))
    return accepted
