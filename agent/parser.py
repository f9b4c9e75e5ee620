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
this position" is a bisection.
tests/test_hardening_plan.py parses 100 kB of hostile text of each kind.

Conventions (:mod:`dsp.conventions`): azimuth in degrees, 0 = front, **positive = left**; clock
positions are seen from above with 12 o'clock in front, so 3 o'clock = -90 (right), 9 = +90.
"Stage left" is the performer's left, i.e. the audience's right (negative azimuth).

How cues find their track: the prompt is cut into clauses (punctuation, "and", "while", ...); a
clause's cues go to the mentions in it (nearest preceding mention when there are several); a
clause with cues but no mention lends them to its neighbour; a bare list ("the guitar and the keys
on the left") shares one cue.  Every cue keeps the words it came from (provenance).
"""
from __future__ import annotations

import bisect
import dataclasses
import difflib
import re
from dataclasses import dataclass, field
from typing import Any

from dsp.errors import InputError
from dsp.placement import MAX_PROMPT_CHARS

from .lexicon import MARKER_WORDS, AliasHit, Lexicon, get_lexicon, normalise_words

# The longest prompt accepted (characters) is dsp.placement.MAX_PROMPT_CHARS, the one limit the
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


def normalise_text(prompt: str) -> str:
    """Lower-case, with degree/plus-minus symbols and unicode dashes spelled out."""
    t = prompt.lower()
    t = t.replace("\u2019", "'").replace("\u2212", "-").replace("\u2013", "-").replace("\u2014", " - ")
    # only from the start of a whitespace run: a long run without a degree sign is scanned once
    t = re.sub(r"(?<!\s)\s*+[\u00b0\u00ba\u02da]", " degrees", t)
    t = re.sub(r"\u00b1|\+/-|\+-(?=\s*\d)", " plus-or-minus ", t)
    t = re.sub(r"plus or minus", "plus-or-minus", t)
    t = re.sub(r"(\d)(?=(?:m|cm|ft|bpm)\b)", r"\1 ", t)
    t = re.sub(r"(\d)'(?!\w)", r"\1 feet", t)
    return t


# ------------------------------------------------------------------------------------------------
# Data
# ------------------------------------------------------------------------------------------------
@dataclass
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


@dataclass
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


# Each rule: (compiled regex, builder(match) -> Cue fields).  Earlier rules win where spans overlap.
_RULES: list[tuple[re.Pattern, object]] = []


def _rule(pattern: str):
    def deco(fn):
        _RULES.append((re.compile(pattern), fn))
        return fn
    return deco


@_rule(rf"plus-or-minus\s*({NUM})\s*(?:{DEG})?")
def _plus_minus(m):
    return {"spread_deg": abs(number(m.group(1)))}


@_rule(rf"\b{HEDGE}?{SIDE}\s+and\s+(?:(?:the\s+)?other\s+)?(?:to\s+the\s+)?(left|right)\b(?!\s+of)")
def _both_sides(m):
    if m.group(2) == m.group(3):
        return None
    return {"spread_deg": _hedge(m.group(1), 70.0)}


@_rule(rf"\bazimuth\s*+(?:of|at|to|:|=|is)?\s*({NUM})\s*(?:{DEG})?(?:\s*(?:to\s+the\s+)?{SIDE})?")
def _azimuth_keyword(m):
    v = number(m.group(1))
    if m.group(2):
        v = abs(v) * _side_sign(m.group(2))
    return {"values": {"azimuth_deg": v}}


@_rule(rf"\b(?:elevation|elevated|raised|height|tilted\s+up)\s*+(?:of|at|to|by|:|=|is)?\s*({NUM})\s*(?:{DEG})?")
def _elevation_keyword(m):
    return {"values": {"elevation_deg": number(m.group(1))}}


@_rule(rf"({NUM})\s*{DEG}\s*(?:of\s+elevation|up(?:wards?)?|above|high|elevat(?:ed|ion)|overhead|down(?:wards?)?|below|low|under(?:neath)?)")
def _elevation_degrees(m):
    v = abs(number(m.group(1)))
    down = re.search(r"down|below|low|under", m.group(0)[m.end(1) - m.start(0):])
    return {"values": {"elevation_deg": -v if down else v}}


@_rule(rf"({NUM})\s*{DEG}\s+(?:further|farther|more)\s+(?:to\s+the\s+)?{SIDE}"
       rf"|\b{SIDE}\s+by\s+(?:(?:another|an\s+extra|a\s+further)\s+)?({NUM})\s*{DEG}"
       rf"|\b(?:another|an\s+extra|a\s+further)\s+({NUM})\s*{DEG}\s+(?:to\s+the\s+)?{SIDE}")
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


@_rule(rf"({NUM})\s*{DEG}\s*(?:off[- ]cent(?:er|re)\s*|from\s+(?:the\s+)?{CENTRE}\s*)?{PREP}?{SIDE}")
def _degrees_side(m):
    return {"values": {"azimuth_deg": abs(number(m.group(1))) * _side_sign(m.group(2))}}


@_rule(rf"\b{SIDE}\s+(?:at\s+)?({NUM})\s*{DEG}")
def _side_degrees(m):
    return {"values": {"azimuth_deg": abs(number(m.group(2))) * _side_sign(m.group(1))}}


@_rule(r"\b(?:at\s+)?(?:about\s+|around\s+)?(?:the\s+)?(\d{1,2}|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve)"
       r"(?:\s*o'?\s?clock|\s*oclock|:00\b)")
def _clock(m):
    hour = number(m.group(1)) % 12
    from dsp.conventions import wrap_azimuth_deg
    return {"values": {"azimuth_deg": wrap_azimuth_deg(-30.0 * hour)}}


@_rule(rf"({NUM})\s*{DIST_UNIT}\s*(?:further\s+|farther\s+|more\s+)?(back|(?<=further )away|(?<=farther )away|closer|nearer|forward)\b(?!\s+of\b)"
       rf"|\b(back|closer|nearer|forward|in)\s+(?:by\s+)?(?:another\s+)?({NUM})\s*{DIST_UNIT}")
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
       rf"(?:\s+(?:directly\s+)?(?:(?:to\s+(?:the|my|your)\s+)({'left|right'})|(behind)|(in\s+front)))?")
def _distance(m):
    out = {"values": {"distance_m": _distance_m(m.group(1), m.group(2))}}
    if m.group(3):
        out["values"]["azimuth_deg"] = 90.0 * _side_sign(m.group(3))
    elif m.group(4):
        out["values"]["azimuth_deg"] = 180.0
    elif m.group(5):
        out["values"]["azimuth_deg"] = 0.0
    return out


@_rule(rf"({NUM})\s*db\s*(louder|quieter|softer|up|down|more|less|lower|higher)?")
def _gain(m):
    v = number(m.group(1))
    if m.group(2) in ("quieter", "softer", "down", "less", "lower"):
        v = -abs(v)
    return {"relative": {"gain_db": v}}


@_rule(rf"\b{HEDGE}?(?:further|farther|more)\s+(?:over\s+)?(?:to(?:wards?)?\s+(?:the\s+)?)?{SIDE}"
       rf"|\b{HEDGE}?(?:more|further)\s+to\s+the\s+{SIDE}")
def _relative_side(m):
    hedge, side = (m.group(1), m.group(2)) if m.group(2) else (m.group(3), m.group(4))
    step = RELATIVE_AZIMUTH_DEG
    if hedge in ("much", "way", "far", "a lot", "well"):
        step = 30.0
    elif hedge and HEDGES.get(hedge, 15.0) <= 15.0:
        step = 10.0
    return {"relative": {"azimuth_deg": step * _side_sign(side)}}


@_rule(rf"\b{HEDGE}?(?:further|farther|more)\s+(?:back|away|distant)|\bpush(?:ed|ing)?\b(?:(?!\bpush)[^,.;])*?\b(?P<key>back)\b"
       r"|\b(?:towards?|at|in)\s+the\s+back\b|\bback\s+(?:a\s+bit|a\s+little|a\s+touch)|\bfarther\b|\bfurther\s+off\b")
def _further(m):
    scale = FAR_SCALE
    if m.group(1) and HEDGES.get(m.group(1), 30.0) <= 15.0 or re.search(r"a\s+(bit|little|touch)", m.group(0)):
        scale = 1.25
    return {"relative": {"distance_scale": scale}}


@_rule(rf"\b{HEDGE}?(?:closer|nearer)\b|\bbring\b(?:(?!\bbring\b)[^,.;])*?\b(?P<key>forward|in|up\s+front|closer)\b"
       r"|\bmove\b(?:(?!\bmove\b)[^,.;])*?\b(?P<key2>forward)\b")
def _closer(m):
    scale = CLOSE_SCALE
    if m.group(1) and HEDGES.get(m.group(1), 30.0) <= 15.0:
        scale = 0.8
    return {"relative": {"distance_scale": scale}}


@_rule(r"\b(?:very\s+close|right\s+up\s+close|in\s+my\s+face|whisper\w*\s+in\s+my\s+ear|right\s+next\s+to\s+(?:me|my\s+ear)|inches\s+away)\b")
def _very_close(m):
    return {"values": {"distance_m": DISTANCE_WORDS_M["very close"]}}


@_rule(r"\b(?:very\s+far(?:\s+away)?|really\s+far(?:\s+away)?|miles\s+away|very\s+distant)\b")
def _very_far(m):
    return {"values": {"distance_m": DISTANCE_WORDS_M["very far"]}}


@_rule(r"\b(?:far\s+away|far\s+off|in\s+the\s+distance|distant|far\s+from\s+(?:me|the\s+listener)|way\s+back|far\s+back)\b")
def _far(m):
    return {"values": {"distance_m": DISTANCE_WORDS_M["far"]}}


@_rule(r"\b(?:up\s+close|close\s+up|close\s+to\s+(?:me|the\s+listener)|close|near\s+me|nearby|intimate(?:ly)?|near)\b(?!\s+(?:the|a)\b)")
def _close(m):
    return {"values": {"distance_m": DISTANCE_WORDS_M["close"]}}


@_rule(r"\bmid(?:-|\s)?(?:distance|range|ground)\b")
def _mid(m):
    return {"values": {"distance_m": DISTANCE_WORDS_M["mid"]}}


@_rule(r"\bstage[- ](left|right)\b")
def _stage_side(m):
    # stage directions are the performer's: stage left is the audience's right
    return {"values": {"azimuth_deg": -PLAIN_SIDE_DEG * _side_sign(m.group(1))}}


@_rule(rf"\b{HEDGE}?(?:house|audience)[- ](left|right)\b")
def _house_side(m):
    return {"values": {"azimuth_deg": _hedge(m.group(1), PLAIN_SIDE_DEG) * _side_sign(m.group(2))}}


@_rule(rf"\b{HEDGE}?{PREP}?(?:(front|rear|back)[- ](left|right)|(left|right)[- ](front|rear|back))\b")
def _diagonal(m):
    where = m.group(2) or m.group(5)
    side = m.group(3) or m.group(4)
    base = DIAGONAL_DEG if where == "front" else REAR_DIAGONAL_DEG
    return {"values": {"azimuth_deg": base * _side_sign(side)}}


@_rule(rf"\b{HEDGE}?{PREP}?{HEDGE}?{SIDE}(\s+of\s+(?:the\s+)?{CENTRE})?(?:[- ](?:hand\s+)?side|\s+channel|\s+speaker)?\b(?!\s+(?:and|or)\s+(?:the\s+)?(?:other\s+)?(?:to\s+the\s+)?(?:left|right))")
def _side(m):
    hedge = m.group(1) or m.group(2)
    if m.group(4):  # "left of centre"
        v = OF_CENTRE_DEG if not hedge else min(_hedge(hedge, OF_CENTRE_DEG), OF_CENTRE_DEG) * (
            0.5 if HEDGES[hedge] <= 15.0 else 1.0)
    else:
        v = _hedge(hedge, PLAIN_SIDE_DEG)
    return {"values": {"azimuth_deg": v * _side_sign(m.group(3))}, "side": True, "hedge": hedge}


@_rule(r"\b(?:behind\s+(?:me|us|you|the\s+listener|my\s+head|the\s+head|your\s+head)|from\s+behind|behind|in\s+the\s+rear|at\s+the\s+rear|to\s+the\s+rear|rear)\b")
def _behind(m):
    return {"values": {"azimuth_deg": 180.0}, "back": True}


@_rule(r"\b(?:front\s+and\s+cent(?:er|re)|dead\s+cent(?:er|re)|straight\s+ahead|directly\s+ahead|directly\s+in\s+front(?:\s+of\s+(?:me|us|you))?"
       r"|in\s+front(?:\s+of\s+(?:me|us|you|the\s+listener))?|(?:in\s+the\s+|at\s+the\s+)?(?:cent(?:er|re)|middle)|cent(?:er|re)d|up\s+front|ahead|front)\b")
def _front(m):
    return {"values": {"azimuth_deg": 0.0}, "front": True}


@_rule(r"\b(?:directly\s+(?:above|overhead)|right\s+above|straight\s+up|overhead|above\s+my\s+head|above\s+(?:me|us|the\s+listener)|up\s+above|from\s+above|on\s+the\s+ceiling)\b")
def _overhead(m):
    return {"values": {"elevation_deg": ELEVATION_WORDS_DEG["overhead"]}}


@_rule(rf"\b{HEDGE}?(?:above|up\s+high|high\s+up|raised|elevated|up\s+in\s+the\s+air|in\s+the\s+air|below|beneath|underneath|down\s+low|low\s+down|from\s+below|at\s+my\s+feet|on\s+the\s+floor)\b")
def _above_below(m):
    hedge = m.group(1)
    down = re.search(r"below|beneath|under|low|feet|floor", m.group(0))
    v = ELEVATION_WORDS_DEG["below" if down else "above"]
    if hedge and HEDGES[hedge] <= 15.0:
        v = SLIGHT_ELEVATION_DEG * (-1 if down else 1)
    elif hedge and HEDGES[hedge] >= 65.0:
        v = 45.0 * (-1 if down else 1)
    return {"values": {"elevation_deg": v}}


@_rule(r"\b(?:at\s+)?ear[- ]level\b")
def _ear_level(m):
    return {"values": {"elevation_deg": 0.0}}


@_rule(rf"\b{HEDGE}?(?:higher(?:\s+up)?|raise[ds]?|lift(?:ed|s)?|up\s+a\s+bit)\b|\b{HEDGE}?(?:lower|drop(?:ped)?\s+down)\b")
def _higher_lower(m):
    down = "lower" in m.group(0) or "drop" in m.group(0)
    return {"relative": {"elevation_deg": -RELATIVE_ELEVATION_DEG if down else RELATIVE_ELEVATION_DEG}}


@_rule(r"\b(louder|quieter|softer|turn(?:ed)?\s+(?:it\s+)?(?:up|down))\b")
def _louder(m):
    up = m.group(1).startswith("louder") or m.group(1).endswith("up")
    return {"relative": {"gain_db": 3.0 if up else -3.0}}


@_rule(rf"\b(?:at\s+|to\s+)?({NUM})\s*{DEG}")
def _plain_degrees(m):
    return {"values": {"azimuth_deg": number(m.group(1))}}


@_rule(r"\b(?:spread|wide|widely|wide\s+apart|either\s+side|both\s+sides|split)\b")
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
    m = _TEMPO.search(text)
    if m:
        out["tempo_bpm"] = float(m.group(1) or m.group(2))
    m = _KEY.search(text)
    if m:
        acc = (m.group(2) or "").strip().replace("-", "").replace(" ", "")
        acc = {"#": "#", "sharp": "#", "b": "b", "flat": "b"}.get(acc, "")
        mode = {"maj": "major", "min": "minor"}.get(m.group(3), m.group(3))
        out["key"] = f"{m.group(1).upper()}{acc} {mode}"
    m = _BARS.search(text)
    if m:
        out["bars"] = int(m.group(1))
    return out


# ------------------------------------------------------------------------------------------------
# Mentions
# ------------------------------------------------------------------------------------------------
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_ALL_TRACKS = re.compile(r"\b(?:everything|every track|all(?: the)? tracks|all instruments|all of them|the whole mix)\b")
_ORDER_VERBS = re.compile(r"\b(?:put|place|move|pan|push|bring|set|position|sit|seat)\b")


def _word_spans(text: str) -> list[tuple[str, int, int]]:
    return [(m.group(0), m.start(), m.end()) for m in _WORD.finditer(text)]


def _track_side(name: str) -> int:
    words = normalise_words(name)
    if any(w in ("l", "left") for w in words):
        return 1
    if any(w in ("r", "right") for w in words):
        return -1
    return 0


def _find_aliases(lexicon: Lexicon, words: list[str], fuzzy_cache: dict[str, list[AliasHit]]) -> list[AliasHit]:
    """``lexicon.find(words, fuzzy=True, skip=PROSE_SKIP)``, asking the fuzzy matcher once per
    distinct word.

    The lexicon finds exact phrases first and then tries each word left free on its own, so a free
    word's fuzzy hit depends on nothing but the word: ``lexicon.find([word])`` gives it.
    """
    hits = lexicon.find(words, fuzzy=False, skip=PROSE_SKIP)
    free = [True] * len(words)
    for hit in hits:
        free[hit.start:hit.end] = [False] * (hit.end - hit.start)
    for k, w in enumerate(words):
        if not free[k]:
            continue
        if w not in fuzzy_cache:
            fuzzy_cache[w] = lexicon.find([w], fuzzy=True, skip=PROSE_SKIP)
        if fuzzy_cache[w]:
            hits.extend(dataclasses.replace(hit, start=k, end=k + 1) for hit in fuzzy_cache[w])
    return sorted(hits, key=lambda h: h.start)


def find_mentions(text: str, tracks: list[str], roles: dict[str, str | None], lexicon: Lexicon,
                  blocked: list[tuple[int, int]] = ()) -> tuple[list[Mention], list[Mention]]:
    """Mentions of session tracks in a normalised prompt: (mentions, mentions of absent roles).

    Order of trust: a track's full name; a lexicon alias whose role a track plays (or whose family
    one plays: "strings" finds violins and cellos); a close spelling of a track's own word.
    ``blocked`` spans (spatial expressions) are never read as mentions ("left" in "Gtr L").
    """
    blocked = sorted(blocked)
    block_starts = [a for a, _ in blocked]

    def is_blocked(position: int) -> bool:
        # the spans do not overlap (each character belongs to one expression), so only the last
        # one starting at or before ``position`` can hold it
        k = bisect.bisect_right(block_starts, position) - 1
        return k >= 0 and position < blocked[k][1]

    spans = [w for w in _word_spans(text) if not is_blocked(w[1])]
    words = [w[0] for w in spans]
    taken = [False] * len(words)
    mentions: list[Mention] = []
    absent: list[Mention] = []

    def add(i: int, j: int, found: list[str], how: str, role: str | None = None) -> None:
        mentions.append(Mention(text[spans[i][1]:spans[j - 1][2]], spans[i][1], spans[j - 1][2], found, role, how))
        taken[i:j] = [True] * (j - i)

    families = {r: spec["family"] for r, spec in lexicon.roles.items()}
    # 0. multi-word instrument phrases a track plays ("the upright bass" beats a track named "Upright")
    for hit in lexicon.find(words, fuzzy=False, skip=PROSE_SKIP):
        if hit.end - hit.start >= 2:
            found = [t for t in tracks if roles.get(t) == hit.role]
            if found and not any(taken[hit.start:hit.end]):
                add(hit.start, hit.end, found, "alias", hit.role)
    # 1. full track names (longest first), skipping names that are pure markers
    named = sorted(tracks, key=lambda t: -len(normalise_words(t)))
    positions: dict[str, list[int]] = {}   # word -> where it occurs, so each name is sought only there
    for i, w in enumerate(words):
        positions.setdefault(w, []).append(i)
    for track in named:
        tw = normalise_words(track)
        if not tw or all(w in MARKER_WORDS or w.isdigit() for w in tw):
            continue
        n = len(tw)
        same = [t for t in tracks if normalise_words(t) == tw]
        for i in positions.get(tw[0], ()):
            if i + n <= len(words) and not any(taken[i:i + n]) and words[i:i + n] == tw:
                add(i, i + n, same, "name")
    # 2. lexicon aliases
    free = [i for i in range(len(words)) if not taken[i]]
    # run the alias finder on maximal runs of free words so phrases never straddle a taken word
    runs: list[list[int]] = []
    for i in free:
        if runs and runs[-1][-1] == i - 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    fuzzy_cache: dict[str, list[AliasHit]] = {}
    for run in runs:
        for hit in _find_aliases(lexicon, [words[i] for i in run], fuzzy_cache):
            i, j = run[hit.start], run[hit.end - 1] + 1
            found = [t for t in tracks if roles.get(t) == hit.role]
            how = "alias"
            if not found:
                fam = families.get(hit.role)
                found = [t for t in tracks if roles.get(t) and families.get(roles[t]) == fam]
                how = "family"
            if found:
                add(i, j, found, how, hit.role)
            else:
                absent.append(Mention(text[spans[i][1]:spans[j - 1][2]], spans[i][1], spans[j - 1][2], [], hit.role, "absent"))
                taken[i:j] = [True] * (j - i)
    # 3. the whole session ("everything 3 m away")
    span_at_start = {w[1]: k for k, w in enumerate(spans)}
    span_at_end = {w[2]: k + 1 for k, w in enumerate(spans)}
    for m in _ALL_TRACKS.finditer(text):
        i, j = span_at_start.get(m.start()), span_at_end.get(m.end())
        if i is not None and j is not None and not any(taken[i:j]) and tracks:
            add(i, j, list(tracks), "all")
    # 4. close spellings of a track's own distinctive words ("guiter" for "Guitar", "marcos")
    own = {}
    for t in tracks:
        for w in normalise_words(t):
            if len(w) >= 4 and w not in MARKER_WORDS and not w.isdigit():
                own.setdefault(w, []).append(t)
    own_words = list(own)
    spelt: dict[str, list[str]] = {}   # difflib costs ~0.1 ms a word: ask once per distinct word
    for i, w in enumerate(words):
        if taken[i] or len(w) < 4:
            continue
        if w not in spelt:
            spelt[w] = difflib.get_close_matches(w, own_words, n=1, cutoff=0.8)
        close = spelt[w]
        if close:
            add(i, i + 1, own[close[0]], "spelling")
    mentions.sort(key=lambda m: m.start)
    return mentions, absent


# ------------------------------------------------------------------------------------------------
# Clauses and attachment
# ------------------------------------------------------------------------------------------------
_CLAUSE_BREAK = re.compile(r"[.;!?\n]+|,|\s-\s|\b(?:and|while|but|whereas|with|then|plus|&)\b")


def _scan_expressions(text: str) -> list[tuple[int, int, dict]]:
    taken = [False] * len(text)
    found = []
    for regex, build in _RULES:
        for m in regex.finditer(text):
            s, e = m.span()
            for key in ("key", "key2"):
                if key in regex.groupindex and m.group(key):
                    s, e = m.span(key)
            if e <= s or any(taken[s:e]):
                continue
            fields = build(m)
            if not fields:
                continue
            taken[s:e] = [True] * (e - s)
            found.append((s, e, fields))
    found.sort(key=lambda f: f[0])
    return found


def _combine(exprs: list[tuple[int, int, dict]], text: str) -> Cue | None:
    """Merge the expressions of one clause into one cue (front/back with a side, hedges)."""
    if not exprs:
        return None
    cue = Cue(text=text[exprs[0][0]:exprs[-1][1]].strip(), start=exprs[0][0], end=exprs[-1][1])
    back = any(f.get("back") for _, _, f in exprs)
    sides = [f for _, _, f in exprs if f.get("side")]
    any_azimuth = any("azimuth_deg" in g.get("values", {}) for _, _, g in exprs)
    for _, _, f in exprs:
        if f.get("soft") and (cue.spread_deg is not None or any_azimuth):
            continue
        if f.get("back") and sides:
            continue
        if f.get("front") and (sides or back):
            continue
        for k, v in f.get("values", {}).items():
            cue.values.setdefault(k, v)
        for k, v in f.get("relative", {}).items():
            cue.relative[k] = cue.relative.get(k, 0.0) + v if k != "distance_scale" else cue.relative.get(k, 1.0) * v
        if f.get("spread_deg") is not None:
            cue.spread_deg = f["spread_deg"]
        cue.fallback.update(f.get("fallback", {}))
    if back and sides:
        side = sides[0]
        lateral = abs(side["values"]["azimuth_deg"])
        if side.get("hedge") is None:
            lateral = 180.0 - REAR_DIAGONAL_DEG
        az = 180.0 - lateral
        cue.values["azimuth_deg"] = az * (1.0 if side["values"]["azimuth_deg"] > 0 else -1.0)
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
    roles : track -> role (default: :func:`agent.lexicon.match_track_role` of each name).

    Raises
    ------
    InputError : ``prompt`` is not a string or is too long (:func:`check_prompt_text`).
    """
    return _parse(check_prompt_text(prompt), tracks, roles, lexicon)


def _parse(prompt: str, tracks: list[str], roles: dict[str, str | None] | None = None,
           lexicon: Lexicon | None = None) -> ParseResult:
    """:func:`parse_prompt` without the length cap.  Its cost grows linearly with the text
    (tests/test_hardening_plan.py parses 100 kB), which is what makes the cap a bound on time."""
    lexicon = lexicon or get_lexicon()
    if roles is None:
        roles = {t: lexicon.role_of(t) for t in tracks}
    text = normalise_text(prompt)
    result = ParseResult(prompt=prompt, music=parse_music(text))
    exprs = _scan_expressions(text)
    mentions, absent = find_mentions(text, tracks, roles, lexicon, blocked=[(s, e) for s, e, _ in exprs])
    result.mentions = mentions
    cut = sorted([(s, e) for s, e, _ in exprs] + [(m.start, m.end) for m in mentions + absent])
    keep, pos = [], 0
    for s, e in cut:
        keep.append(text[pos:s])
        pos = max(pos, e)
    keep.append(text[pos:])
    result.residual = " ".join(" ".join(keep).split())

    # clauses: cut at punctuation and conjunctions, except inside an expression ("front and centre")
    expr_starts = [s for s, _, _ in exprs]

    def inside_expression(p: int) -> bool:
        # expressions do not overlap: only the last one starting before ``p`` can hold it
        k = bisect.bisect_left(expr_starts, p) - 1
        return k >= 0 and p < exprs[k][1]

    cuts = [(m.start(), m.end(), m.group(0).strip()) for m in _CLAUSE_BREAK.finditer(text)
            if not (inside_expression(m.start()) or inside_expression(m.end()))]
    clauses = []
    pos, join = 0, ""
    for s, e, word in cuts + [(len(text), len(text), "")]:
        clauses.append({"start": pos, "end": s, "join": join, "mentions": [], "absent": [], "exprs": []})
        pos, join = e, word
    clause_starts = [c["start"] for c in clauses]   # strictly increasing

    def clause_of(p: int):
        """The clause holding position ``p``, else the one starting nearest to it (the first on a tie)."""
        k = bisect.bisect_right(clause_starts, p) - 1
        if k >= 0 and p < clauses[k]["end"]:
            return clauses[k]
        near = [j for j in (k, k + 1) if 0 <= j < len(clauses)]
        return clauses[min(near, key=lambda j: (abs(clause_starts[j] - p), j))]

    for mm in mentions:
        clause_of(mm.start)["mentions"].append(mm)
    for am in absent:
        clause_of(am.start)["absent"].append(am)
    for ex in exprs:
        clause_of(ex[0])["exprs"].append(ex)
    _find_swaps(text, mentions, result)
    _find_mirrors(text, mentions, result)
    swapped = {t for a, b, _ in result.swaps for t in (a, b)}

    def kinds_of(cl) -> set:
        return {k for _, _, f in cl["exprs"] for k in list(f.get("values", {})) + list(f.get("relative", {}))}

    # a clause with cues but no mention lends them to a neighbour that lacks that kind of cue
    # (the nearest clause with a mention on each side, found in one pass each way)
    prev_named: list[dict | None] = []
    last = None
    for c in clauses:
        prev_named.append(last)
        if c["mentions"]:
            last = c
    next_named: list[dict | None] = [None] * len(clauses)
    last = None
    for idx in range(len(clauses) - 1, -1, -1):
        next_named[idx] = last
        if clauses[idx]["mentions"]:
            last = clauses[idx]
    for idx, c in enumerate(clauses):
        if c["exprs"] and not c["mentions"] and not c["absent"]:
            kinds = kinds_of(c)
            prev, nxt = prev_named[idx], next_named[idx]
            prev_free = prev is not None and not (kinds & kinds_of(prev))
            nxt_free = nxt is not None and not (kinds & kinds_of(nxt))
            target = prev if prev_free or (prev is not None and not nxt_free) else nxt
            if target is not None:
                target["exprs"] = sorted(target["exprs"] + c["exprs"], key=lambda f: f[0])
                c["exprs"] = []
    # a bare list shares the next item's cue: "the guitar and the keys on the left"
    for idx in range(len(clauses) - 2, -1, -1):
        c, nxt = clauses[idx], clauses[idx + 1]
        if c["mentions"] and not c["exprs"] and nxt["join"] in ("and", ",", "&", "plus") and nxt["exprs"] \
                and not nxt.get("shared_from") and not any(set(m.tracks) & swapped for m in c["mentions"]):
            c["exprs"] = list(nxt["exprs"])
            c["shared"] = True

    for c in clauses:
        if c["exprs"] and not c["mentions"] and not c["absent"] and not mentions \
                and _ORDER_VERBS.search(text[c["start"]:c["end"]]) \
                and any(f.get("values") or f.get("relative") for _, _, f in c["exprs"]):
            result.orphans.append(text[c["start"]:c["end"]].strip())
        if c["exprs"]:
            result.unknown.extend(c["absent"])
        if not c["exprs"] or not c["mentions"]:
            continue
        targets = c["mentions"]
        if len(targets) == 1 or c.get("shared"):
            groups = [(targets, c["exprs"])]
        else:
            # each expression goes to the nearest mention before it (or the first one after it)
            by_mention: dict[int, list] = {}
            target_starts = [mm.start for mm in targets]
            for ex in c["exprs"]:
                before = bisect.bisect_right(target_starts, ex[0]) - 1
                by_mention.setdefault(max(before, 0), []).append(ex)
            groups = [([targets[i]], exs) for i, exs in sorted(by_mention.items())]
        for mlist, exs in groups:
            cue = _combine(exs, text)
            if cue is None:
                continue
            names: list[str] = []
            for mm in mlist:
                names.extend(t for t in mm.tracks if t not in names)
            cue.tracks = names
            lo = min([mm.start for mm in mlist] + [cue.start])
            hi = max([mm.end for mm in mlist] + [cue.end])
            cue.text = text[lo:hi].strip() if not c.get("shared") else (
                " ".join(mm.text for mm in mlist) + " ... " + cue.text)
            result.cues.append(cue)
    return result


_SENTENCE = re.compile(r"[^.;!?]+")
_SWAP_WORD = re.compile(r"\b(swap|switch|exchange|trade)\b[^.;!?]*")
_SWAP_PLACES = re.compile(r"\b(trade|swap|switch)\s+(places|sides|positions)\b")
_MIRROR_WORD = re.compile(r"\b(mirror|flip)\b[^.;!?,]*")


def _mentions_in(mentions: list[Mention], starts: list[int], lo: int, hi: int) -> list[Mention]:
    """The mentions starting in ``[lo, hi)``; ``starts`` are the (sorted) mention starts."""
    return mentions[bisect.bisect_left(starts, lo):bisect.bisect_left(starts, hi)]


def _find_swaps(text: str, mentions: list[Mention], result: ParseResult) -> None:
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
    for sentence in _SENTENCE.finditer(text):
        phrases = list(_SWAP_PLACES.finditer(text, sentence.start(), sentence.end()))
        if not phrases:
            continue
        lo, hi = sentence.start(), phrases[-1].end()
        inside = [mm for mm in _mentions_in(mentions, starts, lo, hi) if mm.tracks]
        if len(inside) >= 2 and not result.swaps:
            result.swaps.append((inside[0].tracks[0], inside[1].tracks[0], text[lo:hi].strip()))


def _find_mirrors(text: str, mentions: list[Mention], result: ParseResult) -> None:
    starts = [mm.start for mm in mentions]
    for m in _MIRROR_WORD.finditer(text):
        inside = [t for mm in _mentions_in(mentions, starts, m.start(), m.end()) for t in mm.tracks]
        result.mirrors.append((inside, m.group(0).strip()))
