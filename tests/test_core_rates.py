"""stase.core.rates: the one sample-rate check and the one resampler (issue 22)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.signal

from stase.core.errors import InputError
from stase.core.rates import check_sample_rate, resample, resample_ratio, resample_stems


@pytest.mark.parametrize("good", [8000, 44100, 48000, 384000, 48000.0, np.int64(96000)])
def test_whole_rates_in_range_pass(good):
    assert check_sample_rate(good) == int(good)
    assert type(check_sample_rate(good)) is int


@pytest.mark.parametrize("bad", [7999, 384001, 0, -48000, 44100.5, math.nan, math.inf, True, "48000", None])
def test_other_rates_get_one_clear_error(bad):
    with pytest.raises(InputError, match="--rate must be a whole number of Hz between 8000 and 384000"):
        check_sample_rate(bad, "--rate")


def test_ratio_is_reduced_exactly():
    assert resample_ratio(44100, 48000) == (160, 147)
    assert resample_ratio(48000, 32000) == (2, 3)
    with pytest.raises(InputError):
        resample_ratio(0, 48000)


def test_resample_equals_scipy_reference():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 4410))
    reference = scipy.signal.resample_poly(x, 160, 147, axis=1)
    np.testing.assert_array_equal(resample(x, 44100, 48000, axis=1), reference)
    assert resample(x, 48000, 48000) is x
    assert resample(x.astype(np.float32), 44100, 48000).dtype == np.float32


def test_resample_stems_replaces_in_place_with_dtype():
    rng = np.random.default_rng(4)
    stems = {"a": rng.standard_normal(1000), "b": rng.standard_normal(1000)}
    expected = {k: scipy.signal.resample_poly(v, 2, 3).astype(np.float32) for k, v in stems.items()}
    out = resample_stems(stems, 48000, 32000)
    assert out is stems
    for k in stems:
        assert stems[k].dtype == np.float32 and stems[k].shape == (667,)
        np.testing.assert_array_equal(stems[k], expected[k])
