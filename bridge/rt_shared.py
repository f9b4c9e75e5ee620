"""The shared memory between the daemon and its real-time engine process (:mod:`stase.bridge.rt_engine`).

One ``multiprocessing.shared_memory`` segment per engine, named ``stase-rt-<pid>-<n>`` (so a test
can look for leftovers in /dev/shm), made and unlinked by the daemon's side only; the child
attaches.  It holds the request ring (:class:`RequestRing`: a header with the write index and the
read index on separate cache lines, then ``capacity`` :data:`REQUEST` records), the status record
(:data:`STATUS`, named fields), the ``apply_commands`` counts and the latency history (seconds,
from the daemon-side push to the start of the block that applied it; ``perf_counter`` is
CLOCK_MONOTONIC, one clock for both processes).  The ring is single-producer single-consumer: the
producer writes a record, then advances the write index; the consumer applies records up to the
write index, then advances the read index.  x86's stores are not reordered with other stores
(TSO), and CPython does not reorder them, so a record is whole before its index is seen; a full
ring refuses the request at once (``busy``), it never blocks.

Holds
-----
REQUEST, STATUS                 the shared records' dtypes (named fields), the request ops and field bits
RequestRing                     the SPSC ring of REQUEST records over shared arrays
SharedBlock                     one engine's shared segment and its named views
"""
from __future__ import annotations

import itertools
import math
import os
from multiprocessing import shared_memory
from typing import Any, Callable

import numpy as np

from stase.core.placement import MAX_ROLE_CHARS

from stase.bridge.monitor import LATENCY_HISTORY

#: Request ops.
OP_SOURCE, OP_REVERB, OP_HEAD = 1, 2, 3
#: Which fields a request carries (bits of ``REQUEST["fields"]``).
HAS_AZIMUTH, HAS_ELEVATION, HAS_DISTANCE, HAS_GAIN, HAS_MODE, HAS_ROLE, HAS_REVERB, HAS_ROTATION = (
    1 << k for k in range(8))
NUMBER_BITS = (("azimuth_deg", HAS_AZIMUTH), ("elevation_deg", HAS_ELEVATION),
                ("distance_m", HAS_DISTANCE), ("gain_db", HAS_GAIN), ("reverb_db", HAS_REVERB))
#: UTF-8 takes at most 4 bytes a character.
ROLE_BYTES = 4 * MAX_ROLE_CHARS
ERROR_BYTES = 512
NO_NUMBERS = (math.nan,) * 5
NO_ROTATION = np.zeros((3, 3))
NO_ROLE = np.zeros(ROLE_BYTES, np.uint8)

#: One request from the daemon to the engine (fixed size; ``role_length`` -1: role None).
REQUEST = np.dtype([("op", np.int64), ("slot", np.int64), ("fields", np.int64), ("mode", np.int64),
                    ("azimuth_deg", np.float64), ("elevation_deg", np.float64),
                    ("distance_m", np.float64), ("gain_db", np.float64), ("reverb_db", np.float64),
                    ("rotation", np.float64, (3, 3)), ("enqueued_at_s", np.float64),
                    ("role_length", np.int64), ("role", np.uint8, (ROLE_BYTES,))], align=True)

#: Engine states (``STATUS["state"]``).
STATE_STARTING, STATE_READY, STATE_STOPPED = 0, 1, 2
#: The engine's status, written by the child, read by the daemon (``max_callback_s``, seconds;
#: ``output_peak``: held peak per ear, linear; ``heartbeat_s``: the child's last perf_counter;
#: ``gc_*``: the child's garbage collections, those that started while a block rendered, the
#: objects frozen at start, see rt_child; ``requests_during_blocks``: requests the control thread
#: applied while a block rendered).
STATUS = np.dtype([("state", np.int64), ("heartbeat_s", np.float64), ("blocks", np.int64),
                   ("xruns", np.int64), ("input_overflows", np.int64), ("output_underflows", np.int64),
                   ("irregular_blocks", np.int64), ("callback_errors", np.int64),
                   ("callback_overruns", np.int64), ("callback_overruns_waiting", np.int64),
                   ("max_callback_s", np.float64),
                   ("limited_blocks", np.int64), ("limiter_gain", np.float64),
                   ("nonfinite_samples", np.int64), ("head_batches", np.int64),
                   ("head_batches_deferred", np.int64), ("queue_dropped", np.int64),
                   ("requests_applied", np.int64), ("request_errors", np.int64),
                   ("cpu_load", np.float64), ("output_peak", np.float64, (2,)),
                   ("running", np.int64), ("realtime", np.int64),
                   ("gc_collections", np.int64), ("gc_during_blocks", np.int64),
                   ("gc_frozen", np.int64), ("requests_during_blocks", np.int64),
                   ("error_length", np.int64),
                   ("error", np.uint8, (ERROR_BYTES,))], align=True)
#: The status fields the child's callback publishes after every block (the rest: its control thread).
PER_BLOCK_FIELDS = ("blocks", "xruns", "input_overflows", "output_underflows", "irregular_blocks",
              "callback_errors", "callback_overruns", "callback_overruns_waiting", "limited_blocks")

_segment_numbers = itertools.count()


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
