"""A learned, readable part-level prior: each part's target follows the music it plays.

The fixed part targets of :mod:`.ensembles` give a first violin +1.1 LU over the median part in
every movement; in the bench's quartets a part sits 2-13 LU from that in a given movement (a
cello pianissimo for the whole excerpt, a first-violin solo over rests), and prior mode then
tells an untouched part to move.  Here the target of a part is predicted from what the parts
*play*, measured with features that do not depend on a stem's gain (so turning a fader does not
move its own target).

What this module holds
----------------------
* :data:`FEATURE_NAMES` / :func:`stem_features` - per stem, from its short-time ERB band powers
  (:mod:`.analysis`) and its BS.1770 gating blocks: share of frames within 40 dB of its own
  loud frames (``active_share``), register (median spectral centroid and lowest strong band, in
  Cam), spread of the spectrum above the lowest band (``brightness_cam``), spectral flatness,
  onset rate (per second of playing), the spread of its frame levels (p95 - p50, dB) and its
  integrated loudness against its own loud blocks (``gated_vs_loud_db``: even or accented).
  Every one is a ratio or difference of the stem's own powers: a gain cancels (tests: a stem
  x 0.1 gives the same features).
* :func:`ensemble_features` - the above plus how a part plays among the others:
  ``exposed_share`` (it plays alone) and ``lead_share`` (it is the highest part playing).
* :func:`relative_features` - each feature minus its mean over the ensemble's parts (how this
  part plays *compared with the others*), plus ``top_register`` (1 for the highest centroid).
  A model feature ``rel_x@part`` is ``rel_x`` for that part only (a per-part slope).
* :class:`PartModel` / :func:`load_models` / :func:`check_model_data` - a ridge regression per
  ensemble: ``target_lu = intercept[part] + sum_k coef[k] * (feature k - mean[k]) / scale[k]``,
  read from ``part_prior.json`` beside this file (written by ``tools/fit_part_prior.py``, which
  records the rows, the features chosen, the excerpt length and feature range it covers and the
  leave-one-work-out error).  A bad file is an ``InputError`` naming the file and the keys.
  :meth:`PartModel.applies`: no extrapolation (shorter excerpts or features outside the fitted
  range keep the fixed targets).
* :func:`ridge_fit` - the closed-form ridge solution (intercepts not penalised) the fit uses.
* :func:`learned_targets` - what :func:`.ensembles.ensemble_gains` asks: a target, tolerance,
  confidence and the terms behind it per track, or None (fixed targets apply).

Targets are relative to the ensemble's mean part (the anchor, :mod:`.anchor`, removes any
common offset), so only differences between the parts' predictions matter.

What a gain-invariant feature cannot see: in FluidR3_GM the bowed strings' spectrum does not
change with velocity (a cello or violin note at velocity 40, 70 and 110: 17.6 LU apart, the same
centroid, lowest band, brightness and flatness to 0.001 Cam), so a part marked pp for a whole
excerpt looks exactly like a part turned down; only the dynamic contour inside the excerpt and
the texture (who leads, who plays alone) are left to learn from.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stase.core.errors import InputError

#: per-stem features, all invariant to the stem's gain (see the module docstring).
FEATURE_NAMES = ("active_share", "centroid_cam", "low_band_cam", "brightness_cam", "flatness",
                 "onset_rate_hz", "level_spread_db", "gated_vs_loud_db")
#: features of a part among the others (:func:`ensemble_features`).
CONTEXT_FEATURE_NAMES = ("exposed_share", "lead_share")
ALL_FEATURE_NAMES = FEATURE_NAMES + CONTEXT_FEATURE_NAMES
#: relative features: the above minus their ensemble mean, and the top-register flag.
RELATIVE_FEATURE_NAMES = tuple(f"rel_{n}" for n in ALL_FEATURE_NAMES) + ("top_register",)
#: a frame plays when it is within this many dB of the stem's 95th-percentile frame level.
ACTIVE_RANGE_DB = 40.0
#: a band is "strong" in a frame when within this many dB of the frame's strongest band.
STRONG_BAND_DB = 20.0
#: an onset: the frame level rises by at least this much (dB) over the previous frame.
ONSET_RISE_DB = 3.0
MODEL_FILE = Path(__file__).with_name("part_prior.json")
_TINY = 1e-30


def active_frames(band_power) -> np.ndarray:
    """Frames (bool) within :data:`ACTIVE_RANGE_DB` of the stem's own 95th-percentile frame level."""
    frame_power = np.asarray(band_power, dtype=np.float64).sum(axis=1)
    if not np.any(frame_power > 0):
        return np.zeros(len(frame_power), bool)
    frame_db = 10.0 * np.log10(frame_power + _TINY)
    loud = np.percentile(frame_db[frame_power > 0], 95)
    return (frame_power > 0) & (frame_db > loud - ACTIVE_RANGE_DB)


def frame_centroids(band_power, band_cams=None) -> np.ndarray:
    """Power-weighted mean band (Cam) of every frame; NaN where the frame has no power."""
    power = np.asarray(band_power, dtype=np.float64)
    cams = np.arange(power.shape[1], dtype=np.float64) if band_cams is None else np.asarray(band_cams, float)
    total = power.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, (power * cams).sum(axis=1) / total, np.nan)


def stem_features(band_power, frame_hop_s: float, band_cams=None, block_powers=None) -> dict[str, float]:
    """Gain-invariant features of one stem from its band powers.

    Parameters
    ----------
    band_power : (frames, bands) mean-square power per ERB band (linear, >= 0).
    frame_hop_s : seconds between frames.
    band_cams : (bands,) ERB-rate of each band (Cam); default the band index (1-Cam bands).
    block_powers : (blocks,) BS.1770 gating-block powers; gives ``gated_vs_loud_db`` (integrated
        loudness minus the 95th-percentile block loudness), else 0.

    Returns
    -------
    {name: value} for :data:`FEATURE_NAMES`; a stem with no power gives zeros.
    """
    power = np.asarray(band_power, dtype=np.float64)
    cams = np.arange(power.shape[1], dtype=np.float64) if band_cams is None else np.asarray(band_cams, float)
    active = active_frames(power)
    if not np.any(active):
        return {n: 0.0 for n in FEATURE_NAMES}
    frame_db = 10.0 * np.log10(power.sum(axis=1) + _TINY)
    p = power[active]
    centroid = frame_centroids(p, cams)
    strong = 10.0 * np.log10(p + _TINY) >= 10.0 * np.log10(p.max(axis=1, keepdims=True) + _TINY) - STRONG_BAND_DB
    lowest = cams[np.argmax(strong, axis=1)]
    # the floor inside the log scales with the frame, so a gain cancels in the ratio
    floor = 1e-12 * p.max(axis=1, keepdims=True)
    geometric = np.exp(np.mean(np.log(p + floor), axis=1))
    flatness = geometric / p.mean(axis=1)
    rises = np.diff(frame_db) >= ONSET_RISE_DB
    onsets = np.count_nonzero(rises & active[1:] & active[:-1])
    playing_s = max(float(active.sum()) * frame_hop_s, frame_hop_s)
    levels = frame_db[active]
    gated_vs_loud = 0.0
    if block_powers is not None:
        from stase.agent.advisor.analysis import gated_loudness
        blocks = np.asarray(block_powers, dtype=np.float64)
        integrated = gated_loudness(blocks)
        if integrated is not None:
            gated_vs_loud = integrated - (-0.691 + 10.0 * np.log10(np.percentile(blocks, 95)))
    return {"active_share": float(active.mean()),
            "centroid_cam": float(np.median(centroid)),
            "low_band_cam": float(np.median(lowest)),
            "brightness_cam": float(np.median(centroid - lowest)),
            "flatness": float(np.median(flatness)),
            "onset_rate_hz": onsets / playing_s,
            "level_spread_db": float(np.percentile(levels, 95) - np.percentile(levels, 50)),
            "gated_vs_loud_db": float(gated_vs_loud)}


def ensemble_features(band_powers: dict, frame_hop_s: float, band_cams=None,
                      block_powers: dict | None = None) -> dict[str, dict[str, float]]:
    """:func:`stem_features` of every part plus how it plays among the others.

    ``exposed_share``: share of the part's playing frames in which no other part plays (a solo);
    ``lead_share``: share of its playing frames in which it is the highest (by centroid) of the
    parts that play (it carries the top line).  Both use each stem's own activity gate, so they
    are gain-invariant too.

    Parameters
    ----------
    band_powers : {track: (frames, bands) band power}, one frame grid.
    block_powers : {track: gating-block powers} or None.
    """
    tracks = list(band_powers)
    out = {t: stem_features(band_powers[t], frame_hop_s, band_cams,
                            None if block_powers is None else block_powers[t]) for t in tracks}
    active = np.array([active_frames(band_powers[t]) for t in tracks])
    centroid = np.array([frame_centroids(band_powers[t], band_cams) for t in tracks])
    centroid = np.where(active, centroid, -np.inf)
    top = np.argmax(centroid, axis=0)
    playing = active.sum(axis=0)
    for i, t in enumerate(tracks):
        n = max(int(active[i].sum()), 1)
        out[t]["exposed_share"] = float(np.count_nonzero(active[i] & (playing == 1))) / n
        out[t]["lead_share"] = float(np.count_nonzero(active[i] & (top == i) & (playing > 1))) / n
    return out


def analysis_features(analysis, tracks) -> dict[str, dict[str, float]]:
    """:func:`ensemble_features` of some tracks of a :class:`.analysis.MixAnalysis`."""
    from stase.agent.advisor.analysis import erb_number
    times = analysis.frame_times_s
    hop = float(times[1] - times[0]) if len(times) > 1 else 1.0
    powers = {t: 10.0 ** (analysis.stems[t].band_db.astype(np.float64) / 10.0) for t in tracks}
    blocks = {t: analysis.stems[t].block_powers for t in tracks}
    return ensemble_features(powers, hop, erb_number(analysis.band_centres_hz), blocks)


def relative_features(features: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """Each track's features minus their mean over the tracks, plus ``top_register``.

    Parameters
    ----------
    features : {track: :func:`ensemble_features` result} for the ensemble's parts.
    """
    tracks = list(features)
    out = {t: {} for t in tracks}
    for name in ALL_FEATURE_NAMES:
        values = np.array([features[t].get(name, 0.0) for t in tracks])
        for t, v in zip(tracks, values - values.mean()):
            out[t][f"rel_{name}"] = float(v)
    top = max(tracks, key=lambda t: features[t]["centroid_cam"])
    for t in tracks:
        out[t]["top_register"] = 1.0 if t == top else 0.0
    return out


def feature_value(name: str, part: str, relative: dict[str, float]) -> float:
    """Value of a model feature for a part: ``rel_x`` is the relative feature itself;
    ``rel_x@viola`` is the same for the viola and 0 for every other part (a per-part slope)."""
    base, _, only = name.partition("@")
    return relative[base] if not only or only == part else 0.0


def known_feature(name: str, parts) -> bool:
    """Whether ``name`` is a relative feature, alone or restricted to one of ``parts``."""
    base, _, only = name.partition("@")
    return base in RELATIVE_FEATURE_NAMES and (not only or only in parts)


def ridge_fit(features: np.ndarray, groups: np.ndarray, target: np.ndarray, alpha: float,
              n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Ridge regression with one unpenalised intercept per group (part).

    Minimises ``|y - A[g] - X b|^2 + alpha |b|^2``: with the intercepts solved out, ``b`` is the
    ridge solution on group-centred data and ``A[g]`` the group mean of ``y - X b``.

    Parameters
    ----------
    features : (rows, k) standardised features.  groups : (rows,) int part index.
    target : (rows,) LU.  alpha : ridge penalty (>= 0).  n_groups : number of parts.

    Returns
    -------
    intercepts (n_groups,), coefficients (k,)
    """
    x = np.asarray(features, float).reshape(len(target), -1)
    y = np.asarray(target, float)
    g = np.asarray(groups, int)
    xc, yc = x.copy(), y.copy()
    for j in range(n_groups):
        m = g == j
        if np.any(m):
            xc[m] -= x[m].mean(axis=0)
            yc[m] -= y[m].mean()
    k = x.shape[1]
    coef = np.linalg.solve(xc.T @ xc + alpha * np.eye(k), xc.T @ yc) if k else np.zeros(0)
    residual = y - x @ coef
    intercepts = np.array([residual[g == j].mean() if np.any(g == j) else 0.0 for j in range(n_groups)])
    return intercepts, coef


@dataclass(frozen=True)
class PartModel:
    """One ensemble's fitted part prior (see :func:`load_models`)."""

    ensemble: str
    parts: tuple[str, ...]
    intercepts_lu: dict[str, float]
    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef_lu: tuple[float, ...]
    tolerance_lu: dict[str, float]
    confidence: dict[str, float]
    rows: int
    cv_error_lu: float
    min_seconds: float = 0.0
    feature_low: tuple[float, ...] = ()
    feature_high: tuple[float, ...] = ()

    def applies(self, duration_s: float, part: str, relative: dict[str, float]) -> bool:
        """Whether the model speaks for this stem: an excerpt at least as long as the shortest it
        was fitted on, and every feature inside the range of the fitted rows (no extrapolation)."""
        if duration_s < self.min_seconds:
            return False
        for name, low, high in zip(self.features, self.feature_low, self.feature_high):
            if not low - 1e-9 <= feature_value(name, part, relative) <= high + 1e-9:
                return False
        return True

    def predict(self, part: str, relative: dict[str, float]) -> tuple[float, dict[str, float]]:
        """Target (LU vs the ensemble mean) of ``part`` and each feature's contribution (LU)."""
        terms = {name: c * (feature_value(name, part, relative) - m) / s
                 for name, m, s, c in zip(self.features, self.mean, self.scale, self.coef_lu)}
        return self.intercepts_lu[part] + sum(terms.values()), terms


def _problem(path, key: str, what: str) -> InputError:
    return InputError(f"{path}: {key}: {what}")


def check_model_data(data, path="part_prior.json") -> dict[str, PartModel]:
    """Validate the coefficients file's content; every problem found at once, named by key.

    Raises
    ------
    InputError : listing each missing or malformed key.
    """
    problems = []
    if not isinstance(data, dict) or not isinstance(data.get("models"), dict):
        raise _problem(path, "models", "expected an object {ensemble: model}")
    models = {}
    for ensemble, m in data["models"].items():
        key = f"models.{ensemble}"
        if not isinstance(m, dict):
            problems.append(f"{key}: expected an object")
            continue
        try:
            features = tuple(m["features"])
            n = len(features)
            unknown = [f for f in features if not known_feature(f, m["intercepts_lu"])]
            if unknown:
                problems.append(f"{key}.features: unknown {unknown}; known: {list(RELATIVE_FEATURE_NAMES)}, "
                                "each optionally with @part")
            for field in ("mean", "scale", "coef_lu"):
                values = m[field]
                if not isinstance(values, list) or len(values) != n or not all(
                        isinstance(v, (int, float)) and np.isfinite(v) for v in values):
                    problems.append(f"{key}.{field}: expected {n} finite numbers")
            if any(isinstance(v, (int, float)) and v <= 0 for v in m["scale"]):
                problems.append(f"{key}.scale: every scale must be > 0")
            parts = tuple(m["intercepts_lu"])
            for field in ("intercepts_lu", "tolerance_lu", "confidence"):
                values = m[field]
                if not isinstance(values, dict) or set(values) != set(parts) or not all(
                        isinstance(v, (int, float)) and np.isfinite(v) for v in values.values()):
                    problems.append(f"{key}.{field}: expected a finite number for each of {list(parts)}")
            if any(not 0.0 <= float(v) <= 1.0 for v in m["confidence"].values()):
                problems.append(f"{key}.confidence: values must lie in [0, 1]")
            if any(float(v) <= 0.0 for v in m["tolerance_lu"].values()):
                problems.append(f"{key}.tolerance_lu: values must be > 0")
            low, high = m.get("feature_range", [[-np.inf] * n, [np.inf] * n])
            if len(low) != n or len(high) != n or any(a > b for a, b in zip(low, high)):
                problems.append(f"{key}.feature_range: expected [[{n} lows], [{n} highs]] with low <= high")
            if not isinstance(m.get("min_seconds", 0.0), (int, float)) or m.get("min_seconds", 0.0) < 0:
                problems.append(f"{key}.min_seconds: expected a number >= 0")
            if not problems:
                models[ensemble] = PartModel(
                    ensemble=ensemble, parts=parts,
                    intercepts_lu={p: float(v) for p, v in m["intercepts_lu"].items()},
                    features=features, mean=tuple(map(float, m["mean"])), scale=tuple(map(float, m["scale"])),
                    coef_lu=tuple(map(float, m["coef_lu"])),
                    tolerance_lu={p: float(v) for p, v in m["tolerance_lu"].items()},
                    confidence={p: float(v) for p, v in m["confidence"].items()},
                    rows=int(m["rows"]), cv_error_lu=float(m["cv_error_lu"]),
                    min_seconds=float(m.get("min_seconds", 0.0)),
                    feature_low=tuple(map(float, low)), feature_high=tuple(map(float, high)))
        except (KeyError, TypeError, ValueError) as exc:
            problems.append(f"{key}: missing or malformed field ({exc!r})")
    if problems:
        raise InputError(f"{path}: " + "; ".join(problems))
    return models


def load_models(path=None) -> dict[str, PartModel]:
    """The fitted part priors {ensemble: :class:`PartModel`} from ``path`` (default
    :data:`MODEL_FILE`); an empty dict when the default file is absent (fixed targets apply)."""
    file = Path(path) if path is not None else MODEL_FILE
    if not file.is_file():
        if path is not None:
            raise InputError(f"{file}: no such part-prior file")
        return {}
    try:
        data = json.loads(file.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"{file}: not readable JSON ({exc})") from exc
    return check_model_data(data, file)


_MODELS: dict | None = None


def default_models() -> dict[str, PartModel]:
    """:func:`load_models` of the shipped file, read once."""
    global _MODELS
    if _MODELS is None:
        _MODELS = load_models()
    return _MODELS


def learned_targets(analysis, parts: dict[str, str], ensemble: str, models=None):
    """Per-track targets from the ensemble's learned model, or None when it has none.

    Returns
    -------
    {track: (target_lu, tolerance_lu, confidence, {feature: contribution_lu}, rows fitted)} or None
    """
    model = (default_models() if models is None else models).get(ensemble)
    if model is None or set(parts.values()) - set(model.parts) or len(set(parts.values())) != len(parts):
        return None  # another line-up (e.g. two tracks on one part): the fixed targets apply
    relative = relative_features(analysis_features(analysis, list(parts)))
    if not all(model.applies(analysis.duration_s, part, relative[t]) for t, part in parts.items()):
        return None  # a short excerpt or a feature outside the fitted range: the fixed targets apply
    out = {}
    for t, part in parts.items():
        target, terms = model.predict(part, relative[t])
        out[t] = (float(target), model.tolerance_lu[part], model.confidence[part], terms, model.rows)
    return out
