"""Music theory the arranger needs: keys, scales, diatonic chords and Roman-numeral progressions.

Pitches are MIDI note numbers (60 = middle C = 261.63 Hz, A4 = 69 = 440 Hz, equal temperament).
A key is written as people write it: ``"D minor"``, ``"Bb major"``, ``"F#"`` (major), ``"E dorian"``.
Chords are built by stacking scale thirds on a degree, so every chord tone is in the key unless a
progression asks for an altered degree (``"V"`` in a minor key is the harmonic-minor major V, as
in common-practice harmony; ``"bVII"`` borrows the flattened seventh).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from stase.core.errors import InputError

NOTE_CLASSES = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}
#: Semitone steps of each mode from its tonic.
MODES: dict[str, tuple[int, ...]] = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "phrygian": (0, 1, 3, 5, 7, 8, 10),
    "lydian": (0, 2, 4, 6, 7, 9, 11),
}
_MODE_ALIASES = {"maj": "major", "ionian": "major", "min": "minor", "aeolian": "minor", "m": "minor"}
_NUMERALS = {"i": 0, "ii": 1, "iii": 2, "iv": 3, "v": 4, "vi": 5, "vii": 6}


@dataclass(frozen=True)
class Key:
    """A tonic pitch class (0 = C) and a mode name from :data:`MODES`."""

    tonic: int
    mode: str

    @property
    def steps(self) -> tuple[int, ...]:
        return MODES[self.mode]

    @property
    def pitch_classes(self) -> frozenset[int]:
        return frozenset((self.tonic + s) % 12 for s in self.steps)

    def degree_pitch(self, degree: int, octave_midi: int = 60) -> int:
        """MIDI pitch of scale ``degree`` (0-based, may exceed 6 or be negative) near ``octave_midi``."""
        octave, d = divmod(degree, 7)
        return octave_midi + self.tonic + self.steps[d] + 12 * octave

    def scale_pitches(self, low: int, high: int) -> list[int]:
        """Every in-key MIDI pitch in ``[low, high]``."""
        pcs = self.pitch_classes
        return [p for p in range(low, high + 1) if p % 12 in pcs]

    def __str__(self) -> str:
        names = ["C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]
        return f"{names[self.tonic]} {self.mode}"


def parse_key(text: str | None) -> Key:
    """Parse ``"D minor"``, ``"Bb"``, ``"f# dorian"``, ``"Am"``; ``InputError`` for anything else."""
    if text is None or not str(text).strip():
        return Key(0, "major")
    m = re.fullmatch(r"\s*([A-Ga-g])\s*([#b♯♭]?)\s*([A-Za-z]*)\s*", str(text))
    if not m:
        raise InputError(f"key {text!r} is not understood; write e.g. 'D minor', 'Bb major', 'F#', 'Am'")
    letter, accidental, mode = m.groups()
    tonic = NOTE_CLASSES[letter.lower()] + {"#": 1, "♯": 1, "b": -1, "♭": -1}.get(accidental, 0)
    mode = mode.lower() or "major"
    mode = _MODE_ALIASES.get(mode, mode)
    if mode not in MODES:
        raise InputError(f"key {text!r}: mode {mode!r} is not one of {sorted(MODES)}")
    return Key(tonic % 12, mode)


@dataclass(frozen=True)
class Chord:
    """A chord as a root pitch class and its pitch classes from the root up (root first)."""

    root: int
    tones: tuple[int, ...]  # pitch classes, root first, then third, fifth, (seventh)
    symbol: str

    def voicing(self, low: int, high: int, count: int) -> list[int]:
        """``count`` chord pitches, close position, starting from the lowest chord tone >= ``low``."""
        pitches = [p for p in range(low, high + 1) if p % 12 in self.tones]
        return pitches[:count] if len(pitches) >= count else pitches

    def nearest_tone(self, pitch: int) -> int:
        """The chord tone closest to ``pitch`` (ties go down)."""
        best = None
        for p in range(pitch - 6, pitch + 7):
            if p % 12 in self.tones and (best is None or abs(p - pitch) < abs(best - pitch)):
                best = p
        return best if best is not None else pitch


def chord_from_numeral(key: Key, numeral: str) -> Chord:
    """Build the chord for a Roman numeral in ``key``.

    Upper case / lower case is informative only: the quality comes from the key's scale, except
    ``V`` in minor (major triad, harmonic minor) and a leading ``b`` (borrowed flattened degree,
    major triad). A trailing ``7`` adds the diatonic seventh (``V7`` in minor uses the major V).
    """
    m = re.fullmatch(r"(b?)([ivIV]+)(7?)", numeral)
    if not m or m.group(2).lower() not in _NUMERALS:
        raise InputError(f"chord numeral {numeral!r} is not understood (use I..VII, bVII, ii7, V7)")
    flat, roman, seventh = m.groups()
    degree = _NUMERALS[roman.lower()]
    steps = key.steps
    if flat:
        root = (key.tonic + MODES["major"][degree] - 1) % 12
        tones = [root, (root + 4) % 12, (root + 7) % 12]
        if seventh:
            tones.append((root + 10) % 12)
    else:
        idx = [degree, degree + 2, degree + 4] + ([degree + 6] if seventh else [])
        tones = [(key.tonic + steps[i % 7]) % 12 for i in idx]
        root = tones[0]
        if key.mode in ("minor", "phrygian") and degree == 4 and roman.isupper():
            tones[1] = (root + 4) % 12  # harmonic-minor dominant: raised leading tone
    return Chord(root=root, tones=tuple(tones), symbol=numeral)


def midi_to_hz(pitch: float) -> float:
    """Equal-tempered frequency in Hz of a (possibly fractional) MIDI pitch; A4 = 69 = 440 Hz."""
    return 440.0 * 2.0 ** ((pitch - 69.0) / 12.0)


def nearest_in(pitch: int, candidates: list[int]) -> int:
    """The candidate closest to ``pitch`` (first one on ties)."""
    return min(candidates, key=lambda p: (abs(p - pitch), p))


def parse_meter(meter: str | int | None) -> tuple[int, int]:
    """``"4/4"`` -> (4, 4); an int means beats per bar over a quarter note."""
    if meter is None:
        return 4, 4
    if isinstance(meter, int) and not isinstance(meter, bool):
        beats, unit = meter, 4
    else:
        m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(meter))
        if not m:
            raise InputError(f"meter {meter!r} is not understood; write e.g. '4/4', '3/4', '6/8'")
        beats, unit = int(m.group(1)), int(m.group(2))
    if not 1 <= beats <= 16 or unit not in (2, 4, 8, 16):
        raise InputError(f"meter {meter!r}: need 1..16 beats over 2, 4, 8 or 16")
    return beats, unit
