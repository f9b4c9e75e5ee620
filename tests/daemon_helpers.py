"""One way for tests to run a real daemon on a free port and ask it things.

    from daemon_helpers import ask, running_daemon   # tests/ is on sys.path in pytest
"""
from __future__ import annotations

import contextlib

from stase.bridge.client import request
from stase.bridge.daemon import Daemon, DaemonConfig


def make_daemon(tmp_path, **config) -> Daemon:
    """A daemon (not started) on a free port with its session in ``tmp_path``."""
    return Daemon(DaemonConfig(port=0, session=str(tmp_path / "session.json"), durable_saves=False,
                               **config))


@contextlib.contextmanager
def running_daemon(tmp_path, **config):
    """``make_daemon`` started, stopped on exit."""
    d = make_daemon(tmp_path, **config)
    d.start()
    try:
        yield d
    finally:
        d.stop()


def ask(d, verb, job_timeout_s: float = 600.0, **params) -> dict:
    """One request over UDP, the final reply (a long job's result too)."""
    return request(verb, params, port=d.port, timeout_s=3.0, job_timeout_s=job_timeout_s)


class FakePeer:
    """A bound UDP port standing in for a daemon: records every request as ``(address, params)``
    and sends back ``answer(address, params, copies)`` when that returns a reply object
    (``copies``: how many requests with this id came so far).  ``close()`` when done."""

    def __init__(self, answer=None):
        import socket
        import threading
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.answer = answer
        self.requests: list[tuple[str, dict]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        import json
        import select

        from stase.bridge.osc_transport import build_message, parse_datagram
        while not self._stop.is_set():
            if not select.select([self.sock], [], [], 0.05)[0]:
                continue
            data, sender = self.sock.recvfrom(65535)
            address, args = parse_datagram(data)[0]
            params = json.loads(args[0])
            self.requests.append((address, params))
            copies = sum(1 for _, p in self.requests if p.get("id") == params.get("id"))
            reply = self.answer(address, params, copies) if self.answer else None
            if reply is not None:
                self.sock.sendto(build_message("/stase/reply", [json.dumps(reply)]), sender)

    def close(self):
        self._stop.set()
        self._thread.join(1)
        self.sock.close()
