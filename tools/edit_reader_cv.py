"""Leave-one-writer-out test of the edit reader against rules that never saw the writer (issue 16).

Each fresh batch of edit requests in tests/data/producer_eval.jsonl was scored on the parser as it
stood before the round that read that batch's dev rows (the "frozen" rules).  This tool puts those
rules back (a git worktree of each frozen commit, imported from a temporary package tree), replays
every **dev** edit row of the batch through them, and then applies the edit reader the way
:meth:`stase.agent.conductor.Conductor.edit` does, trained on the examples of every *other*
writer.  So it measures what the reader adds for a writer neither the rules nor the reader met.
Held-out rows are never read.

    python tools/edit_reader_cv.py --json            # the shipped thresholds (edit_reader's constants)
    python tools/edit_reader_cv.py --sweep           # a few thresholds

Reads the git history of this checkout (the frozen commits below) and needs a few minutes.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EVAL = ROOT / "tests" / "data" / "producer_eval.jsonl"
#: batch -> (first id, last id, the commit before the round that read the batch)
FROZEN = {8: (1085, 1264, "d09597f"), 9: (1265, 1424, "5a37da2"), 10: (1425, 1744, "b7c7254"),
          12: (1745, 1864, "9869370"), 13: (1865, 1981, "2ab7d71"), 14: (1982, 2101, "b4bb09e"),
          15: (2102, 2221, "fd5137e"), 16: (2222, 2341, "c9c7ef4")}
_PACKAGES = ("presets", "dsp", "agent", "bridge", "onnx_models")

_DUMP = r'''
import json, sys
from stase.agent.conductor import Conductor
from stase.agent.parser import parse_prompt
lo, hi, src, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
try:   # the rules alone (a frozen tree that has the edit reader already)
    c = Conductor(model="none", edit_reader=False)
except TypeError:
    c = Conductor(model="none")
places = lambda plan: {s.track: [s.azimuth_deg, s.elevation_deg, s.distance_m, s.gain_db] for s in plan.sources}
with open(out, "w") as f:
    for line in open(src):
        r = json.loads(line)
        if r["split"] != "dev" or "setup" not in r or not (lo <= int(r["id"][1:]) <= hi):
            continue
        rec = {"id": r["id"]}
        try:
            b = c.plan(r["setup"], r["tracks"]); rec["before"] = places(b)
            names = [s.track for s in b.sources]
            roles = {s.track: s.role or c.lexicon.role_of(s.track) for s in b.sources}
            try:   # (the oldest frozen parser has no edit flag)
                p = parse_prompt(r["prompt"], names, roles, c.lexicon, edit=True)
            except TypeError:
                p = parse_prompt(r["prompt"], names, roles, c.lexicon)
            rec["mentions"] = [[m.start, m.tracks, m.text] for m in p.mentions]
            rec["number"] = any(v == "number" for q in p.cues for v in getattr(q, "precedence", {}).values())
            rec["after"] = places(c.edit(r["prompt"], b))
        except Exception as e:
            rec["error"] = repr(e)
        f.write(json.dumps(rec) + "\n")
'''


def batch_of(row: dict) -> int:
    m = re.search(r"batch (\d+)", row.get("note", ""))
    if m:
        return int(m.group(1))
    n = int(row["id"][1:])
    return next((b for b, (lo, hi, _) in FROZEN.items() if lo <= n <= hi and b in (8, 9)), 0)


def frozen_runs(work: Path) -> list[dict]:
    """Every dev edit row of the FROZEN batches, replayed through its frozen rules."""
    records = []
    for batch, (lo, hi, commit) in FROZEN.items():
        tree, lib = work / f"tree{batch}", work / f"lib{batch}"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-f", str(tree), commit],
                       check=True, capture_output=True)
        try:
            shutil.copytree(tree / "stase", lib / "stase")
            for p in _PACKAGES:
                os.symlink(tree / p, lib / "stase" / p)
            out = work / f"frozen{batch}.jsonl"
            subprocess.run([sys.executable, "-c", _DUMP, str(lo), str(hi), str(EVAL), str(out)], check=True,
                           env={**os.environ, "PYTHONPATH": str(lib)}, cwd=work)
            records += [json.loads(line) for line in out.read_text().splitlines()]
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], capture_output=True)
    return records


class _Plan:
    def __init__(self, places: dict):
        self.places = {k.lower(): v for k, v in places.items()}

    def source(self, track: str):
        from types import SimpleNamespace
        a, e, d, g = self.places[track.lower()]   # KeyError: the bench counts it wrong
        return SimpleNamespace(azimuth_deg=a, elevation_deg=e, distance_m=d, gain_db=g, reverb_db=0.0)


def right(row: dict, before: dict | None, after: dict | None) -> bool:
    """The bench's edit-effect test (bench.conductor.check_expectation and the unchanged tracks)."""
    from bench.conductor import UNCHANGED_TOLERANCE, check_expectation
    if before is None or after is None:
        return False
    plan = _Plan(after)
    if not all(check_expectation(plan, exp) for exp in row.get("expect", [])):
        return False
    was = _Plan(before)
    for track in row.get("unchanged", []):
        try:
            a, b = was.source(track), plan.source(track)
        except KeyError:
            return False
        if any(abs(getattr(a, k) - getattr(b, k)) > UNCHANGED_TOLERANCE
               for k in ("azimuth_deg", "elevation_deg", "distance_m", "gain_db")):
            return False
    return True


def evaluate(records: list[dict], rows: dict, min_confidence: float, override: float,
             resize: bool | None = None) -> dict:
    """The edits right with the rules alone and with the reader; ``resize``: the size rule
    (``Conductor._resized``), default as shipped (``conductor.RESIZE_STEPS``)."""
    from stase.agent import edit_reader as er
    from stase.agent.conductor import RESIZE_STEPS, Conductor
    from stase.agent.parser import normalise_text
    resize = RESIZE_STEPS if resize is None else resize
    examples = [json.loads(line) for line in er.EXAMPLES_PATH.read_text(encoding="utf-8").splitlines()]
    rules = Conductor(model="none", edit_reader=False)
    readers: dict[int, er.EditReader] = {}
    counts: Counter = Counter()
    for rec in records:
        row = rows[rec["id"]]
        batch = batch_of(row)
        if batch not in readers:   # trained without this writer's requests
            readers[batch] = er.EditReader([e for e in examples if batch_of(rows[e["source_id"]]) != batch])
        reader = readers[batch]
        before, after, error = rec.get("before"), rec.get("after"), rec.get("error", "")
        was_right = right(row, before, after)
        ordered = sorted(rec.get("mentions", []), key=lambda m: m[0])
        mentioned = er.named_groups(normalise_text(row["prompt"]), [(m[2], m[1]) for m in ordered])
        reading = None
        if before is not None:
            if "could not find an edit" in error:
                reading = reader.read(row["prompt"], mentioned, list(before), min_confidence)
            elif "no session track plays" in error and mentioned:
                reading = reader.read(row["prompt"], mentioned, list(before), er.REFUSAL_CONFIDENCE)
            elif after is not None:
                done = er.effect_operations(before, after)
                if not done:
                    reading = reader.read(row["prompt"], mentioned, list(before), min_confidence)
                elif not rec.get("number"):   # never over a number the user wrote
                    candidate = reader.read(row["prompt"], mentioned, list(before), override)
                    if candidate is not None and not er.agrees(candidate.operation, done):
                        reading = candidate
                    elif resize:   # the rules' move with another size than the one said
                        sized = reader.read(row["prompt"], mentioned, list(before), min_confidence)
                        if sized is not None and sized.size in er.RESIZED and \
                                er.same_move(sized.operation, before, after, sized.tracks):
                            reading = sized
        now_right = was_right
        if reading is not None:
            try:
                plan = rules.plan(row["setup"], row["tracks"])
                edited = rules.edit(reading.request, plan)
                places = lambda p: {s.track: [s.azimuth_deg, s.elevation_deg, s.distance_m, s.gain_db] for s in p.sources}
                now_right = right(row, places(plan), places(edited))
            except Exception:  # noqa: BLE001 - a reading the rules cannot apply counts as wrong
                now_right = False
            counts["used"] += 1
            counts["fixed"] += now_right and not was_right
            counts["broke"] += was_right and not now_right
        counts["n"] += 1
        counts["rules"] += was_right
        counts["with_reader"] += now_right
        counts[f"batch{batch}_n"] += 1
        counts[f"batch{batch}_rules"] += was_right
        counts[f"batch{batch}_with_reader"] += now_right
    return {"min_confidence": min_confidence, "override_confidence": override, "resize": resize,
            **dict(sorted(counts.items()))}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--sweep", action="store_true")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    rows = {r["id"]: r for r in map(json.loads, EVAL.read_text(encoding="utf-8").splitlines())}
    with tempfile.TemporaryDirectory() as tmp:
        records = frozen_runs(Path(tmp))
    from stase.agent.edit_reader import MIN_CONFIDENCE, OVERRIDE_CONFIDENCE
    settings = ([(0.4, 0.7), (0.5, 0.5), (0.5, 0.7), (0.6, 0.7), (0.5, 0.8)] if args.sweep
                else [(MIN_CONFIDENCE, OVERRIDE_CONFIDENCE)])
    report = [evaluate(records, rows, lo, hi) for lo, hi in settings]
    if args.sweep:   # the size rule (Conductor._resized) both ways, at the shipped thresholds
        report += [evaluate(records, rows, MIN_CONFIDENCE, OVERRIDE_CONFIDENCE, resize=r) for r in (False, True)]
    print(json.dumps(report, indent=None if args.json else 2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
