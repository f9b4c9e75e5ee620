"""Issue 14, the listener's part: listening has a memory bound whatever the length (defect 1),
and `stase listen` turns a bad --model or --threads into a message and exit 2 (defects 15, 22).

The streamed listener must give what the whole-at-once computation gave (``windows`` and one
model call over every window, kept here as ``_whole_at_once``), and its peak memory (tracemalloc,
which sees NumPy's allocations) must not follow the input's length.
"""
from __future__ import annotations

import os
import tracemalloc

import numpy as np
import pytest

from stase.agent import listener as listener_module
from stase.agent.features import SAMPLE_RATE, binaural_features
from stase.agent.listener import (DEFAULT_MODEL, ArraySignal, FileSignal, Listener, loudest_excerpt, loudest_start,
                            model_rate_blocks, resample_to_model_rate, streamed_windows, windows)
from stase.core.audio_io import read_audio, write_audio
from stase.core.errors import InputError

MB = 1 << 20


@pytest.fixture(scope="module")
def listener():
    assert DEFAULT_MODEL.is_file(), f"shipped model {DEFAULT_MODEL} is missing"
    return Listener(providers=["CPUExecutionProvider"], threads=1)


def _binaural(seconds: float, rate: int, seed: int = 0) -> np.ndarray:
    """Noise heard on the left (the right ear 8 samples later and 6 dB down) under a slow swell,
    so the windows differ in weight."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    mono = rng.standard_normal(n + 8) * 0.1
    swell = 0.3 + 0.7 * (0.5 + 0.5 * np.sin(2 * np.pi * 0.3 * np.arange(n) / rate))
    return np.stack([mono[8:] * swell, 0.5 * mono[:-8] * swell]).astype(np.float32)


def _whole_at_once(listener, audio, rate) -> dict:
    """The listener before issue 14: every window's features and one model call at once."""
    chunks, w = windows(resample_to_model_rate(audio, rate))
    w = w / w.sum()
    probs = listener.infer_features(binaural_features(chunks))
    mean = {name: (p * w[:, None]).sum(axis=0, keepdims=True) for name, p in probs.items()}
    mean["classes"] = probs["classes"].max(axis=0)
    return mean


def _peak_bytes(function, *args) -> int:
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        function(*args)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _cheap_model(monkeypatch, listener):
    """Stand-ins for the features and the model (fixed outputs of the right shapes), so a long
    input's memory is measured in seconds; the real ones run batch by batch (see the batch test)."""
    monkeypatch.setattr(listener_module, "binaural_features",
                        lambda x: np.zeros((len(x), 4, 101, 128), np.float32))
    rng = np.random.default_rng(1)
    fixed = {"classes": rng.random(24), "distance": rng.dirichlet(np.ones(21)),
             "azimuth": rng.dirichlet(np.ones(360)), "elevation": rng.dirichlet(np.ones(180))}
    monkeypatch.setattr(listener, "infer_features",
                        lambda f: {k: np.repeat(v[None], len(f), axis=0) for k, v in fixed.items()})


# ---- streaming equals the whole ------------------------------------------------------------

@pytest.mark.parametrize("rate", [32000, 48000, 44100, 22050, 96000])
@pytest.mark.parametrize("block", [1, 64, 65, 128, 8192, 8193])
def test_resampling_in_blocks_equals_resampling_the_whole(rate, block):
    audio = _binaural(0.3 if block > 64 else 0.08, rate, seed=rate % 7).astype(np.float64)
    whole = resample_to_model_rate(audio, rate)
    streamed = np.concatenate(list(model_rate_blocks(ArraySignal(audio, rate), block)), axis=1)
    assert streamed.shape == whole.shape
    np.testing.assert_allclose(streamed, whole, rtol=0, atol=1e-12)


@pytest.mark.parametrize("seconds", [0.4, 1.0, 1.3, 20.0])
def test_streamed_windows_equal_the_whole_at_once_windows(seconds):
    audio = _binaural(seconds, 48000, seed=3)
    chunks, weights = windows(resample_to_model_rate(audio, 48000))
    streamed = list(streamed_windows(ArraySignal(audio, 48000), block_frames=12345))
    assert len(streamed) == len(chunks)
    np.testing.assert_allclose(np.stack([w for w, _ in streamed]), chunks, rtol=0, atol=1e-12)
    np.testing.assert_allclose([g for _, g in streamed], weights, rtol=1e-9)


@pytest.mark.model
@pytest.mark.parametrize("batch", [7, 16])
def test_streamed_listen_equals_whole_at_once_listen_on_20_s(listener, monkeypatch, batch):
    monkeypatch.setattr(listener_module, "BATCH_WINDOWS", batch)
    audio = _binaural(20.0, 48000)                       # 39 windows: several batches
    heard = listener.heard_probabilities([(audio, 48000)])[0]
    reference = _whole_at_once(listener, audio, 48000)
    for name in ("classes", "distance", "azimuth", "elevation"):
        np.testing.assert_allclose(heard[name], reference[name], rtol=0, atol=1e-5, err_msg=name)
    result = listener.listen(audio, 48000)
    expected = listener._decode(reference)
    for key in ("azimuth_deg", "elevation_deg", "distance_m", "confidence"):
        assert result[key] == pytest.approx(expected[key], abs=0.011)
    assert result["classes"] == pytest.approx(expected["classes"], abs=2e-4)


@pytest.mark.model
def test_listen_many_mixes_items_in_a_batch_and_keeps_them_apart(listener):
    items = [(_binaural(0.5, 32000, seed=k), 32000) for k in range(3)] + [(_binaural(4.0, 44100, seed=9), 44100)]
    together = listener.listen_many(items)
    alone = [listener.listen(a, r) for a, r in items]
    for t, a in zip(together, alone):
        assert t["azimuth_deg"] == pytest.approx(a["azimuth_deg"], abs=0.011)
        assert t["distance_m"] == pytest.approx(a["distance_m"], abs=0.011)
        assert t["classes"] == pytest.approx(a["classes"], abs=2e-4)


@pytest.mark.model
@pytest.mark.parametrize("subtype", ["FLOAT", "PCM_16"])
def test_listen_file_equals_listening_to_the_read_file(listener, tmp_path, subtype):
    path = tmp_path / "clip.wav"
    write_audio(path, _binaural(6.0, 44100, seed=5), 44100, subtype=subtype)
    audio, rate = read_audio(path)
    assert listener.listen_file(path) == listener.listen(audio, rate)
    assert listener.listen_files([str(path), path]) == [listener.listen(audio, rate)] * 2


# ---- memory does not follow the length -----------------------------------------------------------

@pytest.mark.model
def test_listen_peak_memory_does_not_grow_with_the_length(listener, monkeypatch):
    _cheap_model(monkeypatch, listener)
    short, long = _binaural(30.0, 48000), _binaural(120.0, 48000)
    peak_short = _peak_bytes(listener.listen, short, 48000)
    peak_long = _peak_bytes(listener.listen, long, 48000)
    # the whole-at-once listener held every window in float64: 4x the length, ~4x the peak
    assert peak_long < 1.5 * peak_short, (peak_short / MB, peak_long / MB)
    assert peak_long < 64 * MB, peak_long / MB


@pytest.mark.model
def test_listen_file_streams_from_disk(listener, monkeypatch, tmp_path):
    _cheap_model(monkeypatch, listener)
    paths = {}
    for seconds in (30, 120):
        paths[seconds] = tmp_path / f"{seconds}s.wav"
        write_audio(paths[seconds], _binaural(seconds, 48000, seed=seconds), 48000, subtype="PCM_16")
    peak_short = _peak_bytes(listener.listen_file, paths[30])
    peak_long = _peak_bytes(listener.listen_file, paths[120])
    assert peak_long < 1.5 * peak_short, (peak_short / MB, peak_long / MB)
    assert peak_long < 64 * MB, peak_long / MB        # read_audio alone would hold 46 MB of float32


@pytest.mark.model
def test_one_batch_of_real_features_and_model_stays_within_a_few_hundred_mb(listener):
    batch = np.stack([w for w, _ in streamed_windows(ArraySignal(_binaural(9.0, 32000), 32000))])
    assert len(batch) >= listener_module.BATCH_WINDOWS
    batch = batch[:listener_module.BATCH_WINDOWS]
    peak = _peak_bytes(lambda: listener.infer_features(binaural_features(batch)))
    assert peak < 300 * MB, peak / MB


def _loudest_whole(stem: np.ndarray, length: int) -> np.ndarray:
    """The listen-back excerpt before issue 14 (a full-length float64 cumulative sum)."""
    if stem.size <= length:
        return stem
    energy = np.concatenate([[0.0], np.cumsum(stem.astype(np.float64) ** 2)])
    window = energy[length:] - energy[:-length]
    start = int(np.argmax(window[::max(1, length // 8)]) * max(1, length // 8))
    return stem[start:start + length]


@pytest.mark.parametrize("n, length", [(1000, 2000), (50_000, 9_601), (123_457, 32_000), (300_001, 7)])
def test_loudest_excerpt_equals_the_whole_signal_search(rng, monkeypatch, n, length):
    monkeypatch.setattr(listener_module, "ENERGY_BLOCK", 4099)   # many block edges
    stem = (rng.standard_normal(n) * np.linspace(0.1, 1.0, n) ** rng.uniform(-3, 3)).astype(np.float32)
    np.testing.assert_array_equal(loudest_excerpt(stem, length), _loudest_whole(stem, length))


def test_loudest_start_over_several_stems_and_channels():
    quiet = np.full(10_000, 0.01, np.float32)
    loud_late = quiet.copy()
    loud_late[7000:8000] = 1.0
    assert loudest_start([quiet, loud_late], 1000) == 7000
    assert loudest_start(np.stack([quiet, loud_late]), 1000) == 7000     # (channels, samples)
    assert loudest_start([quiet[:3000], loud_late], 1000) == 7000        # a shorter stem
    assert loudest_start([quiet], 20_000) == 0


def test_loudest_excerpt_memory_is_bounded(rng):
    short = rng.standard_normal(48000 * 30).astype(np.float32)
    long = rng.standard_normal(48000 * 120).astype(np.float32)          # 2 minutes, 23 MB
    peak_short = _peak_bytes(loudest_excerpt, short, 3 * 48000)
    peak_long = _peak_bytes(loudest_excerpt, long, 3 * 48000)
    assert peak_long < 1.5 * peak_short, (peak_short / MB, peak_long / MB)
    assert peak_long < long.nbytes / 2, peak_long / MB


# ---- the long-input callers listen to a bounded excerpt --------------------------------------------

@pytest.mark.model
def test_listen_back_renders_only_the_excerpt(listener, monkeypatch):
    import stase.dsp.offline
    from stase.core.plan import Plan, SourcePlacement
    rendered = []
    real = stase.dsp.offline.render_plan

    def recording(stems, plan, rate, **kw):
        rendered.extend(len(a) for a in stems.values())
        return real(stems, plan, rate, **kw)

    monkeypatch.setattr(stase.dsp.offline, "render_plan", recording)
    rng = np.random.default_rng(2)
    stems = {"Flute": (rng.standard_normal(60 * SAMPLE_RATE) * 0.1).astype(np.float32)}
    plan = Plan(room="dry_studio", sources=[SourcePlacement("Flute", azimuth_deg=70.0, distance_m=1.5)])
    report = listener.listen_back(stems, plan, SAMPLE_RATE)
    assert rendered == [3 * SAMPLE_RATE]
    assert report["tracks"][0]["perceived"]["azimuth_deg"] > 0


@pytest.mark.model
def test_answer_listens_to_a_bounded_excerpt_of_each_signal(listener, monkeypatch):
    heard = []
    real = listener.listen

    def recording(audio, rate):
        heard.append(audio.shape[1])
        return real(audio, rate)

    monkeypatch.setattr(listener, "listen", recording)
    long_left, long_right = _binaural(40.0, 32000, seed=1), _binaural(40.0, 32000, seed=2)[::-1]
    sources = {"Vocal": long_left, "Bass": np.ascontiguousarray(long_right)}
    reply = listener.answer("Is the vocal left of the bass?", long_left + long_right, sources, 32000, seconds=4)
    assert heard == [4 * 32000, 4 * 32000]
    assert reply["value"] is True
    heard.clear()
    listener.answer("what is playing?", long_left, sample_rate=32000, seconds=4)
    assert heard == [4 * 32000]
    with pytest.raises(InputError, match="seconds"):
        listener.answer("where is it?", long_left, sample_rate=32000, seconds=0)


@pytest.mark.model
def test_answer_plan_renders_only_what_the_question_needs(listener, monkeypatch):
    import stase.dsp.offline
    from stase.core.plan import Plan, SourcePlacement
    renders = []
    real = stase.dsp.offline.render_plan

    def recording(stems, plan, rate, **kw):
        renders.append(({s.track for s in plan.sources}, {len(a) for a in stems.values()}))
        return real(stems, plan, rate, **kw)

    monkeypatch.setattr(stase.dsp.offline, "render_plan", recording)
    rng = np.random.default_rng(4)
    stems = {name: (rng.standard_normal(60 * SAMPLE_RATE) * 0.1).astype(np.float32)
             for name in ("Flute", "Bass", "Keys")}
    plan = Plan(room="dry_studio", sources=[SourcePlacement("Flute", azimuth_deg=75.0, distance_m=1.5),
                                            SourcePlacement("Bass", azimuth_deg=-75.0, distance_m=1.5),
                                            SourcePlacement("Keys", azimuth_deg=0.0, distance_m=2.0)])
    reply = listener.answer_plan("Is the flute left of the bass?", stems, plan, SAMPLE_RATE, seconds=3)
    assert reply["value"] is True
    assert renders == [({"Flute"}, {3 * SAMPLE_RATE}), ({"Bass"}, {3 * SAMPLE_RATE})]   # no Keys, no mix
    renders.clear()
    assert listener.answer_plan("what is playing?", stems, plan, SAMPLE_RATE, seconds=3)["type"] == "detection"
    assert renders == [({"Flute", "Bass", "Keys"}, {3 * SAMPLE_RATE})]


# ---- files and the CLI: a message and exit 2, never a traceback ----------------------------------

def test_file_signal_refuses_what_the_listener_cannot_use(tmp_path):
    with pytest.raises(InputError, match="not found"):
        FileSignal(tmp_path / "missing.wav")
    write_audio(tmp_path / "mono.wav", np.zeros(8000, np.float32), 32000)
    with pytest.raises(InputError, match="binaural"):
        FileSignal(tmp_path / "mono.wav")
    (tmp_path / "text.wav").write_text("not audio")
    with pytest.raises(InputError, match="cannot read"):
        FileSignal(tmp_path / "text.wav")
    write_audio(tmp_path / "tiny.wav", np.zeros((2, 100), np.float32), 32000)
    with pytest.raises(InputError, match="too short"):
        FileSignal(tmp_path / "tiny.wav")
    write_audio(tmp_path / "cut.wav", _binaural(2.0, 32000), 32000, subtype="PCM_16")
    whole = (tmp_path / "cut.wav").read_bytes()
    (tmp_path / "cut.wav").write_bytes(whole[:len(whole) // 2])           # a copy cut off half way
    with pytest.raises(InputError, match="truncated"):
        FileSignal(tmp_path / "cut.wav")
    (tmp_path / "folder.wav").mkdir()
    with pytest.raises(InputError, match="not a regular file"):
        FileSignal(tmp_path / "folder.wav")
    os.mkfifo(tmp_path / "fifo.wav")
    with pytest.raises(InputError, match="not a regular file"):          # and it does not block
        FileSignal(tmp_path / "fifo.wav")


@pytest.mark.model
def test_listen_file_refuses_nan_samples(listener, tmp_path):
    import soundfile as sf
    audio = _binaural(3.0, 32000)
    audio[1, 70_000] = np.nan
    sf.write(str(tmp_path / "nan.wav"), audio.T, 32000, subtype="FLOAT")   # write_audio would refuse it
    with pytest.raises(InputError, match="NaN"):
        listener.listen_file(tmp_path / "nan.wav")


@pytest.mark.parametrize("content", [b"this is not a model\n", bytes(range(256)) * 40, b""])
def test_cli_model_that_is_not_onnx_is_a_usage_error(tmp_path, capsys, content):
    from stase.cli import main
    clip = tmp_path / "clip.wav"
    write_audio(clip, _binaural(1.0, 32000), 32000)
    model = tmp_path / "model.onnx"
    model.write_bytes(content)
    assert main(["listen", str(clip), "--model", str(model)]) == 2
    err = capsys.readouterr().err
    assert "not an ONNX model" in err and str(model) in err and "Traceback" not in err


def test_an_onnx_model_that_is_not_the_listeners_is_a_usage_error(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "identity",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path = tmp_path / "identity.onnx"
    onnx.save(model, str(path))
    with pytest.raises(InputError, match="not the listener's"):
        Listener(path, providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("threads", ["-1", "0"])
def test_cli_threads_below_one_is_a_usage_error(tmp_path, capsys, threads):
    from stase.cli import main
    clip = tmp_path / "clip.wav"
    write_audio(clip, _binaural(1.0, 32000), 32000)
    assert main(["listen", str(clip), "--threads", threads]) == 2
    assert "--threads" in capsys.readouterr().err


@pytest.mark.parametrize("threads", [-1, 0, 1.5, True, "2"])
def test_listener_refuses_bad_thread_counts(threads):
    with pytest.raises(InputError, match="threads"):
        Listener(providers=["CPUExecutionProvider"], threads=threads)
