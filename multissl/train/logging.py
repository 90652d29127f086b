"""Run logs: metrics.jsonl (one JSON object per line), TensorBoard events and a PNG of the curves."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any


class MetricsLogger:
    """Appends metrics to ``metrics.jsonl`` and TensorBoard; only the main process writes.

    ``resume_step``: the step a resumed run restarts from. Rows logged after it by the interrupted run
    are moved to ``metrics.replaced.jsonl`` (kept, not lost) and TensorBoard purges its events after it,
    so each step appears once in the run's curves, as if the run had never stopped."""

    def __init__(self, run_dir: Path, enabled: bool = True, tensorboard: bool = True,
                 resume_step: int | None = None) -> None:
        self.run_dir, self.enabled = Path(run_dir), enabled
        self._tb = None
        if enabled:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            if resume_step is not None:
                _drop_rows_after(self.run_dir, resume_step)
            self._file = open(self.run_dir / "metrics.jsonl", "a", buffering=1)
            if tensorboard:
                try:
                    from torch.utils.tensorboard import SummaryWriter

                    purge = None if resume_step is None else resume_step + 1
                    self._tb = SummaryWriter(str(self.run_dir / "tensorboard"), purge_step=purge)
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


def _drop_rows_after(run_dir: Path, step: int) -> None:
    """Move metric rows with ``step`` > ``step`` (an interrupted run's tail) to metrics.replaced.jsonl."""
    import os

    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return
    keep, tail = [], []
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        try:
            row_step = json.loads(line).get("step")
        except ValueError:  # a line cut by the kill: part of the tail
            row_step = None
        (keep if isinstance(row_step, int) and row_step <= step else tail).append(line)
    if not tail:
        return
    with open(run_dir / "metrics.replaced.jsonl", "a") as f:
        f.write("".join(line + "\n" for line in tail))
    tmp = path.with_suffix(".jsonl.tmp")
    tmp.write_text("".join(line + "\n" for line in keep))
    os.replace(tmp, path)


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
