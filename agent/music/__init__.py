"""Text-to-music for stase: the stem generator and the `stase demo` / `stase generate` commands.

Map of the package
------------------
* :mod:`.generator`  ``generate_stems(music, sample_rate, seed)`` (the contract's entry point),
  ``resolve_music``, ``arrange_music``.
* :mod:`.theory`, :mod:`.styles`  keys, chords, progressions; the ten styles (one per template).
* :mod:`.arranger`, :mod:`.parts`, :mod:`.melody`  who plays what; part writers; MIDI via mido.
* :mod:`.voices`  which voices play: sampled (``auto`` when FluidSynth is installed) or synth.
* :mod:`.gm`, :mod:`.sampled`  General MIDI programs and kits per role; FluidSynth rendering of
  the arrangement's MIDI parts with a SoundFont (FluidR3_GM by default).
* :mod:`.kernels`, :mod:`.synth`, :mod:`.vocals`, :mod:`.drums`, :mod:`.render`  the synth voices
  (numba kernels, subtractive/FM/additive/Karplus-Strong, formant singers, sampled-noise drums).
* :mod:`.effects`  per-part effects (overdrive, rotary, echo, pumping) for either voice set.
* :mod:`.mixing`  levels per role, peak limits.
* :mod:`.musicgen`  adapter for a local MusicGen model (transformers), optional.
* :mod:`.demo`, :mod:`.stage_map`, :mod:`.report`  the CLI, the stage picture, the markdown report.
"""
from __future__ import annotations

__all__ = ["generate_stems", "resolve_music", "arrange_music", "ROLES"]


def __getattr__(name: str):
    # imported on first use, so `stase demo --help` does not compile the synth's numba kernels
    if name in __all__:
        from stase.agent.music import generator
        return getattr(generator, name)
    raise AttributeError(f"module 'stase.agent.music' has no attribute {name!r}")
