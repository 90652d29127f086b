"""Point-MAE (Pang, Wang, Tay, Liu, Tian, Yuan, "Masked Autoencoders for Point Cloud Self-supervised
Learning", ECCV 2022), following the official code's structure:

* ``Group``: FPS centres + kNN patches relative to their centre (``multissl.pointcloud.ops``);
* ``PatchEmbed`` (the official ``Encoder``): shared MLP 3->128->256, max-pool, concatenate the pooled
  feature to every point, 512->512->C, max-pool;
* positional embedding MLP(3->128->C) of the centres, added before EVERY block (the official
  ``TransformerEncoder`` does ``x = block(x + pos)``);
* random masking of ``mask_ratio`` of the patches; the encoder sees visible tokens only; mask tokens
  join in the decoder ("shifted mask tokens"); head Linear C -> 3*K; Chamfer-L2 on masked patches.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from multissl.core import LossOutput, Method, chamfer_distance
from multissl.pointcloud.ops import group_patches


class PatchEmbed(nn.Module):
    """Mini-PointNet per patch: (B, G, K, 3) -> (B, G, C)."""

    def __init__(self, dim: int = 384, hidden: tuple[int, int, int] = (128, 256, 512)) -> None:
        super().__init__()
        h1, h2, h3 = hidden
        self.first = nn.Sequential(nn.Conv1d(3, h1, 1), nn.BatchNorm1d(h1), nn.ReLU(inplace=True), nn.Conv1d(h1, h2, 1))
        self.second = nn.Sequential(nn.Conv1d(2 * h2, h3, 1), nn.BatchNorm1d(h3), nn.ReLU(inplace=True),
                                    nn.Conv1d(h3, dim, 1))

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        b, g, k, _ = patches.shape
        x = self.first(patches.reshape(b * g, k, 3).transpose(1, 2))  # (BG, h2, K)
        pooled = x.max(2, keepdim=True).values
        x = self.second(torch.cat([pooled.expand(-1, -1, k), x], 1))  # (BG, C, K)
        return x.max(2).values.reshape(b, g, -1)


class DropPath(nn.Module):
    """Stochastic depth per sample."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = x.new_empty(x.shape[0], *([1] * (x.dim() - 1))).bernoulli_(1 - self.p)
        return x * keep / (1 - self.p)


class Block(nn.Module):
    """Pre-norm Transformer block (SDPA attention, MLP ratio 4, GELU), as in the official ViT block."""

    def __init__(self, dim: int, heads: int, drop_path: float = 0.0, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.proj = nn.Linear(dim, 3 * dim, bias=False), nn.Linear(dim, dim)
        self.mlp = nn.Sequential(nn.Linear(dim, int(dim * mlp_ratio)), nn.GELU(), nn.Linear(int(dim * mlp_ratio), dim))
        self.drop = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, d)
        x = x + self.drop(self.proj(a))
        return x + self.drop(self.mlp(self.norm2(x)))


class PosTransformer(nn.Module):
    """Blocks with the positional embedding re-added before each one, then a final LayerNorm."""

    def __init__(self, dim: int, depth: int, heads: int, drop_path: float) -> None:
        super().__init__()
        rates = torch.linspace(0, drop_path, depth).tolist() if depth > 1 else [drop_path]
        self.blocks = nn.ModuleList(Block(dim, heads, r) for r in rates)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        for blk in self.blocks:
            x = blk(x + pos)
        return self.norm(x)


def _init(m: nn.Module) -> None:
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)


class PointEncoder(nn.Module):
    """Point-MAE's encoder: grouping, patch embedding, position MLP and the Transformer."""

    def __init__(self, num_groups: int = 64, group_size: int = 32, dim: int = 384, depth: int = 12, heads: int = 6,
                 drop_path: float = 0.1, embed_hidden: tuple[int, int, int] = (128, 256, 512)) -> None:
        super().__init__()
        self.num_groups, self.group_size, self.dim = num_groups, group_size, dim
        self.embed = PatchEmbed(dim, embed_hidden)
        self.pos = nn.Sequential(nn.Linear(3, 128), nn.GELU(), nn.Linear(128, dim))
        self.transformer = PosTransformer(dim, depth, heads, drop_path)
        self.apply(_init)

    def group(self, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return group_patches(points[..., :3].contiguous(), self.num_groups, self.group_size)

    def forward(self, patches: torch.Tensor, centres: torch.Tensor, visible: torch.Tensor | None = None) -> torch.Tensor:
        """Tokens (B, G_vis, C) of the visible patches (all patches when ``visible`` is None)."""
        tokens, pos = self.embed(patches), self.pos(centres)
        if visible is not None:
            b = tokens.shape[0]
            tokens, pos = tokens[visible].reshape(b, -1, self.dim), pos[visible].reshape(b, -1, self.dim)
        return self.transformer(tokens, pos)

    def features(self, points: torch.Tensor) -> torch.Tensor:
        """Frozen features for probes: [mean, max] of all encoder tokens (B, 2C), as the official SVM eval."""
        patches, centres = self.group(points)
        x = self.forward(patches, centres)
        return torch.cat([x.mean(1), x.max(1).values], -1)


def random_mask(b: int, g: int, ratio: float, device: torch.device) -> torch.Tensor:
    """(B, G) bool, True = masked: exactly round(ratio * G) random patches per cloud (official 'rand')."""
    m = round(ratio * g)
    order = torch.rand(b, g, device=device).argsort(1)
    mask = torch.zeros(b, g, dtype=torch.bool, device=device)
    mask.scatter_(1, order[:, :m], True)
    return mask


def scale_translate(points: torch.Tensor, scale: tuple[float, float] = (2 / 3, 3 / 2),
                    translate: float = 0.2) -> torch.Tensor:
    """Point-MAE's PointcloudScaleAndTranslate: per-cloud per-axis scale U(lo, hi) and shift U(-t, t)."""
    b = points.shape[0]
    s = torch.empty(b, 1, 3, device=points.device).uniform_(*scale)
    t = torch.empty(b, 1, 3, device=points.device).uniform_(-translate, translate)
    return points * s + t


class PointMAE(Method):
    """Masked point modelling: reconstruct the masked patches (Chamfer-L2) from the visible ones.

    Paper: Pang, Wang, Tay, Liu, Tian, Yuan, "Masked Autoencoders for Point Cloud Self-supervised
    Learning", ECCV 2022. Reference code: https://github.com/Pang-Yatian/Point-MAE
    (``models/Point_MAE.py``: ``Encoder``, ``Group``, ``MaskTransformer``, ``Point_MAE``).

    Deviations from the reference code:
    - FPS and kNN are batched pure torch (``multissl.pointcloud.ops``), not the pointnet2 / knn_cuda
      CUDA extensions: same centres (FPS from index 0); kNN ties may be ordered differently.
    - Chamfer-L2 is ``multissl.core.chamfer_distance`` (torch.cdist), not the CUDA ``ChamferDistanceL2``:
      the same quantity (mean squared nearest distance both ways, summed), slower at large N.
    - decoder Linear layers use the encoder's trunc-normal(0.02) init; the reference's decoder uses
      Xavier-uniform (not measured; kept one init helper). Conv1d layers keep PyTorch's default init
      (the reference: trunc-normal 0.02).
    - the mask count is ``round(ratio * G)`` (reference: ``int``); equal for the shipped G = 64 and 32.
    - ``loss='l1'`` is Chamfer-L1 as the reference's ``cdl1``; EMD is not offered (neither is it used
      by the reference's configs).
    """

    def __init__(self, encoder: PointEncoder, mask_ratio: float = 0.6, decoder_depth: int = 4, decoder_heads: int = 6,
                 scale: tuple[float, float] = (2 / 3, 3 / 2), translate: float = 0.2, loss: str = "l2") -> None:
        super().__init__()
        self.encoder, self.mask_ratio = encoder, mask_ratio
        d = encoder.dim
        self.mask_token = nn.Parameter(torch.zeros(1, 1, d))
        self.decoder_pos = nn.Sequential(nn.Linear(3, 128), nn.GELU(), nn.Linear(128, d))
        self.decoder = PosTransformer(d, decoder_depth, decoder_heads, 0.1)
        self.head = nn.Linear(d, 3 * encoder.group_size)  # the official 1x1 Conv1d increase_dim
        self.decoder_pos.apply(_init)
        self.decoder.apply(_init)
        self.head.apply(_init)
        nn.init.trunc_normal_(self.mask_token, std=0.02)
        self.scale, self.translate, self.loss_norm = tuple(scale), translate, loss

    def reconstruct(self, points: torch.Tensor, mask: torch.Tensor | None = None):
        """(predicted masked patches (B*M, K, 3), their targets (B*M, K, 3), mask (B, G), centres)."""
        patches, centres = self.encoder.group(points)
        b, g = centres.shape[:2]
        if mask is None:
            mask = random_mask(b, g, self.mask_ratio, points.device)
        x_vis = self.encoder(patches, centres, ~mask)  # (B, G_vis, C)
        d = x_vis.shape[-1]
        pos_vis = self.decoder_pos(centres[~mask]).reshape(b, -1, d)
        pos_mask = self.decoder_pos(centres[mask]).reshape(b, -1, d)
        m = pos_mask.shape[1]
        x = torch.cat([x_vis, self.mask_token.expand(b, m, -1)], 1)
        x = self.decoder(x, torch.cat([pos_vis, pos_mask], 1))[:, -m:]  # (B, M, C)
        pred = self.head(x).reshape(b * m, -1, 3)
        target = patches[mask].reshape(b * m, -1, 3)
        return pred, target, mask, centres

    def forward(self, batch) -> LossOutput:
        points = batch[0] if isinstance(batch, (list, tuple)) else batch
        if self.training:
            points = scale_translate(points, self.scale, self.translate)
        pred, target, _, _ = self.reconstruct(points)
        return LossOutput(chamfer_distance(pred, target, self.loss_norm))

    @torch.no_grad()
    def embed(self, batch) -> torch.Tensor:
        points = batch[0] if isinstance(batch, (list, tuple)) else batch
        return self.encoder.features(points)


class PointClassifier(nn.Module):
    """The official fine-tuning model: cls token + encoder on all patches; head on [cls, max tokens]."""

    def __init__(self, encoder: PointEncoder, num_classes: int, dropout: float = 0.5) -> None:
        super().__init__()
        d = encoder.dim
        self.encoder = encoder
        self.cls_token, self.cls_pos = nn.Parameter(torch.zeros(1, 1, d)), nn.Parameter(torch.randn(1, 1, d) * 0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        self.head = nn.Sequential(nn.Linear(2 * d, 256), nn.BatchNorm1d(256), nn.ReLU(inplace=True), nn.Dropout(dropout),
                                  nn.Linear(256, 256), nn.BatchNorm1d(256), nn.ReLU(inplace=True), nn.Dropout(dropout),
                                  nn.Linear(256, num_classes))

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        enc = self.encoder
        patches, centres = enc.group(points)
        tokens, pos = enc.embed(patches), enc.pos(centres)
        b = tokens.shape[0]
        x = torch.cat([self.cls_token.expand(b, -1, -1), tokens], 1)
        pos = torch.cat([self.cls_pos.expand(b, -1, -1), pos], 1)
        x = enc.transformer(x, pos)
        return self.head(torch.cat([x[:, 0], x[:, 1:].max(1).values], -1))
