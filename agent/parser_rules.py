"""The parser's rules as data: phrase tables, number words, and the table of spatial rules.

Holds
-----
* :data:`RULES`: one :class:`Rule` per spatial expression, each with the ``quantity`` it sets, its
  ``precedence`` class, its ``pattern``, the trigger words it ``needs`` and its ``value`` function
  (match -> cue fields).  The table's order is the order in which rules claim words (a longer,
  more specific phrase before the words inside it); ``precedence`` decides between two readings
  of the same quantity in one clause: :data:`NUMBER` (a number the user wrote) beats
  :data:`NAMED` (a named position: "hard left", "behind", "overhead") beats :data:`HEDGED`
  (a vague word: "left", "close", "a bit above"); the template fills what none of them gave
  (:func:`stase.agent.parser._combine` applies it).
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
  ("lower the keys 3 dB" is -3 dB); :func:`stase.agent.parser._combine` applies that, and counts
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

from stase.core.conventions import wrap_azimuth_deg
from stase.core.placement import REVERB_DB_RANGE

from stase.agent.parser_vocabulary import LARGE_SIZES, MOTION_HEIGHT_VERBS, SIZE_SYNONYMS, SMALL_SIZES
from stase.agent.parser_complaints import COMPLAINT_STEPS, PARSER_COMPLAINT_PATTERN, PARSER_STATE_PATTERN, wish_before

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
#: Spatial words a producer misspells (issue 16): a word one edit from one of these (a letter
#: dropped, added or changed, or two neighbours swapped: Damerau 1964) and with the same first
#: letter is read as that word ("rihgt", "lfet", "lft", "centr", "middel", "degress", "slighty").
SPELLING_TARGETS = ("left", "right", "centre", "center", "middle", "degrees", "slightly", "behind")
#: Misspellings further than one edit that producers type for the sound of the word.
SOUND_ALIKES = {"rite": "right", "rihgt": "right", "riht": "right", "rgiht": "right", "lefft": "left",
                "cnetre": "centre", "cneter": "center", "degs": "degrees"}
#: Real words one edit from a target: never corrected ("let", "lift the horns", "a muddle").
SPELLING_EXCEPTIONS = frozenset({
    "let", "lift", "loft", "lest", "lent", "lefty", "lefts", "leet", "rights", "righty", "centred", "centres",
    "centers", "censer", "middles", "muddle", "meddle", "degree", "decrees", "sightly", "slight",
})
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
#: Words that describe where a track is now, not where it goes (round 6): in an edit they are
#: read as no cue at all (the parser blanks them, as the agent takes a complaint's words out),
#: so the change said beside them counts.  "The overheads feel like they're on the ceiling, a
#: touch lower"; "it drifted right, recentre it"; "the toms are the wrong way round, swap em".
PRESENT_STATE = re.compile(
    r"\b(?:feels?|sounds?|seems?|looks?)\s+like\s+(?:it's|it\s+is|its|they're|they\s+are|theyre|it\s+was|they\s+were|"
    r"he's|she's)\s+(?!(?:[a-z']+\s+){0,2}?(?:too|miles)\b)(?:[^,.;!?\s-]++|\s++(?!-\s)|-)*+"
    r"|\b(?:drifted|drifting|drifts|slid|sliding|wandered|wandering|crept|creeping|strayed|leaning|leans|ended\s+up|went|has\s+gone|have\s+gone)\s+"
    r"(?:(?:over|off|a\s+bit|way|too\s+far)\s+)?(?:to(?:wards)?\s+(?:the\s+)?)?(?:left|right)\b"
    r"|\bback\s+to\s+front\b|\bthe\s+wrong\s+way\s+a?round\b"
    # round 7: a question about where it is now ("why is the vox off to the left??"), a comparison
    # said after the change ("higher pls, like it's coming from above"), and where it sits now
    # ("it's way up in the rafters", "is a hair off centre")
    r"|\b(?:why|how\s+come)\s+(?:is|are|does|do|did|has|have|the|my|this|that|it)\b[^.;!?,]*+[.;!?]*"
    r"|\b(?:why's|why're)\s[^.;!?]*+[.;!?]*"
    r"|(?<=,)\s*like\s+(?:it's|its|it\s+is|they're|theyre|they\s+are)\s+(?:coming|sitting|floating|hovering|playing|up|down|way|in|on|at|over|right)\b[^,.;!?]*"
    r"|\b(?:is|are|it's|its|they're|theyre)\s+(?:(?:way|right|all\s+the\s+way|stuck|sitting|floating)\s+)*(?:up\s+)?in\s+the\s+(?:rafters|ceiling|clouds|sky|roof)\b"
    r"|\b(?:is|are|it's|its|they're)\s+(?:a\s+(?:hair|touch|tad|bit|little|smidge)\s+|slightly\s+|just\s+)?off[- ]cent(?:re|er)\b"
    # round 8: where it sits now ("the loop is way off to the left, bring it to the middle") and a
    # comparison with another track ("the dbl is louder than the main vox, bring it down")
    r"|\b(?:is|are|it's|they're|sits|sit|sitting)\s+(?:(?:way|really|kinda|so|a\s+bit|all\s+the\s+way)\s+)?(?:off|over)\s+"
    r"(?:to\s+(?:the\s+)?|on\s+the\s+)?(?:left|right)\b(?!\s+(?:enough|more)\b)"
    r"|\b(?:is|are|it's|they're|sounds?|feels?|seems?|gets?)\s+(?:(?:way|much|a\s+lot|a\s+bit|kinda|so|slightly|even)\s+)?"
    r"(?:louder|quieter|softer|higher|lower|wider|narrower|closer|further|farther)\s+than\b[^,.;!?]*+"
    r"|\b(?:is|are|it's|they're|was|were|got|gets|been)\s+(?:(?:shifted|moved|panned|pushed|pulled|drifted|sitting|placed|very|so|really|"
    r"too\s+much|kinda|a\s+bit|way|all\s+the\s+way|quite|pretty|fairly|rather|mostly|slightly|a\s+little)\s+){1,3}(?:out|over|off)?\s*(?:to\s+|on\s+|at\s+)?(?:the\s+)?"
    r"(?:left|right|wide|out)\b(?!\s+(?:enough|more)\b)"
    r"|\b(?:is|are|it's|they're)\s+(?:hugging|crowding|stuck\s+in|living\s+in|sitting\s+in|parked\s+in)\s+(?:the\s+)?"
    r"(?:middle|centre|center)(?:\s+(?:channel|speaker))?\b"
    r"|\b(?:floats?|floating|hovers?|hovering|sits?|sitting)\s+(?:way\s+|high\s+|right\s+)?(?:above|over|up\s+in)\s+(?:the\s+)?"
    r"(?:screen|picture|stage|band|mix|rest|everything|others)\b"
    r"|\b(?:is|are|sits?|sitting)\s+(?:about\s+|like\s+|around\s+)?\d+(?:\.\d+)?\s*(?:m|metres?|meters?|feet|ft)\s+(?:out|away|back|off)\b")
#: One of these occurs wherever :data:`PRESENT_STATE` can match (a C-speed test first).
PRESENT_STATE_WORDS = ("like", "drift", "wandering", "creeping", "leaning", "leans", "sliding", "drifted", "slid", "wandered", "crept", "strayed", "ended", "went", "gone", "front", "round",
                       "why", "how come", "rafters", "ceiling", "clouds", "sky", "roof", "off", "over", "than", "left",
                       "right", "wide", "out", "above", "up in", "hugging", "crowding", "stuck", "living", "parked")


def blank_present_state(text: str) -> str:
    """``text`` with the words of :data:`PRESENT_STATE` replaced by spaces (offsets kept); a
    state after a wish word is the wish and stays ("make the choir sound like it's far away")."""
    if not any(word in text for word in PRESENT_STATE_WORDS):
        return text
    return PRESENT_STATE.sub(_blanked, text)


#: Where a question about the present ("why is the lead vox off to the left??") starts saying the
#: state: the words before stay (they name the track the next clause's pronoun means).
_STATE_START = re.compile(r"\b(?:off|over|to|on|in|at|way|too|so|far|left|right|up|down|high|low|back|behind|above|below|"
                          r"quiet|loud|hot|soft|wide|narrow|close|near|distant|sounding|sound|sounds|panned|sitting)\b")


def _blanked(m: re.Match) -> str:
    said = m.group()
    if wish_before(m.string, m.start()):
        return said
    if said.startswith(("why", "how")):
        verb = re.search(r"\b(?:is|are|does|do|did|has|have|sounds?|feels?|sits?|seems?)\b", said)
        start = _STATE_START.search(said, verb.end() if verb else len(said.split(None, 1)[0]))
        keep = start.start() if start else len(said)
        return said[:keep] + " " * (len(said) - keep)
    return " " * len(said)


#: Verbs of a move by a step (round 6): in an edit a bare side after one ("shift the soloist
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


_DEGREE_SIGN = re.compile(r"(?<!\s)\s*+[\u00b0\u00ba\u02da]")
_PLUS_MINUS_SIGN = re.compile(r"\u00b1|\+/-|\+-(?=\s*\d)")
_UNIT_AFTER_DIGIT = re.compile(r"(\d)(?=(?:m|cm|ft|bpm)\b)")
_FEET_MARK = re.compile(r"(\d)'(?!\w)")
_POSSESSIVE_SIDE = re.compile(r"\bon\s+(?:the\s+)?([a-z0-9_]++)'s?+\s+side\b")
_ACROSS = re.compile(r"\b(?:left\s+to\s+right|right\s+to\s+left)\b")
_MINUS = re.compile(r"(?<![-\w])minus\s+(?=\d)")


def _one_edit_apart(a: str, b: str) -> bool:
    """Whether ``a`` becomes ``b`` by one edit: a letter dropped, added or changed, or two
    neighbouring letters swapped (the restricted Damerau-Levenshtein distance is 1)."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [k for k in range(len(a)) if a[k] != b[k]]
        return len(diff) == 1 or (len(diff) == 2 and diff[1] == diff[0] + 1
                                  and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]])
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    k = next((k for k in range(len(short)) if short[k] != long_[k]), len(short))
    return short[k:] == long_[k + 1:]


_TARGETS_BY_LETTER: dict[str, tuple[str, ...]] = {}
for _target in SPELLING_TARGETS:
    _TARGETS_BY_LETTER[_target[0]] = _TARGETS_BY_LETTER.get(_target[0], ()) + (_target,)


@lru_cache(maxsize=4096)
def _spelling_of(word: str) -> str | None:
    """The spatial word ``word`` misspells (:data:`SPELLING_TARGETS`, :data:`SOUND_ALIKES`), or
    ``None``.  A function of the word alone, so each distinct word is asked once."""
    if word in SOUND_ALIKES:
        return SOUND_ALIKES[word]
    if len(word) < 3 or word in SPELLING_EXCEPTIONS or word in SPELLING_TARGETS:
        return None
    for target in _TARGETS_BY_LETTER.get(word[0], ()):
        if _one_edit_apart(word, target):
            return target
    return None


def spelling_corrections(words, *protected) -> dict[str, str]:
    """Misspelt spatial words among ``words`` (distinct lower-case words) -> the word meant.

    Words in any of the ``protected`` sets (the session's track words, the lexicon's aliases)
    are never changed.
    """
    out = {}
    for w in words:
        if w[0] in _TARGETS_BY_LETTER and 3 <= len(w) <= 10 and not any(w in words_ for words_ in protected):
            meant = _spelling_of(w)
            if meant is not None and meant != w:
                out[w] = meant
    return out


_SPELT_WORD = re.compile(r"[a-z]+")


def correct_spelling(text: str, *protected) -> str:
    """``text`` (normalised) with its misspelt spatial words (:func:`spelling_corrections`)
    replaced by the words meant.  One C-speed split for the distinct words, then one
    substitution only when something needs correcting."""
    fixes = spelling_corrections(set(_SPELT_WORD.findall(text)), *protected)
    if not fixes:
        return text
    pattern = re.compile(r"(?<![a-z])(?:" + "|".join(map(re.escape, sorted(fixes, key=len, reverse=True)))
                         + r")(?![a-z])")
    return pattern.sub(lambda m: fixes[m.group(0)], text)


def normalise_text(prompt: str) -> str:
    """Lower-case, with degree/plus-minus symbols and unicode dashes spelled out."""
    t = prompt.lower()
    t = t.replace("\u2019", "'").replace("\u2212", "-").replace("\u2013", "-").replace("\u2014", " - ")
    # each substitution only where its characters occur (a C-speed test): a text without them
    # is not scanned by the regex engine at all
    if "\u00b0" in t or "\u00ba" in t or "\u02da" in t:
        # only from the start of a whitespace run: a long run without a degree sign is scanned once
        t = _DEGREE_SIGN.sub(" degrees ", t)
    if "\u00b1" in t or "+" in t:
        t = _PLUS_MINUS_SIGN.sub(" plus-or-minus ", t)
    t = t.replace("plus or minus", "plus-or-minus")
    if "m" in t or "ft" in t:
        t = _UNIT_AFTER_DIGIT.sub(r"\1 ", t)
    if "'" in t:
        t = _FEET_MARK.sub(r"\1 feet", t)
        if "side" in t:   # "on the sax's side" -> "on the same side as the sax"
            t = _POSSESSIVE_SIDE.sub(r"on the same side as the \1", t)
    if "left to right" in t or "right to left" in t:   # a mirror's words, not two sides
        t = _ACROSS.sub("side to side", t)
    if "minus" in t:
        t = _MINUS.sub("-", t)
    if "ish" in t or " so" in t or "odd" in t:
        t = NUMBER_HEDGES.sub("", t)
    if "decibel" in t or "dbs" in t:   # "2 decibels", "3dbs": the unit the rules read (round 8)
        t = _DECIBELS.sub(" db", t)
    if any(w in t for w in _CHAT_TRIGGERS):   # "theyre", "adlibs r too quiet": chat spellings (round 8)
        t = _CHAT_SPELLINGS.sub(lambda m: CHAT_SPELLINGS[m.group(0)], t)
    return t


#: Chat spellings of words the rules and the clause reader know (round 8): each is read as the
#: word meant before anything else (a dropped apostrophe, a letter for a word).
CHAT_SPELLINGS = {"theyre": "they are", "thats": "that is", "dont": "don't", "cant": "can't", "wont": "won't",
                  "doesnt": "doesn't", "isnt": "isn't", "arent": "aren't", "shouldnt": "shouldn't",
                  "its too": "it is too", "its way": "it is way", "its so": "it is so", "u": "you", "ur": "your",
                  "pls": "please", "plz": "please", "thx": "thanks"}
_CHAT_SPELLINGS = re.compile(r"\b(?:its\s(?:too|way|so)|" + "|".join(sorted((w for w in CHAT_SPELLINGS if " " not in w),
                                                                       key=len, reverse=True)) + r")\b")
_CHAT_TRIGGERS = ("nt", "re", "ts", "u", "pl", "thx")
_DECIBELS = re.compile(r"(?<=\d)\s*+(?:decibels?|dbs)\b")



# ------------------------------------------------------------------------------------------------
# Spatial expressions
# ------------------------------------------------------------------------------------------------
def _side_sign(side: str) -> float:
    return 1.0 if side.startswith("l") else -1.0


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


#: Precedence classes (lower wins): a number the user wrote, a named position, a vague word.
NUMBER, NAMED, HEDGED = 0, 1, 2
PRECEDENCE_NAMES = {NUMBER: "number", NAMED: "named position", HEDGED: "hedge"}
#: What a rule can set: the placement quantities, and the whole-plan or width changes.
QUANTITIES = ("azimuth_deg", "elevation_deg", "distance_m", "gain_db", "reverb_db", "width_deg", "position",
              "anchor", "step")


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


def _plus_minus(m):
    return {"spread_deg": abs(number(m.group(1)))}


def _both_sides(m):
    if m.group(2) == m.group(3):
        return None
    return {"spread_deg": _hedge(m.group(1), 70.0)}


def _azimuth_keyword(m):
    v = number(m.group(1))
    if m.group(2):
        v = abs(v) * _side_sign(m.group(2))
    return {"values": {"azimuth_deg": v}}


def _elevation_keyword(m):
    v = number(m.group(1))
    if abs(v) > 90.0:
        return {"impossible": IMPOSSIBLE["elevation"]}
    return {"values": {"elevation_deg": v}}


def _elevation_degrees(m):
    v = abs(number(m.group(1)))
    down = re.search(r"down|below|low|under", m.group(0)[m.end(1) - m.start(0):]) or \
        m.group(1).lstrip().startswith("-") and "elevat" in m.group(0)   # "-10 degrees elevation"
    if v > 90.0:
        return {"impossible": IMPOSSIBLE["elevation"]}
    return {"values": {"elevation_deg": -v if down else v}}


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


def _degrees_side(m):
    return {"values": {"azimuth_deg": abs(number(m.group(1))) * _side_sign(m.group(2))}}


def _side_degrees(m):
    """"right 40 degrees": that place in a new plan; in an edit, where the direction comes before
    its number, a move by that much ("move it right 40 degrees"; "right at 40 degrees" stays a
    place; round 8)."""
    v = abs(number(m.group(2))) * _side_sign(m.group(1))
    if re.search(r"\bat\b", m.group(0)):
        return {"values": {"azimuth_deg": v}}
    return {"values": {"azimuth_deg": v}, "edit_by": {"azimuth_deg": v}}


def _clock(m):
    hour = number(m.group(1)) % 12
    return {"values": {"azimuth_deg": wrap_azimuth_deg(-30.0 * hour)}}


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


def _distance(m):
    d = _distance_m(m.group(1), m.group(2))
    if d <= 0.0:
        return {"impossible": IMPOSSIBLE["distance"]}
    out = {"values": {"distance_m": d}}
    if m.group(3):
        out["values"]["azimuth_deg"] = 90.0 * _side_sign(m.group(3))
    elif m.group(4):
        out["values"]["azimuth_deg"] = 180.0
    elif m.group(5):
        out["values"]["azimuth_deg"] = 0.0
    return out


def _gain(m):
    before, amount, after = m.group(1), m.group(2), m.group(3)
    v = number(amount)
    direction = after or before
    if direction in ("quieter", "softer", "down", "less", "lower"):
        v = -abs(v)
    out = {"relative": {"gain_db": v}}
    if direction is None and not amount.lstrip().startswith(("-", "+")):
        out["unsigned_gain"] = True   # "cut the hats 3 dB": the clause's level verb gives the sign
    return out


def _level_verb(m):
    """"boost the kick", "cut the hats a bit": a level step; its sign also signs a bare dB number."""
    sign = _level_sign(m.group(1), LEVEL_VERBS)
    return {**_step("gain_db", sign, None), "gain_sign": sign}


def _level_sign(word: str, table: dict[str, float]) -> float:
    """The sign of an inflected verb ("boosted", "cutting", "lowers") from ``table``."""
    for verb, sign in table.items():
        if word.startswith(verb[:-1] if verb.endswith("e") else verb):
            return sign
    raise KeyError(word)


def _back_off(m):
    """"back the congas off", "ease off the hats": a level down, not a distance."""
    return {**_step("gain_db", -1.0, None), "gain_sign": -1.0}


def _in_the_mix(m):
    """"higher in the mix", "down in the mix": a level, not a height."""
    sign = -1.0 if re.search(r"lower|down|quieter", m.group(2)) else 1.0
    return {**_step("gain_db", sign, m.group(1) or m.group("after")), "gain_sign": sign}


def _level_noun(m):
    """"lower the level of the congas", "raise the volume on the rhodes", "the fader down", and
    "a touch more level", "less volume on the hats" (round 6)."""
    if m.group("more"):
        sign = 1.0 if m.group("more") == "more" else -1.0
        return {**_step("gain_db", sign, m.group("more_hedge")), "gain_sign": sign}
    said = m.group("key") or m.group("key2")
    sign = (-1.0 if said == "down" else 1.0) if said in ("up", "down") else _level_sign(said, LEVEL_NOUN_VERBS)
    return {**_step("gain_db", sign, None), "gain_sign": sign}


def _relative_side(m):
    hedge, side = (m.group(1), m.group(2)) if m.group(2) else (m.group(3), m.group(4))
    return _step("azimuth_deg", _side_sign(side), hedge)


def _further(m):
    # a size said after "back" is the step's ("back a tad", "back a fair bit"; round 7)
    after = re.search(rf"\bback\s+({_SIZE_AFTER})\b", m.group(0))
    return _step("distance_m", 1.0, m.group(1) or m.group("hedge"), _step_size(after.group(1)) if after else None)


def _closer(m):
    return _step("distance_m", -1.0, next((g for g in m.groups() if g in HEDGES), None))


def _very_close(m):
    return {"values": {"distance_m": DISTANCE_WORDS_M["very close"]}}


def _very_far(m):
    return {"values": {"distance_m": DISTANCE_WORDS_M["very far"]}}


def _far(m):
    return {"values": {"distance_m": DISTANCE_WORDS_M["far"]}}


def _close(m):
    return {"values": {"distance_m": DISTANCE_WORDS_M["close"]}}


def _mid(m):
    return {"values": {"distance_m": DISTANCE_WORDS_M["mid"]}}


def _stage_side(m):
    # stage directions are the performer's: stage left is the audience's right
    return {"values": {"azimuth_deg": -PLAIN_SIDE_DEG * _side_sign(m.group(1))}}


def _house_side(m):
    return {"values": {"azimuth_deg": _hedge(m.group(1), PLAIN_SIDE_DEG) * _side_sign(m.group(2))}}


def _diagonal(m):
    where = m.group(2) or m.group(5)
    side = m.group(3) or m.group(4)
    base = DIAGONAL_DEG if where == "front" else REAR_DIAGONAL_DEG
    return {"values": {"azimuth_deg": base * _side_sign(side)}}


def _side(m):
    # a size said after the side is its hedge ("over to the right a tad" = "a tad to the right")
    hedge = m.group(1) or m.group(2) or m.group("after")
    sign = _side_sign(m.group(3))
    if m.group(4):  # "left of centre"
        v = OF_CENTRE_DEG if not hedge else min(_hedge(hedge, OF_CENTRE_DEG), OF_CENTRE_DEG) * (
            0.5 if HEDGES[hedge] <= 15.0 else 1.0)
    else:
        v = _hedge(hedge, PLAIN_SIDE_DEG)
    out = {"values": {"azimuth_deg": v * sign}, "side": True, "hedge": hedge}
    if v >= FULL_SIDE_DEG:   # "hard left": the full side, a named position
        out["precedence"] = NAMED
    size = _step_size(hedge)
    if size is not None and not m.group(4):
        # in an edit "a bit to the left" moves by a step; in a new plan it is a place
        out["edit_step"] = ("azimuth_deg", sign, size)
    return out


def _behind(m):
    return {"values": {"azimuth_deg": 180.0}, "back": True}


def _front(m):
    return {"values": {"azimuth_deg": 0.0}, "front": True}


def _overhead(m):
    return {"values": {"elevation_deg": ELEVATION_WORDS_DEG["overhead"]}}


def _above_below(m):
    hedge = m.group(1)
    down = re.search(r"below|beneath|under|low|feet|floor", m.group(0))
    v = ELEVATION_WORDS_DEG["below" if down else "above"]
    if hedge and HEDGES[hedge] <= 15.0:
        v = SLIGHT_ELEVATION_DEG * (-1 if down else 1)
    elif hedge and HEDGES[hedge] >= 65.0:
        v = 45.0 * (-1 if down else 1)
    return {"values": {"elevation_deg": v}}


def _ear_level(m):
    return {"values": {"elevation_deg": 0.0}}


def _higher_lower(m):
    said = m.group(0)
    down = "lower" in said or "drop" in said or "down" in said
    out = _step("elevation_deg", -1.0 if down else 1.0, next((g for g in m.groups() if g), None))
    if re.fullmatch(r"raise[ds]?|lift(?:ed|s)?|lower|drop(?:ped|s)?", said):
        # a bare verb: a height only when nothing else in the clause says what it changes ("raise
        # the vocal 2 dB" is a level, "drop the solo down a bit" one small step); it signs a dB number
        out["verb_only"] = True
        out["gain_sign"] = -1.0 if down else 1.0
    return out


def _height_step(m):
    """"down a bit", "up slightly": a small step of height (said after its direction)."""
    return _step("elevation_deg", -1.0 if m.group(1) == "down" else 1.0, None, "small")


def _louder(m):
    said = m.group(0)
    key = m.groupdict().get("key") or ""
    up = "louder" in said or said.endswith("up") or key == "up"
    return {**_step("gain_db", 1.0 if up else -1.0, m.group(1) if not key else None), "gain_sign": 1.0 if up else -1.0}


def _plain_degrees(m):
    said = m.group(1).lstrip()
    # an unsigned number takes its side from a side word of the same clause ("left, like 70 degrees")
    return {"values": {"azimuth_deg": number(said)}, "unsigned": not said.startswith(("-", "+"))}


def _spread(m):
    out = {"spread_deg": 60.0, "soft": True}
    if m.group(0).startswith("spread"):   # the verb: in an edit "spread the guitars" widens them
        out["edit_width"] = 1.0
    return out




def _step_size(hedge: str | None) -> str | None:
    """"small", "large" or ``None`` (no size said) for a hedge before a relative word."""
    if not hedge:
        return None
    if hedge in LARGE_STEP_HEDGES:
        return "large"
    return "small" if HEDGES.get(hedge, 30.0) <= 15.0 else None


def _step(quantity: str, sign: float, hedge: str | None, size: str | None = None) -> dict:
    """A relative change of ``quantity`` by a default step (:data:`STEPS`); its size comes from
    its own hedge, else from a size word in the clause ("raise the sax a bit"), else "plain"."""
    return {"step": (quantity, sign, size or _step_size(hedge))}


def _pan_percent(m):
    groups = [g for g in m.groups() if g is not None]
    amount = next(g for g in groups if g[0].isdigit() or g[0] in "+-" or g[0].isalpha() and g not in _SIDE_WORDS)
    side = next((g for g in groups if g in _SIDE_WORDS), None)
    pct = abs(number(amount))
    if pct > 100.0:
        return {"impossible": IMPOSSIBLE["pan"]}
    if side is None and pct != 0.0:
        return None
    # pan = -lateral / 90 (stase convention): 100 % right is -90 deg
    return {"values": {"azimuth_deg": pct / 100.0 * FULL_SIDE_DEG * (_side_sign(side) if side else 1.0)}}


_SIDE_WORDS = frozenset({"left", "right", "l", "r"})


def _number_side(m):
    """"30 left", "L30", "30R", "R 45": a bare number with a side is degrees on that side."""
    amount, side = (m.group(1), m.group(2)) if m.group(1) is not None else (m.group(4), m.group(3))
    v = abs(number(amount))
    if v > 180.0:
        return None
    return {"values": {"azimuth_deg": v * _side_sign(side)}}


def _hard_letter(m):
    return {"values": {"azimuth_deg": FULL_SIDE_DEG * _side_sign(m.group(1))}, "side": True, "hedge": "hard",
            "precedence": NAMED}


def _centre_letter(m):
    return {"values": {"azimuth_deg": 0.0}}


def _bearing(m):
    # a compass bearing turns clockwise from the front; azimuth turns counter-clockwise
    return {"values": {"azimuth_deg": wrap_azimuth_deg(-number(m.group(1)))}}


def _relative_elevation_degrees(m):
    v = abs(number(m.group(1)))
    return {"relative": {"elevation_deg": -v if m.group(2) == "lower" else v}}


def _up_down_degrees(m):
    """"up 20 degrees": that height in a new plan, a move by that much in an edit (round 8:
    "trk 8 down 10 degrees" lowers it from where it is)."""
    v = abs(number(m.group(2)))
    if v > 90.0:
        return {"impossible": IMPOSSIBLE["elevation"]}
    v = -v if m.group(1) == "down" else v
    return {"values": {"elevation_deg": v}, "edit_by": {"elevation_deg": v}}


def _high_low(m):
    """"high", "low", and hedged: "a little low" is 15 deg down, "very high" 45 deg up."""
    hedge, down = m.group(1), m.group(2) == "low"
    v = ELEVATION_WORDS_DEG["below" if down else "above"]
    if hedge and HEDGES[hedge] <= 15.0:
        v = SLIGHT_ELEVATION_DEG * (-1 if down else 1)
    elif hedge and HEDGES[hedge] >= 65.0:
        v = 45.0 * (-1 if down else 1)
    return {"values": {"elevation_deg": v}}


def _at_distance(m):
    d = _distance_m(m.group(1), m.group(2) or "m")
    if d <= 0.0:
        return {"impossible": IMPOSSIBLE["distance"]}
    return {"values": {"distance_m": d}}


def _width(m):
    wider = re.search(r"wid|spread|apart|open", m.group(0)) is not None
    out = _step("width_deg", 1.0 if wider else -1.0, m.group(1))
    if m.group("key"):   # "open up the guitars": only for the tracks of its own clause, never lent
        out["own_clause"] = True
    return out


def _together_apart(m):
    """"closer together" / "further apart": a width step, not a distance."""
    return _step("width_deg", 1.0 if "apart" in m.group(0) else -1.0, m.group(1) or m.group(2))


def _too_level(m):
    """"the vocal is too quiet", "the hats are a bit too hot": a level step the other way; "the
    riser is floating too high", "a bit too low": a height step the other way (round 6)."""
    said = m.group(2)
    if said in TOO_HEIGHT_SIGN:
        return {**_step("elevation_deg", TOO_HEIGHT_SIGN[said], m.group(1)), "complaint": True}
    sign = TOO_LEVEL_SIGN[said]
    return {**_step("gain_db", sign, m.group(1)), "gain_sign": sign, "complaint": True}


#: A size said inside a complaint ("feels a bit distant", "way too far"): small, else large.
_COMPLAINT_SMALL = re.compile(r"\ba (?:little |tiny |wee )?bit\b|\ba little\b|\ba touch\b|\ba tad\b|\bslightly\b")
_COMPLAINT_LARGE = re.compile(r"\b(?:way|much|far) too\b|\bmiles away\b")


def _complaint(m):
    """"the sitar feels too far away", "the keys sound too centred", "the pads are way too wide":
    a step the way the complaint asks (:data:`stase.agent.parser_complaints.COMPLAINTS`, the table
    the agent reads too), never the place its words name.  "Too far left / right" is a step
    towards the other side.  A change said beside it for the same quantity counts instead ("too
    far away, bring it closer" is one step), and a number wins over it (precedence)."""
    if m.groupdict().get("wish"):
        return None   # "make the sitar sound distant": a wish (the later rules read its place)
    intent = next(name[len("complaint_"):] for name, said in m.groupdict().items()
                  if said and name.startswith("complaint_"))
    quantity, sign = COMPLAINT_STEPS[intent]
    said = m.group("key") if "key" in m.groupdict() else m.group(0)
    side = re.search(r"\b(left|right)\b", said)
    if intent == "narrower" and side:
        quantity, sign = "azimuth_deg", -_side_sign(side.group(1))
    size = _step_size(m.groupdict().get("hedge")) or ("large" if _COMPLAINT_LARGE.search(said)
                                      else "small" if _COMPLAINT_SMALL.search(said) else None)
    return {**_step(quantity, sign, None, size), "complaint": True}


def _motion_side(m):
    """"shift the soloist left": a plain step that way in an edit, the plain side in a new plan.
    A size or a number said with it is read by the other rules ("nudge it left a bit")."""
    between = m.group(0)[:m.start("key") - m.start(0)]
    if _HEDGE_WORD.search(between):
        return None
    sign = _side_sign(m.group("key"))
    return {"values": {"azimuth_deg": PLAIN_SIDE_DEG * sign}, "side": True, "hedge": None,
            "edit_step": ("azimuth_deg", sign, None)}   # its size: the clause's ("move left, lots"), else plain


def _motion_degrees(m):
    """"nudge it 5 degrees left", "shift the harp 10 degrees to the right": in an edit a move by
    that many degrees (round 7), not a place (a place says "to": "move it to 30 degrees left")."""
    return {"relative": {"azimuth_deg": abs(number(m.group(2))) * _side_sign(m.group(3))}}


def _level_lost(m):
    """"the harp's getting lost", "can't hear the shaker": in an edit a level step up, the
    reason only when the request says another change for the track ("the soloist is buried,
    bring her 3 m closer"; :func:`stase.agent.parser._complaints_give_way`; round 7)."""
    return {**_step("gain_db", 1.0, None), "gain_sign": 1.0, "complaint": True, "reason": True}


def _motion_height(m):
    """"shift the strings up", "nudge the pad a good bit down": a height step in an edit (a verb
    that moves a source, :data:`stase.agent.parser_vocabulary.MOTION_HEIGHT_VERBS`; a fader verb's
    "up" is a level).  Its size is the clause's size word (round 7)."""
    return _step("elevation_deg", -1.0 if m.group("key") == "down" else 1.0, None)


def _width_degrees(m):
    """"open the gtrs up by 10 degrees each side", "narrow the pads 10 degrees": a width change
    of that many degrees (each source that far from, or towards, the centre)."""
    said = m.group(0)
    sign = next(v for verb, v in WIDTH_NUMBER_VERBS.items() if re.match(verb[:5], said))
    # the number may stand after a list the verb began ("narrow the pad and arp by 4 degrees")
    return {"relative": {"width_deg": sign * abs(number(m.group("amount")))}, "joins_list": True}


def _in_towards_centre(m):
    """"bring the violins and violas in towards the middle": a width step towards the centre."""
    return _step("width_deg", -1.0, None)


def _hard_pan_verb(m):
    """"hard-pan the e gtr to the right": the full side, a named position."""
    return {"values": {"azimuth_deg": FULL_SIDE_DEG * _side_sign(m.group("key"))}, "side": True, "hedge": "hard",
            "precedence": NAMED}


def _slight_height(m):
    """"raised a bit", "slightly up": a little above (below) ear level in a new plan, a small
    step up (down) in an edit."""
    sign = -1.0 if "down" in m.group(0) else 1.0
    return {"values": {"elevation_deg": SLIGHT_ELEVATION_DEG * sign}, "edit_step": ("elevation_deg", sign, "small")}


def _raise_degrees(m):
    """"raise the flute 20 degrees", "drop the pad by 10 degrees": a change of elevation."""
    v = abs(number(m.group(2)))
    down = re.match(r"lower|drop", m.group(0)) is not None
    return {"relative": {"elevation_deg": -v if down else v}}


def _each_degrees(m):
    """"10 degrees each", "5 degrees a side": a width change of that many degrees per source;
    its way (wider or narrower) is the clause's width step's ("pull them in towards the middle,
    10 degrees each"), else wider (round 8)."""
    return {"relative": {"width_deg": abs(number(m.group(1)))}, "unsigned_width": True}


def _step_word(m):
    said = " ".join(m.group(0).split())
    return {"step_size": "large" if said in LARGE_STEP_HEDGES or "lot" in said or said.startswith(("way", "a fair", "a good"))
            or said in ("loads", "lots", "heaps", "tons", "a ton") else "small"}


def _wetness(m):
    low, high = REVERB_DB_RANGE
    v = WETNESS_WORDS[m.group(1)]
    return {"values": {"reverb_db": min(max(v, low), high)}}


def _anchor(m):
    said = m.group(0)
    if "opposite" in said:
        relation = "opposite"
    elif "same side" in said:
        relation = "same_side"
    elif m.group(1):
        relation = m.group(1)   # "left" / "right" of the anchor
    else:
        relation = "next"
    return {"anchor": relation}


_WETNESS = _alternation(WETNESS_WORDS)
#: A hedge said as a whole word (a motion verb's side with one is the side rule's)
_HEDGE_WORD = re.compile(rf"\b(?:{_alternation(HEDGES)})\b|\bto\s+the\s+(?:far|very)\b")
#: A number in digits only (a bare "30 left"; a word number there is too often prose: "a left turn")
DIGITS = r"[-+]?(?<!\d)\d++(?:\.\d++)?"
_DIGIT_LITERALS = "0 1 2 3 4 5 6 7 8 9"
_UNIT_ALTERNATION = r"(?:m|meters?|metres?|mtrs?|feet|foot|ft|cm|centimet(?:er|re)s?)\b"

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
    Rule("elevation_keyword", "elevation_deg", NUMBER, rf"\b(?:elevation|elevated|raised|height|tilted\s+up)\s*+(?:of|at|to|by|:|=|is)?\s*(?!an?\s)({NUM})\s*(?:{DEG})?",
         needs=("elevat raised height tilted",), value=_elevation_keyword),
    Rule("elevation_degrees", "elevation_deg", NUMBER, rf"({NUM})\s*{DEG}\s*(?:of\s+elevation|up(?:wards?)?|above|high|elevat(?:ed|ion)|overhead|down(?:wards?)?|below|low|under(?:neath)?)",
         needs=("deg",), value=_elevation_degrees),
    Rule("width_degrees", "width_deg", NUMBER,
         rf"\b(?:{_VERB_FORMS(WIDTH_NUMBER_VERBS)})\b(?:(?!\b(?:{_VERB_FORMS(WIDTH_NUMBER_VERBS)})\b)[^,.;])*?"
         rf"(?P<key>\b(?:up\s+|out\s+)?(?:by\s+)?(?:another\s+|an\s+extra\s+)?(?P<amount>{NUM})\s*{DEG}(?:\s+(?:on\s+)?(?:each|either|per|a)\s+side)?)",
         needs=("widen wider open spread narrow pinch squeez tighten", "deg"), value=_width_degrees),
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
    Rule("in_towards_centre", "width_deg", HEDGED, rf"\bin\s+towards?\s+(?:the\s+)?{CENTRE}\b",
         needs=("toward", "cent middle"), value=_in_towards_centre),
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
    Rule("closer", "step", HEDGED, rf"\b{HEDGE}?(?:closer|nearer)\b|\bbring\b(?:(?!\bbring\b)[^,.;])*?\b(?P<key>forward|in|up\s+front|closer)\b"
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
    Rule("width", "width_deg", HEDGED, rf"\b{HEDGE}?(?:wider|narrower|tighter|widen(?:ed)?|narrow(?:ed|s)?(?!\s*-?\s*(?:band|q|range)\b)|{_VERB_FORMS(NARROW_VERBS)})\b"
         r"|\bopen(?:s|ed|ing)?\b(?![- ](?:air|mic|plan|road|field)\b)(?:(?!\bopen)[^,.;])*?\b(?P<key>up|out)\b(?!\s+front\b)",
         needs=("wider narrow widen pinch squeez tighten tighter open squish squash collaps",), value=_width),
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
    Rule("each_degrees", "width_deg", NUMBER, rf"\b(?:by\s+)?({NUM})\s*{DEG}\s+(?:each(?:\s+side)?|apiece|per\s+side|a\s+side|either\s+side|on\s+(?:each|either|both)\s+sides?)\b",
         needs=("deg", "each apiece side"), value=_each_degrees),
    Rule("plain_degrees", "azimuth_deg", NUMBER, rf"\b(?:at\s+|to\s+)?({NUM})\s*{DEG}",
         needs=("deg",), value=_plain_degrees),
    Rule("spread", "azimuth_deg", HEDGED, r"\b(?:spread|wide|widely|wide\s+apart|either\s+side|both\s+sides|split)\b",
         needs=("spread wide side split",), value=_spread),
    Rule("step_word", "step", HEDGED, r"\b(?:quite\s+a\s+(?:bit|lot)|a\s+good\s+(?:bit|deal)|a\s+fair\s+(?:bit|amount)|a\s+whole\s+lot|a\s+(?:tiny|wee)\s+bit|a\s+(?:bit|little|touch|tad|hair|lot|smidgen|smidge|ton)|slightly|way\s+more|much\s+more|loads|lots|heaps|tons"
         r"|a\s+notch|a\s+nudge|a\s+fraction|way(?=\s+(?:up|down|back|forward|over|out|in|higher|lower|louder|quieter|wider|narrower|closer|further|farther|upwards?|downwards?|towards?|to\s+the)\b))\b",
         needs=("bit little touch tad hair lot slightly more loads lots smidge heaps tons ton way notch nudge amount deal fraction",), value=_step_word),
)
