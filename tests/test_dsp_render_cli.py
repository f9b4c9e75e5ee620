"""``stase render`` end to end on small files, and its errors for bad input."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from stase.cli import main
from stase.dsp.offline import render_plan
from stase.core.plan import Plan

FS = 48000


def _stems(folder, rate=FS, n=12000, rng=None, names=("Vox", "bass")):
    rng = rng or np.random.default_rng(5)
    folder.mkdir(exist_ok=True)
    for name in names:
        sf.write(str(folder / f"{name}.wav"), 0.1 * rng.standard_normal(n).astype(np.float32), rate,
                 subtype="FLOAT")
    return folder


def _plan(path, room="dry_studio", sources=None):
    sources = sources or [{"track": "vox", "azimuth_deg": 30.0, "distance_m": 2.0, "mode": "hrtf"},
                          {"track": "Bass", "azimuth_deg": -45.0, "distance_m": 3.0, "mode": "itd_ild"}]
    path.write_text(json.dumps({"room": room, "reverb_engine": "fdn", "sources": sources}))
    return path


def test_render_binaural_json_report(tmp_path, capsys):
    stems = _stems(tmp_path / "stems")
    out = tmp_path / "mix.wav"
    rc = main(["render", "--stems", str(stems), "--plan", str(_plan(tmp_path / "p.json")),
               "-o", str(out), "--dry", "--json"])
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    audio, rate = sf.read(str(out), always_2d=True)
    assert rate == FS and audio.shape[1] == 2
    assert report["output"] == "binaural" and not report["clipped"]
    assert report["peak_dbfs"] == pytest.approx(20 * np.log10(np.abs(audio).max()), abs=0.01)
    assert [s["track"] for s in report["sources"]] == ["vox", "Bass"]


def test_stereo_pans_a_hard_left_source_to_the_left(tmp_path, capsys):
    stems = _stems(tmp_path / "stems", names=("lead",))
    plan = _plan(tmp_path / "p.json", sources=[{"track": "lead", "azimuth_deg": 90.0, "mode": "hrtf"}])
    out = tmp_path / "mix.wav"
    assert main(["render", "--stems", str(stems), "--plan", str(plan), "-o", str(out), "--stereo",
                 "--dry"]) == 0
    audio, _ = sf.read(str(out), always_2d=True)
    assert np.abs(audio[:, 1]).max() < 1e-6 * np.abs(audio[:, 0]).max()


def test_render_resamples_stems_and_hrtf_to_rate(tmp_path):
    stems = _stems(tmp_path / "stems", rate=44100, n=4410)
    out = tmp_path / "mix.wav"
    assert main(["render", "--stems", str(stems), "--plan", str(_plan(tmp_path / "p.json")),
                 "-o", str(out), "--rate", "48000", "--dry"]) == 0
    audio, rate = sf.read(str(out), always_2d=True)
    assert rate == 48000 and audio.shape[0] >= 4800


def test_render_plan_is_independent_of_block_size(rng):
    plan = Plan.from_dict({"room": "dry_studio", "sources": [
        {"track": "a", "azimuth_deg": 50.0}, {"track": "b", "azimuth_deg": -10.0, "mode": "pan"}]})
    stems = {"A": rng.standard_normal(24000).astype(np.float32) * 0.1,
             "b": rng.standard_normal(3000).astype(np.float32) * 0.1}
    r1 = render_plan(stems, plan, FS, block_size=1024, room=None)
    r2 = render_plan(stems, plan, FS, block_size=77, room=None)
    np.testing.assert_allclose(r1.audio, r2.audio, atol=1e-6)
    assert r1.lufs is not None and np.isfinite(r1.lufs)


def _error(capsys, argv):
    assert main(argv) == 2
    return capsys.readouterr().err


def test_bad_inputs_give_clear_errors(tmp_path, capsys):
    plan = _plan(tmp_path / "p.json")
    out = str(tmp_path / "mix.wav")
    stereo = tmp_path / "stereo"
    _stems(stereo)
    sf.write(str(stereo / "Vox.wav"), np.zeros((100, 2), dtype=np.float32), FS)
    err = _error(capsys, ["render", "--stems", str(stereo), "--plan", str(plan), "-o", out, "--dry"])
    assert "--downmix" in err
    assert main(["render", "--stems", str(stereo), "--plan", str(plan), "-o", out, "--dry",
                 "--downmix"]) == 0
    empty = _stems(tmp_path / "empty")
    sf.write(str(empty / "Vox.wav"), np.zeros((0,), dtype=np.float32), FS)
    assert "empty" in _error(capsys, ["render", "--stems", str(empty), "--plan", str(plan), "-o", out])
    nan = _stems(tmp_path / "nan")
    bad = np.zeros(100, dtype=np.float32)
    bad[7] = np.nan
    sf.write(str(nan / "Vox.wav"), bad, FS, subtype="FLOAT")
    assert "NaN" in _error(capsys, ["render", "--stems", str(nan), "--plan", str(plan), "-o", out])
    missing = _stems(tmp_path / "missing", names=("Vox",))
    err = _error(capsys, ["render", "--stems", str(missing), "--plan", str(plan), "-o", out, "--dry"])
    assert "no stem for plan track" in err and "Bass" in err
    ok = _stems(tmp_path / "ok")
    err = _error(capsys, ["render", "--stems", str(ok), "--plan",
                          str(_plan(tmp_path / "room.json", room="moon_base")), "-o", out])
    assert "unknown room" in err and "jazz_club" in err
    mixed = _stems(tmp_path / "mixed", names=("Vox",))
    _stems(mixed, rate=44100, names=("bass",))
    assert "sample rates" in _error(capsys, ["render", "--stems", str(mixed), "--plan", str(plan),
                                             "-o", out, "--dry"])


def test_user_rir_file_as_room(tmp_path):
    rng = np.random.default_rng(9)
    t = np.arange(9600) / FS
    rir = (rng.standard_normal(9600) * np.exp(-t / 0.03)).astype(np.float32)
    rir[:50] = 0.0
    rir[50] = 1.0
    sf.write(str(tmp_path / "hall.wav"), rir, FS, subtype="FLOAT")
    plan = tmp_path / "p.json"
    plan.write_text(json.dumps({"room": str(tmp_path / "hall.wav"),
                                "sources": [{"track": "vox", "azimuth_deg": 10.0}]}))
    stems = _stems(tmp_path / "stems", names=("vox",), n=4800)
    out = tmp_path / "mix.wav"
    assert main(["render", "--stems", str(stems), "--plan", str(plan), "-o", str(out)]) == 0
    dry = tmp_path / "dry.wav"
    assert main(["render", "--stems", str(stems), "--plan", str(plan), "-o", str(dry), "--dry"]) == 0
    wet_audio, _ = sf.read(str(out), always_2d=True)
    dry_audio, _ = sf.read(str(dry), always_2d=True)
    assert wet_audio.shape[0] > dry_audio.shape[0]          # the RIR's tail was rendered
    assert np.abs(wet_audio[4800 + 2400:]).max() > 1e-4     # and it carries reverberation
