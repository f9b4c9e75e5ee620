"""The daemon's listen verb with the real shipped Spatial-AST model: listen-back and questions."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from stase.bridge.daemon import Daemon, DaemonConfig, _is_question, route_chat
from stase.core.audio_io import write_audio

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "onnx_models" / "spatial_ast.onnx"
RATE = 32_000


def _noise_bursts(seed: int, seconds: float = 3.0) -> np.ndarray:
    """Broadband bursts: the easiest material to localise, so a miss is the model's fault."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    x = rng.standard_normal(n).astype(np.float32) * 0.1
    envelope = (np.sin(2 * np.pi * 4 * np.arange(n) / RATE) > -0.2).astype(np.float32)
    return x * envelope


@pytest.fixture
def daemon_with_plan(tmp_path):
    if not MODEL.is_file():
        pytest.fail(f"the shipped listener model {MODEL} is missing")
    stems = tmp_path / "stems"
    write_audio(stems / "Flute.wav", _noise_bursts(1), RATE)
    write_audio(stems / "Bass.wav", _noise_bursts(2), RATE)
    d = Daemon(DaemonConfig(port=0, session=str(tmp_path / "session.json"), durable_saves=False))
    d.verb_tracks({"tracks": ["Flute", "Bass"]})
    d.verb_apply({"plan": {"room": "dry_studio", "sources": [
        {"track": "Flute", "role": "flute", "azimuth_deg": 75.0, "distance_m": 1.5, "mode": "hrtf"},
        {"track": "Bass", "role": "bass", "azimuth_deg": -75.0, "distance_m": 1.5, "mode": "hrtf"}]}})
    d.session.set_stems_dir(str(stems))
    return d


def _no_progress(*_args):
    return None


def test_listen_back_reports_every_track_and_hears_the_sides(daemon_with_plan):
    result = daemon_with_plan.verb_listen({}, _no_progress)
    rows = {r["track"]: r for r in result["tracks"]}
    assert set(rows) == {"Flute", "Bass"}
    assert rows["Flute"]["perceived"]["azimuth_deg"] > 0   # left is positive
    assert rows["Bass"]["perceived"]["azimuth_deg"] < 0
    for row in rows.values():
        assert 0.0 <= row["angular_error_deg"] <= 180.0
        assert isinstance(row["flag"], bool)
    assert "track(s) heard" in result["summary"]


def test_single_track_listen_keeps_the_script_shape(daemon_with_plan):
    result = daemon_with_plan.verb_listen({"track": "flute"}, _no_progress)
    assert result["track"] == "Flute"
    assert result["planned"]["azimuth_deg"] == pytest.approx(75.0)
    assert result["heard"]["azimuth_deg"] > 0


def test_spatial_question_is_answered_from_perception(daemon_with_plan):
    answer = daemon_with_plan.verb_listen({"question": "Is the flute left of the bass?"}, _no_progress)
    assert answer["value"] is True
    answer = daemon_with_plan.verb_listen({"question": "Is the bass left of the flute?"}, _no_progress)
    assert answer["value"] is False


def test_chat_questions_route_to_the_listener():
    assert _is_question("is the sax left of the piano?")
    assert not _is_question("move the sax left")
    assert route_chat("which is closer, the sax or the piano", has_plan=True) == "listen"
    assert route_chat("check the placement", has_plan=True) == "listen"
    assert route_chat("move the sax a bit left", has_plan=True) == "edit"
