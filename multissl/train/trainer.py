"""The one training loop, on Hugging Face accelerate: CPU, one GPU, or many GPUs / nodes under
``accelerate launch`` or ``torchrun`` with no code change.

It owns precision, gradient accumulation, clipping, the method hooks, schedules, periodic
validation with best-checkpoint selection, logs and exact resume. It knows nothing of modalities.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from multissl.core.method import LossOutput, Progress, after_optimizer_step, before_optimizer_step
from multissl.errors import MultisslError, TrainingDivergedError
from multissl.tasks import TaskParts
from multissl.train.checkpoint import (
    OPTIM,
    find_checkpoint,
    load_weights,
    read_state,
    read_torch,
    rng_state,
    set_rng_state,
    write_checkpoint,
)
from multissl.train.config import TrainConfig
from multissl.train.logging import MetricsLogger, plot_curves
from multissl.train.schedules import lr_multiplier


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class EpochBatches:
    """Deterministic batches: epoch ``e`` is a permutation seeded by (seed, e), cut into global
    batches; each process takes its contiguous slice of every global batch."""

    def __init__(self, n: int, batch_size: int, world: int, rank: int, seed: int, shuffle: bool, drop_last: bool):
        if batch_size % world:
            raise MultisslError(f"train.batch_size={batch_size} must be divisible by the {world} processes")
        if n < batch_size and drop_last:
            raise MultisslError(f"The training set has {n} items, fewer than train.batch_size={batch_size}; "
                                "lower the batch size or set train.drop_last=false")
        self.n, self.batch, self.world, self.rank = n, batch_size, world, rank
        self.seed, self.shuffle, self.drop_last = seed, shuffle, drop_last

    def __len__(self) -> int:
        return self.n // self.batch if self.drop_last else math.ceil(self.n / self.batch)

    def epoch(self, e: int) -> list[list[int]]:
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + e)
            order = torch.randperm(self.n, generator=g).tolist()
        else:
            order = list(range(self.n))
        local = self.batch // self.world
        out = []
        for b in range(len(self)):
            chunk = order[b * self.batch : (b + 1) * self.batch]
            per = math.ceil(len(chunk) / self.world) if len(chunk) < self.batch else local
            out.append(chunk[self.rank * per : (self.rank + 1) * per])
        return out


def _to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: _to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)) and not (batch and isinstance(batch[0], str)):
        out = [_to_device(v, device) for v in batch]
        return type(batch)(out) if not hasattr(batch, "_fields") else type(batch)(*out)
    if hasattr(batch, "to") and callable(batch.to) and not isinstance(batch, (str, bytes)):
        try:
            return batch.to(device)
        except TypeError:
            return batch
    return batch


def _batch_size(batch: Any) -> int:
    if isinstance(batch, torch.Tensor):
        return batch.shape[0]
    if isinstance(batch, dict):
        for v in batch.values():
            n = _batch_size(v)
            if n:
                return n
    if isinstance(batch, (list, tuple)) and batch:
        return _batch_size(batch[0]) if not isinstance(batch[0], (str, int, float)) else len(batch)
    n = getattr(batch, "num_graphs", None) or getattr(batch, "batch_size", None)
    return int(n) if isinstance(n, int) else 0


def build_optimizer(method: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    groups = method.optimizer_param_groups(cfg.weight_decay) if hasattr(method, "optimizer_param_groups") else [
        {"params": [p for p in method.parameters() if p.requires_grad], "weight_decay": cfg.weight_decay}]
    if not any(p.requires_grad for g in groups for p in g["params"]):
        raise MultisslError("The method has no trainable parameters")
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(groups, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.sgd_momentum)
    from multissl.train.lars import LARS

    return LARS(groups, lr=cfg.lr, momentum=cfg.sgd_momentum)


class Trainer:
    """Runs a task's method on its data: ``Trainer(parts, cfg, run_dir).fit(resume=None)``."""

    def __init__(self, parts: TaskParts, cfg: TrainConfig, run_dir: Path, recipe: dict[str, Any] | None = None,
                 accelerator: Any = None) -> None:
        from accelerate import Accelerator
        from accelerate.utils import DistributedDataParallelKwargs

        self.parts, self.cfg, self.run_dir = parts, cfg, Path(run_dir)
        self.recipe = recipe or {}
        if accelerator is None:
            from accelerate.state import AcceleratorState

            # accelerate keeps one global state per process; a new run may use another precision
            AcceleratorState._reset_state(reset_partial_state=False)
        self.accelerator = accelerator or Accelerator(
            cpu=not torch.cuda.is_available(),  # lets torchrun start a multi-process CPU (gloo) run
            mixed_precision=cfg.precision,
            kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=cfg.find_unused_parameters)],
        )
        self.main = self.accelerator.is_main_process
        self.world, self.rank = self.accelerator.num_processes, self.accelerator.process_index

    # -- helpers -----------------------------------------------------------------------------
    def _evaluate(self, method: torch.nn.Module, fn: Any) -> dict[str, float]:
        if fn is None:
            return {}
        was_training = method.training
        method.eval()
        try:
            with torch.no_grad():  # full precision: probes and metrics must not run in bf16/fp16
                return {k: float(v) for k, v in fn(method).items()}
        finally:
            method.train(was_training)

    def _is_better(self, value: float, best: float | None) -> bool:
        if best is None:
            return True
        return value > best if self.cfg.select_mode == "max" else value < best

    def fit(self, resume: Path | str | None = None) -> dict[str, Any]:
        cfg, acc = self.cfg, self.accelerator
        self._clock = (time.perf_counter(), time.process_time())  # the run's wall / CPU budget (results.json)
        method = self.parts.method
        batches = EpochBatches(len(self.parts.train_data), cfg.batch_size, self.world, self.rank, cfg.seed,
                               cfg.shuffle, cfg.drop_last)
        micro_per_epoch = len(batches)
        steps_per_epoch = max(1, micro_per_epoch // cfg.grad_accum_steps)
        total_steps = cfg.max_steps or cfg.epochs * steps_per_epoch
        warmup = cfg.warmup_steps or int(cfg.warmup_ratio * total_steps)
        method.to(acc.device)
        optimizer = build_optimizer(method, cfg)
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lr_multiplier(cfg.scheduler, total_steps, warmup, cfg.min_lr_ratio))

        ckpt_dir = self.run_dir / "checkpoints"
        state = {"step": 0, "epoch": 0, "micro_in_epoch": 0, "best_metric": None, "best_step": None,
                 "total_steps": total_steps, "world_size": self.world}
        rng = None
        if resume is not None:
            folder = find_checkpoint(Path(resume))
            saved = read_state(folder)
            if saved.get("world_size", 1) != self.world:
                raise MultisslError(f"Checkpoint {folder} was written by {saved.get('world_size')} processes; "
                                    f"resume it with the same number (now {self.world}).")
            load_weights(method, folder / "model.safetensors")
            opt = read_torch(folder / OPTIM)
            optimizer.load_state_dict(opt["optimizer"])
            scheduler.load_state_dict(opt["scheduler"])
            rng_path = folder / (f"rng_rank{self.rank}.pt" if self.world > 1 else "rng.pt")
            rng = read_torch(rng_path if rng_path.exists() else folder / "rng.pt")
            state.update(saved)
            state["total_steps"] = total_steps
        elif self.world > 1:
            seed_everything(cfg.seed + self.rank)  # same weights (built before), different augmentations

        compiled = torch.compile(method) if cfg.compile else method
        model, optimizer = acc.prepare(compiled, optimizer)
        unwrapped = method
        if self.main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            if self.recipe:
                import yaml

                (self.run_dir / "recipe.yaml").write_text(yaml.safe_dump(self.recipe, sort_keys=False))
        logger = MetricsLogger(self.run_dir, enabled=self.main)
        if rng is not None:
            set_rng_state(rng)

        last_saved: dict[str, Any] = {}

        def save(kind: str) -> None:
            """Write checkpoints/<kind>; every process contributes its RNG state."""
            if kind == "last":
                last_saved.clear()
                last_saved.update(state)
            rng_now = rng_state()
            acc.wait_for_everyone()
            if self.world > 1:
                ckpt_dir.mkdir(parents=True, exist_ok=True)
                torch.save(rng_now, ckpt_dir / f".rng_rank{self.rank}.pt")
                acc.wait_for_everyone()
            if self.main:
                opt_state = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}
                write_checkpoint(ckpt_dir / kind, unwrapped, dict(state), opt_state, rng_now)
                if self.world > 1:
                    for r in range(self.world):
                        os.replace(ckpt_dir / f".rng_rank{r}.pt", ckpt_dir / kind / f"rng_rank{r}.pt")
            acc.wait_for_everyone()

        def validate() -> dict[str, float]:
            metrics = self._evaluate(unwrapped, self.parts.evaluate) if self.main else {}
            state["last_val_step"] = state["step"]
            if metrics and self.main:
                logger.log(state["step"], {"epoch": state["epoch"], **metrics})
                key = cfg.select_metric
                if key is not None and key not in metrics:
                    raise MultisslError(f"train.select_metric '{key}' is not among the validation metrics "
                                        f"{sorted(metrics)}")
                if key is not None and self._is_better(metrics[key], state["best_metric"]):
                    state["best_metric"], state["best_step"] = metrics[key], state["step"]
                    write_checkpoint(ckpt_dir / "best", unwrapped, dict(state), None)
            acc.wait_for_everyone()
            return metrics

        if state["step"] == 0 and cfg.eval_at_start:
            validate()

        model.train()
        progress_bar = None
        if self.main and cfg.progress:
            from tqdm.auto import tqdm

            progress_bar = tqdm(total=total_steps, initial=state["step"], desc=self.recipe.get("name", "train"),
                                dynamic_ncols=True, leave=False)
        loader_gen = torch.Generator()
        t_last, seen_since = time.perf_counter(), 0
        running_loss, running_n = 0.0, 0
        logs_accum: dict[str, float] = {}
        done = state["step"] >= total_steps
        epoch = state["epoch"]
        try:
            while not done:
                epoch_batches = batches.epoch(epoch)[state["micro_in_epoch"]:]
                loader = DataLoader(self.parts.train_data, batch_sampler=epoch_batches,
                                    collate_fn=self.parts.collate_fn, num_workers=cfg.num_workers,
                                    pin_memory=acc.device.type == "cuda", generator=loader_gen,
                                    persistent_workers=False)
                micro = state["micro_in_epoch"]
                for batch in loader:
                    batch = _to_device(batch, acc.device)
                    micro += 1
                    sync = micro % cfg.grad_accum_steps == 0
                    ctx = acc.no_sync(model) if (not sync and self.world > 1) else contextlib.nullcontext()
                    with ctx, acc.autocast():
                        out: LossOutput = model(batch)
                    loss = out.loss
                    if not torch.isfinite(loss.detach()).all():
                        raise TrainingDivergedError(
                            f"The loss became {loss.item()} at step {state['step'] + 1} (epoch {epoch}). "
                            f"Nothing was saved from the diverged state; the last good checkpoint is in "
                            f"{ckpt_dir / 'last'} (if one was written). Lower train.lr, set "
                            "train.clip_grad_norm, or use precision bf16 instead of fp16, then resume with --resume.")
                    acc.backward(loss / cfg.grad_accum_steps)
                    running_loss += float(loss.detach())
                    running_n += 1
                    seen_since += _batch_size(batch) * self.world
                    for k, v in out.logs.items():
                        logs_accum[k] = float(v.detach() if hasattr(v, "detach") else v)
                    if not sync:
                        continue
                    prog = Progress(state["step"], total_steps, epoch, steps_per_epoch)
                    if cfg.clip_grad_norm:
                        acc.clip_grad_norm_(model.parameters(), cfg.clip_grad_norm)
                    before_optimizer_step(unwrapped, prog)
                    optimizer.step()
                    scheduler.step()
                    optimizer.zero_grad(set_to_none=True)
                    state["step"] += 1
                    state["epoch"], state["micro_in_epoch"] = epoch, micro
                    after_optimizer_step(unwrapped, Progress(state["step"], total_steps, epoch, steps_per_epoch))
                    step = state["step"]
                    if progress_bar is not None:
                        progress_bar.update(1)
                    if step % cfg.log_every == 0 or step == total_steps:
                        now = time.perf_counter()
                        rate = seen_since / max(now - t_last, 1e-9)
                        record = {"epoch": epoch, "loss": running_loss / max(running_n, 1),
                                  "lr": scheduler.get_last_lr()[0], "samples_per_s": rate, **logs_accum}
                        logger.log(step, record)
                        if progress_bar is not None:
                            progress_bar.set_postfix(loss=f"{record['loss']:.4f}", sps=f"{rate:.0f}")
                        t_last, seen_since, running_loss, running_n = now, 0, 0.0, 0
                    end_of_epoch = micro >= micro_per_epoch - (micro_per_epoch % cfg.grad_accum_steps)
                    if end_of_epoch:
                        state["epoch"], state["micro_in_epoch"] = epoch + 1, 0
                    if (cfg.eval_every and step % cfg.eval_every == 0) or (
                            not cfg.eval_every and end_of_epoch and (epoch + 1) % cfg.eval_every_epochs == 0):
                        validate()
                    if (cfg.checkpoint_every and step % cfg.checkpoint_every == 0) or (
                            not cfg.checkpoint_every and end_of_epoch):
                        save("last")
                    if step >= total_steps:
                        done = True
                        break
                    if end_of_epoch:
                        break
                if state["micro_in_epoch"] == 0 or micro >= micro_per_epoch:
                    epoch += 1
                    state["epoch"], state["micro_in_epoch"] = epoch, 0
        finally:
            if progress_bar is not None:
                progress_bar.close()
        if self.parts.evaluate is not None and state.get("last_val_step") != state["step"]:
            validate()
        if last_saved != state:  # not already written at this exact state by the loop
            save("last")
        results = self._final(unwrapped, ckpt_dir, state)
        logger.close()
        if self.main:
            plot_curves(self.run_dir)
        return results

    def _final(self, method: torch.nn.Module, ckpt_dir: Path, state: dict[str, Any]) -> dict[str, Any]:
        """Evaluate the selected weights (best on validation, else last) and write results.json."""
        selected = "last"
        if self.cfg.select_metric and (ckpt_dir / "best").exists():
            load_weights(method, ckpt_dir / "best" / "model.safetensors")
            selected = "best"
        metrics = self._evaluate(method, self.parts.final_evaluate) if self.main else {}
        results = {"selected_checkpoint": selected, "select_metric": self.cfg.select_metric,
                   "best_metric": state["best_metric"], "best_step": state["best_step"], "steps": state["step"],
                   "seed": self.cfg.seed, "metrics": metrics, "epochs": state["epoch"]}
        if hasattr(self, "_clock"):  # this process's wall and CPU seconds for fit (a resumed run: this part)
            results["wall_s"] = time.perf_counter() - self._clock[0]
            results["cpu_s"] = time.process_time() - self._clock[1]
        if self.main:
            (self.run_dir / "results.json").write_text(json.dumps(results, indent=2))
            if self.parts.export is not None:
                self.parts.export(method, self.run_dir / "export")
                from multissl.report.card import write_run_card

                write_run_card(self.run_dir)  # README.md model card in export/ when it holds a model
        self.accelerator.wait_for_everyone()
        return results
