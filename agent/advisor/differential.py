"""Differential mode: the gain offsets that take the current stems to a reference balance.

What this module holds
----------------------
* :func:`match_tracks` - pairs current and reference tracks by name (case and punctuation
  ignored), then by role when a role is unique on both sides; too few pairs is an ``InputError``
  that lists both sets of names.
* :func:`differential_gains` - per matched track, the level change that restores the reference's
  *relative* balance, with its spread and how it was measured.

Two ways to measure, chosen per set
-----------------------------------
* **aligned** - the reference holds the same performance (a differently mixed version of the same
  stems): the K-weighted 400 ms block envelopes of a track correlate (r >= 0.9) across the sets.
  The offset is the median over blocks where both are above the -70 LUFS gate of the block level
  difference - a pure gain comes out exactly, and mutes, edits or rides in one version only move
  a minority of blocks.  The interquartile range of those differences is the spread.
* **loudness** - anything else (a reference mix's stems of another song): the difference of the
  BS.1770 integrated loudness of each track.

The common part is removed: relative balance is what a reference can tell us, not the overall
level (a louder master is not a reason to move every fader).  The anchor is taken from the
largest group of tracks whose raw offsets agree within the dead band
(:func:`.anchor.consensus_anchor`), which leaves the faders that already agree with the reference
untouched even when two of four tracks were moved the same way (the median of the raw offsets,
used before, then moved the untouched ones too).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stase.core.names import pair_names
from stase.core.errors import InputError

from stase.agent.advisor.analysis import ABSOLUTE_GATE_LUFS, MixAnalysis
from stase.agent.advisor.anchor import consensus_anchor

ALIGNED_CORRELATION = 0.9
#: proposals smaller than this are "leave it" (dB), per method; tracks whose raw offsets agree
#: within it form the group the anchor is taken from.
DEAD_BAND_DB = {"aligned": 0.5, "loudness": 1.0}


def match_tracks(current, reference, current_roles=None, reference_roles=None):
    """Pair current tracks with reference tracks.

    Returns
    -------
    pairs : {current track: reference track}
    unmatched_current, unmatched_reference : lists of names
    how : {current track: "name" | "role"}
    """
    current, reference = list(current), list(reference)
    pairs = pair_names(current, reference)[0]  # the one track-name rule (stase.core.names)
    how = {c: "name" for c in pairs}
    if current_roles and reference_roles:
        left_c = [c for c in current if c not in pairs]
        left_r = [r for r in reference if r not in pairs.values()]
        for c in left_c:
            role = current_roles.get(c)
            if role is None or sum(current_roles.get(x) == role for x in left_c) != 1:
                continue
            candidates = [r for r in left_r if reference_roles.get(r) == role]
            if len(candidates) == 1:
                pairs[c], how[c] = candidates[0], "role"
                left_r.remove(candidates[0])
    unmatched_current = [c for c in current if c not in pairs]
    unmatched_reference = [r for r in reference if r not in pairs.values()]
    if len(reference) == 1:
        raise InputError(
            f"reference: got one track ({reference[0]!r}); differential advice compares stems with "
            "stems, not with a single mix. Give the reference's stems (one file per track, named like "
            f"the current ones: {sorted(current)}), or run without --reference for prior-based advice.")
    if len(pairs) < 2:
        raise InputError(
            "reference: differential advice needs at least two tracks that appear in both sets "
            f"(matched by name, then by role); found {len(pairs)}. Current tracks: {sorted(current)}; "
            f"reference tracks: {sorted(reference)}. Rename the reference files to the current "
            "track names, or run without --reference for prior-based advice.")
    return pairs, unmatched_current, unmatched_reference, how


@dataclass
class TrackOffset:
    """One matched track's measured difference (reference minus current, dB)."""

    track: str
    reference_track: str
    raw_db: float                 # before removing the common part
    gain_db: float                # proposal: raw - common
    spread_db: float              # IQR of block differences (aligned) or 0
    method: str                   # "aligned" | "loudness"
    loudness_difference_db: float  # integrated loudness difference, for the cross-check
    current_vs_rest_lu: float | None
    reference_vs_rest_lu: float | None


def _block_db(z):
    with np.errstate(divide="ignore"):
        return -0.691 + 10.0 * np.log10(z)


def _aligned(cur_blocks, ref_blocks) -> bool:
    n = min(len(cur_blocks), len(ref_blocks))
    if n < 8 or abs(len(cur_blocks) - len(ref_blocks)) > max(2, 0.02 * n):
        return False
    a = np.sqrt(cur_blocks[:n])
    b = np.sqrt(ref_blocks[:n])
    if a.std() == 0 or b.std() == 0:
        return False
    return float(np.corrcoef(a, b)[0, 1]) >= ALIGNED_CORRELATION


def _vs_rest(analysis: MixAnalysis, track: str, others) -> float | None:
    rest = analysis.loudness_of_sum([o for o in others if not analysis.stems[o].silent])
    level = analysis.stems[track].integrated_lufs
    if rest is None or level is None:
        return None
    return float(level - rest)


def differential_gains(current: MixAnalysis, reference: MixAnalysis, pairs: dict[str, str]):
    """Proposed gain per matched, audible track; plus the common offset removed (dB).

    Returns
    -------
    offsets : {current track: TrackOffset} (tracks silent in either set are left out)
    common_db : the raw offset that was removed (:func:`.anchor.consensus_anchor`)
    """
    usable = {c: r for c, r in pairs.items()
              if not current.stems[c].silent and not reference.stems[r].silent}
    raw: dict[str, tuple] = {}
    for c, r in usable.items():
        cur, ref = current.stems[c], reference.stems[r]
        loud_diff = ref.integrated_lufs - cur.integrated_lufs
        if _aligned(cur.block_powers, ref.block_powers):
            n = min(len(cur.block_powers), len(ref.block_powers))
            cur_db, ref_db = _block_db(cur.block_powers[:n]), _block_db(ref.block_powers[:n])
            both = (cur_db >= ABSOLUTE_GATE_LUFS) & (ref_db >= ABSOLUTE_GATE_LUFS)
            if np.count_nonzero(both) >= 4:
                diff = ref_db[both] - cur_db[both]
                q25, q50, q75 = np.percentile(diff, [25, 50, 75])
                raw[c] = (float(q50), float(q75 - q25), "aligned", float(loud_diff))
                continue
        raw[c] = (float(loud_diff), 0.0, "loudness", float(loud_diff))
    values = np.array([v[0] for v in raw.values()])
    agreement = np.array([DEAD_BAND_DB[v[2]] for v in raw.values()])
    common = consensus_anchor(values, agreement)[0] if raw else 0.0
    offsets = {}
    for c, (value, spread, method, loud_diff) in raw.items():
        others_c = [o for o in usable if o != c]
        offsets[c] = TrackOffset(
            track=c, reference_track=usable[c], raw_db=value, gain_db=value - common,
            spread_db=spread, method=method, loudness_difference_db=loud_diff,
            current_vs_rest_lu=_vs_rest(current, c, others_c),
            reference_vs_rest_lu=_vs_rest(reference, usable[c], [usable[o] for o in others_c]))
    return offsets, common
