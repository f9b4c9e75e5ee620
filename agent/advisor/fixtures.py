"""Deterministic synthetic multitracks for the advisor's tests and bench.

Each voice is built note by note with NumPy (additive harmonics, filtered noise bursts), never
a per-sample Python loop, so three minutes of eight stems take a second or two.  The signals are
caricatures chosen for their level behaviour, not their beauty:

* ``lead_vocal`` / ``backing_vocals`` - harmonic tones with vibrato and vowel formants
  (Peterson & Barney 1952 average formant frequencies), phrases with rests (about 60 % active);
* ``bass`` - low harmonic notes on eighths; ``drums`` - kick sweep, noise snare, hi-hats;
* ``electric_guitar`` - bright strummed chords; ``synth_pad`` - slow-attack sustained chords;
* ``piano`` - decaying struck notes; ``strings`` - sustained bowed notes with vibrato.

:func:`fixture_stems` returns raw stems (arbitrary levels); :func:`balanced_fixture` scales them to
the advisor's documented prior targets (:mod:`stase.agent.advisor.priors`) with an optional random
jitter that stands for the spread between real balanced mixes.
"""
from __future__ import annotations

import numpy as np
import scipy.signal

#: track name -> role, in the order a set of n stems takes them.
FIXTURE_TRACKS = (("Vocal", "lead_vocal"), ("Bass", "bass"), ("Drums", "drums"),
                  ("Guitar", "electric_guitar"), ("Pad", "synth_pad"), ("Keys", "piano"),
                  ("Strings", "strings"), ("Backing Vox", "backing_vocals"))

# average adult-male formants F1, F2, F3 in Hz (Peterson & Barney 1952) for a few vowels
_VOWELS = np.array([[730, 1090, 2440], [270, 2290, 3010], [300, 870, 2240],
                    [530, 1840, 2480], [570, 840, 2410]], dtype=float)
_SCALE = np.array([0, 2, 4, 5, 7, 9, 11])  # major scale steps
_CHORDS = ([0, 4, 7], [9, 12, 16], [5, 9, 12], [7, 11, 14])  # I vi IV V


def _midi_hz(note):
    return 440.0 * 2.0 ** ((np.asarray(note, dtype=float) - 69.0) / 12.0)


def _envelope(n, rate, attack_s, release_s, decay_per_s=0.0):
    t = np.arange(n) / rate
    env = np.minimum(1.0, t / max(attack_s, 1e-4))
    env *= np.minimum(1.0, (n / rate - t) / max(release_s, 1e-4))
    if decay_per_s:
        env *= np.exp(-decay_per_s * t)
    return np.clip(env, 0.0, None)


_TABLE_SIZE = 4096


def _harmonic_note(f0, n, rate, harmonic_amps, vibrato_hz=0.0, vibrato_depth=0.0, phase=0.0):
    """Sum of harmonics of a (possibly vibrato-modulated) f0; harmonics above 0.45 rate dropped.

    One period is built by an inverse FFT (a wavetable) and read at the running phase with
    linear interpolation, so the cost does not grow with the number of harmonics.
    """
    amps = np.asarray(harmonic_amps, dtype=float).copy()
    k = np.arange(1, len(amps) + 1)
    amps[k * f0 * (1 + vibrato_depth) >= 0.45 * rate] = 0.0
    spectrum = np.zeros(_TABLE_SIZE // 2 + 1, dtype=complex)
    spectrum[1:len(amps) + 1] = -1j * amps * _TABLE_SIZE / 2  # sine phase
    table = np.fft.irfft(spectrum, _TABLE_SIZE)
    table = np.append(table, table[0])
    t = np.arange(n) / rate
    inst = f0 * (1.0 + vibrato_depth * np.sin(2 * np.pi * vibrato_hz * t)) if vibrato_depth else np.full(n, f0)
    position = np.mod(np.cumsum(inst) / rate + phase / (2 * np.pi), 1.0) * _TABLE_SIZE
    index = position.astype(np.int64)
    frac = position - index
    return table[index] * (1.0 - frac) + table[index + 1] * frac


def _place(buffer, start, note):
    stop = min(len(buffer), start + len(note))
    if stop > start:
        buffer[start:stop] += note[: stop - start]


def _voice(role, duration_s, rate, rng, beat_s):
    n_total = int(round(duration_s * rate))
    out = np.zeros(n_total)
    n_beats = int(duration_s / beat_s)
    bar_chord = lambda beat: _CHORDS[(beat // 4) % len(_CHORDS)]  # noqa: E731
    if role in ("lead_vocal", "backing_vocals"):
        low = 57 if role == "lead_vocal" else 52
        step = 1 if role == "lead_vocal" else 2
        beat = 0
        while beat < n_beats:
            sing = (beat // 8) % 4 != 3 if role == "lead_vocal" else (beat // 16) % 2 == 1
            if not sing:
                beat += 4
                continue
            length = step * int(rng.integers(1, 3))
            note = low + _SCALE[int(rng.integers(0, 7))] + 12 * int(rng.integers(0, 2) if step == 1 else 0)
            f0 = _midi_hz(note)
            n = int(length * beat_s * rate * 0.92)
            formants = _VOWELS[int(rng.integers(0, len(_VOWELS)))] * (1.15 if role == "lead_vocal" else 1.0)
            k = np.arange(1, 41) * f0
            amps = sum(np.exp(-0.5 * ((k - fm) / (90 + 0.06 * fm)) ** 2) / (i + 1)
                       for i, fm in enumerate(formants)) + 0.02 / np.arange(1, 41)
            tone = _harmonic_note(f0, n, rate, amps, 5.5, 0.006, rng.uniform(0, 6.28))
            breath = scipy.signal.lfilter([1, -0.9], [1], rng.standard_normal(n)) * 0.01
            _place(out, int(beat * beat_s * rate), (tone + breath) * _envelope(n, rate, 0.04, 0.08))
            beat += length
    elif role == "bass":
        for eighth in range(2 * n_beats):
            root = 33 + bar_chord(eighth // 2)[0] % 12
            note = root + (12 if eighth % 4 == 3 else 0)
            n = int(0.45 * beat_s * rate)
            amps = 1.0 / np.arange(1, 9) ** 2
            tone = _harmonic_note(_midi_hz(note), n, rate, amps)
            _place(out, int(eighth * beat_s / 2 * rate), tone * _envelope(n, rate, 0.005, 0.03, 3.0))
    elif role == "drums":
        noise = rng.standard_normal(int(0.4 * rate))
        snare_band = [min(1500, 0.2 * rate), min(6000, 0.45 * rate)]
        snare_noise = scipy.signal.sosfilt(scipy.signal.butter(2, snare_band, "bandpass", fs=rate, output="sos"), noise)
        hat_filter = scipy.signal.butter(4, min(7000, 0.35 * rate), "highpass", fs=rate, output="sos")
        hat_noise = scipy.signal.sosfilt(hat_filter, noise)
        t = np.arange(int(0.35 * rate)) / rate
        kick = np.sin(2 * np.pi * (50 * t + 70 * (1 - np.exp(-t / 0.03)) * 0.03)) * np.exp(-t / 0.12)
        snare = (snare_noise[: len(t)] * 0.7 + 0.5 * np.sin(2 * np.pi * 190 * t)) * np.exp(-t / 0.08)
        hat = hat_noise[: int(0.08 * rate)] * np.exp(-np.arange(int(0.08 * rate)) / rate / 0.02) * 0.5
        for beat in range(n_beats):
            start = int(beat * beat_s * rate)
            _place(out, start, kick if beat % 2 == 0 else snare)
            for half in (0, 1):
                _place(out, start + int(half * beat_s / 2 * rate), hat * rng.uniform(0.7, 1.0))
    elif role in ("electric_guitar", "piano"):
        per_bar = 2 if role == "electric_guitar" else 4
        for hit in range(n_beats * per_bar // 4):
            chord = bar_chord(hit * 4 // per_bar)
            n = int(4 / per_bar * beat_s * rate * 0.95)
            strum = np.zeros(n)
            voicing = ([48, 55, 60, 64] if role == "electric_guitar" else [60, 67])
            for j, off in enumerate(voicing):
                note = off + chord[j % 3] % 12
                amps = (1.0 / np.arange(1, 25) ** 0.8) if role == "electric_guitar" else 1.0 / np.arange(1, 13) ** 1.5
                delay = int(j * 0.012 * rate) if role == "electric_guitar" else 0
                tone = _harmonic_note(_midi_hz(note), n - delay, rate, amps, phase=rng.uniform(0, 6.28))
                strum[delay:] += tone * _envelope(n - delay, rate, 0.003, 0.05, 2.5 if role == "piano" else 1.2)
            _place(out, int(hit * 4 / per_bar * beat_s * rate), strum)
    elif role in ("synth_pad", "strings"):
        for bar in range(n_beats // 4):
            chord = bar_chord(bar * 4)
            n = int(4 * beat_s * rate)
            block = np.zeros(n)
            for j, off in enumerate(chord):
                note = (60 if role == "synth_pad" else 67) + off
                amps = 1.0 / np.arange(1, 13) ** (1.6 if role == "synth_pad" else 1.1)
                block += _harmonic_note(_midi_hz(note + (0 if j else -12 if role == "strings" else 0)), n, rate,
                                        amps, 4.8 if role == "strings" else 0.3, 0.004, rng.uniform(0, 6.28))
            _place(out, bar * n, block * _envelope(n, rate, 0.5 if role == "synth_pad" else 0.2, 0.3))
    else:
        raise ValueError(f"no fixture voice for role {role!r}")
    return out


def fixture_stems(n_tracks: int = 5, duration_s: float = 20.0, sample_rate: int = 48_000,
                  seed: int = 0, tempo_bpm: float = 110.0) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Raw synthetic stems (float32 mono, each peak-normalised to 0.5) and their roles.

    Returns
    -------
    stems : {track: float32 (samples,)}
    roles : {track: role}
    """
    if not 1 <= n_tracks <= len(FIXTURE_TRACKS):
        raise ValueError(f"n_tracks must be 1..{len(FIXTURE_TRACKS)}, got {n_tracks}")
    rng = np.random.default_rng(seed)
    stems, roles = {}, {}
    for name, role in FIXTURE_TRACKS[:n_tracks]:
        x = _voice(role, duration_s, sample_rate, rng, 60.0 / tempo_bpm)
        stems[name] = (0.5 * x / max(np.max(np.abs(x)), 1e-9)).astype(np.float32)
        roles[name] = role
    return stems, roles


def balanced_fixture(n_tracks: int = 5, duration_s: float = 20.0, sample_rate: int = 48_000,
                     seed: int = 0, genre: str | None = "pop", jitter_db: float = 0.0,
                     mix_lufs: float = -20.0):
    """Synthetic stems balanced to the advisor's prior targets, plus ``jitter_db`` RMS spread.

    Returns
    -------
    stems : {track: float32 (samples,)} balanced
    roles : {track: role}
    """
    from stase.agent.advisor.analysis import analyse_stems
    from stase.agent.advisor.priors import prior_gains
    stems, roles = fixture_stems(n_tracks, duration_s, sample_rate, seed)
    analysis = analyse_stems(stems, sample_rate)
    gains, _ = prior_gains(analysis, roles, genre=genre, anchor="none")
    rng = np.random.default_rng(seed + 7919)
    jitter = rng.normal(0.0, jitter_db, len(stems)) if jitter_db > 0 else np.zeros(len(stems))
    scaled = {t: stems[t] * 10.0 ** ((gains[t] + j) / 20.0) for t, j in zip(stems, jitter)}
    analysis = analyse_stems(scaled, sample_rate)
    level = analysis.loudness_of_sum(list(scaled))
    trim = 10.0 ** ((mix_lufs - level) / 20.0)
    return {t: (x * trim).astype(np.float32) for t, x in scaled.items()}, roles
