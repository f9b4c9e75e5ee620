"""Producers' idioms read as the words the rule table knows (issue 16, round 8).

A request written by a film mixer, a live engineer, a choir director or someone writing in a
second language says the same changes in other words: "more near", "the volume is too small,
please big a little", "bring down it of 10 degrees", "flop the pans", "change them of place",
"Vln II and Vla change place", "not at left".  Rather than one rule per sentence, this module
holds a few mechanisms as data, each a table of (pattern, replacement, trigger substrings):

Holds
-----
* :data:`QUANTITY_ADJECTIVES` and :func:`quantity_words`: size adjectives ("big", "small",
  "strong", "short", "broad") read as the adjective of the quantity the request names with a
  noun ("volume", "width", "distance", "height"), or that the adjective itself names
  ("near", "broad", "strong"); then "more X" is X's comparative ("more near" = closer, "more
  broad" = wider, "more short" with "distance" = closer) and a bare "X a little" too.
* :data:`WORD_ORDER`: non-native word orders and prepositions: a particle after its pronoun
  ("bring down it" = "bring it down"), "of" before a step's size ("more to the right of 5
  degrees" = by 5 degrees), "to left" without an article, an adjective used as a verb ("low it a
  bit" = lower it, "big it" = louder), "in level" for a fader.
* :data:`NEGATED_PLACES`: a place said only to be refused ("center please, not stage right",
  "slightly right, not to the centre", "not all the way") is blanked: it is no target.
* :data:`MIRROR_WORDS` / :data:`SWAP_WORDS`: inflected and foreign mirror words ("mirrored",
  "flop the pans", "spiegel", "inverse left and right", "left is right and right is left",
  "everybody change side") and swap words ("change place", "change them of place", "must be
  changed", "X / Y flipped, fix", "and inverse" = vice versa), as the words the swap and mirror
  readers know.
* :data:`SELF_CORRECTION`: "swap- no, mirror ...", "from the podium... no, from behind": what
  a request says before it corrects itself is dropped.
* :data:`DISTANCE_WORDS`: numbers said in words or units the rules lack ("half a metre", "by a
  metre", "18 inches", "two meters less" = closer by 2 m, "+0.5m dist", "half the distance").
* :func:`idiom_words`: the text with every table applied (edit-only tables only in an edit).

Every pattern is linear (no leading unbounded scan; bounded gaps) and runs only on a text
holding one of its trigger substrings.  Lengths change: later offsets are into the new text.
"""
from __future__ import annotations

import re
from functools import lru_cache

# ------------------------------------------------------------------------------------------------
# size adjectives read by the quantity a noun names
# ------------------------------------------------------------------------------------------------
#: noun of a quantity -> the quantity
QUANTITY_NOUNS = {
    "volume": "gain", "level": "gain", "loudness": "gain", "gain": "gain", "fader": "gain",
    "width": "width", "image": "width", "spread": "width", "stereo": "width",
    "distance": "distance", "depth": "distance",
    "height": "height", "elevation": "height",
}
#: quantity -> {adjective said: the rules' adjective}
QUANTITY_ADJECTIVES = {
    "gain": {"big": "loud", "bigger": "louder", "large": "loud", "larger": "louder", "strong": "loud",
             "stronger": "louder", "small": "quiet", "smaller": "quieter", "weak": "quiet", "weaker": "quieter"},
    "width": {"big": "wide", "bigger": "wider", "large": "wide", "larger": "wider", "broad": "wide",
              "broader": "wider", "open": "wide", "small": "narrow", "smaller": "narrower", "tight": "narrow"},
    "distance": {"big": "far", "bigger": "further", "long": "far", "longer": "further", "large": "far",
                 "short": "close", "shorter": "closer", "small": "close", "smaller": "closer"},
    "height": {"big": "high", "bigger": "higher", "small": "low", "smaller": "lower"},
}
#: adjectives that name their quantity without a noun
OWN_QUANTITY = {"near": "close", "broad": "wide", "broader": "wider", "strong": "loud", "stronger": "louder",
                "weak": "quiet", "open": "wide", "elevated": "high", "close": "close", "far": "far", "high": "high",
                "low": "low", "loud": "loud", "quiet": "quiet", "wide": "wide", "narrow": "narrow"}
#: adjectives that "very" / "so" turn into a complaint ("sounds very strong" = too loud): the
#: rules' own adjectives keep their meaning there ("very close" is a place)
_STATE_ADJECTIVES = frozenset({"strong", "stronger", "weak", "weaker", "big", "small", "broad", "elevated"})
#: the rules' adjective -> its comparative
COMPARATIVE_OF = {"loud": "louder", "quiet": "quieter", "wide": "wider", "narrow": "narrower", "far": "further back",
                  "close": "closer", "high": "higher", "low": "lower"}

_NOUN = re.compile(r"\b(" + "|".join(QUANTITY_NOUNS) + r")\b")
_ADJECTIVES = sorted({a for table in QUANTITY_ADJECTIVES.values() for a in table} | set(OWN_QUANTITY), key=len, reverse=True)
#: "more X", "too X", "X a little", "make it X": where a size adjective stands for a quantity
_ADJECTIVE_SPOT = re.compile(
    r"\b(?P<lead>more\s+|too\s+(?:much\s+)?|very\s+|so\s+|make\s+(?:it|them|him|her)\s+|please\s+)?(?P<adj>"
    + "|".join(_ADJECTIVES) + r")\b(?!\s+(?:left|right|to|from|away|off|of)\b)(?P<tail>\s+(?:a\s+(?:little|bit|lot|touch|tad)|please|pls))?")


def quantity_words(text: str) -> str:
    """Size adjectives said with a quantity noun (or naming one) as the rules' words; see the
    module docstring.  A request naming nouns of two quantities is left as it is."""
    nouns = {QUANTITY_NOUNS[m.group(1)] for m in _NOUN.finditer(text)}
    quantity = next(iter(nouns)) if len(nouns) == 1 else None

    def read(m: re.Match) -> str:
        adj, lead, tail = m.group("adj"), m.group("lead") or "", m.group("tail") or ""
        said = QUANTITY_ADJECTIVES.get(quantity, {}).get(adj) if quantity else None
        lead_word = lead.split()[0] if lead else ""
        if lead_word in ("very", "so") and adj not in _STATE_ADJECTIVES:
            return m.group(0)
        if said is None and (lead_word in ("more", "very", "so", "too") or tail):
            said = OWN_QUANTITY.get(adj)
        if said is None or (not lead and not tail) or (lead_word == "too" and adj in COMPARATIVE_OF):
            return m.group(0)
        if said.endswith(("er", "back")):   # already a comparative ("bigger" = louder)
            return f"{said}{tail}"
        if lead_word == "more" or (not lead and tail) or lead_word in ("make", "please"):
            return f"{COMPARATIVE_OF[said]}{tail}"
        return f"too {said}{tail}"   # "too small", "sounds very strong": a complaint

    return _ADJECTIVE_SPOT.sub(read, text)


# ------------------------------------------------------------------------------------------------
# tables: (pattern, replacement, trigger substrings, edit only)
# ------------------------------------------------------------------------------------------------
_PRONOUN = r"(?:it|them|him|her|em|'em)"
_STEP_NUMBER = r"\d+(?:\.\d+)?\s*+(?:degrees?|degs?|deg|db|metres?|meters?|m|cm|feet|ft)\b"
WORD_ORDER: tuple[tuple[str, object, tuple[str, ...], bool], ...] = (
    # thirteenth stop, non-native sizes: "not much, just little", "little bit only", "decrease the
    # volume little" (a size without its article), "higher ..., on 5 degrees" ("on" for "by"),
    # "quieter by for db" (dictated "four"), "move it to the right side 10 degree" (the number after the side)
    (r"\bnot\s+(?:too\s+|so\s+)?much\s*,?\s*(?:just\s+|only\s+)?(?:a\s+)?little(?:\s+bit)?(?:\s+only)?\b", "a little",
     ("much",), True),
    (r"(?<!\ba\s)(?<!\bthe\s)(?<!\bmy\s)(?<!\bour\s)(?<![a-z]')\b(?:just\s+|only\s+)?little(?:\s+bit)?(?:\s+only)?\b"
     r"(?=\s*(?:[,.;!?]|$)|\s+(?:please|pls|more|louder|quieter|closer|further|higher|lower|wider|narrower|left|right|up|down)\b)",
     "a little", ("little",), True),
    (r"(?<=[,\s])on\s+(?=\d+(?:\.\d+)?\s*(?:degrees?|degs?|deg|db)\b)", "by ", ("on",), True),
    (r"\b(?:by\s+)?for\s+(?=db\b|decibels?\b)", "by 4 ", ("for",), True),
    (r"\bto\s+the\s+(?P<side>left|right)(?:\s+side)?\s+(?P<n>\d+(?:\.\d+)?)\s*(?P<unit>degrees?|degs?|deg)\b",
     r"\g<n> degrees to the \g<side>", ("side", "deg"), True),
    (r"\b(?P<way>up|down)\s+(?P<size>a\s+lot|a\s+bit|a\s+little|a\s+touch|way|much|slightly)\s+in\s+(?:level|volume)\b",
     lambda m: f"{m.group('size')} {'louder' if m.group('way') == 'up' else 'quieter'}", ("level", "volume"), True),
    # "bring down it", "move up them": the particle after its pronoun
    (rf"\b(?P<verb>bring|move|put|take|push|pull|turn|get|shift|send|set)\s+(?P<way>up|down|back|in|out|forward|closer|left|right)"
     rf"\s+(?P<it>{_PRONOUN})\b", r"\g<verb> \g<it> \g<way>", ("it", "them", "him", "her", "em"), False),
    # "more to the right of 5 degrees", "bring it down of 10 degrees": "of" before a step's size
    (rf"\b(?P<w>right|left|up|down|closer|nearer|further|farther|back|higher|lower|louder|quieter|wider|narrower|forward|it|them|"
     rf"him|her)\s+of\s+(?=(?:about\s+|around\s+|maybe\s+)?{_STEP_NUMBER})", r"\g<w> by ", ("of",), True),
    # "the volume is too low": a level noun's own "low" / "high"
    (r"\b(?P<noun>volume|level|gain)\s+(?P<verb>is\s+|are\s+)?(?P<size>(?:a\s+bit\s+|way\s+|much\s+)?)too\s+(?P<state>low|high)\b",
     lambda m: f"{m.group('noun')} {m.group('verb') or ''}{m.group('size')}too {'quiet' if m.group('state') == 'low' else 'loud'}",
     ("too",), True),
    # "to left", "at right", "on left": a side without its article
    (r"\b(?P<prep>to|at|on|towards?)\s+(?P<side>left|right)\b(?!\s*-?\s*(?:hand|side|of)\b)", r"\g<prep> the \g<side>",
     ("left", "right"), False),
    # "15 deg L": a side letter after a number of degrees
    (r"(?<=\d)\s*+(?P<unit>degrees?|degs?|deg)\s+(?P<side>l|r)\b(?!\s*[/&])",
     lambda m: f" {m.group('unit')} {'left' if m.group('side') == 'l' else 'right'}", ("deg",), False),
    # "low it a bit", "big it a little": an adjective used as a verb
    (rf"\blow\s+(?={_PRONOUN}\b|the\b)", "lower ", ("low",), True),
    (r"(?:(?<=please )|(?<=pls )|(?<=^))big(?:ger)?\s+(?=(?:a\s+(?:little|bit|lot|touch|tad)|it|them)\b)", "louder ",
     ("big",), True),
    # "flute a little up in level": a fader
    (r"\b(?P<way>up|down)\s+in\s+(?:the\s+)?(?:level|volume|gain)\b",
     lambda m: "louder" if m.group("way") == "up" else "quieter", ("level", "volume", "gain"), True),
    # "is a touch quiet", "sounds a bit loud": a small complaint
    (r"\b(?P<verb>is|are|sounds?|feels?|seems?)\s+(?P<size>a\s+(?:touch|bit|little|tad|hair)|slightly|kinda|a\s+little\s+bit)\s+"
     r"(?P<state>quiet|loud|soft|wide|narrow|distant)\b", r"\g<verb> \g<size> too \g<state>", ("quiet", "loud", "soft", "wide",
                                                                                              "narrow", "distant"), True),
    # "so they line up", "to match up": phrasal verbs whose "up" is no move and no fader
    (r"\b(?:line|lines|lined|lining|match|matches|matched|matching|sync|syncs)\s+up\b", "align", ("up",), False),
    # "right on top of us": "right" is an intensifier there, never a side
    (r"\bright\s+(?=on\s+top\s+of\b)", "", ("on top",), False),
    # "Fl and Cl both 5 deg to the left": each moves by it
    (r"\b(?P<q>both|each|all)\s+(?=\d+(?:\.\d+)?\s*(?:degrees?|degs?|deg)\s+(?:to\s+the\s+)?(?:left|right)\b)", r"\g<q> another ",
     ("both", "each", "all"), True),
    # "open sopranos and basses more", "let them more open": "open" without "up"/"out" is a width verb
    (r"\bopen\b(?!\s*-?\s*(?:up|out|air|mic|plan|road|field|hat|hats|hh|back|the\s+(?:session|project|file|door)))"
     r"(?=(?:(?!\b(?:up|out)\b)[^,.;!?]){0,40}?\b(?:more|wider|a\s+(?:bit|little|lot|touch)|slightly|much)\b)", "widen",
     ("open",), True),
    (r"\bmore\s+widen\b", "wider", ("widen",), True),
    # "15 more each side": that many degrees
    (r"(?<![\w.])(?P<n>\d+(?:\.\d+)?)\s+more\s+(?=each\b|per\s+side\b|a\s+side\b|on\s+each\b)", r"by \g<n> degrees ",
     ("more",), True),
    # "narrower by 10", "louder by 3": a unitless size after "by" in its quantity's unit
    (r"\b(?P<way>wider|narrower|left|right|higher|lower|up|down|louder|quieter|softer)\s+by\s+(?P<n>\d+(?:\.\d+)?)"
     r"(?!\s*(?:%|db|m\b|cm|ft|feet|foot|metres?|meters?|deg|degrees?|o'?\s?clock|\d|\.\d))",
     lambda m: ({"wider": "widen", "narrower": "narrow"}.get(m.group("way"), m.group("way")) + f" by {m.group('n')} "
                + ("db" if m.group("way") in ("louder", "quieter", "softer") else "degrees")),
     ("by",), True),
    # "more to the centre": a step towards it, not the centre itself
    (r"\bmore\s+(?:to|towards?|in)\s+(?:the\s+)?(?:centre|center|middle)\b", "in towards the middle", ("more",), True),
    # "ea." for "each", "+10 each" as degrees
    (r"\bea\b\.?", "each", ("ea",), True),
    (r"(?<![\w.])(?:by\s+)?\+?(?P<n>\d+(?:\.\d+)?)\s+(?=each\b|apiece\b|per\s+side\b|a\s+side\b)", r"by \g<n> degrees ",
     ("each", "apiece", "side"), True),
    # "nudge them toward the middle a touch": a step towards the centre
    (r"(?<!\bin\s)\btowards?\s+(?:the\s+)?(?:middle|centre|center)\b(?=\s+(?:a\s+(?:bit|little|touch|tad|hair|lot)|slightly|just)\b)",
     "in towards the middle", ("toward",), True),
    # "bring it in 10 degrees": that much towards the centre (for a pair, narrower by it); also a
    # list ("bring the parts (vln i, vln ii, vla, vc) in by 10 degrees each"; thirteenth stop)
    (r"\b(?P<verb>bring|pull|move|nudge|push)\s+(?P<it>(?:(?!(?:up|down|left|right|back|then|bring|pull|move|nudge|push|"
     r"and\s+(?:then|also))\b)[a-z0-9_'(),]+\s+){1,12}?)in\s+(?:by\s+)?(?P<n>\d+(?:\.\d+)?)\s*(?:degrees?|degs?|deg)\b",
     r"narrow \g<it>by \g<n> degrees", ("in",), True),
)
#: a place said only to be refused: blanked (spaces), so it is no target
NEGATED_PLACES: tuple[tuple[str, object, tuple[str, ...], bool], ...] = (
    # "crosses to the other side - well, not all the way, just shift her right": a move taken back
    (r"\b(?:to|on|onto|over\s+to|across\s+to)\s+the\s+(?:opposite|other)\s+side\b(?=[^.;!?]{0,40}?\bnot\s+(?:all\s+the\s+way|completely|fully|quite)\b)",
     lambda m: " " * len(m.group(0)), ("side",), False),
    (r"(?:,\s*|\b)(?:but\s+|and\s+)?(?:not|never|no)\s+(?:all\s+the\s+way|completely|fully|too\s+much|that\s+much)\b"
     r"|(?:,\s*|\b)(?:but\s+|and\s+)?(?:not|never)\s+(?:at|to|on|in|towards?)?\s*(?:the\s+)?(?:stage\s+|house\s+|hard\s+|far\s+)?"
     r"(?:left|right|cent(?:re|er)|middle)\b(?!\s+(?:enough|of)\b)",
     lambda m: " " * len(m.group(0)), ("not", "never", "no "), False),
    # "we don't need it distant in space too": a state refused, no target
    (r"\b(?:don't|do\s+not|doesn't|does\s+not)\s+(?:need|want)\s+(?:it|them|him|her)\s+(?:to\s+be\s+)?(?:so\s+|that\s+|too\s+)?"
     r"(?:distant|far(?:\s+away)?|close|wide|narrow|loud|quiet|high|low)\b(?:\s+in\s+space)?",
     lambda m: " " * len(m.group(0)), ("n't", "not"), False),
)
MIRROR_WORDS: tuple[tuple[str, object, tuple[str, ...], bool], ...] = (
    (r"\b(?:left\s+is\s+right\s+and\s+right\s+is\s+left|right\s+is\s+left\s+and\s+left\s+is\s+right)\b", "mirror them",
     ("is left", "is right"), True),
    (r"\b(?:reversed?|inverted?|inverse|flipped|flop(?:ped)?|mirrored|swapped)\s+(?:all\s+)?(?:the\s+)?(?:left[- ](?:and[- ]|to[- ])?right|"
     r"right[- ](?:and[- ]|to[- ])?left|l[-/]r|l\s+and\s+r|sides)\b", "mirror", ("left", "right", "l/r", "l-r", "sides"), True),
    # "please left-right mirror", "an l/r flip": the sides name the mirror's axis (twelfth stop)
    (r"\b(?:left[-/ ]right|right[-/ ]left|l[-/]r)\s+(?:mirror|flip)\b", "mirror", ("left", "right", "l/r", "l-r"), True),
    (r"\b(?:spiegel(?:n|e)?|flop(?:s)?)\b(?!\s+(?:is|was))", "mirror", ("spiegel", "flop"), True),
    (r"\b(?:needs?|should\s+be|be|is|are|get|gets|all)\s+mirrored\b|\bmirrored\s+(?:please|pls|too)\b", " mirror them",
     ("mirrored",), True),
    (r"\b(?:everybody|everyone)\s+(?:change|changes|swap|switch)\s+(?:the\s+)?sides?\b", "mirror everything",
     ("side",), True),
)
SWAP_WORDS: tuple[tuple[str, object, tuple[str, ...], bool], ...] = (
    (r"\bchange\s+(?:them\s+|their\s+)?(?:of\s+)?(?:place|places|position|positions|seat|seats)\b", "swap places",
     ("change",), True),
    (r"\b(?:must|should|need\s+to|needs\s+to)\s+be\s+(?:changed|exchanged|switched|swapped|inverted)\b", "swap places",
     ("changed", "switched", "swapped", "inverted"), True),
    (r"\b(?:are\s+|is\s+)?(?:flipped|reversed|backwards|swapped)\s*,?\s*(?:fix|correct|sort|undo)\w*(?:\s+(?:it|them|that|this))?\b",
     "swap them", ("fix", "correct", "sort", "undo"), True),
    (r"\band\s+(?:the\s+)?(?:inverse|viceversa|vice-versa|the\s+other\s+way)\b", "and vice versa", ("inverse", "vice", "other way"),
     True),
    (r"\bwhere\s+(?:are|is)\s+the\s+(?P<what>[a-z0-9_]+)\b", r"where the \g<what> are", ("where",), True),
)
#: "Narrator. Closer. Much.": a size alone in its sentence is the size of the step said before it
SIZE_ALONE: tuple[tuple[str, object, tuple[str, ...], bool], ...] = (
    (r"(?<=[.;!?,])\s*+(?:much|way|lots|loads|a\s+lot|heaps|tons)(?:\s+more)?\s*+(?=[.;!?]|$)", " a lot", ("much", "way", "lot",
                                                                                                        "loads", "heaps", "tons"),
     True),
)
#: "swap- no, mirror ...": the request before its correction is dropped
SELF_CORRECTION: tuple[tuple[str, object, tuple[str, ...], bool], ...] = (
    (r"^[^.;!?\n]{0,120}?(?:\s-|-\s|,|\.\.\.|\u2026)\s*(?:no|nope|sorry|wait|scratch\s+that)\s*[,!.-]+\s*", "", ("no", "wait", "sorry",
                                                                                                          "scratch"), True),
)
_NUMBER_WORD = {"one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "a": "1", "an": "1"}
DISTANCE_WORDS: tuple[tuple[str, object, tuple[str, ...], bool], ...] = (
    (r"\bhalf\s+(?:a|an)\s+(?P<unit>metre|meter|foot|m)\b", lambda m: "0.5 " + m.group("unit") + "s", ("half",), False),
    (r"\b(?:a|one)\s+(?P<unit>metre|meter)\s+and\s+a\s+half\b", lambda m: "1.5 " + m.group("unit") + "s", ("half",), False),
    (r"\b(?P<by>by|of|about|around|maybe|like)\s+(?:a|an|one)\s+(?P<unit>metre|meter|foot)\b", r"\g<by> 1 \g<unit>",
     ("metre", "meter", "foot"), False),
    (r"(?P<n>\d+(?:\.\d+)?)\s*+(?:inches|inch|in\.)(?![a-z])", lambda m: f"{float(m.group('n')) * 0.0254:.4f} m", ("inch", "in."), False),
    # "two meters less", "1 m more": a step of that size closer or further
    (r"(?P<n>\d+(?:\.\d+)?|one|two|three|four|five)\s*+(?P<unit>m|metres?|meters?|ft|feet)\s+(?P<way>less|more)\b(?!\s+(?:than|to)\b)",
     lambda m: f"{_NUMBER_WORD.get(m.group('n'), m.group('n'))} {m.group('unit')} "
               + ("closer" if m.group("way") == "less" else "further back"), ("less", "more"), True),
    # "+0.5m dist", "-1 m": a signed distance is a step in an edit
    (r"(?<![\w.])(?P<sign>[-+])(?P<n>\d+(?:\.\d+)?)\s*+(?P<unit>m|metres?|meters?)\b(?:\s+(?:dist(?:ance)?|away|depth))?",
     lambda m: f"{m.group('n')} {m.group('unit')} " + ("further back" if m.group("sign") == "+" else "closer"), ("+", "-"), True),
    # "half the distance", "the half of the distance", "halve its distance", "at half the distance"
    (r"\b(?:like\s+|about\s+|maybe\s+)?(?:the\s+)?(?:half\s+(?:of\s+)?|halve\s+)(?:the|its|their|her|his)\s+distance\b",
     "a lot closer", ("half", "halve"), True),
    (r"\b(?:like\s+|about\s+|maybe\s+)?(?:double|twice)\s+(?:the|its|their|her|his)\s+distance\b", "a lot further back", ("double", "twice"),
     True),
    # "timp el -5", "elev +10": the elevation keyword's short forms
    # (a number an elevation can be: "el 808" is the Spanish article and a drum machine; thirteenth stop)
    (r"\b(?:el|elev)\b\s*(?=[-+]?(?:[0-8]?\d|90)(?:\.\d+)?(?!\d|\.\d))", "elevation ", ("el",), True),
)


_CORRECTION = re.compile(SELF_CORRECTION[0][0])


@lru_cache(maxsize=None)
def _compiled(edit: bool):
    tables = NEGATED_PLACES + DISTANCE_WORDS + WORD_ORDER + MIRROR_WORDS + SWAP_WORDS + SIZE_ALONE
    return tuple((re.compile(p), r, t) for p, r, t, edit_only in tables if edit or not edit_only)


#: an edit that speaks of level and not of height: a bare "up" / "down" is a fader move
_LEVEL_WORDS = re.compile(r"\b(?:level|volume|louder|quieter|softer|gain|db|fader|loud|quiet)\b")
_HEIGHT_WORDS = re.compile(r"\b(?:height|elevation|elevated|above|below|overhead|ceiling|floor|high|low|higher|lower|degrees?|deg)\b")
_BARE_WAY = re.compile(r"(?<![a-z])(?P<size>a\s+(?:little|bit|touch|tad|hair)\s+|slightly\s+)(?P<way>up|down)\b(?!\s+(?:front|to|in|by|\d))")


def _kept_names(said: str, protected: frozenset[str]) -> str:
    """What a self-correction drops, less the track names it said ("keys left, no, right" is
    still about the keys): the words of ``protected`` stay, the rest become spaces."""
    return re.sub(r"[a-z0-9_']+|[^a-z0-9_']+", lambda m: m.group(0) if m.group(0) in protected else " ", said)


_HYPHENATED = re.compile(r"\b[a-z]+(?:-[a-z]+){1,3}\b")
_MORE_OF_TRACK = re.compile(r"(?:^|(?<=[,.;!?:]\s)|(?<=[,.;!?:]))\s*(?:(?:we\s+)?need\s+|give\s+me\s+|just\s+)?more\s+(?:of\s+)?"
                            r"(?:the\s+|that\s+|my\s+)?(?P<w>[a-z0-9']+)(?=\s*(?:$|[,.;!?]|(?:please|pls|plz)\b))")


def _initials(phrase: str) -> str:
    return "".join(w[0] for w in phrase.split("-"))


def idiom_words(text: str, edit: bool = False, protected: frozenset[str] = frozenset()) -> str:
    """``text`` with every table of this module applied (see the module docstring); a rewrite
    whose trigger is one of ``protected`` (the words of the session's track names) is skipped,
    and in an edit the size adjectives are read by their quantity (:func:`quantity_words`)."""
    if edit and any(t in text for t in ("no", "wait", "sorry", "scratch")):
        m = _CORRECTION.match(text)
        if m:
            text = _kept_names(m.group(0), protected) + text[m.end():]
    for pattern, replacement, triggers in _compiled(edit):
        if any(t in text for t in triggers) and not any(t.strip() in protected for t in triggers):
            text = pattern.sub(replacement, text)
    if protected and "-" in text:
        # "play-by-play" for the track "PBP": a hyphenated phrase said by its initials (thirteenth stop)
        text = _HYPHENATED.sub(lambda m: _initials(m.group(0)) if _initials(m.group(0)) in protected else m.group(0), text)
    if edit and protected and "more" in text:
        # "more cowbell pls": more of a track, said alone, is louder (thirteenth stop)
        text = _MORE_OF_TRACK.sub(lambda m: f"{m.group('w')} louder" if m.group("w") in protected else m.group(0), text)
    if edit and any(a in text for a in ("more", "too", "big", "small", "strong", "short", "broad", "near", "weak", "open")):
        text = quantity_words(text)
    if edit and ("up" in text or "down" in text) and _LEVEL_WORDS.search(text) and not _HEIGHT_WORDS.search(text):
        # "flute a little up in level, oboe a little down": the second "down" is the level's too
        text = _BARE_WAY.sub(lambda m: m.group("size") + ("louder" if m.group("way") == "up" else "quieter"), text)
    return text
