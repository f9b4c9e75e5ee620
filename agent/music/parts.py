"""Part writers: one function per musical job (melody, bass line, comping, grooves).

Every writer takes an :class:`Context` (key, chords per bar, meter, style) and a seeded
``numpy.random.Generator`` and returns a list of :class:`NoteEvent` in beats (quarter notes from
the start).  Chords come one per bar; the last bar is the ending (held tonic, crash, final hit).
Register limits are sounding MIDI pitches of each instrument's comfortable range (orchestration
texts, e.g. Adler, *The Study of Orchestration*, 4th ed.).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stase.agent.music.styles import Style
from stase.agent.music.theory import Chord, Key, nearest_in

#: GM percussion keys used by the drum writer (General MIDI 1 percussion map, channel 10).
GM_DRUMS = {"kick": 36, "snare": 38, "clap": 39, "hihat": 42, "hihat_closed16": 42,
            "hihat_pedal": 44, "open_hihat": 46, "crash": 49, "crash_bar": 49, "ride": 51,
            "tom_high": 50, "tom_mid": 47, "tom_low": 45, "side_stick": 37, "tambourine": 54,
            "shaker": 70}
DRUM_CHANNEL = 9
STEP_VELOCITY = {"X": 116, "x": 92, "o": 52}
HAND_DRUM_KEYS = {"L": 64, "H": 63, "m": 62, "s": 61}

#: Comfortable sounding ranges (MIDI) of each role: (low, high).
RANGES = {
    "lead_vocal": (57, 74), "backing_vocals": (53, 72), "choir": (40, 79), "bass": (31, 50),
    "double_bass": (31, 50), "electric_guitar": (52, 76), "acoustic_guitar": (40, 71),
    "piano": (48, 84), "organ": (50, 76), "synth_lead": (64, 86), "synth_pad": (52, 76),
    "violins": (67, 88), "violas": (55, 74), "cellos": (43, 62), "strings": (50, 81),
    "brass": (50, 72), "trumpet": (60, 79), "saxophone": (55, 75), "woodwinds": (62, 84),
    "flute": (72, 91), "plucked": (55, 79), "drums": (35, 81), "percussion": (35, 81),
    "hand_drums": (35, 81),
}


@dataclass
class NoteEvent:
    """A note in musical time: start and length in beats (quarter notes), MIDI pitch/velocity."""

    beat: float
    length: float
    pitch: int
    velocity: int
    channel: int = 0


@dataclass
class Context:
    """What every writer needs to know about the piece."""

    key: Key
    chords: list[Chord]           # one per bar; the last is the final (tonic) chord
    beats_per_bar: int
    style: Style

    @property
    def bars(self) -> int:
        return len(self.chords)

    @property
    def steps_per_bar(self) -> int:
        return 4 * self.beats_per_bar

    def next_chord(self, bar: int) -> Chord:
        return self.chords[min(bar + 1, self.bars - 1)]


def _steps(pattern: str, ctx: Context) -> list[tuple[float, int]]:
    """(beat offset in the bar, velocity) of each hit of a 16th-step string."""
    if len(pattern) != ctx.steps_per_bar:
        return []
    return [(i * 0.25, STEP_VELOCITY[c]) for i, c in enumerate(pattern) if c in STEP_VELOCITY]


def _generic_groove(ctx: Context) -> dict[str, str]:
    """Kick on 1, snare on the back half of the bar, 8th-note hats, for any meter."""
    n = ctx.steps_per_bar
    kick, snare, hat = ["."] * n, ["."] * n, ["."] * n
    kick[0] = "X"
    for beat in range(1, ctx.beats_per_bar):
        if ctx.beats_per_bar <= 3 or beat % 2 == 1:
            snare[4 * beat] = "x"
    for i in range(0, n, 2):
        hat[i] = "x" if i % 4 == 0 else "o"
    return {"kick": "".join(kick), "snare": "".join(snare), "hihat": "".join(hat)}


# ------------------------------------------------------------------------------- rhythm section
def write_drums(ctx: Context, rng: np.random.Generator) -> list[NoteEvent]:
    """The style's kit groove, crash on each 4-bar phrase, a fill before it, an ending hit."""
    groove = dict(ctx.style.drums)
    if not groove or any(len(p) != ctx.steps_per_bar for p in groove.values()):
        groove = _generic_groove(ctx)
    if ctx.style.id in ("classical_orchestra", "chamber_music", "choir", "solo_performance"):
        groove = _generic_groove(ctx)  # the style has no kit of its own; play a soft groove
    notes: list[NoteEvent] = []
    jazz = ctx.style.kit == "brushes"
    for bar in range(ctx.bars):
        start = bar * ctx.beats_per_bar
        if bar == ctx.bars - 1:
            notes += [NoteEvent(start, 1.0, GM_DRUMS["crash"], 112, DRUM_CHANNEL),
                      NoteEvent(start, 1.0, GM_DRUMS["kick"], 110, DRUM_CHANNEL)]
            break
        fill = bar % 4 == 3 and ctx.bars > 4
        fill_from = ctx.beats_per_bar - 1.0
        if bar % 4 == 0 and not jazz:
            notes.append(NoteEvent(start, 1.0, GM_DRUMS["crash"], 104, DRUM_CHANNEL))
        for name, pattern in groove.items():
            for offset, velocity in _steps(pattern, ctx):
                if fill and offset >= fill_from and name != "kick":
                    continue
                notes.append(NoteEvent(start + offset, 0.25, GM_DRUMS[name], velocity, DRUM_CHANNEL))
        if jazz:  # the drummer comps on the snare: a few ghost notes and accents per bar
            for step in rng.choice(ctx.steps_per_bar // 2, size=2, replace=False):
                notes.append(NoteEvent(start + step * 0.5, 0.25, GM_DRUMS["snare"],
                                       int(rng.integers(38, 70)), DRUM_CHANNEL))
        if fill:
            toms = [GM_DRUMS["snare"], GM_DRUMS["tom_high"], GM_DRUMS["tom_mid"], GM_DRUMS["tom_low"]]
            for i in range(4):
                key = toms[i] if rng.random() < 0.6 else GM_DRUMS["snare"]
                notes.append(NoteEvent(start + fill_from + 0.25 * i, 0.25, key,
                                       70 + 12 * i, DRUM_CHANNEL))
    return notes


def write_percussion(ctx: Context, rng: np.random.Generator) -> list[NoteEvent]:
    """Shaker / tambourine on the grid, or timpani (pitched, channel 0) at phrase points."""
    notes: list[NoteEvent] = []
    kind = ctx.style.percussion
    for bar in range(ctx.bars):
        start = bar * ctx.beats_per_bar
        chord = ctx.chords[bar]
        last = bar == ctx.bars - 1
        if kind == "timpani":
            low = nearest_in(chord.root + 36, list(range(41, 54)))
            if chord.root not in (ctx.key.tonic, (ctx.key.tonic + 7) % 12):
                continue
            if bar % 4 == 0 or last:
                notes.append(NoteEvent(start, 1.5, low, 100 if last else 84))
            if bar % 4 == 3 and not last:  # a crescendo roll into the next phrase
                beat0 = ctx.beats_per_bar - 1.0
                for i in range(8):
                    notes.append(NoteEvent(start + beat0 + i * 0.125, 0.125, low, 44 + 6 * i))
            continue
        if last:
            notes.append(NoteEvent(start, 0.5, GM_DRUMS["shaker"], 90, DRUM_CHANNEL))
            break
        for step in range(ctx.steps_per_bar):
            on_eighth = step % 2 == 0
            velocity = 78 if step % 4 == 2 else (64 if on_eighth else 40)
            notes.append(NoteEvent(start + 0.25 * step, 0.25, GM_DRUMS["shaker"],
                                   velocity + int(rng.integers(-6, 7)), DRUM_CHANNEL))
        for beat in range(1, ctx.beats_per_bar, 2):
            notes.append(NoteEvent(start + beat, 0.5, GM_DRUMS["tambourine"], 74, DRUM_CHANNEL))
    return notes


def write_hand_drums(ctx: Context, rng: np.random.Generator) -> list[NoteEvent]:
    """Conga/tabla strokes from the style's pattern, with ghost taps filling a few gaps."""
    pattern = ctx.style.hand_drums
    if len(pattern) != ctx.steps_per_bar:
        pattern = ("L..sH.s." * 4)[: ctx.steps_per_bar]
    notes: list[NoteEvent] = []
    for bar in range(ctx.bars):
        start = bar * ctx.beats_per_bar
        if bar == ctx.bars - 1:
            notes.append(NoteEvent(start, 1.0, HAND_DRUM_KEYS["L"], 110, DRUM_CHANNEL))
            break
        for i, c in enumerate(pattern):
            if c in HAND_DRUM_KEYS:
                velocity = 100 if c in "Ls" else 84
                notes.append(NoteEvent(start + 0.25 * i, 0.25, HAND_DRUM_KEYS[c], velocity, DRUM_CHANNEL))
            elif rng.random() < 0.18:
                notes.append(NoteEvent(start + 0.25 * i, 0.25, HAND_DRUM_KEYS["m"], 40, DRUM_CHANNEL))
    return notes


def _bass_pitch(pc: int, previous: int, low: int, high: int) -> int:
    return nearest_in(previous, [p for p in range(low, high + 1) if p % 12 == pc])


def write_bass(ctx: Context, rng: np.random.Generator, role: str, recipe: str | None = None) -> list[NoteEvent]:
    """A bass line that follows the chords: its note on each downbeat is the chord root."""
    low, high = RANGES[role]
    recipe = recipe or ctx.style.bass
    beats = ctx.beats_per_bar
    notes: list[NoteEvent] = []
    root = _bass_pitch(ctx.chords[0].root, 38, low, high)
    for bar, chord in enumerate(ctx.chords):
        start = bar * beats
        root = _bass_pitch(chord.root, root, low, high)
        fifth = _bass_pitch(chord.tones[2], root + 5, low, high)
        third = _bass_pitch(chord.tones[1], root + 3, low, high)
        nxt = _bass_pitch(ctx.next_chord(bar).root, root, low, high)
        if bar == ctx.bars - 1:
            notes.append(NoteEvent(start, beats, root, 100))
            break
        if recipe == "walking" and beats >= 3:
            line = [root, third if rng.random() < 0.5 else fifth, fifth if rng.random() < 0.5 else third]
            line += [fifth] * (beats - 3)
            approach = nxt + (1 if rng.random() < 0.5 else -1)
            line[-1] = min(max(approach, low), high)
            notes += [NoteEvent(start + i, 0.92, p, 96 if i == 0 else 84) for i, p in enumerate(line)]
        elif recipe == "roots8":
            for i in range(2 * beats):
                p = root if i < 2 * beats - 2 else (fifth if i == 2 * beats - 2 else nxt)
                p = p + 12 if (i % 4 == 2 and rng.random() < 0.25 and p + 12 <= high) else p
                notes.append(NoteEvent(start + 0.5 * i, 0.42, p, 100 if i % 2 == 0 else 82))
        elif recipe == "offbeat":
            for i in range(beats):
                p = root + 12 if (i % 2 == 1 and root + 12 <= high + 7) else root
                notes.append(NoteEvent(start + i + 0.5, 0.4, p, 100))
        elif recipe == "tumbao":
            notes += [NoteEvent(start, 1.4, root, 100), NoteEvent(start + 1.5, 1.4, fifth, 88)]
            if beats >= 4:
                notes.append(NoteEvent(start + 3.0, 0.9, root, 92))
        elif recipe == "pop" and beats == 4:
            onsets = [(0.0, root, 0.7), (0.75, root, 0.6), (1.5, root, 0.9), (2.5, fifth, 0.45),
                      (3.0, root, 0.45), (3.5, nxt + (2 if nxt + 2 <= high else -2), 0.45)]
            notes += [NoteEvent(start + b, length, p, 98 if b == 0 else 84) for b, p, length in onsets]
        else:  # "half" (classical): root, then fifth; waltz meter: root for two beats, fifth
            if beats == 3:
                notes += [NoteEvent(start, 1.9, root, 92), NoteEvent(start + 2, 0.9, fifth, 80)]
            else:
                half = beats / 2
                notes += [NoteEvent(start, half * 0.95, root, 92),
                          NoteEvent(start + half, half * 0.95, fifth if rng.random() < 0.6 else root, 82)]
    return notes


# ------------------------------------------------------------------------------- harmony
def voice_lead(previous: list[int] | None, chord: Chord, low: int, high: int, count: int) -> list[int]:
    """The close voicing of ``chord`` with ``count`` notes in range that moves least from ``previous``."""
    candidates = []
    for start in range(low, high - 6):
        if start % 12 in chord.tones:
            v = chord.voicing(start, high, count)
            if len(v) == count:
                candidates.append(v)
    if not candidates:
        return chord.voicing(low, high + 12, count)
    if not previous:
        mid = (low + high) / 2
        return min(candidates, key=lambda v: abs(np.mean(v) - mid))
    return min(candidates, key=lambda v: sum(abs(a - b) for a, b in zip(v, previous)))


def write_chords(ctx: Context, rng: np.random.Generator, role: str, recipe: str,
                 count: int = 4, register: tuple[int, int] | None = None) -> list[NoteEvent]:
    """Chords in one of the comping recipes, voice-led from bar to bar."""
    low, high = register or RANGES[role]
    beats = ctx.beats_per_bar
    notes: list[NoteEvent] = []
    voicing: list[int] | None = None
    bar_len = float(beats)
    for bar, chord in enumerate(ctx.chords):
        start = bar * beats
        voicing = voice_lead(voicing, chord, low, high, count)
        last = bar == ctx.bars - 1
        if recipe == "sustain" or last:
            notes += [NoteEvent(start, bar_len * 0.98, p, 72 if not last else 80) for p in voicing]
        elif recipe == "power":
            root = nearest_in(voicing[0], [p for p in range(40, 58) if p % 12 == chord.root])
            shape = [root, root + 7, root + 12]
            for b, velocity in _steps(ctx.style.comp_steps, ctx) or [(i * 0.5, 92) for i in range(2 * beats)]:
                length = 0.9 if b == 0 else 0.4
                notes += [NoteEvent(start + b, length, p, velocity) for p in shape]
        elif recipe == "strum":
            shape = _guitar_shape(chord, low)
            hits = _steps(ctx.style.comp_steps, ctx) or [(float(i), 90) for i in range(beats)]
            for n, (b, velocity) in enumerate(hits):
                down = (b * 2) % 1 == 0
                order = shape if down else shape[::-1][:4]
                spread = 0.02 if down else 0.014  # beats between strings: a fast strum
                until = hits[n + 1][0] if n + 1 < len(hits) else bar_len
                for i, p in enumerate(order):
                    notes.append(NoteEvent(start + b + i * spread, max(until - b - i * spread, 0.2) * 0.95,
                                           p, velocity - (0 if down else 14)))
        elif recipe == "comping":
            shell = [p for p in voicing if p % 12 != chord.root] or voicing
            cells = ([0.0, 2.5], [1.5, 3.0], [0.5, 2.5], [0.0, 1.5, 3.5], [2.5], [1.0, 3.5])
            for b in cells[int(rng.integers(len(cells)))]:
                if b < beats:
                    length = 0.5 if rng.random() < 0.5 else 1.0
                    notes += [NoteEvent(start + b, length, p, int(rng.integers(56, 78))) for p in shell]
        elif recipe == "stabs":
            for b, velocity in _steps(ctx.style.comp_steps, ctx) or [(i + 0.5, 90) for i in range(beats)]:
                notes += [NoteEvent(start + b, 0.3, p, velocity) for p in voicing[:3]]
        elif recipe == "pulse":
            for i in range(2 * beats):
                p = voicing[(i // 2) % len(voicing)]
                notes.append(NoteEvent(start + 0.5 * i, 0.45, p, 60 if i % 2 else 70))
        elif recipe == "arpeggio":
            notes += _arpeggio_bar(ctx, chord, start, low, high, rng)
        else:  # "block": a chord on each step of the style's comp rhythm
            hits = _steps(ctx.style.comp_steps, ctx) or [(float(i), 84) for i in range(beats)]
            for n, (b, velocity) in enumerate(hits):
                until = hits[n + 1][0] if n + 1 < len(hits) else bar_len
                length = min(0.9, 0.95 * (until - b))  # released before the next chord
                notes += [NoteEvent(start + b, length, p, velocity - 10) for p in voicing]
    return notes


def _guitar_shape(chord: Chord, low: int) -> list[int]:
    """An open-position-like six-string voicing: root low, then chord tones up to about G4."""
    root = nearest_in(low + 4, [p for p in range(low, low + 12) if p % 12 == chord.root])
    shape = [root]
    p = root
    while len(shape) < 6:
        p += 1
        if p % 12 in chord.tones and p - shape[-1] >= 3:
            shape.append(p)
    return shape


def _arpeggio_bar(ctx: Context, chord: Chord, start: float, low: int, high: int,
                  rng: np.random.Generator) -> list[NoteEvent]:
    """Broken chord in 8ths: the bass note, then chord tones rising and falling (Alberti-like)."""
    beats = ctx.beats_per_bar
    root = nearest_in(low + 5, [p for p in range(low, low + 12) if p % 12 == chord.root])
    tones = [p for p in range(root, min(root + 19, high) + 1) if p % 12 in chord.tones]
    path = tones + tones[-2:0:-1]
    notes = [NoteEvent(start, beats * 0.98, root, 78)]  # held bass note (pedal)
    for i in range(1, 2 * beats):
        p = path[i % len(path)]
        notes.append(NoteEvent(start + 0.5 * i, 0.9, p, 60 + int(rng.integers(0, 10))))
    return notes
