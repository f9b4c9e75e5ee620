"""The parser's phrase tables, number words, pattern fragments and precedence classes (data only).

Holds
-----
* Side and position magnitudes: :data:`HEDGES` (hedge word -> azimuth deg), :data:`PLAIN_SIDE_DEG`,
  :data:`OF_CENTRE_DEG`, :data:`DIAGONAL_DEG`, :data:`REAR_DIAGONAL_DEG`, :data:`FULL_SIDE_DEG`,
  :data:`ELEVATION_WORDS_DEG`, :data:`SLIGHT_ELEVATION_DEG`, :data:`DISTANCE_WORDS_M`, :data:`FEET_TO_M`,
  :data:`ADJACENT_DEG` and :data:`SAME_SIDE_INSET_DEG` (anchors).
* :data:`STEPS` (the default step of a relative change) with :data:`LARGE_STEP_HEDGES`,
  :data:`SIZE_AFTER`; :data:`WETNESS_WORDS` (-> ``reverb_db``); :data:`IMPOSSIBLE` (the bounds an
  impossible value names); :data:`NUMBER_HEDGES` ("35ish").
* :data:`PLACE_FILLER` as first written (:mod:`stase.agent.parser_rules` extends it with every
  verb of the edit tables: read it from there).
* Verb tables of relative edits: :data:`LEVEL_VERBS`, :data:`FADER_VERBS`, :data:`LEVEL_NOUNS`,
  :data:`LEVEL_NOUN_VERBS`, :data:`BACK_VERBS`, :data:`FRONT_VERBS`, :data:`NARROW_VERBS`,
  :data:`IN_VERBS`, :data:`MOTION_VERBS`, :data:`WIDTH_NUMBER_VERBS`, :data:`TOO_LEVEL_SIGN`,
  :data:`TOO_HEIGHT_SIGN`, :data:`DROP_NOUN_BEFORE`.
* Number words (:data:`_SMALL_NUMBERS`, :func:`number`), :func:`_alternation` (a phrase list as a
  trie-shaped regex) and the pattern fragments the rules are written with (:data:`NUM`,
  :data:`DEG`, :data:`SIDE`, :data:`HEDGE`, :data:`PREP`, :data:`CENTRE`, :data:`DIST_UNIT`,
  :data:`DIGITS`, ...).
* The precedence classes :data:`NUMBER` < :data:`NAMED` < :data:`HEDGED` (lower wins),
  :data:`PRECEDENCE_NAMES` and :data:`QUANTITIES` (what a rule can set): here, below the value
  functions, because a value may lower its rule's precedence for one reading.

All are re-exported by :mod:`stase.agent.parser_rules`.  Conventions
(:mod:`stase.core.conventions`): azimuth in degrees, 0 = front, positive = left; distance in metres.
"""
from __future__ import annotations

import re

from stase.agent.parser_vocabulary import LARGE_SIZES, SIZE_SYNONYMS, SMALL_SIZES


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
    "a smidge": 8.0, "a smidgen": 8.0, "a notch": 8.0, "a nudge": 8.0, "a wee bit": 10.0, "a tiny bit": 8.0, "a little more": 15.0,
    "quite a bit": 55.0, "quite a lot": 65.0, "a good bit": 55.0, "a whole lot": 70.0, "heaps": 60.0, "loads": 60.0,
    "a fair bit": 55.0, "a fair amount": 55.0, "a good deal": 55.0, "a fraction": 8.0,
    "much": 60.0, "a lot": 60.0, "hard-panned": 90.0, "panned hard": 90.0, "totally": 90.0, "dead": 90.0, "full": 90.0, "100%": 90.0, "straight": 90.0, "hard panned": 90.0,
}
PLAIN_SIDE_DEG = 40.0
OF_CENTRE_DEG = 20.0          # "left of centre" without a hedge
DIAGONAL_DEG = 45.0           # "front left"
REAR_DIAGONAL_DEG = 135.0     # "rear left", "behind and to the left"
ELEVATION_WORDS_DEG = {"overhead": 90.0, "above": 30.0, "below": -30.0}
SLIGHT_ELEVATION_DEG = 15.0
FULL_SIDE_DEG = 90.0          # "hard left": the whole side
#: Default steps of a relative change: "a bit" = 5 deg / 0.5 m / 2 dB (issue 16), plain "further
#: left" / "closer" / "louder" = 15 deg / x1.5 (x0.67) / 3 dB, "a lot" = 30 deg / x2 (x0.5) / 6 dB.
#: A distance step is ("add", metres) or ("scale", factor) away from the listener; a width step
#: moves each source of a group that many degrees away from (or towards) the centre.
STEPS: dict[str, dict[str, tuple[str, float]]] = {
    "azimuth_deg": {"small": ("add", 5.0), "plain": ("add", 15.0), "large": ("add", 30.0)},
    "elevation_deg": {"small": ("add", 5.0), "plain": ("add", 15.0), "large": ("add", 30.0)},
    "width_deg": {"small": ("add", 5.0), "plain": ("add", 15.0), "large": ("add", 30.0)},
    "gain_db": {"small": ("add", 2.0), "plain": ("add", 3.0), "large": ("add", 6.0)},
    "distance_m": {"small": ("add", 0.5), "plain": ("scale", 1.5), "large": ("scale", 2.0)},
}
RELATIVE_AZIMUTH_DEG = STEPS["azimuth_deg"]["plain"][1]      # "further left"
RELATIVE_ELEVATION_DEG = STEPS["elevation_deg"]["plain"][1]  # "higher"
FAR_SCALE = STEPS["distance_m"]["plain"][1]
CLOSE_SCALE = round(1.0 / FAR_SCALE, 2)
#: Hedges that make a step large ("a lot further left", "way quieter"); a hedge of at most
#: 15 deg ("a bit", "slightly", "a touch") makes it small.
LARGE_STEP_HEDGES = frozenset({"much", "way", "far", "a lot", "well", "way more", "much more", "loads", "lots",
                               "quite a bit", "quite a lot", "a good bit", "a whole lot", "heaps", "tons", "a ton",
                               "a fair bit", "a fair amount", "a good deal"})
#: Round 7: every size word of the one size table (:mod:`stase.agent.parser_vocabulary`) is a
#: hedge of its class (a large one as "a lot", 60 deg; a small one as "a bit", 15 deg), so a size
#: said before or after a side or direction is read the same everywhere ("right heaps", "tons
#: to the left").
HEDGES.update({w: HEDGES["a lot"] for w in LARGE_SIZES if w not in SIZE_SYNONYMS and w not in HEDGES})
HEDGES.update({w: HEDGES["a bit"] for w in SMALL_SIZES if w not in SIZE_SYNONYMS and w not in HEDGES})
LARGE_STEP_HEDGES = LARGE_STEP_HEDGES | frozenset(w for w in LARGE_SIZES if w not in SIZE_SYNONYMS)
#: Wetness words -> reverb_db (dB relative to the room's physical level; issue 15).  Clamped to
#: stase.core.placement.REVERB_DB_RANGE.  With a track in the clause they set that source's
#: wetness, otherwise the plan's.
WETNESS_WORDS: dict[str, float] = {
    "bone dry": -12.0, "completely dry": -12.0, "dry": -12.0, "drier": -6.0, "dryer": -6.0,
    "intimate": -6.0, "intimately": -6.0, "front row": -4.0, "front-row": -4.0,
    "wet": 4.0, "wetter": 4.0, "roomy": 3.0, "lush": 4.0,
    "back of the hall": 6.0, "back of the room": 6.0, "at the back of the hall": 6.0,
    "drenched": 10.0, "soaked": 10.0, "swimming in reverb": 10.0, "washed out": 10.0, "cavernous": 10.0,
}
#: Values no placement can hold, said in words (the conductor refuses the prompt with the bound):
#: a rule's value function answers ``{"impossible": IMPOSSIBLE[kind]}`` instead of a value.
IMPOSSIBLE = {
    "pan": "a pan goes from 100 % left to 100 % right",
    "elevation": "an elevation goes from -90 degrees (straight down) to +90 degrees (straight up)",
    "distance": "a distance must be more than 0 m",
}
#: Where an adjacent placement sits beside its anchor ("just right of the piano", "next to the
#: violins"): the module's minimum separation (stase.agent.layout.MIN_SEPARATION_DEG, 12 deg),
#: so the two stay distinct.
ADJACENT_DEG = 12.0
#: "On the sax's side": that many degrees nearer the centre than the anchor, on its side.
SAME_SIDE_INSET_DEG = 15.0
DISTANCE_WORDS_M = {"very close": 0.5, "close": 1.0, "mid": 4.0, "far": 12.0, "very far": 25.0}
FEET_TO_M = 0.3048


#: Hedges written onto a number ("35ish degrees", "3 or so metres", "30-odd degrees"): the
#: number stands, the hedge goes (a number the user wrote always wins).
NUMBER_HEDGES = re.compile(r"(?<=\d)(?:\s*-?\s*ish\b|\s+or\s+so\b|\s*-\s*odd\b)")
#: Words a cue's clause may hold besides its cue without naming an instrument ("like 70 degrees",
#: "can they go behind me maybe", "the rest further back").  A clause that places something with
#: another word first (or after an article) names an instrument the session lacks.
PLACE_FILLER = frozenset("""
    a an the my our your his her their this that these those some any its it them they he she we i me us you
    and or but so then now also too just still even only really pretty quite very well like maybe perhaps
    probably about around roughly approximately approx say nearly almost exactly precisely somewhere
    ok okay yeah yes yep um erm uh hmm oh hey hi please pls plz kindly thanks thank thx cheers
    put place move pan panned set sit sits sitting go goes going keep have has make makes bring push nudge
    shift slide drop can could would should will shall want wanted need let lets i'd i'm let's that's
    is are be being been was were do does get gets got give stay stays leave where there here what how
    up down out off over into onto from to of at on in with for by as if than both each all every
    first second next last finally lastly also again more less much little bit lot touch tad hair ish call
    rest others other everything everyone everybody band group ensemble orchestra section mix stage room
    reverb sound vibe crowd audience listener position spot place side way one ones thing things stuff
    slightly somewhat degrees degree deg metres meters metre meter feet foot
    back again reason some
    home lol lmao tbh ngl fr imo pls rn yeet bruh dude man bro yo
    distance width volume level height elevation image stereo depth pans panning completely totally fully
    exactly toward towards line take version cut scene show stream livestream mix temp
""".split())

#: Words of a level change (issue 16, round 3).  A level verb alone is a gain step ("boost the
#: kick", "cut the hats a bit"); a fader verb moves a level with "up" / "down" ("turn the bass down",
#: "bring up the vox"); a level noun makes the verb before it a level change ("lower the level of
#: the congas", "raise the volume on the rhodes").  The sign of each verb: +1 up, -1 down.
#: ("bump" only with "up" / "down": "the horns keep bumping into each other" is a collision)
LEVEL_VERBS: dict[str, float] = {"boost": 1.0, "cut": -1.0, "attenuate": -1.0, "duck": -1.0, "trim": -1.0,
                                 "crank": 1.0, "dip": -1.0, "tame": -1.0}
FADER_VERBS = ("turn", "crank", "dial", "fade", "bring", "push", "pull", "knock", "take", "ride", "bump")
LEVEL_NOUNS = ("level", "levels", "volume", "fader", "gain")
LEVEL_NOUN_VERBS: dict[str, float] = {"raise": 1.0, "increase": 1.0, "boost": 1.0, "bump": 1.0, "push": 1.0,
                                      "lift": 1.0, "lower": -1.0, "drop": -1.0, "reduce": -1.0, "cut": -1.0,
                                      "pull": -1.0, "trim": -1.0, "decrease": -1.0}
#: Verbs that move a source back ("push / shove / tuck / send the drums back"), unless "back" means
#: a return ("back to the middle", "back where it was").
BACK_VERBS = ("push", "shove", "tuck", "send", "move", "put", "drag", "pull", "sit", "set", "ease", "nudge", "scoot",
              "slide", "shift", "knock", "take", "sink", "yank", "drop")
#: Verbs that bring a source "up front" (closer, not to the centre): "push the vocal up front".
FRONT_VERBS = ("push", "move", "pull", "get", "put", "shift", "nudge", "pop", "yank", "drag", "ease", "scoot",
               "send", "sit", "slide", "take", "shove", "set", "place", "inch", "edge", "budge")
#: Verbs that narrow a group ("pinch the overheads in", "squeeze the keys and the guitar").
NARROW_VERBS = ("pinch", "squeeze", "tighten", "squish", "squash", "collapse")
#: Verbs that bring a source "in" (closer): "pull the piano in a touch" (round 5).  "In" is a
#: distance only at the end of its clause or before a size word, never before "tighter",
#: "together" or "towards" (a width: "pull the pads in tighter").  "Come in" is a distance only
#: before a size word ("the drums could come in a fair bit"): alone it is an entrance ("then the
#: pad comes in", "the strings come in at bar 9").
IN_VERBS = ("pull", "draw", "move", "ease", "inch", "bring")
#: Complaints about a level ("the vocal is too quiet", "the hats are a bit too hot"): a step the
#: other way.  A level change said beside it for the same track ("too loud, take it down a bit")
#: is the one that counts (:func:`stase.agent.parser._parse_text`).
TOO_LEVEL_SIGN = {"loud": -1.0, "hot": -1.0, "quiet": 1.0, "soft": 1.0}
#: Complaints about a height ("the riser is floating too high"): a step the other way (round 6;
#: like the level complaints, the parser's alone: the agent has no height intent).
TOO_HEIGHT_SIGN = {"high": -1.0, "low": 1.0}


#: left") is a plain step that way, not a place; in a new plan it is the place.
MOTION_VERBS = ("shift", "move", "nudge", "slide", "scoot", "budge", "inch", "edge")
#: Verbs that widen (+1) or narrow (-1) a group by a number of degrees ("open the gtrs up by 10
#: degrees each side", "narrow the pads 10 degrees"; round 6).
WIDTH_NUMBER_VERBS = {"widen": 1.0, "wider": 1.0, "open": 1.0, "spread": 1.0, "narrow": -1.0, "pinch": -1.0,
                      "squeeze": -1.0, "tighten": -1.0}

_SMALL_NUMBERS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30,
    "forty": 40, "forty-five": 45, "forty five": 45, "fifty": 50, "sixty": 60, "seventy": 70,
    "eighty": 80, "ninety": 90, "a hundred": 100, "a": 1, "an": 1, "half a": 0.5, "half an": 0.5, "a half": 0.5, "half": 0.5,
    "one and a half": 1.5, "a couple of": 2, "a couple": 2, "a few": 3,
}
_UNITS = ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90}
# written-out compounds: "twenty five", "thirty-five", "two and a half"
_SMALL_NUMBERS.update({f"{tens}{joint}{unit}": value + k + 1 for tens, value in _TENS.items()
                       for k, unit in enumerate(_UNITS) for joint in (" ", "-")})
_SMALL_NUMBERS.update({f"{word} and a half": _SMALL_NUMBERS[word] + 0.5
                       for word in (*_UNITS, "ten", "eleven", "twelve")})


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

def number(text: str) -> float:
    """A number written in digits or words ("half a" -> 0.5, "twenty" -> 20)."""
    t = text.strip().lower()
    if t in _SMALL_NUMBERS:
        return float(_SMALL_NUMBERS[t])
    return float(t)


#: Precedence classes (lower wins): a number the user wrote, a named position, a vague word.
NUMBER, NAMED, HEDGED = 0, 1, 2
PRECEDENCE_NAMES = {NUMBER: "number", NAMED: "named position", HEDGED: "hedge"}
#: What a rule can set: the placement quantities, and the whole-plan or width changes.
QUANTITIES = ("azimuth_deg", "elevation_deg", "distance_m", "gain_db", "reverb_db", "width_deg", "position",
              "anchor", "step")


_WETNESS = _alternation(WETNESS_WORDS)
#: A hedge said as a whole word (a motion verb's side with one is the side rule's)
_HEDGE_WORD = re.compile(rf"\b(?:{_alternation(HEDGES)})\b|\bto\s+the\s+(?:far|very)\b")
#: A number in digits only (a bare "30 left"; a word number there is too often prose: "a left turn")
DIGITS = r"[-+]?(?<!\d)\d++(?:\.\d++)?"
_DIGIT_LITERALS = "0 1 2 3 4 5 6 7 8 9"
_UNIT_ALTERNATION = r"(?:m|meters?|metres?|mtrs?|feet|foot|ft|cm|centimet(?:er|re)s?)\b"


DROP_NOUN_BEFORE = ("the", "a", "big", "huge", "massive", "first", "second", "final", "bass", "beat", "festival",
                    "edm", "next", "that", "this")
# (each look-behind is tried only after the word "drop" has matched, so it costs nothing elsewhere)
_NOT_AFTER_NOUN_WORDS = "".join(rf"(?<!\b{w}\sdrop)" for w in DROP_NOUN_BEFORE)

#: A small step said after its direction ("down a bit", "up slightly")
_SMALL_STEP = r"(?:a\s+(?:little\s+|tiny\s+|wee\s+)?bit|a\s+little|a\s+touch|a\s+tad|a\s+smidgen?|a\s+hair|slightly)"
#: A size said after a side or a direction ("over to the left a tad", "up a fair bit in the mix"):
#: the hedges of :data:`HEDGES` that are a step's size, small or large
SIZE_AFTER = tuple(sorted({h for h in HEDGES if h.startswith(("a ", "slightly", "quite a"))
                           and (HEDGES[h] <= 15.0 or h in LARGE_STEP_HEDGES)} - {"a bit more", "a little more"}
                          # round 7: the size table's words that stand alone after a direction ("right heaps")
                          | {"loads", "lots", "heaps", "tons", "way more", "much more"}))
_SIZE_AFTER = _alternation(SIZE_AFTER)
