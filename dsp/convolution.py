"""Zero-latency, non-uniformly partitioned FFT convolution for long room responses.

What it holds
-------------
``plan_partitions``      choose the partition sizes (small first, growing later) for an IR length
                         and host block size, by a per-sample cost model
``PartitionedConvolver`` streaming processor: ``prepare`` / ``process`` / ``reset``
``LEVEL_DTYPE``          the named record of one partition level's layout and FDL position
``STREAM_DTYPE``         the named record of a stream: channel counts, samples done since reset
``_process_kernel``      the numba kernel that does all the work of one host block
``_process_entry``       its entry from Python: the records passed as one int64 buffer

The scheme (Gardner 1995, "Efficient convolution without input-output delay", JAES 43(3);
Wefers 2015, "Partitioned convolution algorithms for real-time auralization", ch. 5-6)
----------------------------------------------------------------------------------------------
The impulse response is cut into *levels*.  Level ``l`` holds ``K_l`` partitions of ``P_l``
samples and starts at IR offset ``o_l``.  Every level runs uniformly-partitioned overlap-save
(UPOLS) with an FFT of ``2 P_l`` and its own frequency-domain delay line (FDL) of input spectra:

* level 0 (``o_0 = 0``, ``P_0`` ~ the host block) makes the output *without latency*: it
  transforms the current, partly filled input block (zeros where samples have not arrived yet)
  at every host call, so each output block contains that block's direct response;
* level ``l >= 1`` starts at ``o_l = m_l P_l`` with ``m_l >= 1``.  Because the partition is at
  least one block late in the IR, its output for samples ``[t, t + P_l)`` only needs input up to
  ``t - 1``: the forward FFT, one spectral product and the inverse FFT run once per ``P_l``
  samples, exactly when that level's input block is complete ("only when due").  Its other
  ``K_l - 1`` products use spectra that already exist, so they are summed a slice of bins at a
  time over the base blocks of the period before (time-distributed, Wefers 2015 sec. 6.6).  The
  due block still pays the big FFTs; the average cost per sample is what ``plan_partitions``
  minimises (``bench/dsp.py`` reports the per-block spread).

A 2 s IR at 48 kHz and 128-sample blocks becomes about ``128 x 8 | 1024 x 7 | 8192 x 11``:
26 complex multiply-adds per output sample instead of ~750 for a uniform 128 split.

All state lives in preallocated arrays so one host block is one numba call with no allocation:
two flat buffers (``spectra``, complex64; ``samples``, float32) and named records saying where
each level's pieces sit in them (:data:`LEVEL_DTYPE`, one per level; :data:`STREAM_DTYPE`, one
per stream), so the kernels read ``level.partition_size``, not a column constant.  FFTs are
PocketFFT through rocket-fft's low-level ``r2c`` / ``c2r`` that write into caller-owned arrays.
"""
from __future__ import annotations

import math

import numba as nb
import numpy as np
from rocket_fft import c2r, r2c

from stase.core.errors import InputError

# -- named kernel state ------------------------------------------------------------------
#: One record per partition level: where its pieces live in the two flat buffers (``*_at``
#: fields, element offsets into ``spectra`` (complex64) or ``samples`` (float32)), its shape,
#: and ``newest_slot``, the one field that changes while streaming (reset zeroes it).
LEVEL_DTYPE = np.dtype([
    ("partition_size", np.int64),     # P_l samples
    ("partition_count", np.int64),    # K_l partitions
    ("offset_partitions", np.int64),  # m_l = o_l / P_l: how many partitions into the IR it starts
    ("fdl_slots", np.int64),          # input spectra kept in the frequency-domain delay line
    ("newest_slot", np.int64),        # state: FDL slot of the newest complete input spectrum
    ("ir_spectra_at", np.int64),      # spectra: (out_channels, K_l, P_l + 1) IR partitions
    ("fdl_at", np.int64),             # spectra: (in_channels, fdl_slots, P_l + 1) input history
    ("accumulator_at", np.int64),     # spectra: per-output sums (level 0: one scratch row first)
    ("input_spectrum_at", np.int64),  # spectra: level 0's partly filled block (in_ch, P_0 + 1)
    ("input_window_at", np.int64),    # samples: (in_channels, 2 P_l) overlap-save input windows
    ("output_at", np.int64),          # samples: (out_channels, P_l) level >= 1 output ready to add
    ("transform_at", np.int64),       # samples: 2 P_l inverse-FFT scratch
], align=True)

#: The stream as a whole, one record: channel counts and the samples processed since reset.
STREAM_DTYPE = np.dtype([
    ("in_channels", np.int64),
    ("out_channels", np.int64),
    ("samples_done", np.int64),       # state: input samples consumed since the last reset
], align=True)
_STREAM_WORDS = STREAM_DTYPE.itemsize // 8  # the stream record's size in int64 words

#: Cost model in nanoseconds, measured once on an AMD EPYC core (PocketFFT float32 through
#: rocket-fft, numba complex64 loop): one real FFT of N points ~ FFT_COST * N log2 N + CALL_COST,
#: one complex bin multiply-add ~ MAC_COST.  Only the ranking of schemes depends on them.
FFT_COST = 0.35
MAC_COST = 0.55
CALL_COST = 200.0
MIN_BASE = 32
MAX_BASE = 4096
MAX_PARTITION = 65536


def _next_pow2(n: int) -> int:
    return 1 << max(0, int(n - 1).bit_length())


def _fft_cost(n: int) -> float:
    return FFT_COST * n * math.log2(n) + CALL_COST


def _scheme_cost(levels, block_size: int, cin: int, cout: int) -> float:
    """Modelled work per output sample of a partition scheme ``[(size, count, offset), ...]``."""
    cost = 0.0
    for i, (size, count, _offset) in enumerate(levels):
        # level 0 transforms once per host call segment: block_size < P0 means several per block
        calls = max(1.0, size / max(1, block_size)) if i == 0 else 1.0
        ffts = calls * (cin * _fft_cost(2 * size) + cout * _fft_cost(2 * size))
        macs = cout * (count + (calls - 1.0)) * (size + 1) * MAC_COST
        cost += (ffts + macs) / size
    return cost


def plan_partitions(n_taps: int, block_size: int, in_channels: int = 1,
                    out_channels: int = 1) -> tuple[tuple[int, int, int], ...]:
    """Choose a non-uniform partition scheme for an IR of ``n_taps`` samples.

    Candidates are uniform splits and geometric schemes (growth factor 2, 4, 8 or 16) in which
    each level starts exactly one of its own partitions into the IR (``o_l = P_l``, Wefers 2015
    sec. 6.3 "canonical" condition); the cheapest by :func:`_scheme_cost` wins.

    Returns
    -------
    tuple of ``(partition_size, partition_count, ir_offset)`` per level, smallest first.
    """
    n_taps = max(1, int(n_taps))
    base = int(min(MAX_BASE, max(MIN_BASE, _next_pow2(block_size))))
    candidates = [((base, -(-n_taps // base), 0),)]
    for growth in (2, 4, 8, 16):
        levels: list[tuple[int, int, int]] = []
        size, offset = base, 0
        count = growth
        while True:
            remaining = n_taps - offset
            if remaining <= size * count or size * growth > MAX_PARTITION:
                levels.append((size, -(-remaining // size), offset))
                candidates.append(tuple(levels))
                break
            # option: stop here, all the rest in this level
            candidates.append(tuple(levels + [(size, -(-remaining // size), offset)]))
            levels.append((size, count, offset))
            offset += size * count
            size *= growth
            count = growth - 1
    return min(candidates, key=lambda c: _scheme_cost(c, block_size, in_channels, out_channels))


# -- kernels ---------------------------------------------------------------------------------
@nb.njit(cache=True, fastmath=True, nogil=True)
def _cmac(acc, a, b):
    """acc += a * b over complex bins."""
    for i in range(acc.shape[0]):
        acc[i] += a[i] * b[i]


@nb.njit(cache=True, fastmath=True, nogil=True)
def _level_due(levels, lv, stream, spectra, samples, axes):
    """Level ``lv`` >= 1 has a complete input block: FFT it, add the one product that needs it
    to the sum accumulated over the last period (:func:`_level_tick`), inverse FFT."""
    level = levels[lv]
    cin, cout = stream.in_channels, stream.out_channels
    p, k_count = level.partition_size, level.partition_count
    m, d = level.offset_partitions, level.fdl_slots
    nb_ = p + 1
    newest = (level.newest_slot + 1) % d
    level.newest_slot = newest
    fdl_at, window_at = level.fdl_at, level.input_window_at
    for ch in range(cin):
        window = samples[window_at + ch * 2 * p: window_at + (ch + 1) * 2 * p]
        slot = fdl_at + (ch * d + newest) * nb_
        r2c(window, spectra[slot: slot + nb_], axes, True, np.float32(1.0), 1)
        window[:p] = window[p:]
    tbuf = samples[level.transform_at: level.transform_at + 2 * p]
    scale = np.float32(1.0 / (2 * p))
    for c in range(cout):
        ch = c if cin > 1 else 0
        a = level.accumulator_at + c * nb_
        acc = spectra[a: a + nb_]
        if m == 1:  # partition 0 multiplies the spectrum just computed
            slot = fdl_at + (ch * d + newest) * nb_
            h = level.ir_spectra_at + c * k_count * nb_
            _cmac(acc, spectra[slot: slot + nb_], spectra[h: h + nb_])
        c2r(acc, tbuf, axes, False, scale, 1)
        acc[:] = 0
        o = level.output_at + c * p
        samples[o: o + p] = tbuf[p:]


@nb.njit(cache=True, fastmath=True, nogil=True)
def _level_tick(levels, lv, stream, spectra, t):
    """Spread a level's older products over its period: at each base block of the period, sum
    one slice of bins of every product whose input spectrum already exists (Wefers 2015,
    sec. 6.6: time-distributed computation), so the block where the level falls due only pays
    its FFTs and one product."""
    level = levels[lv]
    cin, cout = stream.in_channels, stream.out_channels
    p, k_count = level.partition_size, level.partition_count
    m, d = level.offset_partitions, level.fdl_slots
    p0 = levels[0].partition_size
    nb_ = p + 1
    ticks = p // p0
    j = (t % p) // p0
    lo = j * nb_ // ticks
    hi = (j + 1) * nb_ // ticks
    newest = level.newest_slot
    fdl_at = level.fdl_at
    first = 1 if m == 1 else 0
    for c in range(cout):
        ch = c if cin > 1 else 0
        a = level.accumulator_at + c * nb_
        acc = spectra[a + lo: a + hi]
        for k in range(first, k_count):
            # index at the coming boundary is newest + 1 - (m - 1) - k
            slot = fdl_at + (ch * d + (newest + 2 - m - k) % d) * nb_
            h = level.ir_spectra_at + (c * k_count + k) * nb_
            _cmac(acc, spectra[slot + lo: slot + hi], spectra[h + lo: h + hi])


@nb.njit(cache=True, fastmath=True, nogil=True)
def _base_block_start(levels, stream, spectra):
    """New level-0 block: sum the older partitions (k >= 1) of level 0 once, for all its calls."""
    level = levels[0]
    cin, cout = stream.in_channels, stream.out_channels
    p, k_count, d = level.partition_size, level.partition_count, level.fdl_slots
    nb_ = p + 1
    newest = level.newest_slot
    fdl_at = level.fdl_at
    for c in range(cout):
        ch = c if cin > 1 else 0
        a = level.accumulator_at + (c + 1) * nb_
        acc = spectra[a: a + nb_]
        acc[:] = 0
        for k in range(1, k_count):
            slot = fdl_at + (ch * d + (newest - (k - 1)) % d) * nb_
            h = level.ir_spectra_at + (c * k_count + k) * nb_
            _cmac(acc, spectra[slot: slot + nb_], spectra[h: h + nb_])


@nb.njit(cache=True, fastmath=True, nogil=True)
def _process_kernel(x, out, levels, stream, spectra, samples, axes):
    """Convolve one host block ``x`` (in_channels, n) into ``out`` (out_channels, n).

    ``levels`` (:data:`LEVEL_DTYPE` records) and ``stream`` (one :data:`STREAM_DTYPE` record)
    say where each level's pieces live in the flat buffers ``spectra`` (complex64) and
    ``samples`` (float32); ``newest_slot`` and ``samples_done`` are the state carried on.
    """
    n_levels = levels.shape[0]
    cin, cout = stream.in_channels, stream.out_channels
    base = levels[0]
    p0, d0 = base.partition_size, base.fdl_slots
    nb0 = p0 + 1
    window0, spectrum0 = base.input_window_at, base.input_spectrum_at
    acc0, fdl0, ir0 = base.accumulator_at, base.fdl_at, base.ir_spectra_at
    tbuf0 = samples[base.transform_at: base.transform_at + 2 * p0]
    scale0 = np.float32(1.0 / (2 * p0))
    n = x.shape[1]
    t = stream.samples_done
    pos = 0
    while pos < n:
        fill = t % p0
        if fill == 0:
            for lv in range(1, n_levels):
                if t > 0 and t % levels[lv].partition_size == 0:
                    _level_due(levels, lv, stream, spectra, samples, axes)
                _level_tick(levels, lv, stream, spectra, t)
            _base_block_start(levels, stream, spectra)
        seg = min(n - pos, p0 - fill)
        # feed every level's input window
        for lv in range(n_levels):
            p = levels[lv].partition_size
            at = levels[lv].input_window_at + p + t % p
            for ch in range(cin):
                dst = at + ch * 2 * p
                samples[dst: dst + seg] = x[ch, pos: pos + seg]
        # level 0: spectrum of the partly filled block, zero latency
        for ch in range(cin):
            w = window0 + ch * 2 * p0
            xs = spectrum0 + ch * nb0
            r2c(samples[w: w + 2 * p0], spectra[xs: xs + nb0], axes, True, np.float32(1.0), 1)
        scratch = spectra[acc0: acc0 + nb0]
        k0 = base.partition_count
        for c in range(cout):
            ch = c if cin > 1 else 0
            a = acc0 + (c + 1) * nb0
            scratch[:] = spectra[a: a + nb0]
            h = ir0 + c * k0 * nb0
            xs = spectrum0 + ch * nb0
            _cmac(scratch, spectra[xs: xs + nb0], spectra[h: h + nb0])
            c2r(scratch, tbuf0, axes, False, scale0, 1)
            dst = out[c, pos: pos + seg]
            dst[:] = tbuf0[p0 + fill: p0 + fill + seg]
            for lv in range(1, n_levels):
                p = levels[lv].partition_size
                o = levels[lv].output_at + c * p + t % p
                for i in range(seg):
                    dst[i] += samples[o + i]
        t += seg
        pos += seg
        if t % p0 == 0:
            # block complete: its spectrum joins the FDL, the window slides by one block
            if d0 > 0:
                newest = (base.newest_slot + 1) % d0
                base.newest_slot = newest
                for ch in range(cin):
                    slot = fdl0 + (ch * d0 + newest) * nb0
                    xs = spectrum0 + ch * nb0
                    spectra[slot: slot + nb0] = spectra[xs: xs + nb0]
            for ch in range(cin):
                w = samples[window0 + ch * 2 * p0: window0 + (ch + 1) * 2 * p0]
                w[:p0] = w[p0:]
                w[p0:] = 0
    stream.samples_done = t


@nb.njit(cache=True, nogil=True)
def _process_entry(x, out, record_words, spectra, samples, axes):
    """Python's way into :func:`_process_kernel`: the records arrive as their int64 storage.

    numba's dispatcher types a plain array in C but a record array (~0.2 us) or a record
    (~0.5 us) in Python at every call: passed as records, a 128-sample block ran 13-16 % slower
    (measured).  One int64 buffer holding the :data:`STREAM_DTYPE` record and then the
    :data:`LEVEL_DTYPE` records, viewed back as those records here, keeps the names for free.
    """
    stream = record_words[:_STREAM_WORDS].view(STREAM_DTYPE)[0]
    levels = record_words[_STREAM_WORDS:].view(LEVEL_DTYPE)
    _process_kernel(x, out, levels, stream, spectra, samples, axes)


def _check_scheme(partitions, n_taps: int) -> tuple[tuple[int, int, int], ...]:
    """Validate an explicit ``[(size, count), ...]`` scheme and add the IR offsets."""
    levels, offset = [], 0
    for i, (size, count) in enumerate(partitions):
        size, count = int(size), int(count)
        base = levels[0][0] if levels else size
        if size < 1 or count < 1 or size % base or (i and (offset % size or offset < size)):
            raise InputError(f"partition level {i} ({size} x {count} at offset {offset}) breaks "
                             "the rules: sizes multiples of the first, each later level starting "
                             "at a multiple of its size and at least one size into the IR")
        levels.append((size, count, offset))
        offset += size * count
    if offset < n_taps:
        raise InputError(f"partitions cover {offset} samples, the IR has {n_taps}")
    return tuple(levels)


# -- processor -------------------------------------------------------------------------------
class PartitionedConvolver:
    """Streaming convolution of one or more channels with a long impulse response.

    Parameters
    ----------
    ir : float array ``(channels, n_taps)`` or 1-D ``(n_taps,)``.  Each IR channel is one output.
    block_size : the host block size in samples the partitions are planned for.  ``process``
        accepts any block length; equal to fftconvolve whatever the split.
    in_channels : 1 (a mono signal feeds every IR channel, e.g. a send into a binaural room
        response) or the IR's channel count (channel ``c`` is convolved with IR channel ``c``).
    partitions : optional explicit scheme ``[(size, count), ...]`` instead of
        :func:`plan_partitions` (tests, benchmarks).  Each later level's IR offset must be a
        multiple of its size, at least one size, and sizes multiples of the first.

    Notes
    -----
    No latency: the output of each block includes the block's own direct response.
    ``process`` allocates nothing when ``out`` is given.
    """

    def __init__(self, ir, block_size: int = 128, in_channels: int = 1, partitions=None):
        h = np.asarray(ir, dtype=np.float64)
        if h.ndim == 1:
            h = h[None, :]
        if h.ndim != 2 or h.shape[1] == 0 or h.shape[0] == 0:
            raise InputError(f"impulse response must be 1-D or (channels, samples) and non-empty, "
                             f"got shape {np.shape(ir)}")
        if not np.all(np.isfinite(h)):
            raise InputError("impulse response contains NaN or Inf")
        if in_channels not in (1, h.shape[0]):
            raise InputError(f"in_channels must be 1 or the IR's channel count {h.shape[0]}, "
                             f"got {in_channels}")
        self.ir = h
        self.in_channels = int(in_channels)
        self.out_channels = h.shape[0]
        self.block_size = 0
        self._partitions = None if partitions is None else _check_scheme(partitions, h.shape[1])
        self.prepare(block_size=block_size)

    # -- protocol --
    def prepare(self, sample_rate: float | None = None, block_size: int | None = None,
                channels: int | None = None) -> None:
        """Plan partitions for ``block_size`` and allocate every buffer (``sample_rate`` unused)."""
        if channels is not None and channels not in (1, self.out_channels):
            raise InputError(f"channels must be 1 or {self.out_channels}, got {channels}")
        if channels is not None:
            self.in_channels = int(channels)
        block_size = int(block_size or self.block_size or 128)
        if block_size < 1:
            raise InputError(f"block_size must be a positive integer, got {block_size}")
        self.block_size = block_size
        cin, cout = self.in_channels, self.out_channels
        self.levels = self._partitions or plan_partitions(self.ir.shape[1], block_size, cin, cout)
        # one int64 buffer: the stream record, then one record per level (see _process_entry)
        words = np.zeros(_STREAM_WORDS + len(self.levels) * LEVEL_DTYPE.itemsize // 8, np.int64)
        stream = words[:_STREAM_WORDS].view(STREAM_DTYPE)
        levels = words[_STREAM_WORDS:].view(LEVEL_DTYPE)
        stream["in_channels"], stream["out_channels"] = cin, cout
        for level, (p, k, o) in zip(levels, self.levels):
            level["partition_size"], level["partition_count"] = p, k
            level["offset_partitions"] = o // p
            level["fdl_slots"] = (k - 1) if o == 0 else (o // p - 1 + k)
        # IR spectra first: reset() zeroes everything after them
        c_off = 0
        for level in levels:
            level["ir_spectra_at"] = c_off
            c_off += cout * int(level["partition_count"]) * (int(level["partition_size"]) + 1)
        self._spectra_end = c_off
        r_off = 0
        for lv, level in enumerate(levels):
            bins = int(level["partition_size"]) + 1
            level["fdl_at"] = c_off
            c_off += cin * int(level["fdl_slots"]) * bins
            level["accumulator_at"] = c_off
            c_off += (cout + 1) * bins if lv == 0 else cout * bins
            level["input_spectrum_at"] = c_off
            c_off += cin * bins if lv == 0 else 0
            level["input_window_at"] = r_off
            r_off += cin * 2 * (bins - 1)
            level["output_at"] = r_off
            r_off += cout * (bins - 1) if lv > 0 else 0
            level["transform_at"] = r_off
            r_off += 2 * (bins - 1)
        spectra = np.zeros(c_off, dtype=np.complex64)
        for level, (p, k, o) in zip(levels, self.levels):
            seg = np.zeros((cout, k * p))
            avail = self.ir[:, o: o + k * p]
            seg[:, : avail.shape[1]] = avail
            spec = np.fft.rfft(seg.reshape(cout, k, p), n=2 * p, axis=-1)
            start = int(level["ir_spectra_at"])
            spectra[start: start + spec.size] = spec.astype(np.complex64).ravel()
        self._spectra, self._samples = spectra, np.zeros(r_off, dtype=np.float32)
        self._levels, self._stream, self._record_words = levels, stream, words
        self._axes = np.zeros(1, dtype=np.int64)
        self._scratch = np.zeros(cout * block_size, dtype=np.float32)
        self.reset()

    def reset(self) -> None:
        """Forget the signal history (the IR stays)."""
        self._spectra[self._spectra_end:] = 0
        self._samples[:] = 0
        self._levels["newest_slot"] = 0
        self._stream["samples_done"] = 0

    def process(self, block, out=None) -> np.ndarray:
        """Convolve the next block.

        Parameters
        ----------
        block : float32 ``(n,)`` mono or ``(in_channels, n)``.
        out : optional float32 ``(out_channels, n)`` C-contiguous array to write into.

        Returns
        -------
        ``out`` (allocated when not given).
        """
        x = block
        if type(x) is not np.ndarray or x.dtype != np.float32 or not x.flags.c_contiguous:
            x = np.ascontiguousarray(x, dtype=np.float32)
        if x.ndim == 1:
            x = x.reshape(1, -1)
        if x.ndim != 2 or x.shape[0] != self.in_channels:
            raise InputError(f"block must be (n,) or ({self.in_channels}, n), got {x.shape}")
        if out is None:
            out = np.empty((self.out_channels, x.shape[1]), dtype=np.float32)
        elif out.shape != (self.out_channels, x.shape[1]) or out.dtype != np.float32:
            raise InputError(f"out must be float32 {(self.out_channels, x.shape[1])}, "
                             f"got {out.dtype} {out.shape}")
        if x.shape[1]:
            if out.flags.c_contiguous:
                _process_entry(x, out, self._record_words, self._spectra, self._samples,
                               self._axes)
            else:  # a strided view (e.g. out[:, :m]): same compiled kernel, then one copy
                size = self.out_channels * x.shape[1]
                if self._scratch.size < size:
                    self._scratch = np.zeros(size, dtype=np.float32)
                tmp = self._scratch[:size].reshape(self.out_channels, x.shape[1])
                _process_entry(x, tmp, self._record_words, self._spectra, self._samples,
                               self._axes)
                out[...] = tmp
        return out

    @property
    def latency_samples(self) -> int:
        return 0

    def __repr__(self) -> str:
        scheme = " | ".join(f"{p}x{k}" for p, k, _ in self.levels)
        return (f"PartitionedConvolver({self.in_channels}->{self.out_channels} ch, "
                f"{self.ir.shape[1]} taps, block {self.block_size}: {scheme})")
