"""Section balance for ensembles of like parts: four-part choirs and string quartets.

Prior mode's popular-music targets (:mod:`.priors`) treat every track that is not a lead vocal as
"accompaniment" and ask for equal loudness.  In a chorale or a quartet that is wrong in a known
way: the top part carries the tune, and a bowed cello or a bass voice reads quieter on a
BS.1770 meter than a violin or a soprano at the same dynamic (the K-weighting's +4 dB shelf
above 1.5 kHz favours the high parts).  So for these ensembles the target is a level per *part*,
relative to the ensemble.

Which ensemble, which part (:func:`ensemble_parts`)
---------------------------------------------------
By name first: Soprano / Alto / Tenor / Bass (also sop, contralto, baritone, basso; "Soprano 2"
is a soprano), Violin 1 / Violin 2 (I, II, 1st, 2nd, first, second), Viola, Cello (violoncello).
"Bass" is a bass *voice* only among other voice parts.  When the names give the family but not
the part (``Choir 1..4``, roles ``choir`` / ``violins`` / ``violas`` / ``cellos``), parts are
assigned by register: the spectral centroid of the stem over the frames where it plays
(:func:`register_hz`), highest first.  An ensemble is recognised only when every audible track is
one of its parts and there are 3 to 8 of them; anything else keeps the popular-music priors.

Learned targets (:mod:`.learned_prior`)
---------------------------------------
Where ``part_prior.json`` holds a model for the ensemble (fitted by ``tools/fit_part_prior.py``
on the tuning split, adopted only where it beat these fixed targets in nested cross-validation),
each part's target is predicted from gain-invariant features of what the parts play, when the
excerpt is at least as long as the fitted ones and every feature lies in the fitted range;
otherwise, and for ensembles without a model, the fixed targets below apply
(:func:`ensemble_gains`, :func:`part_gains` the closed form shared by both).

Targets (:data:`PART_TARGETS`), derived from the tuning split
--------------------------------------------------------------
Measured, not taken from a paper: no published study gives per-part loudness targets for
chorales or quartets that we could find, so the numbers come from the bench's realistic
multitracks (:mod:`bench.realistic_multitracks`: music21-corpus scores, one stem per part,
rendered by FluidSynth/FluidR3_GM with the score's own dynamics as velocities).  Only the
**tuning** split is used (works chosen by hash; the held-out split is never looked at while
deriving).  For each tuning piece and part: ``relative level = integrated loudness (LUFS) of the
part - median over the piece's parts``; then per part, over the pieces:

* ``target_lu`` = median of the relative levels;
* ``tolerance_lu`` = 80th percentile of ``|relative level - target|``, at least 1.0 LU (the
  equal-loudness prior's tolerance, about the jitter of BS.1770 on short excerpts).  The 80th
  was chosen over the 70th and 90th on the tuning quartets (bench prior mode: median residual
  0.82 / 0.83 / 0.98 dB, p90 3.09 / 3.10 / 3.48 dB, direction 95.3 / 95.3 / 89.2 %, unmoved
  tracks told over 2 dB 27 / 25 / 18 % for the 70th / 80th / 90th); the chorales' spread is
  under 1 LU, so the floor holds for them whatever the percentile;
* ``confidence`` = share of tuning pieces within 1 LU of the target, at most 0.8 (a prior never
  speaks as surely as a reference).

``python -m bench.realistic_multitracks derive`` recomputes the table from the cache and prints
it; the numbers below are its output of 2026-11-23 (36 chorales, 34 quartet movements).  They
describe sampled General MIDI instruments playing the scores' dynamics, not a recorded
performance: in those renders the two violins sit about 2.5 LU over viola and cello, the second
violin as loud as the first (its accompaniment figures are busy, the same GM violin plays both),
and the chorale soprano, the melody, 1.6 LU over the median voice.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from stase.agent.advisor.analysis import MixAnalysis

LEARNED_DERIVATION = "tools/fit_part_prior.py on the tuning split; agent/advisor/part_prior.json"
DERIVATION = ("derived on the tuning split of bench/realistic_multitracks (music21 scores rendered "
              "with their own dynamics; python -m bench.realistic_multitracks derive)")


@dataclass(frozen=True)
class PartTarget:
    """A part's level relative to the ensemble's median part, with its spread on the tuning set."""

    target_lu: float
    tolerance_lu: float
    confidence: float
    pieces: int


ENSEMBLE_NAMES = {"choir": "four-part choir", "string_quartet": "string quartet"}
#: part order, top to bottom, per ensemble; the top part carries the melody.
ENSEMBLE_ORDER = {"choir": ("soprano", "alto", "tenor", "bass"),
                  "string_quartet": ("violin1", "violin2", "viola", "cello")}
PART_WORDS = {"soprano": "Soprano", "alto": "Alto", "tenor": "Tenor", "bass": "Bass",
              "violin1": "first violin", "violin2": "second violin", "viola": "viola", "cello": "cello"}
MELODY_PART = {"choir": "soprano", "string_quartet": "violin1"}

#: python -m bench.realistic_multitracks derive, tuning split (see the module docstring).
PART_TARGETS: dict[str, dict[str, PartTarget]] = {
    "choir": {                                   # 36 chorales; quartiles in the comments
        "soprano": PartTarget(1.64, 1.0, 0.8, 36),   # +1.31 .. +1.83
        "alto": PartTarget(0.26, 1.0, 0.8, 36),      # -0.03 .. +0.45
        "tenor": PartTarget(-0.71, 1.0, 0.8, 36),    # -1.15 .. -0.52
        "bass": PartTarget(-0.26, 1.0, 0.8, 36),     # -0.46 .. +0.03
    },
    "string_quartet": {                          # 34 movements
        "violin1": PartTarget(1.11, 1.6, 0.56, 34),  # +0.25 .. +2.26
        "violin2": PartTarget(1.25, 1.8, 0.68, 34),  # +0.92 .. +1.96
        "viola": PartTarget(-1.21, 1.2, 0.65, 34),   # -1.95 .. -0.79
        "cello": PartTarget(-1.35, 2.2, 0.47, 34),   # -2.41 .. -0.33
    },
}
MIN_PARTS, MAX_PARTS = 3, 8

#: roles that make an unnamed track a choir part (a lead or backing vocal belongs to a band)
_VOICE_ROLES = ("choir",)
_STRING_ROLES = {"violins": "violin", "violas": "viola", "cellos": "cello"}
_VOICE_WORDS = {"soprano": "soprano", "sopranos": "soprano", "sop": "soprano", "sopran": "soprano",
                "treble": "soprano", "alto": "alto", "altos": "alto", "contralto": "alto",
                "tenor": "tenor", "tenors": "tenor", "bass": "bass", "basses": "bass",
                "basso": "bass", "baritone": "bass", "bariton": "bass"}
_SECOND = ("2", "ii", "2nd", "second", "vl2", "vln2", "vn2")
_FIRST = ("1", "i", "1st", "first", "vl1", "vln1", "vn1")


def _words(track: str) -> list[str]:
    spaced = re.sub(r"([a-z])(\d)", r"\1 \2", track.lower())
    return [w for w in re.split(r"[^a-z0-9]+", spaced) if w]


def _named_part(track: str) -> tuple[str, str | None] | None:
    """(family, part or None) from a track name: ("voice", "alto"), ("string", "violin2"), ..."""
    words = _words(track)
    for w in words:
        if w in _VOICE_WORDS:
            return "voice", _VOICE_WORDS[w]
    if any(w in ("cello", "cellos", "violoncello", "vc", "vlc") for w in words):
        return "string", "cello"
    if any(w in ("viola", "violas", "vla", "va") for w in words):
        return "string", "viola"
    if any(w in ("violin", "violins", "vln", "vl", "vn", "fiddle") for w in words) \
            or any(w[:3] in ("vl1", "vl2") for w in words):
        if any(w in _SECOND for w in words):
            return "string", "violin2"
        if any(w in _FIRST for w in words):
            return "string", "violin1"
        return "string", "violin"
    return None


def register_hz(analysis: MixAnalysis, track: str) -> float:
    """Spectral centroid (Hz) of a stem over the frames where it plays: its register, roughly.

    The centroid is taken on the ERB-rate scale (power-weighted mean band number per frame, median
    over playing frames), then converted back to Hz, so a bright timbre moves it less than a plain
    mean in Hz would.
    """
    s = analysis.stems[track]
    frames = s.band_db[s.active] if np.any(s.active) else s.band_db
    power = 10.0 ** (frames.astype(np.float64) / 10.0)
    index = np.arange(power.shape[1])
    centroid = np.median((power * index).sum(axis=1) / np.maximum(power.sum(axis=1), 1e-30))
    centres = analysis.band_centres_hz
    return float(np.interp(centroid, index, centres))


def part_gains(loudness_lufs, targets_lu, tolerances_lu, dead_band: bool = True):
    """The closed form of prior mode for an ensemble: gains (dB) that bring each part to its target.

    Each part's deviation is its loudness minus its target; the anchor is the largest group of
    parts that agree (:func:`.anchor.consensus_anchor`), the parts in it are left alone (with
    ``dead_band``) and the others are told ``anchor - deviation``.

    Returns
    -------
    gains_db (n,), deviation_lu (n,), anchor_lu, agree (n,) bool
    """
    from stase.agent.advisor.anchor import consensus_anchor
    deviation = np.asarray(loudness_lufs, float) - np.asarray(targets_lu, float)
    anchor, agree = consensus_anchor(deviation, np.asarray(tolerances_lu, float))
    gains = np.where(agree & dead_band, 0.0, anchor - deviation)
    return gains, deviation, anchor, agree


def ensemble_gains(analysis: MixAnalysis, ensemble: str, parts: dict[str, str],
                   how: dict[str, str], dead_band: bool = True, models=None):
    """Gain changes (dB) that bring each part to its target level (:func:`part_gains`).

    The target of a part is the learned prior's (:mod:`.learned_prior`: it follows what the
    parts play) when the ensemble has a fitted model and every track is a different part of it;
    otherwise the fixed :data:`PART_TARGETS`.

    Returns
    -------
    gains_db, details : as :func:`.priors.prior_gains` (details ``kind`` = "ensemble";
    ``target_from`` = "learned" | "fixed", ``contributions_lu`` the learned terms).
    """
    from stase.agent.advisor.learned_prior import learned_targets
    tracks = list(parts)
    learned = learned_targets(analysis, parts, ensemble, models) if all(p in ENSEMBLE_ORDER[ensemble]
                                                                        for p in parts.values()) else None
    if learned is not None:
        target_lu = [learned[t][0] for t in tracks]
        tolerance = [learned[t][1] for t in tracks]
        confidence = [learned[t][2] for t in tracks]
        pieces = [None] * len(tracks)
    else:
        fixed = [PART_TARGETS[ensemble][parts[t]] for t in tracks]
        target_lu = [p.target_lu for p in fixed]
        tolerance = [p.tolerance_lu for p in fixed]
        confidence = [p.confidence for p in fixed]
        pieces = [p.pieces for p in fixed]
    loudness = np.array([analysis.stems[t].integrated_lufs for t in tracks])
    gain, deviation, anchor, agree = part_gains(loudness, target_lu, tolerance, dead_band)
    melody = MELODY_PART[ensemble]
    gains, details = {}, {}
    for i, t in enumerate(tracks):
        gains[t] = float(gain[i])
        details[t] = {"kind": "ensemble", "ensemble": ensemble, "part": parts[t], "part_from": how[t],
                      "measured_lu": float(deviation[i] - anchor + target_lu[i]),
                      "target_lu": float(target_lu[i]), "tolerance_lu": float(tolerance[i]),
                      "within": bool(agree[i]),
                      "confidence": confidence[i] * (1.0 if how[t] == "name" else 0.7),
                      "pieces": pieces[i], "melody": parts[t] == melody,
                      "target_from": "learned" if learned is not None else "fixed",
                      "contributions_lu": dict(learned[t][3]) if learned is not None else {},
                      "rows": learned[t][4] if learned is not None else None,
                      "n_agree": int(agree.sum()), "n_parts": len(tracks),
                      "citation": LEARNED_DERIVATION if learned is not None else DERIVATION}
    return gains, details


def ensemble_parts(analysis: MixAnalysis, tracks, roles: dict[str, str | None]):
    """The ensemble these tracks form and each track's part, or None.

    Returns
    -------
    (ensemble, {track: part}, {track: "name" | "register"}) or None
    """
    tracks = list(tracks)
    if not MIN_PARTS <= len(tracks) <= MAX_PARTS:
        return None
    named = {t: _named_part(t) for t in tracks}
    # "Bass" is a voice only beside a part named soprano, alto or tenor (else it is a bass guitar)
    upper_voices = sum(1 for t in tracks if named[t] is not None and named[t][0] == "voice"
                       and named[t][1] != "bass")
    families = set()
    for t in tracks:
        role = roles.get(t)
        if named[t] is not None:
            family = named[t][0]
            if family == "voice" and named[t][1] == "bass" and (
                    upper_voices == 0 or role not in (None, "bass", *_VOICE_ROLES)):
                return None
        elif role in _VOICE_ROLES:
            family = "voice"
        elif role in _STRING_ROLES:
            family = "string"
        else:
            return None
        families.add(family)
    if len(families) != 1:
        return None
    ensemble = "choir" if families == {"voice"} else "string_quartet"
    order = ENSEMBLE_ORDER[ensemble]
    parts, how = {}, {}
    for t in tracks:
        part = named[t][1] if named[t] is not None else None
        if part is None and roles.get(t) in _STRING_ROLES:
            part = _STRING_ROLES[roles[t]]
        if part in order:
            parts[t], how[t] = part, "name"
    # the rest by register: unnamed voices anywhere, unnumbered violins among the violin parts
    left = [t for t in tracks if t not in parts]
    if left:
        if ensemble == "string_quartet":
            violins = [t for t in left if (named[t] or ("", None))[1] == "violin"
                       or roles.get(t) == "violins"]
            if len(violins) != len(left):
                return None
            free = [p for p in ("violin1", "violin2") if p not in parts.values()] or ["violin2"]
        else:
            free = [p for p in order if p not in parts.values()] or list(order)
        ranked = sorted(left, key=lambda t: -register_hz(analysis, t))
        for i, t in enumerate(ranked):
            # spread the unnamed tracks over the free parts, top to bottom
            parts[t] = free[min(len(free) - 1, int(i * len(free) / len(ranked)))]
            how[t] = "register"
    return ensemble, parts, how
