"""``stase render``: a folder of mono stems + a plan file -> a binaural (or stereo) WAV.

Usage::

    stase render --stems DIR --plan plan.json -o mix.wav [--stereo] [--downmix] [--rate HZ]
                 [--hrtf FILE.sofa] [--dry] [--reverb-db DB] [--json]

Stems are matched to the plan's tracks by file name without extension, ignoring case.  Stems
must be mono (``--downmix`` averages multichannel stems) and share one sample rate; ``--rate``
resamples them (polyphase, ``scipy.signal.resample_poly``) to another session rate.  The HRTF
set is always resampled to the rate rendered at.

``--reverb-db`` sets the mix's wetness relative to the room's physical level (dB, -60 to +12;
default: the plan's ``reverb_db``, else 0).

Everything that can be checked without rendering is checked first (``-o``, ``--rate``,
``--block``, ``--reverb-db``, the plan, its room, the stems); the mix then streams to a temp file
beside ``-o`` that replaces it only once complete, so a failed or killed render leaves the
previous file whole.
``-o`` picks the format by its suffix: .wav/.aiff (32-bit float), .flac (24-bit), .ogg (Vorbis).
"""
from __future__ import annotations

import argparse
import json

from stase.core.errors import InputError
from stase.core.rates import check_sample_rate, resample_stems


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stems", required=True, metavar="DIR",
                        help="folder of mono WAV/FLAC/AIFF stems, one per plan track (file name = track)")
    parser.add_argument("--plan", required=True, metavar="FILE",
                        help="plan JSON/YAML: room, reverb_engine, sources[{track, azimuth_deg, "
                             "elevation_deg, distance_m, mode, gain_db}] (azimuth positive = left)")
    parser.add_argument("-o", "--output", required=True, metavar="WAV",
                        help="where to write the mix (.wav, .flac, .aiff or .ogg); replaced only "
                             "once the render is complete")
    parser.add_argument("--stereo", action="store_true",
                        help="loudspeaker stereo: constant-power panning instead of binaural modes")
    parser.add_argument("--downmix", action="store_true",
                        help="average multichannel stems to mono instead of refusing them")
    parser.add_argument("--rate", type=int, default=None, metavar="HZ",
                        help="render at this sample rate (stems are resampled); default: the stems' rate")
    parser.add_argument("--hrtf", default=None, metavar="SOFA",
                        help="SimpleFreeFieldHRIR SOFA file (default: the shipped MIT KEMAR set)")
    parser.add_argument("--dry", action="store_true", help="ignore the plan's room (no reverb)")
    parser.add_argument("--reverb-db", type=float, default=None, metavar="DB",
                        help="wetness relative to the room's physical level, -60..+12 dB "
                             "(default: the plan's reverb_db, else 0; -6 = drier, +6 = wetter)")
    parser.add_argument("--block", type=int, default=1024, help="streaming block size (default 1024)")
    parser.add_argument("--json", action="store_true", help="print the level report as JSON")




def run(args: argparse.Namespace) -> int:
    from stase.core.audio_io import check_output_path, load_stems, summarise_names
    from stase.dsp.offline import render_plan
    from stase.core.plan import load_plan
    from stase.dsp.rooms import resolve_room

    check_output_path(args.output)  # before any work: a folder, .mp3 or no extension fail here
    if args.block < 1:
        raise InputError(f"--block must be a positive number of samples, got {args.block}")
    if args.rate is not None:
        check_sample_rate(args.rate, "--rate")
    if args.reverb_db is not None:
        from stase.dsp.scene import check_reverb_db
        check_reverb_db(args.reverb_db, "--reverb-db")
    plan = load_plan(args.plan)
    room = None if args.dry else resolve_room(plan.room)
    stems, rate = load_stems(args.stems, downmix=args.downmix)
    target = check_sample_rate(rate if args.rate is None else args.rate,
                               "the stems' sample rate (give --rate)" if args.rate is None else "--rate")
    stems = resample_stems(stems, rate, target)
    result = render_plan(stems, plan, target, stereo=args.stereo, block_size=args.block,
                         hrtf=args.hrtf, room=None if room is None else room[1],
                         output=args.output, reverb_db=args.reverb_db)
    report = dict(result.report, output_path=str(args.output), stems_rate=rate)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        lufs = "n/a" if result.lufs is None else f"{result.lufs:.1f} LUFS"
        print(f"wrote {args.output}: {report['output']}, {result.sample_rate} Hz, "
              f"{report['duration_s']:.2f} s, peak {result.peak_dbfs:.1f} dBFS, {lufs}"
              + (", CLIPPED (lower the gains)" if result.clipped else ""))
        if report["unused_stems"]:
            print("note: stems not in the plan were left out: "
                  + summarise_names(report["unused_stems"]))
    return 0
