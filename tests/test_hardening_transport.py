"""Issue 14, the transport layer: floods, bind addresses, spoofed DAW feedback, bad flags.

Defect 10: the client under a flood (retries, "busy" vs "not reachable", kernel drops counted);
13: an empty or non-loopback bind address; 14 (DAW half): feedback only from the DAW, a bounded
track count; 15/22: out-of-range ports, timeouts, sample rates and block sizes are exit-2 errors.
"""
from __future__ import annotations

import logging
import re
import socket
import sys
import time

import pytest

from stase.bridge.adapters import MAX_DAW_TRACKS
from stase.bridge.adapters.ardour import ArdourAdapter
from stase.bridge.adapters.reaper import ReaperAdapter
from stase.cli import main as stase_main
from stase.bridge.client import (EXIT_BUSY, RETRY_VERBS, DaemonBusy, DaemonUnreachable, request)
from stase.bridge.osc_transport import OscEndpoint, build_message, proc_udp_drops
from stase.core.errors import InputError
from daemon_helpers import FakePeer  # tests/ is on sys.path in pytest

ON_LINUX = sys.platform.startswith("linux")


def wait_for(predicate, timeout_s=5.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def udp_socket(host="127.0.0.1", port=0):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((host, port))
    return sock


def free_port():
    with udp_socket() as s:
        return s.getsockname()[1]


def loopback_alias_or_skip(address="127.0.0.2"):
    """A second loopback source address (Linux routes all of 127/8 to lo)."""
    try:
        udp_socket(address).close()
    except OSError as exc:
        pytest.skip(f"cannot bind {address} on this machine ({exc}); the spoofing test needs it")
    return address


def send_paced(sock, datagrams, to, endpoint):
    """Send so that the receiver's buffer never overflows: every datagram must arrive."""
    sent = endpoint.stats["datagrams"]
    for i, data in enumerate(datagrams, 1):
        sock.sendto(data, to)
        if i % 50 == 0:
            assert wait_for(lambda: endpoint.stats["datagrams"] >= sent + i)
    assert wait_for(lambda: endpoint.stats["datagrams"] >= sent + len(datagrams))


# ------------------------------------------------------------------ 10: kernel drops
@pytest.mark.skipif(not ON_LINUX, reason="the kernel's per-socket drop counter is Linux's")
def test_kernel_drops_equal_what_was_sent_but_never_received():
    received = []
    # a tiny receive buffer and no receive loop yet: a burst must overflow it
    endpoint = OscEndpoint(lambda address, args, s: received.append(address),
                           receive_buffer_bytes=4096)
    sender = udp_socket()
    try:
        assert endpoint.stats["kernel_drops"] == 0 and endpoint.stats["kernel_drops_counted"]
        burst = 400
        for i in range(burst):
            sender.sendto(build_message("/x", [i]), ("127.0.0.1", endpoint.port))
        endpoint.start()
        assert wait_for(lambda: len(received) > 0)
        time.sleep(0.2)  # the queued ones are read
        # one more after the drops: its ancillary data carries the cumulative count
        sender.sendto(build_message("/marker", [1]), ("127.0.0.1", endpoint.port))
        assert wait_for(lambda: received and received[-1] == "/marker")
        sent = burst + 1
        drops = endpoint.stats["kernel_drops"]
        assert drops > 0
        assert drops == sent - endpoint.stats["datagrams"]
        # the /proc/net/udp reading (used when the socket is idle) agrees
        assert endpoint.refresh_kernel_drops() == drops
        import os
        assert proc_udp_drops(os.fstat(endpoint._sock.fileno()).st_ino) == drops
    finally:
        sender.close()
        endpoint.close()


def test_daemon_status_shows_kernel_drops_under_osc(tmp_path):
    from stase.bridge.daemon import Daemon, DaemonConfig
    d = Daemon(DaemonConfig(port=0, session=str(tmp_path / "s.json"), durable_saves=False))
    d.start()
    try:
        osc = request("status", port=d.port, timeout_s=3.0)["result"]["osc"]
        assert osc["kernel_drops"] == 0
        assert osc["kernel_drops_counted"] is ON_LINUX
        assert osc["receive_buffer_bytes"] > 0
    finally:
        d.stop()


# ------------------------------------------------------------------ 10: client retries, busy
def SilentPeer(answer_on=None):
    """A bound UDP port that reads requests and answers only the ``answer_on``-th copy of each."""
    def answer(address, params, copies):
        if answer_on is not None and copies == answer_on:
            return {"id": params["id"], "ok": True, "status": "done", "result": {"copy": copies}}
        return None
    return FakePeer(answer)


def test_client_resends_a_short_request_until_it_is_answered():
    peer = SilentPeer(answer_on=3)  # the first two copies are "lost in the flood"
    try:
        reply = request("set_source", {"track": "Vox", "azimuth_deg": 10}, port=peer.port,
                        timeout_s=3.0)
        assert reply["ok"] and reply["result"]["copy"] == 3
        ids = {params['id'] for _, params in peer.requests}
        assert len(ids) == 1 and len(peer.requests) == 3  # the same id each time, then it stopped
    finally:
        peer.close()


def test_client_never_resends_a_long_job():
    peer = SilentPeer(answer_on=None)
    try:
        assert "plan" not in RETRY_VERBS
        with pytest.raises(DaemonBusy):
            request("plan", {"prompt": "a club"}, port=peer.port, timeout_s=0.8)
        assert len(peer.requests) == 1  # a copy would queue the job twice
    finally:
        peer.close()


def test_client_says_busy_not_start_it_when_the_port_is_reachable_but_silent(capsys):
    peer = SilentPeer(answer_on=None)
    try:
        rc = stase_main(["client", "status", "--port", str(peer.port), "--timeout", "1"])
        err = capsys.readouterr().err
        assert rc == EXIT_BUSY == 4
        assert "busy" in err and "no reply within 1 s" in err and "overloaded" in err
        assert "stase serve" not in err
        # back-off: sent at 0, 0.25 and 0.75 s (the next would be at 1.75 s), one id
        assert 2 <= len(peer.requests) <= 3 and len({params['id'] for _, params in peer.requests}) == 1
    finally:
        peer.close()


def test_client_says_not_reachable_only_when_nothing_listens(capsys):
    port = free_port()
    started = time.monotonic()
    with pytest.raises(DaemonUnreachable):
        request("status", port=port, timeout_s=2.0)
    assert time.monotonic() - started < 1.0  # the ICMP answer, not the timeout
    rc = stase_main(["client", "status", "--port", str(port)])
    err = capsys.readouterr().err
    assert rc == 3 and "not reachable" in err and "start it with `stase serve`" in err


# ------------------------------------------------------------------ 13 + 15/22: bad flags
@pytest.mark.parametrize("argv, fragment", [
    (["--port", "70000"], "--port"),
    (["--port", "-1"], "--port"),
    (["--port", "0"], "--port"),
    (["--timeout", "-1"], "--timeout"),
    (["--timeout", "0"], "--timeout"),
    (["--timeout", "nan"], "--timeout"),
    (["--job-timeout", "-1"], "--job-timeout"),
    (["--job-timeout", "0"], "--job-timeout"),
    (["--host", ""], "--host"),
])
def test_client_refuses_bad_flags_with_exit_2(capsys, argv, fragment):
    rc = stase_main(["client", "status", *argv])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("stase client: error:") and fragment in err
    assert "Traceback" not in err


def test_client_refuses_an_empty_stase_host(monkeypatch, capsys):
    monkeypatch.setenv("STASE_HOST", "")
    assert stase_main(["client", "status"]) == 2
    assert "$STASE_HOST" in capsys.readouterr().err


@pytest.mark.parametrize("argv, pattern", [
    (["--host", ""], r"--host .*0\.0\.0\.0 listens on every interface.*got ''"),
    (["--daw-host", ""], r"--daw-host"),
    # types and ranges: DaemonConfig's checks (bridge/daemon.py), reached through the CLI
    (["--port", "70000"], r"port .*70000"),
    (["--port", "-1"], r"port .*-1"),
    (["--block-size", "-5"], r"block.size .*-5"),
    (["--block-size", "0"], r"block.size"),
    (["--sample-rate", "0"], r"sample.rate"),
    (["--daw-port", "70000"], r"daw.port"),
])
def test_serve_refuses_bad_flags_before_touching_anything(tmp_path, capsys, argv, pattern):
    session = tmp_path / "s.json"
    rc = stase_main(["serve", "--session", str(session), *argv])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("stase serve: error:") and re.search(pattern, err), err
    assert "Traceback" not in err
    assert not session.exists()  # refused before the daemon opened its session


def test_serve_refuses_an_empty_host_from_a_config_file(tmp_path, capsys):
    config = tmp_path / "daemon.yaml"
    config.write_text("host: ''\n")
    assert stase_main(["serve", "--config", str(config), "--session", str(tmp_path / "s.json")]) == 2
    assert "--host" in capsys.readouterr().err


def test_endpoint_refuses_an_empty_host_and_warns_for_a_public_one(caplog):
    with pytest.raises(InputError, match="0.0.0.0"):
        OscEndpoint(lambda *a: None, host="")
    with pytest.raises(InputError):
        OscEndpoint(lambda *a: None, port=70000)
    with caplog.at_level(logging.WARNING, logger="stase.osc"):
        OscEndpoint(lambda *a: None, host="127.0.0.1").close()
        assert "no authentication" not in caplog.text
        OscEndpoint(lambda *a: None, host="0.0.0.0").close()
    assert "no authentication; anyone who can reach this address can control it" in caplog.text


# ------------------------------------------------------------------ 14: spoofed DAW feedback
def test_reaper_takes_feedback_only_from_its_address():
    spoof_host = loopback_alias_or_skip()
    reaper = udp_socket()       # where "REAPER" listens; it also sends from here
    adapter = ReaperAdapter(port=reaper.getsockname()[1], listen_port=free_port(),
                            keepalive_s=60).start()
    spoofer = udp_socket(spoof_host)
    try:
        to = ("127.0.0.1", adapter.endpoint.port)
        fake = [build_message(f"/track/{i}/name", [f"Fake {i}"]) for i in range(1, 41)]
        send_paced(spoofer, fake, to, adapter.endpoint)
        assert adapter.tracks() == []
        assert adapter.status()["feedback_rejected"] == 40
        assert adapter.status()["last_rejected_from"].startswith(spoof_host + ":")
        # the real REAPER, from the configured address: taken in
        send_paced(reaper, [build_message("/track/1/name", ["Kick"]),
                            build_message("/track/1/volume/db", [-3.0])], to, adapter.endpoint)
        assert adapter.tracks() == [{"name": "Kick", "daw_id": 1}]
        assert adapter.feedback[1]["gain_db"] == -3.0
        # a spoofed fader move for the real track changes nothing either
        send_paced(spoofer, [build_message("/track/1/volume/db", [12.0])], to, adapter.endpoint)
        assert adapter.feedback[1]["gain_db"] == -3.0
    finally:
        spoofer.close()
        adapter.stop()
        reaper.close()


def test_reaper_mirrors_at_most_its_bank_of_tracks_and_counts_the_rest():
    reaper = udp_socket()
    adapter = ReaperAdapter(port=reaper.getsockname()[1], listen_port=free_port(),
                            keepalive_s=60).start()
    try:
        to = ("127.0.0.1", adapter.endpoint.port)
        flood = [build_message(f"/track/{i}/name", [f"T{i}"]) for i in range(1, 3001)]
        flood += [build_message("/track/1/volume/db", [float("nan")]),
                  build_message("/track/2/name", ["x" * 5000])]
        send_paced(reaper, flood, to, adapter.endpoint)
        status = adapter.status()
        assert len(adapter.tracks()) == adapter.bank_size == 64 <= MAX_DAW_TRACKS
        assert status["tracks_over_limit"] == 3000 - 64
        assert status["values_refused"] == 2 and "gain_db" not in adapter.feedback[1]
        assert adapter.feedback[2]["name"] == "T2"
        with pytest.raises(InputError):
            ReaperAdapter(bank_size=MAX_DAW_TRACKS + 1)
    finally:
        adapter.stop()
        reaper.close()


def _ardour_strip(ssid, name):
    return build_message("/reply", ["AT", name, 1, 2, 0, 0, ssid])


def test_ardour_takes_feedback_only_from_its_address_and_port():
    spoof_host = loopback_alias_or_skip()
    ardour = udp_socket()
    port = ardour.getsockname()[1]
    adapter = ArdourAdapter(port=port, keepalive_s=60, timeout_s=60).start()
    other_port = udp_socket()                 # same address, another port
    other_host = udp_socket(spoof_host, port)  # Ardour's port, another address
    try:
        to = ("127.0.0.1", adapter.endpoint.port)
        for spoofer in (other_port, other_host):
            send_paced(spoofer, [_ardour_strip(1, "Evil"), build_message("/reply", ["end_route_list"]),
                                 build_message("/strip/name", [2, "Evil 2"])], to, adapter.endpoint)
        assert adapter.tracks() == [] and adapter.status()["feedback_rejected"] == 6
        send_paced(ardour, [_ardour_strip(1, "Vox"), build_message("/reply", ["end_route_list", 48000])],
                   to, adapter.endpoint)
        assert adapter.tracks() == [{"name": "Vox", "daw_id": 1}] and adapter.sample_rate == 48000
    finally:
        for s in (other_port, other_host):
            s.close()
        adapter.stop()
        ardour.close()


def test_ardour_mirrors_at_most_max_daw_tracks():
    ardour = udp_socket()
    adapter = ArdourAdapter(port=ardour.getsockname()[1], keepalive_s=60, timeout_s=60).start()
    published = []
    adapter.on_tracks = published.append
    try:
        to = ("127.0.0.1", adapter.endpoint.port)
        strips = [_ardour_strip(i, f"S{i}") for i in range(1, MAX_DAW_TRACKS + 101)]
        send_paced(ardour, strips + [build_message("/reply", ["end_route_list"])], to, adapter.endpoint)
        assert wait_for(adapter.list_complete.is_set)
        assert len(adapter.tracks()) == MAX_DAW_TRACKS and len(published[-1]) == MAX_DAW_TRACKS
        # feedback naming strips beyond the limit does not add them either
        send_paced(ardour, [build_message("/strip/name", [MAX_DAW_TRACKS + 200, "More"]),
                            build_message("/strip/gain", [1, float("inf")])], to, adapter.endpoint)
        status = adapter.status()
        assert len(adapter.tracks()) == MAX_DAW_TRACKS
        assert status["tracks_over_limit"] == 101 and status["values_refused"] == 1
    finally:
        adapter.stop()
        ardour.close()
