"""The ten arrangement styles, one per stage template, as data.

A style says how a band in that tradition would play a short piece: tempo, key, meter, a chord
progression (Roman numerals, one bar each, cycled), the groove (16th-note step strings per bar:
``X`` accent, ``x`` normal, ``o`` ghost, ``.`` rest), swing, how loose the timing is, and which
part-writing recipe each kind of instrument uses.  The template YAML's ``music:`` block overrides
tempo, key, meter and bars; everything else comes from here.

Grooves follow the textbook patterns of each genre (rock backbeat on 2 and 4, four-on-the-floor
house kick, jazz ride "spang-a-lang" with hi-hat on 2 and 4, the Andalusian cadence i-bVII-bVI-V,
pop I-V-vi-IV); numbers for humanisation (a few ms of timing spread, tighter for electronic music)
are in the range reported for professional drummers (Hellmer & Madison 2015, ~10-20 ms SD for
amateurs, a few ms for professionals).
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Style:
    """How one tradition plays; see the module docstring for the step-string notation."""

    id: str
    tempo_bpm: float
    key: str
    meter: str
    progression: tuple[str, ...]
    instruments: tuple[str, ...]          # default roles when a template gives none
    swing: float = 0.5                    # position of the off-beat 8th in the beat, 0.5 = straight
    timing_ms: float = 8.0                # SD of humanised timing, ms
    velocity_spread: float = 8.0          # SD of humanised velocity, MIDI units
    kit: str = "acoustic"                 # acoustic | brushes | electronic
    drums: dict[str, str] = field(default_factory=dict)   # GM drum name -> 16-step string
    hand_drums: str = "L..sH.s.L.ssH.s."  # L low open, H high open, s slap, m muted
    percussion: str = "shaker"            # shaker | timpani | tambourine | mallets
    bass: str = "pop"                     # walking | roots8 | offbeat | half | pop | tumbao
    comp: str = "block"                   # block | strum | comping | arpeggio | power | stabs
    comp_steps: str = "x...x...x...x..."  # rhythm of block / stab / strum chords
    melody_density: float = 1.5           # mean notes per beat of the lead
    pump: bool = False                    # side-chain ducking of pads and bass on each beat
    vowel: str = "a"


STYLES: dict[str, Style] = {s.id: s for s in (
    Style("classical_orchestra", 92, "D major", "4/4",
          ("I", "vi", "IV", "V", "I", "IV", "V7", "I"),
          ("violins", "violas", "cellos", "double_bass", "woodwinds", "brass", "percussion"),
          timing_ms=12, velocity_spread=6, percussion="timpani", bass="half", comp="arpeggio",
          melody_density=1.0, drums={"kick": "x...............", "snare": "................"}),
    Style("jazz_ensemble", 138, "Bb major", "4/4",
          ("I7", "vi7", "ii7", "V7", "iii7", "vi7", "ii7", "V7"),
          ("saxophone", "trumpet", "piano", "double_bass", "drums"),
          swing=0.64, timing_ms=9, velocity_spread=10, kit="brushes",
          drums={"ride": "x...x.x.x...x.x.", "hihat_pedal": "....x.......x...",
                 "kick": "o...o...o...o...", "snare": "........o.....o."},
          bass="walking", comp="comping", melody_density=1.8, percussion="shaker"),
    Style("rock_band", 118, "E minor", "4/4", ("i", "VI", "III", "VII"),
          ("lead_vocal", "electric_guitar", "bass", "drums", "organ"),
          timing_ms=6, velocity_spread=7,
          drums={"kick": "x.......x.x.....", "snare": "....X.......X...",
                 "hihat": "x.x.x.x.x.x.x.x."},
          bass="roots8", comp="power", comp_steps="x.x.x.x.x.x.x.x.", melody_density=1.4),
    Style("chamber_music", 100, "G major", "3/4",
          ("I", "IV", "V", "I", "vi", "ii", "V7", "I"),
          ("violins", "violas", "cellos", "piano"),
          timing_ms=12, velocity_spread=6, bass="half", comp="arpeggio", melody_density=1.2,
          percussion="timpani", drums={"kick": "x...........", "snare": "............"}),
    Style("electronic_dj", 124, "A minor", "4/4", ("i", "VI", "III", "VII"),
          ("drums", "bass", "synth_pad", "synth_lead", "percussion"),
          timing_ms=0.0, velocity_spread=4, kit="electronic",
          drums={"kick": "X...X...X...X...", "clap": "....x.......x...",
                 "hihat": "..x...x...x...x.", "hihat_closed16": "o.o.o.o.o.o.o.o."},
          bass="offbeat", comp="stabs", comp_steps="..x...x...x...x.", melody_density=1.6,
          pump=True, percussion="shaker"),
    Style("choir", 68, "F major", "4/4", ("I", "IV", "vi", "V", "IV", "I", "V", "I"),
          ("choir", "organ"),
          timing_ms=10, velocity_spread=5, bass="half", comp="block", melody_density=0.8,
          percussion="timpani", vowel="a"),
    Style("solo_performance", 84, "C major", "4/4", ("I", "vi", "IV", "V", "I", "iii", "IV", "V7"),
          ("piano",),
          timing_ms=12, velocity_spread=8, bass="half", comp="arpeggio", melody_density=1.2,
          percussion="shaker"),
    Style("world_music_ensemble", 100, "D minor", "4/4", ("i", "VII", "VI", "V"),
          ("hand_drums", "plucked", "flute", "double_bass", "percussion"),
          timing_ms=9, velocity_spread=10, hand_drums="L..sH.s.L.ssH.sm",
          drums={"kick": "x.....x...x.....", "snare": "....x.......x..."},
          bass="tumbao", comp="arpeggio", melody_density=1.7, percussion="shaker"),
    Style("studio_recording", 96, "G major", "4/4", ("I", "V", "vi", "IV"),
          ("lead_vocal", "backing_vocals", "acoustic_guitar", "piano", "bass", "drums"),
          timing_ms=5, velocity_spread=7,
          drums={"kick": "x......x..x.....", "snare": "....x.......x...",
                 "hihat": "xoxoxoxoxoxoxoxo"},
          bass="pop", comp="strum", comp_steps="x...x.x...x.x.x.", melody_density=1.3,
          vowel="o"),
    Style("outdoor_festival", 128, "F major", "4/4", ("vi", "IV", "I", "V"),
          ("lead_vocal", "synth_lead", "brass", "bass", "drums", "backing_vocals"),
          timing_ms=3, velocity_spread=6, kit="acoustic",
          drums={"kick": "X...X...X...X...", "snare": "....X.......X...",
                 "hihat": "..x...x...x...x.", "crash_bar": "x..............."},
          bass="offbeat", comp="stabs", comp_steps="x..x..x...x.x...", melody_density=1.4,
          pump=False),
)}

#: Words in a free-form style or genre name -> our style id (for plan.music["style"]).
STYLE_WORDS = {
    "orchestra": "classical_orchestra", "orchestral": "classical_orchestra",
    "classical": "classical_orchestra", "symphon": "classical_orchestra", "film": "classical_orchestra",
    "jazz": "jazz_ensemble", "swing": "jazz_ensemble", "bebop": "jazz_ensemble", "blues": "jazz_ensemble",
    "rock": "rock_band", "punk": "rock_band", "metal": "rock_band", "grunge": "rock_band",
    "chamber": "chamber_music", "quartet": "chamber_music", "baroque": "chamber_music",
    "electronic": "electronic_dj", "techno": "electronic_dj", "house": "electronic_dj",
    "edm": "electronic_dj", "dj": "electronic_dj", "trance": "electronic_dj", "synth": "electronic_dj",
    "choir": "choir", "choral": "choir", "gospel": "choir", "a cappella": "choir", "hymn": "choir",
    "solo": "solo_performance", "recital": "solo_performance", "ballad": "solo_performance",
    "world": "world_music_ensemble", "flamenco": "world_music_ensemble", "folk": "world_music_ensemble",
    "latin": "world_music_ensemble", "afro": "world_music_ensemble", "indian": "world_music_ensemble",
    "studio": "studio_recording", "pop": "studio_recording", "singer": "studio_recording",
    "acoustic": "studio_recording", "festival": "outdoor_festival", "anthem": "outdoor_festival",
    "stadium": "outdoor_festival", "dance": "outdoor_festival",
}


def resolve_style(name: str | None, fallback: str = "studio_recording") -> Style:
    """The style for a template id, a style id or a genre word ("bebop", "techno ...")."""
    if not name:
        return STYLES[fallback]
    key = str(name).strip().lower().replace("-", "_").replace(" ", "_")
    if key in STYLES:
        return STYLES[key]
    text = str(name).lower()
    for word, style_id in STYLE_WORDS.items():
        if word in text:
            return STYLES[style_id]
    return STYLES[fallback]
