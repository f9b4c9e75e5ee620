"""The stase daemon: session state + OSC request server + DAW adapter + MIDI + live monitor.

Wiring (transport apart from routing)::

    OscEndpoint (UDP 127.0.0.1:9100) --(address, args, sender)--> Dispatcher --> handlers below
    DawAdapter (Ardour / REAPER)  --on_tracks / on_feedback-->  Session
    handlers --> Session (atomic save) --> DawAdapter.apply / LiveMonitor.set_source (queue)
    MidiControl --(selected source, field, value)--> the same set_source path

Handlers validate, change the session, then hand numbers to the adapter and the monitor; they
never do DSP.  The heavy parts (conductor, advisor, listener, offline renderer) are imported
lazily inside long-job handlers: a part that is not installed yet answers with a clear error
reply, the daemon keeps running.
"""
from __future__ import annotations

import importlib
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from dsp.conventions import azimuth_to_stereo_pan
from dsp.errors import InputError, StaseError
from dsp.plan import Plan

from .adapters import DawAdapter, make_adapter
from .dispatcher import REPLY_ADDRESS, Dispatcher
from .osc_transport import OscEndpoint
from .session import SOURCE_FIELDS, Session

log = logging.getLogger("stase.daemon")

VERSION = "0.1"
DEFAULT_PORT = 9100


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
    sample_rate: int = 48000
    block_size: int = 256
    midi: bool = False
    midi_map: str | None = None
    midi_port_name: str = "stase"
    conductor_model: str = "auto"
    durable_saves: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

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
        unknown = sorted(set(data) - known)
        if unknown:
            raise InputError(f"daemon config {p}: unknown keys {unknown}; accepted: {sorted(known)}")
        data.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**data)


def _lazy(module: str, name: str, what: str) -> Any:
    """Import ``module.name`` or raise a StaseError saying which part is missing."""
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise StaseError(f"{what} is not available in this installation ({module}.{name}: {exc})") from exc


class Daemon:
    """The running daemon; ``start()``, then ``stop()`` (or use as a context manager)."""

    def __init__(self, config: DaemonConfig):
        self.config = config
        self.started_at = time.time()
        self.session = Session(config.session, durable=config.durable_saves)
        self.lock = threading.RLock()
        self._restart_lock = threading.Lock()
        self.endpoint: OscEndpoint | None = None
        self.dispatcher = Dispatcher(self._send_reply)
        self.adapter: DawAdapter = DawAdapter()
        self.monitor: Any = None
        self.midi: Any = None
        self._conductor: Any = None
        self._listener: Any = None
        self.audio_error: str | None = None
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
        self.endpoint = OscEndpoint(self.dispatcher.handle, c.host, c.port, name="server")
        self.dispatcher.start()
        self.endpoint.start()
        options: dict[str, Any] = {}
        if c.daw == "ardour":
            options = {"host": c.daw_host, "port": c.daw_port or 3819}
        elif c.daw == "reaper":
            options = {"host": c.daw_host, "port": c.daw_port or 8000, "listen_port": c.daw_listen_port}
        self.adapter = make_adapter(c.daw, on_tracks=self._on_daw_tracks, **options).start()
        if c.audio:
            self.restart_monitor()
        if c.midi:
            from .midi import MidiControl
            self.midi = MidiControl(self, mapping_path=c.midi_map, port_name=c.midi_port_name).open()
        log.info("stase daemon listening on udp %s:%d (daw: %s, session: %s)", c.host,
                 self.endpoint.port, c.daw, self.session.path)
        return self

    def stop(self) -> None:
        if self.midi is not None:
            self.midi.close()
        if self.monitor is not None:
            self.monitor.stop()
        self.adapter.stop()
        if self.endpoint is not None:
            self.endpoint.close()
        self.dispatcher.stop()
        if self.config.durable_saves and self.session.path.exists():
            self.session.sync()
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
        if self.session.set_tracks(tracks):
            log.info("DAW tracks: %s", [t["name"] for t in tracks])
            if self.config.audio:
                # building a renderer takes seconds (HRTF set, room response): never on the
                # thread that answers requests
                threading.Thread(target=self.restart_monitor, name="stase-monitor-restart",
                                 daemon=True).start()

    def restart_monitor(self) -> None:
        """(Re)open the live monitor for the current track list (one input per track).

        The renderer is built without holding the daemon's lock (it takes seconds), so requests
        keep flowing; moves made meanwhile are in the session and are queued once it runs.
        """
        from .monitor import LiveMonitor
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
                placements = {p.track: {"azimuth_deg": p.azimuth_deg, "elevation_deg": p.elevation_deg,
                                        "distance_m": p.distance_m, "gain_db": p.gain_db, "mode": p.mode}
                              for p in plan.sources}
                monitor = LiveMonitor(names, placements, self.config.sample_rate, self.config.block_size,
                                      room=plan.room, reverb_engine=plan.reverb_engine)
                monitor.start(self.config.audio_device, self.config.audio_hostapi)
            except (StaseError, ImportError) as exc:
                self.audio_error = f"{exc}" + (f" ({exc.__cause__})" if exc.__cause__ else "")
                log.error("live monitor unavailable: %s", self.audio_error)
                return
            with self.lock:
                for s in self.session.plan.sources:  # the latest positions, ramped in
                    monitor.set_source(s.track, azimuth_deg=s.azimuth_deg, elevation_deg=s.elevation_deg,
                                       distance_m=s.distance_m, gain_db=s.gain_db, mode=s.mode)
                self.monitor = monitor
            self.audio_error = None

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

    def verb_status(self, params: dict) -> dict:
        s = self.session
        endpoint_stats = dict(self.endpoint.stats) if self.endpoint else {}
        audio = self.monitor.status() if self.monitor is not None else {"running": False, "xruns": 0,
                                                                       "cpu_load": 0.0}
        audio["error"] = self.audio_error
        return {"version": VERSION, "uptime_s": round(time.time() - self.started_at, 1),
                "port": self.port, "session": str(s.path), "session_saves": s.saves,
                "tracks": s.track_names(), "selected": s.selected, "room": s.plan.room,
                "sources": len(s.plan.sources), "daw": self.adapter.status(), "audio": audio,
                "osc": endpoint_stats, "requests": dict(self.dispatcher.stats),
                "job": self.dispatcher.current_job, "verbs": self.dispatcher.verbs,
                "midi": self.midi.status() if self.midi is not None else None}

    def verb_sources(self, params: dict) -> dict:
        s = self.session
        with s.lock:
            placed = {p.track.lower(): p for p in s.plan.sources}
            out = []
            for name in s.track_names():
                p = placed.get(name.lower())
                entry = {"track": name, "placed": p is not None, "role": p.role if p else None}
                if p is not None:
                    entry.update({k: getattr(p, k) for k in SOURCE_FIELDS + ("mode",)})
                out.append(entry)
        return {"room": s.plan.room, "sources": out}

    def verb_tracks(self, params: dict) -> dict:
        tracks = params.get("tracks")
        if not isinstance(tracks, list) or not all(isinstance(t, str) and t.strip() for t in tracks):
            raise InputError("tracks: send {\"tracks\": [\"Vox\", \"Bass\", ...]} (non-empty names)")
        if len({t.lower() for t in tracks}) != len(tracks):
            raise InputError("tracks: names must be unique (case-insensitive)")
        if self.config.daw != "none":
            raise InputError(f"the track list comes from {self.config.daw}; 'tracks' is for --daw none")
        self._on_daw_tracks([{"name": t, "daw_id": i + 1} for i, t in enumerate(tracks)])
        return {"tracks": self.session.track_names()}

    def verb_set_source(self, params: dict) -> dict:
        fields = {k: v for k, v in params.items() if k not in ("id", "track")}
        if not fields:
            raise InputError("set_source needs a track and at least one of "
                             f"{SOURCE_FIELDS + ('mode', 'role')}")
        placement = self.set_source(params.get("track"), **fields)
        return {"track": placement.track, **{k: getattr(placement, k) for k in SOURCE_FIELDS + ("mode",)}}

    def set_source(self, track: Any, **fields: Any):
        """The one path for a source change (OSC, MIDI): session, then monitor and DAW."""
        with self.lock:
            placement = self.session.set_source(track, **fields)
            moved = {k: getattr(placement, k) for k in fields if k in SOURCE_FIELDS + ("mode",)}
            if self.monitor is not None and moved:
                self.monitor.set_source(placement.track, **moved)
            self.adapter.apply(placement.track, placement.gain_db,
                               azimuth_to_stereo_pan(placement.azimuth_deg, placement.elevation_deg))
            if self.midi is not None:
                self.midi.echo(placement)
            return placement

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
            self.session.set_plan(Plan.from_dict(params["plan"], source="apply.plan"))
        plan = self.session.plan
        applied, missing = [], []
        with self.lock:
            for s in plan.sources:
                if self.monitor is not None:
                    self.monitor.set_source(s.track, azimuth_deg=s.azimuth_deg, elevation_deg=s.elevation_deg,
                                            distance_m=s.distance_m, gain_db=s.gain_db, mode=s.mode)
                if self.adapter.apply(s.track, s.gain_db, azimuth_to_stereo_pan(s.azimuth_deg, s.elevation_deg)):
                    applied.append(s.track)
                else:
                    missing.append(s.track)
        return {"applied": applied, "not_in_daw": missing if self.config.daw != "none" else [],
                "room": plan.room, "sources": len(plan.sources)}

    # ---------------------------------------------------------------- long jobs
    def conductor(self) -> Any:
        if self._conductor is None:
            conductor_cls = _lazy("agent.conductor", "Conductor", "the conductor (planning)")
            self._conductor = conductor_cls(model=self.config.conductor_model)
        return self._conductor

    def listener(self) -> Any:
        """One Spatial-AST listener per daemon: the ONNX model loads once."""
        if self._listener is None:
            self._listener = _lazy("agent.listener", "Listener", "the listener (Spatial-AST)")()
        return self._listener

    def verb_plan(self, params: dict, progress: Callable) -> dict:
        prompt = params.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise InputError("plan needs {\"prompt\": \"describe the stage\"}")
        tracks = params.get("tracks", self.session.track_names())
        if not isinstance(tracks, list) or not all(isinstance(t, str) for t in tracks):
            raise InputError("tracks must be a list of track names")
        progress(0.1, "loading the conductor")
        conductor = self.conductor()
        progress(0.4, "planning")
        plan = conductor.plan(prompt, tracks=tracks or None, current=self.session.plan)
        self.session.set_plan(plan)
        progress(0.9, "plan saved")
        return {"plan": plan.to_dict()}

    def verb_edit(self, params: dict, progress: Callable) -> dict:
        request = params.get("request") or params.get("text")
        if not isinstance(request, str) or not request.strip():
            raise InputError("edit needs {\"request\": \"move the sax a bit left\"}")
        if not self.session.plan.sources:
            raise InputError("there is no plan to edit yet; use 'plan' first")
        progress(0.1, "loading the conductor")
        plan = self.conductor().edit(request, self.session.plan)
        self.session.set_plan(plan)
        return {"plan": plan.to_dict()}

    def _stems(self, params: dict, key: str = "stems_dir") -> tuple[dict, int]:
        folder = params.get(key) or (self.session.stems_dir if key == "stems_dir" else None)
        if not isinstance(folder, str):
            raise InputError(f"{key}: give a folder of the tracks' audio files (one mono file per track)")
        from dsp.audio_io import load_stems
        stems, rate = load_stems(folder, downmix=True)
        if key == "stems_dir" and folder != self.session.stems_dir:
            self.session.set_stems_dir(folder)
        return stems, rate

    def verb_advise(self, params: dict, progress: Callable) -> dict:
        stems, rate = self._stems(params)
        advise = _lazy("agent.advisor", "advise", "the gain advisor")
        reference = self._stems(params, "reference_dir")[0] if params.get("reference_dir") else None
        progress(0.3, f"analysing {len(stems)} stems")
        return advise(stems, rate, reference=reference, plan=self.session.plan)

    def verb_listen(self, params: dict, progress: Callable) -> dict:
        """Listen by ear (Spatial-AST), four ways.

        ``path``: where the source in a binaural file is heard.  ``question`` (or chat ``text``
        phrased as a question): BAT's question types answered from solo renders of the plan's
        tracks and their mix.  ``track``: that track rendered alone at its placement.  Nothing:
        listen-back of the whole plan, per-track angular/distance error with flags.
        """
        if isinstance(params.get("path"), str):
            from dsp.audio_io import read_audio
            audio, rate = read_audio(params["path"])
            if audio.shape[0] != 2:
                raise InputError(f"listen needs a binaural (2-channel) file, got {audio.shape[0]} channels")
            progress(0.5, "listening")
            return {"heard": self.listener().listen(audio, rate)}
        plan = self.session.plan
        if not plan.sources:
            raise InputError("there is no plan to listen to yet; use 'plan' (or give a binaural 'path')")
        stems, rate = self._stems(params)
        question = params.get("question")
        if question is None and _is_question(params.get("text")):
            question = params["text"]
        if isinstance(question, str) and question.strip():
            return self._answer(question, stems, rate, plan, progress)
        if params.get("track") is not None:
            track = self.session.resolve_track(params.get("track"))
            plan = Plan(room=plan.room, sources=[self.session.placement(track)],
                        reverb_engine=plan.reverb_engine)
        progress(0.2, f"rendering {len(plan.sources)} track(s) alone and listening")
        checked = self.listener().listen_back(stems, plan, rate)
        if params.get("track") is not None:
            row = checked["tracks"][0]
            return {"track": row["track"], "planned": row["planned"], "heard": row["perceived"],
                    "check": checked}
        return checked

    def _answer(self, question: str, stems: dict, rate: int, plan: Plan, progress: Callable) -> dict:
        """Answer a spatial question from the listener's perception of the rendered plan."""
        import dataclasses
        render_plan = _lazy("dsp.offline", "render_plan", "the offline renderer")
        from dsp.offline import match_stems
        matched, _ = match_stems(stems, plan)
        progress(0.2, "rendering each track alone")
        solos = {}
        for s in plan.sources:
            solos[s.track] = render_plan({s.track: matched[s.track]},
                                         dataclasses.replace(plan, sources=[s]), rate).audio
        progress(0.6, "rendering the mix")
        mix = render_plan(matched, plan, rate).audio
        progress(0.8, "listening")
        return {"question": question, **self.listener().answer(question, mix, sources=solos,
                                                              sample_rate=rate)}

    def verb_chat(self, params: dict, progress: Callable) -> dict:
        text = params.get("text") or params.get("message")
        if not isinstance(text, str) or not text.strip():
            raise InputError("chat needs {\"text\": \"...\"}")
        verb = route_chat(text, has_plan=bool(self.session.plan.sources))
        progress(0.05, f"routed to {verb}")
        if verb in ("status", "sources"):
            result = getattr(self, f"verb_{verb}")({})
        elif verb == "plan":
            result = self.verb_plan({"prompt": text}, progress)
        elif verb == "edit":
            result = self.verb_edit({"request": text}, progress)
        else:
            result = getattr(self, f"verb_{verb}")(dict(params, text=text), progress)
        return {"routed_to": verb, "result": result}


CHAT_ROUTES = (
    ("advise", ("advice", "advise", "balance", "levels", "gain staging", "how loud", "too loud", "too quiet")),
    ("listen", ("where is", "where do you hear", "listen", "check the position", "check the placement",
                "localis", "localiz", "what is playing", "what's playing", " left of ", " right of ",
                "closer", "nearer", "further away", "farther")),
    ("status", ("status", "xrun", "cpu")),
    ("sources", ("list the", "which tracks", "what tracks", "show the sources", "sources")),
    ("plan", ("new plan", "start over", "from scratch", "plan ", "set up a", "arrange")),
)


def _is_question(text: Any) -> bool:
    """A chat text that asks about what is heard ("where is the sax?", "is X left of Y?")."""
    if not isinstance(text, str):
        return False
    lowered = text.strip().lower()
    return lowered.endswith("?") or lowered.startswith(("where ", "what ", "which ", "is ", "how far"))


def route_chat(text: str, has_plan: bool) -> str:
    """Which verb a free-text request goes to (keyword rules; edits are the default)."""
    lowered = " " + text.lower() + " "
    for verb, cues in CHAT_ROUTES:
        if any(cue in lowered for cue in cues):
            return verb
    return "edit" if has_plan else "plan"
