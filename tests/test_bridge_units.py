"""Bridge parts without sockets: command queue, session file, dispatcher replies, MIDI mapping."""
from __future__ import annotations

import json
import types

import pytest

from stase.bridge.adapters import pan_to_position, position_to_pan
from stase.bridge.daemon import route_chat
from stase.bridge.dispatcher import Dispatcher
from stase.bridge.midi import MidiControl, cc_to_value, check_mapping, value_to_cc
from stase.bridge.session import Session
from stase.bridge.session_journal import saved_state
from stase.core.errors import InputError, StaseError


# ------------------------------------------------------------------ command queue
def test_session_saves_every_change_and_restores(tmp_path):
    path = tmp_path / "proj" / "stase-session.json"
    s = Session(path)
    assert not s.restored
    s.set_tracks([{"name": "Vox", "daw_id": 1}, {"name": "Gtr L", "daw_id": 2}])
    s.set_source("gtr l", azimuth_deg=200.0, mode="itd_ild", gain_db=-3.0)
    s.select("vox")
    assert s.saves == 3
    again = Session(path)
    assert again.restored
    assert again.track_names() == ["Vox", "Gtr L"]
    p = again.plan.source("Gtr L")
    assert p.azimuth_deg == pytest.approx(-160.0)  # wrapped to (-180, 180]
    assert (p.mode, p.gain_db, p.provenance["azimuth_deg"]) == ("itd_ild", -3.0, "manual")
    assert again.selected == "Vox"
    assert not list(path.parent.glob(".*.tmp"))  # no temp file left behind


def test_session_rejects_bad_values_without_changing_the_file(tmp_path):
    s = Session(tmp_path / "s.json")
    s.set_tracks([{"name": "Bass"}])
    before, before_saved = (tmp_path / "s.json").read_text(), saved_state(tmp_path / "s.json")
    for bad in ({"azimuth_deg": float("nan")}, {"distance_m": 0}, {"mode": "ambisonic"},
                {"gain_db": "loud"}, {"colour": 1}, {"azimuth_deg": True}):
        with pytest.raises(InputError):
            s.set_source("Bass", **bad)
    with pytest.raises(InputError, match="unknown track"):
        s.set_source("Sax", azimuth_deg=1.0)
    assert (tmp_path / "s.json").read_text() == before
    assert saved_state(tmp_path / "s.json") == before_saved  # no journal line either


def test_corrupt_session_file_is_moved_aside(tmp_path):
    path = tmp_path / "s.json"
    path.write_text("{not json")
    s = Session(path)
    assert not s.restored and s.track_names() == []
    aside = list(tmp_path.glob("s.json.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_text() == "{not json"


# ------------------------------------------------------------------ dispatcher
def _dispatcher():
    sent = []
    d = Dispatcher(lambda sender, payload: sent.append(json.loads(json.dumps(payload))))
    d.register("echo", lambda p: {"echo": p.get("x")})

    def boom(p):
        raise RuntimeError("bug")
    d.register("boom", boom)
    d.register("backend", lambda p: (_ for _ in ()).throw(StaseError("model missing")))
    return d, sent


@pytest.mark.parametrize("address,args,fragment", [
    ("/stase/nope", ["{}"], "unknown verb"),
    ("/other", ["{}"], "unknown address"),
    ("/stase/echo", [], "exactly one JSON string"),
    ("/stase/echo", [1, 2], "exactly one JSON string"),
    ("/stase/echo", [3.5], "exactly one JSON string"),
    ("/stase/echo", ["{bad"], "not valid JSON"),
    ("/stase/echo", ["[1,2]"], "must be an object"),
    ("/stase/echo", ['{"id": [1]}'], "id must be"),
    ("/stase/boom", ["{}"], "internal error: RuntimeError"),
    ("/stase/backend", ["{}"], "model missing"),
])
def test_every_bad_request_gets_exactly_one_error_reply(address, args, fragment):
    d, sent = _dispatcher()
    d.handle(address, args, ("127.0.0.1", 1))
    assert len(sent) == 1
    assert sent[0]["ok"] is False and fragment in sent[0]["error"]


def test_good_request_echoes_id_and_long_job_sends_accepted_progress_done():
    d, sent = _dispatcher()
    d.handle("/stase/echo", ['{"id": "a1", "x": 5}'], ("h", 1))
    assert sent == [{"id": "a1", "ok": True, "status": "done", "result": {"echo": 5}}]
    sent.clear()

    def job(params, progress):
        progress(0.5, "half")
        return {"n": params["n"] * 2}
    d.register("job", job, long=True)
    d.start()
    try:
        d.handle("/stase/job", ['{"id": 7, "n": 21}'], ("h", 1))
        for _ in range(100):
            if len(sent) == 3:
                break
            import time
            time.sleep(0.02)
    finally:
        d.stop()
    assert [r["status"] for r in sent] == ["accepted", "progress", "done"]
    assert sent[1]["progress"] == 0.5 and sent[2]["result"] == {"n": 42}
    assert {r["id"] for r in sent} == {7} and len({r["job"] for r in sent}) == 1


# ------------------------------------------------------------------ small conversions
@pytest.mark.parametrize("pan,position", [(-1.0, 0.0), (0.0, 0.5), (1.0, 1.0), (-0.5, 0.25)])
def test_pan_position_round_trip(pan, position):
    assert pan_to_position(pan) == pytest.approx(position)
    assert position_to_pan(position) == pytest.approx(pan)


def test_cc_scaling_is_linear_and_round_trips():
    assert cc_to_value(0, -180, 180) == -180 and cc_to_value(127, -180, 180) == 180
    for cc in range(128):
        assert value_to_cc(cc_to_value(cc, 0.5, 20.0), 0.5, 20.0) == cc
    assert value_to_cc(99.0, -30, 6) == 127 and value_to_cc(-99.0, -30, 6) == 0


def test_chat_routing():
    assert route_chat("give me gain advice", has_plan=True) == "advise"
    assert route_chat("where is the sax?", has_plan=True) == "listen"
    assert route_chat("move the sax a bit left", has_plan=True) == "edit"
    assert route_chat("a jazz trio in a small club", has_plan=False) == "plan"


# ------------------------------------------------------------------ MIDI logic (ports in test_bridge_jack)
class _FakeDaemon:
    def __init__(self, tmp_path):
        self.session = Session(tmp_path / "s.json")
        self.session.set_tracks([{"name": "Vox"}, {"name": "Sax"}])
        self.midi = None

    def set_source(self, track, **fields):
        p = self.session.set_source(track, **fields)
        self.midi.echo(p)
        return p

    def verb_select(self, params):
        return {"selected": self.session.select(params["track"])}


def _cc(control, value, channel=0):
    return types.SimpleNamespace(type="control_change", control=control, value=value, channel=channel)


def test_midi_cc_moves_selected_source_and_learn_rebinds(tmp_path):
    daemon = _FakeDaemon(tmp_path)
    midi = MidiControl(daemon, mapping_path=str(tmp_path / "map.yaml"))
    daemon.midi = midi
    assert midi.handle_message(_cc(20, 1)) == {"select": "Sax"}
    midi.handle_message(_cc(16, 127))
    assert daemon.session.plan.source("Sax").azimuth_deg == pytest.approx(180.0)
    midi.learn("distance_m")
    assert midi.handle_message(_cc(70, 5, channel=2))["learned"] == "distance_m"
    midi.handle_message(_cc(70, 127, channel=2))
    assert daemon.session.plan.source("Sax").distance_m == pytest.approx(20.0)
    assert midi.handle_message(_cc(18, 0)) is None  # the old binding is gone
    reloaded = MidiControl(daemon, mapping_path=str(tmp_path / "map.yaml"))
    assert {"cc": 70, "channel": 3, "field": "distance_m", "min": 0.5, "max": 20.0} in reloaded.mapping["controls"]
    with pytest.raises(InputError):
        midi.learn("colour")
    with pytest.raises(InputError):
        check_mapping({"controls": [{"cc": 300, "field": "x", "min": 1, "max": 1}]})


# ------------------------------------------------------------------ config and transport limits
def test_daemon_config_yaml_flags_win_and_unknown_keys_are_named(tmp_path):
    from stase.bridge.daemon import DaemonConfig
    path = tmp_path / "stase.yaml"
    path.write_text("port: 9200\ndaw: ardour\nblock_size: 512\n")
    config = DaemonConfig.from_yaml(path, port=9300, daw=None)
    assert (config.port, config.daw, config.block_size, config.host) == (9300, "ardour", 512, "127.0.0.1")
    path.write_text("port: 9200\nprot: 1\n")
    with pytest.raises(InputError, match="prot"):
        DaemonConfig.from_yaml(path)


def test_oversized_reply_becomes_an_error_reply():
    from stase.bridge.osc_transport import MAX_REPLY_BYTES, OscEndpoint, parse_datagram
    import socket
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(3)
    endpoint = OscEndpoint(lambda *a: None)
    try:
        endpoint.send_json("/stase/reply", {"id": 5, "ok": True, "result": "x" * (MAX_REPLY_BYTES + 1)},
                           receiver.getsockname())
        address, args = parse_datagram(receiver.recv(65535))[0]
        reply = json.loads(args[0])
        assert address == "/stase/reply" and reply["id"] == 5 and reply["ok"] is False
        assert "too large" in reply["error"] and endpoint.stats["send_errors"] == 1
    finally:
        endpoint.close()
        receiver.close()
