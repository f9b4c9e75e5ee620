"""Build the agent's request data sets from the hand-written sources in tools/agent_requests/.

    python tools/make_agent_requests.py

writes ``agent/data/agent_requests.jsonl`` (training: open_train.txt + explicit_train.txt) and
``tests/data/agent_heldout.jsonl`` (held-out: heldout.txt, never used while training or tuning).
Every request is written by hand (no phrase is generated from the parser's rules); this script
only turns each line ``session|request|targets or checks`` into a record with the effect the
request must have (:data:`bench.agent.EFFECTS` for open intents, the line's own checks for
explicit ones).  A request text may appear in one split only (checked).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SOURCES = REPO / "tools" / "agent_requests"
SESSIONS = {"B": "band", "J": "jazz", "S": "strings", "P": "pop"}


def read_source(path: Path, split: str) -> list[dict]:
    records, intent = [], None
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or (line.startswith("#") and not line.startswith("##")):
            continue
        if line.startswith("##"):
            intent = line[2:].strip()
            continue
        key, request, rest = (part.strip() for part in line.split("|"))
        record = {"id": f"{split}-{len(records) + 1:03d}", "session": SESSIONS[key], "request": request,
                  "kind": "explicit" if intent == "explicit" else "open", "intent": intent}
        if intent == "explicit":
            record["checks"] = [c.strip() for c in rest.split(";") if c.strip()]
        else:
            record["targets"] = [t.strip() for t in rest.split(",") if t.strip()]
        records.append(record)
        if not rest and intent == "explicit":
            sys.exit(f"{path}:{n}: an explicit request needs checks")
    return records


def main() -> None:
    train = read_source(SOURCES / "open_train.txt", "train") + read_source(SOURCES / "explicit_train.txt", "train")
    for i, r in enumerate(train, 1):
        r["id"] = f"train-{i:03d}"
    heldout = read_source(SOURCES / "heldout.txt", "heldout")
    seen = {r["request"].lower() for r in train}
    clash = [r["request"] for r in heldout if r["request"].lower() in seen]
    if clash:
        sys.exit(f"held-out requests also in the training split: {clash}")
    for path, rows in ((REPO / "agent" / "data" / "agent_requests.jsonl", train),
                       (REPO / "tests" / "data" / "agent_heldout.jsonl", heldout)):
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        print(f"{path.relative_to(REPO)}: {len(rows)} requests "
              f"({sum(r['kind'] == 'open' for r in rows)} open)")


if __name__ == "__main__":
    main()
