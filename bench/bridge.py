"""Daemon latency: ``python -m bench.bridge [--json] [--n 500]``.

Measures, on this machine, with a daemon in this process on a free loopback port:

* ``set_source`` OSC request -> reply round trip (median, p99; goal p99 < 5 ms);
* ``plan`` round trip (request -> "accepted" and request -> result), with the rule-based
  conductor (``model="none"``) so the number is the bridge's, not a language model's;
* position change -> first rendered block that carries it: a live monitor with the real
  SceneRenderer driven by a simulated audio clock (one 256-frame block every 5.33 ms at 48 kHz);
  the time from the command entering the queue to the end of the block that applied it (goal:
  within one block period, i.e. the change is audible in the next block).

Session saves are durable (fsync) as in normal use.  Numbers vary with machine load; run
alone for stable figures.
"""
from __future__ import annotations

import argparse
import json
import select
import socket
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from bridge.osc_transport import build_message, parse_datagram


def _stats_ms(samples_s: list[float]) -> dict:
    a = np.asarray(samples_s) * 1e3
    return {"n": int(a.size), "median_ms": round(float(np.median(a)), 3),
            "p99_ms": round(float(np.percentile(a, 99)), 3), "max_ms": round(float(a.max()), 3)}


class _Client:
    """A persistent UDP client (so the numbers do not include socket set-up)."""

    def __init__(self, port: int):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.connect(("127.0.0.1", port))
        self.n = 0

    def call(self, verb: str, params: dict, until=("done", "error"), timeout_s: float = 60.0):
        self.n += 1
        params = dict(params, id=self.n)
        t0 = time.perf_counter()
        self.sock.send(build_message(f"/stase/{verb}", [json.dumps(params)]))
        marks = {}
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not select.select([self.sock], [], [], 0.5)[0]:
                continue
            reply = json.loads(parse_datagram(self.sock.recv(65535))[0][1][0])
            if reply.get("id") != self.n:
                continue
            marks.setdefault(reply["status"], time.perf_counter() - t0)
            if reply["status"] in until:
                return reply, marks
        raise TimeoutError(f"{verb}: no final reply in {timeout_s} s")


def run_bench(n: int = 500, seconds_audio: float = 3.0) -> dict:
    from bridge.daemon import Daemon, DaemonConfig
    from bridge.monitor import LiveMonitor
    tmp = Path(tempfile.mkdtemp(prefix="stase-bench-"))
    d = Daemon(DaemonConfig(port=0, session=str(tmp / "s.json"), conductor_model="none"))
    d.start()
    import os
    result: dict = {"machine_note": "loopback UDP, daemon in-process, durable session saves",
                    "load_average_1min": round(os.getloadavg()[0], 2), "cpus": os.cpu_count()}
    try:
        client = _Client(d.port)
        tracks = ["Vox", "Gtr", "Bass", "Drums", "Keys", "Sax", "Trumpet", "Piano"]
        client.call("tracks", {"tracks": tracks})
        # a monitor without a device, driven by a simulated audio clock
        monitor = LiveMonitor(tracks, sample_rate=48000, block_size=256, room=None)
        d.monitor = monitor
        stop = threading.Event()
        x = np.zeros((256, len(tracks)), np.float32)
        out = np.zeros((256, 2), np.float32)
        period = 256 / 48000

        def clock():
            next_t = time.perf_counter()
            while not stop.is_set():
                monitor.process_block(x, out)
                next_t += period
                delay = next_t - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)

        driver = threading.Thread(target=clock, daemon=True)
        driver.start()
        rng = np.random.default_rng(0)
        rtt = []
        for i in range(n):
            reply, marks = client.call("set_source", {"track": tracks[i % len(tracks)],
                                                      "azimuth_deg": float(rng.uniform(-180, 180))})
            assert reply["ok"], reply
            rtt.append(marks["done"])
        time.sleep(0.05)
        stop.set()
        driver.join(2)
        count = min(monitor.latency_count, len(monitor.latencies_s))
        result["set_source_round_trip"] = _stats_ms(rtt)
        result["move_to_rendered_block"] = dict(_stats_ms(list(monitor.latencies_s[:count])),
                                                block_period_ms=round(period * 1e3, 3))
        d.monitor = None
        plans, accepted = [], []
        for i in range(max(3, n // 100)):
            reply, marks = client.call("plan", {"prompt": "a jazz band in a small club, sax a bit left",
                                                "tracks": tracks})
            if not reply["ok"]:
                result["plan_round_trip"] = {"error": reply["error"]}
                break
            plans.append(marks["done"])
            accepted.append(marks["accepted"])
        else:
            result["plan_round_trip"] = _stats_ms(plans)
            result["plan_accepted"] = _stats_ms(accepted)
        result["goals"] = {"set_source_p99_under_5ms": result["set_source_round_trip"]["p99_ms"] < 5.0,
                           "move_within_one_block": result["move_to_rendered_block"]["p99_ms"] <= period * 1e3 * 1.5}
    finally:
        d.stop()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--n", type=int, default=500, help="set_source requests (default 500)")
    args = parser.parse_args(argv)
    result = run_bench(args.n)
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        for key, value in result.items():
            print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
