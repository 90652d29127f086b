"""Export an encoder with its projection head, and load it back, so the ecosystem's loaders read it.

- text (:class:`~multissl.encoders.hf.HFEncoder`): the encoder's transformers + sentence-transformers
  folder, with the head appended to the sentence-transformers pipeline as ``Dense`` modules (before
  any ``Normalize``), so ``SentenceTransformer(path).encode`` returns the fine-tuned embedding and
  ``AutoModel.from_pretrained(path)`` the backbone;
- vision / audio (:mod:`multissl.encoders.auto`): ``save_pretrained`` of the backbone and its image
  processor / feature extractor (``AutoModel`` / ``AutoImageProcessor`` / ``AutoFeatureExtractor``
  load them), plus the head as ``multissl_head.safetensors``.

Every folder also carries ``multissl_finetune.json`` (kind, pooling, head shape, whether the base
pipeline ends in ``Normalize``), which :func:`load_finetuned` reads to rebuild the exact embedding
function (L2-normalised like ``SentenceTransformer.encode`` when the pipeline normalises).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from multissl.encoders.auto import AudioEncoder, VisionEncoder, read_meta, write_meta
from multissl.encoders.hf import HFEncoder
from multissl.errors import MultisslError

HEAD_FILE = "multissl_head.safetensors"


def encoder_kind(encoder: nn.Module) -> str:
    """'text', 'image' or 'audio' for the three encoder wrappers."""
    if isinstance(encoder, HFEncoder):
        return "text"
    if isinstance(encoder, VisionEncoder):
        return "image"
    if isinstance(encoder, AudioEncoder):
        return "audio"
    raise MultisslError(f"Cannot export a {type(encoder).__name__}; expected HFEncoder, VisionEncoder or AudioEncoder")


def _linears(head: nn.Module) -> list[tuple[nn.Linear, str]]:
    """The head's Linear layers with the activation that follows each ('identity' for the last)."""
    if isinstance(head, nn.Identity):
        return []
    layers = list(head) if isinstance(head, nn.Sequential) else [head]
    out: list[tuple[nn.Linear, str]] = []
    for layer in layers:
        if isinstance(layer, nn.Linear):
            out.append((layer, "identity"))
        elif isinstance(layer, (nn.ReLU, nn.Tanh, nn.GELU)) and out:
            out[-1] = (out[-1][0], type(layer).__name__.lower())
        else:
            raise MultisslError(f"Cannot export head layer {type(layer).__name__}: heads must be Linear (+ ReLU/Tanh/GELU)")
    return out


_ACTIVATIONS = {"identity": nn.Identity, "relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU}


def head_spec(head: nn.Module) -> list[dict[str, Any]]:
    """A JSON description of a Linear (+ activation) head."""
    return [{"in": lin.in_features, "out": lin.out_features, "bias": lin.bias is not None, "activation": act}
            for lin, act in _linears(head)]


def head_from_spec(spec: list[dict[str, Any]]) -> nn.Module:
    """An nn.Sequential head (or Identity) matching :func:`head_spec`."""
    if not spec:
        return nn.Identity()
    layers: list[nn.Module] = []
    for s in spec:
        layers.append(nn.Linear(s["in"], s["out"], bias=s["bias"]))
        if s["activation"] != "identity":
            layers.append(_ACTIVATIONS[s["activation"]]())
    return nn.Sequential(*layers)


def _save_head(head: nn.Module, path: Path) -> list[dict[str, Any]]:
    from safetensors.torch import save_file

    spec = head_spec(head)
    if spec:
        weights = {}
        for i, (lin, _) in enumerate(_linears(head)):
            weights[f"{i}.weight"] = lin.weight.detach().cpu().contiguous()
            if lin.bias is not None:
                weights[f"{i}.bias"] = lin.bias.detach().cpu().contiguous()
        save_file(weights, str(path / HEAD_FILE))
    return spec


def _add_dense_modules(path: Path, head: nn.Module) -> None:
    """Insert sentence-transformers Dense modules for the head after the Pooling module."""
    from sentence_transformers.models import Dense

    modules = json.loads((path / "modules.json").read_text())
    at = next(i for i, m in enumerate(modules) if m["type"].endswith("Pooling")) + 1
    new = []
    for i, (lin, act) in enumerate(_linears(head)):
        dense = Dense(lin.in_features, lin.out_features, bias=lin.bias is not None,
                      activation_function=_ACTIVATIONS[act]())
        with torch.no_grad():
            dense.linear.weight.copy_(lin.weight.detach().cpu())
            if lin.bias is not None:
                dense.linear.bias.copy_(lin.bias.detach().cpu())
        folder = f"{len(modules) + i}_Dense"
        (path / folder).mkdir(exist_ok=True)
        dense.save(str(path / folder))
        new.append({"name": folder, "path": folder, "type": "sentence_transformers.models.Dense"})
    modules = modules[:at] + new + modules[at:]
    for i, m in enumerate(modules):
        m["idx"] = i
    (path / "modules.json").write_text(json.dumps(modules, indent=2))


def save_finetuned(encoder: nn.Module, head: nn.Module, path: str | Path, **extra: Any) -> Path:
    """Write ``encoder`` + ``head`` as described in the module docstring; returns the folder."""
    from multissl.encoders.lora import is_lora, merge_lora

    path = Path(path)
    kind = encoder_kind(encoder)
    if is_lora(encoder.model):  # fold the adapters in: the folder loads without peft
        import copy

        merged = merge_lora(copy.deepcopy(encoder.model))
        encoder = copy.copy(encoder)  # shallow copy with its own submodule table: the live method keeps its adapters
        encoder._modules = dict(encoder._modules)
        encoder.model = merged
    normalize = False
    if kind == "text":  # the recipe's max length (trained and evaluated at it); the base's Normalize kept
        encoder.save_pretrained(path, max_seq_length=encoder.max_length)
        modules = json.loads((path / "modules.json").read_text())
        normalize = any(m["type"].endswith("Normalize") for m in modules)
    else:
        encoder.save_pretrained(path)
    spec = _save_head(head, path)
    if kind == "text" and spec:
        _add_dense_modules(path, head)
    write_meta(path, kind=kind, pooling=encoder.pooling, head=spec, normalize=normalize, **extra)
    return path


class FinetunedEncoder(nn.Module):
    """A loaded export: ``prepare(items)`` then ``forward(**inputs)`` = head(pooled backbone)."""

    def __init__(self, encoder: nn.Module, head: nn.Module, normalize: bool = False) -> None:
        super().__init__()
        self.encoder, self.head, self.normalize = encoder, head, normalize

    def prepare(self, items: list[Any]) -> dict[str, torch.Tensor]:
        prep = getattr(self.encoder, "prepare", None) or self.encoder.tokenize
        return prep(items)

    def forward(self, **inputs: torch.Tensor) -> torch.Tensor:
        z = self.head(self.encoder(**inputs))
        return torch.nn.functional.normalize(z, dim=-1) if self.normalize else z

    @torch.no_grad()
    def encode(self, items: list[Any], batch_size: int = 64) -> torch.Tensor:
        """(N, D) embeddings of raw items (strings, images, waveforms), eval mode, on CPU."""
        self.eval()
        device = next(self.parameters()).device
        out = [self(**{k: v.to(device) for k, v in self.prepare(items[i : i + batch_size]).items()}).float().cpu()
               for i in range(0, len(items), batch_size)]
        return torch.cat(out)


def load_finetuned(path: str | Path) -> FinetunedEncoder:
    """Rebuild the embedding function of a folder written by :func:`save_finetuned`."""
    from safetensors.torch import load_file

    path = Path(path)
    meta = read_meta(path)
    if "kind" not in meta:
        raise MultisslError(f"{path} has no multissl_finetune.json; it was not written by a fine-tuning export")
    kind, pooling = meta["kind"], meta["pooling"]
    if kind == "text":
        encoder: nn.Module = HFEncoder.from_folder(path)
    elif kind == "image":
        encoder = VisionEncoder(str(path), pooling=pooling)
    else:
        encoder = AudioEncoder(str(path), pooling=pooling)
    head = head_from_spec(meta.get("head", []))
    if meta.get("head"):
        weights = load_file(str(path / HEAD_FILE))
        linears = [m for m in head if isinstance(m, nn.Linear)]
        for i, lin in enumerate(linears):
            lin.weight.data.copy_(weights[f"{i}.weight"])
            if lin.bias is not None:
                lin.bias.data.copy_(weights[f"{i}.bias"])
    return FinetunedEncoder(encoder, head, bool(meta.get("normalize", False))).eval()
