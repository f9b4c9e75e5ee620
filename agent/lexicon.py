"""Track names -> roles, using ``presets/lexicon.yaml``.

Holds
-----
* :func:`normalise_words` splits a DAW track name into lower-case words ("ElecGtr_L2" ->
  ``["elec", "gtr", "l", "2"]``).
* :func:`match_track_role` maps a track name to one of the 24 roles (or ``None``): the longest alias
  phrase found in the name wins; words that are only modifiers ("lead", "main") count last; a
  one-letter typo in a long word is forgiven (difflib ratio >= 0.8, same first letter).
* :class:`Lexicon` is the compiled alias table (built once, cached) that the parser also uses to
  find instrument mentions in a prompt; :meth:`Lexicon.tracks_named_by` narrows a role's tracks to
  those a word names ("the hh" -> "03_HH" among three drum tracks), :meth:`Lexicon.names_family`
  says whether an alias may stand for a whole family ("strings" yes, "cello" no).
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from functools import lru_cache
from itertools import compress
from operator import not_

#: Words in track names that say which side, take or chain a track is, not what it is.
MARKER_WORDS = frozenset({
    "l", "r", "c", "left", "right", "centre", "center", "st", "stereo", "mono", "di", "mic", "amp", "in",
    "out", "top", "bottom", "bot", "dbl", "double", "take", "tk", "comp", "alt", "main", "bus", "grp",
    "group", "fx", "dry", "wet", "close", "far", "hi", "lo", "the", "a", "my", "and", "mix", "track",
    "audio", "print", "new", "copy", "final", "v", "ver",
})
#: Marker words that are a whole track's name in many sessions ("FX", "SFX", "Print"): a track
#: named only with them is still named in a prompt ("FX on a bearing of 45").  The other markers
#: alone ("L", "Mix", "Dry", "Close") are prose or side words and never name a track.
NAMEABLE_MARKERS = frozenset({"fx", "sfx", "bus", "print", "mic"})
#: Aliases that only modify another instrument word ("Lead Gtr" is a guitar, "Lead" alone a synth).
WEAK_ALIASES = frozenset({"lead", "synth", "syn", "electric", "acoustic", "backing", "hook", "sub", "key",
                          "string", "break"})
FUZZY_RATIO = 0.8
FUZZY_MIN_LENGTH = 5

_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Za-z])(?=[0-9])|(?<=[0-9])(?=[A-Za-z])")


def normalise_words(text: str) -> list[str]:
    """Lower-case words of a track name or phrase: camelCase, digits and punctuation split."""
    text = _CAMEL.sub(" ", str(text))
    return [w for w in re.split(r"[^a-z0-9]+", text.lower()) if w]


def may_be_close(word: str, lengths, cutoff: float) -> bool:
    """Whether ``difflib.get_close_matches(word, candidates, cutoff=cutoff)`` can find anything
    among candidates of these ``lengths``: its first test, ``real_quick_ratio``, bounds the ratio
    by the lengths alone (the same arithmetic), so a 100 kB word is refused without the
    matcher indexing its 100,000 characters."""
    n = len(word)
    return any(2.0 * min(n, m) / (n + m) >= cutoff for m in lengths)


@dataclass(frozen=True)
class AliasHit:
    """One alias phrase found in a word list: ``words[start:end]`` names ``role``."""

    role: str
    start: int
    end: int
    alias: str
    weak: bool
    fuzzy: bool = False


class Lexicon:
    """The alias table: phrase (tuple of words) -> role."""

    def __init__(self, roles: dict[str, dict]):
        self.roles = dict(roles)
        self.phrases: dict[tuple[str, ...], str] = {}
        for role, spec in roles.items():
            for phrase in [role.replace("_", " ")] + list(spec["aliases"]):
                words = tuple(normalise_words(phrase))
                # first role listing a phrase keeps it; the YAML order is the tie-break
                self.phrases.setdefault(words, role)
        self.max_words = max(len(p) for p in self.phrases)
        #: every word of every alias (the parser never reads one as a misspelt side word)
        self.alias_words = frozenset(w for p in self.phrases for w in p)
        self.single_words = sorted(p[0] for p in self.phrases if len(p) == 1 and len(p[0]) >= FUZZY_MIN_LENGTH)
        self._single_lengths = frozenset(len(w) for w in self.single_words)
        #: the one-word aliases by first letter: a misspelt instrument keeps its first letter
        #: ("guiter", "vilon"), so "needs" is never "reeds" nor "local" "vocal" (issue 16, round 4)
        self._singles_by_letter: dict[str, list[str]] = {}
        for w in self.single_words:
            self._singles_by_letter.setdefault(w[0], []).append(w)
        #: first word -> {length in words -> the phrases of that length it starts}, longest first
        self._phrases_from: dict[str, dict[int, list[tuple[str, ...]]]] = {}
        for p in sorted(self.phrases, key=len, reverse=True):
            self._phrases_from.setdefault(p[0], {}).setdefault(len(p), []).append(p)

    def find(self, words: list[str], fuzzy: bool = True, skip: frozenset[str] = frozenset(), *,
             min_words: int = 1, taken: list[bool] | None = None) -> list[AliasHit]:
        """Non-overlapping alias hits in ``words``, longest phrases first, in word order.

        ``skip`` lists single-word aliases to ignore (the parser passes English words that are
        only instruments in a track name, such as "kit" or "voice").  ``min_words`` ignores
        shorter phrases; ``taken[i]`` true keeps word ``i`` out of every hit (a phrase never
        spans it), as if the words between such positions were searched one run at a time.

        Cost: one look-up per distinct word, then one per word that starts a phrase of each
        length (not one per word and length).
        """
        count = len(words)
        if taken is None:
            taken = [False] * count
            distinct = set(words)
        else:
            taken = list(taken)
            distinct = set(compress(words, map(not_, taken)))   # the words a phrase may use
        # the phrase lengths each distinct free word can start, longest first
        starts: dict[str, tuple[int, ...]] = {}
        for w, lengths in self.phrase_lengths(distinct).items():
            if w in skip:
                lengths = tuple(n for n in lengths if n != 1)
            lengths = tuple(n for n in lengths if n >= min_words)
            if lengths:
                starts[w] = lengths
        hits: list[AliasHit] = []
        if starts:
            positions = [i for i in compress(range(count), map(starts.__contains__, words)) if not taken[i]]
            for n in sorted({n for lengths in starts.values() for n in lengths}, reverse=True):
                for i in positions:
                    if i + n > count or n not in starts[words[i]] or any(taken[i:i + n]):
                        continue
                    phrase = tuple(words[i:i + n])
                    role = self.phrases.get(phrase)
                    if role is None and n == 1:
                        role = self.phrases.get((phrase[0][:-1],))   # the plural admitted above
                    if role is None:
                        continue
                    hits.append(AliasHit(role, i, i + n, " ".join(phrase), n == 1 and phrase[0] in WEAK_ALIASES))
                    taken[i:i + n] = [True] * n
        if fuzzy:
            for i, w in enumerate(words):
                if taken[i] or len(w) < FUZZY_MIN_LENGTH or w in MARKER_WORDS or w in skip \
                        or not may_be_close(w, self._single_lengths, FUZZY_RATIO):
                    continue
                close = difflib.get_close_matches(w, self._singles_by_letter.get(w[0], ()), n=1, cutoff=FUZZY_RATIO)
                if close:
                    hits.append(AliasHit(self.phrases[(close[0],)], i, i + 1, close[0],
                                         close[0] in WEAK_ALIASES, fuzzy=True))
                    taken[i] = True
        return sorted(hits, key=lambda h: h.start)

    def phrase_lengths(self, words: set[str]) -> dict[str, tuple[int, ...]]:
        """For each of ``words`` that starts a phrase made only of ``words`` (or is the plural of
        a one-word alias: "congas"), the lengths of those phrases in words, longest first.  A
        text whose distinct words give nothing here holds no alias."""
        out: dict[str, tuple[int, ...]] = {}
        for w in words:
            by_length = self._phrases_from.get(w, {})
            # a phrase whose words are not all in the text cannot match anywhere in it
            lengths = tuple(n for n, phrases in by_length.items()
                            if n == 1 or any(all(x in words for x in p) for p in phrases))
            if 1 not in lengths and len(w) > 3 and w.endswith("s") and (w[:-1],) in self.phrases:
                lengths += (1,)   # a plural of a one-word alias ("congas")
            if lengths:
                out[w] = lengths
        return out

    def names_family(self, hit: AliasHit) -> bool:
        """Whether an alias names a whole family ("strings", "keys", "guitars", "horns" as brass)
        rather than one instrument ("cello"): only a family word may find the tracks of other
        roles in that family when no track plays its own role."""
        family = self.roles[hit.role]["family"]
        return hit.role == family or hit.alias in (family, family + "s") or hit.alias.rstrip("s") == family

    @staticmethod
    def tracks_named_by(alias: str, tracks: list[str]) -> list[str]:
        """The ``tracks`` whose own name holds the words of ``alias`` ("hh" -> "03_HH", "kick" ->
        "Kick In" but not "Snare Top", though all are drums); all of ``tracks`` when none does
        or when every one does.  The one track-name matcher narrows a role to a name this way."""
        words = normalise_words(alias)
        if not words:
            return list(tracks)
        wanted = {w[:-1] if len(w) > 3 and w.endswith("s") else w for w in words}
        named = [t for t in tracks
                 if wanted <= {w[:-1] if len(w) > 3 and w.endswith("s") else w for w in normalise_words(t)}]
        return named if named else list(tracks)

    def role_of(self, name: str) -> str | None:
        """The role a track name stands for, or ``None`` when no alias fits."""
        words = normalise_words(name)
        # digits stay unless they are takes: "808" and "909" are instruments, "Gtr 2" is a take
        words = [w for w in words if not w.isdigit() or (w,) in self.phrases]
        hits = self.find(words)
        if not hits:
            return None
        return max(hits, key=hit_rank).role


def hit_rank(hit) -> tuple:
    """How strongly an alias hit names its track, for ``max``: strong (instrument) words beat
    modifiers; exact beats fuzzy; longer beats shorter; among equals the last word is the head
    noun in English ("Lead Gtr", "Synth Bass")."""
    return (not hit.weak, not hit.fuzzy, hit.end - hit.start, hit.start)


@lru_cache(maxsize=2)
def get_lexicon(root: str | None = None) -> Lexicon:
    """The validated lexicon from ``presets/`` (cached)."""
    from stase.presets import load_lexicon
    from pathlib import Path
    return Lexicon(load_lexicon(Path(root) if root else None)["roles"])


def match_track_role(track_name: str) -> str | None:
    """The role a DAW track name stands for: ``match_track_role("Gtr L") -> "electric_guitar"``."""
    if not isinstance(track_name, str):
        raise TypeError(f"track name must be a string, got {type(track_name).__name__}")
    return get_lexicon().role_of(track_name)
