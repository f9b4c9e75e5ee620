"""Deterministic parser for explicit spatial cues in English prompts.

Holds
-----
* :func:`parse_prompt` -> :class:`ParseResult`: which session tracks the prompt mentions, the
  spatial cues attached to each (absolute or relative azimuth / elevation / distance / gain, a
  ``±`` spread, a swap or a mirror), tempo/key/bars and a room named in the prompt.
* :data:`MAX_PROMPT_CHARS` (4000) and :func:`check_prompt_text`: the one check of a prompt's type
  and length (the conductor uses it too).
* The phrase tables (hedges, clock, direction words) that turn words into numbers.

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
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import accumulate, compress, groupby, repeat
from operator import attrgetter, itemgetter, le, lt, not_, sub
from typing import Any, Callable

from stase.core.errors import InputError
from stase.core.placement import MAX_PROMPT_CHARS

from stase.agent.lexicon import (FUZZY_MIN_LENGTH, MARKER_WORDS, AliasHit, Lexicon, get_lexicon, may_be_close,
                      normalise_words)

# The longest prompt accepted (characters) is stase.core.placement.MAX_PROMPT_CHARS, the one limit the
# daemon also checks at its boundary: it bounds the time a parse can hold the interpreter.

# ------------------------------------------------------------------------------------------------
# Phrase tables.  Azimuth magnitudes for side words, chosen to match how producers use them and
# checked against our labelled eval set (tests/data/conductor_eval.jsonl): "slightly" ~ 15 deg,
# plain "left" ~ 40 deg (between a typical pan of 30-50 %), "hard/far/directly" = 90 deg.
# ------------------------------------------------------------------------------------------------
HEDGES: dict[str, float] = {
    "ever so slightly": 8.0, "just a touch": 10.0, "a little bit": 15.0, "slightly": 15.0, "a bit": 15.0,
    "a little": 15.0, "a touch": 12.0, "a tad": 12.0, "a hair": 8.0, "just": 15.0, "somewhat": 20.0,
    "mildly": 15.0, "gently": 15.0, "a bit more": 15.0, "moderately": 30.0, "halfway": 45.0, "half": 45.0,
    "mostly": 65.0, "well": 60.0, "quite": 55.0, "quite far": 70.0, "pretty far": 70.0, "way": 75.0,
    "very": 70.0, "strongly": 70.0, "wide": 70.0, "hard": 90.0, "far": 90.0, "fully": 90.0,
    "all the way": 90.0, "extreme": 90.0, "extremely": 90.0, "completely": 90.0, "directly": 90.0,
    "much": 60.0, "a lot": 60.0, "totally": 90.0, "dead": 90.0, "full": 90.0, "100%": 90.0, "straight": 90.0, "hard panned": 90.0,
}
PLAIN_SIDE_DEG = 40.0
OF_CENTRE_DEG = 20.0          # "left of centre" without a hedge
DIAGONAL_DEG = 45.0           # "front left"
REAR_DIAGONAL_DEG = 135.0     # "rear left", "behind and to the left"
ELEVATION_WORDS_DEG = {"overhead": 90.0, "above": 30.0, "below": -30.0}
SLIGHT_ELEVATION_DEG = 15.0
RELATIVE_AZIMUTH_DEG = 15.0   # "further left"
RELATIVE_ELEVATION_DEG = 15.0  # "higher"
FAR_SCALE, CLOSE_SCALE = 1.5, 0.67
DISTANCE_WORDS_M = {"very close": 0.5, "close": 1.0, "mid": 4.0, "far": 12.0, "very far": 25.0}
FEET_TO_M = 0.3048

_SMALL_NUMBERS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30,
    "forty": 40, "forty-five": 45, "forty five": 45, "fifty": 50, "sixty": 60, "seventy": 70,
    "eighty": 80, "ninety": 90, "a hundred": 100, "a": 1, "an": 1, "half a": 0.5, "half an": 0.5,
    "one and a half": 1.5, "a couple of": 2, "a couple": 2, "a few": 3,
}


def _alternation(phrases) -> str:
    """A regex for "any of ``phrases``" written as a trie ("a(?: (?:bit|lot)|n)?"): the engine
    tries one branch per distinct next character instead of every phrase in turn, and where one
    phrase is a prefix of another the longer is tried first, as a longest-first list would."""
    trie: dict = {}
    for phrase in phrases:
        node = trie
        for ch in phrase:
            node = node.setdefault(ch, {})
        node[""] = {}

    def build(node: dict) -> str:
        branches = [re.escape(ch) + build(child) for ch, child in sorted(node.items()) if ch]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        return f"(?:{body})?" if "" in node else body

    return build(trie)


_WORD_NUM = _alternation(_SMALL_NUMBERS)
# a digit run is read whole: possessive, and never entered mid-run, so a 100 kB run of digits
# costs one pass instead of one pass per digit (the regex engine backtracks otherwise)
NUM = rf"(?:[-+]?(?<!\d)\d++(?:\.\d++)?|(?:{_WORD_NUM})(?![a-z]))"
DEG = r"(?:degrees?|degs?|deg)\b"
SIDE = r"(left|right)"
_HEDGE = _alternation(HEDGES)
HEDGE = rf"(?:({_HEDGE})\s+)"
PREP = r"(?:(?:off\s+)?to\s+(?:the|my|your|our)\s+|on\s+(?:the|my|your)\s+|towards?\s+(?:the\s+)?|at\s+the\s+|in\s+the\s+|over\s+(?:on|to)\s+the\s+)"
CENTRE = r"(?:cent(?:er|re)|middle)"
DIST_UNIT = r"(m|meters?|metres?|mtrs?|feet|foot|ft|cm|centimet(?:er|re)s?)\b"
#: A distance unit is a whole word: a number or a space comes before it, ``\b`` after it.
_UNIT_WORDS = " ".join("=" + u for u in ("m meter meters metre metres mtr mtrs feet foot ft cm centimeter centimeters "
                                          "centimetre centimetres").split())

#: Prose words that are aliases only inside a track name ("the key of D", "lead the way").
PROSE_SKIP = frozenset({
    "lead", "key", "beat", "beats", "break", "mc", "ag", "eg", "ep", "db", "dr", "sn", "sd", "bd", "oh",
    "lv", "va", "vl", "vn", "cl", "ob", "fg", "hp", "tp", "fl", "bs", "hn", "gt", "pn", "cb", "str",
    "string", "grand", "ride", "crash", "clap", "bells", "harmony", "backing", "acoustic", "electric",
    "upright", "sub", "org", "tom", "hat", "arp", "hook", "texture", "textures", "atmosphere", "ambience",
    "ambient", "drone", "swell", "swells", "doubles", "recorder", "whistle", "triangle", "syn", "kbd",
    "trb", "tba", "sop", "break", "voices", "singers", "rap", "hats", "horn", "va", "tpt", "soundscape",
    "harm", "ww", "winds", "reeds", "sub", "bones", "break", "mallets", "chimes", "gong", "ohs", "vcl",
    "voc", "trp",
})


def number(text: str) -> float:
    """A number written in digits or words ("half a" -> 0.5, "twenty" -> 20)."""
    t = text.strip().lower()
    if t in _SMALL_NUMBERS:
        return float(_SMALL_NUMBERS[t])
    return float(t)


_DEGREE_SIGN = re.compile(r"(?<!\s)\s*+[\u00b0\u00ba\u02da]")
_PLUS_MINUS_SIGN = re.compile(r"\u00b1|\+/-|\+-(?=\s*\d)")
_UNIT_AFTER_DIGIT = re.compile(r"(\d)(?=(?:m|cm|ft|bpm)\b)")
_FEET_MARK = re.compile(r"(\d)'(?!\w)")


def normalise_text(prompt: str) -> str:
    """Lower-case, with degree/plus-minus symbols and unicode dashes spelled out."""
    t = prompt.lower()
    t = t.replace("\u2019", "'").replace("\u2212", "-").replace("\u2013", "-").replace("\u2014", " - ")
    # each substitution only where its characters occur (a C-speed test): a text without them
    # is not scanned by the regex engine at all
    if "\u00b0" in t or "\u00ba" in t or "\u02da" in t:
        # only from the start of a whitespace run: a long run without a degree sign is scanned once
        t = _DEGREE_SIGN.sub(" degrees", t)
    if "\u00b1" in t or "+" in t:
        t = _PLUS_MINUS_SIGN.sub(" plus-or-minus ", t)
    t = t.replace("plus or minus", "plus-or-minus")
    if "m" in t or "ft" in t:
        t = _UNIT_AFTER_DIGIT.sub(r"\1 ", t)
    if "'" in t:
        t = _FEET_MARK.sub(r"\1 feet", t)
    return t


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

    def kinds(self) -> set[str]:
        k = set(self.values) | set(self.relative)
        if "distance_scale" in k:
            k.discard("distance_scale")
            k.add("distance_m")
        if self.spread_deg is not None:
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

    @property
    def has_cues(self) -> bool:
        return bool(self.cues or self.swaps or self.mirrors)

    def cues_for(self, track: str) -> list[Cue]:
        return [c for c in self.cues if track in c.tracks]


# ------------------------------------------------------------------------------------------------
# Spatial expressions
# ------------------------------------------------------------------------------------------------
def _side_sign(side: str) -> float:
    return 1.0 if side.startswith("left") else -1.0


def _hedge(word: str | None, default: float) -> float:
    return HEDGES[word] if word else default


def _distance_m(value: str, unit: str) -> float:
    v = number(value)
    unit = unit.lower()
    if unit.startswith(("f",)):
        return v * FEET_TO_M
    if unit.startswith("c"):
        return v / 100.0
    return v


@lru_cache(maxsize=None)
def _whole_word(word: str) -> re.Pattern:
    """``word`` with no letter on either side.  The pattern opens with the word itself, so the
    regex engine finds its candidates with a fast literal search instead of trying every position."""
    w = re.escape(word)
    return re.compile(rf"{w}(?![a-z])(?<![a-z]{w})")


class _Vocabulary:
    """Which trigger literals a normalised text holds, each looked up once per text.

    A literal is a substring ("deg" is in "degrees"), or, written ``=word``, a word with no letter
    on either side (``=in`` is not in "bring").  Each lookup is one C-speed search of the text.
    """

    def __init__(self, text: str):
        self.text = text
        self._characters = set(text)   # a literal with a character the text lacks is absent
        self._known: dict[str, bool] = {}

    def has(self, literal: str) -> bool:
        known = self._known.get(literal)
        if known is None:
            word = literal[1:] if literal.startswith("=") else None
            if not self._characters.issuperset(word or literal):
                known = False
            elif word is not None:
                known = _whole_word(word).search(self.text) is not None
            else:
                known = literal in self.text
            self._known[literal] = known
        return known

    def holds(self, needs: tuple[tuple[str, ...], ...]) -> bool:
        """Every group of ``needs`` has at least one of its literals in the text."""
        return all(any(self.has(literal) for literal in group) for group in needs)


@dataclass(frozen=True)
class _Rule:
    """One spatial expression: a pattern, what a match means, and the literals any match holds.

    ``needs`` is a conjunction of groups, each a disjunction of literals (:class:`_Vocabulary`):
    a text lacking every literal of some group cannot match, so the rule skips it without running
    its pattern (one cheap substring search instead of one regex attempt per character).
    tests/test_parser.py checks, on every test prompt and on random ones, that wherever a rule
    reads something its ``needs`` hold.
    """

    regex: re.Pattern
    #: match -> Cue fields (or ``None``): a function of the match's text and groups alone
    build: Callable[[re.Match], dict | None]
    needs: tuple[tuple[str, ...], ...]


#: The rules in precedence order: earlier rules win where spans overlap.
_RULES: list[_Rule] = []


def _rule(pattern: str, needs: tuple[str, ...]):
    """Register ``builder(match) -> Cue fields`` for ``pattern``; each entry of ``needs`` is one
    group of space-separated literals (see :class:`_Rule`)."""
    def deco(fn):
        _RULES.append(_Rule(re.compile(pattern), fn, tuple(tuple(group.split()) for group in needs)))
        return fn
    return deco


@_rule(rf"plus-or-minus\s*({NUM})\s*(?:{DEG})?",
       needs=("plus-or-minus",))
def _plus_minus(m):
    return {"spread_deg": abs(number(m.group(1)))}


@_rule(rf"\b{HEDGE}?{SIDE}\s+and\s+(?:(?:the\s+)?other\s+)?(?:to\s+the\s+)?(left|right)\b(?!\s+of)",
       needs=("and", "left right"))
def _both_sides(m):
    if m.group(2) == m.group(3):
        return None
    return {"spread_deg": _hedge(m.group(1), 70.0)}


@_rule(rf"\bazimuth\s*+(?:of|at|to|:|=|is)?\s*({NUM})\s*(?:{DEG})?(?:\s*(?:to\s+the\s+)?{SIDE})?",
       needs=("azimuth",))
def _azimuth_keyword(m):
    v = number(m.group(1))
    if m.group(2):
        v = abs(v) * _side_sign(m.group(2))
    return {"values": {"azimuth_deg": v}}


@_rule(rf"\b(?:elevation|elevated|raised|height|tilted\s+up)\s*+(?:of|at|to|by|:|=|is)?\s*({NUM})\s*(?:{DEG})?",
       needs=("elevat raised height tilted",))
def _elevation_keyword(m):
    return {"values": {"elevation_deg": number(m.group(1))}}


@_rule(rf"({NUM})\s*{DEG}\s*(?:of\s+elevation|up(?:wards?)?|above|high|elevat(?:ed|ion)|overhead|down(?:wards?)?|below|low|under(?:neath)?)",
       needs=("deg",))
def _elevation_degrees(m):
    v = abs(number(m.group(1)))
    down = re.search(r"down|below|low|under", m.group(0)[m.end(1) - m.start(0):])
    return {"values": {"elevation_deg": -v if down else v}}


@_rule(rf"({NUM})\s*{DEG}\s+(?:further|farther|more)\s+(?:to\s+the\s+)?{SIDE}"
       rf"|\b{SIDE}\s+by\s+(?:(?:another|an\s+extra|a\s+further)\s+)?({NUM})\s*{DEG}"
       rf"|\b(?:another|an\s+extra|a\s+further)\s+({NUM})\s*{DEG}\s+(?:to\s+the\s+)?{SIDE}",
       needs=("deg", "left right"))
def _relative_degrees(m):
    if m.group(1) is not None:
        v, side = number(m.group(1)), m.group(2)
    elif m.group(3) is not None:
        side, v = m.group(3), number(m.group(4))
    else:
        v, side = number(m.group(5)), m.group(6)
    out = {"relative": {"azimuth_deg": abs(v) * _side_sign(side)}}
    if m.group(3) is not None and not re.search(r"another|extra|further", m.group(0)):
        out["fallback"] = {"azimuth_deg": abs(v) * _side_sign(side)}  # "right by 35 degrees"
    return out


@_rule(rf"({NUM})\s*{DEG}\s*(?:off[- ]cent(?:er|re)\s*|from\s+(?:the\s+)?{CENTRE}\s*)?{PREP}?{SIDE}",
       needs=("deg", "left right"))
def _degrees_side(m):
    return {"values": {"azimuth_deg": abs(number(m.group(1))) * _side_sign(m.group(2))}}


@_rule(rf"\b{SIDE}\s+(?:at\s+)?({NUM})\s*{DEG}",
       needs=("deg", "left right"))
def _side_degrees(m):
    return {"values": {"azimuth_deg": abs(number(m.group(2))) * _side_sign(m.group(1))}}


@_rule(r"\b(?:at\s+)?(?:about\s+|around\s+)?(?:the\s+)?(\d{1,2}|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve)"
       r"(?:\s*o'?\s?clock|\s*oclock|:00\b)",
       needs=("clock :00",))
def _clock(m):
    hour = number(m.group(1)) % 12
    from stase.core.conventions import wrap_azimuth_deg
    return {"values": {"azimuth_deg": wrap_azimuth_deg(-30.0 * hour)}}


@_rule(rf"({NUM})\s*{DIST_UNIT}\s*(?:further\s+|farther\s+|more\s+)?(back|(?<=further )away|(?<=farther )away|closer|nearer|forward)\b(?!\s+of\b)"
       rf"|\b(back|closer|nearer|forward|in)\s+(?:by\s+)?(?:another\s+)?({NUM})\s*{DIST_UNIT}",
       needs=("back away closer nearer forward =in", _UNIT_WORDS))
def _relative_distance(m):
    if m.group(1) is not None:
        d, direction = _distance_m(m.group(1), m.group(2)), m.group(3)
    else:
        direction, d = m.group(4), _distance_m(m.group(5), m.group(6))
    sign = -1.0 if direction in ("closer", "nearer", "forward", "in") else 1.0
    out = {"relative": {"distance_m": sign * d}}
    if m.group(1) is not None and direction == "back" and not re.search(r"further|farther|more", m.group(0)):
        out["fallback"] = {"distance_m": d}
    return out


@_rule(rf"({NUM})\s*{DIST_UNIT}(?:\s+(?:away|from\s+(?:me|the\s+listener|us)|off|distant))?"
       rf"(?:\s+(?:directly\s+)?(?:(?:to\s+(?:the|my|your)\s+)({'left|right'})|(behind)|(in\s+front)))?",
       needs=(_UNIT_WORDS,))
def _distance(m):
    out = {"values": {"distance_m": _distance_m(m.group(1), m.group(2))}}
    if m.group(3):
        out["values"]["azimuth_deg"] = 90.0 * _side_sign(m.group(3))
    elif m.group(4):
        out["values"]["azimuth_deg"] = 180.0
    elif m.group(5):
        out["values"]["azimuth_deg"] = 0.0
    return out


@_rule(rf"({NUM})\s*db\s*(louder|quieter|softer|up|down|more|less|lower|higher)?",
       needs=("db",))
def _gain(m):
    v = number(m.group(1))
    if m.group(2) in ("quieter", "softer", "down", "less", "lower"):
        v = -abs(v)
    return {"relative": {"gain_db": v}}


@_rule(rf"\b{HEDGE}?(?:further|farther|more)\s+(?:over\s+)?(?:to(?:wards?)?\s+(?:the\s+)?)?{SIDE}"
       rf"|\b{HEDGE}?(?:more|further)\s+to\s+the\s+{SIDE}",
       needs=("further farther more", "left right"))
def _relative_side(m):
    hedge, side = (m.group(1), m.group(2)) if m.group(2) else (m.group(3), m.group(4))
    step = RELATIVE_AZIMUTH_DEG
    if hedge in ("much", "way", "far", "a lot", "well"):
        step = 30.0
    elif hedge and HEDGES.get(hedge, 15.0) <= 15.0:
        step = 10.0
    return {"relative": {"azimuth_deg": step * _side_sign(side)}}


@_rule(rf"\b{HEDGE}?(?:further|farther|more)\s+(?:back|away|distant)|\bpush(?:ed|ing)?\b(?:(?!\bpush)[^,.;])*?\b(?P<key>back)\b"
       r"|\b(?:towards?|at|in)\s+the\s+back\b|\bback\s+(?:a\s+bit|a\s+little|a\s+touch)|\bfarther\b|\bfurther\s+off\b",
       needs=("back away distant farther off",))
def _further(m):
    scale = FAR_SCALE
    if m.group(1) and HEDGES.get(m.group(1), 30.0) <= 15.0 or re.search(r"a\s+(bit|little|touch)", m.group(0)):
        scale = 1.25
    return {"relative": {"distance_scale": scale}}


@_rule(rf"\b{HEDGE}?(?:closer|nearer)\b|\bbring\b(?:(?!\bbring\b)[^,.;])*?\b(?P<key>forward|in|up\s+front|closer)\b"
       r"|\bmove\b(?:(?!\bmove\b)[^,.;])*?\b(?P<key2>forward)\b",
       needs=("closer nearer forward front =in",))
def _closer(m):
    scale = CLOSE_SCALE
    if m.group(1) and HEDGES.get(m.group(1), 30.0) <= 15.0:
        scale = 0.8
    return {"relative": {"distance_scale": scale}}


@_rule(r"\b(?:very\s+close|right\s+up\s+close|in\s+my\s+face|whisper\w*\s+in\s+my\s+ear|right\s+next\s+to\s+(?:me|my\s+ear)|inches\s+away)\b",
       needs=("close face whisper next inches",))
def _very_close(m):
    return {"values": {"distance_m": DISTANCE_WORDS_M["very close"]}}


@_rule(r"\b(?:very\s+far(?:\s+away)?|really\s+far(?:\s+away)?|miles\s+away|very\s+distant)\b",
       needs=("far miles distant",))
def _very_far(m):
    return {"values": {"distance_m": DISTANCE_WORDS_M["very far"]}}


@_rule(r"\b(?:far\s+away|far\s+off|in\s+the\s+distance|distant|far\s+from\s+(?:me|the\s+listener)|way\s+back|far\s+back)\b",
       needs=("far distan back",))
def _far(m):
    return {"values": {"distance_m": DISTANCE_WORDS_M["far"]}}


@_rule(r"\b(?:up\s+close|close\s+up|close\s+to\s+(?:me|the\s+listener)|close|near\s+me|nearby|intimate(?:ly)?|near)\b(?!\s+(?:the|a)\b)",
       needs=("close near intimate",))
def _close(m):
    return {"values": {"distance_m": DISTANCE_WORDS_M["close"]}}


@_rule(r"\bmid(?:-|\s)?(?:distance|range|ground)\b",
       needs=("mid",))
def _mid(m):
    return {"values": {"distance_m": DISTANCE_WORDS_M["mid"]}}


@_rule(r"\bstage[- ](left|right)\b",
       needs=("stage", "left right"))
def _stage_side(m):
    # stage directions are the performer's: stage left is the audience's right
    return {"values": {"azimuth_deg": -PLAIN_SIDE_DEG * _side_sign(m.group(1))}}


@_rule(rf"\b{HEDGE}?(?:house|audience)[- ](left|right)\b",
       needs=("house audience", "left right"))
def _house_side(m):
    return {"values": {"azimuth_deg": _hedge(m.group(1), PLAIN_SIDE_DEG) * _side_sign(m.group(2))}}


@_rule(rf"\b{HEDGE}?{PREP}?(?:(front|rear|back)[- ](left|right)|(left|right)[- ](front|rear|back))\b",
       needs=("front rear back", "left right"))
def _diagonal(m):
    where = m.group(2) or m.group(5)
    side = m.group(3) or m.group(4)
    base = DIAGONAL_DEG if where == "front" else REAR_DIAGONAL_DEG
    return {"values": {"azimuth_deg": base * _side_sign(side)}}


@_rule(rf"\b{HEDGE}?{PREP}?{HEDGE}?{SIDE}(\s+of\s+(?:the\s+)?{CENTRE})?(?:[- ](?:hand\s+)?side|\s+channel|\s+speaker)?\b(?!\s+(?:and|or)\s+(?:the\s+)?(?:other\s+)?(?:to\s+the\s+)?(?:left|right))",
       needs=("left right",))
def _side(m):
    hedge = m.group(1) or m.group(2)
    if m.group(4):  # "left of centre"
        v = OF_CENTRE_DEG if not hedge else min(_hedge(hedge, OF_CENTRE_DEG), OF_CENTRE_DEG) * (
            0.5 if HEDGES[hedge] <= 15.0 else 1.0)
    else:
        v = _hedge(hedge, PLAIN_SIDE_DEG)
    return {"values": {"azimuth_deg": v * _side_sign(m.group(3))}, "side": True, "hedge": hedge}


@_rule(r"\b(?:behind\s+(?:me|us|you|the\s+listener|my\s+head|the\s+head|your\s+head)|from\s+behind|behind|in\s+the\s+rear|at\s+the\s+rear|to\s+the\s+rear|rear)\b",
       needs=("behind rear",))
def _behind(m):
    return {"values": {"azimuth_deg": 180.0}, "back": True}


@_rule(r"\b(?:front\s+and\s+cent(?:er|re)|dead\s+cent(?:er|re)|straight\s+ahead|directly\s+ahead|directly\s+in\s+front(?:\s+of\s+(?:me|us|you))?"
       r"|in\s+front(?:\s+of\s+(?:me|us|you|the\s+listener))?|(?:in\s+the\s+|at\s+the\s+)?(?:cent(?:er|re)|middle)|cent(?:er|re)d|up\s+front|ahead|front)\b",
       needs=("front cent middle ahead",))
def _front(m):
    return {"values": {"azimuth_deg": 0.0}, "front": True}


@_rule(r"\b(?:directly\s+(?:above|overhead)|right\s+above|straight\s+up|overhead|above\s+my\s+head|above\s+(?:me|us|the\s+listener)|up\s+above|from\s+above|on\s+the\s+ceiling)\b",
       needs=("above overhead straight ceiling",))
def _overhead(m):
    return {"values": {"elevation_deg": ELEVATION_WORDS_DEG["overhead"]}}


@_rule(rf"\b{HEDGE}?(?:above|up\s+high|high\s+up|raised|elevated|up\s+in\s+the\s+air|in\s+the\s+air|below|beneath|underneath|down\s+low|low\s+down|from\s+below|at\s+my\s+feet|on\s+the\s+floor)\b",
       needs=("above high raised elevated air below neath low feet floor",))
def _above_below(m):
    hedge = m.group(1)
    down = re.search(r"below|beneath|under|low|feet|floor", m.group(0))
    v = ELEVATION_WORDS_DEG["below" if down else "above"]
    if hedge and HEDGES[hedge] <= 15.0:
        v = SLIGHT_ELEVATION_DEG * (-1 if down else 1)
    elif hedge and HEDGES[hedge] >= 65.0:
        v = 45.0 * (-1 if down else 1)
    return {"values": {"elevation_deg": v}}


@_rule(r"\b(?:at\s+)?ear[- ]level\b",
       needs=("level",))
def _ear_level(m):
    return {"values": {"elevation_deg": 0.0}}


@_rule(rf"\b{HEDGE}?(?:higher(?:\s+up)?|raise[ds]?|lift(?:ed|s)?|up\s+a\s+bit)\b|\b{HEDGE}?(?:lower|drop(?:ped)?\s+down)\b",
       needs=("higher raise lift bit lower drop",))
def _higher_lower(m):
    down = "lower" in m.group(0) or "drop" in m.group(0)
    return {"relative": {"elevation_deg": -RELATIVE_ELEVATION_DEG if down else RELATIVE_ELEVATION_DEG}}


@_rule(r"\b(louder|quieter|softer|turn(?:ed)?\s+(?:it\s+)?(?:up|down))\b",
       needs=("louder quieter softer turn",))
def _louder(m):
    up = m.group(1).startswith("louder") or m.group(1).endswith("up")
    return {"relative": {"gain_db": 3.0 if up else -3.0}}


@_rule(rf"\b(?:at\s+|to\s+)?({NUM})\s*{DEG}",
       needs=("deg",))
def _plain_degrees(m):
    return {"values": {"azimuth_deg": number(m.group(1))}}


@_rule(r"\b(?:spread|wide|widely|wide\s+apart|either\s+side|both\s+sides|split)\b",
       needs=("spread wide side split",))
def _spread(m):
    return {"spread_deg": 60.0, "soft": True}


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
_ALL_TRACKS = re.compile(r"\b(?:everything|every track|all(?: the)? tracks|all instruments|all of them|the whole mix)\b")
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
            or {tw[0] for tw in track_words.values() if tw} & distinct
            or lexicon.phrase_lengths(distinct)
            or (tracks and any(word in text for word in ("every", "all", "whole")))):
        return [], []   # no word of the text can name a track or an instrument: skip the passes
    words, starts, ends = _words_outside(text, sorted(blocked), parts)
    distinct = set(words)
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
    for hit in lexicon.find(words, fuzzy=False, skip=PROSE_SKIP, min_words=2):
        found = tracks_playing(hit.role)
        if found and not any(taken[hit.start:hit.end]):
            add(hit.start, hit.end, found, "alias", hit.role)
    # 1. full track names (longest first), skipping names that are pure markers
    named = sorted(tracks, key=lambda t: -len(track_words[t]))
    firsts = {tw[0] for tw in track_words.values() if tw} & distinct
    positions: dict[str, list[int]] = {}   # word -> where it occurs, so each name is sought only there
    if firsts:
        found_at = sorted(_where(words, firsts), key=words.__getitem__)   # stable: in text order per word
        positions = {w: list(at) for w, at in groupby(found_at, key=words.__getitem__)}
    for track in named:
        tw = track_words[track]
        if not tw or all(w in MARKER_WORDS or w.isdigit() for w in tw) or tw[0] not in positions:
            continue
        n = len(tw)
        same = [t for t in tracks if track_words[t] == tw]
        if n == 1:   # the common case, without a slice per occurrence
            for i in positions[tw[0]]:
                if not taken[i]:
                    mentions.append(Mention(words[i], starts[i], ends[i], same, None, "name"))
                    taken[i] = True
            continue
        for i in positions[tw[0]]:
            if i + n <= len(words) and not any(taken[i:i + n]) and words[i:i + n] == tw:
                add(i, i + n, same, "name")
    # 2. lexicon aliases, never straddling a word taken above; a free word's fuzzy spelling
    #    depends on nothing but the word, so it is asked once per distinct word
    hits = lexicon.find(words, fuzzy=False, skip=PROSE_SKIP, taken=taken)
    exact = list(taken)
    for hit in hits:
        exact[hit.start:hit.end] = [True] * (hit.end - hit.start)
    free_words = set(compress(words, map(not_, exact)))
    fuzzy = {}
    for w in free_words:
        if len(w) >= FUZZY_MIN_LENGTH and w not in MARKER_WORDS and w not in PROSE_SKIP:
            found_hits = lexicon.find([w], fuzzy=True, skip=PROSE_SKIP)
            if found_hits:
                fuzzy[w] = found_hits
    if fuzzy:
        for k in [k for k in _where(words, fuzzy) if not exact[k]]:
            hits.extend(AliasHit(h.role, k, k + 1, h.alias, h.weak, h.fuzzy) for h in fuzzy[words[k]])
        hits.sort(key=attrgetter("start"))
    resolved: dict[str, tuple[list[str], str]] = {}   # role -> the tracks it finds, and how
    for hit in hits:
        if hit.role not in resolved:
            found, how = tracks_playing(hit.role), "alias"
            if not found:
                fam = families.get(hit.role)
                found, how = [t for t in tracks if roles.get(t) and families.get(roles[t]) == fam], "family"
            resolved[hit.role] = (found, how)
        found, how = resolved[hit.role]
        i, j = hit.start, hit.end
        if found:
            add(i, j, list(found), how, hit.role)
        else:
            absent.append(Mention(text[starts[i]:ends[j - 1]], starts[i], ends[j - 1], [], hit.role, "absent"))
            taken[i:j] = [True] * (j - i)
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
        close = {w for w, c in spelt.items() if c}
        if close:
            for i in [i for i in _where(words, close) if not taken[i]]:
                add(i, i + 1, own[spelt[words[i]][0]], "spelling")
    mentions.sort(key=attrgetter("start"))
    return mentions, absent


# ------------------------------------------------------------------------------------------------
# Clauses and attachment
# ------------------------------------------------------------------------------------------------
#: Where a clause ends, as alternatives tried in this order: sentence punctuation, a comma, a
#: spaced dash, a conjunction.  (Each with the characters or words it needs to occur at all.)
_CLAUSE_BREAKS = ((r"[.;!?\n]+", tuple(".;!?\n")), (",", (",",)), (r"\s-\s", ("-",)),
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


def _scan_expressions(text: str, vocabulary: _Vocabulary | None = None) -> list[tuple[int, int, dict]]:
    """The spatial expressions in a normalised text: ``(start, end, fields)``, in text order.

    A rule's fields depend only on the words it matched (:class:`_Rule`), so each distinct
    match is built once: "left" said 9,000 times is read once.  The fields are shared, and
    nothing downstream changes them.
    """
    vocabulary = vocabulary or _Vocabulary(text)
    rules = [rule for rule in _RULES if vocabulary.holds(rule.needs)]
    taken = [False] * len(text) if len(rules) > 1 else []
    found: list[tuple[int, int, dict]] = []
    for number, rule in enumerate(rules):
        # a rule's own matches never overlap, so only earlier rules' spans can block one, and
        # only a later rule needs this rule's spans marked
        check, mark = bool(found), number + 1 < len(rules)
        keys = [key for key in ("key", "key2") if key in rule.regex.groupindex]
        build = rule.build
        built: dict[tuple, dict | None] = {}
        if not (keys or check or mark):   # the usual case: one rule finds everything
            for m in rule.regex.finditer(text):
                s, e = m.span()
                if e > s:
                    said = (m.group(), m.groups())
                    fields = built[said] if said in built else built.setdefault(said, build(m))
                    if fields:
                        found.append((s, e, fields))
            continue
        for m in rule.regex.finditer(text):
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
                taken[s:e] = [True] * (e - s)
            found.append((s, e, fields))
    found.sort(key=itemgetter(0))
    return found


def _combine(exprs: list[tuple[int, int, dict]], text: str) -> Cue | None:
    """Merge the expressions of one clause into one cue (front/back with a side, hedges)."""
    if not exprs:
        return None
    if len(exprs) == 1:
        return _one_cue(*exprs[0], text)
    start, end = exprs[0][0], exprs[-1][1]
    cue = Cue(text[start:end].strip(), start, end)
    fields = [f for _, _, f in exprs]
    back = any_azimuth = False
    sides = []
    for f in fields:
        if f.get("back"):
            back = True
        if f.get("side"):
            sides.append(f)
        if "azimuth_deg" in f.get("values", ()):
            any_azimuth = True
    values, relative = cue.values, cue.relative
    for f in fields:
        if f.get("soft") and (cue.spread_deg is not None or any_azimuth):
            continue
        if f.get("back") and sides:
            continue
        if f.get("front") and (sides or back):
            continue
        if "values" in f:
            for k, v in f["values"].items():
                values.setdefault(k, v)
        if "relative" in f:
            for k, v in f["relative"].items():
                relative[k] = relative.get(k, 0.0) + v if k != "distance_scale" else relative.get(k, 1.0) * v
        if f.get("spread_deg") is not None:
            cue.spread_deg = f["spread_deg"]
        if "fallback" in f:
            cue.fallback.update(f["fallback"])
    if back and sides:
        side = sides[0]
        lateral = abs(side["values"]["azimuth_deg"])
        if side.get("hedge") is None:
            lateral = 180.0 - REAR_DIAGONAL_DEG
        az = 180.0 - lateral
        cue.values["azimuth_deg"] = az * (1.0 if side["values"]["azimuth_deg"] > 0 else -1.0)
    return cue


def _one_cue(start: int, end: int, f: dict, text: str) -> Cue:
    """:func:`_combine` of one expression (most clauses hold one): the same rules, reduced."""
    get = f.get
    back, side, values = get("back"), get("side"), get("values")
    said = text[start:end].strip()
    if (back and side) or (get("front") and (side or back)) or (get("soft") and values and "azimuth_deg" in values):
        cue = Cue(said, start, end, {}, {}, None, [], {})   # it gives way, as in _combine
    else:
        relative, fallback = get("relative"), get("fallback")
        cue = Cue(said, start, end, dict(values) if values else {},
                  {k: 1.0 * v if k == "distance_scale" else 0.0 + v for k, v in relative.items()} if relative else {},
                  get("spread_deg"), [], dict(fallback) if fallback else {})
    if back and side:
        lateral = abs(values["azimuth_deg"]) if get("hedge") is not None else 180.0 - REAR_DIAGONAL_DEG
        cue.values["azimuth_deg"] = (180.0 - lateral) * (1.0 if values["azimuth_deg"] > 0 else -1.0)
    return cue


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
                 lexicon: Lexicon | None = None) -> ParseResult:
    """Parse a prompt against a session's track names.

    Parameters
    ----------
    prompt : the producer's words, at most :data:`MAX_PROMPT_CHARS` characters.
    tracks : the session's track names (mentions resolve to these).
    roles : track -> role (default: :func:`stase.agent.lexicon.match_track_role` of each name).

    Raises
    ------
    InputError : ``prompt`` is not a string or is too long (:func:`check_prompt_text`).
    """
    return _parse(check_prompt_text(prompt), tracks, roles, lexicon)


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
           lexicon: Lexicon | None = None) -> ParseResult:
    """:func:`parse_prompt` without the length cap.  Its cost grows linearly with the text
    (tests/test_hardening_plan.py parses 100 kB), which is what makes the cap a bound on time."""
    with _cycle_collector_paused():
        return _parse_text(prompt, tracks, roles, lexicon)


def _parse_text(prompt: str, tracks: list[str], roles: dict[str, str | None] | None,
                lexicon: Lexicon | None) -> ParseResult:
    lexicon = lexicon or get_lexicon()
    if roles is None:
        roles = {t: lexicon.role_of(t) for t in tracks}
    text = normalise_text(prompt)
    result = ParseResult(prompt=prompt, music=parse_music(text))
    exprs = _scan_expressions(text)
    mentions, absent = find_mentions(text, tracks, roles, lexicon, blocked=[(s, e) for s, e, _ in exprs])
    result.mentions = mentions
    result.residual = _residual(text, [*map(itemgetter(0), exprs), *map(attrgetter("start"), mentions + absent)],
                                [*map(itemgetter(1), exprs), *map(attrgetter("end"), mentions + absent)])
    _find_swaps(text, mentions, result)
    _find_mirrors(text, mentions, result)
    if exprs:   # without an expression no clause has a cue to give, lend or share
        _cues_of_clauses(text, exprs, mentions, absent, result)
    return result


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
                     absent: list[Mention], result: ParseResult) -> None:
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
    swapped = {t for a, b, _ in result.swaps for t in (a, b)}

    def kinds_of(cl) -> set:
        return {k for _, _, f in cl["exprs"] for k in list(f.get("values", {})) + list(f.get("relative", {}))}

    # a clause with cues but no mention lends them to a neighbour that lacks that kind of cue
    # (the nearest clause with a mention on each side)
    named = [c for c in active if c["mentions"]]
    named_at = [c["index"] for c in named]
    for c in active:
        if c["exprs"] and not c["mentions"] and not c["absent"]:
            kinds = kinds_of(c)
            k = bisect.bisect_left(named_at, c["index"])
            prev = named[k - 1] if k > 0 else None
            nxt = named[k] if k < len(named) else None
            prev_free = prev is not None and not (kinds & kinds_of(prev))
            nxt_free = nxt is not None and not (kinds & kinds_of(nxt))
            target = prev if prev_free or (prev is not None and not nxt_free) else nxt
            if target is not None:
                target["exprs"] = sorted(target["exprs"] + c["exprs"], key=lambda f: f[0])
                c["exprs"] = []
    # a bare list shares the next item's cue: "the guitar and the keys on the left"
    for c in reversed(named):
        nxt = clauses.get(c["index"] + 1)
        if nxt is not None and not c["exprs"] and nxt["join"] in ("and", ",", "&", "plus") and nxt["exprs"] \
                and not nxt.get("shared_from") and not any(set(m.tracks) & swapped for m in c["mentions"]):
            c["exprs"] = list(nxt["exprs"])
            c["shared"] = True

    for c in active:
        if not c["exprs"]:
            continue
        if not c["mentions"] and not c["absent"] and not mentions \
                and _ORDER_VERBS.search(text[c["start"]:c["end"]]) \
                and any(f.get("values") or f.get("relative") for _, _, f in c["exprs"]):
            result.orphans.append(text[c["start"]:c["end"]].strip())
        result.unknown.extend(c["absent"])
        if not c["mentions"]:
            continue
        targets = c["mentions"]
        if len(targets) == 1 or c.get("shared"):
            cue = _combine(c["exprs"], text)
            if cue is not None:
                result.cues.append(_attach(cue, targets, text, shared=bool(c.get("shared"))))
            continue
        # each expression goes to the nearest mention before it (or the first one after it)
        target_starts = [mm.start for mm in targets]
        befores = map(bisect.bisect_right, repeat(target_starts), [ex[0] for ex in c["exprs"]])
        owners = list(map(max, map(sub, befores, repeat(1)), repeat(0)))   # max(before - 1, 0), in C
        if all(map(lt, owners, owners[1:])):   # no mention holds two expressions: one cue each
            append = result.cues.append
            # a cue's numbers depend on its expression's fields alone, and equal expressions
            # share their fields (_scan_expressions): work them out once per distinct fields
            model: dict[int, Cue] = {}
            for i, (s, e, f) in zip(owners, c["exprs"]):
                mm = targets[i]
                if len(mm.tracks) < 2:   # _attach of one mention, inline: ten thousand cues
                    like = model.get(id(f))
                    if like is None:
                        like = model[id(f)] = _one_cue(s, e, f, text)
                    lo = mm.start if mm.start < s else s
                    hi = mm.end if mm.end > e else e
                    append(Cue(text[lo:hi].strip(), s, e, like.values.copy(), like.relative.copy(), like.spread_deg,
                               mm.tracks.copy(), like.fallback.copy()))
                else:
                    append(_attach(_one_cue(s, e, f, text), [mm], text, shared=False))
            continue
        by_mention: dict[int, list] = {}
        for owner, ex in zip(owners, c["exprs"]):
            by_mention.setdefault(owner, []).append(ex)
        for i, exs in sorted(by_mention.items()):
            cue = _combine(exs, text)
            if cue is not None:
                result.cues.append(_attach(cue, [targets[i]], text, shared=False))


_SENTENCE = re.compile(r"[^.;!?]+")
_SWAP_WORD = re.compile(r"\b(swap|switch|exchange|trade)\b[^.;!?]*")
_SWAP_PLACES = re.compile(r"\b(trade|swap|switch)\s+(places|sides|positions)\b")
_MIRROR_WORD = re.compile(r"\b(mirror|flip)\b[^.;!?,]*")


def _mentions_in(mentions: list[Mention], starts: list[int], lo: int, hi: int) -> list[Mention]:
    """The mentions starting in ``[lo, hi)``; ``starts`` are the (sorted) mention starts."""
    return mentions[bisect.bisect_left(starts, lo):bisect.bisect_left(starts, hi)]


def _find_swaps(text: str, mentions: list[Mention], result: ParseResult) -> None:
    if not any(word in text for word in ("swap", "switch", "exchange", "trade")):
        return
    starts = [mm.start for mm in mentions]
    for m in _SWAP_WORD.finditer(text):
        inside = [mm for mm in _mentions_in(mentions, starts, m.start(), m.end()) if mm.tracks]
        if len(inside) >= 2:
            a, b = inside[0].tracks[0], inside[1].tracks[0]
            if a != b:
                result.swaps.append((a, b, m.group(0).strip()))
    # "the sax and the keys trade places": the sentence up to its last such phrase.  One sentence
    # at a time, so text without sentence punctuation is scanned once (a leading [^.;!?]* in one
    # pattern would rescan it from every position).
    if not any(word in text for word in ("places", "sides", "positions")):
        return
    for sentence in _SENTENCE.finditer(text):
        phrases = list(_SWAP_PLACES.finditer(text, sentence.start(), sentence.end()))
        if not phrases:
            continue
        lo, hi = sentence.start(), phrases[-1].end()
        inside = [mm for mm in _mentions_in(mentions, starts, lo, hi) if mm.tracks]
        if len(inside) >= 2 and not result.swaps:
            result.swaps.append((inside[0].tracks[0], inside[1].tracks[0], text[lo:hi].strip()))


def _find_mirrors(text: str, mentions: list[Mention], result: ParseResult) -> None:
    if "mirror" not in text and "flip" not in text:
        return
    starts = [mm.start for mm in mentions]
    for m in _MIRROR_WORD.finditer(text):
        inside = [t for mm in _mentions_in(mentions, starts, m.start(), m.end()) for t in mm.tracks]
        result.mirrors.append((inside, m.group(0).strip()))
