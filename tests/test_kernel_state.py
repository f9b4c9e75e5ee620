"""Named kernel state (issue 22): the convolver's level records and the FDN's line/network
records, checked against naive references and by streaming in every block size."""
from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest
from scipy.linalg import hadamard
from scipy.signal import fftconvolve

from stase.dsp.convolution import PartitionedConvolver
from stase.dsp.fdn import FdnReverb, jot_absorption

RATE = 48000
BLOCKS = [1, 64, 65, 128, 8192, 8193]


# -- convolver -------------------------------------------------------------------------------
def _fftconvolve_reference(x, ir):
    x = np.atleast_2d(x).astype(np.float64)
    ir = np.atleast_2d(ir).astype(np.float64)
    return np.stack([fftconvolve(x[c if x.shape[0] > 1 else 0], ir[c])[: x.shape[1]]
                     for c in range(ir.shape[0])])


def _feed(proc, x, block):
    x = np.atleast_2d(x)
    return np.concatenate([proc.process(np.ascontiguousarray(x[:, i:i + block])).copy()
                           for i in range(0, x.shape[1], block)], axis=1)


@pytest.mark.parametrize("in_channels", [1, 2])
@pytest.mark.parametrize("block", BLOCKS)
def test_convolver_chunked_equals_whole_and_fftconvolve(rng, block, in_channels):
    # 20000 taps planned for 128-sample blocks: several levels, so every level's record is used
    ir = (rng.standard_normal((2, 20000)) * np.exp(-np.arange(20000) / 4000.0)).astype(np.float32)
    x = rng.standard_normal((in_channels, 3000 if block == 1 else 20000)).astype(np.float32)
    whole = PartitionedConvolver(ir, 128, in_channels=in_channels)
    assert len(whole.levels) >= 2
    y_whole = whole.process(x)
    conv = PartitionedConvolver(ir, 128, in_channels=in_channels)
    y_chunked = _feed(conv, x, block)
    scale = np.max(np.abs(y_whole))
    np.testing.assert_allclose(y_chunked, y_whole, rtol=0, atol=1e-5 * scale)
    np.testing.assert_allclose(y_whole, _fftconvolve_reference(x, ir), rtol=0, atol=2e-5 * scale)


def test_convolver_records_describe_the_plan_and_the_stream(rng):
    ir = rng.standard_normal(30000).astype(np.float32)
    conv = PartitionedConvolver(ir, 128)
    levels = conv._levels
    plan = np.asarray(conv.levels)
    np.testing.assert_array_equal(levels["partition_size"], plan[:, 0])
    np.testing.assert_array_equal(levels["partition_count"], plan[:, 1])
    np.testing.assert_array_equal(levels["offset_partitions"] * levels["partition_size"], plan[:, 2])
    conv.process(rng.standard_normal(1000).astype(np.float32))
    assert conv._stream["samples_done"] == 1000
    assert np.any(levels["newest_slot"] != 0)
    conv.reset()
    assert conv._stream["samples_done"] == 0
    np.testing.assert_array_equal(levels["newest_slot"], 0)


def test_convolver_prepare_rebuilds_the_records_for_a_new_block_size(rng):
    ir = rng.standard_normal(9000).astype(np.float32)
    x = rng.standard_normal(12000).astype(np.float32)
    conv = PartitionedConvolver(ir, 64)
    conv.process(x[:500])
    conv.prepare(block_size=512)
    assert conv.levels[0][0] == 512
    y = _feed(conv, x, 512)
    np.testing.assert_allclose(y, _fftconvolve_reference(x, ir), rtol=0,
                               atol=2e-5 * np.max(np.abs(y)))


def _python_bytes_during(proc, block, out, calls=200):
    proc.process(block, out)  # compiled and warm
    tracemalloc.start()
    try:
        for _ in range(calls):
            proc.process(block, out)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak


def test_process_into_out_allocates_no_buffers(rng):
    # an allocated (2, 2048) float32 block would be 16 KiB; a few small Python objects are not
    conv = PartitionedConvolver(rng.standard_normal((2, 20000)).astype(np.float32), 2048)
    block = rng.standard_normal(2048).astype(np.float32)
    assert _python_bytes_during(conv, block, np.empty((2, 2048), np.float32)) < 4096
    fdn = FdnReverb(RATE, 0.5)
    assert _python_bytes_during(fdn, block, np.empty((2, 2048), np.float32)) < 4096


# -- FDN -------------------------------------------------------------------------------------
def _fdn_python_loop(fdn, x, t60_s, t60_high_s, coherence_hz, predelay):
    """Jot FDN one sample at a time, from the closed-form description (not the kernel's
    chunked schedule): lines -> one-pole absorption -> Hadamard / sqrt(N) feedback + input."""
    delays = fdn.delays
    n_lines = delays.size
    gains, poles, _ = jot_absorption(delays, RATE, t60_s, t60_high_s)
    h = hadamard(n_lines).astype(np.float64)
    in_taps, mid_taps, side_taps = h[1] / math.sqrt(n_lines), h[2] / math.sqrt(n_lines), \
        h[3] / math.sqrt(n_lines)
    feedback = h / math.sqrt(n_lines)
    hp_a = 1.0 / (1.0 + 2.0 * math.pi * coherence_hz / RATE)
    beta = fdn.tone_beta
    gain = float(fdn._network["output_gain"][0]) / (1.0 - beta)
    n = x.size
    line_in = np.zeros((n_lines, n))  # s_i(t): what enters line i at time t
    y = np.zeros(n_lines)
    hx = hy = left_prev = right_prev = 0.0
    out = np.zeros((2, n))
    for t in range(n):
        xd = x[t - predelay] if t >= predelay else 0.0
        taps = np.array([line_in[i, t - delays[i]] if t >= delays[i] else 0.0
                         for i in range(n_lines)])
        y = gains * (1.0 - poles) * taps + poles * y
        u, v = float(mid_taps @ y), float(side_taps @ y)
        line_in[:, t] = feedback @ y + in_taps * xd
        hy = hp_a * (hy + v - hx)
        hx = v
        left, right = u + hy, u - hy
        out[0, t] = gain * (left - beta * left_prev)
        out[1, t] = gain * (right - beta * right_prev)
        left_prev, right_prev = left, right
    return out


@pytest.mark.parametrize("n_lines", [4, 16])
def test_fdn_kernel_equals_per_sample_python_loop(rng, n_lines):
    t60, t60_high, coherence_hz = 0.6, 0.25, 700.0
    fdn = FdnReverb(RATE, t60, n_lines=n_lines, t60_high_s=t60_high, coherence_hz=coherence_hz,
                    predelay_ms=3.0, min_delay_ms=4.0, max_delay_ms=9.0)
    x = rng.standard_normal(2500).astype(np.float32)
    got = fdn.process(x)
    ref = _fdn_python_loop(fdn, x.astype(np.float64), t60, t60_high, coherence_hz, 144)
    assert np.max(np.abs(ref)) > 0.01  # the reverb has started within the signal
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-5 * np.max(np.abs(ref)))


@pytest.mark.parametrize("block", BLOCKS)
def test_fdn_chunked_equals_whole_with_damping_and_tone_correction(rng, block):
    fdn = FdnReverb(RATE, 1.2, n_lines=8, t60_high_s=0.4, predelay_ms=2.5)
    x = rng.standard_normal(3000 if block == 1 else 20000).astype(np.float32)
    whole = fdn.process(x).copy()
    fdn.reset()
    np.testing.assert_array_equal(_feed(fdn, x, block), whole)


def test_fdn_scale_output_acts_from_the_next_sample(rng):
    x = rng.standard_normal(6000).astype(np.float32)
    ref = FdnReverb(RATE, 0.8).process(x)
    fdn = FdnReverb(RATE, 0.8)
    first = fdn.process(x[:2500]).copy()
    fdn.scale_output(0.5)
    second = fdn.process(x[2500:])
    np.testing.assert_array_equal(first, ref[:, :2500])
    np.testing.assert_allclose(second, 0.5 * ref[:, 2500:], rtol=1e-6, atol=1e-9)
    fdn.reset()  # reset clears the signal, not the level
    np.testing.assert_allclose(fdn.process(x), 0.5 * ref, rtol=1e-6, atol=1e-9)
