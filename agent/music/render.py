"""Notes -> audio: the synth voice each of the 24 roles uses, per-part effects, the part renderer.

``render_part(role, notes, n_samples, sample_rate, rng, style, tempo_bpm)`` plays a track's notes
(read back from the arrangement's MIDI) with its role's synth voice and returns a float64 mono
signal of exactly ``n_samples``, after the part's effects (:mod:`.effects`).  These are the
fallback voices when FluidSynth is not installed (:mod:`.voices`), and the ones
``generate_stems`` uses unless asked for the sampled voices.
"""
from __future__ import annotations

from functools import partial

import numpy as np

from stase.agent.music import synth
from stase.agent.music.arranger import Note
from stase.agent.music.drums import OneShots, hand_drum, kit_sound, mallet, timpani
from stase.agent.music.effects import part_effects
from stase.agent.music.gm import CLASSICAL, WORLD_WORDS, world_colour  # noqa: F401  (re-exported)
from stase.agent.music.styles import Style
from stase.agent.music.vocals import sung_note, vowel_sequence

#: Relative level (dB) of each GM drum key inside a kit.
KIT_LEVELS_DB = {36: 0.0, 38: -2.0, 37: -8.0, 39: -3.0, 42: -11.0, 44: -14.0, 46: -10.0, 49: -9.0,
                 51: -12.0, 50: -5.0, 47: -5.0, 45: -5.0, 54: -10.0, 70: -12.0}


def pitched_voice(role: str, style: Style, world: bool = False):
    """The note function (pitch, velocity, duration_s, sample_rate, rng) for a role in a style."""
    sub = synth.subtractive
    classical = style.id in CLASSICAL
    if role == "bass":
        if style.id in ("electronic_dj", "outdoor_festival"):
            return partial(sub, attack_s=0.003, decay_s=0.35, sustain=0.6, release_s=0.05,
                           cutoff_base=1.5, cutoff_env=18.0, cutoff_decay_s=0.12, resonance=1.8)
        return partial(sub, attack_s=0.004, decay_s=0.8, sustain=0.5, release_s=0.06,
                       cutoff_base=1.3, cutoff_env=6.0, cutoff_decay_s=0.15, resonance=0.9)
    if role == "double_bass":
        if classical:
            return partial(sub, voices=2, detune_cents=5.0, attack_s=0.08, decay_s=1.0, sustain=0.9,
                           release_s=0.2, cutoff_base=3.0, cutoff_env=2.0, vibrato_cents=8.0)
        return partial(synth.plucked, t60_s=1.4, brightness=0.45, damp_s=0.05)
    if role == "electric_guitar":
        return partial(synth.plucked, t60_s=3.0, brightness=0.1, damp_s=0.05)
    if role == "acoustic_guitar":
        return partial(synth.plucked, t60_s=2.5, brightness=0.08, damp_s=0.12)
    if role == "plucked":
        if world:
            return partial(synth.plucked, t60_s=2.0, brightness=0.03, damp_s=0.3)
        return partial(synth.plucked, t60_s=3.5, brightness=0.3, damp_s=0.8)
    if role == "piano":
        return synth.piano
    if role == "organ":
        registration = "jazz" if style.id == "jazz_ensemble" else ("church" if classical else "rock")
        return partial(synth.organ, registration=registration)
    if role == "synth_lead":
        return partial(sub, voices=2, detune_cents=8.0, attack_s=0.005, decay_s=0.3, sustain=0.7,
                       release_s=0.12, cutoff_base=2.0, cutoff_env=14.0, cutoff_decay_s=0.25,
                       resonance=1.5, vibrato_cents=15.0, vibrato_delay_s=0.35)
    if role == "synth_pad":
        return partial(sub, voices=3, detune_cents=10.0, attack_s=0.45, decay_s=2.0, sustain=0.9,
                       release_s=0.9, cutoff_base=2.5, cutoff_env=3.0, cutoff_decay_s=1.5)
    if role in ("violins", "violas", "cellos", "strings"):
        return partial(sub, voices=4 if role == "strings" else 3, detune_cents=6.0,
                       attack_s=0.09 if role == "violins" else 0.14, decay_s=1.0, sustain=0.95,
                       release_s=0.3, cutoff_base=4.0, cutoff_env=3.0, cutoff_decay_s=0.8,
                       vibrato_cents=12.0, vibrato_delay_s=0.15, max_cutoff_hz=7000.0)
    if role == "brass":
        return partial(sub, voices=3, detune_cents=6.0, attack_s=0.05, decay_s=0.6, sustain=0.85,
                       release_s=0.15, cutoff_base=1.2, cutoff_env=3.5 if classical else 5.0,
                       brightness_follows_amp=True, scoop_cents=30.0)
    if role == "trumpet":
        return partial(sub, attack_s=0.03, decay_s=0.5, sustain=0.85, release_s=0.1, cutoff_base=1.5,
                       cutoff_env=10.0, brightness_follows_amp=True, scoop_cents=40.0,
                       vibrato_cents=10.0)
    if role == "saxophone":
        return synth.fm_voice
    if role == "woodwinds":
        return partial(sub, wave="square", attack_s=0.04, decay_s=0.5, sustain=0.9, release_s=0.1,
                       cutoff_base=2.0, cutoff_env=4.0, vibrato_cents=8.0)
    if role == "flute":
        return synth.flute
    return synth.piano  # any other pitched role falls back to a piano


def _place(out: np.ndarray, signal: np.ndarray, start: int, gain: float = 1.0) -> None:
    """Add ``gain * signal`` into ``out`` from ``start``; the note's last 3 ms fade to zero so a
    truncated tail never clicks."""
    if start >= out.size or start < 0:
        return
    m = min(signal.size, 144)
    if m > 1 and signal[-1] != 0.0:
        signal = signal.copy()
        signal[-m:] *= np.linspace(1.0, 0.0, m)
    end = min(start + signal.size, out.size)
    out[start:end] += gain * signal[: end - start]


def render_part(role: str, notes: list[Note], n_samples: int, sample_rate: int,
                rng: np.random.Generator, style: Style, tempo_bpm: float, track: str = "") -> np.ndarray:
    """A track's notes played by its role's voice, with the part's effects; float64, ``n_samples``."""
    out = np.zeros(n_samples)
    sr = float(sample_rate)
    if role in ("drums", "percussion", "hand_drums"):
        _render_percussive(role, notes, out, sr, rng, style, world_colour(track, style))
    elif role in ("lead_vocal", "backing_vocals", "choir"):
        _render_voices(role, notes, out, sr, rng, style)
    else:
        voice = pitched_voice(role, style, world_colour(track, style))
        for note in notes:
            _place(out, voice(note.pitch, note.velocity, note.duration_s, sr, rng),
                   int(round(note.start_s * sr)))
    return part_effects(role, out, sr, style, tempo_bpm, world_colour(track, style))


def _render_percussive(role, notes, out, sr, rng, style, world):
    if role == "drums":
        shots = OneShots(lambda key, r: kit_sound(key, sr, r, style.kit), rng)
    elif role == "hand_drums":
        tabla = world
        shots = OneShots(lambda key, r: hand_drum(key, sr, r, tabla), rng)
    else:
        shots = OneShots(lambda key, r: kit_sound(key, sr, r, "acoustic"), rng)
        pitched = OneShots(lambda key, r: (timpani(key, sr, r) if style.percussion == "timpani"
                                           else mallet(key, sr, r)), rng)
    for note in notes:
        sound = shots.get(note.pitch) if note.drum or role != "percussion" else pitched.get(note.pitch)
        if sound is None:
            continue
        level = 10 ** (KIT_LEVELS_DB.get(note.pitch, 0.0) / 20) if role == "drums" else 1.0
        _place(out, sound, int(round(note.start_s * sr)), level * (note.velocity / 127.0) ** 1.6)


def _render_voices(role, notes, out, sr, rng, style):
    singers = {"choir": 3, "backing_vocals": 2}.get(role, 1)
    vowels = vowel_sequence(rng, len(notes), "u" if role == "backing_vocals" else style.vowel)
    previous_end = -1.0
    for note, vowel in zip(notes, vowels):
        if role != "lead_vocal":
            vowel = "u" if role == "backing_vocals" else ("a" if vowel in "ei" else vowel)
        for _ in range(singers):
            start = note.start_s + (abs(rng.normal(0, 0.012)) if singers > 1 else 0.0)
            sig = sung_note(note.pitch, note.velocity, note.duration_s, sr, rng, vowel=vowel,
                            vibrato_cents=35.0 if role == "lead_vocal" else 22.0,
                            attack_s=0.06 if role == "lead_vocal" else 0.15,
                            consonant=role == "lead_vocal" and note.start_s - previous_end > 0.05)
            _place(out, sig, int(round(start * sr)), 1.0 / np.sqrt(singers))
        previous_end = note.start_s + note.duration_s
