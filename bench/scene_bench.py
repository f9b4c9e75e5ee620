"""How many moving HRTF sources one core renders in real time (with a shared room reverb).

``bench_hrtf_sources_realtime(block=128, sample_rate=48000) -> dict`` is called by
``bench/dsp.py`` (key ``hrtf_sources_realtime_b128``); run alone with
``python -m bench.scene_bench [--json] [--room ROOM] [--engine convolution|fdn]``.

Method: a :class:`stase.dsp.scene.SceneRenderer` with N ``hrtf`` sources, each circling the head at
its own speed (20-120 degrees/s, elevation swaying +-30 degrees), each sent a new position every
``move_every`` blocks (default 8: 47 Hz, an automation/OSC control rate; staggered so every block
carries moves) through ``move_source``, which the scene ramps over 20 ms so the motion is
continuous, plus the room's shared reverb.  For a given N we time ``repeats`` runs of
``blocks`` blocks (after a warm-up) and take the median time per block; N is real-time when
that is below the block's duration (times are the rendering thread's CPU time, see ``CLOCK``).
N doubles until it fails, then a bisection finds the largest real-time N.  Numba runs
single-threaded here (one core).  Peer in the same process: the same scene with the sources in
``pan`` mode (no HRTF work), so the ratio shows what the HRTF costs.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np

#: CPU time of this thread: on the shared dev box other processes' load does not count against
#: us; on a dedicated core it equals wall time.  ``bench_hrtf_sources_realtime(clock="wall")``
#: uses wall time instead.
CLOCK = time.thread_time


def _scene(n_sources, block, sample_rate, room, engine, mode="hrtf"):
    from stase.dsp.scene import SceneRenderer
    scene = SceneRenderer(sample_rate=sample_rate, block_size=block, room=room,
                          reverb_engine=engine, max_sources=max(n_sources, 1))
    rng = np.random.default_rng(n_sources)
    speeds = rng.uniform(20.0, 120.0, n_sources) * rng.choice([-1.0, 1.0], n_sources)
    phases = rng.uniform(-180.0, 180.0, n_sources)
    for i in range(n_sources):
        scene.add_source(f"s{i}", phases[i], 0.0, rng.uniform(1.0, 8.0), mode=mode)
    return scene, speeds, phases


def time_per_block(n_sources, block=128, sample_rate=48000, room="dry_studio", engine="convolution",
                   blocks=150, repeats=5, mode="hrtf", move_every=8) -> float:
    """Median over ``repeats`` of the mean seconds per block (moves included)."""
    scene, speeds, phases = _scene(n_sources, block, sample_rate, room, engine, mode)
    rng = np.random.default_rng(1)
    inputs = (0.05 * rng.standard_normal((n_sources, block))).astype(np.float32)
    out = np.zeros((2, block), dtype=np.float32)
    names = scene.source_ids
    dt = block / sample_rate
    t_audio = 0.0

    counter = 0

    def run(count):
        nonlocal t_audio, counter
        for _ in range(count):
            t_audio += dt
            counter += 1
            ahead = t_audio + move_every * dt  # the target the ramp reaches by the next move
            for i in range(counter % move_every, len(names), move_every):
                scene.move_source(names[i], azimuth_deg=float(phases[i] + speeds[i] * ahead),
                                  elevation_deg=float(30.0 * np.sin(0.5 * ahead + phases[i])))
            scene.process(inputs, out)

    run(20)  # warm-up: compile, caches, filters
    times = []
    for _ in range(repeats):
        t0 = CLOCK()
        run(blocks)
        times.append((CLOCK() - t0) / blocks)
    return float(np.median(times))


def bench_hrtf_sources_realtime(block: int = 128, sample_rate: int = 48000, room: str | None = "dry_studio",
                                engine: str = "convolution", repeats: int = 5, blocks: int = 150,
                                max_sources: int = 2048, clock: str = "cpu") -> dict:
    """Largest number of moving HRTF sources rendered in real time on one core, and timings."""
    global CLOCK
    import numba
    CLOCK = time.perf_counter if clock == "wall" else time.thread_time
    numba.set_num_threads(1)
    budget = block / sample_rate
    room_used = room
    try:
        time_per_block(1, block, sample_rate, room, engine, blocks=5, repeats=1)
    except Exception as exc:  # noqa: BLE001 - report a dry figure rather than nothing
        room_used = None
        room_error = f"{type(exc).__name__}: {exc}"
    else:
        room_error = None
    measured: dict[int, float] = {}

    def realtime(n):
        if n not in measured:
            measured[n] = time_per_block(n, block, sample_rate, room_used, engine, blocks, repeats)
        return measured[n] <= budget

    lo, hi = 0, None
    n = 16
    while n <= max_sources:
        if realtime(n):
            lo = n
            n *= 2
        else:
            hi = n
            break
    if hi is not None:
        while hi - lo > max(1, lo // 32):  # ~3 % resolution
            mid = (lo + hi) // 2
            if realtime(mid):
                lo = mid
            else:
                hi = mid
    n_ref = 128
    hrtf_128 = measured.get(n_ref) or time_per_block(n_ref, block, sample_rate, room_used, engine,
                                                     blocks, repeats)
    pan_128 = time_per_block(n_ref, block, sample_rate, room_used, engine, blocks, repeats, mode="pan")
    reverb_only = time_per_block(0, block, sample_rate, room_used, engine, blocks, repeats)
    return {
        "hrtf_sources_realtime": int(lo),
        "block": block, "sample_rate": sample_rate, "room": room_used, "reverb_engine": engine,
        "room_error": room_error,
        "budget_ms_per_block": round(budget * 1e3, 4),
        "ms_per_block_128_hrtf": round(hrtf_128 * 1e3, 4),
        "realtime_load_128_hrtf": round(hrtf_128 / budget, 3),
        "ms_per_block_128_pan_peer": round(pan_128 * 1e3, 4),
        "hrtf_over_pan_cost_128": round(hrtf_128 / pan_128, 2),
        "ms_per_block_reverb_only": round(reverb_only * 1e3, 4),
        "us_per_hrtf_source_block": round((hrtf_128 - reverb_only) / n_ref * 1e6, 3),
        "measured_ms_per_block": {str(k): round(v * 1e3, 4) for k, v in sorted(measured.items())},
        "clock": "wall" if clock == "wall" else "thread CPU time",
        "method": "median over repeats of mean time per block; each source gets a new target every "
                  f"{8} blocks (staggered, ramped over 20 ms) via move_source; numba single-threaded",
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs",
        "load_average_1min": round(os.getloadavg()[0], 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--block", type=int, default=128)
    parser.add_argument("--rate", type=int, default=48000)
    parser.add_argument("--room", default="dry_studio", help="room id, or 'none' for no reverb")
    parser.add_argument("--engine", default="convolution", choices=("convolution", "fdn"))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--clock", default="cpu", choices=("cpu", "wall"),
                        help="thread CPU time (default; robust on a shared machine) or wall time")
    args = parser.parse_args(argv)
    room = None if args.room.lower() == "none" else args.room
    result = bench_hrtf_sources_realtime(args.block, args.rate, room, args.engine, args.repeats,
                                         clock=args.clock)
    key = f"hrtf_sources_realtime_b{args.block}"
    if args.json:
        print(json.dumps(dict(result, **{key: result["hrtf_sources_realtime"]}), indent=2))
    else:
        print(f"{key} = {result['hrtf_sources_realtime']} moving HRTF sources in real time "
              f"(room {result['room']}, {result['reverb_engine']}); 128 sources use "
              f"{100 * result['realtime_load_128_hrtf']:.0f} % of one core")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
