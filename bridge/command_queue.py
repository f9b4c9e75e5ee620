"""A bounded single-producer / single-consumer queue of typed command records into the audio callback.

The control side (OSC and MIDI handlers, one thread at a time through the daemon's lock) fills
records in place; the audio callback applies them at the start of each block.  Records live in a
preallocated ring, a numpy structured array of a fixed ``dtype`` (the live monitor uses
:data:`stase.dsp.scene_kernel.COMMAND`: named fields, no positions), so neither side allocates
arrays.  There is no lock: the producer writes a slot, then advances ``written``; the consumer
applies the slots in ``[read, written)``, then advances ``read``.  Each counter is written by one
side only and a Python attribute store is atomic, so the consumer never sees a half-written
record (python-rtmixer's lock-free ring buffer argument).  When the ring is full, :meth:`push`
refuses the record before it is made and counts it in ``dropped``; the callback never waits.

Holds
-----
CommandQueue(capacity, dtype)
    ``push(fill) -> bool`` (producer: ``fill(record)`` writes one slot in place),
    ``pending() -> (ring, first, stop)`` and ``release(stop)`` (consumer), ``pop_into(out)``
    (consumer, one record copied out), ``clear()``, ``len()``, ``dropped``.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from stase.dsp.scene_kernel import COMMAND


class CommandQueue:
    """Bounded lock-free SPSC ring of typed records.

    Parameters
    ----------
    capacity : number of records the ring holds (a power of two is not required).
    dtype : the records' numpy structured dtype (named fields); default
        :data:`stase.dsp.scene_kernel.COMMAND`.
    """

    def __init__(self, capacity: int = 256, dtype: np.dtype | None = None):
        if not isinstance(capacity, int) or isinstance(capacity, bool) or capacity < 1:
            raise ValueError(f"capacity must be a positive int, got {capacity!r}")
        dtype = np.dtype(COMMAND if dtype is None else dtype)
        if dtype.names is None:
            raise ValueError(f"dtype must be a structured dtype with named fields, got {dtype}")
        self.capacity = capacity
        self.ring = np.zeros(capacity, dtype=dtype)
        self.written = 0  # total records pushed: advanced by the producer only
        self.read = 0     # total records consumed: advanced by the consumer only
        self.dropped = 0  # producer-side count of refused records

    def __len__(self) -> int:
        return self.written - self.read

    def full(self) -> bool:
        return self.written - self.read >= self.capacity

    def push(self, fill: Callable[[np.void], None]) -> bool:
        """Fill the next free slot in place with ``fill(record)`` and publish it.

        False (and ``dropped`` += 1) when the ring is full: ``fill`` is then not called, so a
        refused command leaves no trace on the control side either.  An exception from ``fill``
        (a refused value) publishes nothing and propagates.
        """
        written = self.written
        if written - self.read >= self.capacity:
            self.dropped += 1
            return False
        fill(self.ring[written % self.capacity])  # a view of the slot: filled in place
        self.written = written + 1  # publish only after the record is complete
        return True

    def pending(self) -> tuple[np.ndarray, int, int]:
        """Consumer: ``(ring, first, stop)``, the records to apply are ``ring[k % capacity]`` for
        ``first <= k < stop``; call :meth:`release` with ``stop`` once they are applied.
        Creates no objects beyond the tuple (the counters are existing ints)."""
        return self.ring, self.read, self.written

    def release(self, stop: int) -> None:
        """Consumer: the records before ``stop`` are applied; their slots may be reused."""
        self.read = stop

    def pop_into(self, out: np.ndarray) -> bool:
        """Consumer: copy the oldest record into ``out`` (a 1-record array of the ring's dtype);
        False when empty."""
        read = self.read
        if read == self.written:
            return False
        out[0] = self.ring[read % self.capacity]
        self.read = read + 1
        return True

    def clear(self) -> None:
        """Drop everything pending (consumer side)."""
        self.read = self.written
