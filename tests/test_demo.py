"""stase demo / stase generate: every file is written, the report matches the plan, the stage map
follows our convention (positive azimuth = left, drawn on the left), the CLI's errors."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest

from stase.agent.music import demo as demo_module
from stase.agent.music.demo import fit_bars, make_demo, master, music_from_plan, safe_filename
from stase.agent.music.report import PLACEMENT_HEADER
from stase.agent.music.stage_map import azimuth_label, draw_stage_map, screen_xy
from stase.cli import main
from stase.core.audio_io import load_stems, read_audio
from stase.core.plan import Plan, SourcePlacement, load_plan

EXPECTED = ["plan.json", "mix_binaural.wav", "mix_stereo.wav", "stage_map.png", "report.md", "arrangement.mid"]


class FixedConductor:
    """Stands in for the conductor in the fast tests: one fixed plan (the real one runs in the
    slow end-to-end test below)."""

    def plan(self, prompt, tracks=None, current=None):
        sources = [
            SourcePlacement("Lead Vox", 0.0, 2.0, 2.0, "hrtf", "lead_vocal", 0.0, {"azimuth_deg": "cue: 'vocal centre'"}),
            SourcePlacement("Gtr L", 60.0, 0.0, 3.0, "itd_ild", "electric_guitar", -2.0, {"azimuth_deg": "template seat"}),
            SourcePlacement("Bass", -25.0, -5.0, 2.5, "pan", "bass", 1.5),
            SourcePlacement("Drums", 170.0, 0.0, 4.0, "hrtf", "drums", 0.0, {"distance_m": "cue: 'behind'"}),
        ]
        return Plan(room="jazz_club", sources=sources, pathway="description", template="rock_band",
                    music_description="four-piece", mix_notes="test",
                    music={"template": "rock_band", "style": "rock", "tempo_bpm": 140.0, "key": "E minor",
                           "bars": 8, "meter": "4/4",
                           "instruments": [{"track": s.track, "role": s.role} for s in sources]})


def _table_rows(report: str) -> list[list[str]]:
    lines = report.splitlines()
    start = lines.index(PLACEMENT_HEADER) + 2
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip("|").split("|")])
    return rows


def test_demo_writes_every_file_and_report_matches_plan(tmp_path):
    result = make_demo("a rock four-piece", tmp_path, seed=1, bars=2, sample_rate=16000,
                       conductor=FixedConductor())
    for name in EXPECTED:
        assert (tmp_path / name).is_file() and (tmp_path / name).stat().st_size > 0, name
    plan = load_plan(tmp_path / "plan.json")
    stems, rate = load_stems(tmp_path / "stems")
    assert rate == 16000 and sorted(stems) == sorted(s.track for s in plan.sources)
    n = int(round(2 * 4 * 60 / 140 * 16000))
    assert all(x.shape[-1] == n for x in stems.values())
    assert plan.music["bars"] == 2 and [i["track"] for i in plan.music["instruments"]] == [s.track for s in plan.sources]
    # where the text names a length, it is what was generated, not the plan's length
    assert set(re.findall(r"(\d+) bars", plan.music_description)) <= {"2"}
    for name in ("mix_binaural.wav", "mix_stereo.wav"):
        audio, r = read_audio(tmp_path / name)
        assert r == 16000 and audio.shape[0] == 2 and audio.shape[1] >= n
        assert 0.01 < np.max(np.abs(audio)) <= 10 ** (demo_module.CEILING_DBFS / 20) + 1e-3
    report = (tmp_path / "report.md").read_text()
    rows = _table_rows(report)
    assert len(rows) == len(plan.sources)
    for row, s in zip(rows, plan.sources):
        track, role, az, el, dist, mode, gain = row
        assert (track, role, mode) == (s.track, s.role, s.mode)
        np.testing.assert_allclose([float(az), float(el), float(dist), float(gain)],
                                   [s.azimuth_deg, s.elevation_deg, s.distance_m, s.gain_db], atol=0.051)
    for s in plan.sources:
        for value in s.provenance.values():
            assert value in report
    for name in result["files"]:
        assert f"`{name}`" in report
    lufs = [float(x) for x in re.findall(r"\| (binaural|stereo) \| `[^`]+` \| (-?[\d.]+)", report) for x in x[1:]]
    assert len(lufs) == 2 and all(-40 < v < -10 for v in lufs)


def test_rerun_replaces_stale_stems(tmp_path):
    (tmp_path / "stems").mkdir()
    (tmp_path / "stems" / "Old Track.wav").write_bytes(b"")
    (tmp_path / "plan.json").write_text("{}")
    make_demo("x", tmp_path, bars=1, sample_rate=8000, conductor=FixedConductor())
    assert sorted(p.name for p in (tmp_path / "stems").iterdir()) == sorted(
        f"{s.track}.wav" for s in FixedConductor().plan("").sources)


def test_stage_map_convention_and_png(tmp_path):
    x, y = screen_xy(90.0, 0.0, 2.0)      # positive azimuth = left -> left half of the picture
    assert x == pytest.approx(-2.0) and y == pytest.approx(0.0, abs=1e-12)
    x, y = screen_xy(-30.0, 0.0, 1.0)
    assert x == pytest.approx(0.5) and y == pytest.approx(np.sqrt(3) / 2)
    x, y = screen_xy(0.0, 60.0, 2.0)      # elevation shortens the top-view distance: r cos(el)
    assert y == pytest.approx(1.0)
    assert azimuth_label(30) == "30° L" and azimuth_label(-45.4) == "45° R" and azimuth_label(180) == "180°"
    path = draw_stage_map(FixedConductor().plan(""), tmp_path / "map.png", title="t")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_fit_bars_and_helpers():
    music = {"tempo_bpm": 120.0, "meter": "4/4", "bars": 8}        # 16 s: accepted as is
    assert fit_bars(music, None) == 8
    assert fit_bars(dict(music, bars=32), None) == 12              # 64 s -> 24 s in 4-bar phrases
    assert fit_bars(dict(music, bars=2), None) == 12
    assert fit_bars(music, 3) == 3
    with pytest.raises(ValueError):
        fit_bars(music, 0)
    assert safe_filename('a/b:c*"d"') == "a_b_c__d_" and safe_filename("Gtr L") == "Gtr L"
    plan = FixedConductor().plan("")
    plan.music = None
    built = music_from_plan(plan)
    assert [i["role"] for i in built["instruments"]] == [s.role for s in plan.sources]


def test_master_targets_loudness_under_ceiling(rng):
    rate = 16000
    quiet = (0.01 * rng.standard_normal((2, 2 * rate))).astype(np.float32)
    out, gain_db, _ = master(quiet, rate)
    from stase.dsp.offline import _loudness
    assert _loudness(out, rate) == pytest.approx(demo_module.TARGET_LUFS, abs=0.05) or \
        20 * np.log10(np.max(np.abs(out))) == pytest.approx(demo_module.CEILING_DBFS, abs=0.01)
    spiky = np.zeros((2, 2 * rate), dtype=np.float32)
    spiky[:, ::4000] = 0.5
    out, gain_db, _ = master(spiky, rate)
    assert 20 * np.log10(np.max(np.abs(out))) == pytest.approx(demo_module.CEILING_DBFS, abs=0.01)


def test_generate_needs_a_prompt(capsys, tmp_path):
    assert main(["generate", "--quiet"]) == 2
    assert "needs a PROMPT" in capsys.readouterr().err
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(ValueError, match="cannot create the output folder"):
        make_demo("x", blocker / "out", conductor=FixedConductor())
    assert main(["demo", "--rate", "10", "--quiet"]) == 2


@pytest.mark.slow
def test_generate_end_to_end_with_the_real_conductor(tmp_path):
    out = tmp_path / "quartet"
    assert main(["generate", "a string quartet in a small hall, cello on the right", "-o", str(out),
                 "--bars", "2", "--rate", "16000", "--quiet"]) == 0
    for name in EXPECTED:
        assert (out / name).is_file(), name
    plan = json.loads((out / "plan.json").read_text())
    assert plan["music"]["bars"] == 2 and len(plan["sources"]) >= 2
    assert re.findall(r"(\d+) bars", plan["music_description"]) == ["2"]  # the conductor's text, updated
    assert sorted(p.stem for p in (out / "stems").glob("*.wav")) == sorted(
        safe_filename(s["track"]) for s in plan["sources"])
