"""The spatial plan: what the conductor prints, the renderer renders and the daemon applies.

JSON shape (also accepted as YAML)::

    {
      "pathway": "description" | "abstract" | "edit" | "manual",
      "template": "jazz_ensemble" | null,
      "room": "jazz_club",
      "reverb_engine": "convolution" | "fdn",          # optional, default "convolution"
      "reverb_db": 0.0,                                # optional wetness, stase.core.placement bounds
      "sources": [
        {"track": "Sax", "role": "saxophone", "azimuth_deg": 20.0, "elevation_deg": 0.0,
         "distance_m": 3.0, "mode": "hrtf", "gain_db": 0.0, "reverb_db": 0.0,
         "provenance": {"azimuth_deg": "cue: 'sax a bit left'", ...}}
      ],
      "music_description": "...", "mix_notes": "...",
      "music": {"template": ..., "tempo_bpm": ..., "key": ..., "bars": ..., "instruments": [...]}
    }

Angles follow :mod:`stase.core.conventions` (azimuth positive = left).  The shape is data:
``stase/core/plan.schema.json`` (JSON Schema 2020-12; its sources ``$ref`` the placement fields of
``placement.schema.json``).  ``load_plan`` checks it with ``jsonschema`` and reports every problem at
once, each with its path: the type of every field before anything is converted, the placement
bounds, and every unknown key (with the nearest known one, so a misspelt ``azimth_deg`` is not
silently ignored).  YAML plans may not use aliases (``*name``): an
alias bomb of a few hundred bytes would otherwise expand to gigabytes.

Holds
-----
SourcePlacement, Plan (``to_dict`` / ``to_json`` / ``from_dict``), plan_problems, clip_provenance, load_plan,
check_plan_output, save_plan; PLAN_SCHEMA and, read from it, PLAN_KEYS, SOURCE_KEYS, PATHWAYS,
REVERB_ENGINES, MAX_PROVENANCE_KEY_CHARS; MAX_PROVENANCE_CHARS, MAX_MUSIC_ITEMS.
"""
from __future__ import annotations

import functools
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stase.core.conventions import MAX_DISTANCE_M, MIN_DISTANCE_M, clamp_elevation_deg, wrap_azimuth_deg
from stase.core.errors import InputError
from stase.core.placement import MAX_TRACK_NAME_CHARS
from stase.core.names import find_track, track_key
from stase.core.schemas import PLAN_SCHEMA_PATH, load_schema, schema_problems, shown, validator

#: The plan's JSON Schema (stase/core/plan.schema.json; its sources ``$ref`` the placement schema).
PLAN_SCHEMA: dict[str, Any] = load_schema(PLAN_SCHEMA_PATH)
_SOURCE_SCHEMA = PLAN_SCHEMA["$defs"]["source"]
PATHWAYS: tuple[str, ...] = tuple(PLAN_SCHEMA["properties"]["pathway"]["enum"])
REVERB_ENGINES: tuple[str, ...] = tuple(PLAN_SCHEMA["properties"]["reverb_engine"]["enum"])
#: The keys a plan may hold (what ``Plan.to_dict`` writes), and those of one source.
PLAN_KEYS: tuple[str, ...] = tuple(PLAN_SCHEMA["properties"])
SOURCE_KEYS: tuple[str, ...] = tuple(_SOURCE_SCHEMA["properties"])
#: A provenance note ("cue: 'sax a bit left' (+15 deg towards the left)") is a short explanation;
#: ``SourcePlacement.normalised`` (so every plan stase makes or loads) cuts longer ones: a note
#: quoting a long prompt is shortened, not refused, and a plan never carries a megabyte of notes.
MAX_PROVENANCE_CHARS = 200
MAX_PROVENANCE_KEY_CHARS: int = _SOURCE_SCHEMA["properties"]["provenance"]["propertyNames"]["maxLength"]
#: ``music`` is a small description (tempo, key, bars, one entry per instrument): at most this
#: many values in all, nested at most MAX_MUSIC_DEPTH deep.
MAX_MUSIC_ITEMS = 10_000
MAX_MUSIC_DEPTH = 16
#: An error message lists this many problems, then counts the rest (it stays a few kB).
MAX_LISTED_PROBLEMS = 20
_ELLIPSIS = "..."


def clip_provenance(text: str) -> str:
    """``text`` cut to at most :data:`MAX_PROVENANCE_CHARS` characters (ending in "...")."""
    if len(text) <= MAX_PROVENANCE_CHARS:
        return text
    return text[:MAX_PROVENANCE_CHARS - len(_ELLIPSIS)] + _ELLIPSIS


@dataclass
class SourcePlacement:
    """One track's place in the scene."""

    track: str
    azimuth_deg: float = 0.0
    elevation_deg: float = 0.0
    distance_m: float = 2.0
    mode: str = "hrtf"
    role: str | None = None
    gain_db: float = 0.0
    provenance: dict[str, str] = field(default_factory=dict)
    #: wetness relative to the room's physical level (dB), added to the plan's
    reverb_db: float = 0.0

    def normalised(self) -> "SourcePlacement":
        """Copy with azimuth wrapped, elevation and distance clamped to the convention."""
        return SourcePlacement(
            track=self.track, role=self.role, mode=self.mode, gain_db=float(self.gain_db),
            azimuth_deg=wrap_azimuth_deg(self.azimuth_deg),
            elevation_deg=clamp_elevation_deg(self.elevation_deg),
            distance_m=float(min(max(self.distance_m, MIN_DISTANCE_M), MAX_DISTANCE_M)),
            provenance={key: clip_provenance(why) for key, why in self.provenance.items()},
            reverb_db=float(self.reverb_db))


@dataclass
class Plan:
    """A room plus one placement per track."""

    room: str = "dry_studio"
    sources: list[SourcePlacement] = field(default_factory=list)
    pathway: str = "manual"
    template: str | None = None
    reverb_engine: str = "convolution"
    music_description: str = ""
    mix_notes: str = ""
    music: dict[str, Any] | None = None
    #: wetness of the whole mix relative to the room's physical level (dB, stase.core.placement bounds)
    reverb_db: float = 0.0

    def source(self, track: str) -> SourcePlacement:
        """The placement for ``track`` (the one name rule, :func:`stase.core.names.find_track`:
        "gtr-l" finds "Gtr L"); KeyError names the known tracks."""
        name = find_track(track, [s.track for s in self.sources])
        for s in self.sources:
            if s.track == name:
                return s
        raise KeyError(f"no source {track!r} in the plan; tracks: {[s.track for s in self.sources]}")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy (built field by field: ``dataclasses.asdict`` deep-copies, and the
        daemon serialises the plan on every change)."""
        d: dict[str, Any] = {
            "room": self.room,
            "sources": [{"track": s.track, "azimuth_deg": s.azimuth_deg, "elevation_deg": s.elevation_deg,
                         "distance_m": s.distance_m, "mode": s.mode, "role": s.role, "gain_db": s.gain_db,
                         "provenance": dict(s.provenance)} for s in self.sources],
            "pathway": self.pathway, "template": self.template, "reverb_engine": self.reverb_engine,
            "music_description": self.music_description, "mix_notes": self.mix_notes,
        }
        if self.music is not None:
            d["music"] = json.loads(json.dumps(self.music))
        d["reverb_db"] = self.reverb_db
        for entry, s in zip(d["sources"], self.sources):
            entry["reverb_db"] = s.reverb_db
        return d

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, data: Any, source: str = "plan") -> "Plan":
        """Build a plan from a mapping, reporting every problem at once as ``InputError``."""
        problems = plan_problems(data)
        if problems:
            listed = problems[:MAX_LISTED_PROBLEMS]
            if len(problems) > len(listed):
                listed.append(f"... and {len(problems) - len(listed)} more")
            raise InputError(f"{source}: invalid plan:\n  - " + "\n  - ".join(listed))
        sources = [SourcePlacement(
            track=str(s["track"]), role=s.get("role"), mode=s.get("mode", "hrtf"),
            azimuth_deg=float(s.get("azimuth_deg", 0.0)),
            elevation_deg=float(s.get("elevation_deg", 0.0)),
            distance_m=float(s.get("distance_m", 2.0)), gain_db=float(s.get("gain_db", 0.0)),
            provenance=dict(s.get("provenance") or {}), reverb_db=float(s.get("reverb_db", 0.0)),
        ).normalised() for s in data.get("sources", [])]
        return cls(room=data.get("room", "dry_studio"), sources=sources,
                   pathway=data.get("pathway", "manual"), template=data.get("template"),
                   reverb_engine=data.get("reverb_engine", "convolution"),
                   music_description=data.get("music_description") or "",
                   mix_notes=data.get("mix_notes") or "", music=data.get("music"),
                   reverb_db=float(data.get("reverb_db", 0.0)))


def _music_problems(music: dict) -> list[str]:
    """What keeps the ``music`` object from being small JSON (walked with a budget, never expanded)."""
    budget = MAX_MUSIC_ITEMS
    stack: list[tuple[Any, str, int]] = [(music, "music", 0)]
    while stack:
        value, where, depth = stack.pop()
        budget -= 1
        if budget < 0:
            return [f"music: more than {MAX_MUSIC_ITEMS} values; a music description is a few dozen"]
        if depth > MAX_MUSIC_DEPTH:
            return [f"{where}: nested more than {MAX_MUSIC_DEPTH} levels deep"]
        if isinstance(value, (dict, list)) and len(value) > budget:
            return [f"music: more than {MAX_MUSIC_ITEMS} values; a music description is a few dozen"]
        if isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str):
                    return [f"{where}: keys must be strings, got {shown(key)}"]
                stack.append((item, f"{where}.{key[:40]}", depth + 1))
        elif isinstance(value, list):
            stack.extend((item, f"{where}[{i}]", depth + 1) for i, item in enumerate(value))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            try:
                finite = math.isfinite(float(value))
            except OverflowError:  # a 400-digit integer
                finite = False
            if not finite:
                return [f"{where}: must be a finite number, got {shown(value)}"]
        elif not (value is None or isinstance(value, (str, bool))):
            return [f"{where}: must be a JSON value (object, list, string, number, true/false, null), "
                    f"got {type(value).__name__}"]
    return []


def plan_problems(data: Any) -> list[str]:
    """Every problem with a plan mapping, as human-readable strings (empty when valid).

    The plan's JSON Schema (``plan.schema.json``, checked by ``jsonschema``) gives every problem
    with its path; then what a schema cannot say: a track named twice, and a ``music`` object too
    big or too deep.  Types are checked before anything is converted, so nothing is ever
    stringified or expanded.
    """
    if not isinstance(data, dict):
        return [f"a plan must be a JSON/YAML object, got {type(data).__name__}"]
    problems = schema_problems(validator(PLAN_SCHEMA_PATH), data)
    if isinstance(data.get("music"), dict):
        problems.extend(_music_problems(data["music"]))
    sources = data.get("sources")
    seen: dict[str, str] = {}
    for i, s in enumerate(sources if isinstance(sources, list) else []):
        track = s.get("track") if isinstance(s, dict) else None
        if isinstance(track, str) and track.strip() and len(track) <= MAX_TRACK_NAME_CHARS:
            key = track_key(track)
            if key in seen:
                same = "" if seen[key] == track else f" (the same track as {seen[key]!r})"
                problems.append(f"sources[{i}].track: {track!r} appears twice{same}")
            seen.setdefault(key, track)
    return problems


@functools.lru_cache(maxsize=1)
def _plan_yaml_loader():
    """A ``yaml.SafeLoader`` that refuses aliases (built once, on first use: yaml loads lazily).

    PyYAML shares an aliased node instead of copying it, so loading a "billion laughs" costs
    nothing, but every later walk or ``str()`` of the result expands it (28 s and 3 GB for 412
    bytes).  A plan has no use for aliases, so the composer refuses the first one it meets.
    """
    import yaml

    class PlanYamlLoader(yaml.SafeLoader):
        def compose_node(self, parent, index):
            if self.check_event(yaml.AliasEvent):
                event = self.peek_event()
                raise yaml.composer.ComposerError(
                    None, None, f"YAML aliases (*{str(event.anchor)[:40]}) are not accepted in a plan; "
                    "write the value out in full", event.start_mark)
            return super().compose_node(parent, index)

    return PlanYamlLoader


def load_plan(path: str | Path) -> Plan:
    """Read a plan from a JSON or YAML file; ``InputError`` on anything unreadable."""
    p = Path(path)
    if not p.is_file():
        if not p.exists():
            raise InputError(f"plan file not found: {p}")
        from stase.core.audio_io import file_kind
        raise InputError(f"plan file {p} is {file_kind(p)}; give a JSON or YAML file")
    text = p.read_text(encoding="utf-8", errors="replace")
    if not text.strip():
        raise InputError(f"plan file is empty: {p}")
    try:
        if p.suffix.lower() in (".yaml", ".yml"):
            import yaml
            data = yaml.load(text, Loader=_plan_yaml_loader())  # noqa: S506 - a SafeLoader
        else:
            data = json.loads(text)
    except Exception as exc:  # noqa: BLE001 - any parser failure is the user's file
        raise InputError(f"cannot parse plan file {p}: {exc}") from exc
    return Plan.from_dict(data, source=str(p))


def check_plan_output(path: str | Path) -> Path:
    """Check, before any work, that a plan file can be written at ``path``; returns it as a Path.

    Raises
    ------
    InputError : an empty path, a folder or other non-regular file, a folder that cannot be
        created or written in.
    """
    from stase.core.audio_io import ensure_writable_folder, file_kind
    if not str(path).strip():
        raise InputError("the plan output path is empty; give a file name such as plan.json")
    p = Path(path)
    if p.exists() and not p.is_file():
        hint = f", e.g. {p / 'plan.json'}" if p.is_dir() else ""
        raise InputError(f"plan output {p} is {file_kind(p)}; give the name of a file to write{hint}")
    ensure_writable_folder(Path(os.path.realpath(p)).parent, p)
    return p


def save_plan(plan: Plan, path: str | Path) -> None:
    """Write a plan as JSON atomically (temp file + rename); ``InputError`` when ``path`` cannot
    take it (see :func:`check_plan_output`)."""
    from stase.core.audio_io import atomic_write_text
    p = check_plan_output(path)
    try:
        atomic_write_text(p, plan.to_json() + "\n")
    except OSError as exc:
        raise InputError(f"cannot write the plan to {p}: {exc.strerror or exc}") from exc
