"""Reading and writing audio and small files, with errors that say what is wrong.

Audio arrays in stase are float32 shaped ``(channels, samples)``; a mono signal may be 1-D.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from .errors import InputError

AUDIO_SUFFIXES = (".wav", ".flac", ".aiff", ".aif", ".ogg")


def atomic_write_text(path: Path, text: str, durable: bool = True) -> None:
    """Write ``text`` to ``path`` via a temp file in the same folder and ``os.replace``.

    ``durable`` also fsyncs the file (survives power loss, not only a killed process).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def read_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """Read an audio file as float32 ``(channels, samples)`` and its sample rate.

    Raises ``InputError`` for a missing, unreadable or empty file, or one holding NaN/Inf.
    """
    import soundfile as sf
    p = Path(path)
    if not p.is_file():
        raise InputError(f"audio file not found: {p}")
    try:
        data, rate = sf.read(str(p), dtype="float32", always_2d=True)
    except Exception as exc:  # noqa: BLE001 - libsndfile says why
        raise InputError(f"cannot read audio file {p}: {exc}") from exc
    if data.shape[0] == 0:
        raise InputError(f"audio file {p} is empty (0 samples)")
    if not np.all(np.isfinite(data)):
        raise InputError(f"audio file {p} contains NaN or Inf samples")
    return np.ascontiguousarray(data.T), int(rate)


def write_audio(path: str | Path, audio: np.ndarray, sample_rate: int, subtype: str = "FLOAT") -> None:
    """Write ``(channels, samples)`` (or 1-D mono) audio; refuses NaN/Inf."""
    import soundfile as sf
    a = np.asarray(audio, dtype=np.float32)
    if a.ndim == 1:
        a = a[None, :]
    if not np.all(np.isfinite(a)):
        raise InputError(f"refusing to write {path}: audio contains NaN or Inf")
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(p), a.T, int(sample_rate), subtype=subtype)


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
    d = Path(folder)
    if not d.is_dir():
        raise InputError(f"stems folder not found: {d}")
    files = sorted(f for f in d.iterdir() if f.suffix.lower() in AUDIO_SUFFIXES and f.is_file())
    if not files:
        raise InputError(f"no audio files ({', '.join(AUDIO_SUFFIXES)}) in {d}")
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
        raise InputError(f"stems have different sample rates: {rates}; resample them to one rate")
    return stems, next(iter(rates.values()))
