"""The listener's training clips hear the room the scene renders (issue 15's recalibrated rooms)."""
from __future__ import annotations

import numpy as np
import pytest

from stase.onnx_models.spatial_ast import data


@pytest.mark.parametrize("room_id, azimuth_deg, elevation_deg, distance_m, role",
                         [("jazz_club", 50.0, 10.0, 3.0, "piano"),
                          ("small_chamber", 170.0, -20.0, 0.7, "lead_vocal"),
                          ("church", -120.0, 0.0, 7.5, None)])
def test_rendered_source_equals_the_streamed_scene_in_its_room(room_id, azimuth_deg, elevation_deg,
                                                               distance_m, role):
    """Direct path + room part of a clip equal ``SceneRenderer(room=...)`` streaming the same
    static source (direction-, distance- and directivity-dependent reverb, not one frontal send)."""
    from stase.dsp.scene import SceneRenderer
    mono = np.random.default_rng(3).standard_normal(data.CLIP_SAMPLES) * 0.1
    scene = SceneRenderer(sample_rate=data.SAMPLE_RATE, block_size=1024, room=room_id,
                          hrtf=data.hrtf_set(), max_sources=4)
    scene.add_source("s", azimuth_deg=azimuth_deg, elevation_deg=elevation_deg,
                     distance_m=distance_m, mode="hrtf", role=role)
    streamed = scene.process(mono[None].astype(np.float32)).astype(np.float64)
    offline = data.render_source(mono, azimuth_deg, elevation_deg, distance_m, room_id, role)
    np.testing.assert_allclose(offline, streamed, atol=1e-5 * np.abs(streamed).max())


def test_clips_stay_a_pure_function_of_split_stage_and_index():
    """Same (split, stage, index) -> same audio and labels; another index -> another clip."""
    a, b = data.make_clip("test", 7, stage=1), data.make_clip("test", 7, stage=1)
    np.testing.assert_array_equal(a.audio, b.audio)
    assert (a.azimuth_deg, a.distance_m, a.roles, a.room) == (b.azimuth_deg, b.distance_m, b.roles, b.room)
    assert not np.array_equal(a.audio, data.make_clip("test", 8, stage=1).audio)
