"""Write the placement fields of stase/core/placement.schema.json into reaper_scripts/lib/stase_core.lua.

The REAPER scripts check a plan's fields with the same bounds as the daemon (STYLE.md rule 15),
so the Lua side must not hold a second, hand-kept list.  This script renders the schema's fields
(names, kinds, units, bounds, the modes, the name lengths) as a Lua table and puts it between the
``-- BEGIN GENERATED FIELDS`` and ``-- END GENERATED FIELDS`` lines of ``stase_core.lua`` (the lib
file every action already loads, so nothing new has to be installed through ReaPack).

    python tools/gen_lua_fields.py           rewrite the block
    python tools/gen_lua_fields.py --check   exit 1 when the block is stale (tests/test_placement_schema.py)
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "stase" / "core" / "placement.schema.json"
TARGET = REPO / "reaper_scripts" / "lib" / "stase_core.lua"
BEGIN = "-- BEGIN GENERATED FIELDS (tools/gen_lua_fields.py from stase/core/placement.schema.json; do not edit)"
END = "-- END GENERATED FIELDS"


def _lua(value) -> str:
    """A Lua literal for a JSON scalar (numbers as %.17g, so they read back exactly)."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(int(value)) if float(value).is_integer() and abs(value) < 2 ** 53 else f"{value:.17g}"
    return json.dumps(str(value))  # a JSON string is a valid Lua string for these (ASCII) names


def render(schema: dict) -> str:
    """The generated block (without the BEGIN/END lines)."""
    defs = schema["$defs"]
    lines = ["core.FIELDS = {"]
    for name in schema["properties"]:
        d = defs[name]
        kind = "number" if d.get("type") == "number" else ("enum" if "enum" in d else "string_or_nil")
        entry = {"name": name, "kind": kind, "unit": d.get("x-unit"),
                 "minimum": d.get("minimum", d.get("exclusiveMinimum")), "maximum": d.get("maximum"),
                 "exclusive_minimum": True if "exclusiveMinimum" in d else None,
                 "max_chars": d.get("maxLength")}
        body = ", ".join(f"{k} = {_lua(v)}" for k, v in entry.items() if v is not None)
        lines.append(f"  {{ {body} }},")
    lines.append("}")
    lines.append("core.MODES = { " + ", ".join(_lua(m) for m in defs["mode"]["enum"]) + " }")
    lines.append(f"core.MAX_TRACK_NAME_CHARS = {defs['track']['maxLength']}")
    lines.append("core.NUMERIC_FIELDS = { " + ", ".join(_lua(n) for n in schema["x-numeric-fields"]) + " }")
    return "\n".join(lines)


def rewritten(text: str, block: str) -> str:
    """``text`` with its generated block replaced by ``block``."""
    start, end = text.index(BEGIN), text.index(END)
    return text[:start] + BEGIN + "\n" + block + "\n" + text[end:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when stase_core.lua is stale")
    args = parser.parse_args(argv)
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    text = TARGET.read_text(encoding="utf-8")
    new = rewritten(text, render(schema))
    if args.check:
        if new != text:
            print(f"{TARGET.relative_to(REPO)} is out of date: run python tools/gen_lua_fields.py")
            return 1
        return 0
    if new != text:
        tmp = TARGET.with_name(f".{TARGET.name}.tmp")
        tmp.write_text(new, encoding="utf-8")
        tmp.replace(TARGET)  # atomic: a reader sees the old file or the new one
    return 0


if __name__ == "__main__":
    sys.exit(main())
