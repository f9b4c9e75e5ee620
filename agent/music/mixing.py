"""Setting the generated stems to musically sensible levels.

Each stem is brought to a role-dependent level relative to the lead (the balance of a typical
mix: vocal on top, kick/snare and bass just under it, pads and percussion further back, after
common mixing practice, e.g. Izhaki, *Mixing Audio*, 3rd ed., ch. on levels), measured as a gated
RMS level; then the whole set is scaled so that the sum of all stems peaks at ``SUM_PEAK_DBFS``
and no single stem exceeds ``STEM_PEAK_DBFS``.  A short fade ends every stem together.
"""
from __future__ import annotations

import numpy as np

#: Level of each role relative to the lead, dB (gated RMS).
ROLE_LEVEL_DB = {
    "lead_vocal": 0.0, "synth_lead": -1.5, "saxophone": -1.5, "trumpet": -2.0, "flute": -3.0,
    "violins": -2.0, "drums": -1.0, "bass": -3.0, "double_bass": -3.0, "electric_guitar": -5.0,
    "acoustic_guitar": -5.0, "piano": -4.0, "organ": -8.0, "synth_pad": -8.0, "strings": -5.0,
    "violas": -5.0, "cellos": -4.0, "brass": -5.0, "woodwinds": -4.0, "backing_vocals": -8.0,
    "choir": -3.0, "percussion": -9.0, "hand_drums": -5.0, "plucked": -4.0,
}
SUM_PEAK_DBFS = -3.0
STEM_PEAK_DBFS = -1.0
FADE_OUT_S = 0.4


def gated_rms_db(x: np.ndarray, sample_rate: float, block_s: float = 0.4,
                 relative_gate_db: float = -20.0) -> float:
    """RMS level (dBFS) over the blocks that are not silence (ITU-R BS.1770-style gating,
    without the K-weighting): 400 ms blocks, hop 100 ms, blocks more than 20 dB under the loudest
    mean are dropped.  -inf for digital silence."""
    x = np.asarray(x, dtype=np.float64)
    block = max(int(block_s * sample_rate), 1)
    hop = max(block // 4, 1)
    if x.size <= block:
        power = np.array([np.mean(x * x)])
    else:
        squares = np.concatenate([[0.0], np.cumsum(x * x)])
        starts = np.arange(0, x.size - block + 1, hop)
        power = (squares[starts + block] - squares[starts]) / block
    if not np.any(power > 0):
        return float("-inf")
    loud = power[power >= np.max(power) * 10 ** (relative_gate_db / 10)]
    return float(10 * np.log10(np.mean(loud)))


def balance(stems: dict[str, np.ndarray], roles: dict[str, str], sample_rate: float,
            seed_offsets_db: dict[str, float] | None = None) -> dict[str, np.ndarray]:
    """Level each stem to its role's place in the mix, then fit the set under the peak limits.

    Returns float32 stems of unchanged length; silent stems stay silent.
    """
    levelled: dict[str, np.ndarray] = {}
    for track, x in stems.items():
        level = gated_rms_db(x, sample_rate)
        target = ROLE_LEVEL_DB.get(roles[track], -6.0) + (seed_offsets_db or {}).get(track, 0.0)
        gain = 0.0 if not np.isfinite(level) else 10 ** ((target - 20.0 - level) / 20)
        levelled[track] = x * gain
    if not levelled:
        return {}
    total = np.sum(list(levelled.values()), axis=0)
    peak_sum = np.max(np.abs(total))
    peak_stem = max(np.max(np.abs(x)) for x in levelled.values())
    if peak_sum <= 0:
        return {k: v.astype(np.float32) for k, v in levelled.items()}
    scale = min(10 ** (SUM_PEAK_DBFS / 20) / peak_sum, 10 ** (STEM_PEAK_DBFS / 20) / peak_stem)
    n = len(total)
    fade = np.ones(n)
    m = min(int(FADE_OUT_S * sample_rate), n)
    fade[n - m:] = 0.5 * (1 + np.cos(np.linspace(0, np.pi, m)))
    return {k: (v * scale * fade).astype(np.float32) for k, v in levelled.items()}
