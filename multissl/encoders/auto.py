"""Vision and audio Hugging Face encoders through ``AutoModel``: inputs -> pooled (B, H) vectors.

Text encoders are :class:`multissl.encoders.hf.HFEncoder`; this file adds the two other families the
transformers ``AutoModel`` API serves with their own preprocessors:

- :class:`VisionEncoder`: ViT, DINOv2, ConvNeXt, Swin, ... with ``AutoImageProcessor``; pooling ``cls``
  (first token), ``mean`` (all tokens, or the spatial mean of a (B, C, H, W) map), ``pooler``
  (the model's ``pooler_output``) or ``auto`` (``cls`` for token models, spatial mean for conv maps);
- :class:`AudioEncoder`: wav2vec2, HuBERT, WavLM, ... with ``AutoFeatureExtractor``; the mean of the
  frame states over the frames the attention mask keeps.

All three encoder kinds share one duck type used by the fine-tuning methods: ``prepare(items)`` turns
raw items (strings, images, waveforms) into model inputs, ``forward(**inputs)`` pools them and
``hidden_size`` is the pooled width. :func:`freeze_layers` freezes the bottom of any of them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from multissl.encoders.hf import _load_error, resolve_model
from multissl.errors import MultisslError

VISION_POOLINGS = ("auto", "cls", "mean", "pooler")
META = "multissl_finetune.json"  # HFEncoder keeps multissl_encoder.json for its own settings


def _auto_model(name: str, trust_remote_code: bool = False) -> nn.Module:
    from transformers import AutoModel

    try:
        return AutoModel.from_pretrained(resolve_model(name), trust_remote_code=trust_remote_code)
    except MultisslError:
        raise
    except Exception as exc:  # noqa: BLE001 - hub / file errors come in many types
        raise _load_error(name, exc) from None


def _auto_preprocessor(auto_class: str, name: str) -> Any:
    """The model's own input preprocessor via transformers' ``auto_class`` (AutoImageProcessor,
    AutoFeatureExtractor), failing with the same one-line message as the model load."""
    import transformers

    try:
        return getattr(transformers, auto_class).from_pretrained(resolve_model(name))
    except Exception as exc:  # noqa: BLE001
        raise _load_error(name, exc) from None


def _hidden_size(config: Any) -> int:
    for key in ("hidden_size", "embed_dim"):
        if isinstance(getattr(config, key, None), int):
            return int(getattr(config, key))
    sizes = getattr(config, "hidden_sizes", None)  # ConvNeXt / ResNet: one width per stage
    if sizes:
        return int(sizes[-1])
    raise MultisslError(f"Cannot tell the output width of a {type(config).__name__}; it has no hidden_size")


class VisionEncoder(nn.Module):
    """An image ``AutoModel`` with its ``AutoImageProcessor``: images -> (B, H)."""

    def __init__(self, name_or_path: str, pooling: str = "auto", model: nn.Module | None = None,
                 processor: Any = None, trust_remote_code: bool = False) -> None:
        super().__init__()
        if pooling not in VISION_POOLINGS:
            raise MultisslError(f"Unknown vision pooling '{pooling}'; choose one of {VISION_POOLINGS}")
        self.name_or_path, self.pooling = name_or_path, pooling
        self.model = model if model is not None else _auto_model(name_or_path, trust_remote_code)
        self.processor = processor if processor is not None else _auto_preprocessor("AutoImageProcessor",
                                                                                    name_or_path)

    @property
    def hidden_size(self) -> int:
        return _hidden_size(self.model.config)

    def prepare(self, images: list[Any]) -> dict[str, torch.Tensor]:
        """PIL images, (H, W, C) arrays or (C, H, W) uint8 tensors -> ``pixel_values`` (B, C, S, S)."""
        items = [img.permute(1, 2, 0).numpy() if isinstance(img, torch.Tensor) else img for img in images]
        return {"pixel_values": self.processor(images=items, return_tensors="pt")["pixel_values"]}

    def forward(self, pixel_values: torch.Tensor, **_: Any) -> torch.Tensor:
        out = self.model(pixel_values=pixel_values)
        hidden = out.last_hidden_state
        pooling = self.pooling
        if pooling == "pooler":
            pooled = getattr(out, "pooler_output", None)
            if pooled is None:
                raise MultisslError(f"{type(self.model).__name__} has no pooler_output; use pooling 'cls' or 'mean'")
            return pooled.flatten(1)
        if hidden.dim() == 4:  # conv feature map (B, C, H, W)
            if pooling == "cls":
                raise MultisslError("pooling 'cls' needs a token model (ViT/DINOv2); use 'mean' for conv nets")
            return hidden.mean((2, 3))
        if pooling in ("auto", "cls"):
            return hidden[:, 0]
        return hidden.mean(1)

    def save_pretrained(self, path: str | Path) -> Path:
        """Write the backbone + image processor (``AutoModel.from_pretrained(path)`` loads it)."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(path, safe_serialization=True)
        self.processor.save_pretrained(path)
        return path


class AudioEncoder(nn.Module):
    """A speech ``AutoModel`` with its ``AutoFeatureExtractor``: waveforms -> mean frame state (B, H)."""

    def __init__(self, name_or_path: str, pooling: str = "mean", model: nn.Module | None = None,
                 feature_extractor: Any = None, trust_remote_code: bool = False) -> None:
        super().__init__()
        if pooling != "mean":
            raise MultisslError(f"Unknown audio pooling '{pooling}'; audio encoders pool with 'mean'")
        self.name_or_path, self.pooling = name_or_path, pooling
        self.model = model if model is not None else _auto_model(name_or_path, trust_remote_code)
        self.feature_extractor = (feature_extractor if feature_extractor is not None
                                  else _auto_preprocessor("AutoFeatureExtractor", name_or_path))

    @property
    def hidden_size(self) -> int:
        return _hidden_size(self.model.config)

    @property
    def sampling_rate(self) -> int:
        return int(self.feature_extractor.sampling_rate)

    def prepare(self, waves: list[Any]) -> dict[str, torch.Tensor]:
        """Mono waveforms at :attr:`sampling_rate` -> ``input_values`` (B, T) and ``attention_mask`` (B, T)."""
        arrays = [np.asarray(w.numpy() if isinstance(w, torch.Tensor) else w, dtype=np.float32) for w in waves]
        enc = self.feature_extractor(arrays, sampling_rate=self.sampling_rate, padding=True,
                                     return_attention_mask=True, return_tensors="pt")
        return {"input_values": enc["input_values"], "attention_mask": enc["attention_mask"]}

    def forward(self, input_values: torch.Tensor, attention_mask: torch.Tensor | None = None, **_: Any) -> torch.Tensor:
        # wav2vec2-base style models (group-norm front end) are trained on zero-padded input without a mask
        # (the transformers docs' advice); the mask still bounds the pooled frames below
        group_norm = getattr(self.model.config, "feat_extract_norm", "layer") == "group"
        out = self.model(input_values=input_values, attention_mask=None if group_norm else attention_mask)
        hidden = out.last_hidden_state  # (B, T', H)
        if attention_mask is None:
            return hidden.mean(1)
        lengths = self.model._get_feat_extract_output_lengths(attention_mask.sum(-1))  # frames kept per clip
        frames = torch.arange(hidden.shape[1], device=hidden.device)[None, :] < lengths[:, None].to(hidden.device)
        m = frames.unsqueeze(-1).to(hidden.dtype)
        return (hidden * m).sum(1) / m.sum(1).clamp_min(1.0)

    def save_pretrained(self, path: str | Path) -> Path:
        """Write the backbone + feature extractor (``AutoModel.from_pretrained(path)`` loads it)."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(path, safe_serialization=True)
        self.feature_extractor.save_pretrained(path)
        return path


def _block_list(model: nn.Module) -> nn.ModuleList | None:
    """The stack of transformer blocks of a HF model (BERT/ViT ``encoder.layer``, wav2vec2 ``encoder.layers``)."""
    base = getattr(model, "base_model", model)
    encoder = getattr(base, "encoder", None)
    for owner in (encoder, base):
        for name in ("layer", "layers", "stages", "blocks"):
            blocks = getattr(owner, name, None) if owner is not None else None
            if isinstance(blocks, nn.ModuleList):
                return blocks
    return None


def freeze_layers(model: nn.Module, n: int) -> int:
    """Freeze the input embeddings (or wav2vec2's conv feature encoder) and the bottom ``n`` blocks.

    ``n = 0`` freezes nothing, ``n = -1`` the whole backbone (train the head only). Returns the number
    of frozen parameters. Raises when ``n`` exceeds the model's block count.
    """
    if n == 0:
        return 0
    if n < 0:
        for p in model.parameters():
            p.requires_grad_(False)
        return sum(p.numel() for p in model.parameters())
    blocks = _block_list(model)
    if blocks is None:
        raise MultisslError(f"freeze_layers: cannot find the block stack of {type(model).__name__}; use -1 or 0")
    if n > len(blocks):
        raise MultisslError(f"freeze_layers={n} but {type(model).__name__} has {len(blocks)} blocks")
    base = getattr(model, "base_model", model)
    frozen: list[nn.Module] = [blocks[i] for i in range(n)]
    for name in ("embeddings", "feature_extractor", "feature_projection", "embedder"):
        if isinstance(getattr(base, name, None), nn.Module):
            frozen.append(getattr(base, name))
    count = 0
    for module in frozen:
        for p in module.parameters():
            if p.requires_grad:
                p.requires_grad_(False)
                count += p.numel()
    return count


def write_meta(path: str | Path, **settings: Any) -> None:
    """Record how to rebuild the encoder (kind, pooling, head) beside an exported folder."""
    target = Path(path) / META
    current = json.loads(target.read_text()) if target.exists() else {}
    current.update(settings)
    target.write_text(json.dumps(current, indent=2))


def read_meta(path: str | Path) -> dict[str, Any]:
    target = Path(path) / META
    return json.loads(target.read_text()) if target.exists() else {}
