"""Frozen-feature probes: weighted kNN, logistic regression (linear probe) and ridge regression."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F


@torch.no_grad()
def knn_predict(
    train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, num_classes: int | None = None,
    k: int = 200, temperature: float = 0.1, batch_size: int = 1024,
) -> torch.Tensor:
    """Weighted kNN on cosine similarity (Wu et al. 2018 InstDisc; solo-learn): each of the k nearest
    training samples votes for its class with weight exp(sim / T). Returns (N_test, C) scores."""
    num_classes = num_classes or int(train_y.max()) + 1
    train_x, test_x = F.normalize(train_x.float(), dim=1), F.normalize(test_x.float(), dim=1)
    k = min(k, train_x.shape[0])
    out = []
    for start in range(0, test_x.shape[0], batch_size):
        sim, idx = (test_x[start : start + batch_size] @ train_x.t()).topk(k, dim=1)
        weights = (sim.float() / temperature).exp()  # float even under bf16 autocast
        votes = torch.zeros(sim.shape[0], num_classes, device=sim.device)
        votes.scatter_add_(1, train_y.to(idx.device)[idx], weights)
        out.append(votes)
    return torch.cat(out)


def knn_accuracy(train_x, train_y, test_x, test_y, k: int = 200, temperature: float = 0.1,
                 num_classes: int | None = None) -> float:
    """Top-1 accuracy of :func:`knn_predict`."""
    scores = knn_predict(train_x, train_y, test_x, num_classes, k, temperature)
    return float((scores.argmax(1).cpu() == test_y.cpu()).float().mean())


def _standardize(train: torch.Tensor, *others: torch.Tensor) -> list[torch.Tensor]:
    mean, std = train.mean(0), train.std(0).clamp_min(1e-6)
    return [(t - mean) / std for t in (train, *others)]


@dataclass
class LinearProbeResult:
    """Accuracies of a linear classifier; ``best_val_*`` are at the epoch with the best validation accuracy."""

    last_test: float | None
    best_val: float | None
    best_val_test: float | None
    best_epoch: int | None
    history: list[dict[str, float]] = field(default_factory=list)


def logistic_regression(
    train_x: torch.Tensor, train_y: torch.Tensor, weight_decay: float = 1e-4, max_iter: int = 200,
    standardize: bool = True, num_classes: int | None = None,
):
    """Multinomial logistic regression fitted with full-batch L-BFGS (sklearn's lbfgs objective:
    mean cross-entropy + weight_decay/2 * ||W||^2). Returns a predict function giving class scores."""
    x = train_x.float()
    mean = x.mean(0) if standardize else torch.zeros(x.shape[1], device=x.device)
    std = x.std(0).clamp_min(1e-6) if standardize else torch.ones(x.shape[1], device=x.device)
    x = (x - mean) / std
    c = num_classes or int(train_y.max()) + 1
    w = torch.zeros(x.shape[1], c, device=x.device, requires_grad=True)
    b = torch.zeros(c, device=x.device, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1, max_iter=max_iter, history_size=20, line_search_fn="strong_wolfe",
                            tolerance_grad=1e-7, tolerance_change=1e-10)
    y = train_y.to(x.device).long()

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(x @ w + b, y) + 0.5 * weight_decay * (w * w).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    w_, b_ = w.detach(), b.detach()

    def predict(z: torch.Tensor) -> torch.Tensor:
        return ((z.float().to(w_.device) - mean) / std) @ w_ + b_

    return predict


def linear_probe(
    train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor,
    val_x: torch.Tensor | None = None, val_y: torch.Tensor | None = None, *, optimizer: str = "lbfgs",
    epochs: int = 100, lr: float = 0.01, weight_decay: float = 1e-4, batch_size: int | None = None,
    standardize: bool = True, seed: int = 0,
) -> LinearProbeResult:
    """Train one linear layer on frozen features and report test accuracy.

    ``lbfgs``: a converged logistic regression (selection-free). ``adam`` / ``sgd``: ``epochs`` of
    (mini-)batch training; with a validation split it also reports the test accuracy at the epoch of
    best validation accuracy (GraphMAE's protocol), never selecting on test.
    """
    if optimizer == "lbfgs":
        predict = logistic_regression(train_x, train_y, weight_decay, standardize=standardize,
                                      num_classes=int(max(train_y.max(), test_y.max())) + 1)
        test_acc = float((predict(test_x).argmax(1).cpu() == test_y.cpu()).float().mean())
        val_acc = None
        if val_x is not None:
            val_acc = float((predict(val_x).argmax(1).cpu() == val_y.cpu()).float().mean())
        return LinearProbeResult(test_acc, val_acc, test_acc, None)
    g = torch.Generator().manual_seed(seed)
    xs = [train_x.float(), test_x.float()] + ([val_x.float()] if val_x is not None else [])
    if standardize:
        xs = _standardize(*xs)
    tr, te = xs[0], xs[1]
    va = xs[2] if val_x is not None else None
    c = int(max(train_y.max(), test_y.max())) + 1
    layer = torch.nn.Linear(tr.shape[1], c).to(tr.device)
    with torch.no_grad():
        torch.nn.init.xavier_uniform_(layer.weight, generator=g)
        layer.bias.zero_()
    opt = (torch.optim.Adam(layer.parameters(), lr=lr, weight_decay=weight_decay) if optimizer == "adam"
           else torch.optim.SGD(layer.parameters(), lr=lr, momentum=0.9, weight_decay=weight_decay))
    y = train_y.to(tr.device).long()
    best = LinearProbeResult(None, None, None, None)
    for epoch in range(epochs):
        with torch.enable_grad():
            layer.train()
            order = torch.randperm(tr.shape[0], generator=g) if batch_size else torch.arange(tr.shape[0])
            bs = batch_size or tr.shape[0]
            for s in range(0, tr.shape[0], bs):
                i = order[s : s + bs].to(tr.device)
                loss = F.cross_entropy(layer(tr[i]), y[i])
                opt.zero_grad()
                loss.backward()
                opt.step()
        with torch.no_grad():
            test_acc = float((layer(te).argmax(1).cpu() == test_y.cpu()).float().mean())
            rec = {"epoch": epoch, "test": test_acc}
            if va is not None:
                val_acc = float((layer(va).argmax(1).cpu() == val_y.cpu()).float().mean())
                rec["val"] = val_acc
                if best.best_val is None or val_acc >= best.best_val:
                    best.best_val, best.best_val_test, best.best_epoch = val_acc, test_acc, epoch
            best.history.append(rec)
    best.last_test = best.history[-1]["test"]
    return best


@dataclass
class RidgeModel:
    """A fitted ridge regression (targets may be multi-output)."""

    weight: torch.Tensor
    bias: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        return ((x.double() - self.mean) / self.std) @ self.weight + self.bias


def ridge_fit(x: torch.Tensor, y: torch.Tensor, alpha: float = 1.0, standardize: bool = True) -> RidgeModel:
    """Closed-form ridge regression, minimising ||y - Xw - b||^2 + alpha ||w||^2 (sklearn's Ridge)."""
    x, y = x.double(), y.double()
    squeeze = y.dim() == 1
    if squeeze:
        y = y[:, None]
    mean = x.mean(0) if standardize else torch.zeros(x.shape[1], dtype=x.dtype, device=x.device)
    std = x.std(0).clamp_min(1e-8) if standardize else torch.ones(x.shape[1], dtype=x.dtype, device=x.device)
    xs = (x - mean) / std
    xm, ym = xs.mean(0), y.mean(0)
    xc, yc = xs - xm, y - ym
    a = xc.t() @ xc + alpha * torch.eye(x.shape[1], dtype=x.dtype, device=x.device)
    w = torch.linalg.solve(a, xc.t() @ yc)
    b = ym - xm @ w
    if squeeze:
        w, b = w[:, 0], b[0]
    return RidgeModel(w, b, mean, std)


def ridge_probe(
    train_x: torch.Tensor, train_y: torch.Tensor, val_x: torch.Tensor, val_y: torch.Tensor,
    alphas: tuple[float, ...] = (0.01, 0.1, 1.0, 10.0, 100.0, 1000.0),
) -> tuple[RidgeModel, float]:
    """Ridge regression with alpha chosen by validation MSE; returns (model, chosen alpha)."""
    best = None
    for a in alphas:
        m = ridge_fit(train_x, train_y, a)
        err = float(((m.predict(val_x) - val_y.double()) ** 2).mean())
        if best is None or err < best[0]:
            best = (err, a, m)
    assert best is not None
    return best[2], best[1]


def layer_weighted_probe(
    x: torch.Tensor, y: torch.Tensor, train: list[int], val: list[int], test: list[int], num_classes: int,
    epochs: int = 300, lr: float = 1e-2, weight_decay: float = 1e-4, seed: int = 0,
) -> dict:
    """SUPERB's featurizer as a probe (Yang et al., SUPERB, Interspeech 2021; s3prl ``Featurizer``): a
    learnable softmax-weighted sum of the S hidden states of frozen features ``x`` (N, S, P) followed by one
    linear layer, full-batch Adam. Each state is standardised with training statistics first (s3prl offers
    a LayerNorm there). Reports the test accuracy at the epoch of best validation accuracy (never selected on
    test) and the layer weights at that epoch: {"val", "test", "weights"}."""
    g = torch.Generator().manual_seed(seed)
    idx = [torch.tensor(i, dtype=torch.long) for i in (train, val, test)]
    mean, std = x[idx[0]].mean(0, keepdim=True), x[idx[0]].std(0, keepdim=True).clamp_min(1e-6)
    z = (x.float() - mean) / std
    logits_w = torch.zeros(x.shape[1], requires_grad=True)
    layer = torch.nn.Linear(x.shape[2], num_classes)
    with torch.no_grad():
        torch.nn.init.xavier_uniform_(layer.weight, generator=g)
        layer.bias.zero_()
    opt = torch.optim.Adam([logits_w, *layer.parameters()], lr=lr, weight_decay=weight_decay)
    (ztr, zva, zte), (ytr, yva, yte) = [z[i] for i in idx], [y[i] for i in idx]

    def scores(zs: torch.Tensor) -> torch.Tensor:
        return layer((zs * logits_w.softmax(0)[None, :, None]).sum(1))

    def acc(zs: torch.Tensor, ys: torch.Tensor) -> float:
        return float((scores(zs).argmax(1) == ys).float().mean()) if len(ys) else float("nan")

    best: dict = {"val": -1.0, "test": float("nan"), "weights": None}
    for _ in range(epochs):
        with torch.enable_grad():
            loss = F.cross_entropy(scores(ztr), ytr)
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            va = acc(zva, yva) if len(yva) else 0.0
            if va > best["val"]:
                best = {"val": va, "test": acc(zte, yte), "weights": logits_w.softmax(0).tolist()}
    return best
