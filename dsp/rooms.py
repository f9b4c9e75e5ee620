"""Rooms: the STASE presets, the measured seminar room, their responses, and the room reverb.

What it holds
-------------
``resolve_room(room)``                      the one "no room, preset id, measured room or file?"
                                            decision
``load_room(room_id)``                      the validated preset (``presets/rooms/<id>.yaml``)
``room_response(room_id, sample_rate)``     :class:`stase.dsp.brir.RoomResponse` (tail + direction
                                            sectors), deterministic, cached on disk
``room_brir(room_id, sample_rate)``         float32 (2, n) reference BRIR (tail + 0 deg sector)
``load_measured(name, sample_rate)``        a measured room (:data:`MEASURED_ROOMS`)
``load_rir_file(path, sample_rate)``        a user RIR/BRIR (WAV ...) resampled, direct sound cut
``reverb_tail_s(room, sample_rate)``        how long a room rings (RT60, or a file's length)
``static_source_response(room, rate, az, r)`` the reverberant part of the scene's response to a
                                            static source (what the scene adds to its direct path)
``RoomReverb(room, sample_rate, block_size, engine)``
                                            sends in (a mono send, or one row per direction
                                            sector plus the tail), binaural out
                                            (``prepare``/``process``/``reset``)
``room_kind(room)``                          "none" / "preset" / "measured" / "file" / "unknown", by spelling
``cache_dir()``                             where BRIRs are cached

Engines: ``"convolution"`` convolves the sends with the room's responses (:class:`dsp.
convolution.PartitionedConvolver`, zero latency): the tail send with the shared diffuse tail,
sector send ``k`` with the early reflections of a source in direction sector ``k`` (one
channel-wise convolver for all sectors).  A mono send is convolved with the reference BRIR.
``"fdn"`` runs a Jot FDN (:class:`stase.dsp.fdn.FdnReverb`) with the room's RT60, high-frequency decay
and pre-delay on the tail send alone.  Levels: a preset's responses are the physical ones (for a
head of unit diffuse-field energy in the 500 Hz-1 kHz octaves) scaled by the room's critical
distance; the scene's send gain ``1 / r_c`` restores them (``stase.dsp.distance.reverb_send_gain``).
The FDN of a preset is matched to the reference BRIR's energy in the 500 Hz-1 kHz octaves, and a
user file is scaled to unit energy there.  The measured room is stored at its measured level
relative to the direct sound (send gain 1; see ``tools/convert_rostock_brir.py``).

Cache: ``brir/`` in the user cache folder (:func:`stase.core.paths.user_cache_dir`: ``$STASE_CACHE``,
else ``$XDG_CACHE_HOME/stase``, else ``~/.cache/stase``), per room and rate one
``<id>-<rate>-<key>.npy`` (the reference BRIR) and one ``<id>-sectors-<rate>-<key>.npy``, named by
a hash of the preset, the rate, the HRTF set and ``BRIR_VERSION``; a file that cannot be read
back intact is regenerated, and writing one drops all but the newest :data:`KEEP_PER_ROOM` of
its family (``prune_cache``).  Synthesis is in :mod:`stase.dsp.brir`.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from stase.core.audio_io import atomic_path
from stase.core.conventions import SPEED_OF_SOUND_M_S
from stase.core.errors import InputError, StaseError
from stase.core.paths import mark_used, prune_cache, user_cache_dir
from stase.core.rates import check_sample_rate, resample
from stase.dsp.kernels import add_sector_pairs

#: Bump when dsp/brir.py changes what it generates: old cache files are then ignored.
#: 4: direction sectors, diffuse-field coloured tail, closed-form image sources (issue 15).
#: 5: the tail's whole-signal interaural cross-spectrum set to its expectation (issue 15).
BRIR_VERSION = 5
ENGINES = ("convolution", "fdn")
#: Samples after the direct-sound onset of a user RIR that still count as direct sound (2.5 ms).
DIRECT_WINDOW_S = 0.0025
#: Longest user room response accepted, seconds (a church decays in under 12 s).
MAX_RIR_SECONDS = 30.0
#: Room values that mean "no room" (a dry render), compared ignoring case; ``None`` means the same.
NO_ROOM = ("dry", "none")
#: Rooms measured rather than simulated: name -> file in dsp/data (tools/convert_rostock_brir.py).
MEASURED_ROOMS = {"seminar_measured": "seminar_measured_brir.npz"}
DATA_DIR = Path(__file__).resolve().parent / "data"


def room_kind(room) -> str:
    """What a room value names, by its spelling alone (no file is touched): the one rule for
    "is this room a preset or a file?".

    Returns ``"none"`` (None/False, "dry", "none"), ``"preset"`` (a preset id), ``"measured"`` (a
    name in :data:`MEASURED_ROOMS`), ``"file"`` (a Path, or text with a folder separator or a file
    extension) or ``"unknown"`` (any other text: a mistyped id, said so without looking at any
    file).  :func:`resolve_room` and the daemon both decide with it.
    """
    if room is None or room is False:
        return "none"
    if isinstance(room, Path):
        return "file"
    if not isinstance(room, str):
        return "unknown"
    text = room.strip()
    if text.lower() in NO_ROOM:
        return "none"
    if text in MEASURED_ROOMS:
        return "measured"
    if text in _preset_ids():
        return "preset"
    if Path(text).suffix or os.sep in text or "/" in text or (os.altsep and os.altsep in text):
        return "file"
    return "unknown"


def resolve_room(room) -> tuple[str, str] | None:
    """Decide once what a room value names: nothing, a preset or a room response file.

    Parameters
    ----------
    room : None/False or "dry"/"none" (no room), a preset id (``presets/rooms/<id>.yaml``), a
        measured room's name (:data:`MEASURED_ROOMS`), or the path (str or Path) of a RIR/BRIR
        audio file with an audio extension.

    Returns
    -------
    None for no room, ``("preset", room_id)``, ``("measured", name)`` or ``("file", path)``.

    Raises
    ------
    InputError : an empty string (it used to mean "dry" silently), an unknown id, a missing file,
        a folder or FIFO, a file without an audio extension (it would be mistaken for an id).
    """
    from stase.core.audio_io import AUDIO_SUFFIXES, file_kind
    if room is None or room is False:
        return None
    if not isinstance(room, (str, Path)):
        raise InputError(f"room must be a room id, the path of a room response file, or null for "
                         f"no room; got {type(room).__name__} {room!r}")
    text = str(room)
    suffixes = ", ".join(AUDIO_SUFFIXES)
    if isinstance(room, str) and not text.strip():
        raise InputError(f'room is empty ({room!r}); give a room id ({", ".join(_room_ids())}), '
                         f'the path of a room response file ({suffixes}), or "dry" for no room')
    kind = room_kind(room)
    if kind == "none":
        return None
    if kind in ("measured", "preset"):
        return (kind, text)
    p = Path(text)
    if p.exists() or p.is_symlink():
        if not p.is_file():
            raise InputError(f"room {text!r} is {file_kind(p)}, not a room response file ({suffixes})")
        if p.suffix.lower() not in AUDIO_SUFFIXES:
            what = "has no audio extension" if not p.suffix else f"has the extension {p.suffix!r}"
            raise InputError(f"room file {p} {what}; room response files are {suffixes} "
                             "(rename it, e.g. to " + repr(p.with_name(p.stem + ".wav").name) + ")")
        return ("file", text)
    if kind == "file":
        raise InputError(f"room response file not found: {p}")
    raise InputError(f"unknown room {text!r}; known rooms: {', '.join(_room_ids())}; or give the path "
                     f'of a room response file ({suffixes}), or "dry" for no room')


def _preset_ids() -> list[str]:
    from stase.presets import load_rooms
    return sorted(load_rooms())


def _room_ids() -> list[str]:
    """Every room a name can select: the presets and the measured rooms."""
    return sorted(_preset_ids() + list(MEASURED_ROOMS))


def reverb_tail_s(room, sample_rate: int) -> float:
    """How long ``room`` rings, seconds: a preset's RT60, a file's own length, 0 for no room."""
    sample_rate = check_sample_rate(sample_rate, "sample_rate")
    spec = resolve_room(room)
    if spec is None:
        return 0.0
    kind, value = spec
    if kind == "preset":
        return float(load_room(value)["rt60_s"])
    if kind == "measured":
        measured = load_measured(value, int(sample_rate))
        return measured.sectors.shape[-1] / float(sample_rate)
    p = Path(value)
    return _rir_cached(str(p.resolve()), p.stat().st_mtime, int(sample_rate)).shape[-1] / float(sample_rate)


def load_room(room_id: str) -> dict:
    """The validated preset for ``room_id`` (``InputError`` listing the ids if unknown)."""
    from stase.presets import load_rooms
    rooms = load_rooms()
    if not isinstance(room_id, str) or room_id not in rooms:
        raise InputError(f"unknown room {room_id!r}; known rooms: {', '.join(sorted(rooms))}")
    return rooms[room_id]


#: Responses kept per room, rate and kind (reference / sectors): the current one and two
#: before (an older BRIR_VERSION or room file is never read again; a second HRTF set may be).
KEEP_PER_ROOM = 3


def cache_dir() -> Path:
    """``user_cache_dir("brir")`` (:mod:`stase.core.paths`: ``$STASE_CACHE`` moves it too)."""
    return user_cache_dir("brir")


def _hrtf_for(sample_rate: int):
    """The default HRTF set at this rate, or None (analytic ITD/ILD) if it cannot be loaded."""
    try:
        from stase.dsp.hrtf import load_hrtf
        return load_hrtf(sample_rate=int(sample_rate))
    except (ImportError, StaseError, OSError):
        return None


def _cache_key(room: dict, sample_rate: int, hrtf_name: str) -> str:
    blob = json.dumps({"room": room, "rate": int(sample_rate), "hrtf": hrtf_name,
                       "version": BRIR_VERSION}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _read_cached(path: Path, rows: int = 2) -> np.ndarray | None:
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    if data.dtype != np.float32 or data.ndim != 2 or data.shape[0] != rows or data.shape[1] == 0 \
            or not np.all(np.isfinite(data)):
        return None
    return data


def _write_cached(path: Path, brir: np.ndarray) -> None:
    """Write one cached response atomically and drop the older ones of its family
    (``<room>-<rate>-*`` or ``<room>-sectors-<rate>-*``, :data:`KEEP_PER_ROOM`)."""
    try:
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.save(fh, brir, allow_pickle=False)
    except OSError:
        return   # a read-only or full cache only costs regeneration next time (no half file left)
    family = path.name.rsplit("-", 1)[0]          # "<room>-<rate>" or "<room>-sectors-<rate>"
    prune_cache(path.parent, f"{family}-*.npy", KEEP_PER_ROOM, spare=path)


def _cache_paths(room_id: str, room: dict, sample_rate: int, hrtf) -> tuple[Path, Path]:
    hrtf_name = Path(getattr(hrtf, "source", "") or "kemar").name if hrtf is not None else "analytic"
    key = _cache_key(room, sample_rate, hrtf_name)
    folder = cache_dir()
    return (folder / f"{room_id}-{int(sample_rate)}-{key}.npy",
            folder / f"{room_id}-sectors-{int(sample_rate)}-{key}.npy")


def room_brir(room_id: str, sample_rate: int = 48000) -> np.ndarray:
    """Reference binaural response of a preset: float32 (2, n), no direct sound, scaled by r_c.

    The response of a source at the preset's own stage position (the diffuse tail plus the 0 deg
    sector's early reflections).  Deterministic for a given preset, rate and HRTF set; cached on
    disk (see :func:`cache_dir`).
    """
    sample_rate = check_sample_rate(sample_rate, "sample_rate")
    room = load_room(room_id)
    reference_path, _ = _cache_paths(room_id, room, sample_rate, _hrtf_for(int(sample_rate)))
    cached = _read_cached(reference_path) if reference_path.is_file() else None
    if cached is not None:
        mark_used(reference_path)
        return cached
    return room_response(room_id, sample_rate).reference()


def room_response(room_id: str, sample_rate: int = 48000):
    """A preset's :class:`stase.dsp.brir.RoomResponse` (tail + direction sectors), cached on disk.

    The cache holds the reference BRIR and the sectors; the tail is their difference.
    """
    from stase.dsp.brir import SECTOR_AZIMUTHS_DEG, RoomResponse, early_length, sector_sources
    sample_rate = check_sample_rate(sample_rate, "sample_rate")
    room = load_room(room_id)
    hrtf = _hrtf_for(int(sample_rate))
    reference_path, sectors_path = _cache_paths(room_id, room, sample_rate, hrtf)
    k = SECTOR_AZIMUTHS_DEG.size
    reference = _read_cached(reference_path) if reference_path.is_file() else None
    sectors = _read_cached(sectors_path, rows=2 * k) if sectors_path.is_file() else None
    if reference is not None and sectors is not None and sectors.shape[1] <= reference.shape[1] \
            and sectors.shape[1] == min(early_length(room, int(sample_rate), hrtf), reference.shape[1]):
        mark_used(reference_path)
        mark_used(sectors_path)
    else:
        from stase.dsp.brir import synthesize_room
        response = synthesize_room(room, int(sample_rate), hrtf)
        reference = response.reference()
        sectors = np.ascontiguousarray(response.sectors.reshape(2 * k, -1), dtype=np.float32)
        _write_cached(sectors_path, sectors)
        _write_cached(reference_path, reference)
    # one way from the stored arrays to the response, fresh or cached: the tail is the float32
    # reference minus the sector, so a render is the same sample for sample either way
    sectors = sectors.reshape(k, 2, -1)
    index = int(np.argmin(np.abs(SECTOR_AZIMUTHS_DEG)))
    tail = reference.copy()
    tail[:, :sectors.shape[2]] -= sectors[index]
    return RoomResponse(tail=tail, sectors=sectors, sector_azimuths_deg=SECTOR_AZIMUTHS_DEG.copy(),
                        sector_distances_m=sector_sources(room)[1])


@dataclass
class MeasuredRoom:
    """A measured room at the session rate: one BRIR per measured source direction.

    ``sectors`` float32 (K, 2, n): the responses after the direct sound (cut
    :data:`DIRECT_WINDOW_S` after its onset), at their measured level relative to the direct sound
    at 1 m of a head of unit diffuse-field mid-band energy; ``azimuths_deg`` (K,) ascending, front
    only (rear sources use their front mirror image); ``distance_m`` of the loudspeaker;
    ``rt60_s``; ``source_role`` (its directivity, :mod:`stase.dsp.directivity`); ``attribution``.
    """

    name: str
    sectors: np.ndarray
    azimuths_deg: np.ndarray
    distance_m: float
    rt60_s: float
    source_role: str
    attribution: str


def load_measured(name: str, sample_rate: int = 48000) -> MeasuredRoom:
    """A measured room by name (:data:`MEASURED_ROOMS`), resampled to ``sample_rate``.

    Raises ``InputError`` for an unknown name or rate, ``StaseError`` when the shipped file is
    missing or damaged (reinstall, or rebuild it with tools/convert_rostock_brir.py).
    """
    sample_rate = check_sample_rate(sample_rate, "sample_rate")
    if name not in MEASURED_ROOMS:
        raise InputError(f"unknown measured room {name!r}; measured rooms: {', '.join(MEASURED_ROOMS)}")
    return _load_measured(name, int(sample_rate))


@lru_cache(maxsize=8)
def _load_measured(name: str, sample_rate: int) -> MeasuredRoom:
    path = DATA_DIR / MEASURED_ROOMS[name]
    if not path.is_file():
        raise StaseError(f"the measured room {name!r} needs {path}, which is missing; rebuild it "
                         "with python tools/convert_rostock_brir.py")
    try:
        with np.load(path, allow_pickle=False) as data:
            responses = np.asarray(data["responses"], dtype=np.float64) * float(data["scale"])
            azimuths = np.asarray(data["azimuths_deg"], dtype=np.float64)
            rate = int(data["sample_rate"])
            distance, rt60 = float(data["distance_m"]), float(data["rt60_s"])
            role, attribution = str(data["source_role"]), str(data["attribution"])
    except (OSError, ValueError, KeyError, EOFError) as exc:
        raise StaseError(f"cannot read the measured room file {path}: {exc}") from exc
    try:
        rate = check_sample_rate(rate, f"the sample rate of {path}")
    except InputError as exc:
        raise StaseError(f"the measured room file {path} is damaged: {exc}; rebuild it with "
                         "tools/convert_rostock_brir.py") from exc
    if responses.ndim != 3 or responses.shape[1] != 2 or responses.shape[0] != azimuths.size \
            or responses.shape[0] < 1 \
            or not np.all(np.isfinite(responses)) or np.any(np.diff(azimuths) <= 0):
        raise StaseError(f"the measured room file {path} is damaged: responses {responses.shape}, "
                         f"{azimuths.size} azimuths, {rate} Hz (expected (directions, 2 ears, "
                         "samples), ascending azimuths); rebuild it with tools/convert_rostock_brir.py")
    if rate != sample_rate:
        responses = resample(responses, rate, sample_rate)
    return MeasuredRoom(name=name, sectors=responses.astype(np.float32), azimuths_deg=azimuths,
                        distance_m=distance, rt60_s=rt60, source_role=role, attribution=attribution)




def load_rir_file(path: str | Path, sample_rate: int, strip_direct: bool = True) -> np.ndarray:
    """A user room response as float32 (2, n) at ``sample_rate``, mid-band energy 1.

    Parameters
    ----------
    path : audio file (WAV, FLAC, AIFF) with 1 channel (RIR, used for both ears) or 2 (BRIR).
    sample_rate : session rate; the file is resampled to it.  The level is set so the 500 Hz-1
        kHz octaves carry the energy of a unit impulse, as the presets' responses do
        (:func:`stase.dsp.brir.mid_band_energy_ratio`).
    strip_direct : cut everything up to ``DIRECT_WINDOW_S`` after the direct-sound onset (the
        first sample within 20 dB of the peak) and start the response there, because the scene
        renders the direct path itself.

    Raises
    ------
    InputError : missing/unreadable/empty file, more than 2 channels, longer than
        ``MAX_RIR_SECONDS``, NaN/Inf, silence.
    """
    from stase.core.audio_io import read_audio
    sample_rate = check_sample_rate(sample_rate, "sample_rate")
    audio, rate = read_audio(path)  # InputError for missing, unreadable, empty, NaN
    rate = check_sample_rate(rate, f"the sample rate of room response {path}")
    if audio.shape[0] > 2:
        raise InputError(f"room response {path} has {audio.shape[0]} channels; give a mono RIR "
                         "or a 2-channel (left, right) BRIR")
    if audio.shape[1] > MAX_RIR_SECONDS * rate:
        raise InputError(f"room response {path} lasts {audio.shape[1] / rate:.1f} s; at most "
                         f"{MAX_RIR_SECONDS:g} s are accepted (trim its silent end)")
    h = audio.astype(np.float64)
    if rate != int(sample_rate):
        h = resample(h, rate, int(sample_rate))
    if h.shape[0] == 1:
        h = np.repeat(h, 2, axis=0)
    peak = np.max(np.abs(h))
    if peak <= 0:
        raise InputError(f"room response {path} is silent")
    if strip_direct:
        onset = int(np.argmax(np.max(np.abs(h), axis=0) >= 0.1 * peak))
        start = onset + int(round(DIRECT_WINDOW_S * sample_rate))
        if start >= h.shape[1] - 1:
            raise InputError(f"room response {path} ends within {DIRECT_WINDOW_S * 1e3:g} ms of "
                             "its direct sound: nothing reverberant is left")
        h = h[:, onset:].copy()
        cut = start - onset
        ramp = min(cut, int(0.001 * sample_rate) + 1)
        h[:, :cut - ramp] = 0.0
        h[:, cut - ramp:cut] *= np.linspace(0.0, 1.0, ramp)
    from stase.dsp.brir import mid_band_energy_ratio
    energy = mid_band_energy_ratio(h, sample_rate)
    if not energy > 1e-20:
        raise InputError(f"room response {path} has no energy between 355 Hz and 1.4 kHz "
                         "after its direct sound")
    return (h / math.sqrt(energy)).astype(np.float32)


@lru_cache(maxsize=16)
def _rir_cached(path: str, mtime: float, sample_rate: int) -> np.ndarray:
    return load_rir_file(path, sample_rate)


def static_source_response(room, sample_rate: int, azimuth_deg: float, distance_m: float,
                           role: str | None = None, mode: str = "hrtf", reverb_db: float = 0.0,
                           hrtf=None) -> np.ndarray:
    """The room's part of the scene's impulse response for a static source, float64 (2, n).

    Exactly what :class:`stase.dsp.scene.SceneRenderer` (convolution engine) adds to the direct path of a
    unit impulse from a source at ``azimuth_deg``, ``distance_m`` with ``role`` in ``mode``
    (``reverb_db`` = the scene's and the source's wetness together; the source's gain not
    included): the tail with Barron's ``exp(-D r)`` plus the two nearest sectors with
    ``exp(-D (r - r_ring))``, each with the room's send, the role's directivity and the mode's
    diffuse-field gain.  For offline data (one weighted sum instead of a streamed render).
    ``hrtf``: the scene's HRTF set (default: the shipped one at ``sample_rate``).
    """
    from stase.dsp.brir import mode_diffuse_gains
    from stase.core.conventions import MAX_DISTANCE_M, MIN_DISTANCE_M
    from stase.dsp.directivity import send_scale
    from stase.dsp.kernels import sector_weights
    reverb = RoomReverb(room, sample_rate, 128)
    head = mode_diffuse_gains(hrtf if hrtf is not None else _hrtf_for(int(sample_rate)), int(sample_rate))
    if mode not in head:
        raise InputError(f"mode must be one of {tuple(head)}, got {mode!r}")
    r = min(max(float(distance_m), MIN_DISTANCE_M), MAX_DISTANCE_M)
    scale = (reverb.send_gain * send_scale(role, reverb.reference_q) * 10.0 ** (float(reverb_db) / 20.0)
             * math.sqrt(head[mode]))
    pieces = []
    if reverb._sectors is None:
        pieces.append((scale * math.exp(-reverb.decay_per_m * r), reverb.impulse_response()))
    else:
        if reverb.has_tail:
            pieces.append((scale * math.exp(-reverb.decay_per_m * r), reverb._response.tail))
        weights = np.zeros(reverb.sector_azimuths_deg.size)
        azimuth = (float(azimuth_deg) + 180.0) % 360.0 - 180.0
        sector_weights(azimuth, np.ascontiguousarray(reverb.sector_azimuths_deg, dtype=np.float64),
                       reverb.sector_wrap, weights)
        early = scale * math.exp(-reverb.decay_per_m * (r - reverb.ring_m))
        for k in np.flatnonzero(weights):
            pieces.append((early * weights[k], reverb._sectors[k]))
    out = np.zeros((2, max(piece.shape[1] for _, piece in pieces)))
    for gain, piece in pieces:
        out[:, :piece.shape[1]] += gain * piece.astype(np.float64)
    return out


class RoomReverb:
    """The shared room reverb: sends in, two channels out (wet only).

    Parameters
    ----------
    room : a room preset id, a measured room's name, or the path of a RIR/BRIR audio file.
    sample_rate : session rate in Hz.
    block_size : the usual host block; ``process`` accepts any length.
    engine : "convolution" (the room's responses, zero latency) or "fdn" (Jot FDN with the
        room's decay, fed by the tail send).

    Attributes the scene reads
    --------------------------
    sector_azimuths_deg : (K,) ascending directions of the early-reflection sectors (empty when
        the response has none: the FDN, a user file).
    sector_wrap : the sectors go round the listener (presets) or span the front only (measured).
    ring_m : the source distance the sectors were made at (Barron's factor is relative to it).
    has_tail : send row 0 feeds a separate response (the diffuse tail, or the whole response when
        there are no sectors); False for the measured room, whose sectors hold everything.
    decay_per_m : ``6.91 / (c T60)``, Barron's amplitude decay of the reflected sound per metre of
        source distance (0 for a user file).
    send_gain : the room's send for an omnidirectional source (``1 / r_c``; 1 for the measured room).
    reference_q : directivity factor of the source the response was made with.
    n_sends : rows ``process`` takes, ``1 + K``.
    """

    def __init__(self, room, sample_rate: int = 48000, block_size: int = 128,
                 engine: str = "convolution"):
        from stase.dsp.distance import DECAY_NEPERS, reverb_send_gain
        if engine not in ENGINES:
            raise InputError(f"engine must be one of {ENGINES}, got {engine!r}")
        sample_rate = check_sample_rate(sample_rate, "sample_rate")
        self.engine = engine
        self.sample_rate = int(sample_rate)
        self.room = str(room)
        self.preset = None
        self.measured = None
        self._ir = None
        self._response = None
        spec = resolve_room(room)
        if spec is None:
            raise InputError(f"RoomReverb needs a room (a preset id or a room response file), got "
                             f"{room!r}; leave the reverb out for a dry render")
        kind, value = spec
        self.kind = kind
        self.sector_azimuths_deg = np.zeros(0)
        self.sector_wrap = True
        self.ring_m = 0.0
        self.has_tail = True
        self.decay_per_m = 0.0
        self.reference_q = 1.0
        self._sectors = None
        half_nepers = 0.5 * DECAY_NEPERS
        if kind == "file":
            p = Path(value)
            self._ir = _rir_cached(str(p.resolve()), p.stat().st_mtime, self.sample_rate)
            self.send_gain = reverb_send_gain(None)
        elif kind == "measured":
            from stase.dsp.directivity import directivity_q
            self.measured = load_measured(value, self.sample_rate)
            self.send_gain = 1.0
            self.reference_q = directivity_q(self.measured.source_role)
            self.decay_per_m = half_nepers / (SPEED_OF_SOUND_M_S * self.measured.rt60_s)
            self.ring_m = self.measured.distance_m
            if engine == "convolution":
                self.has_tail = False
                self.sector_azimuths_deg = self.measured.azimuths_deg.copy()
                self.sector_wrap = False
                self._sectors = self.measured.sectors
        else:
            self.room = value
            self.preset = load_room(value)
            self.send_gain = reverb_send_gain(self.preset)
            self.decay_per_m = half_nepers / (SPEED_OF_SOUND_M_S * max(float(self.preset["rt60_s"]), 1e-3))
            if engine == "convolution":
                self._response = room_response(value, self.sample_rate)
                index = self._response.reference_index
                self.ring_m = float(self._response.sector_distances_m[index])
                self.sector_azimuths_deg = self._response.sector_azimuths_deg.copy()
                # Barron's factor of each sector relative to the reference distance, so one
                # ring distance serves every sector (sources near a wall were pulled in)
                rings = self._response.sector_distances_m
                gains = np.exp(-self.decay_per_m * (self.ring_m - rings))
                self._sectors = (self._response.sectors * gains[:, None, None].astype(np.float32))
        self.block_size = 0
        self.prepare(self.sample_rate, block_size)

    @property
    def n_sends(self) -> int:
        return 1 + int(self.sector_azimuths_deg.size)

    def impulse_response(self) -> np.ndarray:
        """The reference response a mono send is convolved with (float32 (2, n))."""
        if self._ir is None:
            if self.measured is not None:
                k = int(np.argmin(np.abs(self.measured.azimuths_deg)))
                self._ir = self.measured.sectors[k]
            elif self._response is not None:
                self._ir = self._response.reference()
            else:
                self._ir = room_brir(self.room, self.sample_rate)
        return self._ir

    def _fdn_settings(self) -> dict:
        from stase.dsp.brir import band_rt60_s, mid_band_energy_ratio, mixing_time_s
        from stase.dsp.fdn import decay_time_s
        if self.preset is None:  # user file or measured room
            ir = self.impulse_response()
            if self.measured is not None:
                t60 = self.measured.rt60_s
            else:  # a user file: measure its decay
                try:
                    t60 = decay_time_s(ir, self.sample_rate, fit_db=(-5.0, -25.0))
                except InputError:
                    t60 = 0.5
            t60 = float(np.clip(t60, 0.05, 20.0))
            return {"t60_s": t60, "t60_high_s": 0.5 * t60,
                    "level": mid_band_energy_ratio(ir, self.sample_rate) if self.measured is not None else 1.0}
        bands = band_rt60_s(self.preset, self.sample_rate)
        t60 = max(0.05, float(self.preset["rt60_s"]))
        high = min(bands.get(8000.0, min(bands.values())), 2.0 * t60)
        return {"t60_s": t60, "t60_high_s": max(0.02, high),
                "predelay_ms": 0.25 * mixing_time_s(self.preset) * 1e3,
                "level": mid_band_energy_ratio(self.impulse_response(), self.sample_rate)}

    def prepare(self, sample_rate: int | None = None, block_size: int | None = None,
                channels: int | None = None) -> None:
        """Build the engine for ``block_size`` (a different rate needs a new RoomReverb)."""
        if sample_rate is not None and int(sample_rate) != self.sample_rate:
            raise InputError(f"this RoomReverb was built for {self.sample_rate} Hz, got {sample_rate}")
        block_size = int(block_size or self.block_size or 128)
        if block_size < 1:
            raise InputError(f"block_size must be a positive integer, got {block_size}")
        self.block_size = block_size
        self._early = None
        self._engine = None
        if self.engine == "convolution":
            from stase.dsp.convolution import PartitionedConvolver
            if self._sectors is not None:
                k, _, m = self._sectors.shape
                self._early = PartitionedConvolver(self._sectors.reshape(2 * k, m), block_size,
                                                   in_channels=2 * k)
                if self.has_tail:
                    self._engine = PartitionedConvolver(self._response.tail, block_size, in_channels=1)
            else:
                self._engine = PartitionedConvolver(self.impulse_response(), block_size, in_channels=1)
        else:
            from stase.dsp.fdn import FdnReverb
            settings = self._fdn_settings()
            level = settings.pop("level")
            self._engine = FdnReverb(self.sample_rate, block_size=block_size, level="mid_band",
                                     **settings)
            self._engine.scale_output(math.sqrt(level))
        rows = 2 * int(self.sector_azimuths_deg.size)
        self._early_in = np.zeros(rows * block_size, dtype=np.float32)
        self._early_out = np.zeros(rows * block_size, dtype=np.float32)

    def reset(self) -> None:
        if self._engine is not None:
            self._engine.reset()
        if self._early is not None:
            self._early.reset()

    def process(self, send, out=None) -> np.ndarray:
        """Reverberate one block of sends into ``out`` (2, n) float32 (overwritten).

        ``send`` is either a mono block (n,), convolved with the reference response (a source at
        the preset's stage position), or (``n_sends``, n): row 0 the tail send, row ``1 + k`` the
        send of sector ``k``.
        """
        x = send if isinstance(send, np.ndarray) and send.dtype == np.float32 else np.asarray(send, dtype=np.float32)
        if x.ndim == 1:
            if self._early is None:
                return self._engine.process(x, out)
            sends = np.zeros((self.n_sends, x.size), dtype=np.float32)
            sends[0] = x
            sends[1 + int(np.argmin(np.abs(self.sector_azimuths_deg)))] = x
            x = sends
        if x.ndim != 2 or x.shape[0] != self.n_sends:
            raise InputError(f"send must be (n,) or ({self.n_sends}, n), got {x.shape}")
        n = x.shape[1]
        if out is None:
            out = np.zeros((2, n), dtype=np.float32)
        if self._early is None:
            return self._engine.process(x[0], out)
        if self._engine is not None:
            self._engine.process(x[0], out)
        else:
            out[...] = 0.0
        rows = 2 * int(self.sector_azimuths_deg.size)
        if self._early_in.size < rows * n:
            self._early_in = np.zeros(rows * n, dtype=np.float32)
            self._early_out = np.zeros(rows * n, dtype=np.float32)
        early_in = self._early_in[:rows * n].reshape(rows, n)
        early_in.reshape(rows // 2, 2, n)[...] = x[1:, None, :]
        early_out = self._early_out[:rows * n].reshape(rows, n)
        self._early.process(early_in, early_out)
        add_sector_pairs(early_out, n, out)
        return out

    def __repr__(self) -> str:
        return f"RoomReverb({self.room!r}, {self.sample_rate} Hz, block {self.block_size}, {self.engine})"
