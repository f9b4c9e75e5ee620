"""Per-part effects: the processing a producer would put on each instrument, for either voice set.

``part_effects(role, x, sample_rate, style, tempo_bpm, world)``: amp overdrive and cabinet
filtering on rock guitars (a gentler low-pass elsewhere), a rotary-speaker tremolo on organ, a
dotted-8th echo on synth leads, side-chain "pumping" on pads, bass and leads in club music,
sympathetic "jawari" buzz on sitar-like plucked strings (``world``), and a 60 Hz high-pass (no
rumble, no DC) on the instruments that have nothing down there.  No room: stems stay dry.
"""
from __future__ import annotations

import numpy as np
from scipy.signal import butter, sosfilt

from stase.agent.music.styles import Style


def part_effects(role: str, x: np.ndarray, sr: float, style: Style, tempo_bpm: float,
                 world: bool = False) -> np.ndarray:
    """The per-instrument processing described in the module docstring."""
    t = np.arange(x.size) / sr
    if role == "electric_guitar":
        if style.comp in ("power", "stabs") or style.id in ("rock_band", "outdoor_festival"):
            peak = np.max(np.abs(x)) + 1e-12
            x = np.tanh(4.0 * x / peak)  # amp overdrive
            x = sosfilt(butter(2, [90.0, min(4800.0, 0.45 * sr)], "bandpass", fs=sr, output="sos"), x)
        else:
            x = sosfilt(butter(2, min(3500.0 if style.id == "jazz_ensemble" else 7000.0, 0.45 * sr),
                               fs=sr, output="sos"), x)
    elif role == "plucked" and world:
        x = x + 0.6 * x * np.abs(x) / (np.max(np.abs(x)) + 1e-12)  # jawari-like buzz
    elif role == "organ":
        x = x * (1.0 + 0.12 * np.sin(2 * np.pi * 6.5 * t))  # rotary speaker tremolo
    elif role == "synth_lead":
        delay = int(round(0.75 * 60.0 / tempo_bpm * sr))  # dotted-8th echo
        y = x.copy()
        for tap, gain in ((1, 0.35), (2, 0.15)):
            if tap * delay < x.size:
                y[tap * delay:] += gain * x[: x.size - tap * delay]
        x = y
    if style.pump and role in ("synth_pad", "bass", "synth_lead"):
        beat_s = 60.0 / tempo_bpm
        since_beat = np.mod(t, beat_s)
        depth = {"synth_pad": 0.65, "bass": 0.35, "synth_lead": 0.2}[role]
        x = x * (1.0 - depth * np.exp(-since_beat / 0.08))
    if role in ("acoustic_guitar", "electric_guitar", "piano", "organ", "synth_pad", "strings",
                "violins", "violas", "brass", "backing_vocals", "choir", "lead_vocal"):
        x = sosfilt(butter(1, 60.0, "highpass", fs=sr, output="sos"), x)  # no rumble, no DC
    return x
