"""Batch rendering of a catalogue: ``stase render --batch MANIFEST.jsonl -o DIR`` (issue 21).

A manifest is a JSON-lines file, one job per line::

    {"stems": "album/01/stems", "plan": "album/01/plan.json", "output": "01_binaural.wav"}
    {"stems": "album/01/stems", "plan": "album/01/plan.json", "output": "01_stereo.wav", "stereo": true}
    {"id": "02", "stems": "album/02/stems", "plan": "album/02/plan.json", "output": "02.flac",
     "rate": 48000, "reverb_db": -3}

``stems``, ``plan`` and ``hrtf`` are relative to the manifest's folder (or absolute); ``output``
is relative to the output folder and may not leave it.  Options per job: ``stereo``, ``downmix``,
``rate``, ``hrtf``, ``dry``, ``reverb_db``, ``block`` — the same as ``stase render``'s flags,
through the same function (:func:`stase.dsp.offline.render_files`), so a job writes the bytes
``stase render`` writes.  Blank lines and lines starting with ``#`` are skipped.  Every problem
of every line is reported at once, with its line number, before anything runs.

Each job writes its mix atomically (temp file + rename) and then ``<output>.qa.json``: peak
(dBFS), true peak (dBTP, 4x oversampled), integrated loudness (LUFS), clipping, duration, and
with ``--qa-listen`` the listener's per-track listen-back error.  A rerun skips a job whose QA
report exists, matches the job's line (a fingerprint) and whose mix still has the size it had,
so an interrupted batch resumes where it stopped.  A failing job is reported and the batch goes
on; ``DIR/batch_report.json`` lists every job's outcome.

Jobs run in this process, in a local process pool (``--workers N``) or on Ray (``--ray``), all
through :func:`stase.core.parallel.run_jobs`.

Functions
---------
read_manifest(path) -> list[dict]        the checked jobs (paths resolved)
run_batch(jobs, out_dir, options, progress=True) -> summary dict
render_job(job) -> QA dict               one job (module-level: it is pickled to the workers)
BatchOptions(workers, ray, qa_listen)
"""
from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

from stase.core.audio_io import atomic_write_text
from stase.core.errors import InputError

#: The longest manifest accepted (jobs); a label's catalogue fits, a runaway generator does not.
MAX_JOBS = 100_000
MAX_LINE_CHARS = 8192
JOB_SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "minLength": 1, "maxLength": 200},
        "stems": {"type": "string", "minLength": 1},
        "plan": {"type": "string", "minLength": 1},
        "output": {"type": "string", "minLength": 1, "pattern": r"\.(wav|flac|aiff|aif|ogg)$"},
        "stereo": {"type": "boolean"},
        "downmix": {"type": "boolean"},
        "dry": {"type": "boolean"},
        "rate": {"type": "integer"},
        "hrtf": {"type": "string", "minLength": 1},
        "reverb_db": {"type": "number"},
        "block": {"type": "integer", "minimum": 1, "maximum": 65536},
    },
    "required": ["stems", "plan", "output"],
    "additionalProperties": False,
}
QA_SUFFIX = ".qa.json"


@dataclass(frozen=True)
class BatchOptions:
    """How a batch runs: ``workers`` processes or actors, ``ray`` None / "local" / an address,
    ``qa_listen`` adds the listener's listen-back to each QA report."""
    workers: int = 1
    ray: str | None = None
    qa_listen: bool = False


def read_manifest(path) -> list[dict]:
    """The jobs of a manifest, checked (all problems at once, ``InputError``), paths resolved."""
    import jsonschema
    path = Path(path)
    if not path.is_file():
        raise InputError(f"batch manifest not found: {path}")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the batch manifest {path}: {exc}") from exc
    base = path.resolve().parent
    validator = jsonschema.Draft202012Validator(JOB_SCHEMA)
    problems, jobs, ids, outputs = [], [], {}, {}
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        where = f"{path.name}:{number}"
        if len(text) > MAX_LINE_CHARS:
            problems.append(f"{where}: the line is {len(text)} characters; at most {MAX_LINE_CHARS}")
            continue
        try:
            job = json.loads(text)
        except json.JSONDecodeError as exc:
            problems.append(f"{where}: not JSON ({exc.msg} at column {exc.colno})")
            continue
        errors = sorted(validator.iter_errors(job), key=lambda e: list(e.path))
        for error in errors:
            key = ".".join(str(p) for p in error.path)
            message = error.message
            if key == "output" and error.validator == "pattern":
                message = f"{error.instance!r} must end in .wav, .flac, .aiff, .aif or .ogg"
            problems.append(f"{where}: {key + ': ' if key else ''}{message}")
        if errors:
            continue
        output = Path(job["output"])
        if output.is_absolute() or ".." in output.parts:
            problems.append(f"{where}: output {job['output']!r} must be a relative path inside the "
                            "output folder")
            continue
        job_id = job.get("id") or str(output.with_suffix(""))
        if job_id in ids:
            problems.append(f"{where}: id {job_id!r} is also the id of line {ids[job_id]}")
        if str(output) in outputs:
            problems.append(f"{where}: output {str(output)!r} is also written by line {outputs[str(output)]}")
        ids.setdefault(job_id, number)
        outputs.setdefault(str(output), number)
        resolved = dict(job, id=job_id, line=number, source=text)
        for key in ("stems", "plan", "hrtf"):
            if key in job:
                resolved[key] = str((base / job[key]) if not Path(job[key]).is_absolute() else Path(job[key]))
        jobs.append(resolved)
    if len(jobs) > MAX_JOBS:
        problems.append(f"{path.name}: {len(jobs)} jobs; at most {MAX_JOBS} per manifest (split it)")
    if not jobs and not problems:
        problems.append(f"{path.name}: no jobs (one JSON object per line)")
    if problems:
        shown = problems[:50] + ([f"... and {len(problems) - 50} more"] if len(problems) > 50 else [])
        raise InputError(f"batch manifest {path} has {len(problems)} problem(s):\n  - " + "\n  - ".join(shown))
    return jobs


def _fingerprint(job: dict) -> str:
    """What makes a finished job's output still valid: its manifest line, as resolved."""
    keys = {k: job[k] for k in sorted(job) if k not in ("line", "source", "out_dir", "qa_listen")}
    return hashlib.sha256(json.dumps(keys, sort_keys=True).encode()).hexdigest()[:16]


def _target(job: dict) -> Path:
    return Path(job["out_dir"]) / job["output"]


def is_finished(job: dict) -> bool:
    """True when the job's QA report and mix exist and match the job (resume: skip it)."""
    target = _target(job)
    qa_path = target.with_name(target.name + QA_SUFFIX)
    try:
        qa = json.loads(qa_path.read_text(encoding="utf-8"))
        return (qa.get("fingerprint") == _fingerprint(job) and target.is_file()
                and target.stat().st_size == qa.get("output_bytes")
                and (not job.get("qa_listen") or "listen_back" in qa))
    except (OSError, ValueError, AttributeError):
        return False


_LISTENER = None


def _listen_back(job: dict, plan) -> dict:
    global _LISTENER
    from stase.agent.listener import Listener
    from stase.core.audio_io import load_stems
    if _LISTENER is None:  # one per worker process, kept warm across its jobs
        _LISTENER = Listener()
    stems, rate = load_stems(job["stems"], downmix=bool(job.get("downmix")))
    heard = _LISTENER.listen_back(stems, plan, rate)
    return {"tracks": [{k: t.get(k) for k in ("track", "angular_error_deg", "lateral_error_deg",
                                               "distance_error_m", "flag", "uncertain")}
                       for t in heard["tracks"]],
            "summary": heard["summary"]}


def render_job(job: dict) -> dict:
    """Render one job (see the module docstring) and write its QA report; returns the report."""
    from stase.core.plan import load_plan
    from stase.dsp.offline import render_files, true_peak_dbfs
    start = time.perf_counter()
    target = _target(job)
    target.parent.mkdir(parents=True, exist_ok=True)
    plan = load_plan(job["plan"])
    result, report = render_files(job["stems"], plan, target, stereo=bool(job.get("stereo")),
                                  downmix=bool(job.get("downmix")), rate=job.get("rate"),
                                  hrtf=job.get("hrtf"), dry=bool(job.get("dry")),
                                  reverb_db=job.get("reverb_db"), block_size=int(job.get("block", 1024)))
    true_peak = true_peak_dbfs(target)
    qa = {"id": job["id"], "output": job["output"], "fingerprint": _fingerprint(job),
          "output_bytes": target.stat().st_size, "sample_rate": result.sample_rate,
          "duration_s": report.get("duration_s"),
          "peak_dbfs": None if not math.isfinite(result.peak_dbfs) else round(result.peak_dbfs, 2),
          "true_peak_dbtp": None if not math.isfinite(true_peak) else round(true_peak, 2),
          "lufs": None if result.lufs is None else round(result.lufs, 2),
          "clipped": bool(result.clipped), "true_peak_over": bool(math.isfinite(true_peak) and true_peak > -1.0),
          "unused_stems": report.get("unused_stems", [])}
    if job.get("qa_listen"):
        qa["listen_back"] = _listen_back(job, plan)
    qa["render_s"] = round(time.perf_counter() - start, 3)
    atomic_write_text(target.with_name(target.name + QA_SUFFIX), json.dumps(qa, indent=1) + "\n")
    return qa


def run_batch(jobs: list[dict], out_dir, options: BatchOptions = BatchOptions(),
              progress: bool = True) -> dict:
    """Run ``jobs`` (from :func:`read_manifest`) into ``out_dir``; returns the summary that is also
    written to ``out_dir/batch_report.json``."""
    from stase.core.audio_io import ensure_writable_folder
    from stase.core.parallel import check_workers, run_jobs
    check_workers(options.workers)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"-o {out_dir} must be a folder for --batch")
    out_dir.mkdir(parents=True, exist_ok=True)
    ensure_writable_folder(out_dir, out_dir / "batch_report.json")
    jobs = [dict(job, out_dir=str(out_dir.resolve()), qa_listen=bool(options.qa_listen)) for job in jobs]
    todo = [job for job in jobs if not is_finished(job)]
    skipped = len(jobs) - len(todo)
    todo_ids = {job["id"] for job in todo}
    outcomes: dict[str, dict] = {job["id"]: {"id": job["id"], "status": "skipped"} for job in jobs
                                 if job["id"] not in todo_ids}
    start = time.perf_counter()
    bar = None
    if progress and todo:
        from tqdm import tqdm
        bar = tqdm(total=len(todo), desc="render --batch", unit="job", smoothing=0.1)
    try:
        for outcome in run_jobs(render_job, todo, workers=options.workers, ray=options.ray,
                                progress=(lambda o: bar.update(1)) if bar else None):
            job = todo[outcome.index]
            if outcome.ok:
                outcomes[job["id"]] = {"id": job["id"], "status": "done", "qa": outcome.value}
            else:
                outcomes[job["id"]] = {"id": job["id"], "status": "failed", "line": job["line"],
                                       "error": outcome.error}
    finally:
        if bar is not None:
            bar.close()
    seconds = time.perf_counter() - start
    failures = [o for o in outcomes.values() if o["status"] == "failed"]
    done = sum(o["status"] == "done" for o in outcomes.values())
    summary = {"jobs": len(jobs), "done": done, "skipped": skipped, "failed": len(failures),
               "failures": [{"id": f["id"], "line": f["line"], "error": f["error"]} for f in failures],
               "seconds": round(seconds, 3), "jobs_per_s": round(done / seconds, 3) if seconds > 0 and done else 0.0,
               "workers": options.workers, "ray": options.ray,
               "outcomes": [outcomes[job["id"]] for job in jobs if job["id"] in outcomes]}
    atomic_write_text(out_dir / "batch_report.json", json.dumps(summary, indent=1) + "\n")
    return summary
