"""Preset data (YAML) and its loader: rooms, stage templates, instrument lexicon.

Layout::

    presets/rooms/<id>.yaml        the ten STASE environments (stase.dsp.rooms reads them)
    presets/templates/<id>.yaml    the ten STASE stage templates (agent reads them)
    presets/lexicon.yaml           role names and the aliases DAW track names use

    presets/<kind>.schema.json     the rules of each kind, as JSON Schema (room, template, lexicon)

Everything is validated by :mod:`stase.presets.schema` (``jsonschema`` against those files; the
template seats take their fields and bounds from ``stase/core/placement.schema.json``);
:func:`verify_all` reports every problem in every file at once, and the loaders raise
:class:`PresetError` carrying that whole list.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from stase.core.errors import InputError

from stase.presets.schema import verify

PRESETS_DIR = Path(__file__).resolve().parent


class PresetError(InputError):
    """One or more preset files are invalid; ``problems`` lists every one."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("invalid presets:\n  - " + "\n  - ".join(self.problems))


def _read_yaml(path: Path, problems: list[str]) -> Any:
    import yaml
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        problems.append(f"{path.name}: cannot be read as YAML: {exc}")
        return None


def _load_folder(kind: str, folder: Path, problems: list[str]) -> dict[str, dict]:
    items: dict[str, dict] = {}
    for path in sorted(folder.glob("*.y*ml")):
        data = _read_yaml(path, problems)
        if data is None and not any(p.startswith(path.name) for p in problems):
            problems.append(f"{path.name}: is empty")
            continue
        if data is None:
            continue
        found = verify(data, kind, path.name)
        problems.extend(found)
        if isinstance(data, dict) and isinstance(data.get("id"), str):
            if data["id"] != path.stem:
                problems.append(f"{path.name}.id: {data['id']!r} must equal the file name {path.stem!r}")
            if not found:
                items[data["id"]] = data
    return items


def verify_all(root: Path | None = None) -> tuple[dict[str, Any], list[str]]:
    """Load and check every preset under ``root``; return (presets, problems)."""
    root = Path(root) if root else PRESETS_DIR
    problems: list[str] = []
    rooms = _load_folder("room", root / "rooms", problems) if (root / "rooms").is_dir() else {}
    templates = (_load_folder("template", root / "templates", problems)
                 if (root / "templates").is_dir() else {})
    lexicon: dict = {"roles": {}}
    lex_path = root / "lexicon.yaml"
    if lex_path.is_file():
        data = _read_yaml(lex_path, problems)
        found = verify(data, "lexicon", lex_path.name) if data is not None else []
        problems.extend(found)
        if not found and isinstance(data, dict):
            lexicon = data
    for tid, t in templates.items():
        if rooms and t["room"] not in rooms:
            problems.append(f"{tid}.yaml.room: {t['room']!r} is not a room id ({', '.join(sorted(rooms))})")
        if lexicon["roles"]:
            for i, r in enumerate(t["roles"]):
                if r["role"] not in lexicon["roles"]:
                    problems.append(f"{tid}.yaml.roles[{i}].role: {r['role']!r} is not in lexicon.yaml")
    return {"rooms": rooms, "templates": templates, "lexicon": lexicon}, problems


@lru_cache(maxsize=4)
def _load_checked(root: str) -> dict[str, Any]:
    presets, problems = verify_all(Path(root))
    if problems:
        raise PresetError(problems)
    return presets


def load_presets(root: Path | None = None) -> dict[str, Any]:
    """All presets, validated (cached per root); raises :class:`PresetError` listing every problem."""
    return _load_checked(str(Path(root) if root else PRESETS_DIR))


def load_rooms(root: Path | None = None) -> dict[str, dict]:
    return load_presets(root)["rooms"]


def load_templates(root: Path | None = None) -> dict[str, dict]:
    return load_presets(root)["templates"]


def load_lexicon(root: Path | None = None) -> dict[str, Any]:
    return load_presets(root)["lexicon"]
