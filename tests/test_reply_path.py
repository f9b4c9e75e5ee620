"""Issue 20: what a ``set_source`` reply and an engine block may not wait for.

* **The replaced session file is not freed on the request thread.**  Renaming the new session
  file over the old one drops the old inode's last link; when nothing else holds it, ext4
  frees its blocks inside the rename, which took 3-9 ms at p90-p99 on the 2-core test machine
  (0.04 ms for the same rename on tmpfs).  The session holds the current file open, so the
  rename only unlinks it, and its background thread closes the old file (the free happens
  there).  Measured in docs/daemon.md; here the behaviour: which thread closes the last
  reference to the replaced inode.
* **The engine process freezes its start-up heap** (``gc.freeze``, about 170 000 objects), so
  a full collection, which holds the GIL the audio callback needs, never walks it again; its
  collections (and those that start while a block renders) are counted in ``status.audio``.
"""
from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest

from stase.bridge.session import Session


def _inode(path) -> int:
    return os.stat(path).st_ino


def _wait_for(condition, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


@pytest.fixture
def closes(monkeypatch):
    """Every ``os.close`` of a regular file: ``(thread name, inode, links left)``."""
    seen: list[tuple[str, int, int]] = []
    real_close = os.close

    def close(fd):
        try:
            info = os.fstat(fd)
            seen.append((threading.current_thread().name, info.st_ino, info.st_nlink))
        except OSError:
            pass
        return real_close(fd)
    monkeypatch.setattr(os, "close", close)
    return seen


@pytest.mark.parametrize("durable", [True, False])
def test_set_source_does_not_free_the_replaced_file_on_the_request_thread(tmp_path, closes, durable):
    path = tmp_path / "s.json"
    session = Session(path, durable=durable, exclusive=True)
    try:
        session.set_tracks([{"name": "Vox"}, {"name": "Sax"}])
        replaced = []
        for azimuth in (10.0, 20.0, 30.0, 40.0):
            replaced.append(_inode(path))
            session.set_source("Sax", azimuth_deg=azimuth)
            assert _inode(path) != replaced[-1]  # a new file took its place (atomic rename)
        request_thread = threading.current_thread().name
        # the last reference to each replaced file (links 0: already unlinked) is closed on
        # the session's background thread, never on the thread that made the change
        assert _wait_for(lambda: all(any(ino == r and links == 0 for _, ino, links in closes)
                                     for r in replaced))
        last_closes = {ino: name for name, ino, links in closes if links == 0 and ino in replaced}
        assert set(last_closes) == set(replaced)
        assert request_thread not in last_closes.values(), last_closes
        assert set(last_closes.values()) == {"stase-session-sync"}
        assert '"azimuth_deg": 40.0' in path.read_text()  # on disk before set_source returned
    finally:
        session.close()


def test_session_close_releases_the_held_file(tmp_path):
    path = tmp_path / "s.json"
    session = Session(path, durable=False, exclusive=True)
    session.set_tracks([{"name": "Vox"}])
    session.set_source("Vox", azimuth_deg=15.0)
    held = [int(fd) for fd in os.listdir("/proc/self/fd")
            if os.path.realpath(f"/proc/self/fd/{fd}") == os.path.realpath(path)]
    assert held  # the current file is held open between saves
    session.close()
    assert _wait_for(lambda: not any(os.path.realpath(f"/proc/self/fd/{fd}") == os.path.realpath(path)
                                     for fd in os.listdir("/proc/self/fd")))
    session.set_source("Vox", azimuth_deg=25.0)  # saves still work after close (documented)
    assert '"azimuth_deg": 25.0' in path.read_text()


# ------------------------------------------------------------------ the engine's garbage collector
@pytest.fixture
def clocked_engine():
    """An engine process on its simulated audio clock (a block every 5.33 ms), 6 tracks."""
    from stase.bridge.rt_engine import EngineMonitor
    tracks = ["Vox", "Gtr", "Bass", "Drums", "Keys", "Sax"]
    engine = EngineMonitor(tracks, sample_rate=48000, block_size=256, room=None, audio="clock",
                           auto_restart=False).start()
    try:
        yield engine, tracks
    finally:
        engine.stop()


def test_the_engine_freezes_its_start_up_heap_and_counts_collections(clocked_engine):
    engine, tracks = clocked_engine
    start = engine.status()
    # what the start built (imports, renderer) is frozen: a collection never walks it again
    assert start["gc_frozen_objects"] > 10_000
    rng = np.random.default_rng(20)
    for i in range(600):
        engine.set_source(tracks[i % len(tracks)], azimuth_deg=float(rng.uniform(-180, 180)),
                          mode=("pan", "itd_ild")[i % 2])
        if i % 50 == 49:
            time.sleep(0.01)
    assert _wait_for(lambda: engine.status()["requests_pending"] == 0, 10.0)
    time.sleep(0.1)
    status = engine.status()
    assert status["blocks"] - start["blocks"] > 20  # blocks rendered all along
    # counted, for status.audio and the bench (none expected: requests leave no garbage)
    assert 0 <= status["gc_collections_during_blocks"] <= status["gc_collections"]
    assert status["gc_frozen_objects"] == start["gc_frozen_objects"]


def test_the_engine_applies_requests_between_blocks_not_during_one(clocked_engine):
    """A request applied while a block renders takes the GIL from the audio callback between
    its numba kernels (each hand-back waits up to the switch interval): the slow blocks of a
    bench run waited 11 times in one block.  The control thread waits for the block to end."""
    engine, tracks = clocked_engine
    rng = np.random.default_rng(7)
    start = engine.status()
    for i in range(800):
        engine.set_source(tracks[i % len(tracks)], azimuth_deg=float(rng.uniform(-180, 180)))
        time.sleep(float(rng.uniform(0.0, 0.004)))  # at every phase of the 5.33 ms blocks
    assert _wait_for(lambda: engine.status()["requests_pending"] == 0, 10.0)
    status = engine.status()
    assert status["commands_applied"] - start["commands_applied"] >= 700
    assert status["blocks"] - start["blocks"] > 300
    # a block may still start between the wait's end and the request's application (the clock
    # does not wait for the control thread): rare, not never; the old code applied 53 of 800
    # mid-block
    assert status["requests_applied_during_blocks"] <= 8
