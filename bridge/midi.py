"""MIDI control: control-change messages move the selected source; values are echoed back.

mido with the python-rtmidi backend opens a virtual input and a virtual output named
``port_name`` (``"stase"``).  ALSA's sequencer is tried first, then JACK MIDI (python-rtmidi is
built with both; a machine without ``/dev/snd/seq`` still has JACK).  A CC mapped to a field
moves the selected source (``select`` verb, or a DAW selection) through the daemon's one
``set_source`` path; the daemon then calls :meth:`MidiControl.echo`, which sends every mapped
field's current value back, so motorised faders and LED rings follow OSC and plan changes.

Mapping (YAML, the default below)::

    controls:
      - {cc: 16, channel: 1, field: azimuth_deg,   min: -180, max: 180}
      - {cc: 17, channel: 1, field: elevation_deg, min: -90,  max: 90}
      - {cc: 18, channel: 1, field: distance_m,    min: 0.5,  max: 20}
      - {cc: 19, channel: 1, field: gain_db,       min: -30,  max: 6}
    select: {cc: 20, channel: 1}     # value n selects the n-th track (0-based)

A control's ``min`` and ``max`` must both be values the placement schema accepts
(:mod:`stase.core.placement`: gain within ``GAIN_DB_RANGE``, distance above 0), so no CC can ever ask for
a value the session refuses.  Channels are 1..16 as printed on controllers.  Learn mode (``midi_learn`` verb): the next CC
that arrives is bound to the given field (replacing its old binding) and the mapping file is
saved, when there is one.
"""
from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from stase.core.errors import InputError, StaseError
from stase.core.names import same_track
from stase.core.placement import NORMALISED_RANGES, field_problem

from stase.bridge.session import SOURCE_FIELDS

log = logging.getLogger("stase.midi")

#: Azimuth and elevation sweep the whole normalised range of the placement schema; distance and
#: gain sweep what is useful on a fader (0.5-20 m, -30..+6 dB), inside the schema's bounds.
DEFAULT_MAPPING: dict[str, Any] = {
    "controls": [
        {"cc": 16, "channel": 1, "field": "azimuth_deg",
         "min": NORMALISED_RANGES["azimuth_deg"][0], "max": NORMALISED_RANGES["azimuth_deg"][1]},
        {"cc": 17, "channel": 1, "field": "elevation_deg",
         "min": NORMALISED_RANGES["elevation_deg"][0], "max": NORMALISED_RANGES["elevation_deg"][1]},
        {"cc": 18, "channel": 1, "field": "distance_m", "min": 0.5, "max": 20.0},
        {"cc": 19, "channel": 1, "field": "gain_db", "min": -30.0, "max": 6.0},
    ],
    "select": {"cc": 20, "channel": 1},
}
BACKEND_APIS = ("LINUX_ALSA", "UNIX_JACK")


def check_mapping(data: Any, where: str = "MIDI mapping") -> dict[str, Any]:
    """Validate a mapping; ``InputError`` listing every problem."""
    problems = []
    if not isinstance(data, dict) or not isinstance(data.get("controls"), list):
        raise InputError(f"{where}: needs a 'controls' list (see bridge/midi.py)")
    for i, c in enumerate(data["controls"]):
        at = f"{where}: controls[{i}]"
        if not isinstance(c, dict):
            problems.append(f"{at} must be a mapping")
            continue
        if not isinstance(c.get("cc"), int) or not 0 <= c["cc"] <= 127:
            problems.append(f"{at}.cc must be 0..127")
        if not isinstance(c.get("channel", 1), int) or not 1 <= c.get("channel", 1) <= 16:
            problems.append(f"{at}.channel must be 1..16")
        if c.get("field") not in SOURCE_FIELDS:
            problems.append(f"{at}.field must be one of {SOURCE_FIELDS}")
        lo, hi = c.get("min"), c.get("max")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (lo, hi)) or lo == hi:
            problems.append(f"{at}: min and max must be two different numbers")
        elif c.get("field") in SOURCE_FIELDS:
            for key, value in (("min", lo), ("max", hi)):
                wrong = field_problem(c["field"], value)
                if wrong is not None:
                    problems.append(f"{at}.{key}: {wrong}")
    sel = data.get("select")
    if sel is not None and (not isinstance(sel, dict) or not isinstance(sel.get("cc"), int)):
        problems.append(f"{where}: select must be {{cc: n, channel: c}}")
    if problems:
        raise InputError("; ".join(problems))
    return data


def cc_to_value(cc_value: int, lo: float, hi: float) -> float:
    """0..127 to lo..hi, linear."""
    return lo + (hi - lo) * (min(max(int(cc_value), 0), 127) / 127.0)


def value_to_cc(value: float, lo: float, hi: float) -> int:
    """lo..hi to the nearest 0..127 (clamped)."""
    return int(round(min(max((float(value) - lo) / (hi - lo), 0.0), 1.0) * 127))


class MidiControl:
    """CC control of the daemon's selected source (see the module docstring).

    Parameters
    ----------
    daemon : the :class:`stase.bridge.daemon.Daemon` (uses ``session``, ``set_source``).
    mapping_path : YAML mapping file (read if it exists; learn mode writes it).
    port_name : name of the virtual ports.
    api : "auto" (ALSA, then JACK), "LINUX_ALSA" or "UNIX_JACK".
    """

    def __init__(self, daemon: Any, mapping_path: str | None = None, port_name: str = "stase",
                 api: str = "auto"):
        self.daemon = daemon
        self.mapping_path = Path(mapping_path) if mapping_path else None
        self.port_name = port_name
        self.api = api
        self.mapping = self._load_mapping()
        self.learning: str | None = None
        self.learned = threading.Event()
        self.inport: Any = None
        self.outport: Any = None
        self.backend_api: str | None = None
        self.stats = {"received": 0, "applied": 0, "ignored": 0, "errors": 0, "echoed": 0}

    def _load_mapping(self) -> dict[str, Any]:
        if self.mapping_path is None or not self.mapping_path.exists():
            import copy
            return copy.deepcopy(DEFAULT_MAPPING)
        import yaml
        try:
            data = yaml.safe_load(self.mapping_path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise InputError(f"cannot read MIDI mapping {self.mapping_path}: {exc}") from exc
        return check_mapping(data, str(self.mapping_path))

    # ---------------------------------------------------------------- ports
    def open(self) -> "MidiControl":
        import mido
        errors = []
        for api in (BACKEND_APIS if self.api == "auto" else (self.api,)):
            try:
                backend = mido.Backend(f"mido.backends.rtmidi/{api}", load=True)
                self.inport = backend.open_input(self.port_name, virtual=True, callback=self._on_midi)
                self.outport = backend.open_output(self.port_name, virtual=True)
                self.backend_api = api
                log.info("MIDI: virtual ports %r open (%s)", self.port_name, api)
                return self
            except Exception as exc:  # noqa: BLE001 - rtmidi raises its own SystemError types
                errors.append(f"{api}: {exc}")
                self.close()
        raise StaseError("cannot open virtual MIDI ports: " + "; ".join(errors) +
                         " (ALSA needs /dev/snd/seq; JACK MIDI needs a running jackd)")

    def close(self) -> None:
        for port in (self.inport, self.outport):
            if port is not None:
                port.close()
        self.inport = self.outport = None

    def _on_midi(self, message: Any) -> None:
        try:
            self.handle_message(message)
        except InputError as exc:
            self.stats["errors"] += 1
            log.warning("MIDI %s: %s", message, exc)
        except Exception:  # noqa: BLE001 - rtmidi's thread must survive a bug; logged
            self.stats["errors"] += 1
            log.exception("MIDI handler failed for %s", message)

    # ---------------------------------------------------------------- logic
    def learn(self, field: str) -> None:
        if field not in SOURCE_FIELDS:
            raise InputError(f"learn: field must be one of {SOURCE_FIELDS}, got {field!r}")
        self.learned.clear()
        self.learning = field

    def handle_message(self, message: Any) -> dict[str, Any] | None:
        """Apply one mido message; returns what it did (None when ignored)."""
        self.stats["received"] += 1
        if getattr(message, "type", None) != "control_change":
            self.stats["ignored"] += 1
            return None
        channel, cc, value = message.channel + 1, message.control, message.value
        if self.learning is not None:
            return self._bind(self.learning, cc, channel)
        sel = self.mapping.get("select")
        if sel and sel["cc"] == cc and sel.get("channel", 1) == channel:
            names = self.daemon.session.track_names()
            if value >= len(names):
                raise InputError(f"select CC value {value} but only {len(names)} tracks")
            self.daemon.verb_select({"track": names[value]})
            self.stats["applied"] += 1
            return {"select": names[value]}
        for c in self.mapping["controls"]:
            if c["cc"] == cc and c.get("channel", 1) == channel:
                track = self.target()
                number = cc_to_value(value, c["min"], c["max"])
                self.daemon.set_source(track, **{c["field"]: number})
                self.stats["applied"] += 1
                return {"track": track, c["field"]: number}
        self.stats["ignored"] += 1
        return None

    def _bind(self, field: str, cc: int, channel: int) -> dict[str, Any]:
        old = next((c for c in self.mapping["controls"] if c["field"] == field), None)
        lo, hi = (old["min"], old["max"]) if old else next(
            (c["min"], c["max"]) for c in DEFAULT_MAPPING["controls"] if c["field"] == field)
        self.mapping["controls"] = [c for c in self.mapping["controls"]
                                    if c["field"] != field and not (c["cc"] == cc and c.get("channel", 1) == channel)]
        self.mapping["controls"].append({"cc": cc, "channel": channel, "field": field, "min": lo, "max": hi})
        self.learning = None
        if self.mapping_path is not None:
            import yaml
            from stase.bridge.session import write_atomically
            write_atomically(self.mapping_path, yaml.safe_dump(self.mapping, sort_keys=False))
        self.learned.set()
        log.info("MIDI learn: CC %d on channel %d now moves %s", cc, channel, field)
        return {"learned": field, "cc": cc, "channel": channel}

    def target(self) -> str:
        """The source CCs move: the selected one, else the first track."""
        session = self.daemon.session
        if session.selected:
            return session.selected
        names = session.track_names()
        if not names:
            raise InputError("no tracks to control yet")
        return names[0]

    def echo(self, placement: Any) -> list[Any]:
        """Send the mapped fields of ``placement`` back as CCs (only for the controlled source)."""
        import mido
        try:
            if not same_track(placement.track, self.target()):
                return []
        except InputError:
            return []
        sent = []
        for c in self.mapping["controls"]:
            msg = mido.Message("control_change", channel=c.get("channel", 1) - 1, control=c["cc"],
                               value=value_to_cc(getattr(placement, c["field"]), c["min"], c["max"]))
            if self.outport is not None:
                self.outport.send(msg)
            sent.append(msg)
        self.stats["echoed"] += len(sent)
        return sent

    def status(self) -> dict[str, Any]:
        return {"api": self.backend_api, "port": self.port_name, "learning": self.learning,
                "mapping": self.mapping["controls"], **self.stats}
