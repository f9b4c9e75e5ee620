"""What the parser returns: cues, mentions and the parse result (records only, no logic).

Holds
-----
* :class:`Cue`: one spatial cue (absolute or relative azimuth / elevation / distance / gain, a
  ``±`` spread, a step, an anchor) with the tracks it goes to and the words it came from.
* :class:`Mention`: a span of the prompt that names session tracks (how it was found, its role).
* :class:`ParseResult`: what :func:`stase.agent.parser.parse_prompt` returns (mentions, cues,
  swaps, mirrors, unknown words, orphan cues, impossible values, whole-plan values, music words).

Every other parser module builds or reads these; they sit at the bottom of the parser package so
that none of its modules needs :mod:`stase.agent.parser` itself.  Units as
:mod:`stase.core.conventions`: azimuth in degrees, positive = left; distance in metres; gain in dB.
"""
from __future__ import annotations

from dataclasses import dataclass, field


# ------------------------------------------------------------------------------------------------
# Data
# ------------------------------------------------------------------------------------------------
@dataclass(slots=True)   # slots: a 100 kB prompt can hold ten thousand cues and mentions
class Cue:
    """One spatial statement about one or more tracks.

    ``values`` holds absolute settings (``azimuth_deg``, ``elevation_deg``, ``distance_m``,
    ``gain_db``); ``relative`` holds changes to apply to the track's current or template place
    (``azimuth_deg`` as a lateral shift towards the left when positive, ``distance_scale``,
    ``distance_m``, ``elevation_deg``, ``gain_db``); ``spread_deg`` spreads a group symmetrically.
    """

    text: str
    start: int
    end: int
    values: dict[str, float] = field(default_factory=dict)
    relative: dict[str, float] = field(default_factory=dict)
    spread_deg: float | None = None
    tracks: list[str] = field(default_factory=list)
    #: absolute reading of a relative phrase, used when there is no current plan ("5 m back")
    fallback: dict[str, float] = field(default_factory=dict)
    #: relative reading used in an edit instead of ``values`` ("a bit to the left": +5 deg)
    edit_relative: dict[str, float] = field(default_factory=dict)
    #: a place relative to another track: (relation, anchor track); relation is "left", "right"
    #: (of the anchor), "next", "opposite" or "same_side"
    anchor: tuple[str, str] | None = None
    #: the precedence class each value came from (quantity -> "number" / "named position" / "hedge")
    precedence: dict[str, str] = field(default_factory=dict)
    #: the relative quantities a complaint gave ("too narrow": ``width_deg``); in an edit a change
    #: of the same quantity said elsewhere in the request for the same track counts instead
    complaint: tuple[str, ...] = ()

    def kinds(self) -> set[str]:
        k = set(self.values) | set(self.relative)
        k.discard("reverb_db")
        if "distance_scale" in k:
            k.discard("distance_scale")
            k.add("distance_m")
        if "width_deg" in k:
            k.discard("width_deg")
            k.add("azimuth_deg")
        if self.spread_deg is not None or self.anchor is not None:
            k.add("azimuth_deg")
        return k


@dataclass(slots=True)
class Mention:
    """Words in the prompt naming session tracks (or, when ``tracks`` is empty, an instrument the
    session lacks: ``role``)."""

    text: str
    start: int
    end: int
    tracks: list[str]
    role: str | None = None
    how: str = "name"


@dataclass
class ParseResult:
    """Everything the parser understood, with the words each piece came from."""

    prompt: str
    cues: list[Cue] = field(default_factory=list)
    mentions: list[Mention] = field(default_factory=list)
    unknown: list[Mention] = field(default_factory=list)   # instrument mentions with cues but no track
    swaps: list[tuple[str, str, str]] = field(default_factory=list)  # (track_a, track_b, text)
    mirrors: list[tuple[list[str], str]] = field(default_factory=list)
    music: dict[str, object] = field(default_factory=dict)
    room_words: list[str] = field(default_factory=list)
    #: the prompt without its cue and mention words: what is left to describe a setting
    residual: str = ""
    #: clauses that order a placement ("put ... hard left") but name no session track
    orphans: list[str] = field(default_factory=list)
    #: whole-plan settings said in a clause naming no track: quantity -> (value, the words)
    #: (``reverb_db`` from "drenched in reverb", "keep it dry")
    plan_values: dict[str, tuple[float, str]] = field(default_factory=dict)
    #: values no placement can hold, as (the words, the bound they break): "150% left"
    impossible: list[tuple[str, str]] = field(default_factory=list)

    @property
    def has_cues(self) -> bool:
        return bool(self.cues or self.swaps or self.mirrors)

    def cues_for(self, track: str) -> list[Cue]:
        return [c for c in self.cues if track in c.tracks]
