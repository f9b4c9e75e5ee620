"""stase.agent.music: kernels against references, theory, the arranger's musical rules, the stems'
contract (deterministic, length, rate, level), listen-proxies, and the MusicGen adapter."""
from __future__ import annotations

import io

import mido
import numpy as np
import pytest
from scipy.signal import butter, lfilter

from stase.agent.music import ROLES, arrange_music, generate_stems, resolve_music
from stase.agent.music.arranger import TICKS_PER_BEAT, _swing
from stase.agent.music.generator import MODE_PROGRESSIONS, progression_for
from stase.agent.music.kernels import decaying_partials, karplus_strong, polyblep_saw, svf_filter
from stase.agent.music.mixing import STEM_PEAK_DBFS, SUM_PEAK_DBFS, gated_rms_db
from stase.agent.music.styles import STYLES
from stase.agent.music.synth import plucked
from stase.agent.music.theory import chord_from_numeral, midi_to_hz, parse_key, parse_meter
from stase.core.errors import InputError
from stase.presets import load_lexicon, load_templates

RATE = 22050  # tests run at a low rate to stay fast; the generator accepts any rate


# ------------------------------------------------------------------------------ kernels
def _saw_reference(freq, sample_rate, phase):
    out = np.empty(len(freq))
    for n, f in enumerate(freq):
        dt = f / sample_rate
        value = 2.0 * phase - 1.0
        if phase < dt:
            t = phase / dt
            value -= 2 * t - t * t - 1.0
        elif phase > 1.0 - dt:
            t = (phase - 1.0) / dt
            value -= t * t + 2 * t + 1.0
        out[n] = value
        phase = (phase + dt) % 1.0
    return out


@pytest.mark.parametrize("n", [1, 64, 65, 1000, 4097])
def test_polyblep_saw_matches_loop(rng, n):
    freq = rng.uniform(50, 5000, n)
    out = np.empty(n)
    polyblep_saw(freq, 48000.0, 0.3, out)
    np.testing.assert_allclose(out, _saw_reference(freq, 48000.0, 0.3), atol=1e-12)


def test_saw_fundamental_is_two_over_pi():
    # Fourier series of a unit sawtooth: harmonic k has amplitude 2 / (pi k)
    n, f0, sr = 48000, 1000.0, 48000.0
    out = np.empty(n)
    polyblep_saw(np.full(n, f0), sr, 0.0, out)
    spectrum = np.abs(np.fft.rfft(out)) * 2 / n
    np.testing.assert_allclose(spectrum[1000], 2 / np.pi, rtol=0.01)
    np.testing.assert_allclose(spectrum[3000], 2 / (3 * np.pi), rtol=0.02)
    assert abs(out.mean()) < 1e-3


@pytest.mark.parametrize("cutoff", [100.0, 1234.5, 9000.0])
def test_svf_lowpass_equals_butterworth(rng, cutoff):
    # TPT SVF at Q = 1/sqrt(2) is the prewarped bilinear 2nd-order Butterworth low-pass
    x = rng.standard_normal(3001)
    out = np.empty_like(x)
    svf_filter(x, np.full(x.size, cutoff), 1 / np.sqrt(2), 48000.0, 0, out)
    b, a = butter(2, cutoff, fs=48000.0)
    np.testing.assert_allclose(out, lfilter(b, a, x), atol=1e-9)


def test_svf_bandpass_unity_at_centre():
    sr, fc = 48000.0, 1500.0
    t = np.arange(int(sr)) / sr
    x = np.sin(2 * np.pi * fc * t)
    out = np.empty_like(x)
    svf_filter(x, np.full(x.size, fc), 4.0, sr, 1, out)
    np.testing.assert_allclose(np.max(np.abs(out[-4800:])), 1.0, rtol=2e-3)


def _ks_reference(excitation, period, feedback, brightness, n):
    out = np.zeros(n)
    delay = period - brightness
    whole = int(np.floor(delay))
    frac = delay - whole
    for i in range(n):
        y = excitation[i] if i < len(excitation) else 0.0
        j = i - whole
        if j - 2 >= 0:
            d0 = (1 - frac) * out[j] + frac * out[j - 1]
            d1 = (1 - frac) * out[j - 1] + frac * out[j - 2]
            y += feedback * ((1 - brightness) * d0 + brightness * d1)
        out[i] = y
    return out


def test_karplus_strong_matches_loop(rng):
    excitation = rng.uniform(-1, 1, 101)
    out = np.empty(3000)
    karplus_strong(excitation, 100.37, 0.995, 0.3, out)
    np.testing.assert_allclose(out, _ks_reference(excitation, 100.37, 0.995, 0.3, 3000), atol=1e-12)


@pytest.mark.parametrize("pitch", [40, 57, 69, 81])
def test_plucked_string_is_in_tune(pitch):
    sr = 48000
    x = plucked(pitch, 100, 2.0, sr, np.random.default_rng(1), t60_s=4.0, brightness=0.2)
    n = 1 << 18
    spectrum = np.abs(np.fft.rfft(x * np.hanning(x.size), n))
    f0 = midi_to_hz(pitch)
    band = (np.fft.rfftfreq(n, 1 / sr) > f0 * 0.9) & (np.fft.rfftfreq(n, 1 / sr) < f0 * 1.1)
    peak_hz = np.fft.rfftfreq(n, 1 / sr)[band][np.argmax(spectrum[band])]
    assert abs(1200 * np.log2(peak_hz / f0)) < 5.0  # cents


def test_decaying_partials_closed_form(rng):
    sr = 44100.0
    freqs, amps, taus = np.array([220.0, 661.0, 30000.0]), np.array([1.0, 0.5, 1.0]), np.array([0.3, 0.0, 1.0])
    phases = rng.uniform(0, 2 * np.pi, 3)
    out = np.zeros(9999)
    decaying_partials(freqs, amps, taus, phases, sr, out)
    t = np.arange(out.size) / sr
    ref = (np.exp(-t / 0.3) * np.sin(2 * np.pi * 220 * t + phases[0])
           + 0.5 * np.sin(2 * np.pi * 661 * t + phases[1]))  # 30 kHz is above Nyquist: skipped
    np.testing.assert_allclose(out, ref, atol=1e-9)


# ------------------------------------------------------------------------------ theory
def test_keys_and_chords():
    assert parse_key("Bb major").tonic == 10 and parse_key("f# minor").mode == "minor"
    assert parse_key("Am") == parse_key("A minor")
    with pytest.raises(InputError):
        parse_key("H major")
    d_minor = parse_key("D minor")
    assert set(chord_from_numeral(d_minor, "V").tones) == {9, 1, 4}        # A C# E (harmonic minor)
    assert set(chord_from_numeral(d_minor, "i").tones) == {2, 5, 9}        # D F A
    assert set(chord_from_numeral(parse_key("C"), "V7").tones) == {7, 11, 2, 5}
    assert parse_meter("7/8") == (7, 8) and parse_meter("3/4") == (3, 4)


def test_progression_avoids_diminished_triads():
    dorian = parse_key("D dorian")
    numerals = progression_for(STYLES["world_music_ensemble"], dorian)
    assert numerals == MODE_PROGRESSIONS["dorian"]
    for numeral in numerals:
        tones = chord_from_numeral(dorian, numeral).tones
        assert (tones[2] - tones[0]) % 12 == 7


def test_roles_are_the_lexicon_roles():
    assert set(ROLES) == set(load_lexicon()["roles"]) and len(ROLES) == 24


# ------------------------------------------------------------------------------ arrangement
def test_melody_in_key_and_bass_follows_chords():
    for template in ("rock_band", "jazz_ensemble", "chamber_music", "electronic_dj"):
        spec, arr = arrange_music({"template": template, "bars": 8}, seed=3)
        scale = spec.key.pitch_classes
        lead = next(t for t, j in arr.jobs.items() if "melody" in j)
        for n in arr.parts[lead]:
            if arr.jobs[lead] == "melody" or n.pitch >= 60:
                assert n.pitch % 12 in scale, (template, n)
        basses = [t for t, j in arr.jobs.items() if j.startswith("bass")]
        beats = spec.beats_per_bar
        for track in basses:
            for bar, chord in enumerate(arr.context.chords):
                first = min((n for n in arr.parts[track] if bar * beats - 0.1 <= n.beat < bar * beats + 1.0),
                            key=lambda n: n.beat, default=None)
                assert first is not None and first.pitch % 12 == chord.root, (template, track, bar)
        final = max(arr.parts[lead], key=lambda n: n.beat)
        assert final.pitch % 12 == spec.key.tonic  # ends at home


def test_midi_round_trip_and_file():
    spec, arr = arrange_music("studio_recording", seed=1)
    buffer = io.BytesIO()
    arr.midi.save(file=buffer)
    buffer.seek(0)
    again = mido.MidiFile(file=buffer)
    assert [t.name for t in again.tracks[1:]] == [t for t, _ in spec.tracks]
    notes = arr.notes()
    seconds_per_beat = 60.0 / spec.tempo_bpm
    for track, events in arr.parts.items():
        starts = sorted(round(e.beat * TICKS_PER_BEAT) * seconds_per_beat / TICKS_PER_BEAT for e in events)
        np.testing.assert_allclose(sorted(n.start_s for n in notes[track]), starts, atol=1e-9)


def test_swing_and_grid():
    assert _swing(1.5, 0.64) == pytest.approx(1.64)
    assert _swing(2.0, 0.64) == 2.0 and _swing(0.25, 0.5) == 0.25
    _, arr = arrange_music("electronic_dj", seed=5)
    drum = next(t for t, r in arr.tracks if r == "drums")
    beats = np.array([n.beat for n in arr.parts[drum]])
    np.testing.assert_allclose(beats * 4, np.round(beats * 4), atol=1e-9)  # sequenced: on the 16th grid
    _, jazz = arrange_music("jazz_ensemble", seed=5)
    ride = [n.beat % 1 for n in jazz.parts["drums"] if n.pitch == 51 and 0.3 < n.beat % 1 < 0.9]
    assert np.median(ride) == pytest.approx(0.64, abs=0.04)  # swung off-beats


def test_choir_seats_sing_separate_voices():
    _, arr = arrange_music("choir", seed=0)
    means = [np.mean([n.pitch for n in arr.parts[t]]) for t in ("Sopranos", "Altos", "Tenors", "Basses")]
    assert means == sorted(means, reverse=True)


# ------------------------------------------------------------------------------ stems contract
def _expected_samples(music, rate):
    spec = resolve_music(music)
    return int(round(spec.bars * spec.beats_per_bar * 60.0 / spec.tempo_bpm * rate))


def test_stems_deterministic_for_a_seed():
    music = {"template": "rock_band", "bars": 2}
    a = generate_stems(music, RATE, seed=7)
    b = generate_stems(music, RATE, seed=7)
    c = generate_stems(music, RATE, seed=8)
    assert list(a) == list(b)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert any(not np.array_equal(a[k], c[k]) for k in a)


@pytest.mark.parametrize("rate,music", [
    (48000, {"template": "jazz_ensemble", "bars": 2, "tempo_bpm": 150}),
    (44100, {"template": "chamber_music", "bars": 2}),
    (16000, {"template": "world_music_ensemble", "bars": 1}),   # 7/8
    (22050, {"style": "techno", "bars": 2, "key": "F# minor", "meter": "3/4",
             "instruments": [{"track": "Kick Loop", "role": "drums"}, "bass", {"track": "Pad", "role": "synth_pad"}]}),
])
def test_stems_length_rate_level(rate, music):
    stems = generate_stems(music, rate, seed=0)
    n = _expected_samples(music, rate)
    total = np.zeros(n)
    for track, x in stems.items():
        assert x.dtype == np.float32 and x.ndim == 1 and x.size == n, track
        assert np.all(np.isfinite(x))
        assert gated_rms_db(x, rate) > -45.0, f"{track} is silent"
        assert np.max(np.abs(x)) <= 10 ** (STEM_PEAK_DBFS / 20) + 1e-6, f"{track} clips"
        total += x
    assert np.max(np.abs(total)) <= 10 ** (SUM_PEAK_DBFS / 20) + 1e-6


def test_each_template_yields_its_instruments():
    for template_id, template in load_templates().items():
        stems = generate_stems({"template": template_id, "bars": 1}, 16000, seed=0)
        seats = [seat.get("name") or seat["role"] for seat in template["roles"]]
        assert list(stems) == seats, template_id
        for track, x in stems.items():
            assert np.max(np.abs(x)) > 1e-3, (template_id, track)


def test_bad_descriptions_are_input_errors():
    for bad in ("no_such_template", {"template": "rock_band", "tempo_bpm": 5},
                {"template": "rock_band", "bars": 0}, {"key": "Q minor"},
                {"instruments": [{"track": "A", "role": "bass"}, {"track": "a", "role": "piano"}]},
                {"meter": "4/5"}, 42):
        with pytest.raises(InputError):
            generate_stems(bad, RATE)
    with pytest.raises(InputError):
        generate_stems("rock_band", sample_rate=100)
    with pytest.raises(InputError):
        generate_stems("rock_band", seed=-1)


# ------------------------------------------------------------------------------ listen-proxies
def _power_centroid_hz(x, rate):
    power = np.abs(np.fft.rfft(x)) ** 2
    return float(np.sum(power * np.fft.rfftfreq(x.size, 1 / rate)) / np.sum(power))


def _onsets_per_second(x, rate):
    """Onsets: frames whose energy jumps by more than 6 dB over the previous 30 ms (10 ms hop)."""
    hop = int(0.01 * rate)
    frames = x[: x.size // hop * hop].reshape(-1, hop)
    level = 10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-10)
    floor = np.max(level) - 40
    rise = level[3:] - np.maximum.reduce([level[:-3], level[1:-2], level[2:-1]])
    hits = np.flatnonzero((rise > 6) & (level[3:] > floor))
    hits = hits[np.insert(np.diff(hits) > 4, 0, True)] if hits.size else hits
    return hits.size / (x.size / rate)


def test_voice_spectral_centroids():
    roles = ["bass", "double_bass", "cellos", "piano", "violins", "flute", "drums", "lead_vocal", "synth_pad"]
    stems = generate_stems({"style": "pop", "bars": 4, "instruments": roles}, RATE, seed=2)
    c = {k: _power_centroid_hz(v, RATE) for k, v in stems.items()}
    assert c["bass"] < 400 and c["double_bass"] < 400
    assert c["bass"] < c["cellos"] < c["violins"]
    assert c["flute"] > 700 and c["violins"] > 500
    assert 150 < c["piano"] < 2500 and 200 < c["lead_vocal"] < 2500
    assert c["drums"] > 400


def test_onset_density_per_style():
    def density(template, track):  # over the first three bars (the fourth is the ending)
        x = generate_stems({"template": template, "bars": 4}, RATE, seed=0)[track]
        return _onsets_per_second(x[: x.size * 3 // 4], RATE)
    club = density("electronic_dj", "drums")           # four on the floor, 124 bpm
    choir = density("choir", "Sopranos")               # sustained hymn at 66 bpm
    assert club >= 124 / 60 * 0.9                      # at least every beat
    assert choir < club / 2


# ------------------------------------------------------------------------------ MusicGen adapter
@pytest.mark.slow
def test_musicgen_adapter_with_tiny_random_model():
    pytest.importorskip("transformers")
    from stase.agent.music.musicgen import MusicGenGenerator, hashed_token_ids, tiny_random_musicgen
    assert hashed_token_ids("solo piano, jazz", 99) == hashed_token_ids("solo piano, jazz", 99)
    generator = MusicGenGenerator(tiny_random_musicgen(seed=0), device="cpu", guidance_scale=None)
    music = {"template": "jazz_ensemble", "bars": 1, "tempo_bpm": 240,
             "instruments": [{"track": "Keys", "role": "piano"}, "drums"]}
    first = generator.generate_stems(music, 16000, seed=3)
    again = generator.generate_stems(music, 16000, seed=3)
    assert list(first) == ["Keys", "drums"]
    for track, x in first.items():
        assert x.dtype == np.float32 and x.size == 16000 and np.all(np.isfinite(x))
        assert np.max(np.abs(x)) > 0
        np.testing.assert_array_equal(x, again[track])
    with pytest.raises(InputError):
        MusicGenGenerator("/nonexistent/musicgen")


def test_every_role_has_a_voice():
    stems = generate_stems({"style": "studio_recording", "bars": 2, "instruments": list(ROLES)}, 16000, seed=4)
    assert list(stems) == list(ROLES)
    for role, x in stems.items():
        assert gated_rms_db(x, 16000) > -45.0, role


def test_track_name_picks_the_world_colour():
    # a "Tabla" track gets the tabla pair (bayan near 95 Hz) even in a pop arrangement; congas
    # are tuned higher (low conga 190 Hz)
    stems = generate_stems({"style": "pop", "bars": 2, "instruments": [
        {"track": "Tabla", "role": "hand_drums"}, {"track": "Congas", "role": "hand_drums"}]}, RATE, seed=0)

    def low_share(x):
        power = np.abs(np.fft.rfft(x)) ** 2
        f = np.fft.rfftfreq(x.size, 1 / RATE)
        return power[(f > 80) & (f < 130)].sum() / power.sum()
    assert low_share(stems["Tabla"]) > 3 * low_share(stems["Congas"])
