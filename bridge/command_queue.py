"""A bounded single-producer / single-consumer command queue into the audio callback.

The control side (OSC and MIDI handlers, one thread at a time through the daemon's lock) pushes
fixed-width numeric records; the audio callback pops them at the start of each block.  Records
live in a preallocated ``(capacity, width)`` float64 array, so neither side allocates arrays;
there is no lock: the producer writes the row, then advances ``_head``; the consumer reads the
row, then advances ``_tail``.  Each index is written by one side only, and a Python attribute
store is atomic, so the consumer never sees a half-written row (the same ordering argument as
python-rtmixer's lock-free ring buffer).  When the ring is full, :meth:`push` refuses the record
and counts it in ``dropped``; the callback never waits.

Record layout (see :data:`FIELDS`): opcode, source slot, azimuth_deg, elevation_deg,
distance_m, gain_db, mode index, enqueue time (``time.perf_counter()`` seconds).  NaN means
"leave unchanged"; mode index -1 means the same.
"""
from __future__ import annotations

import math

import numpy as np

FIELDS = ("opcode", "slot", "azimuth_deg", "elevation_deg", "distance_m", "gain_db", "mode",
          "enqueued_at_s")
WIDTH = len(FIELDS)

OP_MOVE = 1.0
OP_RESET = 2.0

NAN = math.nan


class CommandQueue:
    """Bounded lock-free SPSC ring of numeric command records.

    Parameters
    ----------
    capacity : number of records the ring holds (a power of two is not required).
    """

    def __init__(self, capacity: int = 256):
        if not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f"capacity must be a positive int, got {capacity!r}")
        self.capacity = capacity
        self._ring = np.zeros((capacity, WIDTH), dtype=np.float64)
        self._head = 0  # total records pushed: written by the producer only
        self._tail = 0  # total records popped: written by the consumer only
        self.dropped = 0  # producer-side count of refused records

    def __len__(self) -> int:
        return self._head - self._tail

    def push(self, opcode: float, slot: int, azimuth_deg: float = NAN, elevation_deg: float = NAN,
             distance_m: float = NAN, gain_db: float = NAN, mode: int = -1,
             enqueued_at_s: float = 0.0) -> bool:
        """Append one record; False (and ``dropped`` += 1) when the ring is full."""
        head = self._head
        if head - self._tail >= self.capacity:
            self.dropped += 1
            return False
        row = self._ring[head % self.capacity]
        row[0] = opcode
        row[1] = slot
        row[2] = azimuth_deg
        row[3] = elevation_deg
        row[4] = distance_m
        row[5] = gain_db
        row[6] = mode
        row[7] = enqueued_at_s
        self._head = head + 1  # publish only after the row is complete
        return True

    def pop_into(self, out: np.ndarray) -> bool:
        """Copy the oldest record into ``out`` (float64, length ``WIDTH``); False when empty.

        Allocation-free: meant for the audio callback.
        """
        tail = self._tail
        if tail == self._head:
            return False
        out[:] = self._ring[tail % self.capacity]
        self._tail = tail + 1
        return True

    def clear(self) -> None:
        """Drop everything pending (consumer side)."""
        self._tail = self._head
