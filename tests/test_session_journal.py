"""The session journal (issue 20): a source change is one appended line, and a restart restores
exactly what the live session held, whatever mix of journal lines and snapshots made it.

The reference for "restores exactly" is the live session's own state (``Session.to_dict``) at
the moment the writer stopped; a killed writer is a real ``kill -9`` of another process.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from stase.bridge import session_journal
from stase.bridge.session import Session
from stase.bridge.session_journal import COMPACT_AFTER, journal_pattern, saved_state
from stase.core.plan import Plan

ROOT = Path(__file__).resolve().parents[1]


def _journals(folder: Path, target: Path) -> list[Path]:
    pattern = journal_pattern(target)
    return sorted(p for p in folder.iterdir() if pattern.fullmatch(p.name))


def _wait_for(condition, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def test_a_source_change_is_one_journal_line_not_a_new_snapshot(tmp_path):
    path = tmp_path / "s.json"
    s = Session(path, durable=False, exclusive=True)
    try:
        s.set_tracks([{"name": "Vox"}, {"name": "Sax"}])
        snapshot_inode = os.stat(path).st_ino
        s.set_source("Sax", azimuth_deg=30.0)
        s.set_source("sax", gain_db=-4.5)  # the one name rule: the plan's spelling is journalled
        assert os.stat(path).st_ino == snapshot_inode  # the snapshot was not rewritten
        [journal] = _journals(tmp_path, path)
        lines = [json.loads(line) for line in journal.read_text().splitlines()]
        first = json.loads(path.read_text())["seq"]
        assert [line["seq"] for line in lines] == [first + 1, first + 2]
        assert [line["source"]["track"] for line in lines] == ["Sax", "Sax"]
        saved = saved_state(path)  # what a restart restores, before its checks
        sax = [x for x in saved["plan"]["sources"] if x["track"] == "Sax"][0]
        assert (sax["azimuth_deg"], sax["gain_db"]) == (30.0, -4.5)
    finally:
        s.close()


def test_restart_restores_journal_and_snapshots_exactly(tmp_path):
    """A random mix of every mutation; a second session on the file (the first never closed,
    as after a crash) restores the live state to the last digit, and writes it as one snapshot."""
    path = tmp_path / "s.json"
    rng = np.random.default_rng(7)
    names = ["Vox", "Sax", "Gtr L", "Bass"]
    live = Session(path, durable=False)
    live.set_tracks([{"name": n} for n in names])
    for i in range(300):
        kind = rng.integers(0, 20)
        if kind == 0:
            live.select(str(rng.choice(names)))
        elif kind == 1:
            live.set_plan(Plan(room=str(rng.choice(["jazz_club", "dry_studio"])), sources=list(live.plan.sources)))
        else:
            live.set_source(str(rng.choice(names)), azimuth_deg=float(rng.uniform(-180, 180)),
                            distance_m=float(rng.uniform(0.5, 9.0)), gain_db=float(rng.uniform(-12, 6)))
    expected = live.to_dict()
    restored = Session(path, durable=False)
    try:
        assert restored.to_dict() == expected
        assert restored.seq == live.seq
        # the restart wrote a snapshot of it: the file alone now holds everything
        data = json.loads(path.read_text())
        assert {k: data[k] for k in expected} == expected
    finally:
        restored.close()


_WRITER = r"""
import sys
from stase.bridge.session import Session
s = Session(sys.argv[1], durable=False, exclusive=True)
s.set_tracks([{"name": "Vox"}, {"name": "Sax"}])
for i in range(40):
    s.set_source("Sax", azimuth_deg=float(i))
print("saved", flush=True)
sys.stdin.readline()
"""


def test_a_killed_daemon_loses_no_journalled_change(tmp_path):
    path = tmp_path / "s.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    writer = subprocess.Popen([sys.executable, "-c", _WRITER, str(path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert writer.stdout.readline().strip() == "saved"  # set_source returned 40 times
        writer.send_signal(signal.SIGKILL)
        writer.wait(10)
    finally:
        if writer.poll() is None:
            writer.kill()
    s = Session(path, durable=False, exclusive=True)  # the killed holder's lock went with it
    try:
        assert s.plan.source("Sax").azimuth_deg == 39.0
        assert len(_journals(tmp_path, path)) == 1  # the restart's own, empty journal
    finally:
        s.close()


def test_a_torn_last_line_ends_the_replay_and_is_kept(tmp_path, caplog):
    path = tmp_path / "s.json"
    live = Session(path, durable=False)
    live.set_tracks([{"name": "Vox"}])
    for azimuth in (10.0, 20.0, 30.0):
        live.set_source("Vox", azimuth_deg=azimuth)
    [journal] = _journals(tmp_path, path)
    raw = journal.read_bytes()
    journal.write_bytes(raw[:-25])  # a power cut in the middle of the last line
    restored = Session(path, durable=False)
    try:
        assert restored.plan.source("Vox").azimuth_deg == 20.0  # the two whole lines
        assert "journal line 3" in caplog.text and "torn" in caplog.text
        kept = [p for p in tmp_path.iterdir() if p.name.endswith(".journal") and ".corrupt-" in p.name]
        assert len(kept) == 1 and kept[0].read_bytes() == raw[:-25]
    finally:
        restored.close()


def test_lines_out_of_order_are_not_applied(tmp_path):
    path = tmp_path / "s.json"
    live = Session(path, durable=False)
    live.set_tracks([{"name": "Vox"}])
    live.set_source("Vox", azimuth_deg=10.0)
    live.set_source("Vox", azimuth_deg=20.0)
    [journal] = _journals(tmp_path, path)
    first, second = journal.read_text().splitlines()
    journal.write_text(second + "\n" + first + "\n")  # seq gap at line 1
    data = json.loads(path.read_text())
    replayed, applied, problems = session_journal.replay(path, data, journal.read_bytes())
    assert applied == 0 and "line 1" in problems[0] and "out of order" in problems[0]
    assert replayed is data


def test_a_long_journal_becomes_a_snapshot_on_the_background_thread(tmp_path):
    path = tmp_path / "s.json"
    s = Session(path, durable=False, exclusive=True)
    try:
        s.set_tracks([{"name": "Vox"}])
        [first_journal] = _journals(tmp_path, path)
        for i in range(COMPACT_AFTER):
            s.set_source("Vox", azimuth_deg=float(i % 90))
        # the background thread wrote a snapshot holding every change and removed the old journal
        assert _wait_for(lambda: json.loads(path.read_text())["seq"] == s.seq)
        assert _wait_for(lambda: _journals(tmp_path, path) != [first_journal] and not first_journal.exists())
        assert json.loads(path.read_text())["plan"] == s.to_dict()["plan"]
    finally:
        s.close()


def test_a_clean_close_leaves_one_complete_file(tmp_path):
    path = tmp_path / "s.json"
    s = Session(path, durable=True, exclusive=True)
    s.set_tracks([{"name": "Vox"}])
    s.set_source("Vox", azimuth_deg=-45.0)
    expected = s.to_dict()
    s.close()
    data = json.loads(path.read_text())
    assert {k: data[k] for k in expected} == expected
    assert _wait_for(lambda: _journals(tmp_path, path) == [])


def test_stale_journals_are_removed_at_start(tmp_path):
    path = tmp_path / "s.json"
    s = Session(path, durable=False, exclusive=True)
    s.set_tracks([{"name": "Vox"}])
    s.close()
    stale = tmp_path / f".s.json.journal-{'ab' * 6}"
    stale.write_text('{"seq": 99, "source": {"track": "Vox", "azimuth_deg": 80.0}}\n')
    other = tmp_path / ".notes.json.journal-abababababab"  # another file's: not ours to touch
    other.write_text("x")
    s = Session(path, durable=False, exclusive=True)
    try:
        assert not stale.exists() and other.exists()
        assert s.placement("Vox").azimuth_deg == 0.0  # a journal no snapshot names is never replayed
    finally:
        s.close()


def test_a_moved_journal_falls_back_to_a_snapshot(tmp_path):
    """A journal that is no longer where the snapshot names it (its folder renamed, the file
    removed) takes no more lines: the change goes into a whole snapshot at the session path."""
    path = tmp_path / "s.json"
    s = Session(path, durable=False)
    try:
        s.set_tracks([{"name": "Vox"}])
        [journal] = _journals(tmp_path, path)
        journal.unlink()
        s.set_source("Vox", azimuth_deg=12.0)
        assert [x["azimuth_deg"] for x in json.loads(path.read_text())["plan"]["sources"]] == [12.0]
        assert Session(path, durable=False).placement("Vox").azimuth_deg == 12.0
    finally:
        s.close()


@pytest.mark.parametrize("bad", [b"\xff\xfe not utf-8\n", b"[1, 2]\n", b'{"seq": true, "source": {}}\n'])
def test_junk_in_a_journal_never_stops_a_start(tmp_path, bad):
    path = tmp_path / "s.json"
    live = Session(path, durable=False)
    live.set_tracks([{"name": "Vox"}])
    live.set_source("Vox", azimuth_deg=5.0)
    [journal] = _journals(tmp_path, path)
    with open(journal, "ab") as fh:
        fh.write(bad)
    restored = Session(path, durable=False)
    try:
        assert restored.placement("Vox").azimuth_deg == 5.0
    finally:
        restored.close()
