"""Documented balance targets for prior mode (no reference), and how tracks get their roles.

A set that is one ensemble of like parts - a four-part choir, a string quartet - gets the
per-part targets of :mod:`.ensembles` (derived on the tuning split of the bench's rendered
scores).  Anything else gets two priors, each with its source; nothing here is tuned on our own
fixtures.

* **Lead vocal to accompaniment ratio (LAR).**  Gerdes, K. & Siedenburg, K. (2023),
  "Lead-vocal level in recordings of popular music 1946-2020", JASA Express Letters 3, 043201,
  doi:10.1121/10.0017773.  Billboard year-end songs: the average LAR fell from about +5 dB to
  about +1 dB by 1975 and stayed there; across Grammy nominees 1990-2020 it is positive for
  country, rap and pop, about 0 dB for rock and negative for metal; solo artists sit higher than
  bands.  The abstract gives the +1 dB average and the ordering; the per-genre centres below are
  our approximate reading of the paper's genre figure, and the tolerances are the spread we
  allow around them, so genre values carry a lower confidence than the overall average.
* **Equal loudness between accompaniment tracks.**  The rule of autonomous fader control that
  listeners rated close to human mixes: Mansbridge, S., Finn, S. & Reiss, J. D. (2012),
  "Implementation and evaluation of autonomous multi-track fader control", AES 132nd Convention,
  paper 8588.  Mixing practice deviates from it (drums and bass often sit higher), so its
  confidence is modest.

The accompaniment is the power sum of every non-lead track, its loudness computed from
BS.1770 block powers (:meth:`MixAnalysis.loudness_of_sum`).

A drum kit split into one track per drum (two or more kit pieces: kick, snare, hi-hat, ...)
is one accompaniment source - the power sum of its pieces - for the equal-loudness target, and
each piece gets a level relative to the kit's sum (:mod:`.kit_prior`, learned on the tuning
split's LMMS projects).  A single "Drums" track is an ordinary accompaniment track.
"""
from __future__ import annotations

import re

import numpy as np

from stase.agent.advisor.analysis import MixAnalysis
from stase.agent.advisor.ensembles import ensemble_gains, ensemble_parts
from stase.agent.advisor import kit_prior

GERDES_SIEDENBURG_2023 = ("Gerdes & Siedenburg 2023, JASA Express Lett. 3:043201 "
                          "(lead-vocal-to-accompaniment ratio in popular music)")
MANSBRIDGE_2012 = ("Mansbridge, Finn & Reiss 2012, AES 132nd Conv. paper 8588 "
                   "(equal-loudness autonomous fader control)")

#: genre -> (LAR target dB, tolerance dB, confidence).  See the module docstring for the source.
LAR_PRIORS_DB: dict[str, tuple[float, float, float]] = {
    "default": (1.0, 1.5, 0.6),   # post-1975 average, abstract of the paper
    "pop": (1.0, 1.0, 0.6),
    "rock": (0.0, 1.0, 0.6),
    "country": (3.0, 1.5, 0.45),  # "highest" in the paper; value read approximately
    "rap": (2.0, 1.5, 0.45),
    "metal": (-1.5, 1.5, 0.45),
}
#: tolerance (LU) and confidence of the equal-loudness accompaniment prior.
EQUAL_LOUDNESS_TOLERANCE_LU = 1.0
EQUAL_LOUDNESS_CONFIDENCE = 0.45
#: roles the LAR prior applies to.
LEAD_ROLES = ("lead_vocal",)
#: whether a kit split into pieces is one accompaniment source (:mod:`.kit_prior`).  Off: on the
#: tuning LMMS projects it moved prior mode from 3.11 / 11.24 dB (median / p90 residual) to
#: 3.60 / 9.92 dB, unmoved tracks told > 2 dB 63.9 -> 65.9 % (docs/advisor.md, "Drum kits").
KIT_RULE = False

_GENRE_WORDS = {
    "rock": ("rock", "indie", "punk", "grunge", "garage", "britpop", "blues_rock"),
    "metal": ("metal", "metalcore", "thrash", "doom"),
    "country": ("country", "americana", "bluegrass", "folk"),
    "rap": ("rap", "hip_hop", "hiphop", "hip-hop", "trap", "grime", "drill"),
    "pop": ("pop", "synthpop", "dance", "disco", "edm", "rnb", "r&b", "soul", "funk"),
}

# last-resort name -> role table, used only when neither the plan nor stase.agent.lexicon knows the track
_ROLE_WORDS = (
    ("backing_vocals", ("backing", "bvs", "bv", "harmony", "harmonies", "choir", "backs")),
    ("lead_vocal", ("vocal", "vox", "voice", "lead vox", "singer", "vocals", "lv")),
    ("drums", ("drum", "drums", "kit", "kick", "snare", "overhead", "oh", "hats", "hihat")),
    ("bass", ("bass", "sub", "808")),
    ("electric_guitar", ("gtr", "guitar", "guitars", "egtr")),
    ("acoustic_guitar", ("acoustic", "agtr")),
    ("piano", ("piano", "keys", "rhodes", "wurli")),
    ("organ", ("organ", "hammond")),
    ("synth_pad", ("pad", "pads")),
    ("synth_lead", ("synth", "lead synth")),
    ("strings", ("strings", "string", "violin", "viola", "cello")),
    ("brass", ("brass", "horn", "horns", "trumpet", "trombone")),
    ("saxophone", ("sax", "saxophone")),
    ("percussion", ("perc", "percussion", "shaker", "tamb", "conga")),
)


def genre_of(plan=None, genre: str | None = None) -> str:
    """The LAR genre key for an explicit genre or a plan (style, template, notes); else default."""
    texts = [genre] if genre else []
    if plan is not None:
        music = plan.music or {}
        texts += [str(music.get("style", "")), str(music.get("template", "")), str(plan.template or ""),
                  plan.music_description or ""]
    for text in texts:
        words = set(re.split(r"[^a-z0-9&_\-]+", str(text).lower()))
        for key, names in _GENRE_WORDS.items():
            if words & set(names) or str(text).lower() == key:
                return key
    return "default"


def role_from_name(track: str) -> str | None:
    """A role guessed from a track name: :func:`stase.agent.lexicon.match_track_role`, else (a name the
    lexicon does not know) a small word table of the advisor's own."""
    from stase.agent.lexicon import match_track_role
    role = match_track_role(track)
    if role:
        return role
    words = re.split(r"[^a-z0-9]+", track.lower())
    joined = " ".join(w for w in words if w)
    for role, names in _ROLE_WORDS:
        if any(n in words or (" " in n and n in joined) for n in names):
            return role
    return None


def resolve_roles(tracks, plan=None, roles: dict[str, str] | None = None) -> dict[str, str | None]:
    """Role per track: explicit ``roles``, the plan's sources, ``plan.music.instruments``, the name."""
    out: dict[str, str | None] = {}
    instruments = {}
    if plan is not None and isinstance(plan.music, dict):
        for item in plan.music.get("instruments") or []:
            if isinstance(item, dict) and item.get("track") and item.get("role"):
                instruments[str(item["track"]).lower()] = str(item["role"])
    for t in tracks:
        role = (roles or {}).get(t)
        if role is None and plan is not None:
            try:
                role = plan.source(t).role
            except KeyError:
                role = None
        role = role or instruments.get(t.lower())
        out[t] = role or role_from_name(t)
    return out


def prior_gains(analysis: MixAnalysis, roles: dict[str, str | None], genre: str | None = None,
                plan=None, anchor: str = "median", dead_band: bool = True, kit: bool | None = None):
    """Gain changes (dB) that bring a mix to the documented priors.

    Parameters
    ----------
    analysis : the current stems' analysis.
    roles : {track: role or None}; ``lead_vocal`` tracks get the LAR prior, the rest equal loudness,
        unless every audible track is a part of a choir or a string quartet
        (:func:`.ensembles.ensemble_parts`): then each part gets its own target.
    genre, plan : pick the LAR genre (:func:`genre_of`).
    anchor : "median" leaves the median accompaniment track where it is (fewest fader moves);
        "none" is the same here and exists for symmetry with the differential solver.
    dead_band : leave tracks alone that are already within the prior's tolerance.
    kit : treat two or more kit pieces as one accompaniment source with kit-relative piece
        targets (:mod:`.kit_prior`); None = :data:`KIT_RULE`.

    Returns
    -------
    gains_db : {track: dB} for every non-silent track (silent ones are left out).
    details : {track: dict} the measured value, target, tolerance, confidence and citation
        (``kind`` "equal_loudness", "lar", "ensemble" or "kit"; a kit piece's ``kit`` entry holds
        the kit's own equal-loudness numbers).
    """
    genre_key = genre_of(plan, genre)
    audible = [t for t, s in analysis.stems.items() if not s.silent]
    found = ensemble_parts(analysis, audible, roles)
    if found is not None:
        return ensemble_gains(analysis, *found, dead_band=dead_band)
    leads = [t for t in audible if roles.get(t) in LEAD_ROLES]
    accompaniment = [t for t in audible if t not in leads]
    gains: dict[str, float] = {}
    details: dict[str, dict] = {}
    pieces = kit_prior.kit_pieces(accompaniment, roles) if (KIT_RULE if kit is None else kit) else None
    # the accompaniment sources: each track, except the kit pieces, which are one source
    sources = [[t] for t in accompaniment if not pieces or t not in pieces] + ([list(pieces)] if pieces else [])
    if pieces:
        inside, kit_details = kit_prior.kit_gains(analysis, pieces, dead_band)
    if accompaniment:
        # the kit's sum counts against the others' centre less its own target (0: equal loudness)
        levels = np.array([analysis.stems[s[0]].integrated_lufs if len(s) == 1 else
                           analysis.loudness_of_sum(s, [inside[t] for t in s]) - kit_prior.KIT_VS_ACCOMPANIMENT_LU
                           for s in sources])
        centre = float(np.median(levels))
        for source, level in zip(sources, levels):
            deviation = float(level - centre)
            within = abs(deviation) <= EQUAL_LOUDNESS_TOLERANCE_LU and len(sources) > 1
            move = 0.0 if (dead_band and within) else -deviation
            equal = {"measured_lu": deviation, "target_lu": 0.0,
                     "tolerance_lu": EQUAL_LOUDNESS_TOLERANCE_LU, "within": within,
                     "confidence": EQUAL_LOUDNESS_CONFIDENCE if len(sources) > 1 else 0.0,
                     "citation": MANSBRIDGE_2012, "n_accompaniment": len(sources)}
            if len(source) == 1 and not (pieces and source[0] in pieces):
                t = source[0]
                gains[t] = move
                details[t] = {"kind": "equal_loudness", **equal, "role_known": roles.get(t) is not None}
                continue
            for t in source:
                piece = kit_details[t]
                gains[t] = inside[t] + move
                # as sure as the prior(s) that move it: the piece's target, the kit's equal loudness
                sure = [c for c, moved in ((piece["confidence"], inside[t] != 0.0),
                                           (equal["confidence"], move != 0.0)) if moved]
                details[t] = {"kind": "kit", **piece, "within": piece["within"] and within,
                              "confidence": min(sure) if sure else piece["confidence"],
                              "kit": {**equal, "move_db": move, "tracks": list(source)}}
    target, tolerance, confidence = LAR_PRIORS_DB[genre_key]
    for t in leads:
        if not accompaniment:
            gains[t] = 0.0
            details[t] = {"kind": "lar", "confidence": 0.0, "citation": GERDES_SIEDENBURG_2023,
                          "measured_lu": None, "target_lu": target, "tolerance_lu": tolerance,
                          "genre": genre_key, "within": True, "note": "no accompaniment to compare with"}
            continue
        accompaniment_lufs = analysis.loudness_of_sum(accompaniment, [gains[a] for a in accompaniment])
        lar = analysis.stems[t].integrated_lufs - accompaniment_lufs
        within = abs(lar - target) <= tolerance
        gains[t] = 0.0 if (dead_band and within) else float(target - lar)
        details[t] = {"kind": "lar", "measured_lu": float(lar), "target_lu": target,
                      "tolerance_lu": tolerance, "within": within, "confidence": confidence,
                      "genre": genre_key, "citation": GERDES_SIEDENBURG_2023}
    return gains, details


def equal_loudness_gains(analysis: MixAnalysis) -> dict[str, float]:
    """The naive baseline: every audible track to the median loudness, roles ignored."""
    audible = {t: s.integrated_lufs for t, s in analysis.stems.items() if not s.silent}
    centre = float(np.median(list(audible.values()))) if audible else 0.0
    return {t: centre - level for t, level in audible.items()}
