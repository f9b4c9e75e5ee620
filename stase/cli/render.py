"""``stase render``: a folder of mono stems + a plan file -> a binaural (or stereo) WAV.

Usage::

    stase render --stems DIR --plan plan.json -o mix.wav [--stereo] [--downmix] [--rate HZ]
                 [--hrtf FILE.sofa] [--dry] [--reverb-db DB] [--json]
    stase render --batch MANIFEST.jsonl -o DIR [--workers N] [--ray [ADDRESS]] [--qa-listen]

Stems are matched to the plan's tracks by file name without extension, ignoring case, spaces and
punctuation (:mod:`stase.core.names`).  ``--batch``: see :mod:`stase.bridge.batch`.  Stems
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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stems", default=None, metavar="DIR",
                        help="folder of mono WAV/FLAC/AIFF stems, one per plan track (file name = track)")
    parser.add_argument("--plan", default=None, metavar="FILE",
                        help="plan JSON/YAML: room, reverb_engine, sources[{track, azimuth_deg, "
                             "elevation_deg, distance_m, mode, gain_db}] (azimuth positive = left)")
    parser.add_argument("-o", "--output", required=True, metavar="WAV|DIR",
                        help="where to write the mix (.wav, .flac, .aiff or .ogg); replaced only "
                             "once the render is complete.  With --batch: the output folder")
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
    batch = parser.add_argument_group("batch rendering (a catalogue: one job per manifest line)")
    batch.add_argument("--batch", default=None, metavar="MANIFEST.jsonl",
                       help="render every job of a JSON-lines manifest ({\"stems\": DIR, \"plan\": FILE, "
                            "\"output\": NAME.wav, options...}) into -o DIR, each with a QA report; "
                            "a rerun skips finished jobs")
    batch.add_argument("--workers", type=int, default=1, metavar="N",
                       help="parallel workers (processes, or Ray actors with --ray; default 1)")
    batch.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                       help="run the jobs on Ray: no ADDRESS = a local Ray instance with --workers "
                            "CPUs; 'auto' or host:port = an existing cluster (pip install 'stase[ray]')")
    batch.add_argument("--qa-listen", action="store_true",
                       help="add the listener's per-track listen-back error to each QA report")




def run(args: argparse.Namespace) -> int:
    if args.batch is not None:
        return _run_batch(args)
    from stase.core.audio_io import summarise_names
    from stase.dsp.offline import render_files
    missing = [flag for flag, value in (("--stems", args.stems), ("--plan", args.plan)) if value is None]
    if missing:
        raise InputError(f"stase render needs {' and '.join(missing)} (or --batch MANIFEST.jsonl)")
    result, report = render_files(args.stems, args.plan, args.output, stereo=args.stereo,
                                  downmix=args.downmix, rate=args.rate, hrtf=args.hrtf, dry=args.dry,
                                  reverb_db=args.reverb_db, block_size=args.block)
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


def _run_batch(args: argparse.Namespace) -> int:
    from stase.bridge.batch import BatchOptions, read_manifest, run_batch
    jobs = read_manifest(args.batch)
    summary = run_batch(jobs, args.output, BatchOptions(workers=args.workers, ray=args.ray,
                                                        qa_listen=args.qa_listen),
                        progress=not args.json)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"stase render --batch: {summary['done']} rendered, {summary['skipped']} already done, "
              f"{summary['failed']} failed of {summary['jobs']} -> {args.output}/ "
              f"({summary['seconds']:.1f} s, {summary['jobs_per_s']:.2f} jobs/s)")
        for failure in summary["failures"]:
            print(f"  failed: {failure['id']}: {failure['error']}")
    return 1 if summary["failed"] else 0
