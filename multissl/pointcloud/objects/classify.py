"""Downstream classification of Point-MAE encoders: frozen-feature probes and full fine-tuning with
single-pass and voted (test-time augmentation) accuracy, as in the official Point-MAE protocol.

The official runner re-draws the 10-vote evaluation up to 300 times and keeps the best; we report ONE
voted pass per seed (never a best-of-N), beside the single-pass accuracy.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from multissl.eval import knn_accuracy, linear_probe
from multissl.pointcloud.objects.pointmae import (
    PointClassifier,
    PointEncoder,
    scale_translate,
)


@torch.no_grad()
def encode(encoder: PointEncoder, points: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """[mean, max]-pooled encoder tokens (N, 2C) of clouds (N, P, 3), in eval mode."""
    was = encoder.training
    encoder.eval()
    device = next(encoder.parameters()).device
    out = [encoder.features(points[s : s + batch_size].to(device)).float().cpu()
           for s in range(0, len(points), batch_size)]
    encoder.train(was)
    return torch.cat(out)


def probe(encoder: PointEncoder, tr_x, tr_y, te_x, te_y, knn_k: int = 20) -> dict[str, float]:
    """Logistic-regression (L-BFGS) and weighted-kNN accuracy on frozen features."""
    ftr, fte = encode(encoder, tr_x), encode(encoder, te_x)
    lin = linear_probe(ftr, tr_y, fte, te_y)
    return {"linear_acc": float(lin.last_test), "knn_acc": knn_accuracy(ftr, tr_y, fte, te_y, k=knn_k)}


@dataclass
class FinetuneConfig:
    """The official finetune_modelnet.yaml values as defaults."""

    epochs: int = 300
    lr: float = 5e-4
    weight_decay: float = 0.05
    batch_size: int = 32
    warmup_epochs: int = 10
    label_smoothing: float = 0.2
    votes: int = 10
    grad_clip: float = 10.0


@torch.no_grad()
def predict(model: PointClassifier, x: torch.Tensor, votes: int = 0, batch_size: int = 64,
            generator: torch.Generator | None = None) -> torch.Tensor:
    """Class logits (N, C); with ``votes`` > 0, the mean logits of that many scale-and-translate copies."""
    model.eval()
    device = next(model.parameters()).device
    out = []
    for s in range(0, len(x), batch_size):
        xb = x[s : s + batch_size].to(device)
        if votes:
            out.append(torch.stack([model(scale_translate(xb)) for _ in range(votes)]).mean(0).cpu())
        else:
            out.append(model(xb).cpu())
    return torch.cat(out)


def finetune(encoder: PointEncoder, tr_x, tr_y, va_x, va_y, te_x, te_y, num_classes: int,
             cfg: FinetuneConfig, seed: int = 0, log=None) -> dict[str, float]:
    """Fine-tune a copy of ``encoder`` with the classification head; select the epoch on validation.

    Returns single-pass and ``votes``-vote test accuracy of the best-validation epoch's weights.
    """
    torch.manual_seed(seed)
    model = PointClassifier(copy.deepcopy(encoder), num_classes)
    device = next(encoder.parameters()).device
    model.to(device)
    params = list(model.named_parameters())
    skip = [p.ndim <= 1 or "token" in n or n.endswith("cls_pos") for n, p in params]
    decay = [p for (_, p), s in zip(params, skip, strict=True) if not s]
    no_decay = [p for (_, p), s in zip(params, skip, strict=True) if s]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr)
    steps_per_epoch = max(1, len(tr_x) // cfg.batch_size)
    total, warm = cfg.epochs * steps_per_epoch, cfg.warmup_epochs * steps_per_epoch

    def lr_at(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    g = torch.Generator().manual_seed(seed)
    best_val, best_state = -1.0, None
    with torch.enable_grad():
        for epoch in range(cfg.epochs):
            model.train()
            order = torch.randperm(len(tr_x), generator=g)
            for s in range(steps_per_epoch):
                i = order[s * cfg.batch_size : (s + 1) * cfg.batch_size]
                xb = scale_translate(tr_x[i].to(device))
                loss = F.cross_entropy(model(xb), tr_y[i].to(device), label_smoothing=cfg.label_smoothing)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                opt.step()
                sched.step()
            val = float((predict(model, va_x).argmax(1) == va_y).float().mean())
            if log:
                log(f"finetune epoch {epoch + 1}/{cfg.epochs} loss {float(loss):.3f} val {val:.4f}")
            if val >= best_val:
                best_val, best_state = val, copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    single = float((predict(model, te_x).argmax(1) == te_y).float().mean())
    voted = float((predict(model, te_x, votes=cfg.votes).argmax(1) == te_y).float().mean())
    return {"finetune_val_acc": best_val, "finetune_acc": single, "finetune_vote_acc": voted}
