"""PartitionedConvolver against scipy.signal.fftconvolve: any IR length, any host block size."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import fftconvolve

from stase.dsp.convolution import PartitionedConvolver, plan_partitions
from stase.core.errors import InputError


def _stream(conv, x, block):
    """Feed ``x`` (channels, n) in blocks of ``block`` samples, collect the output."""
    x = np.atleast_2d(x)
    out = np.zeros((conv.out_channels, x.shape[1]), dtype=np.float32)
    for i in range(0, x.shape[1], block):
        conv.process(np.ascontiguousarray(x[:, i:i + block]), out[:, i:i + block])
    return out


def _reference(x, ir):
    x = np.atleast_2d(x).astype(np.float64)
    ir = np.atleast_2d(ir).astype(np.float64)
    rows = [fftconvolve(x[c if x.shape[0] > 1 else 0], ir[c])[: x.shape[1]] for c in range(ir.shape[0])]
    return np.stack(rows)


def _assert_matches(y, ref):
    # float32 FFTs: error relative to the output's peak stays ~1e-7 per level
    np.testing.assert_allclose(y, ref, rtol=0, atol=2e-5 * np.max(np.abs(ref)))


@pytest.mark.parametrize("block", [1, 64, 65, 128, 1000, 8193])
def test_equals_fftconvolve_random_lengths(rng, block):
    n_taps = int(rng.integers(1, 30000))
    ir = rng.standard_normal(n_taps).astype(np.float32)
    n = 2500 if block == 1 else 25000
    x = rng.standard_normal(n).astype(np.float32)
    conv = PartitionedConvolver(ir, block)
    _assert_matches(_stream(conv, x, block), _reference(x, ir))


def test_long_ir_uses_growing_partitions_and_matches(rng):
    ir = (rng.standard_normal(96000) * np.exp(-np.arange(96000) / 9000.0)).astype(np.float32)
    conv = PartitionedConvolver(ir, 128)
    sizes = [p for p, _, _ in conv.levels]
    assert len(sizes) >= 2 and sizes == sorted(sizes) and sizes[0] == 128
    for p, _k, offset in conv.levels[1:]:  # canonical: each level one of its own sizes late
        assert offset % p == 0 and offset >= p
    x = rng.standard_normal(30000).astype(np.float32)
    _assert_matches(_stream(conv, x, 128), _reference(x, ir))


def test_mono_in_stereo_out_and_per_channel(rng):
    ir = rng.standard_normal((2, 5000)).astype(np.float32)
    x = rng.standard_normal(9000).astype(np.float32)
    _assert_matches(_stream(PartitionedConvolver(ir, 64), x, 64), _reference(x, ir))
    x2 = rng.standard_normal((2, 9000)).astype(np.float32)
    conv = PartitionedConvolver(ir, 100, in_channels=2)
    _assert_matches(_stream(conv, x2, 100), _reference(x2, ir))


def test_explicit_scheme_with_late_level(rng):
    # the 64-sample level starts two of its partitions in (m = 2): FDL longer than its count
    ir = rng.standard_normal(700).astype(np.float32)
    conv = PartitionedConvolver(ir, 32, partitions=[(32, 4), (64, 9)])
    assert conv.levels == ((32, 4, 0), (64, 9, 128))
    x = rng.standard_normal(3000).astype(np.float32)
    _assert_matches(_stream(conv, x, 32), _reference(x, ir))


def test_zero_latency_direct_response_in_same_block():
    ir = np.zeros(4000, dtype=np.float32)
    ir[0] = 1.0
    conv = PartitionedConvolver(ir, 128)
    block = np.zeros(128, dtype=np.float32)
    block[5] = 0.5
    np.testing.assert_allclose(conv.process(block)[0], block, atol=1e-6)


def test_chunked_equals_whole_with_irregular_chunks_and_reset(rng):
    ir = rng.standard_normal((2, 12000)).astype(np.float32)
    x = rng.standard_normal(20000).astype(np.float32)
    whole = PartitionedConvolver(ir, 256)
    y_whole = whole.process(x)
    conv = PartitionedConvolver(ir, 256)
    conv.process(rng.standard_normal(777).astype(np.float32))  # history to forget
    conv.reset()
    pieces, i = [], 0
    for size in rng.integers(1, 3000, size=100):
        if i >= x.size:
            break
        pieces.append(conv.process(x[i:i + size]))
        i += size
    np.testing.assert_allclose(np.concatenate(pieces, axis=1), y_whole, rtol=0,
                               atol=1e-5 * np.max(np.abs(y_whole)))


def test_plan_is_cheaper_than_uniform():
    from stase.dsp.convolution import _scheme_cost
    levels = plan_partitions(96000, 128)
    uniform = ((128, 750, 0),)
    assert _scheme_cost(levels, 128, 1, 1) < 0.5 * _scheme_cost(uniform, 128, 1, 1)


def test_bad_inputs():
    with pytest.raises(InputError, match="non-empty"):
        PartitionedConvolver(np.zeros(0), 64)
    with pytest.raises(InputError, match="NaN"):
        PartitionedConvolver(np.array([1.0, np.nan]), 64)
    with pytest.raises(InputError, match="in_channels"):
        PartitionedConvolver(np.ones((2, 10)), 64, in_channels=3)
    with pytest.raises(InputError, match="offset"):
        PartitionedConvolver(np.ones(100), 64, partitions=[(32, 1), (64, 2)])
    conv = PartitionedConvolver(np.ones((2, 10)), 64)
    with pytest.raises(InputError, match="block must be"):
        conv.process(np.zeros((3, 64), dtype=np.float32))


def test_strided_output_view_gives_the_same_result(rng):
    ir = rng.standard_normal((2, 3000)).astype(np.float32)
    x = rng.standard_normal(1000).astype(np.float32)
    ref = PartitionedConvolver(ir, 128).process(x)
    conv = PartitionedConvolver(ir, 128)
    wide = np.zeros((2, 256), dtype=np.float32)
    got = []
    for i in range(0, x.size, 100):
        view = wide[:, :x[i:i + 100].size]  # not C-contiguous
        conv.process(x[i:i + 100], view)
        got.append(view.copy())
    _assert_matches(np.concatenate(got, axis=1), ref)
