"""The report's own pictures: one figure per recipe with the training loss and validation curves of all
its seeds overlaid (matplotlib, Agg backend, PNG)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

MAX_PANELS = 4  # train loss + up to three validation metrics (the selection metric first)


def _series(rows: list[dict[str, Any]], key: str) -> tuple[list[float], list[float]]:
    pts = [(r["step"], r[key]) for r in rows
           if isinstance(r.get(key), (int, float)) and not isinstance(r.get(key), bool) and "step" in r]
    return [p[0] for p in pts], [p[1] for p in pts]


def curve_keys(runs_curves: list[list[dict[str, Any]]], select_metric: str | None) -> list[str]:
    """The panels of a recipe's figure: ``loss`` then validation metrics, the selection metric first."""
    vals: list[str] = []
    for rows in runs_curves:
        for r in rows:
            vals += [k for k in r if k.startswith("val/") and k not in vals]
    vals.sort(key=lambda k: (k != select_metric, k))
    has_loss = any("loss" in r for rows in runs_curves for r in rows)
    return ((["loss"] if has_loss else []) + vals)[:MAX_PANELS]


def curves_png(title: str, runs: list[tuple[str, list[dict[str, Any]]]], select_metric: str | None,
               out: Path) -> Path | None:
    """Write ``out``: one panel per curve, one line per run (labelled ``seed N``); None if nothing was logged."""
    keys = curve_keys([rows for _, rows in runs], select_metric)
    if not keys:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(keys), figsize=(3.6 * len(keys), 2.8), squeeze=False)
    many = len(runs) > 8
    for ax, key in zip(axes[0], keys, strict=True):
        for label, rows in runs:
            x, y = _series(rows, key)
            if x:
                ax.plot(x, y, marker=None if many or len(x) > 20 else "o", markersize=3, linewidth=1,
                        alpha=0.35 if many else 0.9, label=label)
        ax.set_title("train loss" if key == "loss" else key, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    if not many and len(runs) > 1:
        axes[0][0].legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out
