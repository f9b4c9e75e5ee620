"""HRTF loading, validation, resampling and interpolation."""
from __future__ import annotations

import numpy as np
import pytest

from stase.core.conventions import spherical_to_cartesian
from stase.core.errors import InputError
from stase.dsp.hrtf import DEFAULT_SOFA_PATH, load_hrtf


@pytest.fixture(scope="module")
def kemar():
    return load_hrtf()


def test_shipped_kemar_set(kemar):
    assert kemar.n_directions == 710
    assert kemar.sample_rate == 48000
    assert kemar.aligned.dtype == np.float32
    assert np.all(np.isfinite(kemar.aligned))


def test_positive_azimuth_is_left(kemar):
    aligned, delays = kemar.interpolate(90.0, 0.0)
    energy = (aligned.astype(float) ** 2).sum(axis=1)
    assert energy[0] > 4 * energy[1]      # left ear louder
    assert delays[0] < delays[1]          # and earlier
    aligned, delays = kemar.interpolate(-90.0, 0.0)
    energy = (aligned.astype(float) ** 2).sum(axis=1)
    assert energy[1] > 4 * energy[0] and delays[1] < delays[0]


def test_weights_are_barycentric(kemar, rng):
    for _ in range(50):
        az, el = rng.uniform(-180, 180), rng.uniform(-90, 90)
        idx, w = kemar.weights(az, el)
        assert np.all(w >= 0) and w.sum() == pytest.approx(1.0)
        vertices = np.column_stack(spherical_to_cartesian(*kemar.directions_deg[idx].T, 1.0))
        mix = w @ vertices
        target = np.array(spherical_to_cartesian(az, el, 1.0))
        # the weighted vertices point along the requested direction
        np.testing.assert_allclose(mix / np.linalg.norm(mix), target, atol=1e-9)


def test_measured_direction_reproduces_resampled_sofa(kemar):
    import sofar
    from scipy.signal import resample_poly
    sofa = sofar.read_sofa(str(DEFAULT_SOFA_PATH), verbose=False)
    i = int(np.flatnonzero((sofa.SourcePosition[:, 0] == 30) & (sofa.SourcePosition[:, 1] == 0))[0])
    idx, w = kemar.weights(30.0, 0.0)
    assert w.max() == pytest.approx(1.0)
    reference = resample_poly(sofa.Data_IR[i], 160, 147, axis=-1)  # 44.1 -> 48 kHz
    hrir = kemar.hrir(30.0, 0.0)
    keep = kemar.filter_length - kemar.filter_length // 8        # before the fade-out
    for ear in range(2):
        d = int(kemar.delays[idx[np.argmax(w)], ear])
        np.testing.assert_allclose(hrir[ear, d:d + keep], reference[ear, d:d + keep], atol=1e-6)
        # the onset delay only cut samples that are (nearly) silent
        assert np.abs(reference[ear, :d]).max() < 0.1 * np.abs(reference[ear]).max()


def test_resampled_to_another_rate():
    h = load_hrtf(sample_rate=44100)
    assert h.sample_rate == 44100
    k = load_hrtf()
    # onset delays scale with the rate (within the integer rounding)
    np.testing.assert_allclose(h.delays * 48000 / 44100, k.delays, atol=2.0)


def _write_sofa(path, convention="SimpleFreeFieldHRIR", ir=None, positions=None):
    import sofar
    sofa = sofar.Sofa(convention)
    rng = np.random.default_rng(1)
    az = np.repeat([0.0, 90.0, 180.0, -90.0], 3)
    el = np.tile([-30.0, 0.0, 60.0], 4)
    sofa.Data_IR = rng.standard_normal((12, 2, 32)) if ir is None else ir
    sofa.SourcePosition = np.column_stack([az, el, np.ones(12)]) if positions is None else positions
    sofa.Data_SamplingRate = 48000
    sofar.write_sofa(str(path), sofa)
    return path


def test_user_sofa_file_loads(tmp_path):
    h = load_hrtf(_write_sofa(tmp_path / "ok.sofa"), 48000)
    assert h.n_directions == 12


def test_bad_sofa_files_give_clear_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_hrtf(tmp_path / "missing.sofa")
    text = tmp_path / "text.sofa"
    text.write_text("not a sofa file")
    with pytest.raises(InputError, match="cannot read"):
        load_hrtf(text)
    ir = np.random.default_rng(2).standard_normal((12, 2, 32))
    ir[3, 1, 5] = np.nan
    with pytest.raises(InputError, match="NaN"):
        load_hrtf(_write_sofa(tmp_path / "nan.sofa", ir=ir))
    import sofar
    other = sofar.Sofa("GeneralFIR")
    other.Data_IR = np.zeros((1, 1, 8))
    sofar.write_sofa(str(tmp_path / "general.sofa"), other)
    with pytest.raises(InputError, match="SimpleFreeFieldHRIR"):
        load_hrtf(tmp_path / "general.sofa")
    flat = np.column_stack([np.linspace(-180, 150, 12), np.zeros(12), np.ones(12)])
    with pytest.raises(InputError, match="more than one elevation"):
        load_hrtf(_write_sofa(tmp_path / "flat.sofa", positions=flat))
    with pytest.raises(InputError, match="sample_rate"):
        load_hrtf(sample_rate=-1)


def test_committed_sofa_is_what_the_tool_makes():
    """The shipped SOFA file is reproducible from slab's KEMAR data (tools/make_kemar_sofa.py)."""
    import importlib.util
    import sys
    from pathlib import Path
    import slab  # noqa: F401  (the dev extra; slab imports sounddevice, so PortAudio too)
    import sofar
    path = Path(__file__).resolve().parents[1] / "tools" / "make_kemar_sofa.py"
    spec = importlib.util.spec_from_file_location("make_kemar_sofa", path)
    tool = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("make_kemar_sofa", tool)
    spec.loader.exec_module(tool)
    ir, positions, rate = tool.kemar_arrays()
    sofa = sofar.read_sofa(str(DEFAULT_SOFA_PATH), verbose=False)
    assert rate == sofa.Data_SamplingRate == 44100
    np.testing.assert_array_equal(sofa.Data_IR, ir)
    np.testing.assert_array_equal(sofa.SourcePosition, positions)
    assert np.all((positions[:, 0] > -180) & (positions[:, 0] <= 180))
