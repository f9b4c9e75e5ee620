"""Template retrieval with the real packaged all-MiniLM-L6-v2 (loaded once per module, offline)."""
from __future__ import annotations

import os

import numpy as np
import pytest

from stase.agent import retrieval
from stase.presets import load_templates


@pytest.fixture(scope="module")
def retriever():
    return retrieval.TemplateRetriever(load_templates())


def test_model_ships_in_the_package_and_loads_offline(retriever):
    path = retrieval.minilm_path()
    assert (path / "model.safetensors").is_file()
    vecs = retrieval.embed(["a jazz trio", "a church choir"], retriever.encoder)
    assert vecs.shape == (2, 384) and vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)


def test_scores_match_the_documented_formula(retriever):
    """score = 0.25 cos(description) + 0.25 max cos(sentence) + 0.5 max cos(keyword)
    + min(0.05 * literal keyword hits, 0.15) + 0.15 min(word evidence, 2), recomputed here from
    the YAML texts with a plain word count (no retriever internals)."""
    import re
    prompt = "a smoky jazz club with a walking bass, brushes on the snare"
    q = retrieval.embed([prompt], retriever.encoder)[0]
    got = retriever.scores(prompt)
    templates = load_templates()

    def words(text):
        out = set()
        for w in re.findall(r"[a-z0-9&']+", text.lower()):
            if len(w) >= 3 and w not in retrieval.FUNCTION_WORDS:
                out.add(w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w)
        return out

    held = {tid: words(" ".join([t["name"], t["description"], *t["keywords"]])) for tid, t in templates.items()}
    for tid in ("jazz_ensemble", "choir", "rock_band"):
        t = templates[tid]
        d = retrieval.embed([f"{t['name']}. {t['description']}"], retriever.encoder)[0]
        sentences = [s for s in re.split(r"(?<=[.!?;])\s+", " ".join(t["description"].split())) if s]
        assert len(sentences) >= 3   # the scenes are prose, one sentence each
        sv = retrieval.embed(sentences, retriever.encoder)
        k = retrieval.embed(t["keywords"], retriever.encoder)
        hits = sum(f" {kw} " in f" {prompt.replace(',', '')} " for kw in t["keywords"])
        evidence = sum(1.0 / sum(w in h for h in held.values()) for w in words(prompt) if w in held[tid])
        expected = (0.25 * float(d @ q) + 0.25 * float((sv @ q).max()) + 0.5 * float((k @ q).max())
                    + min(0.05 * hits, 0.15) + 0.15 * min(evidence, 2.0))
        assert got[tid] == pytest.approx(expected, abs=1e-4), tid


def test_word_evidence_weighs_a_word_by_how_few_templates_hold_it(retriever):
    """A word only one template's texts hold counts 1, a word two hold counts 1/2 each, and a
    function word nothing: keywords are evidence, not votes."""
    counts = retriever.word_templates
    only = next(w for w, n in sorted(counts.items()) if n == 1)
    owner = next(tid for tid in retriever.ids if only in retriever.scene_words[tid])
    ev = retriever.evidence(f"the {only}")
    assert ev[owner] == pytest.approx(1.0) and sum(ev.values()) == pytest.approx(1.0)
    shared = next(w for w, n in sorted(counts.items()) if n == 2)
    ev = retriever.evidence(shared)
    assert sorted(v for v in ev.values() if v) == pytest.approx([0.5, 0.5])
    assert not any(retriever.evidence("with the and of them").values())


def test_each_template_retrieves_itself(retriever):
    for tid, t in load_templates().items():
        assert retriever.rank(t["description"])[0][0] == tid


@pytest.mark.parametrize("prompt, template", [
    ("late night bebop in a little basement bar", "jazz_ensemble"),
    ("hymns sung by many voices under a vaulted stone ceiling", "choir"),
    ("a warehouse rave with a thumping four on the floor", "electronic_dj"),
])
def test_paraphrases_without_template_words(retriever, prompt, template):
    assert retriever.rank(prompt)[0][0] == template


def test_embedding_cache_is_shared(retriever):
    again = retrieval.TemplateRetriever(load_templates(), encoder=retriever.encoder)
    assert again.vectors is retriever.vectors


@pytest.mark.slow
def test_onnx_encoder_equals_sentence_transformers(retriever):
    """The ONNX path (the default) against the PyTorch reference, odd batch sizes and lengths."""
    texts = ["jazz", "a very long prompt about a symphony orchestra in a big hall " * 3, "Vox", "drums behind me"]
    fast = retrieval.load_encoder(backend="onnx")
    reference = retrieval.load_encoder(backend="torch")
    np.testing.assert_allclose(fast.encode(texts, batch_size=3), retrieval.embed(texts, reference), atol=1e-5)


def test_template_embeddings_are_cached_on_disk_and_a_damaged_cache_is_recomputed(tmp_path, monkeypatch):
    """The first plan's slow part (embedding every template text) is kept under $STASE_CACHE."""
    import numpy as np
    from stase.agent import retrieval
    from stase.presets import load_templates

    class CountingEncoder:
        cache_id = "fake-encoder-v1"

        def __init__(self):
            self.calls = 0

        def encode(self, texts, **_):
            self.calls += 1
            rng = np.random.default_rng(len(texts))
            v = rng.standard_normal((len(texts), 384)).astype(np.float32)
            return v / np.linalg.norm(v, axis=1, keepdims=True)

    monkeypatch.setenv("STASE_CACHE", str(tmp_path))
    templates = load_templates()
    first = CountingEncoder()
    a = retrieval.TemplateRetriever(templates, encoder=first)
    assert first.calls == 1 and len(list(tmp_path.glob("template-index-*.npy"))) == 1
    second = CountingEncoder()                      # another process: a new encoder object
    b = retrieval.TemplateRetriever(templates, encoder=second)
    assert second.calls == 0
    np.testing.assert_array_equal(a.vectors, b.vectors)
    [cached] = tmp_path.glob("template-index-*.npy")
    cached.write_bytes(b"not a numpy file")
    third = CountingEncoder()
    c = retrieval.TemplateRetriever(templates, encoder=third)
    assert third.calls == 1
    np.testing.assert_array_equal(a.vectors, c.vectors)
