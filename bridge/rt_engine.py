"""The live monitor's real-time engine in its own process (``DaemonConfig.engine = "process"``).

The daemon's OSC, jobs (listener, advisor, agent) and DAW threads share one GIL; an audio
callback in that process waits behind them.  Here a child process (``multiprocessing``, spawn
context) owns the :class:`stase.bridge.monitor.LiveMonitor` (its SceneRenderer, its command
queue, its stream) and the daemon keeps an :class:`EngineMonitor`, which has LiveMonitor's
public API::

    daemon thread --EngineMonitor.set_source: check_placement_fields, one REQUEST record-->
        shared ring (RequestRing: records, then the write index) --one byte on a pipe-->
    child control thread --LiveMonitor.set_source (command_move, COMMAND into its queue)-->
    child audio callback --apply_commands, render, limit, meter--> headphones
    child callback --counters, meters, latencies--> shared status block --> EngineMonitor.status

Shared memory: one ``multiprocessing.shared_memory`` segment per engine, named
``stase-rt-<pid>-<n>`` (so a test can look for leftovers in /dev/shm), made and unlinked by the
daemon's side only; the child attaches.  It holds the request ring (:class:`RequestRing`: a
header with the write index and the read index on separate cache lines, then ``capacity``
:data:`REQUEST` records), the status record (:data:`STATUS`, named fields), the
``apply_commands`` counts and the latency history (seconds, from the daemon-side push to the
start of the block that applied it; ``perf_counter`` is CLOCK_MONOTONIC, one clock for both
processes).  The ring is single-producer (EngineMonitor's control lock) single-consumer (the
child's control thread): the producer writes a record, then advances the write index; the
consumer applies records up to the write index, then advances the read index.  x86's stores are
not reordered with other stores (TSO), and CPython does not reorder them, so a record is whole
before its index is seen; a full ring refuses the request at once (``busy``), it never blocks.

Every request is checked on the daemon's side (:func:`stase.core.placement.check_placement_fields`,
:func:`stase.bridge.monitor.check_head_rotation`), so an error is answered at once and nothing
invalid crosses; the child applies it with the thread engine's own code (``LiveMonitor``), so
both engines render the same blocks for the same moves (``tests/test_rt_engine.py``).

The child dying (a bug, kill -9) does not take the daemon down: EngineMonitor keeps the current
scene (every accepted placement, the wetness, the head rotation), its status says
``engine_alive: false`` with the exit code, ``set_source`` still answers (False: not queued;
the daemon has saved it in the session), and a watchdog restarts the engine automatically with
the current scene (:data:`MAX_RESTARTS` within :data:`RESTART_WINDOW_S`, then it stays down and
says so; :meth:`EngineMonitor.restart` brings it back by hand).  ``on_restart`` is called after
an automatic restart (the daemon re-wires JACK there).

Audio sources for the child: ``"device"`` (a sounddevice stream, as LiveMonitor.start),
``"clock"`` (a simulated audio clock: silent input, one block per period; for benches on machines
without an audio server) and ``"manual"`` (blocks rendered on request, :meth:`EngineMonitor.render`:
tests comparing both engines offline).

Holds
-----
REQUEST, STATUS                 the shared records' dtypes (named fields)
RequestRing                     the SPSC ring of REQUEST records over shared arrays
SharedBlock                     one engine's shared segment and its named views
EngineMonitor                   the daemon's side (LiveMonitor's API)
engine_main                     the child's entry point
"""
from __future__ import annotations

import itertools
import logging
import math
import multiprocessing
import os
import select
import sys
import threading
import time
from multiprocessing import shared_memory
from typing import Any, Callable, Iterable

import numpy as np

from stase.core.conventions import LOCALISATION_MODES
from stase.core.errors import InputError, StaseError
from stase.core.names import track_key
from stase.core.placement import MAX_ROLE_CHARS, check_placement_fields

from stase.dsp.scene_kernel import COUNT_APPLIED, COUNT_LATENCIES

from stase.bridge.monitor import (LATENCY_HISTORY, LIMITER_GAIN, LIMITER_NONFINITE, LiveMonitor,
                                  check_head_rotation, check_monitor_setup, peak_dbfs, track_slots)

log = logging.getLogger("stase.rt_engine")

#: Request ops.
OP_SOURCE, OP_REVERB, OP_HEAD = 1, 2, 3
#: Which fields a request carries (bits of ``REQUEST["fields"]``).
HAS_AZIMUTH, HAS_ELEVATION, HAS_DISTANCE, HAS_GAIN, HAS_MODE, HAS_ROLE, HAS_REVERB, HAS_ROTATION = (
    1 << k for k in range(8))
_NUMBER_BITS = (("azimuth_deg", HAS_AZIMUTH), ("elevation_deg", HAS_ELEVATION),
                ("distance_m", HAS_DISTANCE), ("gain_db", HAS_GAIN), ("reverb_db", HAS_REVERB))
#: UTF-8 takes at most 4 bytes a character.
ROLE_BYTES = 4 * MAX_ROLE_CHARS
ERROR_BYTES = 512
_NO_NUMBERS = (math.nan,) * 5
_NO_ROTATION = np.zeros((3, 3))
_NO_ROLE = np.zeros(ROLE_BYTES, np.uint8)

#: One request from the daemon to the engine (fixed size; ``role_length`` -1: role None).
REQUEST = np.dtype([("op", np.int64), ("slot", np.int64), ("fields", np.int64), ("mode", np.int64),
                    ("azimuth_deg", np.float64), ("elevation_deg", np.float64),
                    ("distance_m", np.float64), ("gain_db", np.float64), ("reverb_db", np.float64),
                    ("rotation", np.float64, (3, 3)), ("enqueued_at_s", np.float64),
                    ("role_length", np.int64), ("role", np.uint8, (ROLE_BYTES,))], align=True)

#: Engine states (``STATUS["state"]``).
STATE_STARTING, STATE_READY, STATE_STOPPED = 0, 1, 2
#: The engine's status, written by the child, read by the daemon (``max_callback_s``, seconds;
#: ``output_peak``: held peak per ear, linear; ``heartbeat_s``: the child's last perf_counter).
STATUS = np.dtype([("state", np.int64), ("heartbeat_s", np.float64), ("blocks", np.int64),
                   ("xruns", np.int64), ("input_overflows", np.int64), ("output_underflows", np.int64),
                   ("irregular_blocks", np.int64), ("callback_errors", np.int64),
                   ("callback_overruns", np.int64), ("max_callback_s", np.float64),
                   ("limited_blocks", np.int64), ("limiter_gain", np.float64),
                   ("nonfinite_samples", np.int64), ("head_batches", np.int64),
                   ("head_batches_deferred", np.int64), ("queue_dropped", np.int64),
                   ("requests_applied", np.int64), ("request_errors", np.int64),
                   ("cpu_load", np.float64), ("output_peak", np.float64, (2,)),
                   ("running", np.int64), ("realtime", np.int64), ("error_length", np.int64),
                   ("error", np.uint8, (ERROR_BYTES,))], align=True)
#: The status fields the child's callback publishes after every block (the rest: its control thread).
_PER_BLOCK = ("blocks", "xruns", "input_overflows", "output_underflows", "irregular_blocks",
              "callback_errors", "callback_overruns", "limited_blocks")

#: Automatic restarts allowed within the window (a crash loop then stays down), and the pause
#: before each, seconds.
MAX_RESTARTS, RESTART_WINDOW_S, RESTART_PAUSE_S = 3, 60.0, 0.5
#: How long the daemon's side waits for the engine to report ready, seconds: the renderer loads
#: its HRTF set and room response (2-5 s here), but with a cold numba cache (the first start
#: after an install or a kernel change) the kernels compile first: 40-70 s on 2 busy cores.
START_TIMEOUT_S = 300.0
#: The child's GIL switch interval, seconds: its control thread never holds the callback back
#: for CPython's default 5 ms (a whole 256-frame block).
ENGINE_SWITCH_INTERVAL_S = 0.0005
#: SCHED_FIFO priorities the child asks for, where the OS allows it (root, or an ``rtprio``
#: limit as the ``audio`` group has): its control thread, so a request is handed on even when
#: the daemon's jobs fill every core (below JACK's own threads, -P 60 by default, whose client
#: callback it must never hold up), and the simulated clock, which stands for a device callback.
#: Refused: the normal scheduler, said in the status (``engine_realtime``).
ENGINE_CONTROL_PRIORITY, ENGINE_CLOCK_PRIORITY = 30, 50
AUDIO_SOURCES = ("device", "clock", "manual")

_segment_numbers = itertools.count()


def _try_realtime(priority: int) -> bool:
    """Ask SCHED_FIFO at ``priority`` for the calling thread; False where it is refused."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
        return True
    except (AttributeError, OSError):
        return False


def _align(n: int, to: int = 64) -> int:
    return (n + to - 1) // to * to


def _layout(capacity: int) -> dict[str, tuple[int, int]]:
    """``{part: (offset, bytes)}`` of one engine's segment (both processes compute it)."""
    parts = (("header", 16 * 8), ("records", capacity * REQUEST.itemsize), ("status", STATUS.itemsize),
             ("counts", 2 * 8), ("latencies", LATENCY_HISTORY * 8))
    layout, offset = {}, 0
    for name, size in parts:
        layout[name] = (offset, size)
        offset = _align(offset + size)
    layout["total"] = (0, offset)
    return layout


#: Header slots: the write index (producer) and the read index (consumer), a cache line apart.
_WRITTEN, _READ = 0, 8


class RequestRing:
    """Bounded lock-free single-producer / single-consumer ring of :data:`REQUEST` records over
    two shared arrays: ``header`` (int64, 16: the indices) and ``records``.

    The producer's :meth:`push` and the consumer's :meth:`pending` / :meth:`release` each run
    on one thread of one process at a time; the indices only grow (int64 does not wrap in a
    show's lifetime).
    """

    def __init__(self, header: np.ndarray, records: np.ndarray):
        self.header, self.records = header, records
        self.capacity = len(records)
        self.dropped = 0  # producer side: requests refused because the ring was full

    def __len__(self) -> int:
        return int(self.header[_WRITTEN]) - int(self.header[_READ])

    def push(self, fill: Callable[[np.void], None]) -> bool:
        """Fill the next free record in place with ``fill(record)``, then publish it; False (and
        ``dropped`` += 1) at once when the ring is full: the producer never waits."""
        written = int(self.header[_WRITTEN])
        if written - int(self.header[_READ]) >= self.capacity:
            self.dropped += 1
            return False
        fill(self.records[written % self.capacity])
        self.header[_WRITTEN] = written + 1  # publish only after the record is whole
        return True

    def push_values(self, values: tuple) -> bool:
        """:meth:`push` of a whole record given as a tuple of its fields, in the dtype's order
        (one assignment: a fifth of the time of filling it field by field)."""
        written = int(self.header[_WRITTEN])
        if written - int(self.header[_READ]) >= self.capacity:
            self.dropped += 1
            return False
        self.records[written % self.capacity] = values
        self.header[_WRITTEN] = written + 1  # publish only after the record is whole
        return True

    def pending(self) -> tuple[int, int]:
        """Consumer: ``(first, stop)``; the records are ``records[k % capacity]``."""
        return int(self.header[_READ]), int(self.header[_WRITTEN])

    def release(self, stop: int) -> None:
        """Consumer: the records before ``stop`` are applied; their slots may be reused."""
        self.header[_READ] = stop

    def reset(self) -> None:
        """Both indices to 0 (only while no consumer runs: before an engine starts)."""
        self.header[_READ] = 0
        self.header[_WRITTEN] = 0


class SharedBlock:
    """One engine's shared segment: ``create=True`` on the daemon's side (which alone unlinks
    it), ``create=False`` in the child.  Views: ``header``, ``records``, ``status`` (one
    :data:`STATUS` record), ``counts`` (int64, 2: ``scene_kernel.COUNT_*``), ``latencies``
    (float64, seconds) and ``field(name)``, a one-element view of one status field."""

    def __init__(self, capacity: int, name: str | None = None, create: bool = True):
        layout = _layout(capacity)
        if create:
            while True:  # a name left by an earlier process that had our pid is skipped
                name = f"stase-rt-{os.getpid()}-{next(_segment_numbers)}"
                try:
                    self.shm = shared_memory.SharedMemory(name=name, create=True, size=layout["total"][1])
                    break
                except FileExistsError:
                    continue
            self.shm.buf[:layout["total"][1]] = bytes(layout["total"][1])
        else:
            # attaching registers the name with the resource tracker the child shares with the
            # daemon (spawn passes it on); a set, so the daemon's unlink still unregisters it once
            self.shm = shared_memory.SharedMemory(name=name, create=False)
        self.name, self.capacity, self.created = self.shm.name, capacity, create
        buf = self.shm.buf

        def view(part: str, dtype: Any, count: int) -> np.ndarray:
            return np.ndarray((count,), dtype=dtype, buffer=buf, offset=layout[part][0])
        self.header = view("header", np.int64, 16)
        self.records = view("records", REQUEST, capacity)
        self.status = view("status", STATUS, 1)
        self.counts = view("counts", np.int64, 2)
        self.latencies = view("latencies", np.float64, LATENCY_HISTORY)
        self._fields = {key: self.status[key] for key in STATUS.names}
        self.ring = RequestRing(self.header, self.records)

    def field(self, name: str) -> np.ndarray:
        return self._fields[name]

    def error_text(self) -> str | None:
        n = int(self._fields["error_length"][0])
        return bytes(self._fields["error"][0, :n]).decode("utf-8", "replace") if n > 0 else None

    def set_error_text(self, text: str) -> None:
        data = text.encode("utf-8", "replace")[:ERROR_BYTES]
        self._fields["error"][0, :len(data)] = np.frombuffer(data, dtype=np.uint8)
        self._fields["error_length"][0] = len(data)

    def clear(self) -> None:
        """Zero the ring, the status and the latencies (before a new engine starts)."""
        self.ring.reset()
        self.status[0] = np.zeros((), STATUS)
        self.counts[:] = 0
        self.latencies[:] = 0.0

    def close(self) -> None:
        """Drop the views, close the mapping and (the creator) unlink the segment."""
        self._fields = {}
        self.header = self.records = self.status = self.counts = self.latencies = None  # type: ignore[assignment]
        self.ring = None  # type: ignore[assignment]
        try:
            self.shm.close()
        except BufferError:  # a caller still holds a view: the mapping goes with the process
            pass
        if self.created:
            try:
                self.shm.unlink()
            except FileNotFoundError:
                pass


# ====================================================================== the daemon's side
class EngineMonitor:
    """The live monitor with its real-time engine in a child process; LiveMonitor's API.

    Parameters
    ----------
    tracks, placements, sample_rate, block_size, room, reverb_engine, reverb_db, queue_capacity :
        as :class:`stase.bridge.monitor.LiveMonitor` (``queue_capacity``: the child's command
        queue and this side's request ring).
    audio : "device" (a sounddevice stream, opened by :meth:`start`), "clock" (a simulated
        audio clock in the child) or "manual" (:meth:`render`).
    auto_restart : restart a dead engine with the current scene (see the module docstring).
    """

    def __init__(self, tracks: Iterable[str], placements: dict[str, dict[str, Any]] | None = None,
                 sample_rate: int = 48000, block_size: int = 256, room: str | None = "dry_studio",
                 reverb_engine: str = "convolution", queue_capacity: int = 1024,
                 reverb_db: float = 0.0, audio: str = "device", auto_restart: bool = True):
        self.tracks = check_monitor_setup(tracks, sample_rate, block_size)
        self.sample_rate, self.block_size = int(sample_rate), int(block_size)
        if audio not in AUDIO_SOURCES:
            raise InputError(f"audio must be one of {AUDIO_SOURCES}, got {audio!r}")
        if isinstance(queue_capacity, bool) or not isinstance(queue_capacity, int) or queue_capacity < 1:
            raise InputError(f"queue_capacity must be a positive int, got {queue_capacity!r}")
        self.slots = track_slots(self.tracks)
        self.audio, self.auto_restart = audio, bool(auto_restart)
        self.room, self.reverb_engine = room, reverb_engine
        self.queue_capacity = queue_capacity
        # the current scene, as asked (world directions; accepted by the schema): a restarted
        # engine starts from it
        given = {track_key(k): v for k, v in (placements or {}).items()}
        self._scene: list[dict[str, Any]] = []
        for name in self.tracks:
            p = given.get(track_key(name), {})
            # None is a value only for role ("unknown"); elsewhere it means "the default"
            fields = {k: p[k] for k in ("azimuth_deg", "elevation_deg", "distance_m", "gain_db",
                                        "mode", "role", "reverb_db")
                      if k in p and (p[k] is not None or k == "role")}
            self._scene.append(check_placement_fields(fields, f"placements[{name!r}]."))
        self._reverb_db = check_placement_fields({"reverb_db": reverb_db})["reverb_db"]
        self._head_rotation: np.ndarray | None = None
        self._control = threading.Lock()   # one producer at a time; guards the scene and the process
        self._shared = SharedBlock(queue_capacity)
        self._process: Any = None
        self._conn: Any = None
        self._wake_write: int | None = None
        self._device: Any = None
        self._hostapi: str | None = None
        self._stopping = threading.Event()
        self._watchdog: threading.Thread | None = None
        self._ready = False
        self._info: dict[str, Any] = {}
        self.on_restart: Callable[["EngineMonitor"], None] | None = None
        self.restarts = 0
        self._restart_times: list[float] = []
        self.last_exit_code: int | None = None
        self.down_reason: str | None = None
        self.requests_while_down = 0
        self.head_batches = 0
        self.head_batches_deferred = 0
        self._busy_logged_at = -math.inf

    # ---------------------------------------------------------------- lifecycle
    def start(self, device: Any = None, hostapi: str | None = None) -> "EngineMonitor":
        """Start the engine process and wait until it renders (``device``/``hostapi`` as
        :meth:`LiveMonitor.start`); ``StaseError`` with the child's reason when it cannot (the
        shared segment is then released: like a LiveMonitor whose stream failed, this object is
        done).  As with any spawn-context ``multiprocessing`` program, a script that starts the
        engine guards its own code with ``if __name__ == "__main__"`` (the child imports it)."""
        if self._shared is None:
            raise StaseError("this engine was stopped; make a new EngineMonitor")
        self._device, self._hostapi = device, hostapi
        self._stopping.clear()
        try:
            self._spawn()
        except BaseException:
            self.stop()
            raise
        self._watchdog = threading.Thread(target=self._watch, name="stase-engine-watchdog", daemon=True)
        self._watchdog.start()
        return self

    def _spawn(self) -> None:
        """Start a child with the current scene; raises ``StaseError`` (and leaves no child)."""
        ctx = multiprocessing.get_context("spawn")
        with self._control:
            if self._shared is None or (self._stopping.is_set() and self._watchdog is not None):
                raise StaseError("the engine is stopping")
            self._shared.clear()
            self._ready = False
            placements = {name: dict(self._scene[slot]) for slot, name in enumerate(self.tracks)}
            spec = {"tracks": self.tracks, "placements": placements, "sample_rate": self.sample_rate,
                    "block_size": self.block_size, "room": self.room,
                    "reverb_engine": self.reverb_engine, "reverb_db": self._reverb_db,
                    "queue_capacity": self.queue_capacity, "audio": self.audio,
                    "device": self._device, "hostapi": self._hostapi,
                    "segment": self._shared.name, "capacity": self._shared.capacity}
            parent_conn, child_conn = ctx.Pipe(duplex=True)
            wake_read, wake_write = ctx.Pipe(duplex=False)
            os.set_blocking(wake_write.fileno(), False)  # a full pipe means the child is awake anyway
            process = ctx.Process(target=engine_main, args=(spec, child_conn, wake_read),
                                  name="stase-rt-engine", daemon=True)
            started = spec["spawned_at"] = time.perf_counter()
            process.start()
            child_conn.close()
            wake_read.close()
            self._process, self._conn, self._wake_conn = process, parent_conn, wake_write
            self._wake_write = wake_write.fileno()
            if self._head_rotation is not None:  # queued now, applied as the engine starts
                self._push_head(self._head_rotation)
        reply = self._wait_reply(process, START_TIMEOUT_S)
        if reply is None or reply[0] != "ready":
            reason = (reply[1] if reply else f"the engine process exited ({process.exitcode}) "
                      f"or did not start within {START_TIMEOUT_S:.0f} s")
            self._end_process(process)
            raise StaseError(f"the real-time engine did not start: {reason}")
        self._info = dict(reply[1], startup_s=round(time.perf_counter() - started, 3))
        self._ready = True
        self.down_reason = None
        log.info("real-time engine running in process %d (started in %.2f s)", process.pid,
                 self._info["startup_s"])

    def _wait_reply(self, process: Any, timeout_s: float) -> tuple | None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if self._conn.poll(0.05):
                    return self._conn.recv()
            except (EOFError, OSError):
                return None
            if not process.is_alive():
                try:
                    return self._conn.recv() if self._conn.poll(0) else None
                except (EOFError, OSError):
                    return None
        return None

    def _end_process(self, process: Any, timeout_s: float = 3.0) -> None:
        """Wait for ``process`` to end (terminate, then kill) and close the pipes."""
        process.join(timeout_s)
        if process.is_alive():
            process.terminate()
            process.join(timeout_s)
        if process.is_alive():
            process.kill()
            process.join(timeout_s)
        with self._control:  # no push may write to a pipe (or a reused fd number) once closed
            conns = (self._conn, getattr(self, "_wake_conn", None))
            self._conn = self._wake_conn = None
            self._wake_write = None
            self._ready = False
        for conn in conns:
            if conn is not None:
                try:
                    conn.close()
                except OSError:
                    pass

    def _watch(self) -> None:
        """Notice the child's death; restart it with the current scene (bounded)."""
        while not self._stopping.is_set():
            process = self._process
            if process is None:
                self._stopping.wait(0.2)
                continue
            process.join(0.2)
            if process.is_alive() or self._stopping.is_set() or process is not self._process:
                continue
            self.last_exit_code = process.exitcode
            self.down_reason = f"the engine process exited with {process.exitcode}"
            log.error("live monitor: %s; the scene is kept", self.down_reason)
            self._end_process(process, 0.5)
            if not self.auto_restart:
                return
            now = time.monotonic()
            self._restart_times = [t for t in self._restart_times if now - t < RESTART_WINDOW_S]
            if len(self._restart_times) >= MAX_RESTARTS:
                self.down_reason += (f"; {MAX_RESTARTS} restarts in {RESTART_WINDOW_S:.0f} s: "
                                     "staying down (restart the monitor by hand)")
                log.error("live monitor: %s", self.down_reason)
                return
            self._restart_times.append(now)
            if self._stopping.wait(RESTART_PAUSE_S):
                return
            try:
                self._spawn()
            except StaseError as exc:
                self.down_reason = str(exc)
                log.error("live monitor: restart failed: %s", exc)
                continue
            self.restarts += 1
            if self.on_restart is not None:
                try:
                    self.on_restart(self)
                except Exception:  # noqa: BLE001 - the engine runs; the hook's failure is logged
                    log.exception("live monitor: after-restart hook failed")

    def restart(self) -> "EngineMonitor":
        """Stop the engine (if it runs) and start a new one with the current scene."""
        self._stopping.set()
        if self._watchdog is not None:
            self._watchdog.join(5)
        self._stop_child()
        self._restart_times.clear()
        self._stopping.clear()
        self._spawn()
        self._watchdog = threading.Thread(target=self._watch, name="stase-engine-watchdog", daemon=True)
        self._watchdog.start()
        return self

    def _stop_child(self) -> None:
        process = self._process
        if process is None:
            return
        conn = self._conn
        if conn is not None and process.is_alive():
            try:
                conn.send(("stop",))
            except (OSError, ValueError):
                pass
        self._end_process(process)
        self._process = None

    def stop(self) -> None:
        """Stop the engine (the stream closes in the child), then unlink the shared segment."""
        self._stopping.set()
        if self._watchdog is not None and self._watchdog is not threading.current_thread():
            self._watchdog.join(5)
        self._stop_child()
        shared, self._shared = self._shared, None
        if shared is not None:  # readers see None first, then the views go
            shared.close()

    def warm_up(self) -> None:
        """Nothing to do here: the engine renders a silent block before it reports ready."""

    @property
    def engine_alive(self) -> bool:
        process = self._process
        return bool(self._ready and process is not None and process.is_alive())

    @property
    def engine_pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def jack_client_name(self) -> str | None:
        """The engine's PortAudio JACK client name (None: not on JACK)."""
        return self._info.get("jack_client")

    # ---------------------------------------------------------------- control side
    def _wake(self) -> None:
        fd = self._wake_write
        if fd is not None:
            try:
                os.write(fd, b"\0")
            except (BlockingIOError, BrokenPipeError, OSError):
                pass  # full: the child has bytes to read already; broken: the watchdog sees it

    def _push(self, op: int, slot: int = -1, bits: int = 0, mode: int = -1,
              numbers: tuple[float, ...] = _NO_NUMBERS, rotation: np.ndarray = _NO_ROTATION,
              role: np.ndarray | None = None) -> bool:
        """Push one request (control lock held); False when the engine is down or busy.
        ``numbers``: azimuth, elevation, distance, gain, reverb (NaN: not carried)."""
        if self._shared is None or self._conn is None or not self._process.is_alive():
            self.requests_while_down += 1
            return False
        role_length = -1 if role is None else len(role)
        if role is not None:
            role = np.concatenate([role, np.zeros(ROLE_BYTES - len(role), np.uint8)])
        values = (op, slot, bits, mode, *numbers, rotation, time.perf_counter(), role_length,
                  _NO_ROLE if role is None else role)
        if not self._shared.ring.push_values(values):
            now = time.monotonic()
            if now - self._busy_logged_at > 5.0:
                self._busy_logged_at = now
                log.warning("live monitor busy: the request ring is full (%d requests); the change "
                            "is kept in the scene and the session, not rendered yet",
                            self._shared.ring.capacity)
            return False
        self._wake()
        return True

    def set_source(self, track: str, azimuth_deg: float | None = None, elevation_deg: float | None = None,
                   distance_m: float | None = None, gain_db: float | None = None,
                   mode: str | None = None, role: Any = ..., reverb_db: float | None = None) -> bool:
        """Send a change of one source to the engine; False when the track is not monitored,
        the ring is full (``busy``, counted in ``commands_dropped``) or the engine is down (the
        change is kept for its restart).  ``InputError`` for a value the schema refuses: nothing
        is sent, nothing changes.  ``role``: a string or None; left out: unchanged."""
        slot = self.slots.get(track_key(track))
        if slot is None:
            return False
        fields = {k: v for k, v in (("azimuth_deg", azimuth_deg), ("elevation_deg", elevation_deg),
                                    ("distance_m", distance_m), ("gain_db", gain_db), ("mode", mode),
                                    ("reverb_db", reverb_db)) if v is not None}
        if role is not ...:
            fields["role"] = role
        accepted = check_placement_fields(fields)
        role_data = None
        if "role" in accepted and accepted["role"] is not None:
            role_data = np.frombuffer(accepted["role"].encode("utf-8"), dtype=np.uint8)
        bits = sum(bit for key, bit in _NUMBER_BITS if key in accepted)
        bits |= (HAS_MODE if "mode" in accepted else 0) | (HAS_ROLE if "role" in accepted else 0)
        mode_code = LOCALISATION_MODES.index(accepted["mode"]) if "mode" in accepted else -1
        numbers = tuple(accepted.get(key, math.nan) for key, _ in _NUMBER_BITS)
        with self._control:
            self._scene[slot].update(accepted)
            return self._push(OP_SOURCE, slot, bits, mode_code, numbers, role=role_data)

    def set_reverb_db(self, reverb_db: float) -> bool:
        """Send the scene's wetness (dB); False when busy or down (kept for a restart)."""
        value = check_placement_fields({"reverb_db": reverb_db})["reverb_db"]
        with self._control:
            self._reverb_db = value
            return self._push(OP_REVERB, bits=HAS_REVERB, numbers=_NO_NUMBERS[:4] + (value,))

    def set_head_rotation(self, rotation: np.ndarray | None) -> bool:
        """Turn the scene for a head at ``rotation`` (None: facing front), as
        :meth:`LiveMonitor.set_head_rotation`; False when busy or down."""
        rotation = check_head_rotation(rotation)
        with self._control:
            self._head_rotation = rotation
            queued = self._push_head(rotation)
        if queued:
            self.head_batches += 1
        else:
            self.head_batches_deferred += 1
        return queued

    def _push_head(self, rotation: np.ndarray | None) -> bool:
        if rotation is None:
            return self._push(OP_HEAD)
        return self._push(OP_HEAD, bits=HAS_ROTATION, rotation=rotation)

    @property
    def head_rotation(self) -> np.ndarray | None:
        return None if self._head_rotation is None else self._head_rotation.copy()

    def scene(self) -> dict[str, Any]:
        """The current scene this side keeps: ``{"sources": {track: fields}, "reverb_db",
        "head_rotated"}`` (what a restarted engine starts from)."""
        with self._control:
            return {"sources": {n: dict(self._scene[i]) for i, n in enumerate(self.tracks)},
                    "reverb_db": self._reverb_db, "head_rotated": self._head_rotation is not None}

    # ---------------------------------------------------------------- engine readings
    def _count(self, name: str) -> int:
        try:
            return int(self._shared.field(name)[0])
        except (AttributeError, KeyError, TypeError):  # stopped (or stopping on another thread)
            return 0

    @property
    def blocks(self) -> int:
        return self._count("blocks")

    @property
    def xruns(self) -> int:
        return self._count("xruns")

    @property
    def callback_overruns(self) -> int:
        return self._count("callback_overruns")

    @property
    def commands_applied(self) -> int:
        try:
            return int(self._shared.counts[COUNT_APPLIED])
        except (AttributeError, TypeError):
            return 0

    @property
    def latency_count(self) -> int:
        try:
            return int(self._shared.counts[COUNT_LATENCIES])
        except (AttributeError, TypeError):
            return 0

    @property
    def latencies_s(self) -> np.ndarray:
        """A copy of the move-to-block latency history (seconds; the first
        ``min(latency_count, LATENCY_HISTORY)`` are filled)."""
        try:
            return self._shared.latencies.copy()
        except AttributeError:
            return np.zeros(LATENCY_HISTORY)

    def status(self) -> dict[str, Any]:
        """LiveMonitor's status fields, read from the shared status block, plus the engine's:
        ``engine`` ("process"), ``engine_alive``, ``engine_pid``, ``engine_exit_code``,
        ``engine_restarts``, ``engine_down_reason``, ``engine_startup_s``."""
        alive = self.engine_alive
        base = {"engine": "process", "engine_alive": alive, "engine_pid": self.engine_pid,
                "engine_exit_code": self.last_exit_code, "engine_restarts": self.restarts,
                "engine_down_reason": None if alive else (self.down_reason or "not started"),
                "engine_startup_s": self._info.get("startup_s"),
                "engine_startup_parts_s": {k: self._info.get(k) for k in
                                           ("spawn_and_import_s", "build_s", "open_s")},
                "audio_source": self.audio,
                "tracks": len(self.tracks), "sample_rate": self.sample_rate,
                "block_size": self.block_size, "requests_while_down": self.requests_while_down}
        try:
            return dict(base, **self._shared_status())
        except (AttributeError, KeyError, TypeError):  # stopped, or stopping on another thread
            return dict(base, running=False, xruns=0, cpu_load=0.0)

    def _shared_status(self) -> dict[str, Any]:
        shared, alive = self._shared, self.engine_alive
        f = shared.field
        n = min(self.latency_count, LATENCY_HISTORY)
        lat = shared.latencies[:n]
        gain = float(f("limiter_gain")[0])
        error = shared.error_text()
        return {
            "running": bool(alive and f("running")[0]), "blocks": int(f("blocks")[0]),
            "engine_realtime": bool(f("realtime")[0]),
            "xruns": int(f("xruns")[0]), "input_overflows": int(f("input_overflows")[0]),
            "output_underflows": int(f("output_underflows")[0]),
            "irregular_blocks": int(f("irregular_blocks")[0]),
            "cpu_load": round(float(f("cpu_load")[0]), 4),
            "callback_errors": int(f("callback_errors")[0]),
            "callback_overruns": int(f("callback_overruns")[0]),
            "max_callback_ms": round(float(f("max_callback_s")[0]) * 1e3, 3),
            "last_callback_error": error,
            "commands_applied": self.commands_applied,
            "commands_dropped": shared.ring.dropped + int(f("queue_dropped")[0]),
            "requests_pending": len(shared.ring),
            "request_errors": int(f("request_errors")[0]),
            "limited_blocks": int(f("limited_blocks")[0]),
            "head_rotated": self._head_rotation is not None, "head_batches": self.head_batches,
            "head_batches_deferred": self.head_batches_deferred,
            "nonfinite_samples_silenced": int(f("nonfinite_samples")[0]),
            "limiter_gain_db": round(20.0 * math.log10(max(gain, 1e-12)), 2) if gain > 0 else 0.0,
            "output_peak_dbfs": peak_dbfs(f("output_peak")[0]),
            "move_to_block_ms_median": round(float(np.median(lat)) * 1e3, 3) if n else None}

    # ---------------------------------------------------------------- manual audio (tests)
    def render(self, inputs: np.ndarray, timeout_s: float = 30.0) -> np.ndarray:
        """``audio="manual"``: render ``inputs`` (blocks, frames, tracks) float32 block by block
        in the engine, after every request sent so far is applied; returns (blocks, frames, 2)."""
        if self.audio != "manual":
            raise InputError("render() is for an engine started with audio='manual'")
        return self._ask(("render", np.ascontiguousarray(inputs, dtype=np.float32)), timeout_s)

    def describe(self, timeout_s: float = 10.0) -> dict[str, Any]:
        """What the engine's renderer holds after every request so far: ``{"sources": {track:
        placement}, "reverb_db"}`` (placements head-relative, as rendered)."""
        return self._ask(("describe",), timeout_s)

    def _ask(self, message: tuple, timeout_s: float) -> Any:
        with self._control:
            conn, process = self._conn, self._process
        if conn is None or process is None or not process.is_alive():
            raise StaseError(f"the real-time engine is down ({self.down_reason})")
        conn.send(message)
        reply = self._wait_reply(process, timeout_s)
        if reply is None:
            raise StaseError("the real-time engine did not answer")
        if reply[0] == "error":
            raise StaseError(f"the real-time engine: {reply[1]}")
        return reply[1]


# ====================================================================== the child
def engine_main(spec: dict[str, Any], conn: Any, wake: Any) -> None:
    """The engine process: build the monitor, warm it, report ready, apply requests until told
    to stop (or the daemon's end of ``conn`` closes)."""
    import signal
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the daemon's: it stops us cleanly
    sys.setswitchinterval(ENGINE_SWITCH_INTERVAL_S)
    entered = time.perf_counter()
    shared = None
    engine = None
    try:
        shared = SharedBlock(spec["capacity"], spec["segment"], create=False)
        engine = _Engine(spec, shared)
        built = time.perf_counter()
        engine.open()
        # where a start's seconds go: the interpreter and imports, the renderer, warm-up + stream
        engine.info.update(spawn_and_import_s=round(entered - spec["spawned_at"], 3),
                           build_s=round(built - entered, 3),
                           open_s=round(time.perf_counter() - built, 3))
    except BaseException as exc:  # noqa: BLE001 - reported to the daemon, which raises it
        cause = f" ({exc.__cause__})" if exc.__cause__ else ""
        try:
            conn.send(("error", f"{type(exc).__name__}: {exc}{cause}"))
        except OSError:
            pass
        if engine is not None:
            engine.close()
        os._exit(3)
    # the control loop runs on this thread: its priority is asked for before "ready"
    shared.field("realtime")[0] = _try_realtime(ENGINE_CONTROL_PRIORITY)
    conn.send(("ready", engine.info))
    try:
        engine.serve(conn, wake)
    finally:
        engine.close()
        shared.field("state")[0] = STATE_STOPPED
        engine.monitor = None  # its views into the segment, before the mapping closes
        shared.close()


class _PublishingMonitor(LiveMonitor):
    """The child's LiveMonitor: after every block its counters and meters are copied into the
    shared status block (one-element views made once: no array is created per block), and
    ``apply_commands`` writes its counts and latencies straight into shared memory."""

    def publish_to(self, shared: SharedBlock) -> None:
        self.latencies_s = shared.latencies
        self._counts = shared.counts
        self._published = [(shared.field(name), name) for name in _PER_BLOCK]
        self._max_view = shared.field("max_callback_s")
        self._peak_view = shared.field("output_peak")

    def _callback(self, indata, outdata, frames, time_info, status) -> None:
        LiveMonitor._callback(self, indata, outdata, frames, time_info, status)
        self.publish()

    def publish(self) -> None:
        """Copy the per-block counters, the longest callback and the meters into the status block."""
        for view, name in self._published:
            view[0] = getattr(self, name)
        self._max_view[0] = self.max_callback_s
        self._peak_view[0] = self.output_peaks


class _Engine:
    """The child's side: the monitor, its audio source and the ring's consumer."""

    def __init__(self, spec: dict[str, Any], shared: SharedBlock):
        self.spec, self.shared = spec, shared
        self.monitor = _PublishingMonitor(
            spec["tracks"], spec["placements"], spec["sample_rate"], spec["block_size"],
            room=spec["room"], reverb_engine=spec["reverb_engine"],
            queue_capacity=spec["queue_capacity"], reverb_db=spec["reverb_db"])
        m = self.monitor
        m.publish_to(shared)
        self.ring = shared.ring
        self.record = np.zeros(1, dtype=REQUEST)
        self._clock: threading.Thread | None = None
        self._clock_stop = threading.Event()
        self.info: dict[str, Any] = {"pid": os.getpid()}
        self.period_s = m.block_size / m.sample_rate

    def open(self) -> None:
        m, spec = self.monitor, self.spec
        if spec["audio"] == "device":
            m.start(spec["device"], spec["hostapi"])  # warms up first (kernels from their cache)
            from stase.bridge.jack_routing import portaudio_client_name
            self.info["jack_client"] = portaudio_client_name()
        else:
            m.warm_up()
        if spec["audio"] == "clock":
            self._clock = threading.Thread(target=self._run_clock, name="stase-engine-clock", daemon=True)
            self._clock.start()
        f = self.shared.field
        f("running")[0] = 1
        f("state")[0] = STATE_READY

    def _run_clock(self) -> None:
        """A simulated audio clock: one silent block per period, as a device would ask for it;
        a wake-up later than a whole period counts as an xrun (a device would have underrun)."""
        _try_realtime(ENGINE_CLOCK_PRIORITY)
        m = self.monitor
        x = np.zeros((m.block_size, len(m.tracks)), np.float32)
        out = np.zeros((m.block_size, 2), np.float32)
        next_t = time.perf_counter()
        while not self._clock_stop.is_set():
            late = time.perf_counter() - next_t
            if late > self.period_s:
                m.xruns += 1
                next_t = time.perf_counter()
            m._callback(x, out, m.block_size, None, None)
            next_t += self.period_s
            delay = next_t - time.perf_counter()
            if delay > 0:
                time.sleep(delay)

    # ---------------------------------------------------------------- requests
    def drain(self) -> None:
        """Apply every published request, in order (the ring's one consumer)."""
        first, stop = self.ring.pending()
        for k in range(first, stop):
            self.record[0] = self.ring.records[k % self.ring.capacity]
            try:
                self._apply(self.record[0])
            except Exception as exc:  # noqa: BLE001 - a bug: counted, said, the engine goes on
                self.shared.field("request_errors")[0] += 1
                self.shared.set_error_text(f"request: {type(exc).__name__}: {exc}")
            self.ring.release(k + 1)

    def _room_for(self, records: int) -> bool:
        """Wait (up to 50 blocks) until the monitor's queue holds ``records`` more."""
        q = self.monitor.queue
        deadline = time.monotonic() + 50 * self.period_s
        while q.capacity - len(q) < records:
            if self.spec["audio"] == "manual" or time.monotonic() > deadline:
                return False
            time.sleep(self.period_s / 2)
        return True

    def _apply(self, r: np.void) -> None:
        m, op, bits = self.monitor, int(r["op"]), int(r["fields"])
        asked_at = float(r["enqueued_at_s"])
        if op == OP_SOURCE:
            fields: dict[str, Any] = {key: float(r[key]) for key, bit in _NUMBER_BITS if bits & bit}
            if bits & HAS_MODE:
                fields["mode"] = LOCALISATION_MODES[int(r["mode"])]
            if bits & HAS_ROLE:
                n = int(r["role_length"])
                fields["role"] = None if n < 0 else bytes(r["role"][:n]).decode("utf-8")
            if self._room_for(1):
                m.set_source(m.tracks[int(r["slot"])], **fields, enqueued_at_s=asked_at)
            else:
                m.queue.dropped += 1
        elif op == OP_REVERB:
            if self._room_for(1):
                m.set_reverb_db(float(r["reverb_db"]), enqueued_at_s=asked_at)
            else:
                m.queue.dropped += 1
        elif op == OP_HEAD:
            rotation = np.array(r["rotation"]) if bits & HAS_ROTATION else None
            if self._room_for(len(m.tracks)):
                m.set_head_rotation(rotation, enqueued_at_s=asked_at)  # counts a refusal itself
            else:
                m.head_batches_deferred += 1
        self.shared.field("requests_applied")[0] += 1

    # ---------------------------------------------------------------- the control loop
    def serve(self, conn: Any, wake: Any) -> None:
        wake_fd, conn_fd = wake.fileno(), conn.fileno()
        while True:
            readable, _, _ = select.select([wake_fd, conn_fd], [], [], 0.05)
            if wake_fd in readable:
                try:
                    os.read(wake_fd, 65536)  # before the ring is read: a later push leaves a byte
                except OSError:
                    pass
            self.drain()
            self._publish_slow()
            if conn_fd in readable:
                try:
                    message = conn.recv()
                except (EOFError, OSError):
                    return  # the daemon is gone
                if message[0] == "stop":
                    return
                try:
                    conn.send(("ok", self._answer(message)))
                except Exception as exc:  # noqa: BLE001 - answered, not fatal
                    conn.send(("error", f"{type(exc).__name__}: {exc}"))

    def _answer(self, message: tuple) -> Any:
        m = self.monitor
        if message[0] == "render":
            inputs = message[1]
            outputs = np.zeros((inputs.shape[0], m.block_size, 2), np.float32)
            for i in range(inputs.shape[0]):
                m._callback(inputs[i], outputs[i], m.block_size, None, None)
            return outputs
        if message[0] == "describe":
            return {"sources": {t: m.renderer.source(t) for t in m.tracks},
                    "reverb_db": float(m.renderer.reverb_db)}
        raise ValueError(f"unknown engine message {message[0]!r}")

    def _publish_slow(self) -> None:
        """What the callback does not publish itself: CPU load, limiter, head, drops, errors."""
        m, f = self.monitor, self.shared.field
        f("heartbeat_s")[0] = time.perf_counter()
        if m.stream is not None:
            try:
                f("cpu_load")[0] = float(m.stream.cpu_load)
            except Exception:  # noqa: BLE001 - a closing stream
                pass
        f("limiter_gain")[0] = float(m._limiter[LIMITER_GAIN])
        f("nonfinite_samples")[0] = int(m._limiter[LIMITER_NONFINITE])
        f("head_batches")[0] = m.head_batches
        f("head_batches_deferred")[0] = m.head_batches_deferred
        f("queue_dropped")[0] = m.queue.dropped
        if m.last_callback_error is not None:
            self.shared.set_error_text(f"callback: {m.last_callback_error!r}")
            m.last_callback_error = None

    def close(self) -> None:
        self._clock_stop.set()
        if self._clock is not None:
            self._clock.join(2)
        try:
            self.monitor.stop()
        except Exception:  # noqa: BLE001 - closing anyway
            pass
        self.shared.field("running")[0] = 0
        self._publish_slow()
