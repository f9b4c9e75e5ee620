"""Start a real, headless Ardour (Debian's ``ardour`` package) with its OSC surface enabled.

Reusable by any test that needs a live Ardour: the bridge's adapter test and the Ardour Lua
action test use it the same way::

    from ardour_host import ardour_session, ArdourUnavailable   # tests/ is on sys.path in pytest
    # (not "tests.ardour_host": a site-packages "tests" package can shadow the folder)

    with ardour_session(["Vox", "Gtr L", "Bass"]) as host:
        host.osc_port        # UDP port of Ardour's OSC surface on 127.0.0.1
        host.session_dir     # the session folder (``<dir>/<name>.ardour`` inside)
        host.restart()       # stop and start again (same session, same port)

    # Ardour on a JACK server instead of its Dummy backend (the live-audio tests):
    with jack_server() as server, ardour_session(["A", "B"], backend="JACK", outputs=1) as host:
        ...                  # Ardour's ports are "ardour:A/audio_out 1" ... on ``server``

How it works: ``ardour7-lua`` (or ``ardour8-lua``...), Ardour's headless Lua host, runs a script
that creates a session on the Dummy audio backend, adds one mono audio track per name, saves the
session, prints ``READY`` and keeps running.  The OSC surface is switched on by an Ardour
``config`` file under a temporary ``XDG_CONFIG_HOME``: ``<ControlProtocols>`` marks
"Open Sound Control (OSC)" active and ``<Option name="osc-port">`` picks a free port.  Everything
lives in a temporary folder that is removed afterwards, and the process group is always killed.

When the host cannot be found or does not come up, :class:`ArdourUnavailable` says why (tests
fail with that reason; they never skip silently).
"""
from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Iterator

#: Ardour's name for its OSC control protocol (Ardour 6-8).
OSC_PROTOCOL_NAME = "Open Sound Control (OSC)"


class ArdourUnavailable(RuntimeError):
    """The headless Ardour host is missing or did not start; the message says why."""


def find_ardour_lua() -> str:
    """Path of the newest ``ardourN-lua`` on PATH; ``ArdourUnavailable`` if none."""
    for version in (9, 8, 7, 6):
        path = shutil.which(f"ardour{version}-lua")
        if path:
            return path
    raise ArdourUnavailable(
        "no headless Ardour host (ardour7-lua / ardour8-lua) on PATH: install Debian's 'ardour' "
        "package (apt-get install --no-install-recommends ardour)")


def free_udp_port(host: str = "127.0.0.1") -> int:
    """A UDP port that was free a moment ago (bind to 0 and release)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _lua_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def write_config(config_home: Path, osc_port: int) -> Path:
    """Write an Ardour RC ``config`` enabling the OSC surface on ``osc_port``; returns its path."""
    major = Path(find_ardour_lua()).name.split("-")[0].replace("ardour", "") or "7"
    folder = config_home / f"ardour{major}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "config"
    path.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<Ardour>\n'
        f'  <Config><Option name="osc-port" value="{int(osc_port)}"/></Config>\n'
        '  <Metadata/>\n  <ControlProtocols>\n'
        f'    <Protocol name="{OSC_PROTOCOL_NAME}" active="1" debugmode="0" address-only="1" '
        'remote-url="" banksize="0" striptypes="31" feedback="0" gainmode="0" '
        'send-page-size="0" plugin-page-size="0"/>\n'
        '  </ControlProtocols>\n</Ardour>\n', encoding="utf-8")
    return path


def session_script(session_dir: Path, name: str, track_names: list[str], extra_lua: str = "",
                   sample_rate: int = 48000, backend: str | None = None, outputs: int = 2) -> str:
    """The Lua that creates (or reloads) the session with the named tracks and keeps running.

    ``backend``: an Ardour audio backend to pick before the session opens (``"JACK"``: the
    server named by ``$JACK_DEFAULT_SERVER``, JACK client name ``ardour``); None: the Dummy one.
    ``outputs``: audio outputs per track (2: Ardour's usual panned stereo; 1: no panner).
    """
    tracks = ", ".join(_lua_string(t) for t in track_names)
    engine = (f'if AudioEngine:set_backend({_lua_string(backend)}, "ardour", "") == nil then '
              f'print("FAILED to set the audio backend {backend}") io.stdout:flush() os.exit(4) end'
              if backend else "")
    return f"""
{engine}
local dir, name = {_lua_string(str(session_dir))}, {_lua_string(name)}
local s
local f = io.open(dir .. "/" .. name .. ".ardour", "r")
if f ~= nil then
  f:close()
  s = load_session(dir, name)
else
  s = create_session(dir, name, {int(sample_rate)})
  for _, n in ipairs({{{tracks}}}) do
    Session:new_audio_track(1, {int(outputs)}, nil, 1, n, ARDOUR.PresentationInfo.max_order,
                            ARDOUR.TrackMode.Normal, true)
  end
  Session:save_state("", false, false, false, false, false)
end
if s == nil then print("FAILED to open session") io.stdout:flush() os.exit(3) end
{extra_lua}
print("READY")
io.stdout:flush()
while true do ARDOUR.LuaAPI.usleep(100000) end
"""


class ArdourHost:
    """One headless Ardour process; use :func:`ardour_session` rather than this directly.

    Parameters
    ----------
    track_names : names of the mono audio tracks to create (in order; ssid 1..n).
    workdir : folder for the session, config and log (created; not removed by this class).
    osc_port : UDP port for Ardour's OSC surface (a free one when None).
    extra_lua : Lua run inside the session after the tracks exist (``Session`` is set).
    start_timeout_s : how long to wait for ``READY`` and the OSC port.
    backend, outputs : see :func:`session_script`.
    """

    def __init__(self, track_names: list[str], workdir: Path, osc_port: int | None = None,
                 extra_lua: str = "", start_timeout_s: float = 45.0, backend: str | None = None,
                 outputs: int = 2):
        self.binary = find_ardour_lua()
        self.track_names = list(track_names)
        self.workdir = Path(workdir)
        self.osc_port = int(osc_port or free_udp_port())
        self.extra_lua = extra_lua
        self.start_timeout_s = start_timeout_s
        self.backend, self.outputs = backend, int(outputs)
        self.session_name = "stase_test"
        self.session_dir = self.workdir / "session"
        self.config_home = self.workdir / "xdg_config"
        self.log_path = self.workdir / "ardour.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> "ArdourHost":
        """Start Ardour and wait until the session is loaded and the OSC port is bound."""
        write_config(self.config_home, self.osc_port)
        script = self.workdir / "session.lua"
        script.write_text(session_script(self.session_dir, self.session_name, self.track_names,
                                         self.extra_lua, backend=self.backend,
                                         outputs=self.outputs), encoding="utf-8")
        env = dict(os.environ, XDG_CONFIG_HOME=str(self.config_home),
                   HOME=str(self.workdir), XDG_CACHE_HOME=str(self.workdir / "cache"))
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen([self.binary, str(script)], stdout=log,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        env=env, cwd=self.workdir, start_new_session=True)
        log.close()
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ArdourUnavailable(f"{self.binary} exited with {self.process.returncode} "
                                        f"before it was ready; log:\n{self.log_tail()}")
            if b"READY" in self.log_path.read_bytes() and _udp_port_bound(self.osc_port):
                return self
            time.sleep(0.1)
        self.stop()
        raise ArdourUnavailable(f"{self.binary} did not open its OSC port {self.osc_port} within "
                                f"{self.start_timeout_s:.0f} s; log:\n{self.log_tail()}")

    def stop(self) -> None:
        """Terminate the whole process group (SIGTERM, then SIGKILL after 3 s)."""
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)

    def restart(self) -> "ArdourHost":
        """Stop, then start again on the same port with the saved session."""
        self.stop()
        deadline = time.monotonic() + 10
        while _udp_port_bound(self.osc_port) and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.start()

    def log_tail(self, n_chars: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n_chars:]
        except OSError:
            return "(no log)"


def _udp_port_bound(port: int) -> bool:
    """True when some process holds UDP ``port`` (we cannot bind it on any address)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind(("0.0.0.0", port))
        except OSError:
            return True
    return False


@contextlib.contextmanager
def ardour_session(track_names: list[str], osc_port: int | None = None, extra_lua: str = "",
                   start_timeout_s: float = 45.0, backend: str | None = None,
                   outputs: int = 2) -> Iterator[ArdourHost]:
    """Run a headless Ardour with ``track_names`` for the ``with`` block, then clean up.

    Raises :class:`ArdourUnavailable` (with the reason and Ardour's log) if it cannot start.
    """
    workdir = Path(tempfile.mkdtemp(prefix="stase-ardour-"))
    host = ArdourHost(track_names, workdir, osc_port=osc_port, extra_lua=extra_lua,
                      start_timeout_s=start_timeout_s, backend=backend, outputs=outputs)
    try:
        yield host.start()
    finally:
        host.stop()
        shutil.rmtree(workdir, ignore_errors=True)


_servers_started = itertools.count()


@contextlib.contextmanager
def jack_server(rate: int = 48000, period: int = 256, capture_ports: int = 8,
                start_timeout_s: float = 15.0) -> Iterator[str]:
    """Run ``jackd`` (dummy driver) under a private server name for the ``with`` block.

    ``$JACK_DEFAULT_SERVER`` names it meanwhile, so every JACK client started inside (Ardour,
    PortAudio, ``jack_lsp``) finds it and no other JACK is touched; PortAudio is re-initialised
    so it lists the JACK host API.  ``capture_ports``: PortAudio's JACK device offers as many
    input channels as the server has physical captures, so a monitor of n tracks needs n.
    Real-time scheduling where the OS allows it, else ``--no-realtime``.  Raises
    :class:`ArdourUnavailable` (the reason and jackd's log) when it does not come up.
    """
    jackd = shutil.which("jackd")
    if jackd is None:
        raise ArdourUnavailable("jackd not found: install Debian's jackd2")
    # a fresh name for every server started by this process (test_live_ardour runs twice, once
    # per monitor engine): nothing one server leaves under its name can meet the next
    name = f"stase-live-{os.getpid()}-{next(_servers_started)}"
    old = os.environ.get("JACK_DEFAULT_SERVER")
    os.environ["JACK_DEFAULT_SERVER"] = name
    log_path = Path(tempfile.mkdtemp(prefix="stase-jackd-")) / "jackd.log"
    proc = None
    try:
        for scheduling in (["-R", "-P", "60"], ["--no-realtime"]):
            with open(log_path, "wb") as log:
                proc = subprocess.Popen([jackd, "-n", name, *scheduling, "-d", "dummy", "-r", str(rate),
                                         "-p", str(period), "-C", str(capture_ports), "-P", "2"],
                                        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            deadline = time.monotonic() + start_timeout_s
            while time.monotonic() < deadline and proc.poll() is None:
                listed = subprocess.run(["jack_lsp"], capture_output=True, text=True, timeout=10).stdout
                if "system:playback_1" in listed:
                    break
                time.sleep(0.2)
            if proc.poll() is None and time.monotonic() < deadline:
                break
            proc.kill()
            proc.wait(5)
        else:
            raise ArdourUnavailable(f"jackd did not come up in {start_timeout_s:.0f} s: "
                                    f"{log_path.read_text(errors='replace')[-1500:]}")
        import sounddevice as sd
        sd._terminate()   # PortAudio lists JACK only if a server ran when it initialised
        sd._initialize()
        yield name
    finally:
        try:
            import sounddevice as sd
            sd._terminate()   # close PortAudio's JACK client while the server still runs
        except Exception:  # noqa: BLE001 - cleaning up
            pass
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if old is None:
            os.environ.pop("JACK_DEFAULT_SERVER", None)
        else:
            os.environ["JACK_DEFAULT_SERVER"] = old
        shutil.rmtree(log_path.parent, ignore_errors=True)
        try:
            import sounddevice as sd
            sd._initialize()
        except Exception:  # noqa: BLE001
            pass
