"""Mention finding: which session tracks a prompt names, and where.

Holds
-----
* :func:`find_mentions`: the spans of a normalised prompt that name session tracks (a track's
  own name, a lexicon alias, a word of its name, an abbreviation, a family's plural, a kin word:
  :func:`_kin_tracks`), and the absent instruments (a word naming no track of the session).
* :data:`PROSE_SKIP`: prose words that are aliases only inside a track name ("the key of D");
  :data:`NOUN_AT_PHRASE_END` ("acoustic" at the end of a noun phrase is the instrument).
* Word helpers every later stage shares: :data:`_WORD`, :func:`_word_spans`, :func:`_words_of`,
  :func:`_words_outside` (the words outside cue spans), :data:`_NUMBER_WORDS`, :data:`_ORDER_VERBS`.
* Track resolution of the scanner's guards: :func:`_track_name_spans` (where a track's own name
  stands, so one-letter side rules never read inside "Gtr L") and :func:`_residual` (the words no
  cue or mention claimed).

The name-level mechanisms (a word of one track's name, reversed pairs, sections, ordinals) live in
:mod:`stase.agent.parser_names` and :mod:`stase.agent.parser_vocabulary`; this module applies them
to a prompt.  Cost: linear in the text (phrase lookups are tries, positions found by bisection).
"""
from __future__ import annotations

import bisect
import difflib
import re
from functools import lru_cache
from itertools import accumulate, compress, groupby
from operator import attrgetter, itemgetter, le, not_

from stase.agent.lexicon import (AliasHit, FUZZY_MIN_LENGTH, Lexicon, MARKER_WORDS, NAMEABLE_MARKERS, may_be_close,
    normalise_words)
from stase.agent.parser_names import names_word, numbered_word_tracks, own_word_tracks, reversed_pair_track, section_tracks
from stase.agent.parser_vocabulary import part_tracks
from stase.agent.parser_rules import PLACE_FILLER, _SMALL_NUMBERS
from stase.agent.parser_text import sentence_end, sentence_start
from stase.agent.parser_types import Mention


#: Number words ("twenty", "half"): never an instrument's name
_NUMBER_WORDS = frozenset(w for phrase in _SMALL_NUMBERS for w in phrase.replace("-", " ").split())


#: Prose words that are aliases only inside a track name ("the key of D", "lead the way").
PROSE_SKIP = frozenset({
    "lead", "key", "beat", "beats", "break", "mc", "ag", "eg", "ep", "db", "dr", "sn", "sd", "bd", "oh",
    "lv", "va", "vl", "vn", "cl", "ob", "fg", "hp", "tp", "fl", "bs", "hn", "gt", "pn", "cb",
    "string", "grand", "ride", "crash", "clap", "bells", "harmony", "backing", "acoustic", "electric",
    "upright", "sub", "org", "tom", "hat", "arp", "hook", "texture", "textures", "atmosphere", "ambience",
    "ambient", "drone", "swell", "swells", "doubles", "recorder", "whistle", "triangle", "syn", "kbd",
    "trb", "tba", "sop", "break", "voices", "singers", "rap", "hats", "horn", "va", "tpt", "soundscape",
    "harm", "ww", "winds", "reeds", "sub", "bones", "break", "mallets", "chimes", "gong", "ohs", "vcl",
    "voc", "trp",
})


# ------------------------------------------------------------------------------------------------
# Mentions
# ------------------------------------------------------------------------------------------------
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_ALL_TRACKS = re.compile(r"\b(?:everything|everybody|everyone|every track|all(?: the)? tracks|all instruments|all of them|the whole mix)\b")
_ORDER_VERBS = re.compile(r"\b(?:put|place|move|pan|push|bring|set|position|sit|seat)\b")


_WORD_SPLIT = re.compile(f"({_WORD.pattern})")


def _word_spans(text: str) -> list[tuple[str, int, int]]:
    words, starts, ends = _words_of(text)
    return list(zip(words, starts, ends))


def _words_of(text: str, parts: list[str] | None = None) -> tuple[list[str], list[int], list[int]]:
    """The words of a normalised text and where each starts and ends (character offsets);
    ``parts`` is ``_WORD_SPLIT.split(text)`` when the caller has it.

    One split and one running sum, both in C: a 100 kB text of one-letter words has 50,000 of
    them, and a match object per word would cost more than the rest of the parse.
    """
    if parts is None:
        parts = _WORD_SPLIT.split(text)      # gap, word, gap, word, ..., gap
    offsets = list(accumulate(map(len, parts), initial=0))
    words = parts[1::2]
    return words, offsets[1::2][:len(words)], offsets[2::2]


def _words_outside(text: str, blocked: list[tuple[int, int]],
                   parts: list[str] | None = None) -> tuple[list[str], list[int], list[int]]:
    """:func:`_words_of` without the words starting inside a ``blocked`` span: one slice
    assignment per span and one look-up per word, both in C."""
    words, starts, ends = _words_of(text, parts)
    if not blocked:
        return words, starts, ends
    inside = bytearray(len(text) + 1)
    for a, b in blocked:
        inside[a:b] = b"\x01" * (b - a)
    if not words:
        return words, starts, ends
    keep = list(map(not_, itemgetter(*starts)(inside))) if len(starts) > 1 else [not inside[starts[0]]]
    return list(compress(words, keep)), list(compress(starts, keep)), list(compress(ends, keep))


def _where(words: list[str], wanted) -> list[int]:
    """The indices of the words that are in ``wanted`` (a set or dict), found in C."""
    return list(compress(range(len(words)), map(wanted.__contains__, words)))


def _track_side(name: str) -> int:
    words = normalise_words(name)
    if any(w in ("l", "left") for w in words):
        return 1
    if any(w in ("r", "right") for w in words):
        return -1
    return 0


def _kin_tracks(alias: str, tracks: list[str], roles: dict[str, str | None],
                track_words: dict[str, list[str]]) -> list[str]:
    """The session tracks a one-word alias names when no track plays its role, or when it found
    several tracks none of which holds it (round 6): a track whose own name holds the word or
    an abbreviation of it ("tenor" -> "Tenor Sax" although "tenor" is a choir voice, "tenors" ->
    "Ten", "basses" -> "Bass"), else the tracks whose role is a kind of it ("bass" -> the upright
    of role ``double_bass``, "guitar" -> an ``acoustic_guitar``)."""
    if " " in alias or len(alias) < 3:
        return []
    own = [t for t in tracks if any(w == alias or (len(w) >= 3 and alias.startswith(w) and w not in MARKER_WORDS
                                                    and not w.isdigit()) for w in track_words[t])]
    if len(own) > 1:   # "sopranos" among "Sop" and "Solo Sop": the section, not its soloist (round 8)
        own = section_tracks(own, track_words) or own
    if own:
        return own
    own = own_word_tracks(alias, track_words, frozenset(), _OWN_WORD_SKIP)   # "altos" for a choir's "Alt"
    if own:
        return own
    said = {alias, alias[:-1]} if alias.endswith("s") and len(alias) > 3 else {alias}   # "basses", "bass"
    return [t for t in tracks if roles.get(t) and said & set(roles[t].split("_"))]


#: Words that are an instrument only at the end of a noun phrase ("swap keys and acoustic",
#: "keys and acoustic, narrower"), never before a noun ("an acoustic space", "an upright piano"
#: is read whole): in prose they are skipped (:data:`PROSE_SKIP`) except there (round 6).
NOUN_AT_PHRASE_END = frozenset({"acoustic", "electric", "upright", "grand", "harmony", "backing", "recorder"})
_PHRASE_END_AFTER = re.compile(r"\s*(?:$|[,.;!?+&\d]|\b(?:and|or|with|please|pls|left|right|cent(?:re|er)|middle|behind"
                               r"|closer|further|louder|quieter|wider|narrower|up|down)\b)")
#: "the mic track", "the di channel": a word of one track's name before "track" / "channel"
_TRACK_NOUNS = frozenset({"track", "channel"})


#: Last words of an alias phrase that are prepositions in prose ("Kick In" is a DAW name; "the kick
#: in the centre" is the kick and a place): before a determiner the phrase is not read, unless a
#: session track is named with the whole phrase.
_PREPOSITION_TAILS = frozenset({"in", "out"})
_PLACE_AFTER = re.compile(r"\s+(?:the|a|an|my|your|our|this|that|front|there|here)\b")


def _instrument_words(lexicon: Lexicon) -> frozenset[str]:
    """The words the lexicon knows as instruments (its aliases' words and the prose-only ones),
    worked out once per lexicon."""
    known = getattr(lexicon, "_instrument_words", None)
    if known is None:
        known = frozenset(lexicon.alias_words | PROSE_SKIP)
        try:
            lexicon._instrument_words = known
        except AttributeError:   # a lexicon with slots: asked again next time
            pass
    return known


def _is_numbered_marker_name(words: list[str]) -> bool:
    """A DAW's default name, a marker word of three or more letters and a number ("Audio 2",
    "Track 12", "Take 3"): said in full it names its track, though "audio" alone names none."""
    return any(w.isdigit() for w in words) and any(len(w) >= 3 and not w.isdigit() for w in words)


def find_mentions(text: str, tracks: list[str], roles: dict[str, str | None], lexicon: Lexicon,
                  blocked: list[tuple[int, int]] = ()) -> tuple[list[Mention], list[Mention]]:
    """Mentions of session tracks in a normalised prompt: (mentions, mentions of absent roles).

    Order of trust: a track's full name; a lexicon alias whose role a track plays (or whose family
    one plays: "strings" finds violins and cellos); a close spelling of a track's own word.
    ``blocked`` spans (spatial expressions) are never read as mentions ("left" in "Gtr L").

    Cost: a few passes over the words in C, then work per distinct word and per mention; what
    depends only on a word (its alias, its close spelling) is asked once per distinct word.
    """
    parts = _WORD_SPLIT.split(text)
    distinct = set(parts[1::2])
    track_words = {t: normalise_words(t) for t in tracks}
    if not (any(len(w) >= 4 for w in distinct)   # a fuzzy alias or a close spelling needs 4 letters
            or {w for tw in track_words.values() for w in tw} & distinct
            or lexicon.phrase_lengths(distinct)
            or (tracks and any(word in text for word in ("every", "all", "whole")))):
        return [], []   # no word of the text can name a track or an instrument: skip the passes
    words, starts, ends = _words_outside(text, sorted(blocked), parts)
    distinct = set(words)
    instruments = _instrument_words(lexicon)
    taken = [False] * len(words)
    mentions: list[Mention] = []
    absent: list[Mention] = []

    def add(i: int, j: int, found: list[str], how: str, role: str | None = None) -> None:
        mentions.append(Mention(text[starts[i]:ends[j - 1]], starts[i], ends[j - 1], found, role, how))
        taken[i:j] = [True] * (j - i)

    playing: dict[str, list[str]] = {}

    def tracks_playing(role: str) -> list[str]:
        if role not in playing:
            playing[role] = [t for t in tracks if roles.get(t) == role]
        return list(playing[role])

    families = {r: spec["family"] for r, spec in lexicon.roles.items()}
    # 0. multi-word instrument phrases a track plays ("the upright bass" beats a track named "Upright")
    def contiguous(i: int, j: int) -> bool:
        """Words ``i..j-1`` stand next to each other in the text (no cue words or punctuation
        between them: "bass 40 degrees left, gtr r" holds no "bass gtr")."""
        if j - i == 2:   # the usual multi-word name: one gap, no generator
            return not text[ends[i]:starts[i + 1]].strip(" _-")
        return all(not text[ends[k]:starts[k + 1]].strip(" _-") for k in range(i, j - 1))

    for hit in lexicon.find(words, fuzzy=False, skip=PROSE_SKIP, min_words=2):
        if words[hit.end - 1] in _PREPOSITION_TAILS and _PLACE_AFTER.match(text, ends[hit.end - 1]) \
                and not any(set(words[hit.start:hit.end]) <= set(tw) for tw in track_words.values()):
            continue   # "plonk the kick in the dead centre": the track "kick", then a place (round 6)
        found = tracks_playing(hit.role)
        if len(found) > 1:   # "kick out" among four drum tracks is the track named so
            found = lexicon.tracks_named_by(hit.alias, found)
        if len(found) > 1:   # "lead vocal": the track "Lead Vox", not "Vox Dbl"
            found = [t for t in found if set(words[hit.start:hit.end]) & set(track_words[t])] or found
        if len(found) > 1 and any(len(track_words[t]) > hit.end - hit.start
                                  and words[hit.start:hit.start + len(track_words[t])] == track_words[t] for t in found):
            continue   # "e gtr l" is the track "E Gtr L", not the pair "e gtr" (round 6): step 1 reads it
        if found and not any(taken[hit.start:hit.end]) and contiguous(hit.start, hit.end):
            add(hit.start, hit.end, found, "alias", hit.role)
    # 0b. a two-word name said the other way round ("harmony vox" for "Vox Harm"; round 8)
    pairs = {t: tuple(tw) for t, tw in track_words.items() if len(tw) == 2 and not any(w.isdigit() for w in tw)}
    if pairs and len(words) > 1:
        seconds = {tw[0][0] for tw in pairs.values()}
        firsts_of = {tw[1][0] for tw in pairs.values()}
        asked: dict[tuple[str, str], str | None] = {}
        for i in range(len(words) - 1):
            a, b = words[i], words[i + 1]
            if taken[i] or taken[i + 1] or a[0] not in firsts_of or b[0] not in seconds or not contiguous(i, i + 2):
                continue
            if (a, b) not in asked:
                asked[(a, b)] = reversed_pair_track(a, b, pairs, instruments)
            if asked[(a, b)] is not None:
                add(i, i + 2, [asked[(a, b)]], "name")
    # 1. full track names (longest first), skipping names that are pure markers
    named = sorted(tracks, key=lambda t: -len(track_words[t]))
    first_words = {tw[0] for tw in track_words.values() if tw}
    # a possessive names its track ("the tpt's spot"): the word without its "'s"
    stem_of = {w: w[:-2] for w in distinct if w.endswith("'s") and w[:-2] in first_words}
    firsts = (first_words & distinct) | set(stem_of)
    positions: dict[str, list[int]] = {}   # word -> where it occurs, so each name is sought only there
    if firsts:
        stem = (lambda i: stem_of.get(words[i], words[i])) if stem_of else words.__getitem__
        found_at = sorted(_where(words, firsts), key=stem)   # stable: in text order per word
        positions = {w: list(at) for w, at in groupby(found_at, key=stem)}
    for track in named:
        tw = track_words[track]
        if not tw or tw[0] not in positions or (
                all((w in MARKER_WORDS and w not in NAMEABLE_MARKERS) or w.isdigit() for w in tw)
                and not _is_numbered_marker_name(tw)):
            continue
        n = len(tw)
        same = [t for t in tracks if track_words[t] == tw]
        if n == 1:   # the common case, without a slice per occurrence
            for i in positions[tw[0]]:
                if not taken[i]:
                    mentions.append(Mention(words[i], starts[i], ends[i], same, None, "name"))
                    taken[i] = True
            continue
        second, last = tw[1], len(words) - n
        for i in positions[tw[0]]:
            # cheapest test first: the second word (most occurrences of a first word fail it)
            if i <= last and words[i + 1] == second and not taken[i] and words[i:i + n] == tw \
                    and not any(taken[i:i + n]) and contiguous(i, i + n):
                add(i, i + n, same, "name")
    # 2. lexicon aliases, never straddling a word taken above; a free word's fuzzy spelling
    #    depends on nothing but the word, so it is asked once per distinct word
    skip = PROSE_SKIP
    if NOUN_AT_PHRASE_END & distinct:
        nouns = {words[i] for i in _where(words, NOUN_AT_PHRASE_END) if _PHRASE_END_AFTER.match(text, ends[i])}
        skip = PROSE_SKIP - nouns if nouns else PROSE_SKIP
    if _TRACK_NOUNS & distinct:
        for i in _where(words, _TRACK_NOUNS):
            if i > 0 and not taken[i - 1] and contiguous(i - 1, i + 1):
                holding = [t for t in tracks if words[i - 1] in track_words[t]]
                if len(holding) == 1:   # "the mic track" among "Ac Gtr DI" and "Ac Gtr Mic"
                    add(i - 1, i + 1, holding, "name")
    # a possessive or "'s" of an instrument ("the singer's a wee bit off") is the instrument
    # (thirteenth stop); the words' positions stay, only the alias lookup sees the stem
    possessive = {w: w[:-2] for w in distinct if w.endswith("'s") and w[:-2] in lexicon.alias_words}
    alias_view = [possessive.get(w, w) for w in words] if possessive else words
    hits = [h for h in lexicon.find(alias_view, fuzzy=False, skip=skip, taken=taken)
            if h.end - h.start == 1 or contiguous(h.start, h.end)]
    exact = list(taken)
    for hit in hits:
        exact[hit.start:hit.end] = [True] * (hit.end - hit.start)
    free_words = set(compress(words, map(not_, exact)))
    fuzzy = {}
    for w in free_words:
        if len(w) >= FUZZY_MIN_LENGTH and w not in MARKER_WORDS and w not in PROSE_SKIP \
                and not w.endswith(("ed", "ing")):   # "recorded" is a verb, not "recorder" misspelt (round 8)
            found_hits = lexicon.find([w], fuzzy=True, skip=PROSE_SKIP)
            if found_hits:
                fuzzy[w] = found_hits
    if fuzzy:
        # (a word after "it" / "she" is its verb, never a misspelt instrument: "it reads too far
        # off" is no "reeds"; thirteenth stop)
        for k in [k for k in _where(words, fuzzy) if not exact[k] and not (k and words[k - 1] in _SUBJECT_PRONOUNS)]:
            hits.extend(AliasHit(h.role, k, k + 1, h.alias, h.weak, h.fuzzy) for h in fuzzy[words[k]])
        hits.sort(key=attrgetter("start"))
    resolved: dict[tuple[str, str], tuple[list[str], str]] = {}   # (role, alias) -> the tracks it finds, and how
    for hit in hits:
        key = (hit.role, hit.alias)
        if key not in resolved:
            found, how = tracks_playing(hit.role), "alias"
            if not found and lexicon.names_family(hit):
                fam = families.get(hit.role)
                found, how = [t for t in tracks if roles.get(t) and families.get(roles[t]) == fam], "family"
                # a track whose own name abbreviates the word ("horns" for "Hrn") beats the family
                own = own_word_tracks(hit.alias, track_words, instruments, _OWN_WORD_SKIP)
                if own:
                    found, how = own, "own word"
            whole_family = False
            if how != "own word" and found and lexicon.names_family(hit) \
                    and (hit.alias.endswith("s") or hit.alias.endswith(" section")) and not any(
                    hit.alias in track_words[t] or hit.alias[:-1] in track_words[t] for t in found):
                # a family's plural ("both guitars", "the brass") names every track of the family,
                # not the one role its alias belongs to (round 8: "Ac Gtr" and "Elec Gtr")
                fam = families.get(hit.role)
                family_tracks = [t for t in tracks if roles.get(t) and families.get(roles[t]) == fam]
                whole_family = len(family_tracks) > len(found)
                found = family_tracks or found
            if len(found) > 1:
                found = lexicon.tracks_named_by(hit.alias, found)
                singular = hit.alias[:-2] if hit.alias.endswith("es") else hit.alias[:-1]
                if len(found) > 1 and how == "alias" and hit.alias.endswith("s") and " " not in hit.alias \
                        and (hit.role.startswith(singular) or singular in hit.role.split("_")):
                    # a plural of the role's own name ("the saxes") names every track playing it,
                    # not the one whose name holds the word ("Bari Sax" beside "Alto 1"; thirteenth
                    # stop); a part's plural ("tenors" in a choir) still finds its part
                    whole_family = True
            if len(found) > 1 and not hit.alias.endswith("s"):
                # one instrument said once ("the vocal") among "Vox" and "Vox_Dbl": the track
                # whose name carries no marker (double, take, bus...; round 8)
                plain = [t for t in found if not set(track_words[t]) & MARKER_WORDS]
                found = plain if len(plain) == 1 else found
            if len(found) > 1 and not whole_family:   # "the overheads" among eleven drum tracks: "OH L" and "OH R" (round 7)
                found = part_tracks(hit.alias, found, track_words.__getitem__)
            if len(found) > 1 and " " in hit.alias:
                holding = [t for t in found if set(hit.alias.split()) & set(track_words[t])]
                found = holding if holding else found   # "lead vocal": the track "Lead Vox", not "Vox Dbl"
            if not found or (len(found) > 1 and not whole_family and not any(hit.alias in track_words[t] for t in found)):
                kin = _kin_tracks(hit.alias, tracks, roles, track_words)
                if kin:
                    found, how = kin, "kin"
            resolved[key] = (found, how)
        found, how = resolved[key]
        i, j = hit.start, hit.end
        if found:
            add(i, j, list(found), how, hit.role)
        else:
            absent.append(Mention(text[starts[i]:ends[j - 1]], starts[i], ends[j - 1], [], hit.role, "absent"))
            taken[i:j] = [True] * (j - i)
    # 2b. a word of one track's own name, its plural or an abbreviation either way ("arp" for
    #     "SYNTH_ARP", "electric" for "Elec Gtr", "vla" for "Viola"; round 8)
    free = set(compress(words, map(not_, taken)))
    if free:
        skip_own = _OWN_WORD_SKIP | {w for w in free if w in PLACE_FILLER}
        # (a possessive or "'s" of a track's word, "ben's up on the landing", is the word: thirteenth stop)
        own_found = {w: own_word_tracks(w[:-2] if w.endswith("'s") else w, track_words, instruments, skip_own)
                     for w in free if len(w) <= 24}
        own_found = {w: f for w, f in own_found.items() if f}
        if own_found:
            for i in [i for i in _where(words, own_found) if not taken[i]]:
                add(i, i + 1, own_found[words[i]], "own word")
        # "object 1" for "Obj 1 Drone" among "Obj 2 Sonar", "Obj 3 Bubbles": a word several tracks
        # share, then the number that follows it in one of their names (twelfth stop)
        for i in range(len(words) - 1):
            if taken[i] or taken[i + 1] or not words[i + 1].isdigit() or words[i] not in free \
                    or words[i] in own_found or words[i] in skip_own or len(words[i]) < 3:
                continue
            numbered = numbered_word_tracks(words[i], words[i + 1], track_words, instruments)
            if numbered:
                add(i, i + 2, numbered, "own word")
        # "the car arrival in q5" among "Q5 Car Arrive" and "Q6 Car Leave": a word several tracks
        # share, then (within three words, no punctuation between) a word only one of them has,
        # said the same or with the same first five letters (thirteenth stop)
        shared_by: dict[str, list[str]] = {}   # asked once per distinct word
        for i in range(len(words) - 1):
            w = words[i]
            if taken[i] or w not in free or w in own_found or w in skip_own or len(w) < 3 or w.isdigit():
                continue
            if w not in shared_by:
                shared_by[w] = [t for t in tracks if any(names_word(w, own, instruments) for own in track_words[t]
                                                         if own not in skip_own and not own.isdigit() and len(own) >= 2)]
            sharing = shared_by[w]
            if len(sharing) < 2:
                continue
            common = set.intersection(*(set(track_words[t]) for t in sharing))
            for j in range(i + 1, min(i + 4, len(words))):
                if taken[j] or _CLAUSE_MARK.search(text, ends[j - 1], starts[j]):
                    break
                said = words[j]
                picked = [t for t in sharing if any(
                    own == said or (len(own) >= 5 and len(said) >= 5 and own[:5] == said[:5])
                    for own in track_words[t] if own not in common and own not in skip_own)]
                if len(picked) == 1:
                    add(i, j + 1, picked, "own word")
                    break
    # 3. the whole session ("everything 3 m away")
    if tracks and any(word in text for word in ("every", "all", "whole")):
        count = len(words)
        for m in _ALL_TRACKS.finditer(text):
            a, b = m.span()   # the phrase must begin and end with words
            i = bisect.bisect_left(starts, a)
            if i == count or starts[i] != a:
                continue
            if ends[i] == b:   # one word: "everything"
                if not taken[i]:
                    mentions.append(Mention(words[i], a, b, list(tracks), None, "all"))
                    taken[i] = True
                continue
            k = bisect.bisect_left(ends, b, i)
            if k < count and ends[k] == b and not any(taken[i:k + 1]):
                add(i, k + 1, list(tracks), "all")
    # 4. close spellings of a track's own distinctive words ("guiter" for "Guitar", "marcos")
    own = {}
    for t in tracks:
        for w in track_words[t]:
            if len(w) >= 4 and w not in MARKER_WORDS and not w.isdigit():
                own.setdefault(w, []).append(t)
    if own:
        own_words = list(own)
        # difflib costs ~0.1 ms a word: ask once per distinct free word
        own_lengths = {len(w) for w in own_words}
        spelt = {w: difflib.get_close_matches(w, own_words, n=1, cutoff=0.8)
                 for w in set(compress(words, map(not_, taken)))
                 if len(w) >= 4 and may_be_close(w, own_lengths, 0.8)}
        # a close spelling keeps its first letter ("guiter"; "layer" is no "player": round 8)
        close = {w for w, c in spelt.items() if c and c[0][0] == w[0]}
        if close:
            for i in [i for i in _where(words, close) if not taken[i]]:
                add(i, i + 1, own[spelt[words[i]][0]], "spelling")
    mentions.sort(key=attrgetter("start"))
    if len(mentions) > 1:
        # "the phone guest": a track named before a word that names several tracks is one noun
        # phrase, the first track's (round 8); so is "the harmony vocal" when the word names the
        # first track among others (twelfth stop); "the pad stems": a group named before a word that
        # names it among others is that group (thirteenth stop)
        # "the shooting-star whoosh": a name ending a hyphenated word just before another name is
        # that name's modifier, no mention of its own (thirteenth stop)
        mentions = [mm for k, mm in enumerate(mentions)
                    if not (k + 1 < len(mentions) and mm.start >= 2 and text[mm.start - 1] == "-"
                            and text[mm.start - 2].isalpha() and not text[mm.end:mentions[k + 1].start].strip())]
        merged = [mentions[0]]
        for mm in mentions[1:]:
            head = merged[-1]
            if ((len(head.tracks) == 1 < len(mm.tracks) or set(head.tracks) < set(mm.tracks))
                    and mm.how in ("spelling", "kin", "own word") or mm.text in _GENERIC_NOUNS) \
                    and not text[head.end:mm.start].strip():
                # ("the crowd mics" among "Crowd L", "Crowd R" and "Ref Mic": the crowd's mics)
                merged[-1] = Mention(text[head.start:mm.end], head.start, mm.end, head.tracks, head.role, head.how)
                continue
            if len(head.tracks) == 1 and mm.tracks and head.tracks != mm.tracks and not text[head.end:mm.start].strip() \
                    and any(names_word(w, own, instruments) for w in mm.text.split() for own in track_words[head.tracks[0]]):
                # "the base guitar" for "Bass Gtr" beside a "Lead Gtr": the phrase names the track
                # that has both words (thirteenth stop)
                merged[-1] = Mention(text[head.start:mm.end], head.start, mm.end, head.tracks, head.role, head.how)
                continue
            merged.append(mm)
        mentions = merged
    if _ENSEMBLE_WORD.search(text):
        # "pull the quartet in", "the trio": the one family the session has that many tracks of (thirteenth stop)
        by_family: dict[str, list[str]] = {}
        for t in tracks:
            if roles.get(t):
                by_family.setdefault(families.get(roles[t]) or roles[t], []).append(t)
        held = [(mm.start, mm.end) for mm in mentions]
        for m in _ENSEMBLE_WORD.finditer(text):
            size = _ENSEMBLE_SIZES[m.group(1)]
            fitting = [ts for ts in by_family.values() if len(ts) == size]
            begin, stop = sentence_start(text, m.start()), sentence_end(text, m.end())
            # (only in a sentence that names no track itself: "2nd violin <-> viola, the quartet sits
            # differently on this record" swaps two of them)
            if len(fitting) == 1 and not any(a < stop and begin < b for a, b in held):
                mentions.append(Mention(m.group(0), m.start(), m.end(), list(fitting[0]), None, "ensemble"))
        mentions.sort(key=attrgetter("start"))
    for k, mm in enumerate(mentions):
        if mm.role and mm.how == "alias" and _SECTION_AFTER.match(text, mm.end):
            # "the sax section": every track playing it (thirteenth stop)
            section = [t for t in tracks if roles.get(t) == mm.role]
            if len(section) > len(mm.tracks):
                mentions[k] = mm = Mention(mm.text, mm.start, mm.end, section, mm.role, mm.how)
        if len(mm.tracks) > 1:
            # "the mic'd acoustic" among "Acoustic Gtr DI" and "Acoustic Gtr Mic": a word said
            # before a mention of several tracks that is a word of one of them names that one
            # (thirteenth stop)
            before = _MODIFIER_BEFORE.search(text, max(0, mm.start - 24), mm.start)
            if before is None or (k and mentions[k - 1].end > before.start()):
                continue
            w = before.group(1)
            forms = {w, w[:-2] if w.endswith("ed") else w, w[:-1] if w.endswith("d") else w}
            hit = [t for t in mm.tracks if forms & set(track_words[t])]
            if len(hit) == 1:
                mentions[k] = Mention(text[before.start():mm.end], before.start(), mm.end, hit, mm.role, mm.how)
    return mentions, absent


_ENSEMBLE_SIZES = {"duo": 2, "trio": 3, "quartet": 4, "quintet": 5, "sextet": 6}
_ENSEMBLE_WORD = re.compile(r"\b(duo|trio|quartet|quintet|sextet)\b")
#: Nouns said after a name for what it is ("the crowd mics", "the vocal tracks")
_GENERIC_NOUNS = frozenset({"mic", "mics", "track", "tracks", "channel", "channels", "stem", "stems", "feed", "feeds",
                            "bus", "busses", "buses"})
_CLAUSE_MARK = re.compile(r"[,.;:!?()]")
_SUBJECT_PRONOUNS = frozenset({"it", "she", "he", "they", "this", "that", "which"})
_SECTION_AFTER = re.compile(r"\s+sections?\b")
#: The word right before a mention, and a participle's ending ("mic'd", "miked")
_MODIFIER_BEFORE = re.compile(r"\b([a-z]{2,})(?:'d|'ed)?\s+$")


_GUARDED_WORDS = frozenset({"l", "r", "c", "left", "right"})
#: Words that never name a track through a word of its name (:func:`stase.agent.parser_names.own_word_tracks`):
#: markers ("main", "l", "bus"), side, unit and number words (round 8).
_OWN_WORD_SKIP = (MARKER_WORDS - NAMEABLE_MARKERS - {"dbl", "double", "bus", "grp", "comp", "amp", "print", "alt"}) \
    | _NUMBER_WORDS | frozenset(
    "deg degs degree degrees db m cm ft feet metres meters way bit lot up down back more less".split())


def _track_name_spans(text: str, tracks: list[str], every: bool = False) -> list[tuple[int, int]]:
    """Where the session's track names holding a side letter or a number occur in ``text``
    ("gtr l", "05_gtr_l", "tom 2"): rules reading one-letter sides or bare numbers keep out.
    With ``every``, where any name of two or more words occurs ("open hat", "back vox"): no
    rule's match may begin inside one (round 8: "open hat 20 degrees right" is no width change).
    One C-speed search per such name, and only where its first word occurs."""
    spans = []
    for track in tracks:
        words = normalise_words(track)
        if len(words) < 2 or not (every or any(w in _GUARDED_WORDS or w.isdigit() for w in words)) \
                or words[0] not in text:
            continue
        pattern = _name_pattern(tuple(words))
        spans.extend(m.span() for m in pattern.finditer(text))
    return spans


@lru_cache(maxsize=512)
def _name_pattern(words: tuple[str, ...]) -> re.Pattern:
    body = r"[\s_\-]*".join(re.escape(w) for w in words)
    return re.compile(rf"(?<![a-z0-9]){body}(?![a-z0-9])")


def _residual(text: str, span_starts: list[int], span_ends: list[int]) -> str:
    """``text`` without the spans ``span_starts[k]:span_ends[k]`` (cue and mention words), its
    whitespace collapsed."""
    starts, ends = sorted(span_starts), sorted(span_ends)
    if not all(map(le, ends[:-1], starts[1:])):
        # some spans overlap (at most one span is open at a time otherwise): pair each start
        # with its own end and resume after the furthest end so far
        cut = sorted(zip(span_starts, span_ends))
        starts = [s for s, _ in cut]
        ends = list(accumulate((e for _, e in cut), max))
    keep = list(map(text.__getitem__, map(slice, [0] + ends, starts)))
    keep.append(text[ends[-1]:] if ends else text)
    return " ".join(" ".join(keep).split())
