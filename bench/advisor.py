"""Advisor benchmark: can the advice undo random gain offsets, and how fast is the analysis?

Usage::

    python -m bench.advisor --json          # one JSON object on stdout
    python -m bench.advisor --json --quick  # fewer problems, shorter stems
    python -m bench.advisor --json --realistic-only --realistic tuning --skip-speed
                                            # the realistic split alone, tuning pieces only

Realistic split
---------------
Music nobody here wrote, rendered once into the user cache by a setup step
(``python -m bench.realistic_multitracks build``: music21-corpus chorales and string quartets,
one FluidSynth stem per part, the scores' dynamics as the reference balance;
``python -m bench.lmms_multitracks build``: LMMS demo projects per track, the authors' faders as
the reference).  Pieces are split by work into ``tuning`` and ``heldout``
(:func:`bench.realistic_multitracks.split_of`); priors are derived on ``tuning`` only, and
``--realistic tuning`` runs that split alone so held-out numbers need not be seen while tuning.
Without the cache the split reports ``missing`` and the rest of the bench runs as before.

Problem sets
------------
Balanced multitracks: the advisor's synthetic fixtures (:mod:`stase.agent.advisor.fixtures`, balanced
to the documented priors with a 0.75 dB RMS jitter standing for the spread of real balanced
mixes) and, the stem generator's templates as generated.  Each
problem offsets 1-3 random stems by a gain of random sign and magnitude 3..9 dB, then the whole
set by a random -6..+6 dB (a differently mastered version: it must not matter).

Modes
-----
* ``differential_same`` - reference = the balanced version of the same stems (aligned method);
* ``differential_other`` - reference = the balanced stems of another seed (another "song" with
  the same instruments: the loudness method); fixtures only;
* ``prior`` - no reference; ``baseline`` - naive equal loudness for every track.

Metrics (stated on relative levels)
-----------------------------------
Only the balance can be undone - a common change of every stem is not an error.  After applying
the advice ``g`` to a problem with offsets ``o``, the error of track i is ``e_i = o_i + g_i``;
the residual is ``|e_i - mean(e)|`` over all tracks of the problem (offset or not), reported as
median and p90 in dB (``residual_offset_tracks_*``: the offset tracks alone); ``residual_before``
is the same with ``g = 0``.  Direction accuracy counts,
over offset tracks whose relative offset ``o_i - mean(o)`` is at least 1 dB, how often
``g_i - mean(g)`` has the opposite sign.  For the tracks that were not offset:
``unmoved_advice_over_2db_rate`` is the share told to move by more than 2 dB (``|g_i| > 2``, the
advice as the user reads it) and ``unmoved_relative_over_2db_rate`` the share whose residual is
over 2 dB (the same on relative levels).  With four tracks of which three were moved, nothing
tells which one was not, so the first has a floor even for a perfect reference;
``by_moved_tracks`` gives both rates (and the residuals, direction) per number of moved tracks,
so the identifiable problems (one or two of four moved) can be read apart from that floor, and
``differential_same``'s rates per number are the floor of the anchor rule itself (exact offsets).

Speed
-----
``analysis_8x180s_s``: median wall time of :func:`stase.agent.advisor.analysis.analyse_stems` on eight
3-minute 48 kHz fixture stems, with ``pyloudnorm_8x180s_s`` (integrated loudness alone, by
``pyloudnorm.Meter``) in the same process as the peer; ``loadavg`` says how busy the host was.
``analysis_8x180s_cpu_s`` is the CPU time of the process (all threads): on an idle 2-core host
the wall time is at most this, so it is the load-independent number to hold against the goal.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import statistics
import sys
import time

import numpy as np

RATE = 48_000
#: advice larger than this (dB) for a track that was not moved counts against the advisor.
UNMOVED_ADVICE_DB = 2.0


def _offset_problem(tracks, rng):
    k = int(rng.integers(1, min(3, len(tracks) - 1) + 1))
    chosen = rng.choice(len(tracks), size=k, replace=False)
    offsets = np.zeros(len(tracks))
    offsets[chosen] = rng.uniform(3.0, 9.0, k) * rng.choice([-1.0, 1.0], k)
    return offsets, float(rng.uniform(-6.0, 6.0))


def _score(offsets, gains):
    e = offsets + gains
    residual = np.abs(e - e.mean())
    before = np.abs(offsets - offsets.mean())
    rel_offset = offsets - offsets.mean()
    rel_gain = gains - gains.mean()
    moved = (offsets != 0) & (np.abs(rel_offset) >= 1.0)
    correct = np.sign(rel_gain[moved]) == -np.sign(rel_offset[moved])
    # the advice a user reads for a track nobody moved (not relative: "raise Viola by 4 dB"):
    # the advisor's own gains, which already carry its own common offset (its anchor)
    unmoved_advice = np.abs(gains[offsets == 0])
    return (residual, before, correct, residual[offsets != 0], unmoved_advice, residual[offsets == 0],
            int(np.count_nonzero(offsets)))


def _by_moved_tracks(records) -> dict:
    """The unmoved-track rates (and residuals) per number of moved tracks in the problem.

    With n tracks of which k moved, the unmoved ones are identifiable (they form the largest
    group that agrees) for k < n / 2; at k = n / 2 a group of the moved ones can tie with them,
    and beyond, nothing tells which track stayed, so the "as read" rate has a floor there.
    """
    out = {}
    for k in sorted({r[6] for r in records}):
        group = [r for r in records if r[6] == k]
        unmoved = np.concatenate([r[4] for r in group])
        relative = np.concatenate([r[5] for r in group])
        residual = np.concatenate([r[0] for r in group])
        correct = np.concatenate([r[2] for r in group])
        out[str(k)] = {
            "problems": len(group), "unmoved_tracks": int(unmoved.size),
            "unmoved_advice_over_2db_rate": round(float(np.mean(unmoved > UNMOVED_ADVICE_DB)), 4)
            if unmoved.size else None,
            "unmoved_relative_over_2db_rate": round(float(np.mean(relative > UNMOVED_ADVICE_DB)), 4)
            if relative.size else None,
            "residual_median_db": round(float(np.median(residual)), 3),
            "residual_p90_db": round(float(np.percentile(residual, 90)), 3),
            "direction_accuracy": round(float(np.mean(correct)), 4) if correct.size else None}
    return out


def _summarise(records):
    residual = np.concatenate([r[0] for r in records]) if records else np.zeros(0)
    before = np.concatenate([r[1] for r in records]) if records else np.zeros(0)
    correct = np.concatenate([r[2] for r in records]) if records else np.zeros(0, bool)
    if residual.size == 0:
        return {}
    moved = np.concatenate([r[3] for r in records])
    unmoved = np.concatenate([r[4] for r in records])
    unmoved_relative = np.concatenate([r[5] for r in records])
    return {"residual_median_db": round(float(np.median(residual)), 3),
            "residual_p90_db": round(float(np.percentile(residual, 90)), 3),
            "residual_before_median_db": round(float(np.median(before)), 3),
            "residual_before_p90_db": round(float(np.percentile(before, 90)), 3),
            "residual_offset_tracks_median_db": round(float(np.median(moved)), 3),
            "residual_offset_tracks_p90_db": round(float(np.percentile(moved, 90)), 3),
            "direction_accuracy": round(float(np.mean(correct)), 4) if correct.size else None,
            "unmoved_advice_over_2db_rate": round(float(np.mean(unmoved > UNMOVED_ADVICE_DB)), 4)
            if unmoved.size else None,
            "unmoved_relative_over_2db_rate": round(float(np.mean(unmoved_relative > UNMOVED_ADVICE_DB)), 4)
            if unmoved_relative.size else None,
            "problems": len(records), "track_errors": int(residual.size),
            "by_moved_tracks": _by_moved_tracks(records)}


def _stem_sets(quick: bool):
    from stase.agent.advisor.fixtures import balanced_fixture
    duration = 12.0 if quick else 30.0
    seeds = (1, 2) if quick else (1, 2, 3, 4)
    sets = []
    for n in (5, 8):
        for seed in seeds:
            stems, roles = balanced_fixture(n, duration, RATE, seed=seed, jitter_db=0.75)
            other, _ = balanced_fixture(n, duration, RATE, seed=seed + 100, jitter_db=0.75)
            sets.append({"name": f"fixture{n}_seed{seed}", "kind": "fixture", "stems": stems,
                         "roles": roles, "other": other, "genre": "pop"})
    from stase.agent.music import generate_stems
    for template in (("rock_band",) if quick else ("rock_band", "studio_recording", "jazz_ensemble")):
        try:
            stems = generate_stems(template, RATE, 0)
        except Exception as exc:  # noqa: BLE001 - report, do not fail the whole bench
            sets.append({"name": f"generator_{template}", "error": repr(exc)})
            continue
        sets.append({"name": f"generator_{template}", "kind": "generator", "stems": stems,
                     "roles": None, "other": None, "genre": None, "template": template})
    return sets


def bench_accuracy(quick: bool = False, problems_per_set: int | None = None, seed: int = 0) -> dict:
    from stase.agent.advisor.advice import advise_analysis
    from stase.agent.advisor.analysis import analyse_stems
    from stase.agent.advisor.priors import equal_loudness_gains
    from stase.core.plan import Plan
    problems_per_set = problems_per_set or (6 if quick else 15)
    rng = np.random.default_rng(seed)
    records = {}
    per_set = {}
    for s in _stem_sets(quick):
        if "error" in s:
            per_set[s["name"]] = {"error": s["error"]}
            continue
        tracks = list(s["stems"])
        reference = analyse_stems(s["stems"], RATE)
        other = analyse_stems(s["other"], RATE) if s["other"] is not None else None
        plan = Plan(template=s.get("template"), music={"template": s["template"]}) if s.get("template") else None
        # prior advice on the balanced set itself: how far its balance is from the priors
        as_is = advise_analysis(reference, None, plan, roles=s["roles"], genre=s["genre"])
        g0 = np.array([{t["track"]: t["gain_db"] for t in as_is["tracks"]}[t] for t in tracks])
        seconds = len(next(iter(s["stems"].values()))) / RATE
        per_set[s["name"]] = {"tracks": len(tracks), "seconds": round(seconds, 1),
                              "prior_residual_on_balanced_median_db":
                                  round(float(np.median(np.abs(g0 - g0.mean()))), 2)}
        for _ in range(problems_per_set):
            offsets, common = _offset_problem(tracks, rng)
            current_stems = {t: s["stems"][t] * np.float32(10.0 ** ((o + common) / 20.0))
                             for t, o in zip(tracks, offsets)}
            current = analyse_stems(current_stems, RATE)
            modes = {"differential_same": reference, "prior": None}
            if other is not None:
                modes["differential_other"] = other
            for mode, ref in modes.items():
                result = advise_analysis(current, ref, plan, roles=s["roles"], reference_roles=s["roles"],
                                         genre=s["genre"])
                by_track = {t["track"]: t["gain_db"] for t in result["tracks"]}
                gains = np.array([by_track.get(t, 0.0) for t in tracks])
                records.setdefault((mode, s["kind"]), []).append(_score(offsets, gains))
            base = equal_loudness_gains(current)
            gains = np.array([base.get(t, 0.0) for t in tracks])
            records.setdefault(("baseline_equal_loudness", s["kind"]), []).append(_score(offsets, gains))
    out = {f"{mode}[{kind}]": _summarise(r) for (mode, kind), r in sorted(records.items())}
    out["sets"] = per_set
    return out


def _piece_rng(piece: str, seed: int) -> np.random.Generator:
    """A generator per piece, so adding a piece to the cache leaves the others' problems alone."""
    digest = hashlib.sha256(piece.encode("utf-8")).digest()
    return np.random.default_rng([int.from_bytes(digest[:8], "big"), seed])


def bench_realistic(splits=("tuning", "heldout"), quick: bool = False,
                    problems_per_piece: int | None = None, seed: int = 0) -> dict:
    """Offset problems on the realistic multitracks (:mod:`bench.realistic_multitracks`: music21
    scores rendered per part; :mod:`bench.lmms_multitracks`: LMMS projects rendered per track).

    Per split, per piece: the prior advice on the balanced reference itself (``balanced``: what
    the priors say about the score's own balance, per track), then problems as for the other
    sets, in differential mode against the same stems (``differential_same``), against another
    piece of the same ensemble and split (``differential_other``, the loudness method), in prior
    mode and for the equal-loudness baseline; ``prior_error_on_balanced``: per ensemble and part,
    the prior's own error on the score's balance (part level minus its target, each piece's
    common offset removed; ``learned_share`` = share of pieces where the learned part prior
    gave the target, :mod:`stase.agent.advisor.learned_prior`).  Keys ``<mode>[realistic_<split>]`` (every piece),
    ``<mode>[realistic_<split>/scores]`` (the music21 renders), ``.../lmms`` (the LMMS projects:
    authors' faders) and ``<mode>[realistic_<split>/<ensemble>]``.
    """
    from stase.agent.advisor.advice import advise_analysis
    from stase.agent.advisor.analysis import analyse_stems
    from stase.agent.advisor.priors import equal_loudness_gains, prior_gains, resolve_roles
    from bench.realistic_multitracks import load_sets, set_folder
    problems_per_piece = problems_per_piece or (3 if quick else 8)
    out: dict = {}
    records: dict = {}
    balanced: dict = {}
    prior_errors: dict = {}
    for split in splits:
        pieces = load_sets(split, limit=6 if quick else None)
        if not pieces:
            out[f"realistic_{split}"] = {"missing": f"no rendered pieces under {set_folder()}; run "
                                                    "python -m bench.realistic_multitracks build"}
            continue
        rate = pieces[0]["rate"]
        analyses = [analyse_stems(p["stems"], rate) for p in pieces]
        by_ensemble: dict = {}
        for i, p in enumerate(pieces):
            by_ensemble.setdefault(p["ensemble"], []).append(i)
        for i, p in enumerate(pieces):
            tracks = list(p["tracks"])
            source = "lmms" if p["ensemble"] == "lmms_project" else "scores"
            kinds = (f"realistic_{split}", f"realistic_{split}/{source}", f"realistic_{split}/{p['ensemble']}")
            reference = analyses[i]
            # another piece with the same track names (LMMS projects have their own names: none)
            peers = [j for j in by_ensemble[p["ensemble"]] if j == i or pieces[j]["tracks"] == p["tracks"]]
            other = analyses[peers[(peers.index(i) + 1) % len(peers)]] if len(peers) > 1 else None
            as_is = advise_analysis(reference, None)
            for t in as_is["tracks"]:
                # per part for the scores; LMMS tracks have names of their own: one pool per split
                name = "every track" if source == "lmms" else t["track"]
                balanced.setdefault(f"{split}/{p['ensemble']}", {}).setdefault(name, []).append(t["gain_db"])
            if source == "scores":
                # the prior's own error on the reference balance: part level - its target, each
                # piece's common offset removed (what drives the unmoved-part rate)
                _, details = prior_gains(reference, resolve_roles(tracks))
                if all(d.get("kind") == "ensemble" for d in details.values()):
                    e = np.array([reference.stems[t].integrated_lufs - details[t]["target_lu"] for t in tracks])
                    e -= e.mean()
                    for t, value in zip(tracks, e):
                        d = details[t]
                        prior_errors.setdefault(f"{split}/{p['ensemble']}", {}).setdefault(
                            d["part"], []).append((float(value), d.get("target_from", "fixed")))
            rng = _piece_rng(p["piece"], seed)
            for _ in range(problems_per_piece):
                offsets, common = _offset_problem(tracks, rng)
                current = analyse_stems({t: p["stems"][t] * np.float32(10.0 ** ((o + common) / 20.0))
                                         for t, o in zip(tracks, offsets)}, rate)
                modes = {"differential_same": reference, "prior": None}
                if other is not None:
                    modes["differential_other"] = other
                for mode, ref in modes.items():
                    result = advise_analysis(current, ref)
                    by_track = {t["track"]: t["gain_db"] for t in result["tracks"]}
                    score = _score(offsets, np.array([by_track.get(t, 0.0) for t in tracks]))
                    for kind in kinds:
                        records.setdefault((mode, kind), []).append(score)
                base = equal_loudness_gains(current)
                score = _score(offsets, np.array([base.get(t, 0.0) for t in tracks]))
                for kind in kinds:
                    records.setdefault(("baseline_equal_loudness", kind), []).append(score)
        out[f"realistic_{split}"] = {"pieces": len(pieces), "rate": rate,
                                     "ensembles": {e: len(v) for e, v in by_ensemble.items()}}
    for (mode, kind), r in sorted(records.items()):
        out[f"{mode}[{kind}]"] = _summarise(r)
    # what the priors say about the score's own balance: median advice and share over 2 dB
    out["prior_on_balanced"] = {
        key: {t: {"median_db": round(float(np.median(g)), 2), "median_abs_db": round(float(np.median(np.abs(g))), 2),
                  "over_2db_share": round(float(np.mean(np.abs(g) > UNMOVED_ADVICE_DB)), 3)}
              for t, g in tracks.items()} for key, tracks in sorted(balanced.items())}
    out["prior_error_on_balanced"] = {
        key: {part: {"median_abs_lu": round(float(np.median(np.abs([v for v, _ in values]))), 3),
                     "over_2lu_share": round(float(np.mean(np.abs([v for v, _ in values]) > 2.0)), 3),
                     "learned_share": round(float(np.mean([w == "learned" for _, w in values])), 3),
                     "pieces": len(values)}
              for part, values in sorted(parts.items())} for key, parts in sorted(prior_errors.items())}
    return out


def bench_speed(repeats: int = 3) -> dict:
    import pyloudnorm

    from stase.agent.advisor.analysis import analyse_stems
    from stase.agent.advisor.fixtures import fixture_stems
    t0 = time.perf_counter()
    stems, _ = fixture_stems(8, 180.0, RATE, seed=11)
    generate_s = time.perf_counter() - t0
    ours, ours_cpu, peer = [], [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        analyse_stems(stems, RATE)
        ours.append(time.perf_counter() - t0)
        ours_cpu.append(time.process_time() - c0)
        t0 = time.perf_counter()
        meter = pyloudnorm.Meter(RATE)
        for x in stems.values():
            meter.integrated_loudness(x.astype(np.float64))
        peer.append(time.perf_counter() - t0)
    a, p = statistics.median(ours), statistics.median(peer)
    return {"analysis_8x180s_s": round(a, 3), "analysis_8x180s_cpu_s": round(statistics.median(ours_cpu), 3),
            "pyloudnorm_8x180s_s": round(p, 3),
            "analysis_vs_pyloudnorm_ratio": round(a / p, 3), "fixture_generation_s": round(generate_s, 2),
            "goal_analysis_s": 5.0, "repeats": repeats}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--quick", action="store_true", help="fewer, shorter problems")
    parser.add_argument("--skip-speed", action="store_true", help="skip the 8 x 3 min timing")
    parser.add_argument("--problems", type=int, default=None, help="problems per stem set")
    parser.add_argument("--realistic", choices=("both", "tuning", "heldout", "none"), default="both",
                        help="which split of the rendered score multitracks to run (tune on 'tuning' only)")
    parser.add_argument("--realistic-only", action="store_true",
                        help="skip the fixtures and the generator's stems")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    result = {"host": {"python": platform.python_version(), "cpus": os.cpu_count(),
                       "loadavg": [round(v, 2) for v in os.getloadavg()]}}
    result["accuracy"] = {} if args.realistic_only else bench_accuracy(args.quick, args.problems)
    if args.realistic != "none":
        splits = ("tuning", "heldout") if args.realistic == "both" else (args.realistic,)
        result["realistic"] = bench_realistic(splits, args.quick, args.problems)
    if not args.skip_speed:
        result["speed"] = bench_speed(2 if args.quick else 3)
    result["goals"] = {"differential_residual_median_db": 0.5, "prior_residual_median_db": 2.0,
                       "direction_accuracy": 0.95, "analysis_8x180s_s": 5.0,
                       "realistic_prior_residual_median_db": 1.5, "realistic_prior_residual_p90_db": 3.0,
                       "unmoved_advice_over_2db_rate": 0.10}
    result["wall_s"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
