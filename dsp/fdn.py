"""Jot feedback delay network (FDN) reverb: the algorithmic alternative to convolution.

What it holds
-------------
``FdnReverb``        mono send in, decorrelated stereo/binaural out; ``prepare``/``process``/``reset``
``fdn_delays``       mutually prime delay lengths spread geometrically over a range
``jot_absorption``   per-line gain and one-pole coefficient for a target T60 (low and high)
``decay_time_s``     T60 of an impulse response by Schroeder backward integration (T20/T30 fit)
``LINE_DTYPE``       named record of one delay line: length, absorption, taps
``NETWORK_DTYPE``    named record of the network: pre-delay, high-pass, tone beta, output gain
``STATE_DTYPE``      named record of what it remembers: ring positions, output filter memories
``_fdn_kernel``      the per-sample numba loop; ``_fdn_entry`` its fast-dispatch entry from Python

Design (Jot & Chaigne 1991, "Digital delay networks for designing artificial reverberators",
AES 90th conv., preprint 3030; Schroeder 1962 for the modal-density rule)
----------------------------------------------------------------------------------------------
``N`` delay lines (16 by default) feed back through a normalised Hadamard matrix (lossless,
maximally diffusing, applied as a fast Walsh-Hadamard transform).  Each line ``i`` of ``m_i``
samples carries the absorption filter ``g_i (1 - b_i) / (1 - b_i z^-1)`` with
``g_i = 10^(-3 m_i / (T60_low fs))`` so every path decays at the same rate in dB per second, and
``b_i = ln(10)/4 log10(g_i) (1 - 1/alpha^2)``, ``alpha = T60_high / T60_low``, which gives the
Nyquist decay ``T60_high``.  The tone-correction filter ``(1 - beta z^-1) / (1 - beta)``,
``beta = (1 - alpha) / (1 + alpha)``, keeps the initial spectrum flat.  The total delay is at
least ``0.15 T60 fs`` samples (Schroeder's modal-density criterion) when the range allows.

Two orthogonal output tap vectors give ``u`` and ``v``; the outputs are ``u + HP(v)`` and
``u - HP(v)`` with a first-order high-pass at ``coherence_hz``: coherent (in phase) below it,
uncorrelated above, as the interaural coherence of a diffuse field (Cook et al. 1955, see
``stase.dsp.brir``).  Output gain is set so the impulse response has unit energy per channel
(``level="broadband"``) or the energy of a unit impulse in the 500 Hz-1 kHz octaves
(``level="mid_band"``, how ``stase.dsp.rooms`` matches it to a room's BRIR).
"""
from __future__ import annotations

import math

import numba as nb
import numpy as np

from stase.core.errors import InputError
from stase.core.rates import check_sample_rate


def _is_prime(n: int) -> bool:
    if n < 2:
        return False
    if n % 2 == 0:
        return n == 2
    return all(n % k for k in range(3, int(math.isqrt(n)) + 1, 2))


def fdn_delays(n_lines: int, min_samples: float, max_samples: float) -> np.ndarray:
    """``n_lines`` distinct primes spread geometrically over [min_samples, max_samples]."""
    targets = np.geomspace(max(2.0, min_samples), max(min_samples + n_lines, max_samples), n_lines)
    delays: list[int] = []
    for t in targets:
        d = max(2, int(round(t)))
        while not _is_prime(d) or d in delays:
            d += 1
        delays.append(d)
    return np.asarray(delays, dtype=np.int64)


def jot_absorption(delays, sample_rate: float, t60_low_s: float, t60_high_s: float):
    """Per-line (gain, one-pole coefficient) and the tone-correction beta (Jot & Chaigne 1991)."""
    m = np.asarray(delays, dtype=np.float64)
    gains = 10.0 ** (-3.0 * m / (t60_low_s * sample_rate))
    alpha = t60_high_s / t60_low_s
    poles = np.log(10.0) / 4.0 * np.log10(gains) * (1.0 - 1.0 / alpha ** 2)
    beta = (1.0 - alpha) / (1.0 + alpha)
    return gains, np.clip(poles, 0.0, 0.99), beta


def decay_time_s(ir, sample_rate: float, fit_db=(-5.0, -35.0)) -> float:
    """Reverberation time from the Schroeder backward-integrated energy decay (ISO 3382-1).

    Parameters
    ----------
    ir : impulse response, 1-D or (channels, n) (channel energies are summed).
    fit_db : the decay range fitted by least squares, (-5, -35) = T30, (-5, -25) = T20.

    Returns
    -------
    T60 in seconds: the fitted slope extrapolated to -60 dB.
    """
    h = np.atleast_2d(np.asarray(ir, dtype=np.float64))
    energy = np.sum(h * h, axis=0)
    edc = np.cumsum(energy[::-1])[::-1]
    if edc[0] <= 0:
        raise InputError("impulse response is silent: no decay to measure")
    edc_db = 10.0 * np.log10(np.maximum(edc / edc[0], 1e-30))
    hi, lo = fit_db
    idx = np.nonzero((edc_db <= hi) & (edc_db >= lo))[0]
    if idx.size < 10:
        raise InputError(f"impulse response does not decay through {hi}..{lo} dB")
    t = idx / float(sample_rate)
    slope, _ = np.polyfit(t, edc_db[idx], 1)
    return float(-60.0 / slope)


# -- named kernel state ------------------------------------------------------------------
#: One record per delay line: its length and the coefficients that act on it.
LINE_DTYPE = np.dtype([
    ("delay", np.int64),          # m_i samples
    ("gain", np.float64),         # g_i, broadband loss per pass through the line
    ("pole", np.float64),         # b_i of the absorption one-pole (0 = frequency-independent)
    ("in_tap", np.float64),       # how much of the (pre-delayed) input enters the line
    ("mid_tap", np.float64),      # u: the line's share of the part common to both outputs
    ("side_tap", np.float64),     # v: its share of the high-passed part, +left / -right
], align=True)

#: The network's coefficients, one record.
NETWORK_DTYPE = np.dtype([
    ("predelay", np.int64),               # samples before the reverb starts
    ("highpass_coefficient", np.float64),  # a of the side channel's first-order high-pass
    ("tone_beta", np.float64),            # Jot's tone-correction beta (0 = off)
    ("output_gain", np.float64),          # linear, sets the impulse-response energy
], align=True)

#: What the network remembers between blocks besides its delay lines, one record.
STATE_DTYPE = np.dtype([
    ("write_index", np.int64),     # next write position in every delay line
    ("predelay_index", np.int64),  # next write position in the pre-delay ring
    ("highpass_input", np.float64),   # side high-pass x[n-1]
    ("highpass_output", np.float64),  # side high-pass y[n-1]
    ("tone_left", np.float64),     # tone-correction filter input x[n-1], left
    ("tone_right", np.float64),    # and right
], align=True)

# where each record starts in the one byte buffer _fdn_entry receives (network, state, lines)
_STATE_AT = NETWORK_DTYPE.itemsize
_LINES_AT = _STATE_AT + STATE_DTYPE.itemsize


@nb.njit(cache=True, fastmath=True, nogil=True)
def _fdn_kernel(x, out, lines, network, delay_lines, predelay_line, absorption_state, state, work):
    """Run the FDN over mono ``x`` (n,) into ``out`` (2, n).

    Works in chunks no longer than the shortest delay line: within a chunk every line reads
    only samples written before it, so each step runs over the whole chunk (vectorisable)
    while giving exactly the per-sample result.

    Parameters
    ----------
    lines : (n_lines,) :data:`LINE_DTYPE` records; network : one :data:`NETWORK_DTYPE` record.
    delay_lines : (n_lines, power of two) rings; predelay_line : a power-of-two ring.
    absorption_state : (n_lines,) each line's one-pole output y[n-1].
    state : one :data:`STATE_DTYPE` record (ring positions, output filter memories).
    work : (n_lines + 3, chunk) scratch: line outputs, then mid, side and the delayed input.
    """
    nl = lines.shape[0]
    mask = delay_lines.shape[1] - 1
    pmask = predelay_line.shape[0] - 1
    w, pw, predelay = state.write_index, state.predelay_index, network.predelay
    hp_a, beta = network.highpass_coefficient, network.tone_beta
    gain = network.output_gain / (1.0 - beta)
    norm = 1.0 / math.sqrt(nl)
    chunk_max = work.shape[1]
    u = work[nl]
    v = work[nl + 1]
    xd = work[nl + 2]
    total = x.shape[0]
    pos = 0
    while pos < total:
        m = min(chunk_max, total - pos)
        # pre-delayed input
        for n in range(m):
            predelay_line[(pw + n) & pmask] = x[pos + n]
            xd[n] = predelay_line[(pw + n - predelay) & pmask]
        pw = (pw + m) & pmask
        # delay-line outputs through each line's absorption filter
        for i in range(nl):
            d = lines[i].delay
            pole = lines[i].pole
            b0 = lines[i].gain * (1.0 - pole)
            y = absorption_state[i]
            row = work[i]
            line = delay_lines[i]
            for n in range(m):
                y = b0 * line[(w + n - d) & mask] + pole * y
                row[n] = y
            absorption_state[i] = y
        # output taps
        for n in range(m):
            u[n] = 0.0
            v[n] = 0.0
        for i in range(nl):
            cu = lines[i].mid_tap
            cv = lines[i].side_tap
            row = work[i]
            for n in range(m):
                u[n] += cu * row[n]
                v[n] += cv * row[n]
        # normalised Hadamard feedback (fast Walsh-Hadamard transform over the lines)
        h = 1
        while h < nl:
            for i in range(0, nl, 2 * h):
                for j in range(i, i + h):
                    ra = work[j]
                    rb = work[j + h]
                    for n in range(m):
                        a = ra[n]
                        b = rb[n]
                        ra[n] = a + b
                        rb[n] = a - b
            h *= 2
        for i in range(nl):
            cin = lines[i].in_tap
            row = work[i]
            line = delay_lines[i]
            for n in range(m):
                line[(w + n) & mask] = row[n] * norm + cin * xd[n]
        w = (w + m) & mask
        # side channel high-passed (coherent lows, uncorrelated highs), Jot tone correction
        hx, hy = state.highpass_input, state.highpass_output
        tl, tr = state.tone_left, state.tone_right
        for n in range(m):
            hy = hp_a * (hy + v[n] - hx)
            hx = v[n]
            left = u[n] + hy
            right = u[n] - hy
            out[0, pos + n] = gain * (left - beta * tl)
            out[1, pos + n] = gain * (right - beta * tr)
            tl = left
            tr = right
        state.highpass_input, state.highpass_output = hx, hy
        state.tone_left, state.tone_right = tl, tr
        pos += m
    state.write_index = w
    state.predelay_index = pw


@nb.njit(cache=True, nogil=True)
def _fdn_entry(x, out, record_bytes, delay_lines, predelay_line, absorption_state, work):
    """Python's way into :func:`_fdn_kernel`: the records arrive as one buffer of bytes.

    numba's dispatcher types a plain array in C but a record array (~0.2 us) or a record
    (~0.5 us) in Python at every call (measured).  ``record_bytes`` holds the network record,
    the state record, then one line record per delay line; viewed back as those records here
    they keep their names for free.
    """
    network = record_bytes[:_STATE_AT].view(NETWORK_DTYPE)[0]
    state = record_bytes[_STATE_AT:_LINES_AT].view(STATE_DTYPE)[0]
    lines = record_bytes[_LINES_AT:].view(LINE_DTYPE)
    _fdn_kernel(x, out, lines, network, delay_lines, predelay_line, absorption_state, state, work)


class FdnReverb:
    """Jot FDN reverb: mono in, two decorrelated channels out (wet only, no direct sound).

    Parameters
    ----------
    sample_rate : Hz.
    t60_s : reverberation time at low and mid frequencies, seconds.
    n_lines : number of delay lines, a power of two (Hadamard feedback), 4..64.
    t60_high_s : reverberation time at Nyquist (default ``0.5 * t60_s``: air and wall absorption
        shorten the highs); equal to ``t60_s`` for a frequency-independent decay.
    min_delay_ms, max_delay_ms : delay-line range; the maximum is stretched so the total delay
        meets Schroeder's ``0.15 T60 fs`` modal density when it is too short.
    coherence_hz : below it the two outputs are coherent, above it uncorrelated.
    predelay_ms : delay before the reverb starts.
    block_size : the usual block (any length works).
    level : "broadband" (unit impulse-response energy per channel) or "mid_band" (unit energy
        relative to a unit impulse in the 500 Hz-1 kHz octaves).
    tone_correction : apply Jot's ``(1 - beta z^-1) / (1 - beta)`` so the early spectrum stays
        flat although the highs decay sooner.
    """

    def __init__(self, sample_rate: float, t60_s: float, n_lines: int = 16,
                 t60_high_s: float | None = None, min_delay_ms: float = 12.0,
                 max_delay_ms: float = 45.0, coherence_hz: float = 500.0,
                 predelay_ms: float = 0.0, block_size: int = 1024, level: str = "broadband",
                 tone_correction: bool = True):
        sample_rate = check_sample_rate(sample_rate, "sample_rate")
        if not (0.01 <= t60_s <= 30.0):
            raise InputError(f"t60_s must be within 0.01..30 s, got {t60_s!r}")
        if n_lines < 4 or n_lines > 64 or n_lines & (n_lines - 1):
            raise InputError(f"n_lines must be a power of two within 4..64, got {n_lines!r}")
        t60_high_s = 0.5 * t60_s if t60_high_s is None else float(t60_high_s)
        if not (0.01 <= t60_high_s <= t60_s * 2.0):
            raise InputError(f"t60_high_s must be within 0.01 s and 2 x t60_s, got {t60_high_s!r}")
        if level not in ("broadband", "mid_band"):
            raise InputError(f"level must be 'broadband' or 'mid_band', got {level!r}")
        if not (0 < min_delay_ms < max_delay_ms):
            raise InputError("delays must satisfy 0 < min_delay_ms < max_delay_ms")
        self.sample_rate = float(sample_rate)
        self.t60_s, self.t60_high_s = float(t60_s), t60_high_s
        self.n_lines = int(n_lines)
        lo = min_delay_ms * 1e-3 * sample_rate
        hi = max_delay_ms * 1e-3 * sample_rate
        needed = 0.15 * t60_s * sample_rate  # Schroeder: modal density for a smooth response
        while np.sum(np.geomspace(lo, hi, n_lines)) < needed and hi < 0.2 * sample_rate:
            hi *= 1.1
        pre = int(round(max(0.0, predelay_ms) * 1e-3 * sample_rate))
        self.delays = fdn_delays(n_lines, lo, hi)
        gains, poles, beta = jot_absorption(self.delays, sample_rate, t60_s, t60_high_s)
        self.tone_beta = float(beta) if tone_correction else 0.0
        # input and output tap vectors: deterministic sign patterns (rows of a Hadamard matrix),
        # u and v orthogonal so the two outputs start decorrelated
        had = _hadamard(n_lines)
        in_taps = had[1] / math.sqrt(n_lines)
        u_taps, v_taps = had[2] / math.sqrt(n_lines), had[3] / math.sqrt(n_lines)
        hp_a = 1.0 / (1.0 + 2.0 * math.pi * coherence_hz / sample_rate)
        # one byte buffer: network record, state record, line records (see _fdn_entry)
        self._record_bytes = np.zeros(_LINES_AT + n_lines * LINE_DTYPE.itemsize, dtype=np.uint8)
        self._network = self._record_bytes[:_STATE_AT].view(NETWORK_DTYPE)
        self._state = self._record_bytes[_STATE_AT:_LINES_AT].view(STATE_DTYPE)
        self._lines = self._record_bytes[_LINES_AT:].view(LINE_DTYPE)
        self._lines["delay"], self._lines["gain"], self._lines["pole"] = self.delays, gains, poles
        self._lines["in_tap"], self._lines["mid_tap"], self._lines["side_tap"] = (
            in_taps, u_taps, v_taps)
        self._network["predelay"] = pre
        self._network["highpass_coefficient"] = hp_a
        self._network["tone_beta"] = self.tone_beta
        self._network["output_gain"] = 1.0  # unnormalised while measuring the energy below
        size = 1 << int(int(self.delays.max()) + 1).bit_length()
        self._delay_lines = np.zeros((n_lines, size), dtype=np.float64)
        self._predelay_line = np.zeros(1 << int(pre + 1).bit_length(), dtype=np.float64)
        self._absorption_state = np.zeros(n_lines, dtype=np.float64)
        self._work = np.zeros((n_lines + 3, int(self.delays.min())), dtype=np.float64)
        self.block_size = int(block_size)
        self._scratch = np.zeros(2 * self.block_size, dtype=np.float32)
        self._network["output_gain"] = 1.0 / math.sqrt(max(self._impulse_energy(level), 1e-30))
        self.reset()

    def scale_output(self, gain: float) -> None:
        """Multiply the output level by ``gain`` (takes effect at once)."""
        self._network["output_gain"] *= float(gain)

    def _impulse_energy(self, level: str = "broadband") -> float:
        """Energy per channel of the unnormalised impulse response (rendered to -80 dB)."""
        n = int(self.t60_s * 80.0 / 60.0 * self.sample_rate) + int(self.delays.max()) + 1
        x = np.zeros(n, dtype=np.float32)
        x[0] = 1.0
        self.reset()
        y = np.zeros((2, n), dtype=np.float32)
        self._run(x, y)
        if level == "mid_band":
            from stase.dsp.brir import mid_band_energy_ratio
            return mid_band_energy_ratio(y, self.sample_rate)
        return float(np.mean(np.sum(y.astype(np.float64) ** 2, axis=1)))

    def prepare(self, sample_rate: float | None = None, block_size: int | None = None,
                channels: int | None = None) -> None:
        """Check the rate (fixed at construction) and clear the state; any block size works."""
        if sample_rate is not None and float(sample_rate) != self.sample_rate:
            raise InputError(f"this FdnReverb was built for {self.sample_rate:g} Hz, "
                             f"got {sample_rate}; build a new one")
        self.block_size = int(block_size or self.block_size)
        self.reset()

    def reset(self) -> None:
        """Silence every delay line and filter."""
        self._delay_lines[:] = 0
        self._predelay_line[:] = 0
        self._absorption_state[:] = 0
        self._state[:] = 0

    def _run(self, x, out) -> None:
        _fdn_entry(x, out, self._record_bytes, self._delay_lines, self._predelay_line,
                   self._absorption_state, self._work)

    def process(self, block, out=None) -> np.ndarray:
        """Reverberate the mono ``block`` (n,) into ``out`` (2, n) float32 (allocated if None)."""
        x = block
        if type(x) is not np.ndarray or x.dtype != np.float32:
            x = np.asarray(x, dtype=np.float32)
        if x.ndim == 2 and x.shape[0] == 1:
            x = x[0]
        if x.ndim != 1:
            raise InputError(f"FdnReverb takes a mono block (n,) or (1, n), got {np.shape(block)}")
        if not x.flags.c_contiguous:
            x = np.ascontiguousarray(x)
        if out is None:
            out = np.empty((2, x.shape[0]), dtype=np.float32)
        elif out.shape != (2, x.shape[0]) or out.dtype != np.float32:
            raise InputError(f"out must be float32 (2, {x.shape[0]}), got {out.dtype} {out.shape}")
        if out.flags.c_contiguous:
            self._run(x, out)
        else:  # a strided view (e.g. out[:, :m]): same compiled kernel, then one copy
            size = 2 * x.shape[0]
            if self._scratch.size < size:
                self._scratch = np.zeros(size, dtype=np.float32)
            tmp = self._scratch[:size].reshape(2, x.shape[0])
            self._run(x, tmp)
            out[...] = tmp
        return out


def _hadamard(n: int) -> np.ndarray:
    h = np.ones((1, 1))
    while h.shape[0] < n:
        h = np.block([[h, h], [h, -h]])
    return h
