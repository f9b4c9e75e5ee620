"""Spatial-AST, BAT's binaural encoder, scaled down for fast CPU inference (torch; training only).

Follows Zheng et al., "BAT: Learning to Reason about Spatial Sounds with Large Language Models"
(ICML 2024, github.com/zszheng147/Spatial-AST):

* front end (:class:`BinauralFrontEnd`): STFT 1024/320 at 32 kHz, 128-mel log of each ear and
  mel-projected cos/sin IPD -> ``(B, 4, frames, 128)``; mirrored to 1e-4 by the
  NumPy :func:`stase.agent.features.binaural_features` that runs at inference;
* BatchNorm (no affine) over the two log-mel channels, 3x3 conv 4 -> 8 + BN + GELU (BAT fuses to
  one channel; with one channel the BN scales the mixture, where the 1-2 dB interaural level
  differences are drowned by ~20 dB of spectral content, and our CPU-budget run learnt no
  direction in 300 steps; 8 channels, the first four initialised as L-R, L+R, cos IPD, sin IPD,
  let the BN lift each cue to unit variance);
* 16x16 non-overlapping patches (8 input channels), fixed 2-D sin-cos positions, a pre-norm transformer encoder with
  three CLS tokens (distance, direction, class - BAT's order) and heads for 24 role classes
  (multi-label), 21 distance bins (0.5 m, 0-10 m), 360 azimuth bins and 180 elevation bins (1 deg).

Size (ours, not BAT's ViT-B, 12 x 768): embedding 128, 4 blocks, 4 heads, MLP x4, ~0.9 M
parameters (~3.5 MB float32).  A 1 s clip is 101 frames, padded to 112 -> 7 x 8 = 56 patches + 3
CLS, so one clip costs ~0.1 GFLOP: a few ms on one CPU core, and small enough to train from
scratch on a 2-core CPU in under an hour (the budget this model had).

Bins (our convention, azimuth positive = LEFT): azimuth bin ``i`` = ``i`` degrees (i = 0..359,
180..359 being -180..-1), elevation bin ``j`` = ``j - 90`` degrees, distance bin ``k`` = ``0.5 k`` m.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from stase.agent.features import AMIN, CLIP_FRAMES, HOP, N_FFT, N_MELS, PHASE_EPS, mel_matrix

from stase.agent.listener_labels import DISTANCE_STEP_M, N_AZIMUTH_BINS, N_DISTANCE_BINS, N_ELEVATION_BINS, ROLES  # noqa: F401
PATCH = 16


class BinauralFrontEnd(nn.Module):
    """Waveform ``(B, 2, samples)`` at 32 kHz -> features ``(B, 4, frames, 128)`` (no parameters)."""

    def __init__(self):
        super().__init__()
        self.register_buffer("mel", torch.tensor(mel_matrix(), dtype=torch.float32), persistent=False)
        self.register_buffer("window", torch.hann_window(N_FFT, periodic=True, dtype=torch.float32),
                             persistent=False)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        batch, channels, samples = wave.shape
        dtype = wave.dtype
        spec = torch.stft(wave.reshape(batch * channels, samples), N_FFT, HOP, N_FFT,
                          window=self.window.to(dtype), center=True, pad_mode="reflect",
                          return_complex=True)
        spec = spec.transpose(1, 2).reshape(batch, channels, -1, N_FFT // 2 + 1)
        mel = self.mel.to(dtype)
        log_mel = 10.0 * torch.log10(torch.clamp(spec.abs() @ mel, min=AMIN))
        cross = spec[:, 1] * torch.conj(spec[:, 0])
        mag = cross.abs()
        keep = mag > PHASE_EPS
        safe = torch.where(keep, mag, torch.ones_like(mag))
        zero = torch.zeros_like(mag)
        cos_ipd = torch.where(keep, cross.real / safe, zero) @ mel
        sin_ipd = torch.where(keep, cross.imag / safe, zero) @ mel
        return torch.cat([log_mel, cos_ipd[:, None], sin_ipd[:, None]], dim=1)


def sincos_2d(embed_dim: int, grid_h: int, grid_w: int) -> torch.Tensor:
    """Fixed 2-D sin-cos position embedding ``(grid_h * grid_w, embed_dim)`` (MAE / BAT)."""
    def one_axis(dim, positions):
        omega = 1.0 / 10000 ** (np.arange(dim // 2, dtype=np.float64) / (dim / 2.0))
        out = np.outer(positions, omega)
        return np.concatenate([np.sin(out), np.cos(out)], axis=1)
    gh, gw = np.meshgrid(np.arange(grid_h), np.arange(grid_w), indexing="ij")
    emb = np.concatenate([one_axis(embed_dim // 2, gh.ravel()), one_axis(embed_dim // 2, gw.ravel())], axis=1)
    return torch.tensor(emb, dtype=torch.float32)


class Block(nn.Module):
    """Pre-norm transformer block with explicit attention (exports cleanly to ONNX)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0, drop_path: float = 0.0):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.fc1 = nn.Linear(dim, int(dim * mlp_ratio))
        self.fc2 = nn.Linear(int(dim * mlp_ratio), dim)
        self.drop_path = drop_path

    def _residual(self, x, branch):
        if self.training and self.drop_path > 0.0:
            keep = (torch.rand(x.shape[0], 1, 1, device=x.device) >= self.drop_path).to(x.dtype)
            return x + branch * keep / (1.0 - self.drop_path)
        return x + branch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, dim = x.shape
        head_dim = dim // self.heads
        qkv = self.qkv(self.norm1(x)).reshape(batch, tokens, 3, self.heads, head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = torch.softmax((q @ k.transpose(-2, -1)) * (head_dim ** -0.5), dim=-1)
        y = (attn @ v).transpose(1, 2).reshape(batch, tokens, dim)
        x = self._residual(x, self.proj(y))
        return self._residual(x, self.fc2(F.gelu(self.fc1(self.norm2(x)))))


class SpatialAST(nn.Module):
    """Binaural encoder with class / distance / direction heads.

    ``forward_features(features)`` maps ``(B, 4, frames, 128)`` features to four logit tensors
    ``(class (B, 24), distance (B, 21), azimuth (B, 360), elevation (B, 180))``; that is the graph
    we export.  ``forward(wave)`` prepends the front end for training from waveforms.
    """

    def __init__(self, embed_dim: int = 128, depth: int = 4, heads: int = 4, mlp_ratio: float = 4.0,
                 n_frames: int = CLIP_FRAMES, n_classes: int = len(ROLES), drop_path: float = 0.05,
                 spec_augment: bool = True, fuse_channels: int = 8):
        super().__init__()
        self.config = dict(embed_dim=embed_dim, depth=depth, heads=heads, mlp_ratio=mlp_ratio,
                           n_frames=n_frames, n_classes=n_classes, drop_path=drop_path,
                           fuse_channels=fuse_channels)
        self.front_end = BinauralFrontEnd()
        self.n_frames = n_frames
        self.padded_frames = PATCH * math.ceil(n_frames / PATCH)
        self.spec_augment = spec_augment
        self.logmel_norm = nn.BatchNorm2d(2, affine=False)
        self.fuse = nn.Sequential(nn.Conv2d(4, fuse_channels, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(fuse_channels), nn.GELU())
        self.patch_embed = nn.Conv2d(fuse_channels, embed_dim, PATCH, stride=PATCH)
        grid_h, grid_w = self.padded_frames // PATCH, N_MELS // PATCH
        self.register_buffer("pos_embed", sincos_2d(embed_dim, grid_h, grid_w)[None], persistent=False)
        self.cls_tokens = nn.Parameter(torch.randn(1, 3, embed_dim) * 0.02)
        rates = np.linspace(0.0, drop_path, depth)
        self.blocks = nn.ModuleList([Block(embed_dim, heads, mlp_ratio, float(r)) for r in rates])
        self.distance_norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.direction_norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.class_norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.class_head = nn.Linear(embed_dim, n_classes)
        self.distance_head = nn.Linear(embed_dim, N_DISTANCE_BINS)
        self.azimuth_head = nn.Linear(embed_dim, N_AZIMUTH_BINS)
        self.elevation_head = nn.Linear(embed_dim, N_ELEVATION_BINS)
        self.apply(self._init)
        self._init_fuse()

    @torch.no_grad()
    def _init_fuse(self):
        # Start the first fused channels as the interaural cues themselves (L - R level, L + R,
        # cos IPD, sin IPD at the centre tap); the BatchNorm after the conv then scales each to
        # unit variance, so a 1.4 dB-std ILD is not drowned by 19 dB-std spectral content.
        weight = self.fuse[0].weight
        if weight.shape[0] >= 4:
            weight[:4].zero_()
            weight[0, 0, 1, 1], weight[0, 1, 1, 1] = 1.0, -1.0
            weight[1, 0, 1, 1], weight[1, 1, 1, 1] = 0.5, 0.5
            weight[2, 2, 1, 1] = 1.0
            weight[3, 3, 1, 1] = 1.0

    @staticmethod
    def _init(module):
        if isinstance(module, nn.Linear):
            nn.init.trunc_normal_(module.weight, std=0.02)
            nn.init.zeros_(module.bias)

    def _augment(self, x: torch.Tensor) -> torch.Tensor:
        # SpecAugment as BAT (time and frequency masking after the fusion conv), scaled to 1 s.
        batch, _, frames, mels = x.shape
        t_width = torch.randint(0, 20, (batch, 1, 1, 1), device=x.device)
        t_start = (torch.rand(batch, 1, 1, 1, device=x.device) * (frames - t_width)).long()
        f_width = torch.randint(0, 24, (batch, 1, 1, 1), device=x.device)
        f_start = (torch.rand(batch, 1, 1, 1, device=x.device) * (mels - f_width)).long()
        t_idx = torch.arange(frames, device=x.device).view(1, 1, -1, 1)
        f_idx = torch.arange(mels, device=x.device).view(1, 1, 1, -1)
        mask = ((t_idx >= t_start) & (t_idx < t_start + t_width)) | ((f_idx >= f_start) & (f_idx < f_start + f_width))
        return x.masked_fill(mask, 0.0)

    def _patchify(self, x: torch.Tensor) -> torch.Tensor:
        """The 16x16 stride-16 patch-embedding conv as reshape + matmul, tokens row-major.

        Equal to ``patch_embed(x).flatten(2).transpose(1, 2)`` (same weights) and about 1.3x
        faster to train on a CPU, where the strided conv's backward dominated a step.
        """
        batch, channels, height, width = x.shape
        rows, cols = height // PATCH, width // PATCH
        patches = x.reshape(batch, channels, rows, PATCH, cols, PATCH).permute(0, 2, 4, 1, 3, 5)
        patches = patches.reshape(batch, rows * cols, channels * PATCH * PATCH)
        weight = self.patch_embed.weight.reshape(self.patch_embed.weight.shape[0], -1)
        return F.linear(patches, weight, self.patch_embed.bias)

    def forward_features(self, features: torch.Tensor):
        log_mel = self.logmel_norm(features[:, :2])
        x = self.fuse(torch.cat([log_mel, features[:, 2:]], dim=1))
        if self.training and self.spec_augment:
            x = self._augment(x)
        x = x[:, :, : self.n_frames]
        x = F.pad(x, (0, 0, 0, self.padded_frames - x.shape[2]))
        x = self._patchify(x) + self.pos_embed
        x = torch.cat([self.cls_tokens.expand(x.shape[0], -1, -1), x], dim=1)
        for block in self.blocks:
            x = block(x)
        distance_token = self.distance_norm(x[:, 0])
        direction_token = self.direction_norm(x[:, 1])
        class_token = self.class_norm(x[:, 2])
        return (self.class_head(class_token), self.distance_head(distance_token),
                self.azimuth_head(direction_token), self.elevation_head(direction_token))

    def forward(self, wave: torch.Tensor):
        return self.forward_features(self.front_end(wave))


def soft_targets(index: torch.Tensor, n_bins: int, sigma_bins: float, circular: bool) -> torch.Tensor:
    """Gaussian-smoothed one-hot targets ``(B, n_bins)`` for cross-entropy on ordinal bins.

    BAT trains with hard one-hot cross-entropy; a small Gaussian (a few bins) keeps the same loss
    but tells the model that 31 degrees is a better miss than 120 when data are scarce.
    """
    bins = torch.arange(n_bins, device=index.device, dtype=torch.float32)[None]
    diff = bins - index[:, None].float()
    if circular:
        diff = torch.remainder(diff + n_bins / 2, n_bins) - n_bins / 2
    if sigma_bins <= 0:
        return (diff == 0).float()
    weights = torch.exp(-0.5 * (diff / sigma_bins) ** 2)
    return weights / weights.sum(dim=1, keepdim=True)


def spatial_ast_loss(outputs, targets, sigma_deg: float = 2.0, sigma_distance_bins: float = 0.7):
    """BAT's losses: BCE for the multi-label classes, cross-entropy for distance and direction.

    ``targets``: dict of tensors ``classes (B, 24) float``, ``distance_bin``, ``azimuth_bin``,
    ``elevation_bin`` (long).  Returns ``(total, {name: float})``.
    """
    class_logits, distance_logits, azimuth_logits, elevation_logits = outputs
    loss_class = F.binary_cross_entropy_with_logits(class_logits, targets["classes"])

    def ce(logits, target):
        return -(target * F.log_softmax(logits, dim=1)).sum(dim=1).mean()

    loss_distance = ce(distance_logits, soft_targets(targets["distance_bin"], N_DISTANCE_BINS, sigma_distance_bins, False))
    loss_azimuth = ce(azimuth_logits, soft_targets(targets["azimuth_bin"], N_AZIMUTH_BINS, sigma_deg, True))
    loss_elevation = ce(elevation_logits, soft_targets(targets["elevation_bin"], N_ELEVATION_BINS, sigma_deg, False))
    # The class BCE averages over 24 outputs; weight it up so it is not drowned by the CE terms.
    total = 10.0 * loss_class + loss_distance + loss_azimuth + loss_elevation
    parts = {"class": loss_class.item(), "distance": loss_distance.item(),
             "azimuth": loss_azimuth.item(), "elevation": loss_elevation.item()}
    return total, parts


def build_model(config: dict | None = None) -> SpatialAST:
    """A model from a saved ``config`` dict (checkpoints store it)."""
    return SpatialAST(**(config or {}))
