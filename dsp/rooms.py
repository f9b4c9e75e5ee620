"""Rooms: the ten STASE presets, their binaural room responses, and the room reverb processor.

What it holds
-------------
``resolve_room(room)``                      the one "no room, preset id or file?" decision
``load_room(room_id)``                      the validated preset (``presets/rooms/<id>.yaml``)
``room_brir(room_id, sample_rate)``         float32 (2, n) BRIR, deterministic, cached on disk
``load_rir_file(path, sample_rate)``        a user RIR/BRIR (WAV ...) resampled, direct sound cut
``reverb_tail_s(room, sample_rate)``        how long a room rings (RT60, or a file's length)
``RoomReverb(room, sample_rate, block_size, engine)``
                                            mono send in, stereo/binaural out
                                            (``prepare``/``process``/``reset``)
``cache_dir()``                             where BRIRs are cached

Engines: ``"convolution"`` convolves the send with the BRIR (:class:`dsp.convolution.
PartitionedConvolver`, zero latency); ``"fdn"`` runs a Jot FDN (:class:`dsp.fdn.FdnReverb`)
with the room's RT60, high-frequency decay and pre-delay.  Levels: a preset's BRIR is the
physical response scaled by the room's critical distance (the scene's send gain ``1 / r_c``
restores it, ``dsp.distance.reverb_send_gain``); the FDN of a preset is matched to that BRIR's
energy in the 500 Hz-1 kHz octaves, and a user file is scaled to unit energy there.

Cache: ``$XDG_CACHE_HOME/stase/brir`` (else ``~/.cache/stase/brir``), one ``.npy`` per room and
rate, named by a hash of the preset, the rate, the HRTF set and ``BRIR_VERSION``; a file that
cannot be read back intact is regenerated.  Synthesis is in :mod:`dsp.brir`.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from functools import lru_cache
from pathlib import Path

import numpy as np

from .errors import InputError, StaseError

#: Bump when dsp/brir.py changes what it generates: old cache files are then ignored.
BRIR_VERSION = 2
ENGINES = ("convolution", "fdn")
#: Samples after the direct-sound onset of a user RIR that still count as direct sound (2.5 ms).
DIRECT_WINDOW_S = 0.0025
#: Longest user room response accepted, seconds (a church decays in under 12 s).
MAX_RIR_SECONDS = 30.0
#: Room values that mean "no room" (a dry render), compared ignoring case; ``None`` means the same.
NO_ROOM = ("dry", "none")


def resolve_room(room) -> tuple[str, str] | None:
    """Decide once what a room value names: nothing, a preset or a room response file.

    Parameters
    ----------
    room : None/False or "dry"/"none" (no room), a preset id (``presets/rooms/<id>.yaml``), or the
        path (str or Path) of a RIR/BRIR audio file with an audio extension.

    Returns
    -------
    None for no room, ``("preset", room_id)`` or ``("file", path)``.

    Raises
    ------
    InputError : an empty string (it used to mean "dry" silently), an unknown id, a missing file,
        a folder or FIFO, a file without an audio extension (it would be mistaken for an id).
    """
    from .audio_io import AUDIO_SUFFIXES, file_kind
    if room is None or room is False:
        return None
    if not isinstance(room, (str, Path)):
        raise InputError(f"room must be a room id, the path of a room response file, or null for "
                         f"no room; got {type(room).__name__} {room!r}")
    text = str(room)
    suffixes = ", ".join(AUDIO_SUFFIXES)
    if isinstance(room, str):
        if not text.strip():
            raise InputError(f'room is empty ({room!r}); give a room id ({", ".join(_room_ids())}), '
                             f'the path of a room response file ({suffixes}), or "dry" for no '
                             "room")
        if text.lower() in NO_ROOM:
            return None
        if text in _room_ids():
            return ("preset", text)
    p = Path(text)
    if p.exists() or p.is_symlink():
        if not p.is_file():
            raise InputError(f"room {text!r} is {file_kind(p)}, not a room response file ({suffixes})")
        if p.suffix.lower() not in AUDIO_SUFFIXES:
            what = "has no audio extension" if not p.suffix else f"has the extension {p.suffix!r}"
            raise InputError(f"room file {p} {what}; room response files are {suffixes} "
                             "(rename it, e.g. to " + repr(p.with_name(p.stem + ".wav").name) + ")")
        return ("file", text)
    if isinstance(room, Path) or p.suffix or os.sep in text or (os.altsep and os.altsep in text):
        raise InputError(f"room response file not found: {p}")
    raise InputError(f"unknown room {text!r}; known rooms: {', '.join(_room_ids())}; or give the path "
                     f'of a room response file ({suffixes}), or "dry" for no room')


def _room_ids() -> list[str]:
    from presets import load_rooms
    return sorted(load_rooms())


def reverb_tail_s(room, sample_rate: int) -> float:
    """How long ``room`` rings, seconds: a preset's RT60, a file's own length, 0 for no room."""
    spec = resolve_room(room)
    if spec is None:
        return 0.0
    kind, value = spec
    if kind == "preset":
        return float(load_room(value)["rt60_s"])
    p = Path(value)
    return _rir_cached(str(p.resolve()), p.stat().st_mtime, int(sample_rate)).shape[-1] / float(sample_rate)


def load_room(room_id: str) -> dict:
    """The validated preset for ``room_id`` (``InputError`` listing the ids if unknown)."""
    from presets import load_rooms
    rooms = load_rooms()
    if not isinstance(room_id, str) or room_id not in rooms:
        raise InputError(f"unknown room {room_id!r}; known rooms: {', '.join(sorted(rooms))}")
    return rooms[room_id]


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "stase" / "brir"


def _hrtf_for(sample_rate: int):
    """The default HRTF set at this rate, or None (analytic ITD/ILD) if it cannot be loaded."""
    try:
        from .hrtf import load_hrtf
        return load_hrtf(sample_rate=int(sample_rate))
    except (ImportError, StaseError, OSError):
        return None


def _cache_key(room: dict, sample_rate: int, hrtf_name: str) -> str:
    blob = json.dumps({"room": room, "rate": int(sample_rate), "hrtf": hrtf_name,
                       "version": BRIR_VERSION}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _read_cached(path: Path) -> np.ndarray | None:
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    if data.dtype != np.float32 or data.ndim != 2 or data.shape[0] != 2 or data.shape[1] == 0 \
            or not np.all(np.isfinite(data)):
        return None
    return data


def _write_cached(path: Path, brir: np.ndarray) -> None:
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".npy", dir=path.parent)
        with os.fdopen(fd, "wb") as fh:
            np.save(fh, brir, allow_pickle=False)
        os.replace(tmp, path)
    except OSError:
        # a read-only or full cache only costs regeneration next time; leave no half file behind
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def room_brir(room_id: str, sample_rate: int = 48000) -> np.ndarray:
    """Binaural room response of a preset: float32 (2, n), no direct sound, scaled by r_c.

    Deterministic for a given preset, rate and HRTF set; cached on disk (see :func:`cache_dir`).
    """
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)) \
            or not 8000 <= int(sample_rate) <= 384000:
        raise InputError(f"sample_rate must be an integer between 8000 and 384000 Hz, got {sample_rate!r}")
    room = load_room(room_id)
    hrtf = _hrtf_for(int(sample_rate))
    hrtf_name = Path(getattr(hrtf, "source", "") or "kemar").name if hrtf is not None else "analytic"
    path = cache_dir() / f"{room_id}-{int(sample_rate)}-{_cache_key(room, sample_rate, hrtf_name)}.npy"
    cached = _read_cached(path) if path.is_file() else None
    if cached is not None:
        return cached
    from .brir import synthesize_brir
    brir = synthesize_brir(room, int(sample_rate), hrtf)
    _write_cached(path, brir)
    return brir


def _resample(audio: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    from scipy.signal import resample_poly
    g = math.gcd(int(rate_in), int(rate_out))
    return resample_poly(audio, rate_out // g, rate_in // g, axis=-1)


def load_rir_file(path: str | Path, sample_rate: int, strip_direct: bool = True) -> np.ndarray:
    """A user room response as float32 (2, n) at ``sample_rate``, mid-band energy 1.

    Parameters
    ----------
    path : audio file (WAV, FLAC, AIFF) with 1 channel (RIR, used for both ears) or 2 (BRIR).
    sample_rate : session rate; the file is resampled to it.  The level is set so the 500 Hz-1
        kHz octaves carry the energy of a unit impulse, as the presets' responses do
        (:func:`dsp.brir.mid_band_energy_ratio`).
    strip_direct : cut everything up to ``DIRECT_WINDOW_S`` after the direct-sound onset (the
        first sample within 20 dB of the peak) and start the response there, because the scene
        renders the direct path itself.

    Raises
    ------
    InputError : missing/unreadable/empty file, more than 2 channels, longer than
        ``MAX_RIR_SECONDS``, NaN/Inf, silence.
    """
    from .audio_io import read_audio
    audio, rate = read_audio(path)  # InputError for missing, unreadable, empty, NaN
    if audio.shape[0] > 2:
        raise InputError(f"room response {path} has {audio.shape[0]} channels; give a mono RIR "
                         "or a 2-channel (left, right) BRIR")
    if audio.shape[1] > MAX_RIR_SECONDS * rate:
        raise InputError(f"room response {path} lasts {audio.shape[1] / rate:.1f} s; at most "
                         f"{MAX_RIR_SECONDS:g} s are accepted (trim its silent end)")
    h = audio.astype(np.float64)
    if rate != int(sample_rate):
        h = _resample(h, rate, int(sample_rate))
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
    from .brir import mid_band_energy_ratio
    energy = mid_band_energy_ratio(h, sample_rate)
    if not energy > 1e-20:
        raise InputError(f"room response {path} has no energy between 355 Hz and 1.4 kHz "
                         "after its direct sound")
    return (h / math.sqrt(energy)).astype(np.float32)


@lru_cache(maxsize=16)
def _rir_cached(path: str, mtime: float, sample_rate: int) -> np.ndarray:
    return load_rir_file(path, sample_rate)


class RoomReverb:
    """The shared room reverb: mono send in, two channels out (wet only).

    Parameters
    ----------
    room : a room preset id, or the path of a RIR/BRIR audio file.
    sample_rate : session rate in Hz.
    block_size : the usual host block; ``process`` accepts any length.
    engine : "convolution" (the BRIR, zero latency) or "fdn" (Jot FDN with the room's decay).
    """

    def __init__(self, room, sample_rate: int = 48000, block_size: int = 128,
                 engine: str = "convolution"):
        if engine not in ENGINES:
            raise InputError(f"engine must be one of {ENGINES}, got {engine!r}")
        if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)) \
                or not 8000 <= int(sample_rate) <= 384000:
            raise InputError(f"sample_rate must be an integer between 8000 and 384000 Hz, "
                             f"got {sample_rate!r}")
        self.engine = engine
        self.sample_rate = int(sample_rate)
        self.room = str(room)
        self.preset = None
        self._ir = None
        spec = resolve_room(room)
        if spec is None:
            raise InputError(f"RoomReverb needs a room (a preset id or a room response file), got "
                             f"{room!r}; leave the reverb out for a dry render")
        kind, value = spec
        if kind == "file":
            p = Path(value)
            self._ir = _rir_cached(str(p.resolve()), p.stat().st_mtime, self.sample_rate)
        else:
            self.preset = load_room(value)
        self.block_size = 0
        self.prepare(self.sample_rate, block_size)

    def impulse_response(self) -> np.ndarray:
        """The BRIR the convolution engine uses (float32 (2, n))."""
        if self._ir is None:
            self._ir = room_brir(self.room, self.sample_rate)
        return self._ir

    def _fdn_settings(self) -> dict:
        from .brir import band_rt60_s, mixing_time_s
        from .fdn import decay_time_s
        if self.preset is None:  # user file: measure its decay
            ir = self.impulse_response()
            try:
                t60 = decay_time_s(ir, self.sample_rate, fit_db=(-5.0, -25.0))
            except InputError:
                t60 = 0.5
            t60 = float(np.clip(t60, 0.05, 20.0))
            return {"t60_s": t60, "t60_high_s": 0.5 * t60, "level": 1.0}
        bands = band_rt60_s(self.preset, self.sample_rate)
        t60 = max(0.05, float(self.preset["rt60_s"]))
        high = min(bands.get(8000.0, min(bands.values())), 2.0 * t60)
        from .brir import mid_band_energy_ratio
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
        if self.engine == "convolution":
            from .convolution import PartitionedConvolver
            self._engine = PartitionedConvolver(self.impulse_response(), block_size, in_channels=1)
        else:
            from .fdn import FdnReverb
            settings = self._fdn_settings()
            level = settings.pop("level")
            self._engine = FdnReverb(self.sample_rate, block_size=block_size, level="mid_band",
                                     **settings)
            self._engine.scale_output(math.sqrt(level))

    def reset(self) -> None:
        self._engine.reset()

    def process(self, send, out=None) -> np.ndarray:
        """Reverberate the mono ``send`` block (n,) into ``out`` (2, n) float32 (overwritten)."""
        return self._engine.process(send, out)

    def __repr__(self) -> str:
        return f"RoomReverb({self.room!r}, {self.sample_rate} Hz, block {self.block_size}, {self.engine})"
