"""Named scene-kernel state (issue 22): the VOICE / SCENE / CONFIG records, the argument bundles,
what a command writes by name, closed forms read from the named fields, streaming equality with
a room, and one track identity rule (``stase.core.names.track_key``)."""
from __future__ import annotations

import inspect
import math

import numpy as np
import pytest

from stase.core.errors import InputError
from stase.dsp import scene_kernel as K
from stase.dsp.distance import air_absorption_pole
from stase.dsp.hrtf import load_hrtf
from stase.dsp.kernels import woodworth_itd_s
from stase.dsp.scene import SceneRenderer

FS = 48000


@pytest.fixture(scope="module")
def kemar():
    return load_hrtf(sample_rate=FS)


def scene(kemar, **kw):
    kw.setdefault("room", None)
    return SceneRenderer(sample_rate=FS, block_size=128, hrtf=kemar, **kw)


# -- (a) the records and bundles -------------------------------------------------------------
@pytest.mark.parametrize("dtype", [K.VOICE, K.SCENE, K.CONFIG], ids=["VOICE", "SCENE", "CONFIG"])
def test_every_field_has_its_own_bytes_and_is_eight_bytes_wide(dtype):
    spans = sorted((offset, offset + field.itemsize, name)
                   for name, (field, offset) in dtype.fields.items())
    # no two fields share a byte and none is left over: the fields tile the record exactly
    assert spans[0][0] == 0 and spans[-1][1] == dtype.itemsize
    for (_, end, name), (start, _, following) in zip(spans, spans[1:]):
        assert end == start, (name, following)
    # int64 views of the records (spread_arguments, _clear_voice) need 8-byte scalars
    for name, (field, offset) in dtype.fields.items():
        assert (field.base.itemsize, offset % 8) == (8, 0), name


def test_every_voice_scene_and_config_field_is_used_by_the_kernel():
    source = inspect.getsource(K)
    for dtype in (K.VOICE, K.SCENE, K.CONFIG):
        for name in dtype.names:
            assert f".{name}" in source, f"{name} is never read or written by name"


def test_each_ramped_value_has_a_start_and_an_end_that_the_frame_shift_moves():
    source = inspect.getsource(K._shift_frame_values.py_func)
    for name in K._RAMPED:
        assert f"voice.{name}_start = voice.{name}_end" in source


@pytest.mark.parametrize("spread, named, fixed", [
    (K.render_spread, K.render, 4), (K.apply_commands_spread, K.apply_commands, 6)])
def test_the_spread_entry_points_take_the_bundles_fields_in_order(spread, named, fixed):
    spread_parameters = list(inspect.signature(spread.py_func).parameters)
    named_parameters = list(inspect.signature(named.py_func).parameters)
    assert spread_parameters[:fixed] == named_parameters[:fixed]
    assert named_parameters[fixed:] == ["state", "tables", "scratch"]
    assert spread_parameters[fixed:] == [*K.SceneState._fields, *K.SceneTables._fields,
                                         *K.SceneScratch._fields]


def test_spread_arguments_share_the_records_memory(kemar):
    r = scene(kemar)
    r.add_source("a", 30.0, 0.0, 2.0)
    spread = K.spread_arguments(r._state, r._tables, r._kernel_scratch)
    voices = spread[K.SceneState._fields.index("voices")]
    assert voices.dtype == np.int64 and np.shares_memory(voices, r._voices)
    np.testing.assert_array_equal(voices.view(K.VOICE)["azimuth_deg"], r._voices["azimuth_deg"])


def test_named_bundles_render_what_the_spread_call_renders(kemar, rng):
    x = rng.standard_normal((2, 1000)).astype(np.float32)
    a, b = scene(kemar), scene(kemar)
    for r in (a, b):
        r.add_source("h", 40.0, 10.0, 0.5, mode="hrtf")
        r.add_source("i", -70.0, 0.0, 3.0, mode="itd_ild")
    out = a.process(x)
    b._apply_direct()
    named = np.zeros((2, 1000), np.float32)
    send = np.zeros((b._n_sends, 1000), np.float32)   # render writes send[:, :n]
    K.render(x, 1000, named, send, b._state, b._tables, b._kernel_scratch)
    np.testing.assert_array_equal(named, out)


# -- (b) what a command writes, by name ------------------------------------------------------
def _changed_fields(before, after):
    return {name for name in K.VOICE.names if not np.array_equal(before[name], after[name])}


def test_a_move_sets_exactly_the_named_targets_and_the_ramp(kemar, rng):
    r = scene(kemar)
    r.add_source("a", 30.0, 5.0, 2.0, mode="itd_ild", gain_db=-2.0)
    r.process(rng.standard_normal((1, 200)).astype(np.float32))  # streaming: commands ramp
    v = r._voice_of["a"]
    before = r._voices[v].copy()
    ring = np.zeros(1, K.COMMAND)
    r.command_move("a", azimuth_deg=-100.0, distance_m=5.0, out=ring[0])
    r.apply_commands(ring, 0, 1)
    after = r._voices[v]
    assert _changed_fields(before, after) == {"azimuth_target_deg", "distance_target_m",
                                              "ramp_left"}
    assert (after["azimuth_target_deg"], after["distance_target_m"]) == (-100.0, 5.0)
    assert after["ramp_left"] == r._scene["ramp_frames"] == r.ramp_frames
    # untouched targets keep what was asked before
    assert (after["elevation_target_deg"], after["gain_target_db"]) == (5.0, -2.0)


def test_a_mode_change_fades_the_old_voice_out_and_starts_a_named_new_one(kemar, rng):
    r = scene(kemar)
    r.add_source("a", 30.0, 0.0, 2.0, mode="itd_ild")
    r.add_source("b", -30.0, 0.0, 2.0, mode="pan")
    r.process(rng.standard_normal((2, 200)).astype(np.float32))
    old = r._voice_of["b"]
    before = r._voices[old].copy()
    r.move_source("b", mode="hrtf")
    r._apply_direct()
    new = r._voice_of["b"]
    assert new != old
    assert _changed_fields(before, r._voices[old]) == {"fade_target", "fade_left",
                                                       "free_after_fade"}
    faded = r._voices[old]
    assert (faded["fade_target"], faded["fade_left"], faded["free_after_fade"]) == (
        0.0, r.ramp_frames, r._tail_frames)
    started = r._voices[new]
    assert (started["active"], started["mode"], started["row"]) == (1, K.MODE_HRTF, 1)
    assert (started["fade"], started["fade_target"], started["fade_left"]) == (0.0, 1.0, r.ramp_frames)
    assert started["azimuth_deg"] == started["azimuth_target_deg"] == -30.0
    assert r._state.voice_started[new] == r._voice_handed[new]


def test_a_removal_names_its_voice_rowless_and_draining(kemar, rng):
    r = scene(kemar)
    for name, az in (("a", 10.0), ("b", 20.0), ("c", 30.0)):
        r.add_source(name, az, 0.0, 2.0, mode="pan")
    r.process(rng.standard_normal((3, 128)).astype(np.float32))
    va, vb, vc = (r._voice_of[k] for k in "abc")
    r.remove_source("b")
    r._apply_direct()
    assert (r._voices[vb]["row"], r._voices[vb]["drain_left"]) == (-1, r._tail_frames)
    assert (r._voices[va]["row"], r._voices[vc]["row"]) == (0, 1)   # later rows move up


# -- (c) the named fields against closed forms and a naive loop ------------------------------
@pytest.mark.parametrize("azimuth_deg, elevation_deg", [(0.0, 0.0), (35.0, 20.0), (-120.0, -10.0),
                                                        (90.0, 0.0)])
def test_frame_end_fields_hold_the_closed_forms(kemar, azimuth_deg, elevation_deg):
    r = scene(kemar)
    r.add_source("i", azimuth_deg, elevation_deg, 3.0, mode="itd_ild", gain_db=-6.0)
    r.add_source("p", azimuth_deg, elevation_deg, 0.5, mode="pan")
    r._apply_direct()
    itd, pan = (r._voices[r._voice_of[k]] for k in ("i", "p"))
    a, e = math.radians(azimuth_deg), math.radians(elevation_deg)
    lateral = math.asin(math.cos(e) * math.sin(a))   # positive = left
    # Woodworth ITD on the far ear, the near ear at the base delay of 1 sample
    itd_samples = woodworth_itd_s(lateral) * FS
    np.testing.assert_allclose(itd["delay_right_end"] - itd["delay_left_end"], itd_samples,
                               rtol=0, atol=1e-9)
    assert min(itd["delay_left_end"], itd["delay_right_end"]) == 1.0
    # 1/r from the 1 m reference, the source's gain, the ISO 9613-1 air pole for its distance
    np.testing.assert_allclose(itd["direct_gain_end"], 10 ** (-6.0 / 20) / 3.0, rtol=1e-12)
    np.testing.assert_allclose(itd["air_pole_end"], air_absorption_pole(3.0, FS), rtol=1e-9)
    # constant-power sine/cosine law on the lateral angle
    theta = (-lateral / (math.pi / 2) + 1) * math.pi / 4
    np.testing.assert_allclose([pan["pan_left_end"], pan["pan_right_end"]],
                               [math.cos(theta), math.sin(theta)], rtol=0, atol=1e-12)
    # no ramp before streaming: start values equal end values
    for name in K._RAMPED:
        assert itd[f"{name}_start"] == itd[f"{name}_end"], name
    assert itd["near_field_on"] == 0 and itd["active"] == 1


def test_a_ramp_steps_the_named_fields_linearly_frame_by_frame(kemar):
    r = scene(kemar, ramp_s=0.05)
    r.add_source("a", 170.0, 0.0, 4.0, mode="itd_ild", gain_db=0.0)
    silence = np.zeros((1, 128), np.float32)
    r.process(silence)
    v = r._voice_of["a"]
    r.move_source("a", azimuth_deg=-150.0, distance_m=1.0, gain_db=-12.0)
    frames = r.ramp_frames
    assert frames >= 10
    seen = []
    for _ in range(frames + 2):
        r.process(silence)
        voice = r._voices[v]
        seen.append((voice["azimuth_deg"], voice["distance_m"], voice["gain_db"]))
    # a naive reference: the shortest way round (170 -> 210 = -150), equal steps, then rest
    k = np.minimum(np.arange(1, frames + 3), frames)
    azimuth = (170.0 + 40.0 * k / frames + 180.0) % 360.0 - 180.0
    np.testing.assert_allclose([s[0] for s in seen], azimuth, rtol=0, atol=1e-9)
    np.testing.assert_allclose([s[1] for s in seen], 4.0 - 3.0 * k / frames, rtol=0, atol=1e-12)
    np.testing.assert_allclose([s[2] for s in seen], -12.0 * k / frames, rtol=0, atol=1e-12)
    assert r._voices[v]["ramp_left"] == 0


@pytest.mark.parametrize("block", [1, 64, 65, 128, 8192, 8193])
def test_chunked_equals_whole_with_a_room_near_field_and_moves(kemar, rng, block):
    x = rng.standard_normal((3, 2 * 8193 + 100)).astype(np.float32)
    if block == 1:
        x = x[:, :3000]

    def streamed(step):
        r = scene(kemar, room="dry_studio")
        r.add_source("near", 60.0, 0.0, 0.3, mode="hrtf")
        r.add_source("far", -120.0, 10.0, 6.0, mode="itd_ild")
        r.add_source("pan", 150.0, 0.0, 2.0, mode="pan")
        out = np.zeros((2, x.shape[1]), np.float32)
        r.process(x[:, :100], out[:, :100])
        r.move_source("near", azimuth_deg=-40.0, distance_m=0.6)
        r.move_source("far", mode="hrtf")
        r.set_reverb_db(-6.0)
        for start in range(100, x.shape[1], step):
            stop = min(start + step, x.shape[1])
            r.process(x[:, start:stop], out[:, start:stop])
        return out

    whole = streamed(x.shape[1])
    np.testing.assert_allclose(streamed(block), whole, rtol=0, atol=1e-5 * np.abs(whole).max())


# -- one track identity rule -----------------------------------------------------------------
def test_a_source_is_found_by_any_spelling_of_its_track(kemar, rng):
    r = scene(kemar)
    r.add_source("Gtr L", 30.0, 0.0, 2.0, mode="pan")
    r.add_source("Bass", 0.0, 0.0, 2.0, mode="pan")
    r.move_source("gtr-l", azimuth_deg=-20.0)
    assert r.source("GTR_L")["azimuth_deg"] == -20.0
    assert r.source_ids == ["Gtr L", "Bass"]          # the spelling it was added with
    r.remove_source("gtr.l")
    assert r.source_ids == ["Bass"]
    r.move_source("BASS", gain_db=-3.0)                  # rows re-keyed after the removal
    assert r.source("bass")["gain_db"] == -3.0
    with pytest.raises(InputError, match="no source 'Gtr L'"):
        r.source("Gtr L")


def test_a_second_spelling_of_the_same_track_is_refused_naming_both(kemar):
    r = scene(kemar)
    r.add_source("Gtr L", 30.0, 0.0, 2.0)
    with pytest.raises(InputError) as info:
        r.add_source("gtr-l", -30.0, 0.0, 2.0)
    assert "'gtr-l'" in str(info.value) and "'Gtr L'" in str(info.value)
    with pytest.raises(InputError, match="already exists"):
        r.add_source("Gtr L", 0.0, 0.0, 2.0)
    assert r.source_ids == ["Gtr L"] and r.source("gtr l")["azimuth_deg"] == 30.0
