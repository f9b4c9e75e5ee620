"""``stase client VERB [JSON]``: send one request to a running daemon and print the reply.

Made for scripts (REAPER's ``reaper.ExecProcess``, shell): one UDP request from an ephemeral
port, wait for the ``/stase/reply`` whose ``id`` matches, print it as one line of JSON on stdout
and exit 0 when ``ok`` is true, 1 when the daemon answered with an error, 3 when no daemon
answered (with a message on stderr saying how to start one).  For a long job (``plan``,
``edit``, ...) the client waits for the final result unless ``--no-wait`` is given; with
``--progress`` the intermediate replies are printed too (one JSON per line).
"""
from __future__ import annotations

import argparse
import json
import os
import select
import socket
import sys
import time
import uuid

from dsp.errors import InputError

EXIT_OK, EXIT_ERROR_REPLY, EXIT_UNREACHABLE = 0, 1, 3
DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 9100


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("verb", help="status, sources, set_source, plan, edit, apply, advise, listen, chat, ...")
    parser.add_argument("json", nargs="?", default="{}", help="the request object as JSON (default {})")
    parser.add_argument("--host", default=os.environ.get("STASE_HOST", DEFAULT_HOST))
    parser.add_argument("--port", type=int, default=int(os.environ.get("STASE_PORT", DEFAULT_PORT)))
    parser.add_argument("--timeout", type=float, default=2.0,
                        help="seconds to wait for the first reply (default 2)")
    parser.add_argument("--job-timeout", type=float, default=600.0,
                        help="seconds to wait for a long job's result (default 600)")
    parser.add_argument("--no-wait", action="store_true", help="return after a long job is accepted")
    parser.add_argument("--progress", action="store_true", help="also print progress replies")


def request(verb: str, params: dict | None = None, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
            timeout_s: float = 2.0, job_timeout_s: float = 600.0, wait: bool = True,
            on_progress=None) -> dict:
    """Send one request and return the final reply dict; ``ConnectionError`` when nobody answers."""
    from pythonosc.osc_message import OscMessage
    from pythonosc.osc_message_builder import OscMessageBuilder
    params = dict(params or {})
    params.setdefault("id", uuid.uuid4().hex[:12])
    builder = OscMessageBuilder(address=f"/stase/{verb}")
    builder.add_arg(json.dumps(params))
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        try:
            # connected: replies only from the daemon's address, and an ICMP "port unreachable"
            # (nobody listens) surfaces at once as ConnectionRefusedError instead of a timeout
            sock.connect((host, port))
            sock.send(builder.build().dgram)
        except ConnectionRefusedError as exc:
            raise ConnectionError(f"nothing listens on udp {host}:{port}") from exc
        except OSError as exc:
            raise ConnectionError(f"cannot send to {host}:{port}: {exc}") from exc
        deadline = time.monotonic() + timeout_s
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ConnectionError(f"no reply from {host}:{port} within {timeout_s:g} s")
            try:
                ready, _, _ = select.select([sock], [], [], remaining)
                if not ready:
                    continue
                data = sock.recv(65535)
            except ConnectionRefusedError as exc:  # ICMP port unreachable: nobody listens
                raise ConnectionError(f"nothing listens on udp {host}:{port}") from exc
            try:
                msg = OscMessage(data)
                reply = json.loads(msg.params[0])
            except Exception:  # noqa: BLE001 - not one of ours; keep waiting
                continue
            if msg.address != "/stase/reply" or reply.get("id") != params["id"]:
                continue
            status = reply.get("status")
            if status in ("accepted", "progress") and reply.get("ok"):
                if on_progress is not None:
                    on_progress(reply)
                if not wait:
                    return reply
                deadline = time.monotonic() + job_timeout_s
                continue
            return reply
    finally:
        sock.close()


def run(args: argparse.Namespace) -> int:
    try:
        params = json.loads(args.json) if args.json.strip() else {}
    except json.JSONDecodeError as exc:
        raise InputError(f"the request must be a JSON object: {exc}") from exc
    if not isinstance(params, dict):
        raise InputError(f"the request must be a JSON object, got {type(params).__name__}")
    printer = (lambda r: print(json.dumps(r), flush=True)) if args.progress else None
    try:
        reply = request(args.verb, params, args.host, args.port, args.timeout, args.job_timeout,
                        wait=not args.no_wait, on_progress=printer)
    except ConnectionError as exc:
        print(f"stase daemon not reachable at {args.host}:{args.port} — start it with `stase serve` "
              f"({exc})", file=sys.stderr)
        return EXIT_UNREACHABLE
    print(json.dumps(reply), flush=True)
    return EXIT_OK if reply.get("ok") else EXIT_ERROR_REPLY
