"""Train the Spatial-AST listener (torch; the ``train`` extra, not needed at run time).

    python -m stase.onnx_models.spatial_ast.train --data .cache/spatial_ast --out .cache/spatial_ast/ckpt.pt \
        --stage1-steps 1100 --stage2-steps 2100 --batch 32 --threads 1
    python -m stase.onnx_models.spatial_ast.train --smoke --out /tmp/smoke.pt --steps 4   # CI, seconds

Features come pre-rendered from :mod:`stase.onnx_models.spatial_ast.data` (``train_s1.npy`` for BAT's
single-source perception stage, ``train_s2.npy`` for the mixture stage); the model learns from
the feature map (the front end has no parameters, and ``stase.agent.features`` reproduces it).

Checkpoints (``--out``) hold the model, optimiser, step, config and both random states, written
atomically every ``--save-every`` steps; ``--resume`` continues exactly where one stopped (a run
of 3 + 2 steps equals a run of 5).  Uses CUDA when available, else the CPU with ``--threads``.
"""
from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import torch

from stase.core.audio_io import atomic_path
from stase.agent.listener_labels import ROLES, azimuth_to_bin, distance_to_bin, elevation_to_bin
from stase.onnx_models.spatial_ast.model import build_model, spatial_ast_loss

DEFAULT_CONFIG = dict(embed_dim=128, depth=4, heads=4, mlp_ratio=4.0)
SMOKE_CONFIG = dict(embed_dim=32, depth=1, heads=2, mlp_ratio=2.0)


class FeatureSet:
    """Pre-rendered features (memory-mapped float16) and their labels."""

    def __init__(self, features: np.ndarray, labels: dict):
        self.features = features
        self.labels = labels

    @classmethod
    def load(cls, folder: Path, name: str) -> "FeatureSet":
        done_path = folder / f"{name}.done"
        n = int(done_path.read_text()) if done_path.exists() else None
        feats = np.load(folder / f"{name}.npy", mmap_mode="r")
        _random_access(feats)
        lab = dict(np.load(folder / f"{name}.labels.npz"))
        n = n or feats.shape[0]
        return cls(feats[:n], {k: v[:n] for k, v in lab.items()})

    @classmethod
    def synthetic(cls, n: int, frames: int, seed: int) -> "FeatureSet":
        """Random features and labels (for the CI smoke run; nothing to learn, shapes only)."""
        rng = np.random.default_rng(seed)
        feats = rng.standard_normal((n, 4, frames, 128)).astype(np.float16)
        labels = {"azimuth_deg": rng.uniform(-180, 180, n), "elevation_deg": rng.uniform(-40, 90, n),
                  "distance_m": rng.uniform(0.5, 10, n),
                  "classes": (rng.random((n, len(ROLES))) < 0.1).astype(np.float32)}
        return cls(feats, labels)

    def __len__(self) -> int:
        return int(self.features.shape[0])

    @classmethod
    def concat(cls, sets: list) -> "FeatureSet":
        """One set over several (e.g. folders rendered from disjoint index ranges)."""
        return sets[0] if len(sets) == 1 else cls(_Stacked([s.features for s in sets]),
                                                  {k: np.concatenate([s.labels[k] for s in sets])
                                                   for k in sets[0].labels})

    def batch(self, idx: np.ndarray, device) -> tuple[torch.Tensor, dict]:
        idx = np.sort(idx)
        x = torch.from_numpy(np.asarray(self.features[idx], dtype=np.float32)).to(device)
        lab = self.labels
        targets = {"classes": torch.from_numpy(lab["classes"][idx].astype(np.float32)).to(device),
                   "azimuth_bin": torch.from_numpy(azimuth_to_bin(lab["azimuth_deg"][idx])).to(device),
                   "elevation_bin": torch.from_numpy(elevation_to_bin(lab["elevation_deg"][idx])).to(device),
                   "distance_bin": torch.from_numpy(distance_to_bin(lab["distance_m"][idx])).to(device)}
        return x, targets


def _random_access(array) -> None:
    """Tell the kernel a memory map is read at random rows: no read-ahead around each one.

    Batches draw rows at random from sets larger than memory; the default read-around fetched
    ~10x the rows asked for (270 MB/s of disk reads for ~25 MB/s of batches).
    """
    import mmap
    handle = getattr(array, "_mmap", None)
    if handle is not None and hasattr(handle, "madvise") and hasattr(mmap, "MADV_RANDOM"):
        handle.madvise(mmap.MADV_RANDOM)


class _Stacked:
    """Row access ``rows[idx]`` (sorted integer index) across several memory-mapped arrays."""

    def __init__(self, arrays: list):
        self.arrays = arrays
        self.offsets = np.cumsum([0] + [a.shape[0] for a in arrays])
        self.shape = (int(self.offsets[-1]),) + tuple(arrays[0].shape[1:])

    def __getitem__(self, idx):
        idx = np.asarray(idx)
        part = np.searchsorted(self.offsets, idx, side="right") - 1
        return np.concatenate([np.asarray(self.arrays[k][idx[part == k] - self.offsets[k]])
                               for k in np.unique(part)])


def load_sets(folders: list, name: str) -> FeatureSet:
    """``name`` from every folder that has it, concatenated in the order given."""
    # A set still being rendered has its labels (and .done count) from its first 500 rows on.
    found = [FeatureSet.load(f, name) for f in folders if (f / f"{name}.labels.npz").exists()]
    found = [s for s in found if len(s)]
    if not found:
        raise FileNotFoundError(f"no rendered {name} rows in {', '.join(map(str, folders))}")
    return FeatureSet.concat(found)


#: Single-source goals of issue 8 (MAE deg, ER20, front-back, DER in BAT's binned form) for ``--select goals``.
GOALS = {"mae_deg": 10.0, "er20": 0.15, "front_back": 0.05, "der": 0.25}


def goal_score(record: dict) -> float:
    """The worst ratio of a validation record to its goal (below 1: every goal met)."""
    return max(record[k] / v for k, v in GOALS.items())


def learning_rate(step: int, total: int, peak: float, warmup: int) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * (0.02 + 0.98 * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0))))


def save_checkpoint(path: Path, model, optimizer, step: int, batch_rng, extra: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step,
             "config": model.config, "batch_rng": batch_rng.bit_generator.state,
             "torch_rng": torch.get_rng_state(), **extra}
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


@torch.no_grad()
def quick_eval(model, data: FeatureSet, device, batch: int = 64) -> dict:
    """Great-circle MAE / ER20 (deg) and DER on ``data`` with argmax decoding (as BAT's eval).

    ``der`` is BAT's binned form (argmax bin more than one bin from the true one); ``der_m`` the
    metric form the bench reports: |distance - truth| > 0.5 m with the listener's decoding.
    """
    from stase.core.conventions import great_circle_deg
    from stase.agent.listener_labels import bin_to_azimuth, decode_distance
    model.eval()
    az, el, dist, metres = [], [], [], []
    for start in range(0, len(data), batch):
        x, _ = data.batch(np.arange(start, min(start + batch, len(data))), device)
        _, d_logits, a_logits, e_logits = model.forward_features(x)
        az.append(a_logits.argmax(1).cpu().numpy())
        el.append(e_logits.argmax(1).cpu().numpy())
        dist.append(d_logits.argmax(1).cpu().numpy())
        metres.append(decode_distance(torch.softmax(d_logits, 1).cpu().numpy()))
    model.train()
    az_deg = bin_to_azimuth(np.concatenate(az))
    el_deg = np.concatenate(el) - 90.0
    err = great_circle_deg(az_deg, el_deg, data.labels["azimuth_deg"], data.labels["elevation_deg"])
    dist_err = np.abs(np.concatenate(dist) - distance_to_bin(data.labels["distance_m"]))
    true_az = np.asarray(data.labels["azimuth_deg"])
    off_axis = np.abs(np.abs(true_az) - 90.0) > 10.0
    flipped = (np.cos(np.radians(az_deg)) >= 0) != (np.cos(np.radians(true_az)) >= 0)
    der_m = float(np.mean(np.abs(np.concatenate(metres) - data.labels["distance_m"]) > 0.5))
    return {"mae_deg": float(np.mean(err)), "er20": float(np.mean(err > 20)), "der": float(np.mean(dist_err > 1)),
            "der_m": der_m,
            "front_back": float(np.mean(flipped[off_axis])) if off_axis.any() else 0.0}


def train(args) -> dict:
    torch.set_num_threads(max(1, args.threads))
    device = torch.device("cuda" if torch.cuda.is_available() and not args.cpu else "cpu")
    out = Path(args.out)
    if args.smoke:
        stage1 = FeatureSet.synthetic(24, 101, seed=1)
        stage2, valid = stage1, FeatureSet.synthetic(8, 101, seed=2)
        config = dict(SMOKE_CONFIG)
    else:
        folders = [Path(f) for f in args.data]
        folder = folders[0]
        stage1 = load_sets(folders, "train_s1")
        has_s2 = any((f / "train_s2.done").exists() for f in folders)
        stage2 = load_sets(folders, "train_s2") if has_s2 else stage1
        # Validate on single sources (where the goals are set): a train-seed validation split when
        # rendered (data.write_dataset(..., name="valid_s1")), else the held-out test clips.
        # Several --valid folders (one head each) are concatenated, as the training sets are.
        valid_dirs = [Path(v) for v in args.valid] if args.valid else [folder]
        valid_name = next((n for n in ("valid_s1", "test_s1", "test_s2")
                           if all((d / f"{n}.npy").exists() for d in valid_dirs)), None)
        valid = load_sets(valid_dirs, valid_name) if valid_name else None
        config = dict(DEFAULT_CONFIG)
    total = args.steps if args.steps else args.stage1_steps + args.stage2_steps
    stage1_steps = min(args.stage1_steps, total) if not args.steps else total // 2

    torch.manual_seed(args.seed)
    batch_rng = np.random.default_rng(args.seed)
    step = 0
    resume_state = None
    if args.resume and out.exists():
        resume_state = torch.load(out, map_location="cpu", weights_only=False)
        config = resume_state["config"]
    if args.init and resume_state is None:
        # Fine-tune: weights from an earlier run, a fresh optimiser and schedule.
        init_state = torch.load(args.init, map_location="cpu", weights_only=False)
        config = dict(init_state["config"])
    if args.no_regularise:
        # Train and test error agree on our data (under-fitting), so drop-path only slows learning.
        config["drop_path"] = 0.0
    model = build_model(config).to(device)
    if args.no_regularise:
        model.spec_augment = False
    if args.init and resume_state is None:
        model.load_state_dict(init_state["model"])
        print(f"initialised from {args.init} (step {init_state['step']})")
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    if resume_state is not None:
        model.load_state_dict(resume_state["model"])
        optimizer.load_state_dict(resume_state["optimizer"])
        step = int(resume_state["step"])
        batch_rng.bit_generator.state = resume_state["batch_rng"]
        torch.set_rng_state(resume_state["torch_rng"])
        print(f"resumed from {out} at step {step}")

    from tqdm import tqdm
    bar = tqdm(total=total, initial=step, desc="spatial-ast", disable=args.quiet)
    history = list(resume_state.get("history", [])) if resume_state is not None else []
    started = time.time()
    score = goal_score if args.select == "goals" else (lambda record: record["mae_deg"])
    model.train()
    while step < total:
        if not args.smoke and step % 200 == 0:
            # The generator may still be writing the sets: pick up the rows finished since.
            stage1 = load_sets(folders, "train_s1")
            if has_s2:
                stage2 = load_sets(folders, "train_s2")
        data = stage1 if step < stage1_steps or len(stage2) < 500 else stage2
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, total, args.lr, args.warmup)
        x, targets = data.batch(batch_rng.choice(len(data), size=min(args.batch, len(data)), replace=False), device)
        loss, parts = spatial_ast_loss(model.forward_features(x), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        step += 1
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.3f}", az=f"{parts['azimuth']:.2f}", cls=f"{parts['class']:.3f}")
        if step % args.save_every == 0 or step == total:
            record = {"step": step, "loss": loss.item(), **parts, "elapsed_s": time.time() - started}
            if valid is not None and (step % args.eval_every == 0 or step == total):
                record.update(quick_eval(model, valid, device))
                bar.write(f"step {step}: {record}")
                best = min((score(r) for r in history if "mae_deg" in r), default=float("inf"))
                if score(record) < best:   # keep the best-so-far weights beside the last ones
                    save_checkpoint(out.with_name(out.stem + "_best" + out.suffix), model, optimizer, step,
                                    batch_rng, {"history": history + [record]})
            history.append(record)
            save_checkpoint(out, model, optimizer, step, batch_rng, {"history": history})
    bar.close()
    return {"step": step, "history": history, "out": str(out)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", nargs="+", default=[".cache/spatial_ast"],
                   help="folder(s) written by stase.onnx_models.spatial_ast.data; their train sets are concatenated")
    p.add_argument("--valid", nargs="+", default=None,
                   help="folder(s) holding valid_s1, concatenated (default: the first --data folder)")
    p.add_argument("--select", choices=["mae", "goals"], default="mae",
                   help="what the _best checkpoint minimises: validation MAE, or the worst ratio to issue 8's goals")
    p.add_argument("--out", default=".cache/spatial_ast/ckpt.pt", help="checkpoint path")
    p.add_argument("--stage1-steps", type=int, default=1100, help="single-source (perception) steps")
    p.add_argument("--stage2-steps", type=int, default=2100, help="mixture-stage steps")
    p.add_argument("--steps", type=int, default=0, help="total steps (overrides the two stages; half each)")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--warmup", type=int, default=150)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save-every", type=int, default=100)
    p.add_argument("--eval-every", type=int, default=500)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--init", default="", help="start from this checkpoint's weights (new optimiser and schedule)")
    p.add_argument("--no-regularise", action="store_true", help="no SpecAugment or drop-path (for under-fitting runs)")
    p.add_argument("--weight-decay", type=float, default=0.05)
    p.add_argument("--smoke", action="store_true", help="tiny model on random features (CI)")
    p.add_argument("--cpu", action="store_true", help="ignore a GPU")
    p.add_argument("--quiet", action="store_true")
    train(p.parse_args(argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
