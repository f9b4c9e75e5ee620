"""LMMS demo projects as multitracks whose authors' faders are the reference balance.

Usage (a setup/bench step, never run by stase itself)::

    apt-get install -y --no-install-recommends lmms      # Debian: the program and its demos
    python -m bench.lmms_multitracks build [--limit N]

The demo and "shorties" projects that Debian's ``lmms-common`` ships
(``/usr/share/lmms/projects``, GPL, by their named authors) are rendered one file per track by
``lmms rendertracks`` (LMMS 1.2, headless: ``QT_QPA_PLATFORM=offscreen``).  Each track's file
carries its author's track volume, panning, effects and mixer fader, so the set of stems *is*
the authors' balance: a reference nobody here chose, and a different one from the scores'
dynamics of :mod:`bench.realistic_multitracks`, whose cache folder, split and loader it shares
(ensemble ``lmms_project``).

Guards: the project is cut before rendering to the patterns that start in its first
:data:`RENDER_SECONDS` (so the render's length is bounded), the render runs under
:data:`RENDER_TIMEOUT_S` and is skipped past it, and the kept excerpt is
:data:`realistic_multitracks.MAX_SECONDS` long: the window where the most tracks play.  Tracks
that stay silent there are dropped; a project needs three audible tracks.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path

import numpy as np

from bench import realistic_multitracks as rm

PROJECT_FOLDERS = (Path("/usr/share/lmms/projects/demos"), Path("/usr/share/lmms/projects/shorties"))
#: song time (s) kept before rendering; patterns starting later are removed.
RENDER_SECONDS = 45.0
#: wall-clock limit of one project's ``rendertracks`` (s).
RENDER_TIMEOUT_S = 300.0
#: LMMS renders at 44.1 kHz at least; stems are resampled to the bench rate.
LMMS_RATE = 44_100
#: ticks per quarter note in LMMS 1.2 (192 per 4/4 bar).
TICKS_PER_BEAT = 48
#: a stem is audible when its loudest second is above this (dB re full scale, RMS).
AUDIBLE_DBFS = -60.0
ENSEMBLE = "lmms_project"


def list_projects() -> list[tuple[str, Path]]:
    """(piece id, path) of the shipped projects, in a fixed order."""
    out = []
    for folder in PROJECT_FOLDERS:
        for p in sorted(folder.rglob("*")):
            if p.suffix in (".mmp", ".mmpz"):
                out.append((f"lmms/{re.sub(r'[^A-Za-z0-9_.-]+', '_', p.stem)}", p))
    return out


def project_xml(path: Path) -> ET.ElementTree:
    """The project's XML (``.mmpz`` is Qt's qCompress: a 4-byte length, then zlib)."""
    data = path.read_bytes()
    text = zlib.decompress(data[4:]) if path.suffix == ".mmpz" else data
    return ET.ElementTree(ET.fromstring(text))


def cut_project(tree: ET.ElementTree, seconds: float) -> ET.ElementTree:
    """Remove every song-level pattern that starts after ``seconds`` of song time."""
    root = tree.getroot()
    head = root.find("head")
    bpm = float(head.get("bpm", 140)) if head is not None else 140.0
    limit = seconds * bpm / 60.0 * TICKS_PER_BEAT
    song = root.find("song/trackcontainer")
    for track in (song.findall("track") if song is not None else []):
        for item in list(track):
            if item.get("pos") is not None and float(item.get("pos")) >= limit:
                track.remove(item)
    return tree


def _track_names(files: list[Path]) -> list[str]:
    names, seen = [], set()
    for f in files:
        name = re.sub(r"^\d+_", "", f.stem)
        while re.search(r"\.(ogg|wav|ds|flac|sf2|xpf)$", name, re.I):
            name = re.sub(r"\.(ogg|wav|ds|flac|sf2|xpf)$", "", name, flags=re.I)
        name = re.sub(r"\s+", " ", name).strip() or "Track"
        unique, k = name, 2
        while unique.lower() in seen:
            unique, k = f"{name} {k}", k + 1
        seen.add(unique.lower())
        names.append(unique)
    return names


def best_window(stems: dict[str, np.ndarray], rate: int, seconds: float) -> int:
    """Start sample of the ``seconds`` window in which the most tracks play (1 s steps)."""
    n = next(iter(stems.values())).shape[-1]
    width = int(seconds)
    per_second = []
    for x in stems.values():
        m = n // rate
        rms = np.sqrt(np.mean(np.square(x[..., : m * rate].reshape(-1, m, rate)), axis=(0, 2)) + 1e-20)
        level = 20 * np.log10(rms)
        per_second.append(level > max(AUDIBLE_DBFS, level.max() - 30.0))
    active = np.array(per_second, dtype=float)          # (tracks, seconds)
    if active.shape[1] <= width:
        return 0
    cumulative = np.concatenate([np.zeros((active.shape[0], 1)), np.cumsum(active, axis=1)], axis=1)
    score = (cumulative[:, width:] - cumulative[:, :-width]).sum(axis=0)
    return int(np.argmax(score)) * rate


def render_project(piece_id: str, path: Path, out_folder: Path, rate: int = rm.RATE,
                   max_seconds: float = rm.MAX_SECONDS) -> dict:
    """Render one project's tracks into ``out_folder``; the manifest or {"skip": reason}."""
    import scipy.signal

    from stase.core.audio_io import atomic_write_text, read_audio, write_audio
    lmms = shutil.which("lmms")
    if lmms is None:
        return {"skip": "lmms is not installed (apt-get install --no-install-recommends lmms)"}
    with tempfile.TemporaryDirectory(prefix="stase-lmms-") as tmp:
        project = Path(tmp) / "project.mmp"
        try:
            cut_project(project_xml(path), RENDER_SECONDS).write(project, encoding="utf-8", xml_declaration=True)
        except (OSError, zlib.error, ET.ParseError) as exc:
            return {"skip": f"cannot read the project: {exc}"}
        out = Path(tmp) / "tracks"
        out.mkdir()
        env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
        try:
            done = subprocess.run([lmms, "--allowroot", "rendertracks", str(project), "-o", f"{out}/",
                                   "-f", "wav", "-s", str(LMMS_RATE)], capture_output=True, text=True,
                                  timeout=RENDER_TIMEOUT_S, stdin=subprocess.DEVNULL, env=env, cwd=tmp)
        except subprocess.TimeoutExpired:
            return {"skip": f"rendertracks took longer than {RENDER_TIMEOUT_S:.0f} s"}
        files = sorted(out.glob("*.wav"), key=lambda f: int(re.match(r"\d+", f.name).group()
                                                            if re.match(r"\d+", f.name) else 0))
        if done.returncode != 0 or not files:
            return {"skip": f"rendertracks failed ({done.returncode}): {(done.stderr or done.stdout)[-300:]}"}
        stems = {}
        for name, f in zip(_track_names(files), files):
            audio, file_rate = read_audio(f)
            stems[name] = scipy.signal.resample_poly(audio, rate, file_rate, axis=-1).astype(np.float32)
    # LMMS ends each track's file after that track's last sound: pad to the longest
    n = max(x.shape[-1] for x in stems.values())
    stems = {t: np.pad(x, ((0, 0), (0, n - x.shape[-1]))) for t, x in stems.items()}
    start = best_window(stems, rate, max_seconds)
    stop = min(n, start + int(max_seconds * rate))
    kept = {}
    for t, x in stems.items():
        piece = x[..., start:stop]
        m = piece.shape[-1] // rate
        if m == 0:
            continue
        rms = np.sqrt(np.mean(np.square(piece[..., : m * rate].reshape(-1, m, rate)), axis=(0, 2)))
        if 20 * np.log10(rms.max() + 1e-20) > AUDIBLE_DBFS:
            kept[t] = piece
    if len(kept) < 3:
        return {"skip": f"{len(kept)} audible tracks in the excerpt (3 needed)"}
    peak = max(float(np.max(np.abs(x))) for x in kept.values())
    scale = min(1.0, rm.PIECE_PEAK / peak)             # one factor for all: the balance stays the authors'
    out_folder.mkdir(parents=True, exist_ok=True)
    files_out = {}
    for i, (t, x) in enumerate(kept.items()):
        name = f"{i:02d}_" + re.sub(r"[^A-Za-z0-9]+", "_", t).strip("_") + ".flac"
        write_audio(out_folder / name, x * np.float32(scale), rate, subtype="PCM_16")
        files_out[t] = name
    manifest = {"piece": piece_id, "work": rm.work_of(piece_id), "split": rm.split_of(piece_id),
                "ensemble": ENSEMBLE, "rate": rate, "seconds": round((stop - start) / rate, 3),
                "start_s": round(start / rate, 2), "tracks": list(kept), "files": files_out, "scale": scale,
                "source": f"LMMS project {path}", "voices": "LMMS 1.2 rendertracks", "version": rm.VERSION}
    atomic_write_text(out_folder / "manifest.json", json.dumps(manifest, indent=1))
    return manifest


def build(limit: int | None = None, log=print) -> dict:
    """Render every missing project (or the first ``limit`` missing ones) into the shared cache."""
    root = rm.set_folder()
    root.mkdir(parents=True, exist_ok=True)
    done, skipped, started = 0, {}, time.perf_counter()
    for piece_id, path in list_projects():
        folder = root / piece_id.replace("/", "__")
        skip_file = root / "skipped" / (folder.name + ".txt")
        if (folder / "manifest.json").is_file() or skip_file.is_file():
            continue
        if limit is not None and done >= limit:
            break
        if rm._folder_bytes(root) > rm.MAX_CACHE_BYTES:
            log(f"cache holds more than {rm.MAX_CACHE_BYTES >> 20} MB: stopping")
            break
        t0 = time.perf_counter()
        result = render_project(piece_id, path, folder)
        if "skip" in result:
            skipped[piece_id] = result["skip"]
            skip_file.parent.mkdir(exist_ok=True)
            skip_file.write_text(result["skip"] + "\n")
            log(f"skip {piece_id}: {result['skip']}")
        else:
            done += 1
            log(f"{piece_id} [{result['split']}] {len(result['tracks'])} tracks, "
                f"{time.perf_counter() - t0:.1f} s to build")
    return {"built": done, "skipped": skipped, "folder": str(root),
            "wall_s": round(time.perf_counter() - started, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="render missing projects into the cache")
    b.add_argument("--limit", type=int, default=None)
    args = parser.parse_args(argv)
    print(json.dumps(build(args.limit)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
