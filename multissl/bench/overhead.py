"""``multissl bench overhead``: the same model, data and batches trained for N steps in a bare PyTorch
loop and in the multissl Trainer (accelerate, hooks, logging, checkpoints off the timed path) in one
process; prints both times and the ratio (goal <= 1.05 on CPU)."""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch


def _make(seed: int, hidden: int):
    from multissl.tabular.data import load_table
    from multissl.tabular.methods import ScarfMethod

    torch.manual_seed(seed)
    table = load_table("digits/digits.csv.gz")
    return table, ScarfMethod(table.x, hidden=hidden)


def bare_loop(steps: int, batch: int, seed: int, hidden: int) -> float:
    """Plain PyTorch: seeded permutation batches, forward, backward, AdamW step."""
    from torch.utils.data import DataLoader

    from multissl.data import SequenceDataset
    from multissl.train.trainer import EpochBatches

    table, method = _make(seed, hidden)
    opt = torch.optim.AdamW(method.parameters(), lr=1e-3)
    batches = EpochBatches(len(table.x), batch, 1, 0, seed, True, True)
    done, epoch = 0, 0
    t = time.perf_counter()
    while done < steps:
        for b in DataLoader(SequenceDataset(table.x), batch_sampler=batches.epoch(epoch)):
            loss = method(b).loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            done += 1
            if done >= steps:
                break
        epoch += 1
    return time.perf_counter() - t


def trainer_loop(steps: int, batch: int, seed: int, hidden: int) -> float:
    """The multissl Trainer on the same work, timed from the first to the last step."""
    from multissl.data import SequenceDataset
    from multissl.tasks import TaskParts
    from multissl.train.config import TrainConfig
    from multissl.train.trainer import Trainer

    table, method = _make(seed, hidden)
    times: list[float] = []

    class Timed(type(method)):  # records the wall clock at every step boundary
        def after_step(self, progress):
            times.append(time.perf_counter())

    method.__class__ = Timed
    cfg = TrainConfig(max_steps=steps, batch_size=batch, lr=1e-3, optimizer="adamw", seed=seed, progress=False,
                      log_every=10, checkpoint_every=10**9)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(TaskParts(method, SequenceDataset(table.x)), cfg, Path(tmp))
        start = time.perf_counter()
        times.append(start)
        trainer.fit()
    return times[-1] - times[0]


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="multissl bench overhead", description=__doc__)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--repeats", type=int, default=3, help="best of N for each side, alternating")
    args = p.parse_args(argv)
    from multissl.bench.harness import Measurement, record

    bare, ours = [], []
    for r in range(args.repeats):
        bare.append(bare_loop(args.steps, args.batch_size, r, args.hidden))
        ours.append(trainer_loop(args.steps, args.batch_size, r, args.hidden))
    rows = [Measurement("overhead", f"{args.steps} steps, batch {args.batch_size}, MLP {args.hidden}",
                        min(ours), min(bare), "s", "bare PyTorch loop", higher_is_better=False,
                        extra={"all_ours": ours, "all_bare": bare})]
    record(rows)
    ratio = rows[0].ratio
    print(f"overhead ratio (trainer / bare) = {ratio:.3f}  (goal <= 1.05)")
    return 0
