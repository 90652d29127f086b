"""Run logs: metrics.jsonl (one JSON object per line), TensorBoard events and a PNG of the curves."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any


class MetricsLogger:
    """Appends metrics to ``metrics.jsonl`` and TensorBoard; only the main process writes."""

    def __init__(self, run_dir: Path, enabled: bool = True, tensorboard: bool = True) -> None:
        self.run_dir, self.enabled = Path(run_dir), enabled
        self._tb = None
        if enabled:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self._file = open(self.run_dir / "metrics.jsonl", "a", buffering=1)
            if tensorboard:
                try:
                    from torch.utils.tensorboard import SummaryWriter

                    self._tb = SummaryWriter(str(self.run_dir / "tensorboard"))
                except Exception:  # tensorboard missing or broken: JSONL is the source of truth
                    self._tb = None

    def log(self, step: int, values: dict[str, Any]) -> None:
        if not self.enabled:
            return
        clean = {k: _scalar(v) for k, v in values.items()}
        self._file.write(json.dumps({"step": step, **clean}) + "\n")
        if self._tb is not None:
            for k, v in clean.items():
                if isinstance(v, (int, float)) and k != "epoch":
                    self._tb.add_scalar(k, v, step)

    def close(self) -> None:
        if self.enabled:
            self._file.close()
            if self._tb is not None:
                self._tb.close()


def _scalar(v: Any) -> Any:
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return v


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def plot_curves(run_dir: Path) -> Path | None:
    """PNG of the training loss and every validation metric over steps (``plots/curves.png``)."""
    rows = read_metrics(run_dir)
    loss = [(r["step"], r["loss"]) for r in rows if isinstance(r.get("loss"), (int, float))]
    vals: dict[str, list[tuple[int, float]]] = {}
    for r in rows:
        for k, v in r.items():
            if k.startswith("val/") and isinstance(v, (int, float)):
                vals.setdefault(k, []).append((r["step"], v))
    if not loss and not vals:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = 1 + len(vals)
    fig, axes = plt.subplots(1, n, figsize=(4.5 * n, 3.5), squeeze=False)
    if loss:
        axes[0, 0].plot(*zip(*loss, strict=True))
    axes[0, 0].set(title="train loss", xlabel="step")
    for ax, (k, pts) in zip(axes[0, 1:], sorted(vals.items()), strict=False):
        ax.plot(*zip(*pts, strict=True), marker="o")
        ax.set(title=k, xlabel="step")
    fig.tight_layout()
    out = Path(run_dir) / "plots" / "curves.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
