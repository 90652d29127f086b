"""The one training loop, on Hugging Face accelerate: CPU, one GPU, or many GPUs / nodes under
``accelerate launch`` or ``torchrun`` with no code change.

It owns precision, gradient accumulation, clipping, the method-state hooks
(:func:`~multissl.core.method.before_optimizer_step` / :func:`~multissl.core.method.after_optimizer_step`),
schedules, periodic validation with best-checkpoint selection, logs and exact resume. It knows nothing
of modalities. ``Trainer.fit`` is a short loop over named steps: train step, advance, log, validate,
checkpoint.

Distributed runs equal one process on the global batch where the mathematics allows: contrastive
losses gather keys, queues are filled from gathered keys, augmentations drawn with
:func:`~multissl.core.sample_random.batch_rand` are per sample (seeded by step, not by rank), and
``train.sync_batchnorm`` makes BatchNorm use global-batch statistics. Dropout and other random draws
on the global RNG differ per process (seed + rank).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import os
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from multissl.core.method import (
    LossOutput,
    Progress,
    after_optimizer_step,
    before_optimizer_step,
)
from multissl.core.sample_random import shared_batch_seed, step_seed
from multissl.core.syncbn import convert_sync_batchnorm
from multissl.errors import MultisslError, RecipeError
from multissl.eval.guards import require_finite
from multissl.tasks import TaskParts
from multissl.train.checkpoint import (
    OPTIM,
    find_checkpoint,
    load_weights,
    read_state,
    read_torch,
    restore_optimizer,
    rng_state,
    set_rng_state,
    write_checkpoint,
)
from multissl.train.config import TrainConfig
from multissl.train.guards import divergence_error
from multissl.train.logging import MetricsLogger, plot_curves
from multissl.train.meter import RunningMeter
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


@dataclass
class _Run:
    """What one ``fit`` call works on and mutates."""

    method: torch.nn.Module  # the unwrapped method (hooks, checkpoints)
    model: torch.nn.Module  # what the forward runs (DDP / compiled wrapper)
    optimizer: torch.optim.Optimizer
    scheduler: Any
    batches: EpochBatches
    total_steps: int
    steps_per_epoch: int
    state: dict[str, Any]
    logger: MetricsLogger
    meter: RunningMeter
    epoch: int = 0  # epoch of the step just done
    last_saved: dict[str, Any] = field(default_factory=dict)
    bar: Any = None
    t_last: float = 0.0
    seen: int = 0


class Trainer:
    """Runs a task's method on its data: ``Trainer(parts, cfg, run_dir).fit(resume=None)``."""

    def __init__(self, parts: TaskParts, cfg: TrainConfig, run_dir: Path, recipe: dict[str, Any] | None = None,
                 accelerator: Any = None) -> None:
        from accelerate import Accelerator
        from accelerate.utils import DistributedDataParallelKwargs

        self.parts, self.cfg, self.run_dir = parts, cfg, Path(run_dir)
        self.recipe = recipe or {}
        if cfg.precision == "fp16" and not torch.cuda.is_available():
            raise RecipeError("train.precision=fp16 needs a CUDA GPU: on CPU, accelerate trains such a run in "
                              "float32 without a word. Use train.precision=bf16 (CPU autocast) or train.precision=no.")
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
        self.ckpt_dir = self.run_dir / "checkpoints"

    # -- the loop -----------------------------------------------------------------------------
    def fit(self, resume: Path | str | None = None) -> dict[str, Any]:
        """Train to ``total_steps`` (resuming from a checkpoint when given), then evaluate the selected
        weights; returns what ``results.json`` holds."""
        run = self._start(resume)
        accum = self.cfg.grad_accum_steps
        try:
            if run.state["step"] == 0 and self.cfg.eval_at_start:
                self._validate(run)
            while run.state["step"] < run.total_steps:
                micro_batches = self._rest_of_epoch(run)
                for _ in range(run.steps_per_epoch - run.state["micro_in_epoch"] // accum):
                    self._train_step(run, itertools.islice(micro_batches, accum))
                    end_of_epoch = self._advance(run)
                    self._log(run)
                    if self._due(run, self.cfg.eval_every, end_of_epoch, self.cfg.eval_every_epochs):
                        self._validate(run)
                    if self._due(run, self.cfg.checkpoint_every, end_of_epoch, 1):
                        self._checkpoint(run)
                    if run.state["step"] >= run.total_steps:
                        break
        finally:
            if run.bar is not None:
                run.bar.close()
        return self._finish(run)

    # -- named steps ---------------------------------------------------------------------------
    def _train_step(self, run: _Run, micro_batches: Iterable[Any]) -> None:
        """Forward + backward over the step's micro-batches, then the optimizer step between the
        method-state hooks (queue pushes and EMA happen there, once per step)."""
        acc, cfg, step = self.accelerator, self.cfg, run.state["step"]
        n = 0
        for n, batch in enumerate(micro_batches, 1):
            batch = _to_device(batch, acc.device)
            last = n == cfg.grad_accum_steps
            sync = acc.no_sync(run.model) if (not last and self.world > 1) else contextlib.nullcontext()
            with sync, acc.autocast(), shared_batch_seed(step_seed(cfg.seed, step, n)):
                out: LossOutput = run.model(batch)
            if acc.device.type == "cpu" and not bool(torch.isfinite(out.loss.detach()).all()):  # free on CPU
                raise self._diverged(run, out.loss, batch, step + 1)
            acc.backward(out.loss / cfg.grad_accum_steps)
            run.meter.add(out.loss, out.logs, step + 1)
            run.seen += _batch_size(batch) * self.world
        if n != cfg.grad_accum_steps:
            raise MultisslError(f"Step {step + 1} got {n} of train.grad_accum_steps={cfg.grad_accum_steps} "
                                "micro-batches; the epoch is too short for the accumulation")
        if cfg.clip_grad_norm:
            acc.clip_grad_norm_(run.model.parameters(), cfg.clip_grad_norm)
        before_optimizer_step(run.method, Progress(step, run.total_steps, run.state["epoch"], run.steps_per_epoch))
        run.optimizer.step()
        run.scheduler.step()
        run.optimizer.zero_grad(set_to_none=True)

    def _advance(self, run: _Run) -> bool:
        """Count the step, run the after-step hooks, move the epoch on at its end; True at an epoch end."""
        state = run.state
        run.epoch = state["epoch"]
        state["step"] += 1
        state["micro_in_epoch"] += self.cfg.grad_accum_steps
        after_optimizer_step(run.method, Progress(state["step"], run.total_steps, run.epoch, run.steps_per_epoch))
        if run.bar is not None:
            run.bar.update(1)
        end_of_epoch = state["micro_in_epoch"] >= run.steps_per_epoch * self.cfg.grad_accum_steps
        if end_of_epoch:
            state["epoch"], state["micro_in_epoch"] = run.epoch + 1, 0
        return end_of_epoch

    def _log(self, run: _Run) -> None:
        """At logging steps: the loss (mean over micro-batches and processes), lr and throughput."""
        step = run.state["step"]
        if step % self.cfg.log_every and step != run.total_steps:
            return
        self._check_finite(run)
        now = time.perf_counter()
        rate = run.seen / max(now - run.t_last, 1e-9)
        figures = run.meter.read()
        record = {"epoch": run.epoch, "loss": figures.pop("loss", float("nan")),
                  "lr": run.scheduler.get_last_lr()[0], "samples_per_s": rate, **figures}
        run.logger.log(step, record)
        if run.bar is not None:
            run.bar.set_postfix(loss=f"{record['loss']:.4f}", sps=f"{rate:.0f}")
        run.t_last, run.seen = now, 0

    def _validate(self, run: _Run) -> dict[str, float]:
        """Periodic validation on the main process; keeps the best checkpoint on ``select_metric``."""
        self._check_finite(run)
        state, cfg = run.state, self.cfg
        metrics = self._evaluate(run.method, self.parts.evaluate) if self.main else {}
        state["last_val_step"] = state["step"]
        if metrics and self.main:
            run.logger.log(state["step"], {"epoch": state["epoch"], **metrics})
            key = cfg.select_metric
            if key is not None and key not in metrics:
                raise MultisslError(f"train.select_metric '{key}' is not among the validation metrics "
                                    f"{sorted(metrics)}")
            if key is not None and self._is_better(metrics[key], state["best_metric"]):
                state["best_metric"], state["best_step"] = metrics[key], state["step"]
                write_checkpoint(self.ckpt_dir / "best", run.method, dict(state), None)
        self.accelerator.wait_for_everyone()
        return metrics

    def _checkpoint(self, run: _Run) -> None:
        """Write checkpoints/last; every process contributes its RNG state."""
        self._check_finite(run)
        acc, state = self.accelerator, run.state
        run.last_saved = dict(state)
        rng_now = rng_state()
        acc.wait_for_everyone()
        if self.world > 1:
            self.ckpt_dir.mkdir(parents=True, exist_ok=True)
            torch.save(rng_now, self.ckpt_dir / f".rng_rank{self.rank}.pt")
            acc.wait_for_everyone()
        if self.main:
            opt_state = {"optimizer": run.optimizer.state_dict(), "scheduler": run.scheduler.state_dict()}
            write_checkpoint(self.ckpt_dir / "last", run.method, dict(state), opt_state, rng_now)
            if self.world > 1:
                for r in range(self.world):
                    os.replace(self.ckpt_dir / f".rng_rank{r}.pt", self.ckpt_dir / "last" / f"rng_rank{r}.pt")
        acc.wait_for_everyone()

    # -- set-up and tear-down ------------------------------------------------------------------
    def _start(self, resume: Path | str | None) -> _Run:
        """Optimizer, schedule, loop state (from the checkpoint when resuming), wrappers and logs."""
        cfg, acc = self.cfg, self.accelerator
        self._clock = (time.perf_counter(), time.process_time())  # the run's wall / CPU budget (results.json)
        method = self.parts.method
        batches = EpochBatches(len(self.parts.train_data), cfg.batch_size, self.world, self.rank, cfg.seed,
                               cfg.shuffle, cfg.drop_last)
        micro_per_epoch = len(batches)
        if micro_per_epoch < cfg.grad_accum_steps:
            raise MultisslError(f"An epoch has {micro_per_epoch} micro-batches, fewer than train.grad_accum_steps="
                                f"{cfg.grad_accum_steps}; lower one of train.batch_size / train.grad_accum_steps")
        steps_per_epoch = micro_per_epoch // cfg.grad_accum_steps
        total_steps = cfg.max_steps or cfg.epochs * steps_per_epoch
        warmup = cfg.warmup_steps or int(cfg.warmup_ratio * total_steps)
        if cfg.sync_batchnorm and self.world > 1:
            method = convert_sync_batchnorm(method, acc.device)
        method.to(acc.device)
        optimizer = build_optimizer(method, cfg)
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lr_multiplier(cfg.scheduler, total_steps, warmup, cfg.min_lr_ratio))
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
            restore_optimizer(optimizer, scheduler, read_torch(folder / OPTIM))  # recipe's lr etc. apply
            rng_path = folder / (f"rng_rank{self.rank}.pt" if self.world > 1 else "rng.pt")
            rng = read_torch(rng_path if rng_path.exists() else folder / "rng.pt")
            state.update(saved)
            state["total_steps"] = total_steps
        elif self.world > 1:
            seed_everything(cfg.seed + self.rank)  # same weights (built before), different dropout
        compiled = torch.compile(method) if cfg.compile else method
        model, optimizer = acc.prepare(compiled, optimizer)
        if self.main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            if self.recipe:
                import yaml

                (self.run_dir / "recipe.yaml").write_text(yaml.safe_dump(self.recipe, sort_keys=False))
        logger = MetricsLogger(self.run_dir, enabled=self.main,
                               resume_step=state["step"] if resume is not None else None)
        if rng is not None:
            set_rng_state(rng)
        model.train()
        run = _Run(method, model, optimizer, scheduler, batches, total_steps, steps_per_epoch, state, logger,
                   RunningMeter(acc.device), epoch=state["epoch"], t_last=time.perf_counter())
        if self.main and cfg.progress:
            from tqdm.auto import tqdm

            run.bar = tqdm(total=total_steps, initial=state["step"], desc=self.recipe.get("name", "train"),
                           dynamic_ncols=True, leave=False)
        self._loader_gen = torch.Generator()
        return run

    def _rest_of_epoch(self, run: _Run) -> Iterable[Any]:
        """The micro-batches of the current epoch from the saved position on (whole steps only)."""
        state, cfg = run.state, self.cfg
        usable = run.steps_per_epoch * cfg.grad_accum_steps  # a trailing partial step is dropped
        indices = run.batches.epoch(state["epoch"])[state["micro_in_epoch"]:usable]
        loader = DataLoader(self.parts.train_data, batch_sampler=indices, collate_fn=self.parts.collate_fn,
                            num_workers=cfg.num_workers, pin_memory=self.accelerator.device.type == "cuda",
                            generator=self._loader_gen, persistent_workers=False)
        return iter(loader)

    def _check_finite(self, run: _Run) -> None:
        """Before logging, validating or writing: raise if a loss since the last log was not finite (on
        accelerators the losses are only read here, not every step)."""
        bad = run.meter.first_divergence()
        if bad is not None:
            raise self._diverged(run, bad[1], None, bad[0])

    def _diverged(self, run: _Run, loss: torch.Tensor, batch: Any, step: int) -> MultisslError:
        return divergence_error(loss, batch, step, run.state["epoch"], self.run_dir, run.last_saved.get("step"),
                                self.cfg.lr, str(self.run_dir / "recipe.yaml"))

    def _due(self, run: _Run, every_steps: int, end_of_epoch: bool, every_epochs: int) -> bool:
        """Whether a periodic action (validation / checkpoint) falls on the step just done."""
        if every_steps:
            return run.state["step"] % every_steps == 0
        return end_of_epoch and (run.epoch + 1) % every_epochs == 0

    def _finish(self, run: _Run) -> dict[str, Any]:
        """Last validation and checkpoint (when not already at this step), then the final evaluation."""
        self._check_finite(run)
        if self.parts.evaluate is not None and run.state.get("last_val_step") != run.state["step"]:
            self._validate(run)
        if run.last_saved != run.state:  # not already written at this exact state by the loop
            self._checkpoint(run)
        results = self._final(run.method, self.ckpt_dir, run.state)
        run.logger.close()
        if self.main:
            plot_curves(self.run_dir)
        return results

    # -- helpers -------------------------------------------------------------------------------
    def _evaluate(self, method: torch.nn.Module, fn: Any) -> dict[str, float]:
        if fn is None:
            return {}
        was_training = method.training
        method.eval()
        # full precision: probes and metrics must not run in bf16/fp16, also when the evaluation calls the
        # method itself (accelerate patches ``forward`` with autocast in place; its original is restored here)
        autocast_forward = method.__dict__.get("forward") if "_original_forward" in method.__dict__ else None
        if autocast_forward is not None:
            method.forward = method.__dict__["_original_forward"]
        try:
            with torch.no_grad():
                return {k: float(v) for k, v in fn(method).items()}
        finally:
            if autocast_forward is not None:
                method.forward = autocast_forward
            method.train(was_training)

    def _is_better(self, value: float, best: float | None) -> bool:
        if best is None:
            return True
        return value > best if self.cfg.select_mode == "max" else value < best

    def _final(self, method: torch.nn.Module, ckpt_dir: Path, state: dict[str, Any]) -> dict[str, Any]:
        """Evaluate the selected weights (best on validation, else last) and write results.json."""
        selected = "last"
        if self.cfg.select_metric and (ckpt_dir / "best").exists():
            load_weights(method, ckpt_dir / "best" / "model.safetensors")
            selected = "best"
        metrics = self._evaluate(method, self.parts.final_evaluate) if self.main else {}
        require_finite(metrics, f"The final evaluation of {selected} weights")
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
