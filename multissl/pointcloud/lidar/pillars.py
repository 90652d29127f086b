"""A PointPillars-style BEV encoder (Lang et al., CVPR 2019) and a CenterPoint-style heatmap head
(Yin, Zhou, Krahenbuhl, CVPR 2021), pure torch, plus target making, decoding and nuScenes-style
centre-distance AP (Caesar et al., CVPR 2020).

Reference code: PointPillars in https://github.com/open-mmlab/OpenPCDet (``PillarVFE``,
``PointPillarScatter``, ``BaseBEVBackbone``); CenterPoint in https://github.com/tianweiy/CenterPoint
(``CenterHead``, ``draw_heatmap_gaussian``, ``FastFocalLoss``); nuScenes ``calc_ap`` in nuscenes-devkit.

Deviations from the reference code:
- no point cap per pillar and no pillar cap per scene (scatter-max over all points): simpler, same
  result when the caps are not hit.
- a 2-stage BEV CNN (PointPillars has 3) and one upsample: smaller for CPU.
- one CenterHead for cars with one shared 3x3 conv; CenterPoint has per-task heads and separate
  branches per regression target, and rotated NMS / IoU-based evaluation (here centre distance only).
- the Gaussian radius uses CornerNet's third case only (CenterPoint takes the minimum of three).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class Grid:
    """A square BEV grid: x, y in [-extent, extent) metres, cells of ``cell`` metres."""

    extent: float = 25.6
    cell: float = 0.4

    @property
    def size(self) -> int:
        return round(2 * self.extent / self.cell)


class PillarEncoder(nn.Module):
    """Points (sum N, 3) with batch ids -> BEV features (B, C, H, W).

    Per point: x, y, z, offsets to the pillar's point mean (3) and to the pillar centre (2) -> Linear +
    BatchNorm + ReLU (the PointPillars PFN) -> max over the pillar -> scatter to the grid.
    """

    def __init__(self, grid: Grid, channels: int = 64) -> None:
        super().__init__()
        self.grid, self.channels = grid, channels
        self.pfn = nn.Sequential(nn.Linear(8, channels, bias=False), nn.BatchNorm1d(channels), nn.ReLU(inplace=True))

    def forward(self, points: torch.Tensor, batch: torch.Tensor, num_scenes: int) -> torch.Tensor:
        g, n = self.grid, self.grid.size
        ij = torch.floor((points[:, :2] + g.extent) / g.cell).long()
        ok = ((ij >= 0) & (ij < n)).all(1)
        points, batch, ij = points[ok], batch[ok], ij[ok]
        cell = batch * n * n + ij[:, 1] * n + ij[:, 0]  # row = y, column = x
        total = num_scenes * n * n
        count = torch.zeros(total, device=points.device).index_add_(0, cell, torch.ones_like(cell, dtype=points.dtype))
        mean = torch.zeros(total, 3, device=points.device).index_add_(0, cell, points[:, :3]) / count.clamp_min(1)[:, None]
        centre = (ij.to(points.dtype) + 0.5) * g.cell - g.extent
        feats = torch.cat([points[:, :3], points[:, :3] - mean[cell], points[:, :2] - centre], 1)
        x = self.pfn(feats)  # (P, C), >= 0 after ReLU
        bev = torch.zeros(total, self.channels, device=points.device, dtype=x.dtype)
        bev = bev.scatter_reduce_(0, cell[:, None].expand_as(x), x, "amax", include_self=True)
        return bev.reshape(num_scenes, n, n, self.channels).permute(0, 3, 1, 2).contiguous()


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class BEVBackbone(nn.Module):
    """Pillar encoder + a two-stage 2D CNN with an upsampled concatenation (PointPillars' RPN, smaller)."""

    def __init__(self, grid: Grid, channels: int = 64) -> None:
        super().__init__()
        c = channels
        self.pillars = PillarEncoder(grid, c)
        self.block1 = nn.Sequential(_conv(c, c), _conv(c, c))
        self.block2 = nn.Sequential(_conv(c, 2 * c, 2), _conv(2 * c, 2 * c), _conv(2 * c, 2 * c))
        self.up2 = nn.Sequential(nn.ConvTranspose2d(2 * c, c, 2, 2, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True))
        self.out_channels = 2 * c

    def forward(self, points: torch.Tensor, batch: torch.Tensor, num_scenes: int) -> torch.Tensor:
        x = self.pillars(points, batch, num_scenes)
        a = self.block1(x)
        return torch.cat([a, self.up2(self.block2(a))], 1)  # (B, 2C, H, W)


class CenterHead(nn.Module):
    """Heatmap (num_classes) + regression (dx, dy, z, log l, log w, log h, sin yaw, cos yaw) per cell."""

    def __init__(self, cin: int, num_classes: int = 1, hidden: int | None = None) -> None:
        super().__init__()
        hidden = hidden or cin
        self.shared = _conv(cin, hidden)
        self.heat = nn.Conv2d(hidden, num_classes, 3, padding=1)
        self.reg = nn.Sequential(_conv(hidden, hidden), nn.Conv2d(hidden, 8, 1))
        nn.init.constant_(self.heat.bias, -2.19)  # CenterNet / CenterPoint prior 0.1

    def forward(self, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.shared(feats)
        return self.heat(h), self.reg(h)


def gaussian_radius(l_cells: float, w_cells: float, min_overlap: float = 0.1) -> float:
    """CornerNet / CenterPoint's radius so a box shifted by it keeps ``min_overlap`` IoU (case 3 bound)."""
    a, b = 4.0, 2 * (l_cells + w_cells)
    c = (1 - min_overlap) * w_cells * l_cells
    return (b + math.sqrt(b * b - 4 * a * c)) / (2 * a) if b * b - 4 * a * c >= 0 else 0.0


def make_targets(boxes: list[torch.Tensor], labels: list[torch.Tensor], grid: Grid, num_classes: int = 1,
                 min_radius: int = 2) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Heatmaps (B, K, H, W), regression targets (B, 8, H, W) and a centre mask (B, H, W)."""
    n = grid.size
    b = len(boxes)
    heat, reg, mask = torch.zeros(b, num_classes, n, n), torch.zeros(b, 8, n, n), torch.zeros(b, n, n, dtype=torch.bool)
    ys, xs = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    for i, (bx, lb) in enumerate(zip(boxes, labels, strict=True)):
        for box, cls in zip(bx.cpu(), lb.cpu(), strict=True):
            if cls >= num_classes:
                continue
            fx, fy = (box[0] + grid.extent) / grid.cell, (box[1] + grid.extent) / grid.cell
            cx, cy = int(fx), int(fy)
            if not (0 <= cx < n and 0 <= cy < n):
                continue
            r = max(min_radius, int(gaussian_radius(float(box[3]) / grid.cell, float(box[4]) / grid.cell)))
            sigma = (2 * r + 1) / 6
            g = torch.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * sigma * sigma))
            g[(xs - cx).abs() > r] = 0
            g[(ys - cy).abs() > r] = 0
            heat[i, cls] = torch.maximum(heat[i, cls], g)
            reg[i, :, cy, cx] = torch.tensor([fx - cx, fy - cy, box[2], math.log(box[3]), math.log(box[4]),
                                              math.log(box[5]), math.sin(box[6]), math.cos(box[6])])
            mask[i, cy, cx] = True
    return heat, reg, mask


def focal_loss(logits: torch.Tensor, target: torch.Tensor, alpha: float = 2.0, beta: float = 4.0) -> torch.Tensor:
    """CenterNet's penalty-reduced pixel-wise focal loss, normalised by the number of centres."""
    p = logits.sigmoid().clamp(1e-4, 1 - 1e-4)
    pos = target.eq(1).float()
    pos_loss = -(torch.log(p) * (1 - p) ** alpha * pos).sum()
    neg_loss = -(torch.log(1 - p) * p**alpha * (1 - target) ** beta * (1 - pos)).sum()
    return (pos_loss + neg_loss) / pos.sum().clamp_min(1)


def detection_loss(heat_logits, reg_pred, heat, reg, mask, reg_weight: float = 0.25) -> torch.Tensor:
    """Focal heatmap loss + ``reg_weight`` x L1 regression at centre cells (CenterPoint's weighting)."""
    loss = focal_loss(heat_logits, heat)
    if mask.any():
        m = mask.unsqueeze(1).expand_as(reg_pred)
        loss = loss + reg_weight * F.l1_loss(reg_pred[m], reg[m], reduction="sum") / mask.sum().clamp_min(1)
    return loss


@torch.no_grad()
def decode(heat_logits: torch.Tensor, reg_pred: torch.Tensor, grid: Grid, k: int = 50,
           threshold: float = 0.05) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per scene: boxes (D, 7), scores (D,), classes (D,) from a 3x3 max-pool peak search + top-k."""
    b, c, n, _ = heat_logits.shape
    p = heat_logits.sigmoid()
    peaks = p * (F.max_pool2d(p, 3, 1, 1) == p)
    out = []
    for i in range(b):
        s, idx = peaks[i].reshape(-1).topk(min(k, c * n * n))
        keep = s > threshold
        s, idx = s[keep], idx[keep]
        cls, cell = idx // (n * n), idx % (n * n)
        cy, cx = cell // n, cell % n
        r = reg_pred[i][:, cy, cx]  # (8, D)
        x = (cx + r[0]) * grid.cell - grid.extent
        y = (cy + r[1]) * grid.cell - grid.extent
        boxes = torch.stack([x, y, r[2], r[3].exp(), r[4].exp(), r[5].exp(), torch.atan2(r[6], r[7])], 1)
        out.append((boxes.cpu().numpy(), s.cpu().numpy(), cls.cpu().numpy()))
    return out


def center_distance_ap(dets: list[tuple[np.ndarray, np.ndarray]], gts: list[np.ndarray], threshold: float,
                       min_recall: float = 0.1, min_precision: float = 0.1) -> float:
    """nuScenes detection AP at one BEV centre-distance threshold (metres).

    Detections of all scenes sorted by score are greedily matched to the closest unmatched ground
    truth within ``threshold``; precision is interpolated on 101 recall points, the points below
    ``min_recall`` dropped and ``min_precision`` subtracted and renormalised (nuScenes' calc_ap).
    """
    npos = sum(len(g) for g in gts)
    if npos == 0:
        return float("nan")
    rows = [(float(s), i, j) for i, (bx, sc) in enumerate(dets) for j, s in enumerate(sc)]
    rows.sort(key=lambda r: -r[0])
    taken = [np.zeros(len(g), bool) for g in gts]
    tp = np.zeros(len(rows))
    for k, (_, i, j) in enumerate(rows):
        g = gts[i]
        if len(g) == 0:
            continue
        d = np.linalg.norm(g[:, :2] - dets[i][0][j, :2], axis=1)
        d[taken[i]] = np.inf
        m = int(d.argmin())
        if d[m] < threshold:
            taken[i][m], tp[k] = True, 1
    if not len(rows):
        return 0.0
    ctp = np.cumsum(tp)
    prec, rec = ctp / np.arange(1, len(rows) + 1), ctp / npos
    grid = np.linspace(0, 1, 101)
    # precision envelope, then interpolate at the recall grid (0 beyond the reached recall)
    env = np.maximum.accumulate(prec[::-1])[::-1]
    interp = np.array([env[rec >= r].max() if (rec >= r).any() else 0.0 for r in grid])
    interp = interp[round(100 * min_recall) + 1 :] - min_precision
    return float(np.clip(interp, 0, None).mean() / (1 - min_precision))
