"""Bench of the agent loop (:mod:`stase.agent.agent_loop`) on the held-out requests.

    python -m bench.agent --json [--split heldout|train] [--model smollm2-agent|smollm2|none|PATH] [--model-limit N]

For each request of ``tests/data/agent_heldout.jsonl`` (hand-written, never used while training
or tuning; ``tools/make_agent_requests.py`` builds it) the session named by the record
(``agent/data/agent_sessions.json``) is the current plan and the agent proposes a change.  Scored:

* open requests: the fraction whose proposal has the right EFFECT (:data:`EFFECTS`: "wider" = mean
  |azimuth| of the named tracks grows by >= 10 deg, "intimate" = mean distance and the plan's
  reverb_db fall, "give_room" = the named tracks' smallest pairwise separation grows, ...), with
  the deterministic fallback alone and with the model (``smollm2-agent``: the packaged
  SmolLM2-135M with the shipped LoRA adapter and its compact prompt; ``smollm2``/``gemma``/a path:
  zero-shot, prompted with the tool list);
* the model's tool-call validity (its answer passes :func:`stase.agent.agent_loop.check_call`);
* other (explicit) requests: accuracy of their checks with the agent and without it
  (``Conductor.edit`` alone, the path before the agent), and with the model in the agent
  (``model.explicit_right``: the model is asked only where the parser leaves an open wish);
* latency p50/p95 in seconds, warm (one request answered first by each configuration is not
  counted).

A zero-shot model call costs tens of seconds on the 2-core reference machine, so the model runs on
the first ``--model-limit`` open requests only (say so in the numbers: ``model.n``; a limit of at
least the number of open requests runs them all, and the explicit ones too).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
TRAIN_PATH = REPO / "agent" / "data" / "agent_requests.jsonl"
HELDOUT_PATH = REPO / "tests" / "data" / "agent_heldout.jsonl"
SESSIONS_PATH = REPO / "agent" / "data" / "agent_sessions.json"
#: The effect an open intent must have: (metric, direction, least change, over which tracks).
EFFECTS: dict[str, list[tuple[str, str, float, str]]] = {
    "wider": [("mean_abs_azimuth_deg", "up", 10.0, "targets")],
    "narrower": [("mean_abs_azimuth_deg", "down", 10.0, "targets")],
    "intimate": [("mean_distance_m", "down", 1e-6, "all"), ("reverb_db", "down", 1e-6, "plan")],
    "closer": [("mean_distance_m", "down", 1e-6, "targets")],
    "further": [("mean_distance_m", "up", 1e-6, "targets")],
    "stage": [("mean_distance_m", "down", 1e-6, "all")],
    "give_room": [("min_separation_deg", "up", 1e-6, "targets")],
    "bigger_room": [("room_volume_m3", "up", 1e-6, "plan")],
    "smaller_room": [("room_volume_m3", "down", 1e-6, "plan")],
    "advise": [("tool", "advise", 0.0, "plan")],
}
#: "narrower" asks the mean |azimuth| to fall by 10 deg, or by this share of what it was when
#: that is less (a session already within +-10 deg cannot fall 10 deg; the request still says
#: "clearly narrower"): a relative floor, as for every "down" on a bounded quantity.
NARROWER_SHARE = 0.4
#: How close an exact check must come: deg, m, dB.
ABS_TOLERANCE = {"az": 0.5, "dist": 0.05, "gain": 0.05}


def load_records(path: Path = HELDOUT_PATH) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def load_sessions(path: Path = SESSIONS_PATH) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def session_plan(name: str, sessions: dict | None = None):
    """The current plan of a named bench session (every placement's provenance says so)."""
    from stase.core.plan import Plan, SourcePlacement
    spec = (sessions or load_sessions())[name]
    return Plan(room=spec["room"], reverb_db=float(spec["reverb_db"]), pathway="manual", sources=[
        SourcePlacement(track, azimuth_deg=float(az), distance_m=float(d), role=role,
                        provenance={"azimuth_deg": f"bench session {name}"})
        for track, az, d, role in spec["sources"]])


def _metric(name: str, plan, tracks: list[str], rooms: dict) -> float:
    from stase.agent.agent_loop import room_volume_m3
    chosen = [plan.source(t) for t in tracks] if tracks else list(plan.sources)
    if name == "mean_abs_azimuth_deg":
        return float(np.mean([abs(s.azimuth_deg) for s in chosen]))
    if name == "mean_distance_m":
        return float(np.mean([s.distance_m for s in chosen]))
    if name == "min_separation_deg":
        az = [s.azimuth_deg for s in chosen]
        return float(min(abs((a - b + 180.0) % 360.0 - 180.0) for i, a in enumerate(az) for b in az[i + 1:]))
    if name == "reverb_db":
        return float(plan.reverb_db)
    if name == "room_volume_m3":
        return room_volume_m3(rooms.get(plan.room, {}))
    raise KeyError(name)


def effect_right(record: dict, before, after, tool: str | None, rooms: dict) -> bool:
    """Whether a proposal (``after``; ``None`` = no change) has the record's expected effect."""
    after = before if after is None else after
    if record["kind"] == "open":
        for metric, direction, least, scope in EFFECTS[record["intent"]]:
            if metric == "tool":
                if tool != direction:
                    return False
                continue
            tracks = record.get("targets") if scope == "targets" else []
            was = _metric(metric, before, tracks, rooms)
            change = _metric(metric, after, tracks, rooms) - was
            if metric == "mean_abs_azimuth_deg" and direction == "down":
                least = min(least, NARROWER_SHARE * was)   # a mix within +-10 deg cannot lose 10 deg
            if (direction == "up" and change < least) or (direction == "down" and -change < least):
                return False
        return True
    return all(_check(c, before, after) for c in record["checks"])


def _check(check: str, before, after) -> bool:
    """One explicit check: ``Track.az=30``, ``Track.dist-``, ``room=church``, ``reverb+``."""
    fields = {"az": "azimuth_deg", "dist": "distance_m", "gain": "gain_db"}
    if check.startswith("room="):
        return after.room == check[5:]
    if check.startswith("reverb"):
        change = after.reverb_db - before.reverb_db
        return change > 0 if check.endswith("+") else change < 0
    found = re.fullmatch(r"(.+)\.(az|dist|gain)(?:=(-?[\d.]+)|([+-]))", check)
    if found is None:
        raise ValueError(f"unreadable check {check!r}")
    target, metric, want, direction = found.groups()
    old, new = getattr(before.source(target), fields[metric]), getattr(after.source(target), fields[metric])
    if want is not None:
        diff = (new - float(want) + 180.0) % 360.0 - 180.0 if metric == "az" else new - float(want)
        return abs(diff) <= ABS_TOLERANCE[metric]
    change = (new - old + 180.0) % 360.0 - 180.0 if metric == "az" else new - old
    return change > 1e-6 if direction == "+" else change < -1e-6


def _percentiles(values: list[float]) -> dict:
    if not values:
        return {"p50": None, "p95": None, "n": 0}
    return {"p50": round(float(np.percentile(values, 50)), 4), "p95": round(float(np.percentile(values, 95)), 4),
            "n": len(values)}


def run_agent(agent, records: list[dict], sessions: dict, rooms: dict) -> list[dict]:
    """Every record through ``agent.respond``: right effect, tool, model validity, latency."""
    rows = []
    for r in records:
        before = session_plan(r["session"], sessions)
        start = time.perf_counter()
        try:
            turn = agent.respond(r["request"], before)
            after = turn.proposal.after if turn.proposal else None
            tool, valid, error = turn.tool, turn.model_valid, None
        except Exception as exc:  # noqa: BLE001 - a refused request scores as wrong
            after, tool, valid, error, turn = None, None, None, f"{type(exc).__name__}: {exc}", None
        elapsed = time.perf_counter() - start
        rows.append({"id": r["id"], "kind": r["kind"], "intent": r["intent"], "tool": tool, "valid": valid,
                     "right": error is None and effect_right(r, before, after, tool, rooms), "error": error,
                     "latency_s": elapsed, "model_latency_s": turn.model_latency_s if turn else None,
                     "model_call": turn.model_call if turn else None})
    return rows


def run_parser_only(conductor, records: list[dict], sessions: dict, rooms: dict) -> list[dict]:
    """The path without the agent: ``Conductor.edit`` (an InputError = no change)."""
    from stase.core.errors import InputError
    rows = []
    for r in records:
        before = session_plan(r["session"], sessions)
        start = time.perf_counter()
        try:
            after = conductor.edit(r["request"], before)
        except InputError:
            after = None
        rows.append({"id": r["id"], "kind": r["kind"], "right": effect_right(r, before, after, "edit", rooms),
                     "latency_s": time.perf_counter() - start})
    return rows


def _share(rows: list[dict], kind: str) -> dict:
    chosen = [x for x in rows if x["kind"] == kind]
    by_intent: dict[str, list[bool]] = {}
    for x in chosen:
        by_intent.setdefault(x.get("intent") or kind, []).append(x["right"])
    return {"right": round(sum(x["right"] for x in chosen) / max(len(chosen), 1), 4), "n": len(chosen),
            "by_intent": {k: round(sum(v) / len(v), 3) for k, v in sorted(by_intent.items())}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--split", choices=("heldout", "train"), default="heldout")
    ap.add_argument("--model", default="smollm2", help="smollm2-agent | smollm2 | gemma | none | a GGUF path")
    ap.add_argument("--model-limit", type=int, default=10, help="open requests the model answers (each costs seconds)")
    args = ap.parse_args(argv)
    from stase.agent.agent_loop import Agent
    from stase.agent.conductor import Conductor
    records = load_records(HELDOUT_PATH if args.split == "heldout" else TRAIN_PATH)
    sessions = load_sessions()
    conductor = Conductor(model="none")
    rooms = conductor.rooms
    warm = [r for r in records if r["kind"] == "explicit"][:1]
    run_agent(Agent(conductor), warm, sessions, rooms)        # warm the parser and lexicon
    fallback = run_agent(Agent(conductor), records, sessions, rooms)
    without = run_parser_only(conductor, records, sessions, rooms)
    result = {"split": args.split, "requests": len(records),
              "open": {"fallback": _share(fallback, "open"), "without_agent": _share(without, "open")},
              "explicit": {"with_agent": _share(fallback, "explicit"), "without_agent": _share(without, "explicit")},
              "latency_s": {"fallback": _percentiles([x["latency_s"] for x in fallback[1:]]),
                            "without_agent": _percentiles([x["latency_s"] for x in without[1:]])}}
    if args.model not in ("none", "off") and args.model_limit > 0:
        from stase.agent.llm import ConductorModel, resolve_model_path
        model = ConductorModel(resolve_model_path(args.model))
        agent = Agent(conductor, model=model)
        opens = [r for r in records if r["kind"] == "open"]
        chosen = opens[:args.model_limit]
        run_agent(agent, opens[:1], sessions, rooms)           # warms the model (not counted)
        rows = run_agent(agent, chosen, sessions, rooms)
        asked = [x for x in rows if x["valid"] is not None]
        only_model = [x for x in rows if x["valid"]]
        result["model"] = {
            "name": getattr(model, "name", model.path.stem), "prompt_style": getattr(model, "prompt_style", "full"),
            "n": len(rows),
            "open_right_with_fallback": _share(rows, "open")["right"],
            "tool_call_validity": round(sum(bool(x["valid"]) for x in asked) / max(len(asked), 1), 4),
            "open_right_when_model_acted": round(sum(x["right"] for x in only_model) / max(len(only_model), 1), 4),
            "model_acted": len(only_model),
            "latency_s": _percentiles([x["model_latency_s"] for x in asked if x["model_latency_s"] is not None]),
            "calls": [{"id": x["id"], "intent": x["intent"], "right": x["right"], "call": x["model_call"]}
                      for x in rows][:20]}
        fb = {r["id"]: r for r in fallback}
        result["model"]["fallback_right_on_same"] = round(
            sum(fb[x["id"]]["right"] for x in rows) / max(len(rows), 1), 4)
        result["model"]["by_intent"] = _share(rows, "open")["by_intent"]
        no_loss = True
        if len(chosen) == len(opens):
            explicit_rows = run_agent(agent, [r for r in records if r["kind"] == "explicit"], sessions, rooms)
            result["model"]["explicit_right"] = _share(explicit_rows, "explicit")["right"]
            result["model"]["explicit_model_asked"] = sum(x["valid"] is not None for x in explicit_rows)
            no_loss = result["model"]["explicit_right"] >= result["explicit"]["without_agent"]["right"]
        result["model"]["latency_s_all_open"] = _percentiles([x["latency_s"] for x in rows])
        gate = (result["model"]["open_right_with_fallback"] >= 0.8 and result["model"]["latency_s"]["p50"] is not None
                and result["model"]["latency_s"]["p50"] <= 1.5 and no_loss and len(chosen) == len(opens))
        result["model"]["default_on"] = bool(gate)
    print(json.dumps(result, indent=2) if args.json else
          f"open right: fallback {result['open']['fallback']['right']:.1%}, without agent "
          f"{result['open']['without_agent']['right']:.1%}; explicit: with agent "
          f"{result['explicit']['with_agent']['right']:.1%}, without {result['explicit']['without_agent']['right']:.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
