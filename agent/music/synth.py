"""Pitched synth voices: one function per instrument family, note in -> signal out.

Every voice has the signature ``voice(pitch, velocity, duration_s, sample_rate, rng, **options)``
and returns a float64 signal of the note *including* its release tail (peak about
``velocity / 127``).  Techniques, all classic:

* subtractive: PolyBLEP sawtooth/square through a state-variable filter whose cutoff follows an
  envelope (bass, synth lead and pad, strings, brass, clarinet-like woodwinds);
* FM (Chowning 1973, carrier:modulator 1:1 with a time-varying index): saxophone;
* additive with stiff-string inharmonicity f_k = k f0 sqrt(1 + B k^2) (Fletcher 1964) and
  partial-dependent decay: piano; drawbar sine sums: organ;
* Karplus-Strong plucked strings (Karplus & Strong 1983; Jaffe & Smith 1983): guitars, double
  bass pizzicato, harp, oud, sitar.
"""
from __future__ import annotations

import numpy as np

from stase.agent.music.kernels import decaying_partials, karplus_strong, polyblep_saw, svf_filter
from stase.agent.music.theory import midi_to_hz

LN1000 = np.log(1000.0)  # a time constant tau reaches -60 dB after tau * ln(1000)


def adsr(n_hold: int, sample_rate: float, attack_s: float, decay_s: float, sustain: float,
         release_s: float) -> np.ndarray:
    """Amplitude envelope: linear attack, exponential decay to ``sustain`` and release to -60 dB.

    ``n_hold`` samples are the key-down time; the release tail (``release_s`` long) follows.
    """
    n_release = max(int(release_s * sample_rate), 8)
    t = np.arange(n_hold + n_release) / sample_rate
    attack_s = max(min(attack_s, 0.9 * n_hold / sample_rate), 1e-3)
    env = np.where(t < attack_s, t / attack_s,
                   sustain + (1.0 - sustain) * np.exp(-(t - attack_s) * LN1000 / max(decay_s, 1e-3)))
    held = env[n_hold - 1] if n_hold > 0 else 0.0
    tail = held * np.exp(-(t[n_hold:] - t[n_hold]) * LN1000 / release_s)
    env[n_hold:] = tail * np.linspace(1.0, 0.0, n_release)  # reach exact zero, no click
    return env


def pitch_track(f0_hz: float, n: int, sample_rate: float, rng: np.random.Generator,
                vibrato_cents: float = 0.0, vibrato_hz: float = 5.5, vibrato_delay_s: float = 0.25,
                detune_cents: float = 0.0, scoop_cents: float = 0.0, scoop_s: float = 0.05,
                drift_cents: float = 0.0) -> np.ndarray:
    """Per-sample frequency (Hz): detune, a delayed vibrato fading in, an attack scoop from below,
    and a slow random drift.  Computed at a control rate of one point per 32 samples (1.5 kHz at
    48 kHz, far above any vibrato) and interpolated linearly."""
    hop = 32
    t = np.arange(0, n + hop, hop) / sample_rate
    cents = np.full(t.size, detune_cents)
    if vibrato_cents:
        fade = np.clip((t - vibrato_delay_s) / 0.3, 0.0, 1.0)
        rate = vibrato_hz * (1.0 + 0.05 * rng.standard_normal())
        cents += vibrato_cents * fade * np.sin(2 * np.pi * rate * t + rng.uniform(0, 2 * np.pi))
    if scoop_cents:
        cents -= scoop_cents * np.exp(-t / scoop_s)
    if drift_cents:
        cents += np.interp(t, np.linspace(0, t[-1], 6), rng.normal(0, drift_cents, 6))
    return np.interp(np.arange(n) / sample_rate, t, f0_hz * 2.0 ** (cents / 1200.0))


def saw(freq: np.ndarray, sample_rate: float, rng: np.random.Generator) -> np.ndarray:
    out = np.empty(freq.size)
    polyblep_saw(np.minimum(freq, 0.45 * sample_rate), float(sample_rate), rng.random(), out)
    return out


def square(freq: np.ndarray, sample_rate: float, rng: np.random.Generator) -> np.ndarray:
    """Band-limited square: the difference of two PolyBLEP saws half a cycle apart."""
    f = np.minimum(freq, 0.45 * sample_rate)
    phase = rng.random()
    a, b = np.empty(f.size), np.empty(f.size)
    polyblep_saw(f, float(sample_rate), phase, a)
    polyblep_saw(f, float(sample_rate), (phase + 0.5) % 1.0, b)
    return 0.5 * (a - b)


def lowpass(x: np.ndarray, cutoff_hz, sample_rate: float, resonance: float = 0.707, mode: int = 0) -> np.ndarray:
    """State-variable filter with a scalar or per-sample cutoff (mode 0 LP, 1 BP, 2 HP)."""
    cutoff = np.broadcast_to(np.asarray(cutoff_hz, dtype=np.float64), x.shape).copy()
    out = np.empty(x.size)
    svf_filter(np.ascontiguousarray(x, dtype=np.float64), cutoff, float(resonance), float(sample_rate),
               int(mode), out)
    return out


def _samples(duration_s: float, sample_rate: float) -> int:
    return max(int(round(duration_s * sample_rate)), 16)


# ----------------------------------------------------------------------------- subtractive
def subtractive(pitch, velocity, duration_s, sample_rate, rng, *, voices=1, detune_cents=7.0,
                wave="saw", attack_s=0.01, decay_s=0.4, sustain=0.8, release_s=0.2,
                cutoff_base=2.0, cutoff_env=4.0, cutoff_decay_s=0.3, brightness_follows_amp=False,
                resonance=0.8, vibrato_cents=0.0, vibrato_delay_s=0.3, scoop_cents=0.0,
                sub_octave=0.0, max_cutoff_hz=9000.0) -> np.ndarray:
    """Oscillators -> envelope-swept low-pass -> amplitude envelope.

    Cutoff (Hz) = f0 * (cutoff_base + cutoff_env * v * shape) where v = velocity / 127 and shape is
    a decaying envelope, or the amplitude envelope itself when ``brightness_follows_amp`` (brass:
    louder is brighter, Risset & Mathews 1969).
    """
    f0 = midi_to_hz(pitch)
    v = velocity / 127.0
    n_hold = _samples(duration_s, sample_rate)
    env = adsr(n_hold, sample_rate, attack_s, decay_s, sustain, release_s)
    n = env.size
    x = np.zeros(n)
    spread = np.linspace(-detune_cents, detune_cents, voices) if voices > 1 else [0.0]
    for cents in spread:
        f = pitch_track(f0, n, sample_rate, rng, vibrato_cents, 5.3, vibrato_delay_s,
                        cents + rng.normal(0, 1.5), scoop_cents)
        x += square(f, sample_rate, rng) if wave == "square" else saw(f, sample_rate, rng)
    x /= np.sqrt(len(spread))
    if sub_octave:
        x += sub_octave * np.sin(2 * np.pi * np.cumsum(np.full(n, f0 / 2)) / sample_rate)
    if brightness_follows_amp:
        shape = env ** 1.5
    else:
        shape = np.exp(-np.arange(n) / sample_rate * LN1000 / (3 * cutoff_decay_s))
    cutoff = np.minimum(f0 * (cutoff_base + cutoff_env * v * shape), max_cutoff_hz)
    return lowpass(x, cutoff, sample_rate, resonance) * env * v


def fm_voice(pitch, velocity, duration_s, sample_rate, rng, *, ratio=1.0, index=2.5,
             attack_s=0.03, release_s=0.12, vibrato_cents=18.0, breath=0.05) -> np.ndarray:
    """Two-operator FM (Chowning 1973): the index rises with the attack and the velocity (reed)."""
    f0 = midi_to_hz(pitch)
    v = velocity / 127.0
    env = adsr(_samples(duration_s, sample_rate), sample_rate, attack_s, 0.5, 0.85, release_s)
    n = env.size
    f = pitch_track(f0, n, sample_rate, rng, vibrato_cents, 5.0, 0.3, rng.normal(0, 2), 25.0, 0.04)
    phase = 2 * np.pi * np.cumsum(f) / sample_rate
    idx = (0.6 + index * v) * np.minimum(env * 1.2, 1.0)
    x = np.sin(phase + idx * np.sin(ratio * phase))
    if breath:
        noise = lowpass(rng.standard_normal(n), 2.0 * f0 + 1200.0, sample_rate, 1.5, mode=1)
        x += breath * noise
    return lowpass(x, 5500.0, sample_rate) * env * v


def flute(pitch, velocity, duration_s, sample_rate, rng) -> np.ndarray:
    """Near-sinusoidal tone with weak harmonics, breath noise and a chiff at the attack."""
    f0 = midi_to_hz(pitch)
    v = velocity / 127.0
    env = adsr(_samples(duration_s, sample_rate), sample_rate, 0.06, 0.3, 0.9, 0.15)
    n = env.size
    f = pitch_track(f0, n, sample_rate, rng, 14.0, 5.0, 0.2)
    phase = 2 * np.pi * np.cumsum(f) / sample_rate
    x = np.sin(phase) + 0.22 * np.sin(2 * phase) + 0.07 * np.sin(3 * phase)
    noise = lowpass(rng.standard_normal(n), 2.0 * f0, sample_rate, 2.0, mode=1)
    chiff = np.exp(-np.arange(n) / (0.025 * sample_rate))
    x += (0.07 + 0.35 * chiff) * noise
    return x * env * v * 0.8


# ----------------------------------------------------------------------------- additive
def piano(pitch, velocity, duration_s, sample_rate, rng) -> np.ndarray:
    """Additive piano: inharmonic partials, upper partials decay faster, two detuned strings."""
    f0 = midi_to_hz(pitch)
    v = velocity / 127.0
    t60 = float(np.clip(3.5 * 2.0 ** (-(pitch - 60) / 24.0), 0.8, 8.0))
    n_hold = _samples(duration_s, sample_rate)
    n = min(n_hold, int(t60 * sample_rate)) + int(0.25 * sample_rate)
    t = np.arange(n) / sample_rate
    inharmonicity = 4e-4 * 2.0 ** ((pitch - 60) / 24.0)
    n_partials = int(min(10, max(1, 8000.0 // f0)))
    k = np.arange(1, n_partials + 1, dtype=np.float64)
    fk = k * f0 * np.sqrt(1.0 + inharmonicity * k * k)
    tilt = 1.8 - 0.9 * v  # harder strikes are brighter
    amp = k ** -tilt * np.abs(np.sin(np.pi * k / 7.6))  # hammer near 1/8 of the string
    tau = t60 / (1.0 + 0.55 * (k - 1)) / LN1000
    beat = 0.15 + 0.1 * k  # Hz between the two unison strings of each note
    x = np.zeros(n)
    decaying_partials(np.concatenate([fk, fk + beat]), np.concatenate([amp, amp]),
                      np.concatenate([tau, tau]), rng.uniform(0, 2 * np.pi, 2 * n_partials),
                      float(sample_rate), x)
    damper = np.ones(n)
    if n_hold < n:
        damper[n_hold:] = np.exp(-(t[n_hold:] - t[n_hold]) / 0.06)
    hammer = lowpass(rng.standard_normal(n), 1500 + 4000 * v, sample_rate) * np.exp(-t / 0.004) * 0.3
    attack = np.minimum(t / 0.002, 1.0)
    return (x / 2.5 + hammer) * damper * attack * v


DRAWBARS = {  # footage ratio -> level (0..8), Hammond registrations
    "jazz": {0.5: 8, 1.5: 8, 1.0: 8},
    "rock": {0.5: 8, 1.5: 8, 1.0: 8, 2.0: 6, 3.0: 4, 4.0: 3},
    "church": {1.0: 8, 2.0: 7, 3.0: 4, 4.0: 6, 6.0: 3, 8.0: 3},
}


def organ(pitch, velocity, duration_s, sample_rate, rng, registration="rock") -> np.ndarray:
    """Drawbar organ: a sum of sines at the footage ratios, key click, no velocity dynamics."""
    f0 = midi_to_hz(pitch)
    env = adsr(_samples(duration_s, sample_rate), sample_rate, 0.008, 1.0, 1.0, 0.06)
    n = env.size
    t = np.arange(n) / sample_rate
    bars = DRAWBARS.get(registration, DRAWBARS["rock"])
    ratios = np.array(list(bars), dtype=np.float64)
    levels = 10.0 ** ((np.array(list(bars.values()), dtype=np.float64) - 8.0) * 3.0 / 20.0)
    x = np.zeros(n)
    decaying_partials(ratios * f0, levels, np.zeros(ratios.size), rng.uniform(0, 2 * np.pi, ratios.size),
                      float(sample_rate), x)
    click = lowpass(rng.standard_normal(n), 3000.0, sample_rate) * np.exp(-t / 0.003) * 0.2
    return (x / 3.0 + click) * env * 0.8


# ----------------------------------------------------------------------------- plucked
def plucked(pitch, velocity, duration_s, sample_rate, rng, *, t60_s=3.0, brightness=0.2,
            damp_s=0.08, pick_position=0.13) -> np.ndarray:
    """Karplus-Strong string: a noise pluck (darker when soft), damped when the note is released."""
    f0 = midi_to_hz(pitch)
    v = velocity / 127.0
    period = sample_rate / f0
    n_hold = _samples(duration_s, sample_rate)
    n = min(n_hold, int(t60_s * sample_rate)) + int(max(damp_s * 6, 0.05) * sample_rate)
    # The string's initial displacement: a triangle peaking at the pluck point (harmonics fall as
    # sin(k pi beta) / k^2, Fletcher & Rossing ch. 2), roughened by a little noise, darker when soft.
    m = int(period) + 1
    x_pos = np.arange(m) / m
    excitation = np.where(x_pos < pick_position, x_pos / pick_position,
                          (1.0 - x_pos) / (1.0 - pick_position))
    excitation = excitation - excitation.mean() + 0.15 * rng.uniform(-1, 1, m)
    excitation = lowpass(excitation, 600 + 9000 * v * (1 - brightness), sample_rate)
    feedback = 10.0 ** (-3.0 * (period / sample_rate) / t60_s)
    out = np.empty(n)
    karplus_strong(excitation, period, feedback, brightness, out)
    if n_hold < n:
        t = np.arange(n - n_hold) / sample_rate
        out[n_hold:] *= np.exp(-t / damp_s)
    out *= np.minimum(np.arange(n) / (0.001 * sample_rate), 1.0)
    return out / (np.max(np.abs(out[: int(period) * 4])) + 1e-9) * v
