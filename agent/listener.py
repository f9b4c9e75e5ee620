"""The listener: hears where a binaural source is, and what it is (Spatial-AST in ONNX).

Holds
-----
Listener(model_path=None, providers=None, threads=None)
    .listen(binaural (2, n), sample_rate) -> {"azimuth_deg", "elevation_deg", "distance_m",
                                              "confidence", "classes": {role: score}}
    .listen_many([(binaural, sample_rate), ...]) -> [dict, ...]      (one batched ONNX call)
    .answer(question, mix, sources=None, sample_rate=32000) -> {"type", "answer", "value", ...}
    .listen_back(stems, plan, sample_rate) -> {"tracks": [{track, planned, perceived, errors, flag}], "summary"}

The model (``onnx_models/spatial_ast.onnx``, see ``onnx_models/MODEL_CARD.md``) is BAT's
Spatial-AST scaled for CPU; it is loaded once per ``Listener`` with onnxruntime, on the CUDA
provider when one works, else on the CPU.  Audio at other rates is resampled to 32 kHz, level-
normalised as the training data were, cut into 1 s windows (hop 0.5 s) and the windows'
probabilities averaged (weighted by window energy).  Coordinates follow dsp/conventions.py:
azimuth degrees, 0 = front, positive = LEFT; elevation positive up; metres.
"""
from __future__ import annotations

import contextlib
import re
from math import gcd
from pathlib import Path

import numpy as np

from dsp.conventions import lateral_angle_deg
from dsp.errors import InputError, StaseError

from .features import CLIP_SAMPLES, SAMPLE_RATE, binaural_features, loudness_lufs

DEFAULT_MODEL = Path(__file__).resolve().parents[1] / "onnx_models" / "spatial_ast.onnx"
#: Level the training clips were normalised to (onnx_models/spatial_ast/data.py TARGET_LUFS).
TARGET_LEVEL_DB = -23.0
WINDOW_HOP = CLIP_SAMPLES // 2
#: Below this level (dB re full scale, ungated) a window counts as silence.
SILENCE_DB = -70.0


def resample_to_model_rate(binaural: np.ndarray, sample_rate: int) -> np.ndarray:
    """``(2, n)`` at ``sample_rate`` -> float64 ``(2, m)`` at 32 kHz (polyphase, scipy)."""
    x = np.asarray(binaural, dtype=np.float64)
    if int(sample_rate) == SAMPLE_RATE:
        return x
    from scipy.signal import resample_poly
    g = gcd(int(sample_rate), SAMPLE_RATE)
    return resample_poly(x, SAMPLE_RATE // g, int(sample_rate) // g, axis=1)


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


def _check_audio(binaural, sample_rate) -> np.ndarray:
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)) \
            or not 8000 <= int(sample_rate) <= 384000:
        raise InputError(f"sample_rate must be an integer between 8000 and 384000 Hz, got {sample_rate!r}")
    x = np.asarray(binaural)
    if x.ndim != 2 or x.shape[0] != 2:
        raise InputError(f"the listener needs binaural audio shaped (2, samples), got {x.shape}")
    if x.shape[1] < int(0.05 * sample_rate):
        raise InputError(f"audio too short to listen to: {x.shape[1]} samples (need at least 50 ms)")
    if not np.all(np.isfinite(x)):
        raise InputError("binaural audio contains NaN or Inf")
    return x


def windows(binaural_32k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Level-normalised 1 s windows ``(W, 2, 32000)`` (hop 0.5 s) and their weights ``(W,)``."""
    x = binaural_32k
    level = loudness_lufs(x, SAMPLE_RATE)
    if level < SILENCE_DB:
        raise InputError(f"the audio is silent ({level:.0f} dB); nothing to listen to")
    x = x * 10 ** ((TARGET_LEVEL_DB - level) / 20)
    n = x.shape[1]
    if n <= CLIP_SAMPLES:
        padded = np.zeros((2, CLIP_SAMPLES))
        padded[:, :n] = x
        return padded[None], np.ones(1)
    starts = list(range(0, n - CLIP_SAMPLES + 1, WINDOW_HOP))
    if starts[-1] + CLIP_SAMPLES < n:
        starts.append(n - CLIP_SAMPLES)
    chunks = np.stack([x[:, s:s + CLIP_SAMPLES] for s in starts])
    # Energy weights: quiet windows (a source that stops) say little about where it is.
    return chunks, np.mean(chunks ** 2, axis=(1, 2)) + 1e-12


class Listener:
    """Spatial-AST in onnxruntime, loaded once.

    Parameters
    ----------
    model_path : ONNX file; default ``onnx_models/spatial_ast.onnx`` shipped in the repo.
    providers : onnxruntime providers to try in order; default CUDA when available, then CPU.
    threads : intra-op threads for the CPU provider (None: onnxruntime's default).
    """

    def __init__(self, model_path: str | Path | None = None, providers: list | None = None,
                 threads: int | None = None):
        from onnx_models.spatial_ast.labels import ROLES
        self.roles = ROLES
        path = Path(model_path) if model_path else DEFAULT_MODEL
        if not path.is_file():
            raise InputError(f"listener model not found: {path} (train and export it with "
                             f"python -m onnx_models.spatial_ast.export, see docs/listener.md)")
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise StaseError("the listener needs onnxruntime (pip install onnxruntime-gpu)") from exc
        options = ort.SessionOptions()
        if threads:
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
            self.session = ort.InferenceSession(str(path), options, providers=providers)
        except Exception as exc:  # noqa: BLE001 - a CUDA provider that cannot start: use the CPU
            if providers == ["CPUExecutionProvider"]:
                raise StaseError(f"cannot load the listener model {path}") from exc
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        finally:
            ort.set_default_logger_severity(2)
        self.providers = self.session.get_providers()
        self.model_path = path

    # -- perception ----------------------------------------------------------------------
    def infer_features(self, features: np.ndarray) -> dict:
        """Raw probabilities for a batch of feature maps ``(B, 4, 101, 128)``."""
        from onnx_models.spatial_ast.labels import sigmoid, softmax
        out = self.session.run(None, {"features": np.ascontiguousarray(features, dtype=np.float32)})
        return {"classes": sigmoid(out[0]), "distance": softmax(out[1]), "azimuth": softmax(out[2]),
                "elevation": softmax(out[3])}

    def listen(self, binaural: np.ndarray, sample_rate: int) -> dict:
        """Where the (dominant) source of a binaural signal is, and what it sounds like."""
        return self.listen_many([(binaural, sample_rate)])[0]

    def listen_many(self, items) -> list[dict]:
        """``listen`` for several ``(binaural, sample_rate)`` pairs in one batched model call."""
        from onnx_models.spatial_ast.labels import decode_direction, decode_distance
        chunks, weights, owner = [], [], []
        for k, (audio, rate) in enumerate(items):
            x = resample_to_model_rate(_check_audio(audio, rate), int(rate))
            c, w = windows(x)
            chunks.append(c)
            weights.append(w / w.sum())
            owner += [k] * len(c)
        with blas_single_thread():
            features = binaural_features(np.concatenate(chunks))
        probs = self.infer_features(features)
        weights_all, owner = np.concatenate(weights), np.asarray(owner)
        results = []
        for k in range(len(items)):
            sel = owner == k
            w = weights_all[sel][:, None]
            mean = {name: (p[sel] * w).sum(axis=0, keepdims=True) for name, p in probs.items()}
            az, el, mass = decode_direction(mean["azimuth"], mean["elevation"])
            dist = decode_distance(mean["distance"])
            classes = probs["classes"][sel].max(axis=0)
            results.append({"azimuth_deg": round(float(az[0]), 2), "elevation_deg": round(float(el[0]), 2),
                            "distance_m": round(float(dist[0]), 2), "confidence": round(float(mass[0]), 4),
                            "classes": {r: round(float(s), 4) for r, s in zip(self.roles, classes)}})
        return results

    # -- listen-back ---------------------------------------------------------------------
    def listen_back(self, stems: dict, plan, sample_rate: int, seconds: float = 3.0,
                    tolerance_deg: float = 30.0, tolerance_m: float = 2.0) -> dict:
        """Render each planned track solo at its placement (``dsp.offline.render_plan``, the plan's
        room), listen, and report how far the perceived position is from the plan.

        Only the loudest ``seconds`` of each stem are rendered (listening is per 1 s window).
        A track is flagged when the great-circle error exceeds ``tolerance_deg`` or the distance
        error exceeds ``tolerance_m``.
        """
        import dataclasses
        from dsp.conventions import great_circle_deg
        from dsp.offline import render_plan
        lookup = {name.lower(): audio for name, audio in stems.items()}
        renders, placements = [], []
        for placement in plan.sources:
            stem = lookup.get(placement.track.lower())
            if stem is None:
                continue
            stem = _loudest(np.asarray(stem, dtype=np.float32), int(seconds * sample_rate))
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
                           "flag": bool(angle > tolerance_deg or abs(distance) > tolerance_m)})
        flagged = [t["track"] for t in tracks if t["flag"]]
        summary = (f"{len(tracks)} track(s) heard; " + (f"far from the plan: {', '.join(flagged)}" if flagged
                                                         else "all within tolerance"))
        return {"tracks": tracks, "summary": summary}

    # -- questions (BAT's SpatialSoundQA types) -------------------------------------------
    def answer(self, question: str, mix: np.ndarray, sources: dict | None = None,
               sample_rate: int = SAMPLE_RATE) -> dict:
        """Answer a spatial question about a binaural mix.

        Question types (BAT): "what is playing?" (detection); "where is X?" (left/right,
        front/behind, above/below and distance); "is X left of Y?"; "which is closer, X or Y?";
        also "is X in front / behind / above / below / to the left / to the right?" and "how
        far is X?".  ``sources`` maps names to their solo binaural renders (same rate); X and Y
        are looked up there (case-insensitive; a role name or alias also matches), else the mix
        itself is taken as X.  Returns ``{"type", "answer" (text), "value", "perceived": {...}}``.
        """
        if not isinstance(question, str) or not question.strip():
            raise InputError("question must be a non-empty string")
        q = question.strip().lower()
        names = self._names(q, sources)
        if re.search(r"what (is|'s) playing|what do you hear|which instruments|what instruments", q):
            heard = self.listen(mix, sample_rate)["classes"]
            playing = [r for r, s in sorted(heard.items(), key=lambda kv: -kv[1]) if s >= 0.5]
            playing = playing or [max(heard, key=heard.get)]
            return {"type": "detection", "answer": ", ".join(playing), "value": playing,
                    "perceived": {"classes": heard}}
        if re.search(r"\bcloser\b|\bnearer\b|\bfurther\b|\bfarther\b", q):
            a, b = self._two(names, q, mix, sources, sample_rate)
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
            a, b = self._two(names, q, mix, sources, sample_rate)
            lat_a = lateral_angle_deg(a[1]["azimuth_deg"], a[1]["elevation_deg"])
            lat_b = lateral_angle_deg(b[1]["azimuth_deg"], b[1]["elevation_deg"])
            value = bool(lat_a > lat_b) if "left of" in q else bool(lat_a < lat_b)
            return {"type": "left_of", "answer": "yes" if value else "no", "value": value,
                    "perceived": {a[0]: a[1], b[0]: b[1]}}
        name = names[0] if names else "the source"
        heard = self._perceive(name, mix, sources, sample_rate)
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
                from agent.lexicon import match_track_role
                for name in sources:
                    role = match_track_role(name)
                    if role and name not in [n for _, n in found]:
                        pos = q.find(role.replace("_", " "))
                        if pos >= 0:
                            found.append((pos, name))
            except ImportError:
                pass
        return [n for _, n in sorted(found)]

    def _perceive(self, name, mix, sources, sample_rate) -> dict:
        audio = sources[name] if sources and name in sources else mix
        return self.listen(audio, sample_rate)

    def _two(self, names, q, mix, sources, sample_rate):
        if len(names) < 2:
            raise InputError(f"the question {q!r} compares two sources; name two of {sorted(sources or {})}")
        return [(n, self._perceive(n, mix, sources, sample_rate)) for n in names[:2]]


def _loudest(stem: np.ndarray, length: int) -> np.ndarray:
    """The ``length``-sample stretch of ``stem`` with the most energy (whole stem if shorter)."""
    if stem.size <= length:
        return stem
    energy = np.concatenate([[0.0], np.cumsum(stem.astype(np.float64) ** 2)])
    window = energy[length:] - energy[:-length]
    start = int(np.argmax(window[::max(1, length // 8)]) * max(1, length // 8))
    return stem[start:start + length]


def describe(heard: dict) -> dict:
    """Words for a perceived position: left/right (lateral angle), front/behind, above/below."""
    az, el = heard["azimuth_deg"], heard["elevation_deg"]
    lateral = lateral_angle_deg(az, el)
    return {"left_right": "left" if lateral > 0 else "right",
            "front_behind": "front" if abs(az) <= 90 else "behind",
            "above_below": "above" if el > 0 else "below"}
