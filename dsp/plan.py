"""The spatial plan: what the conductor prints, the renderer renders and the daemon applies.

JSON shape (also accepted as YAML)::

    {
      "pathway": "description" | "abstract" | "edit" | "manual",
      "template": "jazz_ensemble" | null,
      "room": "jazz_club",
      "reverb_engine": "convolution" | "fdn",          # optional, default "convolution"
      "sources": [
        {"track": "Sax", "role": "saxophone", "azimuth_deg": 20.0, "elevation_deg": 0.0,
         "distance_m": 3.0, "mode": "hrtf", "gain_db": 0.0,
         "provenance": {"azimuth_deg": "cue: 'sax a bit left'", ...}}
      ],
      "music_description": "...", "mix_notes": "...",
      "music": {"template": ..., "tempo_bpm": ..., "key": ..., "bars": ..., "instruments": [...]}
    }

Angles follow :mod:`dsp.conventions` (azimuth positive = left).  ``load_plan`` validates and
reports every problem at once.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .conventions import (LOCALISATION_MODES, MAX_DISTANCE_M, MIN_DISTANCE_M,
                          clamp_elevation_deg, wrap_azimuth_deg)
from .errors import InputError
from .placement import PLACEMENT_FIELDS, placement_problems

PATHWAYS = ("description", "abstract", "edit", "manual")
REVERB_ENGINES = ("convolution", "fdn")


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

    def normalised(self) -> "SourcePlacement":
        """Copy with azimuth wrapped, elevation and distance clamped to the convention."""
        return SourcePlacement(
            track=self.track, role=self.role, mode=self.mode, gain_db=float(self.gain_db),
            azimuth_deg=wrap_azimuth_deg(self.azimuth_deg),
            elevation_deg=clamp_elevation_deg(self.elevation_deg),
            distance_m=float(min(max(self.distance_m, MIN_DISTANCE_M), MAX_DISTANCE_M)),
            provenance=dict(self.provenance))


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

    def source(self, track: str) -> SourcePlacement:
        """The placement for ``track`` (case-insensitive); KeyError names the known tracks."""
        for s in self.sources:
            if s.track.lower() == track.lower():
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
        return d

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, data: Any, source: str = "plan") -> "Plan":
        """Build a plan from a mapping, reporting every problem at once as ``InputError``."""
        problems = plan_problems(data)
        if problems:
            raise InputError(f"{source}: invalid plan:\n  - " + "\n  - ".join(problems))
        sources = [SourcePlacement(
            track=str(s["track"]), role=s.get("role"), mode=s.get("mode", "hrtf"),
            azimuth_deg=float(s.get("azimuth_deg", 0.0)),
            elevation_deg=float(s.get("elevation_deg", 0.0)),
            distance_m=float(s.get("distance_m", 2.0)), gain_db=float(s.get("gain_db", 0.0)),
            provenance={str(k): str(v) for k, v in (s.get("provenance") or {}).items()},
        ).normalised() for s in data.get("sources", [])]
        return cls(room=str(data.get("room", "dry_studio")), sources=sources,
                   pathway=str(data.get("pathway", "manual")), template=data.get("template"),
                   reverb_engine=str(data.get("reverb_engine", "convolution")),
                   music_description=str(data.get("music_description", "") or ""),
                   mix_notes=str(data.get("mix_notes", "") or ""), music=data.get("music"))


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def plan_problems(data: Any) -> list[str]:
    """Every problem with a plan mapping, as human-readable strings (empty when valid)."""
    if not isinstance(data, dict):
        return [f"a plan must be a JSON/YAML object, got {type(data).__name__}"]
    problems: list[str] = []
    if not isinstance(data.get("room", "dry_studio"), str):
        problems.append("room: must be a room id string")
    if data.get("pathway", "manual") not in PATHWAYS:
        problems.append(f"pathway: {data.get('pathway')!r} is not one of {PATHWAYS}")
    if data.get("reverb_engine", "convolution") not in REVERB_ENGINES:
        problems.append(f"reverb_engine: {data.get('reverb_engine')!r} is not one of {REVERB_ENGINES}")
    sources = data.get("sources", [])
    if not isinstance(sources, list):
        return problems + ["sources: must be a list"]
    seen: set[str] = set()
    for i, s in enumerate(sources):
        where = f"sources[{i}]"
        if not isinstance(s, dict):
            problems.append(f"{where}: must be an object")
            continue
        track = s.get("track")
        if not isinstance(track, str) or not track.strip():
            problems.append(f"{where}.track: must be a non-empty string")
        elif track.lower() in seen:
            problems.append(f"{where}.track: {track!r} appears twice")
        else:
            seen.add(track.lower())
        _, field_problems = placement_problems(
            {k: s[k] for k in PLACEMENT_FIELDS if k in s}, where=f"{where}.")
        problems.extend(field_problems)
        if "provenance" in s and not isinstance(s["provenance"], (dict, type(None))):
            problems.append(f"{where}.provenance: must be an object")
    return problems


def load_plan(path: str | Path) -> Plan:
    """Read a plan from a JSON or YAML file; ``InputError`` on anything unreadable."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"plan file not found: {p}")
    text = p.read_text(encoding="utf-8", errors="replace")
    if not text.strip():
        raise InputError(f"plan file is empty: {p}")
    try:
        if p.suffix.lower() in (".yaml", ".yml"):
            import yaml
            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as exc:  # noqa: BLE001 - any parser failure is the user's file
        raise InputError(f"cannot parse plan file {p}: {exc}") from exc
    return Plan.from_dict(data, source=str(p))


def save_plan(plan: Plan, path: str | Path) -> None:
    """Write a plan as JSON atomically (temp file + rename)."""
    from .audio_io import atomic_write_text
    atomic_write_text(Path(path), plan.to_json() + "\n")
