"""Deterministic, seeded training / test data for the Spatial-AST listener.

Every clip is a pure function of ``(split, stage, index)``: the same call gives the same audio on
any machine, so the held-out test split needs no stored files and the bench can re-render its
clips (the classical baseline needs waveforms).  Nothing here is committed as data.

One clip (1 s at 32 kHz, binaural):

* a mono source: a 1 s excerpt of a generator voice (``stase.agent.music.generate_stems``, one of the
  24 roles, varied keys / tempi / seeds) or, with probability ``NOISE_PROB``, a noise burst
  (white / pink / brown, random band and envelope; no role label);
* a direction drawn uniformly over the sphere, clipped to the elevations the HRTF set measures,
  and a distance uniform in 0.5-10 m;
* rendered through our renderer's pieces at 32 kHz: the interpolated KEMAR HRIR that
  ``stase.dsp.scene`` applies (``stase.dsp.hrtf.HrtfSet.hrir``) with the 1/r law, plus the room part the
  scene adds for that static source (``stase.dsp.rooms.static_source_response``: the source's
  direction, distance and role directivity), in one of the ten rooms;
* level-normalised (stase.agent.features.loudness_lufs) to -23 dB with a +-6 dB random offset (level is not a distance cue here).

Stage 1 (BAT's "perception" stage) is single sources only; stage 2 mixes in two-source clips (half
of them): the second source is 3-12 dB quieter, at a different direction.  The targets are the
first (louder) source's direction and distance and the union of both classes.

Train indices use seed ``TRAIN_SEED``, the held-out test split ``TEST_SEED`` (disjoint seeds, and
test sources come from generator seeds never used in training).
"""
from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import signal

from stase.agent.features import SAMPLE_RATE, CLIP_SAMPLES, binaural_features
from stase.core.conventions import db_to_gain

from stase.agent.listener_labels import ROLES

TRAIN_SEED = 1_000
TEST_SEED = 9_000
NOISE_PROB = 0.15
MIN_DISTANCE_M = 0.5
MAX_DISTANCE_M = 10.0
TARGET_LUFS = -23.0
LEVEL_JITTER_DB = 6.0


@dataclass
class Clip:
    """One rendered clip and its labels (source 0 is the target)."""

    audio: np.ndarray                 # (2, CLIP_SAMPLES) float32, binaural mix
    solos: list                       # [(2, CLIP_SAMPLES) float32] per source, same gain as in the mix
    azimuth_deg: list = field(default_factory=list)
    elevation_deg: list = field(default_factory=list)
    distance_m: list = field(default_factory=list)
    roles: list = field(default_factory=list)   # role id or None (noise burst)
    room: str = ""

    def class_vector(self) -> np.ndarray:
        v = np.zeros(len(ROLES), dtype=np.float32)
        for role in self.roles:
            if role is not None:
                v[ROLES.index(role)] = 1.0
        return v


# ----------------------------------------------------------------------------------------------
# renderer pieces: the runtime's own (training imports the runtime, never the reverse)

@functools.lru_cache(maxsize=1)
def hrtf_set():
    """The shipped MIT KEMAR set at 32 kHz (``stase.dsp.hrtf.load_hrtf``)."""
    from stase.dsp.hrtf import load_hrtf
    return load_hrtf(sample_rate=SAMPLE_RATE)


def room_ids() -> tuple[str, ...]:
    """The preset rooms (``stase.presets.load_rooms``), sorted."""
    from stase.presets import load_rooms
    return tuple(sorted(load_rooms()))


def elevation_range() -> tuple[float, float]:
    """Lowest and highest elevation of the HRTF set's measured directions, degrees."""
    el = hrtf_set().directions_deg[:, 1]
    return float(el.min()), float(el.max())


@functools.lru_cache(maxsize=16)
def _scene(room_id: str | None):
    """One cached ``stase.dsp.scene.SceneRenderer`` at 32 kHz per room (None: dry)."""
    from stase.dsp.scene import SceneRenderer
    return SceneRenderer(sample_rate=SAMPLE_RATE, block_size=1024, room=room_id, hrtf=hrtf_set(), max_sources=4)


def render_source(mono: np.ndarray, azimuth_deg: float, elevation_deg: float, distance_m: float,
                  room_id: str, role: str | None = None) -> np.ndarray:
    """Binaural (2, CLIP_SAMPLES) float64 of a mono source at a position in a room.

    Direct path: our ``stase.dsp.scene.SceneRenderer`` (dry) in ``hrtf`` mode (1/r law, ISO 9613 air
    absorption, interpolated KEMAR HRIR).  Room: :func:`room_part`, what the scene adds for this
    static source (``role``: its directivity; None, a noise burst: a typical source).
    """
    scene = _scene(None)
    for track in list(scene.source_ids):
        scene.remove_source(track)
    scene.reset()
    scene.add_source("s", azimuth_deg=azimuth_deg, elevation_deg=elevation_deg,
                     distance_m=distance_m, mode="hrtf")
    out = scene.process(mono[None, :CLIP_SAMPLES].astype(np.float32)).astype(np.float64)
    response = room_part(room_id, azimuth_deg, distance_m, role)
    out += signal.fftconvolve(mono[None, :CLIP_SAMPLES], response[:, :CLIP_SAMPLES], axes=1)[:, :CLIP_SAMPLES]
    return out


def room_part(room_id: str, azimuth_deg: float, distance_m: float, role: str | None = None) -> np.ndarray:
    """(2, n) float64 room part of the scene's impulse response for a static source.

    ``stase.dsp.rooms.static_source_response`` in ``hrtf`` mode (the source's distance decay, its two
    nearest early-reflection sectors and its role's directivity; equal to the streamed scene's wet
    part, see its test), truncated to one clip; we apply it offline with one FFT convolution because
    the block-streamed reverb costs ~0.1 s per clip.  A broken room preset raises (no stand-in).
    """
    from stase.dsp.rooms import static_source_response
    response = static_source_response(room_id, SAMPLE_RATE, azimuth_deg, distance_m, role,
                                      mode="hrtf", hrtf=hrtf_set())
    return np.asarray(response[:, :CLIP_SAMPLES], dtype=np.float64)


# ----------------------------------------------------------------------------------------------
# sources

CACHE_DIR = Path(os.environ.get("STASE_SPATIAL_AST_CACHE", Path(__file__).resolve().parents[2] / ".cache" / "spatial_ast"))


@functools.lru_cache(maxsize=4)
def source_bank(split: str) -> dict:
    """{role: [(CLIP_SAMPLES,) float64 excerpts]} from the stem generator (``stase.agent.music``).

    The generator takes about a minute per call, so the bank is cached under :data:`CACHE_DIR`
    (a pure function of the split; delete the file to rebuild).
    """
    cache = CACHE_DIR / f"bank_{split}_generator.npz"
    if cache.is_file():
        with np.load(cache) as stored:
            return {role: list(stored[role]) if role in stored else [] for role in ROLES}
    bank = _build_bank(split)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, **{role: np.array(v) for role, v in bank.items() if v})
    return bank


def _build_bank(split: str) -> dict:
    from stase.agent.music import generate_stems
    seeds = range(0, 5) if split == "train" else range(100, 102)
    bank: dict[str, list] = {role: [] for role in ROLES}
    for seed in seeds:
        rng = np.random.default_rng(seed + 77)
        music = {"tempo_bpm": float(rng.uniform(70, 150)),
                 "key": f"{rng.choice(['C', 'D', 'E', 'F', 'G', 'A', 'Bb'])} {rng.choice(['major', 'minor'])}",
                 "bars": 4, "instruments": [{"track": role, "role": role} for role in ROLES]}
        stems = generate_stems(music, sample_rate=SAMPLE_RATE, seed=seed)
        for role in ROLES:
            x = np.asarray(stems[role], dtype=np.float64)
            for start in range(0, x.size - CLIP_SAMPLES + 1, CLIP_SAMPLES // 2):
                piece = x[start:start + CLIP_SAMPLES]
                if np.sqrt(np.mean(piece ** 2)) > 1e-3 and np.mean(np.abs(piece) > 1e-4) > 0.3:
                    bank[role].append(piece)
    return bank




def noise_burst(rng: np.random.Generator) -> np.ndarray:
    """White, pink or brown noise, band-limited, with a random burst envelope."""
    n = CLIP_SAMPLES
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
    tilt = rng.choice([0.0, 0.5, 1.0])
    spectrum /= np.maximum(f, 20.0) ** tilt
    lo, hi = sorted(rng.uniform(50, 14000, size=2))
    spectrum *= (f >= min(lo, 2000)) & (f <= max(hi, 3000))
    x = np.fft.irfft(spectrum, n)
    env = np.zeros(n)
    for _ in range(rng.integers(1, 4)):
        start = rng.integers(0, n // 2)
        length = rng.integers(n // 10, n)
        env[start:start + length] = 1.0
    env = np.convolve(env, np.hanning(321) / 160.0, mode="same")
    return x * env


# ----------------------------------------------------------------------------------------------
# clips

def _loudness_gain(audio: np.ndarray, target_lufs: float) -> float:
    from stase.agent.features import loudness_lufs
    return float(db_to_gain(target_lufs - loudness_lufs(audio, SAMPLE_RATE)))


def make_clip(split: str, index: int, stage: int = 1) -> Clip:
    """The deterministic clip ``index`` of ``split`` ("train" or "test") at curriculum ``stage``."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    rng = np.random.default_rng([TRAIN_SEED if split == "train" else TEST_SEED, stage, index])
    bank = source_bank(split)
    rooms = room_ids()
    room = rooms[rng.integers(len(rooms))]
    el_lo, el_hi = elevation_range()
    n_sources = 2 if (stage >= 2 and rng.random() < 0.5) else 1
    clip = Clip(audio=np.zeros((2, CLIP_SAMPLES), np.float32), solos=[], room=room)
    solos = []
    for s in range(n_sources):
        if rng.random() < NOISE_PROB:
            mono, role = noise_burst(rng), None
        else:
            role = ROLES[rng.integers(len(ROLES))]
            while s == 1 and role in clip.roles:
                role = ROLES[rng.integers(len(ROLES))]
            pieces = bank[role] or bank[ROLES[0]]
            mono = pieces[rng.integers(len(pieces))]
        mono = mono / max(np.sqrt(np.mean(mono ** 2)), 1e-9) * 0.1
        while True:   # uniform over the sphere, within the measured elevations
            az = float(rng.uniform(-180.0, 180.0))
            el = float(np.degrees(np.arcsin(rng.uniform(-1.0, 1.0))))
            if el_lo <= el <= el_hi and (s == 0 or abs(az - clip.azimuth_deg[0]) > 30):
                break
        dist = float(rng.uniform(MIN_DISTANCE_M, MAX_DISTANCE_M))
        wet = render_source(mono, az, el, dist, room, role)
        if s == 1:
            wet *= db_to_gain(-rng.uniform(3.0, 12.0)) * np.sqrt(np.mean(solos[0] ** 2) / max(np.mean(wet ** 2), 1e-20))
        solos.append(wet)
        clip.azimuth_deg.append(az)
        clip.elevation_deg.append(el)
        clip.distance_m.append(dist)
        clip.roles.append(role)
    mix = np.sum(solos, axis=0)
    gain = _loudness_gain(mix, TARGET_LUFS + rng.uniform(-LEVEL_JITTER_DB, LEVEL_JITTER_DB))
    clip.audio = (mix * gain).astype(np.float32)
    clip.solos = [(x * gain).astype(np.float32) for x in solos]
    return clip


def write_dataset(folder: str | Path, split: str, n_clips: int, stage: int, start: int = 0,
                  progress: bool = True, name: str | None = None) -> Path:
    """Render clips ``start..start+n_clips`` to ``folder/{name}.npy`` (features, float16; ``name``
    defaults to ``{split}_s{stage}``) plus ``.labels.npz``; resumes a partly written set (rows
    already done are kept).  A validation split for model selection is train-seed clips at indices
    no training set reaches, e.g. ``split="train", start=900_000, name="valid_s1"``."""
    from tqdm import tqdm
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / (name or f"{split}_s{stage}")
    feat_path, label_path, done_path = stem.with_suffix(".npy"), stem.with_suffix(".labels.npz"), stem.with_suffix(".done")
    shape = (n_clips, 4, 1 + CLIP_SAMPLES // 320, 128)
    mode = "r+" if feat_path.exists() else "w+"
    feats = np.lib.format.open_memmap(feat_path, mode=mode, dtype=np.float16, shape=shape if mode == "w+" else None)
    if feats.shape != shape:
        raise ValueError(f"{feat_path} holds {feats.shape}, asked for {shape}; delete it to regenerate")
    labels = {"azimuth_deg": np.zeros(n_clips), "elevation_deg": np.zeros(n_clips),
              "distance_m": np.zeros(n_clips), "classes": np.zeros((n_clips, len(ROLES)), np.float32)}
    done = 0
    if label_path.exists() and done_path.exists():
        old = np.load(label_path)
        labels = {k: old[k].copy() for k in labels}
        done = int(done_path.read_text())
    from stase.agent.listener import blas_single_thread
    for i in tqdm(range(done, n_clips), initial=done, total=n_clips, disable=not progress,
                  desc=f"{split} stage {stage}"):
        clip = make_clip(split, start + i, stage)
        # one BLAS thread: a multi-threaded float32 matmul sums in an order that depends on the
        # thread count, and a shard must be the same bytes on every machine (issue 21)
        with blas_single_thread():
            feats[i] = binaural_features(clip.audio).astype(np.float16)
        labels["azimuth_deg"][i] = clip.azimuth_deg[0]
        labels["elevation_deg"][i] = clip.elevation_deg[0]
        labels["distance_m"][i] = clip.distance_m[0]
        labels["classes"][i] = clip.class_vector()
        if (i + 1) % 500 == 0 or i + 1 == n_clips:
            feats.flush()
            np.savez(label_path, **labels)
            done_path.write_text(str(i + 1))
    meta = {"split": split, "stage": stage, "n_clips": n_clips, "start": start,
            "hrtf": hrtf_set().source, "rooms": list(room_ids())}
    stem.with_suffix(".json").write_text(json.dumps(meta, indent=1))
    return feat_path


if __name__ == "__main__":
    import argparse
    parser = argparse.ArgumentParser(description="render Spatial-AST training / test features")
    parser.add_argument("folder")
    parser.add_argument("--split", default="train", choices=["train", "test"])
    parser.add_argument("--stage", type=int, default=1)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--name", default=None, help="file stem (default {split}_s{stage})")
    a = parser.parse_args()
    write_dataset(a.folder, a.split, a.n, a.stage, a.start, name=a.name)
