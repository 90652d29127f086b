"""Pictures: Point-MAE test clouds, their masked input and the reconstruction (matplotlib, offscreen)."""

from __future__ import annotations

from pathlib import Path

import torch


@torch.no_grad()
def reconstruction_png(method, clouds: torch.Tensor, path: Path, seed: int = 0) -> Path:
    """One row per cloud: original, visible patches (masked input), visible + reconstructed masked patches."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    was = method.training
    method.eval()
    torch.manual_seed(seed)
    x = clouds.to(method.mask_token.device)
    pred, _, mask, centres = method.reconstruct(x)
    patches, _ = method.encoder.group(x)
    method.train(was)
    b = x.shape[0]
    pred = pred.reshape(b, -1, pred.shape[1], 3)
    fig = plt.figure(figsize=(9, 3 * b))
    for i in range(b):
        vis = (patches[i][~mask[i]] + centres[i][~mask[i]][:, None]).reshape(-1, 3).cpu()
        rec = (pred[i] + centres[i][mask[i]][:, None]).reshape(-1, 3).cpu()
        for j, (title, pts, col) in enumerate([("input", x[i].cpu(), None), ("masked input", vis, None),
                                               ("reconstruction", torch.cat([vis, rec]), len(vis))]):
            ax = fig.add_subplot(b, 3, 3 * i + j + 1, projection="3d")
            colors = ["tab:blue"] * len(pts) if col is None else ["tab:blue"] * col + ["tab:red"] * (len(pts) - col)
            ax.scatter(pts[:, 0], pts[:, 1], pts[:, 2], s=1, c=colors)
            ax.set_title(title, fontsize=8)
            ax.set_axis_off()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80, bbox_inches="tight")
    plt.close(fig)
    return path
