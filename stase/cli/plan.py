"""``stase plan``: a prompt (or a JSONL batch of prompts) -> spatial plan JSON.

    stase plan "sax 30 degrees left, drums behind me" --tracks "Vox,Sax,Bass,Drums" --json
    stase plan "move the sax further left" --plan current.json --json
    stase plan --batch prompts.jsonl --json      # {"prompt": ..., "tracks": [...]} per line

Exit 2 with a message for an empty prompt, a cue naming an instrument no track plays, an
unreadable plan file or an ``--out`` that is not a writable file (stase/cli/__init__.py turns ``InputError``
into that).

``--batch``: each non-blank line is planned on its own, and a bad line (not JSON, not an object, a
``prompt`` that is not a string, ``tracks`` that are not a list of names, a bad ``plan``) gets an
error line ``{"line": N, "error": "line N: ..."}`` in its place while the other lines go on.  Exit
status: 0 when every line gave a plan, 1 when any line failed (a summary goes to stderr), 2 when
the batch file itself cannot be read.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from stase.core.errors import InputError


def add_arguments(parser) -> None:
    parser.add_argument("prompt", nargs="?", default=None, help="what you want, in words")
    parser.add_argument("--tracks", default=None,
                        help="comma-separated track names, e.g. 'Vox,Gtr,Bass,Drums' (default: the template's seats)")
    parser.add_argument("--plan", dest="current", type=Path, default=None,
                        help="current plan (JSON/YAML): the prompt is an edit of it")
    parser.add_argument("--model", default="auto",
                        help="auto (shipped default), none, smollm2, smollm2-agent (the shipped LoRA), gemma, or a path to a GGUF")
    parser.add_argument("--batch", type=Path, default=None,
                        help="JSONL file, one {\"prompt\": ..., \"tracks\": [...], \"plan\": optional} per line; "
                             "one plan (or one {\"line\": N, \"error\": ...} line) out per non-blank line, in order; "
                             "exit 0 if every line gave a plan, 1 if any failed")
    parser.add_argument("--out", type=Path, default=None,
                        help="also write the plan JSON to this file (not with --batch)")
    parser.add_argument("--json", action="store_true", help="print JSON (one object; one per line with --batch)")


def _tracks(value) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = [t for t in value.split(",")]
    if not isinstance(value, list):
        raise InputError(f"tracks must be a list of names or a comma-separated string, got {type(value).__name__}")
    return value


def _human(plan) -> str:
    lines = [f"pathway {plan.pathway}, template {plan.template}, room {plan.room}"]
    for s in plan.sources:
        lines.append(f"  {s.track:<14} {str(s.role):<16} az {s.azimuth_deg:+7.1f}  el {s.elevation_deg:+5.1f}  "
                     f"{s.distance_m:5.2f} m   ({s.provenance.get('azimuth_deg', '')})")
    lines.append(f"music: {plan.music_description}")
    lines.append(f"notes: {plan.mix_notes}")
    return "\n".join(lines)


def _batch_item(line: str, conductor):
    """The plan for one batch line; ``InputError`` for anything wrong with the line."""
    from stase.core.plan import Plan, load_plan
    try:
        item = json.loads(line)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise InputError(f"not JSON ({exc})" if isinstance(exc, json.JSONDecodeError)
                         else "not JSON (nested too deeply)") from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise InputError(f"not JSON ({exc})") from None
    if not isinstance(item, dict):
        raise InputError(f"each line must be a JSON object with 'prompt' and 'tracks', got {type(item).__name__}")
    current = None
    plan = item.get("plan")
    if plan is not None and plan != "" and plan != {}:   # other keys (an id, a label) are left alone
        if isinstance(plan, dict):
            current = Plan.from_dict(plan, source="plan")
        elif isinstance(plan, str) and plan.strip():
            current = load_plan(plan)
        else:
            raise InputError(f"'plan' must be a plan object or the path of a plan file, got {type(plan).__name__}")
    if current is not None:
        return conductor.edit(item.get("prompt", ""), current, extra_tracks=_tracks(item.get("tracks")))
    return conductor.plan(item.get("prompt", ""), _tracks(item.get("tracks")))


def _run_batch(args, conductor) -> int:
    try:
        text = args.batch.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read batch file {args.batch}: {exc}") from exc
    done = failures = 0
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        done += 1
        try:
            plan = _batch_item(line, conductor)
        except InputError as exc:
            failures += 1
            print(json.dumps({"line": n, "error": f"line {n}: {exc}"}), flush=True)
            continue
        except Exception as exc:  # noqa: BLE001 - one line's failure must not cost the others
            failures += 1
            print(json.dumps({"line": n, "error": f"line {n}: internal error ({type(exc).__name__}: {str(exc)[:300]})"}),
                  flush=True)
            continue
        print(plan.to_json(indent=None) if args.json else _human(plan), flush=True)
    if failures:
        print(f"stase plan: {failures} of {done} batch lines failed (see their error lines)", file=sys.stderr)
    return 1 if failures else 0


def run(args) -> int:
    from stase.agent.conductor import Conductor
    if args.batch is None and (args.prompt is None or not args.prompt.strip()):
        raise InputError("the prompt is empty: give one, e.g. stase plan \"sax 30 degrees left\" --tracks Sax,Drums")
    if args.batch is not None and args.out is not None:
        raise InputError("--out writes one plan; with --batch the plans go to standard output, one per line")
    if args.out is not None:
        from stase.core.plan import check_plan_output
        check_plan_output(args.out)   # before any work: a folder or unwritable path fails now
    current = None
    if args.current is not None:
        from stase.core.plan import load_plan
        current = load_plan(args.current)
    conductor = Conductor(model=args.model)
    if args.batch is not None:
        return _run_batch(args, conductor)
    if current is not None:
        plan = conductor.edit(args.prompt, current, extra_tracks=_tracks(args.tracks))
    else:
        plan = conductor.plan(args.prompt, _tracks(args.tracks))
    if args.out is not None:
        from stase.core.plan import save_plan
        save_plan(plan, args.out)
    print(plan.to_json() if args.json else _human(plan))
    sys.stdout.flush()
    return 0
