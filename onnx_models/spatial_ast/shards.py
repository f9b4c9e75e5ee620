"""The listener's training data in shards, rendered by many workers (issue 21).

``write_shards`` cuts the clip range ``start .. start + n_clips`` of one ``(split, stage)`` into
shards of ``shard_clips`` clips, renders each with :func:`stase.onnx_models.spatial_ast.data.
write_dataset` (in this process, a local process pool, or on Ray: :func:`stase.core.parallel.
run_jobs`) and writes ``{name}.shards.json``, the manifest: every shard's range and the SHA-256 of
its features.  Clips are a pure function of ``(split, stage, index)``, so a shard is the same
bytes wherever it was made, and a rerun keeps finished shards (``write_dataset`` resumes).
``merge_shards`` joins them into the one ``{name}.npy`` + ``.labels.npz`` that training reads,
equal to what a single ``write_dataset`` over the whole range writes.

    python -m stase.onnx_models.spatial_ast.shards DATA --split train --stage 1 --n 320000 \\
        --shard-clips 5000 --workers 16 [--ray auto] [--merge]

Functions
---------
write_shards(folder, split, n_clips, stage, ...) -> manifest path
merge_shards(manifest) -> features path
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from stase.core.audio_io import atomic_path, atomic_write_text
from stase.core.errors import InputError


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def render_shard(job: dict) -> dict:
    """One shard (module-level: pickled to the workers); returns its manifest entry."""
    from stase.onnx_models.spatial_ast.data import write_dataset
    folder = Path(job["folder"])
    features = write_dataset(folder, job["split"], job["n"], job["stage"], start=job["start"],
                             progress=False, name=job["name"], head=job.get("head", "kemar"),
                             head_variation=job.get("head_variation"))
    return {"name": job["name"], "start": job["start"], "n": job["n"],
            "features_sha256": _sha256(features)}


def write_shards(folder, split: str, n_clips: int, stage: int, start: int = 0,
                 shard_clips: int = 5000, workers: int = 1, ray: str | None = None,
                 name: str | None = None, progress: bool = True, head: str = "kemar",
                 head_variation=None) -> Path:
    """Render ``n_clips`` clips from ``start`` as shards under ``folder/{name}_shards/``; returns
    the manifest ``folder/{name}.shards.json``.  Failed shards are named in an ``InputError``
    after the others finished (rerun to retry: finished shards are kept)."""
    from stase.core.parallel import run_jobs
    for what, value, low in (("n_clips", n_clips, 1), ("shard_clips", shard_clips, 1), ("start", start, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise InputError(f"{what} must be a whole number >= {low}, got {value!r}")
    folder = Path(folder)
    name = name or f"{split}_s{stage}"
    shard_dir = folder / f"{name}_shards"
    shard_dir.mkdir(parents=True, exist_ok=True)
    jobs = [{"folder": str(shard_dir), "split": split, "stage": stage, "start": start + first,
             "n": min(shard_clips, n_clips - first), "name": f"{name}_{first // shard_clips:05d}",
             "head": head, "head_variation": None if head_variation is None else list(head_variation)}
            for first in range(0, n_clips, shard_clips)]
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(jobs), desc=f"{name} shards", unit="shard")
    entries, failures = {}, []
    try:
        for outcome in run_jobs(render_shard, jobs, workers=workers, ray=ray,
                                progress=(lambda o: bar.update(1)) if bar else None):
            if outcome.ok:
                entries[outcome.index] = outcome.value
            else:
                failures.append(f"{jobs[outcome.index]['name']}: {outcome.error}")
    finally:
        if bar is not None:
            bar.close()
    if failures:
        raise InputError(f"{len(failures)} of {len(jobs)} shard(s) failed (rerun to retry; finished "
                         "shards are kept):\n  - " + "\n  - ".join(failures))
    from stase.onnx_models.spatial_ast.data import hrtf_set, room_ids
    manifest = {"split": split, "stage": stage, "start": start, "n_clips": n_clips,
                "shard_clips": shard_clips, "folder": shard_dir.name, "name": name,
                "head": head, "head_variation": None if head_variation is None else list(head_variation),
                "hrtf": hrtf_set().source, "rooms": list(room_ids()),
                "shards": [entries[i] for i in range(len(jobs))]}
    path = folder / f"{name}.shards.json"
    atomic_write_text(path, json.dumps(manifest, indent=1) + "\n")
    return path


def merge_shards(manifest_path) -> Path:
    """Join a manifest's shards into ``{name}.npy`` (features, float16) and ``{name}.labels.npz``
    beside it, checking every shard's SHA-256 first; returns the features path."""
    manifest_path = Path(manifest_path)
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    folder = manifest_path.parent
    shard_dir = folder / manifest["folder"]
    for entry in manifest["shards"]:
        path = shard_dir / f"{entry['name']}.npy"
        if not path.is_file() or _sha256(path) != entry["features_sha256"]:
            raise InputError(f"shard {path} is missing or differs from its manifest; rerun write_shards")
    first = np.load(shard_dir / f"{manifest['shards'][0]['name']}.npy", mmap_mode="r")
    shape = (manifest["n_clips"],) + first.shape[1:]
    target = folder / f"{manifest['name']}.npy"
    labels: dict[str, list] = {}
    with atomic_path(target) as tmp:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=first.dtype, shape=shape)
        row = 0
        for entry in manifest["shards"]:
            part = np.load(shard_dir / f"{entry['name']}.npy", mmap_mode="r")
            out[row:row + part.shape[0]] = part
            with np.load(shard_dir / f"{entry['name']}.labels.npz") as stored:
                for key in stored.files:
                    labels.setdefault(key, []).append(stored[key])
            row += part.shape[0]
        out.flush()
        del out
    with atomic_path(target.with_suffix(".labels.npz")) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **{k: np.concatenate(v) for k, v in labels.items()})
    meta = {k: manifest[k] for k in ("split", "stage", "n_clips", "start", "hrtf", "rooms")}
    atomic_write_text(target.with_suffix(".json"), json.dumps(meta, indent=1))
    return target


def main(argv=None) -> int:
    import argparse
    parser = argparse.ArgumentParser(description="render the listener's training features in shards")
    parser.add_argument("folder")
    parser.add_argument("--split", default="train", choices=["train", "test"])
    parser.add_argument("--stage", type=int, default=1)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--shard-clips", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS")
    parser.add_argument("--name", default=None)
    parser.add_argument("--merge", action="store_true", help="join the shards into one set for training")
    a = parser.parse_args(argv)
    manifest = write_shards(a.folder, a.split, a.n, a.stage, a.start, a.shard_clips, a.workers,
                            a.ray, a.name)
    print(f"wrote {manifest}")
    if a.merge:
        print(f"merged into {merge_shards(manifest)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
