"""Deterministic parser for explicit spatial cues in English prompts.

Holds
-----
* :func:`parse_prompt` -> :class:`ParseResult`: which session tracks the prompt mentions, the
  spatial cues attached to each (absolute or relative azimuth / elevation / distance / gain, a
  ``±`` spread, a swap or a mirror), tempo/key/bars and a room named in the prompt.
* :data:`MAX_PROMPT_CHARS` (4000) and :func:`check_prompt_text`: the one check of a prompt's type
  and length (the conductor uses it too).
* The rule table and phrase tables live in :mod:`stase.agent.parser_rules` (re-exported here):
  rules as data with a stated precedence, numbers > named positions > hedges > template.
* Anchors ("just right of the piano"), whole-plan wetness ("drenched in reverb" in a clause
  naming no track: ``ParseResult.plan_values``) and one-letter sides kept out of track names.
* Misspelt spatial words corrected before the rules run (:func:`correct_spelling`, never a
  track's or an alias's own word); impossible values (``ParseResult.impossible``); a word that
  names no track standing before a cue is an absent instrument (:func:`_take_unplaced_word`);
  a cue said before a list of tracks is the whole list's (:func:`_join_lists`).
* Swaps ("swap / trade / flip the positions of A and B", one name for a pair: "swap the
  guitars", or said after the pair: "A and B swap over", "put A where B is and vice versa", or as
  crossed places: "A where B is, and B where A is", "A in B's spot and B in A's":
  :func:`_find_crossed_places`) and mirrors ("mirror", "flip", "put the harp on the other side").
  A possessive names its track ("the tpt's spot").
* Round 6 (issue 16): complaints are directions, read from the table the agent reads too
  (:mod:`stase.agent.parser_complaints`: "too far away" is a step closer, never 12 m; a state said
  with a verb, "the sitar sounds distant", only when ``parse_prompt(..., edit=True)``, the
  conductor's edit path); where a track is now ("it drifted right", "feels like they're on the
  ceiling", "the wrong way round") is blanked in an edit (:func:`stase.agent.parser_rules.blank_present_state`);
  "change places", inflected swap verbs, a partner after "with" and a pair said before the verb
  ("sitar swaps with the flute", "the toms ..., swap em"); one track that "changes sides" is
  mirrored; a word that finds no track names its kin (:func:`_kin_tracks`: "tenor" -> "Tenor
  Sax", "basses" -> "Bass", "bass" -> a double bass); "+" joins a list; "acoustic" at the end of
  a noun phrase is the instrument (:data:`NOUN_AT_PHRASE_END`); "the mic track" names the one
  track holding "mic"; an alias phrase ending in "in" / "out" before a determiner is prose ("the
  kick in the dead centre"); a hedged place beside a step of the same quantity is the step in an
  edit ("drop it down a little, below ear height") and the place in a new plan.
* Round 7 (issue 16): the edit vocabulary as data (:mod:`stase.agent.parser_vocabulary`, whose
  docstring maps how a request becomes a change and where each stage can go wrong): one size
  table, direction synonyms, negations as the opposite step, "track 4" of a numbered session,
  drum parts ("the overheads" are "OH L" / "OH R", not the kit: :func:`stase.agent.parser_vocabulary.part_tracks`),
  ordinals ("the 2nd violin" is "Vln 2"), all rewritten before the rules run.  In an edit a
  complaint is the reason when the request says a change of the same quantity for the same
  track (:func:`_complaints_give_way`; "buried" / "getting lost" give way to any change), a side
  said beside a mirror is where the mirror takes the track (:func:`_mirrored_sides_give_way`),
  an unsigned number beside a step is the step's size ("further right, maybe 20 degrees more"),
  "mirror everything except X" leaves X, and a mirror naming no track takes the one named before
  it in its sentence ("organ belongs on the right, mirror it over").
* Round 8 (issue 16): mechanisms, not phrases.  Track names beyond the full name
  (:mod:`stase.agent.parser_names`: a word of one track's own name or an abbreviation either
  way, "electric" / "Elec Gtr", "vla" / "Viola", "dialogue" / "Dlg"; a two-word name said the
  other way round; "gtr 1 and 2", "Amb L/R", "g1", a bare "II" of a numbered pair; a family's
  plural, "both guitars", "the brass"; a section's word without its soloist; "the phone guest"
  as one noun phrase; a multi-word name's words are never rule words, "open hat").  Pronouns: a
  later clause's "it" is the clause subject, never the object of a preposition, a comparison or a
  pronoun-led clause (:func:`stase.agent.parser_names.object_mention`).  Producers' idioms
  (:mod:`stase.agent.parser_idioms`: size adjectives read by the quantity a noun names, "more
  near", "volume too small, please big a little"; non-native word orders; negated places; mirror,
  swap, distance and self-correction words), chat spellings and "decibels" in
  :func:`stase.agent.parser_rules.normalise_text`.  In an edit a direction before its number is a
  move by it ("down 10 degrees"), a distance beside a distance step is its size, "N degrees each"
  takes the way of the clause's width step, a place and a move said for one track are the move,
  a vague side of a swapped track is the swap's, a mirror said twice is one, "the same" copies
  the cue before it, tracks after "leave" / "keep" leave a group's cue, and a word after a
  copula ("is the voice of") names no missing track.

Cost: linear in the text.  No pattern may rescan the text from every position (a leading
unbounded ``[^.;!?]*``, a lazy scan that another start of the same phrase could repeat, two
adjacent optional whitespace runs that can split one run of spaces, a digit run entered
mid-run); phrase lists are tries; every lookup of "which mention / clause / expression holds
this position" is a bisection.  The constant is kept small: a rule (or a clause break, a music
or swap pattern) runs only on a text holding its trigger words, found by C-speed substring
searches (:class:`_Vocabulary`); what depends on a word alone (its alias, its close spelling,
an expression's fields) is worked out once per distinct word; passes over all words run in C
(split, ``map``, ``compress``); the cycle collector pauses during a parse.
tests/test_hardening_plan.py parses 100 kB of hostile text of each kind in under 100 ms; a text
dense with every kind of cue still runs every rule over it (about 4 ms per kB), which the
length cap bounds.

Conventions (:mod:`stase.core.conventions`): azimuth in degrees, 0 = front, **positive = left**; clock
positions are seen from above with 12 o'clock in front, so 3 o'clock = -90 (right), 9 = +90.
"Stage left" is the performer's left, i.e. the audience's right (negative azimuth).

How cues find their track: the prompt is cut into clauses (punctuation, "and", "while", ...); a
clause's cues go to the mentions in it (nearest preceding mention when there are several); a
clause with cues but no mention lends them to its neighbour; a bare list ("the guitar and the keys
on the left") shares one cue.  Every cue keeps the words it came from (provenance).
"""
from __future__ import annotations

import bisect
import difflib
import gc
import re
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import accumulate, compress, groupby, repeat
from operator import attrgetter, itemgetter, le, lt, not_, sub
from typing import Any, Callable

from stase.core.errors import InputError
from stase.core.placement import MAX_PROMPT_CHARS

from stase.agent.lexicon import (FUZZY_MIN_LENGTH, MARKER_WORDS, NAMEABLE_MARKERS, AliasHit, Lexicon, get_lexicon, may_be_close,
                      normalise_words)

# The longest prompt accepted (characters) is stase.core.placement.MAX_PROMPT_CHARS, the one limit the
# daemon also checks at its boundary: it bounds the time a parse can hold the interpreter.

from stase.agent.parser_rules import (  # noqa: F401 - the rule table and phrase tables live there
    DIAGONAL_DEG, DISTANCE_WORDS_M, FEET_TO_M, HEDGES, NAMED, NUMBER, HEDGED, OF_CENTRE_DEG, PLAIN_SIDE_DEG,
    PLACE_FILLER, PRECEDENCE_NAMES, REAR_DIAGONAL_DEG, RULES, STEPS, Rule, Vocabulary, blank_present_state, correct_spelling,
    normalise_text, number)
from stase.agent.parser_rules import _SMALL_NUMBERS
from stase.agent.parser_names import (choir_roles, numbered_list_words, object_mention, own_word_tracks, reversed_pair_track,
                                      section_tracks)
from stase.agent.parser_vocabulary import canonical_words, ordinal_words, part_tracks, part_words, track_number_words

#: Number words ("twenty", "half"): never an instrument's name
_NUMBER_WORDS = frozenset(w for phrase in _SMALL_NUMBERS for w in phrase.replace("-", " ").split())

#: Older name of the rule table (tests and tools read it).
_RULES = RULES
_Vocabulary = Vocabulary

#: Prose words that are aliases only inside a track name ("the key of D", "lead the way").
PROSE_SKIP = frozenset({
    "lead", "key", "beat", "beats", "break", "mc", "ag", "eg", "ep", "db", "dr", "sn", "sd", "bd", "oh",
    "lv", "va", "vl", "vn", "cl", "ob", "fg", "hp", "tp", "fl", "bs", "hn", "gt", "pn", "cb",
    "string", "grand", "ride", "crash", "clap", "bells", "harmony", "backing", "acoustic", "electric",
    "upright", "sub", "org", "tom", "hat", "arp", "hook", "texture", "textures", "atmosphere", "ambience",
    "ambient", "drone", "swell", "swells", "doubles", "recorder", "whistle", "triangle", "syn", "kbd",
    "trb", "tba", "sop", "break", "voices", "singers", "rap", "hats", "horn", "va", "tpt", "soundscape",
    "harm", "ww", "winds", "reeds", "sub", "bones", "break", "mallets", "chimes", "gong", "ohs", "vcl",
    "voc", "trp",
})


# ------------------------------------------------------------------------------------------------
# Data
# ------------------------------------------------------------------------------------------------
@dataclass(slots=True)   # slots: a 100 kB prompt can hold ten thousand cues and mentions
class Cue:
    """One spatial statement about one or more tracks.

    ``values`` holds absolute settings (``azimuth_deg``, ``elevation_deg``, ``distance_m``,
    ``gain_db``); ``relative`` holds changes to apply to the track's current or template place
    (``azimuth_deg`` as a lateral shift towards the left when positive, ``distance_scale``,
    ``distance_m``, ``elevation_deg``, ``gain_db``); ``spread_deg`` spreads a group symmetrically.
    """

    text: str
    start: int
    end: int
    values: dict[str, float] = field(default_factory=dict)
    relative: dict[str, float] = field(default_factory=dict)
    spread_deg: float | None = None
    tracks: list[str] = field(default_factory=list)
    #: absolute reading of a relative phrase, used when there is no current plan ("5 m back")
    fallback: dict[str, float] = field(default_factory=dict)
    #: relative reading used in an edit instead of ``values`` ("a bit to the left": +5 deg)
    edit_relative: dict[str, float] = field(default_factory=dict)
    #: a place relative to another track: (relation, anchor track); relation is "left", "right"
    #: (of the anchor), "next", "opposite" or "same_side"
    anchor: tuple[str, str] | None = None
    #: the precedence class each value came from (quantity -> "number" / "named position" / "hedge")
    precedence: dict[str, str] = field(default_factory=dict)
    #: the relative quantities a complaint gave ("too narrow": ``width_deg``); in an edit a change
    #: of the same quantity said elsewhere in the request for the same track counts instead
    complaint: tuple[str, ...] = ()

    def kinds(self) -> set[str]:
        k = set(self.values) | set(self.relative)
        k.discard("reverb_db")
        if "distance_scale" in k:
            k.discard("distance_scale")
            k.add("distance_m")
        if "width_deg" in k:
            k.discard("width_deg")
            k.add("azimuth_deg")
        if self.spread_deg is not None or self.anchor is not None:
            k.add("azimuth_deg")
        return k


@dataclass(slots=True)
class Mention:
    """Words in the prompt naming session tracks (or, when ``tracks`` is empty, an instrument the
    session lacks: ``role``)."""

    text: str
    start: int
    end: int
    tracks: list[str]
    role: str | None = None
    how: str = "name"


@dataclass
class ParseResult:
    """Everything the parser understood, with the words each piece came from."""

    prompt: str
    cues: list[Cue] = field(default_factory=list)
    mentions: list[Mention] = field(default_factory=list)
    unknown: list[Mention] = field(default_factory=list)   # instrument mentions with cues but no track
    swaps: list[tuple[str, str, str]] = field(default_factory=list)  # (track_a, track_b, text)
    mirrors: list[tuple[list[str], str]] = field(default_factory=list)
    music: dict[str, object] = field(default_factory=dict)
    room_words: list[str] = field(default_factory=list)
    #: the prompt without its cue and mention words: what is left to describe a setting
    residual: str = ""
    #: clauses that order a placement ("put ... hard left") but name no session track
    orphans: list[str] = field(default_factory=list)
    #: whole-plan settings said in a clause naming no track: quantity -> (value, the words)
    #: (``reverb_db`` from "drenched in reverb", "keep it dry")
    plan_values: dict[str, tuple[float, str]] = field(default_factory=dict)
    #: values no placement can hold, as (the words, the bound they break): "150% left"
    impossible: list[tuple[str, str]] = field(default_factory=list)

    @property
    def has_cues(self) -> bool:
        return bool(self.cues or self.swaps or self.mirrors)

    def cues_for(self, track: str) -> list[Cue]:
        return [c for c in self.cues if track in c.tracks]


# ------------------------------------------------------------------------------------------------
# Music and room words
# ------------------------------------------------------------------------------------------------
_TEMPO = re.compile(r"\b(\d{2,3}(?:\.\d+)?)\s*bpm\b|\btempo\s+(?:of\s+)?(\d{2,3})\b")
_KEY = re.compile(r"\bin\s+(?:the\s+key\s+of\s+)?([a-g])(\s*+#|\s*+b(?![a-z])|\s*+-?\s*+sharp|\s*+-?\s*+flat)?\s*+(major|minor|maj|min|dorian|mixolydian|phrygian|lydian)\b")
_BARS = re.compile(r"\b(\d{1,3})\s*(?:bars|measures)\b")


def parse_music(text: str) -> dict[str, object]:
    """Tempo (bpm), key ("D minor") and bar count named in a normalised prompt."""
    out: dict[str, object] = {}
    # each search only where its words occur: a pattern opening with \b is tried at every position
    m = _TEMPO.search(text) if "bpm" in text or "tempo" in text else None
    if m:
        out["tempo_bpm"] = float(m.group(1) or m.group(2))
    m = _KEY.search(text) if any(mode in text for mode in ("maj", "min", "dorian", "lydian", "phrygian")) else None
    if m:
        acc = (m.group(2) or "").strip().replace("-", "").replace(" ", "")
        acc = {"#": "#", "sharp": "#", "b": "b", "flat": "b"}.get(acc, "")
        mode = {"maj": "major", "min": "minor"}.get(m.group(3), m.group(3))
        out["key"] = f"{m.group(1).upper()}{acc} {mode}"
    m = _BARS.search(text) if "bars" in text or "measures" in text else None
    if m:
        out["bars"] = int(m.group(1))
    return out


# ------------------------------------------------------------------------------------------------
# Mentions
# ------------------------------------------------------------------------------------------------
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_ALL_TRACKS = re.compile(r"\b(?:everything|everybody|everyone|every track|all(?: the)? tracks|all instruments|all of them|the whole mix)\b")
_ORDER_VERBS = re.compile(r"\b(?:put|place|move|pan|push|bring|set|position|sit|seat)\b")


_WORD_SPLIT = re.compile(f"({_WORD.pattern})")


def _word_spans(text: str) -> list[tuple[str, int, int]]:
    words, starts, ends = _words_of(text)
    return list(zip(words, starts, ends))


def _words_of(text: str, parts: list[str] | None = None) -> tuple[list[str], list[int], list[int]]:
    """The words of a normalised text and where each starts and ends (character offsets);
    ``parts`` is ``_WORD_SPLIT.split(text)`` when the caller has it.

    One split and one running sum, both in C: a 100 kB text of one-letter words has 50,000 of
    them, and a match object per word would cost more than the rest of the parse.
    """
    if parts is None:
        parts = _WORD_SPLIT.split(text)      # gap, word, gap, word, ..., gap
    offsets = list(accumulate(map(len, parts), initial=0))
    words = parts[1::2]
    return words, offsets[1::2][:len(words)], offsets[2::2]


def _words_outside(text: str, blocked: list[tuple[int, int]],
                   parts: list[str] | None = None) -> tuple[list[str], list[int], list[int]]:
    """:func:`_words_of` without the words starting inside a ``blocked`` span: one slice
    assignment per span and one look-up per word, both in C."""
    words, starts, ends = _words_of(text, parts)
    if not blocked:
        return words, starts, ends
    inside = bytearray(len(text) + 1)
    for a, b in blocked:
        inside[a:b] = b"\x01" * (b - a)
    if not words:
        return words, starts, ends
    keep = list(map(not_, itemgetter(*starts)(inside))) if len(starts) > 1 else [not inside[starts[0]]]
    return list(compress(words, keep)), list(compress(starts, keep)), list(compress(ends, keep))


def _where(words: list[str], wanted) -> list[int]:
    """The indices of the words that are in ``wanted`` (a set or dict), found in C."""
    return list(compress(range(len(words)), map(wanted.__contains__, words)))


def _track_side(name: str) -> int:
    words = normalise_words(name)
    if any(w in ("l", "left") for w in words):
        return 1
    if any(w in ("r", "right") for w in words):
        return -1
    return 0


def _kin_tracks(alias: str, tracks: list[str], roles: dict[str, str | None],
                track_words: dict[str, list[str]]) -> list[str]:
    """The session tracks a one-word alias names when no track plays its role, or when it found
    several tracks none of which holds it (round 6): a track whose own name holds the word or
    an abbreviation of it ("tenor" -> "Tenor Sax" although "tenor" is a choir voice, "tenors" ->
    "Ten", "basses" -> "Bass"), else the tracks whose role is a kind of it ("bass" -> the upright
    of role ``double_bass``, "guitar" -> an ``acoustic_guitar``)."""
    if " " in alias or len(alias) < 3:
        return []
    own = [t for t in tracks if any(w == alias or (len(w) >= 3 and alias.startswith(w) and w not in MARKER_WORDS
                                                    and not w.isdigit()) for w in track_words[t])]
    if len(own) > 1:   # "sopranos" among "Sop" and "Solo Sop": the section, not its soloist (round 8)
        own = section_tracks(own, track_words) or own
    if own:
        return own
    own = own_word_tracks(alias, track_words, frozenset(), _OWN_WORD_SKIP)   # "altos" for a choir's "Alt"
    if own:
        return own
    said = {alias, alias[:-1]} if alias.endswith("s") and len(alias) > 3 else {alias}   # "basses", "bass"
    return [t for t in tracks if roles.get(t) and said & set(roles[t].split("_"))]


#: Words that are an instrument only at the end of a noun phrase ("swap keys and acoustic",
#: "keys and acoustic, narrower"), never before a noun ("an acoustic space", "an upright piano"
#: is read whole): in prose they are skipped (:data:`PROSE_SKIP`) except there (round 6).
NOUN_AT_PHRASE_END = frozenset({"acoustic", "electric", "upright", "grand", "harmony", "backing", "recorder"})
_PHRASE_END_AFTER = re.compile(r"\s*(?:$|[,.;!?+&\d]|\b(?:and|or|with|please|pls|left|right|cent(?:re|er)|middle|behind"
                               r"|closer|further|louder|quieter|wider|narrower|up|down)\b)")
#: "the mic track", "the di channel": a word of one track's name before "track" / "channel"
_TRACK_NOUNS = frozenset({"track", "channel"})


#: Last words of an alias phrase that are prepositions in prose ("Kick In" is a DAW name; "the kick
#: in the centre" is the kick and a place): before a determiner the phrase is not read, unless a
#: session track is named with the whole phrase.
_PREPOSITION_TAILS = frozenset({"in", "out"})
_PLACE_AFTER = re.compile(r"\s+(?:the|a|an|my|your|our|this|that|front|there|here)\b")


def _instrument_words(lexicon: Lexicon) -> frozenset[str]:
    """The words the lexicon knows as instruments (its aliases' words and the prose-only ones),
    worked out once per lexicon."""
    known = getattr(lexicon, "_instrument_words", None)
    if known is None:
        known = frozenset(lexicon.alias_words | PROSE_SKIP)
        try:
            lexicon._instrument_words = known
        except AttributeError:   # a lexicon with slots: asked again next time
            pass
    return known


def find_mentions(text: str, tracks: list[str], roles: dict[str, str | None], lexicon: Lexicon,
                  blocked: list[tuple[int, int]] = ()) -> tuple[list[Mention], list[Mention]]:
    """Mentions of session tracks in a normalised prompt: (mentions, mentions of absent roles).

    Order of trust: a track's full name; a lexicon alias whose role a track plays (or whose family
    one plays: "strings" finds violins and cellos); a close spelling of a track's own word.
    ``blocked`` spans (spatial expressions) are never read as mentions ("left" in "Gtr L").

    Cost: a few passes over the words in C, then work per distinct word and per mention; what
    depends only on a word (its alias, its close spelling) is asked once per distinct word.
    """
    parts = _WORD_SPLIT.split(text)
    distinct = set(parts[1::2])
    track_words = {t: normalise_words(t) for t in tracks}
    if not (any(len(w) >= 4 for w in distinct)   # a fuzzy alias or a close spelling needs 4 letters
            or {w for tw in track_words.values() for w in tw} & distinct
            or lexicon.phrase_lengths(distinct)
            or (tracks and any(word in text for word in ("every", "all", "whole")))):
        return [], []   # no word of the text can name a track or an instrument: skip the passes
    words, starts, ends = _words_outside(text, sorted(blocked), parts)
    distinct = set(words)
    instruments = _instrument_words(lexicon)
    taken = [False] * len(words)
    mentions: list[Mention] = []
    absent: list[Mention] = []

    def add(i: int, j: int, found: list[str], how: str, role: str | None = None) -> None:
        mentions.append(Mention(text[starts[i]:ends[j - 1]], starts[i], ends[j - 1], found, role, how))
        taken[i:j] = [True] * (j - i)

    playing: dict[str, list[str]] = {}

    def tracks_playing(role: str) -> list[str]:
        if role not in playing:
            playing[role] = [t for t in tracks if roles.get(t) == role]
        return list(playing[role])

    families = {r: spec["family"] for r, spec in lexicon.roles.items()}
    # 0. multi-word instrument phrases a track plays ("the upright bass" beats a track named "Upright")
    def contiguous(i: int, j: int) -> bool:
        """Words ``i..j-1`` stand next to each other in the text (no cue words or punctuation
        between them: "bass 40 degrees left, gtr r" holds no "bass gtr")."""
        if j - i == 2:   # the usual multi-word name: one gap, no generator
            return not text[ends[i]:starts[i + 1]].strip(" _-")
        return all(not text[ends[k]:starts[k + 1]].strip(" _-") for k in range(i, j - 1))

    for hit in lexicon.find(words, fuzzy=False, skip=PROSE_SKIP, min_words=2):
        if words[hit.end - 1] in _PREPOSITION_TAILS and _PLACE_AFTER.match(text, ends[hit.end - 1]) \
                and not any(set(words[hit.start:hit.end]) <= set(tw) for tw in track_words.values()):
            continue   # "plonk the kick in the dead centre": the track "kick", then a place (round 6)
        found = tracks_playing(hit.role)
        if len(found) > 1:   # "kick out" among four drum tracks is the track named so
            found = lexicon.tracks_named_by(hit.alias, found)
        if len(found) > 1:   # "lead vocal": the track "Lead Vox", not "Vox Dbl"
            found = [t for t in found if set(words[hit.start:hit.end]) & set(track_words[t])] or found
        if len(found) > 1 and any(len(track_words[t]) > hit.end - hit.start
                                  and words[hit.start:hit.start + len(track_words[t])] == track_words[t] for t in found):
            continue   # "e gtr l" is the track "E Gtr L", not the pair "e gtr" (round 6): step 1 reads it
        if found and not any(taken[hit.start:hit.end]) and contiguous(hit.start, hit.end):
            add(hit.start, hit.end, found, "alias", hit.role)
    # 0b. a two-word name said the other way round ("harmony vox" for "Vox Harm"; round 8)
    pairs = {t: tuple(tw) for t, tw in track_words.items() if len(tw) == 2 and not any(w.isdigit() for w in tw)}
    if pairs and len(words) > 1:
        seconds = {tw[0][0] for tw in pairs.values()}
        firsts_of = {tw[1][0] for tw in pairs.values()}
        asked: dict[tuple[str, str], str | None] = {}
        for i in range(len(words) - 1):
            a, b = words[i], words[i + 1]
            if taken[i] or taken[i + 1] or a[0] not in firsts_of or b[0] not in seconds or not contiguous(i, i + 2):
                continue
            if (a, b) not in asked:
                asked[(a, b)] = reversed_pair_track(a, b, pairs, instruments)
            if asked[(a, b)] is not None:
                add(i, i + 2, [asked[(a, b)]], "name")
    # 1. full track names (longest first), skipping names that are pure markers
    named = sorted(tracks, key=lambda t: -len(track_words[t]))
    first_words = {tw[0] for tw in track_words.values() if tw}
    # a possessive names its track ("the tpt's spot"): the word without its "'s"
    stem_of = {w: w[:-2] for w in distinct if w.endswith("'s") and w[:-2] in first_words}
    firsts = (first_words & distinct) | set(stem_of)
    positions: dict[str, list[int]] = {}   # word -> where it occurs, so each name is sought only there
    if firsts:
        stem = (lambda i: stem_of.get(words[i], words[i])) if stem_of else words.__getitem__
        found_at = sorted(_where(words, firsts), key=stem)   # stable: in text order per word
        positions = {w: list(at) for w, at in groupby(found_at, key=stem)}
    for track in named:
        tw = track_words[track]
        if not tw or all((w in MARKER_WORDS and w not in NAMEABLE_MARKERS) or w.isdigit() for w in tw) \
                or tw[0] not in positions:
            continue
        n = len(tw)
        same = [t for t in tracks if track_words[t] == tw]
        if n == 1:   # the common case, without a slice per occurrence
            for i in positions[tw[0]]:
                if not taken[i]:
                    mentions.append(Mention(words[i], starts[i], ends[i], same, None, "name"))
                    taken[i] = True
            continue
        second, last = tw[1], len(words) - n
        for i in positions[tw[0]]:
            # cheapest test first: the second word (most occurrences of a first word fail it)
            if i <= last and words[i + 1] == second and not taken[i] and words[i:i + n] == tw \
                    and not any(taken[i:i + n]) and contiguous(i, i + n):
                add(i, i + n, same, "name")
    # 2. lexicon aliases, never straddling a word taken above; a free word's fuzzy spelling
    #    depends on nothing but the word, so it is asked once per distinct word
    skip = PROSE_SKIP
    if NOUN_AT_PHRASE_END & distinct:
        nouns = {words[i] for i in _where(words, NOUN_AT_PHRASE_END) if _PHRASE_END_AFTER.match(text, ends[i])}
        skip = PROSE_SKIP - nouns if nouns else PROSE_SKIP
    if _TRACK_NOUNS & distinct:
        for i in _where(words, _TRACK_NOUNS):
            if i > 0 and not taken[i - 1] and contiguous(i - 1, i + 1):
                holding = [t for t in tracks if words[i - 1] in track_words[t]]
                if len(holding) == 1:   # "the mic track" among "Ac Gtr DI" and "Ac Gtr Mic"
                    add(i - 1, i + 1, holding, "name")
    hits = [h for h in lexicon.find(words, fuzzy=False, skip=skip, taken=taken)
            if h.end - h.start == 1 or contiguous(h.start, h.end)]
    exact = list(taken)
    for hit in hits:
        exact[hit.start:hit.end] = [True] * (hit.end - hit.start)
    free_words = set(compress(words, map(not_, exact)))
    fuzzy = {}
    for w in free_words:
        if len(w) >= FUZZY_MIN_LENGTH and w not in MARKER_WORDS and w not in PROSE_SKIP \
                and not w.endswith(("ed", "ing")):   # "recorded" is a verb, not "recorder" misspelt (round 8)
            found_hits = lexicon.find([w], fuzzy=True, skip=PROSE_SKIP)
            if found_hits:
                fuzzy[w] = found_hits
    if fuzzy:
        for k in [k for k in _where(words, fuzzy) if not exact[k]]:
            hits.extend(AliasHit(h.role, k, k + 1, h.alias, h.weak, h.fuzzy) for h in fuzzy[words[k]])
        hits.sort(key=attrgetter("start"))
    resolved: dict[tuple[str, str], tuple[list[str], str]] = {}   # (role, alias) -> the tracks it finds, and how
    for hit in hits:
        key = (hit.role, hit.alias)
        if key not in resolved:
            found, how = tracks_playing(hit.role), "alias"
            if not found and lexicon.names_family(hit):
                fam = families.get(hit.role)
                found, how = [t for t in tracks if roles.get(t) and families.get(roles[t]) == fam], "family"
                # a track whose own name abbreviates the word ("horns" for "Hrn") beats the family
                own = own_word_tracks(hit.alias, track_words, instruments, _OWN_WORD_SKIP)
                if own:
                    found, how = own, "own word"
            whole_family = False
            if how != "own word" and found and lexicon.names_family(hit) \
                    and (hit.alias.endswith("s") or hit.alias.endswith(" section")) and not any(
                    hit.alias in track_words[t] or hit.alias[:-1] in track_words[t] for t in found):
                # a family's plural ("both guitars", "the brass") names every track of the family,
                # not the one role its alias belongs to (round 8: "Ac Gtr" and "Elec Gtr")
                fam = families.get(hit.role)
                family_tracks = [t for t in tracks if roles.get(t) and families.get(roles[t]) == fam]
                whole_family = len(family_tracks) > len(found)
                found = family_tracks or found
            if len(found) > 1:
                found = lexicon.tracks_named_by(hit.alias, found)
            if len(found) > 1 and not hit.alias.endswith("s"):
                # one instrument said once ("the vocal") among "Vox" and "Vox_Dbl": the track
                # whose name carries no marker (double, take, bus...; round 8)
                plain = [t for t in found if not set(track_words[t]) & MARKER_WORDS]
                found = plain if len(plain) == 1 else found
            if len(found) > 1:   # "the overheads" among eleven drum tracks: "OH L" and "OH R" (round 7)
                found = part_tracks(hit.alias, found, track_words.__getitem__)
            if len(found) > 1 and " " in hit.alias:
                holding = [t for t in found if set(hit.alias.split()) & set(track_words[t])]
                found = holding if holding else found   # "lead vocal": the track "Lead Vox", not "Vox Dbl"
            if not found or (len(found) > 1 and not whole_family and not any(hit.alias in track_words[t] for t in found)):
                kin = _kin_tracks(hit.alias, tracks, roles, track_words)
                if kin:
                    found, how = kin, "kin"
            resolved[key] = (found, how)
        found, how = resolved[key]
        i, j = hit.start, hit.end
        if found:
            add(i, j, list(found), how, hit.role)
        else:
            absent.append(Mention(text[starts[i]:ends[j - 1]], starts[i], ends[j - 1], [], hit.role, "absent"))
            taken[i:j] = [True] * (j - i)
    # 2b. a word of one track's own name, its plural or an abbreviation either way ("arp" for
    #     "SYNTH_ARP", "electric" for "Elec Gtr", "vla" for "Viola"; round 8)
    free = set(compress(words, map(not_, taken)))
    if free:
        skip_own = _OWN_WORD_SKIP | {w for w in free if w in PLACE_FILLER}
        own_found = {w: own_word_tracks(w, track_words, instruments, skip_own) for w in free
                     if len(w) <= 24}
        own_found = {w: f for w, f in own_found.items() if f}
        if own_found:
            for i in [i for i in _where(words, own_found) if not taken[i]]:
                add(i, i + 1, own_found[words[i]], "own word")
    # 3. the whole session ("everything 3 m away")
    if tracks and any(word in text for word in ("every", "all", "whole")):
        count = len(words)
        for m in _ALL_TRACKS.finditer(text):
            a, b = m.span()   # the phrase must begin and end with words
            i = bisect.bisect_left(starts, a)
            if i == count or starts[i] != a:
                continue
            if ends[i] == b:   # one word: "everything"
                if not taken[i]:
                    mentions.append(Mention(words[i], a, b, list(tracks), None, "all"))
                    taken[i] = True
                continue
            k = bisect.bisect_left(ends, b, i)
            if k < count and ends[k] == b and not any(taken[i:k + 1]):
                add(i, k + 1, list(tracks), "all")
    # 4. close spellings of a track's own distinctive words ("guiter" for "Guitar", "marcos")
    own = {}
    for t in tracks:
        for w in track_words[t]:
            if len(w) >= 4 and w not in MARKER_WORDS and not w.isdigit():
                own.setdefault(w, []).append(t)
    if own:
        own_words = list(own)
        # difflib costs ~0.1 ms a word: ask once per distinct free word
        own_lengths = {len(w) for w in own_words}
        spelt = {w: difflib.get_close_matches(w, own_words, n=1, cutoff=0.8)
                 for w in set(compress(words, map(not_, taken)))
                 if len(w) >= 4 and may_be_close(w, own_lengths, 0.8)}
        # a close spelling keeps its first letter ("guiter"; "layer" is no "player": round 8)
        close = {w for w, c in spelt.items() if c and c[0][0] == w[0]}
        if close:
            for i in [i for i in _where(words, close) if not taken[i]]:
                add(i, i + 1, own[spelt[words[i]][0]], "spelling")
    mentions.sort(key=attrgetter("start"))
    if len(mentions) > 1:
        # "the phone guest": a track named before a word that names several tracks is one noun
        # phrase, the first track's (round 8)
        merged = [mentions[0]]
        for mm in mentions[1:]:
            head = merged[-1]
            if len(head.tracks) == 1 and len(mm.tracks) > 1 and mm.how in ("spelling", "kin", "own word") \
                    and head.tracks[0] not in mm.tracks and not text[head.end:mm.start].strip():
                merged[-1] = Mention(text[head.start:mm.end], head.start, mm.end, head.tracks, head.role, head.how)
                continue
            merged.append(mm)
        mentions = merged
    return mentions, absent


# ------------------------------------------------------------------------------------------------
# Clauses and attachment
# ------------------------------------------------------------------------------------------------
#: Where a clause ends, as alternatives tried in this order: sentence punctuation, a comma, a
#: spaced dash, a conjunction.  (Each with the characters or words it needs to occur at all.)
_CLAUSE_BREAKS = ((r"[.;!?\n]+", tuple(".;!?\n")), (",", (",",)), (r"\s-\s", ("-",)), (r"(?<=\s)\+(?=\s)", ("+",)),
                  (r"\b(?:and|while|but|whereas|with|then|plus|&)\b",
                   ("and", "while", "but", "whereas", "with", "then", "plus", "&")))
_CLAUSE_BREAK = re.compile("|".join(pattern for pattern, _ in _CLAUSE_BREAKS))


@lru_cache(maxsize=None)
def _clause_break_pattern(present: tuple[bool, ...]) -> re.Pattern:
    return re.compile("|".join(pattern for (pattern, _), here in zip(_CLAUSE_BREAKS, present) if here))


def _clause_breaks(text: str) -> re.Pattern | None:
    """:data:`_CLAUSE_BREAK` less the alternatives that cannot match in ``text`` (``None`` when
    none can).  Dropping an alternative that matches nowhere changes no match, and the regex
    engine no longer tries it at every position."""
    present = tuple(any(c in text for c in needs) for _, needs in _CLAUSE_BREAKS)
    return _clause_break_pattern(present) if any(present) else None


def _scan_expressions(text: str, vocabulary: Vocabulary | None = None,
                      guarded: list[tuple[int, int]] = (), edit: bool = False,
                      names: list[tuple[int, int]] = ()) -> list[tuple[int, int, dict]]:
    """The spatial expressions in a normalised text: ``(start, end, fields)``, in text order.

    Rules run in the order of :data:`RULES`; where two matches overlap the earlier rule keeps the
    words.  A ``guarded`` rule (one-letter side words) reads nothing inside the ``guarded`` spans
    (the session's own track names: "L" in "Gtr L"); an ``edit_only`` rule runs only when ``edit``
    (a request against a current plan).  No match begins inside one of the ``names`` spans
    (a session track's name of several words, "open hat": round 8).  Each fields dict carries its rule's
    ``precedence`` (a value function may have lowered it) and ``rule`` name.

    A rule's fields depend only on the words it matched (:class:`Rule`), so each distinct
    match is built once: "left" said 9,000 times is read once.  The fields are shared, and
    nothing downstream changes them.
    """
    vocabulary = vocabulary or Vocabulary(text)
    rules = [rule for rule in RULES if (edit or not rule.edit_only) and vocabulary.holds(rule.groups)]
    taken = bytearray(len(text)) if len(rules) > 1 else bytearray()
    shielded = None
    if guarded and any(rule.guarded for rule in rules):
        shielded = bytearray(len(text) + 1)
        for a, b in guarded:
            shielded[a:b] = b"\x01" * (b - a)
    found: list[tuple[int, int, dict]] = []
    inside_name = None
    if names:
        inside_name = bytearray(len(text) + 1)
        for a, b in names:
            inside_name[a:b] = b"\x01" * (b - a)
    for number, rule in enumerate(rules):
        # a rule's own matches never overlap, so only earlier rules' spans can block one, and
        # only a later rule needs this rule's spans marked
        check, mark = bool(found), number + 1 < len(rules)
        shield = shielded if rule.guarded else None
        keys = [key for key in ("key", "key2", "key3", "key4", "key5") if key in rule.regex.groupindex]
        value, precedence, name = rule.value, rule.precedence, rule.name
        built: dict[tuple, dict | None] = {}

        def build(m):
            fields = value(m)
            if fields:
                fields.setdefault("precedence", precedence)
                fields["rule"] = name
            return fields

        if not (keys or check or mark or shield or inside_name):   # the usual case: one rule finds everything
            for m in rule.regex.finditer(text):
                s, e = m.span()
                if e > s:
                    said = (m.group(), m.groups())
                    fields = built[said] if said in built else built.setdefault(said, build(m))
                    if fields:
                        found.append((s, e, fields))
            continue
        if shield is not None:
            matches = _search_around(rule.regex, text, shield, inside_name)
        elif inside_name is not None:
            matches = _matches_outside(rule.regex, text, inside_name)
        else:
            matches = rule.regex.finditer(text)
        for m in matches:
            s, e = m.span()
            for key in keys:
                if m.group(key):
                    s, e = m.span(key)
            if e <= s or (check and any(taken[s:e])):
                continue
            said = (m.group(), m.groups())
            fields = built[said] if said in built else built.setdefault(said, build(m))
            if not fields:
                continue
            if mark:
                taken[s:e] = b"\x01" * (e - s)
            found.append((s, e, fields))
    found.sort(key=itemgetter(0))
    return found


def _matches_outside(regex: re.Pattern, text: str, starts: bytearray):
    """``regex.finditer(text)`` less the matches beginning inside a ``starts`` span; after such a
    match the search resumes one character on (C-speed ``finditer`` between such matches)."""
    pos = 0
    while True:
        for m in regex.finditer(text, pos):
            if starts[m.start()]:
                pos = m.start() + 1
                break
            yield m
        else:
            return


def _search_around(regex: re.Pattern, text: str, shield: bytearray | None, starts: bytearray | None = None):
    """``regex.finditer(text)`` less the matches touching a shielded span (and those beginning
    inside a ``starts`` span); after such a match the search resumes one character on, so "30
    left" is still found after the "l" of "oh l"."""
    pos = 0
    while True:
        m = regex.search(text, pos)
        if m is None:
            return
        s, e = m.span()
        if (shield is not None and any(shield[s:e])) or (starts is not None and starts[s]):
            pos = s + 1
            continue
        yield m
        pos = e if e > s else e + 1


#: The quantity each cue key belongs to (precedence is decided per quantity).
_QUANTITY_OF = {"azimuth_deg": "azimuth_deg", "elevation_deg": "elevation_deg", "distance_m": "distance_m",
                "distance_scale": "distance_m", "gain_db": "gain_db", "reverb_db": "reverb_db",
                "width_deg": "width_deg"}


def _quantities(f: dict) -> set[str]:
    q = {_QUANTITY_OF[k] for k in f.get("values", ())} | {_QUANTITY_OF[k] for k in f.get("relative", ())}
    if f.get("spread_deg") is not None or f.get("anchor"):
        q.add("azimuth_deg")
    if f.get("step"):
        q.add(f["step"][0])
    return q


def _combine(exprs: list[tuple[int, int, dict]], text: str) -> Cue | None:
    """Merge the expressions of one clause into one cue.

    Precedence (:mod:`stase.agent.parser_rules`): for each quantity only the expressions of the
    best class present count (a number beats a named position beats a hedge: "far back, 14 m" is
    14 m); among equals the first in the text gives an absolute value and relative ones add up.
    An unsigned number takes the sign of a side word it beat ("left, like 70 degrees").  A step
    ("further left", "closer", "louder") takes its size from its own hedge, else from a size word
    in the clause ("raise the sax a bit"), else the plain step (:data:`STEPS`).  Front/back words
    give way to a side word, or combine with it ("behind me to the left").
    """
    if not exprs:
        return None
    start, end = exprs[0][0], exprs[-1][1]
    cue = Cue(text[start:end].strip(), start, end)
    fields = [f for _, _, f in exprs]
    if any(f.get("reason") for f in fields) and any(
            not f.get("reason") and (f.get("values") or f.get("relative") or f.get("step") or f.get("spread_deg") is not None)
            for f in fields):
        # "the soloist is buried, bring her 3 m closer": the complaint is the reason for the change said
        fields = [f for f in fields if not f.get("reason")]
    sides = [f for f in fields if f.get("side")]
    back = any(f.get("back") for f in fields)
    any_azimuth = any("azimuth_deg" in f.get("values", ()) for f in fields)
    firm_spread = any(f.get("spread_deg") is not None and not f.get("soft") for f in fields)
    widths = any(f.get("step") and f["step"][0] == "width_deg" for f in fields)
    size = next((f["step_size"] for f in fields if "step_size" in f), None)
    # a bare "raise / lower / drop" is a height only when nothing else in the clause says what
    # changes: a level word or a dB number makes it a level change ("lower the keys 3 dB"), and
    # another height word gives the step ("drop the solo down a bit" is one small step)
    verbs_only = [f for f in fields if f.get("verb_only")]
    if verbs_only:
        said = [f for f in fields if not f.get("verb_only")]
        # (a vague height place alone, "beneath ear height", leaves the verb its step: round 6)
        if any("gain_db" in _quantities(f) or ("elevation_deg" in _quantities(f)
                                               and (f.get("step") or f.get("relative") or f["precedence"] < HEDGED))
               for f in said):
            fields = said
    gain_sign = next((f["gain_sign"] for f in fields + verbs_only if "gain_sign" in f), None)
    live = []
    for f in fields:
        if f.get("soft") and (firm_spread or any_azimuth or widths):
            continue
        if f.get("back") and sides:
            continue
        if f.get("front") and (sides or back):
            continue
        live.append(f)
    best: dict[str, int] = {}
    for f in live:
        p = f["precedence"]
        for q in _quantities(f):
            if p < best.get(q, HEDGED + 1):
                best[q] = p
    composite = back and sides and best.get("azimuth_deg", HEDGED + 1) > NUMBER
    values, relative = cue.values, cue.relative
    origin: dict[str, dict] = {}
    # one step per quantity and clause ("squeeze ... closer together", "up front, much closer"
    # say it twice): the one with the largest size said, else the first
    chosen_step: dict[str, dict] = {}
    complained: dict[str, float] = {}   # quantity -> the step a complaint added
    for f in live:
        step = f.get("step")
        if step and f["precedence"] == best[step[0]]:
            held = chosen_step.get(step[0])
            # a complaint ("too loud") gives way to the change said beside it ("take it down a bit")
            if held is not None and bool(f.get("complaint")) != bool(held.get("complaint")):
                if not f.get("complaint"):
                    chosen_step[step[0]] = f
                continue
            if held is None or _STEP_RANK[step[2]] < _STEP_RANK[held["step"][2]]:
                chosen_step[step[0]] = f
    for f in live:
        p = f["precedence"]
        for k, v in f.get("values", {}).items():
            if best[_QUANTITY_OF[k]] == p and k not in values:
                values[k] = v
                origin[k] = f
                cue.precedence[k] = PRECEDENCE_NAMES[p]
        for k, v in f.get("relative", {}).items():
            if best[_QUANTITY_OF[k]] == p:
                relative[k] = relative.get(k, 0.0) + v if k != "distance_scale" else relative.get(k, 1.0) * v
        if f.get("spread_deg") is not None and best["azimuth_deg"] == p:
            cue.spread_deg = f["spread_deg"]
            if f.get("edit_width"):   # "spread the guitars (a bit)": in an edit, a width step
                cue.edit_relative["width_deg"] = f["edit_width"] * STEPS["width_deg"][size or "plain"][1]
        step = f.get("step")
        if step and best[step[0]] == p and chosen_step.get(step[0]) is f:
            quantity, sign, own = step
            kind, amount = STEPS[quantity][own or size or "plain"]
            if f.get("complaint"):
                cue.complaint += ("distance_scale" if quantity == "distance_m" and kind == "scale" else quantity,)
                complained[quantity] = sign * amount
                if f.get("reason"):
                    cue.complaint += ("reason",)
            if quantity == "distance_m" and kind == "scale":
                relative["distance_scale"] = relative.get("distance_scale", 1.0) * (amount if sign > 0 else 1.0 / amount)
            else:
                relative[quantity] = relative.get(quantity, 0.0) + sign * amount
        if f.get("anchor") and f.get("anchor_track") and best["azimuth_deg"] == p:
            cue.anchor = (f["anchor"], f["anchor_track"])
        if "fallback" in f:
            cue.fallback.update(f["fallback"])
    if "width_deg" in relative and any(f.get("unsigned_width") for f in live):
        # "in towards the middle, 10 degrees each": the number's way is the width step's (round 8)
        way = next((f["step"][1] for f in fields if f.get("step") and f["step"][0] == "width_deg"), 1.0)
        relative["width_deg"] = abs(relative["width_deg"]) * way
    if best.get("width_deg") == NUMBER and "width_deg" in cue.edit_relative:
        # "spread the keys and pad out 10 more degrees": the number is the change, not a fan
        cue.edit_relative.pop("width_deg")
        cue.spread_deg = None
    if gain_sign is not None and "gain_db" in relative and any(f.get("unsigned_gain") for f in live):
        # an unsigned dB number takes the sign of the clause's level verb ("cut the hats 3 dB")
        relative["gain_db"] = abs(relative["gain_db"]) * gain_sign
    az_from = origin.get("azimuth_deg")
    if az_from is not None and az_from.get("unsigned") and sides:
        cue.values["azimuth_deg"] = abs(cue.values["azimuth_deg"]) * (1.0 if sides[0]["values"]["azimuth_deg"] > 0 else -1.0)
        if "edit_step" in sides[0]:
            # "move keys left a bit, like 5 deg": the number is the step's size in an edit
            cue.edit_relative["azimuth_deg"] = cue.values["azimuth_deg"]
    elif az_from is not None and az_from.get("unsigned") and "azimuth_deg" not in relative:
        # "further to the right, maybe 20 degrees more", "a bit more right, like 10 deg": the number
        # beat the step (precedence) but the step says the way: the number's side, and in an edit
        # the step's size (round 7)
        # (a complaint's way is no order: "too far to the left, 20 degrees" is the place 20 left)
        lost = next((f for f in live if f.get("step") and f["step"][0] == "azimuth_deg" and not f.get("complaint")), None)
        if lost is not None:
            cue.values["azimuth_deg"] = abs(cue.values["azimuth_deg"]) * lost["step"][1]
            cue.edit_relative["azimuth_deg"] = cue.values["azimuth_deg"]
    if "distance_m" in values and cue.precedence.get("distance_m") == PRECEDENCE_NAMES[NUMBER] \
            and origin.get("distance_m", {}).get("rule") in ("distance", "at_distance") and "distance_m" not in relative:
        # "bring her in closer, maybe half a metre", "pushed back a little. half a metre maybe": a
        # distance beside a step of distance is the step's size in an edit (round 8), the place in a plan
        lost = next((f for f in fields if f.get("step") and f["step"][0] == "distance_m" and not f.get("complaint")), None)
        if lost is not None:
            cue.edit_relative["distance_m"] = values["distance_m"] * lost["step"][1]
    for key in ("azimuth_deg", "elevation_deg"):
        # a vague place said beside a step of the same quantity ("drop it down a little, below
        # ear height") is the step's direction in an edit, and the place only in a new plan
        if key in relative and key in values and cue.precedence.get(key) == PRECEDENCE_NAMES[HEDGED] \
                and chosen_step.get(key) is not None and key not in cue.edit_relative:
            cue.fallback[key] = values.pop(key)
            cue.precedence.pop(key)
    for key, f in origin.items():
        # in an edit a hedged place ("a bit to the left", "raised a bit") is a step of its own size
        if key in f.get("edit_by", ()):   # a direction before its number: a move by it in an edit (round 8)
            cue.edit_relative[key] = f["edit_by"][key]
        elif "edit_step" not in f and f["precedence"] == HEDGED and f.get("side") is not None and any(
                g is not f and g.get("edit_step", ("",))[0] == key for g in live):
            # "the guitar needs to go to the right ... move it right": the place and the move say
            # one thing; in an edit it is the move (round 8)
            g = next(g for g in live if g is not f and g.get("edit_step", ("",))[0] == key)
            quantity, sign, own = g["edit_step"]
            if sign * values[key] > 0:
                cue.edit_relative[quantity] = sign * STEPS[quantity][own or size or "plain"][1]
        elif "edit_step" in f and f["edit_step"][0] == key:
            quantity, sign, own = f["edit_step"]
            cue.edit_relative[quantity] = sign * STEPS[quantity][own or size or "plain"][1]
    for key in list(complained):
        # "the keys are so far left, move them right a tad": the hedged side's own step is the
        # change, the complaint its reason (round 7)
        if key in cue.edit_relative and key in relative and key != "distance_m":
            relative[key] -= complained.pop(key)
            if abs(relative[key]) < 1e-9:
                del relative[key]
            cue.complaint = tuple(q for q in cue.complaint if q != key)
    if "width_deg" in complained and "azimuth_deg" not in complained and (
            "azimuth_deg" in relative or "azimuth_deg" in values or "azimuth_deg" in cue.edit_relative):
        # "the arp is too wide on the left, move it 15 degrees right": the complaint is the
        # reason for the move said beside it, not a width change of its own (round 8)
        relative["width_deg"] -= complained.pop("width_deg")
        if abs(relative["width_deg"]) < 1e-9:
            del relative["width_deg"]
        cue.complaint = tuple(q for q in cue.complaint if q != "width_deg")
    if composite:
        side = sides[0]
        lateral = abs(side["values"]["azimuth_deg"])
        if side.get("hedge") is None:
            lateral = 180.0 - REAR_DIAGONAL_DEG
        az = 180.0 - lateral
        cue.values["azimuth_deg"] = az * (1.0 if side["values"]["azimuth_deg"] > 0 else -1.0)
        cue.precedence["azimuth_deg"] = PRECEDENCE_NAMES[NAMED]
        cue.edit_relative.pop("azimuth_deg", None)
    return cue


#: Which of two steps of one quantity in a clause counts: a large size, then a small one, then plain.
_STEP_RANK = {"large": 0, "small": 1, None: 2}


def _one_cue(start: int, end: int, f: dict, text: str) -> Cue:
    """:func:`_combine` of one expression (most clauses hold one)."""
    return _combine([(start, end, f)], text)


def _attach(cue: Cue, mentions: list[Mention], text: str, shared: bool) -> Cue:
    """``cue`` given to the tracks of ``mentions``, its text widened to the words naming them (a
    shared cue reads "the guitar the keys ... on the left")."""
    if len(mentions) == 1:
        mm = mentions[0]
        cue.tracks = list(mm.tracks) if len(mm.tracks) < 2 else list(dict.fromkeys(mm.tracks))
        lo, hi = min(mm.start, cue.start), max(mm.end, cue.end)
    else:
        cue.tracks = list(dict.fromkeys(t for mm in mentions for t in mm.tracks))
        lo = min([mm.start for mm in mentions] + [cue.start])
        hi = max([mm.end for mm in mentions] + [cue.end])
    cue.text = " ".join(mm.text for mm in mentions) + " ... " + cue.text if shared else text[lo:hi].strip()
    return cue


def check_prompt_text(prompt: Any, what: str = "prompt") -> str:
    """``prompt`` when it is a string of at most :data:`MAX_PROMPT_CHARS` characters.

    Raises
    ------
    InputError : not a string ("prompt must be a string, got int"), or too long.
    """
    if not isinstance(prompt, str):
        raise InputError(f"{what} must be a string, got {type(prompt).__name__}")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise InputError(f"the {what} is {len(prompt)} characters long; at most {MAX_PROMPT_CHARS} are accepted "
                         "(say what goes where in a few sentences)")
    return prompt


def parse_prompt(prompt: str, tracks: list[str], roles: dict[str, str | None] | None = None,
                 lexicon: Lexicon | None = None, *, edit: bool = False) -> ParseResult:
    """Parse a prompt against a session's track names.

    Parameters
    ----------
    prompt : the producer's words, at most :data:`MAX_PROMPT_CHARS` characters.
    tracks : the session's track names (mentions resolve to these).
    roles : track -> role (default: :func:`stase.agent.lexicon.match_track_role` of each name).
    edit : the prompt is a request against a current plan (:meth:`stase.agent.conductor.Conductor.edit`):
        a state said with a verb is then a complaint ("the sitar sounds distant" brings it closer;
        :mod:`stase.agent.parser_complaints`), not a description of a new plan.

    Raises
    ------
    InputError : ``prompt`` is not a string or is too long (:func:`check_prompt_text`).
    """
    return _parse(check_prompt_text(prompt), tracks, roles, lexicon, edit=edit)


@contextmanager
def _cycle_collector_paused():
    """Pause Python's cycle collector for the length of one parse.

    A parse of a long text builds tens of thousands of small objects (expressions, mentions,
    cues, clauses) and no reference cycle, so a collection during it frees nothing; yet each
    full collection walks every live object, and at 100 kB the collections took up to a quarter
    of the parse.  The collector is switched back on when the parse returns or raises (if it
    was on: a caller that turned it off keeps it off; a concurrent parse may turn it back on
    early, which only costs that parse some speed).
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _parse(prompt: str, tracks: list[str], roles: dict[str, str | None] | None = None,
           lexicon: Lexicon | None = None, edit: bool = False) -> ParseResult:
    """:func:`parse_prompt` without the length cap.  Its cost grows linearly with the text
    (tests/test_hardening_plan.py parses 100 kB), which is what makes the cap a bound on time."""
    with _cycle_collector_paused():
        return _parse_text(prompt, tracks, roles, lexicon, edit)


def _parse_text(prompt: str, tracks: list[str], roles: dict[str, str | None] | None,
                lexicon: Lexicon | None, edit: bool = False) -> ParseResult:
    lexicon = lexicon or get_lexicon()
    if roles is None:
        roles = {t: lexicon.role_of(t) for t in tracks}
    # a choir session's "Alt" and "Bass" are its voice parts (round 8)
    roles = choir_roles(roles, {t: normalise_words(t) for t in tracks})
    # misspelt side and unit words are read as the words meant ("rihgt"), never a track's own word
    text = correct_spelling(normalise_text(prompt), lexicon.alias_words,
                            {w for t in tracks for w in normalise_words(t)})
    # "track 4" of a numbered session is that track's name ("04 gtr")
    text = track_number_words(text, tracks, lambda t: " ".join(normalise_words(t)))
    # a drum part said as only a track name says it ("OHs", "the hat"): the part's lexicon word
    text = part_words(text, [normalise_words(t) for t in tracks])
    # "the 2nd violin" is the track "Vln 2" (or "Vln II")
    text = ordinal_words(text, tracks, normalise_words,
                         lambda w: lexicon.phrases.get((w,)) or lexicon.phrases.get((w[:-1],)), roles)
    # "gtr 1 and 2" is "gtr 1 and gtr 2" where both are session tracks (round 8)
    text = numbered_list_words(text, [normalise_words(t) for t in tracks])
    # size and direction words (and, in an edit, bare comparatives and negations) as the rules' words
    text = canonical_words(text, edit, frozenset(w for t in tracks for w in normalise_words(t)))
    result = ParseResult(prompt=prompt, music=parse_music(text))
    if edit:   # where a track is now ("it drifted right") is no cue of an edit: its words are blanked
        text = blank_present_state(text)
    exprs = _scan_expressions(text, guarded=_track_name_spans(text, tracks), edit=edit,
                              names=_track_name_spans(text, tracks, every=True))
    mentions, absent = find_mentions(text, tracks, roles, lexicon, blocked=[(s, e) for s, e, _ in exprs])
    result.mentions = mentions
    result.impossible = [(text[s:e].strip(), f["impossible"]) for s, e, f in exprs if "impossible" in f]
    result.residual = _residual(text, [*map(itemgetter(0), exprs), *map(attrgetter("start"), mentions + absent)],
                                [*map(itemgetter(1), exprs), *map(attrgetter("end"), mentions + absent)])
    _find_swaps(text, mentions, result)
    _find_crossed_places(text, mentions, result)
    _find_mirrors(text, mentions, result, list(tracks))
    if exprs:   # without an expression no clause has a cue to give, lend or share
        _cues_of_clauses(text, exprs, mentions, absent, result, lexicon)
    if edit:
        _complaints_give_way(result)
        _mirrored_sides_give_way(result)
        _swapped_sides_give_way(result)
        _left_alone(text, mentions, result)
    return result


def _left_alone(text: str, mentions: list[Mention], result: ParseResult) -> None:
    """In an edit, tracks named after "leave" / "keep" / "not" ("widen the strings a bit, leave the
    basses") are taken out of the cues given to a group; a cue of their own stays (round 8)."""
    if not any(w in text for w in ("leav", "keep", "not", "n't", "except")):
        return
    left = {t for mm in mentions if _LEAVE.search(text, max(0, mm.start - 30), mm.start) for t in mm.tracks}
    if not left:
        return
    kept = []
    for cue in result.cues:
        if set(cue.tracks) & left and (not set(cue.tracks) <= left or " ... " in cue.text):
            # (a cue a list lent them, "not the sax, the keys louder", is no cue of their own)
            cue.tracks = [t for t in cue.tracks if t not in left]
        if cue.tracks:
            kept.append(cue)
    result.cues = kept


def _swapped_sides_give_way(result: ParseResult) -> None:
    """In an edit, a vague side said for a track of a swap ("Sopran and Alt must be changed, the
    conductor wants the Alt on the left") is where the swap takes it, not a place of its own
    (round 8, as :func:`_mirrored_sides_give_way` for mirrors); a number still counts."""
    swapped = {t for a, b, _ in result.swaps for t in (a, b)}
    if not swapped:
        return
    for cue in result.cues:
        if set(cue.tracks) <= swapped and "azimuth_deg" in cue.values \
                and cue.precedence.get("azimuth_deg") != PRECEDENCE_NAMES[NUMBER]:
            cue.values = {k: v for k, v in cue.values.items() if k != "azimuth_deg"}
            cue.edit_relative = {k: v for k, v in cue.edit_relative.items() if k != "azimuth_deg"}
            cue.precedence = {k: v for k, v in cue.precedence.items() if k != "azimuth_deg"}
    result.cues = [c for c in result.cues if c.values or c.relative or c.edit_relative or c.spread_deg is not None
                   or c.anchor]


def _mirrored_sides_give_way(result: ParseResult) -> None:
    """In an edit, a side said beside a mirror of the same track ("organ belongs on the right,
    mirror it over", "flip track 4 to the left side") is where the mirror takes it, not a place
    of its own: the mirror keeps the track's distance from the centre (round 7).  A number
    ("mirror it, 30 degrees right") still counts."""
    mirrored = {t for tracks, _ in result.mirrors for t in tracks}
    if not mirrored:
        return
    for cue in result.cues:
        if set(cue.tracks) <= mirrored and "azimuth_deg" in cue.values \
                and cue.precedence.get("azimuth_deg") != PRECEDENCE_NAMES[NUMBER]:
            cue.values = {k: v for k, v in cue.values.items() if k != "azimuth_deg"}
            cue.edit_relative = {k: v for k, v in cue.edit_relative.items() if k != "azimuth_deg"}
            cue.precedence = {k: v for k, v in cue.precedence.items() if k != "azimuth_deg"}
    result.cues = [c for c in result.cues if c.values or c.relative or c.edit_relative or c.spread_deg is not None
                   or c.anchor]


_SAME_QUANTITY = {"distance_scale": ("distance_scale", "distance_m"), "distance_m": ("distance_scale", "distance_m"),
                  "width_deg": ("width_deg", "azimuth_deg"), "azimuth_deg": ("azimuth_deg", "width_deg"),
                  "elevation_deg": ("elevation_deg",), "gain_db": ("gain_db",)}


def _complaints_give_way(result: ParseResult) -> None:
    """In an edit, a complaint's step ("brass is too narrow") gives way to a change of the same
    quantity said for the same track elsewhere in the request ("widen horns and trumpets 5 degrees
    each side"): the complaint is the reason, the change the order (round 7; within one clause
    :func:`_combine` does the same)."""
    if not any(c.complaint for c in result.cues):
        return
    # per track, how many cues say each quantity (one pass: a request of ten thousand complaints
    # stays linear, round 8); a cue's own keys are taken off again for its own question
    counts: dict[str, Counter] = {}
    for d in result.cues:
        keys = set((*d.relative, *d.edit_relative, *d.values))
        for t in set(d.tracks):
            counts.setdefault(t, Counter()).update(keys)
    kept = []
    for cue in result.cues:
        if cue.complaint:
            own = set((*cue.relative, *cue.edit_relative, *cue.values))
            said = {k for t in set(cue.tracks) for k, n in counts.get(t, {}).items() if n > (k in own)}
            dropped = [q for q in cue.complaint if said & set(_SAME_QUANTITY.get(q, (q,)))]
            if "reason" in cue.complaint and said:   # "buried, bring her closer": the reason for that change
                dropped = list(cue.complaint)
            if dropped:
                cue.relative = {k: v for k, v in cue.relative.items() if k not in dropped}
                cue.complaint = tuple(q for q in cue.complaint if q not in dropped)
                if not (cue.relative or cue.values or cue.edit_relative or cue.spread_deg is not None or cue.anchor):
                    continue
        kept.append(cue)
    result.cues = kept


_GUARDED_WORDS = frozenset({"l", "r", "c", "left", "right"})
#: Words that never name a track through a word of its name (:func:`stase.agent.parser_names.own_word_tracks`):
#: markers ("main", "l", "bus"), side, unit and number words (round 8).
_OWN_WORD_SKIP = (MARKER_WORDS - NAMEABLE_MARKERS - {"dbl", "double", "bus", "grp", "comp", "amp", "print", "alt"}) \
    | _NUMBER_WORDS | frozenset(
    "deg degs degree degrees db m cm ft feet metres meters way bit lot up down back more less".split())


def _track_name_spans(text: str, tracks: list[str], every: bool = False) -> list[tuple[int, int]]:
    """Where the session's track names holding a side letter or a number occur in ``text``
    ("gtr l", "05_gtr_l", "tom 2"): rules reading one-letter sides or bare numbers keep out.
    With ``every``, where any name of two or more words occurs ("open hat", "back vox"): no
    rule's match may begin inside one (round 8: "open hat 20 degrees right" is no width change).
    One C-speed search per such name, and only where its first word occurs."""
    spans = []
    for track in tracks:
        words = normalise_words(track)
        if len(words) < 2 or not (every or any(w in _GUARDED_WORDS or w.isdigit() for w in words)) \
                or words[0] not in text:
            continue
        pattern = _name_pattern(tuple(words))
        spans.extend(m.span() for m in pattern.finditer(text))
    return spans


@lru_cache(maxsize=512)
def _name_pattern(words: tuple[str, ...]) -> re.Pattern:
    body = r"[\s_\-]*".join(re.escape(w) for w in words)
    return re.compile(rf"(?<![a-z0-9]){body}(?![a-z0-9])")


def _residual(text: str, span_starts: list[int], span_ends: list[int]) -> str:
    """``text`` without the spans ``span_starts[k]:span_ends[k]`` (cue and mention words), its
    whitespace collapsed."""
    starts, ends = sorted(span_starts), sorted(span_ends)
    if not all(map(le, ends[:-1], starts[1:])):
        # some spans overlap (at most one span is open at a time otherwise): pair each start
        # with its own end and resume after the furthest end so far
        cut = sorted(zip(span_starts, span_ends))
        starts = [s for s, _ in cut]
        ends = list(accumulate((e for _, e in cut), max))
    keep = list(map(text.__getitem__, map(slice, [0] + ends, starts)))
    keep.append(text[ends[-1]:] if ends else text)
    return " ".join(" ".join(keep).split())


def _cues_of_clauses(text: str, exprs: list[tuple[int, int, dict]], mentions: list[Mention],
                     absent: list[Mention], result: ParseResult, lexicon: Lexicon) -> None:
    """Cut the text into clauses and give each clause's expressions to its mentions (or lend them
    to a neighbour's), appending to ``result.cues``, ``.unknown`` and ``.orphans``."""
    # clauses: cut at punctuation and conjunctions, except inside an expression ("front and centre")
    breaks = _clause_breaks(text)
    cuts = []
    if breaks is not None:
        expr_starts = list(map(itemgetter(0), exprs))
        expr_ends = list(map(itemgetter(1), exprs))

        def inside_expression(p: int) -> bool:
            # expressions do not overlap: only the last one starting before ``p`` can hold it
            k = bisect.bisect_left(expr_starts, p) - 1
            return k >= 0 and p < expr_ends[k]

        cuts = [(m.start(), m.end(), m.group(0).strip()) for m in breaks.finditer(text)
                if not (inside_expression(m.start()) or inside_expression(m.end()))]
    # clause k runs from clause_starts[k] to clause_ends[k] and follows the word joins[k]
    clause_starts = [0] + [e for _, e, _ in cuts]   # strictly increasing
    clause_ends = [s for s, _, _ in cuts] + [len(text)]
    joins = [""] + [word for _, _, word in cuts]
    # only clauses holding a mention or an expression take part in what follows: an empty one
    # lends, borrows and shares nothing, so a text of 25,000 "and"s costs no work per clause
    clauses: dict[int, dict] = {}

    def add_to_clauses(items: list, positions: list[int], key: str) -> None:
        """Each item goes to the clause holding its position, else to the clause starting
        nearest to it (the first on a tie); the bisections run in C."""
        after = map(bisect.bisect_right, repeat(clause_starts), positions)
        for item, p, k in zip(items, positions, after):
            k -= 1   # clause_starts[0] == 0 <= p: k >= 0
            if p >= clause_ends[k]:
                near = [j for j in (k, k + 1) if j < len(clause_starts)]
                k = min(near, key=lambda j: (abs(clause_starts[j] - p), j))
            c = clauses.get(k)
            if c is None:
                c = clauses[k] = {"index": k, "start": clause_starts[k], "end": clause_ends[k], "join": joins[k],
                                  "mentions": [], "absent": [], "exprs": []}
            c[key].append(item)

    if len(clause_starts) == 1:   # one clause holds everything
        clauses[0] = {"index": 0, "start": 0, "end": len(text), "join": "",
                      "mentions": list(mentions), "absent": list(absent), "exprs": list(exprs)}
    else:
        add_to_clauses(mentions, [mm.start for mm in mentions], "mentions")
        add_to_clauses(absent, [am.start for am in absent], "absent")
        add_to_clauses(exprs, [ex[0] for ex in exprs], "exprs")
    active = [clauses[k] for k in sorted(clauses)]   # in text order
    # a clause's cue depends only on its expressions' fields (shared between equal matches):
    # merge each distinct list of fields once, then copy it with the clause's own words
    merged: dict[tuple, Cue | None] = {}

    def combine(exprs: list[tuple[int, int, dict]]) -> Cue | None:
        key = tuple(id(f) for _, _, f in exprs)
        if key not in merged:
            merged[key] = _combine(exprs, text)
        model = merged[key]
        if model is None:
            return None
        start, end = exprs[0][0], exprs[-1][1]
        return Cue(text[start:end].strip(), start, end, model.values.copy(), model.relative.copy(), model.spread_deg,
                   [], model.fallback.copy(), model.edit_relative.copy(), model.anchor, model.precedence.copy(),
                   model.complaint)

    anchored: dict[tuple[int, str], dict] = {}
    # equal expressions share their fields dict: look for anchor phrases once per distinct one
    any_anchor = any(f.get("anchor") for f in {id(f): f for _, _, f in exprs}.values())
    for c in active:
        if c["exprs"] and not c["mentions"]:
            # "open the mix up" names no track: an open request (the agent's), not a width step to lend
            c["exprs"] = [x for x in c["exprs"] if not x[2].get("own_clause")]
        if any_anchor:
            _take_anchors(c, anchored)
        if c["exprs"] and not c["mentions"] and not c["absent"]:
            _take_plan_values(c, text, result)
    swapped = {t for a, b, _ in result.swaps for t in (a, b)}
    if mentions:
        for c in active:
            if c["exprs"] and not c["mentions"] and not c["absent"]:
                _take_unplaced_word(c, text, lexicon)
    _join_lists(active, clauses, text)

    def kinds_of(cl) -> set:
        return {k for _, _, f in cl["exprs"] for k in list(f.get("values", {})) + list(f.get("relative", {}))}

    # a clause with cues but no mention lends them to a neighbour that lacks that kind of cue
    # (the nearest clause with a mention on each side)
    named = [c for c in active if c["mentions"]]
    named_at = [c["index"] for c in named]
    borrowed: set[int] = set()   # expressions lent by a later clause ("..., shift it right")
    for c in active:
        if c["exprs"] and not c["mentions"] and not c["absent"]:
            kinds = kinds_of(c)
            k = bisect.bisect_left(named_at, c["index"])
            j = k - 1
            while j > 0 and (all(object_mention(text, mm.start) for mm in named[j]["mentions"])
                             or _PRONOUN_SUBJECT.match(text, named[j]["start"])):
                j -= 1   # "the piano is clashing | with the bass, | move it left": the subject's clause (round 8)
            prev = named[j] if k > 0 else None
            nxt = named[k] if k < len(named) else None
            prev_free = prev is not None and not (kinds & kinds_of(prev))
            nxt_free = nxt is not None and not (kinds & kinds_of(nxt))
            target = prev if prev_free or (prev is not None and not nxt_free) else nxt
            if target is not None:
                if target is prev:
                    borrowed.update(map(id, c["exprs"]))
                target["exprs"] = sorted(target["exprs"] + c["exprs"], key=lambda f: f[0])
                c["exprs"] = []
    # a bare list shares the next item's cue: "the guitar and the keys on the left"
    for c in reversed(named):
        nxt = clauses.get(c["index"] + 1)
        if nxt is not None and not c["exprs"] and nxt["join"] in _LIST_JOINS and nxt["exprs"] \
                and not nxt.get("shared_from") and not any(set(m.tracks) & swapped for m in c["mentions"]) \
                and not {t for m in c["mentions"] for t in m.tracks} <= {t for m in nxt["mentions"] for t in m.tracks}:
            # (a track the next clause names again takes its cue once: "vln ii is ..., bring vln ii closer")
            c["exprs"] = list(nxt["exprs"])
            c["shared"] = True
    # "tenor 5 degrees higher, the bass also the same": a clause naming tracks and saying "the same"
    # takes the cue of the clause before it (round 8)
    if "same" in text or "too" in text or "also" in text or "as well" in text or "likewise" in text:
        for k, c in enumerate(named):
            if k and not c["exprs"] and _SAME_AGAIN.search(text, c["start"], c["end"]):
                before = next((b for b in reversed(named[:k]) if b["exprs"]), None)
                if before is not None:
                    c["exprs"] = list(before["exprs"])

    # a cue's numbers depend on its expression's fields alone, and equal expressions share their
    # fields (_scan_expressions): work them out once per distinct fields, across all clauses
    model: dict[int, Cue] = {}
    for c in active:
        if not c["exprs"]:
            continue
        if not c["mentions"] and not c["absent"] and not mentions \
                and _ORDER_VERBS.search(text[c["start"]:c["end"]]) \
                and any(f.get("values") or f.get("relative") for _, _, f in c["exprs"]):
            result.orphans.append(text[c["start"]:c["end"]].strip())
        if c["absent"] and c["mentions"]:
            # "narrator is the voice of god": a word said of a named track after a copula
            # describes it, and names no missing instrument (round 8)
            c["absent"] = [am for am in c["absent"] if not any(
                mm.end <= am.start and _COPULA.search(text, mm.end, am.start) for mm in c["mentions"])]
        result.unknown.extend(c["absent"])
        if not c["mentions"]:
            continue
        targets = c["mentions"]
        if len(targets) == 1 or c.get("shared") or c.get("list"):
            cue = combine(c["exprs"])
            if cue is not None:
                result.cues.append(_attach(cue, targets, text, shared=bool(c.get("shared"))))
            continue
        # each expression goes to the nearest mention before it (or the first one after it)
        target_starts = [mm.start for mm in targets]
        befores = map(bisect.bisect_right, repeat(target_starts), [ex[0] for ex in c["exprs"]])
        owners = list(map(max, map(sub, befores, repeat(1)), repeat(0)))   # max(before - 1, 0), in C
        if borrowed:
            # a later clause's pronoun ("guitar's stacking on top of the rhodes, shift it right")
            # is the clause's subject, never the object of a preposition or comparison (round 8)
            subject = next((i for i, mm in enumerate(targets) if not object_mention(text, mm.start)), 0)
            owners = [subject if id(ex) in borrowed else o for o, ex in zip(owners, c["exprs"])]
        if all(map(lt, owners, owners[1:])):   # no mention holds two expressions: one cue each
            append = result.cues.append
            for i, (s, e, f) in zip(owners, c["exprs"]):
                mm = targets[i]
                if len(mm.tracks) < 2:   # _attach of one mention, inline: ten thousand cues
                    like = model.get(id(f))
                    if like is None:
                        like = model[id(f)] = _one_cue(s, e, f, text)
                    lo = mm.start if mm.start < s else s
                    hi = mm.end if mm.end > e else e
                    # the cue's dicts are shared with its model: cues are read-only once parsed
                    # (only _combine writes them, while building one), and ten thousand copies of
                    # five small dicts were a third of a 100 kB parse
                    append(Cue(text[lo:hi].strip(), s, e, like.values, like.relative, like.spread_deg,
                               mm.tracks.copy(), like.fallback, like.edit_relative, like.anchor,
                               like.precedence, like.complaint))
                else:
                    append(_attach(_one_cue(s, e, f, text), [mm], text, shared=False))
            continue
        by_mention: dict[int, list] = {}
        for owner, ex in zip(owners, c["exprs"]):
            by_mention.setdefault(owner, []).append(ex)
        for i, exs in sorted(by_mention.items()):
            cue = combine(exs)
            if cue is not None:
                result.cues.append(_attach(cue, [targets[i]], text, shared=False))


#: A copula between a track and a word said of it ("is the voice of", "sounds like a")
_COPULA = re.compile(r"\b(?:is|are|was|were|'s|sounds?\s+like|feels?\s+like|as)\b")
#: "leave the basses", "keep the pad where it is": tracks a request names only to leave them
_LEAVE = re.compile(r"\b(?:leave|leaving|keep|keeping|don't\s+(?:touch|move)|do\s+not\s+(?:touch|move)|not|except)"
                    r"\s+(?:the\s+|my\s+|our\s+)?$")
#: A clause whose subject is a pronoun ("it doesn't match the production dlg"): the tracks it
#: names are objects, and a later pronoun means the track before it
_PRONOUN_SUBJECT = re.compile(r"\s*+(?:and\s+|but\s+|so\s+)?(?:it|it's|its|they|they're|she|he|this|that)\b(?!\s+(?:is|are)\s+the\b)")
#: Words of a clause that repeats the change said before it for other tracks
_SAME_AGAIN = re.compile(r"\b(?:the\s+same|same\s+(?:thing|for|here|please|pls)|also|too|as\s+well|likewise|ditto)\b")
#: Joins that continue a list of tracks ("widen the keys and the bass", "the kick, snare and hats")
_LIST_JOINS = frozenset({"and", ",", "&", "plus", "+"})
#: Words that may stand before a list item's name ("and both the pad")
_LIST_LEAD = frozenset({"the", "both", "my", "our", "also", "too", "a"})


def _join_lists(active: list[dict], clauses: dict, text: str) -> None:
    """A cue said before a list of tracks is the whole list's: "widen keys and bass", "centre
    both the arp and pad", "narrow sitar and flute a touch".

    A clause whose expressions all stand before its first mention (a verb first) takes the
    mentions of the clauses that follow it through "and" / "," when each of those begins with
    a mention and says no place of its own (only a step size, a width word or a width's number:
    "... and vc wider", "narrow the pad and arp by 4 degrees"); the merged clause gives its cue
    to every track of the list.
    """
    for c in active:
        if not (c["exprs"] and c["mentions"]) or c["exprs"][-1][0] >= c["mentions"][0].start \
                or any(ex[0] > c["mentions"][0].start for ex in c["exprs"]):
            continue
        k = c["index"] + 1
        while k in clauses:
            nxt = clauses[k]
            if nxt["join"] not in _LIST_JOINS or not nxt["mentions"] or nxt["absent"] \
                    or any((f.get("values") or f.get("relative") or f.get("anchor") or f.get("spread_deg") is not None)
                           and not f.get("joins_list") for _, _, f in nxt["exprs"]) \
                    or any(w not in _LIST_LEAD for w in _WORD.findall(text[nxt["start"]:nxt["mentions"][0].start])):
                break
            c["mentions"] = c["mentions"] + nxt["mentions"]
            c["exprs"] = c["exprs"] + nxt["exprs"]
            c["list"] = True
            nxt["mentions"], nxt["exprs"] = [], []
            k += 1


def _take_unplaced_word(clause: dict, text: str, lexicon: Lexicon) -> None:
    """A clause that places something but names no session track, where one word that is not
    filler (:data:`PLACE_FILLER`) stands before the cue ("the didgeridoo behind me", "theremin
    40 right"), names an instrument the session lacks: it becomes an absent mention (so the
    conductor refuses the prompt, naming the word) instead of lending its cue to a neighbour."""
    first = clause["exprs"][0][0]
    if not any(f.get("values") or f.get("relative") or f.get("step") for _, _, f in clause["exprs"]):
        return
    found = [m for m in _WORD.finditer(text, clause["start"], first) if m.group() not in PLACE_FILLER]
    if len(found) != 1:
        return
    word = found[0]
    w = word.group()
    if len(w) < 3 or not w.isalpha() or w in lexicon.alias_words or w in _NUMBER_WORDS:
        return
    if len(w) >= 5 and w.endswith(("ed", "ing")):
        return   # an inflected verb ("it drifted right", "it's sitting left") names no instrument
    clause["absent"].append(Mention(w, word.start(), word.end(), [], None, "unknown"))


def _take_anchors(clause: dict, anchored: dict) -> None:
    """An anchor phrase ("just right of the", "opposite the") takes the mention right after it
    as its anchor: that track gets no cue of the clause, and the phrase remembers it."""
    if not any(f.get("anchor") for _, _, f in clause["exprs"]):
        return
    exprs = []
    for s, e, f in clause["exprs"]:
        if f.get("anchor"):
            after = [mm for mm in clause["mentions"] if mm.start >= e and mm.tracks]
            if not after or after[0].start - e > 2:
                continue   # nothing named right after the phrase: it says nothing
            anchor = after[0]
            clause["mentions"] = [mm for mm in clause["mentions"] if mm is not anchor]
            key = (id(f), anchor.tracks[0])
            if key not in anchored:   # one fields dict per phrase and anchor, so equal clauses share it
                anchored[key] = {**f, "anchor_track": anchor.tracks[0]}
            f = anchored[key]
            e = anchor.end
        exprs.append((s, e, f))
    clause["exprs"] = exprs


def _take_plan_values(clause: dict, text: str, result: ParseResult) -> None:
    """Wetness said in a clause naming no track is the whole plan's ("drenched in reverb, sax
    left"; "keep it dry"), not a neighbour's: it is taken out before cues are lent."""
    keep = []
    for s, e, f in clause["exprs"]:
        values = f.get("values", {})
        if "reverb_db" in values and len(values) == 1:
            result.plan_values.setdefault("reverb_db", (values["reverb_db"], text[s:e].strip()))
        else:
            keep.append((s, e, f))
    clause["exprs"] = keep


_SENTENCE = re.compile(r"[^.;!?]+")
#: the swap verbs, inflected ("swapped", "switching", "traded"): "the keys and the sax, swapped"
_SWAP_VERB = r"swap(?:s|ped|ping)?|switch(?:es|ed|ing)?|exchang(?:e|es|ed|ing)|trad(?:e|es|ed|ing)"
_SWAP_WORD = re.compile(rf"\b({_SWAP_VERB}|(?:flip|reverse)\s+(?:the\s+)?(?:positions|places|spots|seats)\s+of)\b[^.;!?]*")
#: a swap said after its pair ("the sax and the keys trade places", "can the rhodes and the clav
#: swap over", "put the horns where the strings are and vice versa")
#: ("the clav and wurli should change places": "change" only with a word of place, round 6; a
#: partner after "with" belongs to the pair: "the clav could swap places with the wurli")
_SWAP_PLACES = re.compile(rf"\b(?:({_SWAP_VERB})\s+(places|sides|positions|spots|seats|over|round|around)"
                          r"|chang(?:e|es|ed|ing)\s+(?:places|sides|positions|spots|seats)"
                          r"|(?:swap(?:ped)?|switch(?:ed)?)(?=\s*(?:(?:please|pls|plz|thanks|thx)\s*)?(?:[.;!?]|$))"
                          r"|(?:and\s+)?vice\s+versa)\b")
_WITH = re.compile(r"\s+with\s+")
_PRONOUN_PAIR = re.compile(r"\s+(?:them|em|'em|those|these|the\s+two|both|the\s+pair)\b|\s*(?:please|pls|plz)?\s*(?:[.;!?]|$)")
_MIRROR_WORD = re.compile(r"\b(mirror|flip)\b(?!\s+(?:the\s+)?(?:positions|places|spots|seats)\s+of\b)[^.;!?,]*")
#: "put the harp on the other side": a mirror of the tracks named before it in its clause
_OTHER_SIDE = re.compile(r"\b(?:to|on|onto|over\s+to|across\s+to)\s+the\s+(?:opposite|other)\s+side\b(?!\s+of\b)")
_CLAUSE_PUNCTUATION = re.compile(r"[,.;!?]")


def _mentions_in(mentions: list[Mention], starts: list[int], lo: int, hi: int) -> list[Mention]:
    """The mentions starting in ``[lo, hi)``; ``starts`` are the (sorted) mention starts."""
    return mentions[bisect.bisect_left(starts, lo):bisect.bisect_left(starts, hi)]


def _find_swaps(text: str, mentions: list[Mention], result: ParseResult) -> None:
    if not any(word in text for word in ("swap", "switch", "exchang", "trad", "flip", "reverse", "vice", "chang")):
        return
    starts = [mm.start for mm in mentions]
    for m in _SWAP_WORD.finditer(text):
        inside = [mm for mm in _mentions_in(mentions, starts, m.start(), m.end()) if mm.tracks]
        if len(inside) < 2 and not (inside and len(inside[0].tracks) == 2):
            # the pair said before the verb: "sitar swaps with the flute", "the toms are the wrong
            # way round, swap em" (round 6): the tracks named earlier in the sentence (or the one before)
            lo = max(text.rfind(c, 0, m.start()) for c in ".;!?") + 1
            if _PRONOUN_PAIR.match(text, m.end(1)) or (len(inside) == 1 and _WITH.match(text, m.end(1))):
                if lo > 0 and not _mentions_in(mentions, starts, lo, m.start()):
                    lo = max(text.rfind(c, 0, lo - 1) for c in ".;!?") + 1
                before = [mm for mm in _mentions_in(mentions, starts, lo, m.start()) if mm.tracks]
                inside = before[-1:] + inside if inside else before[-2:]
        if len(inside) >= 2:
            a, b = inside[0].tracks[0], inside[1].tracks[0]
            if a != b:
                result.swaps.append((a, b, m.group(0).strip()))
        elif len(inside) == 1 and len(inside[0].tracks) == 2:
            # one name for a pair ("swap the guitars", "switch the overheads"): the pair trades places
            a, b = inside[0].tracks
            result.swaps.append((a, b, m.group(0).strip()))
    # "the sax and the keys trade places": the sentence up to its last such phrase.  One sentence
    # at a time, so text without sentence punctuation is scanned once (a leading [^.;!?]* in one
    # pattern would rescan it from every position).
    if not any(word in text for word in ("places", "sides", "positions", "spots", "seats", "over", "round",
                                         "vice", "swap", "switch")):
        return
    for sentence in _SENTENCE.finditer(text):
        phrases = list(_SWAP_PLACES.finditer(text, sentence.start(), sentence.end()))
        if not phrases:
            continue
        lo, hi = sentence.start(), phrases[-1].end()
        with_ = _WITH.match(text, hi)
        if with_ is not None:   # "... swap places with the wurli": the partner said after "with"
            partner = [mm for mm in _mentions_in(mentions, starts, with_.end(), sentence.end()) if mm.tracks]
            if partner and partner[0].start - with_.end() <= len("the "):
                hi = partner[0].end
        inside = [mm for mm in _mentions_in(mentions, starts, lo, hi) if mm.tracks]
        if len(inside) >= 2 and not result.swaps:
            result.swaps.append((inside[0].tracks[0], inside[1].tracks[0], text[lo:hi].strip()))
        elif len(inside) == 1 and len(inside[0].tracks) == 2 and not result.swaps:
            result.swaps.append((*inside[0].tracks, text[lo:hi].strip()))   # "the toms swap over"
        elif len(inside) == 1 and len(inside[0].tracks) == 1 and phrases[-1].group().endswith("sides") \
                and not _WITH.match(text, phrases[-1].end()):
            # one track that "changes / switches sides" has no partner: it goes to its mirror image
            result.mirrors.append((list(inside[0].tracks), text[inside[0].start:hi].strip()))


#: "A where B is ... B where A is", "A in B's spot and B in A's": each of a pair sent to the
#: other's place is a swap (issue 16, round 5)
_PLACE_OF = re.compile(r"\bwhere\b|'s?\b|\b(?:spot|place|position|seat)s?\b")


def _find_crossed_places(text: str, mentions: list[Mention], result: ParseResult) -> None:
    """A sentence that names two tracks in the order A B B A and sends them to each other's
    place ("where ... is", "'s spot") swaps them."""
    if result.swaps or len(mentions) < 4 or not ("where" in text or "'" in text):
        return
    starts = [mm.start for mm in mentions]
    for sentence in _SENTENCE.finditer(text):
        inside = [mm for mm in _mentions_in(mentions, starts, sentence.start(), sentence.end()) if mm.tracks]
        if len(inside) != 4:
            continue
        a, b, c, d = (mm.tracks[0] for mm in inside)
        between = text[inside[0].end:inside[3].end]
        if a == d and b == c and a != b and len(_PLACE_OF.findall(between)) >= 2:
            result.swaps.append((a, b, text[inside[0].start:inside[3].end].strip()))
            return


#: "mirror everything except the vox": the tracks named after it are left out (round 7)
_EXCEPT = re.compile(r"\b(?:except(?:\s+for)?|but\s+not|apart\s+from|other\s+than|besides|bar|save\s+for|not"
                     r"|(?:but\s+)?(?:keep(?:ing)?|leav(?:e|ing)|hold(?:ing)?)|without|excluding)\b")   # round 8: "but keep the pad"
#: a mirror of the whole mix ("mirror the mix", "flip everything")
_WHOLE_MIX = re.compile(r"\b(?:everything|every\s+track|all|mix|whole|entire|panning|stage|scene|session|band)\b")


def _find_mirrors(text: str, mentions: list[Mention], result: ParseResult, all_tracks: list[str] = ()) -> None:
    starts = [mm.start for mm in mentions]
    spans = []
    if "mirror" in text or "flip" in text:
        for m in _MIRROR_WORD.finditer(text):
            said = m.group(0)
            cut = _EXCEPT.search(said)
            hi = m.start() + cut.start() if cut else m.end()
            inside = [t for mm in _mentions_in(mentions, starts, m.start(), hi) for t in mm.tracks]
            if cut:   # "mirror everything except trk 2": every track but those named after "except"
                left_out = {t for mm in _mentions_in(mentions, starts, hi, m.end()) for t in mm.tracks}
                inside = [t for t in (inside or all_tracks) if t not in left_out]
            elif not inside and not _WHOLE_MIX.search(said):
                # "organ belongs on the right, mirror it over", "..., mirror image": the tracks
                # named before it in its sentence (round 7); with none named, the whole mix
                lo = max(text.rfind(c, 0, m.start()) for c in ".;!?") + 1
                before = [mm for mm in _mentions_in(mentions, starts, lo, m.start()) if mm.tracks]
                inside = list(before[-1].tracks) if before else []
                if inside and any(set(inside) == set(t) for t, _ in result.mirrors):
                    continue   # "flip the keys to the right side, mirror image": one mirror
            result.mirrors.append((inside, said.strip()))
            spans.append(m.span())
    _other_sides(text, mentions, starts, spans, result)
    if len(result.mirrors) > 1:
        # a track mirrored in two phrases of one request ("the brass is seated on the opposite
        # side ..., so the whole brass section needs mirrored") is mirrored once (round 8)
        if any(not tracks for tracks, _ in result.mirrors):
            result.mirrors = [next(m for m in result.mirrors if not m[0])]
        else:
            done: set[str] = set()
            kept = []
            for tracks, said in result.mirrors:
                rest = [t for t in tracks if t not in done]
                done.update(rest)
                if rest:
                    kept.append((rest, said))
            result.mirrors = kept


def _other_sides(text: str, mentions: list[Mention], starts: list[int], spans: list, result: ParseResult) -> None:
    """Mirrors said as "to / on the other (opposite) side" (part of :func:`_find_mirrors`)."""
    if "side" in text and ("other" in text or "opposite" in text):
        stops = [p.start() for p in _CLAUSE_PUNCTUATION.finditer(text)]
        span_starts = [a for a, _ in spans]
        previous = 0   # the tracks named since the last break or the last such phrase
        for m in _OTHER_SIDE.finditer(text):
            k = bisect.bisect_right(span_starts, m.start()) - 1
            if k >= 0 and m.start() < spans[k][1]:
                continue   # "flip the piano to the other side": one mirror
            k = bisect.bisect_left(stops, m.start())
            lo = max(stops[k - 1] + 1 if k > 0 else 0, previous)
            previous = m.end()
            inside = [t for mm in _mentions_in(mentions, starts, lo, m.start()) for t in mm.tracks]
            if inside and not any(set(inside) == set(t) for t, _ in result.mirrors):
                # (the same tracks mirrored in two phrases are mirrored once: round 8)
                result.mirrors.append((inside, text[lo:m.end()].strip()))
