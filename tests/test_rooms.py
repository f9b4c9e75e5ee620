"""Room presets, generated BRIRs (RT60, level, timing, coherence, cache) and RoomReverb."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import butter, csd, fftconvolve, sosfiltfilt, welch

from stase.dsp import rooms
from stase.core.audio_io import write_audio
from stase.dsp.brir import band_rt60_s, diffuse_coherence, mid_band_energy_ratio, mixing_time_s
from stase.core.conventions import SPEED_OF_SOUND_M_S
from stase.core.errors import InputError
from stase.dsp.fdn import decay_time_s

RATE = 48000
ROOM_IDS = ("concert_hall", "jazz_club", "dry_studio", "small_chamber", "club_venue", "church",
            "recital_hall", "world_space", "pro_studio", "outdoor")


@pytest.fixture(scope="module")
def cache_home(tmp_path_factory):
    """A private BRIR cache for this module (no writes to the user's ~/.cache)."""
    with pytest.MonkeyPatch.context() as mp:
        home = tmp_path_factory.mktemp("xdg")
        mp.setenv("XDG_CACHE_HOME", str(home))
        yield home


@pytest.fixture
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    return tmp_path


def rooms_positions(room):
    from stase.dsp.brir import _positions
    return _positions(room)


def _mid_band_unit():
    impulse = np.zeros(RATE)
    impulse[RATE // 2] = 1.0
    return float(np.sum(_mid_band(impulse) ** 2))


def _mid_band(ir):
    sos = butter(4, [355, 1414], btype="band", fs=RATE, output="sos")  # 500 Hz + 1 kHz octaves
    return sosfiltfilt(sos, ir.astype(np.float64), axis=-1)


def test_all_ten_presets_load_with_sources_and_positions_inside():
    for rid in ROOM_IDS:
        room = rooms.load_room(rid)
        assert room["id"] == rid and len(room["source"]) > 40
        src, lis = rooms_positions(room)
        dims = np.asarray(room["dimensions_m"])
        for p in (src, lis):
            assert np.all(p > 0) and np.all(p < dims)
    with pytest.raises(InputError, match="known rooms"):
        rooms.load_room("ballroom")



@pytest.mark.parametrize("rid", [r for r in ROOM_IDS if r != "outdoor"])
def test_brir_rt60_matches_preset(cache_home, rid):
    brir = rooms.room_brir(rid, RATE)
    room = rooms.load_room(rid)
    assert brir.dtype == np.float32 and brir.shape[0] == 2
    # Schroeder T30 in the 500 Hz-1 kHz octaves, where presets state RT60
    np.testing.assert_allclose(decay_time_s(_mid_band(brir), RATE), room["rt60_s"], rtol=0.10)
    # level: the late mid-band energy is Sabine's statistical one, 16 pi / A exp(-13.8 t / T)
    # relative to the direct sound at 1 m, times r_c^2 = A / (16 pi) (the scene divides by it)
    t0 = 2.0 * mixing_time_s(room)
    late = np.mean(np.sum(_mid_band(brir)[:, int(t0 * RATE):] ** 2, axis=1)) / _mid_band_unit()
    expected = np.exp(-13.8155 * t0 / room["rt60_s"])
    np.testing.assert_allclose(10 * np.log10(late), 10 * np.log10(expected), atol=1.0)


def test_high_band_decay_follows_sabine_with_air_absorption(cache_home):
    from stase.dsp.distance import air_absorption_db_per_m
    room = rooms.load_room("concert_hall")
    brir = rooms.room_brir("concert_hall", RATE)
    sos = butter(4, [2828, 5657], btype="band", fs=RATE, output="sos")
    measured = decay_time_s(sosfiltfilt(sos, brir.astype(np.float64), axis=-1), RATE)
    # 1/T = 1/T_surfaces + 4 m c / (24 ln 10), m = alpha_dB / (10 log10 e) (Kuttruff ch. 5)
    k = 4 * SPEED_OF_SOUND_M_S / (24 * math.log(10))
    m = lambda f: air_absorption_db_per_m(f) / (10 * math.log10(math.e))  # noqa: E731
    expected = 1.0 / (1.0 / room["rt60_s"] - k * m(707.0) + k * m(4000.0))
    np.testing.assert_allclose(measured, expected, rtol=0.10)
    assert band_rt60_s(room)[4000.0] == pytest.approx(expected)


def test_direct_sound_excluded_first_reflection_time(cache_home):
    """Nothing before the first image source: floor/wall reflections by closed form."""
    room = rooms.load_room("jazz_club")
    src, lis = rooms_positions(room)
    dims = np.asarray(room["dimensions_m"])
    r0 = np.linalg.norm(src - lis)
    firsts = []
    for axis in range(3):
        for wall in (0.0, dims[axis]):
            image = src.copy()
            image[axis] = 2 * wall - src[axis]
            firsts.append((np.linalg.norm(image - lis) - r0) / SPEED_OF_SOUND_M_S)
    t1 = min(firsts)
    brir = rooms.room_brir("jazz_club", RATE)
    audible = np.abs(brir) > 1e-6 * np.max(np.abs(brir))  # FFT rounding is ~1e-16
    first_nonzero = int(np.argmax(np.any(audible, axis=0)))
    assert first_nonzero >= int(t1 * RATE) - 2
    assert first_nonzero <= int(t1 * RATE) + 96  # + HRIR onset (< 2 ms)


def test_outdoor_ground_reflection_delay(cache_home):
    room = rooms.load_room("outdoor")
    src, lis = rooms_positions(room)
    image = src * np.array([1, 1, -1])
    delay = (np.linalg.norm(image - lis) - np.linalg.norm(src - lis)) / SPEED_OF_SOUND_M_S
    brir = rooms.room_brir("outdoor", RATE)
    first = int(np.argmax(np.any(np.abs(brir) > 1e-6 * np.max(np.abs(brir)), axis=0)))
    np.testing.assert_allclose(first / RATE, delay, atol=2.5e-3)
    # the ground reflection dominates: most energy within 5 ms of it
    seg = brir[:, first:first + int(0.005 * RATE)].astype(np.float64)
    assert np.sum(seg ** 2) > 0.5 * np.sum(brir.astype(np.float64) ** 2)


def test_tail_interaural_coherence_follows_diffuse_model(cache_home):
    brir = rooms.room_brir("concert_hall", RATE).astype(np.float64)
    tail = brir[:, int(2 * mixing_time_s(rooms.load_room("concert_hall")) * RATE):]
    f, sxy = csd(tail[0], tail[1], fs=RATE, nperseg=4096)
    _, sxx = welch(tail[0], fs=RATE, nperseg=4096)
    _, syy = welch(tail[1], fs=RATE, nperseg=4096)
    measured = np.real(sxy) / np.sqrt(sxx * syy)
    for lo, hi in ((60, 150), (150, 300), (1000, 2000), (4000, 8000)):
        band = (f >= lo) & (f < hi)
        np.testing.assert_allclose(np.mean(measured[band]), np.mean(diffuse_coherence(f[band])),
                                   atol=0.1)


def test_brir_is_deterministic_and_cached(private_cache, monkeypatch):
    first = rooms.room_brir("pro_studio", RATE)
    files = list((private_cache / "stase" / "brir").glob("pro_studio-48000-*.npy"))
    assert len(files) == 1
    # a second call reads the cache: synthesis must not run again
    import stase.dsp.brir
    monkeypatch.setattr(stase.dsp.brir, "synthesize_brir", lambda *a, **k: pytest.fail("not cached"))
    np.testing.assert_array_equal(rooms.room_brir("pro_studio", RATE), first)
    monkeypatch.undo()
    monkeypatch.setenv("XDG_CACHE_HOME", str(private_cache))
    # a corrupt cache file is regenerated, identically
    files[0].write_bytes(b"\x93NUMPY garbage")
    np.testing.assert_array_equal(rooms.room_brir("pro_studio", RATE), first)
    np.testing.assert_array_equal(np.load(files[0]), first)
    # another rate is another (deterministic) response
    assert rooms.room_brir("pro_studio", 32000).shape[1] == pytest.approx(first.shape[1] * 2 / 3, rel=0.01)


def test_a_fresh_response_equals_the_one_read_back_from_the_cache(private_cache):
    """The response a first render synthesises is, sample for sample, the one every later render
    reads from the cache (the tail was float64-added then float32-subtracted: a fresh machine's
    first `stase batch` line differed in its last bits from the same line rendered again)."""
    fresh = rooms.room_response("pro_studio", RATE)
    cached = rooms.room_response("pro_studio", RATE)
    assert fresh.tail.dtype == cached.tail.dtype == np.float32
    np.testing.assert_array_equal(fresh.tail, cached.tail)
    np.testing.assert_array_equal(fresh.sectors, cached.sectors)
    np.testing.assert_array_equal(fresh.reference(), cached.reference())


def test_room_reverb_convolution_streams_like_fftconvolve(cache_home, rng):
    reverb = rooms.RoomReverb("dry_studio", RATE, 64)
    brir = rooms.room_brir("dry_studio", RATE).astype(np.float64)
    send = rng.standard_normal(12000).astype(np.float32)
    out = np.zeros((2, send.size), dtype=np.float32)
    for i in range(0, send.size, 100):
        reverb.process(send[i:i + 100], out[:, i:i + 100])
    ref = np.stack([fftconvolve(send, brir[e])[: send.size] for e in range(2)])
    np.testing.assert_allclose(out, ref, rtol=0, atol=2e-5 * np.max(np.abs(ref)))


def test_room_reverb_fdn_decays_with_room_rt60(cache_home):
    room = rooms.load_room("jazz_club")
    reverb = rooms.RoomReverb("jazz_club", RATE, 128, engine="fdn")
    x = np.zeros(int(1.2 * RATE), dtype=np.float32)
    x[0] = 1.0
    ir = reverb.process(x)
    np.testing.assert_allclose(decay_time_s(_mid_band(ir), RATE), room["rt60_s"], rtol=0.10)
    # the two engines sound equally loud in the 500 Hz-1 kHz octaves
    np.testing.assert_allclose(mid_band_energy_ratio(ir, RATE),
                               mid_band_energy_ratio(rooms.room_brir("jazz_club", RATE), RATE), rtol=0.05)
    reverb.reset()
    parts = [reverb.process(x[i:i + 128]).copy() for i in range(0, x.size, 128)]
    np.testing.assert_array_equal(np.concatenate(parts, axis=1), ir)


def _synthetic_rir(rng, rate, t60, seconds, direct_at_s=0.01):
    t = np.arange(int(seconds * rate)) / rate
    rir = 0.3 * rng.standard_normal(t.size) * 10.0 ** (-3.0 * t / t60)
    rir[t < direct_at_s + 0.004] = 0.0
    rir[int(direct_at_s * rate)] = 1.0  # the direct sound
    return rir.astype(np.float32)


def test_user_rir_file_resampled_direct_cut_and_decay_kept(tmp_path, rng):
    path = tmp_path / "hall.wav"
    write_audio(path, _synthetic_rir(rng, 44100, 0.9, 1.2), 44100)
    ir = rooms.load_rir_file(path, RATE)
    assert ir.shape == (2, pytest.approx(int((1.2 - 0.01) * RATE), abs=3))
    cut = int(rooms.DIRECT_WINDOW_S * RATE)
    assert np.all(ir[:, :cut - 49] == 0)  # the direct sound and what follows it within 2.5 ms
    np.testing.assert_allclose(mid_band_energy_ratio(ir, RATE), 1.0, rtol=1e-3)
    np.testing.assert_allclose(decay_time_s(ir, RATE), 0.9, rtol=0.05)
    for engine in ("convolution", "fdn"):
        reverb = rooms.RoomReverb(str(path), RATE, 128, engine=engine)
        out = reverb.process(np.ones(128, dtype=np.float32))
        assert out.shape == (2, 128) and np.all(np.isfinite(out))


def test_bad_room_files_and_arguments(tmp_path, rng):
    with pytest.raises(InputError, match="not found"):
        rooms.RoomReverb(str(tmp_path / "missing.wav"), RATE, 128)
    four = tmp_path / "four.wav"
    write_audio(four, rng.standard_normal((4, 1000)).astype(np.float32) * 0.1, RATE)
    with pytest.raises(InputError, match="4 channels"):
        rooms.RoomReverb(str(four), RATE, 128)
    silent = tmp_path / "silent.wav"
    write_audio(silent, np.zeros(1000, dtype=np.float32), RATE)
    with pytest.raises(InputError, match="silent"):
        rooms.load_rir_file(silent, RATE)
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"RIFF not really a wave file")
    with pytest.raises(InputError, match="cannot read"):
        rooms.load_rir_file(junk, RATE)
    short = tmp_path / "short.wav"
    write_audio(short, np.array([0.0, 1.0, 0.5], dtype=np.float32), RATE)
    with pytest.raises(InputError, match="nothing reverberant"):
        rooms.load_rir_file(short, RATE)
    long = tmp_path / "long.wav"
    write_audio(long, np.zeros(int(31 * 8000), dtype=np.float32), 8000)
    with pytest.raises(InputError, match="at most 30 s"):
        rooms.load_rir_file(long, RATE)
    with pytest.raises(InputError, match="engine"):
        rooms.RoomReverb("jazz_club", RATE, 128, engine="plate")
    with pytest.raises(InputError, match="sample_rate"):
        rooms.room_brir("jazz_club", 44100.5)


@pytest.mark.parametrize("bad", [44100.5, 0, 500000, True, "48000", float("nan")])
def test_every_room_entry_point_uses_the_one_rate_check(bad):
    """room_brir, room_response, load_measured, RoomReverb, reverb_tail_s, load_rir_file and
    synthesize_room refuse a bad session rate with stase.core.rates.check_sample_rate's message."""
    from stase.dsp.brir import synthesize_room
    message = r"sample_rate must be a whole number of Hz between 8000 and 384000"
    calls = {"room_brir": lambda: rooms.room_brir("jazz_club", bad),
             "room_response": lambda: rooms.room_response("jazz_club", bad),
             "load_measured": lambda: rooms.load_measured("seminar_measured", bad),
             "RoomReverb": lambda: rooms.RoomReverb("jazz_club", bad),
             "reverb_tail_s": lambda: rooms.reverb_tail_s("jazz_club", bad),
             "load_rir_file": lambda: rooms.load_rir_file("unused.wav", bad),
             "synthesize_room": lambda: synthesize_room(rooms.load_room("dry_studio"), bad)}
    for name, call in calls.items():
        with pytest.raises(InputError, match=message):
            call()


def test_a_room_file_at_an_impossible_rate_gets_one_clear_message(tmp_path):
    import soundfile as sf
    path = tmp_path / "tiny_rate.wav"
    ir = np.zeros(4000, dtype=np.float32)
    ir[10] = 1.0
    sf.write(path, ir, 4000)
    with pytest.raises(InputError, match=r"sample rate of room response .*tiny_rate.wav must be a whole "
                                         r"number of Hz between 8000 and 384000, got 4000"):
        rooms.load_rir_file(path, RATE)


def test_a_measured_room_file_at_an_impossible_rate_is_reported_damaged(tmp_path, monkeypatch):
    from stase.core.errors import StaseError
    with np.load(rooms.DATA_DIR / rooms.MEASURED_ROOMS["seminar_measured"]) as shipped:
        fields = {key: shipped[key] for key in shipped.files}
    fields["sample_rate"] = np.array(4000)
    np.savez(tmp_path / rooms.MEASURED_ROOMS["seminar_measured"], **fields)
    monkeypatch.setattr(rooms, "DATA_DIR", tmp_path)
    rooms._load_measured.cache_clear()
    try:
        with pytest.raises(StaseError, match=r"damaged: the sample rate of .* must be a whole number "
                                             r"of Hz between 8000 and 384000, got 4000; rebuild"):
            rooms.load_measured("seminar_measured", RATE)
    finally:
        rooms._load_measured.cache_clear()


def test_analytic_reflection_rendering_woodworth_itd():
    """Without an HRTF set: a reflection from the left reaches the left ear first, by the
    Woodworth ITD (a/c)(theta + sin theta), and louder (Brown-Duda head shadow)."""
    from stase.dsp.brir import _render_analytic
    from stase.core.conventions import HEAD_RADIUS_M
    az = 60.0
    out = _render_analytic(np.array([0.01]), np.array([1.0]), np.array([az]), np.array([0.0]),
                           RATE, 2000)
    theta = math.radians(az)
    itd = HEAD_RADIUS_M / SPEED_OF_SOUND_M_S * (theta + math.sin(theta))
    # centroid of the two-tap fractional delay gives the arrival time
    arrival = [np.sum(np.arange(2000) * out[e]) / np.sum(out[e]) / RATE for e in range(2)]
    np.testing.assert_allclose(arrival[0], 0.01, atol=1e-6)
    np.testing.assert_allclose(arrival[1] - arrival[0], itd, atol=1e-6)
    assert np.sum(out[0]) > np.sum(out[1])


@pytest.mark.parametrize("room, kind", [(None, "none"), (False, "none"), ("dry", "none"), ("None", "none"),
                                        ("small_chamber", "preset"), ("seminar_measured", "measured"),
                                        ("rooms/hall.wav", "file"), ("hall.wav", "file"),
                                        (Path("hall"), "file"), ("smal_chamber", "unknown"),
                                        ("a concert hall", "unknown"), (42, "unknown")])
def test_room_kind_is_decided_by_spelling_alone(room, kind):
    """The one "preset or file?" rule (issue 22): the daemon and resolve_room both use it."""
    from stase.dsp.rooms import room_kind
    assert room_kind(room) == kind
