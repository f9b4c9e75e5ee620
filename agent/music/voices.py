"""Which voices play the arrangement: sampled General MIDI instruments or the built-in synth.

``choose_voices(voices, soundfont)`` with ``voices`` one of :data:`VOICE_CHOICES`:

* ``"auto"`` (``stase demo`` / ``stase generate``): FluidSynth with the SoundFont when both are
  installed (:mod:`.sampled`), else the synth voices, saying once per process why (logger
  ``stase.music``, shown on stderr);
* ``"sampled"``: FluidSynth, or ``InputError`` naming what to install;
* ``"synth"``: the synth voices (:mod:`.render`), the library default of ``generate_stems`` so
  its stems stay the same on every machine, installed FluidSynth or not.

A ``soundfont`` the user names is always checked (``InputError`` when missing or corrupt) and
needs FluidSynth; it cannot be combined with ``"synth"``.  Both voice sets have ``kind``,
``describe()``, ``voice_name(role, style, track)`` and ``render(spec, arrangement, sample_rate,
seed, progress)``.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from stase.core.errors import InputError, StaseError

VOICE_CHOICES = ("auto", "sampled", "synth")
log = logging.getLogger("stase.music")
_notices_given: set[str] = set()


@dataclass(frozen=True)
class SynthVoices:
    """The built-in voices of :mod:`.render`; ``reason`` says why they were chosen."""

    reason: str = ""

    kind = "synth"

    def describe(self) -> str:
        return "built-in synth voices" + (f" ({self.reason})" if self.reason else "")

    def voice_name(self, role: str, style, track: str = "") -> str:
        return "synth"

    def render(self, spec, arrangement, sample_rate: int, seed: int = 0, progress=None
               ) -> dict[str, np.ndarray]:
        from stase.agent.music.arranger import track_rng
        from stase.agent.music.render import render_part  # imported here: it compiles the numba kernels
        n = spec.n_samples(sample_rate)
        notes = arrangement.notes()
        raw: dict[str, np.ndarray] = {}
        for track, role in spec.tracks:
            rng = track_rng(seed + 7919, track)
            raw[track] = render_part(role, notes.get(track, []), n, sample_rate, rng, spec.style,
                                     spec.tempo_bpm, track)
            if progress is not None:
                progress(track)
        return raw


def _fall_back(reason: str) -> SynthVoices:
    """The synth voices, with the one-time notice of why."""
    if reason not in _notices_given:
        _notices_given.add(reason)
        log.warning("stase: %s; using the built-in synth voices (for sampled instruments: %s)",
                    reason, _install_hint())
    return SynthVoices(reason)


def _install_hint() -> str:
    from stase.agent.music.sampled import INSTALL_HINT
    return INSTALL_HINT


def choose_voices(voices: str = "auto", soundfont=None):
    """The voice set for ``voices`` (see the module docstring)."""
    from stase.agent.music import sampled
    if voices not in VOICE_CHOICES:
        raise InputError(f"voices must be one of {', '.join(VOICE_CHOICES)}, got {voices!r}")
    if voices == "synth":
        if soundfont is not None:
            raise InputError("a SoundFont is played by the sampled voices; drop --soundfont or "
                             "use --voices auto/sampled")
        return SynthVoices()
    font = sampled.check_soundfont(soundfont) if soundfont is not None else None
    binary = sampled.find_fluidsynth()
    if binary is None:
        if voices == "sampled" or font is not None:
            raise InputError(f"sampled voices need FluidSynth, which is not installed "
                             f"({sampled.INSTALL_HINT})")
        return _fall_back("FluidSynth is not installed")
    if font is None:
        default = sampled.find_soundfont()
        if default is None:
            if voices == "sampled":
                raise InputError(f"no General MIDI SoundFont found (looked for "
                                 f"{', '.join(map(str, sampled.DEFAULT_SOUNDFONTS))}); install "
                                 f"fluid-soundfont-gm or give --soundfont FILE.sf2")
            return _fall_back("no General MIDI SoundFont is installed")
        try:
            font = sampled.check_soundfont(default)
        except InputError as exc:
            if voices == "sampled":
                raise
            return _fall_back(str(exc))
    try:
        version = sampled.fluidsynth_version(binary)
    except StaseError as exc:
        if voices == "sampled" or soundfont is not None:
            raise
        return _fall_back(str(exc))
    return sampled.FluidSynthVoices(binary, font, version)
