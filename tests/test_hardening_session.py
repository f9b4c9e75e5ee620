"""Issue 14, the daemon's session file: defects 3, 4, 12, 17, 18 and 19.

#3  a folder (or FIFO) named by ``--session`` is refused at start and left alone;
#4  a change is applied only once it is saved; a failed save says so (reply, ``status``), and a
    session path that can never be saved is refused at start;
#12 no session file content stops the daemon (nesting, huge numbers, wrong types, bad UTF-8,
    oversize), and one bad entry loses that entry, not the session;
#17 temp files left by a kill -9 during a save are removed at start;
#18 saved files get ``0666 & ~umask`` (an existing file keeps its mode); a symlink stays a link;
#19 a second daemon on the same session file is refused.

Tests run as root on some machines, where ``chmod 0555`` does not stop writes: the read-only
cases that need it are skipped there, and each has a variant that fails the same way for root
(a folder replaced by a file, a simulated full disk).
"""
from __future__ import annotations

import errno
import json
import os
import shutil
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import stase.bridge.session as session_module
from stase.bridge.client import request
from stase.bridge.daemon import Daemon, DaemonConfig
from stase.bridge.session import Session
from stase.bridge.session_journal import journal_pattern, saved_state
from stase.core.errors import InputError, StaseError
from stase.core.plan import Plan

ROOT = Path(__file__).resolve().parents[1]
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
needs_non_root = pytest.mark.skipif(IS_ROOT, reason="root writes into a chmod-0555 folder anyway; "
                                                    "the root-proof variant of this test covers it")


def _config(path: Path, **extra) -> DaemonConfig:
    return DaemonConfig(port=0, session=str(path), durable_saves=False, **extra)


def _full_disk_for(monkeypatch, target: Path) -> None:
    """Make every rename onto ``target`` and every write to its journal fail as on a full disk
    (other renames and writes work)."""
    real_replace, real_write = os.replace, os.write
    target = Path(os.path.realpath(target))
    journals = journal_pattern(target)

    def replace(src, dst, *args, **kwargs):
        if Path(dst) == target:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_replace(src, dst, *args, **kwargs)

    def write(fd, data):
        try:
            name = Path(os.readlink(f"/proc/self/fd/{fd}")).name
        except OSError:
            name = ""
        if journals.fullmatch(name):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)
    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(os, "write", write)


# ------------------------------------------------------------------ #3 folder / FIFO as session
def test_a_folder_as_session_is_refused_and_left_unchanged(tmp_path):
    project = tmp_path / "MySong"
    project.mkdir()
    (project / "song.rpp").write_text("<REAPER_PROJECT>")
    with pytest.raises(InputError, match="is a folder"):
        Session(project)
    with pytest.raises(InputError, match="is a folder"):
        Daemon(_config(project))
    assert project.is_dir() and (project / "song.rpp").read_text() == "<REAPER_PROJECT>"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["MySong"]  # nothing moved aside


def test_stase_serve_on_a_folder_exits_2_with_a_message(tmp_path):
    project = tmp_path / "MySong"
    project.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "stase.cli", "serve", "--port", "0",
                             "--session", str(project)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"stase serve started on a folder: {out} {err}")
    assert proc.returncode == 2, err
    assert "stase serve: error:" in err and str(project) in err and "Traceback" not in err
    assert project.is_dir() and not list(tmp_path.glob("MySong.corrupt-*"))


def test_a_fifo_as_session_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "s.json"
    os.mkfifo(fifo)
    outcome: list = []

    def start():
        try:
            Session(fifo)
            outcome.append("started")
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            outcome.append(exc)
    thread = threading.Thread(target=start, daemon=True)
    thread.start()
    thread.join(5.0)
    if thread.is_alive():  # blocked opening the FIFO for reading: release it, then fail
        with open(fifo, "w"):
            pass
        thread.join(5.0)
        pytest.fail("Session blocked reading a FIFO")
    assert isinstance(outcome[0], InputError) and "not a regular file" in str(outcome[0])
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)  # still there, not moved aside


# ------------------------------------------------------------------ #4 durable before applied
def test_a_failed_save_applies_nothing_and_says_so(tmp_path, monkeypatch):
    path = tmp_path / "s.json"
    s = Session(path, durable=False)
    s.set_tracks([{"name": "Vox"}, {"name": "Sax"}])
    s.set_source("Sax", azimuth_deg=30.0)
    before_state, before_file, before_saved = s.to_dict(), path.read_text(), saved_state(path)
    assert s.writable and s.last_save_error is None
    _full_disk_for(monkeypatch, path)
    changes = [lambda: s.set_source("Sax", azimuth_deg=-60.0, gain_db=-6.0),
               lambda: s.set_source("Vox", distance_m=5.0),  # a source the plan does not hold yet
               lambda: s.set_tracks([{"name": "Vox"}, {"name": "Sax"}, {"name": "Bass"}]),
               lambda: s.select("Vox"),
               lambda: s.set_plan(Plan(room="jazz_club")),
               lambda: s.set_stems_dir(str(tmp_path))]
    for change in changes:
        with pytest.raises(StaseError, match="NOT applied") as caught:
            change()
        assert "No space left" in str(caught.value)
        assert s.to_dict() == before_state          # the live state is the saved one
    assert path.read_text() == before_file and saved_state(path) == before_saved
    assert s.writable is False and "No space left" in s.last_save_error
    assert s.plan.source("Sax").azimuth_deg == 30.0
    monkeypatch.undo()
    s.set_source("Sax", distance_m=3.0)  # the disk has room again: the next change is saved alone
    saved = saved_state(path)
    assert s.writable is True
    sax = [x for x in saved["plan"]["sources"] if x["track"] == "Sax"][0]
    assert (sax["azimuth_deg"], sax["gain_db"], sax["distance_m"]) == (30.0, 0.0, 3.0)
    assert [t["name"] for t in saved["tracks"]] == ["Vox", "Sax"] and saved["selected"] is None
    assert not any(x["track"] == "Vox" for x in saved["plan"]["sources"])


def test_a_folder_replaced_by_a_file_fails_saves_even_for_root(tmp_path):
    folder = tmp_path / "proj"
    s = Session(folder / "s.json", durable=False)
    s.set_tracks([{"name": "Vox"}])
    shutil.rmtree(folder)  # with the session's journal
    folder.write_text("not a folder")  # every write under proj/ now fails, whoever we are
    with pytest.raises(StaseError, match="NOT applied"):
        s.set_source("Vox", azimuth_deg=45.0)
    assert "Vox" not in [p.track for p in s.plan.sources] and not s.writable


class _RecordingMonitor:
    def __init__(self):
        self.moves = []

    def set_source(self, track, **fields):
        self.moves.append((track, fields))

    def set_reverb_db(self, reverb_db):
        self.moves.append(("<scene>", {"reverb_db": reverb_db}))

    def status(self):
        return {"running": True, "xruns": 0, "cpu_load": 0.0}

    def stop(self):
        pass


def test_daemon_reply_and_status_report_an_unsaved_change(tmp_path, monkeypatch):
    path = tmp_path / "s.json"
    d = Daemon(_config(path))
    d.start()
    try:
        assert request("tracks", {"tracks": ["Vox", "Sax"]}, port=d.port)["ok"]
        status = request("status", {}, port=d.port)["result"]
        assert status["session_writable"] is True and status["last_save_error"] is None
        d.monitor = monitor = _RecordingMonitor()
        _full_disk_for(monkeypatch, path)
        r = request("set_source", {"track": "Sax", "azimuth_deg": 40.0}, port=d.port)
        assert r["ok"] is False and "NOT applied" in r["error"] and "No space left" in r["error"]
        r = request("apply", {"plan": {"room": "dry_studio", "sources": [{"track": "Vox", "azimuth_deg": 9}]}},
                    port=d.port)
        assert r["ok"] is False and "NOT applied" in r["error"]
        assert monitor.moves == []  # neither the monitor nor the DAW heard of the change
        placed = {x["track"]: x["placed"] for x in request("sources", {}, port=d.port)["result"]["sources"]}
        assert placed == {"Vox": False, "Sax": False}
        status = request("status", {}, port=d.port)["result"]
        assert status["session_writable"] is False and "No space left" in status["last_save_error"]
    finally:
        d.stop()


def test_a_path_under_a_regular_file_is_refused_at_start(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(InputError, match="notes.txt"):
        Session(tmp_path / "notes.txt" / "s.json")


@needs_non_root
def test_a_read_only_folder_is_refused_at_start(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(InputError, match="could never be saved"):
            Daemon(_config(folder / "s.json"))
    finally:
        folder.chmod(0o755)


@needs_non_root
def test_a_corrupt_file_in_a_read_only_folder_is_a_clear_start_up_error(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    (folder / "s.json").write_text("{not json")
    folder.chmod(0o555)
    try:
        with pytest.raises(InputError, match="s.json"):
            Session(folder / "s.json")
    finally:
        folder.chmod(0o755)
    assert (folder / "s.json").read_text() == "{not json"


def test_a_corrupt_file_that_cannot_be_moved_aside_is_a_clear_error_even_for_root(tmp_path, monkeypatch):
    path = tmp_path / "s.json"
    path.write_text("{not json")
    real_replace = os.replace

    def replace(src, dst, *args, **kwargs):
        if Path(src) == Path(os.path.realpath(path)):
            raise OSError(errno.EACCES, os.strerror(errno.EACCES))
        return real_replace(src, dst, *args, **kwargs)
    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(InputError, match="cannot be moved aside") as caught:
        Session(path)
    assert str(path) in str(caught.value)
    assert path.read_text() == "{not json"


# ------------------------------------------------------------------ #12 no content stops the daemon
CORRUPT_FILES = {
    "deeply nested": b"[" * 200_000 + b"]" * 200_000,
    "nested object": b'{"plan": ' + b'{"a": ' * 100_000 + b"1" + b"}" * 100_001,
    "invalid utf-8": b'{"tracks": [{"name": "\xff\xfe"}]}',
    "not an object": b"[1, 2, 3]",
    "null": b"null",
    "empty": b"",
    "truncated": b'{"version": 1, "tracks": [{"na',
}


@pytest.mark.parametrize("kind", sorted(CORRUPT_FILES))
def test_a_corrupt_session_file_is_moved_aside_and_the_daemon_starts(tmp_path, kind):
    path = tmp_path / "s.json"
    path.write_bytes(CORRUPT_FILES[kind])
    d = Daemon(_config(path))
    try:
        assert not d.session.restored and d.session.track_names() == []
        assert d.verb_status({})["session_writable"] is True
    finally:
        d.stop()
    aside = list(tmp_path.glob("s.json.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == CORRUPT_FILES[kind]
    assert not path.exists()


def test_an_oversized_session_file_is_moved_aside_unread(tmp_path, monkeypatch):
    monkeypatch.setattr(session_module, "MAX_SESSION_BYTES", 1000)
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"tracks": [{"name": f"T{i}"} for i in range(200)]}))
    s = Session(path)
    assert not s.restored and len(list(tmp_path.glob("s.json.corrupt-*"))) == 1


BAD_ENTRIES = {
    "400-digit gain": '{"track": "Bad", "gain_db": 1' + "0" * 400 + "}",
    "gain beyond bounds": '{"track": "Bad", "gain_db": 300}',
    "infinite azimuth": '{"track": "Bad", "azimuth_deg": 1e400}',
    "string distance": '{"track": "Bad", "distance_m": "far"}',
    "overlong track name": json.dumps({"track": "B" * 300}),
    "not an object": "5",
}


@pytest.mark.parametrize("kind", sorted(BAD_ENTRIES))
def test_one_bad_entry_loses_that_entry_not_the_session(tmp_path, kind, caplog):
    path = tmp_path / "s.json"
    text = ('{"version": 1, "tracks": [{"name": "Vox", "daw_id": 1}, {"name": "Sax", "daw_id": 2}], '
            '"selected": "sax", "stems_dir": null, "plan": {"room": "jazz_club", "sources": ['
            '{"track": "Vox", "azimuth_deg": 10, "gain_db": -3}, ' + BAD_ENTRIES[kind] + "]}}")
    path.write_text(text)
    with caplog.at_level("WARNING", logger="stase.session"):
        d = Daemon(_config(path))
    try:
        s = d.session
        assert s.restored and s.plan.room == "jazz_club" and s.selected == "Sax"
        assert [(p.track, p.azimuth_deg, p.gain_db) for p in s.plan.sources] == [("Vox", 10.0, -3.0)]
        assert s.track_names() == ["Vox", "Sax"]
        assert "dropped" in caplog.text  # the log says what was dropped
    finally:
        d.stop()
    kept = list(tmp_path.glob("s.json.corrupt-*"))
    assert len(kept) == 1 and kept[0].read_text() == text  # the original is kept


def test_wrong_types_anywhere_are_dropped_and_the_rest_restored(tmp_path):
    path = tmp_path / "s.json"
    path.write_text(json.dumps({
        "version": "one",
        "tracks": [{"name": "Vox", "daw_id": 10 ** 400}, {"name": {"x": 1}}, 7, {"name": "  "},
                   {"name": "K" * 200}, {"name": "Bass", "daw_id": True}, {"name": "Keys", "daw_id": 3}],
        "selected": ["Vox"], "stems_dir": {"path": "/x"},
        "plan": {"room": 5, "reverb_engine": "fdn", "sources": "all"}}))
    s = Session(path)
    assert s.restored
    assert s.tracks == [{"name": "Vox", "daw_id": None}, {"name": "Bass", "daw_id": None},
                        {"name": "Keys", "daw_id": 3}]
    assert s.selected is None and s.stems_dir is None
    assert (s.plan.room, s.plan.reverb_engine, s.plan.sources) == ("dry_studio", "fdn", [])
    s.set_source("Keys", azimuth_deg=5.0)  # and it saves cleanly
    assert json.loads(path.read_text())["tracks"][2] == {"name": "Keys", "daw_id": 3}


@pytest.mark.parametrize("tracks,plan", [(5, None), (None, 5), ({"Vox": 1}, []), ([], {"sources": [None]})])
def test_wrong_top_level_types_never_stop_the_start(tmp_path, tracks, plan):
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"tracks": tracks, "plan": plan}))
    s = Session(path)
    assert s.track_names() == [] and s.plan.sources == []


# ------------------------------------------------------------------ #17 stale temp files
def test_temp_files_left_by_a_killed_save_are_removed_at_start(tmp_path):
    path = tmp_path / "s.json"
    path.write_text('{"tracks": [{"name": "Vox"}]}')
    ours = [".s.json.0123456789ab.tmp", ".s.json.k2j3_h4g.tmp"]  # this version's and mkstemp's names
    others = [".other.json.0123456789ab.tmp", "notes.tmp", ".s.json.backup", "s.json.tmp"]
    for name in ours + others:
        (tmp_path / name).write_text("{")
    d = Daemon(_config(path))
    try:
        assert d.session.track_names() == ["Vox"]
    finally:
        d.stop()
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted(others + ["s.json"])


# ------------------------------------------------------------------ #18 modes and symlinks
@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def test_a_new_session_file_gets_the_usual_mode(tmp_path, umask_022):
    s = Session(tmp_path / "s.json")
    s.set_tracks([{"name": "Vox"}])
    assert stat.S_IMODE(os.stat(tmp_path / "s.json").st_mode) == 0o644
    os.chmod(tmp_path / "s.json", 0o640)  # a mode the user chose is kept
    s.set_source("Vox", azimuth_deg=3.0)
    assert stat.S_IMODE(os.stat(tmp_path / "s.json").st_mode) == 0o640


def test_a_plan_file_gets_the_usual_mode(tmp_path, umask_022):
    from stase.core.plan import save_plan
    save_plan(Plan(), tmp_path / "plan.json")
    assert stat.S_IMODE(os.stat(tmp_path / "plan.json").st_mode) == 0o644


def test_a_symlinked_session_file_updates_its_target(tmp_path):
    real_dir = tmp_path / "store"
    real_dir.mkdir()
    target = real_dir / "real-session.json"
    target.write_text('{"tracks": [{"name": "Vox"}]}')
    link_dir = tmp_path / "project"
    link_dir.mkdir()
    link = link_dir / "stase-session.json"
    link.symlink_to(target)
    d = Daemon(_config(link))
    try:
        d.session.set_source("Vox", azimuth_deg=25.0)
    finally:
        d.stop()
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert json.loads(target.read_text())["plan"]["sources"][0]["azimuth_deg"] == 25.0
    assert sorted(p.name for p in link_dir.iterdir()) == ["stase-session.json"]
    assert sorted(p.name for p in real_dir.iterdir()) == ["real-session.json"]  # no temp, no lock left


# ------------------------------------------------------------------ #19 one daemon per session
def test_a_second_daemon_on_the_same_session_file_is_refused(tmp_path):
    path = tmp_path / "s.json"
    first = Daemon(_config(path))
    try:
        with pytest.raises(InputError, match="in use by another stase daemon") as caught:
            Daemon(_config(path))
        assert str(path) in str(caught.value) and f"pid {os.getpid()}" in str(caught.value)
        with pytest.raises(InputError, match="in use"):
            Session(path, exclusive=True)
        first.session.set_tracks([{"name": "Vox"}])  # the first one is unaffected
    finally:
        first.stop()
    assert not (tmp_path / "s.json.lock").exists()  # released and removed on stop
    again = Daemon(_config(path))  # free again
    try:
        assert again.session.track_names() == ["Vox"]
    finally:
        again.stop()


def test_the_lock_is_held_by_a_live_process_only(tmp_path):
    path = tmp_path / "s.json"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from stase.bridge.session import Session; "
         f"s = Session({str(path)!r}, exclusive=True); print('locked', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(InputError, match=f"pid {holder.pid}"):
            Session(path, exclusive=True)
    finally:
        holder.kill()
        holder.wait(10)
    s = Session(path, exclusive=True)  # a killed holder's lock is gone with it
    s.close()


@pytest.mark.parametrize("daw, forwarded", [("none", True), ("reaper", False)])
def test_the_monitor_does_not_count_a_daw_fader_twice(tmp_path, daw, forwarded):
    """With a DAW adapter, gain_db moves the DAW's fader and the monitor hears the track after
    that fader: it must render the track at 0 dB, not apply gain_db a second time."""
    d = Daemon(_config(tmp_path / "s.json", daw=daw, daw_port=9, daw_listen_port=0))
    d.start()
    try:
        d.session.set_tracks([{"name": "Vox"}])
        d.monitor = monitor = _RecordingMonitor()
        d.set_source("Vox", gain_db=-6.0, azimuth_deg=30.0)
        sent = [fields for track, fields in monitor.moves if track == "Vox"]
        assert sent and sent[-1]["azimuth_deg"] == 30.0
        assert ("gain_db" in sent[-1]) is forwarded
    finally:
        d.monitor = None
        d.stop()
