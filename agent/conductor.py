"""The conductor: a producer's words + the session's tracks -> a :class:`stase.core.plan.Plan`.

Holds
-----
* :class:`Conductor` with two entry points (docs/CONTRACTS.md): ``plan(prompt, tracks)`` makes a
  new plan (pathway "description" or "abstract"; an earlier plan plays no part) and
  ``edit(request, current)`` changes one (pathway "edit").  Numbers come from the parser (explicit cues, :mod:`stase.agent.parser`) and the
  retrieved stage template (:mod:`stase.agent.retrieval`); the optional llama.cpp model
  (:mod:`stase.agent.llm`) writes the music description and mix notes and may propose small
  refinements, which are validated and clamped here.
* Seat assignment: tracks take the template seat of their role; extra tracks of a role mirror it;
  tracks whose role has no seat sit beside a seat of the same family or in a free spot for their
  family, never within ``MIN_SEPARATION_DEG`` of another source at a similar distance.

Every azimuth/elevation/distance carries a provenance string saying where it came from.  The
plan's wetness (``reverb_db``) comes from the prompt's wetness words ("dry", "drenched", "back of
the hall": :data:`stase.agent.parser_rules.WETNESS_WORDS`), else from the template's own
``reverb_db``; the mix notes say which (the plan has no provenance field of its own).
A prompt must be a string of at most ``MAX_PROMPT_CHARS`` (4000) characters (:mod:`stase.agent.parser`
defines it); anything else is an ``InputError`` that says so.  So is a prompt that places an
instrument no track plays, asks for a value no placement can hold ("150% left", "120 degrees up",
"0 m away": ``ParseResult.impossible``) or a level outside ``GAIN_DB_RANGE`` (:func:`_check_gains`).
"""
from __future__ import annotations

import re
from typing import Any

from stase.core.conventions import wrap_azimuth_deg
from stase.core.errors import InputError
from stase.core.placement import field_problem, track_name_problem
from stase.core.plan import Plan, SourcePlacement, clip_provenance

from stase.agent.layout import (DEFAULT_LAYOUT_TEMPLATE, apply_cues, apply_mirrors, apply_swaps,
                     assign_seats, mix_notes, music_description, resolve_collisions)
from stase.agent.lexicon import get_lexicon
from stase.agent.parser import MAX_PROMPT_CHARS, ParseResult, check_prompt_text, normalise_text, parse_prompt

#: Words naming a room outright; they override the template's room ("a choir in a cathedral").
ROOM_WORDS: dict[str, tuple[str, ...]] = {
    "church": ("church", "cathedral", "chapel", "basilica", "abbey", "minster"),
    "concert_hall": ("concert hall", "symphony hall", "philharmonie", "opera house", "auditorium"),
    "jazz_club": ("jazz club", "jazz bar", "speakeasy", "cocktail lounge"),
    "dry_studio": ("dry room", "anechoic", "vocal booth", "dead room", "no reverb", "bone dry", "completely dry"),
    "small_chamber": ("small room", "living room", "bedroom", "salon"),
    "club_venue": ("nightclub", "night club", "warehouse", "club venue", "dance floor"),
    "recital_hall": ("recital hall",),
    "pro_studio": ("recording studio", "control room", "live room", "in the studio"),
    "outdoor": ("outdoors", "outdoor", "open air", "open-air", "outside", "in a field", "in the park",
                "on the beach", "in a forest", "festival"),
}
#: Further words for a room, read only in a request that is about the room alone (the daemon's
#: ``set_room`` from chat): in a plan prompt "dry" or "club" may describe a sound or a genre.
ROOM_ONLY_WORDS: dict[str, tuple[str, ...]] = {
    "dry_studio": ("dry", "drier", "dryer", "less reverb", "no room", "dead"),
    "club_venue": ("club",),
    "small_chamber": ("small chamber", "chamber"),
    "pro_studio": ("studio", "professional studio", "pro studio"),
    "world_space": ("world music space", "world space"),
    "outdoor": ("field", "open field", "park", "beach", "forest"),
}
#: Below this retrieval score a prompt made only of explicit cues gets no template.
DESCRIPTION_TEMPLATE_MIN_SCORE = 0.45
DEFAULT_ROOM = "dry_studio"
#: Words that say nothing about a setting once the cues are taken out of a prompt.
_FILLER = frozenset("""a an the and or but with put place set have make move let i want would like please
    me my us our you your it its is are be to of on in at by for from so then also now just
    both each other side sides go goes sits sit keep degree degrees metre metres meter meters panned pan
    nothing else wraps wrap directly push swap bring mirror flip raise lower switch trade""".split())


def _check_prompt(prompt: Any) -> str:
    check_prompt_text(prompt)   # a string, at most MAX_PROMPT_CHARS long
    if not prompt.strip():
        raise InputError("the prompt is empty: describe the scene or give cues such as "
                         "'sax 30 degrees left, drums behind me'")
    return prompt.strip()


def _check_tracks(tracks: Any) -> list[str] | None:
    if tracks is None:
        return None
    if isinstance(tracks, str):
        tracks = [t for t in tracks.split(",")]
    if not isinstance(tracks, (list, tuple)):
        raise InputError(f"tracks must be a list of names or a comma-separated string, got {type(tracks).__name__}")
    out: list[str] = []
    seen: set[str] = set()
    for t in tracks:
        if not isinstance(t, str) or not t.strip():
            shown = repr(t) if isinstance(t, str) else type(t).__name__
            raise InputError(f"track names must be non-empty strings, got {shown}")
        problem = track_name_problem(t.strip())
        if problem is not None:
            raise InputError(problem)
        if t.strip().lower() in seen:
            raise InputError(f"track {t.strip()!r} is listed twice")
        seen.add(t.strip().lower())
        out.append(t.strip())
    if not out:
        raise InputError("no tracks given: pass at least one track name (e.g. --tracks 'Vox,Gtr,Bass')")
    return out


class Conductor:
    """Turns prompts into plans.  Models load lazily, once per instance.

    Parameters
    ----------
    model : "auto" | "none" | "smollm2" | "gemma" | path to a GGUF file.  "auto" uses the shipped
        default, which is the measured better configuration (docs/conductor.md): parser + retrieval
        without a language model, unless ``STASE_CONDUCTOR_MODEL`` names a GGUF.
    presets_root : a presets folder other than the built-in one.
    trust_model_template : let the model's pick among the top-3 retrieved templates win (off by
        default: measured worse than retrieval alone).
    """

    def __init__(self, model: str = "auto", presets_root=None, trust_model_template: bool = False,
                 edit_reader: bool = True):
        from stase.presets import load_rooms, load_templates
        self.model_spec = model
        #: read an edit's operation with :mod:`stase.agent.edit_reader` where the rules find none
        self.use_edit_reader = edit_reader
        self.trust_model_template = trust_model_template
        self.templates = load_templates(presets_root)
        self.rooms = load_rooms(presets_root)
        self.lexicon = get_lexicon(str(presets_root) if presets_root else None)
        self._retriever = None
        self._llm = None
        self._llm_resolved = False

    # -------------------------------------------------------------------- lazy components
    @property
    def retriever(self):
        if self._retriever is None:
            from stase.agent.retrieval import TemplateRetriever
            self._retriever = TemplateRetriever(self.templates)
        return self._retriever

    @property
    def llm(self):
        """The conductor model, or ``None`` when the configuration runs without one."""
        if not self._llm_resolved:
            from stase.agent.llm import resolve_model_path, ConductorModel
            path = resolve_model_path(self.model_spec)
            self._llm = ConductorModel(path) if path else None
            self._llm_resolved = True
        return self._llm

    def warm_up(self) -> None:
        """Load the embedding model, train the edit reader (and load the language model if
        configured) now."""
        self.retriever.rank("warm up")
        if self.use_edit_reader:
            from stase.agent.edit_reader import default_reader
            default_reader()
        _ = self.llm

    # -------------------------------------------------------------------- public API
    def plan(self, prompt: str, tracks: list[str] | None = None) -> Plan:
        """A new plan for ``tracks`` from ``prompt``: pathway "description" or "abstract".

        Nothing of an earlier plan is used: an abstract prompt always reaches template retrieval.
        To change an existing plan call :meth:`edit` (``stase plan ... --plan FILE`` does).
        """
        return self._new_plan(_check_prompt(prompt), _check_tracks(tracks))

    def _new_plan(self, prompt: str, tracks: list[str] | None) -> Plan:
        text = normalise_text(prompt)
        if tracks is None:
            tracks, roles = self._tracks_from_prompt(prompt)
        else:
            roles = {t: self.lexicon.role_of(t) for t in tracks}
        parsed = parse_prompt(prompt, tracks or [], roles, self.lexicon)
        if tracks:
            self._reject_unknown(parsed, tracks)
        known_roles = [r for r in roles.values() if r]
        pathway = "description" if parsed.has_cues or parsed.unknown else "abstract"
        if pathway == "abstract":
            ranked = self.retriever.rank(prompt, known_roles)
            template_id = ranked[0][0]
        else:
            # only the words left after the cues can name a setting ("in a jazz club, sax left");
            # with none left there is nothing to retrieve (and no embedding to compute)
            setting = [w for w in re.findall(r"[a-z]+", parsed.residual) if w not in _FILLER]
            ranked = self.retriever.rank(" ".join(setting), known_roles) if setting else []
            template_id = ranked[0][0] if ranked and ranked[0][1] >= DESCRIPTION_TEMPLATE_MIN_SCORE else None
        proposal = None
        if self.llm is not None:
            candidates = ranked or self.retriever.rank(prompt, known_roles)
            proposal = self._ask_model(prompt, tracks or [], roles, parsed, candidates)
            if self.trust_model_template and proposal and proposal.get("template") in self.templates:
                template_id = proposal["template"]
        if not tracks:
            # demo flow: the template's seats become the tracks
            seats = self.templates[template_id or DEFAULT_LAYOUT_TEMPLATE]["roles"]
            tracks = _unique_names([seat.get("name") or seat["role"] for seat in seats])
            roles = {name: seat["role"] for name, seat in zip(tracks, seats)}
            for m in parsed.unknown + [m for m in parsed.mentions if m.role]:
                if m.role not in roles.values():  # an instrument the prompt names joins the seats
                    tracks.append(_unique_names(tracks + [m.text.title()])[-1])
                    roles[tracks[-1]] = m.role
            parsed = parse_prompt(prompt, tracks, roles, self.lexicon)
            self._reject_unknown(parsed, tracks)
        layout_id = template_id or DEFAULT_LAYOUT_TEMPLATE
        sources = assign_seats(tracks, roles, self.templates[layout_id], is_default=template_id is None,
                               families={r: s["family"] for r, s in self.lexicon.roles.items()})
        explicit = apply_cues(sources, parsed)
        _check_gains(sources)
        apply_swaps(sources, parsed)
        apply_mirrors(sources, parsed)
        resolve_collisions(sources, fixed=explicit)
        room = self._room(text, self.templates[template_id]["room"] if template_id else DEFAULT_ROOM)
        plan = Plan(room=room, sources=[s.normalised() for s in sources], pathway=pathway, template=template_id)
        wetness = self._wetness(parsed, template_id)
        if wetness is not None:
            plan.reverb_db = wetness[0]
        plan.music = self._music(template_id or layout_id, plan, parsed)
        self._write_text(plan, prompt, parsed, ranked)
        if wetness is not None:
            plan.mix_notes = f"{plan.mix_notes} Wetness {wetness[0]:+.0f} dB ({wetness[1]}).".strip()
        if proposal is not None or self.llm is not None:
            from stase.agent.llm import apply_proposal
            changed = apply_proposal(plan, proposal, explicit, self.llm.path.stem)
            plan.mix_notes += (f" Model {self.llm.path.stem}: proposed {proposal.get('template')}, changed "
                               f"{', '.join(changed) or 'nothing'}." if proposal else
                               f" Model {self.llm.path.stem}: no valid answer, kept the deterministic plan.")
            for s in plan.sources:   # the model's notes were appended after normalisation
                s.provenance = {key: clip_provenance(why) for key, why in s.provenance.items()}
        return plan

    def _ask_model(self, prompt, tracks, roles, parsed, ranked) -> dict | None:
        if self.llm is None:
            return None
        from stase.agent.llm import build_messages, proposal_schema
        candidates = ranked[:3]
        cue_lines = [f"{', '.join(c.tracks)}: '{c.text}'" for c in parsed.cues]
        names = tracks or ["(template seats)"]
        return self.llm.complete_json(
            build_messages(prompt, names, roles, cue_lines, candidates, self.templates),
            proposal_schema([c[0] for c in candidates], names))

    def edit(self, request: str, current: Plan, extra_tracks: list[str] | None = None) -> Plan:
        """Apply a follow-up request ("move the sax further left", "swap guitar and keys").

        Pathway "edit": the template, the room (unless the request names one) and every source
        the request does not move stay as they are in ``current``.  ``extra_tracks`` not yet in
        ``current`` join it on the seats of its template (or the default layout).
        """
        request = _check_prompt(request)
        if not isinstance(current, Plan):
            raise InputError(f"the current plan must be a Plan, got {type(current).__name__}")
        extra_tracks = _check_tracks(extra_tracks)
        sources = _copies(current.sources)
        names = [s.track for s in sources]
        for t in extra_tracks or []:
            if t.lower() not in (n.lower() for n in names):
                sources.append(SourcePlacement(track=t, role=self.lexicon.role_of(t),
                                               provenance={"azimuth_deg": "new track"}))
                names.append(t)
        roles = {s.track: s.role or self.lexicon.role_of(s.track) for s in sources}
        for s in sources:
            s.role = roles[s.track]
        # edit=True: a state said with a verb is a complaint here ("the sitar sounds distant")
        parsed = said = parse_prompt(request, names, roles, self.lexicon, edit=True)
        reading = None
        try:
            self._reject_unknown(parsed, names)
        except InputError:
            # a word refused as an instrument the session lacks, in a request naming session tracks
            if parsed.impossible or parsed.orphans or not any(m.tracks for m in parsed.mentions):
                raise
            from stase.agent.edit_reader import REFUSAL_CONFIDENCE
            reading, parsed = self._read_edit(request, parsed, names, roles, REFUSAL_CONFIDENCE)
            if reading is None:
                raise
        text = normalise_text(request)
        room = self._room(text, current.room)
        if extra_tracks:
            placed = [s for s in sources if s.provenance.get("azimuth_deg") == "new track"]
            if placed:
                layout = self.templates.get(current.template or DEFAULT_LAYOUT_TEMPLATE, self.templates[DEFAULT_LAYOUT_TEMPLATE])
                fresh = assign_seats([s.track for s in placed], roles, layout, is_default=current.template is None,
                                     families={r: s["family"] for r, s in self.lexicon.roles.items()})
                for s, f in zip(placed, fresh):
                    s.azimuth_deg, s.elevation_deg, s.distance_m, s.provenance = (
                        f.azimuth_deg, f.elevation_deg, f.distance_m, f.provenance)
        if not parsed.has_cues and room == current.room and not extra_tracks and not parsed.plan_values:
            reading, parsed = self._read_edit(request, parsed, names, roles)
            if reading is None:
                raise InputError(
                    f"could not find an edit in {request!r}: name a track ({', '.join(names)}) and a change "
                    "such as 'further left', '20 degrees right', 'back 2 m', 'closer', 'higher', "
                    "'swap X and Y', or a room ('in a cathedral')")
        start = _copies(sources)
        self._apply_edit(sources, parsed, current)
        if reading is None and self.use_edit_reader and parsed.has_cues:
            from stase.agent.edit_reader import OVERRIDE_CONFIDENCE, agrees, effect_operations
            done = effect_operations(_places(start), _places(sources))
            # cues that moved nothing are read again; an edit that did something stays unless a
            # sure reading says it is another operation (never over a number the user wrote)
            candidate = None
            if not done:
                candidate, reparsed = self._read_edit(request, parsed, names, roles)
            elif not _says_a_number(parsed) and not _says_a_named_place(parsed) \
                    and not any(cue.complaint for cue in parsed.cues):
                # (nor over a named place, "bring the flute in front of me" is no step closer, nor
                # over a complaint the rules read, "the pad is a touch too low" is a step up)
                candidate, reparsed = self._read_edit(request, parsed, names, roles, OVERRIDE_CONFIDENCE)
            if candidate is not None and not agrees(candidate.operation, done):
                reading, parsed, sources = candidate, reparsed, start
                self._apply_edit(sources, parsed, current)
            elif RESIZE_STEPS and done and not _says_a_number(parsed):
                reading, parsed, sources = self._resized(request, parsed, names, roles, current, start, sources)
        plan = Plan(room=room, sources=[s.normalised() for s in sources], pathway="edit",
                    template=current.template, reverb_engine=current.reverb_engine, reverb_db=current.reverb_db)
        wetness = self._wetness(said, None)
        if wetness is not None:
            plan.reverb_db = wetness[0]
        plan.music = self._music(current.template or DEFAULT_LAYOUT_TEMPLATE, plan, said, previous=current.music)
        self._write_text(plan, request, parsed, None, previous=current)
        if wetness is not None:
            plan.mix_notes = f"{plan.mix_notes} Wetness {wetness[0]:+.0f} dB ({wetness[1]}).".strip()
        if reading is not None:
            plan.mix_notes = f"{plan.mix_notes} {reading.note()}".strip()
        return plan

    # -------------------------------------------------------------------- helpers
    def _tracks_from_prompt(self, prompt: str) -> tuple[list[str], dict[str, str | None]]:
        """Instruments named in a prompt become tracks when there are at least two of them."""
        from stase.agent.lexicon import normalise_words
        from stase.agent.parser import PROSE_SKIP
        words = normalise_words(normalise_text(prompt))
        hits = self.lexicon.find(words, fuzzy=False, skip=PROSE_SKIP)
        roles: dict[str, str] = {}
        for h in hits:
            if h.role not in roles.values():
                roles[h.alias.title()] = h.role
        if len(roles) >= 2:
            return list(roles), dict(roles)
        return [], {}

    def _wetness(self, parsed: ParseResult, template_id: str | None) -> tuple[float, str] | None:
        """The plan's ``reverb_db`` and where it came from: the prompt's wetness words ("drenched
        in reverb"), else the template's own default, else ``None`` (leave it as it is)."""
        if "reverb_db" in parsed.plan_values:
            value, words = parsed.plan_values["reverb_db"]
            return float(value), f"words: '{words}'"
        default = (self.templates.get(template_id) or {}).get("reverb_db") if template_id else None
        if isinstance(default, (int, float)):
            return float(default), f"template {template_id} default"
        return None

    def _read_edit(self, request: str, parsed: ParseResult, names: list[str], roles: dict,
                   min_confidence: float | None = None):
        """(reading, its parse) from :mod:`stase.agent.edit_reader`, or ``(None, parsed)`` when the
        reader is off or unsure, or the rules cannot read its canonical request."""
        if not self.use_edit_reader:
            return None, parsed
        from stase.agent.edit_reader import MIN_CONFIDENCE, default_reader, named_groups
        reader = default_reader()
        if reader is None:
            return None, parsed
        mentioned = named_groups(normalise_text(request),
                                 [(m.text, m.tracks) for m in sorted(parsed.mentions, key=lambda m: m.start)])
        reading = reader.read(request, mentioned, names, MIN_CONFIDENCE if min_confidence is None else min_confidence)
        if reading is None:
            return None, parsed
        reparsed = parse_prompt(reading.request, names, roles, self.lexicon, edit=True)
        if not reparsed.has_cues or reparsed.unknown or reparsed.orphans or reparsed.impossible:
            return None, parsed
        return reading, reparsed

    def _resized(self, request: str, parsed: ParseResult, names: list[str], roles: dict, current: Plan,
                 start: list[SourcePlacement], edited: list[SourcePlacement]):
        """(reading or None, parse, sources): the rules' edit, or the reading's canonical request
        when both read the same move and the request says its size ("a bit", "a lot") but the
        rules' step is another one ("a little bit more on the right" read as the place on the
        right; "a lot further left" stepped twice)."""
        from stase.agent.edit_reader import RESIZED, UNIT_WORD, said_sizes, same_move
        text = normalise_text(request)
        if UNIT_WORD.search(text):   # "closer by a metre": a quantity, not a size word
            return None, parsed, edited
        sized, reparsed = self._read_edit(request, parsed, names, roles)
        if (sized is None or sized.size not in RESIZED or said_sizes(text) != {sized.size}
                or not same_move(sized.operation, _places(start), _places(edited), sized.tracks)):
            return None, parsed, edited
        trial = _copies(start)
        self._apply_edit(trial, reparsed, current)
        if _places(trial) == _places(edited) or _moved(start, trial) != _moved(start, edited):
            return None, parsed, edited   # the size changes, never which tracks move
        return sized, reparsed, trial

    @staticmethod
    def _apply_edit(sources: list[SourcePlacement], parsed: ParseResult, current: Plan) -> None:
        """Apply an edit's cues, swaps and mirrors to ``sources`` in place (then keep the sources
        the edit adds clear of the others)."""
        for cue in parsed.cues:
            if "width_deg" in cue.edit_relative:   # "spread the guitars": widen them, not a fixed fan
                cue.spread_deg = None
        explicit = apply_cues(sources, parsed, edit=True)
        _check_gains(sources)
        apply_swaps(sources, parsed)
        apply_mirrors(sources, parsed)
        new = {s.track for s in sources if s.track not in {c.track for c in current.sources}}
        resolve_collisions(sources, fixed=explicit | {s.track for s in sources if s.track not in new})

    def _reject_unknown(self, parsed: ParseResult, tracks: list[str]) -> None:
        if parsed.impossible:
            words, bound = parsed.impossible[0]
            raise InputError(f"cannot place {words!r}: {bound}")
        if parsed.orphans:
            raise InputError(f"cannot tell which track {parsed.orphans[0]!r} is about: name one of the "
                             f"session's tracks ({', '.join(tracks) or 'none given'}) or 'everything'")
        if parsed.unknown:
            said = ", ".join(sorted({f"'{m.text}'" for m in parsed.unknown}))
            raise InputError(f"the prompt places {said} but no session track plays that; "
                             f"tracks: {', '.join(tracks) or '(none)'}")

    def room_named(self, request: str) -> str | None:
        """The room a request about the room names, or ``None``.

        Read: :data:`ROOM_WORDS`, :data:`ROOM_ONLY_WORDS`, each room preset's id ("jazz_club")
        and name ("Jazz club"); the longest phrase found wins, so "dry studio" beats "studio".
        A word one typo away from a one-word room word counts ("cathdral", "chruch").
        """
        import difflib
        text = normalise_text(_check_prompt(request)).replace("_", " ")
        phrases: dict[str, str] = {}
        for table in (ROOM_ONLY_WORDS, ROOM_WORDS):
            for room, words in table.items():
                phrases.update({w: room for w in words})
        for room_id, room in self.rooms.items():
            phrases[room_id.replace("_", " ")] = room_id
            if isinstance(room, dict) and isinstance(room.get("name"), str):
                phrases[room["name"].lower()] = room_id
        phrases = {w: r for w, r in phrases.items() if not self.rooms or r in self.rooms}
        found = [w for w in phrases if re.search(rf"\b{re.escape(w)}\b", text)]
        if not found:   # a typo: compare runs of as many words as each phrase has
            words = re.findall(r"[a-z]+", text)
            for phrase in phrases:
                n = len(phrase.split())
                if len(phrase) < 5:
                    continue
                runs = (" ".join(words[i:i + n]) for i in range(len(words) - n + 1))
                if any(difflib.SequenceMatcher(None, run, phrase).ratio() >= 0.8 for run in runs):
                    found.append(phrase)
        return phrases[max(found, key=len)] if found else None

    def room_in_request(self, request: str, default: str) -> str:
        """The room ``edit`` would give a request ("... in a cathedral"): a :data:`ROOM_WORDS`
        room named in it, else ``default`` (the agent loop locks a room the user named)."""
        return self._room(normalise_text(request), default)

    def _room(self, text: str, default: str) -> str:
        best, best_len = default, 0
        for room, words in ROOM_WORDS.items():
            if self.rooms and room not in self.rooms:
                continue
            for w in words:
                if re.search(rf"\b{re.escape(w)}\b", text) and len(w) > best_len:
                    best, best_len = room, len(w)
        return best

    def _music(self, template_id: str, plan: Plan, parsed: ParseResult, previous: dict | None = None) -> dict:
        block = dict(self.templates[template_id].get("music") or {})
        music = {"template": template_id, "style": block.get("style", template_id),
                 "tempo_bpm": float(block.get("tempo_bpm", 100.0)), "key": str(block.get("key", "C major")),
                 "bars": int(block.get("bars", 8)), "meter": str(block.get("meter", "4/4"))}
        if previous:
            music.update({k: previous[k] for k in ("style", "tempo_bpm", "key", "bars", "meter") if k in previous})
        music.update(parsed.music)
        music["instruments"] = [{"track": s.track, "role": s.role or "synth_pad"} for s in plan.sources]
        return music

    def _write_text(self, plan: Plan, prompt: str, parsed: ParseResult, ranked, previous: Plan | None = None) -> None:
        template = self.templates.get(plan.template) if plan.template else None
        plan.music_description = music_description(plan, template, self.rooms.get(plan.room))
        plan.mix_notes = mix_notes(plan, parsed, ranked)


#: Read a step again at the size the request says when the rules took another (``_resized``).
RESIZE_STEPS = True


def _says_a_number(parsed: ParseResult) -> bool:
    """A value of some cue came from a number the user wrote: it wins over any reading."""
    from stase.agent.parser_rules import NUMBER
    return _says_a(parsed, NUMBER)


def _says_a_named_place(parsed: ParseResult) -> bool:
    """A value of some cue is a named position the user said ("in front of me", "overhead",
    "in the middle"): a sure reading of another operation does not replace it (thirteenth stop)."""
    from stase.agent.parser_rules import NAMED
    return _says_a(parsed, NAMED)


def _says_a(parsed: ParseResult, precedence_class: int) -> bool:
    """Whether a value of some cue came from ``precedence_class`` (:mod:`stase.agent.parser_rules`)."""
    from stase.agent.parser_rules import PRECEDENCE_NAMES
    name = PRECEDENCE_NAMES[precedence_class]
    return any(p == name for cue in parsed.cues for p in cue.precedence.values())


def _moved(before: list[SourcePlacement], after: list[SourcePlacement]) -> set[str]:
    """The tracks whose place or gain differs between ``before`` and ``after``."""
    was = _places(before)
    return {track for track, now in _places(after).items() if now != was.get(track)}


def _copies(sources: list[SourcePlacement]) -> list[SourcePlacement]:
    """Independent copies of ``sources`` (their provenance dicts too), to edit or to fall back to."""
    return [SourcePlacement(**{**s.__dict__, "provenance": dict(s.provenance)}) for s in sources]


def _places(sources: list[SourcePlacement]) -> dict[str, tuple[float, float, float, float]]:
    """Each source's (azimuth deg, elevation deg, distance m, gain dB), by track."""
    return {s.track: (s.azimuth_deg, s.elevation_deg, s.distance_m, s.gain_db) for s in sources}


def _check_gains(sources: list[SourcePlacement]) -> None:
    """Refuse a level the placement schema cannot hold ("kick 40 dB louder"), naming the track
    and the words that asked for it, instead of writing a plan the daemon would refuse."""
    for s in sources:
        problem = field_problem("gain_db", s.gain_db)
        if problem is not None:
            said = s.provenance.get("gain_db", "")
            raise InputError(f"{s.track}: {problem}" + (f" ({said})" if said else ""))


def _unique_names(names: list[str]) -> list[str]:
    out: list[str] = []
    for n in names:
        base, k = n, 2
        while n.lower() in (o.lower() for o in out):
            n, k = f"{base} {k}", k + 1
        out.append(n)
    return out


__all__ = ["Conductor", "MAX_PROMPT_CHARS", "ROOM_ONLY_WORDS", "ROOM_WORDS", "wrap_azimuth_deg"]
