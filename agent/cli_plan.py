"""``stase plan``: a prompt (or a JSONL batch of prompts) -> spatial plan JSON.

    stase plan "sax 30 degrees left, drums behind me" --tracks "Vox,Sax,Bass,Drums" --json
    stase plan "move the sax further left" --plan current.json --json
    stase plan --batch prompts.jsonl --json      # {"prompt": ..., "tracks": [...]} per line

Exit 2 with a message for an empty prompt, a cue naming an instrument no track plays, or an
unreadable plan file (bridge/cli.py turns ``InputError`` into that).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from dsp.errors import InputError


def add_arguments(parser) -> None:
    parser.add_argument("prompt", nargs="?", default=None, help="what you want, in words")
    parser.add_argument("--tracks", default=None,
                        help="comma-separated track names, e.g. 'Vox,Gtr,Bass,Drums' (default: the template's seats)")
    parser.add_argument("--plan", dest="current", type=Path, default=None,
                        help="current plan (JSON/YAML): the prompt is an edit of it")
    parser.add_argument("--model", default="auto",
                        help="auto (shipped default), none, smollm2, gemma, or a path to a GGUF")
    parser.add_argument("--batch", type=Path, default=None,
                        help="JSONL file, one {\"prompt\": ..., \"tracks\": [...]} per line; one plan per line out")
    parser.add_argument("--out", type=Path, default=None, help="also write the plan JSON to this file")
    parser.add_argument("--json", action="store_true", help="print JSON (one object; one per line with --batch)")


def _tracks(value) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = [t for t in value.split(",")]
    if not isinstance(value, list):
        raise InputError(f"tracks must be a list of names or a comma-separated string, got {value!r}")
    return value


def _human(plan) -> str:
    lines = [f"pathway {plan.pathway}, template {plan.template}, room {plan.room}"]
    for s in plan.sources:
        lines.append(f"  {s.track:<14} {str(s.role):<16} az {s.azimuth_deg:+7.1f}  el {s.elevation_deg:+5.1f}  "
                     f"{s.distance_m:5.2f} m   ({s.provenance.get('azimuth_deg', '')})")
    lines.append(f"music: {plan.music_description}")
    lines.append(f"notes: {plan.mix_notes}")
    return "\n".join(lines)


def _run_batch(args, conductor) -> int:
    try:
        text = args.batch.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read batch file {args.batch}: {exc}") from exc
    failures = 0
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            if not isinstance(item, dict):
                raise InputError("each line must be a JSON object with 'prompt' and 'tracks'")
            current = None
            if item.get("plan"):
                from dsp.plan import Plan, load_plan
                current = (Plan.from_dict(item["plan"], source=f"line {n} plan") if isinstance(item["plan"], dict)
                           else load_plan(item["plan"]))
            plan = conductor.plan(item.get("prompt", ""), _tracks(item.get("tracks")), current)
            print(plan.to_json(indent=None) if args.json else _human(plan), flush=True)
        except (InputError, json.JSONDecodeError) as exc:
            failures += 1
            print(json.dumps({"error": f"line {n}: {exc}"}), flush=True)
    return 1 if failures else 0


def run(args) -> int:
    from .conductor import Conductor
    if args.batch is None and (args.prompt is None or not args.prompt.strip()):
        raise InputError("the prompt is empty: give one, e.g. stase plan \"sax 30 degrees left\" --tracks Sax,Drums")
    current = None
    if args.current is not None:
        from dsp.plan import load_plan
        current = load_plan(args.current)
    conductor = Conductor(model=args.model)
    if args.batch is not None:
        return _run_batch(args, conductor)
    plan = conductor.plan(args.prompt, _tracks(args.tracks), current)
    if args.out is not None:
        from dsp.plan import save_plan
        save_plan(plan, args.out)
    print(plan.to_json() if args.json else _human(plan))
    sys.stdout.flush()
    return 0
