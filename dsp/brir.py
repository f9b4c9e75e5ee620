"""Synthesis of binaural room impulse responses (BRIRs) for the room presets.

What it holds
-------------
``synthesize_room(room, sample_rate, hrtf)``  :class:`RoomResponse`: diffuse tail + early
                                              reflections per direction sector
``synthesize_brir(room, sample_rate, hrtf)``  float32 (2, n): the reference response (a source
                                              at the preset's stage position) = tail + sector 0 deg
``shoebox_images(...)``                       image sources of a shoebox (Allen & Berkley 1979)
``reflections(room, sample_rate, source)``    image sources: delay, amplitude, direction
``band_rt60_s(room)``                         reverberation time per octave band
``diffuse_coherence(f)``                      target interaural coherence of the diffuse tail
``match_interaural_spectrum(tail, rate)``     the tail's interaural cross-spectrum set to that
                                              target (no chance level or phase difference)
``diffuse_field_power(hrtf, f)``              an HRTF set's power averaged over all directions
``head_mid_band_energy(hrtf)``                that average in the 500 Hz-1 kHz octaves
``mode_diffuse_gains(hrtf, rate)``            the same figure for each localisation mode

Model
-----
Time 0 is the arrival of the direct sound, which the scene renders itself: the responses hold
only what comes after it (a send reverb).

* **Early reflections, per direction**: the image sources of the shoebox (Allen & Berkley 1979,
  enumerated in closed form, equal to pyroomacoustics' image-source model), surfaces absorbing
  uniformly with the coefficient Sabine's formula gives for the preset's RT60.  Each reflection
  keeps its delay relative to the direct sound, its amplitude ``damping / r`` (direct sound at
  1 m = 1) and its direction, and is rendered through the HRTF set at that direction
  (:meth:`stase.dsp.hrtf.HrtfSet.hrir`, interpolated, with its onset delay; without an HRTF set a
  Woodworth ITD and a broadband Brown-Duda gain per ear).  Because the reflections of a source on
  the left come mostly from the left, they are computed for :data:`SECTOR_COUNT` source
  directions around the listener (every 30 deg, at the preset's stage distance, pulled in to stay
  0.5 m inside the walls); the scene pans each source's send between the two nearest sectors, so
  its early reflections carry its own side (``stase.dsp.kernels.sector_weights``).  Outdoors
  (``params.model: free_field``) only the ground reflection exists.
* **Diffuse tail** (shared by every source): two Gaussian noises mixed per frequency so the ears'
  coherence follows :func:`diffuse_coherence`, coloured by the HRTF set's diffuse-field response
  (the power average over all directions, both ears alike; the reverberant field reaches the ears
  through the head as the direct sound does), split into octave bands, each normalised to the
  same expected energy in both ears (no chance level difference between the ears) and decaying as
  ``exp(-6.91 t / T_b)``; then its whole-signal interaural cross-spectrum is brought to its
  expectation in bands at most 100 Hz wide (:func:`match_interaural_spectrum`: one noise draw's
  chance interaural phase otherwise pulls every source of the room to one side).
  ``T_b`` is the preset RT60 (500 Hz-1 kHz) with a bass ratio below
  500 Hz and air absorption (ISO 9613-1 via ``stase.dsp.distance``) added in Sabine's formula
  ``1/T = 1/T_surfaces + 4 m c / (24 ln 10)``.  Its level is the statistical reverberant energy,
  ``16 pi / A`` relative to the direct sound at 1 m with ``A = 0.161 V / T`` (Kuttruff, Room
  Acoustics, 5th ed., ch. 5).  The tail fades in (raised cosine) between the first reflection and
  the mixing time ``sqrt(V) ms`` (Polack 1993), while the image sources fade out
  (energy-complementary).

Level: everything is relative to the direct sound at 1 m of a head whose diffuse-field energy in
the 500 Hz-1 kHz octaves is 1: the HRIRs of the reflections are divided by the root of
:func:`head_mid_band_energy` and the tail's colouring is 1 on average there (the scene multiplies
a source's send back by the root of its mode's figure, :func:`mode_diffuse_gains`, so direct and
reverberant sound keep the HRTF set's own balance at every frequency).  The response is then multiplied by the critical distance
``r_c = sqrt(A / 16 pi)`` (= ``stase.dsp.distance.critical_distance_m``), because the scene's send gain
is ``1 / r_c`` (``stase.dsp.distance.reverb_send_gain``).  Directivity (``stase.dsp.directivity``) and
Barron's decay of the reflected energy with source distance are applied by the scene per source.
"""
from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np

from stase.core.conventions import HEAD_RADIUS_M, SPEED_OF_SOUND_M_S, cartesian_to_spherical

OCTAVE_BANDS_HZ = (125.0, 250.0, 500.0, 1000.0, 2000.0, 4000.0, 8000.0, 16000.0)
#: Effective ear distance of the diffuse-field coherence model sinc(2 pi f d / c), metres:
#: 2.0 x the 0.175 m ear spacing puts the first zero at 490 Hz, where the late tails of the
#: measured seminar-room KEMAR responses cross zero (474-495 Hz; ../shared/data/
#: brir_rostock_seminar, CC0); Jeub et al. 2010 (IEEE TASLP 18(7)) give 2.2 for a spherical head
#: model (450 Hz); sinc form: Cook et al. 1955.
COHERENCE_DISTANCE_M = 2.0 * 2.0 * HEAD_RADIUS_M
#: Widest band (Hz) in which the tail's interaural cross-spectrum is set to its expectation
#: (:func:`match_interaural_spectrum`; wider for the shortest tails, :func:`interaural_band_hz`):
#: narrow enough that the whole-signal cross-correlation equals the expected one at every lag
#: of the +-1 ms a head's ITD spans.
INTERAURAL_BAND_HZ = 100.0
#: The octaves in which presets quote RT60 and in which levels are matched (500 Hz and 1 kHz).
MID_BAND_HZ = (355.0, 1414.0)
MAX_LENGTH_S = 12.0
#: Early-reflection sectors: source directions every 30 deg round the listener (ascending).
SECTOR_COUNT = 12
SECTOR_AZIMUTHS_DEG = np.arange(-150.0, 180.0 + 1e-9, 360.0 / SECTOR_COUNT)
#: How far inside the walls a sector's source stays, metres.
SECTOR_WALL_MARGIN_M = 0.5


def mid_band_energy_ratio(ir, sample_rate: float) -> float:
    """Energy of ``ir`` (mean over channels) in :data:`MID_BAND_HZ`, relative to a unit impulse.

    1.0 means the response carries as much 500 Hz-1 kHz energy as a unit-energy white impulse.
    """
    from scipy.signal import butter, sosfilt
    h = np.atleast_2d(np.asarray(ir, dtype=np.float64))
    hi = min(MID_BAND_HZ[1], 0.45 * sample_rate)
    sos = butter(4, [MID_BAND_HZ[0], hi], btype="band", fs=sample_rate, output="sos")
    impulse = np.zeros(int(0.5 * sample_rate))
    impulse[0] = 1.0
    reference = np.sum(sosfilt(sos, impulse) ** 2)
    padded = np.concatenate([h, np.zeros((h.shape[0], int(0.05 * sample_rate)))], axis=1)
    return float(np.mean(np.sum(sosfilt(sos, padded, axis=1) ** 2, axis=1)) / reference)


def critical_distance_m(room: dict) -> float:
    """``sqrt(A / 16 pi)`` with Sabine's ``A = 0.161 V / T`` (as ``stase.dsp.distance``)."""
    area = 0.161 * room_volume_m3(room) / max(float(room["rt60_s"]), 1e-3)
    return math.sqrt(area / (16.0 * math.pi))


def room_volume_m3(room: dict) -> float:
    return float(np.prod(room["dimensions_m"]))


def mixing_time_s(room: dict) -> float:
    """Perceptual mixing time ``sqrt(V)`` ms (Polack 1993), clamped to 10..120 ms."""
    return float(np.clip(math.sqrt(room_volume_m3(room)) * 1e-3, 0.010, 0.120))


def band_rt60_s(room: dict, sample_rate: float | None = None) -> dict[float, float]:
    """Reverberation time per octave band (Hz -> s) from the preset's mid-band RT60."""
    from stase.dsp.distance import air_absorption_db_per_m
    params = room.get("params") or {}
    rt_mid = float(room["rt60_s"])
    bass_ratio = float(params.get("bass_ratio", 1.1))

    def m_per_m(f):  # energy attenuation coefficient of air, 1/m
        return float(air_absorption_db_per_m(f)) / (10.0 * math.log10(math.e))

    air = 4.0 * SPEED_OF_SOUND_M_S / (24.0 * math.log(10.0))  # 1/T = 1/T_surf + air * m
    inv_surf = max(1.0 / rt_mid - air * m_per_m(707.0), 1e-3)
    bass = {125.0: 1.0 + 1.2 * (bass_ratio - 1.0), 250.0: 1.0 + 0.8 * (bass_ratio - 1.0)}
    out = {}
    for f in OCTAVE_BANDS_HZ:
        if sample_rate is not None and f / math.sqrt(2.0) >= sample_rate / 2.0:
            break
        out[f] = 1.0 / (inv_surf / bass.get(f, 1.0) + air * m_per_m(f))
    return out


def diffuse_coherence(frequency_hz):
    """Target interaural coherence of a diffuse field: sinc(2 pi f d / c), d = 0.385 m."""
    k = 2.0 * np.pi * np.asarray(frequency_hz, dtype=float) * COHERENCE_DISTANCE_M / SPEED_OF_SOUND_M_S
    return np.sinc(k / np.pi)


def _positions(room: dict) -> tuple[np.ndarray, np.ndarray]:
    """Source and listener positions in room coordinates (metres)."""
    dims = np.asarray(room["dimensions_m"], dtype=float)
    params = room.get("params") or {}
    listener = np.asarray(params.get("listener_m", [0.55 * dims[0], 0.45 * dims[1], min(1.2, 0.5 * dims[2])]))
    source = np.asarray(params.get("source_m", [0.25 * dims[0], 0.5 * dims[1], min(1.5, 0.6 * dims[2])]))
    return source.astype(float), listener.astype(float)


def facing_yaw_rad(room: dict) -> float:
    """Direction the listener faces (towards the preset's source), radians in room coordinates."""
    source, listener = _positions(room)
    return math.atan2(source[1] - listener[1], source[0] - listener[0])


def sector_sources(room: dict) -> tuple[np.ndarray, np.ndarray]:
    """Source positions of the early-reflection sectors and their distances from the listener.

    Sector ``k`` lies at azimuth :data:`SECTOR_AZIMUTHS_DEG` ``[k]`` from the listener's facing
    direction, at the preset's source-listener distance (horizontal) and source height; a ray that
    would leave the room stops :data:`SECTOR_WALL_MARGIN_M` inside the walls.  The 0 deg sector is
    the preset's source itself.  Returns ``(positions (K, 3), distances_m (K,))``.
    """
    source, listener = _positions(room)
    dims = np.asarray(room["dimensions_m"], dtype=float)
    yaw = facing_yaw_rad(room)
    reach = float(np.hypot(*(source[:2] - listener[:2])))
    positions, distances = [], []
    for azimuth in SECTOR_AZIMUTHS_DEG:
        if azimuth == 0.0:
            positions.append(source.copy())
            distances.append(float(np.linalg.norm(source - listener)))
            continue
        d = np.array([math.cos(yaw + math.radians(azimuth)), math.sin(yaw + math.radians(azimuth))])
        length = reach
        for axis in range(2):
            margin = min(SECTOR_WALL_MARGIN_M, 0.25 * dims[axis])
            if d[axis] > 1e-9:
                length = min(length, (dims[axis] - margin - listener[axis]) / d[axis])
            elif d[axis] < -1e-9:
                length = min(length, (margin - listener[axis]) / d[axis])
        length = max(length, 0.1)
        p = np.array([listener[0] + length * d[0], listener[1] + length * d[1], source[2]])
        positions.append(p)
        distances.append(float(np.linalg.norm(p - listener)))
    return np.array(positions), np.array(distances)


def shoebox_images(dims, source, reach_m: float, reflection_amplitude: float):
    """Image sources of a shoebox with uniform wall reflection (Allen & Berkley 1979).

    Along each axis of length ``L`` the images sit at ``2 n L + s`` (``2|n|`` reflections) and
    ``2 n L - s`` (``|2n - 1|`` reflections); every image of a shoebox is visible.

    Returns
    -------
    positions (3, N) of the images within ``reach_m`` of the source's own position (the direct
    sound, order 0, excluded) and their amplitudes ``reflection_amplitude ** order`` (N,).
    """
    dims = np.asarray(dims, dtype=float)
    source = np.asarray(source, dtype=float)
    coords, orders = [], []
    for axis in range(3):
        count = int(math.ceil(reach_m / (2.0 * dims[axis]))) + 1
        n = np.arange(-count, count + 1)
        coords.append(np.concatenate([2.0 * n * dims[axis] + source[axis], 2.0 * n * dims[axis] - source[axis]]))
        orders.append(np.concatenate([2 * np.abs(n), np.abs(2 * n - 1)]))
    grid = np.meshgrid(*coords, indexing="ij")
    order = sum(np.meshgrid(*orders, indexing="ij")).ravel()
    positions = np.stack([g.ravel() for g in grid])
    keep = (order > 0) & (np.linalg.norm(positions - source[:, None], axis=0) <= reach_m)
    return positions[:, keep], float(reflection_amplitude) ** order[keep]


def wall_absorption(room: dict) -> float:
    """Energy absorption coefficient of the walls: ``params.absorption`` or Sabine's for RT60."""
    params = room.get("params") or {}
    if params.get("absorption") is not None:
        return float(params["absorption"])
    dims = np.asarray(room["dimensions_m"], dtype=float)
    surface = 2.0 * (dims[0] * dims[1] + dims[0] * dims[2] + dims[1] * dims[2])
    # Sabine: T = 24 ln(10) V / (c S alpha), as pyroomacoustics.inverse_sabine
    alpha = 24.0 * math.log(10.0) * room_volume_m3(room) / (SPEED_OF_SOUND_M_S * surface * float(room["rt60_s"]))
    return float(min(alpha, 1.0))


def reflections(room: dict, sample_rate: float, source=None, facing_yaw: float | None = None):
    """Image sources of the preset room up to the mixing time (plus a margin).

    Parameters
    ----------
    source : position of the source (default: the preset's); ``facing_yaw``: direction the
        listener faces, radians (default: towards the preset's source).

    Returns
    -------
    delay_s (K,) relative to the direct sound, amplitude (K,) (direct at 1 m = 1),
    azimuth_deg (K,), elevation_deg (K,) in the listener's head frame.
    """
    preset_source, listener = _positions(room)
    source = preset_source if source is None else np.asarray(source, dtype=float)
    params = room.get("params") or {}
    r0 = float(np.linalg.norm(source - listener))
    horizon_s = 1.5 * mixing_time_s(room)
    if params.get("model") == "free_field":
        ground = float(params.get("ground_absorption", 0.4))
        images = np.array([[source[0]], [source[1]], [-source[2]]])
        damping = np.array([math.sqrt(1.0 - ground)])
    else:
        reach = 2.0 * r0 + SPEED_OF_SOUND_M_S * horizon_s
        images, damping = shoebox_images(room["dimensions_m"], source, reach,
                                         math.sqrt(1.0 - wall_absorption(room)))
    vec = images - listener[:, None]
    dist = np.linalg.norm(vec, axis=0)
    delay = (dist - r0) / SPEED_OF_SOUND_M_S
    keep = delay <= horizon_s
    vec, dist, delay, damping = vec[:, keep], dist[keep], delay[keep], damping[keep]
    # head frame: x ahead (the facing direction, horizontal), y to the left, z up
    yaw = facing_yaw_rad(room) if facing_yaw is None else float(facing_yaw)
    if source is not preset_source and facing_yaw is None:
        yaw = math.atan2(source[1] - listener[1], source[0] - listener[0])
    c, s = math.cos(yaw), math.sin(yaw)
    hx = c * vec[0] + s * vec[1]
    hy = -s * vec[0] + c * vec[1]
    az, el, _ = cartesian_to_spherical(hx, hy, vec[2])
    order = np.argsort(delay, kind="stable")
    return (delay[order], (damping / dist)[order], np.atleast_1d(az)[order],
            np.atleast_1d(el)[order])


def _train(times_samples: np.ndarray, amplitudes: np.ndarray, n: int) -> np.ndarray:
    """Impulses at fractional positions (linear interpolation between neighbours)."""
    out = np.zeros(n + 2)
    i = np.floor(times_samples).astype(np.int64)
    frac = times_samples - i
    ok = (i >= 0) & (i < n)
    np.add.at(out, i[ok], amplitudes[ok] * (1.0 - frac[ok]))
    np.add.at(out, i[ok] + 1, amplitudes[ok] * frac[ok])
    return out[:n]


def _render_hrtf(delay_s, amp, az, el, sample_rate, n, hrtf) -> np.ndarray:
    """Each reflection through the HRTF interpolated at its direction, at its (fractional) delay."""
    out = np.zeros((2, n + 2))
    for d, a, azimuth, elevation in zip(delay_s, amp, az, el):
        if a == 0.0:
            continue
        h = hrtf.hrir(float(azimuth), float(elevation))
        t = float(d) * sample_rate
        i = int(math.floor(t))
        if i >= n or i < 0:
            continue
        frac = t - i
        m = min(h.shape[1], n - i)
        out[:, i:i + m] += (a * (1.0 - frac)) * h[:, :m]
        out[:, i + 1:i + 1 + m] += (a * frac) * h[:, :m]
    return out[:, :n]


def _render_analytic(delay_s, amp, az, el, sample_rate, n) -> np.ndarray:
    """Woodworth ITD and a broadband Brown-Duda head-shadow gain per ear, per reflection."""
    lateral = np.arcsin(np.clip(np.sin(np.radians(az)) * np.cos(np.radians(el)), -1.0, 1.0))
    itd = HEAD_RADIUS_M / SPEED_OF_SOUND_M_S * (np.abs(lateral) + np.sin(np.abs(lateral)))
    out = np.zeros((2, n))
    for ear, side in ((0, 1.0), (1, -1.0)):
        # angle between the reflection and this ear's axis (left ear = +y)
        theta = np.degrees(np.arccos(np.clip(side * np.sin(lateral), -1.0, 1.0)))
        alpha = 1.05 + 0.95 * np.cos(np.radians(np.minimum(theta, 150.0)) / np.radians(150.0) * np.pi)
        far = (side * lateral) < 0
        t = delay_s + np.where(far, itd, 0.0)
        out[ear] = _train(t * sample_rate, amp * 0.5 * (1.0 + alpha), n)
    return out


_WEIGHTS_CACHE: dict = {}


def _direction_weights(hrtf) -> np.ndarray:
    """Solid angle each measured direction stands for (a third of its triangles' areas).

    Kept per direction grid (its directions' and faces' bytes): a varied head of the listener's
    data generator shares its base set's grid, and the weights cost ~0.6 s per set in a loop.
    """
    from stase.core.conventions import spherical_to_cartesian
    directions = np.ascontiguousarray(hrtf.directions_deg, dtype=np.float64)
    faces = np.ascontiguousarray(hrtf.faces, dtype=np.int64)
    key = (directions.tobytes(), faces.tobytes())
    kept = _WEIGHTS_CACHE.get(key)
    if kept is not None:
        return kept
    unit = np.column_stack(spherical_to_cartesian(directions[:, 0], directions[:, 1], 1.0))
    a, b, c = unit[faces[:, 0]], unit[faces[:, 1]], unit[faces[:, 2]]
    area = 0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=1) / 3.0
    weights = np.zeros(unit.shape[0])
    for corner in range(3):   # a direction in several faces gets a third of each one's area
        np.add.at(weights, faces[:, corner], area)
    weights = weights / weights.sum()
    weights.setflags(write=False)
    if len(_WEIGHTS_CACHE) >= 8:
        _WEIGHTS_CACHE.clear()
    _WEIGHTS_CACHE[key] = weights
    return weights


def diffuse_field_power(hrtf, frequency_hz) -> np.ndarray:
    """Power response of ``hrtf`` averaged over all directions (solid-angle weighted), per ear.

    Returns (2, F) at ``frequency_hz``; the uncovered cap below the lowest measured elevation
    counts as its nearest directions.  1 everywhere for ``hrtf=None`` (the analytic head).
    Computed in chunks of directions (a few MB) and kept per set (:func:`_diffuse_field_grid`).
    """
    f = np.asarray(frequency_hz, dtype=float)
    if hrtf is None:
        return np.ones((2, f.size))
    grid, average = _diffuse_field_grid(hrtf)
    return np.stack([np.interp(f, grid, average[ear]) for ear in range(2)])


_DIFFUSE_CACHE: dict = {}


def _diffuse_field_grid(hrtf) -> tuple[np.ndarray, np.ndarray]:
    """(frequencies, (2, F) average power) of an HRTF set, cached by its source, rate and taps."""
    key = (getattr(hrtf, "source", ""), int(hrtf.sample_rate), hrtf.aligned.shape, float(hrtf.aligned[0, 0].sum()))
    if key not in _DIFFUSE_CACHE:
        taps = hrtf.aligned
        n = max(2048, 1 << int(math.ceil(math.log2(taps.shape[-1]))))
        weights = _direction_weights(hrtf)
        average = np.zeros((2, n // 2 + 1))
        for start in range(0, taps.shape[0], 64):
            chunk = np.fft.rfft(np.asarray(taps[start:start + 64], dtype=np.float64), n, axis=-1)
            average += np.tensordot(weights[start:start + 64], np.abs(chunk) ** 2, axes=1)
        _DIFFUSE_CACHE[key] = (np.fft.rfftfreq(n, 1.0 / hrtf.sample_rate), average)
    return _DIFFUSE_CACHE[key]


def head_mid_band_energy(hrtf) -> float:
    """Diffuse-field energy of ``hrtf`` in the 500 Hz-1 kHz octaves (355-1414 Hz, mean of the
    ears and of the band's frequencies), 1 = flat.

    MIT KEMAR gives about -7 dB: its HRIRs are not diffuse-field equalised and carry little energy
    below 1 kHz.  The room responses are normalised by it, the scene's ``hrtf`` sends multiplied by
    its root (see the module docstring).
    """
    if hrtf is None:
        return 1.0
    # the mean power over the band's frequencies, as the energy of band-filtered noise weighs them
    f = np.linspace(MID_BAND_HZ[0], min(MID_BAND_HZ[1], 0.45 * hrtf.sample_rate), 512)
    return float(np.mean(diffuse_field_power(hrtf, f)))


def mode_diffuse_gains(hrtf, sample_rate: int) -> dict[str, float]:
    """Diffuse-field energy, in the 500 Hz-1 kHz octaves, of each localisation mode's ear response.

    The room responses are built for a head of energy 1 there; a source's send is multiplied by
    the root of its mode's figure so its direct and reverberant sound keep their physical balance:

    * ``pan``: the constant-power law puts ``cos^2`` of the energy in one channel, 1/2 on average
      over all directions;
    * ``itd_ild``: Brown & Duda's head shadow ``|1 + j alpha w / 2 w0|^2 / |1 + j w / 2 w0|^2``
      (w0 = c / a) averaged over directions (the cosine of the angle from the ear is uniform on the
      sphere) and over the band's frequencies;
    * ``hrtf``: :func:`head_mid_band_energy` of the HRTF set.
    """
    from stase.dsp.kernels import head_shadow_alpha
    f = np.linspace(MID_BAND_HZ[0], min(MID_BAND_HZ[1], 0.45 * sample_rate), 256)
    x = (2.0 * math.pi * f * HEAD_RADIUS_M / (2.0 * SPEED_OF_SOUND_M_S)) ** 2  # (w / 2 w0)^2
    cosines = np.linspace(-1.0, 1.0, 201)
    alpha = np.array([head_shadow_alpha(math.acos(u)) for u in cosines])
    shadow = (1.0 + alpha[:, None] ** 2 * x[None, :]) / (1.0 + x[None, :])
    return {"pan": 0.5, "itd_ild": float(np.mean(shadow)),
            "hrtf": head_mid_band_energy(hrtf)}


def _tail(room: dict, sample_rate: float, n: int, t_first: float, t_mix: float,
          rng: np.random.Generator, colour=None) -> tuple[np.ndarray, np.ndarray]:
    """Diffuse binaural tail (2, n) and its fade-in weight w(t) (energy fraction, 0..1).

    ``colour`` (n // 2 + 1,): power colouring of both ears (the diffuse-field HRTF), 1 if None.
    """
    freqs = np.fft.rfftfreq(n, 1.0 / sample_rate)
    noise = rng.standard_normal((2, n))
    spec = np.fft.rfft(noise, axis=1)
    phi = 0.5 * np.arccos(np.clip(diffuse_coherence(freqs), -1.0, 1.0))
    left = np.cos(phi) * spec[0] + np.sin(phi) * spec[1]
    right = np.cos(phi) * spec[0] - np.sin(phi) * spec[1]
    power = np.ones(freqs.size) if colour is None else np.asarray(colour, dtype=float)
    bands = band_rt60_s(room, sample_rate)
    centres = np.array(list(bands))
    # partition of unity over log-frequency: triangular weights between adjacent band centres
    pos = np.interp(np.log2(np.maximum(freqs, 1.0)), np.log2(centres), np.arange(centres.size))
    t = np.arange(n) / sample_rate
    volume = room_volume_m3(room)
    sigma0 = math.sqrt(16.0 * math.pi * 13.8155 / (0.161 * volume * sample_rate))
    out = np.zeros((2, n))
    for b, f in enumerate(centres):
        mask = np.clip(1.0 - np.abs(pos - b), 0.0, 1.0) * np.sqrt(power)
        # both ears get exactly the band's expected decaying energy: a chance level difference
        # between the ears of one noise draw would read as a lateral tail
        env = np.exp(-6.9078 * t / bands[f])
        decaying = [np.fft.irfft(spectrum * mask, n) * env for spectrum in (left, right)]
        energy = [float(np.sum(d ** 2)) for d in decaying]
        mean = 0.5 * (energy[0] + energy[1])
        for ear in range(2):
            out[ear] += decaying[ear] * (math.sqrt(mean / energy[ear]) if energy[ear] > 0.0 else 0.0)
    ramp = np.clip((t - t_first) / max(t_mix - t_first, 1e-3), 0.0, 1.0)
    weight = 0.5 - 0.5 * np.cos(np.pi * ramp)
    matched = out * sigma0 * np.sqrt(weight)
    # alternating projections: the matching filters spread over about 10 ms, the gate keeps
    # the tail from starting before the first reflection
    for _ in range(2):
        matched = match_interaural_spectrum(matched, sample_rate,
                                            band_hz=interaural_band_hz(float(room["rt60_s"])))
        matched[:, weight <= 0.0] = 0.0
    return matched, weight


def interaural_band_hz(rt60_s: float) -> float:
    """Widest band of :func:`match_interaural_spectrum` for a tail of mid-band ``rt60_s``, Hz.

    :data:`INTERAURAL_BAND_HZ`, or ``1.5 / tau`` with ``tau = T / 13.8`` (the energy decay time
    constant) when that is wider: the corrections' time response (about ``1 / B``) must stay
    shorter than the decay, or they move energy from the onset into the late tail (dry_studio,
    0.1 s: 1.4 dB above Sabine's level after 20 ms with 100 Hz bands, 0.5 dB with its 207 Hz).
    """
    tau = max(float(rt60_s), 1e-3) / 13.8155
    return max(INTERAURAL_BAND_HZ, 1.5 / tau)


def interaural_band_axis(frequency_hz, band_hz: float = INTERAURAL_BAND_HZ) -> np.ndarray:
    """Band coordinate ``u(f)`` of :func:`match_interaural_spectrum`: bands at integer ``u``.

    1/3-octave spacing from 20 Hz up to where a third of an octave is ``band_hz`` wide, then that
    constant width (so the whole-signal interaural cross-correlation matches its expectation over
    lags of +-1/(2 B), +-5 ms for 100 Hz, beyond the +-1 ms a head's ITD spans).
    """
    f = np.maximum(np.asarray(frequency_hz, dtype=float), 20.0)
    corner = float(band_hz) / (2.0 ** (1.0 / 3.0) - 1.0)  # 385 Hz for 100 Hz bands
    u_corner = 3.0 * math.log2(corner / 20.0)
    return np.where(f < corner, 3.0 * np.log2(f / 20.0), u_corner + (f - corner) / float(band_hz))


def match_interaural_spectrum(tail: np.ndarray, sample_rate: float, iterations: int = 3,
                              band_hz: float = INTERAURAL_BAND_HZ) -> np.ndarray:
    """The tail (2, n) with its whole-signal interaural cross-spectrum brought to its expectation.

    Why: the expected interaural cross-correlation of a diffuse field is an even function of
    the lag (its coherence is real, :func:`diffuse_coherence`).  One noise draw adds an odd part,
    and the tail is shared by every source of the room, so that chance part pulled all of them
    to one side: small_chamber's tail correlated best at +420 us, four times as strongly as
    expected there, and turned the broadband ITD of a source at -80 deg, 6.3 m away, to the
    left (+417 us; the measured seminar room: -703 us).

    How: in every band of :func:`interaural_band_axis` (triangular weights, a partition of
    unity) the side signal ``(L - R) / 2`` loses its component correlated with the mid signal
    ``(L + R) / 2`` (that component is the band's chance level difference and chance interaural
    phase), then mid and side are scaled to the energies ``(1 +- coherence) / 2`` of the band's
    energy, which is kept.  The factors vary smoothly across the bands (at most ``band_hz``
    wide, :func:`interaural_band_hz`), so their time response is short (about ``1 / band_hz``,
    10 ms) and the decay is kept; ``iterations`` settle the overlapping bands.  The overlap
    leaves the match approximate: per octave, level differences of a few tenths of a dB and
    coherence within 0.1 (from several dB and any value); the odd part of the tail's pink-noise
    cross-correlation within +-1 ms under 4 % of the even part (14 % in the 0.1 s dry_studio),
    from 40-120 %.
    """
    x = np.asarray(tail, dtype=np.float64)
    n = x.shape[1]
    padded = n + int(0.2 * sample_rate)  # room for the corrections' time response, no wrap-round
    spectrum = np.fft.rfft(x, padded, axis=1)
    f = np.fft.rfftfreq(padded, 1.0 / sample_rate)
    mid, side = 0.5 * (spectrum[0] + spectrum[1]), 0.5 * (spectrum[0] - spectrum[1])
    u = interaural_band_axis(f, band_hz)
    low = np.floor(u).astype(np.int64)
    frac = u - low
    bands = int(low.max()) + 2

    def band_sum(values):
        out = np.zeros(bands, dtype=values.dtype)
        np.add.at(out, low, (1.0 - frac) * values)
        np.add.at(out, low + 1, frac * values)
        return out

    def spread(per_band):
        return (1.0 - frac) * per_band[low] + frac * per_band[low + 1]

    coherence = diffuse_coherence(f)
    tiny = 1e-300
    for _ in range(iterations):
        power = np.abs(mid) ** 2 + np.abs(side) ** 2  # the band energies to keep
        total = band_sum(power)
        target = band_sum(coherence * power) / np.maximum(total, tiny)
        mid_energy = band_sum(np.abs(mid) ** 2)
        side = side - spread(band_sum(side * np.conj(mid)) / np.maximum(mid_energy, tiny)) * mid
        e_mid, e_side = band_sum(np.abs(mid) ** 2), band_sum(np.abs(side) ** 2)
        mid = mid * spread(np.sqrt(np.maximum(0.5 * total * (1.0 + target), 0.0) / np.maximum(e_mid, tiny)))
        side = side * spread(np.sqrt(np.maximum(0.5 * total * (1.0 - target), 0.0) / np.maximum(e_side, tiny)))
    return np.fft.irfft(np.stack([mid + side, mid - side]), padded, axis=1)[:, :n]


@dataclass
class RoomResponse:
    """A preset's binaural response, split so each source can have its own early reflections.

    Attributes
    ----------
    tail : float32 (2, n), the diffuse tail (shared by every source), scaled by r_c.
    sectors : float32 (K, 2, m), the early reflections of a source at each sector direction.
    sector_azimuths_deg : (K,) ascending azimuths of the sectors (all round the listener).
    sector_distances_m : (K,) distances of the sector sources from the listener.
    """

    tail: np.ndarray
    sectors: np.ndarray
    sector_azimuths_deg: np.ndarray
    sector_distances_m: np.ndarray

    @property
    def reference_index(self) -> int:
        return int(np.argmin(np.abs(self.sector_azimuths_deg)))

    def reference(self) -> np.ndarray:
        """The response of a source at the preset's own position: tail + the 0 deg sector."""
        s = self.sectors[self.reference_index]
        n = max(self.tail.shape[1], s.shape[1])
        out = np.zeros((2, n), dtype=np.float32)
        out[:, :self.tail.shape[1]] += self.tail
        out[:, :s.shape[1]] += s
        return out


def early_length(room: dict, sample_rate: int, hrtf=None) -> int:
    """Samples of a sector response: the mixing time, the longest HRIR and its onset, 2 ms."""
    taps = 0 if hrtf is None else hrtf.filter_length + int(np.ceil(np.max(hrtf.delays))) + 4
    return int(math.ceil((mixing_time_s(room) + 0.002) * sample_rate)) + taps


def synthesize_room(room: dict, sample_rate: int, hrtf=None) -> RoomResponse:
    """The room's tail and per-sector early reflections, scaled by the critical distance.

    Deterministic: the noise is seeded from the room id and the rate.
    """
    from stase.core.rates import check_sample_rate
    sample_rate = check_sample_rate(sample_rate, "sample_rate")
    t_mix = mixing_time_s(room)
    reference_delay = reflections(room, sample_rate)[0]
    t_first = float(reference_delay[0]) if reference_delay.size else 0.0
    t_first = min(t_first, 0.5 * t_mix)
    longest = max(band_rt60_s(room, sample_rate).values())
    n = int(min(MAX_LENGTH_S, t_mix + longest) * sample_rate)
    seed = zlib.crc32(f"{room['id']}:{int(sample_rate)}".encode())
    rng = np.random.default_rng(seed)
    head = head_mid_band_energy(hrtf)
    colour = None
    if hrtf is not None:
        colour = diffuse_field_power(hrtf, np.fft.rfftfreq(n, 1.0 / sample_rate)).mean(axis=0) / head
    tail, weight = _tail(room, sample_rate, n, t_first, t_mix, rng, colour)
    m = min(early_length(room, sample_rate, hrtf), n)
    positions, distances = sector_sources(room)
    yaw = facing_yaw_rad(room)
    times = np.arange(n) / sample_rate
    sectors = np.zeros((SECTOR_AZIMUTHS_DEG.size, 2, m))
    for k, position in enumerate(positions):
        delay, amp, az, el = reflections(room, sample_rate, source=position, facing_yaw=yaw)
        # image sources fade out as the tail fades in (energy-complementary)
        fade = np.sqrt(1.0 - np.interp(delay, times, weight))
        if hrtf is not None:
            sectors[k] = _render_hrtf(delay, amp * fade, az, el, sample_rate, m, hrtf) / math.sqrt(head)
        else:
            sectors[k] = _render_analytic(delay, amp * fade, az, el, sample_rate, m)
    taper = int(0.05 * sample_rate)
    tail[:, -taper:] *= 0.5 + 0.5 * np.cos(np.linspace(0.0, np.pi, taper))
    r_c = critical_distance_m(room)
    return RoomResponse(tail=(tail * r_c).astype(np.float32), sectors=(sectors * r_c).astype(np.float32),
                        sector_azimuths_deg=SECTOR_AZIMUTHS_DEG.copy(), sector_distances_m=distances)


def synthesize_brir(room: dict, sample_rate: int, hrtf=None) -> np.ndarray:
    """The room's reference BRIR as float32 (2, n): tail + the 0 deg sector, scaled by r_c."""
    return synthesize_room(room, sample_rate, hrtf).reference()
