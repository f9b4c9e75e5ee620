"""``stase listen FILE.wav [FILE2.wav ...] [--json]``: where is the source in each binaural file.

With ``--json`` it prints one JSON object per file, one per line::

    {"file": "...", "azimuth_deg": 31.5, "elevation_deg": 2.0, "distance_m": 2.5,
     "confidence": 0.61, "classes": {"lead_vocal": 0.93, ...}}

(azimuth 0 = front, positive = LEFT; elevation positive up; metres).  Without it, one line of
words per file.  The model is loaded once for all files.  Every file is checked (exists, is
audio, two channels) before the model loads; each is then read block by block, so memory does
not grow with its length.  A ``--model`` that is not an ONNX model, or ``--threads`` below 1,
is a usage error (exit 2).
"""
from __future__ import annotations

import json
import sys


def add_arguments(parser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE", help="binaural (2-channel) audio files")
    parser.add_argument("--json", action="store_true", help="one JSON object per file, one per line")
    parser.add_argument("--model", default=None, help="ONNX model (default: the shipped spatial_ast.onnx)")
    parser.add_argument("--top", type=int, default=24, help="keep only the N best class scores (JSON)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for onnxruntime (>= 1)")


def run(args) -> int:
    from stase.core.errors import InputError
    from stase.agent.listener import FileSignal, Listener, describe

    if args.threads is not None and args.threads < 1:
        raise InputError(f"--threads must be at least 1, got {args.threads}")
    for path in args.files:           # cheap header checks before the model loads
        FileSignal(path).close()
    listener = Listener(args.model, threads=args.threads)
    results = listener.listen_many(args.files)
    for path, heard in zip(args.files, results):
        classes = dict(sorted(heard["classes"].items(), key=lambda kv: -kv[1])[: max(1, args.top)])
        if args.json:
            print(json.dumps({"file": str(path), **{k: heard[k] for k in
                              ("azimuth_deg", "elevation_deg", "distance_m", "confidence")},
                              "classes": classes}))
        else:
            where = describe(heard)
            best = next(iter(classes))
            print(f"{path}: {where['left_right']}, {where['front_behind']}, {where['above_below']} - "
                  f"azimuth {heard['azimuth_deg']:+.0f} deg, elevation {heard['elevation_deg']:+.0f} deg, "
                  f"{heard['distance_m']:.1f} m (confidence {heard['confidence']:.2f}); sounds like {best}")
    sys.stdout.flush()
    return 0
