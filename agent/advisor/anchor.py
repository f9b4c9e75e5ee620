"""The common level a set of fader proposals is measured from: the largest group that agrees.

Advice is relative - only the balance can be told, not the overall level - so every proposal is
``anchor - deviation`` for some anchor.  The median of the deviations (the older choice) moves
with the tracks that are off: push two of four stems up by 6 and 8 dB and the median moves 3 dB,
so the two untouched stems are told to move too.  :func:`consensus_anchor` instead takes the
anchor from the largest group of tracks that agree with each other within their tolerances
(fewest fader moves, as a mixer would: "these three sit right, the fourth is off"):

1. for every candidate anchor, count the tracks whose deviation lies within their tolerance;
2. keep the candidates with the largest count; each contiguous run of them is one group;
3. prefer the tightest group (smallest spread of its members' deviations), then the one whose
   centre is nearest the median of all deviations (so with no agreement at all it behaves like the
   median anchor);
4. the anchor is the median of that group's deviations, kept inside the run so they all agree.
"""
from __future__ import annotations

import numpy as np

#: candidate anchors are tried on this grid (dB); far finer than any tolerance.
GRID_STEP_DB = 0.01


def consensus_anchor(deviations_db, tolerances_db) -> tuple[float, np.ndarray]:
    """The anchor (dB) and the mask of tracks that agree with it (within their tolerance).

    Parameters
    ----------
    deviations_db : (n,) each track's level minus its target, in any common reference (dB).
    tolerances_db : (n,) or scalar: how far from the anchor a track still agrees (dB, >= 0).
    """
    d = np.asarray(deviations_db, dtype=float)
    tol = np.broadcast_to(np.asarray(tolerances_db, dtype=float), d.shape)
    if d.size == 0:
        return 0.0, np.zeros(0, bool)
    lo, hi = float(np.min(d - tol)), float(np.max(d + tol))
    grid = np.arange(lo, hi + GRID_STEP_DB, GRID_STEP_DB)
    agree = np.abs(d[None, :] - grid[:, None]) <= tol[None, :] + 1e-9
    counts = agree.sum(axis=1)
    best = counts == counts.max()
    # contiguous runs of best candidates with the same members are one group each
    runs, start = [], None
    for k in range(len(grid) + 1):
        same = (k < len(grid) and best[k] and start is not None
                and np.array_equal(agree[k], agree[start]))
        if start is not None and not same:
            runs.append((start, k - 1))
            start = None
        if k < len(grid) and best[k] and start is None:
            start = k
    centre_all = float(np.median(d))

    def rank(run):
        members = d[agree[run[0]]]
        return (float(np.ptp(members)), abs(float(np.median(members)) - centre_all))
    first, last = min(runs, key=rank)
    members = agree[first]
    anchor = float(np.clip(np.median(d[members]), grid[first], grid[last]))
    return anchor, np.abs(d - anchor) <= tol + 1e-9
