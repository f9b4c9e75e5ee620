"""Who masks whom, in which bands, how often - and how much a spatial placement releases it.

What this module holds
----------------------
* :func:`ear_gains_db` - level at each ear of a source placed at an azimuth: the Brown & Duda
  (1998) spherical-head shadow for ``hrtf``/``itd_ild`` sources, the constant-power (sin/cos) pan
  law for ``pan`` sources.
* :func:`spatial_release_db` - release from masking of a target by a masker placed apart, per band.
* :func:`masking_analysis` -> :class:`MaskingResult` - the masking matrix of a set of stems.

Masking model (energetic, per ERB band)
--------------------------------------
In a short-time frame, band ``b`` of target ``i`` is *relevant* when it lies within
``relevance_db`` (20 dB) of the target's strongest band in that frame, and *masked* by ``j`` when
the masker's effective level there exceeds the target's (target-to-masker ratio below 0 dB).  This
is the band-wise TMR criterion of multitrack masking measures such as Vega & Janer (2010),
"Quantifying masking in multi-track recordings", Proc. SMC, and Hafezi & Reiss (2015),
"Autonomous multitrack equalization based on masking reduction", JAES 63(5):312-323, on the
ERB-rate grid of Glasberg & Moore (1990).  It ignores spread of masking across bands and temporal
masking: it answers "who covers the target's important bands", not "is the target audible".

Spatial release (when a plan places the stems)
----------------------------------------------
A simplified better-ear + binaural-unmasking model after Lavandier & Culling (2010), JASA
127(1):387-399, and Jelfs, Culling & Lavandier (2011), Hear. Res. 275:96-104:

* better ear: the larger, over the two ears, of the target's head-shadow gain minus the masker's,
  with the head shadow of Brown & Duda (1998), IEEE Trans. Speech Audio Proc. 6(5):476-488
  (single pole/zero, alpha_min = 0.1, theta_min = 150 deg, head radius 8.75 cm);
* binaural unmasking: up to ``BMLD_MAX_DB`` (3 dB) x |sin(delta lateral / 2)| below 1 kHz, fading
  to 0 at 2 kHz, where interaural fine-structure cues fade;
* the sum is capped at ``MAX_RELEASE_DB`` (15 dB) and never negative.

Release lowers the masker's effective level in the TMR test.  Distances, room and reverberation
are ignored, so the numbers are an optimistic guide for dry placements.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stase.core.conventions import (HEAD_RADIUS_M, SPEED_OF_SOUND_M_S, azimuth_to_stereo_pan,
                             great_circle_deg, lateral_angle_deg)

from stase.agent.advisor.analysis import MixAnalysis

RELEVANCE_DB = 20.0
MASKED_BELOW_DB = 0.0      # a band is masked when target - effective masker < this
BMLD_MAX_DB = 3.0
MAX_RELEASE_DB = 15.0
_ALPHA_MIN, _THETA_MIN_DEG = 0.1, 150.0


def head_shadow_db(frequency_hz, angle_from_ear_deg):
    """Brown & Duda (1998) head-shadow magnitude in dB at ``angle_from_ear_deg`` off the ear axis.

    |H|^2 = (1 + (alpha w / 2 w0)^2) / (1 + (w / 2 w0)^2), w0 = c / a,
    alpha = (1 + alpha_min / 2) + (1 - alpha_min / 2) cos(theta / theta_min * 180 deg).
    """
    w = 2 * np.pi * np.asarray(frequency_hz, dtype=float)
    w0 = SPEED_OF_SOUND_M_S / HEAD_RADIUS_M
    theta = np.asarray(angle_from_ear_deg, dtype=float)
    alpha = (1 + _ALPHA_MIN / 2) + (1 - _ALPHA_MIN / 2) * np.cos(np.radians(theta / _THETA_MIN_DEG * 180.0))
    ratio = w / (2 * w0)
    return 10.0 * np.log10((1 + (alpha * ratio) ** 2) / (1 + ratio ** 2))


def ear_gains_db(azimuth_deg: float, elevation_deg: float, frequency_hz, mode: str = "hrtf"):
    """(left_db, right_db) arrays over ``frequency_hz`` for a source; azimuth positive = left."""
    f = np.asarray(frequency_hz, dtype=float)
    if mode == "pan":
        pan = azimuth_to_stereo_pan(azimuth_deg, elevation_deg)  # -1 = hard left
        theta = (pan + 1.0) * np.pi / 4.0
        left, right = np.cos(theta), np.sin(theta)
        floor = 10 ** (-MAX_RELEASE_DB / 20)
        return (np.full_like(f, 20 * np.log10(max(left, floor))),
                np.full_like(f, 20 * np.log10(max(right, floor))))
    from_left = great_circle_deg(azimuth_deg, elevation_deg, 90.0, 0.0)
    from_right = great_circle_deg(azimuth_deg, elevation_deg, -90.0, 0.0)
    return head_shadow_db(f, from_left), head_shadow_db(f, from_right)


def spatial_release_db(target, masker, frequency_hz) -> np.ndarray:
    """Release from masking (dB, >= 0) per frequency for two placements.

    ``target`` and ``masker`` are objects with ``azimuth_deg``, ``elevation_deg`` and ``mode``
    (a :class:`stase.core.plan.SourcePlacement`).  Co-located sources give 0 dB.
    """
    f = np.asarray(frequency_hz, dtype=float)
    t_left, t_right = ear_gains_db(target.azimuth_deg, target.elevation_deg, f, target.mode)
    m_left, m_right = ear_gains_db(masker.azimuth_deg, masker.elevation_deg, f, masker.mode)
    better_ear = np.maximum(t_left - m_left, t_right - m_right)
    delta_lateral = np.radians(lateral_angle_deg(target.azimuth_deg, target.elevation_deg)
                               - lateral_angle_deg(masker.azimuth_deg, masker.elevation_deg))
    low = np.clip((2000.0 - f) / 1000.0, 0.0, 1.0)
    unmasking = BMLD_MAX_DB * abs(np.sin(delta_lateral / 2.0)) * low
    return np.clip(better_ear + unmasking, 0.0, MAX_RELEASE_DB)


@dataclass
class MaskingResult:
    """Masking of each target (row) by each masker (column); shares are 0..1.

    amount[i, j] : mean share of target i's relevant bands masked by j, over frames both play.
    time_share[i, j] : share of the frames where i plays in which j plays and masks at least half
        of i's relevant bands ("how often").
    band_rate[i, j, b] : share of i's relevant frames in band b masked by j (both playing).
    release_db[i, j] : mean spatial release over bands (0 without a plan).
    rest_time_share[i], rest_band_rate[i, b] : the same against the sum of all other stems.
    """

    tracks: list[str]
    amount: np.ndarray
    time_share: np.ndarray
    band_rate: np.ndarray
    release_db: np.ndarray
    rest_time_share: np.ndarray
    rest_band_rate: np.ndarray
    band_edges_hz: np.ndarray

    def index(self, track: str) -> int:
        return self.tracks.index(track)


def _placements(tracks, plan):
    out = {}
    if plan is None:
        return out
    for t in tracks:
        try:
            out[t] = plan.source(t)
        except KeyError:
            continue
    return out


def masking_analysis(analysis: MixAnalysis, plan=None, gains_db: dict[str, float] | None = None,
                     relevance_db: float = RELEVANCE_DB,
                     masked_below_db: float = MASKED_BELOW_DB) -> MaskingResult:
    """The masking matrix of the audible stems, optionally after gain changes and with a plan.

    Parameters
    ----------
    analysis : the stems' analysis (band levels and activity).
    plan : a :class:`stase.core.plan.Plan`; tracks it places get spatial release against each other.
    gains_db : gain changes to apply first ({track: dB}), to see masking after advice.
    """
    tracks = [t for t, s in analysis.stems.items() if not s.silent]
    n = len(tracks)
    gains = gains_db or {}
    levels = np.stack([analysis.stems[t].band_db + np.float32(gains.get(t, 0.0)) for t in tracks]) \
        if n else np.zeros((0, 0, len(analysis.band_edges_hz) - 1), np.float32)
    active = np.stack([analysis.stems[t].active for t in tracks]) if n else np.zeros((0, 0), bool)
    n_bands = levels.shape[2]
    centres = analysis.band_centres_hz
    placed = _placements(tracks, plan)
    release = np.zeros((n, n, n_bands))
    for i, ti in enumerate(tracks):
        for j, tj in enumerate(tracks):
            if i != j and ti in placed and tj in placed:
                release[i, j] = spatial_release_db(placed[ti], placed[tj], centres)
    relevant = levels >= levels.max(axis=2, keepdims=True) - relevance_db
    amount = np.zeros((n, n))
    time_share = np.zeros((n, n))
    band_rate = np.zeros((n, n, n_bands))
    rest_time = np.zeros(n)
    rest_bands = np.zeros((n, n_bands))
    for i in range(n):
        relevant_count = np.maximum(relevant[i].sum(axis=1), 1)
        plays = max(int(active[i].sum()), 1)
        effective_power = np.zeros(levels.shape[1:])
        for j in range(n):
            if j == i:
                continue
            effective = levels[j] - release[i, j][None, :].astype(np.float32)
            effective_power += 10.0 ** (effective / 10.0)
            both = active[i] & active[j]
            if not both.any():
                continue
            masked = relevant[i] & (levels[i] - effective < masked_below_db)
            share = masked.sum(axis=1) / relevant_count
            amount[i, j] = share[both].mean()
            time_share[i, j] = np.count_nonzero(both & (share >= 0.5)) / plays
            band_rate[i, j] = masked[both].sum(axis=0) / np.maximum(relevant[i][both].sum(axis=0), 1)
        if n > 1:
            masked = relevant[i] & (levels[i] - 10.0 * np.log10(effective_power + 1e-30) < masked_below_db)
            share = masked.sum(axis=1) / relevant_count
            rest_time[i] = np.count_nonzero(active[i] & (share >= 0.5)) / plays
            mine = active[i]
            rest_bands[i] = masked[mine].sum(axis=0) / np.maximum(relevant[i][mine].sum(axis=0), 1)
    return MaskingResult(tracks=tracks, amount=amount, time_share=time_share, band_rate=band_rate,
                         release_db=release.mean(axis=2) if n else release.sum(axis=2),
                         rest_time_share=rest_time, rest_band_rate=rest_bands,
                         band_edges_hz=analysis.band_edges_hz)


def format_hz(frequency_hz: float) -> str:
    """'80 Hz', '450 Hz', '1.2 kHz', '12 kHz' - two significant figures, as mixers say them."""
    f = float(frequency_hz)
    if f < 1000.0:
        return f"{float(f'{f:.2g}'):.0f} Hz"
    k = float(f"{f / 1000.0:.2g}")
    return f"{k:g} kHz"


def describe_bands(rate_per_band: np.ndarray, edges_hz: np.ndarray, min_rate: float = 0.5) -> str | None:
    """The strongest contiguous run of bands masked at least ``min_rate`` of the time, as '1-4 kHz'."""
    hot = np.asarray(rate_per_band) >= min_rate
    if not hot.any():
        return None
    best, best_score, start = None, -1.0, None
    for b in range(len(hot) + 1):
        if b < len(hot) and hot[b]:
            start = b if start is None else start
        elif start is not None:
            score = float(np.sum(rate_per_band[start:b]))
            if score > best_score:
                best, best_score = (start, b), score
            start = None
    low, high = edges_hz[best[0]], edges_hz[best[1]]
    low_text, high_text = format_hz(low), format_hz(high)
    if low_text.endswith("kHz") and high_text.endswith("kHz"):
        return f"{low_text[:-4]}-{high_text}"
    if low_text.endswith(" Hz") and high_text.endswith(" Hz"):
        return f"{low_text[:-3]}-{high_text}"
    return f"{low_text}-{high_text}"
