"""Bench of the Spatial-AST listener on the held-out split, beside a classical baseline.

    python -m bench.listener --json [--single 400] [--mixtures 200] [--model PATH]

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

Classical baseline on the same clips: GCC-PHAT ITD -> lateral angle (inverse Woodworth), a front
guess (azimuth = lateral, elevation 0), and the broadband ILD's sign.  Timing: median ms per 1 s
clip on one CPU core (features + ONNX), with the baseline's time in the same run as the peer.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

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

def _median_ms(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return float(np.median(times))


def run_bench(n_single: int, n_mixtures: int, model=None, timing_repeats: int = 30, progress=True) -> dict:
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
        heard += listener.listen_many([(c.audio, SAMPLE_RATE) for c in singles[start:start + 32]])
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
            "model_by_room": by_room, "model_by_source": by_source,
            "qa": qa_acc,
            "baseline_gcc_phat_ild": baseline,
            "timing": timing,
            "bat_reference": {"mae_deg": 17.9, "er20": 0.239, "der": 0.325, "reasoning": 0.769,
                              "note": "BAT (Zheng et al. 2024) on SpatialSoundQA: AudioSet sources, "
                                      "Matterport3D rooms - harder, more varied data than ours"}}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Spatial-AST listener bench (held-out split)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--single", type=int, default=400)
    p.add_argument("--mixtures", type=int, default=200)
    p.add_argument("--model", default=None)
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--out", default=None, help="also write the JSON here")
    a = p.parse_args(argv)
    result = run_bench(a.single, a.mixtures, a.model, a.repeats, progress=not a.json)
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
