"""Thread scheduling: which of stase's threads the OS runs first when every core is busy.

Linux runs threads, not processes: a thread under ``SCHED_FIFO`` at priority p runs before any
thread of the normal scheduler and before FIFO threads of a lower p, until it blocks (and RT
throttling, ``kernel.sched_rt_runtime_us``, keeps 5 % of each second for the rest, so a runaway
FIFO thread cannot lock a machine up).  Getting FIFO needs root or an ``rtprio`` limit (the
``audio`` group's, as JACK users have); where it is refused nothing changes and the status says
``"normal"``.

The daemon's threads, highest first (every figure a constant of its own module):

===============================  ========  ================================================
JACK's own threads               60        ``jackd -P`` default, not ours
engine clock (simulated device)  50        :data:`stase.bridge.rt_child.ENGINE_CLOCK_PRIORITY`
engine control thread            30        :data:`stase.bridge.rt_child.ENGINE_CONTROL_PRIORITY`
engine process (audio callback)  15        :data:`stase.bridge.rt_child.ENGINE_PROCESS_PRIORITY`
daemon request thread            10        :data:`REQUEST_THREAD_PRIORITY` (this module)
everything else                  normal    the job process at nice +10 (every thread)
===============================  ========  ================================================

The request thread (the OSC server's receive loop, which answers the short verbs such as
``set_source`` inline and only queues the long ones) is the one the user waits on: under a
listen + advise load on 2 cores its handler's own time was p99 7.5-10 ms at the normal
priority (the same work takes 0.6 ms idle: it waited for a core) and 2.7 ms at FIFO 10
(docs/daemon.md, ``bench.bridge --under-load``).  It stays below the engine, whose audio
callback it must never hold up, and its handlers are short by construction (the dispatcher
sends every long verb to the job thread).

Holds
-----
REQUEST_THREAD_PRIORITY   the daemon request thread's FIFO priority
try_realtime              SCHED_FIFO for the calling thread, where the OS allows it
thread_ids                the ids of this process's threads (Linux ``/proc/self/task``)
lower_every_thread        every thread of this process at one niceness (the job process)
"""
from __future__ import annotations

import os

#: SCHED_FIFO priority of the daemon's request thread (see the table above).
REQUEST_THREAD_PRIORITY = 10


def try_realtime(priority: int) -> bool:
    """Ask ``SCHED_FIFO`` at ``priority`` (1-99) for the calling thread; False where refused
    (no permission, not Linux), and then nothing changed."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
        return True
    except (AttributeError, OSError):
        return False


def thread_ids() -> list[int]:
    """The ids of this process's threads (Linux ``/proc/self/task``; elsewhere ``[0]``, this
    thread)."""
    try:
        return sorted(int(t) for t in os.listdir("/proc/self/task"))
    except (OSError, ValueError):
        return [0]


def lower_every_thread(niceness: int) -> int:
    """Put every thread this process has at ``niceness`` (0-19: only ever nicer than now).

    ``os.nice`` changes the calling thread only, and a process has threads before its own code
    runs: importing NumPy starts OpenBLAS's worker pool (one thread per extra core), which then
    does the jobs' matrix products at the priority the process started with.  Each thread is
    set by its id; threads started later inherit the niceness of the thread that starts them.

    Returns
    -------
    The lowest niceness (the highest priority) any thread of this process has afterwards; a
    thread whose niceness could not be read counts as unchanged.
    """
    lowest = 19
    for tid in thread_ids():
        try:
            if os.getpriority(os.PRIO_PROCESS, tid) < niceness:
                os.setpriority(os.PRIO_PROCESS, tid, niceness)
            lowest = min(lowest, os.getpriority(os.PRIO_PROCESS, tid))
        except (AttributeError, OSError):  # a thread that ended meanwhile; not Linux
            continue
    return lowest


def scheduling_of_this_thread() -> str:
    """``"SCHED_FIFO <p>"`` or ``"normal"`` for the calling thread (``"unknown"`` off Linux)."""
    try:
        if os.sched_getscheduler(0) == os.SCHED_FIFO:
            return f"SCHED_FIFO {os.sched_getparam(0).sched_priority}"
        return "normal"
    except (AttributeError, OSError):
        return "unknown"
