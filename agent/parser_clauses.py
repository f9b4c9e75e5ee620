"""Clause splitting and attachment: which track each clause's cues go to.

Holds
-----
* :func:`_cues_of_clauses`: the text cut into clauses (never inside an expression: "front and
  centre"); a clause's cues go to its mentions (the nearest preceding one where there are
  several, a pronoun to the clause subject: :func:`stase.agent.parser_names.object_mention`); a
  clause with cues and no mention lends them to its neighbour; "the same" copies the cue before.
* :func:`_join_lists`: a cue said before or after a bare list of tracks is the whole list's
  ("the guitar and the keys on the left"; "+" and "&" join a list too).
* :func:`_take_unplaced_word`: a word naming no track standing before a cue is an absent
  instrument ("the didgeridoo behind me"), unless it is filler
  (:data:`stase.agent.parser_rules.PLACE_FILLER`).
* :func:`_take_anchors`: anchors ("just right of the piano") keep the track they are relative to.
* :func:`_take_plan_values`: whole-plan wetness ("drenched in reverb" in a clause naming no track)
  goes to ``ParseResult.plan_values``.
* The clause words: :data:`_COPULA`, :data:`_LEAVE` ("leave / keep X"), :data:`_PRONOUN_SUBJECT`,
  :data:`_SAME_AGAIN`, :data:`_LIST_JOINS`, :data:`_LIST_LEAD`.
"""
from __future__ import annotations

import bisect
import re
from itertools import repeat
from operator import itemgetter, lt, sub

from stase.agent.lexicon import Lexicon
from stase.agent.parser_names import object_mention
from stase.agent.parser_rules import PLACE_FILLER
from stase.agent.parser_types import Cue, Mention, ParseResult
from stase.agent.parser_mentions import _NUMBER_WORDS, _ORDER_VERBS, _WORD
from stase.agent.parser_cues import _attach, _clause_breaks, _combine, _one_cue


def _cues_of_clauses(text: str, exprs: list[tuple[int, int, dict]], mentions: list[Mention],
                     absent: list[Mention], result: ParseResult, lexicon: Lexicon) -> None:
    """Cut the text into clauses and give each clause's expressions to its mentions (or lend them
    to a neighbour's), appending to ``result.cues``, ``.unknown`` and ``.orphans``."""
    # clauses: cut at punctuation and conjunctions, except inside an expression ("front and centre")
    breaks = _clause_breaks(text)
    cuts = []
    if breaks is not None:
        expr_starts = list(map(itemgetter(0), exprs))
        expr_ends = list(map(itemgetter(1), exprs))

        def inside_expression(p: int) -> bool:
            # expressions do not overlap: only the last one starting before ``p`` can hold it
            k = bisect.bisect_left(expr_starts, p) - 1
            return k >= 0 and p < expr_ends[k]

        cuts = [(m.start(), m.end(), m.group(0).strip()) for m in breaks.finditer(text)
                if not (inside_expression(m.start()) or inside_expression(m.end()))]
    # clause k runs from clause_starts[k] to clause_ends[k] and follows the word joins[k]
    clause_starts = [0] + [e for _, e, _ in cuts]   # strictly increasing
    clause_ends = [s for s, _, _ in cuts] + [len(text)]
    joins = [""] + [word for _, _, word in cuts]
    # only clauses holding a mention or an expression take part in what follows: an empty one
    # lends, borrows and shares nothing, so a text of 25,000 "and"s costs no work per clause
    clauses: dict[int, dict] = {}

    def add_to_clauses(items: list, positions: list[int], key: str) -> None:
        """Each item goes to the clause holding its position, else to the clause starting
        nearest to it (the first on a tie); the bisections run in C."""
        after = map(bisect.bisect_right, repeat(clause_starts), positions)
        for item, p, k in zip(items, positions, after):
            k -= 1   # clause_starts[0] == 0 <= p: k >= 0
            if p >= clause_ends[k]:
                near = [j for j in (k, k + 1) if j < len(clause_starts)]
                k = min(near, key=lambda j: (abs(clause_starts[j] - p), j))
            c = clauses.get(k)
            if c is None:
                c = clauses[k] = {"index": k, "start": clause_starts[k], "end": clause_ends[k], "join": joins[k],
                                  "mentions": [], "absent": [], "exprs": []}
            c[key].append(item)

    if len(clause_starts) == 1:   # one clause holds everything
        clauses[0] = {"index": 0, "start": 0, "end": len(text), "join": "",
                      "mentions": list(mentions), "absent": list(absent), "exprs": list(exprs)}
    else:
        add_to_clauses(mentions, [mm.start for mm in mentions], "mentions")
        add_to_clauses(absent, [am.start for am in absent], "absent")
        add_to_clauses(exprs, [ex[0] for ex in exprs], "exprs")
    active = [clauses[k] for k in sorted(clauses)]   # in text order
    # a clause's cue depends only on its expressions' fields (shared between equal matches):
    # merge each distinct list of fields once, then copy it with the clause's own words
    merged: dict[tuple, Cue | None] = {}

    def combine(exprs: list[tuple[int, int, dict]]) -> Cue | None:
        key = tuple(id(f) for _, _, f in exprs)
        if key not in merged:
            merged[key] = _combine(exprs, text)
        model = merged[key]
        if model is None:
            return None
        start, end = exprs[0][0], exprs[-1][1]
        return Cue(text[start:end].strip(), start, end, model.values.copy(), model.relative.copy(), model.spread_deg,
                   [], model.fallback.copy(), model.edit_relative.copy(), model.anchor, model.precedence.copy(),
                   model.complaint)

    anchored: dict[tuple[int, str], dict] = {}
    # equal expressions share their fields dict: look for anchor phrases once per distinct one
    any_anchor = any(f.get("anchor") for f in {id(f): f for _, _, f in exprs}.values())
    for c in active:
        if c["exprs"] and not c["mentions"]:
            # "open the mix up" names no track: an open request (the agent's), not a width step to lend
            c["exprs"] = [x for x in c["exprs"] if not x[2].get("own_clause")]
        if any_anchor:
            _take_anchors(c, anchored)
        if c["exprs"] and not c["mentions"] and not c["absent"]:
            _take_plan_values(c, text, result)
    swapped = {t for a, b, _ in result.swaps for t in (a, b)}
    if mentions:
        for c in active:
            if c["exprs"] and not c["mentions"] and not c["absent"]:
                _take_unplaced_word(c, text, lexicon)
    _join_lists(active, clauses, text)

    def kinds_of(cl) -> set:
        return {k for _, _, f in cl["exprs"] for k in list(f.get("values", {})) + list(f.get("relative", {}))}

    # a clause with cues but no mention lends them to a neighbour that lacks that kind of cue
    # (the nearest clause with a mention on each side)
    named = [c for c in active if c["mentions"]]
    named_at = [c["index"] for c in named]
    borrowed: set[int] = set()   # expressions lent by a later clause ("..., shift it right")
    for c in active:
        if c["exprs"] and not c["mentions"] and not c["absent"]:
            kinds = kinds_of(c)
            k = bisect.bisect_left(named_at, c["index"])
            j = k - 1
            while j > 0 and (all(object_mention(text, mm.start) for mm in named[j]["mentions"])
                             or _PRONOUN_SUBJECT.match(text, named[j]["start"])):
                j -= 1   # "the piano is clashing | with the bass, | move it left": the subject's clause (round 8)
            prev = named[j] if k > 0 else None
            nxt = named[k] if k < len(named) else None
            prev_free = prev is not None and not (kinds & kinds_of(prev))
            nxt_free = nxt is not None and not (kinds & kinds_of(nxt))
            target = prev if prev_free or (prev is not None and not nxt_free) else nxt
            if target is not None:
                if target is prev:
                    borrowed.update(map(id, c["exprs"]))
                target["exprs"] = sorted(target["exprs"] + c["exprs"], key=lambda f: f[0])
                c["exprs"] = []
    # a bare list shares the next item's cue: "the guitar and the keys on the left"
    for c in reversed(named):
        nxt = clauses.get(c["index"] + 1)
        if nxt is not None and not c["exprs"] and nxt["join"] in _LIST_JOINS and nxt["exprs"] \
                and not nxt.get("shared_from") and not any(set(m.tracks) & swapped for m in c["mentions"]) \
                and not {t for m in c["mentions"] for t in m.tracks} <= {t for m in nxt["mentions"] for t in m.tracks}:
            # (a track the next clause names again takes its cue once: "vln ii is ..., bring vln ii closer")
            c["exprs"] = list(nxt["exprs"])
            c["shared"] = True
    # "tenor 5 degrees higher, the bass also the same": a clause naming tracks and saying "the same"
    # takes the cue of the clause before it (round 8)
    if "same" in text or "too" in text or "also" in text or "as well" in text or "likewise" in text:
        for k, c in enumerate(named):
            if k and not c["exprs"] and _SAME_AGAIN.search(text, c["start"], c["end"]):
                before = next((b for b in reversed(named[:k]) if b["exprs"]), None)
                if before is not None:
                    c["exprs"] = list(before["exprs"])

    # a cue's numbers depend on its expression's fields alone, and equal expressions share their
    # fields (_scan_expressions): work them out once per distinct fields, across all clauses
    model: dict[int, Cue] = {}
    for c in active:
        if not c["exprs"]:
            continue
        if not c["mentions"] and not c["absent"] and not mentions \
                and _ORDER_VERBS.search(text[c["start"]:c["end"]]) \
                and any(f.get("values") or f.get("relative") for _, _, f in c["exprs"]):
            result.orphans.append(text[c["start"]:c["end"]].strip())
        if c["absent"] and c["mentions"]:
            # "narrator is the voice of god": a word said of a named track after a copula
            # describes it, and names no missing instrument (round 8)
            c["absent"] = [am for am in c["absent"] if not any(
                mm.end <= am.start and _COPULA.search(text, mm.end, am.start) for mm in c["mentions"])]
        result.unknown.extend(c["absent"])
        if not c["mentions"]:
            continue
        targets = c["mentions"]
        if len(targets) == 1 or c.get("shared") or c.get("list"):
            cue = combine(c["exprs"])
            if cue is not None:
                result.cues.append(_attach(cue, targets, text, shared=bool(c.get("shared"))))
            continue
        # each expression goes to the nearest mention before it (or the first one after it)
        target_starts = [mm.start for mm in targets]
        befores = map(bisect.bisect_right, repeat(target_starts), [ex[0] for ex in c["exprs"]])
        owners = list(map(max, map(sub, befores, repeat(1)), repeat(0)))   # max(before - 1, 0), in C
        if borrowed:
            # a later clause's pronoun ("guitar's stacking on top of the rhodes, shift it right")
            # is the clause's subject, never the object of a preposition or comparison (round 8)
            subject = next((i for i, mm in enumerate(targets) if not object_mention(text, mm.start)), 0)
            owners = [subject if id(ex) in borrowed else o for o, ex in zip(owners, c["exprs"])]
        if all(map(lt, owners, owners[1:])):   # no mention holds two expressions: one cue each
            append = result.cues.append
            for i, (s, e, f) in zip(owners, c["exprs"]):
                mm = targets[i]
                if len(mm.tracks) < 2:   # _attach of one mention, inline: ten thousand cues
                    like = model.get(id(f))
                    if like is None:
                        like = model[id(f)] = _one_cue(s, e, f, text)
                    lo = mm.start if mm.start < s else s
                    hi = mm.end if mm.end > e else e
                    # the cue's dicts are shared with its model: cues are read-only once parsed
                    # (only _combine writes them, while building one), and ten thousand copies of
                    # five small dicts were a third of a 100 kB parse
                    append(Cue(text[lo:hi].strip(), s, e, like.values, like.relative, like.spread_deg,
                               mm.tracks.copy(), like.fallback, like.edit_relative, like.anchor,
                               like.precedence, like.complaint))
                else:
                    append(_attach(_one_cue(s, e, f, text), [mm], text, shared=False))
            continue
        by_mention: dict[int, list] = {}
        for owner, ex in zip(owners, c["exprs"]):
            by_mention.setdefault(owner, []).append(ex)
        for i, exs in sorted(by_mention.items()):
            cue = combine(exs)
            if cue is not None:
                result.cues.append(_attach(cue, [targets[i]], text, shared=False))


#: A copula between a track and a word said of it ("is the voice of", "sounds like a")
_COPULA = re.compile(r"\b(?:is|are|was|were|'s|sounds?\s+like|feels?\s+like|as)\b")
#: "leave the basses", "keep the pad where it is": tracks a request names only to leave them
_LEAVE = re.compile(r"\b(?:leave|leaving|keep|keeping|don't\s+(?:touch|move)|do\s+not\s+(?:touch|move)|not|except)"
                    r"\s+(?:the\s+|my\s+|our\s+)?$")
#: A clause whose subject is a pronoun ("it doesn't match the production dlg"): the tracks it
#: names are objects, and a later pronoun means the track before it
_PRONOUN_SUBJECT = re.compile(r"\s*+(?:and\s+|but\s+|so\s+)?(?:it|it's|its|they|they're|she|he|this|that)\b(?!\s+(?:is|are)\s+the\b)")
#: Words of a clause that repeats the change said before it for other tracks
_SAME_AGAIN = re.compile(r"\b(?:the\s+same|same\s+(?:thing|for|here|please|pls)|also|too|as\s+well|likewise|ditto)\b")
#: Joins that continue a list of tracks ("widen the keys and the bass", "the kick, snare and hats")
_LIST_JOINS = frozenset({"and", ",", "&", "plus", "+", "/"})
#: Words that may stand before a list item's name ("and both the pad")
_LIST_LEAD = frozenset({"the", "both", "my", "our", "also", "too", "a"})


def _join_lists(active: list[dict], clauses: dict, text: str) -> None:
    """A cue said before a list of tracks is the whole list's: "widen keys and bass", "centre
    both the arp and pad", "narrow sitar and flute a touch".

    A clause whose expressions all stand before its first mention (a verb first) takes the
    mentions of the clauses that follow it through "and" / "," when each of those begins with
    a mention and says no place of its own (only a step size, a width word or a width's number:
    "... and vc wider", "narrow the pad and arp by 4 degrees"); the merged clause gives its cue
    to every track of the list.
    """
    for c in active:
        if not (c["exprs"] and c["mentions"]) or c["exprs"][-1][0] >= c["mentions"][0].start \
                or any(ex[0] > c["mentions"][0].start for ex in c["exprs"]):
            continue
        k = c["index"] + 1
        while k in clauses:
            nxt = clauses[k]
            if nxt["join"] not in _LIST_JOINS or not nxt["mentions"] or nxt["absent"] \
                    or any((f.get("values") or f.get("relative") or f.get("anchor") or f.get("spread_deg") is not None)
                           and not f.get("joins_list") for _, _, f in nxt["exprs"]) \
                    or any(w not in _LIST_LEAD for w in _WORD.findall(text[nxt["start"]:nxt["mentions"][0].start])):
                break
            c["mentions"] = c["mentions"] + nxt["mentions"]
            c["exprs"] = c["exprs"] + nxt["exprs"]
            c["list"] = True
            nxt["mentions"], nxt["exprs"] = [], []
            k += 1


#: verbs of moving whose forms do not end in -ed / -ing (those are skipped by their ending)
_PLAIN_VERB_FORMS = frozenset({
    "bring", "brings", "brought", "put", "puts", "set", "sets", "keep", "keeps", "kept", "hold", "holds",
    "held", "send", "sends", "sent", "get", "gets", "got", "gotten", "make", "makes", "made", "sit", "sits",
    "sat", "stand", "stands", "stood", "go", "goes", "went", "gone", "come", "comes", "came", "take",
    "takes", "took", "taken", "move", "moves", "push", "pull", "pan", "pans", "nudge", "shift", "drop",
    "raise", "lower", "turn", "slide", "place", "throw", "threw", "thrown", "stick", "stuck", "shove"})


#: words that sharpen a place said after them ("dead ahead", "smack in the middle", "bang on
#: centre"; the -ly ones are adverbs, below), and quantifiers of a step said on its own ("...,
#: another 20 degrees", "move it further back"): never an instrument the session lacks
_PLACE_INTENSIFIERS = frozenset({"dead", "smack", "bang", "slap", "square", "straight", "just"})
_STEP_QUANTIFIERS = frozenset({"another", "extra", "again", "further", "farther", "more", "even", "much",
                               "wee", "tiny", "small", "slight", "quick"})


_SECTION_NOUN = re.compile(r"\s+(?:section|part|scene|sequence|cue|segment|passage|movement|bars?)\b")
_AFTER_PRONOUN = re.compile(r"\b(?:it|she|he|they|this|that|which)\s+$")


def _take_unplaced_word(clause: dict, text: str, lexicon: Lexicon) -> None:
    """A clause that places something but names no session track, where one word that is not
    filler (:data:`PLACE_FILLER`) stands before the cue ("the didgeridoo behind me", "theremin
    40 right"), names an instrument the session lacks: it becomes an absent mention (so the
    conductor refuses the prompt, naming the word) instead of lending its cue to a neighbour."""
    first = clause["exprs"][0][0]
    if not any(f.get("values") or f.get("relative") or f.get("step") for _, _, f in clause["exprs"]):
        return
    found = [m for m in _WORD.finditer(text, clause["start"], first) if m.group() not in PLACE_FILLER]
    if len(found) != 1:
        return
    word = found[0]
    w = word.group()
    if len(w) < 3 or not w.isalpha() or w in lexicon.alias_words or w in _NUMBER_WORDS:
        return
    if len(w) >= 5 and w.endswith(("ed", "ing")):
        return   # an inflected verb ("it drifted right", "it's sitting left") names no instrument
    if w in _PLAIN_VERB_FORMS or w in _PLACE_INTENSIFIERS or w in _STEP_QUANTIFIERS:
        return   # "could it be brought closer", "both dead ahead": no instrument the session lacks
    if len(w) >= 5 and w.endswith("ly"):
        return   # an adverb ("strictly centred", "exactly 20 left") names none either (round 12)
    if _SECTION_NOUN.match(text, word.end()):
        return   # "for the sunrise section": a part of the piece (thirteenth stop)
    if _AFTER_PRONOUN.search(text, max(0, word.start() - 12), word.start()):
        return   # a word after "it" / "she" is its verb ("it reads too far off"; thirteenth stop)
    clause["absent"].append(Mention(w, word.start(), word.end(), [], None, "unknown"))


def _take_anchors(clause: dict, anchored: dict) -> None:
    """An anchor phrase ("just right of the", "opposite the") takes the mention right after it
    as its anchor: that track gets no cue of the clause, and the phrase remembers it."""
    if not any(f.get("anchor") for _, _, f in clause["exprs"]):
        return
    exprs = []
    for s, e, f in clause["exprs"]:
        if f.get("anchor"):
            after = [mm for mm in clause["mentions"] if mm.start >= e and mm.tracks]
            if not after or after[0].start - e > 2:
                continue   # nothing named right after the phrase: it says nothing
            anchor = after[0]
            clause["mentions"] = [mm for mm in clause["mentions"] if mm is not anchor]
            key = (id(f), anchor.tracks[0])
            if key not in anchored:   # one fields dict per phrase and anchor, so equal clauses share it
                anchored[key] = {**f, "anchor_track": anchor.tracks[0]}
            f = anchored[key]
            e = anchor.end
        exprs.append((s, e, f))
    clause["exprs"] = exprs


def _take_plan_values(clause: dict, text: str, result: ParseResult) -> None:
    """Wetness said in a clause naming no track is the whole plan's ("drenched in reverb, sax
    left"; "keep it dry"), not a neighbour's: it is taken out before cues are lent."""
    keep = []
    for s, e, f in clause["exprs"]:
        values = f.get("values", {})
        if "reverb_db" in values and len(values) == 1:
            result.plan_values.setdefault("reverb_db", (values["reverb_db"], text[s:e].strip()))
        else:
            keep.append((s, e, f))
    clause["exprs"] = keep
