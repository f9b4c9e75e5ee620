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
