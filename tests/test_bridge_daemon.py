"""The daemon over real UDP: client round trips, fuzzing, crash recovery, the REAPER adapter."""
from __future__ import annotations

import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stase.bridge.adapters.reaper import PATTERNS, ReaperAdapter
from stase.bridge.client import request
from stase.bridge.daemon import Daemon, DaemonConfig
from stase.bridge.session_journal import saved_state
from stase.bridge.osc_transport import OscEndpoint, build_message, parse_datagram
from daemon_helpers import ask, running_daemon  # tests/ is on sys.path in pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def daemon(tmp_path):
    with running_daemon(tmp_path) as d:
        yield d


def test_round_trip_of_the_documented_verbs(daemon):
    assert ask(daemon, "tracks", tracks=["Vox", "Gtr L", "Bass"])["ok"]
    r = ask(daemon, "set_source", track="gtr l", azimuth_deg=30, mode="itd_ild", gain_db=-2)
    assert r["ok"] and r["result"]["track"] == "Gtr L" and r["result"]["azimuth_deg"] == 30.0
    src = {s["track"]: s for s in ask(daemon, "sources")["result"]["sources"]}
    assert src["Gtr L"]["mode"] == "itd_ild" and src["Vox"]["placed"] is False
    status = ask(daemon, "status")["result"]
    assert status["audio"]["xruns"] == 0 and "cpu_load" in status["audio"]
    assert set(status["verbs"]) >= {"status", "plan", "edit", "apply", "advise", "listen", "chat",
                                    "sources", "set_source"}
    applied = ask(daemon, "apply")["result"]
    assert applied["sources"] == 1
    bad = ask(daemon, "set_source", track="Sax", azimuth_deg=1)
    assert bad["ok"] is False and "unknown track" in bad["error"]
    # the session on disk (its snapshot and journal, what a restart restores) says the same
    saved = saved_state(daemon.session.path)
    assert saved["plan"]["sources"][0]["gain_db"] == -2.0


def test_long_jobs_reply_accepted_then_progress_then_the_result(tmp_path):
    d = Daemon(DaemonConfig(port=0, session=str(tmp_path / "s.json"), durable_saves=False,
                            conductor_model="none"))
    d.start()
    try:
        tracks = ["Lead Vocal", "Bass", "Drums"]
        ask(d, "tracks", tracks=tracks)
        progress = []
        r = request("plan", {"prompt": "a small jazz club, bass a bit left"}, port=d.port,
                    timeout_s=3.0, job_timeout_s=120.0, on_progress=progress.append)
        assert [p["status"] for p in progress][:2] == ["accepted", "progress"]
        assert r["ok"], r
        assert r["status"] == "done" and r["job"] == progress[0]["job"]
        assert sorted(s["track"] for s in r["result"]["plan"]["sources"]) == sorted(tracks)
        saved = json.loads(Path(d.session.path).read_text())["plan"]
        assert saved["sources"] == r["result"]["plan"]["sources"]
        # a job that cannot run says what it needs
        r = request("advise", {}, port=d.port, timeout_s=3.0, job_timeout_s=30.0)
        assert r["ok"] is False and "stems_dir" in r["error"]
    finally:
        d.stop()


def test_client_cli_prints_reply_and_reports_an_absent_daemon(daemon):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "stase.cli", "client"]
    ok = subprocess.run(cmd + ["status", "--port", str(daemon.port)], capture_output=True, text=True,
                        env=env, timeout=30)
    assert ok.returncode == 0 and json.loads(ok.stdout)["ok"] is True
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    down = subprocess.run(cmd + ["status", "--port", str(dead_port)], capture_output=True, text=True,
                          env=env, timeout=30)
    assert down.returncode == 3 and down.stdout == ""
    assert f"stase daemon not reachable at 127.0.0.1:{dead_port}" in down.stderr
    assert "start it with `stase serve`" in down.stderr


def _fuzz_packets(rng, n):
    """Random and malformed datagrams: (bytes, expects_reply)."""
    verbs = ["status", "sources", "set_source", "apply", "nope", "tracks", "select", ""]
    for i in range(n):
        kind = i % 10
        verb = verbs[int(rng.integers(len(verbs)))]
        if kind == 0:   # random bytes
            yield bytes(rng.integers(0, 256, int(rng.integers(1, 200)), dtype="uint8")), False
        elif kind == 1:  # truncated valid message
            data = build_message(f"/stase/{verb}", ['{"id": 1}'])
            yield data[: int(rng.integers(1, len(data)))], None
        elif kind == 2:  # wrong types / arity
            args = [[], [1], [1.5, "x"], ["{}", "{}"], [b"\x00\x01"], [True]][int(rng.integers(6))]
            yield build_message(f"/stase/{verb}", args), True
        elif kind == 3:  # invalid JSON / non-objects
            text = ["{", "null", "[]", "42", '"s"', "{\"id\": {}}", "NaN"][int(rng.integers(7))]
            yield build_message(f"/stase/{verb}", [text]), True
        elif kind == 4:  # unknown tracks and bad values
            payload = {"id": i, "track": ["Zz", "", None, 3, "Vox"][int(rng.integers(5))],
                       "azimuth_deg": [1e308, "left", None, -45][int(rng.integers(4))]}
            yield build_message("/stase/set_source", [json.dumps(payload)]), True
        elif kind == 5:  # huge string
            yield build_message("/stase/status", ["x" * int(rng.integers(1000, 60000))]), True
        elif kind == 6:  # non-UTF-8 address / string
            yield b"/stase/\xff\xfe\x00\x00,s\x00\x00ab\xffc\x00\x00\x00\x00", False
        elif kind == 7:  # unknown addresses
            yield build_message(f"/{rng.integers(1e6)}/x", ["{}"]), True
        elif kind == 8:  # a valid request
            yield build_message("/stase/set_source", [json.dumps(
                {"id": i, "track": "Vox", "azimuth_deg": float(rng.uniform(-180, 180))})]), True
        else:           # bundle with a malformed element
            yield b"#bundle\x00" + b"\x00" * 8 + b"\x00\x00\x00\x10" + b"junk" * 3, False


@pytest.mark.slow
def test_fuzz_ten_thousand_packets(daemon, rng):
    ask(daemon, "tracks", tracks=["Vox", "Bass"])
    time.sleep(0.2)  # the server counts its reply just after sending it
    before = dict(daemon.endpoint.stats)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    replies, sent = 0, 0
    expected_min = 0
    try:
        for data, expects in _fuzz_packets(rng, 10_000):
            sock.sendto(data, ("127.0.0.1", daemon.port))
            sent += 1
            expected_min += bool(expects)
            while select.select([sock], [], [], 0)[0]:
                parse_datagram(sock.recv(65535))
                replies += 1
            if sent % 20 == 0:  # let the server catch up so the kernel's buffer never overflows
                deadline = time.monotonic() + 5
                while (daemon.endpoint.stats["datagrams"] - before["datagrams"] < sent
                       and time.monotonic() < deadline):
                    while select.select([sock], [], [], 0.001)[0]:
                        parse_datagram(sock.recv(65535))
                        replies += 1
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if select.select([sock], [], [], 0.3)[0]:
                reply = parse_datagram(sock.recv(65535))
                assert reply[0][0] == "/stase/reply"
                replies += 1
            elif daemon.endpoint.stats["datagrams"] - before["datagrams"] >= sent:
                break
    finally:
        sock.close()
    stats = daemon.endpoint.stats
    received = stats["datagrams"] - before["datagrams"]
    dropped = stats["parse_errors"] - before["parse_errors"]
    answered = stats["sent"] - before["sent"]
    assert received == sent                     # nothing lost on loopback
    messages = stats["messages"] - before["messages"]
    assert answered == messages                 # every parsed request got exactly one reply
    assert received - dropped <= messages       # ... and every other datagram was counted
    assert answered >= expected_min and replies == answered
    assert dropped >= 1000 and stats["callback_errors"] == 0
    assert daemon.dispatcher.stats["internal_errors"] == 0
    # still up, and the session file is valid JSON with a valid plan
    assert ask(daemon, "status")["ok"]
    from stase.core.plan import Plan
    Plan.from_dict(json.loads(Path(daemon.session.path).read_text())["plan"])


def test_killed_daemon_restarts_with_its_session(tmp_path):
    session = tmp_path / "session.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    def serve():
        with open(tmp_path / "serve.log", "ab") as log:
            proc = subprocess.Popen([sys.executable, "-m", "stase.cli", "serve", "--port", str(port),
                                     "--session", str(session)], stdout=subprocess.PIPE,
                                    stderr=log, text=True, env=env)
        line = proc.stdout.readline()
        if "ready" not in line:
            proc.kill()
            proc.wait(5)
            pytest.fail(f"stase serve did not start: {(tmp_path / 'serve.log').read_text()}")
        return proc

    proc = serve()
    try:
        assert request("tracks", {"tracks": ["Vox", "Keys"]}, port=port)["ok"]
        assert request("set_source", {"track": "Keys", "azimuth_deg": -70, "distance_m": 4}, port=port)["ok"]
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        proc = serve()
        src = {s["track"]: s for s in request("sources", {}, port=port)["result"]["sources"]}
        assert src["Keys"]["azimuth_deg"] == -70.0 and src["Keys"]["distance_m"] == 4.0
        proc.send_signal(signal.SIGTERM)  # clean shutdown path
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


# ------------------------------------------------------------------ REAPER
def _pattern_file():
    patterns = {}
    for line in (ROOT / "reaper_scripts" / "stase.ReaperOSC").read_text().splitlines():
        parts = line.split()
        if parts and not line.startswith("#") and len(parts) >= 2 and "/" in parts[1]:
            patterns.setdefault(parts[0], []).extend(parts[1:])
    return patterns


def test_reaper_patterns_are_declared_in_the_shipped_pattern_file():
    declared = _pattern_file()
    for action, pattern in PATTERNS.items():
        assert pattern in declared.get(action, []), f"{action} {pattern} missing from stase.ReaperOSC"


class FakeReaper:
    """A stand-in for REAPER's OSC surface: answers like the default pattern config does."""

    def __init__(self, names, feedback_port, port=0):
        self.names = list(names)
        self.volume = {i + 1: 0.0 for i in range(len(names))}
        self.pan = {i + 1: 0.5 for i in range(len(names))}
        self.received = []
        self.feedback_to = ("127.0.0.1", feedback_port)
        self.endpoint = OscEndpoint(self._on, "127.0.0.1", port, name="fake-reaper").start()

    def _on(self, address, args, sender):
        self.received.append((address, args))
        if address == "/action" and args == [41743]:
            for i, n in enumerate(self.names, 1):
                self.endpoint.send(f"/track/{i}/name", [n], self.feedback_to)
                self.endpoint.send(f"/track/{i}/volume/db", [self.volume[i]], self.feedback_to)
        m = re.match(r"^/track/(\d+)/(volume/db|pan)$", address)
        if m:
            i = int(m.group(1))
            store = self.volume if m.group(2) == "volume/db" else self.pan
            store[i] = float(args[0])
            self.endpoint.send(address, [store[i]], self.feedback_to)


def test_reaper_adapter_mirrors_names_and_applies_gain_and_pan(tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        listen = s.getsockname()[1]
    fake = FakeReaper(["Kick", "Vox"], listen)
    d = Daemon(DaemonConfig(port=0, daw="reaper", daw_port=fake.endpoint.port, daw_listen_port=listen,
                            session=str(tmp_path / "s.json"), durable_saves=False))
    d.start()
    d.adapter.keepalive_s = 0.1
    try:
        deadline = time.monotonic() + 5
        while d.session.track_names() != ["Kick", "Vox"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert d.session.track_names() == ["Kick", "Vox"]
        assert ("/device/track/count", [64]) in fake.received
        r = ask(d, "set_source", track="vox", azimuth_deg=90.0, gain_db=-4.5)
        assert r["ok"]
        deadline = time.monotonic() + 3
        # gain and pan travel as two messages: wait for the feedback of both
        while ((d.adapter.feedback[2].get("gain_db") != -4.5 or d.adapter.feedback[2].get("pan") != -1.0)
               and time.monotonic() < deadline):
            time.sleep(0.02)
        assert fake.volume[2] == pytest.approx(-4.5)
        assert fake.pan[2] == pytest.approx(0.0)  # fully left = normalised 0
        assert d.adapter.feedback[2]["pan"] == pytest.approx(-1.0)
        # REAPER quits and a new one starts, with other tracks: the adapter re-reads it
        fake.endpoint.close()
        d.adapter.refresh_s = 0.3
        fake = FakeReaper(["Kick", "Lead Vox", "Organ"], listen, port=fake.endpoint.port)
        deadline = time.monotonic() + 5
        daw_names = lambda: [t["name"] for t in d.session.tracks]  # noqa: E731
        while daw_names() != ["Kick", "Lead Vox", "Organ"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert daw_names() == ["Kick", "Lead Vox", "Organ"]
        assert "Vox" in d.session.track_names()  # its placement stays in the plan
    finally:
        d.stop()
        fake.endpoint.close()
