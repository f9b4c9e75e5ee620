"""Track names: the one rule for "are these the same track?" (issue 22).

DAW exports and users spell one track several ways: ``Gtr L`` in REAPER, ``Gtr_L.wav`` or
``gtr-l.wav`` on disk, ``GTR L`` typed in a prompt.  Everything that pairs names — the renderer
matching stems to plan tracks, the advisor pairing a mix with its reference, the session and the
scene refusing duplicates — asks this module, so one spelling never works in one place and fails
in another.

Rule: two names are the same track when their :func:`track_key` are equal: Unicode NFKC, case
folded, and everything but letters and digits removed (spaces, ``-``, ``_``, ``.``, brackets).
A name with no letter or digit at all keys on its case-folded text.  When pairing, an exact
(case-insensitive) spelling wins over a key match, so ``Gtr L`` pairs with ``Gtr L`` even when a
``Gtr-L`` is there too; ambiguous key matches are left unpaired, never guessed.

Functions
---------
track_key(name)                  the comparison key of a track name
same_track(a, b)                 True when ``a`` and ``b`` name the same track
find_track(name, candidates)     the one candidate that is the same track as ``name`` (or None)
pair_names(wanted, available)    ({wanted: available}, [unpaired wanted], [unused available])
duplicate_names(names)           [(first, second)] pairs of names that are the same track
"""
from __future__ import annotations

import unicodedata
from functools import lru_cache
from typing import Iterable


@lru_cache(maxsize=4096)
def track_key(name: str) -> str:
    """The comparison key of ``name`` (see the module's rule); cached per spelling (a live move
    asks for it on every request)."""
    folded = unicodedata.normalize("NFKC", str(name)).casefold()
    key = "".join(ch for ch in folded if ch.isalnum())
    return key or folded.strip()


def same_track(a: str, b: str) -> bool:
    """True when ``a`` and ``b`` name the same track."""
    return track_key(a) == track_key(b)


def _fold(name: str) -> str:
    return unicodedata.normalize("NFKC", str(name)).casefold()


def find_track(name: str, candidates: Iterable[str]) -> str | None:
    """The candidate that is the same track as ``name``: an exact case-insensitive spelling
    first, else the only candidate with the same :func:`track_key`; ``None`` when there is none
    or when two candidates share the key (ambiguous matches are never guessed)."""
    candidates = list(candidates)
    folded = _fold(name)
    for candidate in candidates:
        if _fold(candidate) == folded:
            return candidate
    key = track_key(name)
    hits = [c for c in candidates if track_key(c) == key]
    return hits[0] if len(hits) == 1 else None


def pair_names(wanted: Iterable[str], available: Iterable[str]) -> tuple[dict[str, str], list[str], list[str]]:
    """Pair each wanted name with one available name.

    Exact case-insensitive spellings pair first; then names with equal :func:`track_key`, but
    only when exactly one unpaired available name has that key.  Each available name pairs once.

    Returns
    -------
    pairs : {wanted name: available name}
    unpaired : wanted names with no partner, in their order
    unused : available names nobody took, in their order
    """
    wanted, available = list(wanted), list(available)
    taken: set[int] = set()
    pairs: dict[str, str] = {}
    by_fold: dict[str, list[int]] = {}
    by_key: dict[str, list[int]] = {}
    for i, name in enumerate(available):
        by_fold.setdefault(unicodedata.normalize("NFKC", str(name)).casefold(), []).append(i)
        by_key.setdefault(track_key(name), []).append(i)
    for name in wanted:
        hits = [i for i in by_fold.get(unicodedata.normalize("NFKC", str(name)).casefold(), []) if i not in taken]
        if hits and name not in pairs:
            pairs[name] = available[hits[0]]
            taken.add(hits[0])
    for name in wanted:
        if name in pairs:
            continue
        hits = [i for i in by_key.get(track_key(name), []) if i not in taken]
        if len(hits) == 1:
            pairs[name] = available[hits[0]]
            taken.add(hits[0])
    unpaired = [n for n in wanted if n not in pairs]
    unused = [n for i, n in enumerate(available) if i not in taken]
    return pairs, unpaired, unused


def duplicate_names(names: Iterable[str]) -> list[tuple[str, str]]:
    """``[(earlier, later)]`` for every name that is the same track as an earlier one."""
    seen: dict[str, str] = {}
    found = []
    for name in names:
        key = track_key(name)
        if key in seen:
            found.append((seen[key], name))
        else:
            seen[key] = name
    return found
