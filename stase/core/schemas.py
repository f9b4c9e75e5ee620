"""JSON Schema (draft 2020-12) checking with stase's messages: every problem at once, each with its path.

The rules themselves are data: ``stase/core/placement.schema.json`` (a source placement's fields
and bounds), ``stase/core/plan.schema.json`` (the plan) and the preset schemas in ``presets/``.
This module only loads them, checks data against them with ``jsonschema`` and words the errors.

Holds
-----
load_schema(path) -> dict          a schema file, parsed once (cached)
registry(also)                     the ``referencing.Registry`` of the core schemas (+ files ``also``) by ``$id``
inline_refs(schema)                the schema with every ``$ref`` replaced by its target (faster checks)
validator(schema, also)            a checker for a schema dict or file (a file's is built once)
check_schema(schema)               is it a valid draft 2020-12 schema?
schema_problems(check, data, where, style) -> list[str]   every problem, each with its path
shown(value) -> str                a short, safe description of a value for a message
StaseValidator                     Draft202012Validator with finite numbers and non-echoing keywords

Why not plain ``Draft202012Validator``
--------------------------------------
* JSON Schema's ``number`` accepts NaN and the infinities (and Python ints of any size); stase
  refuses them: here ``number`` and ``integer`` mean finite (a value ``float()`` can hold), ints
  are never floats (``8.0`` is not an integer) and ``bool`` is never a number.
* jsonschema words its errors by ``repr`` of the value, eagerly: the shared 9**30-item list a YAML
  alias bomb builds would never finish printing, and an int of 5000 digits cannot be printed at
  all.  The keywords stase's schemas use are re-implemented here without echoing the value (the
  message is built afterwards by :func:`schema_problems`, from the keyword, the value and the schema,
  with :func:`shown`).

Messages
--------
A field of the placement schema (a subschema with ``x-placement-field``) reads as
``sources[2].gain_db must be in [-120, 24] dB, got 30``; everything else as
``path: <what is wrong>`` (``jazz_ensemble.yaml.roles[0].azimuth_deg: 200 is above the maximum 180``).
``x-expected`` in a subschema words what it accepts (``room: must be a room id string, got list``).
An unknown key names the closest known ones (``did you mean 'bass_ratio'?``).  ``style`` is
``"plan"`` (``unknown key 'gian_db' in sources[0]; did you mean 'gain_db'?``, "object") or
``"preset"`` (``rooms.yaml.params.bass_ratoi: unknown key; did you mean 'bass_ratio'?``, "mapping").
"""
from __future__ import annotations

import difflib
import functools
import json
import math
import re
from pathlib import Path
from typing import Any, Iterable

CORE_DIR = Path(__file__).resolve().parent
PLACEMENT_SCHEMA_PATH = CORE_DIR / "placement.schema.json"
PLAN_SCHEMA_PATH = CORE_DIR / "plan.schema.json"
#: Unknown keys listed per object before the rest are counted (a message stays a few kB).
MAX_UNKNOWN_KEYS_LISTED = 20


# ------------------------------------------------------------------------------- loading
@functools.lru_cache(maxsize=None)
def load_schema(path: str | Path) -> dict[str, Any]:
    """A schema file, parsed (cached: treat the result as read-only)."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


@functools.lru_cache(maxsize=8)
def registry(also: tuple[str, ...] = ()):
    """The core schemas (and the schema files ``also``) by ``$id``, so that a preset schema can
    ``$ref`` the placement's fields and its sibling schemas.

    No retrieval function is given: a ``$ref`` to anything not registered here is an error, never a
    download.
    """
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012
    resources = [Resource.from_contents(load_schema(p), default_specification=DRAFT202012)
                 for p in (str(PLACEMENT_SCHEMA_PATH), str(PLAN_SCHEMA_PATH)) + tuple(also)]
    return Registry().with_resources((r.id(), r) for r in resources)


# ------------------------------------------------------------------------------- the validator
def is_finite_number(value: Any) -> bool:
    """A JSON number stase accepts: int or float, not bool, finite (``float()`` can hold it)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:  # an int of 400 digits
        return False


@functools.lru_cache(maxsize=1)
def _validator_class():
    from jsonschema import Draft202012Validator, validators
    from jsonschema.exceptions import ValidationError

    checker = Draft202012Validator.TYPE_CHECKER.redefine_many({
        "number": lambda _checker, value: is_finite_number(value),
        "integer": lambda _checker, value: isinstance(value, int) and is_finite_number(value),
    })

    # Each keyword yields an error whose ``message`` is only a token for schema_problems (which
    # words it): the value is never repr'd here.
    def type_(validator, types, instance, schema):
        types = [types] if isinstance(types, str) else types
        if not any(validator.is_type(instance, t) for t in types):
            yield ValidationError("type")

    def enum(validator, choices, instance, schema):
        if not any(type(instance) is type(c) and instance == c for c in choices):
            yield ValidationError("enum")

    def bound(keyword, outside):
        def check(validator, limit, instance, schema):
            if validator.is_type(instance, "number") and outside(instance, limit):
                yield ValidationError(keyword)
        return check

    def length(keyword, kind, outside):
        def check(validator, limit, instance, schema):
            if validator.is_type(instance, kind) and outside(len(instance), limit):
                yield ValidationError(keyword)
        return check

    def pattern(validator, regex, instance, schema):
        if validator.is_type(instance, "string") and not re.search(regex, instance):
            yield ValidationError("pattern")

    def required(validator, names, instance, schema):
        if validator.is_type(instance, "object"):
            for name in names:
                if name not in instance:
                    yield ValidationError(name)

    def additional_properties(validator, extra, instance, schema):
        if not validator.is_type(instance, "object"):
            return
        known = schema.get("properties", {})
        unknown = [key for key in instance if key not in known]
        if extra is False:
            if unknown:
                yield ValidationError("additionalProperties")
        elif isinstance(extra, dict):
            for key in unknown:
                yield from validator.descend(instance[key], extra, path=key)

    keywords = {
        "type": type_, "enum": enum, "pattern": pattern, "required": required,
        "additionalProperties": additional_properties,
        "minimum": bound("minimum", lambda v, lim: v < lim),
        "maximum": bound("maximum", lambda v, lim: v > lim),
        "exclusiveMinimum": bound("exclusiveMinimum", lambda v, lim: v <= lim),
        "exclusiveMaximum": bound("exclusiveMaximum", lambda v, lim: v >= lim),
        "minLength": length("minLength", "string", lambda n, lim: n < lim),
        "maxLength": length("maxLength", "string", lambda n, lim: n > lim),
        "minItems": length("minItems", "array", lambda n, lim: n < lim),
        "maxItems": length("maxItems", "array", lambda n, lim: n > lim),
    }
    return validators.extend(Draft202012Validator, validators=keywords, type_checker=checker)


def inline_refs(schema: dict[str, Any], base: str | None = None, also: tuple[str, ...] = ()) -> dict[str, Any]:
    """A copy of ``schema`` with every ``$ref`` replaced by what it names (looked up in
    ``registry(also)``, relative to ``base`` or the schema's ``$id``).

    The result checks exactly as the original (stase's schemas have no recursive references) and
    about three times faster: jsonschema resolves a ``$ref`` anew on every value it checks.
    """
    base = base if base is not None else schema.get("$id", "")

    def walk(node: Any, resolver, depth: int = 0) -> Any:
        if depth > 64:  # pragma: no cover - a schema bug, not a user error
            raise ValueError("schema references nest more than 64 deep (a recursive $ref?)")
        if isinstance(node, dict):
            if "$ref" in node:
                found = resolver.lookup(node["$ref"])  # its own refs are relative to its document
                rest = {k: v for k, v in node.items() if k != "$ref"}
                return walk({**found.contents, **rest}, found.resolver, depth + 1)
            return {k: walk(v, resolver, depth + 1) for k, v in node.items() if k != "$defs"}
        if isinstance(node, list):
            return [walk(v, resolver, depth + 1) for v in node]
        return node

    return walk(schema, registry(also).resolver(base))


def StaseValidator(schema: dict[str, Any], also: tuple[str, ...] = ()):  # noqa: N802 - reads as a class
    """A draft 2020-12 validator for ``schema`` with stase's number rules (see the module docstring);
    ``also``: schema files its references may name besides the core ones."""
    return _validator_class()(inline_refs(schema, also=also), registry=registry(also))


@functools.lru_cache(maxsize=None)
def _validator_for_file(path: str, also: tuple[str, ...]):
    return StaseValidator(load_schema(path), also)


def validator(schema: dict[str, Any] | str | Path, also: tuple[str | Path, ...] = ()):
    """A validator for a schema dict or a schema file (a file's validator is built once)."""
    also = tuple(str(p) for p in also)
    if isinstance(schema, (str, Path)):
        return _validator_for_file(str(schema), also)
    return StaseValidator(schema, also)


def check_schema(schema: dict[str, Any]) -> None:
    """Raise ``jsonschema.SchemaError`` when ``schema`` is not a valid draft 2020-12 schema."""
    from jsonschema import Draft202012Validator
    Draft202012Validator.check_schema(schema)


# ------------------------------------------------------------------------------- messages
def shown(value: Any, limit: int = 40) -> str:
    """A short description of ``value`` for a message: never a container's contents (a shared
    alias-bomb list would never finish printing), never an int of thousands of digits."""
    if isinstance(value, (dict, list, tuple, set)):
        return type(value).__name__
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        return f"an integer of about {int(value.bit_length() * 0.30103) + 1} digits"
    try:
        text = repr(value)
    except (ValueError, RecursionError):
        return f"a {type(value).__name__}"
    return text if len(text) <= limit else text[:limit] + "..."


def _number(value: float) -> str:
    return f"{value:g}"


def _path(where: str, parts: Iterable[Any]) -> str:
    text = where
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            key = str(part)
            key = key if len(key) <= 40 else key[:40] + "..."
            text = f"{text}.{key}" if text else key
    return text


_TYPE_WORDS = {"string": "a string", "number": "a finite number", "integer": "an integer",
               "array": "a list", "boolean": "true or false", "null": "null"}


def _expected(schema: dict[str, Any], style: str) -> str:
    if "x-expected" in schema:
        return schema["x-expected"]
    types = schema.get("type", [])
    types = [types] if isinstance(types, str) else list(types)
    words = {**_TYPE_WORDS, "object": "a mapping" if style == "preset" else "an object"}
    named = [words.get(t, t) for t in types if t != "null"] or ["null"]
    text = " or ".join(named)
    return text + " or null" if "null" in types and named != ["null"] else text


def _field_text(error, schema: dict[str, Any]) -> str:
    """What is wrong with a placement field, in the words of ``field_problem`` ("must be ...")."""
    keyword, value = error.message, error.instance
    unit = schema.get("x-unit", "")
    if keyword == "type":
        if schema.get("type") == "number":
            return f"must be a finite number ({unit}), got {shown(value)}"
        return f"must be {_expected(schema, 'plan')}, got {type(value).__name__}"
    if keyword in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        low = schema.get("minimum", schema.get("exclusiveMinimum"))
        high = schema.get("maximum", schema.get("exclusiveMaximum"))
        if low is not None and high is not None:
            return f"must be in [{_number(low)}, {_number(high)}] {unit}, got {_number(value)}"
        if low is not None:
            relation = ">" if "exclusiveMinimum" in schema else ">="
            return f"must be {relation} {_number(low)} {unit}, got {_number(value)}"
        relation = "<" if "exclusiveMaximum" in schema else "<="
        return f"must be {relation} {_number(high)} {unit}, got {_number(value)}"
    if keyword == "enum":
        return f"must be one of {tuple(schema['enum'])}, got {str(value)[:40]!r}"
    if keyword == "maxLength":
        return f"must be at most {schema['maxLength']} characters, got {len(value)}"
    return f"must be {_expected(schema, 'plan')}"


def _text(error, schema: dict[str, Any], style: str) -> str:
    """What is wrong, for any other subschema ("... is above the maximum 180")."""
    keyword, value = error.message, error.instance
    if keyword == "type":
        numeric = "number" in str(schema.get("type")) or "integer" in str(schema.get("type"))
        if numeric and isinstance(value, int) and not isinstance(value, bool):
            return f"must be a number a float can hold, got {shown(value)}"
        return f"must be {_expected(schema, style)}, got {shown(value) if numeric else type(value).__name__}"
    if keyword == "minimum":
        return f"{shown(value)} is below the minimum {_number(schema['minimum'])}"
    if keyword == "maximum":
        return f"{shown(value)} is above the maximum {_number(schema['maximum'])}"
    if keyword == "exclusiveMinimum":
        return f"{shown(value)} must be above {_number(schema['exclusiveMinimum'])}"
    if keyword == "exclusiveMaximum":
        return f"{shown(value)} must be below {_number(schema['exclusiveMaximum'])}"
    if keyword == "enum":
        return f"{shown(value)} is not one of {tuple(schema['enum'])}"
    if keyword == "pattern":
        if "x-expected" in schema:
            return f"must be {schema['x-expected']}, got {shown(value)}"
        return f"{shown(value)} does not match {schema['pattern']}"
    if keyword == "minLength":
        if "x-expected" in schema:
            return f"must be {schema['x-expected']}, got {shown(value)}"
        return f"must be at least {schema['minLength']} characters, got {len(value)}"
    if keyword == "maxLength":
        return f"must be at most {schema['maxLength']} characters, got {len(value)}"
    if keyword == "minItems":
        return f"needs at least {schema['minItems']} items, has {len(value)}"
    if keyword == "maxItems":
        return f"allows at most {schema['maxItems']} items, has {len(value)}"
    return f"is not valid ({keyword})"  # pragma: no cover - a keyword this module does not word


def _unknown_keys(error, where_path: str, style: str) -> list[str]:
    known = tuple(error.schema.get("properties", {}))
    unknown = [key for key in error.instance if key not in known]
    problems = []
    inside = f" in {where_path}" if where_path else ""
    for key in unknown[:MAX_UNKNOWN_KEYS_LISTED]:
        close = difflib.get_close_matches(key, known, n=2, cutoff=0.6) if isinstance(key, str) else []
        if style == "preset":
            hint = f"; did you mean {' or '.join(repr(c) for c in sorted(close))}?" if close else ""
            problems.append(f"{_path(where_path, [key])}: unknown key{hint} (allowed: {', '.join(known)})")
        else:
            hint = (f"did you mean {' or '.join(repr(c) for c in sorted(close))}?" if close
                    else f"accepted: {', '.join(known)}")
            problems.append(f"unknown key {shown(key)}{inside}; {hint}")
    if len(unknown) > MAX_UNKNOWN_KEYS_LISTED:
        problems.append(f"{len(unknown) - MAX_UNKNOWN_KEYS_LISTED} more unknown keys{inside}")
    return problems


def schema_problems(check, data: Any, where: str = "", style: str = "plan") -> list[str]:
    """Every problem of ``data`` against a validator (from :func:`validator`), worded with paths.

    ``where`` names the whole of ``data`` (a file name, ``"sources[2]"``; empty for none).  One
    message per problem; when a value has the wrong type, only that is said about it.
    """
    problems: list[str] = []
    # jsonschema's order: the schema's keys in order (unknown keys first, where the schema lists
    # additionalProperties first), list items by index.  A wrong type silences the rest about
    # that value.
    errors = list(check.iter_errors(data))
    wrong_type = {tuple(e.absolute_path) for e in errors
                  if e.validator == "type" and "propertyNames" not in e.relative_schema_path}
    for error in errors:
        parts = tuple(error.absolute_path)
        in_names = "propertyNames" in error.relative_schema_path
        if error.validator != "type" and not in_names and parts in wrong_type:
            continue
        path = _path(where, parts)
        schema = error.schema
        if in_names:
            problems.append(f"{path}: key {shown(error.instance)}: {_text(error, schema, style)}")
        elif error.validator == "required":
            problems.append(f"{_path(path, [error.message])}: is required")
        elif error.validator == "additionalProperties":
            problems.extend(_unknown_keys(error, path, style))
        elif "x-placement-field" in schema:
            problems.append(f"{path} {_field_text(error, schema)}")
        else:
            problems.append(f"{path}: {_text(error, schema, style)}" if path else _text(error, schema, style))
    seen: set[str] = set()
    return [p for p in problems if not (p in seen or seen.add(p))]
