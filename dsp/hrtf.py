"""HRTF sets: reading SOFA files, resampling, and interpolating between measured directions.

Holds
-----
load_hrtf(path=None, sample_rate=48000) -> HrtfSet
    Reads a ``SimpleFreeFieldHRIR`` SOFA file with sofar (default: the shipped MIT KEMAR set,
    Gardner & Martin 1995, converted by ``tools/make_kemar_sofa.py``), checks it, resamples it to
    the session rate with ``scipy.signal.resample_poly`` and splits every HRIR into an onset delay
    per ear (samples) and an onset-aligned filter.
HrtfSet
    The aligned filters, the delays and a triangulation of the measured directions (the convex hull
    of their unit vectors).  A direction between measurements gets barycentric weights on the
    triangle its ray crosses; aligned filters and delays are interpolated with those weights and
    the delay re-applied as a fractional delay (3rd-order Lagrange, :mod:`stase.dsp.kernels`).  Removing
    the onsets first keeps the interpolation from comb-filtering two differently delayed responses.

The stored filter is the measured HRIR after resampling, from its onset (less a few samples of
margin) on, truncated to ``filter_length`` taps with a short fade-out (384 taps at 48 kHz keep at least
96.7 % of each KEMAR ear's energy, 98 % or more for 99 % of them; the rest is the faint late
diffraction tail of the far ear); :meth:`HrtfSet.hrir` returns exactly what the renderer
convolves with.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from stase.core.conventions import clamp_elevation_deg, spherical_to_cartesian, wrap_azimuth_deg
from stase.core.errors import InputError, StaseError
from stase.core.rates import check_sample_rate, resample

DEFAULT_SOFA_PATH = Path(__file__).resolve().parent / "data" / "mit_kemar_normal_pinna.sofa"
#: Largest onset delay kept outside the filter (samples); the renderer's delay lines hold 256.
MAX_ONSET_DELAY = 192
#: Onset threshold relative to each ear's peak, and the margin kept before it (s).
ONSET_THRESHOLD = 0.1
ONSET_MARGIN_S = 1.5e-4
#: Sampling rates accepted in a SOFA file, Hz (those of a session).
SOFA_RATE_RANGE_HZ = (8000, 384000)
#: Largest |sample| accepted in an HRIR: measured ones peak near 1 (KEMAR: 0.7); 1e38 is garbage.
MAX_HRIR_MAGNITUDE = 100.0
#: Largest resampled HRIR set accepted, bytes (float64); KEMAR at 384 kHz needs 50 MB.  Checked
#: before resampling, so a file claiming an odd rate cannot ask for 270 GiB.
MAX_RESAMPLED_BYTES = 1 << 30
#: The signatures a SOFA file can start with: netCDF-4/HDF5 (also after a 512 * 2^k user block)
#: or classic netCDF.
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_NETCDF_SIGNATURES = (b"CDF\x01", b"CDF\x02", b"CDF\x05")


@dataclass
class HrtfSet:
    """An HRTF set at one sample rate, ready for interpolation and rendering.

    Attributes
    ----------
    sample_rate : Hz.
    directions_deg : (M, 2) float64, measured ``[azimuth_deg, elevation_deg]`` (positive = left).
    aligned : (M, 2, filter_length) float32, onset-aligned filters, ear 0 = left.
    delays : (M, 2) float64, onset delay per ear in samples.
    faces : (F, 3) int64, triangles of the measured directions (indices into ``directions_deg``).
    face_inverse : (F, 3, 3) float64, inverse of each triangle's vertex matrix (barycentric maths).
    source : where the set came from (path).
    """

    sample_rate: int
    directions_deg: np.ndarray
    aligned: np.ndarray
    delays: np.ndarray
    faces: np.ndarray
    face_inverse: np.ndarray
    source: str = ""
    _spectra: dict = field(default_factory=dict, repr=False)

    @property
    def n_directions(self) -> int:
        return int(self.directions_deg.shape[0])

    @property
    def filter_length(self) -> int:
        return int(self.aligned.shape[-1])

    def weights(self, azimuth_deg: float, elevation_deg: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """Barycentric interpolation: ``(indices (3,), weights (3,))`` for a direction.

        The weights are non-negative and sum to 1; at a measured direction one weight is 1.
        """
        from stase.dsp.kernels import find_face
        direction = np.array(spherical_to_cartesian(wrap_azimuth_deg(azimuth_deg),
                                                    clamp_elevation_deg(elevation_deg)), dtype=np.float64)
        w = np.zeros(3)
        face = find_face(self.face_inverse, direction, 0, w)
        return self.faces[face].copy(), w

    def interpolate(self, azimuth_deg: float, elevation_deg: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """Interpolated ``(aligned filter (2, filter_length) float32, delays (2,) samples)``."""
        idx, w = self.weights(azimuth_deg, elevation_deg)
        aligned = np.tensordot(w, self.aligned[idx].astype(np.float64), axes=1).astype(np.float32)
        return aligned, w @ self.delays[idx]

    def hrir(self, azimuth_deg: float, elevation_deg: float = 0.0) -> np.ndarray:
        """The full HRIR (2, n) float64 the renderer applies: delay (Lagrange) then aligned filter."""
        from stase.dsp.kernels import lagrange_coefficients
        aligned, delays = self.interpolate(azimuth_deg, elevation_deg)
        n = int(np.floor(delays.max())) + 3 + self.filter_length
        out = np.zeros((2, n))
        for ear in range(2):
            taps = np.zeros(int(np.floor(delays[ear])) + 3)
            start = int(np.floor(delays[ear])) - 1
            taps[start:start + 4] = lagrange_coefficients(delays[ear] - np.floor(delays[ear]))
            full = np.convolve(taps, aligned[ear].astype(np.float64))
            out[ear, :len(full)] = full
        return out

    def partition_spectra(self, partition: int) -> np.ndarray:
        """Spectra of the aligned filters cut into ``partition``-sample pieces (cached).

        Returns complex64 ``(M, 2, P, partition + 1)``: the rFFT (size ``2 * partition``) of each
        zero-padded piece, for uniformly partitioned overlap-save convolution.
        """
        if partition not in self._spectra:
            n_parts = -(-self.filter_length // partition)
            padded = np.zeros((self.n_directions, 2, n_parts * partition), dtype=np.float64)
            padded[..., :self.filter_length] = self.aligned
            pieces = padded.reshape(self.n_directions, 2, n_parts, partition)
            self._spectra[partition] = np.fft.rfft(pieces, n=2 * partition, axis=-1).astype(np.complex64)
        return self._spectra[partition]


def default_filter_length(sample_rate: int) -> int:
    """384 taps at 48 kHz (8 ms from the onset on), scaled to other rates (multiple of 64)."""
    return int(64 * np.ceil(384 * sample_rate / 48000.0 / 64.0))


def load_hrtf(path: str | Path | None = None, sample_rate: int = 48000,
              filter_length: int | None = None) -> HrtfSet:
    """Read a SOFA HRTF set and prepare it for ``sample_rate``.

    Parameters
    ----------
    path : a ``SimpleFreeFieldHRIR`` SOFA file; None = the shipped MIT KEMAR set.
    sample_rate : session rate in Hz; the HRIRs are resampled to it.
    filter_length : taps kept after each onset (default :func:`default_filter_length`).

    Raises
    ------
    InputError : missing file, not SOFA, wrong convention, missing fields, NaN/Inf, a sampling
        rate outside :data:`SOFA_RATE_RANGE_HZ`, a negative delay, HRIR values beyond
        :data:`MAX_HRIR_MAGNITUDE`, a set too large once resampled, too few directions.
    """
    p = Path(path) if path is not None else DEFAULT_SOFA_PATH
    sample_rate = check_sample_rate(sample_rate, "sample_rate")
    length = int(filter_length or default_filter_length(int(sample_rate)))
    return _load_cached(str(p.resolve()), int(sample_rate), length)


@lru_cache(maxsize=8)
def _load_cached(path: str, sample_rate: int, filter_length: int) -> HrtfSet:
    ir, positions, rate, data_delay = _read_sofa(Path(path))
    return prepare_hrtf(ir, positions, rate, sample_rate, filter_length, data_delay, source=path)


def _looks_like_sofa(p: Path) -> bool:
    """True when the file starts like netCDF/HDF5 (what every SOFA file is)."""
    with open(p, "rb") as fh:
        head = fh.read(8)
        if head[:4] in _NETCDF_SIGNATURES or head == _HDF5_SIGNATURE:
            return True
        offset = 512
        size = p.stat().st_size
        while offset + 8 <= size and offset <= 1 << 20:
            fh.seek(offset)
            if fh.read(8) == _HDF5_SIGNATURE:
                return True
            offset *= 2
    return False


def _check_declared_size(p: Path) -> None:
    """Refuse a file whose Data_IR (M x R x N) would not fit, before reading it.

    A compressed netCDF-4 file of a few kB can declare gigabytes of zeros; its dimensions are
    read from the header alone.
    """
    try:
        import netCDF4
        with netCDF4.Dataset(str(p), "r") as data:
            dims = {name: len(dim) for name, dim in data.dimensions.items()}
    except Exception:  # noqa: BLE001 - sofar reports an unreadable file below
        return
    size = 8 * dims.get("M", 1) * dims.get("R", 1) * dims.get("N", 1)
    if size > MAX_RESAMPLED_BYTES:
        raise InputError(f"HRTF file {p}: Data_IR declares {dims.get('M')} x {dims.get('R')} x "
                         f"{dims.get('N')} values ({size / 2**30:.1f} GiB); stase accepts up to "
                         f"{MAX_RESAMPLED_BYTES / 2**30:g} GiB")


def _read_sofa(p: Path) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
    if not p.is_file():
        if p.exists():
            raise InputError(f"HRTF file {p} is not a regular file (expected a .sofa "
                             "SimpleFreeFieldHRIR file)")
        raise InputError(f"HRTF file not found: {p} (expected a SimpleFreeFieldHRIR SOFA file)")
    if not _looks_like_sofa(p):
        raise InputError(f"cannot read HRTF file {p}: it is not a SOFA file (expected a .sofa "
                         "SimpleFreeFieldHRIR file)")
    _check_declared_size(p)
    import sofar
    try:
        sofa = sofar.read_sofa(str(p), verify=False, verbose=False)
    except Exception as exc:  # noqa: BLE001 - netCDF/sofar say why; it is the user's file
        raise InputError(f"cannot read HRTF file {p} as SOFA: {exc}") from exc
    where = f"HRTF file {p}"
    convention = str(getattr(sofa, "GLOBAL_SOFAConventions", ""))
    if convention != "SimpleFreeFieldHRIR":
        raise InputError(f"{where}: SOFA convention is {convention!r}; stase reads "
                         "'SimpleFreeFieldHRIR' (HRIRs per source direction)")
    missing = [n for n in ("Data_IR", "Data_SamplingRate", "SourcePosition")
               if getattr(sofa, n, None) is None]
    if missing:
        raise InputError(f"{where}: missing SOFA field(s) {missing}")
    ir = np.asarray(sofa.Data_IR, dtype=np.float64)
    positions = np.atleast_2d(np.asarray(sofa.SourcePosition, dtype=np.float64))
    rate = np.asarray(sofa.Data_SamplingRate, dtype=np.float64).ravel()
    delay = np.asarray(getattr(sofa, "Data_Delay", np.zeros((1, 2))), dtype=np.float64)
    if ir.ndim != 3 or ir.shape[1] != 2 or ir.shape[2] < 8:
        raise InputError(f"{where}: Data_IR must be (directions, 2 ears, >= 8 taps), got {ir.shape}")
    if positions.shape != (ir.shape[0], 3):
        raise InputError(f"{where}: SourcePosition is {positions.shape}, expected ({ir.shape[0]}, 3)")
    if rate.size != 1 or not np.isfinite(rate[0]) or rate[0] <= 0:
        raise InputError(f"{where}: Data_SamplingRate must be one positive number, got {rate}")
    for name, arr in (("Data_IR", ir), ("SourcePosition", positions), ("Data_Delay", delay)):
        if not np.all(np.isfinite(arr)):
            raise InputError(f"{where}: {name} contains NaN or Inf")
    kind = str(getattr(sofa, "SourcePosition_Type", "spherical")).lower()
    if kind == "cartesian":
        from stase.core.conventions import cartesian_to_spherical
        az, el, r = cartesian_to_spherical(positions[:, 0], positions[:, 1], positions[:, 2])
        positions = np.column_stack([az, el, r])
    elif kind != "spherical":
        raise InputError(f"{where}: SourcePosition_Type {kind!r} is not 'spherical' or 'cartesian'")
    units = str(getattr(sofa, "SourcePosition_Units", "degree")).lower()
    if kind == "spherical" and "rad" in units.split(",")[0]:
        positions = positions.copy()
        positions[:, :2] = np.degrees(positions[:, :2])
    n_dirs = ir.shape[0]
    if delay.size == 2:
        delay = np.tile(delay.reshape(1, 2), (n_dirs, 1))
    elif delay.size == 2 * n_dirs:
        delay = delay.reshape(n_dirs, 2)
    else:
        raise InputError(f"{where}: Data_Delay must be (1, 2) or ({n_dirs}, 2), got {delay.shape}")
    return ir, positions, float(rate[0]), np.asarray(delay, dtype=np.float64)


def prepare_hrtf(ir: np.ndarray, positions_deg: np.ndarray, source_rate: float, sample_rate: int,
                 filter_length: int, data_delay: np.ndarray | None = None, source: str = "") -> HrtfSet:
    """Resample, split onsets from filters and triangulate (see module docstring).

    Parameters
    ----------
    ir : (M, 2, N) HRIRs at ``source_rate``.
    positions_deg : (M, >=2) ``[azimuth_deg, elevation_deg, ...]``.
    data_delay : (M, 2) SOFA ``Data_Delay`` in samples at ``source_rate`` (added to the onsets).
    """
    from scipy.spatial import ConvexHull, QhullError

    ir = np.asarray(ir, dtype=np.float64)
    _check_values(ir, source_rate, sample_rate, data_delay, source)
    src = int(source_rate)
    if src != sample_rate:
        ir = resample(ir, src, sample_rate, axis=-1)
    scale = sample_rate / src
    peak = np.abs(ir).max(axis=-1, keepdims=True)
    above = np.abs(ir) >= ONSET_THRESHOLD * np.maximum(peak, 1e-30)
    onset = np.argmax(above, axis=-1)
    margin = int(round(ONSET_MARGIN_S * sample_rate))
    delays_int = np.clip(onset - margin, 1, MAX_ONSET_DELAY)
    n_dirs = ir.shape[0]
    aligned = np.zeros((n_dirs, 2, filter_length), dtype=np.float64)
    for m in range(n_dirs):
        for ear in range(2):
            # Keep the sample at the delay itself: the stored HRIR is zeros(delay) + aligned.
            piece = ir[m, ear, delays_int[m, ear]:delays_int[m, ear] + filter_length]
            aligned[m, ear, :len(piece)] = piece
    fade = max(filter_length // 8, 1)
    aligned[..., -fade:] *= 0.5 * (1.0 + np.cos(np.linspace(0.0, np.pi, fade)))
    delays = delays_int.astype(np.float64)
    if data_delay is not None and np.any(data_delay):
        delays = np.minimum(delays + np.asarray(data_delay) * scale, MAX_ONSET_DELAY)

    az = wrap_azimuth_deg(np.asarray(positions_deg)[:, 0])
    el = clamp_elevation_deg(np.asarray(positions_deg)[:, 1])
    unit = np.column_stack(spherical_to_cartesian(az, el, 1.0))
    try:
        hull = ConvexHull(unit)
    except (QhullError, ValueError) as exc:
        raise InputError(f"HRTF set {source or ''}: its {n_dirs} directions do not span 3-D space "
                         "(a horizontal-plane-only set cannot be triangulated); stase needs "
                         "directions at more than one elevation") from exc
    faces = np.ascontiguousarray(hull.simplices, dtype=np.int64)
    mats = np.transpose(unit[faces], (0, 2, 1))  # columns = vertices
    keep = np.abs(np.linalg.det(mats)) > 1e-12
    faces, mats = faces[keep], mats[keep]
    face_inverse = np.ascontiguousarray(np.linalg.inv(mats))
    if not np.all(np.isfinite(aligned)):
        raise StaseError(f"HRTF set {source}: resampling produced non-finite values")
    return HrtfSet(sample_rate=int(sample_rate), directions_deg=np.column_stack([az, el]),
                   aligned=aligned.astype(np.float32), delays=delays, faces=faces,
                   face_inverse=face_inverse, source=source)


def _check_values(ir: np.ndarray, source_rate: float, sample_rate: int, data_delay, source: str) -> None:
    """Refuse HRIRs no measurement gives, and sizes that would not fit, before any allocation."""
    where = f"HRTF set {source}" if source else "HRTF set"
    low, high = SOFA_RATE_RANGE_HZ
    if not np.isfinite(source_rate) or not low <= float(source_rate) <= high:
        raise InputError(f"{where}: its sampling rate is {source_rate:g} Hz; stase accepts "
                         f"{low}-{high} Hz")
    if not float(source_rate).is_integer():
        raise InputError(f"{where}: sampling rate {source_rate} Hz is not a whole number of Hz")
    if ir.ndim != 3 or ir.shape[1] != 2 or ir.shape[2] < 1:
        raise InputError(f"{where}: HRIRs must be (directions, 2 ears, taps), got {ir.shape}")
    resampled = ir.shape[0] * 2 * math.ceil(ir.shape[2] * sample_rate / float(source_rate)) * 8
    if resampled > MAX_RESAMPLED_BYTES:
        raise InputError(f"{where}: {ir.shape[0]} directions x {ir.shape[2]} taps at "
                         f"{source_rate:g} Hz would take {resampled / 2**30:.1f} GiB once resampled "
                         f"to {sample_rate} Hz; stase accepts up to {MAX_RESAMPLED_BYTES / 2**30:g} GiB")
    if not np.all(np.isfinite(ir)):
        raise InputError(f"{where}: Data_IR contains NaN or Inf")
    biggest = float(np.abs(ir).max()) if ir.size else 0.0
    if biggest > MAX_HRIR_MAGNITUDE:
        raise InputError(f"{where}: Data_IR holds values up to {biggest:.3g}; measured HRIRs stay "
                         f"within +-{MAX_HRIR_MAGNITUDE:g} (is the file corrupt or in other units?)")
    if biggest == 0.0:
        raise InputError(f"{where}: Data_IR is all zeros")
    if data_delay is not None:
        delay = np.asarray(data_delay, dtype=np.float64)
        if not np.all(np.isfinite(delay)):
            raise InputError(f"{where}: Data_Delay contains NaN or Inf")
        if np.any(delay < 0):
            raise InputError(f"{where}: Data_Delay holds a negative delay ({float(delay.min()):g} "
                             "samples); delays count samples after the IR starts, >= 0")
