"""Text normalisation before the rules run, and present-state blanking of an edit.

Holds
-----
* :func:`normalise_text`: lower case; degree and plus-minus signs, unicode dashes, glued units
  ("3m"), feet marks, "minus 3", number hedges ("35ish"), "decibels", possessive sides and chat
  spellings (:data:`CHAT_SPELLINGS`: "theyre", "dont") as the rules' words.  Each substitution
  runs only on a text holding its trigger characters.
* :data:`PRESENT_STATE`, :data:`PRESENT_STATE_WORDS` and :func:`blank_present_state`: where a
  track is now ("it drifted right", "feels like they're on the ceiling", "why is the vox off to
  the left??") is no cue of an edit; its words are blanked (same length, so every span holds).

* :func:`sentence_start`, :func:`sentence_end`: the sentence around a position (the one rule for
  "its sentence" that the mention, swap and mirror passes share).

Re-exported by :mod:`stase.agent.parser_rules`.  Spelling correction is
:mod:`stase.agent.parser_spelling`.
"""
from __future__ import annotations

import re

from stase.agent.parser_complaints import wish_before
from stase.agent.parser_phrases import _SMALL_NUMBERS, NUMBER_HEDGES


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
    r"|(?<=,)\s*like\s+(?:it's|its|it\s+is|they're|theyre|they\s+are)\s+(?:coming|sitting|floating|hovering|playing|up|down|way|in|on|at|over|right|[a-z]+ing)\b[^,.;!?]*"
    r"|\b(?:is|are|it's|its|they're|theyre)\s+(?:(?:way|right|all\s+the\s+way|stuck|sitting|floating)\s+)*(?:up\s+)?in\s+the\s+(?:rafters|ceiling|clouds|sky|roof)\b"
    r"|\b(?:is|are|it's|its|they're)\s+(?:a\s+(?:hair|touch|tad|bit|little|smidge)\s+|slightly\s+|just\s+)?off[- ]cent(?:re|er)\b"
    # round 8: where it sits now ("the loop is way off to the left, bring it to the middle") and a
    # comparison with another track ("the dbl is louder than the main vox, bring it down")
    r"|(?:\b(?:is|are|it's|they're|sits|sit|sitting)|(?<=[a-z])'s)\s+(?:(?:way|really|kinda|so|a\s+bit|all\s+the\s+way)\s+)?(?:off|over)\s+"
    r"(?:to\s+(?:the\s+)?|on\s+the\s+)?(?:left|right)\b(?!\s+(?:enough|more)\b)"
    r"|\b(?:is|are|it's|they're|sounds?|feels?|seems?|gets?)\s+(?:(?:way|much|a\s+lot|a\s+bit|kinda|so|slightly|even)\s+)?"
    r"(?:louder|quieter|softer|higher|lower|wider|narrower|closer|further|farther)\s+than\b[^,.;!?]*+"
    r"|\b(?:is|are|it's|they're|was|were|got|gets|been)\s+(?:(?:shifted|moved|panned|pushed|pulled|drifted|sitting|placed|very|so|really|"
    r"too\s+much|kinda|a\s+bit|way|all\s+the\s+way|quite|pretty|fairly|rather|mostly|slightly|a\s+little)\s+){1,3}(?:out|over|off)?\s*(?:to\s+|on\s+|at\s+)?(?:the\s+)?"
    r"(?:left|right|wide|out|narrow)\b(?!\s+(?:enough|more)\b)"
    # round 12: "my voice is only in the left (headphone)", where it is now
    r"|\b(?:is|are|it's|they're)\s+(?:(?:only|just|mostly|all|completely|totally|entirely|kinda|kind\s+of)\s+)*in\s+(?:the\s+)?"
    r"(?:left|right)\b(?!\s+(?:enough|more)\b)"
    r"|\b(?:is|are|it's|they're)\s+(?:hugging|crowding|stuck\s+in|living\s+in|sitting\s+in|parked\s+in)\s+(?:the\s+)?"
    r"(?:middle|centre|center)(?:\s+(?:channel|speaker))?\b"
    r"|\b(?:floats?|floating|hovers?|hovering|sits?|sitting)\s+(?:way\s+|high\s+|right\s+)?(?:above|over|up\s+in)\s+(?:the\s+)?"
    r"(?:screen|picture|stage|band|mix|rest|everything|others)\b"
    r"|\b(?:is|are|sits?|sitting)\s+(?:about\s+|like\s+|around\s+)?\d+(?:\.\d+)?\s*(?:m|metres?|meters?|feet|ft)\s+(?:out|away|back|off)\b"
    # twelfth stop: where the listener is in the scene ("we're standing in the middle of the
    # square"), no place of a track
    r"|\b(?:we're|we\s+are|i'm|i\s+am|you're|you\s+are|the\s+(?:listener|audience|player|camera)\s+is|listeners\s+are)\s+"
    r"(?:(?:standing|sitting|stood|sat|walking|placed|located|right|now|just)\s+)*(?:in|at)\s+the\s+(?:very\s+)?"
    r"(?:middle|cent(?:re|er))\s+of\b[^,.;!?]*"
    # thirteenth stop: where a source is in the picture ("the helicopter is way overhead in the
    # shot"), the reason for a change, not one
    r"|\b(?:is|are|it's|they're)\s+(?:(?:way|right|directly|high|far|all\s+the\s+way)\s+)*(?:overhead|above|below|up\s+high|"
    r"high\s+up|up|down\s+low|low|(?:on|to)\s+the\s+(?:left|right))\s+(?:(?:in|of)\s+)?(?:the\s+)?(?:shot|picture|frame|scene|video|footage|image)\b"
    # "the sax section is a clump in the middle": how it is now (thirteenth stop)
    r"|\b(?:is|are|it's|they're)\s+(?:(?:all|just|kind\s+of|kinda|a\s+bit)\s+)*(?:a\s+clump|clumped|bunched(?:\s+up)?|crammed|piled(?:\s+up)?|"
    r"stacked(?:\s+up)?|lumped(?:\s+together)?|huddled)\s+(?:together\s+)?(?:in|at|on)\s+(?:the\s+)?(?:middle|cent(?:re|er))\b"
    # "the chorus feels huddled together behind figaro": how it is now
    r"|\b(?:feels?|sounds?|seems?|looks?)\s+(?:(?:all|kind\s+of|kinda|a\s+bit|too|very)\s+)*(?:huddled|bunched|crammed|clumped|squashed|squeezed|"
    r"piled|stacked|lumped)(?:\s+(?:up|together))?(?:\s+(?:behind|in|at|on|around|near|by)\s+(?:the\s+)?[a-z0-9']+)?"
    # "the shakers are too in the middle": how they are now, the reason for a change ("too much in
    # the middle" is a complaint, read as one)
    r"|\b(?:is|are|it's|they're)\s+(?:(?:way|far|much|so|a\s+bit|kinda)\s+)?too\s+(?:in|at|on)\s+(?:the\s+)?(?:middle|cent(?:re|er))\b"
    # "Sam's standing next to the car": where a person in the scene is now, a reason
    r"|(?:\b(?:is|are|it's|they're|she's|he's)|(?<=[a-z])'s)\s+(?:now\s+)?(?:standing|sitting|stood|sat|waiting|parked)\s+"
    r"(?:right\s+)?(?:next\s+to|beside|by|near|behind|in\s+front\s+of|across|on|at)\s+(?:(?:the|a|an|his|her|their|my)\s+)?[a-z0-9']+"
    # "these four singers are spread across the whole room": how they are now (thirteenth stop)
    r"|\b(?:is|are|it's|they're)\s+(?:(?:all|kind\s+of|kinda|way\s+too|too|very|really|currently)\s+)*spread\s+(?:out\s+)?"
    r"(?:across|over|all\s+over|around|throughout)\s+(?:the\s+)?(?:whole\s+|entire\s+)?(?:room|stage|place|mix|field|hall|image|space)\b"
    # "swap them, where they are and how far away": how far is a noun clause or a question, no place
    r"|\bhow\s+(?:far|close|near)(?:\s+(?:away|back|off|out|apart))?\b")
#: One of these occurs wherever :data:`PRESENT_STATE` can match (a C-speed test first).
PRESENT_STATE_WORDS = ("like", "drift", "wandering", "creeping", "leaning", "leans", "sliding", "drifted", "slid", "wandered", "crept", "strayed", "ended", "went", "gone", "front", "round",
                       "why", "how come", "rafters", "ceiling", "clouds", "sky", "roof", "off", "over", "than", "left",
                       "right", "wide", "out", "above", "up in", "hugging", "crowding", "stuck", "living", "parked",
                       "middle of", "centre of", "center of", "shot", "picture", "frame", "scene", "video", "footage", "image", "how ", "clump", "bunched", "crammed", "piled", "stacked", "lumped", "huddled", "narrow", "spread", "standing", "sitting", "stood", "waiting", "parked")


_SENTENCE_MARKS = ".;!?"


def sentence_start(text: str, at: int) -> int:
    """Where the sentence holding position ``at`` of ``text`` begins (after the last . ; ! or ?)."""
    return max(text.rfind(c, 0, at) for c in _SENTENCE_MARKS) + 1


def sentence_end(text: str, at: int) -> int:
    """Where the sentence holding position ``at`` of ``text`` ends (its next . ; ! or ?, else the end)."""
    return min((i for i in (text.find(c, at) for c in _SENTENCE_MARKS) if i >= 0), default=len(text))


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


_DEGREE_SIGN = re.compile(r"(?<!\s)\s*+[\u00b0\u00ba\u02da]")
_PLUS_MINUS_SIGN = re.compile(r"\u00b1|\+/-|\+-(?=\s*\d)")
_UNIT_AFTER_DIGIT = re.compile(r"(\d)(?=(?:m|cm|ft|bpm)\b)")
_FEET_MARK = re.compile(r"(\d)'(?!\w)")
_POSSESSIVE_SIDE = re.compile(r"\bon\s+(?:the\s+)?([a-z0-9_]++)'s?+\s+side\b")
_ACROSS = re.compile(r"\b(?:left\s+to\s+right|right\s+to\s+left)\b")
_MINUS = re.compile(r"(?<![-\w])minus\s+(?=\d)")
_SIDE_OF_LISTENER = re.compile(r"\b(?:my|your|our|the)\s+(left|right)\s+(?:ear|headphone|can|earbud|earphone|speaker|monitor|channel)s?\b")
#: "right now", "right away", "all right": no side
_RIGHT_AS_TIME = re.compile(
    r"(?:^|(?<=[,.;:!?(])|(?<=[,.;:!?(]\s)|(?<=\band\s)|(?<=\bbut\s)|(?<=\bso\s)|(?<=\bbecause\s)|(?<=\bcause\s))\s*right\s+(?=now\b)"
    r"|\bright\s+(?=now\s+(?:the|it|it's|its|they|they're|he|she|there|we|i|this|that|my|our|everything)\b)"
    r"|\ball\s+right\b(?=\s*[,.!?;]|\s+(?:so|then|now|let's|i)\b)")
_INTENSIFIED_CENTRE = re.compile(r"\b(?:right|smack(?:\s+bang)?|slap\s+bang|bang)\s+(?=(?:in|at|on|down|into|to)\s+"
                                 r"(?:the\s+)?(?:very\s+)?(?:middle|cent(?:re|er))\b)")
#: "right in front of you", "right behind me", "right above the listener": "right" says exactly
#: there, no side (twelfth stop); a comma between ("pan it right, in front") keeps the side
_INTENSIFIED_PLACE = re.compile(r"\b(?:right|smack(?:\s+bang)?|slap\s+bang|dead)\s+(?=(?:in\s+front|up\s+front|behind|"
                                r"ahead|overhead|above|over\s+(?:your|my|the)\s+head|over\s+(?:the|us|me|our|your)|through|across|"
                                r"past|below|beneath|underneath)\b)")


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
    if " ear" in t or "phone" in t or "can" in t or "speaker" in t or "monitor" in t or "channel" in t:
        t = _SIDE_OF_LISTENER.sub(r"the \1", t)   # "toward my right ear": the right (round 12)
    if "right" in t:   # "right now the tenor is overpowering it": a time, not a side (thirteenth stop)
        t = _RIGHT_AS_TIME.sub("", t)
    if "middle" in t or "cent" in t:   # "right in the middle": an intensifier, not a side (round 12)
        t = _INTENSIFIED_CENTRE.sub("", t)
    if "front" in t or "behind" in t or "ahead" in t or "head" in t or "above" in t or "below" in t \
            or "neath" in t or "over" in t or "through" in t or "across" in t or "past" in t:
        t = _INTENSIFIED_PLACE.sub("", t)
    if "ish" in t or " so" in t or "odd" in t:
        t = NUMBER_HEDGES.sub("", t)
    if "decibel" in t or "dbs" in t:   # "2 decibels", "3dbs": the unit the rules read (round 8)
        t = _DECIBELS.sub(r"\1 db", t)
    if "um" in t or "uh" in t or "erm" in t or "you know" in t:
        # a voice note's fillers ("the pads, like, they're kinda, you know, narrow?") say nothing
        t = _FILLERS.sub("", t)
    if "(" in t:   # "eight (8) metres", as contracts write numbers: the digits (thirteenth stop)
        t = _WORDS_AND_DIGITS.sub(r"\1", t)
    if any(w in t for w in _CHAT_TRIGGERS):   # "theyre", "adlibs r too quiet": chat spellings (round 8)
        t = _CHAT_SPELLINGS.sub(lambda m: CHAT_SPELLINGS[" ".join(m.group(0).split())], t)
    return t


#: Chat spellings of words the rules and the clause reader know (round 8): each is read as the
#: word meant before anything else (a dropped apostrophe, a letter for a word).
CHAT_SPELLINGS = {"theyre": "they are", "thats": "that is", "dont": "don't", "cant": "can't", "wont": "won't",
                  "doesnt": "doesn't", "isnt": "isn't", "arent": "aren't", "shouldnt": "shouldn't",
                  "its too": "it is too", "its way": "it is way", "its so": "it is so", "u": "you", "ur": "your",
                  "pls": "please", "plz": "please", "thx": "thanks",
                  "abit": "a bit", "alot": "a lot", "alittle": "a little", "atad": "a tad", "atouch": "a touch",
                  # Scots forms of the rules' words (thirteenth stop: "a wee bit aff tae the side, pit her
                  # in the middle"); "pit" only before a pronoun (an orchestra pit stays a pit)
                  "aff": "off", "tae": "to", "intae": "into", "oot": "out", "doon": "down", "gie": "give",
                  "cannae": "can't", "dinnae": "don't", "pit her": "put her", "pit him": "put him",
                  "pit it": "put it", "pit them": "put them", "a couple o": "a couple of", "couple o": "a couple of",
                  # Nigerian Pidgin forms ("the shakers dey too for middle. spread them out wide well well")
                  "dey": "are", "for middle": "in the middle", "well well": "a lot", "make e": "make it",
                  "abeg": "please", "small small": "a little"}
_CHAT_SPELLINGS = re.compile(r"\b(?:its\s(?:too|way|so)|" + "|".join(
    w.replace(" ", r"\s") for w in sorted((w for w in CHAT_SPELLINGS if not w.startswith("its ")), key=len, reverse=True))
    + r")\b")
_CHAT_TRIGGERS = ("nt", "re", "ts", "u", "pl", "thx", "abit", "alot", "alittle", "atad", "atouch",
                  "aff", "tae", "oot", "doon", "gie", "nae", "pit", "dey", "for middle", "well well", "make e", "abeg",
                  "small small")
#: Fillers of speech ("um", "uh", "erm", ", you know,", ", like,"), dropped with their commas (thirteenth stop)
_FILLERS = re.compile(r",?\s*\b(?:u+m+|u+h+|e+r+m+|you\s+know)\b(?=\s*[,.?!]|\s)(?:\s*,)?|(?<=,)\s*like\s*,")
#: a number said in words and then in digits in brackets ("eight (8)", "twenty-five (25)")
_WORDS_AND_DIGITS = re.compile(r"\b(?:" + "|".join(sorted((re.escape(w).replace(r"\ ", r"\s+") for w in _SMALL_NUMBERS
                                                            if w[:1].isalpha()), key=len, reverse=True))
                               + r")\s*\(\s*(\d+(?:\.\d+)?)\s*\)")
#: a dB number said in digits or words ("2 decibels", "3dbs", "six decibels"): the unit the rules read
_DECIBELS = re.compile(r"(\d|\b(?:" + "|".join(sorted((w for w in _SMALL_NUMBERS if w.isalpha() and len(w) > 2),
                                                     key=len, reverse=True)) + r"))\s*+(?:decibels?|dbs)\b")
