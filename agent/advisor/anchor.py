"""The common level a set of fader proposals is measured from: the largest group that agrees.

Advice is relative - only the balance can be told, not the overall level - so every proposal is
``anchor - deviation`` for some anchor.  The median of the deviations (the older choice) moves
with the tracks that are off: push two of four stems up by 6 and 8 dB and the median moves 3 dB,
so the two untouched stems are told to move too.  :func:`consensus_anchor` instead takes the
anchor from the largest group of tracks that agree with each other within their tolerances
(fewest fader moves, as a mixer would: "these three sit right, the fourth is off"):

1. for every candidate anchor, count the tracks whose deviation lies within their tolerance;
2. keep the candidates with the largest count; each contiguous run of them is one group;
3. prefer the tightest group (smallest spread of its members' deviations: the group the data
   best supports as "sitting right");
4. then the least total fader travel for the tracks left out (L1: the sum of ``|deviation -
   anchor|``; least-absolute-deviation fitting, the robust location estimate of Huber 1981,
   "Robust Statistics", ch. 3 - the median), then the least squared travel (L2: nearest the mean).
   With no agreement at all every track is its own group, the two middle tracks tie on L1 (for
   an even count any point between them is a median) and L2 picks the one nearer the mean;
5. the anchor is the median of that group's deviations, kept inside the run so they all agree.

Why the L1/L2 order (measured on the tuning split of the bench's realistic multitracks, 70 score
renders x 8 problems, ``python -m bench.advisor --json --realistic-only --realistic tuning``,
``by_moved_tracks``): with three of four parts moved and no two agreeing, the older tie-break
("nearest the median of all") was a tie between the two middle tracks - the median of four is
their midpoint - settled by grid order (the lower one).  Nothing tells which track stayed, but
with moves of random sign the unmoved one is a middle track in 3 of 4 such problems, and nearer
the mean more often than not: the unmoved part told > 2 dB in those problems fell from 77 to
53 % with exact offsets (differential mode, same stems) and from 73 to 67 % in prior mode, with
no change where one part moved and 17.4 -> 16.8 % where two did (see docs/advisor.md).
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
    def anchor_of(run):
        return float(np.clip(np.median(d[agree[run[0]]]), grid[run[0]], grid[run[1]]))

    def rank(run):
        members = agree[run[0]]
        rest = d[~members] - anchor_of(run)
        # rounded so that float noise does not decide a tie that the next key should
        return (round(float(np.ptp(d[members])), 9), round(float(np.sum(np.abs(rest))), 9),
                float(np.sum(rest ** 2)))
    anchor = anchor_of(min(runs, key=rank))
    return anchor, np.abs(d - anchor) <= tol + 1e-9
