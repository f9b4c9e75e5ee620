"""Reading and writing audio and small files, with errors that say what is wrong.

Audio arrays in stase are float32 shaped ``(channels, samples)``; a mono signal may be 1-D.

Holds
-----
atomic_write_text(path, text)              a small text file, via a temp file and ``os.replace``
atomic_path(path)                          a temp path for a library to write, renamed over ``path``
read_audio(path) -> (audio, rate)          refuses missing, non-regular, truncated, NaN/Inf files
open_audio(path) -> SoundFile              the same checks, for reading in blocks
truncation(path) -> (claimed, present)     a WAV/AIFF whose header claims more than it holds
check_output_path(path) -> (target, format, subtype)
                                           is an audio file writable there? (before any work)
AtomicAudioWriter(path, rate, channels)    streams blocks to a temp file beside ``path`` and
                                           renames it over ``path`` only once complete
write_audio(path, audio, rate)             a whole array, atomically (through the writer)
load_stems(folder) -> (stems, rate)        every audio file of a folder as a mono stem
summarise_names(names)                     a bounded list of names for an error message

A write never leaves a partial file at its target: a failed or killed write leaves the previous
file as it was (and, after kill -9, a ``.<name>.<hex>.tmp`` beside it).
"""
from __future__ import annotations

import contextlib
import os
import stat
import struct
from pathlib import Path

import numpy as np

from stase.core.errors import InputError, StaseError
from stase.core.rates import check_sample_rate

AUDIO_SUFFIXES = (".wav", ".flac", ".aiff", ".aif", ".ogg")
#: What an output suffix is written as: (libsndfile format, default subtype).  WAV and AIFF keep
#: float samples (a clipped mix stays visible); FLAC holds integers only; Ogg is lossy Vorbis.
WRITABLE_FORMATS = {".wav": ("WAV", "FLOAT"), ".flac": ("FLAC", "PCM_24"), ".aiff": ("AIFF", "FLOAT"),
                    ".aif": ("AIFF", "FLOAT"), ".ogg": ("OGG", "VORBIS")}
#: Most names an error message lists before "and N more" (10 000 missing stems made 100 kB).
LISTED_NAMES = 20
#: Frames converted and written at once (bounds the interleaved copy: 64 k frames, 0.5 MB stereo).
WRITE_CHUNK_FRAMES = 65536


def atomic_write_text(path: Path, text: str, durable: bool = True) -> None:
    """Write ``text`` to ``path`` via a temp file in the same folder and ``os.replace``.

    ``durable`` also fsyncs the file (survives power loss, not only a killed process).

    The temp file is ``.<name>.<12 hex digits>.tmp`` next to the file (a kill -9 between create
    and rename leaves one; :class:`stase.bridge.session.Session` removes its own at start).  It is
    created with mode ``0o666`` so the umask applies as for ``open()`` (``mkstemp``'s 0600 would
    survive the rename); when the file already exists its mode is kept.  A symlink is followed:
    its target is replaced and the link stays a link.
    """
    target = Path(os.path.realpath(Path(path)))
    try:
        keep_mode: int | None = stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        keep_mode = None
        target.parent.mkdir(parents=True, exist_ok=True)  # only a new file can lack its folder
    # one descriptor from create to close (the daemon saves on every request: each syscall
    # here is on a user's round trip)
    fd, tmp = _create_temp_beside(target)
    with _replacing(tmp, target):
        try:
            if keep_mode is not None:
                os.fchmod(fd, keep_mode)
            data = memoryview(text.encode("utf-8"))
            while data:
                data = data[os.write(fd, data):]
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)


def file_kind(path: Path) -> str:
    """What is at ``path``, in words for a message: "a folder", "a FIFO", "missing" ..."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "a broken symbolic link" if os.path.islink(path) else "missing"
    except OSError as exc:
        return f"unreadable ({exc.strerror or exc})"
    for test, words in ((stat.S_ISREG, "a regular file"), (stat.S_ISDIR, "a folder"),
                        (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
                        (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")):
        if test(mode):
            return words
    return "not a regular file"


def summarise_names(names, limit: int = LISTED_NAMES, max_chars: int = 100) -> str:
    """``'a', 'b', 'c' and 9997 more``: names for a message, at most ``limit`` of them shown.

    Each name is cut to ``max_chars`` characters, so the text stays a few kB whatever the input.
    """
    names = [str(n) for n in names]
    shown = [repr(n if len(n) <= max_chars else n[:max_chars] + "...") for n in names[:limit]]
    rest = len(names) - len(shown)
    return ", ".join(shown) + (f" and {rest} more" if rest > 0 else "")


def all_finite(audio: np.ndarray, chunk: int = 1 << 20) -> bool:
    """``np.all(np.isfinite(audio))`` without a boolean copy of the whole array."""
    flat = np.asarray(audio).reshape(-1) if np.asarray(audio).flags.c_contiguous else None
    if flat is None:
        return bool(np.all(np.isfinite(audio)))
    return all(bool(np.isfinite(flat[i:i + chunk]).all()) for i in range(0, flat.size, chunk))


def _claimed_frames_if_cut(path: Path) -> int | None:
    """Frames a WAV or AIFF header claims when its sample chunk runs past the end of the file.

    libsndfile quietly shortens such a file to what is there, so a file cut off by a crash or a
    full disk would otherwise pass for a complete (shorter) recording.  None when the chunk is
    complete, the file is neither RIFF/RIFX WAV nor AIFF/AIFC, or the length is unknown (a WAV
    data size of 0 or 0xFFFFFFFF: a streaming writer that never finished its header).
    """
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(12)
        if len(head) < 12:
            return None
        if head[:4] in (b"RIFF", b"RIFX") and head[8:12] == b"WAVE":
            order, sample_chunk = ("<" if head[:4] == b"RIFF" else ">"), b"data"
        elif head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
            order, sample_chunk = ">", b"SSND"
        else:
            return None
        block_align, aiff_frames = 0, None
        position = 12
        while position + 8 <= size:
            fh.seek(position)
            chunk_id, length = struct.unpack(order + "4sI", fh.read(8))
            if chunk_id == b"fmt ":
                fmt = fh.read(min(length, 16))
                if len(fmt) >= 14:
                    block_align = struct.unpack(order + "H", fmt[12:14])[0]
            elif chunk_id == b"COMM":
                comm = fh.read(min(length, 6))
                if len(comm) == 6:
                    aiff_frames = struct.unpack(">hI", comm)[1]
            elif chunk_id == sample_chunk:
                if length <= size - position - 8:
                    return None
                if sample_chunk == b"SSND":
                    return aiff_frames
                if length in (0, 0xFFFFFFFF) or block_align == 0:
                    return None
                return length // block_align
            position += 8 + length + (length & 1)
    return None


def truncation(path: str | Path) -> tuple[int, int] | None:
    """``(frames claimed, frames present)`` when a WAV/AIFF header claims more than the file holds.

    None for a complete file or another format (whose decoder reports a cut itself, or reads
    fewer frames than claimed: :func:`read_audio` checks that too).
    """
    import soundfile as sf
    claimed = _claimed_frames_if_cut(Path(path))
    if claimed is None:
        return None
    present = sf.info(str(path)).frames
    return (claimed, present) if present < claimed else None


def open_audio(path: str | Path):
    """Open an audio file for reading in blocks (a ``soundfile.SoundFile``; the caller closes it).

    Checks as :func:`read_audio` does, without reading the samples: ``InputError`` for a missing,
    non-regular (folder, FIFO: opening one would block for ever), unreadable, truncated or empty
    file.
    """
    import soundfile as sf
    p = Path(path)
    if not (p.exists() or p.is_symlink()):
        raise InputError(f"audio file not found: {p}")
    if not p.is_file():
        raise InputError(f"audio file {p} is not a regular file ({file_kind(p)})")
    try:
        claimed = _claimed_frames_if_cut(p)
        handle = sf.SoundFile(str(p))
    except Exception as exc:  # noqa: BLE001 - libsndfile says why
        raise InputError(f"cannot read audio file {p}: {exc}") from exc
    if claimed is not None and handle.frames < claimed:
        handle.close()
        raise _truncated(p, claimed, handle.frames)
    if handle.frames == 0:
        handle.close()
        raise InputError(f"audio file {p} is empty (0 samples)")
    return handle


def _truncated(p: Path, claimed: int, present: int) -> InputError:
    return InputError(f"audio file {p} is truncated: its header claims {claimed} frames but the "
                      f"file holds {present} (an interrupted copy or write?)")


def read_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """Read an audio file as float32 ``(channels, samples)`` and its sample rate.

    Raises ``InputError`` for a missing, non-regular (folder, FIFO), unreadable, truncated (the
    header claims more frames than the file holds) or empty file, or one holding NaN/Inf.
    """
    p = Path(path)
    with open_audio(p) as handle:
        claimed, rate = handle.frames, handle.samplerate
        try:
            data = handle.read(dtype="float32", always_2d=True)
        except Exception as exc:  # noqa: BLE001 - libsndfile says why
            raise InputError(f"cannot read audio file {p}: {exc}") from exc
    if data.shape[0] < claimed:  # a decoder that stopped early (FLAC, Ogg cut short)
        raise _truncated(p, claimed, data.shape[0])
    if not all_finite(data):
        raise InputError(f"audio file {p} contains NaN or Inf samples")
    return np.ascontiguousarray(data.T), int(rate)


def check_output_path(path: str | Path, subtype: str | None = None) -> tuple[Path, str, str]:
    """Check, before any work, that an audio file can be written at ``path``.

    Parameters
    ----------
    path : the file to write; its suffix picks the format (:data:`WRITABLE_FORMATS`).
    subtype : libsndfile subtype (e.g. "PCM_24"); None = the format's default.

    Returns
    -------
    (target, format, subtype) : the file that will be replaced (a symlink is followed, so the link
        stays a link), libsndfile format and subtype.  Its folder exists afterwards.

    Raises
    ------
    InputError : an empty path, a folder or other non-regular file, no or an unsupported extension,
        a subtype the format cannot hold, a folder that cannot be created or written in.
    """
    import soundfile as sf
    if not str(path).strip():
        raise InputError("the output path is empty; give a file name such as mix.wav")
    p = Path(path)
    if p.exists() and not p.is_file():
        kind = file_kind(p)
        hint = f", e.g. {p / 'mix.wav'}" if p.is_dir() else ""
        raise InputError(f"output {p} is {kind}; give the name of an audio file to write{hint}")
    choices = ", ".join(WRITABLE_FORMATS)
    suffix = p.suffix.lower()
    if suffix not in WRITABLE_FORMATS:
        what = "has no extension" if not p.suffix else f"ends in {p.suffix!r}, which stase cannot write"
        raise InputError(f"output {p} {what}; the mix can be written as {choices}")
    fmt, default = WRITABLE_FORMATS[suffix]
    subtype = default if subtype is None else str(subtype).upper()
    if not sf.check_format(fmt, subtype):
        raise InputError(f"output {p}: {fmt} files cannot hold {subtype} samples; use one of "
                         f"{sorted(sf.available_subtypes(fmt))}")
    target = Path(os.path.realpath(p)) if p.is_symlink() else p
    ensure_writable_folder(target.parent, p)
    return target, fmt, subtype


def ensure_writable_folder(folder: Path, for_path: Path) -> None:
    """Create ``folder`` if need be and check a file can be written in it (``InputError`` naming
    ``for_path`` otherwise): the one check before an output is written (audio, plans)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the folder {folder} for {for_path}: {exc.strerror or exc}") from exc
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(f"cannot write in the folder {folder} (permission denied)")


@contextlib.contextmanager
def atomic_path(path: str | Path, durable: bool = False):
    """Yield a temp path beside ``path`` for a library to write (``np.save``, ``torch.save``, an
    ONNX export); when the block ends without an error the temp file replaces ``path``
    (``os.replace``: a reader sees the old file or the new one), otherwise it is removed.

    ``durable`` fsyncs the file before the rename.  Same temp naming and mode rules as
    :func:`atomic_write_text`.
    """
    target = Path(os.path.realpath(Path(path)))
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temp_beside(target)
    os.close(fd)
    with _replacing(tmp, target):
        yield tmp
        if durable:
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())


@contextlib.contextmanager
def _replacing(tmp: Path, target: Path):
    """When the block ends without an error, ``tmp`` replaces ``target`` (``os.replace``);
    on any error (or interruption) ``tmp`` is removed and the error goes on."""
    try:
        yield
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _create_temp_beside(target: Path) -> tuple[int, Path]:
    """An exclusive ``.<name>.<12 hex>.tmp`` beside ``target``, mode 0o666 less the umask."""
    import secrets
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise StaseError(f"could not create a temp file next to {target}")


class AtomicAudioWriter:
    """Stream audio to ``path`` through a temp file in the same folder, renamed over it at the end.

    Until :meth:`close` the previous file at ``path`` (if any) is untouched; on an error (or an
    exception inside a ``with`` block) the temp file is removed and ``path`` stays as it was.

    Parameters
    ----------
    path : target file; its suffix picks the format (:func:`check_output_path`).
    sample_rate : Hz.
    channels : channels per frame.
    subtype : libsndfile subtype; None = the format's default (FLOAT for WAV/AIFF).
    durable : fsync the file and its folder before reporting success (survives power loss).

    Use as ``with AtomicAudioWriter(p, 48000, 2) as out: out.write(block)`` with blocks of shape
    ``(channels, n)`` float32; NaN/Inf is refused (``InputError``) and nothing is written.
    """

    def __init__(self, path: str | Path, sample_rate: int, channels: int, subtype: str | None = None,
                 durable: bool = True):
        import soundfile as sf
        sample_rate = check_sample_rate(sample_rate, "sample_rate")
        if isinstance(channels, bool) or not isinstance(channels, (int, np.integer)) or channels < 1:
            raise InputError(f"channels must be a positive integer, got {channels!r}")
        self.path, self.format, self.subtype = check_output_path(path, subtype)
        self.requested = Path(path)
        self.sample_rate, self.channels, self.durable = int(sample_rate), int(channels), durable
        self.frames = 0
        try:
            self._keep_mode: int | None = stat.S_IMODE(os.stat(self.path).st_mode)
        except FileNotFoundError:
            self._keep_mode = None
        fd, self._tmp = _create_temp_beside(self.path)
        try:
            if self._keep_mode is not None:
                os.fchmod(fd, self._keep_mode)
            self._handle = os.fdopen(fd, "w+b")
        except BaseException:
            os.close(fd)
            self._discard()
            raise
        try:
            self._file = sf.SoundFile(self._handle, "w", samplerate=self.sample_rate,
                                      channels=self.channels, format=self.format, subtype=self.subtype)
        except Exception as exc:  # noqa: BLE001 - libsndfile says why
            self._handle.close()
            self._discard()
            raise InputError(f"cannot write {self.format}/{self.subtype} audio at "
                             f"{self.sample_rate} Hz, {self.channels} channel(s) to {path}: {exc}") from exc
        _without_peak_chunk(self._file)
        self._open = True

    def write(self, block: np.ndarray) -> None:
        """Append ``(channels, n)`` float32 frames (1-D for mono); NaN/Inf -> ``InputError``."""
        a = np.asarray(block, dtype=np.float32)
        if a.ndim == 1:
            a = a[None, :]
        if a.ndim != 2 or a.shape[0] != self.channels:
            raise InputError(f"cannot write a block shaped {a.shape} to {self.requested}: expected "
                             f"({self.channels}, frames)")
        for start in range(0, a.shape[1], WRITE_CHUNK_FRAMES):
            piece = a[:, start:start + WRITE_CHUNK_FRAMES]
            if not np.isfinite(piece).all():
                raise InputError(f"refusing to write {self.requested}: audio contains NaN or Inf")
            try:
                self._file.write(np.ascontiguousarray(piece.T))
            except Exception as exc:  # noqa: BLE001 - a full disk, an I/O error
                raise StaseError(f"writing {self.requested} failed: {exc}") from exc
            self.frames += piece.shape[1]

    def close(self) -> Path:
        """Finish the file and rename it over the target; returns the target path."""
        if not self._open:
            raise StaseError(f"{self.requested} was already closed or abandoned")
        self._open = False
        try:
            self._file.close()
            self._handle.flush()
            if self.durable:
                os.fsync(self._handle.fileno())
            self._handle.close()
            os.replace(self._tmp, self.path)
        except BaseException as exc:
            self._handle.close()
            self._discard()
            if isinstance(exc, OSError):
                raise StaseError(f"writing {self.requested} failed: {exc}") from exc
            raise
        if self.durable:
            _fsync_folder(self.path.parent)
        return self.path

    def abort(self) -> None:
        """Drop what was written; the target keeps its previous content."""
        if not self._open:
            return
        self._open = False
        try:
            self._file.close()
        except Exception:  # noqa: BLE001 - the temp file goes anyway
            pass
        self._handle.close()
        self._discard()

    def _discard(self) -> None:
        try:
            os.unlink(self._tmp)
        except OSError:
            pass

    def __enter__(self) -> "AtomicAudioWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def _fsync_folder(folder: Path) -> None:
    """Make a rename durable (POSIX); a file system that cannot fsync a folder is let be."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_audio(path: str | Path, audio: np.ndarray, sample_rate: int, subtype: str | None = None,
                atomic: bool = True) -> None:
    """Write ``(channels, samples)`` (or 1-D mono) audio; refuses NaN/Inf.

    Parameters
    ----------
    path : target; the suffix picks the format (.wav/.aiff float, .flac 24-bit, .ogg Vorbis).
    subtype : libsndfile subtype; None = the format's default.
    atomic : write a temp file beside ``path`` and rename it (the default); False writes in
        place, for a file nobody else may be reading (faster on slow disks, not crash-safe).
    """
    a = np.asarray(audio, dtype=np.float32)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2:
        raise InputError(f"cannot write audio shaped {a.shape} to {path}: expected (channels, samples)")
    if not all_finite(a):
        raise InputError(f"refusing to write {path}: audio contains NaN or Inf")
    if atomic:
        with AtomicAudioWriter(path, sample_rate, a.shape[0], subtype=subtype) as out:
            out.write(a)
        return
    import soundfile as sf
    target, fmt, subtype = check_output_path(path, subtype)
    with sf.SoundFile(str(target), "w", samplerate=int(sample_rate), channels=a.shape[0],
                      format=fmt, subtype=subtype) as fh:
        _without_peak_chunk(fh)
        for start in range(0, a.shape[1], WRITE_CHUNK_FRAMES):
            fh.write(np.ascontiguousarray(a[:, start:start + WRITE_CHUNK_FRAMES].T))


#: libsndfile's SFC_SET_ADD_PEAK_CHUNK (sndfile.h).  Float WAV/AIFF files get a PEAK chunk that
#: holds the time of writing, so two renders of the same mix would differ in 4 header bytes.
_SFC_SET_ADD_PEAK_CHUNK = 0x1050


def _without_peak_chunk(sound_file) -> None:
    """Turn off the PEAK chunk of a file opened for writing, before any frame is written, so the
    same audio always gives the same bytes (batch renders are compared byte for byte)."""
    try:
        from soundfile import _ffi, _snd
        _snd.sf_command(sound_file._file, _SFC_SET_ADD_PEAK_CHUNK, _ffi.NULL, 0)
    except (ImportError, AttributeError):  # a soundfile without its cffi handles: keep the chunk
        pass


def stem_files(folder: str | Path, what: str = "stems") -> list[Path]:
    """The audio files of a stems folder, sorted, after the checks every reader of one makes.

    ``InputError`` when the folder is missing, holds no audio file, holds a folder or FIFO named
    like audio (it used to be skipped, so its track went missing unexplained), or two files that
    would name the same track (matching is by file name without extension, ignoring case).
    ``what`` names the folder in messages ("stems", "reference").
    """
    d = Path(folder)
    if not d.is_dir():
        raise InputError(f"{what} folder not found: {d}")
    named = sorted(f for f in d.iterdir() if f.suffix.lower() in AUDIO_SUFFIXES)
    # A folder or FIFO named like a stem used to be skipped, so its track went missing unexplained.
    odd = [f for f in named if not f.is_file()]
    if odd:
        which = summarise_names(f"{f.name} ({file_kind(f)})" for f in odd)
        raise InputError(f"{len(odd)} entr{'y' if len(odd) == 1 else 'ies'} of {d} named like "
                         f"audio {'is' if len(odd) == 1 else 'are'} not a regular file: {which}; "
                         "stems must be audio files: move or rename them")
    files = named
    if not files:
        raise InputError(f"no audio files ({', '.join(AUDIO_SUFFIXES)}) in {what} folder {d}")
    by_key: dict[str, list[str]] = {}
    for f in files:
        by_key.setdefault(f.stem.lower(), []).append(f.name)
    clashes = [names for names in by_key.values() if len(names) > 1]
    if clashes:
        raise InputError(f"{what}: stems are matched to tracks by file name without extension, ignoring "
                         f"case, and these files in {d} would name the same track: "
                         + summarise_names(" = ".join(names) for names in clashes)
                         + "; keep one of each")
    return files


def load_stems(folder: str | Path, downmix: bool = False) -> tuple[dict[str, np.ndarray], int]:
    """Load every audio file in ``folder`` as a mono stem keyed by file name without extension.

    Parameters
    ----------
    folder : folder of WAV/FLAC/AIFF files, one per track.
    downmix : average multichannel stems to mono instead of refusing them.

    Returns
    -------
    stems : {name: float32 1-D array}
    sample_rate : the stems' common rate (``InputError`` if they differ).
    """
    files = stem_files(folder)
    stems: dict[str, np.ndarray] = {}
    rates: dict[str, int] = {}
    for f in files:
        audio, rate = read_audio(f)
        if audio.shape[0] > 1:
            if not downmix:
                raise InputError(f"stem {f.name} has {audio.shape[0]} channels; stems must be mono "
                                 "(pass --downmix to average the channels)")
            audio = audio.mean(axis=0, keepdims=True)
        stems[f.stem] = audio[0]
        rates[f.stem] = rate
    if len(set(rates.values())) > 1:
        by_rate: dict[int, list[str]] = {}
        for name, rate in rates.items():
            by_rate.setdefault(rate, []).append(name)
        listing = "; ".join(f"{rate} Hz: {summarise_names(names)}"
                            for rate, names in sorted(by_rate.items()))
        raise InputError(f"stems have different sample rates ({listing}); resample them to one rate")
    return stems, next(iter(rates.values()))
