"""The arranger: a music description -> a MIDI file (mido) with one part per instrument.

``arrange(description, seed)`` decides who plays what (the lead tune, a counter-line, the bass
line, the groove, the comping), writes each part with the writers in :mod:`.parts` and
:mod:`.melody`, humanises timing and velocity from the seed, and returns an :class:`Arrangement`
whose ``midi`` is a type-1 :class:`mido.MidiFile` (tempo, meter and key on track 0, then one named
track per instrument, each starting with its General MIDI program (:mod:`.gm`) and controllers).
``Arrangement.notes()`` reads the notes back from that MIDI file in seconds, so what the synth
renders is exactly what a DAW would import; the sampled voices render the file itself.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import mido
import numpy as np

from stase.agent.music.gm import DRUM_ROLES, kit_for, program_for
from stase.agent.music.melody import split_choir, write_choir, write_counter, write_harmony, write_melody
from stase.agent.music.parts import (DRUM_CHANNEL, Context, NoteEvent, write_bass, write_chords, write_drums,
                    write_hand_drums, write_percussion)
from stase.agent.music.styles import Style
from stase.agent.music.theory import Key, chord_from_numeral, parse_key

TICKS_PER_BEAT = 480
#: Who takes the tune, in order of preference (the first present wins).
LEAD_PRIORITY = ("lead_vocal", "synth_lead", "saxophone", "trumpet", "violins", "flute",
                 "woodwinds", "electric_guitar", "plucked", "choir", "piano", "acoustic_guitar",
                 "organ", "brass", "strings", "backing_vocals")
#: Instruments that may carry a counter-line or a harmony when they do not lead.
MELODIC = ("flute", "saxophone", "trumpet", "woodwinds", "synth_lead", "lead_vocal")
#: Instruments that can accompany themselves (left hand / strummed chords) when playing alone.
SELF_ACCOMPANYING = ("piano", "acoustic_guitar", "plucked", "organ", "electric_guitar")
#: Controllers set at the start of every part: volume 100 and expression 127 (GM defaults, so the
#: velocities carry the dynamics), pan centre (the stems are mono; stase places them), and reverb
#: and chorus sends 0 (stems are dry; stase's rooms add the space).
PART_CONTROLLERS = ((7, 100), (11, 127), (10, 64), (91, 0), (93, 0))
_MIDO_KEYS = {"major": ["C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"],
              "minor": ["Cm", "C#m", "Dm", "Ebm", "Em", "Fm", "F#m", "Gm", "G#m", "Am", "Bbm", "Bm"]}


@dataclass(frozen=True)
class Note:
    """A note read back from the MIDI file: seconds, MIDI pitch and velocity, drum flag."""

    start_s: float
    duration_s: float
    pitch: int
    velocity: int
    drum: bool


@dataclass
class Arrangement:
    """The written piece: its context, who does what, and the MIDI file."""

    context: Context
    tempo_bpm: float
    tracks: list[tuple[str, str]]            # (track, role) in the plan's order
    jobs: dict[str, str]
    midi: mido.MidiFile
    parts: dict[str, list[NoteEvent]] = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        return self.context.bars * self.context.beats_per_bar * 60.0 / self.tempo_bpm

    def notes(self) -> dict[str, list[Note]]:
        """Every track's notes, read back from :attr:`midi` (times in seconds)."""
        out: dict[str, list[Note]] = {}
        seconds_per_tick = 60.0 / self.tempo_bpm / TICKS_PER_BEAT
        for track in self.midi.tracks[1:]:
            name, tick, pending, notes = None, 0, {}, []
            for msg in track:
                tick += msg.time
                if msg.type == "track_name":
                    name = msg.name
                elif msg.type == "note_on" and msg.velocity > 0:
                    pending.setdefault((msg.channel, msg.note), []).append((tick, msg.velocity))
                elif msg.type in ("note_off", "note_on"):
                    started = pending.get((msg.channel, msg.note))
                    if started:
                        t0, velocity = started.pop(0)
                        notes.append(Note(t0 * seconds_per_tick, (tick - t0) * seconds_per_tick,
                                          msg.note, velocity, msg.channel == DRUM_CHANNEL))
            out[name] = sorted(notes, key=lambda n: (n.start_s, n.pitch))
        return out


def track_rng(seed: int, track: str) -> np.random.Generator:
    """A generator for one track, independent of the others (adding a track changes no other)."""
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, zlib.crc32(track.lower().encode())])


def assign_jobs(tracks: list[tuple[str, str]], style: Style) -> dict[str, str]:
    """Who plays what: ``melody``, ``counter``, ``harmony``, ``bass``, a comping recipe, a groove."""
    roles = [r for _, r in tracks]
    jobs: dict[str, str] = {}
    lead = next((t for r in LEAD_PRIORITY for t, role in tracks if role == r), None)
    has_bass = any(r in ("bass", "double_bass") for r in roles)
    bass_taken = False
    melodic_seen = 0
    comp_players = [t for t, r in tracks if t != lead and r not in
                    ("drums", "percussion", "hand_drums", "bass", "double_bass") + MELODIC]
    for track, role in tracks:
        if role in ("drums", "percussion", "hand_drums"):
            jobs[track] = role
        elif role in ("bass", "double_bass"):
            jobs[track] = "bass" if not bass_taken else "bass:half"
            bass_taken = True
        elif track == lead:
            alone = not comp_players and role in SELF_ACCOMPANYING
            jobs[track] = "choir+melody" if role == "choir" else ("melody+comp" if alone else "melody")
        elif role in MELODIC or (role == "violins" and style.comp == "arpeggio"):
            melodic_seen += 1
            jobs[track] = "counter" if melodic_seen == 1 else "harmony"
        elif role == "choir":
            jobs[track] = "choir"
        elif role == "cellos" and not has_bass and not bass_taken:
            jobs[track] = "bass:half"
            bass_taken = True
        else:
            recipe = comp_recipe(role, style)
            if ("comp:" + recipe) in (jobs.get(t) for t, r in tracks if r == role and t in jobs):
                recipe = SECOND_PLAYER.get(recipe, recipe)  # a doubled instrument plays a contrasting part
            jobs[track] = "comp:" + recipe
    return jobs


#: What a second player of the same instrument does instead of doubling the first one's part.
SECOND_PLAYER = {"strum": "arpeggio", "block": "arpeggio", "comping": "arpeggio", "stabs": "sustain",
                 "arpeggio": "sustain", "pulse": "sustain"}


def comp_recipe(role: str, style: Style) -> str:
    """The accompaniment recipe a role uses in a style."""
    if role in ("organ", "synth_pad", "strings", "backing_vocals", "violins", "cellos"):
        return "sustain"
    if role == "violas":
        return "pulse" if style.comp == "arpeggio" else "sustain"
    if role == "brass":
        return "stabs" if style.comp in ("stabs", "power") else "sustain"
    if role == "plucked":
        return "arpeggio"
    if role == "acoustic_guitar":
        return "arpeggio" if style.comp == "arpeggio" else "strum"
    if role == "electric_guitar":
        return {"power": "power", "comping": "block", "stabs": "power"}.get(style.comp, "strum")
    if role == "piano":
        return {"strum": "block", "power": "block", "stabs": "stabs"}.get(style.comp, style.comp)
    return "sustain"


_VOICES = {"piano": 4, "organ": 4, "synth_pad": 4, "strings": 4, "brass": 3, "backing_vocals": 3}


def write_part(job: str, role: str, ctx: Context, rng: np.random.Generator,
               lead_notes: list[NoteEvent] | None) -> list[NoteEvent]:
    """Dispatch one track's job to its writer."""
    if job == "drums":
        return write_drums(ctx, rng)
    if job == "percussion":
        return write_percussion(ctx, rng)
    if job == "hand_drums":
        return write_hand_drums(ctx, rng)
    if job.startswith("bass"):
        return write_bass(ctx, rng, role if role in ("bass", "double_bass") else "double_bass",
                          job.split(":")[1] if ":" in job else None)
    if job == "counter":
        return write_counter(ctx, rng, role)
    if job == "harmony":
        return write_harmony(lead_notes or [], ctx, role)
    if job.startswith("comp:"):
        return write_chords(ctx, rng, role, job[5:], count=_VOICES.get(role, 2))
    raise ValueError(f"unknown job {job!r}")  # pragma: no cover - assign_jobs makes only these


def humanise(notes: list[NoteEvent], ctx: Context, rng: np.random.Generator, tempo_bpm: float,
             drums: bool) -> list[NoteEvent]:
    """Swing the off-beat 8ths, spread timing (ms SD from the style) and velocities, accent beats."""
    style = ctx.style
    sigma_beats = style.timing_ms / 1000.0 * tempo_bpm / 60.0
    if style.id == "electronic_dj" and drums:
        sigma_beats = 0.0  # sequenced grooves are on the grid
    out = []
    total = ctx.bars * ctx.beats_per_bar
    for n in notes:
        beat = _swing(n.beat, style.swing)
        end = _swing(n.beat + n.length, style.swing)
        if sigma_beats > 0 and n.beat > 0:
            beat += float(np.clip(rng.normal(0.0, sigma_beats), -2.5 * sigma_beats, 2.5 * sigma_beats))
        beat = min(max(beat, 0.0), total - 0.01)
        in_bar = n.beat % ctx.beats_per_bar
        accent = 6 if in_bar == 0 else (3 if in_bar == ctx.beats_per_bar // 2 else 0)
        velocity = n.velocity + accent + rng.normal(0.0, style.velocity_spread)
        out.append(NoteEvent(beat, max(min(end, total) - beat, 0.02), n.pitch,
                             int(np.clip(round(velocity), 1, 127)), n.channel))
    return out


def _swing(beat: float, swing: float) -> float:
    """Map a straight position to a swung one: the off-beat 8th moves to ``swing`` of the beat."""
    if swing == 0.5:
        return beat
    whole = np.floor(beat)
    frac = beat - whole
    frac = frac / 0.5 * swing if frac <= 0.5 else swing + (frac - 0.5) / 0.5 * (1.0 - swing)
    return float(whole + frac)


def arrange(tracks: list[tuple[str, str]], style: Style, key: Key | str, tempo_bpm: float,
            bars: int, beats_per_bar: int, seed: int = 0, progression: tuple[str, ...] | None = None
            ) -> Arrangement:
    """Write the whole piece; see the module docstring."""
    key = parse_key(key) if isinstance(key, str) else key
    numerals = list(progression or style.progression)
    chords = [chord_from_numeral(key, numerals[b % len(numerals)]) for b in range(bars - 1)]
    chords.append(chord_from_numeral(key, "i" if key.mode == "minor" else "I"))  # end at home
    ctx = Context(key=key, chords=chords, beats_per_bar=beats_per_bar, style=style)
    jobs = assign_jobs(tracks, style)
    lead_track = next((t for t, j in jobs.items() if "melody" in j), None)
    lead_role = dict(tracks).get(lead_track) if lead_track else None
    lead_notes = (write_melody(ctx, track_rng(seed, "melody"), "choir" if lead_role == "choir" else lead_role)
                  if lead_track else None)
    choir_tracks = [t for t, r in tracks if r == "choir"]
    choir_voices = (write_choir(ctx, track_rng(seed, "choir"), lead_notes if lead_role == "choir" else None)
                    if choir_tracks else {})
    choir_split = split_choir(choir_tracks)
    parts: dict[str, list[NoteEvent]] = {}
    for track, role in tracks:
        job = jobs[track]
        rng = track_rng(seed, track)
        if job == "melody":
            notes = list(lead_notes)
        elif job == "melody+comp":
            recipe = "arpeggio" if style.comp in ("arpeggio", "comping") else comp_recipe(role, style)
            low = 36 if role == "piano" else 40
            notes = list(lead_notes) + write_chords(ctx, rng, role, recipe, count=3, register=(low, 64))
        elif role == "choir":
            notes = [n for v in choir_split[track] for n in choir_voices[v]]
        else:
            notes = write_part(job, role, ctx, rng, lead_notes)
        drums = role in ("drums", "percussion", "hand_drums")
        parts[track] = humanise(notes, ctx, rng, tempo_bpm, drums)
    midi = to_midi(parts, dict(tracks), ctx, tempo_bpm)
    return Arrangement(ctx, float(tempo_bpm), list(tracks), jobs, midi, parts)


def to_midi(parts: dict[str, list[NoteEvent]], roles: dict[str, str], ctx: Context,
            tempo_bpm: float) -> mido.MidiFile:
    """A type-1 MIDI file: conductor track (tempo, meter, key), then one track per part."""
    midi = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_BEAT)
    head = mido.MidiTrack()
    head.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(tempo_bpm), time=0))
    head.append(mido.MetaMessage("time_signature", numerator=ctx.beats_per_bar, denominator=4, time=0))
    if ctx.key.mode in _MIDO_KEYS:
        head.append(mido.MetaMessage("key_signature", key=_MIDO_KEYS[ctx.key.mode][ctx.key.tonic], time=0))
    head.append(mido.MetaMessage("end_of_track", time=0))
    midi.tracks.append(head)
    free_channels = [c for c in range(16) if c != DRUM_CHANNEL]
    for i, (track, notes) in enumerate(parts.items()):
        channel = free_channels[i % len(free_channels)]
        role = roles[track]
        mt = mido.MidiTrack()
        mt.append(mido.MetaMessage("track_name", name=track, time=0))
        setup = [] if role in ("drums", "hand_drums") else [(channel, program_for(role, ctx.style, track))]
        if role in DRUM_ROLES:  # the kit: a program on channel 10 (bank 128 in a SoundFont)
            setup.append((DRUM_CHANNEL, kit_for(ctx.style) if role == "drums" else 0))
        for ch, program in setup:
            mt.append(mido.Message("program_change", program=program, channel=ch, time=0))
            for control, value in PART_CONTROLLERS:
                mt.append(mido.Message("control_change", control=control, value=value, channel=ch, time=0))
        events = []
        for n in notes:
            ch = DRUM_CHANNEL if n.channel == DRUM_CHANNEL else channel
            on = int(round(n.beat * TICKS_PER_BEAT))
            off = max(int(round((n.beat + n.length) * TICKS_PER_BEAT)), on + 1)
            events.append((on, 1, mido.Message("note_on", note=n.pitch, velocity=n.velocity, channel=ch)))
            events.append((off, 0, mido.Message("note_off", note=n.pitch, velocity=0, channel=ch)))
        events.sort(key=lambda e: (e[0], e[1]))
        now = 0
        for tick, _, msg in events:
            mt.append(msg.copy(time=tick - now))
            now = tick
        mt.append(mido.MetaMessage("end_of_track", time=0))
        midi.tracks.append(mt)
    return midi
