"""PairsContrastive on a fixed global batch of 8 (anchor, positive, 2 negatives) rows, written as JSON
to OUT: the loss, the gradients (averaged over processes as DDP does) and the masked-duplicate count
(summed over processes), for several method settings, and SupCon's loss and gradients on two views of the same rows. Run with 1 process (plain python: the global
batch) or 2 processes (torchrun, gloo: 4 rows each): ``python tests/finetune/dist_pairs_worker.py OUT``.
Row 1's positive text reappears as a negative of row 6 and row 6's anchor as row 2's positive, so the
duplicate mask has to look across processes."""

import json
import sys
import zlib

import torch
import torch.distributed as dist
from torch import nn

from multissl.finetune.methods import PairsContrastive, SupCon

B, K, L, VOCAB = 8, 2, 5, 40


class BagEncoder(nn.Module):
    """A deterministic stand-in for a text encoder: mean of token embeddings, then a Linear."""

    hidden_size = 12

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(VOCAB, 12)
        self.out = nn.Linear(12, 12)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.out(self.emb(input_ids).mean(1))


def global_batch() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    anchor = torch.randint(0, VOCAB, (B, L), generator=g)
    positive = torch.randint(0, VOCAB, (B, L), generator=g)
    negative = torch.randint(0, VOCAB, (B * K, L), generator=g)
    negative[6 * K] = positive[1]  # rank 1's row 6 holds rank 0's row 1 positive as a negative
    positive[2] = anchor[6]  # rank 0's row 2 positive = rank 1's row 6 anchor (the symmetric direction)
    ids = lambda t: torch.tensor([zlib.crc32(bytes(r.tolist())) for r in t])
    return {"anchor": anchor, "positive": positive, "negative": negative,
            "anchor_id": ids(anchor), "positive_id": ids(positive), "negative_id": ids(negative)}


def run(out: str) -> None:
    torch.set_num_threads(1)
    dist_on = "WORLD_SIZE" in __import__("os").environ
    if dist_on:
        dist.init_process_group("gloo")
    world, rank = (dist.get_world_size(), dist.get_rank()) if dist_on else (1, 0)
    full, b = global_batch(), B // world
    rows = slice(rank * b, (rank + 1) * b)
    negs = slice(rank * b * K, (rank + 1) * b * K)
    local = {"anchor": {"input_ids": full["anchor"][rows]}, "positive": {"input_ids": full["positive"][rows]},
             "negative": {"input_ids": full["negative"][negs]}, "anchor_id": full["anchor_id"][rows],
             "positive_id": full["positive_id"][rows], "negative_id": full["negative_id"][negs]}
    results = {}
    for name, kw in {"gather": {}, "gather_symmetric": {"symmetric": True},
                     "gather_learnable_t": {"learnable_temperature": True}, "gather_gradcache": {"gradcache_chunk": 2},
                     "no_mask": {"mask_duplicates": False}, "local_only": {"gather": False}}.items():
        torch.manual_seed(0)
        method = PairsContrastive(BagEncoder(), head="linear", temperature=0.05, **kw)
        out_ = method(local)
        out_.loss.backward()
        loss = out_.loss.detach().reshape(1)
        grads = torch.cat([p.grad.reshape(-1) for p in method.parameters()])
        masked = torch.tensor([out_.logs.get("masked_duplicates", 0.0)])
        if dist_on:  # DDP averages gradients; the logged loss is the mean of equal-size local means
            for t in (loss, grads):
                dist.all_reduce(t)
                t /= world
            dist.all_reduce(masked)
        results[name] = {"loss": loss.item(), "grads": grads.tolist(), "masked": masked.item()}
    # SupCon: two views of B samples with labels whose classes span both processes
    labels = torch.tensor([0, 1, 0, 2, 1, 2, 0, 1])
    local_sc = {"views": [{"input_ids": full["anchor"][rows]}, {"input_ids": full["positive"][rows]}],
                "labels": labels[rows]}
    for name, kw in {"supcon": {}, "supcon_gradcache": {"gradcache_chunk": 2},
                     "supcon_local_only": {"gather": False}}.items():
        torch.manual_seed(0)
        method = SupCon(BagEncoder(), head="linear", temperature=0.1, **kw)
        out_ = method(local_sc)
        out_.loss.backward()
        loss = out_.loss.detach().reshape(1)
        grads = torch.cat([p.grad.reshape(-1) for p in method.parameters() if p.grad is not None])
        if dist_on:
            for t in (loss, grads):
                dist.all_reduce(t)
                t /= world
        results[name] = {"loss": loss.item(), "grads": grads.tolist()}
    if rank == 0:
        with open(out, "w") as f:
            json.dump(results, f)
    if dist_on:
        dist.destroy_process_group()


if __name__ == "__main__":
    run(sys.argv[1])
