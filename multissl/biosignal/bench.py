"""``multissl bench biosignal``: segments/s of participant-level pre-training steps and of embedding,
on CPU and on a GPU when one is present, for the recipe's encoder (no peer implementation is
installable offline; the peer column stays empty)."""

from __future__ import annotations

import argparse

import torch

from multissl.bench.harness import Measurement, record, timed


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="multissl bench biosignal", description=__doc__)
    ap.add_argument("--recipe", default="biosignal/participant-ppg-bp")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    ap.add_argument("overrides", nargs="*")
    a = ap.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    from multissl.recipes import load_recipe
    from multissl.run import build_parts

    recipe = load_recipe(a.recipe, a.overrides)
    _, parts = build_parts(recipe)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    rows = []
    items = [parts.train_data[i % len(parts.train_data)] for i in range(a.batch_size)]
    batch_cpu = {k: torch.stack([it[k] for it in items]) for k in items[0]}
    shape = tuple(batch_cpu["a"].shape[1:])
    for dev in devices:
        method = parts.method.to(dev)
        batch = {k: v.to(dev) for k, v in batch_cpu.items()}
        opt = torch.optim.AdamW([p for p in method.parameters() if p.requires_grad], lr=1e-4)
        sync = torch.cuda.synchronize if dev == "cuda" else None

        def train_steps():
            for _ in range(a.steps):
                out = method(batch)
                out.loss.backward()
                opt.step()
                opt.zero_grad(set_to_none=True)

        method.train()
        train_steps()  # warm-up
        t = timed(train_steps, repeats=2, sync=sync)
        rows.append(Measurement("biosignal", f"pretrain segments/s ({dev}, {shape}, batch {a.batch_size})",
                                a.steps * a.batch_size / t, None, "segments/s"))
        method.eval()
        x = batch["a"].repeat(4, 1, 1)

        def embed():
            with torch.no_grad():
                for _ in range(a.steps):
                    method.embed(x)

        embed()
        t = timed(embed, repeats=2, sync=sync)
        rows.append(Measurement("biosignal", f"embed segments/s ({dev}, {shape}, batch {x.shape[0]})",
                                a.steps * x.shape[0] / t, None, "segments/s"))
    record(rows)
    return 0
