"""Export a Spatial-AST checkpoint to ONNX and check it against torch.

    python -m stase.onnx_models.spatial_ast.export --checkpoint .cache/spatial_ast/ckpt.pt \
        --out onnx_models/spatial_ast.onnx

The graph starts at the feature map (``stase.agent.features.binaural_features``): input ``features``
float32 ``(batch, 4, 101, 128)`` with a dynamic batch; outputs ``class_logits (batch, 24)``,
``distance_logits (batch, 21)``, ``azimuth_logits (batch, 360)``, ``elevation_logits (batch, 180)``.
Model metadata carries the roles, bins and training history.  Prints the max abs difference
between onnxruntime and torch on a few random batches (also returned by :func:`export`).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from stase.agent.features import CLIP_FRAMES

from stase.agent.listener_labels import ROLES
from stase.onnx_models.spatial_ast.model import build_model

OUTPUT_NAMES = ["class_logits", "distance_logits", "azimuth_logits", "elevation_logits"]


class _FeatureGraph(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, features):
        return self.model.forward_features(features)


def load_checkpoint(path) -> tuple[torch.nn.Module, dict]:
    state = torch.load(path, map_location="cpu", weights_only=False)
    model = build_model(state["config"])
    model.load_state_dict(state["model"])
    model.eval()
    return model, state


def export(checkpoint, out, opset: int = 17) -> dict:
    """Write the ONNX file; return ``{"max_abs_diff", "bytes", "config"}``."""
    model, state = load_checkpoint(checkpoint)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    example = torch.randn(2, 4, CLIP_FRAMES, 128)
    kwargs = dict(input_names=["features"], output_names=OUTPUT_NAMES, opset_version=opset,
                  dynamic_axes={"features": {0: "batch"}, **{n: {0: "batch"} for n in OUTPUT_NAMES}})
    tmp = out.with_suffix(".tmp.onnx")
    graph = _FeatureGraph(model).eval()
    try:
        torch.onnx.export(graph, (example,), str(tmp), dynamo=False, **kwargs)
    except TypeError:   # older torch without the ``dynamo`` switch
        torch.onnx.export(graph, (example,), str(tmp), **kwargs)
    import onnx
    proto = onnx.load(str(tmp))
    history = state.get("history", [])
    meta = {"roles": json.dumps(list(ROLES)), "config": json.dumps(state["config"]),
            "step": str(state.get("step", 0)), "history_tail": json.dumps(history[-3:]),
            "bins": "azimuth i deg (positive=left), elevation j-90 deg, distance 0.5 k m",
            "reference": "Zheng et al., BAT / Spatial-AST, ICML 2024"}
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(proto)
    onnx.save(proto, str(out))
    tmp.unlink(missing_ok=True)
    diff = parity(model, out)
    return {"max_abs_diff": diff, "bytes": out.stat().st_size, "config": state["config"]}


def parity(model, onnx_path, batches=(1, 3, 8), seed: int = 0) -> float:
    """Max abs difference of all logits, onnxruntime vs torch, on features of random binaural noise
    (interaural delays of up to +-20 samples and level differences of up to +-10 dB)."""
    import onnxruntime as ort
    from stase.agent.features import CLIP_SAMPLES, binaural_features
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    model.eval()
    rng = np.random.default_rng(seed)
    worst = 0.0
    for b in batches:
        mono = rng.standard_normal((b, CLIP_SAMPLES)) * 0.05
        right = np.stack([np.roll(m, int(rng.integers(-20, 21))) * 10 ** (rng.uniform(-10, 10) / 20) for m in mono])
        x = binaural_features(np.stack([mono, right], axis=1))
        ort_out = session.run(None, {"features": x})
        with torch.no_grad():
            torch_out = model.forward_features(torch.from_numpy(x))
        for a, t in zip(ort_out, torch_out):
            worst = max(worst, float(np.max(np.abs(a - t.numpy()))))
    return worst


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="export Spatial-AST to ONNX")
    p.add_argument("--checkpoint", default=".cache/spatial_ast/ckpt.pt")
    p.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "spatial_ast.onnx"))
    p.add_argument("--opset", type=int, default=17)
    a = p.parse_args(argv)
    result = export(a.checkpoint, a.out, a.opset)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
