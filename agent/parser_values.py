"""The rules' value functions: one regex match -> cue fields.

Holds
-----
* One ``_<rule name>(m)`` per rule of :data:`stase.agent.parser_rules.RULES` (``_pan_percent``,
  ``_side``, ``_clock``, ``_complaint``, ``_anchor``, ...): a function of the match's text and
  groups alone, returning the cue fields (``azimuth_deg``, ``elevation_deg``, ``distance_m``,
  ``gain_db``, ``reverb_db``, ``width_deg``, ``relative``, ``step_size``, ``anchor``,
  ``impossible``, a lowered ``precedence``) or ``None``.
* Their helpers: :func:`_side_sign`, :func:`_hedge`, :func:`_distance_m` (feet and centimetres to
  metres), :func:`_level_sign`, :func:`_step_size` and :func:`_step` (a relative step of the
  size said, :data:`stase.agent.parser_phrases.STEPS`).

Conventions (:mod:`stase.core.conventions`): azimuth in degrees, positive = left; pan = -lateral
/ 90 (so "70 % right" is -63 deg); distance in metres; gain in dB.
"""
from __future__ import annotations

import re

from stase.core.conventions import wrap_azimuth_deg
from stase.core.placement import REVERB_DB_RANGE

from stase.agent.parser_complaints import COMPLAINT_STEPS
from stase.agent.parser_phrases import (DIAGONAL_DEG, DISTANCE_WORDS_M, ELEVATION_WORDS_DEG, FEET_TO_M, FULL_SIDE_DEG,
    HEDGES, IMPOSSIBLE, LARGE_STEP_HEDGES, LEVEL_NOUN_VERBS, LEVEL_VERBS, NAMED, OF_CENTRE_DEG, PLAIN_SIDE_DEG,
    REAR_DIAGONAL_DEG, SLIGHT_ELEVATION_DEG, TOO_HEIGHT_SIGN, TOO_LEVEL_SIGN, WETNESS_WORDS, WIDTH_NUMBER_VERBS,
    _HEDGE_WORD, _SIZE_AFTER, number)


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


def _hedged_height(hedge: str | None, down: bool) -> float:
    """Elevation (deg) of "above"/"below" said with ``hedge``: a slight hedge is
    SLIGHT_ELEVATION_DEG, a strong one 45 deg, none the named position's."""
    sign = -1.0 if down else 1.0
    if hedge and HEDGES[hedge] <= 15.0:
        return SLIGHT_ELEVATION_DEG * sign
    if hedge and HEDGES[hedge] >= 65.0:
        return 45.0 * sign
    return ELEVATION_WORDS_DEG["below" if down else "above"]


def _above_below(m):
    hedge = m.group(1)
    down = re.search(r"below|beneath|under|low|feet|floor", m.group(0))
    return {"values": {"elevation_deg": _hedged_height(hedge, bool(down))}}


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
    return {"values": {"elevation_deg": _hedged_height(hedge, bool(down))}}


def _at_distance(m):
    d = _distance_m(m.group(1), m.group(2) or "m")
    if d <= 0.0:
        return {"impossible": IMPOSSIBLE["distance"]}
    return {"values": {"distance_m": d}}


def _width(m):
    wider = re.search(r"wid|broad|spread|apart|open", m.group(0)) is not None
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
    bring her 3 m closer"; :func:`stase.agent.parser_edits._complaints_give_way`; round 7)."""
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


def _degrees_wider(m):
    """"15 degrees narrower each", "10 degrees wider", "tighter by 10 degrees": a width change of
    that many degrees (each source that far from, or towards, the centre)."""
    way = m.group("way") or m.group("way2")
    amount = m.group("amount") or m.group("amount2")
    return {"relative": {"width_deg": (1.0 if way == "wider" else -1.0) * abs(number(amount))}}


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
