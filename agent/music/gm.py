"""General MIDI: the program table, the drum kits, and the program each role plays.

The arranger writes these programs into ``arrangement.mid`` and the sampled voices
(:mod:`.sampled`) render exactly that file, so a DAW importing the MIDI hears the same instruments.

* :data:`GM_PROGRAM_NAMES`  the 128 melodic programs of General MIDI 1 (MIDI Manufacturers
  Association, *General MIDI System Level 1*, 1991, table 2), 0-based as sent in a Program Change.
* :data:`GM_KITS`  drum kits on channel 10 (bank 128 in a SoundFont): GM 1 defines only the
  Standard kit (program 0); Brush and TR-808 are the GS kit numbers that FluidR3_GM also carries.
  A SoundFont without them falls back to the Standard kit.
* :func:`program_for`  a role's program: ``gm_program`` in presets/lexicon.yaml, with the few
  style exceptions of :data:`STYLE_PROGRAMS` (a bowed contrabass in the orchestra, a synth bass in
  club music, a church organ in classical settings, a jazz guitar and a percussive Hammond in the
  jazz combo) and the
  sitar for the plucked part of the world ensemble.
"""
from __future__ import annotations

from functools import lru_cache

from stase.agent.music.styles import Style

GM_PROGRAM_NAMES = (
    "Acoustic Grand Piano", "Bright Acoustic Piano", "Electric Grand Piano", "Honky-tonk Piano",
    "Electric Piano 1", "Electric Piano 2", "Harpsichord", "Clavinet",
    "Celesta", "Glockenspiel", "Music Box", "Vibraphone", "Marimba", "Xylophone", "Tubular Bells",
    "Dulcimer",
    "Drawbar Organ", "Percussive Organ", "Rock Organ", "Church Organ", "Reed Organ", "Accordion",
    "Harmonica", "Tango Accordion",
    "Acoustic Guitar (nylon)", "Acoustic Guitar (steel)", "Electric Guitar (jazz)",
    "Electric Guitar (clean)", "Electric Guitar (muted)", "Overdriven Guitar", "Distortion Guitar",
    "Guitar Harmonics",
    "Acoustic Bass", "Electric Bass (finger)", "Electric Bass (pick)", "Fretless Bass",
    "Slap Bass 1", "Slap Bass 2", "Synth Bass 1", "Synth Bass 2",
    "Violin", "Viola", "Cello", "Contrabass", "Tremolo Strings", "Pizzicato Strings",
    "Orchestral Harp", "Timpani",
    "String Ensemble 1", "String Ensemble 2", "Synth Strings 1", "Synth Strings 2", "Choir Aahs",
    "Voice Oohs", "Synth Voice", "Orchestra Hit",
    "Trumpet", "Trombone", "Tuba", "Muted Trumpet", "French Horn", "Brass Section", "Synth Brass 1",
    "Synth Brass 2",
    "Soprano Sax", "Alto Sax", "Tenor Sax", "Baritone Sax", "Oboe", "English Horn", "Bassoon",
    "Clarinet",
    "Piccolo", "Flute", "Recorder", "Pan Flute", "Blown Bottle", "Shakuhachi", "Whistle", "Ocarina",
    "Lead 1 (square)", "Lead 2 (sawtooth)", "Lead 3 (calliope)", "Lead 4 (chiff)",
    "Lead 5 (charang)", "Lead 6 (voice)", "Lead 7 (fifths)", "Lead 8 (bass + lead)",
    "Pad 1 (new age)", "Pad 2 (warm)", "Pad 3 (polysynth)", "Pad 4 (choir)", "Pad 5 (bowed)",
    "Pad 6 (metallic)", "Pad 7 (halo)", "Pad 8 (sweep)",
    "FX 1 (rain)", "FX 2 (soundtrack)", "FX 3 (crystal)", "FX 4 (atmosphere)", "FX 5 (brightness)",
    "FX 6 (goblins)", "FX 7 (echoes)", "FX 8 (sci-fi)",
    "Sitar", "Banjo", "Shamisen", "Koto", "Kalimba", "Bag pipe", "Fiddle", "Shanai",
    "Tinkle Bell", "Agogo", "Steel Drums", "Woodblock", "Taiko Drum", "Melodic Tom", "Synth Drum",
    "Reverse Cymbal",
    "Guitar Fret Noise", "Breath Noise", "Seashore", "Bird Tweet", "Telephone Ring", "Helicopter",
    "Applause", "Gunshot",
)
assert len(GM_PROGRAM_NAMES) == 128

#: Channel-10 kit program for each :attr:`Style.kit`, and its name.
GM_KITS = {"acoustic": 0, "brushes": 40, "electronic": 25}
GM_KIT_NAMES = {0: "Standard kit", 40: "Brush kit", 25: "TR-808 kit"}
#: Roles whose notes are all (or, for percussion, partly) on the drum channel.
DRUM_ROLES = ("drums", "percussion", "hand_drums")

CLASSICAL = ("classical_orchestra", "chamber_music", "choir")
ELECTRONIC = ("electronic_dj", "outdoor_festival")
#: role -> {style id: program} where a style's players use another instrument of the family.
STYLE_PROGRAMS = {
    "double_bass": {s: 43 for s in CLASSICAL},          # bowed Contrabass, not jazz pizzicato
    "organ": {**{s: 19 for s in CLASSICAL}, "jazz_ensemble": 17},   # Church / Percussive Organ
    "bass": {s: 38 for s in ELECTRONIC},                # Synth Bass 1
    "electric_guitar": {"jazz_ensemble": 26},           # Electric Guitar (jazz)
}
#: Words in a track name that ask for the Indian / Middle-Eastern colour of a role in any style.
WORLD_WORDS = ("sitar", "oud", "saz", "bouzouki", "koto", "shamisen", "tabla", "darbuka", "tanpura")
WORLD_PROGRAMS = {"plucked": 104}                      # Sitar


def world_colour(track: str, style: Style) -> bool:
    """True when the style is the world ensemble or the track's name names a world instrument."""
    return style.id == "world_music_ensemble" or any(w in track.lower() for w in WORLD_WORDS)


@lru_cache(maxsize=1)
def lexicon_programs() -> dict[str, int]:
    """``{role: gm_program}`` from presets/lexicon.yaml (checked 0..127 by its schema)."""
    from stase.presets import load_lexicon
    return {role: int(spec["gm_program"]) for role, spec in load_lexicon()["roles"].items()}


def program_for(role: str, style: Style, track: str = "") -> int:
    """The melodic GM program (0-based) a role plays in a style; the piano for an unknown role."""
    if world_colour(track, style) and role in WORLD_PROGRAMS:
        return WORLD_PROGRAMS[role]
    by_style = STYLE_PROGRAMS.get(role, {})
    if style.id in by_style:
        return by_style[style.id]
    return lexicon_programs().get(role, 0)


def kit_for(style: Style) -> int:
    """The channel-10 kit program of a style's drummer."""
    return GM_KITS.get(style.kit, 0)


def voice_name(role: str, style: Style, track: str = "") -> str:
    """What the report shows for a role's sampled voice, e.g. ``GM 66 Alto Sax`` (1-based, as
    the GM table and most DAWs number programs) or ``GM Brush kit``."""
    if role == "drums":
        return f"GM {GM_KIT_NAMES.get(kit_for(style), 'kit')}"
    if role == "hand_drums" or (role == "percussion" and style.percussion != "timpani"):
        return "GM Standard kit"
    program = program_for(role, style, track)
    return f"GM {program + 1} {GM_PROGRAM_NAMES[program]}"
