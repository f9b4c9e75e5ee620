"""Complaints: what a request says there is too much of, read as the opposite wish.

Holds
-----
* :class:`OpenIntent`: an open request kind (its name, the patterns that reveal it, what the
  agent's fallback does); :mod:`stase.agent.agent_loop` writes its open intents with it.
* :data:`COMPLAINTS` and :func:`complaint`: the ONE table of complaints ("the drums are too far
  away" wants them closer, "the keys sound too centred" wants them wider), rules as data in
  precedence order.  The agent loop reads it on the whole request (:class:`stase.agent.agent_loop.Agent`
  takes the complaint's words out before the parser and acts on the intent); the parser reads the
  same patterns as cues (:data:`COMPLAINT_STEPS`, :data:`PARSER_COMPLAINT_PATTERN`, the rule
  ``complaint`` of :data:`stase.agent.parser_rules.RULES`), so an edit sent straight to the
  conductor (:meth:`stase.agent.conductor.Conductor.edit`) moves the track the way the complaint
  asks instead of to the place its words name ("too far away" is no target of 12 m).
* ``OpenIntent.states``: the patterns that name a state with a verb ("the sitar sounds distant",
  :data:`STATE_VERB`): a complaint against a current plan (the agent; the parser's rule
  ``complaint_state``, edit only, :data:`PARSER_STATE_PATTERN`), a description in a new plan's
  prompt, and a wish after a wish word (:data:`WISH_WORDS`: "make the sitar sound distant").
* :data:`COMPLAINT_STEPS`: the direction of the step each complaint asks of the parser (a
  quantity and a sign; the size is the parser's default step, :data:`stase.agent.parser_rules.STEPS`).
* :func:`lowered`: the text as the patterns read it (lower case, one space between words).

A number with a unit in the complaint's clause is the target, not a complaint (:func:`complaint`;
the parser gets the same result from its precedence: a number beats a hedge).  A clause's start
is looked for at most :data:`_CLAUSE_LOOKBACK` characters back, so a text of ten thousand states
stays linear (round 8, which also added "too much in the middle" as too narrow).
"""
from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class OpenIntent:
    """An open request kind: the words that reveal it and what the fallback does (``doc``)."""

    name: str
    patterns: tuple[str, ...]
    doc: str
    #: patterns that name a state with a verb ("sounds distant", "is in my face"): a complaint in
    #: a request against a plan, but a description in a new plan's prompt ("the choir sounds
    #: distant, the organ behind me"), and a wish after a wish word ("make the sitar sound distant")
    states: tuple[str, ...] = ()


#: The verbs that name a state ("the sitar feels distant", "the keys are centred").
STATE_VERB = r"(?:feels?|sounds?|is|are|seems?|looks?|gets?)"
#: Words of a wish: a state said after one of them (at most four words before its verb) is what
#: the user wants, not a complaint ("make the sitar sound distant", "I'd like the keys to feel
#: centred", "the pad should sound distant").
WISH_WORDS = ("make", "makes", "making", "let", "lets", "want", "wants", "wanted", "like", "have", "get",
              "should", "could", "would", "can", "must", "need", "needs", "to", "keep", "sure")
_WISH_BEFORE = re.compile(rf"\b(?:{'|'.join(WISH_WORDS)})\b(?:\s+[a-z0-9_']+){{0,4}}\s+$")


#: Complaints: the state a request says there is too much of, so the wish is the opposite
#: ("the drums are too far away" wants them closer; the parser alone reads "far away" as the
#: target and sends them to 12 m).  Rules as data, in precedence order (first match wins).  The
#: agent reads them on the whole request before the parser (a complaint's words are then no cue);
#: the parser reads the same patterns as steps (:data:`COMPLAINT_STEPS`).  A request holding a
#: number is never read as a complaint (the number the user wrote is the target).
COMPLAINTS: tuple[OpenIntent, ...] = (
    OpenIntent("bigger_room", (r"\b(?:room|space|hall|venue|place) (?:is|sounds|feels|seems) (?:a (?:bit|little) |rather |quite |very |so |way )?"
                               r"(?:too )?(?:small|tiny|boxy|cramped|dead)\b",),
               "the room is too small: the next larger room"),
    OpenIntent("smaller_room", (r"\b(?:room|space|hall|venue|place) (?:is|sounds|feels|seems) (?:a (?:bit|little) |rather |quite |very |so |way )?"
                                r"(?:too )?(?:big|huge|large|cavernous|vast|enormous)\b",),
               "the room is too big: the next smaller room"),
    OpenIntent("give_room", (r"\btoo (?:close|near) (?:together|to each other|to one another)\b",
                             r"\btoo (?:bunched|clustered|cramped|crowded)\b"),
               "the named tracks are too close to each other: move them apart"),
    OpenIntent("wider", (r"\btoo (?:close|near) to (?:the )?(?:middle|centre|center)\b",
                         r"\btoo much (?:in|at|on|towards?) (?:the )?(?:middle|centre|center)\b",
                         r"\btoo (?:centred|centered|narrow|mono|central)\b",
                         r"\bless (?:narrow|mono|centred|centered)\b",
                         r"\b(?:bunched|piled|squashed|squeezed|crammed|stuck|huddled|clumped|crowded)(?: up)? "
                         r"(?:in|into|at|around|towards?) (?:the )?(?:middle|centre|center)\b"),
               "too narrow: spread the named tracks away from the centre",
               (rf"\b{STATE_VERB} (?:a (?:bit|little) |rather |quite |very |so |really |kind of )?(?:narrow|mono|centred|centered)\b",)),
    OpenIntent("narrower", (r"\btoo (?:wide|spread(?: out)?|scattered|panned|far (?:out|apart|left|right|to the (?:left|right|sides?)))\b",
                            r"\b(?:way|much|far) too wide\b", r"\bless (?:wide|spread(?: out)?)\b",
                            r"\b(?:closer|nearer) together\b"),
               "too wide: bring the named tracks towards the centre",
               (rf"\b{STATE_VERB} (?:a (?:bit|little) |rather |quite |very |so |really )?scattered\b",)),
    OpenIntent("closer", (r"\btoo (?:far(?: away| back| off)?|distant|remote)\b",
                          r"\bmiles away\b", r"\bless (?:distant|far away|remote)\b"),
               "too far: bring the named tracks closer",
               (rf"\b{STATE_VERB} (?:a (?:bit|little) |rather |quite |very |so |really |kind of )?"
                r"(?:distant|far away|far off|remote|miles away)\b",)),
    OpenIntent("further", (r"\btoo (?:close|near|upfront|up front|present|forward|in (?:my|your) face)\b",
                           r"\bless (?:in (?:my|your) face|close|near|upfront|up front|present)\b"),
               "too close: move the named tracks further away",
               (rf"\b{STATE_VERB} (?:a (?:bit|little) |rather |quite |very |so |really |way )?(?:right |too )?in (?:my|your) face\b",)),
)
_COMPLAINTS = tuple((i, tuple(re.compile(p) for p in i.patterns), tuple(re.compile(p) for p in i.states))
                    for i in COMPLAINTS)
#: A number with a unit ("3 m", "twenty degrees", "70%", "2 o'clock"): the request states a
#: target, so it is not a complaint ("the two violins are too close together" still is).
_NUMBER = re.compile(r"(?:\d+(?:[.,]\d+)?|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|"
                     r"fifteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|hundred|half a))"
                     r"\s*(?:%|°|percent\b|deg\w*|m\b|metres?\b|meters?\b|cm\b|centimet\w*|ft\b|feet\b|foot\b|"
                     r"inch\w*|db\b|decibels?\b|o'?clock\b|steps?\b)")


#: Where a clause ends, for the number check of :func:`complaint`.
_CLAUSE_BREAK = re.compile(r"[.;!?]|,(?! (?:\d|please))| and | but | while | then ")


def lowered(text: str) -> str:
    """``text`` lower-cased, with a typographic apostrophe as ``'`` and one space between words."""
    return " ".join(text.lower().replace("\u2019", "'").split())


def complaint(text: str) -> tuple[str, int, int] | None:
    """``(intent, start, end)`` of the first complaint in ``text`` (:data:`COMPLAINTS`; offsets
    into its lowered, whitespace-collapsed form), or ``None`` (none, or the request holds a number)."""
    said = lowered(text)
    for intent, patterns, states in _COMPLAINTS:
        found = [m for m in (p.search(said) for p in patterns) if m]
        for p in states:
            # a state said after a wish word is the wish ("make the sitar sound distant")
            found.extend(m for m in p.finditer(said) if not wish_before(said, m.start()))
        if found:
            m = min(found, key=lambda m: m.start())
            # the clause holding the complaint ("the sax is too far left, 20 degrees" is a target;
            # "the drums are too far away and the keys 40 degrees left" still a complaint)
            after = _CLAUSE_BREAK.search(said, m.end())
            clause = said[_clause_start(said, m.start()):after.start() if after else len(said)]
            return None if _NUMBER.search(clause) else (intent.name, m.start(), m.end())
    return None


def wish_before(text: str, at: int) -> bool:
    """Whether a wish word (:data:`WISH_WORDS`) stands at most four words before ``at`` in its
    clause of ``text`` ("make the choir sound like it's far away")."""
    return _WISH_BEFORE.search(text, _clause_start(text, at), at) is not None


#: How far back a clause's start is looked for (characters): a wish stands at most four words
#: before its state, so a longer clause changes no answer, and a text of ten thousand states
#: stays linear (round 8)
_CLAUSE_LOOKBACK = 400


def _clause_start(said: str, at: int) -> int:
    lo = max(0, at - _CLAUSE_LOOKBACK)
    starts = [b.end() for b in _CLAUSE_BREAK.finditer(said, lo, at)]
    return starts[-1] if starts else lo


#: The step each complaint asks of the parser: ``intent -> (quantity, sign)``; a complaint of the
#: room (``bigger_room`` / ``smaller_room``) is the agent's alone (no track moves).  "Too far left"
#: (``narrower`` said with a side) is a step towards the other side, so a number said for the
#: azimuth beside it still wins (:mod:`stase.agent.parser_rules`).
COMPLAINT_STEPS: dict[str, tuple[str, float]] = {
    "give_room": ("width_deg", 1.0), "wider": ("width_deg", 1.0), "narrower": ("width_deg", -1.0),
    "closer": ("distance_m", -1.0), "further": ("distance_m", 1.0),
}

#: The complaints the parser reads, as one alternation for its rule table: each intent's patterns
#: in a group named ``complaint_<intent>`` (the patterns' words are single-spaced, as
#: :func:`lowered` leaves a text).
PARSER_COMPLAINT_PATTERN = "|".join(
    f"(?P<complaint_{i.name}>{'|'.join(i.patterns)})" for i in COMPLAINTS if i.name in COMPLAINT_STEPS)
#: The states the parser reads in an edit, the same way (groups ``complaint_<intent>``), inside a
#: group ``key`` after an optional group ``wish`` (a wish word at most four words before: then
#: no complaint, :data:`WISH_WORDS`).
PARSER_STATE_PATTERN = (rf"(?:\b(?P<wish>{'|'.join(WISH_WORDS)})\b(?:\s++[a-z0-9_']++){{0,4}}?\s++)?(?P<key>"
                        + "|".join(f"(?P<complaint_{i.name}>{'|'.join(i.states)})"
                                   for i in COMPLAINTS if i.name in COMPLAINT_STEPS and i.states) + ")")


__all__ = ["COMPLAINTS", "COMPLAINT_STEPS", "PARSER_COMPLAINT_PATTERN", "PARSER_STATE_PATTERN", "STATE_VERB", "WISH_WORDS", "wish_before", "OpenIntent", "complaint", "lowered"]
