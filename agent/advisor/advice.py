"""Ranked, explained gain proposals - the advisor's answer - built only from measured numbers.

:func:`advise` is the public entry point (``docs/CONTRACTS.md``)::

    advise(stems, sample_rate, reference=None, plan=None) ->
        {"tracks": [{"track", "gain_db", "confidence", "reasons": [str]}], "summary": str,
         "mode": "differential" | "prior", "warnings": [str]}

With a reference it runs :mod:`.differential`; without, :mod:`.priors`.  Every proposal carries
the measurements that justify it, in mixer language, plus what :mod:`.masking` says about who
covers the track.  ``rephrase`` (optional) lets a language model reword the summary only; the
reworded text is rejected unless every number in it appears in the original (so no number can
come from the model).
"""
from __future__ import annotations

import re
from typing import Callable

import numpy as np

from stase.agent.advisor.analysis import MixAnalysis, analyse_stems, check_sample_rate, prepare_stems
from stase.core.rates import resample_stems
from stase.agent.advisor.differential import DEAD_BAND_DB, differential_gains, match_tracks
from stase.agent.advisor.ensembles import ENSEMBLE_NAMES, PART_WORDS
from stase.agent.advisor.kit_prior import PIECE_WORDS
from stase.agent.advisor.masking import describe_bands, masking_analysis
from stase.agent.advisor.priors import prior_gains, resolve_roles

_GENRE_WORDS = {"default": "popular music since 1975"}
#: masking worth mentioning: share of the time the target plays.
MENTION_MASKING = 0.2
#: how a kit piece's target was found, in a reason's words.
DERIVATION_SHORT = "in the tuning split's LMMS projects (authors' faders)"


def _fmt_db(value: float) -> str:
    return f"{value:+.1f} dB"


def _masking_reasons(track: str, gain: float, masking, analysis: MixAnalysis, after) -> list[str]:
    if track not in masking.tracks or len(masking.tracks) < 2:
        return []
    i = masking.index(track)
    reasons = []
    if gain >= 0:
        j = int(np.argmax(masking.time_share[i]))
        share = masking.time_share[i, j]
        if share >= MENTION_MASKING:
            bands = describe_bands(masking.band_rate[i, j], masking.band_edges_hz)
            where = f" at {bands}" if bands else ""
            text = f"{masking.tracks[j]} masks it{where} {100 * share:.0f}% of the time it plays"
            if masking.release_db[i, j] > 0.5:
                text += f" (already counting about {masking.release_db[i, j]:.1f} dB of release from their placement)"
            reasons.append(text)
        rest = masking.rest_time_share[i]
        if rest >= MENTION_MASKING and after is not None and gain > 0:
            k = after.index(track)
            reasons.append(f"the rest of the mix masks it {100 * rest:.0f}% of the time; after this change "
                           f"{100 * after.rest_time_share[k]:.0f}%")
    else:
        j = int(np.argmax(masking.time_share[:, i]))
        share = masking.time_share[j, i]
        if share >= MENTION_MASKING:
            bands = describe_bands(masking.band_rate[j, i], masking.band_edges_hz)
            where = f" at {bands}" if bands else ""
            other = masking.tracks[j]
            reasons.append(f"it masks {other}{where} {100 * share:.0f}% of the time {other} plays")
    return reasons


def _level_facts(s) -> str:
    crest = f", crest {s.crest_db:.1f} dB" if s.crest_db is not None else ""
    return (f"measured {s.integrated_lufs:.1f} LUFS integrated, peak {s.peak_dbfs:.1f} dBFS{crest}, "
            f"plays {100 * s.activity:.0f}% of the time")


def _differential(current, reference, roles, ref_roles, warnings):
    pairs, unmatched_c, unmatched_r, how = match_tracks(current.stems, reference.stems, roles, ref_roles)
    if unmatched_c:
        warnings.append(f"no reference counterpart for {', '.join(unmatched_c)} (reference has "
                        f"{', '.join(sorted(reference.stems))}); no advice for them")
    if unmatched_r:
        warnings.append(f"reference tracks not in the current set: {', '.join(unmatched_r)}")
    for c, r in pairs.items():
        if current.stems[c].channels != reference.stems[r].channels:
            warnings.append(f"{c} has {current.stems[c].channels} channel(s) here and "
                            f"{reference.stems[r].channels} in the reference; BS.1770 sums channel "
                            "powers, so a dual-mono copy reads 3 dB louder than its mono original")
    offsets, common = differential_gains(current, reference, pairs)
    proposals = {}
    for c, off in offsets.items():
        dead = DEAD_BAND_DB[off.method]
        gain = 0.0 if abs(off.gain_db) < dead else off.gain_db
        if off.method == "aligned":
            confidence = float(np.clip(0.95 - 0.1 * off.spread_db, 0.3, 0.95))
            basis = (f"same performance as the reference (envelopes align): the reference is "
                     f"{_fmt_db(off.raw_db)} against this version, median over 400 ms blocks, "
                     f"spread {off.spread_db:.1f} dB")
            if abs(off.loudness_difference_db - off.raw_db) > 1.0:
                confidence *= 0.7
                basis += (f"; integrated loudness differs by {_fmt_db(off.loudness_difference_db)}, "
                          "so the versions are processed differently")
        else:
            confidence = 0.6
            basis = (f"integrated loudness is {_fmt_db(off.loudness_difference_db)} against the "
                     f"reference's {off.reference_track}")
        reasons = []
        if off.current_vs_rest_lu is not None and off.reference_vs_rest_lu is not None:
            side = "under" if off.current_vs_rest_lu < 0 else "over"
            reasons.append(f"{c} is {abs(off.current_vs_rest_lu):.1f} LU {side} the rest of the mix; "
                           f"in the reference it is {off.reference_vs_rest_lu:+.1f} LU")
        reasons.append(basis + (f" (overall level offset {_fmt_db(common)} ignored)" if abs(common) >= 0.5 else ""))
        if how.get(c) == "role":
            reasons.append(f"matched to reference track {off.reference_track} by role")
            confidence *= 0.8
        if gain == 0.0:
            reasons.insert(0, f"within {dead:.1f} dB of the reference balance: leave it")
        proposals[c] = (gain, confidence, reasons)
    for c, r in pairs.items():
        if c in offsets:
            continue
        if current.stems[c].silent:
            why = f"{c} is silent here but not in the reference: check it is not muted" \
                if not reference.stems[r].silent else f"{c} is silent in both sets"
        else:
            why = f"{r} is silent in the reference: nothing to compare with"
        proposals[c] = (0.0, 0.0, [why])
    for c in unmatched_c:
        proposals[c] = (0.0, 0.0, ["no track of this name (or role) in the reference"])
    return proposals


def _prior(current, roles, plan, genre, warnings):
    gains, details = prior_gains(current, roles, genre=genre, plan=plan)
    proposals = {}
    for t, gain in gains.items():
        d = details[t]
        confidence = d["confidence"] * (1.0 if d.get("role_known", True) else 0.6)
        reasons = []
        if d["kind"] == "ensemble":
            ensemble, part = ENSEMBLE_NAMES[d["ensemble"]], PART_WORDS[d["part"]]
            if d.get("target_from") == "learned":
                # the learned prior: say which features moved the target, largest first
                terms = sorted(d["contributions_lu"].items(), key=lambda kv: -abs(kv[1]))
                base = d["target_lu"] - sum(d["contributions_lu"].values())
                why = "".join(f" {value:+.1f} ({name})" for name, value in terms if abs(value) >= 0.05)
                source = (f"predicted from what the parts play: {base:+.1f} for the part{why}, by the "
                          f"part prior fitted on {d['rows']} parts of tuning pieces [{d['citation']}]")
            else:
                source = f"the median over {d['pieces']} tuning pieces [{d['citation']}]"
            reasons.append(f"{t} is {d['measured_lu']:+.1f} LU against the {ensemble}'s centre (set by the "
                           f"{d['n_agree']} of {d['n_parts']} parts that sit near their targets); target for the "
                           f"{part}: {d['target_lu']:+.1f} LU (+-{d['tolerance_lu']:.1f}), {source}")
            if d["melody"]:
                reasons.append(f"{t} is the top part, which carries the melody in a {ensemble}")
            if d["part_from"] == "register":
                reasons.append(f"the name does not say which part {t} is: taken as the {part} by its register "
                               "(spectral centroid) among the parts")
        elif d["kind"] == "kit":
            piece, kit = PIECE_WORDS[d["piece"]], d["kit"]
            reasons.append(f"{t} is {d['measured_lu']:+.1f} LU against the drum kit's sum (set by the "
                           f"{d['n_agree']} of {d['n_pieces']} kit pieces that sit near their targets); target "
                           f"for a {piece}: {d['target_lu']:+.1f} LU (+-{d['tolerance_lu']:.1f}), the median of "
                           f"{d['pieces']} such tracks {DERIVATION_SHORT} [{d['citation']}]")
            if kit["n_accompaniment"] < 2:
                reasons.append(f"the drum kit ({len(kit['tracks'])} tracks, one source) is the only "
                               "accompaniment: nothing to balance it against")
            else:
                side = "above" if kit["measured_lu"] > 0 else "below"
                reasons.append(f"the drum kit ({len(kit['tracks'])} tracks, taken as one source: their sum) is "
                               f"{abs(kit['measured_lu']):.1f} LU {side} the median accompaniment source; prior: "
                               f"equal loudness (+-{kit['tolerance_lu']:.1f} LU) [{kit['citation']}]")
        elif d["kind"] == "lar":
            if d["measured_lu"] is None:
                reasons.append("lead vocal with no accompaniment to balance against")
            else:
                side = "under" if d["measured_lu"] < 0 else "over"
                genre = _GENRE_WORDS.get(d["genre"], d["genre"])
                reasons.append(f"{t} is {abs(d['measured_lu']):.1f} LU {side} the accompaniment; the "
                               f"documented lead-to-accompaniment ratio for {genre} is "
                               f"{d['target_lu']:+.1f} dB (+-{d['tolerance_lu']:.1f}) [{d['citation']}]")
        else:
            if d["n_accompaniment"] < 2:
                reasons.append("the only accompaniment track: nothing to balance it against")
            else:
                side = "above" if d["measured_lu"] > 0 else "below"
                reasons.append(f"{t} is {abs(d['measured_lu']):.1f} LU {side} the median accompaniment "
                               f"track; prior: equal loudness (+-{d['tolerance_lu']:.1f} LU) [{d['citation']}]")
            if not d["role_known"]:
                reasons.append(f"role of {t} unknown: treated as accompaniment")
        if gain == 0.0 and d.get("within"):
            reasons.insert(0, "within the prior's tolerance: leave it")
        proposals[t] = (gain, confidence, reasons)
    for t, s in current.stems.items():
        if s.silent:
            proposals[t] = (0.0, 0.0, [f"{t} is silent: nothing to measure"])
    return proposals


def _summary(mode, ranked, warnings) -> str:
    moves = [r for r in ranked if r["gain_db"] != 0.0]
    head = "Compared with the reference" if mode == "differential" else "Against documented balance targets"
    if not moves:
        text = f"{head}: the balance already fits; no fader moves suggested."
    else:
        parts = [f"{'raise' if r['gain_db'] > 0 else 'lower'} {r['track']} by {abs(r['gain_db']):.1f} dB"
                 for r in moves[:3]]
        more = f" and {len(moves) - 3} smaller change(s)" if len(moves) > 3 else ""
        steady = len(ranked) - len(moves)
        text = f"{head}: {'; '.join(parts)}{more}."
        if steady:
            text += f" Leave the other {steady} track(s) where they are."
        top = re.sub(r" \[[^\]]*\]", "", moves[0]["reasons"][0])  # citations stay in the reasons
        text += f" Top reason: {top}."
    if warnings:
        text += f" Note: {len(warnings)} warning(s), e.g. {warnings[0]}."
    return text


_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?")


def guarded_rephrase(summary: str, rephrase: Callable[[str], str] | None) -> tuple[str, str | None]:
    """Let ``rephrase`` reword ``summary``; keep the original if it adds or changes any number.

    Returns (text, warning or None).
    """
    if rephrase is None:
        return summary, None
    try:
        new = str(rephrase(summary)).strip()
    except Exception as exc:  # noqa: BLE001 - a model failure must not lose the advice
        return summary, f"summary rephrasing failed ({type(exc).__name__}: {exc}); kept the measured text"
    allowed = {float(x) for x in _NUMBER.findall(summary)}
    used = {float(x) for x in _NUMBER.findall(new)}
    allowed |= {abs(x) for x in allowed}
    if not new or not used <= allowed:
        return summary, "the model's rephrasing changed or added numbers; kept the measured text"
    return new, None


# no maxLength: llama.cpp's grammar for it made SmolLM2 run out of tokens (checked 2026-11-22)
REPHRASE_SCHEMA = {"type": "object", "properties": {"summary": {"type": "string"}}, "required": ["summary"]}


def model_rephraser(model) -> Callable[[str], str]:
    """Wrap a conductor model (anything with ``complete_json(messages, schema)``, such as
    :class:`stase.agent.llm.ConductorModel`) as a ``rephrase`` callable for :func:`advise`.

    The model only rewords; :func:`guarded_rephrase` throws its text away if a number changed.
    """
    def rephrase(summary: str) -> str:
        messages = [
            {"role": "system", "content": "Rewrite the mixing advice for a music producer in one or two "
                                          "friendly sentences. Keep every number and track name exactly."},
            {"role": "user", "content": summary}]
        answer = model.complete_json(messages, REPHRASE_SCHEMA, max_tokens=200)
        if not answer or not isinstance(answer.get("summary"), str):
            raise ValueError("the model gave no summary")
        return answer["summary"]
    return rephrase


def advise_analysis(current: MixAnalysis, reference: MixAnalysis | None = None, plan=None,
                    roles: dict[str, str] | None = None, reference_roles: dict[str, str] | None = None,
                    genre: str | None = None, rephrase: Callable[[str], str] | None = None) -> dict:
    """:func:`advise` on analyses already made (the bench reuses a reference analysis)."""
    warnings = list(current.warnings) + (list(reference.warnings) if reference is not None else [])
    track_roles = resolve_roles(current.stems, plan, roles)
    if reference is not None:
        ref_roles = resolve_roles(reference.stems, None, reference_roles)
        proposals = _differential(current, reference, track_roles, ref_roles, warnings)
        mode = "differential"
    else:
        proposals = _prior(current, track_roles, plan, genre, warnings)
        mode = "prior"
    gains = {t: p[0] for t, p in proposals.items()}
    masking = masking_analysis(current, plan)
    after = masking_analysis(current, plan, gains) if any(gains.values()) else None
    tracks = []
    for t, (gain, confidence, reasons) in proposals.items():
        s = current.stems[t]
        extra = [] if s.silent else _masking_reasons(t, gain, masking, current, after)
        facts = [] if s.silent else [_level_facts(s)]
        if s.clipped:
            extra.append(f"clipped on {100 * s.clipped_fraction:.2f}% of samples: a gain change cannot undo that")
        tracks.append({"track": t, "gain_db": round(float(gain), 1),
                       "confidence": round(float(confidence), 2), "reasons": reasons + extra + facts})
    tracks.sort(key=lambda r: (-abs(r["gain_db"]) * r["confidence"], -abs(r["gain_db"]), r["track"]))
    summary = _summary(mode, tracks, warnings)
    summary, rephrase_warning = guarded_rephrase(summary, rephrase)
    if rephrase_warning:
        warnings.append(rephrase_warning)
    return {"tracks": tracks, "summary": summary, "mode": mode, "warnings": warnings}


def advise(stems, sample_rate, reference=None, plan=None, *, reference_sample_rate=None,
           roles: dict[str, str] | None = None, genre: str | None = None,
           rephrase: Callable[[str], str] | None = None) -> dict:
    """Gain advice for a set of stems (see the module docstring for the result).

    Parameters
    ----------
    stems : {track: audio}, 1-D mono or ``(channels, samples)``; lengths may differ (padded).
    sample_rate : Hz of ``stems``.
    reference : optional {track: audio}: a balanced version of the same stems, or a reference
        mix's stems; matched by name, then role.  Resampled if ``reference_sample_rate`` differs.
    plan : optional :class:`stase.core.plan.Plan` (or its dict form): roles, genre, and placements for
        spatial release.
    roles : optional {track: role} overriding the plan and the names.
    genre : optional genre for the priors ("pop", "rock", "country", "rap", "metal").
    rephrase : optional callable(summary) -> text (the conductor's model); numbers are guarded.

    Raises
    ------
    stase.core.errors.InputError : bad audio, bad rate, or a reference with too few matching tracks.
    """
    rate = check_sample_rate(sample_rate)
    if isinstance(plan, dict):
        from stase.core.plan import Plan
        plan = Plan.from_dict(plan, source="plan")
    current = analyse_stems(stems, rate, "stems")
    ref_analysis = None
    if reference is not None:
        ref_rate = check_sample_rate(reference_sample_rate or rate)
        ref_audio, _ = prepare_stems(reference, ref_rate, "reference")
        if ref_rate != rate:
            ref_audio = resample_stems(ref_audio, ref_rate, rate)
        ref_analysis = analyse_stems(ref_audio, rate, "reference")
        if ref_rate != rate:
            ref_analysis.warnings.append(f"reference resampled from {ref_rate} Hz to {rate} Hz")
    return advise_analysis(current, ref_analysis, plan, roles=roles, genre=genre, rephrase=rephrase)
