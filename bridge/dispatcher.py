"""One dispatcher maps ``/stase/<verb>`` OSC requests to handlers (routing, apart from transport).

Request: address ``/stase/<verb>`` with exactly one OSC string argument holding a JSON object;
the object may carry a client ``"id"`` (string or number), echoed in every reply.

Replies (address ``/stase/reply``, one JSON string argument), sent to the request's sender:

* ``{"id", "ok": true, "status": "done", "result": {...}}``  - a short verb's answer;
* ``{"id", "ok": true, "status": "accepted", "job": n}``      - a long job was queued;
* ``{"id", "ok": true, "status": "progress", "job": n, "progress": 0..1, "message": "..."}``;
* ``{"id", "ok": true, "status": "done", "job": n, "result": {...}}`` - the long job's result;
* ``{"id", "ok": false, "status": "error", "error": "what was wrong and what is accepted"}``.

Limits on a request (each refused with an error reply that names the limit): the JSON text is at
most :data:`MAX_REQUEST_CHARS` (a UDP datagram carries less anyway); no ``NaN``/``Infinity``
literal, no number that overflows to infinity (``1e400``), no integer of more than
:data:`MAX_INTEGER_DIGITS` digits, no nesting deeper than Python's parser can take; an ``id`` is a
finite number or a string of at most :data:`MAX_ID_CHARS` characters (it is echoed in every
reply, so it must never make a reply too large).  Error messages are cut to
:data:`MAX_ERROR_CHARS` so an error reply always fits one datagram.

Handlers are ``handler(params: dict) -> dict`` (long ones also get ``progress(fraction, message)``).
They validate and raise ``InputError``/``ValueError``/``TypeError`` for bad requests (an error
reply with their message), ``StaseError`` for backend failures.  Anything else is a bug: it is
logged with its traceback, counted in ``internal_errors`` and answered with an error reply.
Long jobs run one at a time on a worker thread, behind a bounded queue (``busy`` when full).

Every short verb's handling time (request parsed -> reply handed to the socket, on the request
thread) is kept for the last :data:`HANDLING_HISTORY` requests: :meth:`Dispatcher.handling_ms`
(in ``status.requests_handling_ms``): the daemon's own share of a round trip, apart from the
client's and the kernel's.
"""
from __future__ import annotations

import itertools
import json
from array import array
import logging
import math
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from stase.core.errors import StaseError

log = logging.getLogger("stase.dispatcher")

PREFIX = "/stase/"
REPLY_ADDRESS = "/stase/reply"
MAX_REQUEST_CHARS = 65_536        # one UDP datagram holds at most 65 507 bytes of payload
MAX_ID_CHARS = 128
MAX_INTEGER_DIGITS = 30           # a plan or a placement never needs more; 10**400 is an attack
MAX_ERROR_CHARS = 4_000
#: How many short requests' handling times :meth:`Dispatcher.handling_ms` summarises.
HANDLING_HISTORY = 4096

SendReply = Callable[[Any, dict], None]   # (sender, payload) -> None
Handler = Callable[..., Any]


@dataclass
class Route:
    verb: str
    handler: Handler
    long: bool
    help: str


class Dispatcher:
    """Routes requests to handlers and sends the JSON replies through ``send_reply``.

    Parameters
    ----------
    send_reply : ``send_reply(sender, payload_dict)``; the transport turns it into an OSC
        message to ``sender``.
    max_pending_jobs : how many long jobs may wait behind the running one.
    """

    def __init__(self, send_reply: SendReply, max_pending_jobs: int = 8):
        self._send_reply = send_reply
        self._routes: dict[str, Route] = {}
        self._jobs: queue.Queue = queue.Queue(maxsize=max_pending_jobs)
        self._job_ids = itertools.count(1)
        self._worker: threading.Thread | None = None
        self._stopping = threading.Event()
        self.stats = {"requests": 0, "ok": 0, "errors": 0, "internal_errors": 0,
                      "unknown_verb": 0, "jobs_done": 0, "jobs_failed": 0, "busy": 0}
        self.current_job: dict[str, Any] | None = None
        #: handling time (s) of the last short requests, a ring of HANDLING_HISTORY
        self.handling_s = array("d", bytes(8 * HANDLING_HISTORY))
        self.handled = 0

    # ---------------------------------------------------------------- setup
    def register(self, verb: str, handler: Handler, long: bool = False, help: str = "") -> None:
        """Route ``/stase/<verb>`` to ``handler``; ``long`` runs it as a background job."""
        self._routes[verb] = Route(verb, handler, long, help)

    @property
    def verbs(self) -> list[str]:
        return sorted(self._routes)

    def start(self) -> None:
        if self._worker is None:
            self._stopping.clear()
            self._worker = threading.Thread(target=self._work, name="stase-jobs", daemon=True)
            self._worker.start()

    def stop(self, timeout_s: float = 2.0) -> None:
        self._stopping.set()
        if self._worker is not None:
            self._worker.join(timeout_s)
            if self._worker.is_alive():
                log.warning("a long job is still running; leaving it behind at shutdown")
            self._worker = None

    # ---------------------------------------------------------------- requests
    def handle(self, address: str, args: list, sender: Any) -> None:
        """Handle one parsed OSC message; always answers ``sender`` exactly once (or more for jobs)."""
        self.stats["requests"] += 1
        request_id = None
        try:
            verb, params = self._parse(address, args)
            request_id = params.get("id")
            route = self._routes[verb]
            if route.long:
                self._enqueue(route, params, sender, request_id)
                return
            started = time.perf_counter()
            result = route.handler(params)
            self.stats["ok"] += 1
            self._reply(sender, {"id": request_id, "ok": True, "status": "done", "result": result})
            self._note_handling(time.perf_counter() - started)
        except Exception as exc:  # noqa: BLE001 - every failure becomes an error reply
            self._reply_error(sender, request_id, exc)

    def _note_handling(self, seconds: float) -> None:
        self.handling_s[self.handled % HANDLING_HISTORY] = seconds
        self.handled += 1

    def handling_ms(self, since: int = 0) -> dict[str, Any]:
        """``{"n", "median_ms", "p99_ms", "max_ms"}`` of the short requests answered since the
        ``since``-th (``handled`` at an earlier moment; at most the last HANDLING_HISTORY)."""
        stop = self.handled
        start = max(since, stop - HANDLING_HISTORY)
        times = sorted(self.handling_s[i % HANDLING_HISTORY] for i in range(start, stop))
        if not times:
            return {"n": 0, "median_ms": None, "p99_ms": None, "max_ms": None}

        def rank(q: float) -> float:  # nearest-rank percentile
            return round(1e3 * times[min(len(times) - 1, max(0, math.ceil(q * len(times)) - 1))], 3)
        return {"n": len(times), "median_ms": rank(0.5), "p99_ms": rank(0.99),
                "max_ms": round(1e3 * times[-1], 3)}

    def _parse(self, address: str, args: list) -> tuple[str, dict]:
        if not isinstance(address, str) or not address.startswith(PREFIX):
            self.stats["unknown_verb"] += 1
            raise ValueError(f"unknown address {str(address)[:80]!r}: requests are "
                             f"{PREFIX}<verb> with verbs {self.verbs}")
        verb = address[len(PREFIX):]
        if verb not in self._routes:
            self.stats["unknown_verb"] += 1
            raise ValueError(f"unknown verb {verb[:80]!r}; verbs: {self.verbs}")
        if len(args) != 1 or not isinstance(args[0], str):
            types = ",".join(type(a).__name__ for a in args) or "none"
            raise TypeError(f"{address} takes exactly one JSON string argument, got ({types})")
        text = args[0]
        if len(text) > MAX_REQUEST_CHARS:
            raise ValueError(f"request of {len(text)} characters is over the {MAX_REQUEST_CHARS} limit")
        if not text.strip():
            params: Any = {}
        else:
            params = parse_json(text)
        if not isinstance(params, dict):
            raise TypeError(f"the JSON argument must be an object, got {type(params).__name__}")
        rid = params.get("id")
        if isinstance(rid, bool) or (rid is not None and not isinstance(rid, (str, int, float))):
            raise TypeError(f"id must be a string or a number, got {_short(rid)}")
        if isinstance(rid, str) and len(rid) > MAX_ID_CHARS:
            raise ValueError(f"id must be at most {MAX_ID_CHARS} characters, got {len(rid)}")
        return verb, params

    # ---------------------------------------------------------------- long jobs
    def _enqueue(self, route: Route, params: dict, sender: Any, request_id: Any) -> None:
        job = next(self._job_ids)
        try:
            self._jobs.put_nowait((job, route, params, sender, request_id))
        except queue.Full:
            self.stats["busy"] += 1
            raise StaseError(f"busy: {self._jobs.maxsize} jobs already waiting; try again later")
        self._reply(sender, {"id": request_id, "ok": True, "status": "accepted", "job": job,
                             "verb": route.verb, "queued": self._jobs.qsize()})

    def _work(self) -> None:
        while not self._stopping.is_set():
            try:
                job, route, params, sender, request_id = self._jobs.get(timeout=0.2)
            except queue.Empty:
                continue
            self.current_job = {"job": job, "verb": route.verb, "started_at": time.time()}

            def progress(fraction: float, message: str = "", _job=job, _s=sender, _id=request_id):
                self._reply(_s, {"id": _id, "ok": True, "status": "progress", "job": _job,
                                 "progress": round(float(fraction), 3), "message": str(message)})

            try:
                result = route.handler(params, progress)
                self.stats["ok"] += 1
                self.stats["jobs_done"] += 1
                self._reply(sender, {"id": request_id, "ok": True, "status": "done", "job": job,
                                     "result": result})
            except Exception as exc:  # noqa: BLE001 - becomes the job's error reply
                self.stats["jobs_failed"] += 1
                self._reply_error(sender, request_id, exc, job=job)
            finally:
                self.current_job = None

    # ---------------------------------------------------------------- replies
    def _reply_error(self, sender: Any, request_id: Any, exc: BaseException, job: int | None = None) -> None:
        self.stats["errors"] += 1
        if isinstance(exc, (ValueError, TypeError, KeyError)):
            message = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
        elif isinstance(exc, StaseError):
            cause = f" (caused by {exc.__cause__!r})" if exc.__cause__ else ""
            message = f"{exc}{cause}"
        else:
            self.stats["internal_errors"] += 1
            log.exception("internal error while handling a request")
            message = f"internal error: {type(exc).__name__}: {exc}"
        if len(message) > MAX_ERROR_CHARS:  # e.g. a list of thousands of names: keep the reply one datagram
            message = f"{message[:MAX_ERROR_CHARS]}... ({len(message) - MAX_ERROR_CHARS} more characters)"
        payload = {"id": request_id, "ok": False, "status": "error", "error": message}
        if job is not None:
            payload["job"] = job
        # a handler may say more about a failure in fields (chat: where it was routed)
        extra = getattr(exc, "reply_fields", None)
        if isinstance(extra, dict):
            payload.update({k: v for k, v in extra.items() if k not in payload and isinstance(v, (str, int, float))})
        self._reply(sender, payload)

    def _reply(self, sender: Any, payload: dict) -> None:
        self._send_reply(sender, payload)


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number stase accepts; send finite numbers")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]} is out of range (it overflows to infinity); "
                         "send finite numbers")
    return value


def _bounded_int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_INTEGER_DIGITS:
        raise ValueError(f"integer of {digits} digits is out of range (at most {MAX_INTEGER_DIGITS})")
    return int(text)


def parse_json(text: str) -> Any:
    """Parse a request's JSON text strictly (see the module docstring); ``ValueError`` says why."""
    try:
        return json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float,
                          parse_int=_bounded_int)
    except json.JSONDecodeError as exc:
        raise ValueError(f"argument is not valid JSON ({exc.msg} at char {exc.pos}); "
                         "send one JSON object, e.g. '{\"id\": 1}'") from exc
    except RecursionError as exc:  # a datagram of [[[[...]]]]: Python's parser runs out of stack
        raise ValueError("argument is nested too deeply; send one flat JSON object") from exc


def _short(value: Any, limit: int = 40) -> str:
    shown = repr(value)
    return shown if len(shown) <= limit else shown[:limit] + "..."
