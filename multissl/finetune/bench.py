"""``multissl bench finetune``: ``contrastive.pairs`` vs sentence-transformers' MultipleNegativesRankingLoss
(MNRL) and CachedMultipleNegativesRankingLoss on the same triplets, model, batch, steps and loop.

Triplets: the shipped STS-B train pairs scored >= 4 (paraphrases) with one hard negative per row mined
once with the base model (:mod:`multissl.finetune.mine`, margin 0.05), shared by every side. Each side
starts from the same base weights and runs the same hand-written loop (tokenise, loss, backward, AdamW
step; same lr, batch order, max length and steps); only the model wrapper and the loss differ:
ours = :class:`~multissl.finetune.methods.PairsContrastive` (temperature 0.05, duplicate masking on) /
with ``gradcache_chunk``; peer = ``SentenceTransformer`` + ``MultipleNegativesRankingLoss(scale=20)`` /
``CachedMultipleNegativesRankingLoss(scale=20, mini_batch_size=chunk)``. Reported side by side:
training triplets/s (ratio ours/peer), and the STS-B dev and test Spearman x 100 each model reaches.
Dropout makes the runs differ slightly even at equal losses; the base model's scores are printed too.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from functools import partial


def _sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _batches(n: int, batch_size: int, steps: int, seed: int) -> list[list[int]]:
    rng = random.Random(seed)
    order: list[int] = []
    while len(order) < steps * batch_size:
        perm = list(range(n))
        rng.shuffle(perm)
        order += perm[: n - n % batch_size]
    return [order[i * batch_size : (i + 1) * batch_size] for i in range(steps)]


def _spearman(embed, pairs) -> float:
    import torch.nn.functional as F

    from multissl.eval import spearman

    unique = list(dict.fromkeys(pairs.s1 + pairs.s2))
    index = {s: i for i, s in enumerate(unique)}
    emb = embed(unique)
    cos = F.cosine_similarity(emb[[index[s] for s in pairs.s1]], emb[[index[s] for s in pairs.s2]], dim=-1)
    return 100.0 * spearman(cos, pairs.scores)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="multissl bench finetune", description=__doc__.splitlines()[0])
    p.add_argument("--model", default="minilm", help="HF text encoder (folder, hub id or 'minilm')")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--max-length", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-5)
    p.add_argument("--chunk", type=int, default=16, help="GradCache / CachedMNRL mini-batch size")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--limit", type=int, help="first N training pairs only (mining cost)")
    p.add_argument("--eval-max-pairs", type=int, help="score the first N STS-B dev / test pairs only (says so)")
    p.add_argument("--skip-cached", action="store_true", help="only the plain (uncached) pair")
    args = p.parse_args(argv)

    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.losses import (
        CachedMultipleNegativesRankingLoss,
        MultipleNegativesRankingLoss,
    )

    from multissl.bench.harness import Measurement, record
    from multissl.encoders.hf import HFEncoder, resolve_model
    from multissl.finetune.data import load_pairs, load_scored_pairs
    from multissl.finetune.methods import PairsContrastive
    from multissl.finetune.mine import mine_hard_negatives
    from multissl.finetune.views import PairsCollate

    device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = load_scored_pairs("stsb/sts-dev.csv.gz", "5", "6", "4", header=False, limit=args.eval_max_pairs)
    test = load_scored_pairs("stsb/sts-test.csv", "5", "6", "4", header=False, limit=args.eval_max_pairs)
    rows = load_pairs("stsb/sts-train.csv.gz", "5", "6", header=False, score_column="4", min_score=4.0,
                      limit=args.limit)
    base = HFEncoder(args.model, pooling="mean", max_length=args.max_length).to(device)
    base_embed = partial(base.encode, device=device)
    rows, stats = mine_hard_negatives(rows, base_embed, num_negatives=1, margin=0.05)
    batches = _batches(len(rows), args.batch_size, args.steps, args.seed)
    scores: dict[str, dict[str, float]] = {"base": {"dev": _spearman(base_embed, dev), "test": _spearman(base_embed, test)}}
    del base, base_embed
    times: dict[str, float] = {}

    def ours(chunk: int) -> None:
        torch.manual_seed(args.seed)
        enc = HFEncoder(args.model, pooling="mean", max_length=args.max_length)
        method = PairsContrastive(enc, temperature=0.05, gradcache_chunk=chunk).to(device).train()
        opt = torch.optim.AdamW(method.parameters(), lr=args.lr)
        collate = PairsCollate(enc.tokenize)

        def to_dev(x):
            return {k: to_dev(v) for k, v in x.items()} if isinstance(x, dict) else x.to(device)

        _sync()
        start = time.perf_counter()
        for idx in batches:
            loss = method(to_dev(collate([rows[i] for i in idx]))).loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        _sync()
        name = f"ours-cached{chunk}" if chunk else "ours"
        times[name] = time.perf_counter() - start
        method.eval()
        scores[name] = {s: _spearman(lambda t: enc.encode(t, device=device), pairs) for s, pairs in
                        (("dev", dev), ("test", test))}

    def peer(chunk: int) -> None:
        torch.manual_seed(args.seed)
        model = SentenceTransformer(resolve_model(args.model), device=device)
        model.max_seq_length = args.max_length
        loss_fn = (CachedMultipleNegativesRankingLoss(model, scale=20.0, mini_batch_size=chunk) if chunk
                   else MultipleNegativesRankingLoss(model, scale=20.0))
        model.train()
        opt = torch.optim.AdamW(model.parameters(), lr=args.lr)

        prep = getattr(model, "preprocess", None) or model.tokenize

        def feats(texts):
            return {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in prep(texts).items()}

        _sync()
        start = time.perf_counter()
        for idx in batches:
            cols = [[rows.anchors[i] for i in idx], [rows.positives[i] for i in idx],
                    [rows.negatives[i][0] for i in idx]]
            loss = loss_fn([feats(c) for c in cols], None)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        _sync()
        name = f"st-cached{chunk}" if chunk else "st"
        times[name] = time.perf_counter() - start
        model.eval()
        scores[name] = {s: _spearman(lambda t: model.encode(t, convert_to_tensor=True, batch_size=128).float().cpu(),
                                     pairs) for s, pairs in (("dev", dev), ("test", test))}

    pairs_run = [(0, "MNRL")] + ([] if args.skip_cached else [(args.chunk, f"CachedMNRL(mini_batch={args.chunk})")])
    n = args.steps * args.batch_size
    ms = []
    for chunk, peer_name in pairs_run:
        ours(chunk)
        peer(chunk)
        o, s = (f"ours-cached{chunk}", f"st-cached{chunk}") if chunk else ("ours", "st")
        what = f"{'cached ' if chunk else ''}pairs fine-tuning, batch {args.batch_size}"
        extra = {"steps": args.steps, "model": args.model, "max_length": args.max_length, "device": device,
                 "mined": stats.as_dict(), "sts_pairs": {"dev": len(dev.s1), "test": len(test.s1)},
                 "sts_subset": args.eval_max_pairs is not None}
        ms.append(Measurement("finetune", f"{what}: triplets/s", n / times[o], n / times[s], "triplets/s",
                              f"sentence-transformers {peer_name}", True, extra))
        for split in ("dev", "test"):
            subset = f" (first {args.eval_max_pairs} pairs)" if args.eval_max_pairs else ""
            ms.append(Measurement("finetune", f"{what}: STS-B {split}{subset} Spearman x100 after {args.steps} steps",
                                  scores[o][split], scores[s][split], "spearman", f"sentence-transformers {peer_name}",
                                  True, {**extra, "base_model": scores["base"][split]}))
    record(ms)
    print(json.dumps({"scores": scores, "seconds": times}, indent=2))
    return 0
