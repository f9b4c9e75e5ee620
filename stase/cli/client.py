"""``stase client VERB [JSON]`` (the command line of :mod:`stase.bridge.client`): send one request
to a running daemon and print the reply.  Exit codes and retries: see :mod:`stase.bridge.client`.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from stase.bridge.client import (DEFAULT_HOST, DEFAULT_PORT, EXIT_BUSY, EXIT_ERROR_REPLY, EXIT_OK,
                                 EXIT_UNREACHABLE, DaemonBusy, _check_target, check_seconds, request)
from stase.core.errors import InputError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("verb", help="status, sources, set_source, set_room, stems, help, plan, edit, apply, advise, "
                             "listen, chat, ...")
    parser.add_argument("json", nargs="?", default="{}", help="the request object as JSON (default {})")
    parser.add_argument("--host", default=os.environ.get("STASE_HOST", DEFAULT_HOST),
                        help="the daemon's address (default $STASE_HOST or 127.0.0.1)")
    parser.add_argument("--port", default=os.environ.get("STASE_PORT", str(DEFAULT_PORT)),
                        help="the daemon's UDP port 1..65535 (default $STASE_PORT or 9100)")
    parser.add_argument("--timeout", default="2",
                        help="seconds to wait for the first reply, re-sending short requests "
                             "meanwhile (default 2)")
    parser.add_argument("--job-timeout", default="600",
                        help="seconds to wait for a long job's result (default 600)")
    parser.add_argument("--no-wait", action="store_true", help="return after a long job is accepted")
    parser.add_argument("--progress", action="store_true", help="also print progress replies")


def run(args: argparse.Namespace) -> int:
    try:
        params = json.loads(args.json) if args.json.strip() else {}
    except json.JSONDecodeError as exc:
        raise InputError(f"the request must be a JSON object: {exc}") from exc
    if not isinstance(params, dict):
        raise InputError(f"the request must be a JSON object, got {type(params).__name__}")
    host, port = _check_target(args.host, args.port)
    timeout_s = check_seconds(args.timeout, "--timeout")
    job_timeout_s = check_seconds(args.job_timeout, "--job-timeout")
    printer = (lambda r: print(json.dumps(r), flush=True)) if args.progress else None
    try:
        reply = request(args.verb, params, host, port, timeout_s, job_timeout_s,
                        wait=not args.no_wait, on_progress=printer)
    except DaemonBusy as exc:
        print(f"stase daemon busy at {host}:{port} ({exc}; it may be overloaded): the port did "
              f"not refuse the request, so something listens there; try again or give a longer "
              f"--timeout", file=sys.stderr)
        return EXIT_BUSY
    except ConnectionError as exc:
        print(f"stase daemon not reachable at {host}:{port} — start it with `stase serve` "
              f"({exc})", file=sys.stderr)
        return EXIT_UNREACHABLE
    print(json.dumps(reply), flush=True)
    return EXIT_OK if reply.get("ok") else EXIT_ERROR_REPLY
