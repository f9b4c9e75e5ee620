"""``stase render``: a folder of mono stems + a plan file -> a binaural (or stereo) WAV.

Usage::

    stase render --stems DIR --plan plan.json -o mix.wav [--stereo] [--downmix] [--rate HZ]
                 [--hrtf FILE.sofa] [--dry] [--json]

Stems are matched to the plan's tracks by file name without extension, ignoring case.  Stems
must be mono (``--downmix`` averages multichannel stems) and share one sample rate; ``--rate``
resamples them (polyphase, ``scipy.signal.resample_poly``) to another session rate.  The HRTF
set is always resampled to the rate rendered at.
"""
from __future__ import annotations

import argparse
import json
from math import gcd

import numpy as np

from .errors import InputError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stems", required=True, metavar="DIR",
                        help="folder of mono WAV/FLAC/AIFF stems, one per plan track (file name = track)")
    parser.add_argument("--plan", required=True, metavar="FILE",
                        help="plan JSON/YAML: room, reverb_engine, sources[{track, azimuth_deg, "
                             "elevation_deg, distance_m, mode, gain_db}] (azimuth positive = left)")
    parser.add_argument("-o", "--output", required=True, metavar="WAV", help="where to write the mix")
    parser.add_argument("--stereo", action="store_true",
                        help="loudspeaker stereo: constant-power panning instead of binaural modes")
    parser.add_argument("--downmix", action="store_true",
                        help="average multichannel stems to mono instead of refusing them")
    parser.add_argument("--rate", type=int, default=None, metavar="HZ",
                        help="render at this sample rate (stems are resampled); default: the stems' rate")
    parser.add_argument("--hrtf", default=None, metavar="SOFA",
                        help="SimpleFreeFieldHRIR SOFA file (default: the shipped MIT KEMAR set)")
    parser.add_argument("--dry", action="store_true", help="ignore the plan's room (no reverb)")
    parser.add_argument("--block", type=int, default=1024, help="streaming block size (default 1024)")
    parser.add_argument("--json", action="store_true", help="print the level report as JSON")


def resample_stems(stems: dict[str, np.ndarray], from_rate: int, to_rate: int) -> dict[str, np.ndarray]:
    """Polyphase-resample every stem from ``from_rate`` to ``to_rate`` (float32 out)."""
    if from_rate == to_rate:
        return stems
    from scipy.signal import resample_poly
    g = gcd(int(from_rate), int(to_rate))
    return {k: resample_poly(v, to_rate // g, from_rate // g).astype(np.float32) for k, v in stems.items()}


def run(args: argparse.Namespace) -> int:
    from .audio_io import load_stems, write_audio
    from .offline import render_plan
    from .plan import load_plan

    plan = load_plan(args.plan)
    stems, rate = load_stems(args.stems, downmix=args.downmix)
    target = rate if args.rate is None else int(args.rate)
    if not 8000 <= target <= 384000:
        raise InputError(f"--rate must be between 8000 and 384000 Hz, got {target}")
    if args.block < 1:
        raise InputError(f"--block must be a positive number of samples, got {args.block}")
    room = None if args.dry else _checked_room(plan.room)
    stems = resample_stems(stems, rate, target)
    result = render_plan(stems, plan, target, stereo=args.stereo, block_size=args.block,
                         hrtf=args.hrtf, room=room)
    write_audio(args.output, result.audio, result.sample_rate)
    report = dict(result.report, output_path=str(args.output), stems_rate=rate)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        lufs = "n/a" if result.lufs is None else f"{result.lufs:.1f} LUFS"
        print(f"wrote {args.output}: {report['output']}, {result.sample_rate} Hz, "
              f"{report['duration_s']:.2f} s, peak {result.peak_dbfs:.1f} dBFS, {lufs}"
              + (", CLIPPED (lower the gains)" if result.clipped else ""))
        if report["unused_stems"]:
            print(f"note: stems not in the plan were left out: {report['unused_stems']}")
    return 0


def _checked_room(room_id: str) -> str | None:
    """The plan's room id, or ``InputError`` naming the known rooms when it is unknown."""
    if not room_id or room_id.lower() in ("none", "dry"):
        return None
    from pathlib import Path
    if Path(room_id).is_file():  # a user RIR file
        return room_id
    try:
        from presets import load_rooms
        rooms = load_rooms()
    except ImportError:
        return room_id
    if rooms and room_id not in rooms:
        raise InputError(f"unknown room {room_id!r}; rooms: {sorted(rooms)} (or pass --dry)")
    return room_id
