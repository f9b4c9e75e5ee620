"""Rooms bench: how much of a placement's direction survives each room, against a measured room.

Usage::

    python -m bench.rooms --json                 # every room x every template seat + the measured room
    python -m bench.rooms --json --listener      # also the listener's angular error (slower)
    python -m bench.rooms --rooms small_chamber,dry_studio --mode itd_ild

What it measures
----------------
For a source rendered by :class:`stase.dsp.scene.SceneRenderer` (an impulse through the whole scene:
direct path + room, 48 kHz, ``hrtf`` mode unless ``--mode``), from its impulse response ``h``:

* **ILD** (dB, positive = louder on the left): the energy ratio of the two ears for pink noise,
  ``10 log10(sum P(f) |H_L|^2 / sum P(f) |H_R|^2)`` with ``P(f) = 1/f`` (20 Hz up).  This is the
  expected whole-signal ILD of an endless pink-noise source, without the noise's own scatter;
* **ITD** (microseconds, positive = the left ear leads): the lag of the peak of the expected
  interaural cross-correlation of pink noise, ``IFFT(P H_R conj(H_L))``, searched within
  +-1 ms, at quarter-sample resolution, broadband (``itd_us``) and below 1.5 kHz
  (``itd_low_us``, the band where ITD dominates localisation; Wightman & Kistler, JASA 91(3),
  1992).  The measured-room goal ("keeps at least half its ITD") uses the band below 1.5 kHz;
  the broadband figure is reported beside it (``itd_kept_broadband``);
* **DRR** (dB): direct = the first 2.5 ms after the direct-sound onset (the first sample within
  20 dB of the peak, over both ears), reverberant = the rest; energies summed over both ears,
  broadband (``drr_db``) and in the 500 Hz-1 kHz octaves (``drr_mid_db``, where presets quote RT);
* the same source rendered with no room (``room=None``) is the anechoic reference:
  ``ild_fraction`` = ILD / anechoic ILD, ``side_ok`` = ILD and ITD (below 1.5 kHz) on the
  anechoic side.

Seats: every seat of every template (``presets/templates/*.yaml``), in every room (``rooms``) and
in its own template room (``templates``, the goal: every seat with |azimuth| >= 30 deg keeps its
side and at least half its anechoic ILD, at the template's default wetness: its ``reverb_db``
when it has one, else 0 dB).  ``template_wetness`` lists each template's ``reverb_db`` beside
the rule it follows (:func:`template_wetness_rule_db`: the farthest lateral seat at the
critical-distance balance).  The measured reference is the CC0 seminar-room BRIR set in
``../shared/data/brir_rostock_seminar/`` (KEMAR, loudspeaker at 6.3 m, RT60 0.57 s, 44.1 kHz,
resampled with :func:`stase.core.rates.resample`): the same figures straight from the measurement, and
stase's ``small_chamber`` and ``seminar_measured`` renders at 6.3 m, +-40 and +-80 deg.

With ``--listener`` each seat is also rendered as 1 s of pink noise and the shipped listener's
great-circle error (degrees) is reported (``listener_error_deg``).
"""
from __future__ import annotations

import argparse
import inspect
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

RATE = 48000
DIRECT_WINDOW_S = 0.0025
MAX_ITD_S = 1e-3
LOW_BAND_HZ = 1500.0
#: Longest impulse response measured, seconds: past it a church's tail holds < 1e-3 of its energy.
MAX_IR_S = 3.0
MEASURED_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "brir_rostock_seminar"
MEASURED_FILE = "brir_kemar_seminar_6m3.npz"
MEASURED_KEYS = {-80.0: "m80", -40.0: "m40", 0.0: "0", 40.0: "p40", 80.0: "p80"}
#: Role used for stase's renders compared with the measured room (its source is a loudspeaker).
COMPARISON_ROLE = "loudspeaker"


# ---------------------------------------------------------------------------------------------
# measurements of an impulse response (2, n)

def _spectra(ir: np.ndarray, rate: int) -> tuple[np.ndarray, np.ndarray, int]:
    h = np.asarray(ir, dtype=np.float64)
    n = 1 << int(math.ceil(math.log2(2 * h.shape[1])))
    return np.fft.rfft(h, n, axis=1), np.fft.rfftfreq(n, 1.0 / rate), n


def _pink(f: np.ndarray) -> np.ndarray:
    p = np.zeros_like(f)
    keep = f >= 20.0
    p[keep] = 1.0 / f[keep]
    return p


def pink_ild_db(ir: np.ndarray, rate: int) -> float:
    """Expected whole-signal ILD of pink noise through ``ir`` (dB, positive = left louder)."""
    spec, f, _ = _spectra(ir, rate)
    p = _pink(f)
    e = [float(np.sum(p * np.abs(spec[ear]) ** 2)) + 1e-30 for ear in range(2)]
    return 10.0 * math.log10(e[0] / e[1])


def pink_itd_us(ir: np.ndarray, rate: int, max_hz: float | None = None,
                max_itd_s: float = MAX_ITD_S) -> float:
    """Lag of the peak of pink noise's interaural cross-correlation (us, positive = left leads)."""
    spec, f, n = _spectra(ir, rate)
    p = _pink(f)
    if max_hz is not None:
        p = p * (f <= max_hz)
    up = 4
    cc = np.fft.irfft(p * spec[1] * np.conj(spec[0]), n * up)
    lag = int(max_itd_s * rate * up)
    window = np.concatenate([cc[-lag:], cc[:lag + 1]])
    return (int(np.argmax(window)) - lag) / (rate * up) * 1e6


def direct_onset(ir: np.ndarray) -> int:
    """First sample within 20 dB of the peak over both ears."""
    envelope = np.max(np.abs(np.asarray(ir)), axis=0)
    return int(np.argmax(envelope >= 0.1 * envelope.max()))


def drr_db(ir: np.ndarray, rate: int, band_hz: tuple[float, float] | None = None,
           window_s: float = DIRECT_WINDOW_S) -> float:
    """Direct (first ``window_s`` after the onset) to reverberant (the rest) energy, dB.

    ``band_hz`` filters both ears first (4th-order Butterworth band-pass, causal, as
    ``stase.dsp.brir.mid_band_energy_ratio``), e.g. ``(355, 1414)`` for the 500 Hz and 1 kHz octaves;
    the onset and the split are found on the broadband response.
    """
    h = np.asarray(ir, dtype=np.float64)
    split = direct_onset(h) + int(round(window_s * rate))
    if band_hz is not None:
        from scipy.signal import butter, sosfilt
        sos = butter(4, band_hz, btype="band", fs=rate, output="sos")
        h = sosfilt(sos, np.concatenate([h, np.zeros((2, rate // 10))], axis=1), axis=1)
    energy = np.sum(h ** 2, axis=0)
    return 10.0 * math.log10((energy[:split].sum() + 1e-30) / (energy[split:].sum() + 1e-30))


def mid_band_energy(h: np.ndarray, rate: int, band_hz: tuple[float, float] = (355.0, 1414.0)) -> float:
    """Energy of ``h`` (channels summed) in a band: its spectrum summed over the band's bins."""
    x = np.asarray(h, dtype=np.float64)
    n = 1 << int(math.ceil(math.log2(x.shape[-1] + rate // 10)))
    spectrum = np.abs(np.fft.rfft(x, n, axis=-1)) ** 2
    f = np.fft.rfftfreq(n, 1.0 / rate)
    return float(spectrum[..., (f >= band_hz[0]) & (f <= band_hz[1])].sum())


def cues(ir: np.ndarray, rate: int) -> dict:
    """ILD, ITD (broadband and below 1.5 kHz) and DRR (broadband and mid band) of one response."""
    return {"ild_db": round(pink_ild_db(ir, rate), 2), "itd_us": round(pink_itd_us(ir, rate), 1),
            "itd_low_us": round(pink_itd_us(ir, rate, LOW_BAND_HZ), 1),
            "drr_db": round(drr_db(ir, rate), 2), "drr_mid_db": round(drr_db(ir, rate, (355.0, 1414.0)), 2)}


def relative(room: dict, anechoic: dict, azimuth_deg: float, elevation_deg: float = 0.0) -> dict:
    """ILD fraction of the anechoic ILD and whether ILD and ITD keep the anechoic side."""
    from stase.core.conventions import lateral_angle_deg
    lateral = lateral_angle_deg(azimuth_deg, elevation_deg)
    out = {"ild_fraction": None, "side_ok": None}
    if abs(anechoic["ild_db"]) >= 1.0:
        out["ild_fraction"] = round(room["ild_db"] / anechoic["ild_db"], 3)
    if abs(lateral) >= 10.0:
        side = math.copysign(1.0, lateral)
        out["side_ok"] = bool(room["ild_db"] * side > 0 and room["itd_low_us"] * side > 0)
    return out


# ---------------------------------------------------------------------------------------------
# rendering through the scene

def _accepts(function, name: str) -> bool:
    return name in inspect.signature(function).parameters


class SeatRenderer:
    """One :class:`SceneRenderer` per room and mode, reused for every seat (impulse responses)."""

    def __init__(self, room, mode: str = "hrtf", rate: int = RATE, reverb_db: float = 0.0):
        from stase.dsp.rooms import reverb_tail_s
        from stase.dsp.scene import SceneRenderer
        self.mode, self.rate = mode, rate
        kwargs = {}
        if reverb_db and _accepts(SceneRenderer.__init__, "reverb_db"):
            kwargs["reverb_db"] = reverb_db
        self.scene = SceneRenderer(sample_rate=rate, block_size=1024, room=room, **kwargs)
        tail = min(reverb_tail_s(room, rate), MAX_IR_S) if room else 0.0
        self.samples = int((tail + 0.1) * rate)
        self._role_ok = _accepts(self.scene.add_source, "role")

    def impulse(self, azimuth_deg, elevation_deg, distance_m, role=None, reverb_db=0.0) -> np.ndarray:
        """(2, n) float64 response of the scene to a unit impulse from this placement."""
        for track in list(self.scene.source_ids):
            self.scene.remove_source(track)
        self.scene.reset()
        kwargs = {}
        if self._role_ok:
            kwargs["role"] = role
            if reverb_db:
                kwargs["reverb_db"] = reverb_db
        self.scene.add_source("seat", azimuth_deg, elevation_deg, distance_m, self.mode, **kwargs)
        x = np.zeros((1, self.samples), dtype=np.float32)
        x[0, 0] = 1.0
        return self.scene.process(x).astype(np.float64)


def template_seats() -> list[dict]:
    """Every seat of every template: template, room, track, role, direction, default wetness."""
    from stase.presets import load_templates
    seats = []
    for tid, template in sorted(load_templates().items()):
        for k, seat in enumerate(template["roles"]):
            seats.append({"template": tid, "room": template["room"],
                          "track": seat.get("name") or seat["role"], "role": seat["role"],
                          "azimuth_deg": float(seat["azimuth_deg"]),
                          "elevation_deg": float(seat.get("elevation_deg", 0.0)),
                          "distance_m": float(seat["distance_m"]),
                          "reverb_db": float(template.get("reverb_db", 0.0))})
    return seats


def is_lateral_seat(azimuth_deg: float) -> bool:
    """A seat of the goal: |azimuth| >= 30 deg and off the median plane (|sin az| >= 0.2)."""
    return abs(azimuth_deg) >= 30.0 and abs(math.sin(math.radians(azimuth_deg))) >= 0.2


def template_wetness_rule_db(template: dict) -> float:
    """The default wetness a template ships (its ``reverb_db``), by rule.

    Recording practice puts the main microphones at or inside the room's critical distance,
    where the direct sound dominates and a source's direction is clear; so the template's
    wetness brings its farthest lateral seat (:func:`is_lateral_seat`) to a direct-to-reverberant
    ratio of 0 dB by the closed form ``stase.dsp.distance.drr_model_db`` (the seat's distance,
    its role's Q, Barron's decay), rounded down to 0.5 dB, and leaves the room's physical level
    (0 dB) when every lateral seat is already inside the critical distance or there is none.
    """
    from stase.dsp.directivity import directivity_q
    from stase.dsp.distance import drr_model_db
    from stase.dsp.rooms import load_room
    room = load_room(template["room"])
    drr = [drr_model_db(room, float(seat["distance_m"]), directivity_q(seat["role"]))
           for seat in template["roles"] if is_lateral_seat(float(seat["azimuth_deg"]))]
    lowest = min(drr, default=0.0)
    return 0.0 if lowest >= 0.0 else math.floor(2.0 * lowest) / 2.0


def _seat_row(seat: dict, room_cues: dict, anechoic: dict) -> dict:
    row = {k: seat[k] for k in ("template", "track", "role", "azimuth_deg", "elevation_deg", "distance_m")}
    row.update(room_cues)
    row["anechoic_ild_db"] = anechoic["ild_db"]
    row["anechoic_itd_us"] = anechoic["itd_us"]
    row.update(relative(room_cues, anechoic, seat["azimuth_deg"], seat["elevation_deg"]))
    return row


def _listener_error(listener, renderer: SeatRenderer, seat: dict, reverb_db: float) -> float:
    from stase.core.conventions import great_circle_deg
    h = renderer.impulse(seat["azimuth_deg"], seat["elevation_deg"], seat["distance_m"],
                         seat["role"], reverb_db)
    rng = np.random.default_rng(7)
    n = renderer.rate
    spec = np.fft.rfft(rng.standard_normal(n))
    spec *= np.sqrt(_pink(np.fft.rfftfreq(n, 1.0 / renderer.rate)))
    noise = np.fft.irfft(spec, n)
    from scipy.signal import fftconvolve
    binaural = fftconvolve(noise[None, :], h, axes=1)[:, :n]
    heard = listener.listen((0.1 * binaural / np.max(np.abs(binaural))).astype(np.float32), renderer.rate)
    return float(great_circle_deg(heard["azimuth_deg"], heard["elevation_deg"],
                                  seat["azimuth_deg"], seat["elevation_deg"]))


# ---------------------------------------------------------------------------------------------
# the measured seminar room

def measured_set(directory: Path | None = None, rate: int = RATE) -> dict:
    """{azimuth_deg: (2, n) BRIR at ``rate``} of the measured seminar room, plus its metadata."""
    from stase.core.rates import resample
    path = Path(directory or MEASURED_DIR) / MEASURED_FILE
    with np.load(path, allow_pickle=False) as data:
        source_rate = int(data["fs"])
        out = {"distance_m": float(data["distance_m"]), "rt60_s": float(data["rt60_s"]),
               "source_rate": source_rate, "responses": {}}
        for azimuth, key in MEASURED_KEYS.items():
            ir = np.asarray(data["ir_" + key], dtype=np.float64).T  # stored (n, 2)
            out["responses"][azimuth] = resample(ir, source_rate, rate)
    return out


def measured_comparison(mode: str = "hrtf", directory: Path | None = None) -> dict:
    """The measured room's figures at 0, +-40, +-80 deg beside stase's renders at 6.3 m."""
    from stase.dsp.rooms import resolve_room
    measured = measured_set(directory)
    distance = measured["distance_m"]
    anechoic = SeatRenderer(None, mode)
    rooms = ["small_chamber"]
    try:
        resolve_room("seminar_measured")
        rooms.append("seminar_measured")
    except Exception:  # noqa: BLE001 - before the measured room was selectable by name
        pass
    renderers = {room: SeatRenderer(room, mode) for room in rooms}
    rows = []
    for azimuth, ir in measured["responses"].items():
        dry = cues(anechoic.impulse(azimuth, 0.0, distance, COMPARISON_ROLE), RATE)
        row = {"azimuth_deg": azimuth, "measured": cues(ir, RATE), "stase_anechoic": dry}
        row["measured"].update(relative(row["measured"], dry, azimuth))
        for room, renderer in renderers.items():
            got = cues(renderer.impulse(azimuth, 0.0, distance, COMPARISON_ROLE), RATE)
            got.update(relative(got, dry, azimuth))
            got["ild_error_db"] = round(got["ild_db"] - row["measured"]["ild_db"], 2)
            if abs(row["measured"]["itd_us"]) > 50:
                got["itd_kept"] = round(got["itd_low_us"] / row["measured"]["itd_low_us"], 3)
                got["itd_kept_broadband"] = round(got["itd_us"] / row["measured"]["itd_us"], 3)
            row[room] = got
        rows.append(row)
    lateral = [r for r in rows if r["azimuth_deg"] != 0.0]
    goal = {"ild_within_3_db": all(abs(r["small_chamber"]["ild_error_db"]) <= 3.0 for r in lateral),
            "itd_at_least_half": all(r["small_chamber"].get("itd_kept", 0.0) >= 0.5 for r in lateral),
            "itd_at_least_half_broadband": all(r["small_chamber"].get("itd_kept_broadband", 0.0) >= 0.5
                                               for r in lateral)}
    return {"distance_m": distance, "rt60_s": measured["rt60_s"], "source_rate": measured["source_rate"],
            "mode": mode, "rows": rows, "goal_small_chamber": goal,
            "source": "CC0 seminar-room BRIRs, ../shared/data/brir_rostock_seminar/ (SOURCE_README.md)"}


# ---------------------------------------------------------------------------------------------

def run(rooms: list[str] | None = None, mode: str = "hrtf", listener: bool = False,
        measured: bool = True, progress: bool = False) -> dict:
    from stase.presets import load_rooms
    t0 = time.perf_counter()
    seats = template_seats()
    room_ids = rooms or sorted(load_rooms())
    anechoic = SeatRenderer(None, mode)
    dry = {}
    for seat in seats:
        key = (seat["azimuth_deg"], seat["elevation_deg"], seat["distance_m"], seat["role"])
        if key not in dry:
            dry[key] = cues(anechoic.impulse(seat["azimuth_deg"], seat["elevation_deg"],
                                             seat["distance_m"], seat["role"]), RATE)
    heard = None
    if listener:
        from stase.agent.listener import Listener
        heard = Listener(threads=1)
    result: dict = {"rate": RATE, "mode": mode, "rooms": {}, "templates": []}
    for room in room_ids:
        renderer = SeatRenderer(room, mode)
        rows = []
        for seat in seats:
            key = (seat["azimuth_deg"], seat["elevation_deg"], seat["distance_m"], seat["role"])
            ir = renderer.impulse(seat["azimuth_deg"], seat["elevation_deg"], seat["distance_m"], seat["role"])
            row = _seat_row(seat, cues(ir, RATE), dry[key])
            if heard is not None:
                row["listener_error_deg"] = round(_listener_error(heard, renderer, seat, 0.0), 1)
            rows.append(row)
        fractions = [r["ild_fraction"] for r in rows
                     if r["ild_fraction"] is not None and abs(r["azimuth_deg"]) >= 30.0]
        result["rooms"][room] = {
            "seats": rows,
            "lateral_ild_fraction_median": round(float(np.median(fractions)), 3) if fractions else None,
            "lateral_side_ok": all(r["side_ok"] is not False for r in rows if abs(r["azimuth_deg"]) >= 30.0),
            "drr_by_distance": {mode_: drr_by_distance(room, mode=mode_) for mode_ in ("pan", mode)}}
        if progress:
            print(f"{room}: done ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
        # the template goal: each template's seats in its own room, at its default wetness
        for seat, row in zip(seats, rows):
            if seat["room"] == room:
                if seat["reverb_db"]:
                    ir = renderer.impulse(seat["azimuth_deg"], seat["elevation_deg"], seat["distance_m"],
                                          seat["role"], seat["reverb_db"])
                    key = (seat["azimuth_deg"], seat["elevation_deg"], seat["distance_m"], seat["role"])
                    row = _seat_row(seat, cues(ir, RATE), dry[key])
                    if heard is not None:
                        row["listener_error_deg"] = round(_listener_error(heard, renderer, seat,
                                                                          seat["reverb_db"]), 1)
                result["templates"].append(dict(row, room=room, reverb_db=seat["reverb_db"]))
    from stase.presets import load_templates
    result["template_wetness"] = {tid: {"reverb_db": float(t.get("reverb_db", 0.0)),
                                        "rule_db": template_wetness_rule_db(t)}
                                  for tid, t in sorted(load_templates().items())}
    lateral = [r for r in result["templates"] if abs(r["azimuth_deg"]) >= 30.0 and r["side_ok"] is not None]
    result["goal_template_seats"] = {
        "seats": len(lateral),
        "no_side": [f"{r['template']}/{r['track']} ({r['azimuth_deg']:g} deg: on the median plane, "
                    "no left or right)" for r in result["templates"]
                    if abs(r["azimuth_deg"]) >= 30.0 and r["side_ok"] is None],
        "side_ok": sum(1 for r in lateral if r["side_ok"]),
        "ild_fraction_at_least_half": sum(1 for r in lateral if (r["ild_fraction"] or 0.0) >= 0.5),
        "failing": [f"{r['template']}/{r['track']} ({r['room']}, {r['azimuth_deg']:g} deg, "
                    f"{r['distance_m']:g} m): ILD {r['ild_db']:+.1f} of {r['anechoic_ild_db']:+.1f} dB"
                    for r in lateral if not (r["side_ok"] and (r["ild_fraction"] or 0.0) >= 0.5)]}
    if measured:
        try:
            result["measured_room"] = measured_comparison(mode)
        except FileNotFoundError as exc:
            result["measured_room"] = {"error": f"measured set not found: {exc}"}
    result["seconds"] = round(time.perf_counter() - t0, 1)
    return result


def drr_by_distance(room, distances=(1.0, 2.0, 4.0, 8.0), role=None, mode: str = "hrtf") -> dict:
    """DRR (dB) of a frontal source at 1, 2, 4 and 8 m, direct and reverberant rendered apart.

    ``mid``: in the 500 Hz and 1 kHz octaves (spectrum over 355-1414 Hz), beside the closed form
    ``model`` (``stase.dsp.distance.drr_model_db``, with the role's Q); ``broadband``: all frequencies.
    In ``hrtf`` mode the direct sound is the KEMAR HRIR at 0 deg, so ``mid`` sits about
    10 log10(E_0deg / E_diffuse) from the model (the frontal HRTF against the diffuse field).
    """
    from stase.dsp.directivity import directivity_q
    from stase.dsp.distance import drr_model_db
    from stase.dsp.rooms import load_room, resolve_room
    wet, dry = SeatRenderer(room, mode), SeatRenderer(None, mode)
    spec = resolve_room(room)
    out = {}
    for d in distances:
        h = wet.impulse(0.0, 0.0, d, role)
        direct = np.zeros_like(h)
        free = dry.impulse(0.0, 0.0, d, role)
        direct[:, :free.shape[1]] = free[:, :h.shape[1]]
        reverb = h - direct
        row = {"mid": round(10 * math.log10(mid_band_energy(direct, wet.rate) / mid_band_energy(reverb, wet.rate)), 2),
               "broadband": round(10 * math.log10(np.sum(direct ** 2) / np.sum(reverb ** 2)), 2)}
        if spec is not None and spec[0] == "preset":
            row["model"] = round(drr_model_db(load_room(spec[1]), d, directivity_q(role)), 2)
        out[f"{d:g}"] = row
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="How much direction survives each room (ILD/ITD/DRR)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--rooms", default=None, help="comma-separated room ids (default: every preset)")
    p.add_argument("--mode", default="hrtf", choices=("hrtf", "itd_ild", "pan"))
    p.add_argument("--listener", action="store_true", help="also the listener's angular error (slow)")
    p.add_argument("--no-measured", action="store_true", help="skip the measured seminar room")
    p.add_argument("--out", default=None, help="also write the JSON here")
    a = p.parse_args(argv)
    rooms = [r.strip() for r in a.rooms.split(",")] if a.rooms else None
    result = run(rooms, a.mode, a.listener, not a.no_measured, progress=not a.json)
    text = json.dumps(result, indent=None if a.json else 1)
    print(text)
    if a.out:
        from stase.core.audio_io import atomic_write_text
        atomic_write_text(Path(a.out), json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
