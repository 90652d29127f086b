"""Few-label BEV detection on top of a (pre-trained or scratch) backbone: CenterPoint-style training on
labelled scenes with flip / rotation augmentation, evaluated by nuScenes centre-distance AP."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np
import torch

from multissl.eval.batchnorm import recalibrate_batchnorm
from multissl.pointcloud.lidar.pillars import (
    BEVBackbone,
    CenterHead,
    Grid,
    center_distance_ap,
    decode,
    detection_loss,
    focal_loss,
    make_targets,
)


@dataclass
class DetConfig:
    steps: int = 300
    batch_size: int = 4
    lr: float = 1e-3
    weight_decay: float = 0.01
    thresholds: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0)
    num_classes: int = 1  # cars only (class 0)


def _augment(points, batch, boxes, g: torch.Generator):
    """Random flip (y -> -y) and rotation U(-pi/4, pi/4) per scene, applied to points and boxes."""
    b = len(boxes)
    ang = (torch.rand(b, generator=g) * 2 - 1) * math.pi / 4
    flip = torch.rand(b, generator=g) < 0.5
    out_pts = points.clone()
    new_boxes = []
    for i in range(b):
        m = batch == i
        p = out_pts[m]
        bx = boxes[i].clone()
        if flip[i]:
            p[:, 1] = -p[:, 1]
            bx[:, 1], bx[:, 6] = -bx[:, 1], -bx[:, 6]
        c, s = math.cos(ang[i]), math.sin(ang[i])
        x, y = p[:, 0].clone(), p[:, 1].clone()
        p[:, 0], p[:, 1] = c * x - s * y, s * x + c * y
        bxx, bxy = bx[:, 0].clone(), bx[:, 1].clone()
        bx[:, 0], bx[:, 1] = c * bxx - s * bxy, s * bxx + c * bxy
        bx[:, 6] = bx[:, 6] + ang[i]
        out_pts[m] = p
        new_boxes.append(bx)
    return out_pts, new_boxes


def _batch(scenes: list[dict]):
    pts = [torch.as_tensor(s["points0"][:, :3]).float() for s in scenes]
    return (torch.cat(pts), torch.cat([torch.full((len(p),), i, dtype=torch.long) for i, p in enumerate(pts)]),
            [torch.as_tensor(s["boxes0"]).float() for s in scenes], [torch.as_tensor(s["labels0"]) for s in scenes])


def train_detector(backbone: BEVBackbone, scenes: list[dict], grid: Grid, cfg: DetConfig, seed: int = 0):
    """Fine-tune a copy of ``backbone`` with a fresh CenterHead on ``scenes``; returns (backbone, head)."""
    torch.manual_seed(seed)
    bb = copy.deepcopy(backbone)
    head = CenterHead(bb.out_channels, cfg.num_classes)
    params = list(bb.parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.lr, total_steps=cfg.steps, pct_start=0.4)  # CenterPoint: one-cycle
    g = torch.Generator().manual_seed(seed)
    bb.train()
    head.train()
    with torch.enable_grad():
        for _ in range(cfg.steps):
            idx = torch.randint(0, len(scenes), (min(cfg.batch_size, len(scenes)),), generator=g).tolist()
            pts, bid, boxes, labels = _batch([scenes[i] for i in idx])
            pts, boxes = _augment(pts, bid, boxes, g)
            heat, reg, mask = make_targets(boxes, labels, grid, cfg.num_classes)
            hl, rp = head(bb(pts, bid, len(idx)))
            loss = detection_loss(hl, rp, heat, reg, mask)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 35.0)
            opt.step()
            sched.step()
    return bb, head


@torch.no_grad()
def evaluate_detector(bb: BEVBackbone, head: CenterHead, scenes: list[dict], grid: Grid,
                      thresholds=(0.5, 1.0, 2.0, 4.0), batch_size: int = 8) -> dict[str, float]:
    """AP of class 0 (car) at each centre-distance threshold and their mean (nuScenes mAP style)."""
    bb.eval()
    head.eval()
    dets, gts = [], []
    for s in range(0, len(scenes), batch_size):
        chunk = scenes[s : s + batch_size]
        pts, bid, boxes, labels = _batch(chunk)
        hl, rp = head(bb(pts, bid, len(chunk)))
        for (bx, sc, cl), gt, lb in zip(decode(hl, rp, grid), boxes, labels, strict=True):
            dets.append((bx[cl == 0], sc[cl == 0]))
            g = gt[lb == 0].numpy()
            gts.append(g[(np.abs(g[:, :2]) < grid.extent).all(1)])
    out = {f"ap@{t:g}m": center_distance_ap(dets, gts, t) for t in thresholds}
    out["map"] = float(np.mean(list(out.values())))
    return out


def recalibrate_bn(backbone: BEVBackbone, scenes: list[dict], batch_size: int = 8) -> BEVBackbone:
    """A copy of ``backbone`` whose batch-norm statistics are re-estimated on ``scenes`` (weights
    untouched), in eval mode, so that a random-init and a pre-trained backbone are normalised the same way."""

    def run(bb: BEVBackbone, chunk: list[dict]) -> None:
        pts, bid, _, _ = _batch(chunk)
        bb(pts, bid, len(chunk))

    chunks = [scenes[s : s + batch_size] for s in range(0, len(scenes), batch_size)]
    return recalibrate_batchnorm(backbone, chunks, run)


@torch.no_grad()
def bev_features(backbone: BEVBackbone, scenes: list[dict], batch_size: int = 8) -> torch.Tensor:
    """Frozen BEV features (N, C, H, W) of ``scenes`` (backbone in eval mode)."""
    backbone.eval()
    out = []
    for s in range(0, len(scenes), batch_size):
        chunk = scenes[s : s + batch_size]
        pts, bid, _, _ = _batch(chunk)
        out.append(backbone(pts, bid, len(chunk)))
    return torch.cat(out)


class LinearCenterProbe(torch.nn.Module):
    """A 1x1-conv CenterPoint-style probe: per BEV cell, a linear heatmap logit and 8 linear regressions."""

    def __init__(self, cin: int, num_classes: int = 1) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.conv = torch.nn.Conv2d(cin, num_classes + 8, 1)
        torch.nn.init.constant_(self.conv.bias[:num_classes], -2.19)

    def forward(self, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.conv(feats)
        return out[:, : self.num_classes], out[:, self.num_classes :]


def probe_detector(backbone: BEVBackbone, train: list[dict], test: list[dict], grid: Grid, steps: int = 200,
                   lr: float = 3e-3, head: str = "center", batch_size: int = 8, seed: int = 0,
                   thresholds=(0.5, 1.0, 2.0, 4.0)) -> dict[str, float]:
    """Frozen-backbone detection probe: the measure of a (pre-trained or random-init) BEV backbone.

    The backbone's weights are frozen; its batch-norm statistics are re-estimated on the labelled
    ``train`` scenes (the same treatment for every backbone, see ``recalibrate_bn``). A fresh head,
    ``center`` (``CenterHead``: one shared 3x3 conv, then heatmap and regression branches) or ``linear``
    (1x1 conv, ``LinearCenterProbe``; too weak to localise centres at 1.2 m cells), is trained with Adam
    for ``steps`` mini-batches of cached features of the ``train`` scenes (no augmentation), then
    measured on the held-out ``test`` scenes: the CenterNet focal heatmap loss (``focal``), the full
    detection loss (``loss``, focal + 0.25 L1), and car AP at the centre-distance thresholds + ``map``.
    """
    torch.manual_seed(seed)
    bb = recalibrate_bn(backbone, train)
    ftr, fte = bev_features(bb, train), bev_features(bb, test)

    def cars(scenes):
        return [torch.as_tensor(s["boxes0"]).float() for s in scenes], [torch.as_tensor(s["labels0"]) for s in scenes]

    htr, rtr, mtr = make_targets(*cars(train), grid, 1)
    hte, rte, mte = make_targets(*cars(test), grid, 1)
    probe = LinearCenterProbe(bb.out_channels) if head == "linear" else CenterHead(bb.out_channels, 1)
    opt = torch.optim.Adam(probe.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    g = torch.Generator().manual_seed(seed)
    probe.train()
    with torch.enable_grad():
        for _ in range(steps):
            idx = torch.randint(0, len(train), (min(batch_size, len(train)),), generator=g)
            hl, rp = probe(ftr[idx])
            loss = detection_loss(hl, rp, htr[idx], rtr[idx], mtr[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    probe.eval()
    with torch.no_grad():
        hl, rp = probe(fte)
        out = {"focal": float(focal_loss(hl, hte)), "loss": float(detection_loss(hl, rp, hte, rte, mte))}
        dets, gts = [], []
        for (bx, sc, cl), gt, lb in zip(decode(hl, rp, grid), *cars(test), strict=True):
            dets.append((bx[cl == 0], sc[cl == 0]))
            gg = gt[lb == 0].numpy()
            gts.append(gg[(np.abs(gg[:, :2]) < grid.extent).all(1)])
    ap = {f"ap@{t:g}m": center_distance_ap(dets, gts, t) for t in thresholds}
    out.update(ap)
    out["map"] = float(np.mean(list(ap.values())))
    return out
