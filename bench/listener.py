"""Bench of the Spatial-AST listener on the held-out split, beside a classical baseline.

    python -m bench.listener --json [--single 400] [--mixtures 200] [--heads-n 300]
                                    [--measured-n 24] [--model PATH]
    python -m bench.listener --calibrate [--valid-n 600]   # fit the confidence calibration

Clips are the deterministic held-out test split of ``stase.onnx_models.spatial_ast.data`` (seed
``TEST_SEED``, generator seeds never used in training), re-rendered here through our renderer.

Metrics, as BAT's evaluation code (github.com/zszheng147/Spatial-AST, ``engine_finetune_as.py``):

* ``mAP``: mean over classes (present in the split) of average precision of the class scores;
* ``mae_deg``: mean great-circle angle between predicted and true direction;
* ``er20``: fraction of clips whose great-circle error exceeds 20 degrees;
* ``der_bins``: BAT's DER, the issue's definition: BAT labels a distance ``round(2 * d)`` (21 bins of
  0.5 m, ``data/dataset.py``) and counts a clip correct when ``abs(truth - pred) <= 1`` bin
  (``engine_finetune_as.py``); our predicted bin is the decoded distance rounded the same way.
  ``der``: the stricter continuous form, |decoded - true distance| > 0.5 m (a 0.6 m miss can be one
  bin off, so ``der_bins <= der`` roughly);
* ``front_back_confusion``: among sources more than 10 degrees from the interaural axis, the
  fraction answered in the wrong (front / back) hemisphere;
* QA accuracy per question type through ``Listener.answer`` (BAT's SpatialSoundQA types):
  detection, left_right, front_behind, above_below (|elevation| > 10 deg), distance (within 0.5 m),
  and the binary reasoning questions on two-source clips: left_of (lateral angles more than 10 deg
  apart) and closer (distances more than 1 m apart).

Other heads (``heads``, issue 17): the same held-out recipe heard through each head of
``data.HEADS`` (KEMAR, the shipped set the model trained on; KU100 and SONICOM subject A, never
heard in training by run 7): ``mae_deg``, ``er20``, ``front_back_confusion``, ``lateral_mae_deg``
(interaural-polar lateral angle), ``elevation_mae_deg`` (|elevation error|), and the reliability of
the confidence (:func:`reliability`: bins of confidence vs the share within 20 degrees, ECE) raw
and calibrated.  Measured room (``measured_room``): test-bank sources convolved (scipy) with the
measured seminar-room BRIRs of ``../shared/data/brir_rostock_seminar`` (KEMAR, loudspeaker at
6.3 m, azimuth 0, +-40, +-80 deg, direct sound included; made outside stase): azimuth MAE,
front-back confusion (every direction is frontal), distance MAE, per direction.

Calibration (``--calibrate``): a Platt scaling of the raw confidence, ``p = sigmoid(a logit(c)
+ b)``, fitted by maximum likelihood to "great-circle error <= 20 deg" on a validation split of
the training head (train seed, indices from ``VALID_START``: no training set reaches them; never
the held-out test split or the other heads), written next to the model
(``stase.agent.listener.calibration_path``) with the model's SHA-256.

Classical baseline on the same clips: GCC-PHAT ITD -> lateral angle (inverse Woodworth), a front
guess (azimuth = lateral, elevation 0), and the broadband ILD's sign.  Timing: median ms per 1 s
clip on one CPU core (features + ONNX), with the baseline's time in the same run as the peer.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from stase.core.conventions import HEAD_RADIUS_M, SPEED_OF_SOUND_M_S, great_circle_deg, lateral_angle_deg
from stase.agent.listener_labels import distance_to_bin


# ---------------------------------------------------------------------------------------------
# classical baseline

def gcc_phat_itd_s(binaural: np.ndarray, sample_rate: int, max_itd_s: float = 1e-3) -> float:
    """Interaural time difference (s), positive when the LEFT ear leads (source on the left)."""
    left, right = np.asarray(binaural[0], float), np.asarray(binaural[1], float)
    n = 1 << int(np.ceil(np.log2(2 * left.size)))
    cross = np.fft.rfft(right, n) * np.conj(np.fft.rfft(left, n))
    cross /= np.maximum(np.abs(cross), 1e-12)
    upsample = 4   # quarter-sample resolution
    cc = np.fft.irfft(cross, n * upsample)
    max_lag = int(max_itd_s * sample_rate * upsample)
    cc = np.concatenate([cc[-max_lag:], cc[:max_lag + 1]])
    lag = int(np.argmax(cc)) - max_lag       # right lags left by `lag` -> left leads
    return lag / (sample_rate * upsample)


def woodworth_lateral_deg(itd_s):
    """Invert ITD = (a/c)(theta + sin theta) for the lateral angle theta (deg, positive left)."""
    grid = np.linspace(0.0, np.pi / 2, 2001)
    itd_grid = HEAD_RADIUS_M / SPEED_OF_SOUND_M_S * (grid + np.sin(grid))
    theta = np.interp(np.abs(itd_s), itd_grid, grid)
    return np.sign(itd_s) * np.degrees(theta)


def broadband_ild_db(binaural: np.ndarray) -> float:
    """Left minus right level, dB (positive = louder on the left)."""
    e = np.sum(np.asarray(binaural, float) ** 2, axis=1) + 1e-20
    return float(10 * np.log10(e[0] / e[1]))


# ---------------------------------------------------------------------------------------------
# metrics

def average_precision(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the precision-recall curve as sklearn's ``average_precision_score``."""
    order = np.argsort(-scores, kind="mergesort")
    y = labels[order] > 0
    if not y.any():
        return float("nan")
    tp = np.cumsum(y)
    precision = tp / np.arange(1, y.size + 1)
    # distinct score thresholds only (ties share one operating point)
    s = scores[order]
    last = np.r_[np.nonzero(np.diff(s))[0], y.size - 1]
    recall = tp[last] / y.sum()
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision[last]))


def mean_average_precision(scores: np.ndarray, labels: np.ndarray) -> float:
    aps = [average_precision(scores[:, k], labels[:, k]) for k in range(labels.shape[1]) if labels[:, k].any()]
    return float(np.mean(aps)) if aps else float("nan")


def spatial_metrics(pred_az, pred_el, pred_d, true_az, true_el, true_d) -> dict:
    err = great_circle_deg(pred_az, pred_el, true_az, true_el)
    out = {"mae_deg": float(np.mean(err)), "er20": float(np.mean(err > 20)),
           "median_error_deg": float(np.median(err)),
           "lateral_mae_deg": float(np.mean(np.abs(lateral_angle_deg(pred_az, pred_el) - lateral_angle_deg(true_az, true_el))))}
    if pred_d is not None:
        out["der"] = float(np.mean(np.abs(np.asarray(pred_d) - true_d) > 0.5))
        binned = np.abs(distance_to_bin(pred_d) - distance_to_bin(true_d))
        out["der_bins"] = float(np.mean(binned > 1))
        out["distance_mae_m"] = float(np.mean(np.abs(np.asarray(pred_d) - true_d)))
    clear = np.abs(np.abs(true_az) - 90) > 10
    out["front_back_confusion"] = float(np.mean((np.abs(pred_az[clear]) <= 90) != (np.abs(true_az[clear]) <= 90)))
    return out


def breakdown(groups, pred_az, pred_el, pred_d, true_az, true_el, true_d) -> dict:
    """``spatial_metrics`` per group label (e.g. room or source kind): where the errors are."""
    groups = np.asarray(groups)
    out = {}
    for name in sorted(set(groups.tolist())):
        sel = groups == name
        m = spatial_metrics(pred_az[sel], pred_el[sel], pred_d[sel], true_az[sel], true_el[sel], true_d[sel])
        out[str(name)] = {"n": int(sel.sum()), **{k: round(v, 4) for k, v in m.items()
                                                  if k in ("mae_deg", "er20", "der", "front_back_confusion")}}
    return out


# ---------------------------------------------------------------------------------------------
# heads, measured room, confidence

#: Validation clips for the calibration: train seed, indices no training set reaches.
VALID_START = 900_000
#: Confidence bins of the reliability diagram.
RELIABILITY_BINS = 10
#: A direction counts as right within this great-circle error (ER20's threshold), degrees.
CORRECT_WITHIN_DEG = 20.0
#: The measured BRIRs (outside the repository) and their azimuth keys (``p`` = positive = left:
#: the ILD of ``ir_p80`` is +10 dB left over right).
MEASURED_ROOM_FILE = Path(__file__).resolve().parents[2] / "shared" / "data" / "brir_rostock_seminar" / "brir_kemar_seminar_6m3.npz"
MEASURED_KEYS = {-80.0: "m80", -40.0: "m40", 0.0: "0", 40.0: "p40", 80.0: "p80"}


def reliability(confidence, correct, bins: int = RELIABILITY_BINS) -> dict:
    """Reliability diagram and expected calibration error.

    ``confidence`` (N,) in 0..1, ``correct`` (N,) bool.  Bins of equal width over 0..1; per
    non-empty bin its count, mean confidence and accuracy; ``ece`` = sum over bins of
    ``n_bin / N * |accuracy - mean confidence|`` (Guo et al. 2017).
    """
    confidence = np.clip(np.asarray(confidence, dtype=float), 0.0, 1.0)
    correct = np.asarray(correct, dtype=bool)
    index = np.minimum((confidence * bins).astype(int), bins - 1)
    table, ece = [], 0.0
    for k in range(bins):
        sel = index == k
        if not sel.any():
            continue
        mean_conf, acc = float(confidence[sel].mean()), float(correct[sel].mean())
        ece += sel.sum() / confidence.size * abs(acc - mean_conf)
        table.append({"bin": [k / bins, (k + 1) / bins], "n": int(sel.sum()),
                      "confidence": round(mean_conf, 4), "accuracy": round(acc, 4)})
    return {"ece": round(float(ece), 4), "accuracy": round(float(correct.mean()), 4),
            "mean_confidence": round(float(confidence.mean()), 4), "bins": table}


def fit_platt(confidence, correct) -> tuple[float, float]:
    """``(a, b)`` maximising the likelihood of ``correct`` under ``sigmoid(a logit(c) + b)``."""
    from scipy.optimize import minimize
    from stase.agent.listener import confidence_logit
    z = confidence_logit(np.asarray(confidence, dtype=float))
    y = np.asarray(correct, dtype=float)

    def nll(params):
        t = params[0] * z + params[1]
        return float(np.sum(np.logaddexp(0.0, t) - y * t))

    fit = minimize(nll, x0=np.array([1.0, 0.0]), method="Nelder-Mead",
                   options={"xatol": 1e-6, "fatol": 1e-9, "maxiter": 2000})
    return float(fit.x[0]), float(fit.x[1])


def _listen_clips(listener, clips) -> list[dict]:
    from stase.agent.features import SAMPLE_RATE
    heard = []
    for start in range(0, len(clips), 32):
        heard += listener.listen_many([(c.audio, SAMPLE_RATE) for c in clips[start:start + 32]], with_raw_confidence=True)
    return heard


def head_metrics(clips, heard, listener) -> dict:
    """Spatial metrics (with elevation error) and the confidence's reliability, raw and calibrated."""
    t_az = np.array([c.azimuth_deg[0] for c in clips])
    t_el = np.array([c.elevation_deg[0] for c in clips])
    t_d = np.array([c.distance_m[0] for c in clips])
    p_az = np.array([h["azimuth_deg"] for h in heard])
    p_el = np.array([h["elevation_deg"] for h in heard])
    p_d = np.array([h["distance_m"] for h in heard])
    m = spatial_metrics(p_az, p_el, p_d, t_az, t_el, t_d)
    m["elevation_mae_deg"] = float(np.mean(np.abs(p_el - t_el)))
    correct = great_circle_deg(p_az, p_el, t_az, t_el) <= CORRECT_WITHIN_DEG
    raw = np.array([h["confidence_raw"] for h in heard])
    out = {"n": len(clips), **{k: round(v, 4) for k, v in m.items()},
           "reliability_raw": reliability(raw, correct)}
    if listener.calibration is not None:
        out["reliability_calibrated"] = reliability([h["confidence"] for h in heard], correct)
    return out


def head_clips(head: str, n: int, progress=False):
    from tqdm import tqdm
    from stase.onnx_models.spatial_ast import data
    return [data.make_clip("test", i, stage=1, head=head) for i in tqdm(range(n), desc=f"{head} clips", disable=not progress)]


def run_heads(listener, n: int, singles=None, heard_singles=None, progress=False) -> dict:
    """``head_metrics`` per head of ``data.HEADS`` on the held-out recipe (``n`` clips each; the
    KEMAR clips are the in-domain split's when given).  A head whose file is missing is reported
    as such."""
    from stase.core.errors import InputError
    from stase.onnx_models.spatial_ast import data
    out = {}
    for head in data.HEADS:
        try:
            if head == "kemar" and singles is not None and len(singles) >= n:
                clips, heard = singles[:n], heard_singles[:n]
            else:
                clips = head_clips(head, n, progress)
                heard = _listen_clips(listener, clips)
        except InputError as exc:
            out[head] = {"missing": str(exc)}
            continue
        out[head] = {"trained_on": head in listener.trained_heads, **head_metrics(clips, heard, listener)}
    return out


def measured_room_clips(n_per_direction: int, path: Path = MEASURED_ROOM_FILE):
    """``[(binaural (2, 32000) float32 at 32 kHz, azimuth_deg, distance_m)]``: held-out test-bank
    sources (and noise bursts) convolved with the measured BRIRs (direct sound and room)."""
    from scipy.signal import fftconvolve
    from stase.agent.features import CLIP_SAMPLES, SAMPLE_RATE
    from stase.core.rates import resample
    from stase.agent.listener_labels import ROLES
    from stase.onnx_models.spatial_ast import data
    with np.load(path, allow_pickle=False) as stored:
        rate, distance = int(stored["fs"]), float(stored["distance_m"])
        responses = {az: resample(np.asarray(stored["ir_" + key], dtype=np.float64).T, rate, SAMPLE_RATE, axis=1)
                     for az, key in MEASURED_KEYS.items()}
    bank = data.source_bank("test")
    clips = []
    for az, ir in responses.items():
        for k in range(n_per_direction):
            rng = np.random.default_rng([data.TEST_SEED, 63, int(az) + 180, k])
            if rng.random() < data.NOISE_PROB:
                mono = data.noise_burst(rng)
            else:
                pieces = bank[ROLES[rng.integers(len(ROLES))]] or bank[ROLES[0]]
                mono = pieces[rng.integers(len(pieces))]
            wet = fftconvolve(mono[None, :CLIP_SAMPLES], ir, axes=1)[:, :CLIP_SAMPLES]
            # to the training clips' level (the measurement's own level is arbitrary)
            wet *= data._loudness_gain(wet, data.TARGET_LUFS)
            clips.append((wet.astype(np.float32), az, distance))
    return clips


def run_measured_room(listener, n_per_direction: int) -> dict:
    """Azimuth MAE, front-back confusion and distance MAE on the measured seminar room."""
    from stase.agent.features import SAMPLE_RATE
    from stase.core.conventions import wrap_azimuth_deg
    if not MEASURED_ROOM_FILE.is_file():
        return {"missing": f"{MEASURED_ROOM_FILE} not here"}
    clips = measured_room_clips(n_per_direction)
    heard = listener.listen_many([(x, SAMPLE_RATE) for x, _, _ in clips], with_raw_confidence=True)
    t_az = np.array([az for _, az, _ in clips])
    t_d = np.array([d for _, _, d in clips])
    p_az = np.array([h["azimuth_deg"] for h in heard])
    p_el = np.array([h["elevation_deg"] for h in heard])
    p_d = np.array([h["distance_m"] for h in heard])
    az_err = np.abs(wrap_azimuth_deg(p_az - t_az))
    back = np.abs(p_az) > 90
    per = {}
    for az in MEASURED_KEYS:
        sel = t_az == az
        per[f"{az:g}"] = {"azimuth_mae_deg": round(float(az_err[sel].mean()), 2),
                          "front_back_confusion": round(float(back[sel].mean()), 4),
                          "distance_mean_m": round(float(p_d[sel].mean()), 2),
                          "distance_range_m": [round(float(p_d[sel].min()), 2), round(float(p_d[sel].max()), 2)]}
    correct = great_circle_deg(p_az, p_el, t_az, 0.0) <= CORRECT_WITHIN_DEG
    return {"n": len(clips), "distance_m": float(t_d[0]),
            "azimuth_mae_deg": round(float(az_err.mean()), 2),
            "great_circle_mae_deg": round(float(np.mean(great_circle_deg(p_az, p_el, t_az, 0.0))), 2),
            "front_back_confusion": round(float(back.mean()), 4),
            "distance_mae_m": round(float(np.mean(np.abs(p_d - t_d))), 2),
            "reliability_raw": reliability([h["confidence_raw"] for h in heard], correct),
            **({"reliability_calibrated": reliability([h["confidence"] for h in heard], correct)}
               if listener.calibration is not None else {}),
            "by_direction": per}


def calibrate(model=None, n_valid: int = 600, progress=True, trained_heads=None) -> dict:
    """Fit the Platt calibration on the validation split of the training head(s) and write it next
    to the model; returns what was written.  ``trained_heads``: the heads the model was trained on
    (default: what the model's current calibration record says); written into the record, which
    is where the listener and this bench read them."""
    from tqdm import tqdm
    from stase.agent.listener import Listener, calibration_path, model_sha256, write_calibration
    from stase.onnx_models.spatial_ast import data
    listener = Listener(model)
    clips = []
    heads = sorted(trained_heads or listener.trained_heads)
    unknown = sorted(set(heads) - set(data.HEADS))
    if unknown:
        raise ValueError(f"unknown head(s) {unknown}; the heads are {list(data.HEADS)}")
    for k, head in enumerate(heads):
        clips += [data.make_clip("train", VALID_START + k * n_valid + i, stage=1, head=head)
                  for i in tqdm(range(n_valid), desc=f"validation {head}", disable=not progress)]
    heard = _listen_clips(listener, clips)
    t_az = np.array([c.azimuth_deg[0] for c in clips])
    t_el = np.array([c.elevation_deg[0] for c in clips])
    correct = great_circle_deg(np.array([h["azimuth_deg"] for h in heard]),
                               np.array([h["elevation_deg"] for h in heard]), t_az, t_el) <= CORRECT_WITHIN_DEG
    raw = np.array([h["confidence_raw"] for h in heard])
    a, b = fit_platt(raw, correct)
    record = {"method": "platt", "a": round(a, 6), "b": round(b, 6),
              "target": f"great-circle error <= {CORRECT_WITHIN_DEG:g} deg",
              "fitted_on": {"split": "train seed (validation indices)", "start": VALID_START,
                            "heads": heads, "n": len(clips), "seed": data.TRAIN_SEED},
              "model_sha256": model_sha256(listener.model_path),
              "validation_reliability_raw": reliability(raw, correct)}
    from stase.agent.listener import Calibration
    record["validation_reliability_calibrated"] = reliability(Calibration(a, b).apply(raw), correct)
    record["trained_heads"] = heads
    write_calibration(calibration_path(listener.model_path), record)
    return record


# ---------------------------------------------------------------------------------------------

def _median_ms(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return float(np.median(times))


def run_bench(n_single: int, n_mixtures: int, model=None, timing_repeats: int = 30, progress=True,
              n_heads: int = 300, n_measured: int = 24) -> dict:
    from tqdm import tqdm
    from stase.agent.features import SAMPLE_RATE, binaural_features
    from stase.agent.listener import Listener, describe
    from stase.onnx_models.spatial_ast import data
    from stase.agent.listener_labels import ROLES

    listener = Listener(model)
    singles = [data.make_clip("test", i, stage=1) for i in tqdm(range(n_single), desc="single clips", disable=not progress)]
    mixtures = []
    index = 0
    with tqdm(total=n_mixtures, desc="two-source clips", disable=not progress) as bar:
        while len(mixtures) < n_mixtures:
            clip = data.make_clip("test", 100_000 + index, stage=2)
            index += 1
            if len(clip.roles) == 2:
                mixtures.append(clip)
                bar.update(1)

    heard = []
    for start in range(0, n_single, 32):
        heard += listener.listen_many([(c.audio, SAMPLE_RATE) for c in singles[start:start + 32]], with_raw_confidence=True)
    true_az = np.array([c.azimuth_deg[0] for c in singles])
    true_el = np.array([c.elevation_deg[0] for c in singles])
    true_d = np.array([c.distance_m[0] for c in singles])
    pred_az = np.array([h["azimuth_deg"] for h in heard])
    pred_el = np.array([h["elevation_deg"] for h in heard])
    pred_d = np.array([h["distance_m"] for h in heard])
    model_metrics = spatial_metrics(pred_az, pred_el, pred_d, true_az, true_el, true_d)
    by_room = breakdown([c.room for c in singles], pred_az, pred_el, pred_d, true_az, true_el, true_d)
    by_source = breakdown(["noise burst" if c.roles[0] is None else "instrument" for c in singles],
                          pred_az, pred_el, pred_d, true_az, true_el, true_d)

    mix_heard = []
    for start in range(0, n_mixtures, 32):
        mix_heard += listener.listen_many([(c.audio, SAMPLE_RATE) for c in mixtures[start:start + 32]])
    all_clips, all_heard = singles + mixtures, heard + mix_heard
    scores = np.array([[h["classes"][r] for r in ROLES] for h in all_heard])
    labels = np.stack([c.class_vector() for c in all_clips])
    model_metrics["mAP"] = mean_average_precision(scores, labels)
    model_metrics["mAP_single"] = mean_average_precision(scores[:n_single], labels[:n_single])
    m_az = np.array([h["azimuth_deg"] for h in mix_heard])
    m_el = np.array([h["elevation_deg"] for h in mix_heard])
    m_d = np.array([h["distance_m"] for h in mix_heard])
    mixture_metrics = spatial_metrics(m_az, m_el, m_d, np.array([c.azimuth_deg[0] for c in mixtures]),
                                      np.array([c.elevation_deg[0] for c in mixtures]),
                                      np.array([c.distance_m[0] for c in mixtures])) if mixtures else {}

    # QA on single sources (perception questions), from the same perception as above.
    qa = {k: [] for k in ("detection", "left_right", "front_behind", "above_below", "distance", "left_of", "closer")}
    for c, h in zip(singles, heard):
        truth = describe({"azimuth_deg": c.azimuth_deg[0], "elevation_deg": c.elevation_deg[0]})
        said = describe(h)
        if abs(lateral_angle_deg(c.azimuth_deg[0], c.elevation_deg[0])) > 10:
            qa["left_right"].append(said["left_right"] == truth["left_right"])
        if abs(abs(c.azimuth_deg[0]) - 90) > 10:
            qa["front_behind"].append(said["front_behind"] == truth["front_behind"])
        if abs(c.elevation_deg[0]) > 10:
            qa["above_below"].append(said["above_below"] == truth["above_below"])
        qa["distance"].append(abs(h["distance_m"] - c.distance_m[0]) <= 0.5)
        if c.roles[0] is not None:
            qa["detection"].append(max(h["classes"], key=h["classes"].get) == c.roles[0])
    # Reasoning on two-source clips, through Listener.answer with the solos as sources.
    for k, c in enumerate(mixtures):
        names = [f"source {chr(65 + s)}" for s in range(2)]
        sources = dict(zip(names, c.solos))
        lat = [lateral_angle_deg(c.azimuth_deg[s], c.elevation_deg[s]) for s in range(2)]
        if abs(lat[0] - lat[1]) > 10:
            reply = listener.answer(f"Is {names[0]} to the left of {names[1]}?", c.audio, sources, SAMPLE_RATE)
            qa["left_of"].append(reply["value"] == bool(lat[0] > lat[1]))
        if abs(c.distance_m[0] - c.distance_m[1]) > 1.0:
            reply = listener.answer(f"Which is closer, {names[0]} or {names[1]}?", c.audio, sources, SAMPLE_RATE)
            qa["closer"].append(reply["value"] == names[int(np.argmin(c.distance_m))])
    qa_acc = {k: {"accuracy": float(np.mean(v)) if v else None, "n": len(v)} for k, v in qa.items()}
    reasoning = qa["left_of"] + qa["closer"]
    qa_acc["reasoning_binary"] = {"accuracy": float(np.mean(reasoning)) if reasoning else None, "n": len(reasoning)}

    # Classical baseline on the same single-source clips.
    itd = np.array([gcc_phat_itd_s(c.audio, SAMPLE_RATE) for c in singles])
    ild = np.array([broadband_ild_db(c.audio) for c in singles])
    base_lat = woodworth_lateral_deg(itd)
    baseline = spatial_metrics(base_lat, np.zeros(n_single), None, true_az, true_el, true_d)
    true_lat = lateral_angle_deg(true_az, true_el)
    clear = np.abs(true_lat) > 10
    baseline["left_right_accuracy_itd"] = float(np.mean((base_lat[clear] > 0) == (true_lat[clear] > 0)))
    baseline["left_right_accuracy_ild"] = float(np.mean((ild[clear] > 0) == (true_lat[clear] > 0)))
    baseline["ild_lateral_correlation"] = float(np.corrcoef(ild, true_lat)[0, 1])
    model_metrics["left_right_accuracy"] = qa_acc["left_right"]["accuracy"]

    # Timing on one core: a 1 s clip, features + ONNX, and the baseline as the peer.
    one = singles[0].audio
    single_core = Listener(model, providers=["CPUExecutionProvider"], threads=1)
    single_core.listen(one, SAMPLE_RATE)
    feats = binaural_features(one)[None]
    from stase.agent.listener import blas_single_thread
    with blas_single_thread():
        timing = {"listen_ms_per_1s_clip": _median_ms(lambda: single_core.listen(one, SAMPLE_RATE), timing_repeats),
                  "features_ms": _median_ms(lambda: binaural_features(one), timing_repeats),
                  "onnx_ms": _median_ms(lambda: single_core.infer_features(feats), timing_repeats),
                  "baseline_gcc_phat_ms": _median_ms(lambda: gcc_phat_itd_s(one, SAMPLE_RATE), timing_repeats),
                  "threads": 1, "repeats": timing_repeats}
    timing["ratio_listen_to_baseline"] = timing["listen_ms_per_1s_clip"] / max(timing["baseline_gcc_phat_ms"], 1e-9)

    return {"split": {"single": n_single, "two_source": n_mixtures, "seed": data.TEST_SEED,
                      "rooms": list(data.room_ids())},
            "model": {"path": str(listener.model_path), "providers": listener.providers, **model_metrics},
            "model_two_source_target": mixture_metrics,
            "calibration": listener.calibration_record,
            "heads": run_heads(listener, n_heads, singles, heard, progress) if n_heads else {},
            "measured_room": run_measured_room(listener, n_measured) if n_measured else {},
            "model_by_room": by_room, "model_by_source": by_source,
            "qa": qa_acc,
            "baseline_gcc_phat_ild": baseline,
            "timing": timing,
            "bat_reference": {"mae_deg": 17.9, "er20": 0.239, "der": 0.325, "reasoning": 0.769,
                              "note": "BAT (Zheng et al. 2024) on SpatialSoundQA: AudioSet sources, "
                                      "Matterport3D rooms - harder, more varied data than ours"},
            "dspast_reference": {"mae_deg": 14.4, "note": "DSpAST on the same SpatialSoundQA data as BAT"}}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Spatial-AST listener bench (held-out split)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--single", type=int, default=400)
    p.add_argument("--mixtures", type=int, default=200)
    p.add_argument("--model", default=None)
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--heads-n", type=int, default=300, help="held-out clips per head (0: skip)")
    p.add_argument("--measured-n", type=int, default=24, help="measured-room clips per direction (0: skip)")
    p.add_argument("--calibrate", action="store_true", help="fit the confidence calibration and write it")
    p.add_argument("--valid-n", type=int, default=600, help="validation clips per training head (--calibrate)")
    p.add_argument("--trained-heads", nargs="+", default=None,
                   help="(--calibrate) the heads the model was trained on, recorded with the calibration")
    p.add_argument("--out", default=None, help="also write the JSON here")
    a = p.parse_args(argv)
    if a.calibrate:
        print(json.dumps(calibrate(a.model, a.valid_n, progress=not a.json, trained_heads=a.trained_heads),
                         indent=1))
        return 0
    result = run_bench(a.single, a.mixtures, a.model, a.repeats, progress=not a.json,
                       n_heads=a.heads_n, n_measured=a.measured_n)
    text = json.dumps(result, indent=None if a.json else 1)
    print(text)
    if a.out:
        from pathlib import Path
        from stase.core.audio_io import atomic_write_text
        atomic_write_text(Path(a.out), json.dumps(result, indent=1))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
