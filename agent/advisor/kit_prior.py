"""A drum kit split into one track per drum: one accompaniment source, pieces at kit-relative levels.

Many multitracks (every LMMS demo project of the bench, most sample-based productions) give each
drum sound its own track: kick, snare, each hi-hat, claps, a ride.  The equal-loudness
accompaniment prior (:mod:`.priors`) then asks a closed hi-hat to be as loud as the bass line.
With two or more kit pieces among the accompaniment, prior mode instead

1. treats the kit as ONE accompaniment source - the power sum of its pieces
   (:meth:`MixAnalysis.loudness_of_sum`) - in the equal-loudness target, and
2. gives each piece a target level relative to the kit's sum, by its class
   (:data:`KIT_TARGETS`); the pieces' deviations from those targets go through the same consensus
   anchor as the ensembles' parts (:func:`.ensembles.part_gains`: the pieces that agree stay,
   the others move), then the whole kit moves with its equal-loudness gain.

**Off by default** (:data:`stase.agent.advisor.priors.KIT_RULE`): on the tuning LMMS projects it
shortened the tail (p90 residual 11.24 -> 9.92 dB) but not the median (3.11 -> 3.60 dB), because
the authors' pieces spread by up to +-6 LU inside a kit and their kits sit from -1 to +8 LU
against the other tracks (docs/advisor.md, "Drum kits split into one track per drum").

Which tracks are kit pieces (:func:`kit_pieces`)
-----------------------------------------------
A track is a kit piece when its role (explicit, plan, else the lexicon's
:func:`stase.agent.lexicon.match_track_role`) is a drum or percussion role
(:data:`KIT_ROLES`) and its name holds a lexicon alias of one piece class (the alias the one
track-name matcher, :meth:`stase.agent.lexicon.Lexicon.find`, found; :data:`PIECE_OF_ALIAS`
maps it to a class).  A whole-kit track ("Drums", "Drum Bus", "Beat") is no piece: it stays an
ordinary accompaniment track, so a band with one "Drums" track is advised exactly as before.
The rule applies only when at least :data:`MIN_PIECES` tracks are pieces.

Targets (:data:`KIT_TARGETS`), learned on the tuning split's LMMS projects
--------------------------------------------------------------------------
No published reference we could find gives per-piece loudness for a split kit, so the numbers
are measured: :func:`derive_kit_targets` over the bench's LMMS demo projects
(:mod:`bench.lmms_multitracks`, the authors' faders; tuning split only, the held-out project is
never read).  Per project: ``relative level = piece LUFS - LUFS of the kit's power sum``; per
class, over the pieces of every tuning project: ``target_lu`` = median, ``tolerance_lu`` = 80th
percentile of ``|relative - target|`` (at least 1.0 LU), ``confidence`` = share within 1 LU of
the target (at most 0.8) - the summary the ensembles' part targets use.  Recompute with::

    python -c "from bench.realistic_multitracks import load_sets; \\
      from stase.agent.advisor.kit_prior import derive_from_pieces; \\
      print(derive_from_pieces(load_sets('tuning')))"
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stase.agent.advisor.analysis import MixAnalysis

#: roles whose tracks may be kit pieces (the lexicon's drum and percussion roles).
KIT_ROLES = ("drums", "percussion", "hand_drums")
#: the kit rule applies only with at least this many piece tracks.
MIN_PIECES = 2
#: the summary of :func:`derive_kit_targets` (the ensembles' part targets use the same).
TOLERANCE_PERCENTILE = 80
MIN_TOLERANCE_LU = 1.0
AGREEMENT_LU = 1.0
MAX_CONFIDENCE = 0.8

#: lexicon alias (normalised words) -> kit piece class.  Aliases the lexicon does not hold
#: ("bassdrum", "handclap", "cymbal") are listed so the classes stay right once it does.
PIECE_OF_ALIAS: dict[str, str] = {
    **{a: "kick" for a in ("kick", "kik", "kck", "kick in", "kick out", "bd", "bass drum", "bassdrum")},
    **{a: "snare" for a in ("snare", "snr", "sn", "sd", "clap", "claps", "handclap", "handclaps")},
    **{a: "hat" for a in ("hh", "hat", "hats", "hihat", "hi hat")},
    **{a: "cymbal" for a in ("ride", "crash", "oh", "ohs", "overhead", "overheads", "cymbal", "cymbals")},
    **{a: "tom" for a in ("tom", "toms", "floor tom", "rack tom")},
    **{a: "perc" for a in ("perc", "percussion", "shaker", "shakers", "tambourine", "tamb", "cowbell",
                           "triangle", "cabasa", "guiro")},
}
#: every alias of these roles is a hand percussion piece (conga, bongo, cajon, ...).
PERC_ROLES = ("hand_drums",)
PIECE_WORDS = {"kick": "kick", "snare": "snare or clap", "hat": "hi-hat", "cymbal": "cymbal",
               "tom": "tom", "perc": "percussion piece"}
DERIVATION = ("median over the kit pieces of the bench's tuning LMMS projects, level against the kit's "
              "power sum (authors' faders; agent/advisor/kit_prior.py derive_kit_targets)")


@dataclass(frozen=True)
class PieceTarget:
    """A kit piece's level relative to the kit's power sum, with its spread on the tuning set."""

    target_lu: float
    tolerance_lu: float
    confidence: float
    pieces: int


#: derive_from_pieces(load_sets("tuning")), 2026-12-01: the 9 tuning LMMS projects, 8 with two
#: or more pieces the lexicon names (quartiles in the comments).
KIT_TARGETS: dict[str, PieceTarget] = {
    "kick": PieceTarget(-3.0, 1.7, 0.56, 9),     # -3.43 .. -1.73, 7 projects
    "snare": PieceTarget(-4.73, 4.4, 0.27, 11),  # -7.77 .. -2.81, 7 projects (claps included)
    "hat": PieceTarget(-6.65, 6.0, 0.25, 12),    # -11.89 .. -3.54, 8 projects
    "cymbal": PieceTarget(-12.88, 2.5, 0.0, 4),  # -15.03 .. -11.22, 2 projects
    "perc": PieceTarget(-9.68, 2.7, 0.0, 2),     # -11.05 .. -8.31, 2 projects
    # no tom in the tuning projects: the snare's numbers (the nearest drum in level and role)
    "tom": PieceTarget(-4.73, 4.4, 0.27, 0),
}
#: the kit's sum against the other accompaniment sources' equal-loudness centre (LU); 0 = the
#: equal-loudness prior as cited (Mansbridge et al. 2012).
KIT_VS_ACCOMPANIMENT_LU = 0.0


def piece_of(track: str, role: str | None) -> str | None:
    """The kit piece class a track is (``"kick"``, ``"hat"``, ...), or None.

    ``role`` is the track's resolved role; only :data:`KIT_ROLES` tracks can be pieces.  The
    class comes from the alias the lexicon finds in the name, ranked by
    :func:`stase.agent.lexicon.hit_rank` (as :meth:`Lexicon.role_of` ranks them).
    """
    if role not in KIT_ROLES:
        return None
    from stase.agent import lexicon
    table = lexicon.get_lexicon()
    hits = [h for h in table.find(lexicon.normalise_words(track)) if h.role in KIT_ROLES]
    classes = []
    for h in hits:
        alias = h.alias if h.alias in PIECE_OF_ALIAS else h.alias[:-1]   # "kicks", "congas"
        piece = "perc" if h.role in PERC_ROLES else PIECE_OF_ALIAS.get(alias)
        if piece is not None:
            classes.append((lexicon.hit_rank(h), piece))
    return max(classes)[1] if classes else None


def kit_pieces(tracks, roles: dict[str, str | None]) -> dict[str, str] | None:
    """{track: piece class} of the kit pieces among ``tracks``, or None with fewer than
    :data:`MIN_PIECES` of them (then the kit rule does not apply)."""
    pieces = {}
    for t in tracks:
        piece = piece_of(t, roles.get(t))
        if piece is not None:
            pieces[t] = piece
    return pieces if len(pieces) >= MIN_PIECES else None


def kit_gains(analysis: MixAnalysis, pieces: dict[str, str], dead_band: bool = True, targets=None):
    """Gains (dB) inside the kit that bring each piece to its kit-relative target.

    Returns
    -------
    gains_db : {track: dB} (the kit's own equal-loudness move is added by :mod:`.priors`).
    details : {track: dict} ``measured_lu`` (against the kit's sum), ``target_lu``, ``tolerance_lu``,
        ``within``, ``confidence``, ``piece``, ``pieces`` (tuning pieces of the class), ``n_agree``,
        ``n_pieces``, ``citation``.
    """
    from stase.agent.advisor.ensembles import part_gains
    targets = KIT_TARGETS if targets is None else targets
    tracks = list(pieces)
    kit_lufs = analysis.loudness_of_sum(tracks)
    loudness = np.array([analysis.stems[t].integrated_lufs for t in tracks]) - kit_lufs
    chosen = [targets[pieces[t]] for t in tracks]
    target_lu = np.array([p.target_lu for p in chosen])
    gain, deviation, anchor, agree = part_gains(loudness, target_lu, [p.tolerance_lu for p in chosen],
                                                dead_band)
    gains, details = {}, {}
    for i, t in enumerate(tracks):
        gains[t] = float(gain[i])
        details[t] = {"piece": pieces[t], "measured_lu": float(deviation[i] - anchor + target_lu[i]),
                      "target_lu": float(target_lu[i]), "tolerance_lu": chosen[i].tolerance_lu,
                      "within": bool(agree[i]), "confidence": chosen[i].confidence,
                      "pieces": chosen[i].pieces, "n_agree": int(agree.sum()), "n_pieces": len(tracks),
                      "citation": DERIVATION}
    return gains, details


def derive_kit_targets(sets) -> dict:
    """Per piece class: the level relative to the kit's power sum, over balanced multitracks.

    Parameters
    ----------
    sets : iterable of (MixAnalysis, {track: role or None}): balanced multitracks (the tuning
        split's LMMS projects; never the held-out split).

    Returns
    -------
    {class: {"target_lu", "tolerance_lu", "confidence", "pieces", "projects", "q25_lu", "q75_lu"}}
    and, under ``"_kit_vs_accompaniment"``, the kit sum minus the median other accompaniment
    track (LU) per project: how well "the kit is one equal-loudness source" holds.
    """
    levels: dict[str, list[tuple[float, int]]] = {}
    kit_vs_rest = []
    for k, (analysis, roles) in enumerate(sets):
        audible = [t for t, s in analysis.stems.items() if not s.silent]
        pieces = kit_pieces(audible, roles)
        if pieces is None:
            continue
        kit_lufs = analysis.loudness_of_sum(list(pieces))
        for t, piece in pieces.items():
            levels.setdefault(piece, []).append((analysis.stems[t].integrated_lufs - kit_lufs, k))
        rest = [analysis.stems[t].integrated_lufs for t in audible
                if t not in pieces and roles.get(t) != "lead_vocal"]
        if rest:
            kit_vs_rest.append(round(float(kit_lufs - np.median(rest)), 2))
    out: dict = {}
    for piece, values in sorted(levels.items()):
        v = np.array([x for x, _ in values])
        target = float(np.median(v))
        deviation = np.abs(v - target)
        out[piece] = {
            "target_lu": round(target, 2),
            "tolerance_lu": round(max(MIN_TOLERANCE_LU, float(np.percentile(deviation, TOLERANCE_PERCENTILE))), 1),
            "confidence": round(min(MAX_CONFIDENCE, float(np.mean(deviation <= AGREEMENT_LU))), 2),
            "pieces": int(v.size), "projects": len({k for _, k in values}),
            "q25_lu": round(float(np.percentile(v, 25)), 2), "q75_lu": round(float(np.percentile(v, 75)), 2)}
    out["_kit_vs_accompaniment"] = kit_vs_rest
    return out


def derive_from_pieces(pieces) -> dict:
    """:func:`derive_kit_targets` over the bench's loaded pieces (``load_sets(split)``): the LMMS
    projects among them, analysed here, roles from their names."""
    from stase.agent.advisor.analysis import analyse_stems
    from stase.agent.advisor.priors import resolve_roles
    sets = ((analyse_stems(p["stems"], p["rate"]), resolve_roles(p["tracks"]))
            for p in pieces if p.get("ensemble") == "lmms_project")
    return derive_kit_targets(sets)
