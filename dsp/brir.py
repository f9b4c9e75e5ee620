"""Synthesis of binaural room impulse responses (BRIRs) for the room presets.

What it holds
-------------
``synthesize_brir(room, sample_rate, hrtf)``  float32 (2, n): early reflections + diffuse tail
``band_rt60_s(room)``                         reverberation time per octave band
``diffuse_coherence(f)``                      target interaural coherence of the diffuse tail
``reflections(room)``                         image sources: delay, amplitude, direction

Model
-----
Time 0 is the arrival of the direct sound, which the scene renders itself: the BRIR holds only
what comes after it (a send reverb).

* **Early reflections**: pyroomacoustics' image-source model of the shoebox (Allen & Berkley
  1979), surfaces absorbing uniformly with the coefficient Sabine's formula gives for the
  preset's RT60 (``pyroomacoustics.inverse_sabine``).  Each reflection keeps its delay relative
  to the direct sound, its amplitude ``damping / r`` (direct sound at 1 m = 1) and its direction
  as seen by a listener facing the source; it is rendered binaurally with the nearest measured
  HRIR of ``dsp.hrtf`` (or, without an HRTF set, a Woodworth ITD and a broadband Brown-Duda
  head-shadow gain per ear).  Outdoors (``params.model: free_field``) only the ground reflection
  exists.
* **Diffuse tail**: two Gaussian noises mixed per frequency so the ears' coherence follows
  :func:`diffuse_coherence`, split into octave bands whose amplitude decays as
  ``exp(-6.91 t / T_b)``.  ``T_b`` is the preset RT60 (500 Hz-1 kHz) with a bass ratio below
  500 Hz and air absorption (ISO 9613-1 via ``dsp.distance``) added in Sabine's formula
  ``1/T = 1/T_surfaces + 4 m c / (24 ln 10)``.  Its level is the statistical reverberant energy,
  ``16 pi / A`` relative to the direct sound at 1 m with ``A = 0.161 V / T`` (Kuttruff, Room
  Acoustics, 5th ed., ch. 5), which makes the initial spectrum flat and the tail energy grow with
  T.  The tail fades in (raised cosine) between the first reflection and the mixing time
  ``sqrt(V) ms`` (Polack 1993), while the image sources fade out (energy-complementary).

Level: the response is built relative to the direct sound at 1 m, then multiplied by the
critical distance ``r_c = sqrt(A / 16 pi)`` (= ``dsp.distance.critical_distance_m``), because
the scene's send gain is ``1 / r_c`` (``dsp.distance.reverb_send_gain``): together they give
the physical (Sabine) level.  In the 500 Hz-1 kHz octaves the response then carries about the
energy of a unit white impulse there (:func:`mid_band_energy_ratio` ~ 1, a little less because
the image sources hold less energy than the statistical decay); broadband it carries less,
because the highs decay sooner.
"""
from __future__ import annotations

import math
import zlib

import numpy as np

from .conventions import HEAD_RADIUS_M, SPEED_OF_SOUND_M_S, cartesian_to_spherical

OCTAVE_BANDS_HZ = (125.0, 250.0, 500.0, 1000.0, 2000.0, 4000.0, 8000.0, 16000.0)
#: Effective ear distance of the diffuse-field coherence model sinc(2 pi f d / c), metres:
#: 2.2 x the 0.175 m ear spacing puts the first zero near 450 Hz, as measured on dummy heads
#: (spherical-head factor after Jeub et al. 2010, IEEE TASLP 18(7); sinc form: Cook et al. 1955).
COHERENCE_DISTANCE_M = 2.2 * 2.0 * HEAD_RADIUS_M
#: The octaves in which presets quote RT60 and in which levels are matched (500 Hz and 1 kHz).
MID_BAND_HZ = (355.0, 1414.0)
MAX_IMAGE_ORDER = 12
MAX_LENGTH_S = 12.0


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
    """``sqrt(A / 16 pi)`` with Sabine's ``A = 0.161 V / T`` (as ``dsp.distance``)."""
    area = 0.161 * room_volume_m3(room) / max(float(room["rt60_s"]), 1e-3)
    return math.sqrt(area / (16.0 * math.pi))


def room_volume_m3(room: dict) -> float:
    return float(np.prod(room["dimensions_m"]))


def mixing_time_s(room: dict) -> float:
    """Perceptual mixing time ``sqrt(V)`` ms (Polack 1993), clamped to 10..120 ms."""
    return float(np.clip(math.sqrt(room_volume_m3(room)) * 1e-3, 0.010, 0.120))


def band_rt60_s(room: dict, sample_rate: float | None = None) -> dict[float, float]:
    """Reverberation time per octave band (Hz -> s) from the preset's mid-band RT60."""
    from .distance import air_absorption_db_per_m
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


def reflections(room: dict, sample_rate: float):
    """Image sources of the preset room up to the mixing time (plus a margin).

    Returns
    -------
    delay_s (K,) relative to the direct sound, amplitude (K,) (direct at 1 m = 1),
    azimuth_deg (K,), elevation_deg (K,) seen by the listener facing the source.
    """
    source, listener = _positions(room)
    params = room.get("params") or {}
    r0 = float(np.linalg.norm(source - listener))
    horizon_s = 1.5 * mixing_time_s(room)
    if params.get("model") == "free_field":
        ground = float(params.get("ground_absorption", 0.4))
        images = np.array([[source[0]], [source[1]], [-source[2]]])
        damping = np.array([math.sqrt(1.0 - ground)])
    else:
        import pyroomacoustics as pra
        dims = np.asarray(room["dimensions_m"], dtype=float)
        absorption = params.get("absorption")
        if absorption is None:
            absorption, _ = pra.inverse_sabine(float(room["rt60_s"]), dims)
        reach = r0 + SPEED_OF_SOUND_M_S * horizon_s
        order = int(np.clip(math.ceil(reach / dims.min()) + 1, 1, MAX_IMAGE_ORDER))
        shoebox = pra.ShoeBox(dims, fs=int(sample_rate), materials=pra.Material(float(absorption)),
                              max_order=order, air_absorption=False)
        shoebox.add_source(source)
        shoebox.add_microphone(listener[:, None])
        shoebox.image_source_model()
        src = shoebox.sources[0]
        keep = (src.orders > 0) & shoebox.visibility[0][0].astype(bool)
        images, damping = src.images[:, keep], src.damping[0, keep]
    vec = images - listener[:, None]
    dist = np.linalg.norm(vec, axis=0)
    delay = (dist - r0) / SPEED_OF_SOUND_M_S
    keep = delay <= horizon_s
    vec, dist, delay, damping = vec[:, keep], dist[keep], delay[keep], damping[keep]
    # head frame: x towards the source (horizontal), y to the left, z up
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
    """Group reflections by nearest measured direction; one HRIR convolution per group."""
    from scipy.signal import fftconvolve
    dirs = np.radians(hrtf.directions_deg)
    grid = np.stack([np.cos(dirs[:, 1]) * np.cos(dirs[:, 0]), np.cos(dirs[:, 1]) * np.sin(dirs[:, 0]),
                     np.sin(dirs[:, 1])], axis=1)
    a, e = np.radians(az), np.radians(el)
    refl = np.stack([np.cos(e) * np.cos(a), np.cos(e) * np.sin(a), np.sin(e)], axis=1)
    nearest = np.argmax(refl @ grid.T, axis=1)
    out = np.zeros((2, n))
    for idx in np.unique(nearest):
        sel = nearest == idx
        train = _train(delay_s[sel] * sample_rate, amp[sel], n)
        nonzero = np.nonzero(train)[0]
        if nonzero.size == 0:
            continue
        last = int(nonzero[-1]) + 1
        hrir = hrtf.hrir(*hrtf.directions_deg[idx])
        for ear in range(2):
            y = fftconvolve(train[:last], hrir[ear])[:n]
            out[ear, :y.size] += y
    return out


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


def _tail(room: dict, sample_rate: float, n: int, t_first: float, t_mix: float,
          rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Diffuse binaural tail (2, n) and its fade-in weight w(t) (energy fraction, 0..1)."""
    freqs = np.fft.rfftfreq(n, 1.0 / sample_rate)
    noise = rng.standard_normal((2, n))
    spec = np.fft.rfft(noise, axis=1)
    phi = 0.5 * np.arccos(np.clip(diffuse_coherence(freqs), -1.0, 1.0))
    left = np.cos(phi) * spec[0] + np.sin(phi) * spec[1]
    right = np.cos(phi) * spec[0] - np.sin(phi) * spec[1]
    bands = band_rt60_s(room, sample_rate)
    centres = np.array(list(bands))
    # partition of unity over log-frequency: triangular weights between adjacent band centres
    pos = np.interp(np.log2(np.maximum(freqs, 1.0)), np.log2(centres), np.arange(centres.size))
    t = np.arange(n) / sample_rate
    volume = room_volume_m3(room)
    sigma0 = math.sqrt(16.0 * math.pi * 13.8155 / (0.161 * volume * sample_rate))
    out = np.zeros((2, n))
    for b, f in enumerate(centres):
        mask = np.clip(1.0 - np.abs(pos - b), 0.0, 1.0)
        env = np.exp(-6.9078 * t / bands[f])
        out[0] += np.fft.irfft(left * mask, n) * env
        out[1] += np.fft.irfft(right * mask, n) * env
    ramp = np.clip((t - t_first) / max(t_mix - t_first, 1e-3), 0.0, 1.0)
    weight = 0.5 - 0.5 * np.cos(np.pi * ramp)
    return out * sigma0 * np.sqrt(weight), weight


def synthesize_brir(room: dict, sample_rate: int, hrtf=None) -> np.ndarray:
    """The room's BRIR as float32 (2, n), scaled by the critical distance, no direct sound.

    Deterministic: the noise is seeded from the room id and the rate.
    """
    delay, amp, az, el = reflections(room, sample_rate)
    t_mix = mixing_time_s(room)
    t_first = float(delay[0]) if delay.size else 0.0
    t_first = min(t_first, 0.5 * t_mix)
    longest = max(band_rt60_s(room, sample_rate).values())
    n = int(min(MAX_LENGTH_S, t_mix + longest) * sample_rate)
    seed = zlib.crc32(f"{room['id']}:{int(sample_rate)}".encode())
    rng = np.random.default_rng(seed)
    tail, weight = _tail(room, sample_rate, n, t_first, t_mix, rng)
    # image sources fade out as the tail fades in (energy-complementary)
    fade = np.sqrt(1.0 - np.interp(delay, np.arange(n) / sample_rate, weight))
    if hrtf is not None:
        early = _render_hrtf(delay, amp * fade, az, el, sample_rate, n, hrtf)
    else:
        early = _render_analytic(delay, amp * fade, az, el, sample_rate, n)
    brir = early + tail
    taper = int(0.05 * sample_rate)
    brir[:, -taper:] *= 0.5 + 0.5 * np.cos(np.linspace(0.0, np.pi, taper))
    return (brir * critical_distance_m(room)).astype(np.float32)
