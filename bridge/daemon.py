"""The stase daemon: session state + OSC request server + DAW adapter + MIDI + live monitor.

Wiring (transport apart from routing)::

    OscEndpoint (UDP 127.0.0.1:9100) --(address, args, sender)--> Dispatcher --> handlers below
    HeadTracker (UDP, --head-tracking PORT) --latest orientation, once per block--> LiveMonitor
    jack_routing (--connect-ardour) --jack_connect--> each Ardour track's outputs -> monitor input
    DawAdapter (Ardour / REAPER)  --on_tracks / on_feedback-->  Session
    handlers --> Session (atomic save) --> DawAdapter.apply / LiveMonitor.set_source (queue)
    MidiControl --(selected source, field, value)--> the same set_source path

The live monitor is a :class:`stase.bridge.monitor.LiveMonitor` (``engine: thread``: its audio
callback in this process) or a :class:`stase.bridge.rt_engine.EngineMonitor` (``engine:
process``: the callback and the scene in their own process, fed through shared memory; it
restarts itself with the current scene after a crash and ``status.audio`` says so); both have
the same methods.

Handlers validate, change the session, then hand numbers to the adapter and the monitor; they
never do DSP.  The heavy parts (conductor, advisor, listener, offline renderer) are imported
lazily inside long-job handlers: a part that is not installed yet answers with a clear error
reply, the daemon keeps running.  The compute of ``listen`` and ``advise`` (stem loading, the
listener, the advisor) runs in one persistent, lower-priority job process
(:mod:`stase.bridge.job_process`, ``jobs: process``, the default) while the daemon is started,
so it never holds this process's GIL while the OSC thread answers; the path checks stay here,
before anything crosses.  ``jobs: inline`` (and a daemon used without ``start()``) computes on
the caller's thread.

Bounds (each refused with an ``InputError`` naming it, before anything changes): request text
(``prompt``, ``text``, ``message``, ``request``, ``question``) at most :data:`MAX_PROMPT_CHARS`;
at most :data:`MAX_TRACKS` tracks and :data:`MAX_TRACK_LIST_BYTES` of names (so ``status``
always fits one datagram); names and placement fields as :mod:`stase.core.placement` says; file paths
(listen ``path``, ``stems_dir``, ``reference_dir``, a plan's room file) inside
:meth:`Daemon.allowed_dirs`.  Large replies: ``sources`` pages (``offset``/``next_offset``), a plan
too large for one reply goes to ``plan_file`` (:meth:`Daemon._plan_reply`), a listen-back
lists the tracks that fit.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import threading
import time
import typing
from dataclasses import dataclass, field
from pathlib import Path
from types import UnionType
from typing import Any, Callable

from stase.core.conventions import azimuth_to_stereo_pan
from stase.core.errors import InputError, StaseError
from stase.core.names import duplicate_names, pair_names, track_key
from stase.core.placement import (MAX_PROMPT_CHARS, MAX_TRACKS, PLACEMENT_FIELDS, field_problem,
                                  track_name_problem)
from stase.core.plan import Plan

from stase.bridge.adapters import DawAdapter, make_adapter
from stase.bridge.dispatcher import REPLY_ADDRESS, Dispatcher
from stase.bridge.job_process import JobProcess, make_listener, needs as _needs, run_job
from stase.bridge.osc_transport import MAX_REPLY_BYTES, OscEndpoint
from stase.bridge.scheduling import REQUEST_THREAD_PRIORITY
from stase.bridge.session import SOURCE_FIELDS, Session

log = logging.getLogger("stase.daemon")

VERSION = "0.1"
DEFAULT_PORT = 9100

# MAX_PROMPT_CHARS and MAX_TRACKS: the one schema, stase.core.placement (the agent and the adapters use them too)
#: The track names (JSON-encoded, together) must leave room for the rest of a ``status`` reply,
#: which lists them all, in one UDP datagram.
MAX_TRACK_LIST_BYTES = 32_000
#: ``--connect-ardour``: tries while some track has no JACK ports yet, and the wait between them (s).
ROUTING_ATTEMPTS, ROUTING_RETRY_S = 20, 0.5
#: What a result may take of one reply datagram (the rest is the envelope: id, status, job).
REPLY_BUDGET_BYTES = MAX_REPLY_BYTES - 2_000


@dataclass
class DaemonConfig:
    """Everything ``stase serve`` can set (flags or a YAML ``--config`` file with these keys)."""

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    daw: str = "none"
    daw_host: str = "127.0.0.1"
    daw_port: int | None = None            # Ardour 3819, REAPER 8000
    daw_listen_port: int = 9000            # REAPER sends feedback here
    session: str = "stase-session.json"
    audio: bool = False
    audio_device: Any = None
    audio_hostapi: str | None = None
    #: after the monitor starts on JACK, connect each Ardour track's outputs to its input
    #: (:mod:`stase.bridge.jack_routing`); the status shows what was done under audio.routing
    connect_ardour: bool = False
    sample_rate: int = 48000
    block_size: int = 256
    #: UDP port for a head tracker's OSC (/ypr, /quaternion, /adm/lis/ypr ...; bound on ``host``);
    #: None: no head tracking.  See :mod:`stase.bridge.head_tracking`.
    head_tracking_port: int | None = None
    #: where the live monitor's audio callback runs: "process" (its own process, fed through
    #: shared memory, :mod:`stase.bridge.rt_engine`; the daemon's jobs cannot delay it) or
    #: "thread" (in the daemon's process, :class:`stase.bridge.monitor.LiveMonitor`).  Default
    #: process: under a listen + advise load it had 5 callback overruns and 17-47 xruns in 60 s
    #: against the thread's 39-62 and 299-356, and kept a move within one block + 2 ms (p99
    #: 5.6-6.0 ms against 7.8-8.6; docs/daemon.md)
    engine: str = "process"
    #: where the compute of ``listen`` and ``advise`` runs: "process" (one persistent job
    #: process at nice +10, :mod:`stase.bridge.job_process`; the OSC thread never waits behind
    #: its GIL) or "inline" (on the dispatcher's job thread, in this process).  Default process:
    #: see docs/daemon.md for the figures under load
    jobs: str = "process"
    midi: bool = False
    midi_map: str | None = None
    midi_port_name: str = "stase"
    conductor_model: str = "auto"
    durable_saves: bool = True
    #: folders a request may name files in (besides the session file's folder); see
    #: :meth:`Daemon.check_path`
    allow_dirs: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for key in ("session", "midi_map"):  # a pathlib.Path from Python callers is fine
            if isinstance(getattr(self, key), os.PathLike):
                setattr(self, key, os.fspath(getattr(self, key)))
        problems = config_problems(self)
        if problems:
            raise InputError("daemon config: " + "; ".join(problems))

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides: Any) -> "DaemonConfig":
        import yaml
        p = Path(path)
        try:
            data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise InputError(f"cannot read daemon config {p}: {exc}") from exc
        if not isinstance(data, dict):
            raise InputError(f"daemon config {p} must be a mapping of settings")
        known = set(cls.__dataclass_fields__) - {"extra"}
        unknown = sorted(str(k) for k in set(data) - known)
        if unknown:
            raise InputError(f"daemon config {p}: unknown keys {unknown}; accepted: {sorted(known)}")
        data.update({k: v for k, v in overrides.items() if v is not None})
        problems = config_problems(data)
        if problems:
            raise InputError(f"daemon config {p}: " + "; ".join(problems))
        return cls(**data)


#: Bounds of the numeric settings, inclusive (None = unbounded); types come from the annotations.
CONFIG_RANGES: dict[str, tuple[int | None, int | None]] = {
    "port": (0, 65535), "daw_port": (1, 65535), "daw_listen_port": (0, 65535),
    "head_tracking_port": (0, 65535),
    "sample_rate": (8000, 384000), "block_size": (1, 16384),
}
#: The settings that take one of a few words.
CONFIG_CHOICES: dict[str, tuple[str, ...]] = {"engine": ("process", "thread"),
                                             "jobs": ("process", "inline")}


def _type_problem(value: Any, hint: Any) -> str | None:
    """Why ``value`` does not fit the type annotation ``hint`` (None when it does)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return None
    if origin in (typing.Union, UnionType):
        problems = [_type_problem(value, a) for a in args]
        return None if any(p is None for p in problems) else " or ".join(p for p in problems if p)
    if hint is type(None):
        return None if value is None else "null"
    if hint is bool:
        return None if isinstance(value, bool) else "true or false"
    if hint is int:
        return None if isinstance(value, int) and not isinstance(value, bool) else "an integer"
    if hint is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        return None if ok else "a finite number"
    if hint is str:
        return None if isinstance(value, str) else "a string"
    if origin is list:
        if not isinstance(value, list):
            return "a list"
        inner = [_type_problem(v, args[0]) for v in value] if args else []
        return next((f"a list of {p.removeprefix('a ')}s" for p in inner if p), None)
    if origin is dict:
        return None if isinstance(value, dict) else "a mapping"
    return None


def config_problems(config: Any) -> list[str]:
    """Every wrong type or out-of-range value in a config (a mapping or a ``DaemonConfig``)."""
    values = config if isinstance(config, dict) else {k: getattr(config, k)
                                                     for k in DaemonConfig.__dataclass_fields__}
    hints = typing.get_type_hints(DaemonConfig)
    problems = []
    for key, value in values.items():
        if key not in hints:
            continue
        wrong = _type_problem(value, hints[key])
        if wrong:
            shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:40] + "..."
            problems.append(f"{key} must be {wrong}, got {shown}")
            continue
        if key in CONFIG_CHOICES and value not in CONFIG_CHOICES[key]:
            problems.append(f"{key} must be one of {list(CONFIG_CHOICES[key])}, got {value!r}")
            continue
        lo, hi = CONFIG_RANGES.get(key, (None, None))
        if isinstance(value, int) and ((lo is not None and value < lo) or (hi is not None and value > hi)):
            problems.append(f"{key} must be in {lo}..{hi}, got {value}")
    return problems


class Daemon:
    """The running daemon; ``start()``, then ``stop()`` (or use as a context manager)."""

    def __init__(self, config: DaemonConfig):
        self.config = config
        self.started_at = time.time()
        # exclusive: a second daemon on the same session file is refused at start (InputError)
        self.session = Session(config.session, durable=config.durable_saves, exclusive=True)
        self.lock = threading.RLock()
        self._restart_lock = threading.Lock()
        self.endpoint: OscEndpoint | None = None
        self.dispatcher = Dispatcher(self._send_reply)
        self.adapter: DawAdapter = DawAdapter()
        self.monitor: Any = None
        self.head_tracker: Any = None
        self.midi: Any = None
        self._conductor: Any = None
        self._listener: Any = None
        #: the job process (``jobs: process``), from start() to stop(); None: jobs run inline
        self.job_process: JobProcess | None = None
        self._agent: Any = None
        #: the agent's last proposal (not applied yet) and the plan before the last accepted one
        self._pending: Any = None
        self._undo: Plan | None = None
        self._proposals = 0
        self.audio_error: str | None = None
        self.routing: dict[str, Any] | None = None
        self._stopped = False  # a monitor a restart finishes after stop() is closed, not kept
        self._register_verbs()

    # ---------------------------------------------------------------- lifecycle
    def start(self) -> "Daemon":
        try:
            return self._start()
        except BaseException:
            self.stop()  # release the ports already opened; the caller sees the error
            raise

    def _start(self) -> "Daemon":
        c = self.config
        # the request thread answers the short verbs inline: above the jobs, below the engine
        self.endpoint = OscEndpoint(self.dispatcher.handle, c.host, c.port, name="server",
                                    realtime_priority=REQUEST_THREAD_PRIORITY)
        self.dispatcher.start()
        if c.jobs == "process":  # its worker starts with the first job (docs/daemon.md)
            self.job_process = JobProcess()
        self.endpoint.start()
        options: dict[str, Any] = {}
        if c.daw == "ardour":
            options = {"host": c.daw_host, "port": c.daw_port or 3819}
        elif c.daw == "reaper":
            options = {"host": c.daw_host, "port": c.daw_port or 8000, "listen_port": c.daw_listen_port}
        self.adapter = make_adapter(c.daw, on_tracks=self._on_daw_tracks, **options).start()
        if c.head_tracking_port is not None:
            from stase.bridge.head_tracking import HeadTracker
            self.head_tracker = HeadTracker(lambda: self.monitor, c.host, c.head_tracking_port,
                                            block_period_s=c.block_size / c.sample_rate).start()
        if c.audio:
            self.restart_monitor()
        if c.midi:
            from stase.bridge.midi import MidiControl
            self.midi = MidiControl(self, mapping_path=c.midi_map, port_name=c.midi_port_name).open()
        log.info("stase daemon listening on udp %s:%d (daw: %s, session: %s)", c.host,
                 self.endpoint.port, c.daw, self.session.path)
        return self

    def stop(self) -> None:
        if self.midi is not None:
            self.midi.close()
        if self.head_tracker is not None:
            self.head_tracker.close()
        with self.lock:
            self._stopped = True
            monitor, self.monitor = self.monitor, None
        if monitor is not None:
            monitor.stop()
        self.adapter.stop()
        if self.endpoint is not None:
            self.endpoint.close()
        job_process, self.job_process = self.job_process, None
        if job_process is not None:  # before the dispatcher: a running job then ends at once
            job_process.stop()
        self.dispatcher.stop()
        if self.config.durable_saves and self.session.path.exists():
            self.session.sync()
        self.session.close()  # releases the session lock for the next daemon
        log.info("stase daemon stopped")

    def __enter__(self) -> "Daemon":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self.endpoint.port if self.endpoint else self.config.port

    def _send_reply(self, sender: Any, payload: dict) -> None:
        if self.endpoint is not None and isinstance(sender, tuple):
            self.endpoint.send_json(REPLY_ADDRESS, payload, sender)

    # ---------------------------------------------------------------- DAW events
    def _on_daw_tracks(self, tracks: list[dict[str, Any]]) -> None:
        tracks = self._bounded_daw_tracks(tracks)
        if self.session.set_tracks(tracks):
            log.info("DAW tracks: %s", [t["name"] for t in tracks])
            if self.config.audio:
                # building a renderer takes seconds (HRTF set, room response): never on the
                # thread that answers requests
                threading.Thread(target=self.restart_monitor, name="stase-monitor-restart",
                                 daemon=True).start()

    def _bounded_daw_tracks(self, tracks: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The DAW's track list within the session's bounds: names that fail
        :func:`stase.core.placement.track_name_problem` are skipped, and at most :data:`MAX_TRACKS` tracks
        (and :data:`MAX_TRACK_LIST_BYTES` of names) are taken, each cut logged, so a DAW (or a
        process spoofing one) can never make ``status`` or ``sources`` unanswerable."""
        kept: list[dict[str, Any]] = []
        size = 2
        for t in tracks:
            name = t.get("name") if isinstance(t, dict) else None
            problem = track_name_problem(name)
            if problem is not None:
                log.warning("DAW track %s skipped: %s", str(name)[:60], problem)
                continue
            size += _json_size(name) + 1
            if len(kept) >= MAX_TRACKS or size > MAX_TRACK_LIST_BYTES:
                log.warning("the DAW reports %d tracks; taking the first %d (the session holds at "
                            "most %d tracks, %d bytes of names)", len(tracks), len(kept), MAX_TRACKS,
                            MAX_TRACK_LIST_BYTES)
                break
            kept.append(t)
        return kept

    def restart_monitor(self) -> None:
        """(Re)open the live monitor for the current track list (one input per track).

        The renderer is built without holding the daemon's lock (it takes seconds), so requests
        keep flowing; moves made meanwhile are in the session and are queued once it runs.
        """
        if self.config.engine == "process":
            from stase.bridge.rt_engine import EngineMonitor as monitor_class
        else:
            from stase.bridge.monitor import LiveMonitor as monitor_class
        with self._restart_lock:
            self.audio_error = "starting the live monitor"
            with self.lock:
                old, self.monitor = self.monitor, None
            if old is not None:
                old.stop()
            names = self.session.track_names()
            if not names:
                self.audio_error = "no tracks yet: the monitor starts when the DAW reports tracks"
                return
            plan = self.session.plan
            try:
                placements = {p.track: _monitor_fields(p, self.daw_applies_gain) for p in plan.sources}
                monitor = monitor_class(names, placements, self.config.sample_rate, self.config.block_size,
                                        room=plan.room, reverb_engine=plan.reverb_engine,
                                        reverb_db=plan.reverb_db)
                if self.config.engine == "process":  # it restarts itself after a crash
                    monitor.on_restart = self._on_engine_restart
                monitor.start(self.config.audio_device, self.config.audio_hostapi)
            except (StaseError, ImportError) as exc:
                self.audio_error = f"{exc}" + (f" ({exc.__cause__})" if exc.__cause__ else "")
                log.error("live monitor unavailable: %s", self.audio_error)
                return
            with self.lock:
                if self._stopped:  # the daemon stopped while this monitor started: no leftovers
                    monitor.stop()
                    return
                if self.head_tracker is not None:  # the scene turned for the head before it moves
                    monitor.set_head_rotation(self.head_tracker.rotation)
                for s in self.session.plan.sources:  # the latest placements, ramped in
                    monitor.set_source(s.track, **_monitor_fields(s, self.daw_applies_gain))
                monitor.set_reverb_db(self.session.plan.reverb_db)
                self.monitor = monitor
            self.audio_error = None
            if self.config.connect_ardour:
                self.route_ardour()

    def _on_engine_restart(self, monitor: Any) -> None:
        """After the engine process came back by itself (with the scene it kept): its JACK
        client is new, so the Ardour wiring is done again."""
        log.warning("live monitor: the engine process was restarted (%d so far)", monitor.restarts)
        if self.config.connect_ardour and monitor is self.monitor:
            self.route_ardour()

    def route_ardour(self) -> dict[str, Any]:
        """Connect each Ardour track's JACK outputs to the monitor's input for it
        (:func:`stase.bridge.jack_routing.connect_tracks`); the report is kept for ``status``."""
        from stase.bridge.jack_routing import connect_tracks, portaudio_client_name
        monitor = self.monitor
        client = None
        if monitor is not None:  # the engine process's own client, or this process's
            client = (monitor.jack_client_name() if hasattr(monitor, "jack_client_name")
                      else portaudio_client_name())
        if client is None:
            self.routing = {"errors": ["the live monitor has no JACK client (start it with "
                                       "--audio --audio-hostapi JACK)"]}
            return self.routing
        report: dict[str, Any] = {}
        for attempt in range(ROUTING_ATTEMPTS):  # a DAW may name its tracks before their ports exist
            try:
                report = connect_tracks(monitor.tracks, client).as_dict()
            except StaseError as exc:
                report = {"errors": [str(exc)]}
            if not report.get("missing_tracks") or attempt == ROUTING_ATTEMPTS - 1:
                break
            time.sleep(ROUTING_RETRY_S)
        report["monitor_client"] = client
        report["monitor_inputs"] = len(monitor.tracks)
        self.routing = report
        log.info("JACK routing into %s: %d connected, missing %s, errors %s", client,
                 len(report.get("connected", [])), report.get("missing_tracks"), report.get("errors"))
        return report

    # ---------------------------------------------------------------- verbs
    def _register_verbs(self) -> None:
        d = self.dispatcher
        d.register("status", self.verb_status, help="daemon, DAW, audio (xruns, CPU load) state")
        d.register("sources", self.verb_sources, help="the tracks and their placements")
        d.register("tracks", self.verb_tracks, help="set the track list (for --daw none)")
        d.register("set_source", self.verb_set_source, help="move one source / set mode or gain")
        d.register("select", self.verb_select, help="select the source MIDI controls")
        d.register("midi_learn", self.verb_midi_learn, help="bind the next MIDI CC to a field")
        d.register("apply", self.verb_apply, help="apply the plan (or a given one) to DAW and monitor")
        d.register("plan", self.verb_plan, long=True, help="plan a prompt for the tracks")
        d.register("edit", self.verb_edit, long=True, help="edit the plan with a request")
        d.register("advise", self.verb_advise, long=True, help="gain advice for the stems")
        d.register("listen", self.verb_listen, long=True, help="hear where a rendered source is")
        d.register("chat", self.verb_chat, long=True, help="free text, routed to the right verb")
        d.register("propose", self.verb_propose, long=True,
                   help="the agent's proposal for a request (a diff of the plan; nothing changes yet)")
        d.register("accept", self.verb_accept, help="apply the pending proposal (keeps one undo)")
        d.register("undo", self.verb_undo, help="back to the plan before the last accepted proposal")
        d.register("set_room", self.verb_set_room, help="change the plan's room and/or its wetness (reverb_db)")
        d.register("stems", self.verb_stems, help="set the stems folder advise and listen use")
        d.register("help", self.verb_help, help="the verbs and example chat requests")

    def verb_status(self, params: dict) -> dict:
        s = self.session
        endpoint_stats = dict(self.endpoint.stats) if self.endpoint else {}
        audio = self.monitor.status() if self.monitor is not None else {"running": False, "xruns": 0,
                                                                       "cpu_load": 0.0}
        audio["error"] = self.audio_error
        audio["routing"] = self.routing
        return {"version": VERSION, "uptime_s": round(time.time() - self.started_at, 1),
                "port": self.port, "session": str(s.path), "session_saves": s.saves,
                "session_writable": s.writable, "last_save_error": s.last_save_error,
                "tracks": s.track_names(), "selected": s.selected, "room": s.plan.room,
                "sources": len(s.plan.sources), "daw": self.adapter.status(), "audio": audio,
                "osc": endpoint_stats, "requests": dict(self.dispatcher.stats),
                # where the OS runs the thread that answers requests (SCHED_FIFO where allowed)
                "request_thread": self.endpoint.scheduling if self.endpoint else None,
                "requests_handling_ms": self.dispatcher.handling_ms(),
                "job": self.dispatcher.current_job, "verbs": self.dispatcher.verbs,
                "jobs": self._jobs_status(),
                "midi": self.midi.status() if self.midi is not None else None,
                "head_tracking": self.head_tracker.status() if self.head_tracker is not None else None}

    def verb_sources(self, params: dict) -> dict:
        """The tracks and their placements, one page at a time.

        ``{"offset": n}`` (default 0) starts the page at the n-th track; a page holds as many
        tracks as fit one reply datagram (all of them in any usual session).  The reply says
        ``total`` and ``next_offset`` (None on the last page).
        """
        offset = params.get("offset", 0)
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise InputError(f"sources: offset must be an integer >= 0, got {offset!r}")
        s = self.session
        with s.lock:
            placed = {track_key(p.track): p for p in s.plan.sources}
            names = s.track_names()
            room = s.plan.room
            out: list[dict[str, Any]] = []
            size = _json_size(room) + 100
            next_offset = None
            for index in range(offset, len(names)):
                name = names[index]
                p = placed.get(track_key(name))
                entry = {"track": name, "placed": p is not None, "role": p.role if p else None}
                if p is not None:
                    entry.update({k: getattr(p, k) for k in SOURCE_FIELDS + ("mode",)})
                size += _json_size(entry) + 1
                if size > REPLY_BUDGET_BYTES and out:
                    next_offset = index
                    break
                out.append(entry)
        return {"room": room, "sources": out, "total": len(names), "offset": offset,
                "next_offset": next_offset}

    def verb_tracks(self, params: dict) -> dict:
        tracks = params.get("tracks")
        if not isinstance(tracks, list) or not all(isinstance(t, str) and t.strip() for t in tracks):
            raise InputError("tracks: send {\"tracks\": [\"Vox\", \"Bass\", ...]} (non-empty names)")
        if len(tracks) > MAX_TRACKS:
            raise InputError(f"tracks: at most {MAX_TRACKS} tracks, got {len(tracks)}")
        problems = [f"tracks[{i}]: {p}" for i, t in enumerate(tracks) if (p := track_name_problem(t))]
        if problems:
            raise InputError("; ".join(problems[:5]) + (f" (and {len(problems) - 5} more)"
                                                        if len(problems) > 5 else ""))
        twice = duplicate_names(tracks)
        if twice:
            raise InputError("tracks: names must name different tracks: "
                             + "; ".join(f"{b!r} is {a!r}" for a, b in twice[:5]))
        if self.config.daw != "none":
            raise InputError(f"the track list comes from {self.config.daw}; 'tracks' is for --daw none")
        known = {track_key(t) for t in tracks}
        _check_track_list(tracks + [s.track for s in self.session.plan.sources
                                    if track_key(s.track) not in known], "tracks")
        self._on_daw_tracks([{"name": t, "daw_id": i + 1} for i, t in enumerate(tracks)])
        return {"tracks": self.session.track_names()}

    def verb_set_source(self, params: dict) -> dict:
        fields = {k: v for k, v in params.items() if k not in ("id", "track")}
        if not fields:
            raise InputError(f"set_source needs a track and at least one of {PLACEMENT_FIELDS}")
        placement, monitor = self._set_source(params.get("track"), **fields)
        return {"track": placement.track,
                **{k: getattr(placement, k) for k in SOURCE_FIELDS + ("mode", "reverb_db")}, "monitor": monitor}

    @property
    def daw_applies_gain(self) -> bool:
        """True when a DAW adapter sets each track's fader from ``gain_db``: the monitor hears the
        tracks after their faders (its inputs come from the DAW), so it renders them at 0 dB."""
        return self.config.daw not in (None, "none")

    def set_source(self, track: Any, **fields: Any):
        """The one path for a source change (OSC, MIDI): session, then monitor and DAW.

        Every placement field reaches the running monitor through its queue, ``role`` and
        ``reverb_db`` (the source's wetness) included."""
        return self._set_source(track, **fields)[0]

    def _set_source(self, track: Any, **fields: Any) -> tuple[Any, str]:
        """:meth:`set_source`, and what the live monitor made of it: ``"queued"``, ``"busy"``
        (its request ring is full: the change is saved and reaches it with the next one),
        ``"down"`` (the engine process is restarting: it comes back with the saved scene),
        ``"not monitored"`` (no monitor input for the track), ``"unchanged"`` (nothing it
        renders changed) or ``"off"`` (no monitor)."""
        with self.lock:
            placement = self.session.set_source(track, **fields)
            moved = {k: getattr(placement, k) for k in fields if k in PLACEMENT_FIELDS}
            if self.daw_applies_gain:
                moved.pop("gain_db", None)  # the DAW's fader applies it, before the monitor hears it
            state = "off" if self.monitor is None else "unchanged"
            if self.monitor is not None and moved:
                queued = self.monitor.set_source(placement.track, **moved)
                if queued:
                    state = "queued"
                elif track_key(placement.track) not in getattr(self.monitor, "slots", {}):
                    state = "not monitored"
                else:
                    state = "down" if getattr(self.monitor, "engine_alive", True) is False else "busy"
            self.adapter.apply(placement.track, placement.gain_db,
                               azimuth_to_stereo_pan(placement.azimuth_deg, placement.elevation_deg))
            if self.midi is not None:
                self.midi.echo(placement)
            return placement, state

    def verb_select(self, params: dict) -> dict:
        selected = self.session.select(params.get("track"))
        if selected:
            self.adapter.select(selected)
        return {"selected": selected}

    def verb_midi_learn(self, params: dict) -> dict:
        if self.midi is None:
            raise InputError("MIDI is off: start the daemon with --midi")
        self.midi.learn(params.get("field"))
        return {"learning": params.get("field")}

    def verb_apply(self, params: dict) -> dict:
        if "plan" in params:
            new_plan = Plan.from_dict(params["plan"], source="apply.plan")
            self.check_plan(new_plan, "apply.plan")  # before the session changes
            self.session.set_plan(new_plan)
        plan = self.session.plan
        applied, missing = [], []
        with self.lock:
            if self.monitor is not None:
                self.monitor.set_reverb_db(plan.reverb_db)
            for s in plan.sources:
                if self.monitor is not None:
                    self.monitor.set_source(s.track, **_monitor_fields(s, self.daw_applies_gain))
                if self.adapter.apply(s.track, s.gain_db, azimuth_to_stereo_pan(s.azimuth_deg, s.elevation_deg)):
                    applied.append(s.track)
                else:
                    missing.append(s.track)
        return {"applied": applied, "not_in_daw": missing if self.config.daw != "none" else [],
                "room": plan.room, "sources": len(plan.sources)}

    # ---------------------------------------------------------------- bounds
    def allowed_dirs(self) -> list[Path]:
        """The folders a request may name files in, symlinks resolved: the session file's folder
        and the configured ``allow_dirs`` (``stase serve --allow-dir DIR``)."""
        folders = [self.session.path.parent, *(Path(d).expanduser() for d in self.config.allow_dirs)]
        return [Path(os.path.realpath(f)) for f in folders]

    def check_path(self, value: Any, what: str) -> str:
        """``value`` resolved (symlinks followed) when it lies inside :meth:`allowed_dirs`.

        Otherwise ``InputError``, whose message is the same whether or not the file exists (so a
        request cannot probe which files exist) and never shows where a symlink points.
        """
        if not isinstance(value, str) or not value.strip():
            raise InputError(f"{what}: give a path as a string")
        if len(value) > 4096 or "\0" in value:
            raise InputError(f"{what}: not a usable path")
        real = Path(os.path.realpath(os.path.expanduser(value)))
        allowed = self.allowed_dirs()
        if any(real == folder or folder in real.parents for folder in allowed):
            return str(real)
        raise InputError(f"{what}: path outside the allowed folders ({', '.join(map(str, allowed))}); "
                         "start stase serve with --allow-dir DIR to allow another folder")

    def check_plan(self, plan: Plan, what: str) -> None:
        """Refuse a plan the session cannot hold: too many tracks, a bad track name, a track list
        too large for a reply, or a room file outside the allowed folders."""
        if len(plan.sources) > MAX_TRACKS:
            raise InputError(f"{what}: at most {MAX_TRACKS} sources, got {len(plan.sources)}")
        problems = [f"sources[{i}].{p}" for i, s in enumerate(plan.sources)
                    if (p := track_name_problem(s.track))]
        if problems:
            raise InputError(f"{what}: " + "; ".join(problems[:5]))
        names = [t["name"] for t in self.session.tracks]
        known = {track_key(n) for n in names}
        _check_track_list(names + [s.track for s in plan.sources if track_key(s.track) not in known], what)
        if _room_is_file(plan.room):
            self.check_path(plan.room, f"{what}: room (not a preset room, so a room response file)")

    def _plan_reply(self, plan: Plan) -> dict[str, Any]:
        """The reply to ``plan``/``edit``: the whole plan when it fits one reply datagram.

        A plan too large for one (a couple of hundred tracks with their provenance) is written,
        whole, to ``<session name>.plan.json`` next to the session file (atomically); the reply
        then carries ``plan_file`` (that path), ``truncated: true`` and a compact ``plan``
        (room and each source's placement, without provenance or notes), or only the plan's
        room and source count when even that is too large.  Called before the session changes,
        so a reply that cannot be built leaves the session as it was.
        """
        full = plan.to_dict()
        if _json_size(full) <= REPLY_BUDGET_BYTES:
            return {"plan": full}
        from stase.core.audio_io import atomic_write_text
        path = self.session.path.with_name(f"{self.session.path.stem}.plan.json")
        try:
            atomic_write_text(path, json.dumps(full, indent=1) + "\n", durable=self.config.durable_saves)
        except OSError as exc:
            raise StaseError(f"the plan is too large for one reply and cannot be written to {path}") from exc
        head = {k: full[k] for k in ("room", "pathway", "template", "reverb_engine")}
        compact = dict(head, sources=[{k: src[k] for k in ("track", "role", "mode", *SOURCE_FIELDS)}
                                      for src in full["sources"]])
        reply = {"plan": compact, "plan_file": str(path), "truncated": True}
        if _json_size(reply) > REPLY_BUDGET_BYTES:
            reply["plan"] = dict(head, source_count=len(full["sources"]))
        return reply

    # ---------------------------------------------------------------- long jobs
    def conductor(self) -> Any:
        if self._conductor is None:
            with _needs("the conductor (planning)"):
                from stase.agent.conductor import Conductor
            self._conductor = Conductor(model=self.config.conductor_model)
        return self._conductor

    def listener(self) -> Any:
        """One Spatial-AST listener per daemon (``jobs: inline``): the ONNX model loads once.
        With ``jobs: process`` the job process holds its own, loaded once per worker."""
        if self._listener is None:
            self._listener = make_listener()
        return self._listener

    def _jobs_status(self) -> dict[str, Any]:
        """Where ``listen``/``advise`` compute (``mode``) and, in a job process, its state."""
        job_process = self.job_process
        if job_process is None:
            return {"mode": "inline"}
        return {"mode": "process", **job_process.status()}

    def _run_job(self, verb: str, kind: str, payload: dict[str, Any], progress: Callable,
                 stems_given: str | None = None) -> dict:
        """Compute a ``listen``/``advise`` job (:func:`stase.bridge.job_process.run_job`) in the
        job process when the daemon has one, else here; same result, same errors.
        ``stems_given``: the stems folder as the request named it, remembered as the session's
        once it loaded."""
        def notify(event: str, *args: Any) -> None:
            if event == "progress":
                progress(*args)
            elif event == "stems_loaded" and stems_given is not None and stems_given != self.session.stems_dir:
                self.session.set_stems_dir(stems_given)

        job_process = self.job_process
        if job_process is None:
            return run_job(kind, payload, notify, self.listener)
        return job_process.run(kind, payload, notify, what=verb)

    def verb_plan(self, params: dict, progress: Callable) -> dict:
        """A new plan for ``prompt`` (``Conductor.plan``: never an edit of the session's plan, so
        an abstract prompt reaches template retrieval); the reply is :meth:`_plan_reply`'s and
        equals what ``stase plan PROMPT --tracks ...`` prints.

        ``tracks`` (default: the session's tracks) may name some of the session's tracks only
        (REAPER's "Spatialize selected tracks"): the session plan then takes the new plan and
        keeps, as they were, the placements of the tracks the request did not name.
        """
        prompt = request_text(params, ("prompt",), "plan needs {\"prompt\": \"describe the stage\"}")
        named = params.get("tracks") is not None
        tracks = params.get("tracks", self.session.track_names())
        if not isinstance(tracks, list) or not all(isinstance(t, str) for t in tracks):
            raise InputError("tracks must be a list of track names")
        if len(tracks) > MAX_TRACKS:
            raise InputError(f"tracks: at most {MAX_TRACKS} tracks, got {len(tracks)}")
        problems = [f"tracks[{i}]: {p}" for i, t in enumerate(tracks) if (p := track_name_problem(t))]
        if problems:
            raise InputError("; ".join(problems[:5]))
        progress(0.1, "loading the conductor")
        conductor = self.conductor()
        progress(0.4, "planning")
        plan = conductor.plan(prompt, tracks=tracks or None)
        self.check_plan(plan, "plan")
        reply = self._plan_reply(plan)
        if named:
            planned = {track_key(s.track) for s in plan.sources}
            kept = [s for s in self.session.plan.sources if track_key(s.track) not in planned]
            if kept:
                plan = dataclasses.replace(plan, sources=[*plan.sources, *kept])
                self.check_plan(plan, "plan")
        self.session.set_plan(plan)
        progress(0.9, "plan saved")
        return reply

    def verb_edit(self, params: dict, progress: Callable) -> dict:
        """Edit the session's plan with ``request`` (or ``text``): ``Conductor.edit``, which keeps
        the template, the room and every source the request does not move; the reply is
        :meth:`_plan_reply`'s."""
        request = request_text(params, ("request", "text"),
                               "edit needs {\"request\": \"move the sax a bit left\"}")
        if not self.session.plan.sources:
            raise InputError("there is no plan to edit yet; use 'plan' first")
        progress(0.1, "loading the conductor")
        plan = self.conductor().edit(request, self.session.plan)
        self.check_plan(plan, "edit")
        reply = self._plan_reply(plan)
        self.session.set_plan(plan)
        return reply

    def _stems(self, params: dict, key: str = "stems_dir") -> tuple[str, str]:
        """A job's stems folder (``params[key]``, else the session's for ``stems_dir``):
        ``(real path inside the allowed folders, the folder as given)``."""
        folder = params.get(key) or (self.session.stems_dir if key == "stems_dir" else None)
        if not isinstance(folder, str):
            raise InputError(f"{key}: give a folder of the tracks' audio files (one mono file per track)")
        return self.check_path(folder, key), folder

    def verb_advise(self, params: dict, progress: Callable) -> dict:
        """Gain advice for the stems (:func:`stase.agent.advisor.advise`), against the stems of
        ``reference_dir`` when given; both folders inside :meth:`allowed_dirs`."""
        if params.get("reference_dir"):  # refused before the stems load and stems_dir is remembered
            self.check_path(params["reference_dir"], "reference_dir")
        stems_dir, given = self._stems(params)
        reference_dir = self._stems(params, "reference_dir")[0] if params.get("reference_dir") else None
        payload = {"stems_dir": stems_dir, "reference_dir": reference_dir,
                   "plan": self.session.plan.to_dict()}
        return self._run_job("advise", "advise", payload, progress, stems_given=given)

    def verb_listen(self, params: dict, progress: Callable) -> dict:
        """Listen by ear (Spatial-AST), four ways.

        ``path``: where the source in a binaural file is heard.  ``question`` (or chat ``text``
        phrased as a question): BAT's question types answered from solo renders of the plan's
        tracks and their mix.  ``track``: that track rendered alone at its placement.  Nothing:
        listen-back of the whole plan, per-track angular/distance error with flags.

        Memory stays bounded whatever the length: a file is read block by block
        (``Listener.listen_file``), listen-back renders only the loudest few seconds of each stem,
        a question only the loudest stretch of the stems (``Listener.answer_plan``: one window, the
        same for every track, and only the renders the question needs).  ``path`` and the stems
        folder must lie in :meth:`allowed_dirs`.
        """
        if params.get("path") is not None:
            real = self.check_path(params["path"], "path")
            return self._run_job("listen", "listen_file", {"path": real}, progress)
        plan = self.session.plan
        if not plan.sources:
            raise InputError("there is no plan to listen to yet; use 'plan' (or give a binaural 'path')")
        question = params.get("question")
        if question is not None:
            question = request_text(params, ("question",), "question must be a non-empty string")
        elif _is_question(params.get("text")):
            question = request_text(params, ("text",), "")
        stems_dir, given = self._stems(params)
        if question is not None:
            return self._run_job("listen", "answer_plan", {"stems_dir": stems_dir, "question": question,
                                                           "plan": plan.to_dict()}, progress, given)
        if params.get("track") is not None:
            track = self.session.resolve_track(params.get("track"))
            plan = Plan(room=plan.room, sources=[self.session.placement(track)],
                        reverb_engine=plan.reverb_engine)
        checked = self._run_job("listen", "listen_back", {"stems_dir": stems_dir, "plan": plan.to_dict()},
                                progress, given)
        if params.get("track") is not None:
            row = checked["tracks"][0]
            return {"track": row["track"], "planned": row["planned"], "heard": row["perceived"],
                    "check": checked}
        return _fit_rows(checked, "tracks")

    def verb_chat(self, params: dict, progress: Callable) -> dict:
        """Free text, routed by :mod:`stase.agent.router` to plan, edit, advise, listen, status, sources,
        set_room or help; the reply is ``{"routed_to", "result", "confidence"}``.

        When the routed verb fails, the error says where the request was routed ("chat routed to
        advise: ..."), and the exception carries ``reply_fields = {"routed_to": verb}``.  A verb
        that needs the tracks' audio and has no stems folder says so before anything runs.
        """
        text = request_text(params, ("text", "message"), "chat needs {\"text\": \"...\"}")
        routing = _chat_routing(text, has_plan=bool(self.session.plan.sources))
        verb = routing.verb
        progress(0.05, f"routed to {verb}")
        try:
            result = self._chat_verb(verb, text, params, progress)
        except Exception as exc:  # noqa: BLE001 - re-raised, saying where the request went
            # a backend failure keeps its own cause, which the error reply shows
            cause = exc.__cause__ if isinstance(exc, StaseError) and not isinstance(exc, InputError) else exc
            raise _routed_error(verb, exc) from cause
        return {"routed_to": verb, "result": result, "confidence": round(routing.confidence, 3)}

    def _chat_verb(self, verb: str, text: str, params: dict, progress: Callable) -> Any:
        """Run the verb a chat request was routed to, with what the text says."""
        if verb in ("status", "sources", "help"):
            return getattr(self, f"verb_{verb}")({})
        if verb == "plan":
            return self.verb_plan({"prompt": text}, progress)
        if verb == "edit":
            return self.verb_edit({"request": text}, progress)
        if verb == "set_room":
            room = self.conductor().room_named(text)
            if room is None:
                from stase.presets import load_rooms
                raise InputError(f"which room? name one: {', '.join(sorted(load_rooms()))} "
                                 "(or 'cathedral', 'outdoors', 'drier', ...)")
            return self.verb_set_room({"room": room})
        if verb in ("advise", "listen") and params.get("path") is None:
            self._require_stems(verb, params)
        return getattr(self, f"verb_{verb}")(dict(params, text=text), progress)

    def _require_stems(self, verb: str, params: dict) -> None:
        """Refuse, saying how to give it, a verb that needs the stems when none are known."""
        if verb == "listen" and not self.session.plan.sources:
            return  # verb_listen says there is no plan yet, the first thing missing
        if not params.get("stems_dir") and not self.session.stems_dir:
            raise InputError(f"{verb} needs the tracks' audio and no stems folder is set: send "
                             "stems_dir (a folder with one mono audio file per track, named like "
                             "the tracks), or set it once with the 'stems' verb or "
                             "`stase serve --stems DIR`")

    def verb_set_room(self, params: dict) -> dict:
        """Change the plan's room and/or its wetness.

        ``room``: a room preset id or the path of a room response file inside
        :meth:`allowed_dirs` (checked by :func:`stase.dsp.rooms.resolve_room`); ``reverb_db``: the
        mix's wetness relative to the room's physical level, dB (:mod:`stase.core.placement`
        bounds).  Either or both.  The sources stay where they are; both are saved in the
        session.  A new room restarts a running live monitor (in the background); a wetness
        alone reaches it through its command queue, ramped.  The reply carries the plan
        (:meth:`_plan_reply`), ``room``, ``previous_room``, ``reverb_db`` and
        ``previous_reverb_db``.
        """
        from stase.dsp.rooms import NO_ROOM, resolve_room, room_kind
        from stase.presets import load_rooms
        room = params.get("room")
        reverb_db = params.get("reverb_db")
        ids = ", ".join(sorted(load_rooms()))
        if reverb_db is not None:
            problem = field_problem("reverb_db", reverb_db)
            if problem is not None:
                raise InputError(f"set_room: {problem}")
            reverb_db = float(reverb_db)
        if room is None and reverb_db is not None:
            return self._set_wetness(reverb_db)
        if not isinstance(room, str) or not room.strip():
            raise InputError(f"set_room needs {{\"room\": ...}}: a room id ({ids}) or the path "
                             "of a room response file, and/or {\"reverb_db\": dB} (the wetness)")
        room = room.strip()
        if room.lower() in NO_ROOM:
            raise InputError(f"set_room: a plan always has a room; for a dry sound use 'dry_studio' "
                             f"(rooms: {ids})")
        kind = room_kind(room)  # the one rule (stase.dsp.rooms): by spelling, no file touched
        if kind == "unknown":
            from stase.core.audio_io import AUDIO_SUFFIXES
            import difflib
            close = difflib.get_close_matches(room, sorted(load_rooms()), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise InputError(f"set_room: unknown room {room!r}{hint}; rooms: {ids}, or the path "
                             f"of a room response file ({', '.join(AUDIO_SUFFIXES)})")
        if kind == "file":
            # the allowed-folders check comes first: its message never says whether a file exists
            room = self.check_path(room, "set_room: room (not a preset room, so a room response file)")
        resolve_room(room)
        with self.lock:
            previous, previous_db = self.session.plan.room, self.session.plan.reverb_db
            wetness = previous_db if reverb_db is None else reverb_db
            plan = dataclasses.replace(self.session.plan, room=room, reverb_db=wetness)
            self.check_plan(plan, "set_room")
            reply = self._plan_reply(plan)
            self.session.set_plan(plan)
        if self.monitor is not None:
            threading.Thread(target=self.restart_monitor, name="stase-monitor-restart",
                             daemon=True).start()
        summary = f"Room: {room} (was {previous})."
        if wetness != previous_db:
            summary += f" Wetness: {wetness:+g} dB (was {previous_db:+g} dB)."
        return {**reply, "room": room, "previous_room": previous, "reverb_db": wetness,
                "previous_reverb_db": previous_db, "summary": summary}

    def _set_wetness(self, reverb_db: float) -> dict:
        """``set_room`` with only ``reverb_db``: saved, then queued to the running monitor."""
        with self.lock:
            previous_db = self.session.plan.reverb_db
            plan = dataclasses.replace(self.session.plan, reverb_db=reverb_db)
            reply = self._plan_reply(plan)
            self.session.set_plan(plan)  # saved first: a failed save changes nothing live
            if self.monitor is not None:
                self.monitor.set_reverb_db(reverb_db)
        room = plan.room
        return {**reply, "room": room, "previous_room": room, "reverb_db": reverb_db,
                "previous_reverb_db": previous_db,
                "summary": f"Wetness: {reverb_db:+g} dB (was {previous_db:+g} dB) in {room}."}

    def verb_stems(self, params: dict) -> dict:
        """Set the session's stems folder (``stems_dir``), which advise and listen then use; with
        no ``stems_dir``, say which one is set.

        The folder must lie in :meth:`allowed_dirs` and hold audio files; the reply counts them
        and names the session's tracks that have no file named like them.
        """
        folder = params.get("stems_dir")
        if folder is None:
            return {"stems_dir": self.session.stems_dir}
        real = Path(self.check_path(folder, "stems_dir"))
        if not real.is_dir():
            raise InputError(f"stems_dir: {folder} is not a folder")
        from stase.core.audio_io import AUDIO_SUFFIXES
        names = [f.stem for f in real.iterdir() if f.suffix.lower() in AUDIO_SUFFIXES]
        if not names:
            raise InputError(f"stems_dir: no audio files ({', '.join(AUDIO_SUFFIXES)}) in {folder}; "
                             "give a folder with one mono file per track, named like the tracks")
        self.session.set_stems_dir(str(real))
        _, missing, _ = pair_names(self.session.track_names(), names)   # the renderer's pairing rule
        return {"stems_dir": str(real), "audio_files": len(names), "tracks_without_file": missing[:50],
                "tracks_without_file_count": len(missing)}

    # ---------------------------------------------------------------- the agent (propose / accept / undo)
    def agent(self) -> Any:
        """One agent loop per daemon over the conductor and its model (``conductor_model``)."""
        if self._agent is None:
            with _needs("the agent loop"):
                from stase.agent.agent_loop import Agent
            conductor = self.conductor()
            self._agent = Agent(conductor, model=conductor.llm)
        return self._agent

    def verb_propose(self, params: dict, progress: Callable) -> dict:
        """The agent's answer to ``text`` (:mod:`stase.agent.agent_loop`): a proposal with a diff
        (per track: field, before, after, provenance) that changes nothing until ``accept``, or
        the result of the read tool it called (``advise`` comes back as proposed fader moves).
        ``accept: true`` accepts it at once."""
        text = request_text(params, ("text", "request"), "propose needs {\"text\": \"open the mix up\"}")
        progress(0.1, "loading the agent")
        agent = self.agent()
        current = self.session.plan
        turn = agent.respond(text, current if current.sources else None, tracks=self.session.track_names())
        reply: dict[str, Any] = {"tool": turn.tool, "intent": turn.intent, "calls": turn.calls,
                                 "model_valid": turn.model_valid, "reply": turn.reply}
        proposal = turn.proposal
        if turn.action is not None and turn.action["tool"] == "advise":
            self._require_stems("advise", params)
            from stase.agent.agent_loop import proposal_from_advice
            advice = self.verb_advise(params, progress)
            proposal = proposal_from_advice(advice, current, text)
            reply["advice"] = {"summary": advice.get("summary"), "mode": advice.get("mode")}
        elif turn.action is not None and turn.action["tool"] == "listen":
            reply["result"] = self.verb_listen({k: v for k, v in turn.action.items() if k == "track"}, progress)
        elif turn.action is not None and turn.action["tool"] == "apply":
            reply["result"] = self.verb_apply({})
        if proposal is not None:
            self.check_plan(proposal.after, "propose")
            with self.lock:
                self._proposals += 1
                self._pending = (self._proposals, proposal)
            reply.update({"proposal_id": self._proposals, "source": proposal.source, "diff": proposal.diff,
                          "notes": proposal.notes})
            if params.get("accept") is True:
                reply["accepted"] = self.verb_accept({"proposal_id": self._proposals})
        return _fit_rows(reply, "diff")

    def verb_accept(self, params: dict) -> dict:
        """Apply the pending proposal to the session, the DAW and the monitor; the plan it
        replaces becomes the one undo.  Refused when the plan changed since it was proposed."""
        with self.lock:
            if self._pending is None:
                raise InputError("accept: no pending proposal; send 'propose' with a request first")
            number, proposal = self._pending
            wanted = params.get("proposal_id", number)
            if wanted != number:
                raise InputError(f"accept: proposal {wanted!r} is not the pending one ({number})")
            if proposal.before.sources and proposal.before.to_dict() != self.session.plan.to_dict():
                self._pending = None
                raise InputError("accept: the plan changed since the proposal was made; propose again")
            self._undo = self.session.plan
            self.session.set_plan(proposal.after)
            self._pending = None
            applied = self.verb_apply({})
        if self.monitor is not None and self._undo.room != proposal.after.room:
            threading.Thread(target=self.restart_monitor, name="stase-monitor-restart", daemon=True).start()
        return {"accepted": number, "changes": len(proposal.diff), "undo_available": True, **applied}

    def verb_undo(self, params: dict) -> dict:
        """Back to the plan before the last accepted proposal (one undo; then there is none)."""
        with self.lock:
            if self._undo is None:
                raise InputError("undo: nothing to undo (one undo: the plan before the last accepted proposal)")
            restored, self._undo = self._undo, None
            room_changed = restored.room != self.session.plan.room
            self.session.set_plan(restored)
            applied = self.verb_apply({})
        if self.monitor is not None and room_changed:
            threading.Thread(target=self.restart_monitor, name="stase-monitor-restart", daemon=True).start()
        return {"undone": True, **applied}

    def verb_help(self, params: dict) -> dict:
        """The verbs with what each does, and example chat requests per routed verb."""
        from stase.agent.router import HELP_EXAMPLES, LABEL_RULES
        verbs = {verb: route.help for verb, route in sorted(self.dispatcher._routes.items())}
        lines = [f"{verb}: {LABEL_RULES[verb]}, e.g. '{examples[0]}'"
                 for verb, examples in HELP_EXAMPLES.items()]
        return {"verbs": verbs, "chat": {v: {"means": LABEL_RULES[v], "examples": e}
                                         for v, e in HELP_EXAMPLES.items()},
                "summary": "Type what you want; I route it to one of:\n" + "\n".join(lines)}


def _monitor_fields(placement: Any, daw_applies_gain: bool = False) -> dict[str, Any]:
    """What the live monitor takes of a plan's source placement: every placement field, except
    ``gain_db`` when the DAW's fader applies it (the monitor hears the track after that fader:
    applying it again would count the gain twice)."""
    fields = {k: getattr(placement, k) for k in PLACEMENT_FIELDS}
    if daw_applies_gain:
        fields["gain_db"] = 0.0
    return fields


def _json_size(value: Any) -> int:
    """Bytes ``value`` takes in a reply (the transport's JSON: ASCII escapes, no spaces)."""
    return len(json.dumps(value, separators=(",", ":"), default=str))


def _fit_rows(result: dict[str, Any], key: str) -> dict[str, Any]:
    """``result`` with its ``key`` list cut to what fits one reply (``<key>_omitted`` counts the
    rest), for results that list one row per track."""
    rows = result.get(key)
    if not isinstance(rows, list) or _json_size(result) <= REPLY_BUDGET_BYTES:
        return result
    size = _json_size({k: v for k, v in result.items() if k != key}) + 100
    kept = []
    for row in rows:
        size += _json_size(row) + 1
        if size > REPLY_BUDGET_BYTES:
            break
        kept.append(row)
    return dict(result, **{key: kept, f"{key}_omitted": len(rows) - len(kept)})


def _check_track_list(names: list[str], what: str) -> None:
    """Refuse a session track list larger than :data:`MAX_TRACKS` or :data:`MAX_TRACK_LIST_BYTES`."""
    if len(names) > MAX_TRACKS:
        raise InputError(f"{what}: the session would hold {len(names)} tracks; at most {MAX_TRACKS}")
    size = _json_size(names)
    if size > MAX_TRACK_LIST_BYTES:
        raise InputError(f"{what}: the track names take {size} bytes together; at most "
                         f"{MAX_TRACK_LIST_BYTES} (use shorter names or fewer tracks)")


def _room_is_file(room: Any) -> bool:
    """True when a plan's room must meet the allowed-folders check: anything but no room, a preset
    or a measured room (:func:`stase.dsp.rooms.room_kind`; a mistyped id then meets the check,
    whose message says it is not a preset)."""
    if not isinstance(room, str) or not room:
        return False
    from stase.dsp.rooms import room_kind
    return room_kind(room) in ("file", "unknown")


def request_text(params: dict, keys: tuple[str, ...], needs: str) -> str:
    """The first non-blank string among ``params[keys]``, checked before any parsing.

    ``InputError`` when one is not a string, is longer than :data:`MAX_PROMPT_CHARS`, or when
    all are missing or blank (then with the message ``needs``).
    """
    for key in keys:
        value = params.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            raise InputError(f"{key} must be a string, got {type(value).__name__}")
        if len(value) > MAX_PROMPT_CHARS:
            raise InputError(f"{key} is {len(value)} characters long; at most {MAX_PROMPT_CHARS} "
                             "are accepted (describe the stage or the change in a few sentences)")
        if value.strip():
            return value
    raise InputError(needs)


def _is_question(text: Any) -> bool:
    """A chat text that asks about what is heard ("where is the sax?", "is X left of Y?")."""
    from stase.agent.router import is_question
    return is_question(text)


def _chat_routing(text: str, has_plan: bool):
    """:func:`stase.agent.router.route`: the learned router (sentence encoder + lexical features),
    with its deterministic fallbacks; imported on first use like the other agent parts."""
    with _needs("the chat router"):
        from stase.agent.router import route
    return route(text, has_plan)


def route_chat(text: str, has_plan: bool) -> str:
    """Which verb a free-text request goes to (:mod:`stase.agent.router`)."""
    return _chat_routing(text, has_plan).verb


def _routed_error(verb: str, exc: BaseException) -> BaseException:
    """``exc`` as the same kind of error whose message starts with where the chat went."""
    message = f"chat routed to {verb}: {exc.args[0] if isinstance(exc, KeyError) and exc.args else exc}"
    if isinstance(exc, (ValueError, TypeError, KeyError)):  # InputError among them
        routed: BaseException = InputError(message)
    elif isinstance(exc, StaseError):
        routed = StaseError(message)
    else:
        log.exception("internal error in the chat verb %s", verb)
        routed = StaseError(f"chat routed to {verb}: internal error: {type(exc).__name__}: {exc}")
    routed.reply_fields = {"routed_to": verb}
    return routed
