"""How a request names session tracks beyond their full names (issue 16, round 8).

Holds
-----
* :func:`numbered_list_words`: a list that says a numbered name once and then only the numbers
  ("gtr 1 and 2", "harmony 1 & 2", "vln i and ii", "tom 1, 2 and 3") written out name by name
  ("gtr 1 and gtr 2"), where each such name is a session track.
* :func:`abbreviates`: whether one word is an abbreviation of another in the way session names
  and scores shorten instrument words ("ac" / "acoustic", "elec" / "electric", "vln" / "violin",
  "vc" / "violoncello", "tbn" / "trombone", "hn" / "horn", "dlg" / "dialogue"): the same first
  letter and the short word's letters in order in the long one.
* :func:`own_word_tracks`: the session tracks that a single word of the request names through
  a word of their own names: the word itself ("arp" -> "SYNTH_ARP"), its plural, or an
  abbreviation either way ("electric" -> "Elec Gtr", "timpani" -> "Timp", "vla" -> "Viola").
  Only one track may be named so (a word two tracks share names neither), and a word the
  clause reader treats as filler or a marker ("the", "main", "l") never names one.
* :func:`numbered_word_tracks`: a word several tracks share, said with the number that follows
  it in one of their names ("object 1" -> "Obj 1 Drone").
* :func:`reversed_pair_track`: a two-word track name said the other way round ("harmony vox"
  for "Vox Harm").
* :func:`choir_roles`: in a session of choir voice parts ("Sopran", "Alt", "Tenor", "Bass"), the
  parts whose names the lexicon reads otherwise ("Alt" is a take marker, "Bass" a bass guitar)
  are the choir's, so "the whole choir" and "the basses" find them.
* :func:`object_mention`: whether a mention is the object of a preposition or a comparison
  ("on top of the rhodes", "louder than the main vox", "next to the piano"): a pronoun in a
  later clause ("shift it right") refers to the clause's subject, not to such an object.

Used by :func:`stase.agent.parser.find_mentions` (step 2b: own words) and
:func:`stase.agent.parser_clauses._cues_of_clauses` (borrowed cues go to the subject).  Every pattern is
linear and runs only where its trigger occurs.
"""
from __future__ import annotations

import re
from functools import lru_cache

_ROMAN = ("i", "ii", "iii", "iv", "v", "vi")
_NUMBER = r"(?:\d{1,2}|i{1,3}|iv|vi?)"
_JOIN = r"\s*+(?:,|&|\+|/|and\b|or\b|n\b)\s*+(?:and\s+)?"


def _number_of(word: str) -> str:
    return str(_ROMAN.index(word) + 1) if word in _ROMAN else str(int(word))


@lru_cache(maxsize=256)
def _numbered_bases(tracks: tuple[tuple[str, ...], ...]) -> dict[tuple[str, ...], dict[str, str]]:
    """Name words before a final number -> {number as digits: that track's words joined}."""
    bases: dict[tuple[str, ...], dict[str, str]] = {}
    for words in tracks:
        if len(words) >= 2 and re.fullmatch(_NUMBER, words[-1]):
            bases.setdefault(words[:-1], {})[_number_of(words[-1])] = " ".join(words)
    return {b: n for b, n in bases.items() if len(n) >= 2}


@lru_cache(maxsize=256)
def _side_pairs(tracks: tuple[tuple[str, ...], ...]) -> tuple[tuple[str, ...], ...]:
    """Name words before a final "l" of tracks that also exist with a final "r" ("amb l" / "amb r")."""
    names = set(tracks)
    return tuple(words[:-1] for words in tracks if len(words) >= 2 and words[-1] == "l" and (*words[:-1], "r") in names)


@lru_cache(maxsize=256)
def _lettered(tracks: tuple[tuple[str, ...], ...]) -> dict[str, str]:
    """"g1" -> "guest 1": a track's first letter glued to its number, where only one track reads so."""
    found: dict[str, list[str]] = {}
    for words in tracks:
        if len(words) == 2 and words[1].isdigit() and words[0].isalpha() and len(words[0]) > 2:
            found.setdefault(words[0][0] + words[1], []).append(" ".join(words))
    return {k: v[0] for k, v in found.items() if len(v) == 1}


def numbered_list_words(text: str, track_words: list[list[str]]) -> str:
    """``text`` with "gtr 1 and 2" written "gtr 1 and gtr 2" where the session holds "Gtr 1" and
    "Gtr 2" (``track_words``: each track's normalised words); digits and roman numerals (up
    to vi) may be mixed with the track's own spelling ("vln 1 and ii" for "Vln I" / "Vln II")."""
    key = tuple(tuple(w) for w in track_words)
    for base in _side_pairs(key):   # "amb l/r", "amb l and r": both tracks of the pair
        if base[0] in text:
            body = r"[\s_\-]*".join(re.escape(w) for w in base)
            name = " ".join(base)
            text = re.sub(rf"(?<![a-z0-9]){body}[\s_\-]*+l\s*+(?:/|&|\+|and|-)\s*+r(?![a-z0-9])", f"{name} l and {name} r", text)
    lettered = _lettered(key)
    if lettered and any(k in text for k in lettered):   # "g1 / g2": "guest 1 / guest 2"
        text = re.sub(r"(?<![a-z0-9])([a-z]\d{1,2})(?![a-z0-9])", lambda m: lettered.get(m.group(1), m.group(1)), text)
    bases = _numbered_bases(key)
    if not bases:
        return text
    for base, numbered in bases.items():
        if base[0] not in text:
            continue
        body = r"[\s_\-]*".join(re.escape(w) for w in base)
        pattern = re.compile(rf"(?<![a-z0-9])(?P<base>{body})\s*+(?P<first>{_NUMBER})(?P<rest>(?:{_JOIN}{_NUMBER}(?![a-z0-9]))++)")

        def name(m: re.Match) -> str:
            numbers = [m.group("first"), *re.findall(_NUMBER, m.group("rest"))]
            digits = [_number_of(n) for n in numbers]
            if not all(d in numbered for d in digits):
                return m.group(0)
            names = [numbered[d] for d in digits]
            return ", ".join(names[:-1]) + " and " + names[-1]

        text = pattern.sub(name, text)
        if base[0] in text and any(_ROMAN[int(d) - 1] in text for d in numbered if 2 <= int(d) <= 4):
            # "Vln II is further than Vln I, bring II closer": a bare roman numeral (ii-iv) of a base
            # the request names is that track
            body = r"[\s_\-]*".join(re.escape(w) for w in base)
            if re.search(rf"(?<![a-z0-9]){body}(?![a-z])", text):
                text = re.sub(rf"(?<![a-z0-9])(?<!{re.escape(base[-1])}\s)(ii|iii|iv)(?![a-z0-9])",
                              lambda m: numbered.get(_number_of(m.group(1)), m.group(1)), text)
    return text


def abbreviates(short: str, long: str) -> bool:
    """Whether ``short`` shortens ``long`` as instrument abbreviations do: at least two letters,
    the same first letter, every letter of ``short`` in order in ``long``, and ``long`` longer."""
    if len(short) < 2 or len(long) <= len(short) or short[0] != long[0] or not short.isalpha():
        return False
    at = 0
    for ch in short[1:]:
        at = long.find(ch, at + 1)
        if at < 0:
            return False
    return True


#: Abbreviations of film, broadcast and orchestral session names that do not spell their word's
#: letters in order, as written on cue sheets and track names (a track word -> the words it means).
DOMAIN_ABBREVIATIONS = {
    "mx": ("music",), "dx": ("dialogue", "dialog"), "dlg": ("dialogue", "dialog"),
    "vo": ("voiceover", "narration"), "amb": ("ambience", "ambiance", "atmos", "atmosphere"),
    "bg": ("background", "backgrounds"), "solo": ("soloist",), "sop": ("sopranos", "soprano"),
    "bas": ("basses",), "alt": ("altos", "alto"), "ten": ("tenors", "tenor"),
    "bass": ("base",),   # dictation: "swap the keys and the base" (twelfth stop)
}
#: Words that are instruments or sources in film, broadcast and concert sessions though the
#: lexicon's roles do not list them (they may be read as the long form of a track's abbreviation).
DOMAIN_WORDS = frozenset("""dialogue dialog music score narration narrator voiceover ambience ambiance atmos foley
    soloist effects background timpani percussion celesta contrabass violoncello cembalo harpsichord organ
    sopranos altos tenors basses guest guests host caller presenter accompaniment object objects""".split())


def names_word(word: str, own: str, instrument_words) -> bool:
    """Whether a request's ``word`` names a track's ``own`` word: the same word, its plural, or
    an abbreviation either way (:func:`abbreviates`; the long word must be an instrument word)."""
    if own == word or word in DOMAIN_ABBREVIATIONS.get(own, ()):
        return True
    singular = word[:-2] if word.endswith("es") and len(word) > 4 else word[:-1] if word.endswith("s") and len(word) >= 3 else word
    known = word in instrument_words or word in DOMAIN_WORDS or singular in DOMAIN_WORDS
    return own == singular or (known and abbreviates(own, word)) \
        or (len(word) >= 3 and (own in instrument_words or own in DOMAIN_WORDS) and abbreviates(word, own)) \
        or (len(own) >= 5 and len(word) >= len(own) + 2 and singular.endswith(own.rstrip("s"))) \
        or (len(own) >= 5 and word.endswith("ing") and word[:-3] in (own, own + own[-1])) \
        or (len(own) >= 4 and len(word) >= len(own) + 3 and word.startswith(own) and own.isalpha()
            and word not in instrument_words and word not in NOT_LONG_FORMS)
    # ("footsteps" / "Steps"; "the brushing" / "Brush"; "the helicopter" / "Heli": a track word
    # that begins a longer word no instrument's is its short form, thirteenth stop)


#: Request words that begin with a plausible track word but are the request's own words
#: ("distance" is no "Dist Gtr", "overall" no "Over Mic"): never the long form of a track word.
NOT_LONG_FORMS = frozenset("""distance distances distant overall overhead backing background backgrounds
    everything everyone centered centred centering centring elevation elevated elevate volume position
    positions positioned placement reverb reverberant panning panned mixing levels stereo spreading widening
    further closer louder quieter softer higher lower wider narrower""".split())


def numbered_word_tracks(word: str, number: str, track_words: dict[str, list[str]], instrument_words) -> list[str]:
    """The one track whose own name has a word ``word`` names followed by ``number`` ("object 1"
    for "Obj 1 Drone"), as a one-item list, else ``[]``."""
    found = [t for t, words in track_words.items()
             if any(words[k + 1] == number and names_word(word, own, instrument_words)
                    for k, own in enumerate(words[:-1]) if len(own) >= 2 and not own.isdigit())]
    return found if len(found) == 1 else []


def own_word_tracks(word: str, track_words: dict[str, list[str]], instrument_words, skip) -> list[str]:
    """The one session track a request's ``word`` names through a word of the track's own name
    (see the module docstring), as a one-item list, else ``[]``.

    ``instrument_words`` are the words the lexicon knows as instruments: a long word is read as
    the full form of a track's abbreviation only if it is one ("electric" for "Elec", never
    "across" for "Ac").  ``skip`` are words that never name a track (filler, markers)."""
    if len(word) < 2 or word in skip or word.isdigit():
        return []
    found = []
    for track, words in track_words.items():
        for own in words:
            if own in skip or own.isdigit() or len(own) < 2:
                continue
            if names_word(word, own, instrument_words):
                found.append(track)
                break
    if len(found) > 1:
        # "sops" among "Sop" and "Solo Sop": the section, not its soloist; a plural ("hns" for
        # "Hn 1-2" and "Hn 3-4") names every track whose name is that word and numbers; a word of
        # a left / right pair ("music" for "MX L" and "MX R") names the pair
        found = section_tracks(found, track_words) or found
        bases = {tuple(w for w in track_words[t] if w not in ("l", "r", "c") and not w.isdigit()) for t in found}
        if len(found) > 1 and len(bases) == 1:
            return found
        if len(found) > 1 and word.endswith("s") and all(
                len([w for w in track_words[t] if not w.isdigit()]) == 1 for t in found):
            return found
    return found if len(found) == 1 else []


#: Words that mark a part apart from its section ("Solo Sop", "Lead Gtr", "Vox Dbl"): a section's
#: word ("sopranos", "the sops") names the section's tracks, not these
SOLOIST_WORDS = frozenset({"solo", "soloist", "lead", "ld", "main", "dbl", "double", "feature", "featured"})


def section_tracks(found: list[str], track_words: dict[str, list[str]]) -> list[str]:
    """``found`` less the tracks marked as a part apart (:data:`SOLOIST_WORDS`), when some remain."""
    rest = [t for t in found if not SOLOIST_WORDS & set(track_words[t])]
    return rest if rest and len(rest) < len(found) else []


def reversed_pair_track(first: str, second: str, pairs: dict[str, tuple[str, str]], instrument_words) -> str | None:
    """The one track of two words (``pairs``: track -> its two words) that ``first second``
    names in the other order, or each word abbreviated ("harmony vox" for "Vox Harm", "violin
    1st"): ``None`` when none or several do."""
    found = [t for t, (a, b) in pairs.items()
             if a[0] == second[0] and b[0] == first[0] and names_word(first, b, instrument_words)
             and names_word(second, a, instrument_words)]
    return found[0] if len(found) == 1 else None


#: Words after which a track named is an object, not the clause's subject.
OBJECT_WORDS = frozenset("""of than with from to beside behind against over under near onto into towards toward
    past alongside below above between""".split())
_OBJECT_BEFORE = re.compile(r"(?:^|\s)(?P<word>[a-z]+)\s+(?:(?:the|a|an|my|our|your|that|this)\s+)?(?:main\s+|lead\s+)?$")


def object_mention(text: str, start: int) -> bool:
    """Whether the mention starting at ``start`` follows a preposition or comparison word
    (:data:`OBJECT_WORDS`), looking back at most 40 characters."""
    m = _OBJECT_BEFORE.search(text, max(0, start - 40), start)
    return m is not None and m.group("word") in OBJECT_WORDS


#: Names of a choir's voice parts as session tracks carry them (German and Italian spellings too)
VOICE_PARTS = frozenset("""sop sopr sopran soprano sopranos mezzo alt alto altos contralto ten tenor tenore tenors bar
    bari bariton baritone baritono bas bass basso basses lead""".split())   # "lead": a barbershop quartet's melody


def choir_roles(roles: dict[str, str | None], track_words: dict[str, list[str]], choir: str = "choir") -> dict[str, str | None]:
    """``roles`` with the voice parts of a choir session given the choir's role: when at least
    three tracks are named by one voice part each (digits aside: "Sop 1", "Alt", "Tenor",
    "Bass"), those tracks are the choir's whatever else the lexicon read in their names."""
    parts = [t for t, words in track_words.items()
             if len([w for w in words if not w.isdigit()]) == 1 and any(w in VOICE_PARTS for w in words)]
    saxes = [t for t in parts if any(w in SAX_PARTS for w in track_words[t])]
    if saxes and any(roles.get(t) == SAXOPHONE or any(w.startswith("sax") for w in words)
                     for t, words in track_words.items() if t not in parts):
        # a big band's "Alto 1", "Tenor 2" beside a "Bari Sax": the sax section, not a choir
        # (thirteenth stop)
        return {**roles, **{t: SAXOPHONE for t in saxes}}
    if len(parts) < 3 or all(roles.get(t) == choir for t in parts):
        return roles
    return {**roles, **{t: choir for t in parts}}


#: The saxophone's role, and the voice-part words that also name a saxophone ("Alto 1", "Bari")
SAXOPHONE = "saxophone"
SAX_PARTS = frozenset("sop soprano alto alt ten tenor bari baritone".split())
