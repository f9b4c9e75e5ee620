"""``stase client VERB [JSON | --request-file PATH]`` (the command line of
:mod:`stase.bridge.client`): send one request to a running daemon and print the reply.

The request object comes from the positional JSON (for shells) or from a UTF-8 file
(``--request-file``, for scripts: the REAPER and Ardour actions write it into their spool folder,
so no payload passes through a shell's quoting).  Either way it is parsed by the daemon's own
strict parser (:func:`stase.bridge.dispatcher.parse_json`: no ``NaN``/``Infinity``, bounded
integers) and held to the daemon's size limit (:data:`~stase.bridge.dispatcher.MAX_REQUEST_CHARS`),
so a request the daemon would refuse is refused here, before anything is sent, with exit 2.
Exit codes and retries: see :mod:`stase.bridge.client`.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from stase.bridge.client import (DEFAULT_HOST, DEFAULT_PORT, EXIT_BUSY, EXIT_ERROR_REPLY, EXIT_OK,
                                 EXIT_UNREACHABLE, DaemonBusy, check_target, check_seconds, request)
from stase.bridge.dispatcher import MAX_REQUEST_CHARS, parse_json
from stase.core.errors import InputError

#: the longest request file read, in bytes: a UTF-8 character takes at most 4 bytes, so a file
#: within the daemon's character limit is never longer (a bigger one is refused unread)
MAX_REQUEST_FILE_BYTES = 4 * MAX_REQUEST_CHARS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("verb", help="status, sources, set_source, set_room, stems, help, plan, edit, apply, advise, "
                             "listen, chat, ...")
    parser.add_argument("json", nargs="?", default=None,
                        help="the request object as JSON (default {}); or give --request-file")
    parser.add_argument("--request-file", metavar="PATH", default=None,
                        help="read the request object from this UTF-8 JSON file instead of the "
                             f"command line (at most {MAX_REQUEST_CHARS} characters)")
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


def parse_request(text: str, where: str) -> dict:
    """The request object in ``text`` (JSON), checked as the daemon checks it.

    Parameters
    ----------
    text : the JSON text; blank means ``{}``.
    where : what the text came from, for the messages ("the request", "--request-file x.json").

    Raises
    ------
    InputError : over :data:`MAX_REQUEST_CHARS` characters, not valid JSON (``NaN`` and
        ``Infinity`` included), or not an object.
    """
    if len(text) > MAX_REQUEST_CHARS:
        raise InputError(f"{where} is {len(text)} characters, over the daemon's limit of "
                         f"{MAX_REQUEST_CHARS}")
    if not text.strip():
        return {}
    try:
        params = parse_json(text)
    except ValueError as exc:
        raise InputError(f"{where} was refused: {exc}") from exc
    if not isinstance(params, dict):
        raise InputError(f"{where} must be a JSON object, got {type(params).__name__}")
    return params


def read_request_file(path: str) -> dict:
    """The request object in the UTF-8 file ``path`` (a byte-order mark is allowed).

    Raises
    ------
    InputError : the file is missing, unreadable, a folder, longer than
        :data:`MAX_REQUEST_FILE_BYTES` bytes, not UTF-8, or its text fails :func:`parse_request`.
    """
    where = f"--request-file {path!r}"
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_REQUEST_FILE_BYTES + 1)
    except FileNotFoundError:
        raise InputError(f"{where}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{where} is a folder; give the JSON file of one request") from None
    except OSError as exc:
        raise InputError(f"{where} cannot be read: {exc.strerror or exc}") from exc
    if len(data) > MAX_REQUEST_FILE_BYTES:
        raise InputError(f"{where} is over {MAX_REQUEST_FILE_BYTES} bytes; a request holds at "
                         f"most {MAX_REQUEST_CHARS} characters")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{where} is not UTF-8 text (byte {exc.start}: {exc.reason})") from None
    return parse_request(text, where)


def run(args: argparse.Namespace) -> int:
    if args.request_file is not None and args.json is not None:
        raise InputError("give the request either as the JSON argument or with --request-file, "
                         "not both")
    if args.request_file is not None:
        params = read_request_file(args.request_file)
    else:
        params = parse_request(args.json or "", "the request")
    host, port = check_target(args.host, args.port)
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
