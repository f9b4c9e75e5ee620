"""Batch-rendering benchmark (issue 21): jobs per second locally and on a local Ray instance.

Usage::

    python -m bench.batch --json [--jobs 8] [--seconds 4]

A synthetic catalogue of ``--jobs`` songs (three mono pink-noise stems of ``--seconds`` s each,
48 kHz, a plan in ``small_chamber`` with ``hrtf`` sources) is rendered by
:func:`stase.bridge.batch.run_batch` into a fresh folder each time:

* ``serial``: workers=1 in this process (already warm: one job rendered first);
* ``pool_1`` / ``pool_2``: a local process pool with 1 / 2 workers (spawned per run, so their
  start-up and first-job warm-up count, as they do for a user);
* ``ray_1`` / ``ray_2``: a local Ray instance (``ray.init(num_cpus=N)``, started and stopped
  inside the timing) with 1 / 2 actors, when Ray is installed.

Each entry: wall seconds and jobs per second over the whole run, ``first_job_s`` (start-up: the
workers' interpreters, imports and first-job warm-up) and ``steady_jobs_per_s`` (after the first
result); ``ray_overhead_s_per_job_w{N}``: (Ray - pool) wall time / jobs at the same worker count.  Outputs of every way are checked byte-identical to the serial ones.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _catalogue(root: Path, jobs: int, seconds: float, rate: int = 48000) -> Path:
    import soundfile as sf
    lines = []
    for j in range(jobs):
        song = root / f"song{j:03d}"
        (song / "stems").mkdir(parents=True)
        rng = np.random.default_rng(j)
        sources = []
        for k, track in enumerate(("lead", "keys", "bass")):
            white = np.fft.rfft(rng.standard_normal(int(seconds * rate)))
            pink = np.fft.irfft(white / np.sqrt(np.maximum(np.arange(white.size), 1)), int(seconds * rate))
            sf.write(song / "stems" / f"{track}.wav", (0.1 * pink / np.abs(pink).max()).astype(np.float32),
                     rate, subtype="FLOAT")
            sources.append({"track": track, "azimuth_deg": [-40.0, 30.0, 0.0][k], "distance_m": 3.0})
        (song / "plan.json").write_text(json.dumps({"room": "small_chamber", "sources": sources}))
        lines.append({"stems": f"{song.name}/stems", "plan": f"{song.name}/plan.json",
                      "output": f"{song.name}.wav"})
    manifest = root / "catalogue.jsonl"
    manifest.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    return manifest


def _outputs(folder: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.wav"))}


def run(jobs: int = 8, seconds: float = 4.0) -> dict:
    from stase.bridge.batch import read_manifest, render_job
    from stase.core.parallel import run_jobs
    root = Path(tempfile.mkdtemp(prefix="stase-bench-batch-"))
    try:
        manifest = _catalogue(root, jobs, seconds)
        parsed = read_manifest(manifest)
        render_job(dict(parsed[0], out_dir=str(root / "warm")))  # warm this process
        ways = [("serial", 1, None), ("pool_1", 1, "pool"), ("pool_2", 2, "pool")]
        try:
            import ray  # noqa: F401
            ways += [("ray_1", 1, "local"), ("ray_2", 2, "local")]
        except ImportError:
            pass
        results, reference = {}, None
        for label, workers, how in ways:
            out = root / label
            out.mkdir()
            todo = [dict(j, out_dir=str(out.resolve()), qa_listen=False) for j in parsed]
            done_at = []
            start = time.perf_counter()
            outcomes = list(run_jobs(render_job, todo, workers=workers,
                                     ray="local" if how == "local" else None,
                                     in_process=how is None,
                                     progress=lambda o: done_at.append(time.perf_counter())))
            wall = time.perf_counter() - start
            assert all(o.ok for o in outcomes), [o.error for o in outcomes if not o.ok]
            outputs = _outputs(out)
            if reference is None:
                reference = outputs
            first = done_at[0] - start
            steady = (len(done_at) - 1) / (done_at[-1] - done_at[0]) if len(done_at) > 1 and done_at[-1] > done_at[0] else None
            results[label] = {"wall_s": round(wall, 2), "jobs_per_s": round(jobs / wall, 3),
                              "first_job_s": round(first, 2),
                              "steady_jobs_per_s": None if steady is None else round(steady, 3),
                              "identical_to_serial": outputs == reference}
        for w in (1, 2):
            if f"ray_{w}" in results:
                results[f"ray_overhead_s_per_job_w{w}"] = round(
                    (results[f"ray_{w}"]["wall_s"] - results[f"pool_{w}"]["wall_s"]) / jobs, 3)
        return {"bench": "batch", "jobs": jobs, "stem_seconds": seconds, "stems_per_job": 3,
                "room": "small_chamber", "mode": "hrtf", "cpus": os.cpu_count(),
                "python": platform.python_version(), "results": results}
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=4.0)
    args = parser.parse_args(argv)
    result = run(args.jobs, args.seconds)
    print(json.dumps(result, indent=None if args.json else 1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
