"""Fit the learned part prior (agent/advisor/part_prior.json) on the TUNING split only.

Usage (from the repo root, after ``python -m bench.realistic_multitracks build``)::

    python tools/fit_part_prior.py --rows /tmp/rows.json       # cache the feature table there
    python tools/fit_part_prior.py --rows /tmp/rows.json --write   # and write the coefficients

What it does, per ensemble (choir, string quartet):

1. rows = one per part of each tuning piece: target = the part's integrated loudness minus the
   piece's mean part (the score's own balance), features = :func:`learned_prior.relative_features`
   (gain-invariant features of the part minus their ensemble mean, and the top-register flag);
2. leave-one-work-out cross-validation (a quartet with all its movements, a cantata's chorales
   out at once) of a ridge regression with one intercept per part
   (:func:`learned_prior.ridge_fit`) over standardised features; the features are chosen by
   greedy forward selection (at most :data:`MAX_FEATURES`) and the penalty from
   :data:`ALPHAS`, both by the CV error of the prior itself (RMS over rows of the predicted minus
   the actual relative level, each piece's common offset removed: the anchor removes it too);
   a model is adopted only if, with the whole selection repeated inside an outer
   leave-one-work-out loop (nested CV: no selection bias), it beats the intercept-only model
   (the fixed per-part targets) by :data:`MIN_GAIN_LU` RMS;
3. the replica of the bench's prior mode (same problems as ``bench.advisor``: per piece the
   offsets of :func:`bench.advisor._offset_problem` from :func:`bench.advisor._piece_rng`; the
   loudness shifted by the offsets - exact for integrated loudness - and the gain-invariant
   features unchanged) scored with :func:`bench.advisor._score`, for the fixed targets and for
   the CV predictions: the unmoved-part rate each would give;
4. the final model is refitted on every tuning row; tolerance per part = 80th percentile of the
   CV |error| (at least 1.0 LU, as the fixed targets), confidence = share within 1 LU (at most 0.8).

The held-out split is never read here.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stase.agent.advisor import learned_prior as lp  # noqa: E402
from stase.agent.advisor.ensembles import ENSEMBLE_ORDER, PART_TARGETS, part_gains  # noqa: E402

ALPHAS = (0.1, 1.0, 3.0, 10.0, 30.0)
#: chosen on the tuning split's replica among 2, 3, 4, 6, 8 (unmoved-part rate; fewest terms on a tie)
MAX_FEATURES = 2
MIN_GAIN_LU = 0.05
TOLERANCE_PERCENTILE = 80
MIN_TOLERANCE_LU = 1.0
AGREEMENT_LU = 1.0
MAX_CONFIDENCE = 0.8


def feature_names(ensemble):
    """Candidate model features: each relative feature shared by the parts, then per part."""
    return list(lp.RELATIVE_FEATURE_NAMES) + [f"{n}@{p}" for p in ENSEMBLE_ORDER[ensemble]
                                               for n in lp.RELATIVE_FEATURE_NAMES]


def table(rows, ensemble):
    """Arrays of one ensemble: piece index, work index, part index, target, relative features."""
    by_piece = {}
    for r in rows:
        if r["ensemble"] == ensemble:
            by_piece.setdefault(r["piece"], []).append(r)
    order = ENSEMBLE_ORDER[ensemble]
    pieces, works, parts, target, features, loudness, tracks = [], [], [], [], [], [], []
    work_ids = {}
    for i, (piece, members) in enumerate(sorted(by_piece.items())):
        rel = lp.relative_features({m["track"]: m["features"] for m in members})
        centre = np.mean([m["loudness_lufs"] for m in members])
        for m in members:
            pieces.append(i)
            works.append(work_ids.setdefault(m["work"], len(work_ids)))
            parts.append(order.index(m["part"]))
            target.append(m["loudness_lufs"] - centre)
            loudness.append(m["loudness_lufs"])
            features.append([lp.feature_value(n, m["part"], rel[m["track"]]) for n in feature_names(ensemble)])
            tracks.append((piece, m["track"]))
    return {"piece": np.array(pieces), "work": np.array(works), "part": np.array(parts),
            "target": np.array(target), "x": np.array(features), "loudness": np.array(loudness),
            "tracks": tracks, "n_parts": len(order), "pieces": sorted(by_piece),
            "names": feature_names(ensemble)}


def fit(t, rows_mask, columns, alpha):
    """Standardise on the rows, fit, return (mean, scale, intercepts, coef)."""
    x = t["x"][rows_mask][:, columns]
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale = np.where(scale > 1e-12, scale, 1.0)
    intercepts, coef = lp.ridge_fit((x - mean) / scale, t["part"][rows_mask], t["target"][rows_mask],
                                    alpha, t["n_parts"])
    return mean, scale, intercepts, coef


def predict(t, mask, columns, model):
    mean, scale, intercepts, coef = model
    return intercepts[t["part"][mask]] + ((t["x"][mask][:, columns] - mean) / scale) @ coef


def cv_predictions(t, columns, alpha):
    out = np.zeros(len(t["target"]))
    for w in np.unique(t["work"]):
        test = t["work"] == w
        out[test] = predict(t, test, columns, fit(t, ~test, columns, alpha))
    return out


def centred_error(t, prediction):
    e = t["target"] - prediction
    for p in np.unique(t["piece"]):
        m = t["piece"] == p
        e[m] -= e[m].mean()
    return e


def error_summary(e):
    a = np.abs(e)
    return {"rms_lu": round(float(np.sqrt(np.mean(e ** 2))), 3), "median_abs_lu": round(float(np.median(a)), 3),
            "p90_abs_lu": round(float(np.percentile(a, 90)), 3), "over_2lu_share": round(float(np.mean(a > 2.0)), 3)}


def cv_loss(t, columns, alpha, criterion):
    e = centred_error(t, cv_predictions(t, columns, alpha))
    return float(np.sqrt(np.mean(e ** 2))) if criterion == "rms" else float(np.mean(np.abs(e)))


def select(t, criterion="rms", max_features=MAX_FEATURES):
    """Greedy forward selection of features and the penalty by LOWO CV error (RMS or mean |e|)."""
    best = (cv_loss(t, [], 0.0, criterion), [], 0.0)
    history = [{"features": [], "alpha": 0.0, f"cv_{criterion}_lu": round(best[0], 3)}]
    chosen = []
    while len(chosen) < max_features:
        step = None
        for j in range(t["x"].shape[1]):
            if j in chosen:
                continue
            for alpha in ALPHAS:
                rms = cv_loss(t, chosen + [j], alpha, criterion)
                if step is None or rms < step[0]:
                    step = (rms, chosen + [j], alpha)
        if step is None or step[0] > best[0] - 1e-3:
            break
        best, chosen = step, step[1]
        history.append({"features": [t["names"][j] for j in chosen], "alpha": best[2],
                        f"cv_{criterion}_lu": round(best[0], 3)})
    return best, history


def nested_cv_predictions(t, criterion, max_features):
    """Outer leave-one-work-out around the whole selection: an estimate free of selection bias."""
    out = np.zeros(len(t["target"]))
    for w in np.unique(t["work"]):
        test = t["work"] == w
        inner = subset(t, ~test)
        (_, columns, alpha), _ = select(inner, criterion, max_features)
        out[test] = predict(t, test, columns, fit(t, ~test, columns, alpha))
    return out


def subset(t, mask):
    """The table restricted to some rows (piece and work indices kept)."""
    out = dict(t)
    for key in ("piece", "work", "part", "target", "x", "loudness"):
        out[key] = t[key][mask]
    return out


def replica(t, predictions, tolerances, seed=0, problems=8):
    """The bench's prior mode on these pieces with the given per-row targets (see the docstring)."""
    from bench.advisor import _by_moved_tracks, _offset_problem, _piece_rng, _score, _summarise
    records = []
    for i, piece in enumerate(t["pieces"]):
        m = t["piece"] == i
        rng = _piece_rng(piece, seed)
        loud = t["loudness"][m]
        for _ in range(problems):
            offsets, common = _offset_problem(list(range(int(m.sum()))), rng)
            gains, *_ = part_gains(loud + offsets + common, predictions[m], tolerances[m])
            records.append(_score(offsets, np.round(gains, 1)))
    s = _summarise(records)
    keep = ("residual_median_db", "residual_p90_db", "direction_accuracy", "unmoved_advice_over_2db_rate",
            "unmoved_relative_over_2db_rate")
    return {**{k: s[k] for k in keep},
            "by_moved_unmoved_over_2db": {k: v["unmoved_advice_over_2db_rate"]
                                          for k, v in _by_moved_tracks(records).items()}}


def tolerance_of(errors, parts, n_parts):
    return np.array([max(MIN_TOLERANCE_LU, float(np.percentile(np.abs(errors[parts == j]), TOLERANCE_PERCENTILE)))
                     for j in range(n_parts)])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", help="JSON cache of the tuning feature table (made if missing)")
    parser.add_argument("--criterion", choices=("rms", "mae"), default="rms",
                        help="CV loss that chooses the features and the penalty")
    parser.add_argument("--max-features", type=int, default=MAX_FEATURES)
    parser.add_argument("--write", action="store_true", help="write agent/advisor/part_prior.json")
    args = parser.parse_args(argv)
    if args.rows and Path(args.rows).is_file():
        rows = json.loads(Path(args.rows).read_text())
    else:
        from bench.realistic_multitracks import part_feature_rows
        rows = part_feature_rows("tuning")
        if args.rows:
            Path(args.rows).write_text(json.dumps(rows))
    assert all(r["piece"] for r in rows)
    report, models = {}, {}
    for ensemble in ("choir", "string_quartet"):
        t = table(rows, ensemble)
        if not len(t["target"]):
            continue
        order = ENSEMBLE_ORDER[ensemble]
        fixed = np.array([PART_TARGETS[ensemble][p].target_lu for p in order])[t["part"]]
        fixed_tol = np.array([PART_TARGETS[ensemble][p].tolerance_lu for p in order])[t["part"]]
        intercept_only = cv_predictions(t, [], 0.0)
        (loss, columns, alpha), history = select(t, args.criterion, args.max_features)
        rms = cv_loss(t, columns, alpha, "rms")
        learned = cv_predictions(t, columns, alpha)
        e_learned = centred_error(t, learned)
        cv_tol = tolerance_of(e_learned, t["part"], len(order))
        per_part = {p: {"fixed": error_summary(centred_error(t, fixed)[t["part"] == j]),
                        "learned_cv": error_summary(e_learned[t["part"] == j])} for j, p in enumerate(order)}
        base_rms = float(np.sqrt(np.mean(centred_error(t, intercept_only) ** 2)))
        nested = nested_cv_predictions(t, args.criterion, args.max_features)
        e_nested = centred_error(t, nested)
        nested_rms = float(np.sqrt(np.mean(e_nested ** 2))) if columns else base_rms
        # adopted only if it beats the fixed per-part targets once the selection is inside the CV
        adopted = bool(columns) and nested_rms < base_rms - MIN_GAIN_LU
        # replica: fixed targets (as shipped) vs the CV predictions
        report[ensemble] = {
            "rows": int(len(t["target"])), "pieces": len(t["pieces"]), "works": int(len(np.unique(t["work"]))),
            "prior_error_fixed_targets": error_summary(centred_error(t, fixed)),
            "prior_error_intercepts_cv": error_summary(centred_error(t, intercept_only)),
            "prior_error_learned_cv": error_summary(e_learned),
            "per_part": per_part, "selection": history, "adopted": adopted,
            "replica_fixed": replica(t, fixed, fixed_tol),
            "replica_learned_cv": replica(t, learned, cv_tol[t["part"]]),
            "prior_error_learned_nested_cv": error_summary(e_nested),
            "replica_learned_nested_cv": replica(t, nested, tolerance_of(e_nested, t["part"], len(order))[t["part"]]),
            "criterion": args.criterion, "max_features": args.max_features}
        if adopted:
            mean, scale, intercepts, coef = fit(t, np.ones(len(t["target"]), bool), columns, alpha)
            within = np.abs(e_learned) <= AGREEMENT_LU
            models[ensemble] = {
                "features": [t["names"][j] for j in columns],
                "mean": [round(float(v), 6) for v in mean], "scale": [round(float(v), 6) for v in scale],
                "coef_lu": [round(float(v), 4) for v in coef],
                "intercepts_lu": {p: round(float(intercepts[j]), 3) for j, p in enumerate(order)},
                "tolerance_lu": {p: round(float(cv_tol[j]), 2) for j, p in enumerate(order)},
                "confidence": {p: round(min(MAX_CONFIDENCE, float(np.mean(within[t["part"] == j]))), 2)
                               for j, p in enumerate(order)},
                "alpha": alpha, "rows": int(len(t["target"])), "pieces": len(t["pieces"]),
                "min_seconds": float(min(r["seconds"] for r in rows if r["ensemble"] == ensemble)),
                # rounded outwards, so every fitted row stays inside its own range
                "feature_range": [[float(np.floor(v * 1e6) / 1e6) for v in t["x"][:, columns].min(axis=0)],
                                  [float(np.ceil(v * 1e6) / 1e6) for v in t["x"][:, columns].max(axis=0)]],
                "cv_error_nested_lu": round(nested_rms, 3),
                "cv_error_lu": round(rms, 3), "cv_error_intercepts_only_lu": round(base_rms, 3)}
    print(json.dumps(report, indent=1))
    if args.write:
        from stase.core.audio_io import atomic_write_text
        data = {"about": ("Learned part prior of stase.agent.advisor.learned_prior: ridge regression per "
                          "ensemble, target_lu = intercept[part] + sum coef * (feature - mean) / scale, "
                          "fitted by tools/fit_part_prior.py on the TUNING split of bench/realistic_multitracks "
                          "(music21 scores rendered by FluidSynth, the scores' dynamics as the reference); "
                          "features chosen and penalty set by leave-one-work-out CV; cv_error_lu = RMS "
                          "of the predicted minus the actual relative level (LU), each piece's common "
                          "offset removed."),
                "models": models}
        check = lp.check_model_data(data, lp.MODEL_FILE)
        atomic_write_text(lp.MODEL_FILE, json.dumps(data, indent=1) + "\n")
        print(f"wrote {lp.MODEL_FILE} ({', '.join(check) or 'no model adopted'})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
