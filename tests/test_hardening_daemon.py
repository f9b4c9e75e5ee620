"""Issue 14, the daemon's verbs: bounded listening, request caps, gain bounds and the monitor's
limiter, reply sizes checked before state changes, confined file paths, config types."""
from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import numpy as np
import pytest

from daemon_helpers import ask, make_daemon, running_daemon  # tests/ is on sys.path in pytest
from stase.bridge.daemon import MAX_PROMPT_CHARS, MAX_TRACKS, Daemon, DaemonConfig
from stase.bridge.dispatcher import MAX_ERROR_CHARS, Dispatcher
from stase.bridge.midi import DEFAULT_MAPPING, check_mapping
from stase.bridge.monitor import CEILING_DBFS, LiveMonitor
from stase.bridge.osc_transport import MAX_REPLY_BYTES, build_message, parse_datagram
from stase.core.audio_io import write_audio
from stase.core.errors import InputError
from stase.core.plan import Plan, SourcePlacement

RATE = 32_000  # the listener's own rate: no resampling in these tests


def _no_progress(*_args):
    return None


_daemon = make_daemon


@pytest.fixture
def served(tmp_path):
    with running_daemon(tmp_path) as d:
        yield d


def ask_job(d, verb, **params):
    return ask(d, verb, job_timeout_s=30.0, **params)


def raw_request(d, verb: str, text: str) -> dict:
    """Send a hand-written JSON text (the client would refuse or re-encode some of these)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(3.0)
    try:
        sock.sendto(build_message(f"/stase/{verb}", [text]), ("127.0.0.1", d.port))
        return json.loads(parse_datagram(sock.recv(65535))[0][1][0])
    finally:
        sock.close()


def _plan_dict(tracks, **fields):
    return {"room": "dry_studio", "sources": [dict({"track": t}, **fields) for t in tracks]}


# ------------------------------------------------------------------ 1: listening has a length bound
MODEL = Path(__file__).resolve().parents[1] / "onnx_models" / "spatial_ast.onnx"


def _stem_daemon(tmp_path, seconds=30.0, tracks=("Sax", "Bass", "Keys")):
    if not MODEL.is_file():
        pytest.fail(f"the shipped listener model {MODEL} is missing")
    stems = tmp_path / "stems"
    n = int(seconds * RATE)
    rng = np.random.default_rng(3)
    for i, name in enumerate(tracks):
        x = (rng.standard_normal(n) * 0.01).astype(np.float32)
        if i == 0:
            x[int(20 * RATE):int(23 * RATE)] *= 50.0  # the loudest moment of the mix: 20-23 s
        write_audio(stems / f"{name}.wav", x, RATE)
    d = _daemon(tmp_path)
    d.verb_tracks({"tracks": list(tracks)})
    d.verb_apply({"plan": _plan_dict(tracks, azimuth_deg=60.0)})
    d.session.set_stems_dir(str(stems))
    return d


@pytest.fixture
def rendered(monkeypatch):
    """Record the stems every offline render gets (the real renderer still renders)."""
    import stase.dsp.offline
    real, seen = stase.dsp.offline.render_plan, []

    def recording(stems, plan, sample_rate, **kw):
        seen.extend((track, len(audio), float(np.abs(audio).max())) for track, audio in stems.items())
        return real(stems, plan, sample_rate, **kw)

    monkeypatch.setattr(stase.dsp.offline, "render_plan", recording)
    return seen


def test_a_question_renders_only_the_loudest_excerpt_of_the_stems(tmp_path, rendered):
    from stase.agent.listener import ANSWER_SECONDS
    d = _stem_daemon(tmp_path)
    answer = d.verb_listen({"question": "where is the sax?"}, _no_progress)
    assert answer["question"] == "where is the sax?" and answer["type"] == "direction"
    assert rendered and {length for _, length, _ in rendered} == {int(ANSWER_SECONDS * RATE)}
    assert max(peak for _, _, peak in rendered) > 0.2  # the window holds the loud 20-23 s stretch


def test_listen_back_renders_only_seconds_of_each_stem(tmp_path, rendered):
    d = _stem_daemon(tmp_path)
    result = d.verb_listen({}, _no_progress)
    assert {row["track"] for row in result["tracks"]} == {"Sax", "Bass", "Keys"}
    assert sorted(track for track, _, _ in rendered) == ["Bass", "Keys", "Sax"]
    assert max(length for _, length, _ in rendered) <= 3 * RATE


# ------------------------------------------------------------------ 2: request text is capped
class _RecordingConductor:
    def __init__(self, n_tracks=None, provenance=""):
        self.calls = 0
        self.n_tracks, self.provenance = n_tracks, provenance

    def plan(self, prompt, tracks=None, current=None):
        self.calls += 1
        names = tracks if self.n_tracks is None else [f"Track {i:04d}" for i in range(self.n_tracks)]
        return Plan(sources=[SourcePlacement(track=t, role="violin", azimuth_deg=float(i % 90),
                                             provenance={"azimuth_deg": self.provenance})
                             for i, t in enumerate(names)])

    def edit(self, request, current):
        self.calls += 1
        return current


@pytest.mark.parametrize("verb, key", [("plan", "prompt"), ("edit", "request"), ("edit", "text"),
                                       ("chat", "text"), ("chat", "message"), ("listen", "question")])
def test_request_text_over_the_cap_is_refused_before_any_parsing(tmp_path, verb, key):
    d = _daemon(tmp_path)
    d.verb_tracks({"tracks": ["Sax"]})
    d.verb_apply({"plan": _plan_dict(["Sax"])})
    d._conductor = _RecordingConductor()
    long_text = "trade places " * (MAX_PROMPT_CHARS // 13 + 1)
    with pytest.raises(InputError, match=f"at most {MAX_PROMPT_CHARS}"):
        getattr(d, f"verb_{verb}")({key: long_text}, _no_progress)
    assert d._conductor.calls == 0
    if verb != "listen":  # at the cap it is accepted
        getattr(d, f"verb_{verb}")({key: "move the sax left. " * (MAX_PROMPT_CHARS // 19)}, _no_progress)
        assert d._conductor.calls == 1


def test_a_prompt_that_is_not_a_string_is_named_so(tmp_path):
    d = _daemon(tmp_path)
    with pytest.raises(InputError, match="prompt must be a string, got int"):
        d.verb_plan({"prompt": 123}, _no_progress)


def test_a_60_kb_chat_over_osc_is_refused_at_once(served):
    served._conductor = _RecordingConductor()
    r = ask_job(served, "chat", text="a" * 60_000)
    assert r["ok"] is False and str(MAX_PROMPT_CHARS) in r["error"]
    assert served._conductor.calls == 0


# ------------------------------------------------------------------ 5: gain is bounded everywhere
def test_gain_1e308_over_osc_is_refused_and_not_stored(served):
    ask(served, "tracks", tracks=["Sax"])
    saves = served.session.saves
    r = ask(served, "set_source", track="Sax", gain_db=1e308)
    assert r["ok"] is False and "gain_db" in r["error"] and "[-120, 24]" in r["error"]
    assert served.session.saves == saves and not served.session.plan.sources
    assert ask(served, "set_source", track="Sax", gain_db=-3)["ok"]


def test_a_plan_with_gain_300_is_refused_by_apply(served):
    ask(served, "tracks", tracks=["Sax"])
    r = ask(served, "apply", plan=_plan_dict(["Sax"], gain_db=300))
    assert r["ok"] is False and "gain_db" in r["error"]
    assert not served.session.plan.sources


def test_midi_ranges_must_lie_inside_the_placement_schema():
    check_mapping(DEFAULT_MAPPING)
    for field, lo, hi in (("gain_db", -30, 40), ("gain_db", -200, 6), ("distance_m", 0, 20),
                          ("azimuth_deg", -180, float("inf"))):
        with pytest.raises(InputError, match=field):
            check_mapping({"controls": [{"cc": 1, "field": field, "min": lo, "max": hi}]})


class _LoudRenderer:
    """Stands in for SceneRenderer: the sum of the inputs at +40 dB (x100)."""

    def __init__(self):
        self.source_ids = []

    def add_source(self, name, **_):
        self.source_ids.append(name)

    def move_source(self, *_args, **_kw):
        pass

    def process(self, inputs, out):
        np.multiply(inputs.sum(axis=0), 100.0, out=out[0])
        out[1] = out[0]

    def reset(self):
        pass


def test_the_monitor_output_never_exceeds_the_ceiling_and_carries_no_nan():
    block = 128
    monitor = LiveMonitor(["A"], sample_rate=48_000, block_size=block, renderer=_LoudRenderer())
    ceiling = 10 ** (CEILING_DBFS / 20)
    t = np.arange(64 * block) / 48_000
    signal = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)  # x100: +34 dBFS peaks
    signal[5 * block + 7] = np.nan
    out = np.zeros((block, 2), np.float32)
    peaks = []
    for i in range(64):
        monitor.process_block(signal[i * block:(i + 1) * block, None], out)
        assert np.all(np.isfinite(out))
        peaks.append(float(np.abs(out).max()))
    assert max(peaks) <= ceiling
    assert max(peaks) > 0.9 * ceiling  # limited, not muted
    status = monitor.status()
    assert status["limited_blocks"] == 64 and status["nonfinite_samples_silenced"] == 1


def test_the_limiter_is_an_exact_pass_through_below_the_ceiling_and_recovers():
    block = 128
    monitor = LiveMonitor(["A"], sample_rate=48_000, block_size=block, renderer=_LoudRenderer())
    quiet = np.full((block, 1), 0.005, np.float32)  # x100 = 0.5: below the ceiling
    loud = np.full((block, 1), 0.05, np.float32)
    out = np.zeros((block, 2), np.float32)
    monitor.process_block(quiet, out)
    np.testing.assert_array_equal(out, 0.5)
    monitor.process_block(loud, out)
    assert np.abs(out).max() <= 10 ** (CEILING_DBFS / 20)
    for _ in range(200):  # 0.5 s: many release time constants
        monitor.process_block(quiet, out)
    np.testing.assert_array_equal(out, 0.5)


def test_the_monitor_refuses_a_gain_the_schema_refuses():
    monitor = LiveMonitor(["A"], sample_rate=48_000, block_size=64, renderer=_LoudRenderer())
    with pytest.raises(InputError, match="gain_db"):
        monitor.set_source("A", gain_db=300.0)
    assert monitor.set_source("A", gain_db=6.0)


# ------------------------------------------------------------------ 9: replies fit; state changes only when they do
def test_a_200_track_plan_is_answered_within_one_datagram_and_saved(served):
    served._conductor = _RecordingConductor(n_tracks=200, provenance="cue: " + "a long reason " * 12)
    r = ask_job(served, "plan", prompt="an orchestra")
    assert r["ok"], r
    assert len(served.session.plan.to_json(indent=None)) > MAX_REPLY_BYTES  # the whole plan would not fit
    assert len(json.dumps(r)) <= MAX_REPLY_BYTES
    assert len(served.session.plan.sources) == 200
    result = r["result"]
    assert result["truncated"] is True and len(result["plan"]["sources"]) == 200
    full = json.loads(Path(result["plan_file"]).read_text())
    assert full == served.session.plan.to_dict()
    assert ask(served, "status")["ok"] and ask(served, "sources")["ok"]


def test_2500_tracks_are_refused_up_front_and_status_keeps_working(served):
    ask(served, "tracks", tracks=["Vox"])
    for verb, params in (("tracks", {"tracks": [f"T{i}" for i in range(2500)]}),
                         ("apply", {"plan": _plan_dict([f"T{i}" for i in range(2500)])})):
        r = raw_request(served, verb, json.dumps(params))
        assert r["ok"] is False and str(MAX_TRACKS) in r["error"], r
    assert served.session.track_names() == ["Vox"]
    assert ask(served, "status")["ok"] and ask(served, "sources")["ok"]


def test_a_plan_job_with_too_many_tracks_is_refused_before_planning(served):
    served._conductor = _RecordingConductor()
    r = ask_job(served, "plan", prompt="a big band", tracks=[f"T{i}" for i in range(MAX_TRACKS + 1)])
    assert r["ok"] is False and str(MAX_TRACKS) in r["error"]
    assert served._conductor.calls == 0


def test_a_huge_role_is_refused_and_sources_keep_working(served):
    ask(served, "tracks", tracks=["Sax"])
    with pytest.raises(InputError, match="role"):
        served.verb_set_source({"track": "Sax", "role": "x" * 65_000})
    r = ask(served, "set_source", track="Sax", role="y" * 60_000)
    assert r["ok"] is False and "role" in r["error"]
    r = ask(served, "apply", plan=_plan_dict(["Sax"], role="z" * 60_000))
    assert r["ok"] is False
    assert ask(served, "sources")["ok"] and ask(served, "status")["ok"]


def test_long_names_are_refused_and_a_full_session_still_answers_sources_and_status(served):
    r = ask(served, "tracks", tracks=["x" * 200])
    assert r["ok"] is False and "at most 128" in r["error"]
    escaped = ["\u00e9" * 120 + f"{i:03d}" for i in range(MAX_TRACKS)]  # 6 bytes a char in JSON
    r = raw_request(served, "tracks", json.dumps({"tracks": escaped}, ensure_ascii=False))
    assert r["ok"] is False and "bytes" in r["error"]
    names = [f"{i:03d}" + "n" * 100 for i in range(MAX_TRACKS)]
    assert ask(served, "tracks", tracks=names)["ok"]
    for name in names:
        served.set_source(name, role="r" * 64, azimuth_deg=12.5)
    assert ask(served, "status")["ok"]
    seen, offset = [], 0
    while offset is not None:
        r = ask(served, "sources", offset=offset)
        assert r["ok"], r
        seen += [s["track"] for s in r["result"]["sources"]]
        offset = r["result"]["next_offset"]
    assert seen == names


def test_daw_feedback_cannot_grow_the_session_beyond_its_bounds(served):
    served._on_daw_tracks([{"name": f"Fake {i}", "daw_id": i} for i in range(3000)]
                          + [{"name": "y" * 500, "daw_id": 0}])
    assert len(served.session.tracks) == MAX_TRACKS
    assert ask(served, "status")["ok"] and ask(served, "sources")["ok"]


def test_ids_and_error_messages_cannot_make_a_reply_too_large(served):
    r = raw_request(served, "status", json.dumps({"id": "i" * 50_000}))
    assert r["ok"] is False and "id must be at most" in r["error"]
    dispatcher = Dispatcher(lambda sender, payload: replies.append(payload))
    replies: list = []

    def fail(params):
        raise InputError("e" * 100_000)

    dispatcher.register("fail", fail)
    dispatcher.handle("/stase/fail", ["{}"], None)
    assert len(replies[0]["error"]) < MAX_ERROR_CHARS + 100


# ------------------------------------------------------------------ 14: paths stay inside the allowed folders
def test_listen_path_outside_gives_one_answer_whether_or_not_the_file_exists(tmp_path, tmp_path_factory):
    outside = tmp_path_factory.mktemp("elsewhere")
    existing = outside / "real.wav"
    write_audio(existing, np.zeros((2, 100), np.float32), RATE)
    (tmp_path / "project").mkdir()
    d = _daemon(tmp_path / "project")
    messages = []
    for path in (existing, outside / "missing.wav", outside / "not-audio.txt"):
        with pytest.raises(InputError) as err:
            d.verb_listen({"path": str(path)}, _no_progress)
        messages.append(str(err.value))
    assert len(set(messages)) == 1
    assert "outside the allowed folders" in messages[0] and "--allow-dir" in messages[0]


def test_stems_reference_and_room_paths_are_confined(tmp_path, tmp_path_factory):
    outside = tmp_path_factory.mktemp("elsewhere")
    write_audio(tmp_path / "stems" / "Sax.wav", np.zeros(RATE, np.float32), RATE)
    d = _daemon(tmp_path)
    d.verb_tracks({"tracks": ["Sax"]})
    for params in ({"stems_dir": str(outside)}, {"stems_dir": str(tmp_path / "stems"), "reference_dir": str(outside)},
                   {"stems_dir": str(tmp_path / "stems" / ".." / ".." / outside.name)}):
        with pytest.raises(InputError, match="outside the allowed folders"):
            d.verb_advise(params, _no_progress)
    assert d.session.stems_dir is None  # nothing of a refused request is remembered
    with pytest.raises(InputError, match="outside the allowed folders"):
        d.verb_apply({"plan": dict(_plan_dict(["Sax"]), room=str(outside / "hall.wav"))})
    with pytest.raises(InputError, match="outside the allowed folders"):
        d.verb_apply({"plan": dict(_plan_dict(["Sax"]), room="/etc/passwd")})
    assert not d.session.plan.sources


def test_a_symlink_out_of_the_allowed_folder_is_refused(tmp_path, tmp_path_factory):
    outside = tmp_path_factory.mktemp("elsewhere")
    write_audio(outside / "x.wav", np.zeros((2, 100), np.float32), RATE)
    os.symlink(outside, tmp_path / "link")
    d = _daemon(tmp_path)
    with pytest.raises(InputError, match="outside the allowed folders") as err:
        d.verb_listen({"path": str(tmp_path / "link" / "x.wav")}, _no_progress)
    assert str(outside) not in str(err.value)  # where the link points is not revealed


def test_allow_dirs_opens_a_folder_from_flags_or_the_config_file(tmp_path, tmp_path_factory):
    outside = tmp_path_factory.mktemp("elsewhere")
    d = _daemon(tmp_path, allow_dirs=[str(outside)])
    assert d.check_path(str(outside / "a.wav"), "path") == os.path.realpath(outside / "a.wav")
    config = tmp_path / "stase.yaml"
    config.write_text(f"allow_dirs: [{json.dumps(str(outside))}]\n")
    assert DaemonConfig.from_yaml(config).allow_dirs == [str(outside)]
    config.write_text("allow_dirs: /music\n")
    with pytest.raises(InputError, match="allow_dirs must be a list"):
        DaemonConfig.from_yaml(config)


# ------------------------------------------------------------------ 15: bad config types, 1e400 over OSC
def test_config_with_bad_types_lists_every_problem(tmp_path):
    config = tmp_path / "stase.yaml"
    config.write_text('port: abc\naudio: "yes"\nblock_size: -3\n')
    with pytest.raises(InputError) as err:
        DaemonConfig.from_yaml(config)
    message = str(err.value)
    assert "port must be an integer" in message and "audio must be true or false" in message
    assert "block_size must be in 1..16384" in message and str(config) in message
    with pytest.raises(InputError, match="port must be in 0..65535"):
        DaemonConfig(port=70000)
    assert DaemonConfig(session=Path("s.json")).session == "s.json"


def test_non_finite_and_oversized_numbers_over_osc_get_clear_errors(served):
    ask(served, "tracks", tracks=["Sax"])
    for text in ('{"track": "Sax", "azimuth_deg": 1e400}', '{"track": "Sax", "azimuth_deg": NaN}',
                 '{"track": "Sax", "azimuth_deg": -Infinity}', '{"id": 1e400}',
                 '{"track": "Sax", "gain_db": ' + "9" * 400 + "}",
                 "[" * 30_000 + "]" * 30_000):
        r = raw_request(served, "set_source", text)
        assert r["ok"] is False and "internal error" not in r["error"], (text[:40], r)
    assert served.dispatcher.stats["internal_errors"] == 0
    assert not served.session.plan.sources
    r = raw_request(served, "set_source", '{"track": "Sax", "azimuth_deg": 1e400}')
    assert "out of range" in r["error"]


def test_listen_path_inside_the_allowed_folders_is_read_and_heard(tmp_path):
    if not MODEL.is_file():
        pytest.fail(f"the shipped listener model {MODEL} is missing")
    d = _daemon(tmp_path)
    with pytest.raises(InputError, match="not found"):
        d.verb_listen({"path": str(tmp_path / "missing.wav")}, _no_progress)
    write_audio(tmp_path / "mono.wav", np.zeros(RATE, np.float32), RATE)
    with pytest.raises(InputError, match="2|binaural"):
        d.verb_listen({"path": str(tmp_path / "mono.wav")}, _no_progress)
    noise = np.random.default_rng(5).standard_normal((2, 2 * RATE)).astype(np.float32) * 0.1
    write_audio(tmp_path / "both.wav", noise, RATE)
    heard = d.verb_listen({"path": str(tmp_path / "both.wav")}, _no_progress)["heard"]
    assert -180.0 <= heard["azimuth_deg"] <= 180.0 and heard["distance_m"] > 0


def test_allow_dir_flags_reach_the_config_and_add_to_the_config_file(tmp_path):
    import argparse
    from stase.cli import serve as daemon_cli
    parser = argparse.ArgumentParser()
    daemon_cli.add_arguments(parser)
    args = parser.parse_args(["--allow-dir", str(tmp_path / "a"), "--allow-dir", str(tmp_path / "b")])
    assert daemon_cli.config_from_args(args).allow_dirs == [str(tmp_path / "a"), str(tmp_path / "b")]
    config_file = tmp_path / "serve.yaml"
    config_file.write_text(f"allow_dirs: [{tmp_path / 'c'}]\n", encoding="utf-8")
    args = parser.parse_args(["--config", str(config_file), "--allow-dir", str(tmp_path / "a")])
    assert daemon_cli.config_from_args(args).allow_dirs == [str(tmp_path / "c"), str(tmp_path / "a")]
    args = parser.parse_args(["--config", str(config_file)])
    assert daemon_cli.config_from_args(args).allow_dirs == [str(tmp_path / "c")]
