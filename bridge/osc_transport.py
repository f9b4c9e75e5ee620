"""OSC over UDP: one small server class that only moves bytes (python-osc for the encoding).

:class:`OscEndpoint` binds a UDP socket, receives datagrams on its own thread, parses them with
python-osc and hands ``(address, args, sender)`` to a callback; it sends messages from the same
socket, so a peer that replies to the sender (Ardour with port 0, our clients) reaches us.

python-osc's own servers drop datagrams they cannot parse without a word; here every parse error
is counted (``stats["parse_errors"]``) and logged (rate-limited to one line a second, with the
count of the ones not shown), and a callback that raises is counted and logged with its
traceback, never allowed to kill the receive loop.

What the kernel drops never reaches us, so we ask it: on Linux the socket has ``SO_RXQ_OVFL``
set, every datagram then carries the socket's cumulative drop count (``recvmsg`` ancillary
data), and ``/proc/net/udp`` (the ``drops`` column of our socket's inode) is read when the
socket is idle; ``stats["kernel_drops"]`` is the larger of the two (datagrams that arrived while
the receive buffer was full and were thrown away; ``status`` shows it under ``"osc"``).

Bind addresses: an empty host (an unset ``$STASE_HOST``) is refused, since the OS reads it as
"every interface"; any address that is not loopback is logged as a loud warning, because the
daemon has no authentication.  ``accept_from`` lets a DAW adapter take datagrams only from its
DAW (the others are counted in ``stats["rejected"]`` and never parsed).
"""
from __future__ import annotations

import ipaddress
import json
import logging
import os
import select
import socket
import struct
import sys
import threading
import time
from typing import Any, Callable

from pythonosc.osc_bundle import OscBundle
from pythonosc.osc_message import OscMessage, ParseError
from pythonosc.osc_message_builder import OscMessageBuilder

log = logging.getLogger("stase.osc")

OnMessage = Callable[[str, list, tuple], None]
AcceptFrom = Callable[[tuple], bool]
MAX_DATAGRAM = 65535
MAX_REPLY_BYTES = 60_000
DEFAULT_RECEIVE_BUFFER_BYTES = 1 << 20
#: Linux's socket option number (asm-generic/socket.h); Python's socket module does not name it
SO_RXQ_OVFL = getattr(socket, "SO_RXQ_OVFL", 40)
_ON_LINUX = sys.platform.startswith("linux")
_PROC_UDP_FILES = ("/proc/net/udp", "/proc/net/udp6")
_DROPS_IDLE_READ_S = 1.0
NO_AUTH_WARNING = ("the daemon has no authentication; anyone who can reach this address can "
                   "control it")


def check_host(host: Any, what: str = "host", bind: bool = False) -> str:
    """``host`` if it can be bound or sent to; ``InputError`` for an empty or non-string one.

    An empty string would bind every interface (the OS's reading of ``""``): that is never what
    an unset ``$STASE_HOST`` meant, so it is refused; ``0.0.0.0`` says it on purpose.
    ``bind`` says so in the message (an address to listen on rather than to send to).
    """
    from stase.core.errors import InputError
    if not isinstance(host, str) or not host.strip():
        every = " (0.0.0.0 listens on every interface)" if bind else ""
        raise InputError(f"{what} must be an address such as 127.0.0.1 or a host name{every}, "
                         f"got {host!r}; is $STASE_HOST set but empty?")
    return host.strip()


def check_port(port: Any, what: str = "port", allow_zero: bool = True) -> int:
    """``port`` as an int in 0..65535 (1..65535 without ``allow_zero``); else ``InputError``."""
    from stase.core.errors import InputError
    low = 0 if allow_zero else 1
    if isinstance(port, bool) or not isinstance(port, int) or not low <= port <= 65535:
        accepted = "0..65535 (0 = any free port)" if allow_zero else "1..65535"
        raise InputError(f"{what} must be a UDP port number {accepted}, got {port!r}")
    return port


def is_loopback(host: str) -> bool:
    """True when every address ``host`` names is a loopback address (127.0.0.0/8, ::1)."""
    try:
        infos = socket.getaddrinfo(host, None, socket.AF_INET, socket.SOCK_DGRAM)
    except OSError:
        return False
    addresses = {info[4][0] for info in infos}
    return bool(addresses) and all(ipaddress.ip_address(a).is_loopback for a in addresses)


def resolve_ipv4(host: str) -> set[str]:
    """The IPv4 addresses ``host`` names (a DAW's address, to compare senders with)."""
    try:
        return {info[4][0] for info in socket.getaddrinfo(host, None, socket.AF_INET,
                                                          socket.SOCK_DGRAM)}
    except OSError as exc:
        from stase.core.errors import InputError
        raise InputError(f"cannot resolve the address {host!r}: {exc}") from exc


def proc_udp_drops(inode: int, files: tuple[str, ...] = _PROC_UDP_FILES) -> int | None:
    """The kernel's drop counter of the UDP socket with this inode (Linux), or None."""
    wanted = str(inode)
    for path in files:
        try:
            with open(path, encoding="ascii", errors="replace") as f:
                header = f.readline().split()
                for line in f:
                    fields = line.split()
                    # columns: sl local rem st tx:rx tr:when retrnsmt uid timeout inode ref ptr drops
                    if len(fields) >= 13 and fields[9] == wanted:
                        return int(fields[12]) if "drops" in header else None
        except (OSError, ValueError):
            continue
    return None


def build_message(address: str, args: list | tuple = ()) -> bytes:
    """Encode one OSC message (ints as i, floats as f, str as s, bytes as b, bools as T/F)."""
    builder = OscMessageBuilder(address=address)
    for a in args:
        builder.add_arg(a)
    return builder.build().dgram


def parse_datagram(data: bytes) -> list[tuple[str, list]]:
    """All ``(address, args)`` in a datagram (bundles flattened); raises on malformed input."""
    if OscBundle.dgram_is_bundle(data):
        # walk the elements ourselves: python-osc's OscBundle logs and skips an element it
        # cannot identify, which would drop it without our count
        if len(data) < 16:
            raise ParseError(f"bundle of {len(data)} bytes is shorter than its 16-byte header")
        out: list[tuple[str, list]] = []
        index = 16
        while index < len(data):
            if index + 4 > len(data):
                raise ParseError("bundle element size is truncated")
            size = int.from_bytes(data[index:index + 4], "big", signed=True)
            element = data[index + 4:index + 4 + size]
            if size <= 0 or len(element) != size:
                raise ParseError(f"bundle element of size {size} does not fit the datagram")
            if not (element.startswith(b"/") or OscBundle.dgram_is_bundle(element)):
                raise ParseError(f"bundle element is neither a message nor a bundle: {element[:16]!r}")
            out.extend(parse_datagram(element))
            index += 4 + size
        return out
    msg = OscMessage(data)
    return [(msg.address, list(msg.params))]


def json_payload(payload: dict) -> str:
    """Strict JSON (no NaN/Infinity, which other parsers reject) for a reply payload."""
    try:
        return json.dumps(payload, allow_nan=False, default=str, separators=(",", ":"))
    except ValueError as exc:
        return json.dumps({"id": payload.get("id") if isinstance(payload.get("id"), (str, int)) else None,
                           "ok": False, "status": "error",
                           "error": f"internal error: reply not representable as JSON ({exc})"})


class OscEndpoint:
    """A UDP socket with a receive thread.

    Parameters
    ----------
    on_message : called on the receive thread for every parsed message.
    host, port : where to bind (port 0 = any free port; see :attr:`port`).  An empty host is
        refused (``InputError``); a non-loopback one is logged as a warning.
    name : for logs and the thread name.
    accept_from : ``accept_from(sender) -> bool``; datagrams it refuses are counted in
        ``stats["rejected"]`` and dropped unparsed (None: every sender is accepted).
    receive_buffer_bytes : ``SO_RCVBUF`` to ask for (the kernel caps it at
        ``net.core.rmem_max`` and doubles it for its bookkeeping; ``stats`` shows what it gave).
    realtime_priority : SCHED_FIFO priority the receive thread asks for when it starts (None:
        the normal scheduler); what it got is :attr:`scheduling` (:mod:`stase.bridge.scheduling`).
    """

    def __init__(self, on_message: OnMessage, host: str = "127.0.0.1", port: int = 0,
                 name: str = "osc", accept_from: AcceptFrom | None = None,
                 receive_buffer_bytes: int = DEFAULT_RECEIVE_BUFFER_BYTES,
                 realtime_priority: int | None = None):
        host = check_host(host, f"{name}: the address to listen on", bind=True)
        port = check_port(port, f"{name}: the port to listen on")
        self.on_message = on_message
        self.accept_from = accept_from
        self.host, self.name = host, name
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self._sock.bind((host, port))
        except OSError as exc:
            self._sock.close()
            from stase.core.errors import StaseError
            raise StaseError(f"{name}: cannot listen on udp {host}:{port}: {exc.strerror} "
                             "(is another stase or DAW surface using it? pick another --port)") from exc
        self.port = self._sock.getsockname()[1]
        if not is_loopback(host):
            log.warning("%s: LISTENING ON %s:%d, NOT LOOPBACK: %s (bind 127.0.0.1 unless you "
                        "mean it)", name, host, self.port, NO_AUTH_WARNING)
        try:  # room for bursts (the kernel caps this at net.core.rmem_max)
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, int(receive_buffer_bytes))
        except OSError as exc:
            log.debug("%s: could not set the receive buffer: %s", name, exc)
        self._drops_via_cmsg = False
        if _ON_LINUX:
            try:  # each datagram then carries the socket's cumulative drop count
                self._sock.setsockopt(socket.SOL_SOCKET, SO_RXQ_OVFL, 1)
                self._drops_via_cmsg = True
            except OSError as exc:
                log.debug("%s: SO_RXQ_OVFL unavailable: %s", name, exc)
        self._inode = os.fstat(self._sock.fileno()).st_ino
        self.realtime_priority = realtime_priority
        #: the receive thread's scheduling once it runs ("SCHED_FIFO 10", "normal"; None before)
        self.scheduling: str | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._send_lock = threading.Lock()
        self._last_error_log = 0.0
        self._errors_not_logged = 0
        self._last_drops_read = 0.0
        self.stats = {"datagrams": 0, "messages": 0, "parse_errors": 0, "callback_errors": 0,
                      "sent": 0, "send_errors": 0, "rejected": 0, "kernel_drops": 0,
                      "kernel_drops_counted": self._drops_via_cmsg
                      or proc_udp_drops(self._inode) is not None,
                      "receive_buffer_bytes": self._sock.getsockopt(socket.SOL_SOCKET,
                                                                    socket.SO_RCVBUF)}

    def start(self) -> "OscEndpoint":
        self._thread = threading.Thread(target=self._loop, name=f"stase-{self.name}", daemon=True)
        self._thread.start()
        return self

    def close(self, timeout_s: float = 1.0) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout_s)
        self._sock.close()

    def refresh_kernel_drops(self) -> int:
        """Read the kernel's drop counter now (``/proc/net/udp``) into ``stats``; returns it.

        The per-datagram count only moves when a datagram arrives after the drops; this one
        is current even when nothing has come since.
        """
        drops = proc_udp_drops(self._inode) if _ON_LINUX else None
        if drops is not None and drops > self.stats["kernel_drops"]:
            self.stats["kernel_drops"] = drops
        return self.stats["kernel_drops"]

    def send(self, address: str, args: list | tuple, to: tuple[str, int]) -> bool:
        """Send one message; False (counted, logged) when the OS refuses it."""
        try:
            data = build_message(address, args)
            with self._send_lock:
                self._sock.sendto(data, to)
            self.stats["sent"] += 1
            return True
        except (OSError, ValueError) as exc:
            self.stats["send_errors"] += 1
            self._log_rate_limited("send of %s to %s failed: %s", address, to, exc)
            return False

    def send_json(self, address: str, payload: dict, to: tuple[str, int]) -> bool:
        text = json_payload(payload)
        if len(text.encode("utf-8")) > MAX_REPLY_BYTES:
            # one UDP datagram carries at most ~64 KiB; say so instead of failing silently
            self.stats["send_errors"] += 1
            text = json_payload({"id": payload.get("id"), "ok": False, "status": "error",
                                 "error": f"reply of {len(text)} characters is too large for one "
                                          f"UDP datagram (limit {MAX_REPLY_BYTES} bytes)"})
        return self.send(address, [text], to)

    def _loop(self) -> None:
        from stase.bridge.scheduling import scheduling_of_this_thread, try_realtime
        if self.realtime_priority is not None:
            try_realtime(self.realtime_priority)
        self.scheduling = scheduling_of_this_thread()
        sock = self._sock
        ancillary_size = socket.CMSG_SPACE(4) if self._drops_via_cmsg else 0
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([sock], [], [], 0.2)
                if not ready:
                    now = time.monotonic()
                    if now - self._last_drops_read >= _DROPS_IDLE_READ_S:
                        self._last_drops_read = now
                        self.refresh_kernel_drops()
                    continue
                if ancillary_size:
                    data, ancillary, _flags, sender = sock.recvmsg(MAX_DATAGRAM, ancillary_size)
                    self._note_drops(ancillary)
                else:
                    data, sender = sock.recvfrom(MAX_DATAGRAM)
            except OSError as exc:
                if self._stop.is_set():
                    return
                # ICMP port-unreachable from an earlier send surfaces here on Linux; harmless
                self._log_rate_limited("%s: receive error: %s", self.name, exc)
                continue
            self.stats["datagrams"] += 1
            if self.accept_from is not None and not self.accept_from(sender):
                self.stats["rejected"] += 1
                self._log_rate_limited("%s: ignored a %d-byte datagram from %s:%s (not the "
                                       "configured peer)", self.name, len(data), *sender[:2])
                continue
            try:
                messages = parse_datagram(data)
            except Exception as exc:  # noqa: BLE001 - python-osc raises several types; all = bad packet
                self.stats["parse_errors"] += 1
                self._log_rate_limited("%s: dropped an unparseable %d-byte datagram from %s: %s: %s",
                                       self.name, len(data), sender, type(exc).__name__, exc)
                continue
            for address, args in messages:
                self.stats["messages"] += 1
                try:
                    self.on_message(address, args, sender)
                except Exception:  # noqa: BLE001 - a handler bug must not stop the server
                    self.stats["callback_errors"] += 1
                    log.exception("%s: handler for %s failed", self.name, address[:80])

    def _note_drops(self, ancillary: list) -> None:
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_RXQ_OVFL and len(payload) >= 4:
                # a uint32 that counts every drop since the socket opened (it wraps at 2**32)
                drops = struct.unpack("=I", payload[:4])[0]
                if drops > self.stats["kernel_drops"]:
                    self.stats["kernel_drops"] = drops

    def _log_rate_limited(self, fmt: str, *args: Any) -> None:
        now = time.monotonic()
        if now - self._last_error_log >= 1.0:
            if self._errors_not_logged:
                fmt += f" (+{self._errors_not_logged} similar not shown)"
            log.warning(fmt, *args)
            self._last_error_log = now
            self._errors_not_logged = 0
        else:
            self._errors_not_logged += 1
