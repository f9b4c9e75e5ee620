"""Expression scanning and cue combination: from a text to the cues of one clause.

Holds
-----
* :data:`_CLAUSE_BREAKS`, :data:`_CLAUSE_BREAK` and :func:`_clause_breaks`: where a clause ends
  (sentence punctuation, a comma, a spaced dash, "+", a conjunction), each alternative compiled in
  only when its trigger characters or words occur.
* :func:`_scan_expressions`: every rule of :data:`stase.agent.parser_rules.RULES` run over the
  text (only where its trigger words occur: :class:`stase.agent.parser_rules.Vocabulary`), in the
  table's order, each claiming the words it matched; guarded rules never read inside a track's
  own name.  :func:`_matches_outside` and :func:`_search_around` keep it linear.
* :func:`_combine`: a clause's expressions -> one :class:`~stase.agent.parser_types.Cue`, the
  precedence classes deciding between readings of one quantity (number > named position >
  hedge), one step per quantity, the sign of a bare "raise / lower" and of an unsigned dB number.
* :func:`_one_cue` and :func:`_attach`: a cue given to its mentions (its provenance text kept).

Conventions (:mod:`stase.core.conventions`): azimuth in degrees, positive = left.
"""
from __future__ import annotations

import re
from functools import lru_cache
from operator import itemgetter

from stase.agent.parser_rules import (HEDGED, NAMED, NUMBER, PRECEDENCE_NAMES, REAR_DIAGONAL_DEG, RULES, STEPS,
    Vocabulary)
from stase.agent.parser_types import Cue, Mention


# ------------------------------------------------------------------------------------------------
# Clause breaks, the expression scanner and cue combination
# ------------------------------------------------------------------------------------------------
#: Where a clause ends, as alternatives tried in this order: sentence punctuation, a comma, a
#: spaced dash, a conjunction.  (Each with the characters or words it needs to occur at all.)
_CLAUSE_BREAKS = ((r"[.;!?\n]+", tuple(".;!?\n")), (",", (",",)), (r"\s-\s", ("-",)), (r"(?<=\s)\+(?=\s)", ("+",)),
                  # "OH L/OH R", "vox / bgv": a slash between words joins a list as "and" does (not
                  # "1/2", "w/ verb", "and/or")
                  (r"(?<=[a-z0-9])(?<!\bw)(?<!\band)\s*/\s*(?=[a-z])(?!or\b)", ("/",)),
                  (r"\b(?:and|while|but|whereas|with|then|plus|&)\b",
                   ("and", "while", "but", "whereas", "with", "then", "plus", "&")))
_CLAUSE_BREAK = re.compile("|".join(pattern for pattern, _ in _CLAUSE_BREAKS))


@lru_cache(maxsize=None)
def _clause_break_pattern(present: tuple[bool, ...]) -> re.Pattern:
    return re.compile("|".join(pattern for (pattern, _), here in zip(_CLAUSE_BREAKS, present) if here))


def _clause_breaks(text: str) -> re.Pattern | None:
    """:data:`_CLAUSE_BREAK` less the alternatives that cannot match in ``text`` (``None`` when
    none can).  Dropping an alternative that matches nowhere changes no match, and the regex
    engine no longer tries it at every position."""
    present = tuple(any(c in text for c in needs) for _, needs in _CLAUSE_BREAKS)
    return _clause_break_pattern(present) if any(present) else None


def _scan_expressions(text: str, vocabulary: Vocabulary | None = None,
                      guarded: list[tuple[int, int]] = (), edit: bool = False,
                      names: list[tuple[int, int]] = ()) -> list[tuple[int, int, dict]]:
    """The spatial expressions in a normalised text: ``(start, end, fields)``, in text order.

    Rules run in the order of :data:`RULES`; where two matches overlap the earlier rule keeps the
    words.  A ``guarded`` rule (one-letter side words) reads nothing inside the ``guarded`` spans
    (the session's own track names: "L" in "Gtr L"); an ``edit_only`` rule runs only when ``edit``
    (a request against a current plan).  No match begins inside one of the ``names`` spans
    (a session track's name of several words, "open hat": round 8).  Each fields dict carries its rule's
    ``precedence`` (a value function may have lowered it) and ``rule`` name.

    A rule's fields depend only on the words it matched (:class:`Rule`), so each distinct
    match is built once: "left" said 9,000 times is read once.  The fields are shared, and
    nothing downstream changes them.
    """
    vocabulary = vocabulary or Vocabulary(text)
    rules = [rule for rule in RULES if (edit or not rule.edit_only) and vocabulary.holds(rule.groups)]
    taken = bytearray(len(text)) if len(rules) > 1 else bytearray()
    shielded = None
    if guarded and any(rule.guarded for rule in rules):
        shielded = bytearray(len(text) + 1)
        for a, b in guarded:
            shielded[a:b] = b"\x01" * (b - a)
    found: list[tuple[int, int, dict]] = []
    inside_name = None
    if names:
        inside_name = bytearray(len(text) + 1)
        for a, b in names:
            inside_name[a:b] = b"\x01" * (b - a)
    for number, rule in enumerate(rules):
        # a rule's own matches never overlap, so only earlier rules' spans can block one, and
        # only a later rule needs this rule's spans marked
        check, mark = bool(found), number + 1 < len(rules)
        shield = shielded if rule.guarded else None
        keys = [key for key in ("key", "key2", "key3", "key4", "key5") if key in rule.regex.groupindex]
        value, precedence, name = rule.value, rule.precedence, rule.name
        built: dict[tuple, dict | None] = {}

        def build(m):
            fields = value(m)
            if fields:
                fields.setdefault("precedence", precedence)
                fields["rule"] = name
            return fields

        if not (keys or check or mark or shield or inside_name):   # the usual case: one rule finds everything
            for m in rule.regex.finditer(text):
                s, e = m.span()
                if e > s:
                    said = (m.group(), m.groups())
                    fields = built[said] if said in built else built.setdefault(said, build(m))
                    if fields:
                        found.append((s, e, fields))
            continue
        if shield is not None:
            matches = _search_around(rule.regex, text, shield, inside_name)
        elif inside_name is not None:
            matches = _matches_outside(rule.regex, text, inside_name)
        else:
            matches = rule.regex.finditer(text)
        for m in matches:
            s, e = m.span()
            for key in keys:
                if m.group(key):
                    s, e = m.span(key)
            if e <= s or (check and any(taken[s:e])):
                continue
            said = (m.group(), m.groups())
            fields = built[said] if said in built else built.setdefault(said, build(m))
            if not fields:
                continue
            if mark:
                taken[s:e] = b"\x01" * (e - s)
            found.append((s, e, fields))
    found.sort(key=itemgetter(0))
    return found


def _matches_outside(regex: re.Pattern, text: str, starts: bytearray):
    """``regex.finditer(text)`` less the matches beginning inside a ``starts`` span; after such a
    match the search resumes one character on (C-speed ``finditer`` between such matches)."""
    pos = 0
    while True:
        for m in regex.finditer(text, pos):
            if starts[m.start()]:
                pos = m.start() + 1
                break
            yield m
        else:
            return


def _search_around(regex: re.Pattern, text: str, shield: bytearray | None, starts: bytearray | None = None):
    """``regex.finditer(text)`` less the matches touching a shielded span (and those beginning
    inside a ``starts`` span); after such a match the search resumes one character on, so "30
    left" is still found after the "l" of "oh l"."""
    pos = 0
    while True:
        m = regex.search(text, pos)
        if m is None:
            return
        s, e = m.span()
        if (shield is not None and any(shield[s:e])) or (starts is not None and starts[s]):
            pos = s + 1
            continue
        yield m
        pos = e if e > s else e + 1


#: The quantity each cue key belongs to (precedence is decided per quantity).
_QUANTITY_OF = {"azimuth_deg": "azimuth_deg", "elevation_deg": "elevation_deg", "distance_m": "distance_m",
                "distance_scale": "distance_m", "gain_db": "gain_db", "reverb_db": "reverb_db",
                "width_deg": "width_deg"}


def _quantities(f: dict) -> set[str]:
    q = {_QUANTITY_OF[k] for k in f.get("values", ())} | {_QUANTITY_OF[k] for k in f.get("relative", ())}
    if f.get("spread_deg") is not None or f.get("anchor"):
        q.add("azimuth_deg")
    if f.get("step"):
        q.add(f["step"][0])
    return q


#: "to" (and a hedge) just before a distance: the place it goes to, not the size of a step
_TARGET_BEFORE = re.compile(r"\bto\s+(?:(?:about|around|roughly|maybe|like|say|approximately|approx)\s+)?$")


def _combine(exprs: list[tuple[int, int, dict]], text: str) -> Cue | None:
    """Merge the expressions of one clause into one cue.

    Precedence (:mod:`stase.agent.parser_rules`): for each quantity only the expressions of the
    best class present count (a number beats a named position beats a hedge: "far back, 14 m" is
    14 m); among equals the first in the text gives an absolute value and relative ones add up.
    An unsigned number takes the sign of a side word it beat ("left, like 70 degrees").  A step
    ("further left", "closer", "louder") takes its size from its own hedge, else from a size word
    in the clause ("raise the sax a bit"), else the plain step (:data:`STEPS`).  Front/back words
    give way to a side word, or combine with it ("behind me to the left").
    """
    if not exprs:
        return None
    start, end = exprs[0][0], exprs[-1][1]
    cue = Cue(text[start:end].strip(), start, end)
    fields = [f for _, _, f in exprs]
    if any(f.get("reason") for f in fields) and any(
            not f.get("reason") and (f.get("values") or f.get("relative") or f.get("step") or f.get("spread_deg") is not None)
            for f in fields):
        # "the soloist is buried, bring her 3 m closer": the complaint is the reason for the change said
        fields = [f for f in fields if not f.get("reason")]
    sides = [f for f in fields if f.get("side")]
    back = any(f.get("back") for f in fields)
    any_azimuth = any("azimuth_deg" in f.get("values", ()) for f in fields)
    firm_spread = any(f.get("spread_deg") is not None and not f.get("soft") for f in fields)
    widths = any(f.get("step") and f["step"][0] == "width_deg" for f in fields)
    size = next((f["step_size"] for f in fields if "step_size" in f), None)
    size_of = _size_owner(exprs, text, size)
    # a bare "raise / lower / drop" is a height only when nothing else in the clause says what
    # changes: a level word or a dB number makes it a level change ("lower the keys 3 dB"), and
    # another height word gives the step ("drop the solo down a bit" is one small step)
    verbs_only = [f for f in fields if f.get("verb_only")]
    if verbs_only:
        said = [f for f in fields if not f.get("verb_only")]
        # (a vague height place alone, "beneath ear height", leaves the verb its step: round 6)
        if any("gain_db" in _quantities(f) or ("elevation_deg" in _quantities(f)
                                               and (f.get("step") or f.get("relative") or f["precedence"] < HEDGED))
               for f in said):
            fields = said
    gain_sign = next((f["gain_sign"] for f in fields + verbs_only if "gain_sign" in f), None)
    live = []
    for f in fields:
        if f.get("soft") and (firm_spread or any_azimuth or widths):
            continue
        if f.get("back") and sides:
            continue
        if f.get("front") and (sides or back):
            continue
        live.append(f)
    if len(live) > 1:
        live = _named_after_step(exprs, text, live)
    best: dict[str, int] = {}
    for f in live:
        p = f["precedence"]
        for q in _quantities(f):
            if p < best.get(q, HEDGED + 1):
                best[q] = p
    composite = back and sides and best.get("azimuth_deg", HEDGED + 1) > NUMBER
    values, relative = cue.values, cue.relative
    origin: dict[str, dict] = {}
    # one step per quantity and clause ("squeeze ... closer together", "up front, much closer"
    # say it twice): the one with the largest size said, else the first
    chosen_step: dict[str, dict] = {}
    complained: dict[str, float] = {}   # quantity -> the step a complaint added
    for f in live:
        step = f.get("step")
        if step and f["precedence"] == best[step[0]]:
            held = chosen_step.get(step[0])
            # a complaint ("too loud") gives way to the change said beside it ("take it down a bit")
            if held is not None and bool(f.get("complaint")) != bool(held.get("complaint")):
                if not f.get("complaint"):
                    chosen_step[step[0]] = f
                continue
            if held is None or _STEP_RANK[step[2]] < _STEP_RANK[held["step"][2]]:
                chosen_step[step[0]] = f
    for f in live:
        p = f["precedence"]
        for k, v in f.get("values", {}).items():
            if best[_QUANTITY_OF[k]] == p and k not in values:
                values[k] = v
                origin[k] = f
                cue.precedence[k] = PRECEDENCE_NAMES[p]
        for k, v in f.get("relative", {}).items():
            if best[_QUANTITY_OF[k]] == p:
                relative[k] = relative.get(k, 0.0) + v if k != "distance_scale" else relative.get(k, 1.0) * v
        if f.get("spread_deg") is not None and best["azimuth_deg"] == p:
            cue.spread_deg = f["spread_deg"]
            if f.get("edit_width"):   # "spread the guitars (a bit)": in an edit, a width step
                cue.edit_relative["width_deg"] = f["edit_width"] * STEPS["width_deg"][size_of(f) or "plain"][1]
        step = f.get("step")
        if step and best[step[0]] == p and chosen_step.get(step[0]) is f:
            quantity, sign, own = step
            kind, amount = STEPS[quantity][own or size_of(f) or "plain"]
            if f.get("complaint"):
                cue.complaint += ("distance_scale" if quantity == "distance_m" and kind == "scale" else quantity,)
                complained[quantity] = sign * amount
                if f.get("reason"):
                    cue.complaint += ("reason",)
            if quantity == "distance_m" and kind == "scale":
                relative["distance_scale"] = relative.get("distance_scale", 1.0) * (amount if sign > 0 else 1.0 / amount)
            else:
                relative[quantity] = relative.get(quantity, 0.0) + sign * amount
        if f.get("anchor") and f.get("anchor_track") and best["azimuth_deg"] == p:
            cue.anchor = (f["anchor"], f["anchor_track"])
        if "fallback" in f:
            cue.fallback.update(f["fallback"])
    if "width_deg" in relative and any(f.get("unsigned_width") for f in live):
        # "in towards the middle, 10 degrees each": the number's way is the width step's (round 8)
        way = next((f["step"][1] for f in fields if f.get("step") and f["step"][0] == "width_deg"), 1.0)
        relative["width_deg"] = abs(relative["width_deg"]) * way
    if best.get("width_deg") == NUMBER and "width_deg" in cue.edit_relative:
        # "spread the keys and pad out 10 more degrees": the number is the change, not a fan
        cue.edit_relative.pop("width_deg")
        cue.spread_deg = None
    if gain_sign is not None and "gain_db" in relative and any(f.get("unsigned_gain") for f in live):
        # an unsigned dB number takes the sign of the clause's level verb ("cut the hats 3 dB")
        relative["gain_db"] = abs(relative["gain_db"]) * gain_sign
    az_from = origin.get("azimuth_deg")
    if az_from is not None and az_from.get("unsigned") and sides:
        cue.values["azimuth_deg"] = abs(cue.values["azimuth_deg"]) * (1.0 if sides[0]["values"]["azimuth_deg"] > 0 else -1.0)
        if "edit_step" in sides[0]:
            # "move keys left a bit, like 5 deg": the number is the step's size in an edit
            cue.edit_relative["azimuth_deg"] = cue.values["azimuth_deg"]
    elif az_from is not None and az_from.get("unsigned") and "azimuth_deg" not in relative:
        # "further to the right, maybe 20 degrees more", "a bit more right, like 10 deg": the number
        # beat the step (precedence) but the step says the way: the number's side, and in an edit
        # the step's size (round 7)
        # (a complaint's way is no order: "too far to the left, 20 degrees" is the place 20 left)
        lost = next((f for f in live if f.get("step") and f["step"][0] == "azimuth_deg" and not f.get("complaint")), None)
        if lost is not None:
            cue.values["azimuth_deg"] = abs(cue.values["azimuth_deg"]) * lost["step"][1]
            cue.edit_relative["azimuth_deg"] = cue.values["azimuth_deg"]
    if az_from is not None and az_from.get("unsigned") and not sides and "azimuth_deg" not in relative \
            and "elevation_deg" not in values and chosen_step.get("elevation_deg") is not None \
            and not chosen_step["elevation_deg"].get("complaint") and az_from.get("rule") == "plain_degrees":
        # "flute must be higher in space, not much, by 5 degrees": a bare number of degrees beside a
        # height step and no side is the step's size (thirteenth stop)
        sign = chosen_step["elevation_deg"]["step"][1]
        relative["elevation_deg"] = sign * abs(values.pop("azimuth_deg"))
        cue.precedence.pop("azimuth_deg", None)
    if "distance_m" in values and cue.precedence.get("distance_m") == PRECEDENCE_NAMES[NUMBER] \
            and origin.get("distance_m", {}).get("rule") in ("distance", "at_distance") and "distance_m" not in relative:
        # "bring her in closer, maybe half a metre", "pushed back a little. half a metre maybe": a
        # distance beside a step of distance is the step's size in an edit (round 8), the place in a plan
        lost = next((f for f in fields if f.get("step") and f["step"][0] == "distance_m" and not f.get("complaint")), None)
        said_at = next((s for s, _, f in exprs if f is origin["distance_m"]), None)
        if lost is not None and not (said_at is not None and _TARGET_BEFORE.search(text, max(0, said_at - 30), said_at)):
            # ("bring it in to 4 metres", "closer, to about 3 m": "to" says where, the place wins)
            cue.edit_relative["distance_m"] = values["distance_m"] * lost["step"][1]
    for key in ("azimuth_deg", "elevation_deg"):
        # a vague place said beside a step of the same quantity ("drop it down a little, below
        # ear height") is the step's direction in an edit, and the place only in a new plan; so is
        # a named place said right after the step ("organ pipes higher overhead"; thirteenth stop)
        if key in relative and key in values and cue.precedence.get(key) == PRECEDENCE_NAMES[HEDGED] \
                and chosen_step.get(key) is not None and key not in cue.edit_relative:
            cue.fallback[key] = values.pop(key)
            cue.precedence.pop(key)
    for key, f in origin.items():
        # in an edit a hedged place ("a bit to the left", "raised a bit") is a step of its own size
        if key in f.get("edit_by", ()):   # a direction before its number: a move by it in an edit (round 8)
            cue.edit_relative[key] = f["edit_by"][key]
        elif "edit_step" not in f and f["precedence"] == HEDGED and f.get("side") is not None and any(
                g is not f and g.get("edit_step", ("",))[0] == key for g in live):
            # "the guitar needs to go to the right ... move it right": the place and the move say
            # one thing; in an edit it is the move (round 8)
            g = next(g for g in live if g is not f and g.get("edit_step", ("",))[0] == key)
            quantity, sign, own = g["edit_step"]
            if sign * values[key] > 0:
                cue.edit_relative[quantity] = sign * STEPS[quantity][own or size_of(g) or "plain"][1]
        elif "edit_step" in f and f["edit_step"][0] == key:
            quantity, sign, own = f["edit_step"]
            cue.edit_relative[quantity] = sign * STEPS[quantity][own or size_of(f) or "plain"][1]
    for key in list(complained):
        # "the keys are so far left, move them right a tad": the hedged side's own step is the
        # change, the complaint its reason (round 7)
        if key in cue.edit_relative and key in relative and key != "distance_m":
            relative[key] -= complained.pop(key)
            if abs(relative[key]) < 1e-9:
                del relative[key]
            cue.complaint = tuple(q for q in cue.complaint if q != key)
    if "width_deg" in complained and "azimuth_deg" not in complained and (
            "azimuth_deg" in relative or "azimuth_deg" in values or "azimuth_deg" in cue.edit_relative):
        # "the arp is too wide on the left, move it 15 degrees right": the complaint is the
        # reason for the move said beside it, not a width change of its own (round 8)
        relative["width_deg"] -= complained.pop("width_deg")
        if abs(relative["width_deg"]) < 1e-9:
            del relative["width_deg"]
        cue.complaint = tuple(q for q in cue.complaint if q != "width_deg")
    if composite:
        side = sides[0]
        lateral = abs(side["values"]["azimuth_deg"])
        if side.get("hedge") is None:
            lateral = 180.0 - REAR_DIAGONAL_DEG
        az = 180.0 - lateral
        cue.values["azimuth_deg"] = az * (1.0 if side["values"]["azimuth_deg"] > 0 else -1.0)
        cue.precedence["azimuth_deg"] = PRECEDENCE_NAMES[NAMED]
        cue.edit_relative.pop("azimuth_deg", None)
    return cue


def _named_after_step(exprs: list[tuple[int, int, dict]], text: str, live: list[dict]) -> list[dict]:
    """``live`` with a named height or side said right after a step of it ("organ pipes higher
    overhead") read as a vague place (a copy at the hedged class), so the step counts in an edit
    and the place stays the plan's fallback (thirteenth stop)."""
    step_ends = {f["step"][0]: e for _, e, f in exprs if f.get("step") and f in live}
    if not step_ends:
        return live
    out = []
    for f in live:
        if f["precedence"] == NAMED and f.get("values") and not f.get("step"):
            start = next((s for s, _, g in exprs if g is f), None)
            keys = [k for k in f["values"] if k in ("elevation_deg", "azimuth_deg") and k in step_ends]
            if start is not None and keys and all(step_ends[k] <= start and not text[step_ends[k]:start].strip()
                                                  for k in keys):
                f = {**f, "precedence": HEDGED}
        out.append(f)
    return out


#: Nothing but a list join between two steps: one verb's directions ("left and up a bit")
_COORDINATED = re.compile(r"[\s,]*(?:and|&|or)?\s*")
#: A step said by its verb starts a predicate of its own ("further back and raise it a lot")
_VERB_FIRST = re.compile(r"(?:raise|lift|lower|drop|push|pull|bring|move|pan|turn|boost|cut|put|shift|send|nudge|"
                         r"take|set|spread|widen|narrow|tighten|squeeze)\w*\b")


def _size_owner(exprs: list[tuple[int, int, dict]], text: str, size: str | None):
    """Which steps of a clause a size word ("a bit", "a lot") sizes: a function of a step's fields.

    One quantity stepped: every step takes the clause's size ("raise the sax a bit").  Steps of
    two or more quantities ("push the heli further back and raise it a lot"): the size belongs to
    the step said right after it, else the last one said before it, and the others are plain;
    directions listed under one verb ("further left and up a bit") share it (thirteenth stop).
    """
    if size is None:
        return lambda f: size
    stepped = []
    for s, e, f in exprs:
        quantity = (f.get("step") or f.get("edit_step") or (("width_deg",) if f.get("edit_width") else None) or (None,))[0]
        if quantity is not None and not f.get("complaint") and not (f.get("step") or f.get("edit_step") or ("", 0, None))[2]:
            stepped.append((s, e, f, quantity))
    if len({q for *_, q in stepped}) < 2:
        return lambda f: size
    said = [(s, e) for s, e, f in exprs if "step_size" in f]
    stepped.sort(key=itemgetter(0))
    if not said or all(_COORDINATED.fullmatch(text, x[1], y[0]) and not _VERB_FIRST.match(text, y[0])
                       for x, y in zip(stepped, stepped[1:]) if y[0] >= x[1]):
        # "move it left and up a bit": directions listed under one verb share its size
        return lambda f: size
    a, b = said[0]
    # the step said right after the size ("a lot further back"), else the last one before it
    # ("raise the drone a bit. move it further away"), else the first after it
    right_after = [x for x in stepped if x[0] >= b and not text[b:x[0]].strip()]
    before = [x for x in stepped if x[1] <= a]
    owner = (right_after or before[-1:] or stepped)[0][2]
    return lambda f: size if f is owner else None


#: Which of two steps of one quantity in a clause counts: a large size, then a small one, then plain.
_STEP_RANK = {"large": 0, "small": 1, None: 2}


def _one_cue(start: int, end: int, f: dict, text: str) -> Cue:
    """:func:`_combine` of one expression (most clauses hold one)."""
    return _combine([(start, end, f)], text)


def _attach(cue: Cue, mentions: list[Mention], text: str, shared: bool) -> Cue:
    """``cue`` given to the tracks of ``mentions``, its text widened to the words naming them (a
    shared cue reads "the guitar the keys ... on the left")."""
    if len(mentions) == 1:
        mm = mentions[0]
        cue.tracks = list(mm.tracks) if len(mm.tracks) < 2 else list(dict.fromkeys(mm.tracks))
        lo, hi = min(mm.start, cue.start), max(mm.end, cue.end)
    else:
        cue.tracks = list(dict.fromkeys(t for mm in mentions for t in mm.tracks))
        lo = min([mm.start for mm in mentions] + [cue.start])
        hi = max([mm.end for mm in mentions] + [cue.end])
    cue.text = " ".join(mm.text for mm in mentions) + " ... " + cue.text if shared else text[lo:hi].strip()
    return cue
