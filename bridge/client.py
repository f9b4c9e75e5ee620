"""``stase client VERB [JSON | --request-file PATH]``: send one request to a running daemon and
print the reply (the command line itself: :mod:`stase.cli.client`).

Made for scripts (REAPER's ``reaper.ExecProcess``, shell): one UDP request from an ephemeral
port, wait for the ``/stase/reply`` whose ``id`` matches, print it as one line of JSON on stdout
and exit 0 when ``ok`` is true, 1 when the daemon answered with an error, 2 for a bad command
line (an empty ``--host``, ``--port 70000``, ``--timeout -1``), 3 when nothing listens on the
port (the kernel said "port unreachable": start a daemon with ``stase serve``), and 4 when the
address is reachable but no reply came in time (the daemon is busy or overloaded; nothing
suggests it is down).  For a long job (``plan``, ``edit``, ...) the client waits for the final
result unless ``--no-wait`` is given; with ``--progress`` the intermediate replies are printed
too (one JSON per line).

Retries.  UDP loses datagrams when the daemon's receive buffer is full (a flood): the client
then re-sends the same request, with the same ``id``, 0.25 s, 0.5 s, 1 s ... apart (doubling,
at most 1 s apart) until ``--timeout`` runs out, but only while nothing at all has come back
for that id, and only for the verbs in :data:`RETRY_VERBS`, whose second delivery does no harm
(a status read; a ``set_source`` or ``apply`` that sets the same values again).  The daemon
does not de-duplicate ids, so a long job (``plan``, ``edit``, ``advise``, ``listen``, ``chat``)
or an unknown verb is sent once: a copy would run the job twice.
"""
from __future__ import annotations

import json
import math
import select
import socket
import time
import uuid

from stase.core.errors import InputError

EXIT_OK, EXIT_ERROR_REPLY, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_BUSY = 0, 1, 2, 3, 4
DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 9100
#: verbs that may be sent again when no reply came (a second delivery changes nothing)
RETRY_VERBS = frozenset({"status", "sources", "set_source", "tracks", "select", "apply", "set_room",
                         "stems", "help"})
RETRY_FIRST_S, RETRY_MAX_GAP_S = 0.25, 1.0
#: the largest UDP payload over IPv4 (65 535 - 8 bytes of UDP header - 20 of IP header)
MAX_DATAGRAM_BYTES = 65_507


class DaemonUnreachable(ConnectionError):
    """Nothing listens on the daemon's port (ICMP port unreachable), or the send failed."""


class DaemonBusy(ConnectionError):
    """The port is reachable (no ICMP error) but no reply came within the timeout."""


def check_seconds(value, what: str) -> float:
    """A finite, positive number of seconds; ``InputError`` otherwise."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = math.nan
    if isinstance(value, bool) or not math.isfinite(seconds) or seconds <= 0:
        raise InputError(f"{what} must be a positive number of seconds, got {value!r}")
    return seconds


def check_target(host, port) -> tuple[str, int]:
    """The daemon's address and UDP port 1..65535 (a port may be given as text, as from
    ``$STASE_PORT``); ``InputError`` naming ``--host``/``--port`` otherwise."""
    from stase.bridge.osc_transport import check_host, check_port
    host = check_host(host, "--host (the daemon's address, or $STASE_HOST)")
    if isinstance(port, str):
        try:
            port = int(port.strip())
        except ValueError:
            raise InputError(f"--port (or $STASE_PORT) must be a UDP port number 1..65535, "
                             f"got {port!r}") from None
    return host, check_port(port, "--port (the daemon's port, or $STASE_PORT)", allow_zero=False)


def request(verb: str, params: dict | None = None, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
            timeout_s: float = 2.0, job_timeout_s: float = 600.0, wait: bool = True,
            on_progress=None, retry: bool | None = None) -> dict:
    """Send one request and return the final reply dict.

    Parameters
    ----------
    timeout_s : seconds to wait for the first reply (positive).
    job_timeout_s : seconds to wait, after each reply of a long job, for the next one.
    retry : re-send while nothing came back (see the module docstring); None = for
        :data:`RETRY_VERBS` only.

    Raises
    ------
    DaemonUnreachable : nothing listens there (both are ``ConnectionError``).
    DaemonBusy : no reply in time from a reachable address.
    InputError : a bad host, port or timeout, or a request too large for one UDP datagram
        (:data:`MAX_DATAGRAM_BYTES`; the kernel would refuse to send it).
    """
    from pythonosc.osc_message import OscMessage
    from pythonosc.osc_message_builder import OscMessageBuilder
    host, port = check_target(host, port)
    timeout_s = check_seconds(timeout_s, "--timeout")
    job_timeout_s = check_seconds(job_timeout_s, "--job-timeout")
    retry = verb in RETRY_VERBS if retry is None else retry
    params = dict(params or {})
    params.setdefault("id", uuid.uuid4().hex[:12])
    builder = OscMessageBuilder(address=f"/stase/{verb}")
    builder.add_arg(json.dumps(params))
    datagram = builder.build().dgram
    if len(datagram) > MAX_DATAGRAM_BYTES:
        # said here: the kernel's EMSGSIZE would otherwise read as "daemon not reachable"
        raise InputError(f"the {verb} request is {len(datagram)} bytes as an OSC message, over the "
                         f"{MAX_DATAGRAM_BYTES} bytes one UDP datagram carries; send less")
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        try:
            # connected: replies only from the daemon's address, and an ICMP "port unreachable"
            # (nobody listens) surfaces at once as ConnectionRefusedError instead of a timeout
            sock.connect((host, port))
        except OSError as exc:
            raise DaemonUnreachable(f"cannot send to {host}:{port}: {exc}") from exc

        def send() -> None:
            try:
                sock.send(datagram)
            except ConnectionRefusedError as exc:
                raise DaemonUnreachable(f"nothing listens on udp {host}:{port}") from exc
            except OSError as exc:
                raise DaemonUnreachable(f"cannot send to {host}:{port}: {exc}") from exc

        send()
        sends, heard = 1, False
        started = time.monotonic()
        deadline = started + timeout_s
        gap = RETRY_FIRST_S
        next_send = started + gap
        waiting_for = "first"
        while True:
            now = time.monotonic()
            if now >= deadline:
                if waiting_for == "first":
                    raise DaemonBusy(f"no reply within {timeout_s:g} s after {sends} "
                                     f"{'try' if sends == 1 else 'tries'}")
                raise DaemonBusy(f"the daemon accepted the job but sent nothing more within "
                                 f"{job_timeout_s:g} s (--job-timeout)")
            wake = min(deadline, next_send) if retry and not heard else deadline
            try:
                ready, _, _ = select.select([sock], [], [], max(0.0, wake - now))
                if not ready:
                    if retry and not heard and time.monotonic() >= next_send:
                        send()
                        sends += 1
                        gap = min(gap * 2, RETRY_MAX_GAP_S)
                        next_send = time.monotonic() + gap
                    continue
                data = sock.recv(65535)
            except ConnectionRefusedError as exc:  # ICMP port unreachable: nobody listens
                raise DaemonUnreachable(f"nothing listens on udp {host}:{port}") from exc
            except OSError as exc:  # host or network unreachable (ICMP), ...
                raise DaemonUnreachable(f"cannot reach {host}:{port}: {exc}") from exc
            try:
                msg = OscMessage(data)
                reply = json.loads(msg.params[0])
            except Exception:  # noqa: BLE001 - not one of ours; keep waiting
                continue
            if (msg.address != "/stase/reply" or not isinstance(reply, dict)
                    or reply.get("id") != params["id"]):
                continue
            heard = True
            status = reply.get("status")
            if status in ("accepted", "progress") and reply.get("ok"):
                if on_progress is not None:
                    on_progress(reply)
                if not wait:
                    return reply
                deadline = time.monotonic() + job_timeout_s
                waiting_for = "job"
                continue
            return reply
    finally:
        sock.close()


