"""Batch rendering (issue 21): stase render --batch, locally, in a process pool and on Ray.

Outputs must be byte-identical whichever way the jobs run and to a plain ``stase render`` of the
same job; a rerun skips finished jobs; one failing job does not stop the others; the manifest's
problems are all reported at once; the QA report's true peak follows its closed form.
"""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import soundfile as sf

from stase.bridge.batch import BatchOptions, read_manifest, run_batch
from stase.cli import main as stase
from stase.core.errors import InputError
from stase.core.parallel import run_jobs
from stase.dsp.offline import true_peak_dbfs

RATE = 16000


def _song(folder, seed):
    stems = folder / "stems"
    stems.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for track in ("Gtr L", "bass"):
        sf.write(stems / f"{track}.wav", (rng.standard_normal(RATE // 2) * 0.1).astype(np.float32),
                 RATE, subtype="FLOAT")
    plan = {"room": "dry_studio", "sources": [
        {"track": "Gtr L", "azimuth_deg": 40.0, "mode": "itd_ild"},
        {"track": "bass", "azimuth_deg": -20.0, "distance_m": 3.0, "mode": "itd_ild"}]}
    (folder / "plan.json").write_text(json.dumps(plan))


@pytest.fixture
def catalogue(tmp_path):
    for i, name in enumerate(("one", "two", "three")):
        _song(tmp_path / name, i)
    lines = [{"stems": "one/stems", "plan": "one/plan.json", "output": "one.wav"},
             {"stems": "two/stems", "plan": "two/plan.json", "output": "sub/two.wav", "stereo": True},
             {"id": "three", "stems": "three/stems", "plan": "three/plan.json", "output": "three.flac",
              "reverb_db": -3.0}]
    manifest = tmp_path / "catalogue.jsonl"
    manifest.write_text("# a label's back catalogue\n" + "\n".join(json.dumps(x) for x in lines) + "\n\n")
    return manifest


def _bytes(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.suffix in (".wav", ".flac")}


def test_manifest_problems_are_reported_at_once(tmp_path):
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("\n".join([
        '{"stems": "s", "plan": "p.json", "output": "a.wav"}',
        '{"stems": "s", "plan": "p.json", "output": "a.wav"}',          # same output
        '{"stems": "s", "output": "b.wav", "loudness": 3}',               # no plan, unknown key
        '{"stems": "s", "plan": "p.json", "output": "../escape.wav"}',   # leaves the folder
        '{"stems": "s", "plan": "p.json", "output": "c.mp3"}',           # not a format we write
        'not json']))
    with pytest.raises(InputError) as err:
        read_manifest(manifest)
    text = str(err.value)
    assert "7 problem(s)" in text
    for expected in ("m.jsonl:2: output 'a.wav' is also written by line 1", "m.jsonl:3:",
                     "'plan' is a required property", "'loudness' was unexpected",
                     "m.jsonl:4: output '../escape.wav' must be a relative path",
                     "m.jsonl:5: output: 'c.mp3' must end in .wav, .flac", "m.jsonl:6: not JSON"):
        assert expected in text


def test_jobs_write_what_stase_render_writes_and_rerun_skips(catalogue, tmp_path):
    out = tmp_path / "out"
    summary = run_batch(read_manifest(catalogue), out, BatchOptions(workers=1), progress=False)
    assert (summary["done"], summary["skipped"], summary["failed"]) == (3, 0, 0)
    single = tmp_path / "single.wav"
    assert stase(["render", "--stems", str(tmp_path / "two" / "stems"), "--plan",
                  str(tmp_path / "two" / "plan.json"), "-o", str(single), "--stereo"]) == 0
    assert single.read_bytes() == (out / "sub" / "two.wav").read_bytes()
    qa = json.loads((out / "one.wav.qa.json").read_text())
    audio, rate = sf.read(out / "one.wav", always_2d=True)
    assert rate == RATE and qa["sample_rate"] == RATE
    assert qa["peak_dbfs"] == pytest.approx(20 * math.log10(np.abs(audio).max()), abs=0.01)
    assert qa["true_peak_dbtp"] >= qa["peak_dbfs"] - 0.01 and qa["clipped"] is False
    before = _bytes(out)
    again = run_batch(read_manifest(catalogue), out, BatchOptions(workers=1), progress=False)
    assert (again["done"], again["skipped"]) == (0, 3)
    # a changed line or a lost output is rendered again; the others stay skipped
    (out / "one.wav").unlink()
    lines = catalogue.read_text().replace('"reverb_db": -3.0', '"reverb_db": -6.0')
    catalogue.write_text(lines)
    third = run_batch(read_manifest(catalogue), out, BatchOptions(workers=1), progress=False)
    assert (third["done"], third["skipped"]) == (2, 1)
    assert _bytes(out)["one.wav"] == before["one.wav"]
    assert _bytes(out)["three.flac"] != before["three.flac"]


def test_process_pool_equals_serial_and_a_failure_does_not_stop_the_batch(catalogue, tmp_path):
    with catalogue.open("a") as f:
        f.write(json.dumps({"stems": "nowhere", "plan": "one/plan.json", "output": "broken.wav"}) + "\n")
    serial, pool = tmp_path / "serial", tmp_path / "pool"
    a = run_batch(read_manifest(catalogue), serial, BatchOptions(workers=1), progress=False)
    b = run_batch(read_manifest(catalogue), pool, BatchOptions(workers=2), progress=False)
    for summary in (a, b):
        assert (summary["done"], summary["failed"]) == (3, 1)
        assert summary["failures"][0]["id"] == "broken" and "stems folder not found" in summary["failures"][0]["error"]
    assert _bytes(serial) == _bytes(pool) and len(_bytes(pool)) == 3
    report = json.loads((pool / "batch_report.json").read_text())
    assert [o["status"] for o in report["outcomes"]] == ["done", "done", "done", "failed"]
    assert stase(["render", "--batch", str(catalogue), "-o", str(tmp_path / "cli"), "--json"]) == 1


def test_ray_jobs_equal_the_local_path(catalogue, tmp_path):
    pytest.importorskip("ray")
    local, on_ray = tmp_path / "local", tmp_path / "ray"
    run_batch(read_manifest(catalogue), local, BatchOptions(workers=1), progress=False)
    summary = run_batch(read_manifest(catalogue), on_ray, BatchOptions(workers=2, ray="local"), progress=False)
    assert summary["done"] == 3 and summary["ray"] == "local"
    assert _bytes(local) == _bytes(on_ray)


def _square(x):
    if x == 3:
        raise ValueError("three is not allowed")
    return x * x


def test_run_jobs_reports_each_outcome_by_index():
    outcomes = sorted(run_jobs(_square, range(5), workers=1), key=lambda o: o.index)
    assert [o.value for o in outcomes if o.ok] == [0, 1, 4, 16]
    assert not outcomes[3].ok and outcomes[3].error == "ValueError: three is not allowed"
    with pytest.raises(InputError, match="workers"):
        list(run_jobs(_square, range(2), workers=0))


def test_true_peak_follows_its_closed_form(tmp_path):
    """A sine at fs/4 sampled 45 degrees off its crests has a sample peak of A/sqrt(2): the true
    peak (4x oversampled, BS.1770-4 Annex 2) finds A, 3.01 dB higher (within the interpolation
    filter's 0.02 dB passband ripple; faded in and out so the edges do not ring); chunked equals
    whole."""
    rate, amplitude = 48000, 0.5
    n = np.arange(rate)
    fade = np.ones(rate)
    fade[:4800], fade[-4800:] = np.hanning(9600)[:4800], np.hanning(9600)[4800:]
    x = amplitude * np.sin(2 * np.pi * n / 4 + np.pi / 4) * fade
    path = tmp_path / "sine.wav"
    sf.write(path, np.stack([x, 0.5 * x]).T.astype(np.float32), rate, subtype="FLOAT")
    sample_peak = 20 * math.log10(np.abs(x).max())
    assert sample_peak == pytest.approx(20 * math.log10(amplitude) - 3.01, abs=0.01)
    whole = true_peak_dbfs(path, chunk_frames=1 << 20)
    assert whole == pytest.approx(20 * math.log10(amplitude), abs=0.03)
    assert true_peak_dbfs(path, chunk_frames=1001) == pytest.approx(whole, abs=1e-9)
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros((100, 2), np.float32), rate)
    assert true_peak_dbfs(silent) == -math.inf


def test_the_same_audio_written_twice_gives_the_same_bytes(tmp_path):
    """libsndfile's PEAK chunk stamps float WAVs with the time of writing; it is turned off."""
    import time
    from stase.core.audio_io import write_audio
    audio = (np.random.default_rng(0).standard_normal((2, 1000)) * 0.1).astype(np.float32)
    write_audio(tmp_path / "a.wav", audio, RATE)
    time.sleep(1.05)
    write_audio(tmp_path / "b.wav", audio, RATE)
    assert (tmp_path / "a.wav").read_bytes() == (tmp_path / "b.wav").read_bytes()
    np.testing.assert_array_equal(sf.read(tmp_path / "a.wav", always_2d=True)[0].T, audio)


def test_listener_data_shards_equal_one_local_run(tmp_path):
    """Shards rendered by a process pool (and by Ray when installed), merged, equal one
    write_dataset over the whole range: clips are a pure function of (split, stage, index)."""
    from stase.onnx_models.spatial_ast import data
    from stase.onnx_models.spatial_ast.shards import merge_shards, write_shards
    whole = data.write_dataset(tmp_path / "whole", "test", 5, 1, start=3, progress=False)
    ways = [("pool", dict(workers=2))]
    try:
        import ray  # noqa: F401
        ways.append(("ray", dict(workers=2, ray="local")))
    except ImportError:
        pass
    for label, how in ways:
        manifest = write_shards(tmp_path / label, "test", 5, 1, start=3, shard_clips=2, progress=False, **how)
        entries = json.loads(manifest.read_text())["shards"]
        assert [(e["start"], e["n"]) for e in entries] == [(3, 2), (5, 2), (7, 1)]
        merged = merge_shards(manifest)
        np.testing.assert_array_equal(np.load(merged), np.load(whole))
        with np.load(merged.with_suffix(".labels.npz")) as a, np.load(whole.with_suffix(".labels.npz")) as b:
            for key in b.files:
                np.testing.assert_array_equal(a[key], b[key])
