"""Realistic multitracks for measuring the advisor: scores nobody here wrote, one stem per part.

Usage (a setup/bench step, never run by stase itself)::

    python -m bench.realistic_multitracks build            # render what is missing into the cache
    python -m bench.realistic_multitracks build --limit 4  # a few pieces only
    python -m bench.realistic_multitracks list             # what the cache holds, per split
    python -m bench.realistic_multitracks derive           # the advisor's part targets (tuning split)

Sources
-------
The music21 corpus (PyPI ``music21``, BSD licence; the scores ship inside the package, nothing is
downloaded): four-part Bach chorales (Soprano/Alto/Tenor/Bass) and the Haydn, Mozart and
Beethoven string quartet movements.  Each part is its own stem, rendered by FluidSynth from the
General MIDI SoundFont through :meth:`stase.agent.music.sampled.FluidSynthVoices.render_file` (its
wall-clock limit and exact sample count are the render's time and size guard): voices as GM 53
Choir Aahs, violins GM 41 Violin, viola GM 42 Viola, cello GM 43 Cello.  Note velocities are
music21's realisation of the score's own dynamics (``p``, ``f``, hairpins' end points), so the
**reference balance** is the parts as the score marks them, played by one sampled ensemble at
equal channel volume: nobody here chose those levels.

The set is what the score and the SoundFont make of it, not a recorded mix: a chorale has no
dynamics at all (every part at music21's default velocity), and a GM cello at the same velocity
as a GM violin is what FluidR3 makes it.  LMMS projects (authors' faders) would be a second,
independent reference; they are not rendered yet.

Split
-----
:func:`split_of` puts a whole *work* (a quartet with all its movements, a cantata's chorales) in
``tuning`` or ``heldout`` by a SHA-256 of its id, so no movement of a held-out quartet is seen
while tuning the priors.  About 30 % of the works are held out.

Guards
------
Each piece is parsed and turned into MIDI in a child process with a time limit
(:data:`PARSE_TIMEOUT_S`), scores larger than :data:`MAX_SCORE_BYTES` are skipped, a piece is cut
to :data:`MAX_SECONDS` of music, every part render is bounded by FluidSynth's own limit and by its
sample count, and the build stops once the cache holds :data:`MAX_CACHE_BYTES`.

Cache
-----
``$STASE_CACHE`` or ``$XDG_CACHE_HOME/stase`` or ``~/.cache/stase``, then
``realistic_multitracks/v1-<rate>hz-<seconds>s/<piece>/``: one 16-bit FLAC per part (quantisation noise near -98 dBFS, far below any
part's level) (all parts of
a piece share one scale factor, so their balance is the rendered one) and ``manifest.json``
(written last and atomically: a piece is there when its manifest is).  Outside git.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

#: bench sample rate (Hz): half of 48 kHz keeps the cache and the bench small; the advisor's
#: loudness and bands work at any rate from 8 kHz.
RATE = 24_000
#: longest excerpt per piece (s of music, from the start).
MAX_SECONDS = 30.0
#: scores above this many bytes (compressed MusicXML / kern) are skipped: parsing them takes minutes.
MAX_SCORE_BYTES = 400_000
#: time limit (s) of one piece's parse + MIDI export in its child process.
PARSE_TIMEOUT_S = 120.0
#: the build stops when the cache holds this many bytes.
MAX_CACHE_BYTES = 600 * 1024 * 1024
#: share of works held out (by hash).
HELDOUT_SHARE = 0.30
#: peak of the loudest stem of a piece after the common scaling (linear).
PIECE_PEAK = 0.5
#: default number of pieces per ensemble (chorales, quartet movements).
DEFAULT_CHORALES = 60
QUARTET_COMPOSERS = ("haydn", "mozart", "beethoven")
VOICE_PROGRAM = 52            # Choir Aahs (0-based)
#: part-name word -> (GM program, 0-based); first match wins.
PART_PROGRAMS = (("violoncello", 42), ("cello", 42), ("viola", 41), ("violin", 40),
                 ("contrabass", 43), ("soprano", VOICE_PROGRAM), ("alto", VOICE_PROGRAM),
                 ("tenor", VOICE_PROGRAM), ("bass", VOICE_PROGRAM))
CHORALE_PARTS = ("Soprano", "Alto", "Tenor", "Bass")
VERSION = "v1"


def cache_root() -> Path:
    """The user cache folder of stase (:func:`stase.core.paths.user_cache_dir`)."""
    from stase.core.paths import user_cache_dir
    return user_cache_dir()


def set_folder(rate: int = RATE, max_seconds: float = MAX_SECONDS) -> Path:
    return cache_root() / "realistic_multitracks" / f"{VERSION}-{rate}hz-{max_seconds:g}s"


def work_of(piece_id: str) -> str:
    """The work a piece belongs to: ``haydn/opus74no1/movement2`` -> ``haydn/opus74no1``,
    ``bach/bwv10.7`` -> ``bach/bwv10`` (the chorales of one cantata go together)."""
    parts = piece_id.split("/")
    if len(parts) >= 3:
        return "/".join(parts[:-1])
    if parts[0] == "bach":
        return "bach/" + parts[-1].split(".")[0]
    return piece_id


def split_of(piece_id: str) -> str:
    """``"heldout"`` or ``"tuning"``, fixed by a SHA-256 of the piece's work (:func:`work_of`)."""
    digest = hashlib.sha256(work_of(piece_id).encode("utf-8")).digest()
    return "heldout" if int.from_bytes(digest[:4], "big") / 2 ** 32 < HELDOUT_SHARE else "tuning"


def _corpus_root() -> Path:
    import music21
    return Path(music21.__file__).parent / "corpus"


def list_pieces(n_chorales: int = DEFAULT_CHORALES) -> list[tuple[str, str, Path]]:
    """(piece id, ensemble, score path) of the candidate pieces, in a fixed order.

    Chorales: every ``bach/bwv*.mxl`` taken at an even stride so the choice spreads over the
    catalogue (whether it has four vocal parts is checked when it is parsed).  Quartets: every
    MusicXML movement of the composers in :data:`QUARTET_COMPOSERS`.
    """
    root = _corpus_root()
    chorales = sorted((root / "bach").glob("bwv*.mxl"), key=lambda p: p.name)
    stride = max(1, len(chorales) // max(n_chorales, 1))
    out = [(f"bach/{p.stem}", "choir", p) for p in chorales[::stride][:n_chorales]]
    for composer in QUARTET_COMPOSERS:
        for p in sorted((root / composer).rglob("*.mxl")):
            if composer == "mozart" and p.parent.name == "k545":
                continue  # a piano sonata
            rel = p.relative_to(root).with_suffix("")
            out.append((str(rel).replace(os.sep, "/"), "string_quartet", p))
    return out


def _program(part_name: str) -> int | None:
    low = part_name.lower()
    return next((program for word, program in PART_PROGRAMS if word in low), None)


def _track_name(part_name: str, ensemble: str, index: int) -> str:
    """Stable stem names: ``Soprano`` .. ``Bass``; ``Violin 1``, ``Violin 2``, ``Viola``, ``Cello``."""
    low = part_name.lower()
    if ensemble == "choir":
        return next((p for p in CHORALE_PARTS if p.lower() in low), part_name.strip())
    if "cello" in low:
        return "Cello"
    if "viola" in low:
        return "Viola"
    if "violin" in low:
        second = re.search(r"\b(2|2nd|ii|second)\b", low)
        return "Violin 2" if second else "Violin 1"
    return part_name.strip() or f"Part {index + 1}"


def score_to_midi(score_path: str, ensemble: str, max_seconds: float) -> dict:
    """Parse a score, cut it to about ``max_seconds``, and export one General MIDI file.

    Returns {"midi": bytes (type 1: conductor track, then one track per kept part, each on channel
    1 with its program), "tracks": [names], "programs": [..], "tempo_qpm": float} or
    {"skip": reason}.  Runs in the child process of :func:`_midi_in_child`.
    """
    import mido
    from music21 import bar, converter, midi as m21midi, tempo
    score = converter.parse(score_path)
    parts = list(score.parts)
    names = [(p.partName or "") for p in parts]
    programs = [_program(n) for n in names]
    if any(p is None for p in programs):
        return {"skip": f"a part is neither a voice nor a bowed string: {names}"}
    tracks = [_track_name(n, ensemble, i) for i, n in enumerate(names)]
    if ensemble == "choir" and sorted(tracks) != sorted(CHORALE_PARTS):
        return {"skip": f"not a four-part SATB chorale: {names}"}
    if ensemble == "string_quartet" and sorted(tracks) != sorted(["Violin 1", "Violin 2", "Viola", "Cello"]):
        return {"skip": f"not a string quartet: {names}"}
    marks = score.metronomeMarkBoundaries()
    qpm = float(marks[0][2].getQuarterBPM()) if marks else 120.0
    quarters = max_seconds * qpm / 60.0 + 8.0         # a few beats to spare
    last = 1
    for m in parts[0].getElementsByClass("Measure"):
        last = m.number
        if m.offset >= quarters:
            break
    excerpt = score.measures(1, last) if last > 1 else score
    # the excerpt is played straight through: a cut can split a repeat, which music21's MIDI
    # export would refuse to expand
    for measure in excerpt.recurse().getElementsByClass("Measure"):
        for side in ("leftBarline", "rightBarline"):
            if isinstance(getattr(measure, side), bar.Repeat):
                setattr(measure, side, None)
    for mark in list(excerpt.recurse().getElementsByClass(["RepeatExpression", "RepeatBracket"])):
        mark.activeSite.remove(mark)
    if not marks:
        for p in excerpt.parts:
            p.insert(0, tempo.MetronomeMark(number=qpm))
            break
    midi = mido.MidiFile(file=io.BytesIO(m21midi.translate.music21ObjectToMidiFile(excerpt).writestr()))
    conductor = [t for t in midi.tracks if not any(m.type == "note_on" for m in t)][:1]
    notes = [t for t in midi.tracks if any(m.type == "note_on" for m in t)]
    if len(notes) != len(parts):
        return {"skip": f"{len(parts)} parts but {len(notes)} MIDI tracks with notes"}
    out = mido.MidiFile(type=1, ticks_per_beat=midi.ticks_per_beat)
    out.tracks.append(conductor[0] if conductor else mido.MidiTrack())
    for track, program in zip(notes, programs):
        clean = mido.MidiTrack()
        clean.append(mido.Message("program_change", channel=0, program=program, time=0))
        carry = 0
        for m in track:
            if m.type == "program_change":
                carry += m.time      # the part's program is ours; keep the timing of what follows
                continue
            m = m.copy(time=m.time + carry)
            carry = 0
            if hasattr(m, "channel"):
                m = m.copy(channel=0)  # one part per file: channel 1 (never the drum channel)
            clean.append(m)
        out.tracks.append(clean)
    buffer = io.BytesIO()
    out.save(file=buffer)
    return {"midi": buffer.getvalue(), "tracks": tracks, "programs": programs, "tempo_qpm": qpm,
            "part_names": names, "length_s": float(out.length)}


def _midi_in_child(score_path: Path, ensemble: str, max_seconds: float, folder: Path) -> dict:
    """:func:`score_to_midi` in a child process killed after :data:`PARSE_TIMEOUT_S`."""
    target = folder / "piece.mid"
    cmd = [sys.executable, "-m", "bench.realistic_multitracks", "_midi", str(score_path), ensemble,
           str(max_seconds), str(target)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=PARSE_TIMEOUT_S,
                              stdin=subprocess.DEVNULL, cwd=Path(__file__).resolve().parents[1])
    except subprocess.TimeoutExpired:
        return {"skip": f"parsing took longer than {PARSE_TIMEOUT_S:.0f} s"}
    if done.returncode != 0:
        return {"skip": f"parse failed: {done.stderr.strip()[-300:]}"}
    info = json.loads(done.stdout.strip().splitlines()[-1])
    if "skip" not in info:
        info["midi"] = target.read_bytes()
    return info


def _voices():
    from stase.agent.music.voices import choose_voices
    voices = choose_voices("sampled")
    return voices


def render_piece(piece_id: str, ensemble: str, score_path: Path, out_folder: Path, voices,
                 rate: int = RATE, max_seconds: float = MAX_SECONDS) -> dict:
    """Render one piece into ``out_folder`` (FLAC per part + manifest.json); returns the manifest
    or {"skip": reason}."""
    import mido

    from stase.agent.music.sampled import part_midi
    from stase.core.audio_io import atomic_write_text, write_audio
    if score_path.stat().st_size > MAX_SCORE_BYTES:
        return {"skip": f"score is {score_path.stat().st_size} bytes (> {MAX_SCORE_BYTES})"}
    with tempfile.TemporaryDirectory(prefix="stase-realistic-") as tmp:
        info = _midi_in_child(score_path, ensemble, max_seconds, Path(tmp))
        if "skip" in info:
            return info
        midi = mido.MidiFile(file=io.BytesIO(info["midi"]))
        seconds = min(max_seconds, info["length_s"])
        n = int(round(seconds * rate))
        stems = {}
        for index, track in enumerate(info["tracks"], start=1):
            path = Path(tmp) / f"part{index}.mid"
            # the conductor track runs twice the excerpt at the first tempo: later tempo changes
            # cannot end the part early, and render_file stops reading at n samples anyway
            path.write_bytes(part_midi(midi, index, 2.0 * seconds + 2.0, info["tempo_qpm"]))
            stems[track] = voices.render_file(path, n, rate, label=f"{piece_id} {track}")
    peak = max(float(np.max(np.abs(x))) for x in stems.values())
    if peak <= 0.0 or any(not np.any(x) for x in stems.values()):
        return {"skip": "a part rendered silent"}
    scale = PIECE_PEAK / peak
    out_folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for track, x in stems.items():
        name = re.sub(r"[^A-Za-z0-9]+", "_", track).strip("_") + ".flac"
        write_audio(out_folder / name, (x * scale).astype(np.float32), rate, subtype="PCM_16")
        files[track] = name
    manifest = {"piece": piece_id, "work": work_of(piece_id), "split": split_of(piece_id),
                "ensemble": ensemble, "rate": rate, "seconds": round(n / rate, 3),
                "tracks": info["tracks"], "files": files, "part_names": info["part_names"],
                "gm_programs": info["programs"], "tempo_qpm": info["tempo_qpm"],
                "scale": scale, "source": f"music21 corpus {score_path.relative_to(_corpus_root())}",
                "voices": voices.describe(), "version": VERSION}
    atomic_write_text(out_folder / "manifest.json", json.dumps(manifest, indent=1))
    return manifest


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.exists() else 0


def build(limit: int | None = None, n_chorales: int = DEFAULT_CHORALES, rate: int = RATE,
          max_seconds: float = MAX_SECONDS, log=print) -> dict:
    """Render every missing piece (or the first ``limit`` missing ones) into the cache."""
    voices = _voices()
    root = set_folder(rate, max_seconds)
    root.mkdir(parents=True, exist_ok=True)
    done, skipped, started = 0, {}, time.perf_counter()
    for piece_id, ensemble, path in list_pieces(n_chorales):
        folder = root / piece_id.replace("/", "__")
        if (folder / "manifest.json").is_file() or (root / "skipped" / (folder.name + ".txt")).is_file():
            continue
        if limit is not None and done >= limit:
            break
        if _folder_bytes(root) > MAX_CACHE_BYTES:
            log(f"cache holds more than {MAX_CACHE_BYTES >> 20} MB: stopping")
            break
        t0 = time.perf_counter()
        result = render_piece(piece_id, ensemble, path, folder, voices, rate, max_seconds)
        if "skip" in result:
            skipped[piece_id] = result["skip"]
            (root / "skipped").mkdir(exist_ok=True)
            (root / "skipped" / (folder.name + ".txt")).write_text(result["skip"] + "\n")
            log(f"skip {piece_id}: {result['skip']}")
        else:
            done += 1
            log(f"{piece_id} [{result['split']}] {result['seconds']:.1f} s, "
                f"{time.perf_counter() - t0:.1f} s to build")
    return {"built": done, "skipped": skipped, "folder": str(root),
            "bytes": _folder_bytes(root), "wall_s": round(time.perf_counter() - started, 1)}


def load_sets(split: str | None = None, rate: int = RATE, max_seconds: float = MAX_SECONDS,
              limit: int | None = None) -> list[dict]:
    """The cached pieces (of one split, or all) as {"piece", "split", "ensemble", "stems", "rate",
    ...manifest}; an empty list when nothing was built."""
    from stase.core.audio_io import read_audio
    root = set_folder(rate, max_seconds)
    out = []
    for manifest_path in sorted(root.glob("*/manifest.json")):
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("split") != split_of(manifest["piece"]):
            continue  # built under another split rule: ignore rather than leak
        if split is not None and manifest["split"] != split:
            continue
        stems = {}
        for track in manifest["tracks"]:
            audio, file_rate = read_audio(manifest_path.parent / manifest["files"][track])
            if file_rate != rate:
                raise ValueError(f"{manifest_path.parent}: {track} is at {file_rate} Hz, not {rate}")
            audio = np.asarray(audio, dtype=np.float32)     # (channels, samples)
            stems[track] = audio[0] if audio.shape[0] == 1 else audio  # LMMS stems are stereo
        out.append({**manifest, "stems": stems})
        if limit is not None and len(out) >= limit:
            break
    return out


#: how the part targets are summarised (see agent/advisor/ensembles.py, which holds the result).
TOLERANCE_PERCENTILE = 80
MIN_TOLERANCE_LU = 1.0
AGREEMENT_LU = 1.0
MAX_PRIOR_CONFIDENCE = 0.8


def derive_part_targets(split: str = "tuning") -> dict:
    """Per ensemble and part: the level relative to the piece's median part, over ``split``.

    Returns {ensemble: {part: {"target_lu", "tolerance_lu", "confidence", "pieces", "q25_lu",
    "q75_lu"}}}: target = median, tolerance = the TOLERANCE_PERCENTILE-th percentile of the
    absolute deviation from it (at least MIN_TOLERANCE_LU), confidence = share of pieces within
    AGREEMENT_LU of the target (at most MAX_PRIOR_CONFIDENCE).  Only ever run on "tuning".
    """
    from stase.agent.advisor.analysis import analyse_stems
    from stase.agent.advisor.ensembles import ensemble_parts
    from stase.agent.advisor.priors import resolve_roles
    levels: dict[str, dict[str, list[float]]] = {}
    for piece in load_sets(split):
        analysis = analyse_stems(piece["stems"], piece["rate"])
        found = ensemble_parts(analysis, piece["tracks"], resolve_roles(piece["tracks"]))
        if found is None or found[0] != piece["ensemble"]:
            continue
        ensemble, parts, _ = found
        loudness = {t: analysis.stems[t].integrated_lufs for t in piece["tracks"]}
        centre = float(np.median(list(loudness.values())))
        for t, part in parts.items():
            levels.setdefault(ensemble, {}).setdefault(part, []).append(loudness[t] - centre)
    out: dict = {}
    for ensemble, parts in sorted(levels.items()):
        for part, values in parts.items():
            v = np.asarray(values)
            target = float(np.median(v))
            deviation = np.abs(v - target)
            out.setdefault(ensemble, {})[part] = {
                "target_lu": round(target, 2),
                "tolerance_lu": round(max(MIN_TOLERANCE_LU, float(np.percentile(deviation, TOLERANCE_PERCENTILE))), 1),
                "confidence": round(min(MAX_PRIOR_CONFIDENCE, float(np.mean(deviation <= AGREEMENT_LU))), 2),
                "pieces": int(v.size),
                "q25_lu": round(float(np.percentile(v, 25)), 2), "q75_lu": round(float(np.percentile(v, 75)), 2)}
    return out


def part_feature_rows(split: str = "tuning") -> list[dict]:
    """One row per part of each cached score piece of ``split``: the fit table of the learned prior.

    Each row: {"piece", "work", "ensemble", "track", "part", "seconds", "loudness_lufs", "features"} with
    ``features`` = :func:`stase.agent.advisor.learned_prior.ensemble_features` of the part (gain
    invariant).  Pieces whose tracks do not form their ensemble are left out.  Fit only on
    "tuning" (tools/fit_part_prior.py).
    """
    from stase.agent.advisor.analysis import analyse_stems
    from stase.agent.advisor.ensembles import ensemble_parts
    from stase.agent.advisor.learned_prior import analysis_features
    from stase.agent.advisor.priors import resolve_roles
    rows = []
    for piece in load_sets(split):
        if piece["ensemble"] not in ("choir", "string_quartet"):
            continue
        analysis = analyse_stems(piece["stems"], piece["rate"])
        found = ensemble_parts(analysis, piece["tracks"], resolve_roles(piece["tracks"]))
        if found is None or found[0] != piece["ensemble"]:
            continue
        features = analysis_features(analysis, list(found[1]))
        for track, part in found[1].items():
            rows.append({"piece": piece["piece"], "work": piece["work"], "ensemble": piece["ensemble"],
                         "track": track, "part": part, "seconds": piece["seconds"],
                         "loudness_lufs": analysis.stems[track].integrated_lufs,
                         "features": features[track]})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="render missing pieces into the cache")
    b.add_argument("--limit", type=int, default=None, help="at most this many new pieces")
    b.add_argument("--chorales", type=int, default=DEFAULT_CHORALES)
    sub.add_parser("list", help="what the cache holds")
    sub.add_parser("derive", help="the advisor's part targets from the tuning split")
    child = sub.add_parser("_midi")  # internal: the guarded parse step
    child.add_argument("score")
    child.add_argument("ensemble")
    child.add_argument("max_seconds", type=float)
    child.add_argument("target")
    args = parser.parse_args(argv)
    if args.command == "_midi":
        info = score_to_midi(args.score, args.ensemble, args.max_seconds)
        if "midi" in info:
            Path(args.target).write_bytes(info.pop("midi"))
        print(json.dumps(info))
        return 0
    if args.command == "derive":
        print(json.dumps(derive_part_targets("tuning"), indent=1))
        return 0
    if args.command == "build":
        print(json.dumps(build(args.limit, args.chorales)))
        return 0
    root = set_folder()
    counts: dict[str, int] = {}
    for manifest_path in sorted(root.glob("*/manifest.json")):
        m = json.loads(manifest_path.read_text())
        key = f"{m['split']}/{m['ensemble']}"
        counts[key] = counts.get(key, 0) + 1
    print(json.dumps({"folder": str(root), "pieces": counts, "bytes": _folder_bytes(root)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
