"""``stase demo`` and ``stase generate`` (the command line of :mod:`stase.agent.music.demo`).

``stase demo`` (no prompt) plays a built-in prompt into ``stase-demo/``; ``stase generate
"PROMPT" -o DIR`` any prompt into DIR.  What is written: see :mod:`stase.agent.music.demo`.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from stase.agent.music.demo import DEFAULT_OUT, DEMO_PROMPT, TARGET_SECONDS, make_demo
from stase.core.errors import InputError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("prompt", nargs="?", default=None,
                        help="what to play and where, e.g. 'a rock band in a club, guitar hard left' "
                             "(demo: a built-in jazz-club prompt when omitted)")
    parser.add_argument("-o", "--out", default=None,
                        help=f"output folder (default: {DEFAULT_OUT}/)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the arrangement (default 0)")
    parser.add_argument("--bars", type=int, default=None,
                        help=f"length in bars (default: the plan's, fitted to about {TARGET_SECONDS:.0f} s)")
    parser.add_argument("--rate", type=int, default=48000, help="sample rate in Hz (default 48000)")
    parser.add_argument("--model", default="auto",
                        help="conductor model: auto (default), none, smollm2, smollm2-agent, gemma or a GGUF path")
    parser.add_argument("--musicgen", metavar="MODEL_DIR", default=None,
                        help="generate the stems with a local MusicGen model folder instead of the "
                             "built-in arranger (needs transformers; nothing is downloaded)")
    parser.add_argument("--voices", choices=("auto", "sampled", "synth"), default="auto",
                        help="who plays the parts: auto (default: sampled General MIDI instruments "
                             "through FluidSynth when installed, else the built-in synth), sampled, "
                             "or synth")
    parser.add_argument("--soundfont", metavar="FILE.sf2", default=None,
                        help="a SoundFont 2 file for the sampled voices (default: the installed "
                             "FluidR3_GM.sf2)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars or summary")


def run(args: argparse.Namespace) -> int:
    name = getattr(args, "_name", "demo")
    prompt = args.prompt
    if prompt is None:
        if name == "generate":
            raise InputError("stase generate needs a PROMPT, e.g. stase generate 'a string quartet "
                             "in a small hall' -o quartet/")
        prompt = DEMO_PROMPT
    if not 8000 <= args.rate <= 384000:
        raise InputError(f"--rate must be 8000..384000 Hz, got {args.rate}")
    if args.seed < 0:
        raise InputError(f"--seed must be >= 0, got {args.seed}")
    out = Path(args.out or DEFAULT_OUT)
    result = make_demo(prompt, out, seed=args.seed, bars=args.bars, sample_rate=args.rate,
                       model=args.model, musicgen=args.musicgen, quiet=args.quiet,
                       voices=getattr(args, "voices", "auto"), soundfont=getattr(args, "soundfont", None))
    if not args.quiet:
        print(f"stase {name}: {len(result['stems'])} stems ({result['voices']}), "
              f"{result['duration_s']:.1f} s of music, "
              f"done in {sum(result['timings'].values()):.1f} s -> {out}/")
        for f in result["files"]:
            print(f"  {out / f}")
        print(f"Listen on headphones: {out / 'mix_binaural.wav'}")
    return 0
