"""Sampled voices (stase.agent.music.sampled / voices / gm): FluidSynth renders the arranger's MIDI parts.

What is checked: a stem rendered twice is identical; each role's stem has its energy where the
notes the arranger wrote for it say it should be (bands from the part's MIDI note range, not from
the renderer); the drum kit has a kick and cymbals; a missing or corrupt SoundFont is an
InputError (exit 2 from the CLI); without FluidSynth stase says so once and plays the synth; the
render of a runaway or hung FluidSynth is bounded; the report names the voices; the lexicon's
``gm_program`` is checked and is what arrangement.mid carries.

Tests that need FluidSynth and FluidR3_GM skip, saying so, when they are not installed
(``apt-get install fluidsynth fluid-soundfont-gm``; tools/setup.sh does it when root).
"""
from __future__ import annotations

import logging
import os
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import yaml

from stase.agent.music import ROLES, arrange_music, generate_stems, resolve_music
from stase.agent.music import sampled, voices
from stase.agent.music.gm import GM_KITS, GM_PROGRAM_NAMES, STYLE_PROGRAMS, kit_for, program_for
from stase.agent.music.parts import DRUM_CHANNEL
from stase.agent.music.theory import midi_to_hz
from stase.core.errors import InputError, StaseError
from stase.presets import PRESETS_DIR, load_lexicon, verify_all

RATE = 22050
HAVE_FLUIDSYNTH = sampled.find_fluidsynth() is not None and sampled.find_soundfont() is not None
needs_fluidsynth = pytest.mark.skipif(
    not HAVE_FLUIDSYNTH, reason="FluidSynth or a General MIDI SoundFont is not installed "
                                f"({sampled.INSTALL_HINT})")
SEMITONES_3 = 2 ** (3 / 12)  # margin around the written range: vibrato, detune, a sample's tuning


@pytest.fixture
def fresh_notices(monkeypatch):
    """No fallback notice given yet in this test (the notice is once per process)."""
    monkeypatch.setattr(voices, "_notices_given", set())


def _chunk(chunk_id: bytes, data: bytes) -> bytes:
    return chunk_id + struct.pack("<I", len(data)) + data + (b"\0" if len(data) & 1 else b"")


def _fake_soundfont(lists=(b"INFO", b"sdta", b"pdta")) -> bytes:
    """A RIFF/sfbk file with the three lists, whose preset table is garbage (not 38-byte records)."""
    content = {b"INFO": _chunk(b"ifil", b"\x02\x00\x01\x00"), b"sdta": _chunk(b"smpl", bytes(100)),
               b"pdta": _chunk(b"phdr", b"garbage!" * 5)}
    body = b"sfbk" + b"".join(_chunk(b"LIST", name + content[name]) for name in lists)
    return b"RIFF" + struct.pack("<I", len(body)) + body


# ------------------------------------------------------------------------------ determinism
@needs_fluidsynth
def test_stem_rendered_twice_is_identical():
    music = {"template": "jazz_ensemble", "bars": 2}
    first = generate_stems(music, RATE, seed=3, voices="sampled")
    again = generate_stems(music, RATE, seed=3, voices="sampled")
    other_seed = generate_stems(music, RATE, seed=4, voices="sampled")
    synth = generate_stems(music, RATE, seed=3, voices="synth")
    assert list(first) == list(again) == list(synth)
    for track, x in first.items():
        np.testing.assert_array_equal(x, again[track])
        assert x.dtype == np.float32 and x.size == synth[track].size
        assert np.max(np.abs(x)) > 1e-3, track
        assert not np.array_equal(x, synth[track]), f"{track}: not the sampled voice"
    assert any(not np.array_equal(first[t], other_seed[t]) for t in first)


# ------------------------------------------------------------------------------ instrument ranges
def _power_spectrum(x, rate):
    x = np.asarray(x, dtype=np.float64)
    return np.fft.rfftfreq(x.size, 1 / rate), np.abs(np.fft.rfft(x)) ** 2


def written_bands(pitches: list[int], role: str) -> tuple[float, float]:
    """(lowest fundamental, top of the 4th harmonic of the highest note) in Hz, from the notes the
    arranger wrote, with a 3-semitone margin.  An organ's drawbars sound a 16' stop an octave
    under the written note (Hammond registrations 88 8000 000 and the like), so its band starts an
    octave lower."""
    low = midi_to_hz(min(pitches)) / SEMITONES_3 / (2.0 if role == "organ" else 1.0)
    return low, 4.0 * midi_to_hz(max(pitches)) * SEMITONES_3


def range_problems(x, rate, pitches, role) -> list[str]:
    """Why a stem does not sound in the written range: more than 10 % of its energy under the
    lowest fundamental, or less than 75 % between it and the 4th harmonic of the top note."""
    f, p = _power_spectrum(x, rate)
    low, high = written_bands(pitches, role)
    below = p[f < low].sum() / p.sum()
    inside = p[(f >= low) & (f <= high)].sum() / p.sum()
    problems = []
    if below > 0.10:
        problems.append(f"{below:.0%} of the energy under {low:.0f} Hz")
    if inside < 0.75:
        problems.append(f"only {inside:.0%} of the energy in {low:.0f}-{high:.0f} Hz")
    return problems


@pytest.fixture(scope="module")
def every_role_sampled():
    if not HAVE_FLUIDSYNTH:
        pytest.skip(f"FluidSynth or a General MIDI SoundFont is not installed ({sampled.INSTALL_HINT})")
    music = {"style": "studio_recording", "bars": 4, "instruments": list(ROLES)}
    stems = generate_stems(music, RATE, seed=4, voices="sampled")
    _, arrangement = arrange_music(music, seed=4)
    return stems, arrangement.notes()


def test_each_role_has_energy_in_its_written_range(every_role_sampled):
    stems, notes = every_role_sampled
    checked = 0
    for role in ROLES:
        pitches = [n.pitch for n in notes[role] if not n.drum]
        if role in ("drums", "hand_drums") or (role == "percussion" and not pitches):
            continue
        assert pitches, role
        assert range_problems(stems[role], RATE, pitches, role) == [], role
        checked += 1
    assert checked >= 20


def test_range_check_can_fail(every_role_sampled):
    # the bass stem is not in the flute's written range and the flute not in the bass's
    stems, notes = every_role_sampled
    bass = [n.pitch for n in notes["bass"]]
    flute = [n.pitch for n in notes["flute"]]
    assert max(bass) < min(flute)
    assert range_problems(stems["bass"], RATE, flute, "flute")
    assert range_problems(stems["flute"], RATE, bass, "bass")


def test_bass_low_and_flute_high_as_the_score_says(every_role_sampled):
    stems, notes = every_role_sampled
    for role, band_hz in (("bass", (0.0, 300.0)), ("double_bass", (0.0, 300.0)), ("flute", (500.0, RATE / 2))):
        pitches = [n.pitch for n in notes[role]]
        low, high = midi_to_hz(min(pitches)), midi_to_hz(max(pitches))
        assert band_hz[0] <= low and high <= band_hz[1]   # the written range lies in the band ...
        f, p = _power_spectrum(stems[role], RATE)
        share = p[(f >= band_hz[0]) & (f <= band_hz[1])].sum() / p.sum()
        assert share > 0.5, (role, share)                  # ... and so does most of the sound


def test_drum_kit_has_kick_and_cymbals(every_role_sampled):
    stems, notes = every_role_sampled
    keys = {n.pitch for n in notes["drums"]}
    assert 36 in keys and keys & {42, 46, 49, 51}         # kick and hats/cymbals were written
    f, p = _power_spectrum(stems["drums"], RATE)
    assert p[f < 150].sum() / p.sum() > 0.05              # the kick's body
    assert p[f > 3000].sum() / p.sum() > 0.02             # hats and cymbals


# ------------------------------------------------------------------------------ SoundFont errors
@pytest.mark.parametrize("content,needle", [
    (None, "SoundFont not found"),
    (b"\x00" * 64, "not a SoundFont 2 file"),
    (b"RIFF\x10\x00\x00\x00WAVEfmt junk junk", "not a SoundFont 2 file"),
    (_fake_soundfont()[:40], "truncated or corrupt"),
    (_fake_soundfont(lists=(b"INFO", b"sdta")), "no pdta list"),
])
def test_missing_or_corrupt_soundfont_is_an_input_error(tmp_path, content, needle):
    path = tmp_path / "font.sf2"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InputError, match=needle):
        sampled.check_soundfont(path)
    with pytest.raises(InputError, match=needle):
        voices.choose_voices("auto", soundfont=str(path))
    with pytest.raises(InputError):
        generate_stems("rock_band", RATE, voices="sampled", soundfont=str(path))


def test_cli_soundfont_error_exits_2(tmp_path, capsys):
    from stase.cli import main
    out = tmp_path / "out"
    for font, needle in ((tmp_path / "missing.sf2", "SoundFont not found"),
                         (tmp_path / "junk.sf2", "not a SoundFont 2 file")):
        if font.name == "junk.sf2":
            font.write_bytes(os.urandom(1000))
        code = main(["generate", "a jazz trio", "-o", str(out), "--soundfont", str(font), "--quiet"])
        err = capsys.readouterr().err
        assert code == 2 and "stase generate: error:" in err and needle in err, err
        assert not out.exists()                            # checked before any work


@needs_fluidsynth
def test_soundfont_fluidsynth_cannot_load_is_an_input_error(tmp_path):
    # passes the header check, but its preset table is not made of 38-byte records
    path = tmp_path / "broken.sf2"
    path.write_bytes(_fake_soundfont())
    assert sampled.check_soundfont(path) == path
    with pytest.raises(InputError, match=r"cannot load the SoundFont .*broken\.sf2.*38"):
        generate_stems({"template": "rock_band", "bars": 1}, RATE, voices="sampled", soundfont=str(path))


@needs_fluidsynth
def test_user_soundfont_is_used(tmp_path):
    font = tmp_path / "My Font.sf2"
    font.symlink_to(sampled.find_soundfont())
    chosen = voices.choose_voices("auto", soundfont=str(font))
    assert chosen.kind == "sampled" and chosen.soundfont == font and "My Font.sf2" in chosen.describe()
    music = {"style": "pop", "bars": 1, "instruments": ["piano", "drums"]}
    own = generate_stems(music, RATE, seed=1, voices="sampled", soundfont=str(font))
    default = generate_stems(music, RATE, seed=1, voices="sampled")
    for track in own:                                     # the same file: the same samples
        np.testing.assert_array_equal(own[track], default[track])


# ------------------------------------------------------------------------------ fallback
def test_without_fluidsynth_says_so_once_and_plays_the_synth(monkeypatch, fresh_notices, caplog, tmp_path):
    monkeypatch.setattr(sampled, "find_fluidsynth", lambda: None)
    with caplog.at_level(logging.WARNING, logger="stase.music"):
        first = voices.choose_voices("auto")
        second = voices.choose_voices("auto")
    assert first.kind == second.kind == "synth"
    notices = [r for r in caplog.records if r.name == "stase.music"]
    assert len(notices) == 1 and "FluidSynth is not installed" in notices[0].getMessage()
    assert "apt-get install fluidsynth fluid-soundfont-gm" in notices[0].getMessage()
    assert "FluidSynth is not installed" in first.describe()
    music = {"template": "rock_band", "bars": 1}
    auto = generate_stems(music, 16000, seed=2, voices="auto")
    synth = generate_stems(music, 16000, seed=2, voices="synth")
    for track in synth:
        np.testing.assert_array_equal(auto[track], synth[track])
    with pytest.raises(InputError, match="need FluidSynth"):
        voices.choose_voices("sampled")
    if HAVE_FLUIDSYNTH:                                    # a named SoundFont needs FluidSynth too
        with pytest.raises(InputError, match="need FluidSynth"):
            voices.choose_voices("auto", soundfont=str(sampled.find_soundfont()))


def test_without_a_soundfont_falls_back(monkeypatch, fresh_notices, caplog):
    monkeypatch.setattr(sampled, "find_fluidsynth", lambda: "/usr/bin/fluidsynth")
    monkeypatch.setattr(sampled, "find_soundfont", lambda: None)
    with caplog.at_level(logging.WARNING, logger="stase.music"):
        assert voices.choose_voices("auto").kind == "synth"
    assert "no General MIDI SoundFont" in caplog.text
    with pytest.raises(InputError, match="fluid-soundfont-gm"):
        voices.choose_voices("sampled")


def test_voice_choice_errors():
    with pytest.raises(InputError, match="voices must be one of"):
        voices.choose_voices("organ")
    with pytest.raises(InputError, match="drop --soundfont"):
        voices.choose_voices("synth", soundfont="x.sf2")


# ------------------------------------------------------------------------------ bounded renders
def _fake_fluidsynth(tmp_path: Path, body: str) -> sampled.FluidSynthVoices:
    script = tmp_path / "fluidsynth"
    script.write_text("#!/bin/sh\n" + body + "\n")
    script.chmod(0o755)
    font = tmp_path / "font.sf2"
    font.write_bytes(_fake_soundfont())
    midi = tmp_path / "part.mid"
    midi.write_bytes(b"MThd")
    return sampled.FluidSynthVoices(str(script), font, "fake"), midi


def test_a_runaway_render_is_cut_at_the_length_needed(tmp_path):
    # FluidSynth writing for ever (here: zeros from /dev/zero) gives exactly the samples asked for
    fake, midi = _fake_fluidsynth(tmp_path, "exec cat /dev/zero")
    x = fake.render_file(midi, 12345, 16000)
    assert x.shape == (12345,) and not np.any(x)


def test_a_hung_render_times_out(tmp_path, monkeypatch):
    monkeypatch.setattr(sampled, "TIMEOUT_BASE_S", 0.5)
    fake, midi = _fake_fluidsynth(tmp_path, "exec sleep 30")
    with pytest.raises(StaseError, match="did not finish"):
        fake.render_file(midi, 1000, 16000)


def test_a_failing_render_is_a_stase_error(tmp_path):
    fake, midi = _fake_fluidsynth(tmp_path, "echo 'fluidsynth: panic: out of memory' >&2; exit 3")
    with pytest.raises(StaseError, match="exit status 3.*out of memory"):
        fake.render_file(midi, 1000, 16000)


@pytest.mark.parametrize("named,error", [("font", InputError), ("midi", StaseError)])
def test_load_failures_name_the_file_at_fault(tmp_path, named, error):
    # FluidSynth exits 0 and renders silence when it cannot load a file; the message says which
    pick = '"$font"' if named == "font" else '"$midi"'
    fake, midi = _fake_fluidsynth(tmp_path, 'for a; do font=$midi; midi=$a; done\n'
                                  f'echo "fluidsynth: error: Failed to load SoundFont {pick}" >&2')
    with pytest.raises(error, match="SoundFont" if named == "font" else "could not read its MIDI"):
        fake.render_file(midi, 1000, 16000)


@needs_fluidsynth
def test_rates_outside_fluidsynths_range_are_resampled():
    music = {"style": "pop", "bars": 1, "instruments": ["flute"]}
    x = generate_stems(music, 192000, seed=0, voices="sampled")["flute"]
    assert x.size == resolve_music(music).n_samples(192000)
    assert np.all(np.isfinite(x)) and np.max(np.abs(x)) > 1e-3


# ------------------------------------------------------------------------------ programs in the MIDI
def test_lexicon_gm_programs_are_what_the_midi_carries():
    lexicon = load_lexicon()["roles"]
    assert set(lexicon) == set(ROLES)
    assert all(0 <= spec["gm_program"] <= 127 for spec in lexicon.values())
    for template in ("jazz_ensemble", "classical_orchestra", "electronic_dj", "world_music_ensemble"):
        spec, arrangement = arrange_music({"template": template, "bars": 1}, 0)
        roles = dict(spec.tracks)
        for midi_track in arrangement.midi.tracks[1:]:
            role = roles[midi_track.name]
            programs = {m.channel: m.program for m in midi_track if m.type == "program_change"}
            controls = {(m.channel, m.control): m.value for m in midi_track if m.type == "control_change"}
            if role not in ("drums", "hand_drums"):
                channel = next(c for c in programs if c != DRUM_CHANNEL)
                expected = STYLE_PROGRAMS.get(role, {}).get(spec.style.id, lexicon[role]["gm_program"])
                if role == "plucked" and template == "world_music_ensemble":
                    expected = GM_PROGRAM_NAMES.index("Sitar")
                assert programs[channel] == expected == program_for(role, spec.style, midi_track.name)
                assert controls[(channel, 91)] == 0 and controls[(channel, 93)] == 0   # dry
            if role == "drums":
                assert programs == {DRUM_CHANNEL: kit_for(spec.style)}
    assert kit_for(arrange_music("jazz_ensemble", 0)[0].style) == GM_KITS["brushes"]


def test_gm_program_bounds_are_checked(tmp_path):
    root = tmp_path / "presets"
    shutil.copytree(PRESETS_DIR, root, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    data = yaml.safe_load((root / "lexicon.yaml").read_text())
    data["roles"]["bass"]["gm_program"] = 128
    data["roles"]["piano"]["gm_program"] = -1
    data["roles"]["flute"]["gm_program"] = "flute"
    del data["roles"]["organ"]["gm_program"]
    (root / "lexicon.yaml").write_text(yaml.safe_dump(data))
    _, problems = verify_all(root)
    text = "\n".join(problems)
    for needle in ("roles.bass.gm_program: 128 is above the maximum 127",
                   "roles.piano.gm_program: -1 is below the minimum 0",
                   "roles.flute.gm_program: must be an integer",
                   "roles.organ.gm_program: is required"):
        assert needle in text, text


# ------------------------------------------------------------------------------ the demo's report
class _Conductor:
    def plan(self, prompt, tracks=None, current=None):
        from stase.core.plan import Plan, SourcePlacement
        sources = [SourcePlacement("Sax", 30.0, 0.0, 2.0, "hrtf", "saxophone", 0.0),
                   SourcePlacement("Drums", 180.0, 0.0, 4.0, "hrtf", "drums", 0.0)]
        return Plan(room="jazz_club", sources=sources, pathway="description", template="jazz_ensemble",
                    music={"template": "jazz_ensemble", "bars": 1,
                           "instruments": [{"track": s.track, "role": s.role} for s in sources]})


@pytest.mark.parametrize("choice", ["auto", "synth"])
def test_report_names_the_voices(tmp_path, choice):
    from stase.agent.music.demo import make_demo
    result = make_demo("a jazz duo", tmp_path, bars=1, sample_rate=16000, conductor=_Conductor(),
                       voices=choice)
    report = (tmp_path / "report.md").read_text()
    line = next(x for x in report.splitlines() if x.startswith("- voices: "))
    if choice == "auto" and HAVE_FLUIDSYNTH:
        assert line.startswith("- voices: sampled: FluidSynth ") and "FluidR3_GM.sf2" in line
        assert "| GM 66 Alto Sax |" in report and "| GM Brush kit |" in report
    else:
        assert line.startswith("- voices: built-in synth voices")
        assert "| synth |" in report
    assert result["voices"] == line[len("- voices: "):]
