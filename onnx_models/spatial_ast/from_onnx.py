"""Rebuild a trainable torch checkpoint from an exported Spatial-AST ONNX file.

    python -m stase.onnx_models.spatial_ast.from_onnx onnx_models/spatial_ast.onnx \
        --out .cache/spatial_ast/shipped.pt --calibrate .cache/spatial_ast/more/train_s1.npy

Training checkpoints are not committed (only the ``.onnx`` is shipped), so fine-tuning the shipped
model starts here: the exporter keeps most parameters under their torch names, stores every
``nn.Linear`` weight transposed under an anonymous ``onnx::MatMul_*`` name (found through the
``Add`` that consumes the layer's named bias; the patch embedding too, as a ``(128, 8*16*16)``
matmul since the model patchifies by reshape) and folds the fusion conv's BatchNorm into the conv
(``W' = W g / sqrt(v + eps)``, ``b' = beta - m g / sqrt(v + eps)``).  The fold cannot be undone,
so the BatchNorm is rebuilt to output ``W' z + b'`` in eval mode *exactly* (running mean
``mu``, running variance ``s^2``, weight ``sqrt(s^2 + eps)``, bias ``mu + b'``); with ``mu`` and
``s^2`` measured on training features (``--calibrate``) it does nearly the same in train
mode, where the BatchNorm uses batch statistics - so fine-tuning starts from the shipped function.
The result loads with ``--init`` in :mod:`stase.onnx_models.spatial_ast.train`.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from stase.onnx_models.spatial_ast.model import build_model

PREFIX = "model."   # export wraps the model in a module whose attribute is ``model``


def _onnx_parts(path):
    import onnx
    from onnx import numpy_helper
    proto = onnx.load(str(path))
    init = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
    producer = {out: node for node in proto.graph.node for out in node.output}
    meta = {p.key: p.value for p in proto.metadata_props}
    return proto, init, producer, meta


def _linear_weight(bias_name: str, proto, init, producer) -> np.ndarray:
    """The (out, in) weight of the Linear whose bias initializer is ``bias_name``."""
    for node in proto.graph.node:
        if node.op_type == "Add" and bias_name in node.input:
            other = next(i for i in node.input if i != bias_name)
            matmul = producer.get(other)
            if matmul is not None and matmul.op_type == "MatMul" and matmul.input[1] in init:
                return init[matmul.input[1]].T
        if node.op_type == "Gemm" and bias_name in node.input and node.input[1] in init:
            transposed = any(a.name == "transB" and a.i == 1 for a in node.attribute)
            weight = init[node.input[1]]
            return weight if transposed else weight.T
    raise ValueError(f"no MatMul + Add (or Gemm) for {bias_name} in the ONNX graph")


def fused_conv_statistics(model, features, batch: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and variance of the fusion conv's output (before its BatchNorm) over
    ``features`` ``(n, 4, frames, 128)``, with the log-mel BatchNorm in eval mode."""
    total, total_sq, count = 0.0, 0.0, 0
    conv = model.fuse[0]
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for start in range(0, len(features), batch):
            x = torch.from_numpy(np.asarray(features[start:start + batch], dtype=np.float32))
            z = torch.cat([model.logmel_norm(x[:, :2]), x[:, 2:]], dim=1)
            y = conv(z).double()
            total = total + y.sum(dim=(0, 2, 3))
            total_sq = total_sq + (y ** 2).sum(dim=(0, 2, 3))
            count += y.shape[0] * y.shape[2] * y.shape[3]
    model.train(was_training)
    mean = (total / count).numpy()
    var = np.maximum((total_sq / count).numpy() - mean ** 2, 0.0)
    return mean, var


def model_from_onnx(path, calibration=None):
    """A :class:`SpatialAST` (eval mode) equal to the ONNX graph; returns ``(model, metadata)``.

    ``calibration``: optional features ``(n, 4, frames, 128)`` on which to measure the fusion
    conv's output statistics (see the module docstring); without them the rebuilt BatchNorm has
    mean 0, variance 1 (still exact in eval mode).
    """
    proto, init, producer, meta = _onnx_parts(path)
    if "config" not in meta:
        raise ValueError(f"{path}: no 'config' metadata; not a stase Spatial-AST export")
    config = json.loads(meta["config"])
    model = build_model(config)
    state = model.state_dict()
    new_state = {}
    for name in state:
        key = PREFIX + name
        if key in init:
            new_state[name] = torch.from_numpy(init[key].copy())
            continue
        bias = PREFIX + name[: -len("weight")] + "bias"
        if name.endswith(".weight") and bias in init and not name.startswith("fuse."):
            new_state[name] = torch.from_numpy(np.ascontiguousarray(_linear_weight(bias, proto, init, producer)))
    conv_nodes = [n for n in proto.graph.node if n.op_type == "Conv" and n.input[1] != PREFIX + "patch_embed.weight"]
    if len(conv_nodes) != 1:
        raise ValueError(f"expected one fused conv in the graph, found {len(conv_nodes)}")
    fused_weight = init[conv_nodes[0].input[1]]
    fused_bias = init[conv_nodes[0].input[2]] if len(conv_nodes[0].input) > 2 else np.zeros(fused_weight.shape[0])
    new_state["fuse.0.weight"] = torch.from_numpy(fused_weight.copy())
    missing = [k for k in state if k not in new_state and not k.startswith("fuse.1.")
               and not k.endswith("num_batches_tracked")]
    if missing:
        raise ValueError(f"could not find these parameters in the ONNX graph: {missing}")
    for key, value in new_state.items():
        if key == "patch_embed.weight" and value.ndim == 2 and value.numel() == state[key].numel():
            value = value.reshape(state[key].shape)   # exported as _patchify's (out, c*16*16) matmul
        if tuple(value.shape) != tuple(state[key].shape):
            raise ValueError(f"{key}: ONNX shape {tuple(value.shape)} != model shape {tuple(state[key].shape)}")
        state[key] = value.to(state[key].dtype)
    model.load_state_dict(state)
    bn = model.fuse[1]
    if calibration is not None and len(calibration):
        mean, var = fused_conv_statistics(model, calibration)
    else:
        mean, var = np.zeros(fused_weight.shape[0]), np.full(fused_weight.shape[0], 1.0)
    with torch.no_grad():
        bn.running_mean.copy_(torch.from_numpy(mean))
        bn.running_var.copy_(torch.from_numpy(var))
        bn.weight.copy_(torch.from_numpy(np.sqrt(var + bn.eps)))
        bn.bias.copy_(torch.from_numpy(mean + fused_bias))
    model.eval()
    return model, meta


def checkpoint_from_onnx(path, out, calibration=None) -> dict:
    """Write a checkpoint that ``train.py --init`` (and ``export.py``) load; returns a summary."""
    model, meta = model_from_onnx(path, calibration)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    step = int(meta.get("step", 0))
    history = json.loads(meta.get("history_tail", "[]"))
    torch.save({"model": model.state_dict(), "config": model.config, "step": step, "history": history,
                "from_onnx": str(path)}, out)
    return {"out": str(out), "step": step, "config": model.config,
            "calibrated_on": 0 if calibration is None else int(len(calibration))}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="rebuild a torch checkpoint from a Spatial-AST ONNX export")
    p.add_argument("onnx")
    p.add_argument("--out", required=True)
    p.add_argument("--calibrate", default="", help="features .npy (n, 4, frames, 128) for the BatchNorm statistics")
    p.add_argument("--calibrate-n", type=int, default=4000)
    a = p.parse_args(argv)
    calibration = np.load(a.calibrate, mmap_mode="r")[: a.calibrate_n] if a.calibrate else None
    print(json.dumps(checkpoint_from_onnx(a.onnx, a.out, calibration)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
