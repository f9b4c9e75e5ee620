"""OSC over UDP: one small server class that only moves bytes (python-osc for the encoding).

:class:`OscEndpoint` binds a UDP socket, receives datagrams on its own thread, parses them with
python-osc and hands ``(address, args, sender)`` to a callback; it sends messages from the same
socket, so a peer that replies to the sender (Ardour with port 0, our clients) reaches us.

python-osc's own servers drop datagrams they cannot parse without a word; here every parse error
is counted (``stats["parse_errors"]``) and logged (rate-limited to one line a second, with the
count of the ones not shown), and a callback that raises is counted and logged with its
traceback, never allowed to kill the receive loop.
"""
from __future__ import annotations

import json
import logging
import select
import socket
import threading
import time
from typing import Any, Callable

from pythonosc.osc_bundle import OscBundle
from pythonosc.osc_message import OscMessage, ParseError
from pythonosc.osc_message_builder import OscMessageBuilder

log = logging.getLogger("stase.osc")

OnMessage = Callable[[str, list, tuple], None]
MAX_DATAGRAM = 65535
MAX_REPLY_BYTES = 60_000


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
    host, port : where to bind (port 0 = any free port; see :attr:`port`).
    name : for logs and the thread name.
    """

    def __init__(self, on_message: OnMessage, host: str = "127.0.0.1", port: int = 0,
                 name: str = "osc"):
        self.on_message = on_message
        self.host, self.name = host, name
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self._sock.bind((host, port))
        except OSError as exc:
            self._sock.close()
            from dsp.errors import StaseError
            raise StaseError(f"{name}: cannot listen on udp {host}:{port}: {exc.strerror} "
                             "(is another stase or DAW surface using it? pick another --port)") from exc
        self.port = self._sock.getsockname()[1]
        try:  # room for bursts (the kernel caps this at net.core.rmem_max)
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        except OSError as exc:
            log.debug("%s: could not enlarge the receive buffer: %s", name, exc)
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._send_lock = threading.Lock()
        self._last_error_log = 0.0
        self._errors_not_logged = 0
        self.stats = {"datagrams": 0, "messages": 0, "parse_errors": 0, "callback_errors": 0,
                      "sent": 0, "send_errors": 0}

    def start(self) -> "OscEndpoint":
        self._thread = threading.Thread(target=self._loop, name=f"stase-{self.name}", daemon=True)
        self._thread.start()
        return self

    def close(self, timeout_s: float = 1.0) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout_s)
        self._sock.close()

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
        sock = self._sock
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([sock], [], [], 0.2)
                if not ready:
                    continue
                data, sender = sock.recvfrom(MAX_DATAGRAM)
            except OSError as exc:
                if self._stop.is_set():
                    return
                # ICMP port-unreachable from an earlier send surfaces here on Linux; harmless
                self._log_rate_limited("%s: receive error: %s", self.name, exc)
                continue
            self.stats["datagrams"] += 1
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
