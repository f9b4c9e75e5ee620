"""The agent loop: a producer's request -> ONE tool call over the daemon's verbs -> a proposed plan.

Holds
-----
* :data:`TOOLS` and :func:`tool_schemas` / :func:`call_schema`: the tools (plan, edit, set_source,
  set_room, advise, listen, apply), each a JSON Schema whose placement fields and bounds are
  those of :mod:`stase.core.placement` (the ``$defs`` of ``placement.schema.json``, inlined by
  :func:`stase.core.schemas.inline_refs`; nothing restated).  ``call_schema`` is their ``anyOf``:
  what the model may answer (llama.cpp grammar through
  :meth:`stase.agent.llm.ConductorModel.complete_json`) and what :func:`check_call` validates.
  :func:`calls_schema`: the list of one or two calls the fine-tuned model answers (the
  deterministic path needs two for "more intimate": the distances and the plan's reverb_db).
* :func:`compact_messages`: the short prompt of the fine-tuned model (``smollm2-agent``): one line
  of tools, the plan as one line per track, the request; the SAME function builds the training
  prompts (``tools/finetune_lora.py``) and the run-time ones, within
  :data:`COMPACT_PROMPT_TOKEN_BUDGET`.  :meth:`Agent.messages` picks it when the model's
  ``prompt_style`` is ``"compact"``.
* :data:`OPEN_INTENTS`, :func:`open_intent`: requests with no explicit cue ("open the mix up",
  "more intimate", "the guitars are fighting, give them room", "what would you change?") and the
  small deterministic fallback that acts on them when there is no model or its call is invalid.
  The complaints (:data:`COMPLAINTS`, :func:`complaint`: "the drums are too far away") live in
  :mod:`stase.agent.parser_complaints`, the one table the parser reads too (re-exported here).
* :class:`Agent` (``respond(request, current, tracks)`` -> :class:`Turn`): the parser and the
  conductor run first (:meth:`stase.agent.conductor.Conductor.edit`); the model is asked only when
  they cannot act or the request is open.  What the user wrote explicitly (a parsed cue, a named
  room, a wetness word) locks that track's field: no model or fallback change may touch it.
  Every change the agent makes carries the provenance ``agent: '<request>' (<who>)``.
* :class:`Proposal`, :func:`plan_diff`: a change is proposed (before, after, a per-track diff of
  field, before, after, provenance), never applied here; the daemon's ``propose`` / ``accept`` /
  ``undo`` verbs apply it and keep one undo.
* :func:`proposal_from_advice`: the gain advisor's result as proposed fader moves (the same path).

Numbers: azimuth in degrees (positive = left), distance in metres, gains in dB
(:mod:`stase.core.conventions`).  Measured quality and latency: ``python -m bench.agent --json``
(docs/conductor.md, "The agent").
"""
from __future__ import annotations

import copy
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

from stase.core.errors import InputError
from stase.core.names import track_key
from stase.core.placement import (FIELD_SPECS, GAIN_DB_RANGE, NUMERIC_FIELDS, PLACEMENT_SCHEMA_ID,
                                  REVERB_DB_RANGE, field_problem)
from stase.core.plan import Plan, SourcePlacement, clip_provenance
from stase.core.schemas import inline_refs, schema_problems, validator

# the complaints table is shared with the parser (one rule): it lives in parser_complaints
from stase.agent.parser_complaints import COMPLAINTS, OpenIntent, complaint  # noqa: F401 - re-exported
from stase.agent.parser_complaints import lowered as _lowered

TOOLS = ("plan", "edit", "set_source", "set_room", "advise", "listen", "apply")
#: Tools that change the plan (their result is a proposal); the others are read or act verbs.
PLAN_TOOLS = ("plan", "edit", "set_source", "set_room")
#: Fields an edit change may set: the numeric placement fields and a source's wetness.
EDIT_FIELDS: tuple[str, ...] = (*NUMERIC_FIELDS, "reverb_db")
MAX_CHANGES = 32
#: Largest fader move the agent proposes from the advisor in one go (dB); beyond is clamped and said.
MAX_ADVICE_STEP_DB = 6.0
MODEL_MAX_TOKENS = 160
#: The compact answer holds up to a change per track of a 7-track session and a set_room.
COMPACT_MODEL_MAX_TOKENS = 240
#: Most tokens a compact prompt may take (SmolLM2's tokenizer, chat template included), and the
#: median size of a training example (prompt + answer) aimed at: training cost on the 2-core
#: reference machine grows with both.
COMPACT_PROMPT_TOKEN_BUDGET = 240
COMPACT_EXAMPLE_TOKEN_TARGET = 250
#: Calls in one compact answer: the deterministic "intimate" rule makes two (edit + set_room).
MAX_MODEL_CALLS = 2


# ------------------------------------------------------------------------------------------ schemas
def _field(name: str) -> dict[str, Any]:
    """One placement field's schema, inlined from placement.schema.json (bounds included)."""
    inlined = inline_refs({"$ref": f"{PLACEMENT_SCHEMA_ID}#/$defs/{name}"}, base=PLACEMENT_SCHEMA_ID)
    return {k: v for k, v in inlined.items() if not k.startswith("x-") and k != "description"}


def tool_schemas(tracks: list[str], rooms: list[str]) -> dict[str, dict[str, Any]]:
    """``{tool: JSON Schema of one call}``; every call is a flat object with a ``tool`` const."""
    track = {"enum": list(tracks)} if tracks else _field("track")

    def tool(name: str, properties: dict, required: tuple[str, ...] = ()) -> dict:
        return {"type": "object", "properties": {"tool": {"const": name}, **properties},
                "required": ["tool", *required], "additionalProperties": False}

    change = {"anyOf": [{"type": "object", "properties": {"track": track, "field": {"const": f}, "to": _field(f)},
                         "required": ["track", "field", "to"], "additionalProperties": False}
                        for f in EDIT_FIELDS]}
    return {
        "plan": tool("plan", {"prompt": {"type": "string", "minLength": 1, "maxLength": 400}}, ("prompt",)),
        "edit": tool("edit", {"changes": {"type": "array", "minItems": 1, "maxItems": MAX_CHANGES,
                                          "items": change}}, ("changes",)),
        "set_source": tool("set_source", {"track": track, **{f: _field(f) for f in EDIT_FIELDS}}, ("track",)),
        "set_room": tool("set_room", {"room": {"enum": list(rooms)}, "reverb_db": _field("reverb_db")}),
        "advise": tool("advise", {}),
        "listen": tool("listen", {"track": track}),
        "apply": tool("apply", {}),
    }


def call_schema(tracks: list[str], rooms: list[str]) -> dict[str, Any]:
    """The schema of the ONE tool call a model answers with (the ``anyOf`` of the tools)."""
    return {"anyOf": list(tool_schemas(tracks, rooms).values())}


def calls_schema(tracks: list[str], rooms: list[str]) -> dict[str, Any]:
    """The schema of the fine-tuned model's answer: a list of 1..:data:`MAX_MODEL_CALLS` calls."""
    return {"type": "array", "minItems": 1, "maxItems": MAX_MODEL_CALLS, "items": call_schema(tracks, rooms)}


def check_call(call: Any, plan: Plan, rooms: list[str]) -> list[str]:
    """Every problem with a tool call against ``plan`` (empty: valid)."""
    if not isinstance(call, dict) or call.get("tool") not in TOOLS:
        return [f"a tool call must be an object whose 'tool' is one of {TOOLS}, got {str(call)[:80]!r}"]
    schema = tool_schemas([s.track for s in plan.sources], rooms)[call["tool"]]
    problems = schema_problems(validator(schema), call, "call", style="plain")
    if call["tool"] == "set_source" and not (set(call) & set(EDIT_FIELDS)):
        problems.append("set_source changes nothing: give at least one of " + ", ".join(EDIT_FIELDS))
    if call["tool"] == "set_room" and not ({"room", "reverb_db"} & set(call)):
        problems.append("set_room needs a room and/or reverb_db")
    return problems


# ------------------------------------------------------------------------------------------ open intents
#: Rules as data, in precedence order (the first that matches wins): the specific complaints
#: before the general "wider"/"closer" words they may contain.
OPEN_INTENTS: tuple[OpenIntent, ...] = (
    OpenIntent("advise", (r"\bwhat (?:would|should|could) (?:you|i|we) (?:change|do|fix|improve|tweak)",
                          r"\bany (?:suggestions?|ideas|advice|tips)\b", r"\bhow (?:can|could|do) (?:i|we) improve\b",
                          r"\bwhat(?:'s| is) wrong\b", r"\bwhat do you (?:think|suggest|recommend)\b",
                          r"\byour (?:call|suggestion|opinion)\b", r"\bmake it (?:sound )?better\b"),
               "asks the advisor (a read tool); its fader moves come back as a proposal"),
    OpenIntent("bigger_room", (r"\b(?:bigger|larger|huger|grander|more spacious|vaster|roomier) (?:room|space|hall|venue|acoustic|place)\b",
                               r"\bbigger sounding room\b", r"\b(?:room|space|hall|venue) (?:bigger|larger)\b",
                               r"\bmore (?:room sound|hall|of a hall)\b", r"(?<!less )\barena\b", r"(?<!less )\bstadium\b",
                               r"\bgo bigger\b"),
                   "moves the plan to the next larger enclosed room preset (volume)"),
    OpenIntent("smaller_room", (r"\b(?:smaller|tighter|tinier|cosier|cozier) (?:room|space|hall|venue|acoustic|place)\b",
                                r"\b(?:room|space) (?:smaller|tighter)\b", r"\bgo smaller\b"),
                    "moves the plan to the next smaller room preset (volume)"),
    OpenIntent("give_room", (r"\bfight(?:ing|s)?\b", r"\bclash(?:ing|es)?\b", r"\bcrowded\b", r"\bcramped\b",
                             r"\bon top of each other\b", r"\bstepping on\b", r"\bcompeting\b", r"\bmasking\b",
                             r"\bgive (?:\w+ ){1,6}?(?:some |more )?(?:room|space|air)\b(?<!the mix more space)(?<!it more space)",
                             r"\bseparat(?:e|ion)\b", r"\bbreathing room\b", r"\buntangle\b", r"\bpiled up\b",
                             r"\btoo close together\b", r"\bbump(?:ing)? into\b", r"\bcollid(?:e|ing)\b"),
               "moves the named tracks apart: each pair's angular separation grows by >= 20 deg"),
    OpenIntent("stage", (r"(?<!back )\bon (?:the )?stage\b", r"\bonstage\b", r"\bamong (?:the )?(?:band|musicians|players)\b",
                         r"\bin the middle of (?:the )?(?:band|musicians|players|orchestra|ensemble|quartet|trio|quintet|"
                         r"group|section|strings|choir)\b",
                         r"\bsurround(?:ed)? (?:me|by)\b", r"\bin the band\b", r"\bdrum(?:mer)?'?s? (?:seat|stool|throne)\b",
                         r"\bconductor'?s? (?:podium|position|spot)\b", r"\bplaying with (?:them|the band)\b"),
               "puts the listener among the players: distance x0.6, azimuths spread x1.4"),
    OpenIntent("intimate", (r"\bintimate\b", r"\bintimacy\b", r"\bcos(?:y|ier)\b", r"\bcoz(?:y|ier)\b",
                            r"\bup close and personal\b", r"\bin my ears?\b", r"\bpersonal\b", r"\bprivate\b",
                            r"\bwhisper", r"\bsmall gig\b", r"\bjust for me\b", r"\bfront row\b"),
                "distance x0.7 for every track and the plan's reverb_db 4 dB lower"),
    OpenIntent("narrower", (r"\bnarrower\b", r"\bnarrow\b", r"\bless wide\b", r"\btoo wide\b", r"\bcollapse\b",
                            r"\bmore focused\b", r"\bfocus(?: it| things| the (?:image|mix))\b", r"\b(?:bring|pull|tuck|draw) (?:\w+ ){0,3}in\b(?! (?:louder|quieter|front|the mix))",
                            r"\btighten\b", r"\btighter\b", r"\bcloser together\b", r"\bmore mono\b", r"\bcentred\b|\bcentered\b"),
                "azimuths of the named tracks x0.5 (at least 12 deg towards the centre)"),
    OpenIntent("wider", (r"\bwider\b", r"\bwiden\b", r"\bopen (?:\w+ ){0,3}up\b", r"\bopen it\b", r"\bspread\b",
                         r"\bmore (?:space|width|spacious|air|room to breathe)\b", r"\bspacious\b", r"\bbroader\b", r"\bbroaden\b",
                         r"\bwide\b", r"\b(?:further|farther|wider) apart\b", r"\bsideways\b",
                         r"\b(?:push|move|pan|send|spread|throw) (?:\w+ ){0,3}out(?: to the sides?| wide)?\b",
                         r"\bexpand\b", r"\bstretch\b", r"\bbigger stereo\b", r"\bbig(?:ger)? image\b", r"\bpanoramic\b",
                         r"\bless cramped\b", r"\bfeels? small\b", r"\bboxed in\b", r"\bclaustrophobic\b"),
             "azimuths of the named tracks away from the centre: x1.6, at least +20 deg, at most 120 deg"),
    OpenIntent("closer", (r"\bcloser\b", r"\bnearer\b", r"\bin (?:my|your) face\b", r"\bup ?front\b",
                          r"\bforward\b", r"\bmore present\b", r"\bpresence\b", r"\btoo far\b", r"\bdistant\b"),
               "distance of the named tracks x0.7"),
    OpenIntent("further", (r"\bfurther (?:away|back)\b", r"\bfarther\b", r"\bmore distant\b", r"\bpush (?:\w+ ){0,3}back\b",
                           r"\brecede\b", r"\bfar away\b", r"\bin(?:to)? the background\b", r"\btoo close\b", r"\bback off\b",
                           r"\bless (?:in my face|present|upfront)\b"),
               "distance of the named tracks x1.4"),
)
_COMPILED = tuple((i, tuple(re.compile(p) for p in i.patterns)) for i in OPEN_INTENTS)

def open_intent(text: str) -> str | None:
    """The open intent a request shows (a complaint, :data:`COMPLAINTS`, says the opposite of its
    words and comes first; then :data:`OPEN_INTENTS`, first match wins) or ``None``."""
    said = complaint(text)
    if said is not None:
        return said[0]
    lowered = _lowered(text)
    for intent, patterns in _COMPILED:
        if any(p.search(lowered) for p in patterns):
            return intent.name
    return None


def room_volume_m3(room: dict) -> float:
    dims = room.get("dimensions_m") or [0, 0, 0]
    return float(dims[0] * dims[1] * dims[2])


# ------------------------------------------------------------------------------------------ proposals
@dataclass
class Proposal:
    """A proposed change: nothing is applied until the daemon's ``accept``."""

    request: str
    before: Plan
    after: Plan
    source: str                        # who acted: "parser", "model <name>", "fallback <intent>", joined by "+"
    diff: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"request": self.request, "source": self.source, "diff": self.diff, "notes": self.notes,
                "changes": len(self.diff)}


def plan_diff(before: Plan, after: Plan) -> list[dict[str, Any]]:
    """Per track and field: ``{"track", "field", "before", "after", "provenance"}``; the plan's own
    room and reverb_db come with ``track: None``; a track new in ``after`` has ``before: None``."""
    rows: list[dict[str, Any]] = []
    for key in ("room", "reverb_db"):
        if getattr(before, key) != getattr(after, key):
            rows.append({"track": None, "field": key, "before": getattr(before, key),
                         "after": getattr(after, key), "provenance": after.mix_notes[-200:] if key == "room" else ""})
    old = {track_key(s.track): s for s in before.sources}
    for s in after.sources:
        o = old.get(track_key(s.track))
        for key in (*EDIT_FIELDS, "mode"):
            a, b = (getattr(o, key) if o else None), getattr(s, key)
            if a is None or (a != b and not (isinstance(a, float) and abs(a - b) < 1e-9)):
                rows.append({"track": s.track, "field": key, "before": a, "after": b,
                             "provenance": s.provenance.get(key, "")})
    return rows


#: The fine-tuned model's system text: the tools and fields in one breath (its answers were
#: trained on it; a change here needs a new adapter, tools/finetune_lora.py).
COMPACT_SYSTEM = ("Answer a JSON list of 1-2 tool calls: edit {changes:[{track,field,to}]}, set_room "
                  "{room,reverb_db}, advise, listen, set_source, plan, apply. azimuth_deg: 0 front, + left.")


def _number(value: float, digits: int) -> str:
    text = f"{value:.{digits}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def compact_messages(request: str, plan: Plan, locks: dict) -> list[dict]:
    """The fine-tuned model's prompt: :data:`COMPACT_SYSTEM`, the plan's room and reverb_db, one
    ``track: azimuth_deg distance_m`` line per track (elevation and gain only where not 0), the
    fields the user set (locked), the request.  Used for training and at run time alike; the
    room names are in the answer's grammar, not the prompt (tokens cost training time).
    """
    rows = []
    for s in plan.sources:
        extra = "".join(f" {key} {_number(getattr(s, key), 1)}" for key in ("elevation_deg", "gain_db")
                        if abs(getattr(s, key)) > 1e-9)
        rows.append(f"{s.track}: {_number(s.azimuth_deg, 0)} {_number(s.distance_m, 1)}{extra}")
    locked = [f"{t}.{f}" for t, fs in locks.items() if t for f in sorted(fs)] + sorted(locks.get(None, set()))
    user = (f"Room {plan.room}, reverb_db {_number(plan.reverb_db, 1)}. Tracks (azimuth_deg distance_m):\n"
            + "\n".join(rows) + f"\nKeep: {', '.join(locked) or 'nothing'}\nRequest: {request}")
    return [{"role": "system", "content": COMPACT_SYSTEM}, {"role": "user", "content": user}]


def compact_answer(calls: list[dict]) -> str:
    """A list of calls as the fine-tuned model writes it (the training target): compact JSON,
    whole numbers without a decimal point."""
    def tidy(value):
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, dict):
            return {k: tidy(v) for k, v in value.items()}
        if isinstance(value, list):
            return [tidy(v) for v in value]
        return value
    return json.dumps(tidy(calls), separators=(",", ":"))


def _copy_plan(plan: Plan) -> Plan:
    return copy.deepcopy(plan)


# ------------------------------------------------------------------------------------------ the loop
@dataclass
class Turn:
    """What the agent made of one request."""

    request: str
    tool: str | None                   # the tool that acted last (None: nothing to do)
    proposal: Proposal | None = None   # for plan-changing tools
    action: dict[str, Any] | None = None   # a read/act tool call for the caller (advise, listen, apply)
    intent: str | None = None          # the open intent, if any
    calls: list[dict[str, Any]] = field(default_factory=list)   # the tool calls, in order
    model_call: dict | list | None = None   # the model's answer (a list from the compact model; None: none)
    model_valid: bool | None = None    # whether that answer was a valid call (None: not asked)
    model_latency_s: float | None = None
    reply: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"request": self.request, "tool": self.tool, "intent": self.intent, "calls": self.calls,
                "model_call": self.model_call, "model_valid": self.model_valid,
                "model_latency_s": None if self.model_latency_s is None else round(self.model_latency_s, 3),
                "action": self.action, "proposal": self.proposal.to_dict() if self.proposal else None,
                "reply": self.reply}


class Agent:
    """The agent loop over a conductor (parser, retrieval, templates) and an optional model.

    Parameters
    ----------
    conductor : :class:`stase.agent.conductor.Conductor` (its rooms, lexicon and ``edit``).
    model : anything with ``complete_json(messages, schema, max_tokens)`` (a
        :class:`stase.agent.llm.ConductorModel`), or ``None``: open requests then go to the
        deterministic fallback, and the reply says so.
    model_name : shown in provenance ("agent: '...' (model SmolLM2-135M-Instruct.Q4_1)").
    """

    def __init__(self, conductor, model=None, model_name: str | None = None):
        self.conductor = conductor
        self.model = model
        self.model_name = model_name or (getattr(model, "name", None) or getattr(getattr(model, "path", None), "stem", None)
                                         or "model")
        self.rooms = sorted(conductor.rooms)

    # ---------------------------------------------------------------- entry point
    def respond(self, request: str, current: Plan | None, tracks: list[str] | None = None) -> Turn:
        """One request against the current plan; nothing is applied (see :class:`Proposal`)."""
        from stase.agent.parser import check_prompt_text, parse_prompt
        check_prompt_text(request, "request")
        request = request.strip()
        if not request:
            raise InputError("the request is empty: say what to change ('open the mix up', 'sax 20 degrees left')")
        if current is None or not current.sources:
            if not tracks:
                raise InputError("there is no plan yet and no tracks: send the track list first")
            new = self.conductor.plan(request, tracks)
            turn = Turn(request, "plan", calls=[{"tool": "plan", "prompt": request}])
            turn.proposal = Proposal(request, Plan(), new, "parser", plan_diff(Plan(), new))
            turn.reply = f"Proposed a new plan for {len(new.sources)} tracks (pathway {new.pathway})."
            return turn
        names = [s.track for s in current.sources]
        roles = {s.track: s.role or self.conductor.lexicon.role_of(s.track) for s in current.sources}
        said = complaint(request)
        explicit = request
        if said is not None:
            # "the drums are too far away": the complaint's words are the opposite of a target,
            # so the parser reads the request without them (what else it says stays explicit),
            # and the tracks the complaint is about are every track the request names
            lowered = _lowered(request)
            explicit = (lowered[:said[1]] + " " + lowered[said[2]:]).strip()
            mentioned = [t for m in parse_prompt(request, names, roles, self.conductor.lexicon).mentions
                         for t in m.tracks]
        parsed = parse_prompt(explicit, names, roles, self.conductor.lexicon)
        locks = _explicit_locks(parsed, self.conductor.room_in_request(explicit, current.room) != current.room)
        # open = an open wish outside the words the parser read as cues ("a bit closer" is a cue)
        intent = said[0] if said is not None else open_intent(_outside_cues(parsed))
        targets = (list(dict.fromkeys(mentioned)) if said is not None else _mentioned(parsed)) or names
        turn = Turn(request, None, intent=intent)
        working, sources = current, []
        explicit_error: InputError | None = None
        if parsed.has_cues or parsed.plan_values or "room" in locks.get(None, set()):
            try:
                working = self.conductor.edit(explicit, current)
                sources.append("parser")
                turn.calls.append({"tool": "edit", "by": "parser", "request": explicit})
                turn.tool = "edit"
            except InputError as exc:
                explicit_error = exc
            if sources and not plan_diff(current, working) and intent is None:
                # the parser read cues that change nothing ("widen the band around the singer"
                # read as a place): the request is open after all, and its reading locks nothing
                intent = open_intent(request)
                if intent is not None:
                    locks = {None: set(locks.get(None, set()))}
                    targets = list(dict.fromkeys(t for m in parsed.mentions for t in m.tracks)) or names
        if intent is not None or not sources:
            call = self._ask_model(request, working, locks, turn) if self.model is not None else None
            if call is not None and turn.model_valid:
                # every call of the answer is checked first (_ask_model): all of it acts or none
                for one in (call if isinstance(call, list) else [call]):
                    result = self._run_call(one, request, working, locks, targets, f"model {self.model_name}", turn)
                    if result is not None:
                        working = result
                        if f"model {self.model_name}" not in sources:
                            sources.append(f"model {self.model_name}")
            elif call is not None:
                turn.reply += f"Refused a tool call from model {self.model_name}: {self._call_problems(call, working)[0]}. "
            if call is None or turn.model_valid is False:
                if intent is None:
                    if not sources:
                        raise explicit_error or self._cannot_act(request, names)
                else:
                    who = f"fallback {intent}"
                    calls = self.fallback_calls(intent, working, targets, locks)
                    for fallback in calls:
                        result = self._run_call(fallback, request, working, locks, targets, who, turn)
                        if result is not None:
                            working = result
                            if who not in sources:
                                sources.append(who)
                    if calls:
                        turn.reply += ("No model configured" if self.model is None else
                                       "The model gave no valid tool call") + f": the deterministic '{intent}' rule acted. "
        if turn.action is None and working is not current:
            working.pathway = "edit"
            turn.proposal = Proposal(request, current, working, "+".join(sources) or "none",
                                     plan_diff(current, working))
            turn.reply += (f"Proposed {len(turn.proposal.diff)} change(s) ({turn.proposal.source}); "
                           "send accept to apply, undo after to go back.")
        elif turn.action is not None:
            turn.reply += f"Calls {turn.action['tool']}."
        else:
            turn.reply += "Nothing to change."
        return turn

    def _cannot_act(self, request: str, names: list[str]) -> InputError:
        return InputError(f"could not find a change in {request!r}: name a track ({', '.join(names)}) and a "
                          "change ('sax 20 degrees left', 'drums closer'), a room, or an open wish such as "
                          "'open the mix up', 'more intimate', 'give the guitars room'")

    # ---------------------------------------------------------------- the model
    @property
    def compact(self) -> bool:
        """Whether the model is the fine-tuned one (compact prompt, a list of calls as answer)."""
        return getattr(self.model, "prompt_style", "full") == "compact"

    def messages(self, request: str, plan: Plan, locks: dict) -> list[dict]:
        """What the model sees: the tools, the plan's numbers, the locked fields, the request
        (:func:`compact_messages` for the fine-tuned model)."""
        if self.compact:
            return compact_messages(request, plan, locks)
        system = ("You are a mixing engineer's assistant placing tracks around a listener. Azimuth in degrees: "
                  "0 = front, positive = LEFT, negative = right; distance in metres; gains in dB. Answer with "
                  "ONE tool call as JSON. Tools: edit {changes: [{track, field, to}]} sets fields to new "
                  "values; set_source {track, fields...}; set_room {room, reverb_db}; advise {} asks for gain "
                  "advice; listen {track}; plan {prompt} makes a new plan; apply {}. Wider = larger |azimuth|; "
                  "closer/intimate = smaller distance; give room = move tracks apart.")
        rows = [f"- {s.track}: azimuth_deg {s.azimuth_deg:.0f}, distance_m {s.distance_m:.1f}, gain_db "
                f"{s.gain_db:.1f}" for s in plan.sources]
        locked = [f"{t}.{f}" for t, fs in locks.items() if t for f in sorted(fs)]
        user = (f"Room: {plan.room}, reverb_db {plan.reverb_db:.0f}. Rooms: {', '.join(self.rooms)}.\n"
                "Tracks:\n" + "\n".join(rows) + "\n"
                f"Do not change (the user set them): {', '.join(locked) or 'nothing'}.\nRequest: {request}")
        return [{"role": "system", "content": system}, {"role": "user", "content": user}]

    def _ask_model(self, request: str, plan: Plan, locks: dict, turn: Turn) -> dict | list | None:
        """The model's answer (one call, or a list of calls for the compact model) or ``None``;
        ``turn.model_valid`` says whether every call in it is valid against ``plan``."""
        tracks = [s.track for s in plan.sources]
        schema, budget = ((calls_schema(tracks, self.rooms), COMPACT_MODEL_MAX_TOKENS) if self.compact
                          else (call_schema(tracks, self.rooms), MODEL_MAX_TOKENS))
        start = time.perf_counter()
        try:
            call = self.model.complete_json(self.messages(request, plan, locks), schema, max_tokens=budget)
        except Exception as exc:  # noqa: BLE001 - a model failure falls back, said in the reply
            call = None
            turn.reply += f"The model failed ({type(exc).__name__}). "
        turn.model_latency_s = time.perf_counter() - start
        turn.model_call = call
        turn.model_valid = call is not None and not self._call_problems(call, plan)
        return call

    def _call_problems(self, answer: Any, plan: Plan) -> list[str]:
        """Every problem of a model answer: one call, or (compact) a list of 1..MAX_MODEL_CALLS."""
        if isinstance(answer, list) and self.compact:
            if not 1 <= len(answer) <= MAX_MODEL_CALLS:
                return [f"the answer must hold 1 to {MAX_MODEL_CALLS} tool calls, got {len(answer)}"]
            return [p for one in answer for p in check_call(one, plan, self.rooms)]
        return check_call(answer, plan, self.rooms)

    # ---------------------------------------------------------------- running a call
    def _run_call(self, call: dict, request: str, plan: Plan, locks: dict, targets: list[str], who: str,
                  turn: Turn) -> Plan | None:
        """``plan`` changed by ``call`` (a copy), or ``None`` for a read/act tool or an invalid call."""
        problems = check_call(call, plan, self.rooms)
        if problems:
            turn.reply += f"Refused a tool call from {who}: {problems[0]}. "
            if who.startswith("model"):
                turn.model_valid = False
            return None
        turn.calls.append({**call, "by": who})
        tool = call["tool"]
        turn.tool = tool
        if tool in ("advise", "listen", "apply"):
            turn.action = {k: v for k, v in call.items()}
            return None
        note = clip_provenance(f"agent: '{request}' ({who})")
        if tool == "plan":
            new = self.conductor.plan(call["prompt"], [s.track for s in plan.sources])
            for s in new.sources:
                s.provenance = {k: clip_provenance(f"{note}; {v}") for k, v in s.provenance.items()}
            return new
        out = _copy_plan(plan)
        skipped: list[str] = []
        if tool == "set_room":
            if "room" in call and "room" not in locks.get(None, set()):
                out.room = call["room"]
            elif "room" in call:
                skipped.append("room")
            if "reverb_db" in call and "reverb_db" not in locks.get(None, set()):
                out.reverb_db = float(call["reverb_db"])
            elif "reverb_db" in call:
                skipped.append("reverb_db")
            out.mix_notes = f"{out.mix_notes} {note}.".strip()
        else:
            changes = call["changes"] if tool == "edit" else [
                {"track": call["track"], "field": f, "to": call[f]} for f in EDIT_FIELDS if f in call]
            for change in changes:
                s = out.source(change["track"])
                if change["field"] in locks.get(s.track, set()):
                    skipped.append(f"{s.track}.{change['field']}")
                    continue
                setattr(s, change["field"], float(change["to"]))
                s.provenance[change["field"]] = note
            out.sources = [s.normalised() for s in out.sources]
        if skipped:
            turn.reply += f"Kept what you set explicitly: {', '.join(skipped)}. "
        return out

    # ---------------------------------------------------------------- the fallback table
    def fallback_calls(self, intent: str, plan: Plan, targets: list[str], locks: dict) -> list[dict]:
        """The deterministic tool calls of an open intent (:data:`OPEN_INTENTS` says what each does);
        empty when there is nothing left to change."""
        by_name = {s.track: s for s in plan.sources}
        chosen = [by_name[t] for t in targets if t in by_name]
        changes: list[dict] = []

        def to(s: SourcePlacement, key: str, value: float) -> None:
            if key not in locks.get(s.track, set()) and abs(value - getattr(s, key)) > 1e-9:
                changes.append({"track": s.track, "field": key, "to": round(float(value), 2)})

        if intent == "advise":
            return [{"tool": "advise"}]
        if intent in ("bigger_room", "smaller_room"):
            rooms = self.conductor.rooms
            here = room_volume_m3(rooms.get(plan.room, {}))
            enclosed = sorted((room_volume_m3(r), rid) for rid, r in rooms.items() if rid != "outdoor")
            pick = ([rid for v, rid in enclosed if v > here * 1.5] if intent == "bigger_room"
                    else [rid for v, rid in reversed(enclosed) if v < here / 1.5])
            return [{"tool": "set_room", "room": pick[0]}] if pick and "room" not in locks[None] else []
        if intent in ("wider", "narrower", "stage"):
            factor = {"wider": 1.6, "narrower": 0.5, "stage": 1.4}[intent]
            for s in chosen:
                a = s.azimuth_deg
                if abs(a) < 3.0 and intent != "narrower" and len(chosen) > 1 and any(abs(o.azimuth_deg) >= 3 for o in chosen):
                    continue    # a centred source (the lead vocal) stays in the centre
                if abs(a) > 150.0:
                    continue    # a source behind stays behind
                side = 1.0 if a >= 0 else -1.0
                if intent == "narrower":
                    new = max(min(abs(a) * factor, abs(a) - 12.0), 0.0)
                else:
                    new = min(max(abs(a) * factor, abs(a) + 20.0), 120.0)
                to(s, "azimuth_deg", side * new)
        if intent in ("intimate", "closer", "further", "stage"):
            factor = {"intimate": 0.7, "closer": 0.7, "further": 1.4, "stage": 0.6}[intent]
            for s in (plan.sources if intent == "intimate" else chosen):
                to(s, "distance_m", max(s.distance_m * factor, 0.5) if factor < 1 else s.distance_m * factor)
        if intent == "give_room":
            chosen = chosen if len(chosen) >= 2 else list(plan.sources)
            ordered = sorted(chosen, key=lambda s: s.azimuth_deg)
            centre = sum(s.azimuth_deg for s in ordered) / len(ordered)
            span = max(ordered[-1].azimuth_deg - ordered[0].azimuth_deg, 0.0)
            new_span = min(max(span * 1.5, span + 20.0 * (len(ordered) - 1)), 240.0)
            centre = max(min(centre, 120.0 - new_span / 2), -120.0 + new_span / 2) if new_span <= 240 else 0.0
            for k, s in enumerate(ordered):
                to(s, "azimuth_deg", centre - new_span / 2 + new_span * k / max(len(ordered) - 1, 1))
        calls = [{"tool": "edit", "changes": changes[:MAX_CHANGES]}] if changes else []
        if intent == "intimate" and "reverb_db" not in locks[None]:
            calls.append({"tool": "set_room", "reverb_db": max(plan.reverb_db - 4.0, REVERB_DB_RANGE[0])})
        return calls


def _explicit_locks(parsed, room_named: bool) -> dict[str | None, set[str]]:
    """``{track: fields the user set explicitly}``; ``None`` holds the plan's own (room, reverb_db)."""
    locks: dict[str | None, set[str]] = {None: set()}
    for cue in parsed.cues:
        kinds = cue.kinds() | ({"reverb_db"} if "reverb_db" in cue.values or "reverb_db" in cue.relative else set())
        for track in cue.tracks:
            locks.setdefault(track, set()).update(kinds)
    for a, b, _ in parsed.swaps:
        for t in (a, b):
            locks.setdefault(t, set()).update({"azimuth_deg", "elevation_deg", "distance_m"})
    for tracks, _ in parsed.mirrors:
        for t in tracks:
            locks.setdefault(t, set()).add("azimuth_deg")
    if "reverb_db" in parsed.plan_values:
        locks[None].add("reverb_db")
    if room_named:
        locks[None].add("room")
    return locks


def _outside_cues(parsed) -> str:
    """The request's normalised text without the spans of its explicit cues."""
    from stase.agent.parser import normalise_text
    text = normalise_text(parsed.prompt)
    for cue in parsed.cues:   # a cue's text spans its mention and its expression
        text = text.replace(cue.text, " ")
    return text


def _mentioned(parsed) -> list[str]:
    """The tracks named outside the explicit cues (the open wish is about them), in order."""
    out: list[str] = []
    for m in parsed.mentions:
        if any(set(m.tracks) <= set(c.tracks) and m.text in c.text for c in parsed.cues):
            continue
        for t in m.tracks:
            if t not in out:
                out.append(t)
    return out


def proposal_from_advice(advice: dict, current: Plan, request: str = "advise") -> Proposal:
    """The advisor's per-track ``gain_db`` moves as a proposal of new fader levels.

    Guarded: a move larger than :data:`MAX_ADVICE_STEP_DB` is clamped (and the note says so), a
    result outside :data:`stase.core.placement.GAIN_DB_RANGE` is refused by the placement schema,
    a track the plan does not hold is listed, not invented.  The summary's numbers are the
    advisor's own (its ``guarded_rephrase`` keeps them).
    """
    after = _copy_plan(current)
    notes: list[str] = []
    for row in advice.get("tracks") or []:
        move = row.get("gain_db")
        if not isinstance(move, (int, float)) or not move:
            continue
        try:
            s = after.source(str(row.get("track")))
        except KeyError:
            notes.append(f"{row.get('track')}: not in the plan, no fader move")
            continue
        step = max(-MAX_ADVICE_STEP_DB, min(MAX_ADVICE_STEP_DB, float(move)))
        if step != move:
            notes.append(f"{s.track}: advised {move:+.1f} dB, proposed {step:+.1f} dB (at most "
                         f"{MAX_ADVICE_STEP_DB:g} dB a step)")
        value = round(s.gain_db + step, 1)
        problem = field_problem("gain_db", value)
        if problem is not None:
            notes.append(f"{s.track}: {problem}; no fader move")
            continue
        s.gain_db = value
        s.provenance["gain_db"] = clip_provenance(f"agent: '{request}' (advisor {advice.get('mode', '')} "
                                                  f"{step:+.1f} dB, confidence {row.get('confidence', 0):.2f})")
    return Proposal(request, current, after, "advisor", plan_diff(current, after), notes)


def describe_call(call: dict) -> str:
    return json.dumps(call, sort_keys=True)


__all__ = ["Agent", "COMPACT_EXAMPLE_TOKEN_TARGET", "COMPACT_PROMPT_TOKEN_BUDGET", "COMPLAINTS", "EDIT_FIELDS", "OPEN_INTENTS", "complaint", "Proposal",
           "TOOLS", "Turn", "call_schema", "calls_schema", "check_call", "compact_answer", "compact_messages",
           "open_intent", "plan_diff", "proposal_from_advice", "tool_schemas", "GAIN_DB_RANGE", "FIELD_SPECS"]
