"""Melodic writers: the lead tune, a counter-line, a harmony a third below, four-part choir.

The tune is built the way songwriting texts teach it: a one-bar rhythmic motif, repeated with its
pitches re-fitted to the next chord (A A'), a contrasting bar (B) and a cadence bar, in four-bar
phrases.  Notes on strong beats are chord tones; notes between them move by scale steps; the line
stays in the instrument's range and the piece ends on the tonic.  All pitches are in the key.
"""
from __future__ import annotations

import numpy as np

from stase.agent.music.parts import RANGES, Context, NoteEvent, voice_lead
from stase.agent.music.theory import Chord, nearest_in

#: One-bar rhythms in 8th notes for 4/4 and 3/4 (a negative value is a rest).
RHYTHMS = {
    8: ([2, 2, 2, 2], [4, 2, 2], [2, 2, 4], [3, 1, 2, 2], [1, 1, 2, 2, 2], [2, 1, 1, 2, 2],
        [1, 1, 1, 1, 2, 2], [3, 1, 3, 1], [2, 1, 1, 1, 1, 2], [1, 1, 1, 1, 1, 1, 2], [6, 2],
        [4, 4], [3, 3, 2], [1, 2, 1, 2, 2], [2, 1, 2, 1, 2], [1, 1, 1, 1, 1, 1, 1, 1],
        [2, 2, 2, -2], [-2, 2, 2, 2], [-1, 1, 1, 1, 2, 2]),
    6: ([2, 2, 2], [4, 2], [3, 1, 2], [2, 1, 1, 2], [1, 1, 1, 1, 2], [2, 4], [1, 1, 2, 2],
        [1, 1, 1, 1, 1, 1], [2, 2, -2], [-2, 2, 2]),
}
MELODY_RANGES = {
    "lead_vocal": (57, 74), "synth_lead": (64, 84), "saxophone": (56, 75), "trumpet": (60, 79),
    "violins": (67, 88), "flute": (72, 91), "woodwinds": (64, 84), "electric_guitar": (59, 79),
    "plucked": (60, 81), "choir": (62, 77), "piano": (65, 84), "acoustic_guitar": (59, 76),
    "organ": (62, 79), "brass": (58, 74), "strings": (67, 86), "backing_vocals": (60, 74),
}


def _rhythm(ctx: Context, rng: np.random.Generator, density: float) -> list[float]:
    """A one-bar rhythm in beats (negative = rest) whose notes per beat are near ``density``."""
    eighths = 2 * ctx.beats_per_bar
    bank = RHYTHMS.get(eighths)
    if bank is None:  # other meters: split the bar into random note values
        cells, left = [], eighths
        while left > 0:
            v = int(min(left, rng.choice([1, 2, 2, 3, 4])))
            cells.append(v)
            left -= v
        return [c / 2 for c in cells]
    scored = sorted(bank, key=lambda r: abs(sum(1 for c in r if c > 0) / ctx.beats_per_bar - density))
    choice = scored[int(rng.integers(min(4, len(scored))))]
    return [c / 2 for c in choice]


def _step(pitch: int, steps: int, scale: list[int]) -> int:
    """Move ``steps`` scale degrees from (the in-key pitch nearest to) ``pitch``."""
    i = scale.index(nearest_in(pitch, scale))
    return scale[int(np.clip(i + steps, 0, len(scale) - 1))]


def _realise(rhythm: list[float], moves: list[int], chord: Chord, start: float, current: int,
             scale: list[int], low: int, high: int) -> tuple[list[NoteEvent], int]:
    """Turn a rhythm and scale-step moves into notes over ``chord``; returns (notes, last pitch)."""
    notes, t = [], 0.0
    for length, move in zip(rhythm, moves):
        if length < 0:
            t += -length
            continue
        target = _step(current, move, scale)
        if target >= high - 1 or target <= low + 1:  # bounce off the edges of the range
            target = _step(current, -move, scale)
        strong = t % 2 == 0 or length >= 1.5
        pitch = chord.nearest_tone(target) if strong else target
        pitch = nearest_in(pitch, [p for p in scale if low <= p <= high])
        notes.append(NoteEvent(start + t, length * 0.92, pitch, 96 if t == 0 else 84))
        current = pitch
        t += length
    return notes, current


def write_melody(ctx: Context, rng: np.random.Generator, role: str) -> list[NoteEvent]:
    """The lead tune in four-bar phrases A A' B cadence, ending on the tonic."""
    low, high = MELODY_RANGES.get(role, RANGES.get(role, (60, 79)))
    scale = ctx.key.scale_pitches(low - 2, high + 2)
    density = ctx.style.melody_density
    motifs = []
    for _ in range(3):  # A, B and a second B for longer pieces
        rhythm = _rhythm(ctx, rng, density)
        moves = [int(m) for m in rng.choice([-2, -1, -1, 1, 1, 2, 0, 3, -3], size=len(rhythm))]
        motifs.append((rhythm, moves))
    current = ctx.chords[0].nearest_tone((low + high) // 2)
    notes: list[NoteEvent] = []
    beats = ctx.beats_per_bar
    for bar, chord in enumerate(ctx.chords):
        start = bar * beats
        phrase_bar = bar % 4
        if bar == ctx.bars - 1:
            tonic = nearest_in(current, [p for p in scale if p % 12 == ctx.key.tonic and low <= p <= high])
            notes.append(NoteEvent(start, beats * 0.98, tonic, 92))
            break
        if phrase_bar == 3:  # cadence: a long chord tone, then a breath
            pitch = chord.nearest_tone(current)
            pitch = nearest_in(pitch, [p for p in scale if low <= p <= high])
            notes.append(NoteEvent(start, (beats - 1) * 0.95, pitch, 88))
            current = pitch
            continue
        phrase = bar // 4
        index = 0 if phrase_bar < 2 else 1 + (phrase % 2)
        rhythm, moves = motifs[index]
        bar_notes, current = _realise(rhythm, moves, chord, start, current, scale, low, high)
        notes += bar_notes
    return notes


def write_counter(ctx: Context, rng: np.random.Generator, role: str) -> list[NoteEvent]:
    """A slow counter-line of guide tones (thirds and sevenths) that moves by small steps."""
    low, high = MELODY_RANGES.get(role, RANGES.get(role, (60, 79)))
    beats = ctx.beats_per_bar
    current = (low + high) // 2
    notes = []
    for bar, chord in enumerate(ctx.chords):
        start = bar * beats
        guides = [t for t in chord.tones[1:] if t != chord.tones[2]] or list(chord.tones)
        pool = [p for p in range(low, high + 1) if p % 12 in guides]
        pitch = nearest_in(current, pool)
        if bar == ctx.bars - 1 or beats < 4 or rng.random() < 0.5:
            notes.append(NoteEvent(start, beats * 0.96, pitch, 72))
        else:
            second = nearest_in(pitch + int(rng.choice([-3, -2, 2, 3])),
                                [p for p in range(low, high + 1) if p % 12 in chord.tones])
            notes += [NoteEvent(start, beats / 2 * 0.95, pitch, 72),
                      NoteEvent(start + beats / 2, beats / 2 * 0.95, second, 66)]
            pitch = second
        current = pitch
    return notes


def write_harmony(melody: list[NoteEvent], ctx: Context, role: str) -> list[NoteEvent]:
    """The tune a diatonic third below (a sixth below if that leaves the range), a little softer."""
    low, high = MELODY_RANGES.get(role, RANGES.get(role, (55, 79)))
    scale = ctx.key.scale_pitches(0, 127)
    out = []
    for n in melody:
        i = scale.index(nearest_in(n.pitch, scale))
        pitch = scale[i - 2]
        while pitch < low:
            pitch += 12
        while pitch > high:
            pitch -= 12
        out.append(NoteEvent(n.beat, n.length, pitch, max(n.velocity - 12, 1)))
    return out


def write_choir(ctx: Context, rng: np.random.Generator,
                lead: list[NoteEvent] | None) -> dict[str, list[NoteEvent]]:
    """Four-part (SATB) choir as ``{"S", "A", "T", "B": notes}``.

    Sopranos sing ``lead`` when given and the alto and tenor hold voice-led chord tones under it;
    without a lead all three upper voices are voice-led chords.  Basses sing the chord roots.
    """
    beats = ctx.beats_per_bar
    voices: dict[str, list[NoteEvent]] = {"S": [], "A": [], "T": [], "B": []}
    upper_range, upper_count = ((50, 68), 2) if lead else ((53, 76), 3)
    previous: list[int] | None = None
    for bar, chord in enumerate(ctx.chords):
        start = bar * beats
        bass = nearest_in(previous[-1] if previous else 48,
                          [p for p in range(40, 60) if p % 12 == chord.root])
        upper = voice_lead(previous[:-1] if previous else None, chord, *upper_range, upper_count)
        previous = upper + [bass]
        names = ("T", "A") if lead else ("T", "A", "S")
        for name, pitch in zip(names, upper):
            voices[name].append(NoteEvent(start, beats * 0.97, pitch, 76))
        voices["B"].append(NoteEvent(start, beats * 0.97, bass, 76))
    if lead:
        voices["S"] = [NoteEvent(n.beat, n.length, n.pitch, n.velocity) for n in lead]
    return voices


def split_choir(tracks: list[str]) -> dict[str, tuple[str, ...]]:
    """Which SATB voices each choir track sings: by name (soprano, alto, tenor, bass), else in
    order, the four voices shared as evenly as the number of tracks allows."""
    by_name = {"sop": "S", "alt": "A", "ten": "T", "bas": "B", "bari": "B"}
    out: dict[str, tuple[str, ...]] = {}
    for track in tracks:
        low = track.lower()
        hit = next((v for k, v in by_name.items() if k in low), None)
        if hit:
            out[track] = (hit,)
    rest = [t for t in tracks if t not in out]
    if rest:
        free = [v for v in "SATB" if v not in {x for vs in out.values() for x in vs}] or list("SATB")
        groups = np.array_split(np.array(free), min(len(rest), len(free)))
        for i, track in enumerate(rest):
            out[track] = tuple(str(v) for v in groups[i % len(groups)])
    return out
