"""Issue 20, its last two goals: the daemon's long jobs in their own process, and the engine's
priority (stase.bridge.job_process, stase.bridge.rt_child.raise_engine_priority).

* ``listen`` (listen-back, one track, a question, a binaural file) and ``advise`` through a real
  daemon give the same reply with ``jobs: process`` as with ``jobs: inline``, and the same error
  text for a bad stems folder.
* A ``set_source`` is answered while a real advise job runs, and that job's compute is the job
  process's: the daemon's own CPU time meanwhile is a small part of the worker's.
* A worker killed (SIGKILL) mid-job fails that job with a clear error; the next job starts a
  fresh worker and works; the daemon keeps answering.
* ``stop()`` (also in the middle of a job) leaves no job process; a daemon killed with SIGKILL
  leaves none either (the worker's watchdog).
* The engine child reports the priority it got (``engine_priority``) and its threads run at it;
  where SCHED_FIFO is refused it falls back to nice -10, then to nothing, never failing.
"""
from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from daemon_helpers import ask, running_daemon  # tests/ is on sys.path in pytest
from stase.bridge.daemon import DaemonConfig
from stase.bridge.job_process import JOB_NICENESS
from stase.bridge.osc_transport import build_message, parse_datagram
from stase.core.audio_io import write_audio
from stase.core.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "onnx_models" / "spatial_ast.onnx"
RATE = 32_000   # the listener's own rate: no resampling
TRACKS = ("Flute", "Bass", "Keys")
PLAN = {"room": "dry_studio", "sources": [
    {"track": "Flute", "role": "flute", "azimuth_deg": 70.0, "distance_m": 1.5},
    {"track": "Bass", "role": "bass", "azimuth_deg": -70.0, "distance_m": 2.0},
    {"track": "Keys", "role": "piano", "azimuth_deg": 10.0, "distance_m": 3.0}]}


def _bursts(seed: int, seconds: float) -> np.ndarray:
    """Broadband noise bursts (4 Hz gating): material the listener localises easily."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    envelope = (np.sin(2 * np.pi * 4 * np.arange(n) / RATE) > -0.2).astype(np.float32)
    return rng.standard_normal(n).astype(np.float32) * 0.1 * envelope


def _write_stems(folder: Path, seconds: float, tracks=TRACKS) -> Path:
    for i, name in enumerate(tracks):
        write_audio(folder / f"{name}.wav", _bursts(i + 1, seconds), RATE)
    return folder


@pytest.fixture(scope="module")
def material(tmp_path_factory):
    """Short stems, long stems and a binaural file, in one folder the daemons may read."""
    if not MODEL.is_file():
        pytest.fail(f"the shipped listener model {MODEL} is missing")
    root = tmp_path_factory.mktemp("material")
    _write_stems(root / "stems", 3.0)
    _write_stems(root / "long", 240.0)
    left = _bursts(9, 2.0)
    write_audio(root / "binaural.wav", np.stack([left, 0.3 * np.roll(left, 20)]), RATE)
    (root / "empty").mkdir()
    return root


def _prepared(d, material: Path) -> None:
    assert ask(d, "tracks", tracks=list(TRACKS))["ok"]
    assert ask(d, "apply", plan=PLAN)["ok"]


def _replies_of(d, material: Path) -> list[dict]:
    """The final replies of every listen way, advise, and a failing advise, in order."""
    out = [ask(d, "advise", stems_dir=str(material / "stems")),
           ask(d, "listen"),
           ask(d, "listen", track="Bass"),
           ask(d, "listen", question="Is the flute left of the bass?"),
           ask(d, "listen", path=str(material / "binaural.wav")),
           ask(d, "advise", stems_dir=str(material / "stems"), reference_dir=str(material / "stems")),
           ask(d, "advise", stems_dir=str(material / "empty"))]
    for r in out:
        r.pop("id", None)
        r.pop("job", None)
    return out


def _children_alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _cpu_s(pid: int) -> float:
    """User + system CPU time of a process so far (s), from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class _JobSocket:
    """A long job sent from its own socket, its replies read as they come."""

    def __init__(self, port: int, verb: str, params: dict):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.connect(("127.0.0.1", port))
        self.sock.send(build_message(f"/stase/{verb}", [json.dumps(dict(params, id="job"))]))
        self.replies: list[dict] = []

    def read(self, timeout_s: float) -> list[dict]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not select.select([self.sock], [], [], 0.05)[0]:
                if timeout_s == 0:
                    break
                continue
            self.replies.append(json.loads(parse_datagram(self.sock.recv(65535))[0][1][0]))
            if self.replies[-1]["status"] in ("done", "error"):
                break
        return self.replies

    def wait_for(self, predicate, timeout_s: float) -> dict:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for r in self.read(0.2):
                if predicate(r):
                    return r
        raise AssertionError(f"no such reply in {timeout_s} s: {self.replies}")

    @property
    def finished(self) -> bool:
        return any(r["status"] in ("done", "error") for r in self.read(0))

    def close(self):
        self.sock.close()


# ------------------------------------------------------------------ the same replies
def test_listen_and_advise_in_the_job_process_reply_what_inline_replies(tmp_path, material):
    with running_daemon(tmp_path / "inline", jobs="inline", allow_dirs=[str(material)]) as d:
        _prepared(d, material)
        inline = _replies_of(d, material)
        assert ask(d, "status")["result"]["jobs"] == {"mode": "inline"}
    with running_daemon(tmp_path / "process", jobs="process", allow_dirs=[str(material)]) as d:
        _prepared(d, material)
        assert ask(d, "status")["result"]["jobs"]["pid"] is None   # started by the first job
        in_process = _replies_of(d, material)
        jobs = ask(d, "status")["result"]["jobs"]
        remembered = d.session.stems_dir
    assert [r["ok"] for r in inline] == [True] * 6 + [False]
    assert "no audio files" in inline[-1]["error"] or "audio" in inline[-1]["error"]
    assert in_process == inline
    assert remembered == str(material / "stems")   # a folder that loaded is remembered
    assert jobs["mode"] == "process" and jobs["alive"] and jobs["pid"] != os.getpid()
    assert jobs["starts"] == 1 and jobs["deaths"] == 0   # one worker for every job
    assert jobs["niceness"] == min(19, os.nice(0) + JOB_NICENESS)


def test_jobs_is_a_daemon_setting_and_a_serve_flag():
    import argparse
    from stase.cli import serve
    assert DaemonConfig().jobs == "process"
    with pytest.raises(InputError, match="jobs must be one of"):
        DaemonConfig(jobs="thread")
    parser = argparse.ArgumentParser()
    serve.add_arguments(parser)
    assert serve.config_from_args(parser.parse_args(["--jobs", "inline"])).jobs == "inline"
    assert serve.config_from_args(parser.parse_args([])).jobs == "process"


# ------------------------------------------------------------------ replies while a job runs
def test_set_source_is_answered_while_an_advise_job_computes_in_the_job_process(tmp_path, material):
    with running_daemon(tmp_path, jobs="process", allow_dirs=[str(material)]) as d:
        _prepared(d, material)
        job = _JobSocket(d.port, "advise", {"stems_dir": str(material / "long")})
        try:
            job.wait_for(lambda r: r["status"] == "progress" and "analysing" in r["message"], 120)
            worker = d.job_process.pid
            daemon_cpu, worker_cpu = _cpu_s(os.getpid()), _cpu_s(worker)
            answers = [ask(d, "set_source", track="Flute", azimuth_deg=float(a)) for a in (10, 20, 30)]
            running = not job.finished and d.dispatcher.current_job is not None
            done = job.wait_for(lambda r: r["status"] in ("done", "error"), 600)
            daemon_used, worker_used = _cpu_s(os.getpid()) - daemon_cpu, _cpu_s(worker) - worker_cpu
        finally:
            job.close()
    assert all(a["ok"] and a["status"] == "done" for a in answers), answers
    assert running, "the job ended before the replies came: make its stems longer"
    assert done["ok"], done
    assert d.session.plan.source("Flute").azimuth_deg == 30.0
    # the analysis was the worker's: this process meanwhile only answered and waited
    assert worker_used > 0 and daemon_used < 0.5 * worker_used, (daemon_used, worker_used)


# ------------------------------------------------------------------ a worker that dies
def test_a_worker_killed_mid_job_fails_that_job_clearly_and_the_next_job_works(tmp_path, material):
    with running_daemon(tmp_path, jobs="process", allow_dirs=[str(material)]) as d:
        _prepared(d, material)
        job = _JobSocket(d.port, "advise", {"stems_dir": str(material / "long")})
        try:
            job.wait_for(lambda r: r["status"] == "progress" and "analysing" in r["message"], 120)
            first = d.job_process.pid
            os.kill(first, signal.SIGKILL)
            failed = job.wait_for(lambda r: r["status"] in ("done", "error"), 60)
        finally:
            job.close()
        assert ask(d, "set_source", track="Bass", azimuth_deg=-20.0)["ok"]   # the daemon goes on
        after = ask(d, "advise", stems_dir=str(material / "stems"))
        jobs = ask(d, "status")["result"]["jobs"]
    assert failed["ok"] is False and "internal error" not in failed["error"]
    assert failed["error"].startswith("advise: the job process died while running it")
    assert "SIGKILL" in failed["error"] and "next job starts a fresh job process" in failed["error"]
    assert after["ok"], after
    assert jobs["pid"] != first and jobs["starts"] == 2 and jobs["deaths"] == 1
    assert not _children_alive(first)


# ------------------------------------------------------------------ no orphans
def test_stop_leaves_no_job_process_even_in_the_middle_of_a_job(tmp_path, material):
    with running_daemon(tmp_path / "a", jobs="process", allow_dirs=[str(material)]) as d:
        _prepared(d, material)
        assert ask(d, "advise", stems_dir=str(material / "stems"))["ok"]
        idle = d.job_process.pid
        assert _children_alive(idle)
    assert not _children_alive(idle) and d.job_process is None
    with running_daemon(tmp_path / "b", jobs="process", allow_dirs=[str(material)]) as d:
        _prepared(d, material)
        job = _JobSocket(d.port, "advise", {"stems_dir": str(material / "long")})
        try:
            job.wait_for(lambda r: r["status"] == "progress" and "analysing" in r["message"], 120)
            busy = d.job_process.pid
            stopped_at = time.monotonic()
            d.stop()
            stop_s = time.monotonic() - stopped_at
        finally:
            job.close()
    assert not _children_alive(busy)
    assert stop_s < 30.0   # not the job's whole length (a bound on hanging, not a timing test)


def test_a_daemon_killed_with_sigkill_leaves_no_job_process(tmp_path, material):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    serve = subprocess.Popen([sys.executable, "-m", "stase.cli", "serve", "--port", "0",
                              "--session", str(tmp_path / "s.json"), "--allow-dir", str(material),
                              "--conductor-model", "none"],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        line = serve.stdout.readline()
        assert "ready on udp" in line, line
        port = int(line.split(":")[-1].split()[0])
        from stase.bridge.client import request
        assert request("tracks", {"tracks": list(TRACKS)}, port=port)["ok"]
        assert request("apply", {"plan": PLAN}, port=port)["ok"]
        assert request("advise", {"stems_dir": str(material / "stems")}, port=port,
                       job_timeout_s=300)["ok"]
        worker = request("status", {}, port=port)["result"]["jobs"]["pid"]
        assert _children_alive(worker)
        serve.kill()
        serve.wait(10)
        deadline = time.monotonic() + 15
        while _children_alive(worker) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _children_alive(worker), "the job process outlived its daemon"
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait(10)


_NUMPY_HOST = """
import json, os, sys
import numpy as np   # a host program that imported NumPy: OpenBLAS's threads exist before any job
from stase.bridge.job_process import JobProcess
if __name__ == "__main__":
    worker = JobProcess()
    try:
        try:
            worker.run("nope", {}, lambda *a: None)   # starts the worker; the job itself fails
        except ValueError:
            pass
        tids = sorted(int(t) for t in os.listdir(f"/proc/{worker.pid}/task"))
        print(json.dumps({"own": os.getpriority(os.PRIO_PROCESS, 0), "status": worker.status()["niceness"],
                          "threads": [os.getpriority(os.PRIO_PROCESS, t) for t in tids]}))
    finally:
        worker.stop()
"""


def test_every_thread_of_the_worker_is_nicer_even_when_the_host_imported_numpy(tmp_path):
    """The spawn start re-imports the host's main module in the worker: when that imports NumPy,
    OpenBLAS's worker pool runs before the worker's own code, and ``os.nice`` (the calling thread
    only) left it at the daemon's priority, where it did the jobs' matrix products beside the
    OSC client (4.3 s of CPU in 20 s of ``bench.bridge --under-load``)."""
    host = tmp_path / "host.py"
    host.write_text(_NUMPY_HOST)
    out = subprocess.run([sys.executable, str(host)], capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, PYTHONPATH=str(ROOT), OPENBLAS_NUM_THREADS="2"))
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    expected = min(19, result["own"] + JOB_NICENESS)
    assert len(result["threads"]) > 2, result   # the main thread, OpenBLAS's, the watchdog
    assert set(result["threads"]) == {expected} and result["status"] == expected, result


# ------------------------------------------------------------------ the engine's priority
def _thread_policies(pid: int) -> list[tuple[int, int, int]]:
    """(policy, FIFO priority, niceness) of every thread of ``pid``."""
    rows = []
    for tid in sorted(int(t) for t in os.listdir(f"/proc/{pid}/task")):
        try:
            rows.append((os.sched_getscheduler(tid), os.sched_getparam(tid).sched_priority,
                         os.getpriority(os.PRIO_PROCESS, tid)))
        except OSError:  # a thread that ended meanwhile
            continue
    return rows


def test_the_engine_reports_its_priority_and_its_threads_run_at_it():
    from stase.bridge.rt_child import ENGINE_PROCESS_NICENESS, ENGINE_PROCESS_PRIORITY
    from stase.bridge.rt_engine import EngineMonitor
    placements = {"A": {"azimuth_deg": 30.0}}
    engine = EngineMonitor(["A"], placements, 48000, 256, room="dry_studio", audio="clock").start()
    try:
        status = engine.status()
        threads = _thread_policies(engine.engine_pid)
    finally:
        engine.stop()
    priority = status["engine_priority"]
    assert priority in (f"SCHED_FIFO {ENGINE_PROCESS_PRIORITY}", f"nice {ENGINE_PROCESS_NICENESS}", "normal")
    assert threads
    if priority.startswith("SCHED_FIFO"):
        assert all(p == os.SCHED_FIFO and prio >= ENGINE_PROCESS_PRIORITY for p, prio, _ in threads), threads
    elif priority.startswith("nice"):
        assert all(p == os.SCHED_FIFO or nice == ENGINE_PROCESS_NICENESS for p, _, nice in threads), threads
    else:
        assert all(p == os.SCHED_OTHER for p, _, _ in threads), threads


_FALLBACK = """
import os, json, threading, time
from stase.bridge import rt_child
refuse = os.environ["REFUSE"].split(",")
def refused(*a, **k):
    raise PermissionError(1, "Operation not permitted")
if "fifo" in refuse:
    real = os.sched_setscheduler
    os.sched_setscheduler = lambda tid, policy, param: (refused() if policy == os.SCHED_FIFO
                                                        else real(tid, policy, param))
if "nice" in refuse:
    os.setpriority = refused
threading.Thread(target=time.sleep, args=(2,), daemon=True).start()   # a second thread
got = rt_child.raise_engine_priority()
tids = [int(t) for t in os.listdir("/proc/self/task")]
print(json.dumps({"got": got, "policies": [os.sched_getscheduler(t) for t in tids],
                  "nice": [os.getpriority(os.PRIO_PROCESS, t) for t in tids]}))
"""


@pytest.mark.parametrize("refuse, expected", [("fifo", "nice -10"), ("fifo,nice", "normal")])
def test_engine_priority_falls_back_to_nice_then_to_nothing_without_failing(refuse, expected):
    """In a child process (this test's own threads keep their scheduling)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), REFUSE=refuse)
    out = subprocess.run([sys.executable, "-c", _FALLBACK], capture_output=True, text=True,
                         env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["got"] == expected
    assert set(result["policies"]) == {os.SCHED_OTHER}
    base = os.nice(0)
    assert set(result["nice"]) == ({-10} if expected == "nice -10" else {base}), result


# ------------------------------------------------------------------ the worker's protocol
def test_worker_errors_come_back_as_the_same_type_and_text_and_jobs_never_mix(material):
    """An InputError and a ValueError raised in the worker are raised here with the text the
    inline computation gives; a ``notify`` that fails is raised after its job ended, and the
    next job on the same worker gets its own result, not a leftover of the failed one."""
    from stase.bridge.job_process import JobProcess, run_job
    empty = {"stems_dir": str(material / "empty"), "reference_dir": None, "plan": PLAN}
    with pytest.raises(InputError) as inline:
        run_job("advise", empty, lambda *a: None, lambda: None)
    worker = JobProcess()
    try:
        with pytest.raises(InputError) as remote:
            worker.run("advise", empty, lambda *a: None)
        assert str(remote.value) == str(inline.value)
        with pytest.raises(ValueError, match="unknown job kind 'nope'"):
            worker.run("nope", {}, lambda *a: None)

        def failing(event, *args):
            if event == "stems_loaded":
                raise OSError("the session file cannot be written")

        short = dict(empty, stems_dir=str(material / "stems"))
        with pytest.raises(OSError, match="cannot be written"):
            worker.run("advise", short, failing)
        events = []
        result = worker.run("listen_file", {"path": str(material / "binaural.wav")},
                            lambda *a: events.append(a))
        assert set(result) == {"heard"} and events == [("progress", 0.5, "listening")]
        assert worker.status()["starts"] == 1 and worker.status()["niceness"] == min(19, os.nice(0) + JOB_NICENESS)
        # every thread of the worker, not only the one that asked: OpenBLAS's pool starts at
        # the imports, before the worker's own code, and onnxruntime's threads come later
        niceness = [nice for _, _, nice in _thread_policies(worker.pid)]
        assert len(niceness) > 1 and set(niceness) == {min(19, os.nice(0) + JOB_NICENESS)}, niceness
        pid = worker.pid
    finally:
        worker.stop()
    assert not _children_alive(pid) and worker.pid is None
