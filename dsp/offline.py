"""Offline rendering: mono stems + a plan -> a binaural (or stereo) mix with a level report.

Holds
-----
render_plan(stems, plan, sample_rate, stereo=False, block_size=1024, hrtf=None) -> RenderResult
RenderResult(audio, sample_rate, peak_dbfs, lufs, clipped, report)

The stems stream through :class:`dsp.scene.SceneRenderer` block by block, exactly as the live
path would, followed by the room's reverberation tail.  ``stereo=True`` renders every source with
the constant-power pan law (for loudspeakers) instead of its plan mode.  Levels: sample peak in
dBFS, integrated loudness (ITU-R BS.1770-4 via pyloudnorm, LUFS; None for mixes shorter than the
400 ms gating block), and ``clipped`` when any sample reaches 0 dBFS or beyond.  The audio is not
normalised: a clipped mix is reported, not hidden.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .conventions import gain_to_db
from .errors import InputError
from .plan import Plan

#: Longest reverberation tail appended after the stems end, seconds.
MAX_TAIL_S = 6.0


@dataclass
class RenderResult:
    """A rendered mix and its levels."""

    audio: np.ndarray
    sample_rate: int
    peak_dbfs: float
    lufs: float | None
    clipped: bool
    report: dict = field(default_factory=dict)


def match_stems(stems: dict[str, np.ndarray], plan: Plan) -> tuple[dict[str, np.ndarray], list[str]]:
    """Map each plan track to its stem (case-insensitive); ``InputError`` lists what is missing.

    Returns ``({plan track: mono float32 array}, [unused stem names])``.
    """
    by_name = {str(k).lower(): (k, v) for k, v in stems.items()}
    matched: dict[str, np.ndarray] = {}
    missing = []
    for s in plan.sources:
        hit = by_name.get(s.track.lower())
        if hit is None:
            missing.append(s.track)
            continue
        matched[s.track] = _mono(hit[0], hit[1])
    if missing:
        raise InputError(f"no stem for plan track(s) {missing}; stems are matched to tracks by file "
                         f"name without extension, case-insensitive; stems found: {sorted(stems)}")
    used = {s.track.lower() for s in plan.sources}
    return matched, sorted(k for k in stems if str(k).lower() not in used)


def _mono(name: str, audio) -> np.ndarray:
    a = np.asarray(audio, dtype=np.float32)
    if a.ndim == 2 and a.shape[0] == 1:
        a = a[0]
    if a.ndim != 1:
        raise InputError(f"stem {name!r} has shape {a.shape}; stems must be mono (1-D), "
                         "downmix multichannel stems first (stase render --downmix)")
    if a.size == 0:
        raise InputError(f"stem {name!r} is empty (0 samples)")
    if not np.all(np.isfinite(a)):
        raise InputError(f"stem {name!r} contains NaN or Inf samples")
    return a


def _tail_seconds(room, sample_rate: int) -> float:
    """Seconds of reverberation to render after the stems end (room id, RIR path or None)."""
    if not room:
        return 0.05
    from pathlib import Path
    if Path(str(room)).suffix:  # a user RIR file: its own length
        from .rooms import load_rir_file
        return min(load_rir_file(room, sample_rate).shape[-1] / sample_rate, MAX_TAIL_S) + 0.05
    from .rooms import load_room
    return min(float(load_room(room)["rt60_s"]), MAX_TAIL_S) + 0.05


def render_plan(stems: dict[str, np.ndarray], plan: Plan, sample_rate: int, stereo: bool = False,
                block_size: int = 1024, hrtf=None, room: str | None | bool = True) -> RenderResult:
    """Render ``stems`` placed by ``plan`` at ``sample_rate``.

    Parameters
    ----------
    stems : {track name: mono float32 array}, matched to ``plan.sources[].track`` ignoring case.
    plan : the spatial plan (room, reverb engine, one placement per track).
    sample_rate : Hz of the stems (and of the output).
    stereo : pan every source with the constant-power law instead of its plan mode.
    block_size : streaming block (the result does not depend on it).
    hrtf : :class:`dsp.hrtf.HrtfSet`, SOFA path or None (shipped KEMAR).
    room : True = the plan's room; None = dry; a string overrides the plan's room.
    """
    from .scene import SceneRenderer
    if not plan.sources:
        raise InputError("the plan has no sources to render")
    matched, unused = match_stems(stems, plan)
    room_id = plan.room if room is True else room
    scene = SceneRenderer(sample_rate=sample_rate, block_size=block_size, room=room_id,
                          reverb_engine=plan.reverb_engine, hrtf=hrtf,
                          max_sources=len(plan.sources))
    n = max(len(a) for a in matched.values())
    columns = [matched[s.track] for s in plan.sources]
    report_sources = []
    for s in plan.sources:
        mode = "pan" if stereo else s.mode
        scene.add_source(s.track, s.azimuth_deg, s.elevation_deg, s.distance_m, mode, s.gain_db)
        stem = matched[s.track]
        report_sources.append({
            "track": s.track, "mode": mode, "azimuth_deg": s.azimuth_deg,
            "elevation_deg": s.elevation_deg, "distance_m": s.distance_m, "gain_db": s.gain_db,
            "stem_peak_dbfs": round(float(gain_to_db(np.abs(stem).max())), 2),
            "stem_rms_dbfs": round(float(gain_to_db(np.sqrt(np.mean(np.square(stem, dtype=np.float64))))), 2)})
    tail = int(round(_tail_seconds(room_id, sample_rate) * sample_rate))
    total = n + tail
    audio = np.zeros((2, total), dtype=np.float32)
    block = np.zeros((len(plan.sources), block_size), dtype=np.float32)  # one block of every stem
    for start in range(0, total, block_size):
        stop = min(start + block_size, total)
        m = stop - start
        for row, stem in enumerate(columns):
            piece = stem[start:stop]
            block[row, :len(piece)] = piece
            block[row, len(piece):m] = 0.0
        scene.process(block if m == block_size else np.ascontiguousarray(block[:, :m]),
                      audio[:, start:stop])
    peak = float(np.abs(audio).max())
    peak_dbfs = float(gain_to_db(peak))
    lufs = _loudness(audio, sample_rate)
    report = {"room": room_id, "reverb_engine": plan.reverb_engine,
              "output": "stereo" if stereo else "binaural", "sample_rate": int(sample_rate),
              "duration_s": round(total / sample_rate, 3), "tail_s": round(tail / sample_rate, 3),
              "peak_dbfs": round(peak_dbfs, 2), "lufs": None if lufs is None else round(lufs, 2),
              "clipped": bool(peak >= 1.0), "sources": report_sources, "unused_stems": unused}
    return RenderResult(audio=audio, sample_rate=int(sample_rate), peak_dbfs=peak_dbfs, lufs=lufs,
                        clipped=bool(peak >= 1.0), report=report)


def _loudness(audio: np.ndarray, sample_rate: int) -> float | None:
    """Integrated loudness in LUFS (BS.1770-4); None when too short or silent."""
    if audio.shape[1] < int(0.4 * sample_rate) + 1:
        return None
    import pyloudnorm
    value = pyloudnorm.Meter(sample_rate).integrated_loudness(audio.T.astype(np.float64))
    return float(value) if np.isfinite(value) else None
