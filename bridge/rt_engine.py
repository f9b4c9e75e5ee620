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

Shared memory (:mod:`stase.bridge.rt_shared`): one segment per engine holding the request ring,
the status record, the ``apply_commands`` counts and the latency history; the child's side is
:mod:`stase.bridge.rt_child`.

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

Module map
----------
rt_engine (here)                EngineMonitor: the daemon's side (LiveMonitor's API), the watchdog
rt_shared                       REQUEST / STATUS records, RequestRing, SharedBlock
rt_child                        engine_main: the child process, its monitor and the ring's consumer
"""
from __future__ import annotations

import logging
import math
import multiprocessing
import os
import threading
import time
from typing import Any, Callable, Iterable

import numpy as np

from stase.core.conventions import LOCALISATION_MODES
from stase.core.errors import InputError, StaseError
from stase.core.names import track_key
from stase.core.placement import check_placement_fields

from stase.dsp.scene_kernel import COUNT_APPLIED, COUNT_LATENCIES

from stase.bridge.monitor import (LATENCY_HISTORY, check_head_rotation, check_monitor_setup, peak_dbfs,
                                  track_slots)
from stase.bridge.rt_child import engine_main
from stase.bridge.rt_shared import (HAS_MODE, HAS_REVERB, HAS_ROLE, HAS_ROTATION, NO_NUMBERS, NO_ROLE,
                                    NO_ROTATION, NUMBER_BITS, OP_HEAD, OP_REVERB, OP_SOURCE, ROLE_BYTES,
                                    SharedBlock)

log = logging.getLogger("stase.rt_engine")

#: Automatic restarts allowed within the window (a crash loop then stays down), and the pause
#: before each, seconds.
MAX_RESTARTS, RESTART_WINDOW_S, RESTART_PAUSE_S = 3, 60.0, 0.5
#: How long the daemon's side waits for the engine to report ready, seconds: the renderer loads
#: its HRTF set and room response (2-5 s here), but with a cold numba cache (the first start
#: after an install or a kernel change) the kernels compile first: 40-70 s on 2 busy cores.
START_TIMEOUT_S = 300.0
AUDIO_SOURCES = ("device", "clock", "manual")

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
        from stase.bridge.job_process import end_process
        end_process(process, timeout_s)
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
              numbers: tuple[float, ...] = NO_NUMBERS, rotation: np.ndarray = NO_ROTATION,
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
                  NO_ROLE if role is None else role)
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
        bits = sum(bit for key, bit in NUMBER_BITS if key in accepted)
        bits |= (HAS_MODE if "mode" in accepted else 0) | (HAS_ROLE if "role" in accepted else 0)
        mode_code = LOCALISATION_MODES.index(accepted["mode"]) if "mode" in accepted else -1
        numbers = tuple(accepted.get(key, math.nan) for key, _ in NUMBER_BITS)
        with self._control:
            self._scene[slot].update(accepted)
            return self._push(OP_SOURCE, slot, bits, mode_code, numbers, role=role_data)

    def set_reverb_db(self, reverb_db: float) -> bool:
        """Send the scene's wetness (dB); False when busy or down (kept for a restart)."""
        value = check_placement_fields({"reverb_db": reverb_db})["reverb_db"]
        with self._control:
            self._reverb_db = value
            return self._push(OP_REVERB, bits=HAS_REVERB, numbers=NO_NUMBERS[:4] + (value,))

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
        ``engine_restarts``, ``engine_down_reason``, ``engine_startup_s``, ``engine_priority``
        (what :func:`stase.bridge.rt_child.raise_engine_priority` could set: ``"SCHED_FIFO 15"``,
        ``"nice -10"`` or ``"normal"``), and the child's garbage collector: ``gc_collections``,
        ``gc_collections_during_blocks``, ``gc_frozen_objects`` (the start-up heap, frozen; see
        :mod:`stase.bridge.rt_child`)."""
        alive = self.engine_alive
        exit_code, process = self.last_exit_code, self._process
        if not alive and process is not None:
            # ended before the watchdog noticed (it looks every 0.2 s): the same answer now
            exit_code = process.exitcode if process.exitcode is not None else exit_code
        base = {"engine": "process", "engine_alive": alive, "engine_pid": self.engine_pid,
                "engine_exit_code": exit_code, "engine_restarts": self.restarts,
                "engine_down_reason": None if alive else (self.down_reason or "not started"),
                "engine_startup_s": self._info.get("startup_s"),
                "engine_priority": self._info.get("engine_priority"),
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
            "callback_overruns_waiting": int(f("callback_overruns_waiting")[0]),
            "max_callback_ms": round(float(f("max_callback_s")[0]) * 1e3, 3),
            "last_callback_error": error,
            "commands_applied": self.commands_applied,
            "commands_dropped": shared.ring.dropped + int(f("queue_dropped")[0]),
            "requests_pending": len(shared.ring),
            "request_errors": int(f("request_errors")[0]),
            "gc_collections": int(f("gc_collections")[0]),
            "gc_collections_during_blocks": int(f("gc_during_blocks")[0]),
            "gc_frozen_objects": int(f("gc_frozen")[0]),
            "requests_applied_during_blocks": int(f("requests_during_blocks")[0]),
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
