"""Deterministic parser for explicit spatial cues in English prompts.

Module map of the parser package (issue 16 code health; names other modules and tests import
from here stay importable from here)
------------------------------------------------------------------------------------------------
* this module: the entry points :func:`parse_prompt`, :class:`ParseResult`,
  :func:`check_prompt_text`, :data:`MAX_PROMPT_CHARS`, :func:`parse_music` (tempo, key, bars) and
  the order of the passes (:func:`_parse_text`).
* :mod:`stase.agent.parser_types`: the records :class:`Cue`, :class:`Mention`, :class:`ParseResult`.
* :mod:`stase.agent.parser_mentions`: mention finding and track resolution
  (:func:`find_mentions`, :data:`PROSE_SKIP`, track-name spans, the residual words).
* :mod:`stase.agent.parser_cues`: clause breaks, the expression scanner and cue combination
  (:func:`stase.agent.parser_cues._combine`: the precedence between readings).
* :mod:`stase.agent.parser_clauses`: clauses -> tracks, lists, absent instruments, anchors,
  whole-plan values.
* :mod:`stase.agent.parser_edits`: swaps, crossed places, mirrors and the edit-only passes
  (complaints give way, mirrored and swapped sides, "leave X").
* :mod:`stase.agent.parser_rules` (the rule table, re-exporting :mod:`~stase.agent.parser_phrases`,
  :mod:`~stase.agent.parser_values`, :mod:`~stase.agent.parser_text`,
  :mod:`~stase.agent.parser_spelling`), and the vocabularies :mod:`stase.agent.parser_vocabulary`,
  :mod:`stase.agent.parser_names`, :mod:`stase.agent.parser_idioms`,
  :mod:`stase.agent.parser_complaints`.

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
  names no track standing before a cue is an absent instrument (:func:`stase.agent.parser_clauses._take_unplaced_word`);
  a cue said before a list of tracks is the whole list's (:func:`stase.agent.parser_clauses._join_lists`).
* Swaps ("swap / trade / flip the positions of A and B", one name for a pair: "swap the
  guitars", or said after the pair: "A and B swap over", "put A where B is and vice versa", or as
  crossed places: "A where B is, and B where A is", "A in B's spot and B in A's":
  :func:`stase.agent.parser_edits._find_crossed_places`) and mirrors ("mirror", "flip", "put the harp on the other side").
  A possessive names its track ("the tpt's spot").
* Round 6 (issue 16): complaints are directions, read from the table the agent reads too
  (:mod:`stase.agent.parser_complaints`: "too far away" is a step closer, never 12 m; a state said
  with a verb, "the sitar sounds distant", only when ``parse_prompt(..., edit=True)``, the
  conductor's edit path); where a track is now ("it drifted right", "feels like they're on the
  ceiling", "the wrong way round") is blanked in an edit (:func:`stase.agent.parser_rules.blank_present_state`);
  "change places", inflected swap verbs, a partner after "with" and a pair said before the verb
  ("sitar swaps with the flute", "the toms ..., swap em"); one track that "changes sides" is
  mirrored; a word that finds no track names its kin (:func:`stase.agent.parser_mentions._kin_tracks`: "tenor" -> "Tenor
  Sax", "basses" -> "Bass", "bass" -> a double bass); "+" joins a list; "acoustic" at the end of
  a noun phrase is the instrument (:data:`stase.agent.parser_mentions.NOUN_AT_PHRASE_END`); "the mic track" names the one
  track holding "mic"; an alias phrase ending in "in" / "out" before a determiner is prose ("the
  kick in the dead centre"); a hedged place beside a step of the same quantity is the step in an
  edit ("drop it down a little, below ear height") and the place in a new plan.
* Round 7 (issue 16): the edit vocabulary as data (:mod:`stase.agent.parser_vocabulary`, whose
  docstring maps how a request becomes a change and where each stage can go wrong): one size
  table, direction synonyms, negations as the opposite step, "track 4" of a numbered session,
  drum parts ("the overheads" are "OH L" / "OH R", not the kit: :func:`stase.agent.parser_vocabulary.part_tracks`),
  ordinals ("the 2nd violin" is "Vln 2"), all rewritten before the rules run.  In an edit a
  complaint is the reason when the request says a change of the same quantity for the same
  track (:func:`stase.agent.parser_edits._complaints_give_way`; "buried" / "getting lost" give way to any change), a side
  said beside a mirror is where the mirror takes the track (:func:`stase.agent.parser_edits._mirrored_sides_give_way`),
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
searches (:class:`stase.agent.parser_rules.Vocabulary`); what depends on a word alone (its alias, its close spelling,
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

import gc
import re
from contextlib import contextmanager
from operator import attrgetter, itemgetter
from typing import Any

from stase.core.errors import InputError
from stase.core.placement import MAX_PROMPT_CHARS

# The longest prompt accepted (characters) is stase.core.placement.MAX_PROMPT_CHARS, the one limit the
# daemon also checks at its boundary: it bounds the time a parse can hold the interpreter.

from stase.agent.lexicon import Lexicon, get_lexicon, normalise_words
from stase.agent.parser_vocabulary import canonical_words, daw_number_words, glued_name_words, ordinal_words, part_words, track_number_words
from stase.agent.parser_names import choir_roles, numbered_list_words
from stase.agent.parser_rules import (  # the rule table and phrase tables live there
    DIAGONAL_DEG, DISTANCE_WORDS_M, FEET_TO_M, HEDGES, NAMED, NUMBER, HEDGED, OF_CENTRE_DEG, PLAIN_SIDE_DEG,
    PLACE_FILLER, PRECEDENCE_NAMES, REAR_DIAGONAL_DEG, RULES, STEPS, Rule, Vocabulary, blank_present_state, correct_spelling,
    normalise_text, number)
from stase.agent.parser_rules import _SMALL_NUMBERS
from stase.agent.parser_types import Cue, Mention, ParseResult
from stase.agent.parser_mentions import (NOUN_AT_PHRASE_END, PROSE_SKIP, _WORD, _residual, _track_name_spans,
    _word_spans, _words_outside, find_mentions)
from stase.agent.parser_cues import _CLAUSE_BREAK, _clause_breaks, _scan_expressions
from stase.agent.parser_clauses import _cues_of_clauses
from stase.agent.parser_edits import (_complaints_give_way, _moved_sides_give_way, _numbered_changes_win, _find_crossed_places, _find_mirrors, _find_swaps,
    _left_alone, _mirrored_sides_give_way, _one_track_width_gives_way, _references_give_way,
    _swapped_sides_give_way)

#: The parser's entry points, and the names it re-exports from the modules it was split into
#: (the rule-table names it has always offered, and the private helpers the tests read).
__all__ = ["Cue", "DIAGONAL_DEG", "DISTANCE_WORDS_M", "FEET_TO_M", "HEDGED", "HEDGES", "MAX_PROMPT_CHARS",
    "Mention", "NAMED", "NOUN_AT_PHRASE_END", "NUMBER", "OF_CENTRE_DEG", "PLACE_FILLER", "PLAIN_SIDE_DEG",
    "PRECEDENCE_NAMES", "PROSE_SKIP", "ParseResult", "REAR_DIAGONAL_DEG", "RULES", "Rule", "STEPS",
    "Vocabulary", "_CLAUSE_BREAK", "_SMALL_NUMBERS", "_WORD", "_clause_breaks", "_residual", "_word_spans",
    "_words_outside", "blank_present_state", "check_prompt_text", "correct_spelling", "find_mentions",
    "normalise_text", "number", "parse_music", "parse_prompt"]


#: Older name of the rule table (tests and tools read it).
_RULES = RULES
_Vocabulary = Vocabulary


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
    # "gtr1" / "q12 rain l" is the track "Gtr1" / "Q12 Rain L", whose words are split at the digits
    text = glued_name_words(text, [normalise_words(t) for t in tracks])
    # "track 4" of a numbered session is that track's name ("04 gtr")
    text = track_number_words(text, tracks, lambda t: " ".join(normalise_words(t)))
    # "the fourth track", "switch 2 and 6" in a session of numbered tracks
    text = daw_number_words(text, tracks, lambda t: " ".join(normalise_words(t)))
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
        _moved_sides_give_way(result)
        _mirrored_sides_give_way(result)
        _swapped_sides_give_way(result)
        _left_alone(text, mentions, result)
        _references_give_way(text, mentions, result)
        _numbered_changes_win(result)
        _one_track_width_gives_way(result)
    return result
