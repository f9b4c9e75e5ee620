"""Conductor quality and speed on the labelled eval set (tests/data/conductor_eval.jsonl).

    python -m bench.conductor --json                       # parser+retrieval vs + SmolLM2
    python -m bench.conductor --json --models none,smollm2,gemma --limit 40

Reports, per configuration: explicit-cue accuracy (every expected azimuth within its stated
tolerance, elevation within its tolerance, distance within 10 %; explicit and edit prompts),
template top-1 accuracy (prompts labelled with a template), and warm per-prompt latency (median
and p90 ms; the prompt-embedding memo is cleared before each timed call so nothing is reused).
Model configurations trust the model's template pick among the top-3 retrieved, so their top-1
measures what the model adds.  Ratios are against the "none" run in the same process.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from dsp.conventions import great_circle_deg

EVAL_PATH = Path(__file__).resolve().parents[1] / "tests" / "data" / "conductor_eval.jsonl"
DISTANCE_TOLERANCE = 0.10


def load_eval(path: Path = EVAL_PATH) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def check_expectation(plan, exp: dict) -> bool:
    """True when the plan meets one labelled expectation (see the module docstring)."""
    try:
        s = plan.source(exp["track"])
    except KeyError:
        return False
    ok = True
    if "azimuth_deg" in exp:
        ok &= great_circle_deg(s.azimuth_deg, 0.0, exp["azimuth_deg"], 0.0) <= exp.get("tol_deg", 2.0) + 1e-9
    if "elevation_deg" in exp:
        ok &= abs(s.elevation_deg - exp["elevation_deg"]) <= exp.get("el_tol_deg", 5.0) + 1e-9
    if "distance_m" in exp:
        ok &= abs(s.distance_m - exp["distance_m"]) <= DISTANCE_TOLERANCE * exp["distance_m"] + 1e-9
    return bool(ok)


def run_row(conductor, row: dict):
    if row.get("setup"):
        current = conductor.plan(row["setup"], row["tracks"])
        return conductor.edit(row["prompt"], current)
    return conductor.plan(row["prompt"], row["tracks"])


def evaluate(conductor, rows: list[dict]) -> dict:
    """Accuracy and latency of one conductor configuration over ``rows``."""
    hits = total = t_hits = t_total = 0
    latencies, misses = [], []
    by_kind: dict[str, list[float]] = {}
    for row in rows:
        memo = getattr(conductor.retriever, "_memo", None)
        if memo is not None:
            memo.clear()
        t0 = time.perf_counter()
        try:
            plan = run_row(conductor, row)
            error = None
        except Exception as exc:  # noqa: BLE001 - a failed prompt counts as wrong, and is listed
            plan, error = None, repr(exc)
        latencies.append((time.perf_counter() - t0) * 1000.0)
        by_kind.setdefault(row["kind"], []).append(latencies[-1])
        for exp in row.get("expect", []):
            total += 1
            good = plan is not None and check_expectation(plan, exp)
            hits += good
            if not good:
                misses.append({"id": row["id"], "prompt": row["prompt"], "track": exp["track"], "error": error,
                               "got": None if plan is None else _got(plan, exp["track"])})
        if "expected_template" in row:
            t_total += 1
            good = plan is not None and plan.template == row["expected_template"]
            t_hits += good
            if not good:
                misses.append({"id": row["id"], "prompt": row["prompt"], "expected_template": row["expected_template"],
                               "got_template": None if plan is None else plan.template, "error": error})
    latencies.sort()
    return {
        "explicit_accuracy": hits / total if total else None, "explicit_checked": total,
        "template_top1": t_hits / t_total if t_total else None, "template_checked": t_total,
        "latency_ms_median": statistics.median(latencies),
        "latency_ms_p90": latencies[int(0.9 * (len(latencies) - 1))],
        "latency_ms_median_by_kind": {k: round(statistics.median(v), 2) for k, v in sorted(by_kind.items())},
        "prompts": len(rows), "misses": misses,
    }


def _got(plan, track):
    try:
        s = plan.source(track)
    except KeyError:
        return None
    return {"azimuth_deg": round(s.azimuth_deg, 1), "elevation_deg": round(s.elevation_deg, 1),
            "distance_m": round(s.distance_m, 2)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="none,smollm2", help="comma list: none, smollm2, gemma, or GGUF paths")
    parser.add_argument("--limit", type=int, default=0,
                        help="evaluate model configurations on N prompts only (every k-th row, so both kinds appear)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--misses", action="store_true", help="include every miss in the output")
    args = parser.parse_args(argv)
    from agent.conductor import Conductor
    rows = load_eval()
    report = {"eval_set": str(EVAL_PATH.relative_to(EVAL_PATH.parents[2])), "prompts": len(rows), "configs": {}}
    base = None
    subset_rows = rows[:: max(1, -(-len(rows) // args.limit))] if args.limit else rows
    report["model_subset_ids"] = [r["id"] for r in subset_rows] if args.limit else "all"
    for spec in [m.strip() for m in args.models.split(",") if m.strip()]:
        conductor = Conductor(model=spec, trust_model_template=spec != "none")
        t0 = time.perf_counter()
        conductor.warm_up()
        if conductor.llm is not None:
            conductor.plan("warm up the model with a jazz trio", ["Piano", "Bass", "Drums"])
        load_s = time.perf_counter() - t0
        subset = rows if spec == "none" else subset_rows
        result = evaluate(conductor, subset)
        result["load_s"] = round(load_s, 2)
        if spec == "none":
            base = result
            if args.limit:
                result["on_model_subset"] = evaluate(conductor, subset_rows)
                result["on_model_subset"]["misses"] = result["on_model_subset"]["misses"][:5]
        elif base is not None:
            ref = base.get("on_model_subset", base)
            result["latency_ratio_vs_none"] = result["latency_ms_median"] / ref["latency_ms_median"]
        if not args.misses:
            result["misses"] = result["misses"][:12]
        report["configs"][spec] = result
    print(json.dumps(report, indent=None if args.json else 2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
