"""``generate_stems``: a music description -> one mono stem per instrument.

The description is ``plan.music`` (see docs/CONTRACTS.md) or just a template id.  Missing fields
come from the template's ``music:`` block (presets/templates/*.yaml), then from the style's
defaults (:mod:`.styles`).  The arranger writes a MIDI file, the voices render each part (the
built-in synth by default, or sampled General MIDI instruments through FluidSynth: see
:mod:`.voices`), and the mixer sets levels.  The result is deterministic for a seed and every stem
has exactly ``round(bars * beats_per_bar * 60 / tempo_bpm * sample_rate)`` samples.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from stase.core.errors import InputError
from stase.core.rates import check_sample_rate

from stase.agent.music.arranger import Arrangement, arrange
from stase.agent.music.mixing import balance
from stase.agent.music.styles import STYLES, Style, resolve_style
from stase.agent.music.theory import Key, chord_from_numeral, parse_key, parse_meter
from stase.agent.music.voices import choose_voices

#: The 24 roles of docs/CONTRACTS.md (lexicon roles = template roles = generator voices).
ROLES = ("lead_vocal", "backing_vocals", "choir", "drums", "percussion", "hand_drums", "bass",
         "double_bass", "electric_guitar", "acoustic_guitar", "piano", "organ", "synth_lead",
         "synth_pad", "violins", "violas", "cellos", "strings", "brass", "trumpet", "saxophone",
         "woodwinds", "flute", "plucked")
#: A progression per mode, used when a style's progression would give a diminished triad there.
MODE_PROGRESSIONS = {
    "major": ("I", "V", "vi", "IV"), "minor": ("i", "VI", "III", "VII"),
    "dorian": ("i", "IV", "i", "VII"), "mixolydian": ("I", "VII", "IV", "I"),
    "phrygian": ("i", "II", "VII", "i"), "lydian": ("I", "II", "I", "V"),
}
TEMPO_RANGE = (30.0, 300.0)
MAX_BARS = 512


@dataclass
class MusicSpec:
    """A resolved description: everything the arranger needs, no gaps."""

    template: str | None
    style: Style
    key: Key
    tempo_bpm: float
    bars: int
    beats_per_bar: int
    tracks: list[tuple[str, str]]   # (track name, role)

    @property
    def duration_s(self) -> float:
        return self.bars * self.beats_per_bar * 60.0 / self.tempo_bpm

    def n_samples(self, sample_rate: int) -> int:
        return int(round(self.duration_s * sample_rate))


def _templates() -> dict[str, dict]:
    from stase.presets import load_templates
    return load_templates()


def _role_for(track: str, role: Any) -> str:
    """A valid role for a track: its own if valid, else the lexicon's guess, else a piano."""
    if isinstance(role, str) and role in ROLES:
        return role
    from stase.agent.lexicon import match_track_role
    for text in (role, track):
        if isinstance(text, str):
            guess = match_track_role(text)
            if guess in ROLES:
                return guess
    return "piano"


def _tracks_from(instruments: Any) -> list[tuple[str, str]]:
    if not isinstance(instruments, list):
        raise InputError(f"music.instruments must be a list of {{track, role}} or role names, got {instruments!r}")
    tracks: list[tuple[str, str]] = []
    for i, item in enumerate(instruments):
        if isinstance(item, str) and item.strip():
            tracks.append((item, _role_for(item, item)))
        elif isinstance(item, dict) and isinstance(item.get("track") or item.get("role"), str):
            name = str(item.get("track") or item.get("role"))
            tracks.append((name, _role_for(name, item.get("role"))))
        else:
            raise InputError(f"music.instruments[{i}]: need a role name or {{'track': ..., 'role': ...}}, got {item!r}")
    names = [t.lower() for t, _ in tracks]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InputError(f"music.instruments: track names must be unique, repeated: {duplicates}")
    return tracks


def _seats(template: dict) -> list[tuple[str, str]]:
    return [(seat.get("name") or seat["role"], seat["role"]) for seat in template["roles"]]


def resolve_music(music: dict | str) -> MusicSpec:
    """Fill a description from its template and style; ``InputError`` for anything unusable."""
    templates = _templates()
    if isinstance(music, str):
        if music in templates:
            music = {"template": music}
        elif music.strip().lower().replace(" ", "_") in STYLES:
            music = {"style": music}
        else:
            raise InputError(f"unknown template {music!r}; known: {', '.join(sorted(templates) or STYLES)}")
    if not isinstance(music, dict):
        raise InputError(f"music must be a dict (plan.music) or a template id, got {type(music).__name__}")
    template_id = music.get("template")
    template = templates.get(template_id) if isinstance(template_id, str) else None
    defaults = dict((template or {}).get("music") or {})
    if isinstance(template_id, str) and template_id in STYLES:
        style = STYLES[template_id]
    else:
        style = resolve_style(music.get("style") or defaults.get("style") or template_id)

    def pick(name: str, fallback: Any) -> Any:
        value = music.get(name)
        return value if value is not None else defaults.get(name, fallback)

    tempo = pick("tempo_bpm", style.tempo_bpm)
    if isinstance(tempo, bool) or not isinstance(tempo, (int, float)) or not TEMPO_RANGE[0] <= tempo <= TEMPO_RANGE[1]:
        raise InputError(f"music.tempo_bpm must be a number in {TEMPO_RANGE}, got {tempo!r}")
    bars = pick("bars", 8)
    if isinstance(bars, bool) or not isinstance(bars, int) or not 1 <= bars <= MAX_BARS:
        raise InputError(f"music.bars must be an integer 1..{MAX_BARS}, got {bars!r}")
    beats, _unit = parse_meter(pick("meter", style.meter))
    key = parse_key(pick("key", style.key))
    instruments = music.get("instruments")
    if instruments:
        tracks = _tracks_from(instruments)
    elif template is not None:
        tracks = _seats(template)
    else:
        tracks = [(r, r) for r in style.instruments]
    return MusicSpec(template_id if isinstance(template_id, str) else None, style, key,
                     float(tempo), bars, beats, tracks)


def progression_for(style: Style, key: Key) -> tuple[str, ...]:
    """The style's progression, or the mode's own when the style's would sound wrong in this key."""
    for numeral in style.progression:
        chord = chord_from_numeral(key, numeral)
        if len(chord.tones) == 3 and (chord.tones[2] - chord.tones[0]) % 12 == 6:
            return MODE_PROGRESSIONS.get(key.mode, MODE_PROGRESSIONS["major"])
    return style.progression


def arrange_music(music: dict | str, seed: int = 0) -> tuple[MusicSpec, Arrangement]:
    """Resolve the description and write the arrangement (the MIDI file) without rendering audio."""
    spec = resolve_music(music)
    arrangement = arrange(spec.tracks, spec.style, spec.key, spec.tempo_bpm, spec.bars,
                          spec.beats_per_bar, seed=seed, progression=progression_for(spec.style, spec.key))
    return spec, arrangement


def render_arrangement(spec: MusicSpec, arrangement: Arrangement, sample_rate: int, seed: int = 0,
                       progress=None, voices="synth") -> dict[str, np.ndarray]:
    """Render every part and balance the stems; ``progress(track)`` is called after each.

    ``voices``: a name of :data:`.voices.VOICE_CHOICES` or a voice set from
    :func:`.voices.choose_voices`.
    """
    if isinstance(voices, str):
        voices = choose_voices(voices)
    raw = voices.render(spec, arrangement, sample_rate, seed, progress)
    return balance(raw, dict(spec.tracks), sample_rate)


def _check_rate_seed(sample_rate: Any, seed: Any) -> None:
    check_sample_rate(sample_rate, "sample_rate")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"seed must be a non-negative integer, got {seed!r}")


def generate_stems(music: dict | str, sample_rate: int = 48000, seed: int = 0, voices: str = "synth",
                   soundfont: str | None = None) -> dict[str, np.ndarray]:
    """One mono float32 stem per instrument of ``music`` (plan.music or a template id).

    Parameters
    ----------
    music : ``{"template", "style", "tempo_bpm", "key", "bars", "meter", "instruments":
        [{"track", "role"}, ...]}`` (any field may be missing) or a template id such as
        ``"jazz_ensemble"``.
    sample_rate : Hz, any integer rate 8000..384000.
    seed : the same seed gives the same stems, bit for bit.
    voices : ``"synth"`` (default: the built-in voices, the same on every machine), ``"sampled"``
        (General MIDI instruments through FluidSynth; ``InputError`` when it is not installed) or
        ``"auto"`` (sampled when installed, else synth).  See :mod:`stase.agent.music.voices`.
    soundfont : a SoundFont 2 file for the sampled voices instead of the installed FluidR3_GM.

    Returns
    -------
    ``{track: float32 1-D array}`` in the order of the instruments, all
    ``round(bars * beats_per_bar * 60 / tempo_bpm * sample_rate)`` samples long, peaks under
    -1 dBFS and their sum under -3 dBFS.
    """
    _check_rate_seed(sample_rate, seed)
    chosen = choose_voices(voices, soundfont)
    spec, arrangement = arrange_music(music, int(seed))
    return render_arrangement(spec, arrangement, int(sample_rate), int(seed), voices=chosen)
