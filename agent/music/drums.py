"""Drum kit, hand drums and orchestral percussion as sampled-noise one-shots.

Each sound is synthesised once per part from the part's seed ("sampled"), in three round-robin
variants so repeated hits are not identical, then placed at every hit with a velocity curve.
Recipes follow analogue drum-machine practice (TR-808/909 service notes: sine kick with a pitch
sweep, tone + filtered-noise snare, six detuned square oscillators at 205-800 Hz for metallic
cymbals) and membrane physics for pitched drums: timpani mode ratios about 1 : 1.50 : 1.98 : 2.44
(Rossing, *Science of Percussion Instruments*, 2000, ch. 2) and the harmonic overtones of the
tabla (Raman, Proc. Indian Acad. Sci. 1934).
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from stase.agent.music.synth import lowpass
from stase.agent.music.theory import midi_to_hz

METALLIC_HZ = (205.3, 304.4, 369.6, 522.7, 540.0, 800.0)  # TR-808 cymbal oscillators
ROUND_ROBIN = 3


def _t(seconds: float, sample_rate: float) -> np.ndarray:
    return np.arange(int(seconds * sample_rate)) / sample_rate


def _decay(t: np.ndarray, seconds_to_60db: float) -> np.ndarray:
    return np.exp(-t * 6.9 / seconds_to_60db)


def _sweep_sine(t, f_start, f_end, sweep_s, sample_rate):
    f = f_end + (f_start - f_end) * np.exp(-t / sweep_s)
    return np.sin(2 * np.pi * np.cumsum(f) / sample_rate)


def kick(sr, rng, electronic=False):
    t = _t(0.9 if electronic else 0.5, sr)
    body = _sweep_sine(t, 160 if electronic else 120, 46 if electronic else 52, 0.03, sr)
    body *= _decay(t, 0.8 if electronic else 0.38)
    click = lowpass(rng.standard_normal(t.size), 4000.0, sr) * _decay(t, 0.012)
    return body + 0.35 * click


def snare(sr, rng, brushes=False):
    t = _t(0.35, sr)
    if brushes:  # a swish: band-passed noise with a soft attack
        noise = lowpass(rng.standard_normal(t.size), 3500.0, sr, 0.7, mode=1)
        return noise * np.minimum(t / 0.012, 1.0) * _decay(t, 0.28) * 0.8
    tone = (np.sin(2 * np.pi * 185 * t) + 0.5 * np.sin(2 * np.pi * 330 * t)) * _decay(t, 0.09)
    noise = lowpass(rng.standard_normal(t.size), 5000.0, sr, 0.6, mode=1) * _decay(t, 0.22)
    return 0.6 * tone + 1.2 * noise


def clap(sr, rng):
    t = _t(0.3, sr)
    env = _decay(t, 0.18)
    for offset in (0.0, 0.011, 0.022):  # three hands a few ms apart
        env = np.maximum(env, np.where(t >= offset, _decay(np.maximum(t - offset, 0), 0.03), 0) * 1.3)
    return lowpass(rng.standard_normal(t.size), 1200.0, sr, 1.2, mode=1) * env * 1.5


def metallic(sr, rng, seconds, highpass_hz, noise_mix):
    t = _t(seconds, sr)
    x = np.zeros(t.size)
    for f in METALLIC_HZ:
        x += np.sign(np.sin(2 * np.pi * f * (1 + 0.01 * rng.standard_normal()) * t + rng.uniform(0, 6.3)))
    x = x / 6 + noise_mix * rng.standard_normal(t.size)
    return lowpass(x, highpass_hz, sr, 0.7, mode=2) * _decay(t, seconds)


def ride(sr, rng):
    bell = metallic(sr, rng, 1.4, 5000.0, 0.4)
    t = _t(1.4, sr)
    ping = sum(np.sin(2 * np.pi * f * t) for f in (2960.0, 4400.0)) * _decay(t, 0.5) * 0.15
    return bell + ping


def tom(sr, rng, f0):
    t = _t(0.5, sr)
    return _sweep_sine(t, f0 * 1.5, f0, 0.04, sr) * _decay(t, 0.45) + 0.2 * lowpass(
        rng.standard_normal(t.size), 2000.0, sr) * _decay(t, 0.02)


def shaker(sr, rng):
    t = _t(0.12, sr)
    env = np.minimum(t / 0.01, 1.0) * _decay(t, 0.1)
    return lowpass(rng.standard_normal(t.size), 6500.0, sr, 1.0, mode=1) * env


def tambourine(sr, rng):
    jingles = metallic(sr, rng, 0.3, 6000.0, 1.5)
    t = _t(0.3, sr)
    return jingles + sum(np.sin(2 * np.pi * f * t) for f in (5200.0, 7100.0, 8900.0)) * _decay(t, 0.2) * 0.1


def side_stick(sr, rng):
    t = _t(0.08, sr)
    return lowpass(rng.standard_normal(t.size), 1800.0, sr, 4.0, mode=1) * _decay(t, 0.05) * 2


def membrane(sr, rng, f0, seconds, ratios=(1.0, 1.59, 2.14), glide=-0.08, partial_decay=0.6,
             slap=0.0):
    """A struck membrane: decaying modes with a short pitch glide, plus a stick/hand noise."""
    t = _t(seconds, sr)
    bend = 1.0 + glide * np.exp(-t / 0.03)
    x = np.zeros(t.size)
    for i, ratio in enumerate(ratios):
        phase = 2 * np.pi * np.cumsum(f0 * ratio * bend) / sr
        x += (0.6 ** i) * np.sin(phase) * _decay(t, seconds * partial_decay ** i)
    noise = lowpass(rng.standard_normal(t.size), 2500.0 + 4000.0 * slap, sr, 0.8, mode=1)
    return x + (0.15 + slap) * noise * _decay(t, 0.025)


def hand_drum(note: int, sr, rng, tabla: bool):
    """Congas (L/H open tones, m muted, s slap) or a tabla pair in the world style."""
    if tabla:
        if note == 64:  # bayan: low stroke whose pitch glides up
            return membrane(sr, rng, 95.0, 0.6, (1.0, 2.0), glide=-0.25, partial_decay=0.5)
        if note == 63:  # "na" on the dayan: harmonic overtones (Raman 1934)
            return membrane(sr, rng, 380.0, 0.5, (1.0, 2.0, 3.0, 4.0), glide=0.0, partial_decay=0.75)
        if note == 61:
            return membrane(sr, rng, 400.0, 0.12, (1.0, 2.0, 3.0), glide=0.0, slap=0.8)
        return membrane(sr, rng, 380.0, 0.07, (1.0, 2.0), glide=0.0)
    f0 = {64: 190.0, 63: 290.0, 62: 300.0, 61: 330.0}.get(note, 250.0)
    seconds = {64: 0.35, 63: 0.3, 62: 0.06, 61: 0.1}.get(note, 0.2)
    return membrane(sr, rng, f0, seconds, slap=0.9 if note == 61 else 0.0)


def timpani(pitch: int, sr, rng):
    return membrane(sr, rng, midi_to_hz(pitch), 2.2, (1.0, 1.50, 1.98, 2.44), glide=0.0,
                    partial_decay=0.7) * 0.8


def mallet(pitch: int, sr, rng):
    """Marimba bar: fundamental plus the fourth-harmonic overtone tuned by bar undercutting."""
    f0 = midi_to_hz(pitch)
    t = _t(0.8, sr)
    return (np.sin(2 * np.pi * f0 * t) * _decay(t, 0.8)
            + 0.3 * np.sin(2 * np.pi * 4 * f0 * t) * _decay(t, 0.15))


def kit_sound(note: int, sr: float, rng: np.random.Generator, kit: str) -> np.ndarray | None:
    """One-shot for a GM drum key in a kit (acoustic, brushes, electronic); None if unknown."""
    makers: dict[int, Callable[[], np.ndarray]] = {
        36: lambda: kick(sr, rng, electronic=kit == "electronic"),
        38: lambda: snare(sr, rng, brushes=kit == "brushes"),
        37: lambda: side_stick(sr, rng),
        39: lambda: clap(sr, rng),
        42: lambda: metallic(sr, rng, 0.06, 7000.0, 0.8),
        44: lambda: metallic(sr, rng, 0.05, 6000.0, 0.5) * 0.7,
        46: lambda: metallic(sr, rng, 0.35, 7000.0, 0.8),
        49: lambda: metallic(sr, rng, 1.8, 4000.0, 1.2),
        51: lambda: ride(sr, rng),
        50: lambda: tom(sr, rng, 220.0), 47: lambda: tom(sr, rng, 160.0), 45: lambda: tom(sr, rng, 110.0),
        54: lambda: tambourine(sr, rng),
        70: lambda: shaker(sr, rng),
    }
    maker = makers.get(note)
    return None if maker is None else maker()


class OneShots:
    """Round-robin one-shot cache for one part: ``get(key)`` synthesises each key's variants once."""

    def __init__(self, make: Callable[[int, np.random.Generator], np.ndarray | None],
                 rng: np.random.Generator):
        self.make = make
        self.rng = rng
        self.cache: dict[int, list[np.ndarray]] = {}

    def get(self, key: int) -> np.ndarray | None:
        if key not in self.cache:
            variants = [self.make(key, self.rng) for _ in range(ROUND_ROBIN)]
            self.cache[key] = [v / (np.max(np.abs(v)) + 1e-12) for v in variants if v is not None]
        variants = self.cache[key]
        return variants[int(self.rng.integers(len(variants)))] if variants else None
