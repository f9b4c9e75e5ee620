"""Adapter for a neural text-to-music model the user has locally: MusicGen through transformers.

MusicGen (Copet et al., "Simple and Controllable Music Generation", NeurIPS 2023) generates one
mixed track from text.  To fit stase's stem interface we ask it once per instrument with a prompt
that names the instrument, the style, the tempo and the key ("solo double bass, jazz swing, 132
bpm, Bb major"), resample each clip to the session rate, cut or pad it to the piece's length and
balance the set like the procedural stems.

Nothing is downloaded: ``MusicGenGenerator(model_path)`` loads weights from a local folder
(``local_files_only``).  A tokenizer is used when the folder has one; otherwise the text is turned
into token ids by a stable hash of its words (enough to drive a model, not to understand words;
used by the tests with a tiny randomly initialised model).  ``transformers`` and ``torch`` are
optional: ``pip install 'stase[musicgen]'``.
"""
from __future__ import annotations

import math
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from stase.core.errors import InputError, StaseError

from stase.agent.music.generator import MusicSpec, _check_rate_seed, resolve_music
from stase.agent.music.mixing import balance

ROLE_WORDS = {
    "lead_vocal": "lead vocals singing", "backing_vocals": "backing vocal harmonies",
    "choir": "choir singing", "drums": "drum kit groove", "percussion": "percussion",
    "hand_drums": "hand drums congas tabla", "bass": "electric bass", "double_bass": "upright double bass",
    "electric_guitar": "electric guitar", "acoustic_guitar": "acoustic guitar", "piano": "piano",
    "organ": "organ", "synth_lead": "synth lead", "synth_pad": "synth pad", "violins": "violins",
    "violas": "violas", "cellos": "cellos", "strings": "string section", "brass": "brass section",
    "trumpet": "trumpet", "saxophone": "saxophone", "woodwinds": "woodwinds clarinet oboe",
    "flute": "flute", "plucked": "harp plucked strings",
}


def instrument_prompt(spec: MusicSpec, role: str) -> str:
    """The text MusicGen gets for one instrument's stem."""
    style = spec.style.id.replace("_", " ")
    return (f"solo {ROLE_WORDS.get(role, role.replace('_', ' '))}, {style}, "
            f"{spec.tempo_bpm:.0f} bpm, {spec.key}, isolated instrument stem")


def hashed_token_ids(text: str, vocab_size: int, max_length: int = 32) -> list[int]:
    """Stable word-hash token ids in [1, vocab_size) followed by an end token 1 (T5 uses 1 = </s>)."""
    words = [w for w in text.lower().replace(",", " ").split() if w][: max_length - 1]
    ids = [2 + zlib.crc32(w.encode()) % max(vocab_size - 2, 1) for w in words]
    return ids + [1]


class MusicGenGenerator:
    """Stems from a MusicGen model (``MusicgenForConditionalGeneration``) on the CPU or a GPU.

    Parameters
    ----------
    model : a local folder with a saved model, or an already built model object.
    tokenizer : optional tokenizer (callable like a transformers tokenizer); by default the folder's
        own if it has one, else :func:`hashed_token_ids`.
    device : "cpu", "cuda", ... (default: cuda when available).
    guidance_scale : classifier-free guidance (MusicGen's default 3.0); None leaves the model's.
    """

    def __init__(self, model: str | Path | Any, tokenizer: Any = None, device: str | None = None,
                 guidance_scale: float | None = 3.0):
        try:
            import torch
            from transformers import MusicgenForConditionalGeneration
        except ImportError as exc:
            raise StaseError("MusicGen needs transformers and torch: pip install 'stase[musicgen]'") from exc
        self.torch = torch
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        if isinstance(model, (str, Path)):
            path = Path(model)
            if not path.is_dir():
                raise InputError(f"MusicGen model folder not found: {path} (give a local folder; "
                                 "stase never downloads models)")
            try:
                model = MusicgenForConditionalGeneration.from_pretrained(str(path), local_files_only=True)
            except (OSError, ValueError) as exc:
                raise StaseError(f"cannot load a MusicGen model from {path}") from exc
            if tokenizer is None:
                tokenizer = _local_tokenizer(path)
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer
        self.guidance_scale = guidance_scale
        self.model_rate = int(self.model.config.audio_encoder.sampling_rate)
        self.frame_rate = float(getattr(self.model.config.audio_encoder, "frame_rate", None)
                                or self.model_rate / math.prod(self.model.config.audio_encoder.upsampling_ratios))

    def _inputs(self, text: str) -> dict:
        torch = self.torch
        if self.tokenizer is not None:
            enc = self.tokenizer([text], return_tensors="pt", padding=True)
            return {k: v.to(self.device) for k, v in enc.items() if k in ("input_ids", "attention_mask")}
        ids = hashed_token_ids(text, int(self.model.config.text_encoder.vocab_size))
        input_ids = torch.tensor([ids], dtype=torch.long, device=self.device)
        return {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids)}

    def clip(self, text: str, duration_s: float, seed: int) -> np.ndarray:
        """Generate ``duration_s`` of mono audio at the model's rate for ``text`` (sampled, seeded)."""
        torch = self.torch
        torch.manual_seed(int(seed))
        tokens = int(math.ceil(duration_s * self.frame_rate)) + 4
        kwargs = {"do_sample": True, "max_new_tokens": tokens}
        if self.guidance_scale is not None:
            kwargs["guidance_scale"] = self.guidance_scale
        with torch.no_grad():
            audio = self.model.generate(**self._inputs(text), **kwargs)
        audio = audio.detach().float().cpu().numpy()
        return audio.reshape(audio.shape[0], -1, audio.shape[-1])[0].mean(axis=0)

    def generate_stems(self, music: dict | str, sample_rate: int = 48000, seed: int = 0,
                       progress=None) -> dict[str, np.ndarray]:
        """Same contract as :func:`stase.agent.music.generate_stems`, one MusicGen clip per instrument."""
        from stase.core.rates import resample
        _check_rate_seed(sample_rate, seed)
        spec = resolve_music(music)
        n = spec.n_samples(int(sample_rate))
        raw: dict[str, np.ndarray] = {}
        for i, (track, role) in enumerate(spec.tracks):
            clip = self.clip(instrument_prompt(spec, role), spec.duration_s, seed * 1000 + i)
            clip = resample(clip.astype(np.float64), self.model_rate, int(sample_rate))
            stem = np.zeros(n)
            stem[: min(n, clip.size)] = clip[:n]
            if not np.all(np.isfinite(stem)):
                raise StaseError(f"MusicGen returned NaN/Inf for {track!r}")
            raw[track] = stem
            if progress is not None:
                progress(track)
        return balance(raw, dict(spec.tracks), sample_rate)


def _local_tokenizer(path: Path):
    """The folder's own tokenizer if it has one (never fetched from the hub)."""
    if not any((path / f).is_file() for f in ("tokenizer.json", "spiece.model", "tokenizer_config.json")):
        return None
    try:
        from transformers import AutoTokenizer
        return AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise StaseError(f"cannot load the tokenizer in {path}") from exc


def tiny_random_musicgen(seed: int = 0):
    """A tiny randomly initialised MusicGen built from a config (for tests; a few MB, no weights).

    Returns the model; its audio codec runs at 16 kHz with a hop of 320 samples (50 Hz frames, as the real one).
    """
    import torch
    from transformers import (EncodecConfig, MusicgenConfig, MusicgenDecoderConfig,
                              MusicgenForConditionalGeneration, T5Config)
    torch.manual_seed(seed)
    vocab = 64
    text = T5Config(vocab_size=99, d_model=16, d_ff=32, d_kv=8, num_layers=1, num_heads=2,
                    decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
    audio = EncodecConfig(sampling_rate=16000, audio_channels=1, hidden_size=16, num_filters=4,
                          num_residual_layers=1, upsampling_ratios=[8, 5, 4, 2], codebook_size=vocab,
                          codebook_dim=16, num_lstm_layers=1, compress=1, target_bandwidths=[1.0])
    decoder = MusicgenDecoderConfig(vocab_size=vocab, hidden_size=16, num_hidden_layers=1,
                                    num_attention_heads=2, ffn_dim=32, num_codebooks=2,
                                    pad_token_id=vocab, bos_token_id=vocab,  # as MusicGen: one past the codebook audio_channels=1,
                                    max_position_embeddings=4096)
    config = MusicgenConfig(text_encoder=text, audio_encoder=audio, decoder=decoder)
    return MusicgenForConditionalGeneration(config).eval()
