"""The listener: hears where a binaural source is, and what it is (Spatial-AST in ONNX).

Holds
-----
Listener(model_path=None, providers=None, threads=None)
    .listen(binaural (2, n), sample_rate) -> {"azimuth_deg", "elevation_deg", "distance_m",
                                              "confidence", "classes": {role: score}}
    .listen_many([(binaural, sample_rate), ...]) -> [dict, ...]
    .listen_file(path) -> dict;  .listen_files([path, ...]) -> [dict, ...]   (read block by block)
    .answer(question, mix, sources=None, sample_rate=32000, seconds=10) -> {"type", "answer", "value", ...}
    .answer_plan(question, stems, plan, sample_rate, seconds=10) -> the same, from solo renders
    .listen_back(stems, plan, sample_rate) -> {"tracks": [{track, planned, perceived, errors, flag,
                                                          uncertain}], "summary"}
    .calibration (Calibration or None), .calibration_record (dict), .trained_heads
Calibration(a, b).apply(raw) / calibration_path(model) / load_calibration(model) / write_calibration
    the confidence's calibration, a small JSON beside the model (issue 17)
loudest_start(signals, length) / loudest_excerpt(signal, length)    the loudest stretch, bounded memory

The model (``onnx_models/spatial_ast.onnx``, see ``onnx_models/MODEL_CARD.md``) is BAT's
Spatial-AST scaled for CPU; it is loaded once per ``Listener`` with onnxruntime, on the CUDA
provider when one works, else on the CPU.  Audio at other rates is resampled to 32 kHz, level-
normalised as the training data were, cut into 1 s windows (hop 0.5 s) and the windows'
probabilities averaged (weighted by window energy).  Coordinates follow stase/core/conventions.py:
azimuth degrees, 0 = front, positive = LEFT; elevation positive up; metres.

Memory does not grow with the audio's length: the signal is read (from the array or the file)
and resampled in blocks of ``BLOCK_SECONDS``, twice (once to measure its level, once to cut the
windows), and the windows go through the features and the model ``BATCH_WINDOWS`` at a time while
running sums keep the average.  The result equals the whole-at-once computation (``windows``)
to float rounding.  Time does grow with length, so the question answerer listens to the loudest
``ANSWER_SECONDS`` of each signal.

Confidence: the raw figure is the azimuth probability within +-10 degrees of the answer
(``listener_labels.decode_direction``); ``confidence`` is that figure through the model's
calibration (``<model>_calibration.json``, a Platt scaling fitted by ``python -m bench.listener
--calibrate`` on a validation split of the training head, never on held-out clips): the
probability that the answer is within 20 degrees (great circle) of the truth.  The calibration
applies only to the model it was fitted for (its SHA-256); without one the raw figure is reported.
Listen-back marks a track ``uncertain`` (not a wrong position) below ``UNCERTAIN_BELOW``.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import math
import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from stase.core.conventions import lateral_angle_deg
from stase.core.errors import InputError, StaseError
from stase.core.rates import check_sample_rate, resample, resample_ratio

from stase.agent.features import CLIP_SAMPLES, SAMPLE_RATE, binaural_features, level_from_mean_squares, loudness_lufs

DEFAULT_MODEL = Path(__file__).resolve().parents[1] / "onnx_models" / "spatial_ast.onnx"
#: Level the training clips were normalised to (onnx_models/spatial_ast/data.py TARGET_LUFS).
TARGET_LEVEL_DB = -23.0
WINDOW_HOP = CLIP_SAMPLES // 2
#: Below this level (dB re full scale, ungated) a window counts as silence.
SILENCE_DB = -70.0
#: Windows per feature + model call.  The features' intermediates (STFT of 16 x 2 x 1 s, complex
#: float64) peak near 170 MB (tracemalloc); the batch bounds the listener's memory whatever the
#: audio's length (a 60 s or a 1 h file: the same peak).
BATCH_WINDOWS = 16
#: Seconds of input read and resampled per block while streaming.
BLOCK_SECONDS = 4.0
#: Longest stretch (s) of each signal that ``answer`` listens to: its loudest part answers
#: "where is X?" as well as the whole would, in bounded time (10 s = 19 windows).
ANSWER_SECONDS = 10.0
#: Samples per block when summing energies for ``loudest_start`` (bounded float64 temporaries).
ENERGY_BLOCK = 1 << 18
#: Listen-back calls a track "uncertain" (and does not flag its position as wrong) when the
#: calibrated confidence, the probability of being within 20 degrees, is below this.
UNCERTAIN_BELOW = 0.5
#: Raw confidences are clipped to [CONFIDENCE_EPS, 1 - CONFIDENCE_EPS] before the logit.
CONFIDENCE_EPS = 1e-4


def confidence_logit(raw):
    """``log(c / (1 - c))`` of raw confidences, clipped away from 0 and 1."""
    c = np.clip(np.asarray(raw, dtype=float), CONFIDENCE_EPS, 1.0 - CONFIDENCE_EPS)
    return np.log(c / (1.0 - c))


class Calibration:
    """Platt scaling of the raw confidence: ``p = sigmoid(a logit(raw) + b)`` (``a > 0`` keeps the
    order of the raw figures)."""

    def __init__(self, a: float, b: float):
        if not (math.isfinite(a) and math.isfinite(b) and a > 0):
            raise ValueError(f"a calibration needs finite a > 0 and b, got a={a!r}, b={b!r}")
        self.a, self.b = float(a), float(b)

    def apply(self, raw):
        return 1.0 / (1.0 + np.exp(-(self.a * confidence_logit(raw) + self.b)))


def calibration_path(model_path) -> Path:
    """Where a model's calibration lives: ``<stem>_calibration.json`` beside it."""
    model_path = Path(model_path)
    return model_path.with_name(model_path.stem + "_calibration.json")


def model_sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_calibration(model_path) -> tuple[Calibration | None, dict]:
    """``(Calibration or None, record)`` for a model file: None (and why, in the record) when no
    calibration file is there or it was fitted for another model; ``StaseError`` for a file that
    is not a calibration."""
    path = calibration_path(model_path)
    if not path.is_file():
        return None, {"status": f"no calibration file {path.name}: confidence is the raw figure"}
    try:
        record = json.loads(path.read_text())
        calibration = Calibration(float(record["a"]), float(record["b"]))
        fitted_for = str(record["model_sha256"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise StaseError(f"cannot read the listener's calibration {path}: {exc}") from exc
    if fitted_for != model_sha256(model_path):
        return None, {"status": f"{path.name} was fitted for another model: confidence is the raw figure"}
    return calibration, {"status": "calibrated", **{k: v for k, v in record.items()
                                                     if not k.startswith("validation_")}}


def write_calibration(path, record: dict) -> None:
    from stase.core.audio_io import atomic_write_text
    atomic_write_text(Path(path), json.dumps(record, indent=1) + "\n")


def resample_to_model_rate(binaural: np.ndarray, sample_rate: int) -> np.ndarray:
    """``(2, n)`` at ``sample_rate`` -> float64 ``(2, m)`` at 32 kHz (polyphase, scipy)."""
    x = np.asarray(binaural, dtype=np.float64)
    if int(sample_rate) == SAMPLE_RATE:
        return x
    return resample(x, int(sample_rate), SAMPLE_RATE, axis=1)


def blas_single_thread():
    """Context keeping NumPy's BLAS on one thread while it runs (threadpoolctl, when installed).

    The feature matmuls are small; a multi-threaded OpenBLAS spinning on a busy machine makes
    them several times slower (measured 120 ms vs 33 ms per 1 s clip on a loaded 2-core box).
    """
    global _CONTROLLER
    if _CONTROLLER is None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:
            return contextlib.nullcontext()
        _CONTROLLER = ThreadpoolController()   # inspecting the loaded libraries is the slow part
    return _CONTROLLER.limit(limits=1, user_api="blas")


_CONTROLLER = None


def _check_rate(sample_rate) -> int:
    return check_sample_rate(sample_rate, "sample_rate")


def _check_length(samples: int, sample_rate: int, label: str = "audio") -> None:
    if samples < int(0.05 * sample_rate):
        raise InputError(f"{label} too short to listen to: {samples} samples (need at least 50 ms)")


def _check_shape(binaural) -> np.ndarray:
    """The ``(2, n)`` array (NaN/Inf are checked block by block as it is read)."""
    x = np.asarray(binaural)
    if x.ndim != 2 or x.shape[0] != 2:
        raise InputError(f"the listener needs binaural audio shaped (2, samples), got {x.shape}")
    return x


def window_starts(samples_32k: int) -> list[int]:
    """First sample of each 1 s window (hop 0.5 s) over ``samples_32k`` (> 1 s) samples at 32 kHz;
    the last window ends at the last sample."""
    starts = list(range(0, samples_32k - CLIP_SAMPLES + 1, WINDOW_HOP))
    if starts[-1] + CLIP_SAMPLES < samples_32k:
        starts.append(samples_32k - CLIP_SAMPLES)
    return starts


def _level_gain(level_db: float) -> float:
    """Linear gain to the training level; ``InputError`` for silence."""
    if level_db < SILENCE_DB:
        raise InputError(f"the audio is silent ({level_db:.0f} dB); nothing to listen to")
    return 10 ** ((TARGET_LEVEL_DB - level_db) / 20)


def _window_weights(chunks: np.ndarray) -> np.ndarray:
    # Energy weights: quiet windows (a source that stops) say little about where it is.
    return np.mean(chunks ** 2, axis=(-2, -1)) + 1e-12


def windows(binaural_32k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Level-normalised 1 s windows ``(W, 2, 32000)`` (hop 0.5 s) and their weights ``(W,)``.

    All at once (memory grows with the length): the reference that ``Listener``'s streamed
    windows are tested against.
    """
    x = binaural_32k
    x = x * _level_gain(loudness_lufs(x, SAMPLE_RATE))
    n = x.shape[1]
    if n <= CLIP_SAMPLES:
        padded = np.zeros((2, CLIP_SAMPLES))
        padded[:, :n] = x
        return padded[None], np.ones(1)
    chunks = np.stack([x[:, s:s + CLIP_SAMPLES] for s in window_starts(n)])
    return chunks, _window_weights(chunks)


# -- streaming: signals read block by block, resampled block by block -------------------------

class ArraySignal:
    """A ``(2, n)`` array at ``sample_rate``, read in blocks as float64 (no full-length copy)."""

    def __init__(self, binaural, sample_rate, label: str = "audio"):
        self.rate = _check_rate(sample_rate)
        self.audio = _check_shape(binaural)
        self.frames = int(self.audio.shape[1])
        self.label = label
        _check_length(self.frames, self.rate, label)

    def read(self, start: int, stop: int) -> np.ndarray:
        block = np.array(self.audio[:, start:stop], dtype=np.float64)
        if not np.all(np.isfinite(block)):
            raise InputError(f"binaural audio contains NaN or Inf ({self.label}, near sample {start})")
        return block

    def close(self) -> None:
        pass


class FileSignal:
    """A binaural sound file read in blocks (``soundfile``), checked as ``stase.core.audio_io.read_audio``
    checks a file (regular, readable, not truncated, not empty, finite), plus: two channels, a
    rate the listener accepts, at least 50 ms."""

    def __init__(self, path):
        import soundfile as sf
        from stase.core.audio_io import file_kind, truncation
        self.path = p = Path(path)
        self.label = str(path)
        if not (p.exists() or p.is_symlink()):
            raise InputError(f"audio file not found: {p}")
        if not p.is_file():             # opening a FIFO would block for ever
            raise InputError(f"audio file {p} is not a regular file ({file_kind(p)})")
        try:
            shortfall = truncation(p)
            self.file = sf.SoundFile(str(p))
        except Exception as exc:  # noqa: BLE001 - libsndfile says why
            raise InputError(f"cannot read audio file {p}: {exc}") from exc
        try:
            if shortfall is not None:
                raise InputError(f"audio file {p} is truncated: its header claims {shortfall[0]} frames but "
                                 f"the file holds {shortfall[1]} (an interrupted copy or write?)")
            self.rate, self.frames, channels = int(self.file.samplerate), int(self.file.frames), self.file.channels
            if self.frames == 0:
                raise InputError(f"audio file {self.path} is empty (0 samples)")
            if channels != 2:
                raise InputError(f"{self.path} has {channels} channel(s); the listener needs binaural "
                                 f"(2-channel) audio")
            _check_rate(self.rate)
            _check_length(self.frames, self.rate, str(self.path))
        except BaseException:
            self.file.close()
            raise

    def read(self, start: int, stop: int) -> np.ndarray:
        try:
            self.file.seek(start)
            data = self.file.read(stop - start, dtype="float32", always_2d=True)
        except Exception as exc:  # noqa: BLE001 - libsndfile says why
            raise InputError(f"cannot read audio file {self.path}: {exc}") from exc
        if data.shape[0] != stop - start:
            raise InputError(f"audio file {self.path} ends early: its header says {self.frames} samples, "
                             f"only {start + data.shape[0]} could be read")
        if not np.all(np.isfinite(data)):
            raise InputError(f"audio file {self.path} contains NaN or Inf samples")
        return data.T.astype(np.float64)

    def close(self) -> None:
        self.file.close()


def model_rate_blocks(signal, block_frames: int | None = None):
    """Yield ``signal`` resampled to 32 kHz as float64 ``(2, m)`` blocks.

    Concatenated, the blocks equal ``resample_to_model_rate`` of the whole signal: each block is
    resampled with enough input on both sides to cover ``resample_poly``'s filter, starting on a
    multiple of the decimation factor so the output phase matches.
    """
    n, rate = signal.frames, signal.rate
    block = int(block_frames or BLOCK_SECONDS * rate)
    if rate == SAMPLE_RATE:
        for start in range(0, n, block):
            yield signal.read(start, min(n, start + block))
        return
    from scipy.signal import resample_poly
    up, down = resample_ratio(rate, SAMPLE_RATE)
    # resample_poly's default filter is 2 * 10 * max(up, down) + 1 taps at the upsampled rate.
    context = -(-(10 * max(up, down) // up + 2) // down) * down
    block = max(1, block // down) * down
    total = -(-n * up // down)
    for start in range(0, n, block):
        stop = min(n, start + block)
        lo, hi = max(0, start - context), min(n, stop + context)
        y = resample_poly(signal.read(lo, hi), up, down, axis=1)
        offset = lo * up // down
        last = stop * up // down if stop < n else total
        yield y[:, start * up // down - offset:last - offset]


def _level_of(signal, block_frames: int | None = None) -> tuple[float, int]:
    """``loudness_lufs`` of the signal at 32 kHz and its length there, one block at a time."""
    squares, samples = np.zeros(2), 0
    for block in model_rate_blocks(signal, block_frames):
        squares += np.sum(block ** 2, axis=1)
        samples += block.shape[1]
    return level_from_mean_squares(squares / max(samples, 1)), samples


def streamed_windows(signal, block_frames: int | None = None):
    """Yield ``(window (2, 32000) float64, weight)`` as ``windows`` would, reading ``signal``
    twice block by block (level, then windows): memory stays a few blocks whatever the length."""
    level, n = _level_of(signal, block_frames)
    gain = _level_gain(level)
    if n <= CLIP_SAMPLES:
        padded = np.zeros((2, CLIP_SAMPLES))
        at = 0
        for block in model_rate_blocks(signal, block_frames):
            padded[:, at:at + block.shape[1]] = block * gain
            at += block.shape[1]
        yield padded, 1.0
        return
    starts = window_starts(n)
    k = 0
    buffer, buffer_start = np.zeros((2, 0)), 0
    for block in model_rate_blocks(signal, block_frames):
        buffer = np.concatenate([buffer, block * gain], axis=1)
        end = buffer_start + buffer.shape[1]
        while k < len(starts) and starts[k] + CLIP_SAMPLES <= end:
            at = starts[k] - buffer_start
            window = buffer[:, at:at + CLIP_SAMPLES].copy()
            yield window, float(_window_weights(window))
            k += 1
        keep_from = (starts[k] if k < len(starts) else end) - buffer_start
        buffer, buffer_start = buffer[:, keep_from:], buffer_start + keep_from


def _open(item):
    """A signal for ``(binaural, rate)`` pairs, paths and signals alike."""
    if isinstance(item, (ArraySignal, FileSignal)):
        return item
    if isinstance(item, (str, Path)):
        return FileSignal(item)
    audio, rate = item
    return ArraySignal(audio, rate)


class Listener:
    """Spatial-AST in onnxruntime, loaded once.

    Parameters
    ----------
    model_path : ONNX file; default ``onnx_models/spatial_ast.onnx`` shipped in the repo.
    providers : onnxruntime providers to try in order; default CUDA when available, then CPU.
    threads : intra-op threads for the CPU provider, a positive integer (None: onnxruntime's default).

    Raises ``InputError`` for a missing file, a file that is not an ONNX model or not the
    listener's, and a bad ``threads``.
    """

    def __init__(self, model_path: str | Path | None = None, providers: list | None = None,
                 threads: int | None = None):
        from stase.agent.listener_labels import ROLES
        self.roles = ROLES
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, (int, np.integer))
                                    or threads < 1):
            raise InputError(f"threads must be a positive integer (CPU threads for onnxruntime), got {threads!r}")
        path = Path(model_path) if model_path else DEFAULT_MODEL
        if not path.is_file():
            raise InputError(f"listener model not found: {path} (train and export it with "
                             f"python -m stase.onnx_models.spatial_ast.export, see docs/listener.md)")
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise StaseError("the listener needs onnxruntime (pip install onnxruntime-gpu)") from exc
        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = int(threads)
            options.inter_op_num_threads = 1
        options.log_severity_level = 3
        # onnxruntime-gpu on a machine without CUDA logs errors while it falls back to the CPU;
        # the fallback is the intended behaviour here, so keep the log quiet while we try.
        ort.set_default_logger_severity(4)
        if providers is None:
            available = ort.get_available_providers()
            providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
        try:
            try:
                self.session = ort.InferenceSession(str(path), options, providers=providers)
            except Exception:  # noqa: BLE001 - a CUDA provider that cannot start: use the CPU
                if providers == ["CPUExecutionProvider"]:
                    raise
                self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - onnxruntime's own exception types
            raise _load_error(path, exc, user_given=model_path is not None) from exc
        finally:
            ort.set_default_logger_severity(2)
        inputs = [i.name for i in self.session.get_inputs()]
        if inputs != ["features"] or len(self.session.get_outputs()) != 4:
            raise InputError(f"{path} is an ONNX model but not the listener's: it takes {inputs} and gives "
                             f"{len(self.session.get_outputs())} output(s); the listener's takes ['features'] "
                             f"(batch, 4, 101, 128) and gives 4 (classes, distance, azimuth, elevation)")
        self.providers = self.session.get_providers()
        self.model_path = path
        self.calibration, self.calibration_record = load_calibration(path)
        #: heads the model heard in training (the calibration record says; run 7: KEMAR only)
        self.trained_heads = tuple(self.calibration_record.get("trained_heads", ("kemar",)))

    # -- perception ----------------------------------------------------------------------
    def infer_features(self, features: np.ndarray) -> dict:
        """Raw probabilities for a batch of feature maps ``(B, 4, 101, 128)``."""
        from stase.agent.listener_labels import sigmoid, softmax
        out = self.session.run(None, {"features": np.ascontiguousarray(features, dtype=np.float32)})
        return {"classes": sigmoid(out[0]), "distance": softmax(out[1]), "azimuth": softmax(out[2]),
                "elevation": softmax(out[3])}

    def listen(self, binaural: np.ndarray, sample_rate: int) -> dict:
        """Where the (dominant) source of a binaural signal is, and what it sounds like."""
        return self.listen_many([(binaural, sample_rate)])[0]

    def listen_file(self, path: str | Path) -> dict:
        """``listen`` to a binaural sound file, read block by block (memory bounded by the block
        and the batch, not the file); ``InputError`` for a missing, unreadable, empty, non-binaural
        or NaN-holding file."""
        return self.listen_files([path])[0]

    def listen_files(self, paths) -> list[dict]:
        """``listen_file`` for several files (each is checked before any is listened to)."""
        paths = list(paths)
        for path in paths:
            FileSignal(path).close()
        return self.listen_many(paths)

    def listen_many(self, items, with_raw_confidence: bool = False) -> list[dict]:
        """``listen`` for several ``(binaural, sample_rate)`` pairs (or file paths); with
        ``with_raw_confidence`` each result also holds ``confidence_raw`` (before calibration).

        The windows of all items stream through the model ``BATCH_WINDOWS`` at a time (a batch
        may hold windows of several short items); per item, running sums keep the energy-weighted
        mean of the probabilities and the running maximum of the class scores.
        """
        items = list(items)
        for item in items:              # shapes and rates first: a bad item fails before any work
            if not isinstance(item, (str, Path, ArraySignal, FileSignal)):
                audio, rate = item
                _check_length(_check_shape(audio).shape[1], _check_rate(rate))
        return [self._decode(heard, with_raw_confidence) for heard in self.heard_probabilities(items)]

    def heard_probabilities(self, items) -> list[dict]:
        """Per item the energy-weighted mean probabilities ``{"distance", "azimuth", "elevation"}``
        (each ``(1, bins)``) and ``"classes"``, the maximum class scores ``(classes,)``."""
        sums = [None] * len(items)
        batch, owners, weights = [], [], []

        def flush():
            with blas_single_thread():
                features = binaural_features(np.stack(batch))
            probs = self.infer_features(features)
            for row, (k, w) in enumerate(zip(owners, weights)):
                acc = sums[k]
                acc["weight"] += w
                for name in ("distance", "azimuth", "elevation"):
                    acc[name] += probs[name][row] * w
                acc["classes"] = np.maximum(acc["classes"], probs["classes"][row])
            batch.clear(), owners.clear(), weights.clear()

        for k, item in enumerate(items):
            signal = _open(item)
            try:
                for window, weight in streamed_windows(signal):
                    if sums[k] is None:
                        sums[k] = {"weight": 0.0, "distance": 0.0, "azimuth": 0.0, "elevation": 0.0,
                                   "classes": -np.inf}
                    batch.append(window), owners.append(k), weights.append(weight)
                    if len(batch) == BATCH_WINDOWS:
                        flush()
            finally:
                signal.close()
        if batch:
            flush()
        return [{"classes": acc["classes"],
                 **{name: (acc[name] / acc["weight"])[None] for name in ("distance", "azimuth", "elevation")}}
                for acc in sums]

    def _decode(self, heard: dict, with_raw_confidence: bool = False) -> dict:
        from stase.agent.listener_labels import decode_direction, decode_distance
        az, el, mass = decode_direction(heard["azimuth"], heard["elevation"])
        dist = decode_distance(heard["distance"])
        raw = float(mass[0])
        confidence = raw if self.calibration is None else float(self.calibration.apply(raw))
        out = {"azimuth_deg": round(float(az[0]), 2), "elevation_deg": round(float(el[0]), 2),
               "distance_m": round(float(dist[0]), 2), "confidence": round(confidence, 4),
               "classes": {r: round(float(s), 4) for r, s in zip(self.roles, heard["classes"])}}
        if with_raw_confidence:
            out["confidence_raw"] = round(raw, 4)
        return out

    # -- listen-back ---------------------------------------------------------------------
    def listen_back(self, stems: dict, plan, sample_rate: int, seconds: float = 3.0,
                    tolerance_deg: float = 30.0, tolerance_m: float = 2.0,
                    uncertain_below: float = UNCERTAIN_BELOW) -> dict:
        """Render each planned track solo at its placement (``stase.dsp.offline.render_plan``, the plan's
        room), listen, and report how far the perceived position is from the plan.

        Only the loudest ``seconds`` of each stem are rendered (listening is per 1 s window).
        A track is flagged when the great-circle error exceeds ``tolerance_deg`` or the distance
        error exceeds ``tolerance_m`` and the listener is sure enough to say so; a track heard with
        a confidence below ``uncertain_below`` is marked ``uncertain`` instead (its perceived
        position is reported, not called wrong).
        """
        import dataclasses
        from stase.core.conventions import great_circle_deg
        from stase.dsp.offline import render_plan
        from stase.core.names import pair_names
        pairs = pair_names([s.track for s in plan.sources], list(stems))[0]  # the one name rule
        renders, placements = [], []
        for placement in plan.sources:
            if placement.track not in pairs:
                continue
            stem = stems[pairs[placement.track]]
            # the excerpt first: the render (and the listening) then cost `seconds`, whatever the stem's length
            stem = np.asarray(loudest_excerpt(np.asarray(stem), int(seconds * sample_rate)), dtype=np.float32)
            solo = dataclasses.replace(plan, sources=[placement])
            result = render_plan({placement.track: stem}, solo, sample_rate)
            renders.append((result.audio, sample_rate))
            placements.append(placement)
        if not renders:
            raise InputError(f"no stem matches the plan's tracks {[s.track for s in plan.sources]}")
        tracks = []
        for placement, heard in zip(placements, self.listen_many(renders)):
            angle = float(great_circle_deg(heard["azimuth_deg"], heard["elevation_deg"],
                                           placement.azimuth_deg, placement.elevation_deg))
            lateral = float(lateral_angle_deg(heard["azimuth_deg"], heard["elevation_deg"])
                            - lateral_angle_deg(placement.azimuth_deg, placement.elevation_deg))
            distance = heard["distance_m"] - placement.distance_m
            tracks.append({"track": placement.track,
                           "planned": {"azimuth_deg": placement.azimuth_deg, "elevation_deg": placement.elevation_deg,
                                       "distance_m": placement.distance_m},
                           "perceived": {k: heard[k] for k in ("azimuth_deg", "elevation_deg", "distance_m", "confidence")},
                           "angular_error_deg": round(angle, 1), "lateral_error_deg": round(lateral, 1),
                           "distance_error_m": round(distance, 2),
                           "uncertain": bool(heard["confidence"] < uncertain_below),
                           "flag": bool(heard["confidence"] >= uncertain_below
                                        and (angle > tolerance_deg or abs(distance) > tolerance_m))})
        flagged = [t["track"] for t in tracks if t["flag"]]
        unsure = [t["track"] for t in tracks if t["uncertain"]]
        parts = [f"far from the plan: {', '.join(flagged)}" if flagged else
                 ("the others within tolerance" if unsure else "all within tolerance")]
        if unsure:
            parts.insert(0, f"uncertain (confidence below {uncertain_below:g}): {', '.join(unsure)}")
        summary = f"{len(tracks)} track(s) heard; " + "; ".join(parts)
        return {"tracks": tracks, "summary": summary}

    # -- questions (BAT's SpatialSoundQA types) -------------------------------------------
    def answer(self, question: str, mix: np.ndarray, sources: dict | None = None,
               sample_rate: int = SAMPLE_RATE, seconds: float = ANSWER_SECONDS) -> dict:
        """Answer a spatial question about a binaural mix.

        Question types (BAT): "what is playing?" (detection); "where is X?" (left/right,
        front/behind, above/below and distance); "is X left of Y?"; "which is closer, X or Y?";
        also "is X in front / behind / above / below / to the left / to the right?" and "how
        far is X?".  ``sources`` maps names to their solo binaural renders (same rate); X and Y
        are looked up there (case-insensitive; a role name or alias also matches), else the mix
        itself is taken as X.  Each signal heard is cut to its loudest ``seconds`` first, so the
        work is bounded whatever the length.
        Returns ``{"type", "answer" (text), "value", "perceived": {...}}``.
        """
        return self._answer(question, lambda: mix, sources, sample_rate, seconds)

    def answer_plan(self, question: str, stems: dict, plan, sample_rate: int,
                    seconds: float = ANSWER_SECONDS) -> dict:
        """``answer`` a question about ``plan`` rendered from mono ``stems`` (``stase.dsp.offline``).

        Only the ``seconds`` where the stems are loudest together are rendered, and only what the
        question needs: the solo render of each track it names (at most two), the mix when it asks
        what is playing or names no track.  Cost and memory are bounded by ``seconds`` and the
        track count, whatever the stems' length.
        """
        import dataclasses
        from stase.dsp.offline import match_stems, render_plan
        length = max(1, int(round(_positive_seconds(seconds) * _check_rate(sample_rate))))
        matched, _ = match_stems(stems, plan)
        start = loudest_start(list(matched.values()), length)
        excerpts = {track: stem[start:start + length] for track, stem in matched.items()}
        placements = {s.track: s for s in plan.sources}

        def solo(track):
            return render_plan({track: excerpts[track]}, dataclasses.replace(plan, sources=[placements[track]]),
                               sample_rate).audio

        def mix():
            return render_plan(excerpts, plan, sample_rate).audio

        return self._answer(question, mix, _LazyRenders(list(placements), solo), sample_rate, seconds)

    def _answer(self, question, get_mix, sources, sample_rate, seconds) -> dict:
        if not isinstance(question, str) or not question.strip():
            raise InputError("question must be a non-empty string")
        length = max(1, int(round(_positive_seconds(seconds) * _check_rate(sample_rate))))

        def perceive(name):
            audio = sources[name] if sources and name in sources else get_mix()
            return self.listen(loudest_excerpt(_check_shape(audio), length), sample_rate)

        q = question.strip().lower()
        names = self._names(q, sources)
        if re.search(r"what (is|'s) playing|what do you hear|which instruments|what instruments", q):
            heard = perceive(None)["classes"]
            playing = [r for r, s in sorted(heard.items(), key=lambda kv: -kv[1]) if s >= 0.5]
            playing = playing or [max(heard, key=heard.get)]
            return {"type": "detection", "answer": ", ".join(playing), "value": playing,
                    "perceived": {"classes": heard}}
        if re.search(r"\bcloser\b|\bnearer\b|\bfurther\b|\bfarther\b", q):
            a, b = self._two(names, q, sources, perceive)
            d_a, d_b = a[1]["distance_m"], b[1]["distance_m"]
            further = re.search(r"\bfurther\b|\bfarther\b", q) is not None
            if q.startswith("which"):
                value = (a[0] if d_a > d_b else b[0]) if further else (a[0] if d_a <= d_b else b[0])
                text = value
            else:
                value = bool(d_a > d_b) if further else bool(d_a < d_b)
                text = "yes" if value else "no"
            return {"type": "closer", "answer": f"{text} ({a[0]} {a[1]['distance_m']} m, {b[0]} {b[1]['distance_m']} m)",
                    "value": value, "perceived": {a[0]: a[1], b[0]: b[1]}}
        if re.search(r"(left|right) of", q) and len(names) >= 2:
            a, b = self._two(names, q, sources, perceive)
            lat_a = lateral_angle_deg(a[1]["azimuth_deg"], a[1]["elevation_deg"])
            lat_b = lateral_angle_deg(b[1]["azimuth_deg"], b[1]["elevation_deg"])
            value = bool(lat_a > lat_b) if "left of" in q else bool(lat_a < lat_b)
            return {"type": "left_of", "answer": "yes" if value else "no", "value": value,
                    "perceived": {a[0]: a[1], b[0]: b[1]}}
        name = names[0] if names else "the source"
        heard = perceive(name)
        where = describe(heard)
        for word, key in (("left", "left_right"), ("right", "left_right"), ("front", "front_behind"),
                          ("behind", "front_behind"), ("back", "front_behind"), ("above", "above_below"),
                          ("below", "above_below"), ("up", "above_below"), ("down", "above_below")):
            if re.match(r"^(is|are)\b", q) and re.search(rf"\b{word}\b", q):
                target = {"back": "behind", "up": "above", "down": "below"}.get(word, word)
                value = where[key] == target
                return {"type": key, "answer": "yes" if value else "no", "value": value, "perceived": {name: heard}}
        if re.search(r"how far|distance", q):
            return {"type": "distance", "answer": f"about {heard['distance_m']:.1f} m",
                    "value": heard["distance_m"], "perceived": {name: heard}}
        text = (f"{name} is {where['left_right']}, {where['front_behind']} and {where['above_below']}, "
                f"about {heard['distance_m']:.1f} m away (azimuth {heard['azimuth_deg']:.0f} deg, "
                f"elevation {heard['elevation_deg']:.0f} deg)")
        return {"type": "direction", "answer": text, "value": where, "perceived": {name: heard}}

    def _names(self, q: str, sources: dict | None) -> list[str]:
        """Source names in the order they appear in the question."""
        if not sources:
            return []
        found = []
        for name in sources:
            pos = q.find(name.lower().replace("_", " "))
            pos = q.find(name.lower()) if pos < 0 else pos
            if pos >= 0:
                found.append((pos, name))
        if len(found) < 2:
            try:
                from stase.agent.lexicon import match_track_role
                for name in sources:
                    role = match_track_role(name)
                    if role and name not in [n for _, n in found]:
                        pos = q.find(role.replace("_", " "))
                        if pos >= 0:
                            found.append((pos, name))
            except ImportError:
                pass
        return [n for _, n in sorted(found)]

    @staticmethod
    def _two(names, q, sources, perceive):
        if len(names) < 2:
            raise InputError(f"the question {q!r} compares two sources; name two of {sorted(sources or {})}")
        return [(n, perceive(n)) for n in names[:2]]


def _load_error(path: Path, exc: Exception, user_given: bool) -> StaseError:
    """onnxruntime's refusal of a model file: the user's mistake when they named a file that is
    not a model, a broken install when the shipped model fails."""
    kind = type(exc).__name__           # onnxruntime's InvalidProtobuf, InvalidGraph, Fail, ...
    text = (str(exc).strip().splitlines() or [kind])[0][:300]
    if user_given and kind in ("InvalidProtobuf", "InvalidGraph", "InvalidArgument", "Fail", "NotImplemented"):
        return InputError(f"not an ONNX model: {path} (onnxruntime: {text}); --model takes the listener's "
                          f".onnx file (python -m stase.onnx_models.spatial_ast.export)")
    return StaseError(f"cannot load the listener model {path}: {text}")


def _energies_at(signal: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Cumulative energy ``sum(signal[..., :p] ** 2)`` (all channels) at sorted ``positions``,
    summed ``ENERGY_BLOCK`` samples at a time so no full-length float64 copy is made."""
    n = signal.shape[-1]
    out = np.zeros(len(positions))
    total, k = 0.0, 0
    for start in range(0, n, ENERGY_BLOCK):
        stop = min(n, start + ENERGY_BLOCK)
        squares = np.square(signal[..., start:stop], dtype=np.float64)
        if squares.ndim > 1:
            squares = squares.reshape(-1, stop - start).sum(axis=0)
        cumulative = np.concatenate([[0.0], np.cumsum(squares)]) + total
        while k < len(positions) and positions[k] <= stop:
            out[k] = cumulative[positions[k] - start]
            k += 1
        total = cumulative[-1]
    out[k:] = total
    return out


def loudest_start(signals, length: int) -> int:
    """Start (samples) of the ``length``-sample stretch holding the most energy over ``signals``.

    Parameters
    ----------
    signals : one array or a list of arrays ``(samples,)`` or ``(channels, samples)`` sharing a
        time axis (e.g. the stems of one song: the stretch where they are loudest together).
    length : samples in the stretch.

    Candidate starts are ``length // 8`` apart; 0 when every signal is no longer than ``length``.
    Memory: a bounded block at a time, whatever the signals' length.
    """
    signals = [signals] if isinstance(signals, np.ndarray) else list(signals)
    arrays = [np.asarray(s) for s in signals]
    n = max((a.shape[-1] for a in arrays), default=0)
    if n <= length:
        return 0
    step = max(1, length // 8)
    starts = np.arange(0, n - length + 1, step)
    energy = np.zeros(len(starts))
    for a in arrays:
        # positions past a shorter signal's end read its total (np.minimum keeps them sorted)
        ends = np.minimum(starts + length, a.shape[-1])
        heads = np.minimum(starts, a.shape[-1])
        energy += _energies_at(a, ends) - _energies_at(a, heads)
    return int(starts[int(np.argmax(energy))])


def loudest_excerpt(signal: np.ndarray, length: int) -> np.ndarray:
    """The ``length``-sample stretch of ``signal`` (last axis: time) with the most energy (the
    whole signal if shorter); a view, no copy."""
    start = loudest_start(signal, length)
    return signal[..., start:start + length]


def _positive_seconds(seconds) -> float:
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float, np.integer, np.floating)) \
            or not np.isfinite(seconds) or seconds < 1.0:
        raise InputError(f"seconds (how much of each signal to listen to) must be a number >= 1, got {seconds!r}")
    return float(seconds)


class _LazyRenders(Mapping):
    """{track: solo render}, each rendered on first use (a question names at most two tracks)."""

    def __init__(self, tracks: list[str], render):
        self._tracks, self._render, self._done = tracks, render, {}

    def __getitem__(self, track):
        if track not in self._tracks:
            raise KeyError(track)
        if track not in self._done:
            self._done[track] = self._render(track)
        return self._done[track]

    def __contains__(self, track):      # without rendering (Mapping's would call __getitem__)
        return track in self._tracks

    def __iter__(self):
        return iter(self._tracks)

    def __len__(self):
        return len(self._tracks)


def describe(heard: dict) -> dict:
    """Words for a perceived position: left/right (lateral angle), front/behind, above/below."""
    az, el = heard["azimuth_deg"], heard["elevation_deg"]
    lateral = lateral_angle_deg(az, el)
    return {"left_right": "left" if lateral > 0 else "right",
            "front_behind": "front" if abs(az) <= 90 else "behind",
            "above_below": "above" if el > 0 else "below"}
