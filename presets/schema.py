"""One schema per preset kind, as JSON Schema data, reporting every problem at once (STYLE.md rule 7).

The rules are the files beside this module (JSON Schema, draft 2020-12)::

    room.schema.json       presets/rooms/<id>.yaml       (closed ``params``: the keys stase.dsp.brir reads)
    template.schema.json   presets/templates/<id>.yaml   (seats from the placement schema; closed ``music``)
    lexicon.schema.json    presets/lexicon.yaml

They are checked with ``jsonschema`` through :mod:`stase.core.schemas`, which also holds the
placement schema the seats ``$ref`` (one gain range, the normalised angle and distance ranges).
:func:`verify` returns every problem of one loaded YAML mapping, each naming the file and the key
path (``jazz_ensemble.yaml.roles[0].azimuth_deg: 200 is above the maximum 180``); cross-file rules
(a template's room must exist, its roles must be in the lexicon) are checked by
:func:`stase.presets.verify_all`.

Holds
-----
SCHEMA_FILES {kind: path}, SCHEMAS {kind: parsed schema}, ID_PATTERN
verify(data, schema, where) -> list[str]
Field: a shorthand that builds a JSON Schema object in Python (for callers and tests that make a
    small schema on the fly; the presets themselves use the files)
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stase.core.schemas import load_schema, schema_problems, validator

SCHEMA_DIR = Path(__file__).resolve().parent
SCHEMA_FILES: dict[str, Path] = {kind: SCHEMA_DIR / f"{kind}.schema.json"
                                 for kind in ("room", "template", "lexicon")}
SCHEMAS: dict[str, dict[str, Any]] = {kind: load_schema(path) for kind, path in SCHEMA_FILES.items()}
#: What a preset id (room, template, role) looks like (from room.schema.json).
ID_PATTERN: str = SCHEMAS["room"]["$defs"]["id"]["pattern"]
_ALSO = tuple(str(p) for p in SCHEMA_FILES.values())

_KINDS = {"str": {"type": "string", "pattern": "\\S", "x-expected": "a non-empty string"},
          "number": {"type": "number"}, "int": {"type": "integer"}, "bool": {"type": "boolean"},
          "list": {"type": "array"}, "map": {"type": "object"}, "object": {"type": "object"}, "any": {}}


@dataclass(frozen=True)
class Field:
    """Shorthand for one key of a JSON Schema object (see :meth:`schema`).

    kind : "str" | "number" | "int" | "bool" | "list" | "map" | "object" | "any"
    items : Field for list elements, or for a map's values (``kind == "map"``)
    fields : nested {key: Field} for an object (``kind == "object"``)
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

    def schema(self) -> dict[str, Any]:
        """This field as a JSON Schema."""
        out: dict[str, Any] = dict(_KINDS[self.kind])
        if self.pattern is not None:
            out["pattern"] = f"^(?:{self.pattern})$"
            out.pop("x-expected", None)
        for key, value in (("minimum", self.minimum), ("maximum", self.maximum),
                           ("minItems", self.min_items), ("maxItems", self.max_items),
                           ("description", self.doc or None)):
            if value is not None:
                out[key] = value
        if self.choices is not None:
            out["enum"] = list(self.choices)
        if self.items is not None:
            out["items" if self.kind == "list" else "additionalProperties"] = self.items.schema()
        if self.kind == "object":
            out.update(object_schema(self.fields or {}, self.allow_extra))
        return out


def object_schema(fields: dict[str, Field], allow_extra: bool = False) -> dict[str, Any]:
    """A JSON Schema object with the keys ``fields`` (closed unless ``allow_extra``)."""
    out: dict[str, Any] = {"type": "object", "properties": {k: f.schema() for k, f in fields.items()}}
    required = [k for k, f in fields.items() if f.required]
    if required:
        out["required"] = required
    if not allow_extra:
        out["additionalProperties"] = False
    return out


def verify(data: Any, schema: dict[str, Any] | str, where: str, allow_extra: bool = False) -> list[str]:
    """All problems of ``data`` against ``schema``; ``where`` prefixes each message (file or path).

    ``schema`` is a preset kind (``"room"``, ``"template"``, ``"lexicon"``), a JSON Schema, or a
    ``{key: Field}`` mapping (closed unless ``allow_extra``).
    """
    if isinstance(schema, str):
        check = validator(SCHEMA_FILES[schema], also=_ALSO)
    else:
        if schema and all(isinstance(f, Field) for f in schema.values()):
            schema = object_schema(schema, allow_extra)
        check = validator(schema, also=_ALSO)
    return schema_problems(check, data, where, style="preset")
