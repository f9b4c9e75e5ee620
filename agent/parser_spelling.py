"""Spelling correction of the parser's spatial words ("rihgt", "lfet", "centr", "degress").

Holds
-----
* :data:`SPELLING_TARGETS`, :data:`SOUND_ALIKES`, :data:`SPELLING_EXCEPTIONS`: the words a
  producer misspells, the misspellings further than one edit, and the real words never corrected.
* :func:`_one_edit_apart`: the restricted Damerau-Levenshtein distance is 1.
* :func:`spelling_corrections` (distinct words -> the word meant, never a protected word: a
  track's or an alias's own word) and :func:`correct_spelling` (the text with them replaced).

Re-exported by :mod:`stase.agent.parser_rules`.  Cost: each distinct word is looked up once.
"""
from __future__ import annotations

import re
from functools import lru_cache


#: Spatial words a producer misspells (issue 16): a word one edit from one of these (a letter
#: dropped, added or changed, or two neighbours swapped: Damerau 1964) and with the same first
#: letter is read as that word ("rihgt", "lfet", "lft", "centr", "middel", "degress", "slighty").
SPELLING_TARGETS = ("left", "right", "centre", "center", "middle", "degrees", "slightly", "behind")
#: Misspellings further than one edit that producers type for the sound of the word.
SOUND_ALIKES = {"rite": "right", "rihgt": "right", "riht": "right", "rgiht": "right", "lefft": "left",
                "cnetre": "centre", "cneter": "center", "degs": "degrees"}
#: Real words one edit from a target: never corrected ("let", "lift the horns", "a muddle").
SPELLING_EXCEPTIONS = frozenset({
    "let", "lift", "loft", "lest", "lent", "lefty", "lefts", "leet", "rights", "righty", "centred", "centres",
    "centers", "censer", "middles", "muddle", "meddle", "degree", "decrees", "sightly", "slight",
})


def _one_edit_apart(a: str, b: str) -> bool:
    """Whether ``a`` becomes ``b`` by one edit: a letter dropped, added or changed, or two
    neighbouring letters swapped (the restricted Damerau-Levenshtein distance is 1)."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [k for k in range(len(a)) if a[k] != b[k]]
        return len(diff) == 1 or (len(diff) == 2 and diff[1] == diff[0] + 1
                                  and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]])
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    k = next((k for k in range(len(short)) if short[k] != long_[k]), len(short))
    return short[k:] == long_[k + 1:]


_TARGETS_BY_LETTER: dict[str, tuple[str, ...]] = {}
for _target in SPELLING_TARGETS:
    _TARGETS_BY_LETTER[_target[0]] = _TARGETS_BY_LETTER.get(_target[0], ()) + (_target,)


@lru_cache(maxsize=4096)
def _spelling_of(word: str) -> str | None:
    """The spatial word ``word`` misspells (:data:`SPELLING_TARGETS`, :data:`SOUND_ALIKES`), or
    ``None``.  A function of the word alone, so each distinct word is asked once."""
    if word in SOUND_ALIKES:
        return SOUND_ALIKES[word]
    if len(word) < 3 or word in SPELLING_EXCEPTIONS or word in SPELLING_TARGETS:
        return None
    for target in _TARGETS_BY_LETTER.get(word[0], ()):
        if _one_edit_apart(word, target):
            return target
    return None


def spelling_corrections(words, *protected) -> dict[str, str]:
    """Misspelt spatial words among ``words`` (distinct lower-case words) -> the word meant.

    Words in any of the ``protected`` sets (the session's track words, the lexicon's aliases)
    are never changed.
    """
    out = {}
    for w in words:
        if w[0] in _TARGETS_BY_LETTER and 3 <= len(w) <= 10 and not any(w in words_ for words_ in protected):
            meant = _spelling_of(w)
            if meant is not None and meant != w:
                out[w] = meant
    return out


_SPELT_WORD = re.compile(r"[a-z]+")


def correct_spelling(text: str, *protected) -> str:
    """``text`` (normalised) with its misspelt spatial words (:func:`spelling_corrections`)
    replaced by the words meant.  One C-speed split for the distinct words, then one
    substitution only when something needs correcting."""
    fixes = spelling_corrections(set(_SPELT_WORD.findall(text)), *protected)
    if not fixes:
        return text
    pattern = re.compile(r"(?<![a-z])(?:" + "|".join(map(re.escape, sorted(fixes, key=len, reverse=True)))
                         + r")(?![a-z])")
    return pattern.sub(lambda m: fixes[m.group(0)], text)
