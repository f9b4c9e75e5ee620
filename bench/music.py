"""Stem-generator benchmark: how much faster than real time each template's stems are made.

Usage::

    python -m bench.music --json          # one JSON object on stdout

For each stage template: ``generate_stems(template, 48000, seed)`` for 8 bars, after a warm-up;
the median over 3 seeds of the wall time.  Keys: ``<template>`` -> {"music_s", "median_s",
"realtime_x" (music seconds per compute second, > 1 is faster than real time), "stems"}; plus
``kernels_vs_numpy``: the numba additive-partials kernel against the same sum written with NumPy
``sin``/``exp`` on the same arrays (ratio > 1 means the kernel is faster), and the load average
so a busy machine shows.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import numpy as np

RATE = 48000
SEEDS = (0, 1, 2)


def bench_templates() -> dict:
    from stase.agent.music import generate_stems, resolve_music
    from stase.presets import load_templates
    generate_stems({"template": "rock_band", "bars": 1}, RATE, 0)  # warm-up: kernels, presets
    out = {}
    for template in sorted(load_templates()):
        music = {"template": template, "bars": 8}
        times = []
        for seed in SEEDS:
            start = time.perf_counter()
            stems = generate_stems(music, RATE, seed)
            times.append(time.perf_counter() - start)
        music_s = resolve_music(music).duration_s
        median = statistics.median(times)
        out[template] = {"music_s": round(music_s, 2), "median_s": round(median, 3),
                         "realtime_x": round(music_s / median, 2), "stems": len(stems)}
    return out


def bench_partials() -> float:
    from stase.agent.music.kernels import decaying_partials
    rng = np.random.default_rng(0)
    freqs = rng.uniform(100, 8000, 20)
    amps, taus, phases = rng.uniform(0, 1, 20), rng.uniform(0.2, 2, 20), rng.uniform(0, 6, 20)
    n = RATE * 2
    t = np.arange(n) / RATE

    def kernel():
        out = np.zeros(n)
        decaying_partials(freqs, amps, taus, phases, float(RATE), out)

    def numpy_sum():
        (amps[:, None] * np.exp(-t[None, :] / taus[:, None])
         * np.sin(2 * np.pi * freqs[:, None] * t[None, :] + phases[:, None])).sum(axis=0)

    kernel()
    ratios = []
    for _ in range(5):  # interleaved repeats
        a = time.perf_counter(); kernel(); b = time.perf_counter(); numpy_sum(); c = time.perf_counter()
        ratios.append((c - b) / (b - a))
    return round(statistics.median(ratios), 2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    result = {"templates": bench_templates(), "kernels_vs_numpy": bench_partials(),
              "load_average": os.getloadavg()[0], "sample_rate": RATE}
    print(json.dumps(result, indent=None if args.json else 2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
