"""JACK routing: each DAW track's output into the live monitor's input for that track.

Holds
-----
jack_connections() -> {port: [connected ports]}
    Every JACK port and what it is connected to (``jack_lsp -c``).
portaudio_client_name() -> str | None
    The JACK client name of this process's PortAudio (``PaJack_GetClientName``), e.g.
    ``"PortAudio"``: the live monitor's ports are ``<name>:in_<k>`` and ``<name>:out_<k>``.
monitor_inputs(monitor_client, ports) -> [port]
    The monitor's input ports in channel order.
ardour_track_outputs(track, ports) -> [port]
    The JACK output ports of the Ardour track named ``track`` (``<client>:<track>/audio_out N``).
connect_tracks(tracks, monitor_client, ports=None) -> RoutingReport
    Connect each track's outputs to the monitor input of the same index, after taking away the
    physical captures PortAudio connects by itself; tracks not found are reported, not guessed.

Why the command-line tools: ``jack_lsp``, ``jack_connect`` and ``jack_disconnect`` come with
every JACK install (Debian's ``jackd2``), so the daemon needs no extra Python binding, and a user
can run the same commands by hand.  This module only moves connections; it never opens a JACK
client of its own.

Tracks with one output (Ardour: a mono-out track, or a track whose panner is bypassed with
one output) give the monitor the track's signal after the fader and before any panning.  A
track with two outputs has both connected to its input (summed): its panner's law then changes
the level with the pan (-3 dB per side at centre sums to +3 dB), so give stase mono outputs.
"""
from __future__ import annotations

import ctypes
import logging
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from typing import Iterable

from stase.core.errors import StaseError

log = logging.getLogger("stase.jack_routing")

#: Seconds a JACK command-line tool may take before it counts as failed.
TOOL_TIMEOUT_S = 10.0


@dataclass
class RoutingReport:
    """What :func:`connect_tracks` did: connections made, tracks it could not find, errors."""

    connected: list[tuple[str, str]] = field(default_factory=list)
    disconnected: list[tuple[str, str]] = field(default_factory=list)
    missing_tracks: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"connected": [list(c) for c in self.connected],
                "disconnected": [list(c) for c in self.disconnected],
                "missing_tracks": list(self.missing_tracks), "errors": list(self.errors)}


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise StaseError(f"{name} not found: the JACK routing needs JACK's command-line tools "
                         "(Debian: apt-get install jackd2)")
    return path


def _run(args: list[str]) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=TOOL_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise StaseError(f"{' '.join(args[:2])} failed: {exc}") from exc


def jack_connections() -> dict[str, list[str]]:
    """Every JACK port of the running server and the ports it is connected to."""
    out = _run([_tool("jack_lsp"), "-c"])
    if out.returncode != 0:
        raise StaseError(f"jack_lsp failed (is a JACK server running?): {out.stderr.strip()[:300]}")
    ports: dict[str, list[str]] = {}
    current = None
    for line in out.stdout.splitlines():
        if not line.strip():
            continue
        if line[0].isspace():  # an indented line: a connection of the port above
            if current is not None:
                ports[current].append(line.strip())
        else:
            current = line.strip()
            ports[current] = []
    return ports


def portaudio_client_name() -> str | None:
    """The JACK client name PortAudio uses in this process (None: PortAudio has no JACK client).

    Read with ``PaJack_GetClientName`` from the PortAudio library sounddevice loaded; the
    client exists once a stream has been opened on the JACK host API.
    """
    try:
        import sounddevice as sd
        lib = ctypes.CDLL(sd._libname)
        get = lib.PaJack_GetClientName
    except (OSError, AttributeError, ImportError):
        return None
    get.restype = ctypes.c_int
    get.argtypes = [ctypes.POINTER(ctypes.c_char_p)]
    name = ctypes.c_char_p()
    if get(ctypes.byref(name)) != 0 or not name.value:
        return None
    return name.value.decode("utf-8", "replace")


def ardour_track_outputs(track: str, ports: Iterable[str]) -> list[str]:
    """Ardour's output ports of the track named ``track`` (exact name), in channel order."""
    pattern = re.compile(r"^[^:]+:" + re.escape(track) + r"/audio_out (\d+)$")
    found = [(int(m.group(1)), p) for p in ports if (m := pattern.match(p))]
    return [p for _, p in sorted(found)]


def monitor_inputs(monitor_client: str, ports: Iterable[str]) -> list[str]:
    """The monitor's input ports in channel order.

    PortAudio numbers a client's ports on from the streams it opened before (a restarted
    monitor's first input may be ``in_3``), so the order, not the number, says the channel."""
    pattern = re.compile(r"^" + re.escape(monitor_client) + r":in_(\d+)$")
    found = [(int(m.group(1)), p) for p in ports if (m := pattern.match(p))]
    return [p for _, p in sorted(found)]


def connect_tracks(tracks: list[str], monitor_client: str,
                   ports: dict[str, list[str]] | None = None) -> RoutingReport:
    """Route track ``i``'s Ardour outputs to the monitor's ``i``-th input (one input per track).

    First the monitor's inputs lose every connection that is not a track's output (PortAudio
    connects the physical captures to them by itself); connections already in place are kept,
    so calling it again (after the DAW or the monitor restarted) is harmless.  A track with no
    output ports is listed in ``missing_tracks``; a connection JACK refuses is in ``errors``.
    """
    report = RoutingReport()
    ports = jack_connections() if ports is None else ports
    inputs = monitor_inputs(monitor_client, ports)
    if len(inputs) != len(tracks):
        report.errors.append(f"the monitor {monitor_client!r} has {len(inputs)} input ports "
                             f"({inputs[:8]}), not one per track ({len(tracks)})")
        return report
    for track, destination in zip(tracks, inputs):
        sources = ardour_track_outputs(track, ports)
        if not sources:
            report.missing_tracks.append(track)
        for other in ports[destination]:
            if other not in sources:
                if _run([_tool("jack_disconnect"), other, destination]).returncode == 0:
                    report.disconnected.append((other, destination))
        for source in sources:
            if source in ports[destination]:
                continue
            result = _run([_tool("jack_connect"), source, destination])
            if result.returncode == 0:
                report.connected.append((source, destination))
            else:
                report.errors.append(f"jack_connect {source} {destination}: "
                                     f"{(result.stderr or result.stdout).strip()[:200]}")
    if report.missing_tracks:
        log.warning("JACK routing: no Ardour output ports for %s", report.missing_tracks)
    return report
