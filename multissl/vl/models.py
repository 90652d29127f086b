"""Towers for vision-language pre-training: image towers that return token states, the split of a
Hugging Face text tower into a text encoder and an ALBEF fusion encoder, and the ITM / MLM heads.

ALBEF (Li et al., NeurIPS 2021) splits a 12-layer BERT into 6 text layers and 6 fusion layers that
gain cross-attention over the image tokens; here the split is a field (``text_layers``) so any
BERT-family tower (the 6-layer all-MiniLM-L6-v2 by default) can be used.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from multissl.encoders.hf import HFEncoder
from multissl.errors import RecipeError


class ImageTower(nn.Module):
    """Wraps an image backbone so that ``forward(x) -> (B, 1 + N, D)``: a global token then N local tokens.

    Names: ``timm:<model>`` (ViTs give [CLS] + patch tokens, CNNs the flattened last feature map with
    its mean as global token), ``open_clip:<config>`` (a ViT visual tower with ``output_tokens``; a
    ModifiedResNet gives its last feature map), ``torchvision:<model>`` (a ResNet's last feature map),
    ``hf:<hub id or folder>`` (transformers ``AutoModel``: ViT-style token states, or a ConvNet's feature
    map). ``pretrained`` is read per library by :mod:`multissl.vl.weights` (a flag, a tag or a local
    file); weights that cannot be fetched fail at once with one line saying how to pass a file.
    """

    def __init__(self, name: str = "timm:resnet18", image_size: int = 224, pretrained: str | bool = "",
                 **kwargs) -> None:
        super().__init__()
        lib, _, model = name.partition(":")
        if not model:
            lib, model = "timm", lib
        self.lib, self.name = lib, name
        if lib == "timm":
            import timm

            from multissl.vl.weights import timm_weights

            extra = dict(kwargs)
            if "vit" in model or "deit" in model:
                extra.setdefault("img_size", image_size)
            weights = timm_weights(model, pretrained)
            if isinstance(weights, Path):
                extra["pretrained_cfg_overlay"] = {"file": str(weights)}
            self.backbone = timm.create_model(model, pretrained=bool(weights), num_classes=0, **extra)
            self.kind = "vit" if hasattr(self.backbone, "cls_token") else "cnn"
            self.width = int(self.backbone.num_features)
        elif lib == "open_clip":
            import open_clip

            from multissl.vl.weights import open_clip_weights

            tag = open_clip_weights(model, pretrained)
            clip = open_clip.create_model(model, pretrained=tag, force_image_size=image_size)
            self.backbone = clip.visual
            if hasattr(self.backbone, "output_tokens"):
                self.kind = "open_clip_vit"
                self.backbone.output_tokens = True
                self.width = int(self.backbone.proj.shape[0]) if self.backbone.proj is not None else \
                    int(self.backbone.transformer.width)
                self.backbone.proj = None  # keep the width-dim pooled token; the method adds its own projection
            else:
                self.kind = "open_clip_resnet"
                self.width = int(self.backbone.attnpool.c_proj.in_features)
        elif lib == "torchvision":
            import torchvision

            from multissl.vl.weights import as_flag, local_file

            net = getattr(torchvision.models, model)(weights=None)
            file = local_file(pretrained)
            if file is not None:  # a state dict: safetensors, or torch.load with weights_only (no pickle code)
                if file.suffix == ".safetensors":
                    from safetensors.torch import load_file

                    state = load_file(str(file))
                else:
                    state = torch.load(file, map_location="cpu", weights_only=True)
                net.load_state_dict(state)
            elif as_flag(pretrained):
                raise RecipeError("torchvision towers load pretrained weights from a local state-dict file only "
                                  "(no download here): model.image_pretrained=/path/to/resnet50.pth")
            self.width = int(net.fc.in_features)
            net.fc, net.avgpool = nn.Identity(), nn.Identity()
            self.backbone = nn.Sequential(*list(net.children())[:-2])
            self.kind = "torchvision_cnn"
        elif lib == "hf":
            from transformers import AutoConfig, AutoModel

            from multissl.encoders.hf import _load_error, resolve_model
            from multissl.vl.weights import hf_weights

            load = hf_weights(model, pretrained)
            try:
                path = resolve_model(model)
                self.backbone = AutoModel.from_pretrained(path) if load else \
                    AutoModel.from_config(AutoConfig.from_pretrained(path))
            except Exception as exc:  # noqa: BLE001 - hub / file errors come in many types
                raise _load_error(model, exc) from None
            cfg = self.backbone.config
            sizes = getattr(cfg, "hidden_sizes", None)
            self.width = int(sizes[-1] if sizes else cfg.hidden_size)
            import inspect

            self._interpolate = "interpolate_pos_encoding" in inspect.signature(self.backbone.forward).parameters
            self.kind = "hf"
        else:
            raise RecipeError(f"image tower '{name}': use 'timm:<model>', 'open_clip:<config>', 'torchvision:<model>' "
                              "or 'hf:<hub id or folder>'")

    def _grid(self, fmap: torch.Tensor) -> torch.Tensor:
        tokens = fmap.flatten(2).transpose(1, 2)  # (B, HW, C)
        return torch.cat([tokens.mean(1, keepdim=True), tokens], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "vit":
            tokens = self.backbone.forward_features(x)  # (B, prefix + N, D)
            prefix = getattr(self.backbone, "num_prefix_tokens", 1)
            return torch.cat([tokens[:, :1], tokens[:, prefix:]], 1)
        if self.kind == "cnn":
            return self._grid(self.backbone.forward_features(x))
        if self.kind == "hf":
            kw = {"interpolate_pos_encoding": True} if self._interpolate else {}
            states = self.backbone(pixel_values=x, **kw).last_hidden_state
            return self._grid(states) if states.dim() == 4 else states  # (B, C, H, W) ConvNet or (B, 1+N, D)
        if self.kind == "open_clip_vit":
            pooled, tokens = self.backbone(x)
            return torch.cat([pooled[:, None], tokens], 1)
        if self.kind == "open_clip_resnet":
            v = self.backbone
            x = v.stem(x) if hasattr(v, "stem") else v.act3(v.bn3(v.conv3(v.act2(v.bn2(v.conv2(v.act1(v.bn1(v.conv1(x)))))))))
            if not hasattr(v, "stem"):
                x = v.avgpool(x)
            return self._grid(v.layer4(v.layer3(v.layer2(v.layer1(x)))))
        return self._grid(self.backbone(x))


class FusionLayer(nn.Module):
    """A post-LN BERT layer with cross-attention over image tokens between self-attention and the FFN
    (ALBEF's fusion layer). ``from_bert_layer`` copies a pretrained layer's self-attention and FFN."""

    def __init__(self, hidden: int, heads: int, intermediate: int, image_width: int, dropout: float = 0.1,
                 eps: float = 1e-12) -> None:
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.q, self.k, self.v, self.o = (nn.Linear(hidden, hidden) for _ in range(4))
        self.ln1 = nn.LayerNorm(hidden, eps=eps)
        self.cq, self.co = nn.Linear(hidden, hidden), nn.Linear(hidden, hidden)
        self.ck, self.cv = nn.Linear(image_width, hidden), nn.Linear(image_width, hidden)
        self.ln2 = nn.LayerNorm(hidden, eps=eps)
        self.ff1, self.ff2 = nn.Linear(hidden, intermediate), nn.Linear(intermediate, hidden)
        self.ln3 = nn.LayerNorm(hidden, eps=eps)

    @classmethod
    def from_bert_layer(cls, layer: nn.Module, image_width: int, heads: int, dropout: float, eps: float) -> FusionLayer:
        hidden = layer.attention.self.query.in_features
        inter = layer.intermediate.dense.out_features
        out = cls(hidden, heads, inter, image_width, dropout, eps)
        pairs = {"q": layer.attention.self.query, "k": layer.attention.self.key, "v": layer.attention.self.value,
                 "o": layer.attention.output.dense, "ln1": layer.attention.output.LayerNorm,
                 "ff1": layer.intermediate.dense, "ff2": layer.output.dense, "ln3": layer.output.LayerNorm}
        for name, src in pairs.items():
            getattr(out, name).load_state_dict(src.state_dict())
        return out

    def _attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        b, lq, h = q.shape
        split = lambda t: t.view(b, t.shape[1], self.heads, h // self.heads).transpose(1, 2)
        attn_mask = None if mask is None else mask[:, None, None, :].bool()
        out = F.scaled_dot_product_attention(split(q), split(k), split(v), attn_mask=attn_mask,
                                             dropout_p=self.dropout if self.training else 0.0)
        return out.transpose(1, 2).reshape(b, lq, h)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        drop = lambda t: F.dropout(t, self.dropout, self.training)
        x = self.ln1(x + drop(self.o(self._attend(self.q(x), self.k(x), self.v(x), mask))))
        x = self.ln2(x + drop(self.co(self._attend(self.cq(x), self.ck(image), self.cv(image), None))))
        return self.ln3(x + drop(self.ff2(F.gelu(self.ff1(x)))))


class FusionEncoder(nn.Module):
    """Stack of :class:`FusionLayer`: text token states (B, L, H) attend to image tokens (B, N, D)."""

    def __init__(self, layers: list[FusionLayer]) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, text: torch.Tensor, mask: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            text = layer(text, mask, image)
        return text


def split_text_tower(encoder: HFEncoder, text_layers: int, image_width: int,
                     extra_fusion_layers: int = 0) -> FusionEncoder:
    """Cut a BERT-family tower in place: its first ``text_layers`` stay the text encoder, the rest become
    fusion layers (ALBEF's 6/6 split of BERT-base). ``extra_fusion_layers`` appends fresh copies of the
    last layer (for towers too shallow to split)."""
    model = encoder.model
    cfg = model.config
    layers = getattr(getattr(model, "encoder", None), "layer", None)
    if layers is None or not hasattr(layers[0], "attention"):
        raise RecipeError(f"text tower '{encoder.name_or_path}' is not BERT-family; ALBEF/TCL fusion needs "
                          "one (or use method.itm=false and method.mlm=false)")
    total = len(layers)
    if not 1 <= text_layers <= total:
        raise RecipeError(f"model.text_layers must be in [1, {total}] for this tower, got {text_layers}")
    heads, dropout = cfg.num_attention_heads, float(getattr(cfg, "hidden_dropout_prob", 0.1))
    eps = float(getattr(cfg, "layer_norm_eps", 1e-12))
    fusion = [FusionLayer.from_bert_layer(layers[i], image_width, heads, dropout, eps) for i in range(text_layers, total)]
    for _ in range(extra_fusion_layers):
        fusion.append(FusionLayer.from_bert_layer(layers[total - 1], image_width, heads, dropout, eps))
    if not fusion:
        raise RecipeError("no fusion layers: lower model.text_layers or set model.extra_fusion_layers >= 1")
    model.encoder.layer = nn.ModuleList(list(layers)[:text_layers])
    cfg.num_hidden_layers = text_layers
    return FusionEncoder(fusion)


class MLMHead(nn.Module):
    """BERT's LM prediction head (dense, GELU, LayerNorm, decoder tied to the word embeddings + bias)."""

    def __init__(self, hidden: int, vocab: int, eps: float = 1e-12) -> None:
        super().__init__()
        self.dense, self.norm = nn.Linear(hidden, hidden), nn.LayerNorm(hidden, eps=eps)
        self.bias = nn.Parameter(torch.zeros(vocab))

    def forward(self, hidden: torch.Tensor, word_embeddings: torch.Tensor) -> torch.Tensor:
        return F.linear(self.norm(F.gelu(self.dense(hidden))), word_embeddings, self.bias)


def patch_pool(local: torch.Tensor) -> torch.Tensor:
    """TCL's ``patch_pooling`` of image patch tokens (B, N, D): on the sqrt(N) x sqrt(N) grid, average
    pooling with kernel and stride c = floor(sqrt(sqrt(N))) (16x16 patches -> 4x4, 8x8 -> 4x4, 4x4 -> 2x2);
    non-square N is returned unchanged."""
    b, n, d = local.shape
    side = math.isqrt(n)
    if side * side != n or side < 2:
        return local
    c = max(1, math.isqrt(side))
    grid = local.transpose(1, 2).reshape(b, d, side, side)
    return F.avg_pool2d(grid, c, stride=c).flatten(2).transpose(1, 2)
