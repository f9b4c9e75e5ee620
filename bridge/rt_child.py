"""The real-time engine process itself (the child of :class:`stase.bridge.rt_engine.EngineMonitor`).

:func:`engine_main` (the spawn target) builds a :class:`stase.bridge.monitor.LiveMonitor` whose
callback publishes its counters and meters into the shared status block after every block
(:mod:`stase.bridge.rt_shared`), warms it, reports ready, and serves: a control thread wakes on
a pipe, drains the request ring and hands each request to the thread engine's own code
(``LiveMonitor.set_source`` and friends), so both engines render the same blocks for the same
moves; it applies them between blocks, never while one renders (a block hands the GIL back
between its kernels, and a request running Python meanwhile made it wait; see
:meth:`_Engine._wait_for_block_end`).  Audio sources: ``"device"`` (a sounddevice stream),
``"clock"`` (a simulated audio clock for benches without an audio server) and ``"manual"``
(blocks rendered on request, for tests).

Garbage collection: once its renderer is built, before the stream opens, the child collects
what its start left (imports, the renderer: about 170 000 objects) and freezes the survivors
(``gc.freeze``: never scanned again).  A full collection over that heap took 60-200 ms (gc
callbacks in the child during bench runs), holding the GIL the audio callback needs; frozen, a
collection walks only what was made since.  Measured in the bench under load, the started
engine made no collection at all in 15 s (its blocks and requests leave no garbage behind), so
this is a guard, not the cause of the overruns seen there (docs/daemon.md); ``status.audio`` counts the collections and those that started while a block
rendered (``gc_collections``, ``gc_collections_during_blocks``).

Holds
-----
engine_main                     the child's entry point
try_realtime                    (from :mod:`stase.bridge.scheduling`) SCHED_FIFO for a thread
raise_engine_priority           the whole engine process above the daemon's jobs: SCHED_FIFO,
                                else nice -10, else nothing (``status()["engine_priority"]``)
freeze_startup_heap             collect once, freeze what survived
"""
from __future__ import annotations

import gc
import logging
import os
import select
import sys
import threading
import time
from typing import Any

import numpy as np

from stase.core.conventions import LOCALISATION_MODES

from stase.bridge.scheduling import thread_ids, try_realtime
from stase.bridge.monitor import LIMITER_GAIN, LIMITER_NONFINITE, LiveMonitor
from stase.bridge.rt_shared import (HAS_MODE, HAS_ROLE, HAS_ROTATION, NUMBER_BITS, OP_HEAD, OP_REVERB,
                                    OP_SOURCE, PER_BLOCK_FIELDS, REQUEST, STATE_READY, STATE_STOPPED,
                                    SharedBlock)

log = logging.getLogger("stase.rt_engine")

#: The child's GIL switch interval, seconds: its control thread never holds the callback back
#: for CPython's default 5 ms (a whole 256-frame block).
ENGINE_SWITCH_INTERVAL_S = 0.0005
#: SCHED_FIFO priorities the child asks for, where the OS allows it (root, or an ``rtprio``
#: limit as the ``audio`` group has): its control thread, so a request is handed on even when
#: the daemon's jobs fill every core (below JACK's own threads, -P 60 by default, whose client
#: callback it must never hold up), and the simulated clock, which stands for a device callback.
#: Refused: the normal scheduler, said in the status (``engine_realtime``).
ENGINE_CONTROL_PRIORITY, ENGINE_CLOCK_PRIORITY = 30, 50
#: The whole engine process, once started (every thread still under the normal scheduler: the
#: audio server's callback thread, PortAudio's, any other): SCHED_FIFO at this priority, as
#: JACK and every pro-audio host run their audio threads, below JACK's own and below the
#: threads above; where FIFO is refused, this niceness (the daemon's jobs run at +10), else
#: nothing.  See :func:`raise_engine_priority`.
ENGINE_PROCESS_PRIORITY, ENGINE_PROCESS_NICENESS = 15, -10
#: How long (s) the control thread sleeps between looks while a block renders (see
#: :meth:`_Engine._wait_for_block_end`): a block takes 0.2-1 ms.
BLOCK_WAIT_STEP_S = 0.0001


def raise_engine_priority(fifo_priority: int = ENGINE_PROCESS_PRIORITY,
                          niceness: int = ENGINE_PROCESS_NICENESS) -> str:
    """Put every thread of this process that runs under the normal scheduler at SCHED_FIFO
    ``fifo_priority``; where that is refused, at ``niceness``; never fails.

    Linux schedules threads, not processes (``sched_setscheduler`` and ``setpriority`` on a pid
    change one thread), so each thread is set by its id; threads started later inherit from the
    thread that starts them.  Threads already real-time (the audio server's callback thread,
    the clock and control threads of :data:`ENGINE_CLOCK_PRIORITY`) keep their priority.

    Returns
    -------
    What took effect: ``"SCHED_FIFO <priority>"``, ``"nice <niceness>"`` or ``"normal"``.
    """
    normal = []
    for tid in thread_ids():
        try:
            if os.sched_getscheduler(tid) == os.SCHED_OTHER:
                normal.append(tid)
        except (AttributeError, OSError):  # a thread that ended meanwhile; no sched_* here
            continue
    try:
        for tid in normal:
            os.sched_setscheduler(tid, os.SCHED_FIFO, os.sched_param(fifo_priority))
        return f"SCHED_FIFO {fifo_priority}"
    except (AttributeError, OSError):
        for tid in normal:  # none or some took FIFO: the rest (and those) at least nicer
            try:
                os.sched_setscheduler(tid, os.SCHED_OTHER, os.sched_param(0))
            except (AttributeError, OSError):
                pass
    try:
        for tid in normal:
            os.setpriority(os.PRIO_PROCESS, tid, niceness)
        return f"nice {niceness}"
    except (AttributeError, OSError):
        return "normal"


def freeze_startup_heap() -> int:
    """Collect once and freeze every survivor (``gc.freeze``: the permanent generation, never
    scanned again); returns how many objects were frozen.

    Called once the renderer is built, before the stream opens: the imports and the renderer
    are what a full collection would otherwise walk, holding the GIL (see the module docstring).
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


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
    # started (built, warmed, the stream open): now the whole process above the daemon's jobs,
    # then the control loop on this thread higher still; both before "ready"
    engine.info["engine_priority"] = raise_engine_priority()
    shared.field("realtime")[0] = try_realtime(ENGINE_CONTROL_PRIORITY)
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
    ``apply_commands`` writes its counts and latencies straight into shared memory.
    ``in_block`` is True while a block renders (read by the engine's collection count)."""

    in_block = False

    def publish_to(self, shared: SharedBlock) -> None:
        self.latencies_s = shared.latencies
        self._counts = shared.counts
        self._published = [(shared.field(name), name) for name in PER_BLOCK_FIELDS]
        self._max_view = shared.field("max_callback_s")
        self._peak_view = shared.field("output_peak")

    def _callback(self, indata, outdata, frames, time_info, status) -> None:
        self.in_block = True
        try:
            LiveMonitor._callback(self, indata, outdata, frames, time_info, status)
        finally:
            self.in_block = False
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
        self.gc_collections = 0     # every collection in this process once quiet_collector ran
        self.gc_during_blocks = 0   # those that started while a block rendered
        self.requests_during_blocks = 0  # requests applied while a block rendered

    # ---------------------------------------------------------------- garbage collection
    def quiet_collector(self) -> None:
        """:func:`freeze_startup_heap`, and count every collection from now on (on any thread)."""
        self.shared.field("gc_frozen")[0] = freeze_startup_heap()
        gc.callbacks.append(self._count_collection)

    def _count_collection(self, phase: str, info: dict) -> None:
        if phase == "start":
            self.gc_collections += 1
            if self.monitor is not None and self.monitor.in_block:
                self.gc_during_blocks += 1

    def open(self) -> None:
        m, spec = self.monitor, self.spec
        self.quiet_collector()  # the renderer is built; before the stream: no block waits for it
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
        try_realtime(ENGINE_CLOCK_PRIORITY)
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
            self._wait_for_block_end()
            if self.monitor.in_block:  # it overran the wait: counted
                self.requests_during_blocks += 1
            self.record[0] = self.ring.records[k % self.ring.capacity]
            try:
                self._apply(self.record[0])
            except Exception as exc:  # noqa: BLE001 - a bug: counted, said, the engine goes on
                self.shared.field("request_errors")[0] += 1
                self.shared.set_error_text(f"request: {type(exc).__name__}: {exc}")
            self.ring.release(k + 1)

    def _wait_for_block_end(self) -> None:
        """While a block renders, wait (sleeping, so without the GIL) until it ends, at most one
        block period.

        Why: the callback hands the GIL back between its numba kernels (they release it), and
        a request applied meanwhile takes it; every hand-back then waits up to the switch
        interval.  The bench's slowest blocks waited 11 times in one block (4.3 ms, 1.6 ms of
        it CPU); 53 of 800 paced requests were applied during a block
        (``tests/test_reply_path.py``).  A request cannot reach the block that is rendering
        anyway (it took its commands at its start), so waiting costs it nothing.
        """
        if not self.monitor.in_block:
            return
        deadline = time.perf_counter() + self.period_s
        while self.monitor.in_block and time.perf_counter() < deadline:
            time.sleep(BLOCK_WAIT_STEP_S)

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
            fields: dict[str, Any] = {key: float(r[key]) for key, bit in NUMBER_BITS if bits & bit}
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
        f("gc_collections")[0] = self.gc_collections
        f("gc_during_blocks")[0] = self.gc_during_blocks
        f("requests_during_blocks")[0] = self.requests_during_blocks
        if m.last_callback_error is not None:
            self.shared.set_error_text(f"callback: {m.last_callback_error!r}")
            m.last_callback_error = None

    def close(self) -> None:
        if self._count_collection in gc.callbacks:
            gc.callbacks.remove(self._count_collection)
        self._clock_stop.set()
        if self._clock is not None:
            self._clock.join(2)
        try:
            self.monitor.stop()
        except Exception:  # noqa: BLE001 - closing anyway
            pass
        self.shared.field("running")[0] = 0
        self._publish_slow()
