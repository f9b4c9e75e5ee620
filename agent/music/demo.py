"""``stase demo`` and ``stase generate``: text -> plan -> stems -> binaural and stereo mixes.

``stase demo`` (no prompt) plays a built-in prompt; ``stase demo "PROMPT"`` any prompt; both write
into ``stase-demo/``.  ``stase generate "PROMPT" -o DIR`` does the same into DIR.  Stages, each with
a progress bar on stderr: plan (the conductor, its default model setting), stems (the procedural
arranger played by sampled General MIDI instruments through FluidSynth when it is installed, else
by the built-in synth voices, or a local MusicGen model), binaural render, stereo render, stage
map, report.

Files written: ``stems/<track>.wav`` (mono float32, names as in the plan so ``stase render
DIR/stems DIR/plan.json`` reproduces the mix), ``arrangement.mid``, ``plan.json``,
``mix_binaural.wav`` and ``mix_stereo.wav`` (24-bit, normalised to ``TARGET_LUFS`` unless the
peak would pass ``CEILING_DBFS``), ``stage_map.png`` and ``report.md``.
"""
from __future__ import annotations

import os
import re
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from stase.core.errors import InputError
from stase.core.names import track_key

DEMO_PROMPT = ("a jazz quintet in a small club late at night: saxophone a bit left, trumpet on the "
               "right, piano further left, upright bass and drums at the back")
DEFAULT_OUT = "stase-demo"
#: Default length of the generated piece when --bars is not given, seconds (kept short: the
#: whole demo must finish in under a minute on two cores).
TARGET_SECONDS = 24.0
ACCEPTED_SECONDS = (16.0, 32.0)
TARGET_LUFS = -16.0
CEILING_DBFS = -1.0


def safe_filename(track: str) -> str:
    """A file name for a track: characters file systems reject become '_'."""
    name = re.sub(r'[\\/:*?"<>|\x00-\x1f]', "_", track).strip().strip(".")
    return name or "track"


def fit_bars(music: dict, bars: int | None) -> int:
    """The number of bars to generate: ``bars`` if given, else the plan's when its length is in
    ``ACCEPTED_SECONDS``, else the whole-phrase count nearest to ``TARGET_SECONDS``."""
    from stase.agent.music.theory import parse_meter
    if bars is not None:
        if bars < 1 or bars > 512:
            raise InputError(f"--bars must be 1..512, got {bars}")
        return bars
    beats = parse_meter(music.get("meter"))[0]
    bar_s = beats * 60.0 / float(music.get("tempo_bpm") or 100.0)
    planned = int(music.get("bars") or 8)
    if ACCEPTED_SECONDS[0] <= planned * bar_s <= ACCEPTED_SECONDS[1]:
        return planned
    phrases = max(1, round(TARGET_SECONDS / bar_s / 4)) * 4
    if ACCEPTED_SECONDS[0] <= phrases * bar_s <= ACCEPTED_SECONDS[1]:
        return phrases
    return max(2, round(TARGET_SECONDS / bar_s))


def music_from_plan(plan) -> dict:
    """plan.music, or one built from the plan's template and sources when the plan has none."""
    music = dict(plan.music or {})
    music.setdefault("template", plan.template)
    names = {track_key(s.track) for s in plan.sources}
    listed = [i for i in music.get("instruments") or [] if isinstance(i, dict)
              and track_key(str(i.get("track", ""))) in names]
    if len(listed) != len(plan.sources):
        music["instruments"] = [{"track": s.track, "role": s.role} for s in plan.sources]
    return music


def master(audio: np.ndarray, sample_rate: int) -> tuple[np.ndarray, float, float | None]:
    """Gain the mix to ``TARGET_LUFS`` unless its peak would pass ``CEILING_DBFS``.

    Returns (audio, gain_db, loudness before, LUFS or None when too short to measure).
    """
    from stase.dsp.offline import integrated_loudness
    lufs = integrated_loudness(audio, sample_rate)
    peak = float(np.max(np.abs(audio)))
    if peak <= 0:
        return audio, 0.0, lufs
    gain_db = CEILING_DBFS - 20 * np.log10(peak)
    if lufs is not None:
        gain_db = min(gain_db, TARGET_LUFS - lufs)
    return (audio * 10 ** (gain_db / 20)).astype(np.float32), float(gain_db), lufs


class Stages:
    """Progress bars (tqdm, stderr) and wall-clock timings, one per stage."""

    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.timings: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str, total: int = 1):
        from tqdm import tqdm
        bar = tqdm(total=total, desc=f"{name:<17}", file=sys.stderr, disable=self.quiet, leave=True,
                   bar_format="{desc}|{bar:24}| {n_fmt}/{total_fmt} [{elapsed}]{postfix}")
        start = time.perf_counter()
        try:
            yield bar
            bar.update(bar.total - bar.n)
        finally:
            bar.close()
            self.timings[name] = time.perf_counter() - start


def make_demo(prompt: str, out: Path, *, seed: int = 0, bars: int | None = None,
              sample_rate: int = 48000, model: str = "auto", musicgen: str | None = None,
              quiet: bool = True, conductor=None, voices: str = "auto",
              soundfont: str | None = None) -> dict:
    """The whole pipeline; returns {"plan", "stems", "files", "timings", "duration_s", "mixes",
    "voices"} ("voices": which voices played the stems, as the report says).

    ``voices`` / ``soundfont``: see :func:`stase.agent.music.voices.choose_voices`; checked before any
    work, so a missing or corrupt SoundFont stops the run at once.
    """
    from stase.core.audio_io import write_audio
    from stase.dsp.offline import render_plan
    from stase.core.plan import save_plan

    from stase.agent.music.generator import arrange_music, render_arrangement, resolve_music
    from stase.agent.music.report import write_report
    from stase.agent.music.stage_map import draw_stage_map
    from stase.agent.music.voices import choose_voices

    stages = Stages(quiet)
    out = Path(out)
    chosen = None if musicgen else choose_voices(voices, soundfont)
    try:
        (out / "stems").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the output folder {out}: {exc.strerror or exc}") from exc
    with stages.stage("plan") as bar:
        if conductor is None:
            # our own bar shows this stage; the model loader's bars would interleave with it
            os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
            from stase.agent.conductor import Conductor
            conductor = Conductor(model=model)
        plan = _plan_without_tracks(conductor, prompt)
        music = music_from_plan(plan)
        planned_bars = music.get("bars")
        music["bars"] = fit_bars(music, bars)
        plan.music = music
        if planned_bars and planned_bars != music["bars"]:
            # the conductor's text named its own length; say what is generated
            plan.music_description = re.sub(rf"\b{int(planned_bars)} bars\b", f"{music['bars']} bars",
                                            plan.music_description)
        bar.set_postfix_str(f"{plan.template} in {plan.room}, {len(plan.sources)} tracks")
    spec = resolve_music(music)
    with stages.stage("stems", total=len(spec.tracks)) as bar:
        if musicgen:
            from stase.agent.music.musicgen import MusicGenGenerator
            stems = MusicGenGenerator(musicgen).generate_stems(music, sample_rate, seed,
                                                                progress=lambda t: bar.update(1))
            jobs, arrangement, generator = None, None, f"MusicGen ({musicgen})"
            voices_used = generator
        else:
            spec, arrangement = arrange_music(music, seed)
            stems = render_arrangement(spec, arrangement, sample_rate, seed,
                                       progress=lambda t: bar.update(1), voices=chosen)
            voices_used = chosen.describe()
            jobs, generator = arrangement.jobs, "stase procedural arranger"
    renders = {}
    for label, stereo in (("binaural", False), ("stereo", True)):
        with stages.stage(f"render {label}"):
            renders[label] = render_plan(stems, plan, sample_rate, stereo=stereo)
    files: list[str] = []
    mixes = []
    with stages.stage("write audio", total=len(stems) + 2):
        _remove_stale_stems(out, {f"{safe_filename(t)}.wav" for t in stems})
        for track, audio in stems.items():
            rel = f"stems/{safe_filename(track)}.wav"
            write_audio(out / rel, audio, sample_rate)
            files.append(rel)
        if arrangement is not None:
            arrangement.midi.save(str(out / "arrangement.mid"))
            files.append("arrangement.mid")
        save_plan(plan, out / "plan.json")
        files.append("plan.json")
        for label, res in renders.items():
            audio, gain_db, lufs = master(res.audio, sample_rate)
            rel = f"mix_{label}.wav"
            write_audio(out / rel, audio, sample_rate, subtype="PCM_24")
            files.append(rel)
            from stase.dsp.offline import integrated_loudness
            final = integrated_loudness(audio, sample_rate)
            mixes.append({"name": label, "file": rel, "lufs": final,
                          "peak_dbfs": float(20 * np.log10(np.max(np.abs(audio)) + 1e-12)),
                          "master_gain_db": gain_db, "render_lufs": lufs,
                          "render_peak_dbfs": res.peak_dbfs, "clipped": bool(res.clipped)})
    with stages.stage("stage map"):
        title = _map_title(plan)
        draw_stage_map(plan, out / "stage_map.png", title=title, subtitle=f"“{prompt}”")
        files.append("stage_map.png")
    stem_info = {}
    counts = {t: len(n) for t, n in arrangement.notes().items()} if arrangement is not None else {}
    roles = dict(spec.tracks)
    for track, audio in stems.items():
        a = np.asarray(audio, dtype=np.float64)
        stem_info[track] = {"peak_dbfs": float(20 * np.log10(np.max(np.abs(a)) + 1e-12)),
                            "rms_dbfs": float(10 * np.log10(np.mean(a * a) + 1e-24)),
                            "notes": counts.get(track, "-"),
                            "voice": (chosen.voice_name(roles.get(track, ""), spec.style, track)
                                      if chosen is not None else "MusicGen")}
    with stages.stage("report"):
        files.append("report.md")
        write_report(out / "report.md", prompt=prompt, plan=plan, seed=seed, sample_rate=sample_rate,
                     generator=generator, jobs=jobs, stems=stem_info, mixes=mixes, files=files,
                     timings=dict(stages.timings), voices=voices_used)
    return {"plan": plan, "stems": stems, "files": files, "timings": stages.timings,
            "duration_s": spec.duration_s, "mixes": mixes, "voices": voices_used}


def _map_title(plan) -> str:
    """"Small jazz combo - Jazz club" from the template's and the room's preset names."""
    from stase.presets import load_rooms, load_templates
    template = load_templates().get(plan.template or "", {}).get("name") or "Custom layout"
    room = load_rooms().get(plan.room, {}).get("name") or plan.room
    return f"{template} \N{EM DASH} {room}"


def _plan_without_tracks(conductor, prompt: str):
    """``conductor.plan(prompt)``; when the conductor refuses a cue because it has no tracks yet
    (its template-seat step runs after the cue check), ask again with the seats of the template
    it ranks first as the tracks."""
    try:
        return conductor.plan(prompt)
    except InputError as exc:
        retriever = getattr(conductor, "retriever", None)
        templates = getattr(conductor, "templates", None)
        if "no session track" not in str(exc) or retriever is None or not templates:
            raise
        best = retriever.rank(prompt)[0][0]
        seats = [seat.get("name") or seat["role"] for seat in templates[best]["roles"]]
        return conductor.plan(prompt, tracks=list(dict.fromkeys(seats)))


def _remove_stale_stems(out: Path, keep: set[str]) -> None:
    """Delete stem WAVs a previous run left in ``out/stems`` (only in a folder stase wrote: one
    with a plan.json), so the folder always matches the new plan."""
    stems_dir = out / "stems"
    if not (out / "plan.json").is_file() or not stems_dir.is_dir():
        return
    for f in stems_dir.glob("*.wav"):
        if f.name not in keep:
            f.unlink()
