"""Embedding diagnostics: alignment and uniformity (Wang & Isola, ICML 2020) and a 2-D projection plot."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F


def alignment(x: torch.Tensor, y: torch.Tensor, alpha: float = 2.0) -> float:
    """E ||f(x) - f(y)||^alpha over positive pairs of L2-normalised embeddings (lower = better aligned)."""
    x, y = F.normalize(x.float(), dim=-1), F.normalize(y.float(), dim=-1)
    return float((x - y).norm(dim=1).pow(alpha).mean())


def uniformity(x: torch.Tensor, t: float = 2.0, max_points: int = 10000) -> float:
    """log E exp(-t ||f(x) - f(y)||^2) over all pairs of L2-normalised embeddings (lower = more uniform)."""
    x = F.normalize(x.float(), dim=-1)
    if x.shape[0] > max_points:
        x = x[torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(0))[:max_points]]
    return float(torch.pdist(x, p=2).pow(2).mul(-t).exp().mean().log())


def pca_2d(x: torch.Tensor) -> torch.Tensor:
    """Project onto the top two principal components (deterministic SVD)."""
    x = x.float() - x.float().mean(0)
    _, _, v = torch.linalg.svd(x, full_matrices=False)
    return x @ v[:2].t()


def plot_projection(x: torch.Tensor, labels: torch.Tensor | None, path: str | Path, title: str = "") -> Path:
    """PNG scatter of a 2-D PCA projection of ``x`` coloured by ``labels``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xy = pca_2d(F.normalize(x.float(), dim=-1)).cpu().numpy()
    fig, ax = plt.subplots(figsize=(5, 5))
    c = None if labels is None else labels.cpu().numpy()
    sc = ax.scatter(xy[:, 0], xy[:, 1], c=c, s=4, cmap="tab10")
    if labels is not None:
        ax.legend(*sc.legend_elements(), loc="best", fontsize=6, markerscale=0.7)
    ax.set_title(title or "PCA of L2-normalised embeddings")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
