"""Run one function over many independent jobs: in this process, in a local process pool, or on
a Ray cluster (issue 21).  Batch rendering (:mod:`stase.bridge.batch`) and the listener's data
generator (:mod:`stase.onnx_models.spatial_ast.shards`) both use it.

The function must be a module-level callable (it is pickled to the workers) taking one job and
returning something picklable.  Workers are long-lived: a process-pool worker or a Ray actor runs
many jobs, so whatever the function caches at module level (the HRTF set, room responses, numba's
compiled kernels) stays warm between jobs.  A job that raises does not stop the others: its
outcome carries the error text.  Results come back as they finish (``index`` says which job).

Ray is optional (``pip install stase[ray]``); nothing here imports it unless ``ray`` is asked for.

Functions
---------
run_jobs(fn, jobs, workers=1, ray=None, progress=None) -> iterator of JobOutcome
JobOutcome(index, ok, value, error, seconds)
"""
from __future__ import annotations

import time
import traceback
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

from stase.core.errors import InputError, StaseError


@dataclass(frozen=True)
class JobOutcome:
    """What became of one job: ``value`` when ``ok``, else ``error`` (one line) and ``detail``."""
    index: int
    ok: bool
    value: Any = None
    error: str | None = None
    detail: str | None = None
    seconds: float = 0.0


def _call(fn: Callable, index: int, job: Any) -> JobOutcome:
    start = time.perf_counter()
    try:
        value = fn(job)
    except Exception as exc:  # noqa: BLE001 - one job's failure is reported, the batch goes on
        kind = "" if isinstance(exc, (InputError, StaseError)) else f"{type(exc).__name__}: "
        return JobOutcome(index, False, error=f"{kind}{exc}", detail=traceback.format_exc(limit=6),
                          seconds=time.perf_counter() - start)
    return JobOutcome(index, True, value=value, seconds=time.perf_counter() - start)


def _call_packed(packed):
    fn, index, job = packed
    return _call(fn, index, job)


class _RayWorker:
    """One per Ray worker process: runs jobs one after another (module caches stay warm)."""

    def run(self, fn, index, job):
        return _call(fn, index, job)


def check_workers(workers) -> int:
    """A worker count 1..256, or ``InputError``."""
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= 256:
        raise InputError(f"workers must be a whole number 1..256, got {workers!r}")
    return workers


def run_jobs(fn: Callable, jobs: Iterable, workers: int = 1, ray: str | None = None,
             progress: Callable[[JobOutcome], None] | None = None,
             in_process: bool | None = None) -> Iterator[JobOutcome]:
    """Run ``fn(job)`` for every job; yield a :class:`JobOutcome` per job as it finishes.

    Parameters
    ----------
    fn : module-level function of one job.
    jobs : the jobs (materialised once; each is pickled to a worker).
    workers : processes (local) or actors (Ray).  1 without Ray runs in this process.
    ray : None (no Ray), ``"local"`` (start a local Ray instance with ``workers`` CPUs), or a
        cluster address (``"auto"``, ``"ray://host:10001"``, ``"host:6379"``) to connect to.
    progress : called with each outcome (e.g. a progress bar's update).
    in_process : run in this process (default: when ``workers`` is 1 and there is no Ray);
        False forces a process pool even for one worker.
    """
    jobs = list(jobs)
    workers = check_workers(workers)
    if ray is not None:
        yield from _run_ray(fn, jobs, workers, ray, progress)
        return
    if in_process is None:
        in_process = workers == 1 or len(jobs) <= 1
    if in_process:
        for i, job in enumerate(jobs):
            outcome = _call(fn, i, job)
            if progress:
                progress(outcome)
            yield outcome
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed
    # spawn: a clean interpreter per worker (no forked numba / BLAS / thread state)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=context) as pool:
        futures = [pool.submit(_call_packed, (fn, i, job)) for i, job in enumerate(jobs)]
        for future in as_completed(futures):
            outcome = future.result()
            if progress:
                progress(outcome)
            yield outcome


def _run_ray(fn, jobs, workers, address, progress):
    try:
        import ray
        from ray.util import ActorPool
    except ImportError as exc:
        raise InputError("--ray needs Ray: pip install 'stase[ray]'") from exc
    started_here = not ray.is_initialized()
    if started_here:
        options = dict(ignore_reinit_error=True, log_to_driver=False, include_dashboard=False)
        if address == "local":
            ray.init(num_cpus=workers, **options)
        else:
            ray.init(address=address, **options)
    try:
        worker_cls = ray.remote(num_cpus=1)(_RayWorker)
        actors = [worker_cls.remote() for _ in range(min(workers, max(1, len(jobs))))]
        pool = ActorPool(actors)
        for outcome in pool.map_unordered(lambda actor, item: actor.run.remote(fn, item[0], item[1]),
                                          list(enumerate(jobs))):
            if progress:
                progress(outcome)
            yield outcome
        for actor in actors:
            ray.kill(actor)
    finally:
        if started_here:
            ray.shutdown()
