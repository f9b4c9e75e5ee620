"""The parser's rules as data: phrase tables, number words, and the table of spatial rules.

Module map (issue 16 code health: the rules split by responsibility; everything named below is
re-exported here, so ``from stase.agent.parser_rules import X`` keeps working)
------------------------------------------------------------------------------------------------
* this module: :class:`Vocabulary`, :class:`Rule`, :func:`verb_form_set`, :data:`PLACE_FILLER`
  (extended by every verb of the edit tables) and the rule table :data:`RULES`.
* :mod:`stase.agent.parser_phrases`: phrase tables, number words, pattern fragments and the
  precedence classes :data:`NUMBER` / :data:`NAMED` / :data:`HEDGED`.
* :mod:`stase.agent.parser_values`: each rule's value function (match -> cue fields).
* :mod:`stase.agent.parser_text`: :func:`normalise_text` and present-state blanking
  (:func:`blank_present_state`).
* :mod:`stase.agent.parser_spelling`: :func:`correct_spelling` and its tables.

Holds
-----
* :data:`RULES`: one :class:`Rule` per spatial expression, each with the ``quantity`` it sets, its
  ``precedence`` class, its ``pattern``, the trigger words it ``needs`` and its ``value`` function
  (match -> cue fields: :mod:`stase.agent.parser_values`).  The table's order is the order in which rules claim words (a longer,
  more specific phrase before the words inside it); ``precedence`` decides between two readings
  of the same quantity in one clause: :data:`NUMBER` (a number the user wrote) beats
  :data:`NAMED` (a named position: "hard left", "behind", "overhead") beats :data:`HEDGED`
  (a vague word: "left", "close", "a bit above"); the template fills what none of them gave
  (:func:`stase.agent.parser_cues._combine` applies it).
* :data:`STEPS`: the default step of a relative change ("a bit" = 5 deg / 0.5 m / 2 dB, plain =
  15 deg / x1.5 / 3 dB, "a lot" = 30 deg / x2 / 6 dB).
* :data:`WETNESS_WORDS`: wetness words -> ``reverb_db`` (issue 15).
* Phrase tables (hedges, clock, number words) and :func:`normalise_text`, :func:`number`.
* :data:`SPELLING_TARGETS`, :data:`SOUND_ALIKES`, :data:`SPELLING_EXCEPTIONS` and
  :func:`spelling_corrections`: misspelt side and unit words ("rihgt", "lfet", "centr",
  "degress") read as the word meant; :data:`NUMBER_HEDGES` ("35ish", "3 or so metres").
* :data:`PLACE_FILLER`: words that may stand in a cue's clause without naming an instrument
  (what is left is an instrument the session lacks: "the didgeridoo behind me").
* Impossible values ("150 % left", "120 degrees up", "0 m away") come out as an
  ``impossible`` field naming the bound, and the conductor refuses them.
* :class:`Vocabulary`: which trigger words a text holds (a rule runs only where they occur).
* Verb tables of relative edits (issue 16, round 3): :data:`LEVEL_VERBS` ("boost", "cut"),
  :data:`FADER_VERBS` ("turn / bring / push ... up / down"), :data:`LEVEL_NOUNS` with
  :data:`LEVEL_NOUN_VERBS` ("lower the level of"), :data:`BACK_VERBS` ("shove / tuck / send ...
  back", never "back to the middle"), :data:`FRONT_VERBS` ("push ... up front" is closer),
  :data:`NARROW_VERBS` ("pinch", "squeeze"), :data:`DROP_NOUN_BEFORE` ("the drop" of dance music
  is no verb).  A bare "raise / lower / drop" is a height only when nothing else in its clause says
  what changes: a level word or a dB number makes it a level, and it signs an unsigned dB number
  ("lower the keys 3 dB" is -3 dB); :func:`stase.agent.parser_cues._combine` applies that, and counts
  one step per quantity and clause (the one with the largest size said).
* Round 4: :data:`SIZE_AFTER` (a size said after its side or direction: "over to the left a tad",
  "up a fair bit in the mix"), "a fair bit / a fair amount / a good deal" (large), "crank" alone
  (louder), "back ... off" / "ease off" (quieter, no distance), "open ... up" and "tighter" (width;
  "open ... up" only for the tracks of its own clause: "open the mix up" is the agent's open
  request), "behind her / him" (not behind the listener), and :data:`PLACE_FILLER` extended by every
  verb of the edit tables, words of obligation ("needs to", "has to", "ought") and ensemble nouns
  ("quartet", "duo").
* Round 5: :data:`IN_VERBS` ("pull / draw / ease / inch ... in" is closer; "come in" only before a
  size word, otherwise an entrance), "in towards the middle" and "squish / squash" (width),
  :data:`TOO_LEVEL_SIGN` ("too quiet" is a level step up, "a bit too loud" a small one down; a
  level change said beside it counts instead), "dip" and "tame" (quieter), "a fraction" (small),
  "just" before a size said after its side ("left just a touch"), the verb "hard-pan", a hedged
  "high" / "low" ("a little low" is 15 deg down), "upward / downward" (a height step), "call it"
  (filler), "close-miked" (a recording style, no distance).
* Round 6: the rule ``complaint`` (and, in an edit only, ``complaint_state``: a :class:`Rule`
  may be ``edit_only``) reads :data:`stase.agent.parser_complaints.COMPLAINTS`, the table the
  agent reads too, as a step the way the complaint asks; :data:`TOO_HEIGHT_SIGN` ("too high" is
  a step down, read with the level complaints); :data:`PRESENT_STATE` and
  :func:`blank_present_state` (where a track is now, blanked in an edit); :data:`MOTION_VERBS`
  (rule ``motion_side``, edit only: "shift the soloist left" is a plain step); a number beside a
  hedged side is the step's size in an edit ("left a bit, like 5 deg");
  :data:`WIDTH_NUMBER_VERBS` (rule ``width_degrees``: "open the gtrs up by 10 degrees each side");
  "more / less level" (rule ``level_noun``); "recentring"; "back", "again" are filler.
* Round 7: the size words come from the one table of :mod:`stase.agent.parser_vocabulary`
  (every one a hedge of its class, and said after a direction too: "right heaps"); rules
  ``motion_height`` ("shift the strings up", edit only; a fader verb's "up" stays a level),
  ``motion_degrees`` ("nudge it 5 degrees left" is a move by 5 deg in an edit), ``level_lost``
  ("the harp's getting lost": a level step, the reason only beside another change); "back a tad"
  (any size after "back"); "wider by 10 deg"; "back like 2 metres"; "half" is 0.5; "centring";
  :data:`PRESENT_STATE` also blanks questions ("why is the vox off to the left??"), a comparison
  after the change (", like it's coming from above"), "way up in the rafters", "off centre",
  "drifting"; more verbs are filler ("snap it to the middle").
* Round 8: :data:`CHAT_SPELLINGS` ("theyre", "dont") and "decibels" in :func:`normalise_text`;
  more present states blanked in an edit (:data:`PRESENT_STATE`: "is shifted left", "it's quite
  left", "is way over to the left", "is louder than the keys", "is hugging the centre channel",
  "floats above the screen", "is 6 m out"), a direction before its number as a move in an edit
  (``edit_by`` of "right 40 degrees", "down 10 degrees"), the rule ``each_degrees`` ("10 degrees
  each", the way of the clause's width step) and chat filler words.

Conventions (:mod:`stase.core.conventions`): azimuth in degrees, 0 = front, positive = left;
pan = -lateral / 90 (so "70 % right" is -63 deg).  Every value keeps the words it came from:
the scanner stores each match's span, and the cue's ``text`` is those words.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable

from stase.agent.parser_vocabulary import MOTION_HEIGHT_VERBS
from stase.agent.parser_complaints import PARSER_COMPLAINT_PATTERN, PARSER_STATE_PATTERN
from stase.agent.parser_phrases import (ADJACENT_DEG, BACK_VERBS, CENTRE, CLOSE_SCALE, DEG, DIAGONAL_DEG, DIGITS,
    DISTANCE_WORDS_M, DIST_UNIT, DROP_NOUN_BEFORE, ELEVATION_WORDS_DEG, FADER_VERBS, FAR_SCALE, FEET_TO_M,
    FRONT_VERBS, FULL_SIDE_DEG, HEDGE, HEDGED, HEDGES, IMPOSSIBLE, IN_VERBS, LARGE_STEP_HEDGES, LEVEL_NOUNS,
    LEVEL_NOUN_VERBS, LEVEL_VERBS, MOTION_VERBS, NAMED, NARROW_VERBS, NUM, NUMBER, NUMBER_HEDGES, OF_CENTRE_DEG,
    PLACE_FILLER, PLAIN_SIDE_DEG, PRECEDENCE_NAMES, PREP, QUANTITIES, REAR_DIAGONAL_DEG, RELATIVE_AZIMUTH_DEG,
    RELATIVE_ELEVATION_DEG, SAME_SIDE_INSET_DEG, SIDE, SIZE_AFTER, SLIGHT_ELEVATION_DEG, STEPS, TOO_HEIGHT_SIGN,
    TOO_LEVEL_SIGN, WETNESS_WORDS, WIDTH_NUMBER_VERBS, _DIGIT_LITERALS, _HEDGE, _NOT_AFTER_NOUN_WORDS, _SIZE_AFTER,
    _SMALL_NUMBERS, _SMALL_STEP, _UNIT_ALTERNATION, _UNIT_WORDS, _WETNESS, _alternation, number)
from stase.agent.parser_spelling import (SOUND_ALIKES, SPELLING_EXCEPTIONS, SPELLING_TARGETS, _one_edit_apart,
    correct_spelling, spelling_corrections)
from stase.agent.parser_text import (CHAT_SPELLINGS, PRESENT_STATE, PRESENT_STATE_WORDS, blank_present_state,
    normalise_text)
from stase.agent.parser_values import (_above_below, _anchor, _at_distance, _azimuth_keyword, _back_off, _bearing,
    _behind, _both_sides, _centre_letter, _clock, _close, _closer, _complaint, _degrees_side, _diagonal, _distance,
    _each_degrees, _ear_level, _elevation_degrees, _elevation_keyword, _far, _front, _further, _gain, _hard_letter,
    _hard_pan_verb, _height_step, _high_low, _higher_lower, _house_side, _in_the_mix, _in_towards_centre, _level_lost,
    _level_noun, _level_verb, _louder, _mid, _motion_degrees, _motion_height, _motion_side, _number_side, _overhead,
    _pan_percent, _plain_degrees, _plus_minus, _raise_degrees, _relative_degrees, _relative_distance,
    _relative_elevation_degrees, _relative_side, _side, _side_degrees, _slight_height, _spread, _stage_side,
    _step_word, _together_apart, _too_level, _degrees_wider, _up_down_degrees, _very_close, _very_far, _wetness, _width,
    _width_degrees)

#: The rule table's public names, with the tables and text passes it re-exports from the modules
#: it was split into (and the private helpers the tests read: ``_SMALL_NUMBERS``, ``_one_edit_apart``).
__all__ = ["ADJACENT_DEG", "BACK_VERBS", "CENTRE", "CHAT_SPELLINGS", "CLOSE_SCALE", "DEG", "DIAGONAL_DEG",
    "DIGITS", "DISTANCE_WORDS_M", "DIST_UNIT", "DROP_NOUN_BEFORE", "ELEVATION_WORDS_DEG", "FADER_VERBS",
    "FAR_SCALE", "FEET_TO_M", "FRONT_VERBS", "FULL_SIDE_DEG", "HEDGE", "HEDGED", "HEDGES", "IMPOSSIBLE",
    "IN_VERBS", "LARGE_STEP_HEDGES", "LEVEL_NOUNS", "LEVEL_NOUN_VERBS", "LEVEL_VERBS", "MOTION_VERBS",
    "NAMED", "NARROW_VERBS", "NUM", "NUMBER", "NUMBER_HEDGES", "OF_CENTRE_DEG", "PLACE_FILLER",
    "PLAIN_SIDE_DEG", "PRECEDENCE_NAMES", "PREP", "PRESENT_STATE", "PRESENT_STATE_WORDS", "QUANTITIES",
    "REAR_DIAGONAL_DEG", "RELATIVE_AZIMUTH_DEG", "RELATIVE_ELEVATION_DEG", "RULES", "Rule",
    "SAME_SIDE_INSET_DEG", "SIDE", "SIZE_AFTER", "SLIGHT_ELEVATION_DEG", "SOUND_ALIKES",
    "SPELLING_EXCEPTIONS", "SPELLING_TARGETS", "STEPS", "TOO_HEIGHT_SIGN", "TOO_LEVEL_SIGN", "Vocabulary",
    "WETNESS_WORDS", "WIDTH_NUMBER_VERBS", "_SMALL_NUMBERS", "_one_edit_apart", "blank_present_state",
    "correct_spelling", "normalise_text", "number", "spelling_corrections", "verb_form_set"]


@lru_cache(maxsize=None)
def _whole_word(word: str) -> re.Pattern:
    """``word`` with no letter on either side.  The pattern opens with the word itself, so the
    regex engine finds its candidates with a fast literal search instead of trying every position."""
    w = re.escape(word)
    return re.compile(rf"{w}(?![a-z])(?<![a-z]{w})")


class Vocabulary:
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
class Rule:
    """One spatial expression, as data.

    Parameters
    ----------
    name : what the rule reads ("pan_percent").
    quantity : the quantity it sets (:data:`QUANTITIES`; "position" for a rule that may set
        azimuth, elevation and distance together, "step" for a size word such as "a bit").
    precedence : :data:`NUMBER`, :data:`NAMED` or :data:`HEDGED`; a value function may lower
        it for one reading ("hard left" is a named position, plain "left" a hedge).
    pattern : the regular expression (compiled once into ``regex``).
    needs : trigger words, a conjunction of groups, each a space-separated disjunction of
        literals (:class:`Vocabulary`): a text lacking every literal of some group cannot match,
        so the rule skips it without running its pattern.  tests/test_parser.py checks, on every
        test prompt and on random ones, that wherever a rule reads something its needs hold.
    value : match -> cue fields (or ``None``), a function of the match's text and groups alone.
    guarded : the rule reads one-letter side words ("L30", "hard R"), so it never reads inside
        a track's own name ("Gtr L", "OH R 30 left").
    edit_only : the rule reads only a request against a current plan (``parse_prompt(...,
        edit=True)``): a state said with a verb ("the sitar sounds distant") is a complaint
        there and a description in a new plan's prompt.
    """

    name: str
    quantity: str
    precedence: int
    pattern: str
    needs: tuple[str, ...]
    value: Callable[[re.Match], dict | None]
    guarded: bool = False
    edit_only: bool = False
    regex: re.Pattern = field(init=False, repr=False, compare=False)
    groups: tuple[tuple[str, ...], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        assert self.quantity in QUANTITIES and self.precedence in PRECEDENCE_NAMES, self
        object.__setattr__(self, "regex", re.compile(self.pattern))
        object.__setattr__(self, "groups", tuple(tuple(group.split()) for group in self.needs))

    @property
    def build(self) -> Callable[[re.Match], dict | None]:
        return self.value


def verb_form_set(verbs) -> frozenset[str]:
    """The verbs and their inflections ("cut", "cuts", "cutting"; "raise", "raised")."""
    forms = set()
    for verb in verbs:
        stem = verb[:-1] if verb.endswith("e") else verb
        forms.update({verb, verb + "s", stem + "ed", stem + "ing", stem + "es"})
        if len(verb) >= 3 and verb[-1] in "bdgmnpt" and verb[-2] in "aeiou" and verb[-3] not in "aeiou":
            forms.update({verb + verb[-1] + "ed", verb + verb[-1] + "ing"})   # "cutting", "dropped"
    return frozenset(forms)


def _VERB_FORMS(verbs) -> str:
    """A regex for the verbs and their inflections (:func:`verb_form_set`)."""
    return _alternation(sorted(verb_form_set(verbs)))


#: Every verb of an edit table, inflected, and the words of obligation before a move ("the harp
#: needs to go", "the organ has to come down", "the tanpura needs pushing"), and ensemble nouns
#: ("with a quartet behind her") are filler too: none of them names an instrument (issue 16, round 4).
PLACE_FILLER = PLACE_FILLER | verb_form_set(
    (*LEVEL_VERBS, *FADER_VERBS, *LEVEL_NOUN_VERBS, *BACK_VERBS, *FRONT_VERBS, *NARROW_VERBS, *IN_VERBS,
     "need", "come", "angle", "tilt", "open", "widen", "narrow", "raise", "lift", "lower", "stick", "pop", "scoot", "edge",
     "move", "turn", "spread", "pan", "place", "sit", "swap", "switch", "trade", "flip", "mirror", "centre",
     "center", "snap", "slam", "throw", "park", "chuck", "plonk", "plop", "drag", "yank", "float", "sink", "shove",
     "send", "tuck", "budge", "inch", "reverse", "invert", "give", "use", "sound")) | frozenset("""
    has had must ought gotta should needs got duo trio quartet quintet sextet combo too loud quiet
    hot louder quieter him her soft
""".split())


#: "Drop" is the noun of dance music after an article or an adjective ("the drop", "festival drop",
#: "a massive drop"); only the verb ("drop the choir a bit") is a change of height or level.


#: "each side" after a width number ("15 degrees narrower each", "tighter by 10 degrees per side")
#: A comma inside a list of names ("narrow vln ii, vla and vc by 10 degrees"): one or two words
#: follow it, then another comma, "and" or a closing bracket (thirteenth stop)
_LIST_COMMA = r",(?=\s*[a-z0-9_']+(?:\s+[a-z0-9_']+)?\s*(?:,|\band\b|&|\)))"
_EACH_SIDE_WORDS = r"(?:each(?:\s+side)?|apiece|per\s+side|a\s+side|either\s+side|on\s+(?:each|either|both)\s+sides?)"
_EACH_SIDE = rf"(?:\s+{_EACH_SIDE_WORDS})?"


#: The rule table.  Its order is the order in which rules claim words where their matches
#: overlap (a longer, more specific phrase before the words inside it: "pan 70% right" before
#: "right"); ``precedence`` then decides between readings of the same quantity in one clause.
RULES: tuple[Rule, ...] = (
    Rule("plus_minus", "azimuth_deg", NUMBER, rf"plus-or-minus\s*({NUM})\s*(?:{DEG})?",
         needs=("plus-or-minus",), value=_plus_minus),
    Rule("wetness", "reverb_db", NAMED, rf"\b({_WETNESS})\b",
         needs=("dry drier wet intimate front roomy lush back drenched soaked swimming washed cavernous",), value=_wetness),
    Rule("anchor", "anchor", NAMED, r"\b(left|right)\s+of\s+(?!(?:the\s+)?(?:cent(?:er|re)|middle|me|us|you|listener|stage|room|mix)\b)(?:the\s+)?"
         r"|\bopposite(?!\s+(?:side|direction|corner|end|way)\b)(?:\s+to)?\s+(?:the\s+)?"
         r"|\b(?:next\s+to|beside|alongside)\s+(?!(?:me|us|you|my|the\s+listener)\b)(?:the\s+)?"
         r"|\bon\s+the\s+same\s+side\s+as\s+(?:the\s+)?",
         needs=("left right opposite next beside alongside same", "of opposite next beside alongside same"),
         value=_anchor),
    Rule("both_sides", "azimuth_deg", HEDGED, rf"\b{HEDGE}?{SIDE}\s+and\s+(?:(?:the\s+)?other\s+)?(?:to\s+the\s+)?(left|right)\b(?!\s+of)",
         needs=("and", "left right"), value=_both_sides),
    Rule("pan_percent", "azimuth_deg", NUMBER, rf"({NUM})\s*(?:%|percent|per\s*cent)\s*(?:to\s+the\s+|to\s+)?(left|right|l|r)\b"
         rf"|\b(left|right|l|r)\s*({NUM})\s*(?:%|percent|per\s*cent)"
         rf"|\bpan(?:ned)?\s+(?:it\s+)?(?:at\s+|to\s+)?({NUM})\s*(?:%|percent|per\s*cent)(?!\s*(?:to\s+the\s+|to\s+)?(?:left|right|l|r)\b)",
         needs=("% percent cent",), value=_pan_percent, guarded=True),
    Rule("azimuth_keyword", "azimuth_deg", NUMBER, rf"\b(?:azimuth|az\b)\s*+(?:of|at|to|:|=|is)?\s*({NUM})\s*(?:{DEG})?(?:\s*(?:to\s+the\s+)?{SIDE})?",
         needs=("azimuth =az",), value=_azimuth_keyword),
    Rule("bearing", "azimuth_deg", NUMBER, rf"\bbearing\s+(?:of\s+)?({NUM})\s*(?:{DEG})?",
         needs=("bearing",), value=_bearing),
    Rule("relative_elevation_degrees", "elevation_deg", NUMBER, rf"({NUM})\s*{DEG}\s+(higher|lower)\b",
         needs=("deg", "higher lower"), value=_relative_elevation_degrees),
    Rule("elevation_keyword", "elevation_deg", NUMBER, rf"\b(?:elevation|elevated|raised|height|tilted\s+up)\s*+(?:(?:up\s+|down\s+)?(?:of|at|to|:|=|is)\s*(?:about\s+|around\s+|roughly\s+|approximately\s+|maybe\s+)?)?(?!an?\s)({NUM})\s*(?:{DEG})?",
         needs=("elevat raised height tilted",), value=_elevation_keyword),
    Rule("elevation_degrees", "elevation_deg", NUMBER, rf"({NUM})\s*{DEG}\s*(?:of\s+elevation|up(?:wards?)?|above|high|elevat(?:ed|ion)|overhead|down(?:wards?)?|below|low|under(?:neath)?)",
         needs=("deg",), value=_elevation_degrees),
    Rule("width_degrees", "width_deg", NUMBER,
         rf"\b(?:{_VERB_FORMS(WIDTH_NUMBER_VERBS)})\b(?:(?!\b(?:{_VERB_FORMS(WIDTH_NUMBER_VERBS)})\b)(?:[^,.;]|{_LIST_COMMA}))*?"
         rf"(?P<key>\b(?:up\s+|out\s+)?(?:by\s+)?(?:another\s+|an\s+extra\s+)?(?P<amount>{NUM})\s*{DEG}(?:\s+(?:on\s+)?(?:each|either|per|a)\s+side)?)",
         needs=("widen wider open spread narrow pinch squeez tighten", "deg"), value=_width_degrees),
    Rule("degrees_wider", "width_deg", NUMBER,
         rf"\b(?:by\s+)?(?P<amount>{NUM})\s*{DEG}\s+(?:more\s+)?(?P<way>wider|narrower|tighter)\b{_EACH_SIDE}"
         rf"|\b(?P<way2>wider|narrower|tighter)\s+(?:by|of)\s+(?P<amount2>{NUM})\s*{DEG}{_EACH_SIDE}",
         needs=("deg", "wider narrower tighter"), value=_degrees_wider),
    Rule("up_down_degrees", "elevation_deg", NUMBER, rf"\b(up|down)\s+(?:by\s+)?({NUM})\s*{DEG}",
         needs=("deg", "up down"), value=_up_down_degrees),
    Rule("relative_degrees", "azimuth_deg", NUMBER, rf"({NUM})\s*{DEG}\s+(?:further|farther|more)\s+(?:to\s+the\s+)?{SIDE}"
         rf"|\b{SIDE}\s+by\s+(?:(?:another|an\s+extra|a\s+further)\s+)?({NUM})\s*{DEG}"
         rf"|\b(?:another|an\s+extra|a\s+further)\s+({NUM})\s*{DEG}\s+(?:to\s+the\s+)?{SIDE}",
         needs=("deg", "left right"), value=_relative_degrees),
    Rule("motion_degrees", "azimuth_deg", NUMBER,
         rf"\b(?:{_VERB_FORMS(MOTION_VERBS)})\b(?:(?!\b(?:{_VERB_FORMS(MOTION_VERBS)})\b)[^,.;\d])*?(?<!\bto\s)(?<!\bat\s)"
         rf"(?P<key>\b(?:by\s+|another\s+|an\s+extra\s+)?({NUM})\s*{DEG}\s+(?:further\s+|more\s+)?(?:over\s+)?(?:to(?:wards)?\s+(?:the\s+)?)?{SIDE})\b",
         needs=(" ".join(MOTION_VERBS), "deg", "left right"), value=_motion_degrees, edit_only=True),
    Rule("degrees_side", "azimuth_deg", NUMBER, rf"({NUM})\s*{DEG}\s*(?:off[- ]cent(?:er|re)\s*|from\s+(?:the\s+)?{CENTRE}\s*)?{PREP}?{SIDE}",
         needs=("deg", "left right"), value=_degrees_side),
    Rule("side_degrees", "azimuth_deg", NUMBER, rf"\b{SIDE}\s+(?:at\s+)?({NUM})\s*{DEG}",
         needs=("deg", "left right"), value=_side_degrees),
    Rule("clock", "azimuth_deg", NUMBER, r"\b(?:at\s+)?(?:about\s+|around\s+)?(?:the\s+)?(\d{1,2}|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve)"
         r"(?:\s*o'?\s?clock|\s*oclock|:00\b)",
         needs=("clock :00",), value=_clock),
    Rule("relative_distance", "distance_m", NUMBER, rf"({NUM})\s*{DIST_UNIT}\s*(?:further\s+|farther\s+|more\s+)?(back|(?<=further )away|(?<=farther )away|closer|nearer|forward)\b(?!\s+of\b)"
         rf"|\b(back|closer|nearer|forward|in)\s+(?:(?:by|like|about|around|roughly|maybe|say|another|an\s+extra|a\s+further),?\s+){{0,3}}({NUM})\s*{DIST_UNIT}",
         needs=("back away closer nearer forward =in", _UNIT_WORDS), value=_relative_distance),
    Rule("distance", "position", NUMBER, rf"({NUM})\s*{DIST_UNIT}(?:\s+(?:away|from\s+(?:me|the\s+listener|us)|off|distant))?"
         rf"(?:\s+(?:directly\s+)?(?:(?:to\s+(?:the|my|your)\s+)({'left|right'})|(behind)|(in\s+front)))?",
         needs=(_UNIT_WORDS,), value=_distance),
    Rule("at_distance", "distance_m", NUMBER, rf"@\s*({NUM})(?:\s*{DIST_UNIT})?",
         needs=("@",), value=_at_distance),
    Rule("gain", "gain_db", NUMBER, rf"(?:\b(up|down|louder|quieter)\s+(?:by\s+)?)?({NUM})\s*db\s*(louder|quieter|softer|up|down|more|less|lower|higher)?",
         needs=("db",), value=_gain),
    Rule("number_side", "azimuth_deg", NUMBER, rf"(?<![\w.])({DIGITS})\s*(?:{DEG}\s*)?(?:to\s+the\s+|to\s+)?(left|right|l|r)\b(?!\s+of\b)"
         rf"|\b(left|right|l|r)\s*({DIGITS})(?![\d.])(?!\s*(?:%|percent|per\s*cent|{_UNIT_ALTERNATION}|db|o'?\s?clock|oclock|:|deg))",
         needs=("left right =l =r", _DIGIT_LITERALS), value=_number_side, guarded=True),
    Rule("hard_letter", "azimuth_deg", NAMED, r"\b(?:hard|fully|full)[\s-]*(l|r)\b",
         needs=("hard full", "=l =r"), value=_hard_letter, guarded=True),
    Rule("hard_pan_verb", "azimuth_deg", NAMED, r"\bhard[- ]?pan(?:ned|ning|s)?\b(?:(?!\bhard)[^,.;])*?\b(?P<key>left|right)\b",
         needs=("hard", "pan", "left right"), value=_hard_pan_verb),
    Rule("centre_letter", "azimuth_deg", NAMED, r"\bc\b(?=\s*(?:@|,|\.|;|$))",
         needs=("=c",), value=_centre_letter, guarded=True),
    Rule("complaint", "step", HEDGED, rf"\b(?:(?P<hedge>{_HEDGE})\s+)?(?:{PARSER_COMPLAINT_PATTERN})",
         needs=("too less together miles",), value=_complaint),
    Rule("complaint_state", "step", HEDGED, PARSER_STATE_PATTERN,
         needs=("narrow mono centred centered scattered distant far remote miles face",
                "feel sound is are seem look get"), value=_complaint, edit_only=True),
    Rule("in_towards_centre", "width_deg", HEDGED, rf"\bin\s+towards?\s+(?:the\s+)?(?:{CENTRE}|front)\b",
         needs=("toward", "cent middle front"), value=_in_towards_centre),
    Rule("together_apart", "width_deg", HEDGED, rf"\b{HEDGE}?(?:closer|nearer|tighter)\s+together\b|\b{HEDGE}?(?:further|farther|more|wider)\s+apart\b",
         needs=("together apart",), value=_together_apart),
    Rule("level_noun", "gain_db", HEDGED, rf"\b(?P<key>{_VERB_FORMS(LEVEL_NOUN_VERBS)})\b(?:(?!\b(?:{_VERB_FORMS(LEVEL_NOUN_VERBS)})\b)[^,.;])*?\b(?:{'|'.join(LEVEL_NOUNS)})\b"
         rf"|\b(?:{'|'.join(LEVEL_NOUNS)})\s+(?P<key2>up|down)\b"
         rf"|\b(?:(?P<more_hedge>{_HEDGE})\s+)?(?P<more>more|less)\s+(?:{'|'.join(LEVEL_NOUNS)})\b",
         needs=(" ".join(LEVEL_NOUNS),), value=_level_noun),
    Rule("in_the_mix", "gain_db", HEDGED, rf"\b{HEDGE}?(higher|lower|up|down|louder|quieter|hotter|further\s+up|further\s+down)\s+(?:(?P<after>{_SIZE_AFTER})\s+)?in\s+the\s+mix\b",
         needs=("mix",), value=_in_the_mix),
    Rule("level_verb", "gain_db", HEDGED, rf"\b({_VERB_FORMS(LEVEL_VERBS)})\b",
         needs=(" ".join(LEVEL_VERBS),), value=_level_verb),
    Rule("level_lost", "step", HEDGED,
         r"\b(?:getting|gets|got|is|are|'s|'re|sounds?|feels?|being)\s+(?:a\s+(?:bit|little)\s+|totally\s+|completely\s+|kind\s+of\s+|kinda\s+|so\s+)?"
         r"(?:lost|buried|drowned(?:\s+out)?|swamped|masked|inaudible)\b|\bcan'?t\s+(?:really\s+)?hear\b|\b(?:hard|difficult)\s+to\s+hear\b",
         needs=("lost buried drowned swamped masked inaudible hear",), value=_level_lost, edit_only=True),
    Rule("too_level", "step", HEDGED, rf"\b{HEDGE}?too\s+({'|'.join((*TOO_LEVEL_SIGN, *TOO_HEIGHT_SIGN))})\b",
         needs=("too", " ".join((*TOO_LEVEL_SIGN, *TOO_HEIGHT_SIGN))), value=_too_level),
    Rule("relative_side", "step", HEDGED, rf"\b{HEDGE}?(?:further|farther|more)\s+(?:over\s+)?(?:to(?:wards?)?\s+(?:the\s+)?)?{SIDE}"
         rf"|\b{HEDGE}?(?:more|further)\s+to\s+the\s+{SIDE}",
         needs=("further farther more", "left right"), value=_relative_side),
    Rule("back_off", "gain_db", HEDGED, r"\b(?:back|ease)(?:s|ed|ing)?\s+(?:[a-z0-9_']+\s+){0,2}?off\b",
         needs=("back ease", "off"), value=_back_off),
    Rule("further", "step", HEDGED, rf"\b{HEDGE}?(?:further|farther|more)\s+(?:back|away|distant)"
         rf"|\b(?:{_VERB_FORMS(BACK_VERBS)})\b(?:(?!\b(?:{_VERB_FORMS(BACK_VERBS)})\b)[^,.;])*?(?:\b(?P<hedge>{_HEDGE})\s+)?(?:(?:further|farther)\s+)?\b(?P<key>back)\b"
         r"(?!\s+(?:to|into|in|where|at|on|towards?|up|and\s+forth)\b)(?!\s+\S+\s*deg)"
         rf"|\b(?:towards?|at|in)\s+the\s+back\b|\bback\s+(?:{_SIZE_AFTER})\b|\bfarther\b|\bfurther\s+off\b",
         needs=("back away distant farther off",), value=_further),
    Rule("closer", "step", HEDGED, rf"\b{HEDGE}?(?:closer|nearer)\b|\bbring\b(?:(?!\bbring\b)[^,.;])*?\b(?P<key>forward|in(?!\s+front\b|\s+the\s+(?:middle|cent(?:re|er)|front|back)\b)|up\s+front|closer)\b"
         rf"|\b(?:{_VERB_FORMS(FRONT_VERBS)})\b(?:(?!\b(?:{_VERB_FORMS(FRONT_VERBS)})\b)[^,.;])*?\b(?P<key3>up\s+front)\b"
         r"|\bmove\b(?:(?!\bmove\b)[^,.;])*?\b(?P<key2>forward)\b"
         rf"|\b(?:{_VERB_FORMS(IN_VERBS)})\b(?:(?!\b(?:{_VERB_FORMS(IN_VERBS)})\b)[^,.;])*?\b(?P<key4>in)\b"
         r"(?=\s*+(?:$|[,.;!?]|(?:a|just|by|much|way|quite|loads|closer|nearer|slightly|please)\b))"
         r"(?!(?:\s++[a-z]++){0,3}\s++(?:tighter|together|towards?|narrower)\b)"
         rf"|\b(?:{_VERB_FORMS(('come',))})\s++(?P<key5>in)\s++(?=(?:a|just|by|much|way|quite|loads|closer|nearer|slightly)\b)"
         r"(?!(?:\s*+[a-z]++){0,3}\s++(?:tighter|together|towards?|narrower)\b)"
         rf"|\b{HEDGE}?(?:further\s+|more\s+)?forwards?\b(?!\s+of\b)|\b{HEDGE}?towards?\s+(?:me|us|the\s+listener)\b",
         needs=("closer nearer forward front =in toward",), value=_closer),
    Rule("very_close", "distance_m", HEDGED, r"\b(?:very\s+close|right\s+up\s+close|in\s+my\s+face|whisper\w*\s+in\s+my\s+ear|right\s+next\s+to\s+(?:me|my\s+ear)|inches\s+away)\b",
         needs=("close face whisper next inches",), value=_very_close),
    Rule("very_far", "distance_m", HEDGED, r"\b(?:very\s+far(?:\s+away)?|really\s+far(?:\s+away)?|miles\s+away|very\s+distant)\b",
         needs=("far miles distant",), value=_very_far),
    Rule("far", "distance_m", HEDGED, r"\b(?:far\s+away|far\s+off|in\s+the\s+distance|distant|far\s+from\s+(?:me|the\s+listener)|way\s+back|far\s+back)\b",
         needs=("far distan back",), value=_far),
    Rule("close", "distance_m", HEDGED, r"\b(?:up\s+close|close\s+up|close\s+to\s+(?:me|the\s+listener)|close|near\s+me|nearby|near)\b(?!\s+(?:the|a)\b)(?![- ]?mi(?:c|ke))",
         needs=("close near",), value=_close),
    Rule("mid", "distance_m", HEDGED, r"\bmid(?:-|\s)?(?:distance|range|ground)\b",
         needs=("mid",), value=_mid),
    Rule("stage_side", "azimuth_deg", NAMED, r"\bstage[- ](left|right)\b",
         needs=("stage", "left right"), value=_stage_side),
    Rule("house_side", "azimuth_deg", HEDGED, rf"\b{HEDGE}?(?:house|audience)[- ](left|right)\b",
         needs=("house audience", "left right"), value=_house_side),
    Rule("diagonal", "azimuth_deg", NAMED, rf"\b{HEDGE}?{PREP}?(?:(front|rear|back)[- ](left|right)|(left|right)[- ](front|rear|back))\b",
         needs=("front rear back", "left right"), value=_diagonal),
    Rule("width", "width_deg", HEDGED, rf"\b{HEDGE}?(?:wider|broader|broaden(?:ed)?|narrower|tighter|widen(?:ed)?|narrow(?:ed|s)?(?!\s*-?\s*(?:band|q|range)\b)|{_VERB_FORMS(NARROW_VERBS)})\b"
         r"|\bopen(?:s|ed|ing)?\b(?![- ](?:air|mic|plan|road|field)\b)(?:(?!\bopen)[^,.;])*?\b(?P<key>up|out)\b(?!\s+front\b)",
         needs=("wider broad narrow widen pinch squeez tighten tighter open squish squash collaps",), value=_width),
    Rule("motion_side", "azimuth_deg", HEDGED,
         rf"\b(?:{_VERB_FORMS(MOTION_VERBS)})\b(?:(?!\b(?:{_VERB_FORMS(MOTION_VERBS)})\b)[^,.;\d])*?\b(?P<key>left|right)\b"
         rf"(?!\s+(?:of|side|hand|and|or|channel|speaker)\b)(?!\s+(?:just\s+)?(?:{_SIZE_AFTER})\b)(?!\s*-?\s*\d)",
         needs=(" ".join(MOTION_VERBS), "left right"), value=_motion_side, edit_only=True),
    Rule("side", "azimuth_deg", HEDGED, rf"\b{HEDGE}?{PREP}?{HEDGE}?{SIDE}(\s+of\s+(?:the\s+)?{CENTRE})?(?:[- ](?:hand\s+)?side|\s+channel|\s+speaker)?(?:\s+(?:just\s+)?(?P<after>{_SIZE_AFTER}))?\b(?!\s+(?:and|or)\s+(?:the\s+)?(?:other\s+)?(?:to\s+the\s+)?(?:left|right))",
         needs=("left right",), value=_side),
    Rule("behind", "azimuth_deg", NAMED, r"\b(?:behind\s+(?:me|us|you|the\s+listener|my\s+head|the\s+head|your\s+head)|from\s+behind|behind(?!\s+(?:her|him)\b)|in\s+the\s+rear|at\s+the\s+rear|to\s+the\s+rear|rear)\b",
         needs=("behind rear",), value=_behind),
    Rule("front", "azimuth_deg", NAMED, r"\b(?:front\s+and\s+cent(?:er|re)|dead\s+cent(?:er|re)|(?:re-?)?cent(?:er|re|r)ing|re-?cent(?:er|re|r)(?:ed|d|s|ing)?|straight\s+ahead|directly\s+ahead|directly\s+in\s+front(?:\s+of\s+(?:me|us|you))?"
         r"|in\s+front(?:\s+of\s+(?:me|us|you|the\s+listener))?|(?:in\s+the\s+|at\s+the\s+)?(?:cent(?:er|re)|middle)|cent(?:er|re)d|centered|up\s+front|ahead|front)\b",
         needs=("front cent middle ahead",), value=_front),
    Rule("overhead", "elevation_deg", NAMED, r"\b(?:directly\s+(?:above|overhead)|right\s+above|straight\s+up|overhead|above\s+my\s+head|above\s+(?:me|us|the\s+listener)|up\s+above|from\s+above|on\s+the\s+ceiling)\b",
         needs=("above overhead straight ceiling",), value=_overhead),
    Rule("louder", "step", HEDGED, rf"\b{HEDGE}?(louder|quieter|softer)\b",
         needs=("louder quieter softer",), value=_louder),
    Rule("fader", "step", HEDGED, rf"\b(?:{_VERB_FORMS(FADER_VERBS)})\b(?:(?!\b(?:{_VERB_FORMS(FADER_VERBS)})\b)[^,.;])*?(?<!\bhigher\s)(?<!\blower\s)\b(?P<key>up|down)\b"
         r"(?!\s+(?:front|close|high|low|above|below|overhead|to\s+the|the\s+middle|into|in\s+the|there|by\s+\S+\s+deg|\S+\s+deg)\b)",
         needs=(" ".join(FADER_VERBS), "=up =down"), value=_louder),
    Rule("motion_height", "step", HEDGED,
         rf"\b(?:{_VERB_FORMS(MOTION_HEIGHT_VERBS)})\b(?:(?!\b(?:{_VERB_FORMS(MOTION_HEIGHT_VERBS)})\b)[^,.;\d])*?\b(?P<key>up|down)\b"
         r"(?!\s+(?:front|close|in\s+the\s+mix|the\s+middle|to\s+the|into|there|here|with|on\s+the|by\s+\S+\s+deg|\S+\s+deg)\b)",
         needs=(" ".join(MOTION_HEIGHT_VERBS), "=up =down"), value=_motion_height, edit_only=True),
    Rule("slight_height", "elevation_deg", HEDGED, r"\b(?:raised|elevated|lifted)\s+(?:a\s+(?:little\s+)?bit|a\s+little|a\s+touch|a\s+tad|slightly)\b"
         r"|\b(?:slightly|a\s+(?:little\s+)?bit|a\s+little|a\s+touch|a\s+tad)\s+(?:up|down)\b(?!\s+front\b)",
         needs=("raised elevated lifted up down", "bit little touch tad slightly"), value=_slight_height),
    Rule("above_below", "elevation_deg", HEDGED, rf"\b{HEDGE}?(?:above|up\s+high|high\s+up|raised|elevated|up\s+in\s+the\s+air|in\s+the\s+air|below|beneath|underneath|down\s+low|low\s+down|from\s+below|at\s+my\s+feet|on\s+the\s+floor)\b",
         needs=("above high raised elevated air below neath low feet floor",), value=_above_below),
    Rule("high_low", "elevation_deg", HEDGED, rf"\b{HEDGE}?(high|low)\b(?!\s*-?\s*(?:end|pass|cut|shelf|frequenc|mids?\b|notes?\b|register|strings?\b|hats?\b))",
         needs=("high low",), value=_high_low),
    Rule("ear_level", "elevation_deg", NAMED, r"\b(?<!below\s)(?<!above\s)(?<!under\s)(?:at\s+)?ear[- ]level\b",   # "below ear level" is below
         needs=("level",), value=_ear_level),
    Rule("higher_lower", "step", HEDGED, rf"\b{HEDGE}?(?:higher(?:\s+up)?|raise[ds]?|lift(?:ed|s)?)\b|\b{HEDGE}?(?:lower|drop(?:ped)?\s+down)\b"
         rf"|\bdrop{_NOT_AFTER_NOUN_WORDS}(?:ped|s)?\b(?!\s+(?:hits?|comes?|lands?|section|kicks?|is|was|with|of|in|at|on|for|and)\b)"
         rf"|\b{HEDGE}?(?:up|down)wards?\b",
         needs=("higher raise lift bit lower drop upward downward",), value=_higher_lower),
    Rule("height_step", "step", HEDGED, rf"\b(up|down)\s+{_SMALL_STEP}\b",
         needs=("=up =down", "bit little touch tad smidge hair slightly"), value=_height_step),
    Rule("raise_degrees", "elevation_deg", NUMBER, rf"\b(?:raise[ds]?|lift(?:ed|s)?|lower(?:ed|s)?|drop(?:ped|s)?)\b"
         rf"(?:(?!\b(?:raise|lift|lower|drop))[^,.;])*?(?P<key>\b(?:by\s+)?({NUM})\s*{DEG})(?!\s+(?:to\s+(?:the\s+)?)?(?:left|right|l|r)\b)",
         needs=("raise lift lower drop", "deg"), value=_raise_degrees),
    Rule("each_degrees", "width_deg", NUMBER, rf"\b(?:by\s+)?(?:another\s+|an\s+extra\s+)?({NUM})\s*{DEG}\s+(?:(?:more|extra|further)\s+)?{_EACH_SIDE_WORDS}\b",
         needs=("deg", "each apiece side"), value=_each_degrees),
    Rule("plain_degrees", "azimuth_deg", NUMBER, rf"\b(?:at\s+|to\s+)?({NUM})\s*{DEG}",
         needs=("deg",), value=_plain_degrees),
    Rule("spread", "azimuth_deg", HEDGED, r"\b(?:spread|wide|widely|wide\s+apart|either\s+side|both\s+sides|split)\b",
         needs=("spread wide side split",), value=_spread),
    Rule("step_word", "step", HEDGED, r"\b(?:quite\s+a\s+(?:bit|lot)|a\s+good\s+(?:bit|deal)|a\s+fair\s+(?:bit|amount)|a\s+whole\s+lot|a\s+(?:tiny|wee)\s+bit|a\s+(?:bit|little|touch|tad|hair|lot|smidgen|smidge|ton)|slightly|way\s+more|much\s+more|loads|lots|heaps|tons"
         r"|a\s+notch|a\s+nudge|a\s+fraction|way(?=\s+(?:up|down|back|forward|over|out|in|higher|lower|louder|quieter|wider|broader|narrower|closer|further|farther|upwards?|downwards?|towards?|to\s+the)\b))\b",
         needs=("bit little touch tad hair lot slightly more loads lots smidge heaps tons ton way notch nudge amount deal fraction",), value=_step_word),
)
