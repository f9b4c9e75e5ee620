"""The user cache stays bounded and has one folder rule (stase.core.paths).

Found on the development machine: twelve 87 MB ONNX exports of the sentence encoder in
~/.cache/stase after one day, one per reinstall (the export was named by the weights' mtime), and
the room responses ignored ``$STASE_CACHE``.  Now the export is named by the weights' content,
and every cache writer keeps only the newest few entries of its family.
"""
from __future__ import annotations

import os
import time

import numpy as np
import pytest

from stase.core.paths import mark_used, prune_cache, user_cache_dir


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("STASE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _aged(path, seconds_ago):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    t = time.time() - seconds_ago
    os.utime(path, (t, t))
    return path


def test_prune_keeps_the_newest_of_a_family_and_the_entry_just_written(tmp_path):
    files = [_aged(tmp_path / f"fam-{i}.npy", seconds_ago=100 - i) for i in range(6)]   # fam-5 newest
    other = _aged(tmp_path / "other-0.npy", seconds_ago=1000)
    spare = files[0]   # the oldest by mtime, but it is the one just written
    deleted = prune_cache(tmp_path, "fam-*.npy", keep=2, spare=spare)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fam-0.npy", "fam-5.npy", "other-0.npy"]
    assert len(deleted) == 4 and other.exists()
    mark_used(files[5])
    assert prune_cache(tmp_path, "fam-*.npy", keep=1) == [spare]   # fam-5 is the newest now


def test_prune_of_a_missing_folder_or_a_read_only_entry_never_raises(tmp_path):
    assert prune_cache(tmp_path / "nowhere", "*.npy", keep=0) == []


def test_the_encoder_export_is_named_by_content_not_by_install_time(tmp_path, cache):
    from stase.agent.retrieval import _onnx_target
    model = tmp_path / "model"
    model.mkdir()
    weights = model / "model.safetensors"
    weights.write_bytes(np.random.default_rng(0).bytes(3 << 20))
    first = _onnx_target(model)
    os.utime(weights, (1, 1))                               # a reinstall: same bytes, new mtime
    assert _onnx_target(model) == first
    assert first.parent == cache
    weights.write_bytes(np.random.default_rng(1).bytes(3 << 20))   # other weights, same size
    assert _onnx_target(model) != first


def test_embedding_files_stay_bounded_per_kind(cache):
    from stase.agent.retrieval import KEEP_EMBEDDINGS, cached_embeddings

    class Encoder:
        def encode(self, texts, **_):
            return np.ones((len(texts), 4), np.float32)

    for i in range(KEEP_EMBEDDINGS + 5):
        cached_embeddings([f"text {i}"], Encoder(), "template-index", cache_id="enc")
    cached_embeddings(["router"], Encoder(), "chat-router", cache_id="enc")
    assert len(list(cache.glob("template-index-*.npy"))) == KEEP_EMBEDDINGS
    assert len(list(cache.glob("chat-router-*.npy"))) == 1


def test_room_responses_follow_stase_cache_and_stay_bounded_per_family(cache):
    from stase.dsp.rooms import KEEP_PER_ROOM, _write_cached, cache_dir
    assert cache_dir() == user_cache_dir("brir") == cache / "brir"
    brir = np.zeros((2, 8), np.float32)
    for key in range(5):
        _write_cached(cache / "brir" / f"church-48000-{key:016x}.npy", brir)
        _write_cached(cache / "brir" / f"church-sectors-48000-{key:016x}.npy", brir)
    _write_cached(cache / "brir" / "church-32000-0000000000000000.npy", brir)   # another rate: its own family
    names = sorted(p.name for p in (cache / "brir").iterdir())
    assert len([n for n in names if n.startswith("church-48000-")]) == KEEP_PER_ROOM
    assert len([n for n in names if n.startswith("church-sectors-48000-")]) == KEEP_PER_ROOM
    assert "church-48000-0000000000000004.npy" in names and "church-32000-0000000000000000.npy" in names
