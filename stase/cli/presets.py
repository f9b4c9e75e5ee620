"""``stase presets``: list or verify the preset files."""
from __future__ import annotations

import json
from pathlib import Path


def add_arguments(parser) -> None:
    parser.add_argument("action", choices=["list", "verify"], nargs="?", default="list")
    parser.add_argument("--root", type=Path, default=None, help="a presets folder other than the built-in one")
    parser.add_argument("--json", action="store_true", help="print JSON")


def run(args) -> int:
    from stase.presets import verify_all
    presets, problems = verify_all(args.root)
    if args.action == "verify":
        if args.json:
            print(json.dumps({"ok": not problems, "problems": problems}))
        else:
            print("\n".join(problems) if problems else "presets OK")
        return 1 if problems else 0
    listing = {kind: sorted(presets[kind]) for kind in ("rooms", "templates")}
    listing["roles"] = sorted(presets["lexicon"].get("roles", {}))
    if args.json:
        print(json.dumps(listing))
    else:
        for kind, ids in listing.items():
            print(f"{kind}: {', '.join(ids)}")
    return 1 if problems else 0
