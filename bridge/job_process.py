"""The daemon's long jobs (``listen``, ``advise``) computed in one persistent worker process.

The listener (onnxruntime + numba renders), the advisor (numpy/scipy) and the stem loading hold
the GIL for seconds at a time; run on a thread of the daemon they make every OSC reply
(``set_source``) wait behind them.  Here they run in a child process (``multiprocessing``,
spawn context) started on the first job and kept for the next ones (the listener's ONNX model
loads once per worker, not per job), at a lower priority (``nice`` +:data:`JOB_NICENESS`), so
the daemon's OSC thread and the real-time engine come first on a busy machine.

What crosses the pipe is plain data: the job's kind and its parameters (folders and files the
daemon has already checked against its allowed folders, the plan as :meth:`Plan.to_dict`), then
the worker's events (``progress``, ``stems_loaded``) and its result, the same dict the daemon's
verb returned when it computed in its own process.  A failure comes back as the same exception
type and text (an ``InputError`` stays an ``InputError``; a ``StaseError``'s cause is kept as
text for the error reply).  A worker that dies (killed, crashed) fails the job it was running
with :class:`JobProcessDied` and is replaced by a fresh one on the next job.  The worker exits
when its pipe closes, when told to stop, or when the daemon's process is gone (a watchdog
thread; no orphan survives a ``kill -9`` of the daemon for more than a second).

Holds
-----
run_job                the computation of one job (both ways: inline and in the worker)
needs                  a first-use import of a heavy part becomes a StaseError naming it
make_listener          the Spatial-AST listener (loaded once by whoever calls it)
JobProcess             the daemon's side: start, run a job, stop, status
JobProcessDied         the job's error when its worker died under it
worker_main            the worker's entry point (the spawn target)
"""
from __future__ import annotations

import contextlib
import logging
import os
import pickle
import signal
import threading
import time
from typing import Any, Callable

from stase.bridge.scheduling import lower_every_thread
from stase.core.errors import StaseError

log = logging.getLogger("stase.jobs")

#: How much nicer than the daemon the worker runs (``os.nice``): the OSC thread and the
#: real-time engine first, the jobs with what is left of the CPUs.
JOB_NICENESS = 10
#: Seconds a fresh worker may take to import and report ready (a cold disk cache, 2 cores).
START_TIMEOUT_S = 120.0
#: How often (s) the daemon's side looks whether the worker still lives while it waits, and
#: the worker whether the daemon does.
POLL_S = 0.1
WATCHDOG_S = 1.0
#: The job kinds :func:`run_job` knows.
JOB_KINDS = ("advise", "listen_file", "answer_plan", "listen_back")

Notify = Callable[..., None]   # notify(event, *args): ("progress", fraction, message), ("stems_loaded", key)


@contextlib.contextmanager
def needs(what: str):
    """Around a first-use import of a heavy part (the conductor, the listener, ...): an import that
    fails (a dependency of that part is not installed) becomes a StaseError naming the part."""
    try:
        yield
    except ImportError as exc:
        raise StaseError(f"{what} is not available in this installation ({exc})") from exc


def make_listener() -> Any:
    """A Spatial-AST listener (:class:`stase.agent.listener.Listener`, the shipped model)."""
    with needs("the listener (Spatial-AST)"):
        from stase.agent.listener import Listener
    return Listener()


# ====================================================================== the computation
def run_job(kind: str, payload: dict[str, Any], notify: Notify, listener: Callable[[], Any]) -> dict:
    """Compute one job from plain data; the daemon's verbs return what this returns.

    Parameters
    ----------
    kind : one of :data:`JOB_KINDS`.
    payload : ``advise``: ``stems_dir``, ``reference_dir`` (or None), ``plan`` (a plan dict);
        ``listen_file``: ``path``; ``answer_plan``: ``question``, ``stems_dir``, ``plan``;
        ``listen_back``: ``stems_dir``, ``plan``.  Paths already checked by the daemon.
    notify : ``notify("progress", fraction, message)``; ``notify("stems_loaded", key)`` once
        the folder under ``key`` (``"stems_dir"``) loaded (the daemon remembers it then).
    listener : returns the listener to use (loaded once by its owner).
    """
    from stase.core.audio_io import load_stems
    from stase.core.plan import Plan
    if kind == "listen_file":
        notify("progress", 0.5, "listening")
        return {"heard": listener().listen_file(payload["path"])}
    if kind not in JOB_KINDS:
        raise ValueError(f"unknown job kind {kind!r}; known: {list(JOB_KINDS)}")
    stems, rate = load_stems(payload["stems_dir"], downmix=True)
    notify("stems_loaded", "stems_dir")
    plan = Plan.from_dict(payload["plan"])
    if kind == "advise":
        with needs("the gain advisor"):
            from stase.agent.advisor import advise
        reference = (load_stems(payload["reference_dir"], downmix=True)[0]
                     if payload.get("reference_dir") else None)
        notify("progress", 0.3, f"analysing {len(stems)} stems")
        return advise(stems, rate, reference=reference, plan=plan)
    if kind == "answer_plan":
        notify("progress", 0.2, "rendering the loudest stretch of the plan and listening")
        return {"question": payload["question"],
                **listener().answer_plan(payload["question"], stems, plan, rate)}
    notify("progress", 0.2, f"rendering {len(plan.sources)} track(s) alone and listening")
    return listener().listen_back(stems, plan, rate)


def end_process(process: Any, timeout_s: float) -> None:
    """Wait up to ``timeout_s`` for ``process`` (a ``multiprocessing`` process) to end, then
    terminate it, then kill it, waiting ``timeout_s`` after each (the job worker and the engine
    child end the same way)."""
    process.join(timeout_s)
    if process.is_alive():
        process.terminate()
        process.join(timeout_s)
    if process.is_alive():
        process.kill()
        process.join(timeout_s)


# ====================================================================== errors across the pipe
class JobProcessDied(StaseError):
    """The worker process died while it ran a job (that job is lost; the next one starts a
    fresh worker)."""


class _RemoteCause(Exception):
    """A worker-side exception's cause, kept as its ``repr`` (what an error reply shows)."""

    def __init__(self, text: str):
        super().__init__(text)
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _error_record(exc: BaseException) -> dict[str, Any]:
    """What the daemon needs to raise ``exc`` again: the exception pickled when it survives a
    round trip, else its type name and text; its cause as ``repr``."""
    try:
        pickled: bytes | None = pickle.dumps(exc)
        pickle.loads(pickled)
    except Exception:  # noqa: BLE001 - an exception whose arguments do not pickle
        pickled = None
    return {"pickled": pickled, "type": type(exc).__name__, "text": str(exc),
            "cause": repr(exc.__cause__) if exc.__cause__ is not None else None,
            "reply_fields": getattr(exc, "reply_fields", None)}


def _raise_record(record: dict[str, Any]) -> None:
    """Raise the worker's exception in the daemon (same type and text, cause as text)."""
    exc: BaseException | None = None
    if record.get("pickled") is not None:
        with contextlib.suppress(Exception):
            exc = pickle.loads(record["pickled"])
    if not isinstance(exc, BaseException):
        exc = StaseError(f"{record['type']}: {record['text']}")
    if isinstance(record.get("reply_fields"), dict):
        exc.reply_fields = record["reply_fields"]
    if record.get("cause"):
        raise exc from _RemoteCause(record["cause"])
    raise exc


# ====================================================================== the worker
def worker_main(conn: Any, parent_pid: int) -> None:
    """The worker: lower its priority, report ready, run jobs until told to stop, its pipe
    closes or the daemon's process is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the daemon's: it stops us cleanly
    # every thread, OpenBLAS's pool (started by the imports) too; onnxruntime's and numba's,
    # started later by this thread, inherit it
    niceness = lower_every_thread(min(19, os.nice(0) + JOB_NICENESS))

    def watch_parent() -> None:
        while True:
            time.sleep(WATCHDOG_S)
            if os.getppid() != parent_pid:
                os._exit(0)  # the daemon died without stopping us

    threading.Thread(target=watch_parent, name="stase-jobs-watchdog", daemon=True).start()
    loaded: list[Any] = []

    def listener() -> Any:
        if not loaded:
            loaded.append(make_listener())
        return loaded[0]

    conn.send(("ready", 0, {"pid": os.getpid(), "niceness": niceness}))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        number, kind, payload = message

        def notify(event: str, *args: Any, _number=number) -> None:
            conn.send(("event", _number, (event, args)))

        try:
            result = run_job(kind, payload, notify, listener)
        except BaseException as exc:  # noqa: BLE001 - every failure goes back to the daemon
            try:
                conn.send(("error", number, _error_record(exc)))
            except (OSError, EOFError):
                return
            continue
        try:
            conn.send(("done", number, result))
        except (OSError, EOFError):
            return


# ====================================================================== the daemon's side
class JobProcess:
    """The daemon's handle on its job worker: :meth:`run` a job (starting the worker first when
    there is none, or the last one died), :meth:`stop` it, :meth:`status`.

    One job at a time (the dispatcher runs them one at a time anyway); :meth:`stop` may come
    from another thread while a job runs: it ends the worker, and that job fails saying so.
    """

    def __init__(self) -> None:
        self._job_lock = threading.Lock()      # one job at a time
        self._state_lock = threading.Lock()    # the handles below
        self._process: Any = None
        self._conn: Any = None
        self._stopping = False
        self.starts = 0
        self.deaths = 0
        self.last_exit_code: int | None = None
        self.startup_s: float | None = None
        self.niceness: int | None = None
        self._numbers = 0   # every job's number: a message of an earlier job is never taken for this one

    @property
    def pid(self) -> int | None:
        process = self._process
        return process.pid if process is not None else None

    @property
    def alive(self) -> bool:
        process = self._process
        return process is not None and process.is_alive()

    def start(self) -> "JobProcess":
        """Start the worker when none is running (waits until it is ready)."""
        import multiprocessing
        with self._state_lock:
            self._stopping = False
            if self._process is not None and self._process.is_alive():
                return self
            if self._process is not None:  # died between two jobs
                self.deaths += 1
                self.last_exit_code = self._process.exitcode
            self._close_handles()
            ctx = multiprocessing.get_context("spawn")
            ours, theirs = ctx.Pipe(duplex=True)
            started = time.perf_counter()
            process = ctx.Process(target=worker_main, args=(theirs, os.getpid()),
                                  name="stase-jobs", daemon=True)
            process.start()
            theirs.close()
            self._process, self._conn = process, ours
            self.starts += 1
        deadline = time.monotonic() + START_TIMEOUT_S
        while not ours.poll(POLL_S):
            if not process.is_alive() or time.monotonic() > deadline:
                code = process.exitcode
                self.stop()
                raise StaseError(f"the job process did not start ({_exit_text(code)})")
        try:
            _, _, info = ours.recv()
        except (EOFError, OSError) as exc:
            self.stop()
            raise StaseError("the job process did not start (its pipe closed)") from exc
        self.startup_s = round(time.perf_counter() - started, 3)
        self.niceness = info.get("niceness")
        log.info("job process %d ready in %.2f s (nice %s)", process.pid, self.startup_s, self.niceness)
        return self

    def run(self, kind: str, payload: dict[str, Any], notify: Notify, what: str = "the job") -> dict:
        """Run one job in the worker; its events reach ``notify``; its result or its exception
        comes back.  ``what`` names the job in the error when the worker dies under it.  An
        exception raised by ``notify`` is raised once the job has ended (the pipe is left with
        no message of this job)."""
        with self._job_lock:
            self.start()
            with self._state_lock:
                process, conn = self._process, self._conn
            self._numbers += 1
            number = self._numbers
            try:
                conn.send((number, kind, payload))
            except (OSError, EOFError, AttributeError) as exc:
                raise self._died(process, what) from exc
            notify_error: BaseException | None = None
            while True:
                try:
                    ready = conn.poll(POLL_S)
                    message = conn.recv() if ready else None
                except (EOFError, OSError) as exc:
                    raise self._died(process, what) from exc
                if message is None:
                    if not process.is_alive() and not _poll_quietly(conn):
                        raise self._died(process, what)
                    continue
                tag, of_job, body = message
                if of_job != number:
                    continue
                if tag == "event":
                    try:
                        notify(body[0], *body[1])
                    except Exception as exc:  # noqa: BLE001 - raised when the job has ended
                        notify_error = notify_error or exc
                    continue
                if notify_error is not None:
                    raise notify_error
                if tag == "done":
                    return body
                _raise_record(body)

    def _died(self, process: Any, what: str) -> JobProcessDied:
        """The error for a job whose worker is gone; the handles are cleared for a fresh one."""
        process.join(1.0)
        code = process.exitcode
        with self._state_lock:
            if self._process is process:
                self._close_handles()
            stopping = self._stopping
        self.deaths += 1
        self.last_exit_code = code
        if stopping:
            return JobProcessDied(f"{what}: stopped (the daemon is shutting down)")
        log.error("the job process died while running %s (%s)", what, _exit_text(code))
        return JobProcessDied(f"{what}: the job process died while running it ({_exit_text(code)}); "
                              "nothing of this job was kept; the next job starts a fresh job process")

    def stop(self, timeout_s: float = 2.0) -> None:
        """End the worker (asked first, then terminated, then killed); a running job fails."""
        with self._state_lock:
            self._stopping = True
            process, conn = self._process, self._conn
        if process is None:
            return
        try:
            if self._job_lock.locked():  # a job is running: it would only end on its own
                process.terminate()
            else:
                with contextlib.suppress(OSError, EOFError, ValueError):
                    conn.send(None)
            end_process(process, timeout_s)
            exit_code = process.exitcode
        except ValueError:
            # "process object is closed": the running job's thread saw the worker end (it was
            # terminated above) and closed it in _died, which recorded its exit code
            return
        with self._state_lock:
            self.last_exit_code = exit_code
            if self._process is process and not self._job_lock.locked():
                self._close_handles()

    def _close_handles(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(OSError):
                self._conn.close()
        if self._process is not None:
            with contextlib.suppress(ValueError, AssertionError):
                if not self._process.is_alive():
                    self._process.close()
        self._process, self._conn = None, None

    def status(self) -> dict[str, Any]:
        """``pid``, ``alive``, ``starts``, ``deaths``, ``startup_s``, ``niceness``, ``last_exit_code``."""
        return {"pid": self.pid, "alive": self.alive, "starts": self.starts, "deaths": self.deaths,
                "startup_s": self.startup_s, "niceness": self.niceness,
                "last_exit_code": self.last_exit_code}


def _poll_quietly(conn: Any) -> bool:
    """Whether ``conn`` still holds a message (a worker may send its last one, then exit)."""
    try:
        return bool(conn.poll(0))
    except (EOFError, OSError):
        return False


def _exit_text(code: int | None) -> str:
    """An exit code as words: ``killed by SIGKILL``, ``exit code 3``, ``still running``."""
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"
