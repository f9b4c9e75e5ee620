"""Sung voices by formant synthesis: a glottal pulse train through vowel resonances.

Source-filter model of the singing voice (Fant 1960; Sundberg, *The Science of the Singing Voice*,
1987): a band-limited sawtooth at f0 with vibrato and slow random pitch drift, tilted -6 dB/oct more
by a one-pole low-pass, plus a little aspiration noise, through five parallel band-pass resonators
at the vowel's formants.  Formant frequencies (Hz), levels (dB) and bandwidths (Hz) per voice type
and vowel are those of the Csound manual's formant table (Appendix "Formant values"), which
tabulates the classic measurements of sung vowels.
"""
from __future__ import annotations

import numpy as np
from scipy.signal import lfilter

from stase.agent.music.synth import adsr, pitch_track, saw
from stase.agent.music.theory import midi_to_hz

# voice -> vowel -> (frequencies Hz, levels dB, bandwidths Hz)
FORMANTS: dict[str, dict[str, tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...]]]] = {
    "soprano": {
        "a": ((800, 1150, 2900, 3900, 4950), (0, -6, -32, -20, -50), (80, 90, 120, 130, 140)),
        "e": ((350, 2000, 2800, 3600, 4950), (0, -20, -15, -40, -56), (60, 100, 120, 150, 200)),
        "i": ((270, 2140, 2950, 3900, 4950), (0, -12, -26, -26, -44), (60, 90, 100, 120, 120)),
        "o": ((450, 800, 2830, 3800, 4950), (0, -11, -22, -22, -50), (70, 80, 100, 130, 135)),
        "u": ((325, 700, 2700, 3800, 4950), (0, -16, -35, -40, -60), (50, 60, 170, 180, 200)),
    },
    "alto": {
        "a": ((800, 1150, 2800, 3500, 4950), (0, -4, -20, -36, -60), (80, 90, 120, 130, 140)),
        "e": ((400, 1600, 2700, 3300, 4950), (0, -24, -30, -35, -60), (60, 80, 120, 150, 200)),
        "i": ((350, 1700, 2700, 3700, 4950), (0, -20, -30, -36, -60), (50, 100, 120, 150, 200)),
        "o": ((450, 800, 2830, 3500, 4950), (0, -9, -16, -28, -55), (70, 80, 100, 130, 135)),
        "u": ((325, 700, 2530, 3500, 4950), (0, -12, -30, -40, -64), (50, 60, 170, 180, 200)),
    },
    "tenor": {
        "a": ((650, 1080, 2650, 2900, 3250), (0, -6, -7, -8, -22), (80, 90, 120, 130, 140)),
        "e": ((400, 1700, 2600, 3200, 3580), (0, -14, -12, -14, -20), (70, 80, 100, 120, 120)),
        "i": ((290, 1870, 2800, 3250, 3540), (0, -15, -18, -20, -30), (40, 90, 100, 120, 120)),
        "o": ((400, 800, 2600, 2800, 3000), (0, -10, -12, -12, -26), (40, 80, 100, 120, 120)),
        "u": ((350, 600, 2700, 2900, 3300), (0, -20, -17, -14, -26), (40, 60, 100, 120, 120)),
    },
    "bass": {
        "a": ((600, 1040, 2250, 2450, 2750), (0, -7, -9, -9, -20), (60, 70, 110, 120, 130)),
        "e": ((400, 1620, 2400, 2800, 3100), (0, -12, -9, -12, -18), (40, 80, 100, 120, 120)),
        "i": ((250, 1750, 2600, 3050, 3340), (0, -30, -16, -22, -28), (60, 90, 100, 120, 120)),
        "o": ((400, 750, 2400, 2600, 2900), (0, -11, -21, -20, -40), (40, 80, 100, 120, 120)),
        "u": ((350, 600, 2400, 2675, 2950), (0, -20, -32, -28, -36), (40, 80, 100, 120, 120)),
    },
}
VOWELS = ("a", "e", "i", "o", "u")


def voice_type(pitch: int) -> str:
    """The voice type whose formants suit a sung MIDI pitch."""
    if pitch >= 67:
        return "soprano"
    if pitch >= 58:
        return "alto"
    if pitch >= 50:
        return "tenor"
    return "bass"


def _resonator(frequency_hz: float, bandwidth_hz: float, sample_rate: float) -> tuple[np.ndarray, np.ndarray]:
    """Two-pole band-pass with unity peak gain (RBJ audio-EQ cookbook, constant 0 dB peak)."""
    w0 = 2 * np.pi * min(frequency_hz, 0.45 * sample_rate) / sample_rate
    q = frequency_hz / bandwidth_hz
    alpha = np.sin(w0) / (2 * q)
    b = np.array([alpha, 0.0, -alpha])
    a = np.array([1 + alpha, -2 * np.cos(w0), 1 - alpha])
    return b / a[0], a / a[0]


def sung_note(pitch, velocity, duration_s, sample_rate, rng, *, vowel="a", voice=None,
              vibrato_cents=35.0, breathiness=0.04, attack_s=0.07, release_s=0.15,
              consonant=False) -> np.ndarray:
    """One sung note on ``vowel`` by a ``voice`` type (chosen from the pitch when None)."""
    f0 = midi_to_hz(pitch)
    v = velocity / 127.0
    env = adsr(max(int(duration_s * sample_rate), 16), sample_rate, attack_s, 0.4, 0.9, release_s)
    n = env.size
    f = pitch_track(f0, n, sample_rate, rng, vibrato_cents, 5.6, 0.22, rng.normal(0, 4), 30.0, 0.06,
                    drift_cents=4.0)
    source = saw(f, sample_rate, rng)
    source = lfilter([0.3], [1.0, -0.7], source)  # extra -6 dB/oct tilt above ~600 Hz
    source = lfilter([0.45], [1.0, -0.55], source)  # and above ~4 kHz: a softer, less buzzy voice
    source += breathiness * rng.standard_normal(n) * (0.6 + v)
    frequencies, levels, bandwidths = FORMANTS[voice or voice_type(pitch)][vowel]
    y = np.zeros(n)
    for fc, level_db, bw in zip(frequencies, levels, bandwidths):
        if fc < 0.45 * sample_rate:
            b, a = _resonator(fc, bw, sample_rate)
            y += 10 ** (level_db / 20) * lfilter(b, a, source)
    if consonant:  # a short unvoiced onset ("t", "s"), high-passed noise
        m = min(n, int(0.03 * sample_rate))
        burst = rng.standard_normal(m) * np.exp(-np.arange(m) / (0.008 * sample_rate))
        burst = lfilter([1.0, -1.0], [1.0, -0.3], burst)
        y[:m] += 0.25 * burst
    return y * env * v * 1.6


def vowel_sequence(rng: np.random.Generator, count: int, style_vowel: str = "a") -> list[str]:
    """Vowels for a vocalise: mostly open vowels, the style's favourite first."""
    weights = np.array([0.32, 0.18, 0.1, 0.25, 0.15])
    weights[VOWELS.index(style_vowel)] += 0.3
    return [str(v) for v in rng.choice(VOWELS, size=count, p=weights / weights.sum())]
