"""Spatial-AST model side: front-end parity (NumPy vs torch), mel bank, ONNX parity, train/resume."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from stase.agent.features import (CLIP_FRAMES, HOP, N_FFT, SAMPLE_RATE, binaural_features, hann_periodic,
                            mel_matrix, stft)
from stase.agent import listener_labels as labels


def _binaural_noise(rng, n, delay=3, gain_db=-4.0):
    left = rng.standard_normal(n) * 0.1
    right = np.roll(left, delay) * 10 ** (gain_db / 20) + 0.003 * rng.standard_normal(n)
    return np.stack([left, right])


@pytest.mark.parametrize("n", [16000, 32000, 24001, 9999])
def test_numpy_front_end_matches_torch_front_end(rng, n):
    from stase.onnx_models.spatial_ast.model import BinauralFrontEnd
    x = _binaural_noise(rng, n)
    ours = binaural_features(x)
    theirs = BinauralFrontEnd()(torch.tensor(x[None], dtype=torch.float64))[0].numpy()
    assert ours.shape == (4, 1 + n // HOP, 128)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-4)
    # float32 torch (what training runs) stays close too
    theirs32 = BinauralFrontEnd()(torch.tensor(x[None], dtype=torch.float32))[0].numpy()
    np.testing.assert_allclose(ours, theirs32, rtol=0, atol=1e-3)


def test_stft_matches_scipy_reference(rng):
    from scipy.signal import stft as scipy_stft
    x = rng.standard_normal(5000)
    ours = stft(x)
    # scipy with the same periodic Hann, no scaling, reflect-padded input
    padded = np.pad(x, N_FFT // 2, mode="reflect")
    _, _, ref = scipy_stft(padded, nperseg=N_FFT, noverlap=N_FFT - HOP, window=hann_periodic(), boundary=None,
                           padded=False, scaling="spectrum")
    ref = ref.T * hann_periodic().sum()
    np.testing.assert_allclose(ours, ref[: ours.shape[0]], rtol=1e-9, atol=1e-9)


def test_mel_filters_have_unit_area_in_hz():
    mel = mel_matrix()
    assert mel.shape == (N_FFT // 2 + 1, 128)
    bin_hz = SAMPLE_RATE / N_FFT
    areas = mel.sum(axis=0) * bin_hz
    widths = (mel > 0).sum(axis=0)
    wide = widths >= 12   # discrete sums approximate the continuous triangle once it spans many bins
    np.testing.assert_allclose(areas[wide], 1.0, rtol=0.05)
    # the band edges follow fmin / fmax: nothing below 50 Hz, nothing above 14 kHz
    freqs = np.arange(mel.shape[0]) * bin_hz
    assert mel[freqs < 50].sum() == 0 and mel[freqs > 14000].sum() == 0


def test_ipd_channels_follow_a_pure_delay(rng):
    # Right = left delayed by d samples: IPD(f) = -2 pi f d / fs, so cos/sin IPD per bin are known.
    d = 2
    left = rng.standard_normal(SAMPLE_RATE) * 0.1
    right = np.roll(left, d)
    feats = binaural_features(np.stack([left, right]))
    f = np.arange(N_FFT // 2 + 1) * SAMPLE_RATE / N_FFT
    mel = mel_matrix()
    expected_cos = np.cos(2 * np.pi * f * d / SAMPLE_RATE) @ mel
    expected_sin = -np.sin(2 * np.pi * f * d / SAMPLE_RATE) @ mel
    mid = slice(5, CLIP_FRAMES - 5)
    np.testing.assert_allclose(feats[2, mid].mean(axis=0), expected_cos, atol=0.02)
    np.testing.assert_allclose(feats[3, mid].mean(axis=0), expected_sin, atol=0.02)


def test_label_bins_round_trip():
    az = np.array([0.0, 1.0, 90.0, -90.0, 179.0, 180.0, -179.0, -1.0])
    np.testing.assert_allclose(labels.bin_to_azimuth(labels.azimuth_to_bin(az)), az)
    np.testing.assert_array_equal(labels.elevation_to_bin([-90, 0, 89, 90]), [0, 90, 179, 179])
    np.testing.assert_array_equal(labels.distance_to_bin([0.5, 2.24, 10.0, 12.0]), [1, 4, 20, 20])


def test_decode_direction_is_exact_on_one_hot():
    az_p = np.zeros((1, 360)); az_p[0, 270] = 1.0
    el_p = np.zeros((1, 180)); el_p[0, 120] = 1.0
    az, el, mass = labels.decode_direction(az_p, el_p)
    np.testing.assert_allclose([az[0], el[0], mass[0]], [-90.0, 30.0, 1.0])
    az, el, _ = labels.decode_direction(az_p, el_p, pool_bins=0)   # BAT's plain argmax agrees
    np.testing.assert_allclose([az[0], el[0]], [-90.0, 30.0])


def test_pooled_is_a_box_sum_with_circular_wrap(rng):
    p = rng.random((3, 360))
    pooled = labels._pooled(p, 4, circular=True)
    ref = np.stack([sum(np.roll(row, k) for k in range(-4, 5)) for row in p])
    np.testing.assert_allclose(pooled, ref, atol=1e-12)
    q = rng.random((2, 180))
    ref = np.stack([np.convolve(row, np.ones(9), mode="same") for row in q])
    np.testing.assert_allclose(labels._pooled(q, 4, circular=False), ref, atol=1e-12)


def test_decode_direction_prefers_a_broad_mode_over_a_narrow_spike():
    az_p = np.zeros((1, 360))
    az_p[0, 30] = 0.3                              # spike at 30 deg (front left)
    az_p[0, 140:161] = 0.7 / 21                    # broad mode around 150 deg (back left)
    el_p = np.zeros((1, 180)); el_p[0, 90] = 1.0
    assert labels.decode_direction(az_p, el_p, pool_bins=0)[0][0] == pytest.approx(30.0, abs=0.5)
    assert labels.decode_direction(az_p, el_p, pool_bins=20)[0][0] == pytest.approx(150.0, abs=0.5)


def _smoke_checkpoint(tmp_path, steps, resume=False):
    from stase.onnx_models.spatial_ast.train import main
    out = tmp_path / "smoke.pt"
    args = ["--smoke", "--out", str(out), "--steps", str(steps), "--save-every", "1", "--eval-every", "1000",
            "--threads", "1", "--quiet"]
    main(args + (["--resume"] if resume else []))
    return out


def test_training_smoke_checkpoints_and_resumes_exactly(tmp_path):
    straight = torch.load(_smoke_checkpoint(tmp_path / "a", 5), weights_only=False)
    _smoke_checkpoint(tmp_path / "b", 3)
    first = torch.load(tmp_path / "b" / "smoke.pt", weights_only=False)
    assert first["step"] == 3
    resumed = torch.load(_smoke_checkpoint(tmp_path / "b", 5, resume=True), weights_only=False)
    assert resumed["step"] == 5 == straight["step"]
    for name, value in straight["model"].items():
        torch.testing.assert_close(resumed["model"][name], value, rtol=0, atol=0)
    # and training changed the weights
    assert any(not torch.equal(first["model"][k], straight["model"][k]) for k in straight["model"])


def test_onnx_export_matches_torch(tmp_path):
    pytest.importorskip("onnxruntime")
    from stase.onnx_models.spatial_ast.export import export
    ckpt = _smoke_checkpoint(tmp_path, 2)
    result = export(ckpt, tmp_path / "m.onnx")
    assert result["max_abs_diff"] < 1e-4
    import onnxruntime as ort
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    for batch in (1, 5):   # dynamic batch
        outs = session.run(None, {"features": np.zeros((batch, 4, CLIP_FRAMES, 128), np.float32)})
        assert [o.shape for o in outs] == [(batch, 24), (batch, 21), (batch, 360), (batch, 180)]


def test_soft_targets_are_normalised_and_circular():
    from stase.onnx_models.spatial_ast.model import soft_targets
    t = soft_targets(torch.tensor([0, 359]), 360, 2.0, circular=True)
    torch.testing.assert_close(t.sum(dim=1), torch.ones(2))
    assert t[0, 359] == pytest.approx(t[0, 1]) and t[1, 0] == pytest.approx(t[1, 358])


def test_patchify_equals_the_strided_patch_conv():
    from stase.onnx_models.spatial_ast.model import build_model
    model = build_model(dict(embed_dim=32, depth=1, heads=2, mlp_ratio=2.0))
    x = torch.randn(3, 8, 112, 128)
    reference = model.patch_embed(x).flatten(2).transpose(1, 2)
    torch.testing.assert_close(model._patchify(x), reference, rtol=1e-5, atol=1e-5)


def test_fine_tune_init_loads_weights_and_drops_regularisation(tmp_path):
    from stase.onnx_models.spatial_ast.train import main
    base = _smoke_checkpoint(tmp_path / "a", 2)
    out = tmp_path / "ft.pt"
    assert main(["--smoke", "--quiet", "--steps", "1", "--lr", "0", "--warmup", "1", "--out", str(out),
                 "--init", str(base), "--no-regularise"]) == 0
    tuned, start = torch.load(out, weights_only=False), torch.load(base, weights_only=False)
    assert tuned["config"]["drop_path"] == 0.0 and tuned["step"] == 1
    for name, value in start["model"].items():   # lr 0: the weights are the initial ones
        if "running" not in name and "num_batches" not in name:
            torch.testing.assert_close(tuned["model"][name], value, rtol=0, atol=0)


def test_checkpoint_rebuilt_from_onnx_equals_the_exported_model(tmp_path, rng):
    pytest.importorskip("onnxruntime")
    from stase.onnx_models.spatial_ast.export import export, load_checkpoint, parity
    from stase.onnx_models.spatial_ast.from_onnx import checkpoint_from_onnx, model_from_onnx
    ckpt = _smoke_checkpoint(tmp_path, 2)
    state = torch.load(ckpt, weights_only=False)
    # Non-trivial BatchNorm statistics, so the fold of the fusion BN into its conv matters.
    bn = "fuse.1."
    state["model"][bn + "running_mean"] = torch.tensor(rng.normal(0, 2, 8), dtype=torch.float32)
    state["model"][bn + "running_var"] = torch.tensor(rng.uniform(0.2, 5, 8), dtype=torch.float32)
    state["model"][bn + "weight"] = torch.tensor(rng.uniform(0.5, 2, 8), dtype=torch.float32)
    torch.save(state, ckpt)
    export(ckpt, tmp_path / "m.onnx")
    original, _ = load_checkpoint(ckpt)
    calibration = rng.standard_normal((64, 4, CLIP_FRAMES, 128)).astype(np.float32)
    rebuilt, meta = model_from_onnx(tmp_path / "m.onnx", calibration)
    assert meta["step"] == str(state["step"])
    assert parity(rebuilt, tmp_path / "m.onnx") < 1e-4
    x = torch.from_numpy(calibration[:8])
    with torch.no_grad():
        for a, b in zip(original.forward_features(x), rebuilt.forward_features(x)):
            torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-4)
        # calibrated: train-mode BatchNorm (batch statistics) does nearly what eval mode does
        # (eval first: a train-mode pass updates the running statistics)
        fused_input = torch.cat([rebuilt.logmel_norm(x[:, :2]), x[:, 2:]], 1)
        fused_eval = rebuilt.fuse(fused_input)
        rebuilt.fuse.train()
        fused_train = rebuilt.fuse(fused_input)
    assert float((fused_train - fused_eval).abs().mean()) < 0.1 * float(fused_eval.abs().mean())
    # the written checkpoint loads like a training one and is the same function
    checkpoint_from_onnx(tmp_path / "m.onnx", tmp_path / "back.pt")
    reloaded, _ = load_checkpoint(tmp_path / "back.pt")
    with torch.no_grad():
        for a, b in zip(original.forward_features(x), reloaded.forward_features(x)):
            torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-4)


def _write_feature_folder(folder, n, seed):
    """A tiny rendered-looking folder: ``train_s1.npy`` (float16) and its labels."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    np.save(folder / "train_s1.npy", rng.standard_normal((n, 4, CLIP_FRAMES, 128)).astype(np.float16))
    labels = {"azimuth_deg": rng.uniform(-180, 180, n), "elevation_deg": rng.uniform(-40, 90, n),
              "distance_m": rng.uniform(0.5, 10, n), "classes": np.zeros((n, 24), np.float32)}
    np.savez(folder / "train_s1.labels.npz", **labels)
    (folder / "train_s1.done").write_text(str(n))
    return labels


def test_feature_sets_from_several_folders_concatenate_rows_and_labels(tmp_path):
    from stase.onnx_models.spatial_ast.train import FeatureSet, load_sets
    la = _write_feature_folder(tmp_path / "a", 5, 1)
    lb = _write_feature_folder(tmp_path / "b", 3, 2)
    both = load_sets([tmp_path / "a", tmp_path / "b", tmp_path / "missing"], "train_s1")
    assert len(both) == 8
    a, b = FeatureSet.load(tmp_path / "a", "train_s1"), FeatureSet.load(tmp_path / "b", "train_s1")
    idx = np.array([0, 4, 5, 7])                   # rows from both folders, across the seam
    np.testing.assert_array_equal(both.features[idx],
                                  np.concatenate([a.features[[0, 4]], b.features[[0, 2]]]))
    np.testing.assert_array_equal(both.labels["distance_m"][idx],
                                  np.concatenate([la["distance_m"][[0, 4]], lb["distance_m"][[0, 2]]]))
    x, targets = both.batch(np.array([7, 0]), "cpu")  # batch() sorts: row 0 first, then row 7
    torch.testing.assert_close(x[1], torch.from_numpy(b.features[2].astype(np.float32)))
    with pytest.raises(FileNotFoundError):
        load_sets([tmp_path / "missing"], "train_s1")


def test_goal_score_is_the_worst_ratio_to_the_goals():
    from stase.onnx_models.spatial_ast.train import goal_score
    met = {"mae_deg": 5.0, "er20": 0.075, "front_back": 0.025, "der": 0.125}
    assert goal_score(met) == pytest.approx(0.5)
    assert goal_score({**met, "front_back": 0.06}) == pytest.approx(1.2)


def test_select_goals_keeps_the_checkpoint_with_the_lowest_goal_score(tmp_path):
    from stase.onnx_models.spatial_ast.train import goal_score, main
    out = tmp_path / "sel.pt"
    assert main(["--smoke", "--quiet", "--steps", "4", "--save-every", "1", "--eval-every", "1",
                 "--threads", "1", "--select", "goals", "--out", str(out)]) == 0
    history = torch.load(out, weights_only=False)["history"]
    assert len(history) == 4 and all("der_m" in r for r in history)
    best = torch.load(tmp_path / "sel_best.pt", weights_only=False)
    scores = [goal_score(r) for r in history]
    assert best["step"] == history[scores.index(min(scores))]["step"]
