"""What the training loop says when the loss stops being finite: bad input data, or divergence with
the checkpoint to resume from and the command that does it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from multissl.errors import DataError, MultisslError, TrainingDivergedError


def nonfinite_input(batch: Any, path: str = "batch") -> str | None:
    """The first place in ``batch`` (tensors, dicts, lists, objects with tensor attributes) holding a
    NaN or infinite float, or None."""
    if isinstance(batch, torch.Tensor):
        if batch.is_floating_point() and not bool(torch.isfinite(batch).all()):
            return path
        return None
    if isinstance(batch, dict):
        items = batch.items()
    elif isinstance(batch, (list, tuple)):
        items = enumerate(batch)
    else:
        items = [(k, v) for k, v in vars(batch).items() if isinstance(v, torch.Tensor)] if hasattr(batch, "__dict__") \
            else []
    for k, v in items:
        found = nonfinite_input(v, f"{path}[{k!r}]" if not isinstance(k, int) else f"{path}[{k}]")
        if found:
            return found
    return None


def divergence_error(loss: torch.Tensor, batch: Any, step: int, epoch: int, run_dir: Path,
                     last_step: int | None, lr: float, recipe_name: str) -> MultisslError:
    """A DataError when the batch itself holds NaN/inf (no learning rate fixes that), otherwise a
    TrainingDivergedError naming the last checkpoint, how many finite steps followed it, and the
    exact command that resumes from it at a lower learning rate."""
    where = nonfinite_input(batch)
    if where is not None:
        return DataError(f"The training data hold NaN or infinite values ({where} of the batch at step {step}, "
                         f"epoch {epoch}); the loss became {loss.item()}. Clean or drop those rows in the data "
                         "files; a lower learning rate will not help.")
    last = Path(run_dir) / "checkpoints" / "last"
    if last.exists():
        from multissl.train.checkpoint import read_state

        try:
            last_step = read_state(last)["step"]
        except (MultisslError, KeyError):
            last_step = None
    what = f"The loss became {loss.item()} at step {step} (epoch {epoch}); nothing was saved from the diverged state."
    restart = (f"Start again with a lower learning rate: multissl train {recipe_name} train.lr={lr / 10:g} "
               f"--run-dir {run_dir} --overwrite (or set train.clip_grad_norm, or precision bf16 instead of fp16).")
    if last_step is None or not last.exists():
        return TrainingDivergedError(f"{what} No checkpoint was written before. {restart}")
    finite = step - 1 - last_step
    reason = _not_worth(Path(run_dir), last_step, finite)
    if reason is None:
        return TrainingDivergedError(
            f"{what} The last checkpoint ({last}, step {last_step}) was followed by {finite} finite steps. Resume "
            f"from it with a lower learning rate, which applies from step {last_step} on: multissl train "
            f"{recipe_name} train.lr={lr / 10:g} --resume {run_dir} (or set train.clip_grad_norm).")
    previous = last.with_name("previous")
    prev_step = _step_of(previous)
    if prev_step is not None and _not_worth(Path(run_dir), prev_step, step - 1 - prev_step) is None:
        return TrainingDivergedError(
            f"{what} The last checkpoint (step {last_step}) is not worth resuming: {reason}; the one before it "
            f"({previous}, step {prev_step}) was followed by {step - 1 - prev_step} finite steps. Resume from it "
            f"with a lower learning rate: multissl train {recipe_name} train.lr={lr / 10:g} --resume {previous} "
            "(or set train.clip_grad_norm).")
    return TrainingDivergedError(f"{what} The last checkpoint (step {last_step}) is not worth resuming: {reason}. "
                                 f"{restart}")


def _step_of(folder: Path) -> int | None:
    from multissl.train.checkpoint import read_state

    try:
        return read_state(folder)["step"] if folder.is_dir() else None
    except (MultisslError, KeyError):
        return None


def _not_worth(run_dir: Path, ckpt_step: int, finite: int) -> str | None:
    """Why resuming from the checkpoint at ``ckpt_step`` would not help, or None when it looks healthy."""
    if finite <= 0:
        return "its weights already give a non-finite loss"
    blown = _exploding(run_dir, ckpt_step)
    if blown:
        return f"the loss after it ({blown[1]:.3g}) was already over 1000 x the run's first loss ({blown[0]:.3g})"
    return None


def _exploding(run_dir: Path, last_step: int) -> tuple[float, float] | None:
    """(first logged loss, first loss logged after ``last_step``) when the latter is over 1000x the former."""
    import json
    import math

    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return None
    losses = []
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row.get("loss"), (int, float)) and isinstance(row.get("step"), int):
            losses.append((row["step"], float(row["loss"])))
    after = [v for s, v in losses if s > last_step]
    if not losses or not after or not math.isfinite(after[0]):
        return None
    first = abs(losses[0][1])
    return (losses[0][1], after[0]) if abs(after[0]) > 1000 * max(first, 1e-12) else None
