"""The one schema of a source placement: its fields, units and bounds (STYLE.md rule 15).

Holds
-----
NUMERIC_FIELDS    the numeric placement fields, in order (azimuth, elevation, distance, gain)
PLACEMENT_FIELDS  every field a placement update may carry (numeric + mode + role + reverb_db)
FIELD_SPECS       {name: FieldSpec(kind, unit, minimum, maximum, doc)}
GAIN_DB_RANGE, REVERB_DB_RANGE, MAX_TRACK_NAME_CHARS, MAX_ROLE_CHARS, MAX_TRACKS, MAX_PROMPT_CHARS
placement_problems(fields, where, partial) -> (accepted, problems)
check_placement_fields(fields, where) -> accepted   (raises InputError listing every problem)

The plan (``stase.core.plan``), the daemon's session, OSC, MIDI and the command queue all take their
bounds from here, so a value refused in one place is refused in every place.

Bounds
------
* ``azimuth_deg``: any finite number (wrapped to (-180, 180]).
* ``elevation_deg``: any finite number (clamped to [-90, 90]).
* ``distance_m``: > 0 (clamped to [MIN_DISTANCE_M, MAX_DISTANCE_M]).
* ``gain_db``: [-120, +24] dB.  -120 dB is below the 24-bit noise floor (about -144 dBFS is the
  floor, -120 dB leaves a fader's "off" audible as silence); +24 dB is the largest boost a DAW
  fader offers (REAPER +12 dB, Ardour +6 dB; trim adds up to +24 dB in REAPER).  Anything beyond
  is a typo or an attack (``1e308``), and is refused, not clamped.
* ``reverb_db``: [-60, +12] dB, a source's wetness relative to the room's physical level (also the
  plan's, ``stase.core.plan``); -60 dB is a dry render in practice, +12 dB a drenched one (the reverb
  four times louder than the room makes it).  NaN and values beyond are refused.
* ``role`` and ``track``: strings of at most 64 / 128 characters (replies stay small).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from stase.core.conventions import LOCALISATION_MODES
from stase.core.errors import InputError

GAIN_DB_RANGE = (-120.0, 24.0)
REVERB_DB_RANGE = (-60.0, 12.0)
MAX_TRACK_NAME_CHARS = 128
MAX_ROLE_CHARS = 64
#: Most tracks a session, a plan or a DAW mirror holds (a replied track list stays one datagram).
MAX_TRACKS = 256
#: Longest request text (prompt, chat, edit request) in characters: a producer's paragraph is
#: a few hundred; the cap keeps every parser pattern's work small (issue 14 #2).
MAX_PROMPT_CHARS = 4000
NUMERIC_FIELDS = ("azimuth_deg", "elevation_deg", "distance_m", "gain_db")
PLACEMENT_FIELDS = NUMERIC_FIELDS + ("mode", "role", "reverb_db")


@dataclass(frozen=True)
class FieldSpec:
    """One placement field: its kind, unit and inclusive bounds (None = unbounded)."""

    kind: str                      # "number", "mode" or "role"
    unit: str = ""
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    doc: str = ""


FIELD_SPECS: dict[str, FieldSpec] = {
    "azimuth_deg": FieldSpec("number", "deg", doc="0 = front, positive = left; wrapped to (-180, 180]"),
    "elevation_deg": FieldSpec("number", "deg", doc="positive = up; clamped to [-90, 90]"),
    "distance_m": FieldSpec("number", "m", minimum=0.0, exclusive_minimum=True,
                            doc="from the head centre; clamped to [0.1, 100]"),
    "gain_db": FieldSpec("number", "dB", minimum=GAIN_DB_RANGE[0], maximum=GAIN_DB_RANGE[1],
                         doc="track gain"),
    "reverb_db": FieldSpec("number", "dB", minimum=REVERB_DB_RANGE[0], maximum=REVERB_DB_RANGE[1],
                           doc="wetness relative to the room's physical level (0 = as the room sounds)"),
    "mode": FieldSpec("mode", doc=f"one of {LOCALISATION_MODES}"),
    "role": FieldSpec("role", doc=f"instrument role, a string of at most {MAX_ROLE_CHARS} characters, or null"),
}


def _is_finite_number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:  # a 400-digit int
        return False


def _shown(value: Any, limit: int = 40) -> str:
    """A short repr for messages (an int of 5000 digits cannot even be repr'd by default)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        return f"an integer of about {int(value.bit_length() * 0.30103) + 1} digits"
    try:
        text = repr(value)
    except (ValueError, RecursionError):
        return f"a {type(value).__name__}"
    return text if len(text) <= limit else text[:limit] + "..."


def field_problem(key: str, value: Any) -> str | None:
    """What is wrong with one field's value (None when it is acceptable)."""
    spec = FIELD_SPECS.get(key)
    if spec is None:
        return f"unknown field {key!r}; accepted: {PLACEMENT_FIELDS}"
    if spec.kind == "number":
        if not _is_finite_number(value):
            shown = _shown(value)
            return f"{key} must be a finite number ({spec.unit}), got {shown}"
        v = float(value)
        if spec.minimum is not None and (v <= spec.minimum if spec.exclusive_minimum else v < spec.minimum):
            relation = ">" if spec.exclusive_minimum else ">="
            if spec.maximum is not None:
                return f"{key} must be in [{spec.minimum:g}, {spec.maximum:g}] {spec.unit}, got {v:g}"
            return f"{key} must be {relation} {spec.minimum:g} {spec.unit}, got {v:g}"
        if spec.maximum is not None and v > spec.maximum:
            return f"{key} must be in [{spec.minimum:g}, {spec.maximum:g}] {spec.unit}, got {v:g}"
        return None
    if spec.kind == "mode":
        return None if value in LOCALISATION_MODES else f"mode must be one of {LOCALISATION_MODES}, got {str(value)[:40]!r}"
    if value is None:
        return None
    if not isinstance(value, str):
        return f"role must be a string or null, got {type(value).__name__}"
    if len(value) > MAX_ROLE_CHARS:
        return f"role must be at most {MAX_ROLE_CHARS} characters, got {len(value)}"
    return None


def track_name_problem(name: Any) -> str | None:
    """What is wrong with a track name (None when it is acceptable)."""
    if not isinstance(name, str) or not name.strip():
        return "track must be a non-empty string"
    if len(name) > MAX_TRACK_NAME_CHARS:
        return f"track name must be at most {MAX_TRACK_NAME_CHARS} characters, got {len(name)}"
    return None


def placement_problems(fields: dict[str, Any], where: str = "") -> tuple[dict[str, Any], list[str]]:
    """Check a (partial) placement update; returns ``(accepted fields, problems)``.

    Numbers come back as ``float``; nothing is clamped here (see ``SourcePlacement.normalised``).
    ``where`` prefixes each problem (e.g. ``"sources[2]."``).
    """
    accepted: dict[str, Any] = {}
    problems: list[str] = []
    for key, value in fields.items():
        problem = field_problem(key, value)
        if problem is not None:
            problems.append(f"{where}{problem}")
        elif FIELD_SPECS[key].kind == "number":
            accepted[key] = float(value)
        else:
            accepted[key] = value
    return accepted, problems


def check_placement_fields(fields: dict[str, Any], where: str = "") -> dict[str, Any]:
    """Like :func:`placement_problems`, raising one ``InputError`` that lists every problem."""
    accepted, problems = placement_problems(fields, where)
    if problems:
        raise InputError("; ".join(problems))
    return accepted
