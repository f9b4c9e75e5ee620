"""``stase advise``: gain-balance advice for a folder of stems.

Usage::

    stase advise --stems DIR [--reference DIR] [--plan plan.json] [--genre pop] [--model none] [--json]

Each audio file in ``DIR`` is one track (file name without extension).  Mono and stereo stems
may be mixed; lengths may differ (shorter ones are padded with silence).  Stems at different
sample rates within one folder, or a reference folder at another rate, are resampled to the
rate most of the current stems use, with a warning.  ``--json`` prints
``{"tracks": [{"track", "gain_db", "confidence", "reasons"}], "summary", "mode", "warnings"}``.
"""
from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from stase.core.errors import InputError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stems", required=True, metavar="DIR",
                        help="folder of WAV/FLAC/AIFF stems, one per track (file name = track)")
    parser.add_argument("--reference", default=None, metavar="DIR",
                        help="folder of reference stems (a balanced version, or a reference mix's stems); "
                             "without it the advice uses documented priors")
    parser.add_argument("--plan", default=None, metavar="FILE",
                        help="plan JSON/YAML: roles, genre and placements (for spatial release from masking)")
    parser.add_argument("--genre", default=None,
                        help="genre for the priors: pop, rock, country, rap, metal (default: from the plan)")
    parser.add_argument("--model", default="none",
                        help="let the conductor's language model reword the summary: none (default), auto, "
                             "smollm2, smollm2-agent, gemma or a GGUF path; numbers always come from the analysis")
    parser.add_argument("--json", action="store_true", help="print the advice as JSON")


def load_folder(folder: str | Path, what: str, target_rate: int | None = None):
    """Read every audio file of a folder, keeping channels; resample odd rates to one rate.

    Returns ({track: (channels, samples) float32}, rate, warnings).
    """
    from stase.core.audio_io import read_audio, stem_files

    from stase.core.rates import resample_stems
    audio, rates = {}, {}
    for f in stem_files(folder, what):   # the one folder check (odd entries, clashing names)
        audio[f.stem], rates[f.stem] = read_audio(f)
    rate = target_rate or Counter(rates.values()).most_common(1)[0][0]
    warnings = []
    for name, r in rates.items():
        if r != rate:
            audio[name] = resample_stems({name: audio[name]}, r, rate)[name]
            warnings.append(f"{what}: {name} resampled from {r} Hz to {rate} Hz")
    return audio, rate, warnings


def format_text(result: dict) -> str:
    lines = [f"{'track':<18} {'gain':>7}  {'conf':>4}  reason"]
    for t in result["tracks"]:
        first = t["reasons"][0] if t["reasons"] else ""
        lines.append(f"{t['track'][:18]:<18} {t['gain_db']:>+6.1f}dB  {t['confidence']:>4.2f}  {first}")
        for extra in t["reasons"][1:]:
            lines.append(f"{'':<18} {'':>8}  {'':>4}  {extra}")
    lines.append("")
    lines.append(result["summary"])
    for w in result.get("warnings", []):
        lines.append(f"warning: {w}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from stase.core.plan import load_plan

    from stase.agent.advisor.advice import advise
    plan = load_plan(args.plan) if args.plan else None
    stems, rate, warnings = load_folder(args.stems, "stems")
    reference = None
    if args.reference:
        reference, _, ref_warnings = load_folder(args.reference, "reference", target_rate=rate)
        warnings += ref_warnings
    rephrase = None
    if args.model and args.model != "none":
        from stase.agent.llm import ConductorModel, resolve_model_path

        from stase.agent.advisor.advice import model_rephraser
        path = resolve_model_path(args.model)
        if path is not None:
            rephrase = model_rephraser(ConductorModel(path))
    result = advise(stems, rate, reference=reference, plan=plan, genre=args.genre, rephrase=rephrase)
    result["warnings"] = warnings + result["warnings"]
    print(json.dumps(result, indent=2) if args.json else format_text(result))
    return 0
