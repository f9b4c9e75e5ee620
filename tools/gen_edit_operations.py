"""Write agent/data/edit_operations.jsonl: the edit reader's labelled examples (issue 16).

Every row is one **dev** edit request of tests/data/producer_eval.jsonl (never a held-out row),
labelled with the one operation its expectations ask for: ``swap`` / ``mirror`` / ``centre`` from
the row's kind, and for the stepped kinds the direction of the expected values against the plan
the row's ``setup`` gives (``left`` when the expected azimuth is left of the one before, ``wider``
when the expected ``|azimuth|`` grows, and so on).  Rows whose tracks go different ways ("keys
closer and drums further back") and rows that expect a refusal are left out: one operation per
request is what the reader predicts.

    python tools/gen_edit_operations.py          # rewrites the file; prints the counts
    python tools/gen_edit_operations.py --check  # exit 1 when the file is not what it would write
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EVAL = ROOT / "tests" / "data" / "producer_eval.jsonl"
OUT = ROOT / "agent" / "data" / "edit_operations.jsonl"

#: kind -> (expected field, index into (azimuth, elevation, distance, gain), up-word, down-word)
_STEPPED = {
    "edit_left_right": ("azimuth_deg", 0, "left", "right"),
    "edit_up_down": ("elevation_deg", 1, "up", "down"),
    "edit_closer_further": ("distance_m", 2, "further", "closer"),
    "edit_louder_quieter": ("gain_db", 3, "louder", "quieter"),
}


def operation_of(row: dict, before: dict[str, tuple[float, float, float, float]]) -> str | None:
    """The one operation ``row`` expects, or ``None`` (several directions, nothing to compare)."""
    kind = row["kind"]
    if kind in ("edit_swap", "edit_mirror", "edit_centre"):
        return kind.removeprefix("edit_")
    votes = set()
    lowered = {k.lower(): v for k, v in before.items()}
    for exp in row.get("expect", []):
        was = lowered.get(exp["track"].lower())
        if was is None:
            continue
        if kind == "edit_wider_narrower" and "azimuth_deg" in exp:
            votes.add("wider" if abs(exp["azimuth_deg"]) > abs(was[0]) else "narrower")
        elif kind in _STEPPED and _STEPPED[kind][0] in exp:
            field, index, up, down = _STEPPED[kind]
            votes.add(up if exp[field] > was[index] else down)
    return votes.pop() if len(votes) == 1 else None


def build() -> list[dict]:
    sys.path.insert(0, str(ROOT))
    from stase.agent.conductor import Conductor
    conductor = Conductor(model="none")
    rows = [json.loads(line) for line in EVAL.read_text(encoding="utf-8").splitlines() if line.strip()]
    heldout_texts = {r["prompt"] for r in rows if r["split"] == "heldout"}
    out = []
    for row in rows:
        if row["split"] != "dev" or "setup" not in row or row.get("expect_error") or not row["kind"].startswith("edit_"):
            continue
        if row["prompt"] in heldout_texts:   # the same words in a held-out row: left out
            continue
        plan = conductor.plan(row["setup"], row["tracks"])
        before = {s.track: (s.azimuth_deg, s.elevation_deg, s.distance_m, s.gain_db) for s in plan.sources}
        operation = operation_of(row, before)
        if operation is not None:
            out.append({"text": row["prompt"], "operation": operation, "source_id": row["id"]})
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    rows = build()
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    if args.check:
        same = OUT.exists() and OUT.read_text(encoding="utf-8") == text
        print("up to date" if same else f"{OUT} differs from what tools/gen_edit_operations.py writes")
        return 0 if same else 1
    OUT.write_text(text, encoding="utf-8")
    print(json.dumps({"rows": len(rows), "operations": Counter(r["operation"] for r in rows)}, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
