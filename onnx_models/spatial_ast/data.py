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
* rendered through our renderer's pieces at 32 kHz: the interpolated HRIR of the clip's head that
  ``stase.dsp.scene`` applies (``stase.dsp.hrtf.HrtfSet.hrir``) with the 1/r law, plus the room part the
  scene adds for that static source (``stase.dsp.rooms.static_source_response``: the source's
  direction, distance and role directivity), in one of the preset rooms;
* level-normalised (stase.agent.features.loudness_lufs) to -23 dB with a +-6 dB random offset (level is not a distance cue here).

Stage 1 (BAT's "perception" stage) is single sources only; stage 2 mixes in two-source clips (half
of them): the second source is 3-12 dB quieter, at a different direction.  The targets are the
first (louder) source's direction and distance and the union of both classes.

Heads (``head=``, :data:`HEADS`): "kemar" (the shipped MIT KEMAR set, the default: clips, shards
and caches made before heads existed stay the same bytes), "ku100" (Neumann KU100, TH Koeln,
Bernschuetz 2013) and "sonicom_a" (SONICOM/AXD subject A, CC BY-SA 3.0), read from
:data:`SHARED_HRTF_DIR`.  A clip's recipe (source, direction, distance, room, level) does not depend
on the head: clip ``i`` through KU100 is clip ``i`` through KEMAR heard by another head.  The
directions stay within KEMAR's measured elevations (-40..90 deg) for every head.  The rooms'
reflections are the presets' own (made with KEMAR); the head changes the direct sound and the
room's diffuse-field send gain.

Head variation (``head_variation=``, train split only; :func:`draw_variation`): per group of
``VARIATION_GROUP`` consecutive clips (a varied set costs ~0.25 s to build, a clip ~0.05 s to
render; the group's clips keep their own recipes), from its own random stream (so the clip's
recipe is the same with or without it), the interaural onset
differences scaled by ``ITD_SCALE_RANGE`` (head size), a smooth gain of at most
``SPECTRAL_BOUND_DB`` per ear over log frequency, and with probability ``MIX_PROB`` the head's
onset-aligned filters and delays mixed with another training head's at the same directions;
with ``frequency_scaling=True`` also every filter's magnitude scaled in frequency by a factor in
``FREQUENCY_SCALE_RANGE`` (a larger or smaller pinna: Middlebrooks 1999, "Individual differences
in external-ear transfer functions reduced by scaling in frequency", JASA 106(3), reports that the
spectral difference between two listeners' directional transfer functions is reduced when one of
them is stretched or compressed in frequency by a factor found for that pair).  :func:`varied_head`
applies one to a whole HRTF set.

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

#: Where the measured heads other than the shipped KEMAR live (outside the repository).
SHARED_HRTF_DIR = Path(os.environ.get("STASE_SHARED_HRTF", Path(__file__).resolve().parents[3] / "shared" / "data" / "hrtf"))
#: Head name -> SOFA file in :data:`SHARED_HRTF_DIR` (None: the shipped MIT KEMAR set).
HEADS = {"kemar": None, "ku100": "ku100_thkoeln_lebedev2702_48k.sofa",
         "sonicom_a": "sonicom_axd_subject_a_48k.sofa"}
#: Head variation: range of the interaural onset-difference scale (head size, +-10 %) ...
ITD_SCALE_RANGE = (0.9, 1.1)
#: ... the largest |gain| of the smooth per-ear spectral perturbation, dB (each clip draws its own
#: bound in [1, SPECTRAL_BOUND_DB]) and the log-spaced frequencies it is drawn at (Hz; linear in
#: log frequency between them, flat beyond: the curve never leaves the knots' range) ...
SPECTRAL_BOUND_DB = 2.0
SPECTRAL_KNOTS_HZ = tuple(float(f) for f in np.geomspace(200.0, 16000.0, 8))
#: ... and the probability that a clip's head is mixed with another training head (weight U(0, 1)).
MIX_PROB = 0.5
#: Frequency scaling of the filters' magnitudes (``frequency_scaling=True``), log-uniform: a factor
#: s moves a spectral notch at f to s f (Middlebrooks 1999; +-17 % in log frequency here).
FREQUENCY_SCALE_RANGE = (0.85, 1.0 / 0.85)


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
    head: str = "kemar"
    variation: object = None                    # HeadVariation or None

    def class_vector(self) -> np.ndarray:
        v = np.zeros(len(ROLES), dtype=np.float32)
        for role in self.roles:
            if role is not None:
                v[ROLES.index(role)] = 1.0
        return v


# ----------------------------------------------------------------------------------------------
# renderer pieces: the runtime's own (training imports the runtime, never the reverse)

def hrtf_set():
    """The shipped MIT KEMAR set at 32 kHz (``stase.dsp.hrtf.load_hrtf``)."""
    return head_set("kemar")


def head_path(head: str) -> Path | None:
    """The SOFA file of ``head`` (None: the shipped KEMAR); ``InputError`` for an unknown head or a
    missing file."""
    from stase.core.errors import InputError
    if head not in HEADS:
        raise InputError(f"head must be one of {sorted(HEADS)}, got {head!r}")
    if HEADS[head] is None:
        return None
    path = SHARED_HRTF_DIR / HEADS[head]
    if not path.is_file():
        raise InputError(f"the {head} HRTF set is not here: {path} (set STASE_SHARED_HRTF to its folder)")
    return path


_HEAD_SETS: dict = {}


def head_set(head: str = "kemar"):
    """The HRTF set of ``head`` (:data:`HEADS`) at 32 kHz (``stase.dsp.hrtf.load_hrtf``), loaded once."""
    if head not in _HEAD_SETS:
        from stase.dsp.hrtf import load_hrtf
        _HEAD_SETS[head] = load_hrtf(head_path(head), sample_rate=SAMPLE_RATE)
    return _HEAD_SETS[head]


def room_ids() -> tuple[str, ...]:
    """The preset rooms (``stase.presets.load_rooms``), sorted."""
    from stase.presets import load_rooms
    return tuple(sorted(load_rooms()))


def elevation_range() -> tuple[float, float]:
    """Lowest and highest elevation of the HRTF set's measured directions, degrees."""
    el = hrtf_set().directions_deg[:, 1]
    return float(el.min()), float(el.max())


#: Dry scenes of the named heads' sets, by ``id`` of the set (an ``HrtfSet`` is not hashable),
#: and of the current group's varied head (one kept at a time).
_SCENES: dict[int, tuple] = {}


def _dry_scene(hrtf):
    """A dry ``stase.dsp.scene.SceneRenderer`` at 32 kHz for ``hrtf``, cached for the named heads."""
    from stase.dsp.scene import SceneRenderer
    kept = _SCENES.get(id(hrtf))
    if kept is not None and kept[0] is hrtf:
        return kept[1]
    scene = SceneRenderer(sample_rate=SAMPLE_RATE, block_size=1024, room=None, hrtf=hrtf, max_sources=4)
    if any(hrtf is named for named in _HEAD_SETS.values()):
        _SCENES[id(hrtf)] = (hrtf, scene)
    else:   # a varied head: only the current group's is kept
        for k in [k for k, (kept_set, _) in _SCENES.items()
                  if not any(kept_set is named for named in _HEAD_SETS.values())]:
            del _SCENES[k]
        _SCENES[id(hrtf)] = (hrtf, scene)
    return scene


def render_source(mono: np.ndarray, azimuth_deg: float, elevation_deg: float, distance_m: float,
                  room_id: str, role: str | None = None, hrtf=None, room_hrtf=None) -> np.ndarray:
    """Binaural (2, CLIP_SAMPLES) float64 of a mono source at a position in a room.

    Direct path: our ``stase.dsp.scene.SceneRenderer`` (dry) in ``hrtf`` mode (1/r law, ISO 9613 air
    absorption, interpolated HRIR of ``hrtf``, an ``HrtfSet`` at 32 kHz; None: KEMAR).  Room:
    :func:`room_part`, what the scene adds for this static source (``role``: its directivity;
    None, a noise burst: a typical source), with the diffuse-field send gain of ``room_hrtf``
    (default ``hrtf``; see :func:`make_clip` for the varied heads).
    """
    hrtf = hrtf_set() if hrtf is None else hrtf
    scene = _dry_scene(hrtf)
    for track in list(scene.source_ids):
        scene.remove_source(track)
    scene.reset()
    scene.add_source("s", azimuth_deg=azimuth_deg, elevation_deg=elevation_deg,
                     distance_m=distance_m, mode="hrtf")
    out = scene.process(mono[None, :CLIP_SAMPLES].astype(np.float32)).astype(np.float64)
    response = room_part(room_id, azimuth_deg, distance_m, role, hrtf if room_hrtf is None else room_hrtf)
    out += signal.fftconvolve(mono[None, :CLIP_SAMPLES], response[:, :CLIP_SAMPLES], axes=1)[:, :CLIP_SAMPLES]
    return out


def room_part(room_id: str, azimuth_deg: float, distance_m: float, role: str | None = None,
              hrtf=None) -> np.ndarray:
    """(2, n) float64 room part of the scene's impulse response for a static source.

    ``stase.dsp.rooms.static_source_response`` in ``hrtf`` mode (the source's distance decay, its two
    nearest early-reflection sectors and its role's directivity; equal to the streamed scene's wet
    part, see its test), truncated to one clip; we apply it offline with one FFT convolution because
    the block-streamed reverb costs ~0.1 s per clip.  A broken room preset raises (no stand-in).
    ``hrtf``: the clip's head (its diffuse-field gain sets the room's send; None: KEMAR).
    """
    from stase.dsp.rooms import static_source_response
    response = static_source_response(room_id, SAMPLE_RATE, azimuth_deg, distance_m, role,
                                      mode="hrtf", hrtf=hrtf_set() if hrtf is None else hrtf)
    return np.asarray(response[:, :CLIP_SAMPLES], dtype=np.float64)


# ----------------------------------------------------------------------------------------------
# head variation (train split only)

@dataclass(frozen=True)
class HeadVariation:
    """One clip's change of its head: see the module docstring.

    itd_scale : factor on each direction's interaural onset difference (the earlier ear stays).
    ear_gain_db : (2, len(SPECTRAL_KNOTS_HZ)) gains at the knots per ear (left, right), dB.
    mix_head : the other training head mixed in, or None; mix_weight : its share, 0..1.
    """

    itd_scale: float = 1.0
    ear_gain_db: tuple = ((0.0,) * len(SPECTRAL_KNOTS_HZ),) * 2
    mix_head: str | None = None
    mix_weight: float = 0.0
    frequency_scale: float = 1.0


def draw_variation(rng: np.random.Generator, head: str, heads,
                   frequency_scaling: bool = False) -> HeadVariation:
    """A random :class:`HeadVariation` of ``head``; the mixed-in head is one of ``heads`` (the
    training heads; never a held-out one) other than ``head``.  ``frequency_scaling``: also draw a
    frequency scale (log-uniform in :data:`FREQUENCY_SCALE_RANGE`), after every other draw, so
    the rest of the variation is the same with or without it."""
    itd_scale = float(rng.uniform(*ITD_SCALE_RANGE))
    bound = float(rng.uniform(1.0, SPECTRAL_BOUND_DB))
    gains = rng.uniform(-bound, bound, size=(2, len(SPECTRAL_KNOTS_HZ)))
    others = sorted(h for h in heads if h != head)
    mix_head, weight = None, 0.0
    if others and rng.random() < MIX_PROB:
        mix_head, weight = others[int(rng.integers(len(others)))], float(rng.uniform(0.0, 1.0))
    scale = 1.0
    if frequency_scaling:
        scale = float(np.exp(rng.uniform(*np.log(FREQUENCY_SCALE_RANGE))))
    return HeadVariation(itd_scale, tuple(tuple(float(g) for g in ear) for ear in gains), mix_head, weight,
                         scale)


def ear_gain_db(variation: HeadVariation, frequency_hz) -> np.ndarray:
    """(2, F) gain (dB) of the spectral perturbation at ``frequency_hz``: linear in log frequency
    between the knots, flat beyond them, so never beyond the largest |knot| (the bound)."""
    log_f = np.log(np.maximum(np.asarray(frequency_hz, dtype=float), 1.0))
    knots = np.log(np.asarray(SPECTRAL_KNOTS_HZ))
    return np.stack([np.interp(log_f, knots, np.asarray(ear)) for ear in variation.ear_gain_db])


def scale_itd(delays: np.ndarray, scale: float) -> np.ndarray:
    """Onset delays (M, 2) samples with each direction's interaural difference times ``scale``:
    the earlier ear keeps its delay, the later one moves (``d_min + scale (d - d_min)``), so the
    ITD is exactly ``scale`` times the original (a head ``scale`` times as wide, Woodworth)."""
    delays = np.asarray(delays, dtype=np.float64)
    first = delays.min(axis=1, keepdims=True)
    return first + scale * (delays - first)


def minimum_phase_spectrum(gain_db: np.ndarray, n: int) -> np.ndarray:
    """Minimum-phase spectrum (..., n // 2 + 1) complex with magnitude ``gain_db`` (dB on the
    ``rfftfreq(n)`` grid): the folded real cepstrum of the log magnitude (Oppenheim & Schafer)."""
    cepstrum = np.fft.irfft(np.asarray(gain_db, dtype=float) * (np.log(10.0) / 20.0), n, axis=-1)
    folded = np.zeros_like(cepstrum)
    folded[..., 0] = cepstrum[..., 0]
    folded[..., 1:n // 2] = 2.0 * cepstrum[..., 1:n // 2]
    folded[..., n // 2] = cepstrum[..., n // 2]
    return np.exp(np.fft.rfft(folded, n, axis=-1))


def frequency_scaled_db(spectrum: np.ndarray, scale: float) -> np.ndarray:
    """Magnitude (dB) of ``spectrum`` (..., K) on the same ``rfftfreq`` grid scaled in frequency:
    ``out(f) = |H|(f / scale)``, linear between bins, the last bin's value held beyond it (a notch
    at f moves to ``scale * f``).  The mean power over every filter is kept (the set's
    diffuse-field level does not move)."""
    db = 20.0 * np.log10(np.maximum(np.abs(spectrum), 1e-12))
    k = spectrum.shape[-1]
    position = np.minimum(np.arange(k) / scale, k - 1)
    low = np.floor(position).astype(int)
    high = np.minimum(low + 1, k - 1)
    frac = position - low
    warped = db[..., low] * (1.0 - frac) + db[..., high] * frac
    power = np.mean(10.0 ** (db / 10.0))
    return warped + 10.0 * np.log10(power / max(np.mean(10.0 ** (warped / 10.0)), 1e-30))


@functools.lru_cache(maxsize=8)
def head_on_grid(other: str, head: str) -> tuple[np.ndarray, np.ndarray]:
    """``other``'s onset-aligned filters (M, 2, L) float64 and delays (M, 2) interpolated at
    ``head``'s M measured directions (``HrtfSet.interpolate``): the two heads at the same
    directions, ready to be mixed (aligned, so the mix does not comb-filter)."""
    target, source = head_set(head), head_set(other)
    if source.filter_length != target.filter_length:
        raise ValueError(f"{other} and {head} filters differ in length at {SAMPLE_RATE} Hz")
    aligned = np.zeros(target.aligned.shape)
    delays = np.zeros(target.delays.shape)
    for m, (az, el) in enumerate(target.directions_deg):
        aligned[m], delays[m] = source.interpolate(float(az), float(el))
    return aligned, delays


def varied_head(head: str, variation: HeadVariation):
    """``head``'s set with ``variation`` applied to every direction (a new ``HrtfSet``).

    Order: the mix with the other head (aligned filters and delays, weight ``mix_weight``), the
    ITD scale (:func:`scale_itd`), then the per-ear spectral gain as a minimum-phase filter on the
    aligned filters (causal: nothing rings before the onset, so cutting back to the filter length
    loses only the short filter's tail; the diffuse-field power follows the drawn curve within
    0.3 dB from 200 Hz to 12 kHz, see the tests).  With a frequency scale other than 1 each
    aligned filter becomes the minimum-phase filter of its scaled magnitude
    (:func:`frequency_scaled_db`) plus the ear gain.
    """
    import dataclasses
    base = head_set(head)
    aligned = base.aligned.astype(np.float64)
    delays = base.delays.copy()
    if variation.mix_head is not None and variation.mix_weight > 0.0:
        other_aligned, other_delays = head_on_grid(variation.mix_head, head)
        w = variation.mix_weight
        aligned = (1.0 - w) * aligned + w * other_aligned
        delays = (1.0 - w) * delays + w * other_delays
    delays = np.clip(scale_itd(delays, variation.itd_scale), 0.0, None)
    from stase.dsp.hrtf import MAX_ONSET_DELAY
    delays = np.minimum(delays, MAX_ONSET_DELAY)
    n = 4 * base.filter_length
    ear_db = ear_gain_db(variation, np.fft.rfftfreq(n, 1.0 / SAMPLE_RATE))
    spectrum = np.fft.rfft(aligned, n=n, axis=-1)
    if variation.frequency_scale != 1.0:
        # the scaled magnitude and the ear gain as one minimum-phase filter (an HRTF's aligned
        # filter is close to minimum phase; its delay is carried by ``delays``)
        spectrum = minimum_phase_spectrum(frequency_scaled_db(spectrum, variation.frequency_scale)
                                          + ear_db[None], n)
    else:
        spectrum = spectrum * minimum_phase_spectrum(ear_db, n)[None]
    aligned = np.fft.irfft(spectrum, n=n, axis=-1)[..., :base.filter_length]
    return dataclasses.replace(base, aligned=aligned.astype(np.float32), delays=delays,
                               source=f"{base.source} varied {variation}", _spectra={})


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


#: Entropy added to a clip's seed for its head-variation stream (apart from its recipe's stream).
VARIATION_STREAM = 17
#: Consecutive clips (indices ``k * VARIATION_GROUP ..``) heard through one varied head.
VARIATION_GROUP = 8
#: The last varied head: ((head, variation), HrtfSet); a group's clips are rendered in a row.
_LAST_VARIED: list = [None, None]


def group_variation(seed: int, stage: int, index: int, head: str, heads,
                    frequency_scaling: bool = False) -> tuple:
    """(variation, varied ``HrtfSet``) of clip ``index``'s group (:data:`VARIATION_GROUP`)."""
    variation = draw_variation(np.random.default_rng([seed, stage, index // VARIATION_GROUP, VARIATION_STREAM]),
                               head, heads, frequency_scaling)
    key = (head, variation)
    if _LAST_VARIED[0] != key:
        _LAST_VARIED[:] = [key, varied_head(head, variation)]
    return variation, _LAST_VARIED[1]


def make_clip(split: str, index: int, stage: int = 1, head: str = "kemar",
              head_variation=None, frequency_scaling: bool = False) -> Clip:
    """The deterministic clip ``index`` of ``split`` ("train" or "test") at curriculum ``stage``.

    ``head``: the head it is heard through (:data:`HEADS`; the recipe does not depend on it).
    ``head_variation``: None (the head as measured) or the training heads (a sequence of names)
    for :func:`draw_variation`; only on the train split.  ``frequency_scaling``: the variation also
    scales the filters in frequency (:data:`FREQUENCY_SCALE_RANGE`; needs ``head_variation``).
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    seed = TRAIN_SEED if split == "train" else TEST_SEED
    hrtf = head_set(head)
    variation = None
    if head_variation is not None:
        if split != "train":
            raise ValueError("head_variation augments the train split only (the test split is held out as measured)")
        heads = tuple(head_variation)
        for name in heads:
            head_path(name)
        variation, hrtf = group_variation(seed, stage, index, head, heads, frequency_scaling)
    elif frequency_scaling:
        raise ValueError("frequency_scaling is part of the head variation: give head_variation too")
    # the room's send follows the head's diffuse-field gain: a mix of heads moves it by up to
    # several dB (KEMAR -9.4, KU100 -2.1, SONICOM A -16.2 dB), the ITD and the spectral gains
    # by a fraction of one (-9.4 -> -9.1 dB measured), which is not worth its 0.1-0.2 s per clip
    room_hrtf = hrtf if variation is not None and variation.mix_head is not None else head_set(head)
    rng = np.random.default_rng([seed, stage, index])
    bank = source_bank(split)
    rooms = room_ids()
    room = rooms[rng.integers(len(rooms))]
    el_lo, el_hi = elevation_range()
    n_sources = 2 if (stage >= 2 and rng.random() < 0.5) else 1
    clip = Clip(audio=np.zeros((2, CLIP_SAMPLES), np.float32), solos=[], room=room, head=head,
                variation=variation)
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
        wet = render_source(mono, az, el, dist, room, role, hrtf, room_hrtf=room_hrtf)
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
                  progress: bool = True, name: str | None = None, head: str = "kemar",
                  head_variation=None, frequency_scaling: bool = False) -> Path:
    """Render clips ``start..start+n_clips`` to ``folder/{name}.npy`` (features, float16; ``name``
    defaults to ``{split}_s{stage}``) plus ``.labels.npz``; resumes a partly written set (rows
    already done are kept).  A validation split for model selection is train-seed clips at indices
    no training set reaches, e.g. ``split="train", start=900_000, name="valid_s1"``.
    ``head`` and ``head_variation``: as :func:`make_clip` (one head per set; a several-head training
    set is several folders or index ranges, which ``train.load_sets`` concatenates)."""
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
        clip = make_clip(split, start + i, stage, head=head, head_variation=head_variation,
                         frequency_scaling=frequency_scaling)
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
            "hrtf": head_set(head).source, "rooms": list(room_ids())}
    if head != "kemar" or head_variation is not None:   # kept out for KEMAR: old sets stay equal
        meta.update(head=head, head_variation=None if head_variation is None else list(head_variation))
    if frequency_scaling:
        meta.update(frequency_scale_range=list(FREQUENCY_SCALE_RANGE))
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
    parser.add_argument("--head", default="kemar", choices=sorted(HEADS))
    parser.add_argument("--vary-heads", nargs="*", default=None,
                        help="head variation (train split), mixing with these training heads")
    parser.add_argument("--frequency-scaling", action="store_true",
                        help="head variation also scales the filters in frequency (FREQUENCY_SCALE_RANGE)")
    a = parser.parse_args()
    write_dataset(a.folder, a.split, a.n, a.stage, a.start, name=a.name, head=a.head,
                  head_variation=a.vary_heads, frequency_scaling=a.frequency_scaling)
