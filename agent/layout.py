"""Placing tracks: template seats, cue application, collision avoidance and the plan's words.

Holds
-----
* :func:`assign_seats` - tracks -> template seats (by role, then by family, then a free spot).
* :func:`apply_cues`, :func:`apply_swaps`, :func:`apply_mirrors` - the parser's cues on placements
  (absolute values, relative steps, widths, places relative to another track, wetness).
* :func:`resolve_collisions` - moves fallback-placed tracks until no two sources are within
  ``MIN_SEPARATION_DEG`` at a similar distance.
* :func:`shift_lateral` - "further left" for front and rear sources alike.
* :func:`music_description`, :func:`mix_notes` - the deterministic text of a plan.

Azimuth positive = left (stase.core.conventions).
"""
from __future__ import annotations

import statistics

import numpy as np

from stase.core.conventions import great_circle_deg, wrap_azimuth_deg
from stase.core.plan import Plan, SourcePlacement

from stase.agent.parser import ParseResult
from stase.agent.parser_rules import ADJACENT_DEG, SAME_SIDE_INSET_DEG

DEFAULT_LAYOUT_TEMPLATE = "studio_recording"
#: Two sources closer than this (great circle, degrees) at a similar distance are hard to tell apart;
#: the minimum audible angle is 1-2 deg in front but blurs to ~10 deg for concurrent sources
#: (Perrott 1984, "Concurrent minimum audible angle", JASA 75), so 12 deg keeps them distinct.
MIN_SEPARATION_DEG = 12.0
SIMILAR_DISTANCE_RATIO = 1.4
SEARCH_STEP_DEG = 6.0
MIN_DISTANCE_M = 0.3
#: Where a role family sits when a template has no seat for it (azimuth, elevation), degrees.
FAMILY_ZONES: dict[str, tuple[float, float]] = {
    "voice": (0.0, 0.0), "drums": (0.0, 3.0), "percussion": (-45.0, 3.0), "bass": (0.0, -3.0),
    "guitar": (35.0, 0.0), "keys": (-30.0, 0.0), "synth": (50.0, 5.0), "strings": (35.0, 0.0),
    "brass": (-20.0, 3.0), "woodwinds": (15.0, 0.0), "plucked": (25.0, 0.0), "other": (25.0, 0.0),
}
GROUP_SPACING_DEG = 6.0


def _side(name: str) -> int:
    from stase.agent.lexicon import normalise_words
    words = normalise_words(name)
    if "l" in words or "left" in words:
        return 1
    if "r" in words or "right" in words:
        return -1
    return 0


def _place(track, role, az, el, dist, why) -> SourcePlacement:
    return SourcePlacement(track=track, role=role, azimuth_deg=float(az), elevation_deg=float(el),
                           distance_m=float(dist), mode="hrtf",
                           provenance={"azimuth_deg": why, "elevation_deg": why, "distance_m": why})


def assign_seats(tracks: list[str], roles: dict[str, str | None], template: dict, is_default: bool,
                 families: dict[str, str]) -> list[SourcePlacement]:
    """One placement per track from a template; fallback-placed ones carry "free spot"/"beside"."""
    seats = template["roles"]
    label = f"default layout {template['id']}" if is_default else f"template {template['id']}"
    placed: dict[str, SourcePlacement] = {}
    by_role: dict[str, list[dict]] = {}
    for seat in seats:
        by_role.setdefault(seat["role"], []).append(seat)
    groups: dict[str, list[str]] = {}
    for t in tracks:
        if roles.get(t):
            groups.setdefault(roles[t], []).append(t)
    for role, group in groups.items():
        role_seats = list(by_role.get(role, []))
        if not role_seats:
            continue
        # a track named like a seat takes it; then left-named tracks take the leftmost seats
        named = {(s.get("name") or "").lower(): s for s in role_seats}
        rest = []
        for t in group:
            s = named.get(t.lower())
            if s is not None and s in role_seats:
                placed[t] = _place(t, role, s["azimuth_deg"], s.get("elevation_deg", 0.0), s["distance_m"],
                                   f"{label}: {s.get('name') or role} seat")
                role_seats.remove(s)
            else:
                rest.append(t)
        if len(rest) > 1:
            rest.sort(key=lambda t: -_side(t))
            role_seats.sort(key=lambda s: -s["azimuth_deg"])
        for i, t in enumerate(rest):
            if i < len(role_seats):
                s = role_seats[i]
                placed[t] = _place(t, role, s["azimuth_deg"], s.get("elevation_deg", 0.0), s["distance_m"],
                                   f"{label}: {s.get('name') or role} seat")
            else:
                s = by_role[role][i % len(by_role[role])]
                az = -s["azimuth_deg"] if abs(s["azimuth_deg"]) > 5.0 else s["azimuth_deg"] + 20.0 * (1 if i % 2 else -1)
                placed[t] = _place(t, role, az, s.get("elevation_deg", 0.0), s["distance_m"],
                                   f"{label}: another {role}, mirrored from its seat (free spot)")
    distances = [s["distance_m"] for s in seats]
    typical = statistics.median(distances)
    fam_count: dict[str, int] = {}
    for t in tracks:
        if t in placed:
            continue
        role = roles.get(t)
        fam = families.get(role, "other") if role else "other"
        kin = [s for s in seats if families.get(s["role"]) == fam] if role else []
        k = fam_count.get(fam, 0)
        fam_count[fam] = k + 1
        if kin:
            s = kin[k % len(kin)]
            offset = 15.0 * (1 + k // 2) * (1 if k % 2 == 0 else -1)
            placed[t] = _place(t, role, s["azimuth_deg"] + offset, s.get("elevation_deg", 0.0),
                               s["distance_m"] + 0.5,
                               f"{label}: beside the {s.get('name') or s['role']} seat (same family, free spot)")
        else:
            az, el = FAMILY_ZONES.get(fam, FAMILY_ZONES["other"])
            what = role or "an unrecognised track"
            placed[t] = _place(t, role, az, el, typical, f"{label}: free spot for {what} ({fam} zone)")
    return [placed[t] for t in tracks]


def shift_lateral(azimuth_deg: float, delta_deg: float) -> float:
    """Move a source ``delta_deg`` towards the left (positive) or right, front or rear alike.

    A rear source is mirrored to the front, shifted, and mirrored back, so "further left" always
    moves it towards +90 deg; the lateral angle stops at the side (+-90 deg).
    """
    az = wrap_azimuth_deg(azimuth_deg)
    if abs(az) <= 90.0:
        return float(np.clip(az + delta_deg, -90.0, 90.0))
    front = np.sign(az) * (180.0 - abs(az))
    new_front = float(np.clip(front + delta_deg, -90.0, 90.0))
    if new_front == 0.0:
        return 180.0
    return float(np.sign(new_front) * (180.0 - abs(new_front)))


def _lateral_deg(azimuth_deg: float) -> float:
    """The left/right angle of a direction (front and rear alike), -90..90 deg, positive = left."""
    az = wrap_azimuth_deg(azimuth_deg)
    return az if abs(az) <= 90.0 else float(np.sign(az) * (180.0 - abs(az)))


def _widen(azimuth_deg: float, step_deg: float) -> float:
    """``azimuth_deg`` moved ``step_deg`` away from the centre (``step_deg`` < 0: towards it, never
    past it); a centred source stays."""
    lateral = _lateral_deg(azimuth_deg)
    if lateral == 0.0:
        return float(azimuth_deg)
    side = 1.0 if lateral > 0 else -1.0
    shift = step_deg if step_deg > 0 else -min(-step_deg, abs(lateral))
    return shift_lateral(azimuth_deg, side * shift)


def _anchored_azimuth(relation: str, anchor_deg: float) -> tuple[float, str]:
    """Where "just left of / right of / next to / opposite / on the side of" an anchor sits."""
    if relation == "opposite":
        return wrap_azimuth_deg(-anchor_deg), "mirrored"
    if relation in ("left", "right"):
        step = ADJACENT_DEG if relation == "left" else -ADJACENT_DEG
        return shift_lateral(anchor_deg, step), f"{step:+.0f} deg"
    lateral = _lateral_deg(anchor_deg)
    side = 1.0 if lateral >= 0 else -1.0
    if relation == "same_side":
        inset = min(SAME_SIDE_INSET_DEG, abs(lateral))
        return shift_lateral(anchor_deg, -side * inset), "same side"
    return shift_lateral(anchor_deg, side * ADJACENT_DEG), f"{side * ADJACENT_DEG:+.0f} deg, beside it"


def apply_cues(sources: list[SourcePlacement], parsed: ParseResult, edit: bool = False) -> set[str]:
    """Apply absolute, relative, width, anchored and spread cues; return the tracks the prompt
    placed explicitly.

    In an edit a hedged side ("a bit to the left") moves by its step (``Cue.edit_relative``)
    instead of going to a place.  A cue anchored on another track ("just right of the piano")
    is applied after the others, from where that track ended up.
    """
    by_name = {s.track: s for s in sources}
    explicit: set[str] = set()
    centred: set[str] = set()   # put in the middle by a cue's own value: stacked there, not fanned
    tag = "edit" if edit else "cue"
    for cue in sorted(parsed.cues, key=lambda c: c.anchor is not None):
        group = [by_name[t] for t in cue.tracks if t in by_name]
        why = f"{tag}: '{cue.text}'"
        relative = dict(cue.relative)
        values = dict(cue.values)
        if not edit:
            for key, v in cue.fallback.items():
                relative.pop(key, None)
                values.setdefault(key, v)
        else:
            for key, v in cue.edit_relative.items():
                values.pop(key, None)
                relative[key] = relative.get(key, 0.0) + v
        for s in group:
            for key, v in values.items():
                setattr(s, key, float(v))
                said = cue.precedence.get(key)
                s.provenance[key] = f"{why} ({said})" if said else why
            if values.get("azimuth_deg") == 0.0:
                centred.add(s.track)
            rel = relative
            if "azimuth_deg" in rel:
                s.azimuth_deg = shift_lateral(s.azimuth_deg, rel["azimuth_deg"])
                s.provenance["azimuth_deg"] = f"{why} ({rel['azimuth_deg']:+.0f} deg towards the left)"
            if "width_deg" in rel:
                s.azimuth_deg = _widen(s.azimuth_deg, rel["width_deg"])
                s.provenance["azimuth_deg"] = f"{why} ({rel['width_deg']:+.0f} deg away from the centre)"
            if "elevation_deg" in rel:
                s.elevation_deg = float(np.clip(s.elevation_deg + rel["elevation_deg"], -90.0, 90.0))
                s.provenance["elevation_deg"] = f"{why} ({rel['elevation_deg']:+.0f} deg)"
            if "distance_m" in rel:
                s.distance_m = max(MIN_DISTANCE_M, s.distance_m + rel["distance_m"])
                s.provenance["distance_m"] = f"{why} ({rel['distance_m']:+.2f} m)"
            if "distance_scale" in rel:
                s.distance_m = max(MIN_DISTANCE_M, s.distance_m * rel["distance_scale"])
                s.provenance["distance_m"] = f"{why} (x{rel['distance_scale']:.2f})"
            if "gain_db" in rel:
                s.gain_db = float(s.gain_db + rel["gain_db"])
                s.provenance["gain_db"] = f"{why} ({rel['gain_db']:+.1f} dB)"
            if cue.anchor is not None and cue.anchor[1] in by_name and cue.anchor[1] != s.track:
                relation, anchor = cue.anchor
                s.azimuth_deg, how = _anchored_azimuth(relation, by_name[anchor].azimuth_deg)
                s.provenance["azimuth_deg"] = (f"{why} ({anchor} at {by_name[anchor].azimuth_deg:.0f} deg; {how})")
            if cue.kinds() & {"azimuth_deg", "elevation_deg", "distance_m"}:
                explicit.add(s.track)
        if cue.spread_deg is not None and group:
            spread = float(cue.spread_deg)
            ordered = sorted(group, key=lambda s: -_side(s.track))
            n = len(ordered)
            for i, s in enumerate(ordered):
                if n == 1:
                    s.azimuth_deg = spread * (_side(s.track) or 1)
                else:
                    s.azimuth_deg = spread - 2.0 * spread * i / (n - 1)
                s.provenance["azimuth_deg"] = f"{why} (spread +-{spread:.0f} deg)"
                explicit.add(s.track)
    _spread_identical(sources, explicit, centred)
    return explicit


def _spread_identical(sources: list[SourcePlacement], explicit: set[str], centred: set[str] = frozenset()) -> None:
    """Tracks a cue put on exactly the same spot are fanned out ``GROUP_SPACING_DEG`` apart,
    except tracks a cue itself put in the middle (``centred``): "kick and bass centre", "voiceover
    and jingle both to the middle" are stacked there as asked (the low end stays mono; two
    independent writers' labels, batches 11 and 13, want exactly 0).  A pair narrowed until it
    meets in the middle is still fanned."""
    spots: dict[tuple, list[SourcePlacement]] = {}
    for s in sources:
        if s.track in explicit and not (s.track in centred and s.azimuth_deg == 0.0):
            spots.setdefault((round(s.azimuth_deg, 3), round(s.elevation_deg, 3), round(s.distance_m, 3)), []).append(s)
    for (az, _, _), group in spots.items():
        if len(group) < 2:
            continue
        group.sort(key=lambda s: -_side(s.track))
        n = len(group)
        for i, s in enumerate(group):
            off = GROUP_SPACING_DEG * ((n - 1) / 2.0 - i)
            s.azimuth_deg = shift_lateral(az, off) if abs(az) < 90 else wrap_azimuth_deg(az - off)
            s.provenance["azimuth_deg"] += f" (fanned {off:+.0f} deg so the {n} tracks stay distinct)"


def apply_swaps(sources: list[SourcePlacement], parsed: ParseResult) -> None:
    by_name = {s.track: s for s in sources}
    for a, b, text in parsed.swaps:
        sa, sb = by_name[a], by_name[b]
        for key in ("azimuth_deg", "elevation_deg", "distance_m"):
            va, vb = getattr(sa, key), getattr(sb, key)
            setattr(sa, key, vb)
            setattr(sb, key, va)
            sa.provenance[key] = f"edit: '{text}' (took {b}'s place)"
            sb.provenance[key] = f"edit: '{text}' (took {a}'s place)"


def apply_mirrors(sources: list[SourcePlacement], parsed: ParseResult) -> None:
    for tracks, text in parsed.mirrors:
        for s in sources:
            if not tracks or s.track in tracks:
                s.azimuth_deg = wrap_azimuth_deg(-s.azimuth_deg)
                s.provenance["azimuth_deg"] = f"edit: '{text}' (mirrored left/right)"


def _collides(a: SourcePlacement, b: SourcePlacement) -> bool:
    ratio = max(a.distance_m, b.distance_m) / max(min(a.distance_m, b.distance_m), 1e-6)
    return (ratio < SIMILAR_DISTANCE_RATIO and
            great_circle_deg(a.azimuth_deg, a.elevation_deg, b.azimuth_deg, b.elevation_deg) < MIN_SEPARATION_DEG)


def resolve_collisions(sources: list[SourcePlacement], fixed: set[str]) -> None:
    """Move every "free spot" source, and every seat a cue landed on, until it is clear of the rest:
    steps of ``SEARCH_STEP_DEG`` alternating sides, up to 90 deg.  ``fixed`` tracks never move."""
    pinned = [s for s in sources if s.track in fixed]
    settled = list(pinned)
    movers = []
    for s in sources:
        if s.track in fixed:
            continue
        # a template seat stays unless a cue put another source on it; free spots always check
        if "free spot" in s.provenance.get("azimuth_deg", "") or any(_collides(s, p) for p in pinned):
            movers.append(s)
        else:
            settled.append(s)
    for s in movers:
        start = s.azimuth_deg
        for k in range(0, int(90 / SEARCH_STEP_DEG) + 1):
            found = False
            for sign in ((1,) if k == 0 else (1, -1)):
                s.azimuth_deg = shift_lateral(start, sign * k * SEARCH_STEP_DEG)
                if not any(_collides(s, o) for o in settled):
                    found = True
                    break
            if found:
                break
        if s.azimuth_deg != start:
            s.provenance["azimuth_deg"] += f" (moved {s.azimuth_deg - start:+.0f} deg to stay clear of other sources)"
        settled.append(s)


def _where(s: SourcePlacement) -> str:
    az = s.azimuth_deg
    if abs(az) < 3:
        side = "centre"
    elif abs(az) > 177:
        side = "directly behind"
    else:
        side = f"{abs(az):.0f} deg {'left' if az > 0 else 'right'}" + (" (behind)" if abs(az) > 90 else "")
    el = f", {s.elevation_deg:+.0f} deg up" if abs(s.elevation_deg) >= 3 else ""
    return f"{s.track} {side}{el} at {s.distance_m:.1f} m"


def music_description(plan: Plan, template: dict | None, room: dict | None) -> str:
    m = plan.music or {}
    roles = ", ".join(dict.fromkeys(s.role.replace("_", " ") for s in plan.sources if s.role)) or "the session's tracks"
    head = template["name"] if template else "A custom scene"
    room_name = room["name"] if room and "name" in room else plan.room.replace("_", " ")
    return (f"{head} in {room_name}: {roles}; {m.get('style', '')} at {m.get('tempo_bpm', 0):.0f} bpm in "
            f"{m.get('key', '')}, {m.get('meter', '4/4')}, {m.get('bars', 8)} bars. "
            + "; ".join(_where(s) for s in plan.sources) + ".")


def mix_notes(plan: Plan, parsed: ParseResult, ranked) -> str:
    notes = []
    if ranked:
        best, score = ranked[0]
        runner = f"; runner-up {ranked[1][0]} {ranked[1][1]:.2f}" if len(ranked) > 1 else ""
        chosen = plan.template or "none (explicit cues only)"
        notes.append(f"Template {chosen} (retrieval {best} {score:.2f}{runner}).")
    if parsed.cues or parsed.swaps or parsed.mirrors:
        notes.append(f"{len(parsed.cues) + len(parsed.swaps) + len(parsed.mirrors)} explicit cue(s) applied exactly.")
    rear = [s.track for s in plan.sources if abs(s.azimuth_deg) > 110]
    if rear:
        notes.append(f"{', '.join(rear)} behind the listener: front/back confusions are common with a generic "
                     "HRTF over headphones (Wenzel et al. 1993, JASA 94); a little elevation or head "
                     "tracking helps, and stereo renders fold them to the front.")
    low = [s.track for s in plan.sources if s.role in ("bass", "drums") and abs(s.azimuth_deg) > 30]
    if low:
        notes.append(f"{', '.join(low)} carry the low end off-centre; keep the kick and bass near the middle "
                     "if the mix must survive mono playback.")
    far = [s.track for s in plan.sources if s.distance_m > 10]
    if far:
        notes.append(f"{', '.join(far)} sit beyond 10 m: their direct sound is quiet (1/r) and the room carries them.")
    close = [s.track for s in plan.sources if s.distance_m < 1.0]
    if close:
        notes.append(f"{', '.join(close)} within 1 m: expect a strong proximity impression and level.")
    return " ".join(notes)
