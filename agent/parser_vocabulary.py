"""The edit vocabulary as data: size words, direction words and negations, each read as the
canonical words the rule table of :mod:`stase.agent.parser_rules` already knows (issue 16, round 7).

Holds
-----
* :data:`SMALL_SIZES`, :data:`LARGE_SIZES`: every size word of a relative change, in one table
  (small = the :data:`stase.agent.parser_rules.STEPS` "small" step, large = its "large" step).
  The words the rules read themselves stay as they are; :data:`SIZE_SYNONYMS` are the rest,
  each rewritten to its class's canonical word ("a bit" / "a lot").
* :data:`DIRECTION_SYNONYMS`: direction words outside the rules' own spelling, rewritten to it
  ("leftwards" -> "to the left", "hotter" -> "louder", "further from me" -> "further away"), and
  dictation homophones ("quite her" -> "quieter", "hire" -> "higher", "to the write" -> "to the right").
* :data:`EDIT_REWRITES` (an edit only, against a current plan): a comparative said without its
  noun ("move the piano further", "push it deeper" = further back; "move the bass away a bit"),
  and negations read as the opposite step (:data:`OPPOSITES`: "not so far left" / "less to the
  left" = a step right, "not as loud" / "less loud" = quieter, "less high" = lower).
* :data:`MOTION_HEIGHT_VERBS`: verbs that move a source (not a fader): with "up" / "down" they are
  a height step in an edit ("shift the strings up", "nudge the pad down a ton"), while "bring /
  push / turn ... up" stay the fader's (louder).
* :func:`canonical_words`: the text with every rewrite applied (lengths change; every later
  offset is into the rewritten text, which is what cues' provenance quotes); the idioms of
  :mod:`stase.agent.parser_idioms` run first (round 8).  Round 8 also added chat sizes ("a lil",
  "hella"), a size said again in a clause of its own ("further right? like way further"), a
  comparison with where it is now ("higher than ear level"), "climb", "way back" as a large step
  and a direction with its number said apart ("come up, like 10 degrees more"), and "the
  seconds" / "the firsts" of numbered violins (:func:`ordinal_words`).
* Tracks said by number: :func:`track_number_words` ("track 4", "ch 3" of a numbered session) and
  :func:`daw_number_words` ("the fourth track", "the last track", "switch 2 and 6" among "Track N"
  / "Audio N" names; thirteenth stop); :func:`glued_name_words` ("gtr1").

How an edit request becomes a change (the pipeline this module feeds):

1. text: :func:`stase.agent.parser_rules.normalise_text` (case, symbols, units glued to
   numbers), spelling (:func:`stase.agent.parser_rules.correct_spelling`), then
   :func:`canonical_words` (this module) and, in an edit, the present state blanked
   (:func:`stase.agent.parser_rules.blank_present_state`).  Goes wrong: a synonym nobody listed.
2. expressions: the rule table (:data:`stase.agent.parser_rules.RULES`) claims words, each an
   absolute value, a step (quantity, sign, size) or a size word.  Goes wrong: a verb / direction
   pair no rule reads (an unknown verb before "up"), or a level "up" read as a height.
3. tracks: :func:`stase.agent.parser.find_mentions` (aliases, plurals, possessives, kin,
   "everything"; pronouns and clauses without a name borrow the neighbouring clause's tracks).
   Goes wrong: a cue lent to the wrong neighbour.
4. clauses: :func:`stase.agent.parser_clauses._cues_of_clauses` joins a clause's expressions into one
   cue per quantity (precedence numbers > named positions > hedges; one step per quantity and
   clause, the largest size said).  Goes wrong: two edits in one clause of one quantity.
5. effect: :func:`stase.agent.conductor.apply_cues` with ``edit=True`` turns steps into changes
   (:data:`stase.agent.parser_rules.STEPS`), swaps and mirrors follow.

Every pattern here is linear (no leading unbounded scan) and runs only on a text holding one of
its trigger words (a C-speed substring test).
"""
from __future__ import annotations

import re
from functools import lru_cache

from stase.agent.parser_idioms import idiom_words

#: Size words of a small step; the first is the canonical word the rules read.
SMALL_SIZES = (
    "a bit", "a little", "a touch", "a tad", "slightly", "a hair", "a smidge", "a smidgen", "a notch", "a nudge",
    "a fraction", "a little bit", "a tiny bit", "a wee bit", "just a touch", "ever so slightly",
    # rewritten to "a bit":
    "marginally", "fractionally", "a shade", "a teeny bit", "a teensy bit", "a weeny bit", "a tiny touch",
    "a little touch", "a wee touch", "a hint", "a tiny amount", "a small amount", "a titch", "a skosh",
    "a tiny little bit", "minimally", "subtly", "one notch", "a single notch",
    # round 8: chat spellings
    "a lil", "a lil bit", "a lill bit", "a litle", "a litte", "a lttle", "a tiny lil bit", "a smidgeon", "a skoch",
    "a teeny tiny bit", "a weensy bit", "a lil touch",
)
#: Size words of a large step; the first is the canonical word the rules read.
LARGE_SIZES = (
    "a lot", "way", "much", "loads", "lots", "heaps", "tons", "a ton", "quite a bit", "quite a lot", "a good bit",
    "a whole lot", "a fair bit", "a fair amount", "a good deal", "way more", "much more",
    # rewritten to "a lot":
    "significantly", "considerably", "substantially", "massively", "hugely", "a great deal", "dramatically",
    "drastically", "a heap", "a bunch", "a load", "a whole bunch", "a big step", "a long way", "a good way",
    "a good amount", "a huge amount", "majorly", "a fair whack", "a good chunk", "a big chunk",
    # round 8: chat spellings
    "hella", "big time", "like crazy", "a mile", "a crazy amount", "a shitload", "a ton more", "mega",
    "heaps more", "loads more", "tons more", "a bunch more", "a whole heap",
)
_SMALL_KNOWN = frozenset(SMALL_SIZES[:16])
_LARGE_KNOWN = frozenset(LARGE_SIZES[:17])
#: Size words the rules do not read themselves -> the canonical word of their class.
SIZE_SYNONYMS: dict[str, str] = {
    **{w: "a bit" for w in SMALL_SIZES if w not in _SMALL_KNOWN},
    **{w: "a lot" for w in LARGE_SIZES if w not in _LARGE_KNOWN},
}
#: Comparatives a size word may stand before ("miles further back"; alone, "miles away" is a place).
_COMPARATIVES = (r"further|farther|closer|nearer|louder|quieter|softer|higher|lower|wider|broader|narrower|tighter|more|less|"
                 r"forward|back|left|right|upwards?|downwards?|towards?|up|down|over|to\s+the")

#: Direction words outside the rules' own spelling -> the rules' words, (pattern, replacement,
#: trigger substrings).  Said in a new plan too ("leftwards" is "to the left" there as well).
DIRECTION_SYNONYMS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (r"\b(left|right)[- ]?wards?\b", r"to the \1", ("ward",)),
    (r"\b(?:to|on)\s+(?:the\s+)?(left|right)[- ]hand\s+side\b", r"to the \1", ("hand",)),
    (r"\b(?:hotter|more\s+hot)\b", "louder", ("hot",)),
    (r"\b(?:more\s+loud|loud(?:er)?\s+up)\b", "louder", ("loud",)),
    (r"\bmiles\s+(?=(?:" + _COMPARATIVES + r")\b)", "a lot ", ("miles",)),
    (r"(?<!\bmiles)(?<=\s)miles(?=\s*+(?:$|[,.;!?]|(?:please|pls|plz|more)\b))", "a lot", ("miles",)),
    (r"\b(?:further|farther)\s+(?:away\s+)?from\s+(?:me|us|the\s+listener|the\s+mic)\b", "further away", ("from",)),
    (r"\b(?:closer|nearer)\s+to\s+(?:me|us|the\s+listener)\b", "closer", ("to",)),
    # dictation (speech-to-text) homophones of the direction words: "make the piano quite her",
    # "put the pad a bit hire", "move it to the write"
    (r"\b(?:quite|quiet)\s+her\b", "quieter", ("her",)),
    (r"\bloud\s+her\b", "louder", ("her",)),
    (r"\bclose\s+her\b", "closer", ("her",)),
    (r"\bhire\b", "higher", ("hire",)),
    (r"\b(the|to|hard|far|more|further|bit|slightly)\s+write\b", r"\1 right", ("write",)),
    # "5 more dB", "20 more degrees", "2 extra metres": the unit before "more", as the rules read it
    (r"\b(\d+(?:\.\d+)?)\s+(?:more|extra)\s+(db|degrees?|degs?|metres?|meters?|m|feet|ft)\b", r"\1 \2 more", ("more", "extra")),
)
#: What each negated word is the opposite of: "not so X" / "less X" = a step to the opposite.
OPPOSITES: dict[str, str] = {
    "far left": "further right", "far right": "further left", "far to the left": "further right",
    "far to the right": "further left", "left": "further right", "right": "further left",
    "to the left": "further right", "to the right": "further left",
    "loud": "quieter", "hot": "quieter", "quiet": "louder", "soft": "louder",
    "high": "lower", "low": "higher", "wide": "narrower", "spread out": "narrower", "narrow": "wider",
    "far away": "closer", "far back": "closer", "far off": "closer", "distant": "closer", "far": "closer",
    "close": "further away", "near": "further away", "up front": "further back", "forward": "further back",
    "in my face": "further away", "in your face": "further away",
}
#: What a word asks for when the request says there is not enough of it ("not loud enough",
#: "not as wide as it should be"): the comparative of the word itself.
COMPARATIVES: dict[str, str] = {
    "loud": "louder", "quiet": "quieter", "high": "higher", "low": "lower", "wide": "wider", "narrow": "narrower",
    "close": "closer", "near": "closer", "far": "further back", "far back": "further back", "far away": "further away",
    "far left": "further left", "far right": "further right", "present": "closer", "distant": "further away",
    "spread out": "wider", "left": "further left", "right": "further right",
}
_COMPARATIVE_ALTERNATION = "|".join(re.escape(w).replace(r"\ ", r"\s+") for w in sorted(COMPARATIVES, key=len, reverse=True))
_OPPOSITE_ALTERNATION = "|".join(re.escape(w).replace(r"\ ", r"\s+") for w in sorted(OPPOSITES, key=len, reverse=True))
_NEGATION = (r"(?:\bnot|n't|\bnever)\s+(?:be\s+)?(?:quite\s+)?(?:so|as|that|too)\s+"
             r"|\bless\s+(?:(?:far\s+)?over\s+)?")
#: Size words (small or large) said after a direction, and clause ends: where a bare comparative
#: ("further", "deeper", "away") ends its phrase.
_SIZE_ALTERNATION = "|".join(re.escape(w).replace(r"\ ", r"\s+") for w in sorted(SMALL_SIZES + LARGE_SIZES, key=len, reverse=True))
_PHRASE_END = rf"(?=\s*+(?:$|[,.;!?]|(?:{_SIZE_ALTERNATION}|please|pls|plz|thanks|then|and|too|again|still)\b))"
#: Words before "away" that make it a place or a state, never a step ("3 m away", "far away",
#: "miles away", "right away", "go away").
_AWAY_KEEPS = (r"far|further|farther|miles|right|straight|metres?|meters?|m|feet|foot|ft|cm|inches|yards|steps|"
               r"paces|go|goes|went|gone|fade|fades|faded|fading|fall|falls|die|dies|give|throw|get|got|sounds?|feels?|"
               r"is|are|seems?|looks?|off|way|very|really|quite|so|too|that|\d+")
#: Words a stretched spelling means ("waaay", "sooo", "loooud"): a run of three or more of one
#: letter is read as one letter, or two where that makes the word ("tooo" -> "too").
STRETCH_TARGETS = frozenset("""way so too loud quiet much more far lot lots loads left right up down back close wide
    very really little bit tiny hard soft hot high low louder quieter further closer wider lower higher please""".split())
#: (found first by a linear search for a run; then each word is looked at once)
_TRIPLE = re.compile(r"([a-z])\1\1")
#: a word of at most 24 letters holding such a run (bounded repetitions: linear in the text)
_STRETCHED = re.compile(r"(?<![a-z])[a-z]{0,20}?([a-z])\1\1[a-z]{0,20}(?![a-z])")


def _unstretched(m: re.Match) -> str:
    return _unstretched_word(m.group(0))


@lru_cache(maxsize=1024)
def _unstretched_word(word: str) -> str:
    one = re.sub(r"([a-z])\1{2,}", r"\1", word)
    if one in STRETCH_TARGETS:
        return one
    two = re.sub(r"([a-z])\1{2,}", r"\1\1", word)
    return two if two in STRETCH_TARGETS else word


#: Rewrites read in an edit only: (pattern, replacement, trigger substrings).
EDIT_REWRITES: tuple[tuple[str, object, tuple[str, ...]], ...] = (
    # round 8: a size said again after the step, in a clause of its own ("further right? like way
    # further", "louder. much more"): the size of that step, never a new comparative
    (rf"(?<=[,.;!?])\s*+(?:(?:like|i\s+mean|maybe|even|or|nah|no|ok|actually)\s+)?(?P<size>{_SIZE_ALTERNATION})\s+"
     rf"(?:further|farther|more)(?:\s+than\s+that)?(?=\s*+(?:$|[,.;!?]))",
     lambda m: " " + _size_class(m.group("size")), ("further", "farther", "more")),
    # round 8: a comparison with where it is now ("a hair higher than ear level", "louder than it
    # is now") is the step alone: the reference is no target
    (r"\b(?P<word>higher|lower|louder|quieter|softer|closer|nearer|further|farther|wider|narrower|more|less)\s+than\s+"
     r"(?:(?:it\s+is|it's|they\s+are|they're|it\s+was|they\s+were)\s+)?(?:now|before|that|this|ear[- ]level|"
     r"currently|at\s+the\s+moment|where\s+(?:it|they)\s+(?:is|are)(?:\s+now)?)\b", r"\g<word>", ("than",)),
    # round 8: verbs of height and depth said in producers' words
    (r"\bclimb(?:s|ing|ed)?\b(?:\s+(?:more|higher|up))?", "higher", ("climb",)),
    (r"(?<!\btoo\s)(?<!\bso\s)(?<!\bis\s)(?<!\bare\s)\bway\s+back\b(?!\s+(?:then|when|in\s+the\s+day)\b)",
     "a lot further back", ("way back",)),
    # round 8: a direction and its number said apart ("come up, like 10 degrees more"): one move
    (r"\b(?P<way>up|down)\b[,\s]++(?:(?:like|maybe|say|about|around|roughly|by|another)\s+)?(?P<n>\d+(?:\.\d+)?)\s*+"
     r"(?P<unit>degrees?|degs?|deg)\b(?:\s+more)?", r"\g<way> \g<n> \g<unit>", ("up", "down")),
    # a swap said with a sign or as "the other way round" ("tom 1 <-> floor tom", "congas and
    # drums, other way round pls"), and its misspelling "swop"
    (r"\s*(?:<->|<=>|<>|\u2194|\u21c4)\s*", " swaps with ", ("<", "\u2194", "\u21c4")),
    (r"\b(?:the\s+)?other\s+way\s+a?round\b", "swap them", ("other way",)),
    (r"\bswop(s|ped|ping)?\b", r"swap\1", ("swop",)),
    # "slightly left of where it is now": a step from the current place, not an anchor
    (r"\b(left|right)\s+(?:of|from)\s+where\s+(?:it|they|he|she)\s*(?:is|are|'s|'re|sits?|was|were)?"
     r"(?:\s+(?:now|right\s+now|currently|at\s+the\s+moment))?", r"further \1", ("where",)),
    # the whole image mirrored: "reverse all the panning", "flip the stereo image"
    (r"\b(?:reverse|invert|flip|mirror|swap)\s+(?:(?:all\s+)?(?:of\s+)?(?:the\s+|my\s+)?(?:panning|pans|stereo(?:\s+image)?|left\s+and\s+right)"
     r"|(?:the|my)\s+(?:stereo\s+)?image)\b"
     r"(?!\s+(?:of|on|for)\b)", "mirror everything", ("pan", "stereo", "image", "left and right")),
    # "the piano is so far back" says what "too far back" says (a complaint)
    (r"(?:(?<=\bis )|(?<=\bare )|(?<='s )|(?<='re )|(?<=\bsounds )|(?<=\bfeels )|(?<=\bsits ))so\s+"
     r"(?=(?:far|loud|quiet|wide|narrow|close|distant|high|low|hot|soft|centred|centered|panned)\b)", "too ", ("so",)),
    (r"(?:\bnot|n't)\s+(?:(?:as|so)\s+)?far\s+enough\s+(?:to\s+the\s+|over\s+(?:to\s+the\s+)?)?(?P<way>left|right|back|away|forward)\b",
     lambda m: " further " + m.group("way"), ("enough",)),
    (rf"(?:\bnot|n't)\s+(?:(?:as|so)\s+)?(?P<word>{_COMPARATIVE_ALTERNATION})\s+(?:enough\b|as\s+(?:it|they|he|she)\s+"
     rf"(?:should|could|ought\s+to|needs?\s+to|has\s+to|have\s+to)(?:\s+be)?\b)",
     lambda m: " " + COMPARATIVES[" ".join(m.group("word").split())], ("not", "n't")),
    (rf"(?:{_NEGATION})(?P<word>{_OPPOSITE_ALTERNATION})\b(?!\s+(?:of|from|to|together|apart|as|enough)\b)",
     lambda m: " " + OPPOSITES[" ".join(m.group("word").split())], ("not", "n't", "never", "less")),
    (rf"\b(?:further|farther)\b(?!\s+(?:back|away|off|out|in|up|down|left|right|forward|over|to|towards?|from|"
     rf"apart|together|forwards?|distant|along|than|still|ahead|behind|away)\b){_PHRASE_END}", "further back",
     ("further", "farther")),
    (rf"\bdeeper\b(?:\s+(?:into|in)\s+(?:the\s+)?(?:mix|room|space|back|distance|stage))?{_PHRASE_END}", "further back",
     ("deeper",)),
    (rf"(?<![a-z0-9'])(?P<before>[a-z0-9']+\s+)away(?:\s+from\s+(?:me|us|the\s+listener))?\b(?!\s+from\b){_PHRASE_END}",
     lambda m: m.group(0) if re.fullmatch(_AWAY_KEEPS, m.group("before").strip()) else m.group("before") + "further away",
     ("away",)),
)

#: Verbs that move a source (not a fader): "<verb> ... up / down" is a height step in an edit.
MOTION_HEIGHT_VERBS = ("move", "shift", "nudge", "slide", "scoot", "budge", "inch", "edge", "tilt", "float", "angle",
                       "lift", "raise", "sink", "shove", "drag")
#: In an edit whose words speak of height and not of level ("it sounds like it's above my head,
#: bring it down a bit"), a fader verb's "up" / "down" is a height: the verb is read as "move".
HEIGHT_CONTEXT = re.compile(r"\b(?:above|overhead|over\s+my\s+head|ceiling|rafters|sky|clouds|roof|floor|ground|below|"
                            r"beneath|underneath|height|elevation|elevated|high|low)\b")
LEVEL_CONTEXT = re.compile(r"\b(?:loud\w*|quiet\w*|soft\w*|(?<!ear )(?<!ear-)level|levels|volume|mix|db|gain|hot\w*|fader|buried|lost|hear|"
                           r"balance|boost|cut|gain|present|presence)\b")
_FADER_AS_MOTION = re.compile(r"\b(?:bring|take|push|pull|get)(s|ing)?\b|\b(?:brought|took|pushed|pulled)\b")

_SIZE_SYNONYM_PATTERN = re.compile(
    r"\b(?:" + "|".join(re.escape(w).replace(r"\ ", r"\s+") for w in sorted(SIZE_SYNONYMS, key=len, reverse=True)) + r")\b")
_SIZE_TRIGGERS = tuple(sorted({w.split()[-1] for w in SIZE_SYNONYMS}))


def _size_class(size: str) -> str:
    """The canonical size word of ``size``'s class: "a lot" for a large size, else "a bit"."""
    return "a lot" if " ".join(size.split()) in LARGE_SIZES else "a bit"


@lru_cache(maxsize=None)
def _compiled(edit: bool):
    table = DIRECTION_SYNONYMS + (EDIT_REWRITES if edit else ())
    return tuple((re.compile(p), r, t) for p, r, t in table)


def canonical_words(text: str, edit: bool = False, protected: frozenset[str] = frozenset()) -> str:
    """``text`` (lower case, as :func:`stase.agent.parser_rules.normalise_text` gives it) with its
    size words, direction words and (``edit``) bare comparatives and negations rewritten to the
    words the rule table reads.  A rewrite whose trigger word is one of ``protected`` (the words
    of the session's track names) is skipped: a track's own name is never rewritten."""
    if _TRIPLE.search(text):
        text = _STRETCHED.sub(_unstretched, text)
    # producers' idioms, word orders, negated places, mirror and swap words (round 8)
    text = idiom_words(text, edit, protected)
    if any(t in text for t in _SIZE_TRIGGERS):
        text = _SIZE_SYNONYM_PATTERN.sub(lambda m: SIZE_SYNONYMS[" ".join(m.group(0).split())], text)
    if edit and HEIGHT_CONTEXT.search(text) and not LEVEL_CONTEXT.search(text):
        text = _FADER_AS_MOTION.sub(lambda m: "move" + (m.group(1) or ""), text)
    for pattern, replacement, triggers in _compiled(edit):
        if any(t in text for t in triggers) and not any(t in protected for t in triggers):
            text = pattern.sub(replacement, text)
    return text


# ------------------------------------------------------------------------------------------------
# Tracks said by their number ("track 4", "trk 2", "tracks 4 and 6", "ch 3"): a DAW session's
# numbered names ("04 Gtr", "02 Snare") are read as the name itself.
# ------------------------------------------------------------------------------------------------
_NUMBER_NOUN = r"(?:tracks?|trks?|tr|chs?|channels?|chans?|#)"
_TRACK_NUMBERS = re.compile(
    rf"\b{_NUMBER_NOUN}\s*+(?:\#\s*+)?(?<!\d)(?P<first>\d{{1,3}})\b"
    rf"(?P<rest>(?:\s*+(?:,|&|\+|and\b|or\b|n\b)\s*+(?:{_NUMBER_NOUN}\s*+(?:\#\s*+)?)?\d{{1,3}}\b)*+)")
_LEADING_NUMBER = re.compile(r"^\s*(\d{1,3})(?=\D|$)")
_NUMBER_TRIGGERS = ("tr", "ch", "#")


def numbered_tracks(tracks) -> dict[int, str]:
    """Track number -> the track whose name starts with it ("04 Gtr" is 4), for numbers that
    name one track only."""
    found: dict[int, list[str]] = {}
    for track in tracks:
        m = _LEADING_NUMBER.match(str(track))
        if m:
            found.setdefault(int(m.group(1)), []).append(track)
    return {n: names[0] for n, names in found.items() if len(names) == 1}


def track_number_words(text: str, tracks, words_of) -> str:
    """``text`` with each "track N" ("trk N", "ch N", "tracks N and M") of a numbered session
    written as that track's own words (``words_of(track)``: its normalised name); a number that
    names no track is left as it is (the conductor then names what it could not find)."""
    if not any(t in text for t in _NUMBER_TRIGGERS):
        return text
    numbered = numbered_tracks(tracks)
    if not numbered:
        return text

    def name(m: re.Match) -> str:
        numbers = [int(m.group("first")), *map(int, re.findall(r"\d+", m.group("rest")))]
        if not all(n in numbered for n in numbers):
            return m.group(0)
        names = [words_of(numbered[n]) for n in numbers]
        return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]

    return _TRACK_NUMBERS.sub(name, text)


#: A DAW's default track names ("Track 4", "Audio 2", "MIDI 3"): a marker word and a number
_DEFAULT_NAME_WORDS = frozenset({"track", "audio", "midi", "inst", "instrument", "channel", "ch", "trk", "bus"})
_ORDINAL_NUMBERS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7,
                    "eighth": 8, "ninth": 9, "tenth": 10, "1st": 1, "2nd": 2, "3rd": 3, "4th": 4, "5th": 5,
                    "6th": 6, "7th": 7, "8th": 8, "9th": 9, "10th": 10}
_ORDINAL_TRACK = re.compile(r"\b(?P<ord>" + "|".join(_ORDINAL_NUMBERS) + r"|last)\s+(?:track|channel|trk|ch)\b")
_SWAPPED_NUMBERS = re.compile(r"\b(?P<verb>swap|switch|trade|exchange|flip|interchange)\s+(?:tracks?\s+)?(?P<a>\d{1,3})"
                              r"\s*(?:and|&|with|<->|<>|/|\+|for)\s*(?P<b>\d{1,3})\b(?!\s*(?:deg|db|m\b|metres?|meters?|%|°|feet|ft))")


def daw_number_words(text: str, tracks, words_of) -> str:
    """``text`` with the tracks of a numbered session said by number alone written as their
    names: "the fourth track" / "the last track" and a swap of bare numbers ("switch 2 and 6"),
    where the numbers name tracks ("Track 2", "Audio 6" or "02 Gtr"; thirteenth stop)."""
    if not any(ch.isdigit() for ch in text) and "track" not in text and "channel" not in text:
        return text
    by_number = dict(numbered_tracks(tracks))
    for t in tracks:
        words = words_of(t).split()
        if len(words) == 2 and words[0] in _DEFAULT_NAME_WORDS and words[1].isdigit():
            by_number.setdefault(int(words[1]), t)
    if not by_number:
        return text

    def ordinal(m: re.Match) -> str:
        n = max(by_number) if m.group("ord") == "last" else _ORDINAL_NUMBERS[m.group("ord")]
        return words_of(by_number[n]) if n in by_number else m.group(0)

    def swapped(m: re.Match) -> str:
        a, b = int(m.group("a")), int(m.group("b"))
        if a not in by_number or b not in by_number or a == b:
            return m.group(0)
        return f"{m.group('verb')} {words_of(by_number[a])} and {words_of(by_number[b])}"

    return _SWAPPED_NUMBERS.sub(swapped, _ORDINAL_TRACK.sub(ordinal, text))


def glued_name_words(text: str, track_words) -> str:
    """``text`` with a track name's letters and number said glued together ("gtr1", "q12 rain l",
    "sfx12") written apart as the track's own words ("gtr 1"): track names are split at every
    letter-digit boundary (:func:`stase.agent.lexicon.normalise_words`), a prompt's words are not.
    Only a glued word that is a track's own word pair changes ("mp3", "4k", "808" stay)."""
    glued = {}
    for words in track_words:
        for a, b in zip(words, words[1:]):
            if (a.isalpha() and b.isdigit()) or (a.isdigit() and b.isalpha()):
                glued[a + b] = f"{a} {b}"
    if not glued:
        return text
    found = {w for w in _GLUED.findall(text) if w in glued}
    if not found:
        return text
    pattern = re.compile(r"(?<![a-z0-9])(?:" + "|".join(map(re.escape, sorted(found, key=len, reverse=True)))
                         + r")(?![a-z0-9])")
    return pattern.sub(lambda m: glued[m.group(0)], text)


_GLUED = re.compile(r"(?<![a-z0-9])(?:[a-z]+\d+|\d+[a-z]+)(?![a-z0-9])")


# ------------------------------------------------------------------------------------------------
# Parts of one instrument that a multi-mic session records on tracks of their own ("OH L", "OH R",
# "Hi Hat", "Room"): the lexicon gives them all one role (drums), so "the overheads" would name
# every drum track.  Each group lists the words that name one part; the first is the word the
# lexicon reads (round 7).
# ------------------------------------------------------------------------------------------------
PART_GROUPS: tuple[tuple[str, ...], ...] = (
    ("overheads", "overhead", "ohs", "oh", "ovh", "ovhd", "ovhs", "ovhds", "oheads"),
    ("hihat", "hi hat", "hi-hat", "hihats", "hi hats", "hat", "hats", "hh"),
    ("room", "rooms", "room mic", "room mics", "drum room", "amb", "ambience"),
    ("kick", "kicks", "kik", "kck", "bd", "bass drum"),
    ("snare", "snares", "snr", "sn", "sd"),
    ("toms", "tom", "rack tom", "floor tom", "tom tom", "tom toms"),
)
_PART_OF = {w: group for group in PART_GROUPS for w in group}
_PART_WORDS = frozenset(w for group in PART_GROUPS for phrase in group for w in phrase.split())


def part_tracks(alias: str, found: list[str], words_of) -> list[str]:
    """Of ``found`` (the tracks an alias's role gives), those whose own words name the same part
    as ``alias`` ("overheads" -> "OH L", "OH R"); all of ``found`` when the alias names no part
    or no track holds one."""
    group = _PART_OF.get(alias)
    if group is None or len(found) < 2:
        return found
    part = {w for phrase in group for w in phrase.split()}
    holding = [t for t in found if set(words_of(t)) & part]
    return holding or found


def part_words(text: str, track_words) -> str:
    """``text`` with a part's words that only a track name may use ("OHs", "the hat") written
    as the part's lexicon word ("overheads", "hihat") when a session track holds that part;
    a word that is a track's own stays."""
    if not (_PART_WORDS & set(re.findall(r"[a-z]+", text))):
        return text
    own = {w for words in track_words for w in words}
    whole_names = {" ".join(words) for words in track_words}
    wanted = {}
    for group in PART_GROUPS:
        part = {w for phrase in group for w in phrase.split()}
        if part & own:
            # a phrase of the group stays itself ("hi hat" is no "hi hihat"), as does a track's
            # whole name ("room" for the track "Room"); a lone word becomes the lexicon's word
            wanted.update({w: (w if " " in w or w in whole_names else group[0]) for w in group if w != group[0]})
    if not wanted:
        return text
    # a track's whole name said in the text stays itself ("tom 1" is no "toms 1")
    wanted.update({name: name for name in whole_names if " " in name})
    return _phrase_pattern(tuple(sorted(wanted, key=len, reverse=True))).sub(lambda m: wanted[m.group(0)], text)


@lru_cache(maxsize=256)
def _phrase_pattern(phrases: tuple[str, ...]) -> re.Pattern:
    return re.compile(r"\b(?:" + "|".join(map(re.escape, phrases)) + r")\b")


# ------------------------------------------------------------------------------------------------
# Ordinals before an instrument ("the 2nd violin", "first guitar"): the number after it, as DAW
# tracks are named ("Vln 2", "Vln II", "Gtr 1"), when a session track carries that number.
# ------------------------------------------------------------------------------------------------
_ORDINALS = {"1st": 1, "first": 1, "2nd": 2, "second": 2, "3rd": 3, "third": 3, "4th": 4, "fourth": 4}
_ROMAN = {1: "i", 2: "ii", 3: "iii", 4: "iv"}
_ORDINAL = re.compile(r"\b(1st|2nd|3rd|4th|first|second|third|fourth)\s+([a-z]+)\b")


def ordinal_words(text: str, tracks, words_of, role_of_word, roles) -> str:
    """``text`` with "the 2nd violin" written as the one session track of that instrument
    (``role_of_word(noun)``, a lexicon role, against ``roles[track]``) that carries the number
    ("Vln 2", "Vln II": its words, ``words_of(track)``); otherwise unchanged."""
    if not any(o in text for o in _ORDINALS):
        return text

    def number_word(m: re.Match) -> str:
        n, noun = _ORDINALS[m.group(1)], m.group(2)
        role = role_of_word(noun)
        if role is None:
            return m.group(0)
        numbered = [t for t in tracks if roles.get(t) == role and ({str(n), _ROMAN[n]} & set(words_of(t)))]
        return " ".join(words_of(numbered[0])) if len(numbered) == 1 else m.group(0)

    text = _ORDINAL.sub(number_word, text)
    if "firsts" in text or "seconds" in text:
        # "the seconds go where the celli are": an orchestra's first and second violins (round 8)
        text = _SECTION_ORDINAL.sub(lambda m: number_word(_ORDINAL.match(f"{m.group(1)[:-1]} violin")) if _violins_numbered(
            tracks, roles, words_of) else m.group(0), text)
    return text


_SECTION_ORDINAL = re.compile(r"(?<=\bthe\s)(firsts|seconds)\b(?!\s+(?:later|before|after|of|in|to)\b)")


def _violins_numbered(tracks, roles, words_of) -> bool:
    return sum(1 for t in tracks if roles.get(t) in ("violin", "violins") and ({"1", "2", "i", "ii"} & set(words_of(t)))) >= 2
