"""Daemon latency: ``python -m bench.bridge [--json] [--n 500]``.

Measures, on this machine, with a daemon in this process on a free loopback port:

* ``set_source`` OSC request -> reply round trip (median, p99; goal p99 < 5 ms);
* ``plan`` round trip (request -> "accepted" and request -> result), with the rule-based
  conductor (``model="none"``) so the number is the bridge's, not a language model's;
* position change -> first rendered block that carries it: a live monitor with the real
  SceneRenderer driven by a simulated audio clock (one 256-frame block every 5.33 ms at 48 kHz);
  the time from the command entering the queue to the end of the block that applied it (goal:
  within one block period, i.e. the change is audible in the next block);
* a paced flood: ``set_source`` sent at a steady 400 and 800 requests/s from one socket, every
  reply matched by id (loss %, round trip p99; goal at 800/s: 0 % loss, p99 < 6 ms);
* an unpaced flood: another process sends 20,000 ``set_source`` as fast as it can while
  ``stase client``-style requests (:func:`stase.bridge.client.request`, 2 s and 10 s timeouts) ask
  for ``status``, half with the client's retries and half with one try; how many got an answer and
  how many ended "busy", and the kernel's count of the datagrams it dropped
  (``status`` -> ``osc.kernel_drops``).

``--engine process|thread`` picks where the monitor's callback runs for the figures above: in
its own process (:mod:`stase.bridge.rt_engine`, the simulated clock in that process) or in this
one (:class:`stase.bridge.monitor.LiveMonitor`, the simulated clock on a thread here).

``--under-load`` (``--engine both`` for the two side by side) adds, per engine, a run of
``--seconds`` (60) at 256 frames on a JACK dummy server (``tests/ardour_host.jack_server``; a
simulated clock where jackd is missing, said in ``audio``) while the daemon runs ``listen`` and
``advise`` jobs back to back on 6 stems the project's generator renders (rock_band, 8 bars):
``set_source`` reply p99 (goal < 5 ms), position change -> the block that renders it p99 (goal
<= one block + 2 ms), callback overruns (goal 0) and xruns, the jobs done meanwhile, where the
machine's CPU time went meanwhile (``cpu_percent`` from /proc/stat: ``steal`` is time the
hypervisor gave to other guests) and the engine's garbage collections (``engine_gc``).

``--jobs process|inline|both|none`` (with ``--under-load``): where the daemon computes those
jobs, in its job process (:mod:`stase.bridge.job_process`, the default) or on its own job
thread; ``both`` runs each in turn (the figures go under ``under_load["<engine>/jobs=<jobs>"]``);
``none`` runs no job at all: the same moves on the same machine, its floor at that moment.

Session saves are durable (fsync) as in normal use.  Numbers vary with machine load; run
alone for stable figures.  ``--quick`` runs every part briefly.
"""
from __future__ import annotations

import argparse
import json
import os
import select
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from stase.bridge.osc_transport import build_message, parse_datagram


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


def paced_flood(port: int, tracks: list[str], rate_per_s: float, seconds: float) -> dict:
    """``set_source`` at a steady rate from one socket; loss and round trip of every request."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.connect(("127.0.0.1", port))
    total = int(rate_per_s * seconds)
    sent_at: dict[int, float] = {}
    rtt: list[float] = []
    done = threading.Event()

    def receive():
        while not done.is_set() or len(rtt) < len(sent_at):
            if not select.select([sock], [], [], 0.2)[0]:
                if done.is_set():
                    return
                continue
            t = time.perf_counter()
            reply = json.loads(parse_datagram(sock.recv(65535))[0][1][0])
            rid = reply.get("id")
            if isinstance(rid, int) and rid in sent_at:
                rtt.append(t - sent_at[rid])

    reader = threading.Thread(target=receive, daemon=True)
    reader.start()
    start = time.perf_counter()
    for i in range(total):
        target = start + i / rate_per_s
        while (delay := target - time.perf_counter()) > 0:
            time.sleep(delay)
        data = build_message("/stase/set_source", [json.dumps(
            {"id": i, "track": tracks[i % len(tracks)], "azimuth_deg": float(i % 360 - 179)})])
        sent_at[i] = time.perf_counter()
        sock.send(data)
    time.sleep(1.0)  # the last replies
    done.set()
    reader.join(3)
    sock.close()
    out = {"rate_per_s": rate_per_s, "sent": total, "answered": len(rtt),
           "loss_percent": round(100.0 * (total - len(rtt)) / max(total, 1), 3)}
    if rtt:
        out.update(_stats_ms(rtt))
    return out


_FLOODER = r"""
import json, socket, sys
from stase.bridge.osc_transport import build_message
port, count = int(sys.argv[1]), int(sys.argv[2])
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.connect(("127.0.0.1", port))
data = [build_message("/stase/set_source", [json.dumps({"id": "flood%d" % i, "track": "Vox",
        "azimuth_deg": float(i % 360 - 179)})]) for i in range(count)]
print("ready", flush=True)
sys.stdin.readline()
sent = 0
for d in data:
    try:
        sock.send(d)
        sent += 1
    except OSError:  # an ICMP error from an earlier reply, a full send queue: keep flooding
        pass
print(sent, flush=True)
"""


def unpaced_flood(daemon, count: int, clients: int, timeout_s: float = 2.0) -> dict:
    """A process sends ``count`` set_source as fast as it can; ``clients`` requests meanwhile.

    The clients (:func:`stase.bridge.client.request` for ``status``, as ``stase client`` sends it)
    start together with the burst, half with the client's retries and half with one try; then
    the kernel's drop count for the daemon's socket is read.
    """
    from stase.bridge.client import DaemonBusy, DaemonUnreachable, request
    endpoint = daemon.endpoint
    received_before = endpoint.stats["datagrams"]
    drops_before = endpoint.refresh_kernel_drops()
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    flooder = subprocess.Popen([sys.executable, "-c", _FLOODER, str(daemon.port), str(count)],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    assert flooder.stdout.readline().strip() == "ready"
    outcomes: dict[bool, list] = {True: [], False: []}

    def client(retry: bool, delay_s: float) -> None:
        time.sleep(delay_s)
        t0 = time.perf_counter()
        try:
            reply = request("status", {}, port=daemon.port, timeout_s=timeout_s, retry=retry)
            kind = "answered" if reply.get("ok") else "error_reply"
        except DaemonBusy:
            kind = "busy"
        except DaemonUnreachable:
            kind = "unreachable"
        outcomes[retry].append((kind, time.perf_counter() - t0))

    # spread over the first 0.2 s: the burst itself lasts about that long
    threads = [threading.Thread(target=client, args=(i % 2 == 0, 0.2 * i / clients), daemon=True)
               for i in range(clients)]
    flooder.stdin.write("go\n")
    flooder.stdin.flush()
    for t in threads:
        t.start()
    flood_sent = int(flooder.stdout.readline().strip() or 0)
    flooder.wait(30)
    for t in threads:
        t.join(timeout_s + 5)
    drained_by = time.monotonic() + 30
    while time.monotonic() < drained_by:  # until the server has read what its buffer held
        seen = endpoint.stats["datagrams"]
        time.sleep(0.5)
        if endpoint.stats["datagrams"] == seen:
            break
    drops = endpoint.refresh_kernel_drops() - drops_before
    received = endpoint.stats["datagrams"] - received_before

    def summary(rows):
        kinds = [k for k, _ in rows]
        times = sorted(t for _, t in rows)
        return {**{k: kinds.count(k) for k in ("answered", "busy", "unreachable", "error_reply")},
                "median_s": round(times[len(times) // 2], 3) if times else None}

    return {"flood_requests": count, "flood_sent": flood_sent, "server_received": received,
            "kernel_drops": drops,
            "kernel_drop_percent": round(100.0 * drops / max(drops + received, 1), 1),
            # received + dropped - the flood = the clients' datagrams (first tries and retries)
            "client_datagrams": received + drops - flood_sent,
            "client_timeout_s": timeout_s,
            "client_with_retries": summary(outcomes[True]),
            "client_single_try": summary(outcomes[False])}


class _ClockedThreadMonitor:
    """A LiveMonitor without a device, driven by a simulated audio clock on a thread of this
    process (the thread engine's figures; the process engine runs its clock in its own process)."""

    def __init__(self, tracks: list[str], block: int = 256, rate: int = 48000):
        from stase.bridge.monitor import LiveMonitor
        self.monitor = LiveMonitor(tracks, sample_rate=rate, block_size=block, room=None)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._clock, daemon=True)
        self.period = block / rate

    def _clock(self) -> None:
        m = self.monitor
        x = np.zeros((m.block_size, len(m.tracks)), np.float32)
        out = np.zeros((m.block_size, 2), np.float32)
        next_t = time.perf_counter()
        while not self._stop.is_set():
            late = time.perf_counter() - next_t
            if late > self.period:  # as the process engine's clock counts it
                m.xruns += 1
                next_t = time.perf_counter()
            m._callback(x, out, m.block_size, None, None)
            next_t += self.period
            delay = next_t - time.perf_counter()
            if delay > 0:
                time.sleep(delay)

    def start(self):
        self._thread.start()
        return self.monitor

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)


def _clocked_monitor(engine: str, tracks: list[str]):
    """``(monitor, stop)``: a started monitor of ``engine`` on a simulated clock."""
    if engine == "process":
        from stase.bridge.rt_engine import EngineMonitor
        monitor = EngineMonitor(tracks, sample_rate=48000, block_size=256, room=None, audio="clock").start()
        return monitor, monitor.stop
    clocked = _ClockedThreadMonitor(tracks)
    return clocked.start(), clocked.stop


def run_bench(n: int = 500, seconds_audio: float = 3.0, flood_requests: int = 20_000,
              paced_seconds: float = 2.0, clients: int = 16, engine: str = "process") -> dict:
    from stase.bridge.daemon import Daemon, DaemonConfig
    tmp = Path(tempfile.mkdtemp(prefix="stase-bench-"))
    d = Daemon(DaemonConfig(port=0, session=str(tmp / "s.json"), conductor_model="none"))
    d.start()
    import os
    result: dict = {"machine_note": "loopback UDP, daemon in-process, durable session saves",
                    "engine": engine,
                    "load_average_1min": round(os.getloadavg()[0], 2), "cpus": os.cpu_count()}
    try:
        client = _Client(d.port)
        tracks = ["Vox", "Gtr", "Bass", "Drums", "Keys", "Sax", "Trumpet", "Piano"]
        client.call("tracks", {"tracks": tracks})
        # a monitor without a device, driven by a simulated audio clock
        monitor, stop_monitor = _clocked_monitor(engine, tracks)
        d.monitor = monitor
        period = 256 / 48000
        rng = np.random.default_rng(0)
        rtt = []
        for i in range(n):
            reply, marks = client.call("set_source", {"track": tracks[i % len(tracks)],
                                                      "azimuth_deg": float(rng.uniform(-180, 180))})
            assert reply["ok"], reply
            rtt.append(marks["done"])
        time.sleep(0.05)
        count = min(monitor.latency_count, len(monitor.latencies_s))
        latencies = monitor.latencies_s[:count]
        stop_monitor()
        result["set_source_round_trip"] = _stats_ms(rtt)
        result["move_to_rendered_block"] = dict(_stats_ms(list(latencies)),
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
        result["paced_flood"] = [paced_flood(d.port, tracks, rate, paced_seconds) for rate in (400, 800)]
        # the client's default timeout, then a longer one that lets the retries outlast the backlog
        result["unpaced_flood"] = [unpaced_flood(d, flood_requests, clients, timeout_s)
                                   for timeout_s in (2.0, 10.0)]
        at_800 = result["paced_flood"][-1]
        result["goals"] = {"set_source_p99_under_5ms": result["set_source_round_trip"]["p99_ms"] < 5.0,
                           "move_within_one_block": result["move_to_rendered_block"]["p99_ms"] <= period * 1e3 * 1.5,
                           "paced_800_per_s_no_loss_p99_under_6ms":
                               at_800["loss_percent"] == 0 and at_800.get("p99_ms", 1e9) < 6.0}
    finally:
        d.stop()
    return result


_MOVER = r"""
import json, select, socket, sys, time
import numpy as np
from stase.bridge.osc_transport import build_message, parse_datagram
port, seconds, every_s = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
tracks = json.loads(sys.argv[4])
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.connect(("127.0.0.1", port))
rng = np.random.default_rng(0)
rtt, errors, lost = [], [], 0
print("ready", flush=True)
sys.stdin.readline()
end = time.monotonic() + seconds
i = 0
while time.monotonic() < end:
    i += 1
    t0 = time.perf_counter()
    sock.send(build_message("/stase/set_source", [json.dumps({"id": i, "track": tracks[i % len(tracks)],
                            "azimuth_deg": float(rng.uniform(-180, 180))})]))
    while True:
        if not select.select([sock], [], [], 2.0)[0]:
            lost += 1
            break
        reply = json.loads(parse_datagram(sock.recv(65535))[0][1][0])
        if reply.get("id") == i:
            rtt.append(time.perf_counter() - t0)
            if not reply.get("ok"):
                errors.append(reply.get("error"))
            break
    time.sleep(float(rng.uniform(0.0, 2 * every_s)))
print(json.dumps({"rtt_s": rtt, "errors": errors[:3], "error_count": len(errors), "lost": lost}), flush=True)
"""


_CPU_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


def _cpu_ticks() -> list[int] | None:
    """The machine's CPU time so far, per kind (Linux ``/proc/stat``, clock ticks), or None."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            return [int(v) for v in f.readline().split()[1:1 + len(_CPU_FIELDS)]]
    except (OSError, ValueError):
        return None


def _cpu_percent(before: list[int] | None, after: list[int] | None) -> dict | None:
    """Where the machine's CPU time went between two :func:`_cpu_ticks` (percent of all of it;
    ``steal``: time the hypervisor gave to others, ``nice``: the job process among others)."""
    if before is None or after is None:
        return None
    spent = [b - a for a, b in zip(before, after)]
    total = sum(spent) or 1
    return {name: round(100.0 * v / total, 1) for name, v in zip(_CPU_FIELDS, spent)}


def _history_between(history: np.ndarray, start: int, stop: int) -> np.ndarray:
    """The entries ``start .. stop - 1`` of a ring ``history`` (the last ``len(history)`` of
    them when it wrapped)."""
    start = max(start, stop - len(history))
    return history[np.arange(start, stop) % len(history)]


def _render_stems(folder: Path) -> list[str]:
    """Six stems of the project's generator (rock_band, 8 bars, seed 0) as WAV files in
    ``folder``; their track names."""
    from stase.agent.music import generate_stems
    from stase.core.audio_io import write_audio
    stems = generate_stems({"template": "rock_band", "bars": 8}, 48000, 0)
    for name, audio in stems.items():
        write_audio(folder / f"{name}.wav", audio, 48000)
    return list(stems)


def _job_loop(port: int, stop: threading.Event, done: dict) -> None:
    """``listen`` then ``advise``, back to back, until ``stop``; counts what finished."""
    client = _Client(port)
    while not stop.is_set():
        for verb in ("listen", "advise"):
            if stop.is_set():
                return
            reply, _ = client.call(verb, {}, timeout_s=600)
            key = verb if reply["ok"] else f"{verb}_failed"
            done[key] = done.get(key, 0) + 1
            if not reply["ok"]:
                done["last_error"] = reply.get("error")


def run_under_load(engine: str, seconds: float = 60.0, block: int = 256, rate: int = 48000,
                   move_every_s: float = 0.02, jobs: str = "process") -> dict:
    """One engine under load: see the module docstring (``--under-load``)."""
    import contextlib
    import shutil
    from stase.bridge.daemon import Daemon, DaemonConfig
    tmp = Path(tempfile.mkdtemp(prefix="stase-bench-load-"))
    (tmp / "stems").mkdir()
    tracks = _render_stems(tmp / "stems")
    period_ms = block / rate * 1e3
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the one JACK helper
    from ardour_host import ArdourUnavailable, jack_server
    use_jack = shutil.which("jackd") is not None
    server = jack_server(rate=rate, period=block, capture_ports=max(8, len(tracks))) if use_jack \
        else contextlib.nullcontext(None)
    jobs_mode = jobs
    out: dict = {"engine": engine, "jobs": jobs_mode, "block_size": block, "block_period_ms": round(period_ms, 3),
                 "audio": "JACK dummy server" if use_jack else "simulated clock (no jackd)",
                 "tracks": len(tracks), "seconds": seconds}
    try:
        with server:
            d = Daemon(DaemonConfig(port=0, session=str(tmp / "s.json"), conductor_model="none",
                                    audio=use_jack, audio_hostapi="JACK" if use_jack else None,
                                    engine=engine, block_size=block, sample_rate=rate,
                                    allow_dirs=[str(tmp)],
                                    jobs="inline" if jobs_mode == "none" else jobs_mode))
            d.start()
            stop_clock = None
            try:
                client = _Client(d.port)
                client.call("tracks", {"tracks": tracks})
                reply, _ = client.call("plan", {"prompt": "a rock band on a club stage, vocals in the "
                                                          "middle, guitar a bit left", "tracks": tracks})
                assert reply["ok"], reply
                client.call("stems", {"stems_dir": str(tmp / "stems")})
                if not use_jack:
                    d.monitor, stop_clock = _clocked_monitor(engine, tracks)
                deadline = time.monotonic() + 60
                while (d.monitor is None or d.monitor.blocks < 100) and time.monotonic() < deadline:
                    time.sleep(0.1)
                monitor = d.monitor
                if monitor is None:
                    return dict(out, error=f"the monitor did not start: {d.audio_error}")
                stop, jobs = threading.Event(), {}
                loader = threading.Thread(target=_job_loop, args=(d.port, stop, jobs), daemon=True)
                if jobs_mode != "none":
                    loader.start()
                    time.sleep(2.0)  # the first job is under way
                # the moves come from another process, as from a DAW or `stase client`: its
                # round trips do not wait for this process's GIL
                env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
                mover = subprocess.Popen([sys.executable, "-c", _MOVER, str(d.port), str(seconds),
                                          str(move_every_s), json.dumps(tracks)],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
                assert mover.stdout.readline().strip() == "ready"
                before = monitor.status()
                latencies_before = monitor.latency_count
                handled_before = d.dispatcher.handling_s, d.dispatcher.handled
                load = [os.getloadavg()[0]]
                cpu_before = _cpu_ticks()
                mover.stdin.write("go\n")
                mover.stdin.flush()
                moved = json.loads(mover.stdout.readline())
                mover.wait(10)
                rtt = moved["rtt_s"]
                time.sleep(0.1)
                after = monitor.status()
                cpu_after = _cpu_ticks()
                load.append(os.getloadavg()[0])
                latencies = _history_between(monitor.latencies_s, latencies_before,
                                             monitor.latency_count)
                handling = _history_between(np.frombuffer(handled_before[0], dtype=np.float64),
                                            handled_before[1], d.dispatcher.handled)
                stop.set()
                out.update({
                    "set_source_round_trip": dict(_stats_ms(rtt), lost=moved["lost"],
                                                  errors=moved["error_count"]),
                    # the daemon's own share of each round trip: request parsed -> reply sent, on
                    # its request thread (``status.request_thread``); the rest is the client's
                    # process waiting for a core and the kernel
                    "daemon_handling": _stats_ms(list(handling)) if len(handling) else None,
                    "request_thread": d.endpoint.scheduling,
                    "move_to_rendered_block": _stats_ms(list(latencies)),
                    "callback_overruns": after["callback_overruns"] - before["callback_overruns"],
                    # overruns whose callback used less CPU than a block: it waited (a core, the
                    # hypervisor, the GIL), the render itself fitted
                    "callback_overruns_waiting": after.get("callback_overruns_waiting", 0)
                    - before.get("callback_overruns_waiting", 0),
                    "xruns": after["xruns"] - before["xruns"],
                    "blocks": after["blocks"] - before["blocks"],
                    "max_callback_ms": after["max_callback_ms"],
                    "jobs_done": dict(jobs), "load_average_1min": [round(v, 2) for v in load],
                    "cpu_percent": _cpu_percent(cpu_before, cpu_after),
                    # the engine's garbage collections in the run (process engine; see rt_child)
                    "engine_gc": {key: after[key] - before.get(key, 0) for key in
                                  ("gc_collections", "gc_collections_during_blocks") if key in after},
                    "engine_realtime": after.get("engine_realtime"),
                    "engine_priority": after.get("engine_priority"),
                    "job_process": d._jobs_status(),
                })
                out["goals"] = {
                    "set_source_p99_under_5ms": out["set_source_round_trip"]["p99_ms"] < 5.0,
                    "move_p99_within_block_plus_2ms":
                        out["move_to_rendered_block"]["p99_ms"] <= period_ms + 2.0,
                    "no_callback_overruns": out["callback_overruns"] == 0}
                if loader.is_alive():
                    loader.join(120)  # the running job ends before the daemon stops
            finally:
                if stop_clock is not None:
                    stop_clock()
                d.stop()
    except ArdourUnavailable as exc:
        return dict(out, error=str(exc))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--n", type=int, default=500, help="set_source requests (default 500)")
    parser.add_argument("--quick", action="store_true",
                        help="brief runs (200 requests, 1 s per paced rate, 8 flood clients)")
    parser.add_argument("--engine", choices=("process", "thread", "both"), default="process",
                        help="where the monitor's callback runs (both: each in turn; default "
                             "process, the daemon's default)")
    parser.add_argument("--under-load", action="store_true",
                        help="add the run under a listen + advise load (see the module docstring)")
    parser.add_argument("--only-under-load", action="store_true",
                        help="only the run under load (skip the idle figures and the floods)")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the run under load (s)")
    parser.add_argument("--jobs", choices=("process", "inline", "both", "none"), default="process",
                        help="where the daemon computes the listen/advise jobs under load (both: "
                             "each in turn; none: no jobs, the machine's floor; default process, "
                             "the daemon's default)")
    args = parser.parse_args(argv)
    engines = ("process", "thread") if args.engine == "both" else (args.engine,)
    result: dict = {}
    if not args.only_under_load:
        for engine in engines:
            part = (run_bench(min(args.n, 200), paced_seconds=1.0, clients=8, engine=engine)
                    if args.quick else run_bench(args.n, engine=engine))
            if len(engines) == 1:
                result.update(part)
            else:
                result[f"idle_{engine}"] = part
    if args.under_load or args.only_under_load:
        seconds = min(args.seconds, 10.0) if args.quick else args.seconds
        job_modes = ("process", "inline") if args.jobs == "both" else (args.jobs,)
        if len(job_modes) == 1:
            result["under_load"] = {engine: run_under_load(engine, seconds, jobs=job_modes[0])
                                    for engine in engines}
        else:
            result["under_load"] = {f"{engine}/jobs={jobs}": run_under_load(engine, seconds, jobs=jobs)
                                    for engine in engines for jobs in job_modes}
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        for key, value in result.items():
            print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
