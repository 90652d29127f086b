"""Participant-level evaluation (Abbaspourazad et al., ICLR 2024, section 4): segment embeddings are
averaged per participant, then a ridge (regression) or logistic (binary) probe is fitted on the
training participants, its regularisation chosen on validation participants and scored on test
participants, all three participant-disjoint. Segment-level labels (arrhythmia) use the same
probes on segment embeddings, still split by participant."""

from __future__ import annotations

import math

import torch

from multissl.eval import logistic_regression, pearson, ridge_probe
from multissl.eval.roc import roc_auc


def participant_mean(x: torch.Tensor, pid: torch.Tensor, n: int) -> torch.Tensor:
    """(N, D) segment features -> (n, D) per-participant means (NaN features ignored)."""
    x = x.double()
    valid = ~torch.isnan(x)
    s = torch.zeros(n, x.shape[1], dtype=x.dtype).index_add_(0, pid, torch.nan_to_num(x))
    c = torch.zeros(n, x.shape[1], dtype=x.dtype).index_add_(0, pid, valid.double())
    return (s / c).float()  # NaN where a participant has no valid value


def impute(train: torch.Tensor, *others: torch.Tensor) -> list[torch.Tensor]:
    """Replace NaN features by the training mean (0 if a column is all NaN)."""
    mean = torch.nan_to_num(torch.nanmean(train, 0), nan=0.0)
    return [torch.where(torch.isnan(t), mean.expand_as(t), t) for t in (train, *others)]


def _fit_logistic(xtr, ytr, xva, yva, weight_decays):
    best = None
    for wd in weight_decays:
        predict = logistic_regression(xtr, ytr.long(), weight_decay=wd, num_classes=2)
        auc = roc_auc(predict(xva)[:, 1] - predict(xva)[:, 0], yva)
        score = -1.0 if math.isnan(auc) else auc
        if best is None or score > best[0]:
            best = (score, predict)
    return best[1]


def probe_scores(train: tuple[torch.Tensor, torch.Tensor], val: tuple[torch.Tensor, torch.Tensor],
                 test: tuple[torch.Tensor, torch.Tensor] | None, kind: str,
                 alphas: tuple[float, ...], weight_decays: tuple[float, ...]) -> dict[str, float]:
    """Fit one probe on ``train`` (x, y), choose its strength on ``val``, score val (and test).

    Regression: MAE and Pearson r; binary: ROC AUC. Rows with a NaN target are dropped.
    """
    def clean(x, y):
        ok = ~torch.isnan(y)
        return x[ok], y[ok]

    (xtr, ytr), (xva, yva) = clean(*train), clean(*val)
    parts = {"val": (xva, yva)}
    if test is not None:
        parts["test"] = clean(*test)
    xtr, *rest = impute(xtr, *[p[0] for p in parts.values()])
    parts = {k: (x, v[1]) for (k, v), x in zip(parts.items(), rest, strict=True)}
    out: dict[str, float] = {}
    if kind == "regression":
        model, _ = ridge_probe(xtr, ytr, parts["val"][0], parts["val"][1], alphas)
        for split, (x, y) in parts.items():
            pred = model.predict(x).float()
            out[f"{split}/mae"] = float((pred - y).abs().mean())
            out[f"{split}/r"] = float(pearson(pred, y)) if len(y) > 2 else float("nan")
    else:
        predict = _fit_logistic(xtr, ytr, parts["val"][0], parts["val"][1], weight_decays)
        for split, (x, y) in parts.items():
            s = predict(x)
            out[f"{split}/auc"] = roc_auc(s[:, 1] - s[:, 0], y)
    return out


def evaluate_features(seg_feats: torch.Tensor, splits: dict[str, object], targets: list[str], kinds: dict[str, str],
                      segment_labels: list[str], alphas: tuple[float, ...], weight_decays: tuple[float, ...],
                      prefix: str = "", with_test: bool = True) -> dict[str, float]:
    """Probe every target from per-segment features (N, D) of the whole data set.

    ``splits`` maps 'train' / 'val' / 'test' to :class:`~multissl.biosignal.data.Segments` subsets
    carrying ``rows`` (indices into ``seg_feats``). Keys: ``<split>/<prefix><target>_<metric>``.
    """
    def part(name):
        s = splits[name]
        f = seg_feats[s.rows]
        return s, f, participant_mean(f, s.pid, len(s.participants))

    tr, ftr_seg, ftr = part("train")
    va, fva_seg, fva = part("val")
    te, fte_seg, fte = part("test") if with_test else (None, None, None)
    out: dict[str, float] = {}
    for t in targets:
        res = probe_scores((ftr, tr.targets[t]), (fva, va.targets[t]), (fte, te.targets[t]) if te else None,
                           kinds[t], alphas, weight_decays)
        out.update({f"{k.split('/')[0]}/{prefix}{t}_{k.split('/')[1]}": v for k, v in res.items()})
    for lab in segment_labels:
        res = probe_scores((ftr_seg, tr.segment_labels[lab].float()), (fva_seg, va.segment_labels[lab].float()),
                           (fte_seg, te.segment_labels[lab].float()) if te else None, "binary", alphas, weight_decays)
        out.update({f"{k.split('/')[0]}/{prefix}{lab}_{k.split('/')[1]}": v for k, v in res.items()})
    return out
