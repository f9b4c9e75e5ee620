"""Swaps, mirrors and the passes that run on an edit request only.

Holds
-----
* :func:`_find_swaps` ("swap / trade / flip the positions of A and B", one name for a pair, a pair
  said before the verb or after "with") and :func:`_find_crossed_places` ("A where B is, and B
  where A is", "A in B's spot"); :func:`_find_mirrors` ("mirror", "flip", "mirror everything
  except X", a mirror naming no track takes the one named before it) and :func:`_other_sides`
  ("put the harp on the other side").
* Edit-only passes over a :class:`~stase.agent.parser_types.ParseResult`, run by
  :func:`stase.agent.parser._parse_text` in this order when ``edit=True``:
  :func:`_complaints_give_way` (a complaint is the reason when a change of the same quantity is
  said for the same track), :func:`_moved_sides_give_way` (a vague side of a track another cue
  moves sideways is the move's reason), :func:`_mirrored_sides_give_way` (a side said beside a
  mirror is where the mirror takes the track), :func:`_swapped_sides_give_way` (a vague side of a
  swapped track is the swap's), :func:`_left_alone` (tracks after "leave" / "keep", or said to
  stay, leave a group's cue and mirror), :func:`_references_give_way` (a reference track keeps its
  place), :func:`_numbered_changes_win` (a change said with its number beats a plain step of the
  same quantity for the same tracks) and :func:`_one_track_width_gives_way`.
  Present-state blanking ("it drifted right") is a text pass:
  :func:`stase.agent.parser_text.blank_present_state`.
"""
from __future__ import annotations

import bisect
import re
from collections import Counter

from stase.agent.parser_rules import NUMBER, PRECEDENCE_NAMES
from stase.agent.parser_types import Mention, ParseResult
from stase.agent.parser_clauses import _LEAVE
from stase.agent.parser_names import object_mention
from stase.agent.parser_text import sentence_end, sentence_start


#: What a track does when it is left as it is, said after its name ("Harmony stays on the right",
#: "the shaker remains where it is", "bass can stay"): the sentence names it only as a reference
_STAYS_AFTER = re.compile(r"\s+(?:(?:can|should|will|must|may)\s+)?(?:stays?|staying|remains?|remaining)\b")
#: Where the sentence that names a track ends (a cue starting before it is that sentence's)
_SENTENCE_END = re.compile(r"[.;!?]")


def _left_alone(text: str, mentions: list[Mention], result: ParseResult) -> None:
    """In an edit, tracks named after "leave" / "keep" / "not" ("widen the strings a bit, leave the
    basses") are taken out of the cues and the mirrors given to a group; a cue of their own
    stays (round 8).  A track said to stay ("Harmony stays on the right") loses its own cue in
    that sentence too: the place said there is where it is, not a move (twelfth stop)."""
    if not any(w in text for w in ("leav", "keep", "not", "n't", "except", "stay", "remain")):
        return
    left = {t for mm in mentions if _LEAVE.search(text, max(0, mm.start - 30), mm.start) for t in mm.tracks}
    stays = [mm for mm in mentions if mm.tracks and _STAYS_AFTER.match(text, mm.end)]
    left |= {t for mm in stays for t in mm.tracks}
    if not left:
        return
    said_to_stay = []
    for mm in stays:
        end = _SENTENCE_END.search(text, mm.end)
        said_to_stay.append((mm.start, end.start() if end else len(text), set(mm.tracks)))
    kept = []
    for cue in result.cues:
        if any(start <= cue.start < end and set(cue.tracks) <= names for start, end, names in said_to_stay):
            continue
        if set(cue.tracks) & left and (not set(cue.tracks) <= left or " ... " in cue.text):
            # (a cue a list lent them, "not the sax, the keys louder", is no cue of their own)
            cue.tracks = [t for t in cue.tracks if t not in left]
        if cue.tracks:
            kept.append(cue)
    result.cues = kept
    mirrors = []
    for tracks, said in result.mirrors:
        if set(tracks) & left and not set(tracks) <= left:
            tracks = [t for t in tracks if t not in left]
        mirrors.append((tracks, said))
    result.mirrors = mirrors


#: Words before a track that make it the reference of another track's change, not its subject
#: ("a wash behind the acapella", "hear myself over the guitar", "back from the lead")
_REFERENCE_BEFORE = re.compile(r"\b(?:behind|over|above|under|underneath|below|beneath|beside|than|from|"
                               r"in\s+front\s+of|on\s+top\s+of|next\s+to|against|(?:closer|nearer|close|near)\s+to)"
                               r"\s+(?:the\s+|my\s+|our\s+|your\s+)?$")


def _references_give_way(text: str, mentions: list[Mention], result: ParseResult) -> None:
    """In an edit, a track named after "behind" / "over" / "than" / "from" ... is what another
    track is placed against ("pad stem further away, should be a wash behind the acapella"):
    where its sentence names another track that has a change of its own, the reference loses
    the cues given to it (twelfth stop).  An anchored cue ("just right of the piano") keeps
    its anchor; a track the request names elsewhere as a subject keeps its cues there.  Where the
    sentence names one other track, before the reference and with no change of its own, the
    change is that track's ("the brushing a tiny bit closer to the ear")."""
    if not any(w in text for w in ("behind", "over", "above", "under", "below", "beneath", "beside", "than",
                                   "from", "front", "top", "next", "against")):
        return
    ends = [0] + [m.end() for m in re.finditer(r"[.;!?]", text)]
    def sentence(p: int) -> int:
        return bisect.bisect_right(ends, p) - 1
    references = [mm for mm in mentions if mm.tracks and _REFERENCE_BEFORE.search(text, max(0, mm.start - 30), mm.start)]
    if not references:
        return
    subjects = [mm for mm in mentions if mm.tracks and mm not in references]
    kept = []
    for cue in result.cues:
        for ref in references:
            if not set(cue.tracks) & set(ref.tracks) or sentence(cue.start) != sentence(ref.start):
                continue
            in_sentence = [mm for mm in subjects if sentence(mm.start) == sentence(ref.start)
                           and not set(mm.tracks) & set(ref.tracks)]
            others = [mm for mm in in_sentence
                      if any(set(mm.tracks) & set(c.tracks) for c in result.cues if c is not cue)]
            own = [mm for mm in subjects if set(mm.tracks) & set(ref.tracks) and cue.start <= mm.start < cue.end]
            if not others and not own and len(in_sentence) == 1 and in_sentence[0].start < ref.start \
                    and set(cue.tracks) <= set(ref.tracks) and not any(set(c.tracks) & set(in_sentence[0].tracks)
                                                                       for c in result.cues):
                # "the brushing needs to come a tiny bit closer to the ear": the change is the one
                # track's the sentence names before its reference
                cue.tracks = list(in_sentence[0].tracks)
                continue
            if others and not own:
                cue.tracks = [t for t in cue.tracks if t not in ref.tracks]
                if " ... " in cue.text and all(any(t in c.tracks and c.kinds() == cue.kinds() for c in result.cues
                                                   if c is not cue) for t in cue.tracks):
                    # a change lent to "the shaker over the flute" as if it were a list, said again
                    # for the shaker alone: once
                    cue.tracks = []
        if cue.tracks:
            kept.append(cue)
    result.cues = kept


def _vague_sides_give_way(result: ParseResult, tracks: set[str], key: str = "azimuth_deg") -> None:
    """Drop the unnumbered ``key`` place (azimuth by default) of every cue that names only
    ``tracks`` (a swap, a mirror or another cue's move takes them there); a cue left with nothing
    goes."""
    if not tracks:
        return
    for cue in result.cues:
        if set(cue.tracks) <= tracks and key in cue.values \
                and cue.precedence.get(key) != PRECEDENCE_NAMES[NUMBER]:
            cue.values = {k: v for k, v in cue.values.items() if k != key}
            cue.edit_relative = {k: v for k, v in cue.edit_relative.items() if k != key}
            cue.precedence = {k: v for k, v in cue.precedence.items() if k != key}
    result.cues = [c for c in result.cues if c.values or c.relative or c.edit_relative or c.spread_deg is not None
                   or c.anchor]


def _swapped_sides_give_way(result: ParseResult) -> None:
    """In an edit, a vague side said for a track of a swap ("Sopran and Alt must be changed, the
    conductor wants the Alt on the left") is where the swap takes it, not a place of its own
    (round 8, as :func:`_mirrored_sides_give_way` for mirrors); a number still counts."""
    swapped = {t for a, b, _ in result.swaps for t in (a, b)}
    _vague_sides_give_way(result, swapped)


def _moved_sides_give_way(result: ParseResult) -> None:
    """In an edit, a vague place said in one cue of a track that another cue moves the same way
    ("the violas sit outside right. Please move the Vla a further 20 degrees to the right", "the
    descant ought to hover just above ... raise the descant ... perhaps ten degrees") is where it
    is or the move's reason, not a place of its own: the move counts (thirteenth stop).  Azimuth
    and elevation; a number still counts."""
    if len(result.cues) < 2:
        return
    for key in ("azimuth_deg", "elevation_deg"):
        moved = {t for cue in result.cues if (key in cue.relative or key in cue.edit_relative) and key not in cue.values
                 for t in cue.tracks}
        _vague_sides_give_way(result, moved, key)


#: A number with its unit in a cue's words: the change said exactly
_SAID_AMOUNT = re.compile(r"\d+(?:\.\d+)?\s*(?:degrees?|degs?|°|db\b|decibels?|m\b|metres?|meters?|cm\b|ft\b|feet|foot|inch(?:es)?)")
#: Relative quantities that are one change ("further" may be a scale or metres)
_CHANGE_OF = {"distance_scale": "distance", "distance_m": "distance"}


def _numbered_changes_win(result: ParseResult) -> None:
    """In an edit, a change said with its number ("bring the four string parts in by 10 degrees
    each") beats a plain step of the same quantity said for the same tracks elsewhere ("the string
    section should be narrower"): the step is the request's intent, the number its size
    (thirteenth stop)."""
    if len(result.cues) < 2:
        return
    numbered: dict[str, set[str]] = {}
    for cue in result.cues:
        if cue.relative and _SAID_AMOUNT.search(cue.text):
            for q in cue.relative:
                numbered.setdefault(_CHANGE_OF.get(q, q), set()).update(cue.tracks)
    if not numbered:
        return
    for cue in result.cues:
        if _SAID_AMOUNT.search(cue.text) or not cue.tracks:
            continue
        drop = [q for q in cue.relative if set(cue.tracks) <= numbered.get(_CHANGE_OF.get(q, q), set())]
        if drop:
            cue.relative = {k: v for k, v in cue.relative.items() if k not in drop}
            cue.complaint = tuple(c for c in cue.complaint if c not in drop)
    result.cues = [c for c in result.cues if c.values or c.relative or c.edit_relative
                   or c.spread_deg is not None or c.anchor]


def _mirrored_sides_give_way(result: ParseResult) -> None:
    """In an edit, a side said beside a mirror of the same track ("organ belongs on the right,
    mirror it over", "flip track 4 to the left side") is where the mirror takes it, not a place
    of its own: the mirror keeps the track's distance from the centre (round 7).  A number
    ("mirror it, 30 degrees right") still counts."""
    mirrored = {t for tracks, _ in result.mirrors for t in tracks}
    _vague_sides_give_way(result, mirrored)


_SAME_QUANTITY = {"distance_scale": ("distance_scale", "distance_m"), "distance_m": ("distance_scale", "distance_m"),
                  "width_deg": ("width_deg", "azimuth_deg"), "azimuth_deg": ("azimuth_deg", "width_deg"),
                  "elevation_deg": ("elevation_deg",), "gain_db": ("gain_db",)}


def _complaints_give_way(result: ParseResult) -> None:
    """In an edit, a complaint's step ("brass is too narrow") gives way to a change of the same
    quantity said for the same track elsewhere in the request ("widen horns and trumpets 5 degrees
    each side"): the complaint is the reason, the change the order (round 7; within one clause
    :func:`stase.agent.parser_cues._combine` does the same)."""
    if not any(c.complaint for c in result.cues):
        return
    # per track, how many cues say each quantity (one pass: a request of ten thousand complaints
    # stays linear, round 8); a cue's own keys are taken off again for its own question
    counts: dict[str, Counter] = {}
    for d in result.cues:
        keys = set((*d.relative, *d.edit_relative, *d.values))
        for t in set(d.tracks):
            counts.setdefault(t, Counter()).update(keys)
    kept = []
    for cue in result.cues:
        if cue.complaint:
            own = set((*cue.relative, *cue.edit_relative, *cue.values))
            said = {k for t in set(cue.tracks) for k, n in counts.get(t, {}).items() if n > (k in own)}
            dropped = [q for q in cue.complaint if said & set(_SAME_QUANTITY.get(q, (q,)))]
            if "reason" in cue.complaint and said:   # "buried, bring her closer": the reason for that change
                dropped = list(cue.complaint)
            if dropped:
                cue.relative = {k: v for k, v in cue.relative.items() if k not in dropped}
                cue.complaint = tuple(q for q in cue.complaint if q not in dropped)
                if not (cue.relative or cue.values or cue.edit_relative or cue.spread_deg is not None or cue.anchor):
                    continue
        kept.append(cue)
    result.cues = kept


def _one_track_width_gives_way(result: ParseResult) -> None:
    """In an edit, a width step said in the same cue as a side change of one track ("gtr2 way
    further right, can't hear any spread") is the reason for that move: one track has no width of
    its own beside the side it is moved to (twelfth stop; a width step alone still moves it away
    from the centre)."""
    for cue in result.cues:
        if len(set(cue.tracks)) == 1 and "width_deg" in cue.edit_relative and cue.spread_deg is not None \
                and ("azimuth_deg" in cue.relative or "azimuth_deg" in cue.values):
            cue.edit_relative = {k: v for k, v in cue.edit_relative.items() if k != "width_deg"}
            cue.spread_deg = None


_SENTENCE = re.compile(r"[^.;!?]+")
#: the swap verbs, inflected ("swapped", "switching", "traded"): "the keys and the sax, swapped"
_SWAP_VERB = (r"swap(?:s|ped|ping)?|switch(?:es|ed|ing)?|exchang(?:e|es|ed|ing)|trad(?:e|es|ed|ing)"
              r"|interchang(?:e|es|ed|ing)|transpos(?:e|es|ed|ing)")   # round 12: "transpose A and B"
_SWAP_WORD = re.compile(rf"\b({_SWAP_VERB}|(?:flip|reverse)\s+(?:the\s+)?(?:positions|places|spots|seats)\s+of)\b[^.;!?]*")
#: a swap said after its pair ("the sax and the keys trade places", "can the rhodes and the clav
#: swap over", "put the horns where the strings are and vice versa")
#: ("the clav and wurli should change places": "change" only with a word of place, round 6; a
#: partner after "with" belongs to the pair: "the clav could swap places with the wurli")
_SWAP_PLACES = re.compile(rf"\b(?:({_SWAP_VERB})\s+(places|sides|positions|spots|seats|over|round|around)"
                          r"|chang(?:e|es|ed|ing)\s+(?:places|sides|positions|spots|seats)"
                          r"|(?:swap(?:ped)?|switch(?:ed)?|interchanged|exchanged|transposed)(?=\s*(?:(?:please|pls|plz|thanks|thx)\s*)?(?:[.;!?]|$))"
                          r"|(?:and\s+)?vice\s+versa"
                          r"|each\s+(?:one\s+)?(?:where|to\s+where|in\s+the\s+(?:place|spot)\s+where)\s+the\s+other(?:\s+one)?\s+(?:is|was))\b")
_WITH = re.compile(r"\s+with\s+")
_PRONOUN_PAIR = re.compile(r"\s+(?:them|em|'em|those|these|the\s+two|both|the\s+pair|their)\b|\s*(?:please|pls|plz)?\s*(?:[.;!?]|$)")
_MIRROR_WORD = re.compile(r"\b(mirror(?:ed)?|flip(?:ped)?)\b(?!\s+(?:the\s+)?(?:positions|places|spots|seats)\s+of\b)[^.;!?,]*")
#: a state word ("mirrored", "flipped") asks for a mirror only after a word that asks for a state
#: ("ought to be mirrored", "try the whole song flipped"; round 12); "polarity flipped" is no mirror
_ASKED_STATE = re.compile(r"\b(?:be|get|gets|got|need|needs|want|wants|wanted|try|hear|have|had)\b(?![^.;!?]*\b(?:polarity|phase)\b)")
#: "put the harp on the other side": a mirror of the tracks named before it in its clause
_OTHER_SIDE = re.compile(r"\b(?:to|on|onto|over\s+to|across\s+to|just)\s+the\s+(?:opposite|other)\s+side\b(?!\s+of\b)")
_CLAUSE_PUNCTUATION = re.compile(r"[,.;!?]")


def _mentions_in(mentions: list[Mention], starts: list[int], lo: int, hi: int) -> list[Mention]:
    """The mentions starting in ``[lo, hi)``; ``starts`` are the (sorted) mention starts."""
    return mentions[bisect.bisect_left(starts, lo):bisect.bisect_left(starts, hi)]


def _find_swaps(text: str, mentions: list[Mention], result: ParseResult) -> None:
    if not any(word in text for word in ("swap", "switch", "exchang", "trad", "flip", "reverse", "vice", "chang",
                                         "interchang", "transpos", "the other")):
        return
    starts = [mm.start for mm in mentions]
    for m in _SWAP_WORD.finditer(text):
        inside = [mm for mm in _mentions_in(mentions, starts, m.start(), m.end()) if mm.tracks]
        if len(inside) < 2 and not (inside and len(inside[0].tracks) == 2):
            # the pair said before the verb: "sitar swaps with the flute", "the toms are the wrong
            # way round, swap em" (round 6): the tracks named earlier in the sentence (or the one before)
            lo = sentence_start(text, m.start())
            if _PRONOUN_PAIR.match(text, m.end(1)) or (len(inside) == 1 and _WITH.match(text, m.end(1))):
                if lo > 0 and not _mentions_in(mentions, starts, lo, m.start()):
                    lo = sentence_start(text, lo - 1)
                before = [mm for mm in _mentions_in(mentions, starts, lo, m.start()) if mm.tracks]
                subjects = [mm for mm in before if not object_mention(text, mm.start)]
                if len(subjects) >= 2 and not inside:
                    # "Ben's up on the landing and Alice is down at the foot of the stairs, so swap the
                    # two of them": the pair are the subjects, not a preposition's object (thirteenth stop)
                    before = subjects
                inside = before[-1:] + inside if inside else before[-2:]
        if len(inside) >= 2:
            a, b = inside[0].tracks[0], inside[1].tracks[0]
            if a != b:
                result.swaps.append((a, b, m.group(0).strip()))
        elif len(inside) == 1 and len(inside[0].tracks) == 2:
            # one name for a pair ("swap the guitars", "switch the overheads"): the pair trades places
            a, b = inside[0].tracks
            result.swaps.append((a, b, m.group(0).strip()))
    # "the sax and the keys trade places": the sentence up to its last such phrase.  One sentence
    # at a time, so text without sentence punctuation is scanned once (a leading [^.;!?]* in one
    # pattern would rescan it from every position).
    if not any(word in text for word in ("places", "sides", "positions", "spots", "seats", "over", "round",
                                         "vice", "swap", "switch", "interchanged", "exchanged", "transposed",
                                         "the other")):
        return
    for sentence in _SENTENCE.finditer(text):
        phrases = list(_SWAP_PLACES.finditer(text, sentence.start(), sentence.end()))
        if not phrases:
            continue
        lo, hi = sentence.start(), phrases[-1].end()
        with_ = _WITH.match(text, hi)
        if with_ is not None:   # "... swap places with the wurli": the partner said after "with"
            partner = [mm for mm in _mentions_in(mentions, starts, with_.end(), sentence.end()) if mm.tracks]
            if partner and partner[0].start - with_.end() <= len("the "):
                hi = partner[0].end
        inside = [mm for mm in _mentions_in(mentions, starts, lo, hi) if mm.tracks]
        if len(inside) >= 2 and not result.swaps:
            result.swaps.append((inside[0].tracks[0], inside[1].tracks[0], text[lo:hi].strip()))
        elif len(inside) == 1 and len(inside[0].tracks) == 2 and not result.swaps:
            result.swaps.append((*inside[0].tracks, text[lo:hi].strip()))   # "the toms swap over"
        elif len(inside) == 1 and len(inside[0].tracks) == 1 and phrases[-1].group().endswith("sides") \
                and not _WITH.match(text, phrases[-1].end()):
            # one track that "changes / switches sides" has no partner: it goes to its mirror image
            result.mirrors.append((list(inside[0].tracks), text[inside[0].start:hi].strip()))


#: "A where B is ... B where A is", "A in B's spot and B in A's": each of a pair sent to the
#: other's place is a swap (issue 16, round 5)
_PLACE_OF = re.compile(r"\bwhere\b|'s?\b|\b(?:spot|place|position|seat)s?\b")


def _find_crossed_places(text: str, mentions: list[Mention], result: ParseResult) -> None:
    """A sentence that names two tracks in the order A B B A and sends them to each other's
    place ("where ... is", "'s spot") swaps them."""
    if result.swaps or len(mentions) < 4 or not ("where" in text or "'" in text):
        return
    starts = [mm.start for mm in mentions]
    for sentence in _SENTENCE.finditer(text):
        inside = [mm for mm in _mentions_in(mentions, starts, sentence.start(), sentence.end()) if mm.tracks]
        if len(inside) != 4:
            continue
        # a name said once in full and once short ("the mic'd acoustic ... the acoustic") is the
        # track both name
        first = set(inside[0].tracks) & set(inside[3].tracks)
        second = set(inside[1].tracks) & set(inside[2].tracks)
        if len(first) == 2 and len(second) == 1:
            first -= second
        if len(second) == 2 and len(first) == 1:
            second -= first
        if len(first) != 1 or len(second) != 1:
            continue
        (a,), (b,) = first, second
        between = text[inside[0].end:inside[3].end]
        if a != b and len(_PLACE_OF.findall(between)) >= 2:
            result.swaps.append((a, b, text[inside[0].start:inside[3].end].strip()))
            return


#: "mirror everything except the vox": the tracks named after it are left out (round 7)
_EXCEPT = re.compile(r"\b(?:except(?:\s+for)?|but\s+not|apart\s+from|other\s+than|besides|bar|save\s+for|not"
                     r"|(?:but\s+)?(?:keep(?:ing)?|leav(?:e|ing)|hold(?:ing)?)|without|excluding)\b")   # round 8: "but keep the pad"
#: the sides themselves traded ("swap every left and right", "reverse left and right"): a mirror
#: of the whole mix (round 12)
_LEFT_AND_RIGHT_TRADE = re.compile(r"\b(?:swap|switch|flip|revers(?:e|ed)|invert|exchange|trade)\s+(?:every|all(?:\s+the)?|the)?\s*"
                                   r"lefts?\s+(?:and|&|with|for)\s+(?:the\s+)?rights?\b")
#: a mirror of the whole mix ("mirror the mix", "flip everything")
_WHOLE_MIX = re.compile(r"\b(?:everything|every\s+track|all|mix|whole|entire|panning|stage|scene|session|band)\b")


#: a bracketed list right after a mirror's words, in its sentence ("..., please (glock and snare)")
_BRACKETED = re.compile(r"[^.;!?()]{0,20}?\(([^()]{1,200})\)")


#: Only a list join between two named tracks ("the leader and her guitar", "keys, bass & drums")
_LISTED_BEFORE = re.compile(r"\s*(?:,\s*|\band\b|&|\bplus\b)?\s*(?:(?:the|her|his|their|my|our|its|both)\s+)*")


def _find_mirrors(text: str, mentions: list[Mention], result: ParseResult, all_tracks: list[str] = ()) -> None:
    starts = [mm.start for mm in mentions]
    spans = []
    if "mirror" in text or "flip" in text:
        for m in _MIRROR_WORD.finditer(text):
            if m.group(1) in ("mirrored", "flipped") and not _ASKED_STATE.search(text, max(0, m.start() - 40), m.start()):
                continue   # "we set them up mirrored by mistake" says how it is, not what to do
            said = m.group(0)
            cut = _EXCEPT.search(said)
            hi = m.start() + cut.start() if cut else m.end()
            inside = [t for mm in _mentions_in(mentions, starts, m.start(), hi) for t in mm.tracks]
            if inside and not cut:
                # "mirror the keys, bass and drums": the list goes on past the comma (thirteenth stop)
                k = bisect.bisect_left(starts, hi)
                last = max(mm.end for mm in _mentions_in(mentions, starts, m.start(), hi))
                while k < len(mentions) and _LISTED_BEFORE.fullmatch(text, last, mentions[k].start):
                    inside += [t for t in mentions[k].tracks if t not in inside]
                    last = mentions[k].end
                    k += 1
            if cut:   # "mirror everything except trk 2": every track but those named after "except"
                left_out = {t for mm in _mentions_in(mentions, starts, hi, m.end()) for t in mm.tracks}
                inside = [t for t in (inside or all_tracks) if t not in left_out]
            elif not inside and not _WHOLE_MIX.search(said):
                # "organ belongs on the right, mirror it over", "..., mirror image": the tracks
                # named before it in its sentence (round 7); with none named, the whole mix
                lo = sentence_start(text, m.start())
                before = [mm for mm in _mentions_in(mentions, starts, lo, m.start()) if mm.tracks] \
                    or [mm for mm in _mentions_in(mentions, starts, 0, lo) if mm.tracks]
                # (none in its sentence: the track the sentences before it named, "Fue is on the
                # reverse side. Please mirror."; twelfth stop)
                inside = list(before[-1].tracks) if before else []
                k = len(before) - 1
                while k > 0 and _LISTED_BEFORE.fullmatch(text, before[k - 1].end, before[k].start):
                    # "worship leader and her guitar ought to be mirrored": the whole list (thirteenth stop)
                    k -= 1
                    inside = list(dict.fromkeys(list(before[k].tracks) + inside))
                if inside and any(set(inside) == set(t) for t, _ in result.mirrors):
                    continue   # "flip the keys to the right side, mirror image": one mirror
            bracket = _BRACKETED.match(text, m.end())
            if bracket and not cut:
                # "mirror-image the percussion, please (glock and snare)": the brackets say which
                named = [t for mm in _mentions_in(mentions, starts, bracket.start(1), bracket.end(1)) for t in mm.tracks]
                if named:
                    inside = list(dict.fromkeys(named))
            result.mirrors.append((inside, said.strip()))
            spans.append(m.span())
    for m in _LEFT_AND_RIGHT_TRADE.finditer(text):
        # "swap every left and right", "reverse left and right": the whole mix (round 12)
        if not any(a <= m.start() < z for a, z in spans):
            result.mirrors.append(([], m.group(0).strip()))
            spans.append(m.span())
    _other_sides(text, mentions, starts, spans, result)
    if len(result.mirrors) > 1:
        # a track mirrored in two phrases of one request ("the brass is seated on the opposite
        # side ..., so the whole brass section needs mirrored") is mirrored once (round 8)
        if any(not tracks for tracks, _ in result.mirrors):
            result.mirrors = [next(m for m in result.mirrors if not m[0])]
        else:
            done: set[str] = set()
            kept = []
            for tracks, said in result.mirrors:
                rest = [t for t in tracks if t not in done]
                done.update(rest)
                if rest:
                    kept.append((rest, said))
            result.mirrors = kept


#: Words that make "the other side" on its own a mirror ("same amount, just the other side")
_MIRROR_ONLY = re.compile(r"\b(?:same\s+(?:amount|angle|distance|spot|degrees?|width|offset)|just|instead|mirror(?:ed)?)\b")


def _other_sides(text: str, mentions: list[Mention], starts: list[int], spans: list, result: ParseResult) -> None:
    """Mirrors said as "to / on the other (opposite) side" (part of :func:`_find_mirrors`)."""
    if "side" in text and ("other" in text or "opposite" in text):
        stops = [p.start() for p in _CLAUSE_PUNCTUATION.finditer(text)]
        span_starts = [a for a, _ in spans]
        previous = 0   # the tracks named since the last break or the last such phrase
        for m in _OTHER_SIDE.finditer(text):
            k = bisect.bisect_right(span_starts, m.start()) - 1
            if k >= 0 and m.start() < spans[k][1]:
                continue   # "flip the piano to the other side": one mirror
            k = bisect.bisect_left(stops, m.start())
            lo = max(stops[k - 1] + 1 if k > 0 else 0, previous)
            previous = m.end()
            inside = [t for mm in _mentions_in(mentions, starts, lo, m.start()) for t in mm.tracks]
            if not inside and not result.mirrors:
                # "the arp should be on the left now. same amount, just the other side": a sentence
                # that says only that takes the track named before it (thirteenth stop)
                begin, stop = sentence_start(text, m.start()), sentence_end(text, m.end())
                if _MIRROR_ONLY.search(text, begin, stop) and not _mentions_in(mentions, starts, begin, stop):
                    before = [mm for mm in _mentions_in(mentions, starts, 0, begin) if mm.tracks]
                    inside = list(before[-1].tracks) if before else []
            if inside and not any(set(inside) == set(t) for t, _ in result.mirrors):
                # (the same tracks mirrored in two phrases are mirrored once: round 8)
                result.mirrors.append((inside, text[lo:m.end()].strip()))
