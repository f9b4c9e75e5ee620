"""DSP benchmarks: partitioned convolution vs pedalboard and SciPy, FDN cost, scene sources.

Usage::

    python -m bench.dsp --json            # one JSON object on stdout
    python -m bench.dsp --json --skip-scene

Keys (ratios > 1 mean stase is faster):

* ``conv_vs_pedalboard_b128`` / ``_b256``: our streaming throughput divided by
  ``pedalboard.Convolution``'s on the same 2 s mono IR (48 kHz), same signal, same host block,
  both called block by block from Python (``reset=False``).  Medians over interleaved repeats.
* ``conv_vs_oaconvolve_offline``: ``scipy.signal.oaconvolve`` on the whole signal at once,
  divided by our convolver given the whole signal in one ``process`` call.
  ``conv_b128_vs_oaconvolve_offline`` compares our 128-sample *streaming* with it.
* ``hrtf_sources_realtime_b128``: from ``bench.scene_bench.bench_hrtf_sources_realtime()``.
* per-block timing spread (median / p99 / max microseconds, the minimum over 3 runs at each
  block position so OS preemption does not count): the big partitions' FFTs run on the block
  where they fall due, so single blocks cost more than the average.

Everything runs in one process, single-threaded numba, after a warm-up.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

import numpy as np

RATE = 48000
IR_SECONDS = 2.0
SIGNAL_SECONDS = 6.0


def _ir(channels: int = 1) -> np.ndarray:
    """A deterministic 2 s room-like IR: exponentially decaying noise, T60 = 1.8 s."""
    rng = np.random.default_rng(2026)
    n = int(IR_SECONDS * RATE)
    env = 10.0 ** (-3.0 * np.arange(n) / (1.8 * RATE))
    return (0.1 * rng.standard_normal((channels, n)) * env).astype(np.float32)


def _signal() -> np.ndarray:
    return (0.1 * np.random.default_rng(7).standard_normal(int(SIGNAL_SECONDS * RATE))).astype(np.float32)


def _blocks(x: np.ndarray, block: int, channels_first: bool) -> list[np.ndarray]:
    n = (x.size // block) * block
    if channels_first:
        return [np.ascontiguousarray(x[None, i:i + block]) for i in range(0, n, block)]
    return [np.ascontiguousarray(x[i:i + block]) for i in range(0, n, block)]


def _time_ours(conv, blocks, out, per_block: list | None = None) -> float:
    conv.reset()
    start = time.perf_counter()
    if per_block is None:
        for b in blocks:
            conv.process(b, out)
    else:
        clock = time.perf_counter_ns
        for b in blocks:
            t0 = clock()
            conv.process(b, out)
            per_block.append(clock() - t0)
    return time.perf_counter() - start


def _time_pedalboard(pb, blocks, per_block: list | None = None) -> float:
    pb.reset()
    start = time.perf_counter()
    if per_block is None:
        for b in blocks:
            pb.process(b, RATE, reset=False)
    else:
        clock = time.perf_counter_ns
        for b in blocks:
            t0 = clock()
            pb.process(b, RATE, reset=False)
            per_block.append(clock() - t0)
    return time.perf_counter() - start


def _spread(ns: list[int]) -> dict:
    us = np.asarray(ns, dtype=np.float64) / 1e3
    return {"mean_us": round(float(us.mean()), 2), "median_us": round(float(np.median(us)), 2),
            "p99_us": round(float(np.percentile(us, 99)), 2), "max_us": round(float(us.max()), 2)}


def bench_streaming(block: int, repeats: int) -> dict:
    """Ours vs pedalboard.Convolution, mono 2 s IR, streaming at ``block``."""
    import pedalboard

    from stase.dsp.convolution import PartitionedConvolver
    ir = _ir(1)
    x = _signal()
    conv = PartitionedConvolver(ir, block)
    pb = pedalboard.Convolution(ir[0], sample_rate=RATE)
    ours_blocks = _blocks(x, block, channels_first=False)
    pb_blocks = _blocks(x, block, channels_first=True)
    out = np.empty((1, block), dtype=np.float32)
    _time_ours(conv, ours_blocks[:200], out)  # warm-up (numba cache load, FFT plans)
    _time_pedalboard(pb, pb_blocks[:200])
    ours, theirs = [], []
    for _ in range(repeats):  # interleaved, so machine load hits both alike
        ours.append(_time_ours(conv, ours_blocks, out))
        theirs.append(_time_pedalboard(pb, pb_blocks))
    # per-block cost: the minimum over 3 runs at each block position strips OS preemption
    ours_runs, theirs_runs = [], []
    for _ in range(3):
        ours_runs.append([])
        theirs_runs.append([])
        _time_ours(conv, ours_blocks, out, ours_runs[-1])
        _time_pedalboard(pb, pb_blocks, theirs_runs[-1])
    ours_ns = np.min(np.asarray(ours_runs), axis=0)
    theirs_ns = np.min(np.asarray(theirs_runs), axis=0)
    samples = len(ours_blocks) * block
    # check that both compute the same thing (pedalboard may scale the IR, so fit a gain)
    conv.reset()
    pb.reset()
    y_ours = np.concatenate([conv.process(b)[0] for b in ours_blocks[:400]])
    y_pb = np.concatenate([pb.process(b, RATE, reset=False)[0] for b in pb_blocks[:400]])
    gain = float(np.dot(y_ours, y_pb) / max(np.dot(y_ours, y_ours), 1e-30))
    mismatch = float(np.max(np.abs(gain * y_ours - y_pb)) / max(np.max(np.abs(y_pb)), 1e-30))
    return {
        "ratio": statistics.median(theirs) / statistics.median(ours),
        "ours_s": ours, "pedalboard_s": theirs,
        "ours_msamples_per_s": samples / statistics.median(ours) / 1e6,
        "pedalboard_msamples_per_s": samples / statistics.median(theirs) / 1e6,
        "ours_per_block": _spread(ours_ns), "pedalboard_per_block": _spread(theirs_ns),
        "budget_us_per_block": round(block / RATE * 1e6, 2),
        "partitions": [[p, k] for p, k, _ in conv.levels],
        "pedalboard_gain_fit": gain, "pedalboard_relative_mismatch": mismatch,
    }


def bench_offline(repeats: int) -> dict:
    """Whole-signal convolution: ours (one process call) and 128-streaming vs oaconvolve."""
    from scipy.signal import oaconvolve

    from stase.dsp.convolution import PartitionedConvolver
    ir = _ir(1)
    x = _signal()
    whole = PartitionedConvolver(ir, 8192)
    stream = PartitionedConvolver(ir, 128)
    blocks = _blocks(x, 128, channels_first=False)
    out_whole = np.empty((1, x.size), dtype=np.float32)
    out_block = np.empty((1, 128), dtype=np.float32)
    whole.process(x[:8192])
    oaconvolve(x[:8192], ir[0])
    t_ours, t_stream, t_scipy = [], [], []
    for _ in range(repeats):
        whole.reset()
        t0 = time.perf_counter()
        whole.process(x, out_whole)
        t_ours.append(time.perf_counter() - t0)
        t_stream.append(_time_ours(stream, blocks, out_block) * x.size / (len(blocks) * 128))
        t0 = time.perf_counter()
        ref = oaconvolve(x, ir[0])[: x.size]
        t_scipy.append(time.perf_counter() - t0)
    error = float(np.max(np.abs(out_whole[0] - ref)) / np.max(np.abs(ref)))
    return {"ratio": statistics.median(t_scipy) / statistics.median(t_ours),
            "stream_b128_ratio": statistics.median(t_scipy) / statistics.median(t_stream),
            "ours_whole_s": t_ours, "ours_stream_b128_s": t_stream, "oaconvolve_s": t_scipy,
            "max_relative_error_vs_oaconvolve": error}


def bench_fdn(repeats: int) -> dict:
    from stase.dsp.fdn import FdnReverb
    fdn = FdnReverb(RATE, 2.0)
    blocks = _blocks(_signal(), 128, channels_first=False)
    out = np.empty((2, 128), dtype=np.float32)
    times = [_time_ours(fdn, blocks, out) for _ in range(repeats + 1)][1:]
    per_block = statistics.median(times) / len(blocks)
    return {"us_per_block_b128": round(per_block * 1e6, 2),
            "realtime_load_b128": round(per_block / (128 / RATE), 4), "runs_s": times}


def bench_scene() -> dict:
    try:
        from bench.scene_bench import bench_hrtf_sources_realtime
    except ImportError as exc:
        return {"value": None, "error": f"bench.scene_bench not available: {exc}"}
    result = bench_hrtf_sources_realtime()
    value = result.get("hrtf_sources_realtime") if isinstance(result, dict) else result
    return {"value": value, "detail": result}


def run(repeats: int = 7, skip_scene: bool = False) -> dict:
    import numba
    numba.set_num_threads(1)
    b128 = bench_streaming(128, repeats)
    b256 = bench_streaming(256, repeats)
    offline = bench_offline(repeats)
    fdn = bench_fdn(repeats)
    scene = {"value": None, "error": "skipped (--skip-scene)"} if skip_scene else bench_scene()
    return {
        "conv_vs_pedalboard_b128": round(b128["ratio"], 3),
        "conv_vs_pedalboard_b256": round(b256["ratio"], 3),
        "conv_vs_oaconvolve_offline": round(offline["ratio"], 3),
        "conv_b128_vs_oaconvolve_offline": round(offline["stream_b128_ratio"], 3),
        "hrtf_sources_realtime_b128": scene["value"],
        "fdn_us_per_block_b128": fdn["us_per_block_b128"],
        "raw": {"b128": b128, "b256": b256, "offline": offline, "fdn": fdn, "scene": scene},
        "setup": {"ir_seconds": IR_SECONDS, "signal_seconds": SIGNAL_SECONDS, "sample_rate": RATE,
                  "ir_channels": 1, "repeats": repeats,
                  "method": "median of interleaved repeats, one process, numba single-threaded"},
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs, "
                   f"python {platform.python_version()}",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--skip-scene", action="store_true", help="leave out the scene benchmark")
    args = parser.parse_args(argv)
    result = run(args.repeats, args.skip_scene)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            if key != "raw":
                print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
