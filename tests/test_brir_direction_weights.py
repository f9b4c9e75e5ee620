"""The solid-angle weights of an HRTF set's directions (``stase.dsp.brir._direction_weights``)
against a naive per-triangle loop, and the closed form of a sphere's area."""
from __future__ import annotations

import numpy as np

from stase.core.conventions import spherical_to_cartesian
from stase.dsp import brir
from stase.dsp.hrtf import load_hrtf


def naive_weights(hrtf) -> np.ndarray:
    unit = np.column_stack(spherical_to_cartesian(hrtf.directions_deg[:, 0], hrtf.directions_deg[:, 1], 1.0))
    weights = np.zeros(unit.shape[0])
    for face in hrtf.faces:
        a, b, c = unit[face]
        weights[face] += 0.5 * np.linalg.norm(np.cross(b - a, c - a)) / 3.0
    return weights / weights.sum()


def test_vectorised_weights_equal_the_naive_loop():
    hrtf = load_hrtf(None, 48000)
    brir._WEIGHTS_CACHE.clear()
    fast = brir._direction_weights(hrtf)
    np.testing.assert_allclose(fast, naive_weights(hrtf), rtol=1e-12, atol=1e-15)
    assert brir._direction_weights(hrtf) is fast      # kept for the same grid


def test_weights_of_a_triangulated_sphere_sum_its_area():
    # an octahedron's eight faces: each vertex stands for a sixth of the whole
    directions = np.array([[0, 0], [90, 0], [180, 0], [-90, 0], [0, 90], [0, -90]], float)
    faces = np.array([[0, 1, 4], [1, 2, 4], [2, 3, 4], [3, 0, 4], [0, 1, 5], [1, 2, 5], [2, 3, 5], [3, 0, 5]])
    fake = type("Grid", (), {"directions_deg": directions, "faces": faces})()
    np.testing.assert_allclose(brir._direction_weights(fake), np.full(6, 1 / 6), rtol=1e-12)
