"""Chat routing: a producer's free-text request -> the daemon verb that answers it.

Holds
-----
* :data:`VERBS`, the eight verbs a chat request can reach, and :data:`LABEL_RULES`, what each one
  means (the labelling rules of the example files, stated once).
* :class:`ChatRouter`: a multinomial logistic regression over labelled requests
  (``agent/data/chat_routing.jsonl``, hand-written in producers' words, :data:`EXAMPLES_PATH`).
  Its features are the request's all-MiniLM-L6-v2 sentence embedding (loaded by
  :func:`stase.agent.retrieval.load_encoder`, the one encoder loader) next to lexical TF-IDF features
  (words, word pairs, character 3-grams inside words, so typos still share most of their
  features; plus "asks a question" and first-word marks; instrument names, room names and
  numbers stand as slots).  It is trained once per process (about a second; the examples'
  embeddings are cached on disk), from zero weights with L-BFGS: the same examples give the same
  router.
* Fallbacks, both deterministic: without the encoder (package missing, model unreadable) the
  same regression is trained on the lexical features alone (``method="lexical"``); without the
  example file (an installation without ``tests/``) :func:`keyword_route`'s phrase list routes
  (``method="keywords"``).
* :func:`route` (one shared router per process) and :func:`is_question`.

Without a plan, a request routed to ``edit`` goes to ``plan``: there is nothing to edit yet and
the conductor plans its cues from scratch.

Accuracy (train and the held-out ``tests/data/chat_routing_heldout.jsonl``, never used to tune)
and warm latency are reported by ``python -m bench.conductor --json``.
"""
from __future__ import annotations

import json
import logging
import math
import re
import threading
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from stase.core.errors import InputError, StaseError

log = logging.getLogger(__name__)

VERBS = ("plan", "edit", "advise", "listen", "status", "sources", "set_room", "help")
#: What each label means; the example files follow these rules (a plan is assumed to exist).
LABEL_RULES = {
    "plan": "a whole new arrangement: a scene, genre or venue with performers, 'start over', "
            "'new layout', 'spatialize everything', a full setup introduced as new",
    "edit": "a change to tracks of the current plan: moves, distances, levels and widths asked "
            "for, swaps, mirrors, centring; complaints that ask for a position change",
    "advise": "an opinion or recommendation about levels, balance, gain, loudness or headroom",
    "listen": "what is heard in space: where a track is heard or comes from, relative positions "
              "by ear, listen-back checks",
    "status": "the daemon's, the DAW link's, the audio's or MIDI's health",
    "sources": "the current plan's numbers and tracks: list, show, 'where did you put', the room in use",
    "set_room": "a change of the acoustic space only",
    "help": "how to use stase, what it can do, examples",
}
#: The training examples ship with the package (an installed wheel has no tests/ folder).
EXAMPLES_PATH = Path(__file__).resolve().parent / "data" / "chat_routing.jsonl"
#: The held-out split stays with the tests: it is never read at run time or while tuning.
HELDOUT_PATH = Path(__file__).resolve().parents[1] / "tests" / "data" / "chat_routing_heldout.jsonl"

#: Feature-group weights and the L2 penalty, chosen by 5-fold cross-validation on the training
#: file only (1259 rows: 95.4 % against 95.2 % for equal weights and 89.3 % without the
#: embedding); the held-out file played no part.
EMBEDDING_WEIGHT = 1.0
WORD_WEIGHT = 1.0
CHAR_WEIGHT = 0.5
L2_PENALTY = 1e-4
MAX_ITERATIONS = 400

_QUESTION_STARTS = ("where", "what", "which", "who", "how", "is", "are", "does", "do", "can",
                    "could", "would", "should", "am", "any", "did", "why", "whats", "wheres")


@dataclass(frozen=True)
class Routing:
    """Where a request goes: ``verb``, the model's ``confidence`` in it (probability, 0..1; 1.0
    for the keyword fallback) and ``method`` ("encoder+lexical", "lexical" or "keywords")."""

    verb: str
    confidence: float
    method: str


def is_question(text: Any) -> bool:
    """A request phrased as a question ("where is the sax?", "is X left of Y?")."""
    if not isinstance(text, str):
        return False
    lowered = text.strip().lower()
    return lowered.endswith("?") or lowered.startswith(("where ", "what ", "which ", "is ", "how far"))


#: Requests the ``help`` verb shows, one or two per verb.
HELP_EXAMPLES = {
    "plan": ["a smoky late-night jazz club", "start over: choir in a cathedral, organ above"],
    "edit": ["bring the keys a bit nearer", "sax 30 degrees left, drums 2 m further back"],
    "advise": ["is the bass sitting right?", "check my levels against the reference"],
    "listen": ["where do you hear the trumpet?", "is the flute left of the bass?"],
    "status": ["any xruns?", "is REAPER connected?"],
    "sources": ["list the tracks and their positions", "which room are we in?"],
    "set_room": ["switch the room to the concert hall", "make it drier"],
    "help": ["what can you do?"],
}


# ------------------------------------------------------------------------- examples
def load_examples(path: str | Path | None = None) -> list[dict[str, str]]:
    """The labelled requests of a JSONL file (default :data:`EXAMPLES_PATH`), each
    ``{"text", "verb", "style"}``.

    ``InputError`` naming the line for a row that is not an object with a non-empty ``text``
    and a ``verb`` among :data:`VERBS`; ``OSError`` when the file cannot be read.
    """
    path = EXAMPLES_PATH if path is None else path
    rows = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path} line {n}: not JSON ({exc})") from None
        if not isinstance(row, dict) or not isinstance(row.get("text"), str) or not row["text"].strip():
            raise InputError(f"{path} line {n}: each line needs a non-empty 'text'")
        if row.get("verb") not in VERBS:
            raise InputError(f"{path} line {n}: verb {row.get('verb')!r} is not one of {', '.join(VERBS)}")
        rows.append({"text": row["text"], "verb": row["verb"], "style": str(row.get("style", ""))})
    return rows


# ------------------------------------------------------------------------- lexical features
def _words(text: str) -> list[str]:
    # digits apart from letters ("3m", "20deg", "45L"), apostrophes dropped ("what's" -> "whats")
    spaced = re.sub(r"(?<=[0-9])(?=[a-z])|(?<=[a-z])(?=[0-9])", " ", text.lower().replace("'", ""))
    return re.findall(r"[a-z0-9]+", spaced)


@lru_cache(maxsize=1)
def _room_phrases() -> tuple[tuple[str, ...], ...]:
    """Word sequences that name a room: the conductor's room words and the room presets' ids and
    names, longest first."""
    from stase.presets import load_rooms
    from stase.agent.conductor import ROOM_WORDS
    phrases = {tuple(_words(w)) for words in ROOM_WORDS.values() for w in words}
    for room_id, room in load_rooms().items():
        phrases.add(tuple(_words(room_id)))
        if isinstance(room, dict) and isinstance(room.get("name"), str):
            phrases.add(tuple(_words(room["name"])))
    return tuple(sorted((p for p in phrases if p), key=len, reverse=True))


def _slotted(words: list[str]) -> list[str]:
    """``words`` with instrument names (the lexicon's aliases), room names and numbers replaced
    by ``<instrument>``, ``<room>`` and ``<number>``: "bring the accordion nearer" then shares
    its terms with "bring the keys nearer", whichever instrument the examples happened to use."""
    from stase.agent.lexicon import get_lexicon
    out: list[str | None] = list(words)
    for hit in get_lexicon().find(words, fuzzy=False):
        out[hit.start:hit.end] = ["<instrument>"] + [None] * (hit.end - hit.start - 1)
    rooms = _room_phrases()
    for i in range(len(words)):
        for phrase in rooms:
            n = len(phrase)
            if tuple(words[i:i + n]) == phrase and all(o == w for o, w in zip(out[i:i + n], phrase)):
                out[i:i + n] = ["<room>"] + [None] * (n - 1)
                break
    return [("<number>" if w.isdigit() else w) for w in out if w is not None]


def lexical_terms(text: str) -> tuple[list[str], list[str]]:
    """(word terms, character terms) of a request.

    Word terms: each word of the slotted text (:func:`_slotted`), each pair of neighbouring ones,
    ``?`` when the text asks (a ``?`` or a question word first) and the first word marked as such.
    Character terms: the 3-grams of each word padded with ``<``/``>`` ("lisen" and "listen" share
    ``<li``, ``lis``, ``en>``), slots left out.
    """
    words = _slotted(_words(text))
    terms = list(words) + [f"{a} {b}" for a, b in zip(words, words[1:])]
    if "?" in text or (words and words[0] in _QUESTION_STARTS):
        terms.append("?")
    if words:
        terms.append(f"^{words[0]}")
    chars = [f"<{w}>"[i:i + 3] for w in words if not w.startswith("<") for i in range(len(w))]
    return terms, chars


class _TfIdf:
    """Sublinear TF-IDF over a fixed vocabulary (the training texts'), rows unit length."""

    def __init__(self, documents: list[list[str]]):
        df = Counter(term for doc in documents for term in set(doc))
        self.index = {term: i for i, term in enumerate(sorted(df))}
        n = len(documents)
        self.idf = np.array([math.log((1 + n) / (1 + df[t])) + 1.0 for t in sorted(df)], dtype=np.float64)

    def transform(self, documents: list[list[str]]):
        """A sparse (documents, vocabulary) matrix; terms outside the vocabulary are dropped."""
        from scipy.sparse import csr_matrix
        rows, cols, values = [], [], []
        for row, doc in enumerate(documents):
            entries = [(col, (1.0 + math.log(count)) * self.idf[col])
                       for term, count in Counter(doc).items() if (col := self.index.get(term)) is not None]
            norm = math.sqrt(sum(v * v for _, v in entries)) or 1.0
            for col, value in entries:
                rows.append(row)
                cols.append(col)
                values.append(value / norm)
        return csr_matrix((values, (rows, cols)), shape=(len(documents), len(self.index)))


# ------------------------------------------------------------------------- the model
class _Features:
    """The features of some texts: a dense block (the scaled embeddings, or none) beside a sparse
    one (the scaled TF-IDF terms), kept apart so that each product uses its fast kind."""

    def __init__(self, dense: np.ndarray | None, sparse):
        self.dense, self.sparse = dense, sparse
        self.rows = sparse.shape[0]
        self.width = sparse.shape[1] + (0 if dense is None else dense.shape[1])

    def dot(self, w: np.ndarray) -> np.ndarray:
        """features @ w, for w of shape (width, k)."""
        if self.dense is None:
            return self.sparse @ w
        split = self.dense.shape[1]
        return self.dense @ w[:split] + self.sparse @ w[split:]

    def tdot(self, r: np.ndarray) -> np.ndarray:
        """features.T @ r, for r of shape (rows, k)."""
        if self.dense is None:
            return np.asarray(self.sparse.T @ r)
        return np.vstack([self.dense.T @ r, np.asarray(self.sparse.T @ r)])


def _fit_softmax(x: _Features, y: np.ndarray, classes: int, l2: float,
                 class_weight: np.ndarray) -> np.ndarray:
    """Weights (features + 1, classes) of an L2-penalised multinomial logistic regression, from
    zeros with L-BFGS (deterministic); the last row is the bias, which is not penalised."""
    from scipy.optimize import minimize
    n, d = x.rows, x.width
    onehot = np.zeros((n, classes))
    onehot[np.arange(n), y] = 1.0
    sample_weight = class_weight[y][:, None] / class_weight[y].sum()

    def loss_and_grad(flat: np.ndarray) -> tuple[float, np.ndarray]:
        w = flat.reshape(d + 1, classes)
        z = x.dot(w[:-1]) + w[-1]
        z -= z.max(axis=1, keepdims=True)
        log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        loss = -float((sample_weight * onehot * log_p).sum()) + 0.5 * l2 * float((w[:-1] ** 2).sum())
        residual = sample_weight * (np.exp(log_p) - onehot)
        grad = np.vstack([x.tdot(residual) + l2 * w[:-1], residual.sum(axis=0)])
        return loss, grad.ravel()

    result = minimize(loss_and_grad, np.zeros((d + 1) * classes), jac=True, method="L-BFGS-B",
                      options={"maxiter": MAX_ITERATIONS})
    return result.x.reshape(d + 1, classes)


def _embed_examples(texts: list[str], encoder: Any, kind: str = "chat-router") -> np.ndarray:
    """Embeddings of the example texts, cached on disk (they take seconds to compute and are the
    same at every start), named by the encoder's kind and the packaged weights' size and time."""
    from stase.agent.retrieval import cached_embeddings, minilm_path
    try:
        weights = (minilm_path() / "model.safetensors").stat()
        stamp = f"{weights.st_size}-{int(weights.st_mtime)}"
    except (StaseError, OSError):
        stamp = "unknown"
    return cached_embeddings(texts, encoder, kind, f"{type(encoder).__name__}-{stamp}")


class ChatRouter:
    """Routes requests to :data:`VERBS` (see the module docstring).

    Parameters
    ----------
    examples : labelled rows ``{"text", "verb"}`` (default: :func:`load_examples` of
        :data:`EXAMPLES_PATH`).
    encoder : "auto" (the packaged all-MiniLM-L6-v2 via :func:`stase.agent.retrieval.load_encoder`;
        lexical features alone when it cannot be loaded), ``None`` (lexical alone), or an object
        with the encoder's ``encode`` method.
    weights : (embedding, word, character) feature-group weights.
    l2 : the L2 penalty of the regression.
    embeddings : the examples' embeddings when the caller has them already (cross-validation in
        bench/conductor.py), shape (len(examples), 384); default: computed (cached on disk).
    classes, label_key : the labels it chooses among, in order, and the example field holding
        each row's label (default: the chat verbs in ``"verb"``; the edit reader of
        :mod:`stase.agent.edit_reader` uses the same model for edit operations).
    """

    def __init__(self, examples: list[dict[str, str]] | None = None, encoder: Any = "auto",
                 weights: tuple[float, float, float] = (EMBEDDING_WEIGHT, WORD_WEIGHT, CHAR_WEIGHT),
                 l2: float = L2_PENALTY, embeddings: np.ndarray | None = None,
                 classes: tuple[str, ...] = VERBS, label_key: str = "verb"):
        rows = load_examples() if examples is None else examples
        if not rows:
            raise InputError("the chat router needs labelled examples")
        self.encoder = _resolve_encoder(encoder)
        self.method = "encoder+lexical" if self.encoder is not None else "lexical"
        self.weights = weights
        texts = [r["text"] for r in rows]
        terms = [lexical_terms(t) for t in texts]
        self._words = _TfIdf([w for w, _ in terms])
        self._chars = _TfIdf([c for _, c in terms])
        self.labels = [v for v in classes if any(r[label_key] == v for r in rows)]
        y = np.array([self.labels.index(r[label_key]) for r in rows])
        counts = np.bincount(y, minlength=len(self.labels)).astype(np.float64)
        class_weight = counts.sum() / (len(self.labels) * counts)  # each verb counts the same
        embedded = None
        if self.encoder is not None:
            cache_kind = "chat-router" if label_key == "verb" else f"{label_key}-classifier"
            embedded = _embed_examples(texts, self.encoder, cache_kind) if embeddings is None else np.asarray(embeddings)
        with _one_blas_thread():
            self.coef = _fit_softmax(self._features(texts, embedded), y, len(self.labels), l2, class_weight)

    def _features(self, texts: list[str], embedded: np.ndarray | None = None) -> _Features:
        from scipy.sparse import hstack
        embedding_weight, word_weight, char_weight = self.weights
        terms = [lexical_terms(t) for t in texts]
        sparse = hstack([word_weight * self._words.transform([w for w, _ in terms]),
                         char_weight * self._chars.transform([c for _, c in terms])], format="csr")
        dense = None
        if self.encoder is not None:
            if embedded is None:
                from stase.agent.retrieval import embed
                embedded = embed(texts, self.encoder)
            dense = embedding_weight * embedded.astype(np.float64)
        return _Features(dense, sparse)

    def probabilities(self, texts: list[str]) -> np.ndarray:
        """(len(texts), len(self.labels)) probabilities of each verb."""
        z = self._features(list(texts)).dot(self.coef[:-1]) + self.coef[-1]
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        return p / p.sum(axis=1, keepdims=True)

    def predict(self, texts: list[str]) -> list[str]:
        """The verb of each text, as if a plan existed (no ``has_plan`` rule)."""
        if not texts:
            return []
        return [self.labels[i] for i in self.probabilities(texts).argmax(axis=1)]

    def route(self, text: str, has_plan: bool = True) -> Routing:
        """The verb for one request; ``edit`` becomes ``plan`` when there is no plan yet."""
        p = self.probabilities([_check_text(text)])[0]
        best = int(p.argmax())
        verb = self.labels[best]
        if verb == "edit" and not has_plan:
            verb = "plan"
        return Routing(verb, float(p[best]), self.method)


def _one_blas_thread():
    """Every loaded BLAS (NumPy's and SciPy's own copy, which L-BFGS-B uses) on one thread while
    the router trains: threads spinning on a busy 2-core machine made training take 15 s instead
    of 0.3 s.  (:func:`stase.agent.listener.blas_single_thread` keeps a controller made once, which may
    predate SciPy's library, so it is not used here.)"""
    import contextlib
    import scipy.optimize  # noqa: F401 - load SciPy's BLAS before the limits are taken
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _resolve_encoder(encoder: Any) -> Any:
    if encoder is None or encoder is False:
        return None
    if encoder != "auto":
        return encoder
    from stase.agent.retrieval import load_encoder
    try:
        return load_encoder()
    except (StaseError, ImportError, OSError) as exc:
        log.warning("chat routing without the sentence encoder (lexical features only): %s", exc)
        return None


def _check_text(text: Any) -> str:
    if not isinstance(text, str) or not text.strip():
        raise InputError("a chat request must be a non-empty string")
    return text


# ------------------------------------------------------------------------- keyword fallback
#: Used only when the example file is missing; first matching verb wins, in this order.
KEYWORD_ROUTES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("help", ("help", "what can you do", "how do i", "examples", "commands")),
    ("set_room", ("room to", "the room", "acoustic", "cathedral", "church", "concert hall",
                  "outdoors", "reverb")),
    ("status", ("status", "xrun", "cpu", "connected", "are you running", "dropout")),
    ("sources", ("list the", "which tracks", "what tracks", "show the", "sources", "in the plan",
                 "where did you put")),
    ("advise", ("advice", "advise", "balance", "levels", "gain staging", "how loud", "too loud",
                "too quiet", "buried", "headroom")),
    ("listen", ("where is", "where's", "where do you hear", "listen", "check the position",
                "check the placement", "localis", "localiz", "what is playing", "what's playing",
                "sound like it", "by ear")),
    ("plan", ("new plan", "start over", "from scratch", "new layout", "set up a", "arrange")),
)


def keyword_route(text: str, has_plan: bool = True) -> Routing:
    """The phrase-list router (the daemon's first one, widened): edits are the default."""
    lowered = " " + _check_text(text).lower() + " "
    for verb, cues in KEYWORD_ROUTES:
        if any(cue in lowered for cue in cues):
            return Routing(verb, 1.0, "keywords")
    return Routing("edit" if has_plan else "plan", 1.0, "keywords")


# ------------------------------------------------------------------------- one per process
_LOCK = threading.Lock()


@lru_cache(maxsize=1)
def default_router() -> ChatRouter | None:
    """The shared router trained on :data:`EXAMPLES_PATH`; ``None`` when that file is missing."""
    try:
        examples = load_examples()
    except OSError as exc:
        log.warning("chat routing falls back to phrase lists: no examples at %s (%s)", EXAMPLES_PATH, exc)
        return None
    return ChatRouter(examples)


def route(text: str, has_plan: bool = True) -> Routing:
    """Route one request with the shared router (trained on first use)."""
    _check_text(text)
    with _LOCK:  # two threads must not train it twice
        router = default_router()
    if router is None:
        return keyword_route(text, has_plan)
    return router.route(text, has_plan)


__all__ = ["ChatRouter", "EXAMPLES_PATH", "HELDOUT_PATH", "HELP_EXAMPLES", "KEYWORD_ROUTES", "LABEL_RULES", "Routing",
           "VERBS", "default_router", "is_question", "keyword_route", "load_examples", "route"]
