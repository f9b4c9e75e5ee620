"""Sampled voices: the arranger's MIDI parts played by FluidSynth from a General MIDI SoundFont.

Each part of ``arrangement.mid`` (its conductor track plus that one track, so the stem is exactly
what a DAW importing the file would play, programs and controllers included) is rendered by the
``fluidsynth`` command line (FluidSynth 2, https://www.fluidsynth.org) into raw float32 on its
standard output, summed to mono and trimmed to the piece's length.  The default SoundFont is
FluidR3_GM.sf2 (Frank Wen, MIT licence; Debian package ``fluid-soundfont-gm``).

Why the command line rather than the library in-process: every render is a child process with a
wall-clock limit, and stase reads exactly the samples it needs from the pipe and then ends the
process, so a bad MIDI file cannot make it write for ever or hang the demo.  Parts render in
parallel, one process per core.

Determinism and dryness: FluidSynth's reverb and chorus are off (``-R 0 -C 0``; stems must be
dry: stase's rooms add the space), output is float (no dither), the MIDI player is clocked by the
sample counter, and nothing in the synthesis is random, so the same file gives the same samples
bit for bit.  Samples are loaded per preset on first use (``synth.dynamic-sample-loading``), which
reads a few MB of the 148 MB FluidR3_GM instead of all of it.

* :func:`check_soundfont`  a readable SoundFont 2 file or ``InputError`` (missing, not RIFF/sfbk,
  truncated, missing its INFO/sdta/pdta lists).
* :func:`find_fluidsynth`, :func:`find_soundfont`, :func:`fluidsynth_version`  what is installed.
* :class:`FluidSynthVoices`  ``render(spec, arrangement, sample_rate, progress)``.
"""
from __future__ import annotations

import io
import logging
import math
import os
import re
import shutil
import struct
import subprocess
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import mido
import numpy as np

from stase.core.errors import InputError, StaseError

from stase.agent.music.effects import part_effects
from stase.agent.music.gm import voice_name

#: Where Debian/Ubuntu (fluid-soundfont-gm), Fedora and Arch put FluidR3_GM, then the Debian
#: "default-GM" alternative (any installed GM SoundFont).
DEFAULT_SOUNDFONTS = (Path("/usr/share/sounds/sf2/FluidR3_GM.sf2"),
                      Path("/usr/share/soundfonts/FluidR3_GM.sf2"),
                      Path("/usr/share/soundfonts/default.sf2"),
                      Path("/usr/share/sounds/sf2/default-GM.sf2"))
INSTALL_HINT = "apt-get install fluidsynth fluid-soundfont-gm"
#: FluidSynth 2's synth.sample-rate range (Hz); other rates are rendered at the nearest end and
#: resampled.
RATE_RANGE_HZ = (8000, 96000)
#: Synth master gain (FluidSynth's default is 0.2); the output is float, so this only keeps the
#: numbers near unity: the mixer sets the levels.
MASTER_GAIN = 0.5
#: Extra seconds the MIDI player runs past the piece's end so that the last notes' releases
#: reach the cut.
TAIL_S = 0.25
#: Wall-clock limit of one part's render: this many seconds plus the music's length (FluidSynth
#: renders a few voices some hundred times faster than real time).
TIMEOUT_BASE_S = 30.0
_LOAD_FAILURES = ("failed to load", "not a soundfont", "not a sound font")
log = logging.getLogger("stase.music")


def check_soundfont(path: str | os.PathLike) -> Path:
    """``path`` as a SoundFont 2 file that looks whole, or ``InputError`` saying what is wrong.

    Checks the RIFF form type ``sfbk``, that the file is as long as its RIFF header says, and that
    the three top-level lists of the SoundFont 2.04 specification (INFO, sdta, pdta) are there.
    FluidSynth itself would print an error and render silence for such a file.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise InputError(f"SoundFont not found: {path}")
    if not path.is_file():
        raise InputError(f"SoundFont {path} is not a file")
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            header = f.read(12)
            if len(header) < 12 or header[:4] != b"RIFF" or header[8:12] != b"sfbk":
                raise InputError(f"{path} is not a SoundFont 2 file (no RIFF 'sfbk' header); "
                                 f"give a .sf2 file")
            riff_size = struct.unpack("<I", header[4:8])[0]
            if riff_size + 8 > size:
                raise InputError(f"SoundFont {path} is truncated or corrupt: its header says "
                                 f"{riff_size + 8} bytes, the file has {size}")
            lists, offset = set(), 12
            while offset + 12 <= riff_size + 8 and len(lists) < 3:
                f.seek(offset)
                chunk = f.read(12)
                chunk_id, chunk_size = chunk[:4], struct.unpack("<I", chunk[4:8])[0]
                if chunk_id == b"LIST":
                    lists.add(chunk[8:12])
                offset += 8 + chunk_size + (chunk_size & 1)
    except OSError as exc:
        raise InputError(f"cannot read the SoundFont {path}: {exc.strerror or exc}") from exc
    missing = {b"INFO", b"sdta", b"pdta"} - lists
    if missing:
        raise InputError(f"SoundFont {path} is corrupt: no {', '.join(sorted(m.decode() for m in missing))} "
                         f"list")
    return path


def find_fluidsynth() -> str | None:
    """The ``fluidsynth`` program on PATH, or None."""
    return shutil.which("fluidsynth")


def find_soundfont() -> Path | None:
    """The first installed General MIDI SoundFont of :data:`DEFAULT_SOUNDFONTS`, or None."""
    return next((p for p in DEFAULT_SOUNDFONTS if p.is_file()), None)


@lru_cache(maxsize=4)
def fluidsynth_version(binary: str) -> str:
    """FluidSynth's runtime version ("2.3.1"); ``StaseError`` if the program does not run."""
    try:
        done = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=20,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError) as exc:
        raise StaseError(f"cannot run {binary}: {exc}") from exc
    found = re.search(r"runtime version (\S+)", done.stdout + done.stderr)
    if done.returncode != 0 or found is None:
        raise StaseError(f"{binary} --version failed: {(done.stderr or done.stdout).strip()[-300:]}")
    return found.group(1)


def part_midi(midi: mido.MidiFile, index: int, end_s: float, tempo_bpm: float) -> bytes:
    """A type-1 MIDI file of the conductor track and track ``index`` of ``midi``, whose conductor
    track lasts ``end_s`` seconds (so the player keeps rendering releases until then)."""
    head = mido.MidiTrack(m for m in midi.tracks[0] if m.type != "end_of_track")
    elapsed = sum(m.time for m in head)
    end_tick = int(math.ceil(end_s * tempo_bpm / 60.0 * midi.ticks_per_beat))
    head.append(mido.MetaMessage("end_of_track", time=max(end_tick - elapsed, 0)))
    part = mido.MidiFile(type=1, ticks_per_beat=midi.ticks_per_beat)
    part.tracks += [head, midi.tracks[index]]
    buffer = io.BytesIO()
    part.save(file=buffer)
    return buffer.getvalue()


@dataclass(frozen=True)
class FluidSynthVoices:
    """The General MIDI instruments of a SoundFont, played by the ``fluidsynth`` program."""

    binary: str
    soundfont: Path
    version: str
    workers: int = 0            # parallel renders; 0: one per CPU core, at most 4

    kind = "sampled"

    def describe(self) -> str:
        return f"sampled: FluidSynth {self.version}, SoundFont {self.soundfont.name}"

    def voice_name(self, role: str, style, track: str = "") -> str:
        return voice_name(role, style, track)

    def render(self, spec, arrangement, sample_rate: int, seed: int = 0, progress=None
               ) -> dict[str, np.ndarray]:
        """Every part of ``arrangement`` as a dry mono float64 stem of ``spec.n_samples`` samples,
        with its part effects; ``progress(track)`` after each.  ``seed`` is unused: the sampled
        voices add no randomness of their own (the arrangement carries the seed)."""
        n = spec.n_samples(sample_rate)
        index = {t.name: i for i, t in enumerate(arrangement.midi.tracks) if i > 0}
        jobs = [(track, role, index[track]) for track, role in spec.tracks]
        workers = self.workers or min(4, os.cpu_count() or 1)
        out: dict[str, np.ndarray] = {}
        with tempfile.TemporaryDirectory(prefix="stase-fluidsynth-") as folder:
            def one(job):
                track, role, i = job
                midi_path = Path(folder) / f"part{i}.mid"
                midi_path.write_bytes(part_midi(arrangement.midi, i, n / sample_rate + TAIL_S,
                                                spec.tempo_bpm))
                x = self.render_file(midi_path, n, sample_rate, label=track)
                return track, part_effects(role, x, float(sample_rate), spec.style, spec.tempo_bpm)
            notes = arrangement.notes()
            with ThreadPoolExecutor(max_workers=max(1, min(workers, len(jobs)))) as pool:
                for track, x in pool.map(one, jobs):
                    out[track] = x
                    if notes.get(track) and not np.any(x):
                        log.warning("stase: the SoundFont %s has no instrument for %r (%s); its "
                                    "stem is silent", self.soundfont.name, track,
                                    voice_name(dict(spec.tracks)[track], spec.style, track))
                    if progress is not None:
                        progress(track)
        return {track: out[track] for track, _ in spec.tracks}

    def render_file(self, midi_path: Path, n_samples: int, sample_rate: int, label: str = "") -> np.ndarray:
        """Render a MIDI file to exactly ``n_samples`` mono float64 samples at ``sample_rate``.

        Reads at most ``n_samples`` frames from FluidSynth's output, then ends it; gives up with
        ``StaseError`` after ``TIMEOUT_BASE_S`` plus the music's length.
        """
        rate = int(min(max(sample_rate, RATE_RANGE_HZ[0]), RATE_RANGE_HZ[1]))
        frames = int(math.ceil(n_samples * rate / sample_rate))
        cmd = [self.binary, "-n", "-i", "-q", "-R", "0", "-C", "0", "-g", str(MASTER_GAIN),
               "-r", str(rate), "-O", "float", "-T", "raw", "-E", "little",
               "-o", "synth.dynamic-sample-loading=1", "-o", "synth.cpu-cores=1",
               "-F", "-", str(self.soundfont), str(midi_path)]
        timeout_s = TIMEOUT_BASE_S + n_samples / sample_rate
        want = frames * 2 * 4                      # stereo float32
        chunks, got, timed_out = [], 0, threading.Event()
        with tempfile.TemporaryFile() as err:
            try:
                proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err)
            except OSError as exc:
                raise StaseError(f"cannot start {self.binary}: {exc}") from exc

            def stop():
                timed_out.set()
                proc.kill()
            timer = threading.Timer(timeout_s, stop)
            timer.start()
            try:
                while got < want:
                    chunk = proc.stdout.read1(min(1 << 20, want - got))
                    if not chunk:
                        break
                    chunks.append(chunk)
                    got += len(chunk)
            finally:
                if proc.poll() is None:
                    proc.kill()                    # we have what we need: no tail, no runaway
                proc.stdout.close()
                proc.wait()
                timer.cancel()
            err.seek(0)
            messages = err.read().decode("utf-8", "replace")
        what = f"FluidSynth ({label or midi_path.name})"
        lines = messages.splitlines()
        failed = [line for line in lines if any(k in line.lower() for k in _LOAD_FAILURES)]
        if failed:
            # FluidSynth goes on without the file and renders silence: stop here instead, quoting
            # its first error line (what was wrong in the file)
            first = next((line for line in lines if "error" in line.lower()), failed[0])
            first = first.replace("fluidsynth: error: ", "").strip()
            if any(str(self.soundfont) in line for line in failed):
                raise InputError(f"FluidSynth cannot load the SoundFont {self.soundfont}: {first}")
            raise StaseError(f"{what} could not read its MIDI file: {first}")
        if timed_out.is_set():
            raise StaseError(f"{what} did not finish within {timeout_s:.0f} s")
        if got < want and proc.returncode not in (0, None):
            raise StaseError(f"{what} failed (exit status {proc.returncode}): {messages.strip()[-300:]}")
        data = b"".join(chunks)
        stereo = np.frombuffer(data[: len(data) // 8 * 8], dtype="<f4").reshape(-1, 2)
        mono = stereo.astype(np.float64).mean(axis=1)
        if rate != sample_rate:
            from stase.core.rates import resample
            mono = resample(mono, rate, sample_rate)
        out = np.zeros(n_samples)
        out[: min(n_samples, mono.size)] = mono[:n_samples]
        return out
