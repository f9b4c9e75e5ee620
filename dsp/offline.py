"""Offline rendering: mono stems + a plan -> a binaural (or stereo) mix with a level report.

Holds
-----
render_plan(stems, plan, sample_rate, stereo=False, block_size=1024, hrtf=None, room=True,
            output=None, reverb_db=None) -> RenderResult
RenderResult(audio, sample_rate, peak_dbfs, lufs, clipped, report, output)
LoudnessMeter(sample_rate, channels)   streaming ITU-R BS.1770-4 integrated loudness
integrated_loudness(audio, sample_rate) the same for a signal in memory (LUFS or None)
k_weighting_sos(sample_rate)           the BS.1770 K-weighting as second-order sections
match_stems(stems, plan)               plan track -> stem, ``InputError`` listing what is missing
render_files(stems_dir, plan, output, ...) -> (RenderResult, report)
                                       ``stase render`` and each batch job: files in, a file out
true_peak_dbfs(path)                   a written mix's true peak (4x oversampled, BS.1770-4 Annex 2)

The stems stream through :class:`stase.dsp.scene.SceneRenderer` block by block, exactly as the live
path would, followed by the room's reverberation tail.  ``stereo=True`` renders every source with
the constant-power pan law (for loudspeakers) instead of its plan mode.  Levels: sample peak in
dBFS, integrated loudness (LUFS, None for mixes shorter than the 400 ms gating block or silent),
and ``clipped`` when any sample reaches 0 dBFS or beyond.  The audio is not normalised: a clipped
mix is reported, not hidden.

Memory: with ``output`` the mix goes to the file chunk by chunk (:class:`stase.core.audio_io.
AtomicAudioWriter`, renamed over the target only once complete) and is never held whole; the
loudness meter keeps one number per 100 ms.  What grows with the length is the stems themselves.
Without ``output`` the result holds the mix (8 bytes per frame) and nothing else of that size.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from stase.core.conventions import gain_to_db
from stase.core.errors import InputError
from stase.core.rates import check_sample_rate
from stase.core.plan import Plan

#: Longest reverberation tail appended after the stems end, seconds.
MAX_TAIL_S = 6.0
#: Frames rendered between two writes/loudness updates (a multiple of the block is used).
CHUNK_FRAMES = 65536

#: ITU-R BS.1770-4 gating: 400 ms blocks stepped by 100 ms (75 % overlap), absolute gate
#: -70 LUFS, relative gate 10 LU below the loudness of the blocks above the absolute gate.
BLOCK_HOPS = 4
HOPS_PER_SECOND = 10
ABSOLUTE_GATE_LUFS = -70.0
RELATIVE_GATE_LU = -10.0
#: BS.1770-4 channel weights G_i: L, R, C = 1.0, Ls, Rs = 1.41 (the LFE is not measured).
CHANNEL_WEIGHTS = (1.0, 1.0, 1.0, 1.41, 1.41)


@dataclass
class RenderResult:
    """A rendered mix and its levels; ``audio`` is None when it was streamed to ``output``."""

    audio: np.ndarray | None
    sample_rate: int
    peak_dbfs: float
    lufs: float | None
    clipped: bool
    report: dict = field(default_factory=dict)
    output: str | None = None


def k_weighting_sos(sample_rate: int) -> np.ndarray:
    """The BS.1770-4 K-weighting at ``sample_rate``: (2, 6) second-order sections, shelf first.

    Stage 1 is the head's high-frequency shelf (+4 dB), stage 2 the RLB high-pass.  Both are the
    bilinear transforms (pre-warped at f0) of the analogue prototypes whose 48 kHz coefficients
    are the ones tabulated in BS.1770-4 (to 1e-10; the test checks the table); the prototype
    parameters are those of libebur128, which derives them from that table.
    """
    rate = float(sample_rate)
    # Stage 1: high shelf.
    f0, gain_db, q = 1681.974450955533, 3.999843853973347, 0.7071752369554196
    k = math.tan(math.pi * f0 / rate)
    vh = 10.0 ** (gain_db / 20.0)
    vb = vh ** 0.4996667741545416
    a0 = 1.0 + k / q + k * k
    shelf = [(vh + vb * k / q + k * k) / a0, 2.0 * (k * k - vh) / a0, (vh - vb * k / q + k * k) / a0,
             1.0, 2.0 * (k * k - 1.0) / a0, (1.0 - k / q + k * k) / a0]
    # Stage 2: RLB high-pass (the standard keeps its numerator at 1, -2, 1).
    f0, q = 38.13547087602444, 0.5003270373238773
    k = math.tan(math.pi * f0 / rate)
    a0 = 1.0 + k / q + k * k
    high_pass = [1.0, -2.0, 1.0, 1.0, 2.0 * (k * k - 1.0) / a0, (1.0 - k / q + k * k) / a0]
    return np.array([shelf, high_pass], dtype=np.float64)


class LoudnessMeter:
    """Integrated loudness (ITU-R BS.1770-4) of audio fed in pieces of any length.

    The K-weighting filters carry their state from piece to piece, and the channel-weighted
    energy is summed per 100 ms hop (hop ``k`` covers samples ``floor(k * rate / 10)`` up to
    ``floor((k + 1) * rate / 10)``, exact at any rate); a 400 ms gating block is four consecutive
    hops, so the blocks overlap by 75 %.  Only complete blocks are measured.  Memory: the filter
    state plus one float per hop (36 000 for an hour), whatever the length.

    Parameters
    ----------
    sample_rate : Hz.
    channels : 1 to 5 (L, R, C, Ls, Rs; weights :data:`CHANNEL_WEIGHTS`).
    """

    #: Samples filtered at once (bounds the float64 working copy of a long piece).
    _PIECE = 16384

    def __init__(self, sample_rate: int, channels: int = 2):
        sample_rate = check_sample_rate(sample_rate, "sample_rate")
        if not 1 <= int(channels) <= len(CHANNEL_WEIGHTS):
            raise InputError(f"the loudness meter takes 1 to {len(CHANNEL_WEIGHTS)} channels "
                             f"(L, R, C, Ls, Rs), got {channels}")
        self.sample_rate = int(sample_rate)
        self.channels = int(channels)
        self._sos = k_weighting_sos(self.sample_rate)
        self._weights = np.asarray(CHANNEL_WEIGHTS[:self.channels], dtype=np.float64)
        self.reset()

    def reset(self) -> None:
        """Forget everything measured so far."""
        self._state = np.zeros((self._sos.shape[0], self.channels, 2))
        self._hops: list[float] = []
        self._energy = 0.0      # weighted energy of the hop being filled
        self._position = 0      # samples seen
        self._hop_end = self._edge(1)

    def _edge(self, hop: int) -> int:
        return hop * self.sample_rate // HOPS_PER_SECOND

    @property
    def samples(self) -> int:
        """Samples measured so far (per channel)."""
        return self._position

    def process(self, audio: np.ndarray) -> None:
        """Measure the next ``(channels, n)`` piece (1-D for mono)."""
        from scipy.signal import sosfilt
        a = np.asarray(audio)
        if a.ndim == 1:
            a = a[None, :]
        if a.ndim != 2 or a.shape[0] != self.channels:
            raise InputError(f"the loudness meter was made for {self.channels} channel(s); got a "
                             f"piece shaped {a.shape}")
        for start in range(0, a.shape[1], self._PIECE):
            piece = np.asarray(a[:, start:start + self._PIECE], dtype=np.float64)
            weighted, self._state = sosfilt(self._sos, piece, axis=-1, zi=self._state)
            np.square(weighted, out=weighted)
            power = self._weights @ weighted  # channel-weighted energy per sample
            self._accumulate(power)

    def _accumulate(self, power: np.ndarray) -> None:
        i, n = 0, power.shape[0]
        while i < n:
            take = min(n - i, self._hop_end - self._position)
            self._energy += float(power[i:i + take].sum())
            i += take
            self._position += take
            if self._position == self._hop_end:
                self._hops.append(self._energy)
                self._energy = 0.0
                self._hop_end = self._edge(len(self._hops) + 1)

    def block_powers(self) -> np.ndarray:
        """Channel-weighted mean square of every complete 400 ms gating block (float64)."""
        hops = np.asarray(self._hops, dtype=np.float64)
        if hops.size < BLOCK_HOPS:
            return np.zeros(0)
        cumulative = np.concatenate([[0.0], np.cumsum(hops)])
        sums = cumulative[BLOCK_HOPS:] - cumulative[:-BLOCK_HOPS]
        edges = np.arange(hops.size + 1, dtype=np.int64) * self.sample_rate // HOPS_PER_SECOND
        return np.maximum(sums, 0.0) / (edges[BLOCK_HOPS:] - edges[:-BLOCK_HOPS])

    def integrated_lufs(self) -> float | None:
        """Gated integrated loudness, LUFS; None before one complete block or when all are silent."""
        return gated_loudness(self.block_powers())


def integrated_loudness(audio: np.ndarray, sample_rate: int) -> float | None:
    """Integrated loudness (LUFS) of a whole ``(channels, n)`` (or 1-D) signal held in memory.

    The same meter as a streamed render (:class:`LoudnessMeter`), in bounded extra memory.
    """
    a = np.asarray(audio)
    a = a[None, :] if a.ndim == 1 else a
    meter = LoudnessMeter(int(sample_rate), a.shape[0])
    meter.process(a)
    return meter.integrated_lufs()


#: The name this measurement had before it streamed (tests and callers of the old module use it).
_loudness = integrated_loudness


def gated_loudness(block_powers: np.ndarray) -> float | None:
    """BS.1770-4 integrated loudness (LUFS) from gating-block mean squares; None when silent."""
    z = np.asarray(block_powers, dtype=np.float64)
    if z.size == 0:
        return None
    with np.errstate(divide="ignore"):
        levels = -0.691 + 10.0 * np.log10(z)
    above_absolute = levels > ABSOLUTE_GATE_LUFS
    if not np.any(above_absolute):
        return None
    relative_gate = -0.691 + 10.0 * np.log10(z[above_absolute].mean()) + RELATIVE_GATE_LU
    kept = above_absolute & (levels > relative_gate)
    return float(-0.691 + 10.0 * np.log10(z[kept].mean()))


def match_stems(stems: dict[str, np.ndarray], plan: Plan) -> tuple[dict[str, np.ndarray], list[str]]:
    """Map each plan track to its stem (:func:`stase.core.names.pair_names`: the one track-name
    rule, so ``Gtr L`` finds ``Gtr_L.wav``); ``InputError`` lists what is missing.

    Returns ``({plan track: mono float32 array}, [unused stem names])``.  The error names at most
    :data:`stase.core.audio_io.LISTED_NAMES` tracks and stems, then "and N more".
    """
    from stase.core.audio_io import summarise_names
    from stase.core.names import pair_names
    pairs, missing, unused = pair_names([s.track for s in plan.sources], [str(k) for k in stems])
    if missing:
        raise InputError(f"no stem for plan track(s) {summarise_names(missing)}; "
                         "stems are matched to tracks by file name without extension, ignoring "
                         "case, spaces and punctuation; "
                         f"{len(stems)} stem(s) found: {summarise_names(sorted(stems)) or 'none'}")
    by_text = {str(k): k for k in stems}
    matched = {track: _mono(by_text[name], stems[by_text[name]]) for track, name in pairs.items()}
    return matched, sorted(unused)


def _mono(name: str, audio) -> np.ndarray:
    from stase.core.audio_io import all_finite
    a = np.asarray(audio, dtype=np.float32)
    if a.ndim == 2 and a.shape[0] == 1:
        a = a[0]
    if a.ndim != 1:
        raise InputError(f"stem {name!r} has shape {a.shape}; stems must be mono (1-D), "
                         "downmix multichannel stems first (stase render --downmix)")
    if a.size == 0:
        raise InputError(f"stem {name!r} is empty (0 samples)")
    if not all_finite(a):
        raise InputError(f"stem {name!r} contains NaN or Inf samples")
    return a


def _levels_dbfs(stem: np.ndarray, chunk: int = 1 << 16) -> tuple[float, float]:
    """(sample peak, RMS) of a mono stem in dBFS, without a float64 copy of the whole stem."""
    peak, energy = 0.0, 0.0
    for start in range(0, stem.size, chunk):
        piece = stem[start:start + chunk].astype(np.float64)
        peak = max(peak, float(np.abs(piece).max()))
        energy += float(piece @ piece)
    return float(gain_to_db(peak)), float(gain_to_db(math.sqrt(energy / stem.size)))


def render_plan(stems: dict[str, np.ndarray], plan: Plan, sample_rate: int, stereo: bool = False,
                block_size: int = 1024, hrtf=None, room: str | None | bool = True,
                output=None, reverb_db: float | None = None) -> RenderResult:
    """Render ``stems`` placed by ``plan`` at ``sample_rate``.

    Parameters
    ----------
    stems : {track name: mono float32 array}, matched to ``plan.sources[].track`` ignoring case.
    plan : the spatial plan (room, reverb engine, one placement per track).
    sample_rate : Hz of the stems (and of the output).
    stereo : pan every source with the constant-power law instead of its plan mode.
    block_size : streaming block (the result does not depend on it).
    hrtf : :class:`stase.dsp.hrtf.HrtfSet`, SOFA path or None (shipped KEMAR).
    room : True = the plan's room; None = dry; a string overrides the plan's room
        (:func:`stase.dsp.rooms.resolve_room` says what it names; ``""`` is an error, not "dry").
    output : path of an audio file (.wav, .flac, .aiff, .ogg) to stream the mix to; it is checked
        before rendering and replaced only when the mix is complete.  Then ``audio`` is None.
    reverb_db : wetness of the whole mix relative to the room's physical level, dB in
        ``stase.core.placement.REVERB_DB_RANGE``; None = the plan's ``reverb_db`` (0 when it has none).
        Each source's own ``reverb_db`` adds to it; its ``role`` sets its directivity.
    """
    from stase.dsp.rooms import resolve_room, reverb_tail_s
    from stase.dsp.scene import SceneRenderer, check_reverb_db
    wetness = check_reverb_db(getattr(plan, "reverb_db", 0.0) if reverb_db is None else reverb_db,
                              "reverb_db" if reverb_db is not None else "the plan's reverb_db")
    if not plan.sources:
        raise InputError("the plan has no sources to render")
    if isinstance(block_size, bool) or not isinstance(block_size, (int, np.integer)) or block_size < 1:
        raise InputError(f"block_size must be a positive integer, got {block_size!r}")
    writer_target = None
    if output is not None:
        from stase.core.audio_io import check_output_path
        writer_target = check_output_path(output)  # a bad -o fails before any work
    matched, unused = match_stems(stems, plan)
    spec = resolve_room(plan.room if room is True else room)
    room_id = None if spec is None else spec[1]
    scene = SceneRenderer(sample_rate=sample_rate, block_size=block_size, room=room_id,
                          reverb_engine=plan.reverb_engine, hrtf=hrtf,
                          max_sources=len(plan.sources), reverb_db=wetness)
    n = max(len(a) for a in matched.values())
    columns = [matched[s.track] for s in plan.sources]
    report_sources = []
    for s in plan.sources:
        mode = "pan" if stereo else s.mode
        source_wetness = float(getattr(s, "reverb_db", 0.0) or 0.0)
        scene.add_source(s.track, s.azimuth_deg, s.elevation_deg, s.distance_m, mode, s.gain_db,
                         role=s.role, reverb_db=source_wetness)
        peak_db, rms_db = _levels_dbfs(matched[s.track])
        report_sources.append({
            "track": s.track, "mode": mode, "azimuth_deg": s.azimuth_deg,
            "elevation_deg": s.elevation_deg, "distance_m": s.distance_m, "gain_db": s.gain_db,
            "role": s.role, "reverb_db": source_wetness,
            "stem_peak_dbfs": round(peak_db, 2), "stem_rms_dbfs": round(rms_db, 2)})
    tail_s = 0.05 if spec is None else min(reverb_tail_s(spec[1], sample_rate), MAX_TAIL_S) + 0.05
    tail = int(round(tail_s * sample_rate))
    total = n + tail

    from stase.core.audio_io import AtomicAudioWriter
    writer = None if output is None else AtomicAudioWriter(output, sample_rate, 2)
    audio = None if writer is not None else np.zeros((2, total), dtype=np.float32)
    chunk_frames = block_size * max(1, CHUNK_FRAMES // block_size)
    buffer = np.zeros((2, min(chunk_frames, total)), dtype=np.float32) if writer is not None else None
    block = np.zeros((len(plan.sources), block_size), dtype=np.float32)  # one block of every stem
    meter = LoudnessMeter(int(sample_rate), 2)
    peak = 0.0
    try:
        for chunk_start in range(0, total, chunk_frames):
            chunk_stop = min(chunk_start + chunk_frames, total)
            dest = (audio[:, chunk_start:chunk_stop] if writer is None
                    else buffer[:, :chunk_stop - chunk_start])
            for start in range(chunk_start, chunk_stop, block_size):
                stop = min(start + block_size, chunk_stop)
                m = stop - start
                for row, stem in enumerate(columns):
                    piece = stem[start:stop]
                    block[row, :len(piece)] = piece
                    block[row, len(piece):m] = 0.0
                scene.process(block if m == block_size else np.ascontiguousarray(block[:, :m]),
                              dest[:, start - chunk_start:stop - chunk_start])
            peak = max(peak, float(dest.max()), -float(dest.min()))
            meter.process(dest)
            if writer is not None:
                writer.write(dest)
        if writer is not None:
            writer.close()
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    peak_dbfs = float(gain_to_db(peak))
    lufs = meter.integrated_lufs()
    report = {"room": room_id, "reverb_engine": plan.reverb_engine, "reverb_db": wetness,
              "output": "stereo" if stereo else "binaural", "sample_rate": int(sample_rate),
              "duration_s": round(total / sample_rate, 3), "tail_s": round(tail / sample_rate, 3),
              "peak_dbfs": round(peak_dbfs, 2), "lufs": None if lufs is None else round(lufs, 2),
              "clipped": bool(peak >= 1.0), "sources": report_sources, "unused_stems": unused}
    return RenderResult(audio=audio, sample_rate=int(sample_rate), peak_dbfs=peak_dbfs, lufs=lufs,
                        clipped=bool(peak >= 1.0), report=report,
                        output=None if writer_target is None else str(writer_target[0]))


def render_files(stems_dir, plan, output, *, stereo: bool = False, downmix: bool = False,
                 rate: int | None = None, hrtf=None, dry: bool = False, reverb_db: float | None = None,
                 block_size: int = 1024) -> tuple[RenderResult, dict]:
    """Render a folder of mono stems with a plan into the audio file ``output``: what
    ``stase render`` does and what every job of ``stase render --batch`` does, so both write the
    same bytes for the same inputs.

    Everything that can be checked without rendering is checked first (``output``, ``block_size``,
    ``rate``, ``reverb_db``, the plan, its room, the stems), in that order.

    Parameters
    ----------
    stems_dir : folder of mono stems named like the plan's tracks.
    plan : a :class:`stase.core.plan.Plan` or the path of a plan file.
    output : the audio file to write (replaced only once complete).
    rate : render at this sample rate (Hz; the stems are resampled); None = the stems' rate.
    dry : ignore the plan's room.
    Other parameters: as :func:`render_plan`.

    Returns
    -------
    (result, report) : the :class:`RenderResult` (``audio`` None: it went to the file) and its
        report with ``output_path`` and ``stems_rate`` added.
    """
    from stase.core.audio_io import check_output_path, load_stems
    from stase.core.plan import load_plan
    from stase.core.rates import check_sample_rate, resample_stems
    from stase.dsp.rooms import resolve_room
    from stase.dsp.scene import check_reverb_db
    check_output_path(output)  # before any work: a folder, .mp3 or no extension fail here
    if isinstance(block_size, bool) or not isinstance(block_size, (int, np.integer)) or block_size < 1:
        raise InputError(f"--block must be a positive number of samples, got {block_size!r}")
    if rate is not None:
        check_sample_rate(rate, "--rate")
    if reverb_db is not None:
        check_reverb_db(reverb_db, "--reverb-db")
    plan = plan if isinstance(plan, Plan) else load_plan(plan)
    room = None if dry else resolve_room(plan.room)
    stems, stems_rate = load_stems(stems_dir, downmix=downmix)
    target = check_sample_rate(stems_rate if rate is None else rate,
                               "the stems' sample rate (give --rate)" if rate is None else "--rate")
    stems = resample_stems(stems, stems_rate, target)
    result = render_plan(stems, plan, target, stereo=stereo, block_size=block_size, hrtf=hrtf,
                         room=None if room is None else room[1], output=output, reverb_db=reverb_db)
    return result, dict(result.report, output_path=str(output), stems_rate=stems_rate)


#: True-peak oversampling factor (ITU-R BS.1770-4 Annex 2: 4x at 48 kHz).
TRUE_PEAK_OVERSAMPLING = 4


def true_peak_dbfs(path, chunk_frames: int = 1 << 16) -> float:
    """True peak of an audio file in dBTP: the largest magnitude of the signal oversampled 4x
    (ITU-R BS.1770-4 Annex 2; polyphase interpolation, ``stase.core.rates.resample``), read in
    chunks with enough context on both sides that chunked equals whole.  -inf for silence."""
    import soundfile as sf
    from stase.core.rates import resample
    context = 64
    peak = 0.0
    with sf.SoundFile(str(path)) as f:
        n = f.frames
        for start in range(0, n, chunk_frames):
            lo, hi = max(0, start - context), min(n, start + chunk_frames + context)
            f.seek(lo)
            x = f.read(hi - lo, dtype="float64", always_2d=True).T
            y = resample(x, 1, TRUE_PEAK_OVERSAMPLING, axis=1)
            a = (start - lo) * TRUE_PEAK_OVERSAMPLING
            b = a + (min(n, start + chunk_frames) - start) * TRUE_PEAK_OVERSAMPLING
            peak = max(peak, float(np.abs(y[:, a:b]).max(initial=0.0)))
    return 20.0 * math.log10(peak) if peak > 0 else -math.inf
