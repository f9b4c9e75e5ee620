"""The demo's markdown report: the plan, where each placement came from, the parts, the levels.

``write_report(path, ...)`` writes report.md; it names the voices that played the stems (sampled
General MIDI instruments and the SoundFont, or the built-in synth and why) and each part's voice.
The placements table has one row per plan source, in plan order, with the plan's own numbers
(azimuth signed, positive = left), so a reader or a test can check it against plan.json.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from stase.core.audio_io import atomic_write_text
from stase.core.plan import Plan

from stase.agent.music.stage_map import azimuth_label

PLACEMENT_HEADER = ("| Track | Role | Azimuth (deg, + = left) | Elevation (deg) | Distance (m) | Mode | Gain (dB) |")


def _fmt(value: Any, digits: int = 1, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def placement_rows(plan: Plan) -> list[str]:
    """The markdown rows of the placements table (no header)."""
    return [f"| {s.track} | {s.role or '-'} | {_fmt(s.azimuth_deg, 1, True)} | "
            f"{_fmt(s.elevation_deg, 1, True)} | {_fmt(s.distance_m, 2)} | {s.mode} | "
            f"{_fmt(s.gain_db, 1, True)} |" for s in plan.sources]


def render_report(prompt: str, plan: Plan, *, seed: int, sample_rate: int, generator: str,
                  jobs: dict[str, str] | None, stems: dict[str, dict], mixes: list[dict],
                  files: list[str], timings: dict[str, float], voices: str | None = None) -> str:
    """The report as markdown text.

    ``voices``: which voices played the stems (e.g. "sampled: FluidSynth 2.3.1, SoundFont
    FluidR3_GM.sf2" or "built-in synth voices (FluidSynth is not installed)").
    ``stems``: {track: {"peak_dbfs", "rms_dbfs", "notes", "voice"}}; ``mixes``: dicts with "name", "file",
    "lufs", "peak_dbfs", "master_gain_db", "render_lufs", "render_peak_dbfs", "clipped".
    """
    music = plan.music or {}
    duration = (music.get("bars", 0) * _beats(music.get("meter")) * 60.0 / float(music["tempo_bpm"])
                if music.get("tempo_bpm") else None)
    lines = [f"# stase demo: {prompt}", ""]
    lines += ["## Plan", "",
              f"- template: `{plan.template or 'none (default layout)'}`, room: `{plan.room}`, "
              f"pathway: {plan.pathway}, reverb: {plan.reverb_engine}",
              f"- music: style `{music.get('style', '-')}`, {_fmt(music.get('tempo_bpm'), 0)} bpm, "
              f"{music.get('key', '-')}, {music.get('meter', '4/4')}, {music.get('bars', '-')} bars"
              + (f" ({duration:.1f} s)" if duration else ""),
              f"- stems: {generator}, seed {seed}, {sample_rate} Hz",
              f"- voices: {voices or '-'}", ""]
    if plan.music_description:
        lines += [f"> {plan.music_description}", ""]
    if plan.mix_notes:
        lines += [f"Mix notes: {plan.mix_notes}", ""]
    lines += ["## Placements", "", "Azimuth: 0 = front, positive = left (SOFA/AES69); elevation positive up.", "",
              PLACEMENT_HEADER, "|---|---|---:|---:|---:|---|---:|", *placement_rows(plan), ""]
    lines += ["## Provenance of each placement", ""]
    for s in plan.sources:
        if s.provenance:
            parts = "; ".join(f"{k.replace('_deg', '').replace('_m', '').replace('_db', '')}: {v}"
                              for k, v in s.provenance.items())
        else:
            parts = "no provenance recorded"
        lines.append(f"- **{s.track}** ({azimuth_label(s.azimuth_deg)}, {s.distance_m:.1f} m): {parts}")
    lines += ["", "## Parts and stems", "",
              "| Track | Role | Part | Voice | Notes | Stem peak (dBFS) | Stem RMS (dBFS) |",
              "|---|---|---|---|---:|---:|---:|"]
    for s in plan.sources:
        info = stems.get(s.track, {})
        lines.append(f"| {s.track} | {s.role or '-'} | {(jobs or {}).get(s.track, '-')} | "
                     f"{info.get('voice', '-')} | {info.get('notes', '-')} | {_fmt(info.get('peak_dbfs'))} | "
                     f"{_fmt(info.get('rms_dbfs'))} |")
    lines += ["", "## Loudness", "",
              "Integrated loudness per ITU-R BS.1770-4 (pyloudnorm), sample peak. The render is "
              "normalised to the target loudness unless its peak would pass the ceiling.", "",
              "| Mix | File | Loudness (LUFS) | Peak (dBFS) | Master gain (dB) | Render LUFS | Render peak (dBFS) | Clipped |",
              "|---|---|---:|---:|---:|---:|---:|---|"]
    for m in mixes:
        lines.append(f"| {m['name']} | `{m['file']}` | {_fmt(m.get('lufs'))} | {_fmt(m.get('peak_dbfs'))} | "
                     f"{_fmt(m.get('master_gain_db'), 1, True)} | {_fmt(m.get('render_lufs'))} | "
                     f"{_fmt(m.get('render_peak_dbfs'))} | {'yes' if m.get('clipped') else 'no'} |")
    lines += ["", "## Files", ""] + [f"- `{f}`" for f in files]
    lines += ["", "## Timings", "", "| Stage | Seconds |", "|---|---:|"]
    lines += [f"| {k} | {v:.2f} |" for k, v in timings.items()]
    lines += [f"| total | {sum(timings.values()):.2f} |", ""]
    return "\n".join(lines)


def _beats(meter: Any) -> int:
    from stase.agent.music.theory import parse_meter
    try:
        return parse_meter(meter)[0]
    except ValueError:
        return 4


def write_report(path: str | Path, **kwargs) -> Path:
    """Render and write report.md atomically; returns the path."""
    path = Path(path)
    atomic_write_text(path, render_report(**kwargs))
    return path
